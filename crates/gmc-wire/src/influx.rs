//! InfluxDB line protocol: `measurement,tag=v field=1.0,n=3i,ok=true 1700000000000000000`.
//! Each numeric field becomes a series `<measurement>_<field>` (`value` → `<measurement>`)
//! with the tags as labels; names are made Prometheus-valid. Bad lines are rejected alone.

use std::borrow::Cow;

use gmc_model::{LabelRef, METRIC_NAME};

use crate::error::{truncate, Error, Result};
use crate::names;
use crate::report::{Decoded, Limits, SampleBudget};

/// Unit of the timestamps in a body (the `precision` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds (the default).
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Precision {
    /// Parse the `precision` parameter: `ns`/`n`, `us`/`u`, `ms`, `s`.
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            _ => return None,
        })
    }

    /// Convert a timestamp in this unit to nanoseconds; `None` on overflow.
    pub fn to_nanos(self, v: i64) -> Option<i64> {
        let factor = match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
        };
        v.checked_mul(factor)
    }
}

/// Characters a backslash escapes in measurements.
const MEASUREMENT_ESCAPES: &[u8] = b", ";
/// Characters a backslash escapes in tag keys, tag values and field keys.
const KEY_ESCAPES: &[u8] = b",= ";

/// One parsed line, before it becomes series.
struct Line<'a> {
    measurement: Cow<'a, str>,
    tags: Vec<LabelRef<'a>>,
    fields: Vec<(Cow<'a, str>, f64)>,
    strings: u64,
    ts_nanos: Option<i64>,
}

/// Decode a line-protocol body.
///
/// # Errors
/// [`Error::BodyTooLarge`] and [`Error::TooManySamples`]; bad lines and invalid series are
/// counted in the report instead.
pub fn decode<'a>(
    body: &'a str,
    precision: Precision,
    default_ts_nanos: i64,
    limits: &Limits,
) -> Result<Decoded<'a>> {
    if body.len() > limits.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: body.len() as u64,
            limit: limits.max_body_bytes,
        });
    }
    let mut out = Decoded::new(limits);
    let mut budget = SampleBudget::new(limits);
    for (i, raw) in body.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parsed = match parse_line(trimmed, precision) {
            Ok(l) => l,
            Err(reason) => {
                out.report.reject(&Error::Syntax {
                    line: line_no,
                    reason,
                });
                continue;
            }
        };
        out.report.skip("string_field", parsed.strings);
        budget.take(parsed.fields.len())?;
        let ts = parsed.ts_nanos.unwrap_or(default_ts_nanos);
        for (field, value) in parsed.fields {
            let name = if field == "value" {
                parsed.measurement.clone()
            } else {
                Cow::Owned(format!("{}_{}", parsed.measurement, field))
            };
            let name = names::metric_name(name);
            let mut s = out.batch.series();
            s.label(METRIC_NAME, name.clone());
            for t in &parsed.tags {
                s.label(t.name.clone(), t.value.clone());
            }
            s.float(ts, value);
            if let Err(source) = s.finish() {
                out.report.reject(&Error::InvalidSeries {
                    series: format!("on line {line_no} ({})", truncate(&name)),
                    source,
                });
            }
        }
    }
    Ok(out.done())
}

/// Scan from `*pos` to the first unescaped byte in `stops` (or the end); returns the text
/// and whether it contains escapes of `escapes`.
fn scan<'a>(s: &'a str, pos: &mut usize, stops: &[u8], escapes: &[u8]) -> (&'a str, bool) {
    let b = s.as_bytes();
    let start = *pos;
    let mut escaped = false;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && b.get(i + 1).is_some_and(|n| escapes.contains(n)) {
            escaped = true;
            i += 2;
            continue;
        }
        if stops.contains(&c) {
            break;
        }
        i += 1;
    }
    *pos = i;
    (&s[start..i], escaped)
}

/// Drop the backslash in front of each of `escapes`.
fn unescape<'a>(s: &'a str, escaped: bool, escapes: &[u8]) -> Cow<'a, str> {
    if !escaped {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if n.is_ascii() && escapes.contains(&(n as u8)) {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

fn parse_line(line: &str, precision: Precision) -> Result<Line<'_>, String> {
    let b = line.as_bytes();
    let mut pos = 0;
    let (m, esc) = scan(line, &mut pos, b", ", MEASUREMENT_ESCAPES);
    if m.is_empty() {
        return Err("missing measurement".into());
    }
    let measurement = unescape(m, esc, MEASUREMENT_ESCAPES);
    let mut tags = Vec::new();
    while b.get(pos) == Some(&b',') {
        pos += 1;
        let (k, kesc) = scan(line, &mut pos, b",= ", KEY_ESCAPES);
        if b.get(pos) != Some(&b'=') || k.is_empty() {
            return Err(format!(
                "malformed tag at {:?}",
                truncate(&line[pos.min(line.len())..])
            ));
        }
        pos += 1;
        let (v, vesc) = scan(line, &mut pos, b", ", KEY_ESCAPES);
        if v.is_empty() {
            return Err(format!("tag {:?} has no value", truncate(k)));
        }
        let name = names::label_name(unescape(k, kesc, KEY_ESCAPES));
        tags.push(LabelRef::new(name, unescape(v, vesc, KEY_ESCAPES)));
    }
    if b.get(pos) != Some(&b' ') {
        return Err("expected a space before the fields".into());
    }
    while b.get(pos) == Some(&b' ') {
        pos += 1;
    }
    let mut fields = Vec::new();
    let mut strings = 0;
    loop {
        let (k, kesc) = scan(line, &mut pos, b",= ", KEY_ESCAPES);
        if k.is_empty() || b.get(pos) != Some(&b'=') {
            return Err(format!(
                "malformed field at {:?}",
                truncate(&line[pos.min(line.len())..])
            ));
        }
        pos += 1;
        let key = unescape(k, kesc, KEY_ESCAPES);
        if b.get(pos) == Some(&b'"') {
            pos = skip_string(b, pos + 1)
                .ok_or_else(|| format!("unterminated string in field {:?}", truncate(&key)))?;
            strings += 1;
        } else {
            let start = pos;
            while pos < b.len() && b[pos] != b',' && b[pos] != b' ' {
                pos += 1;
            }
            let tok = &line[start..pos];
            let v = parse_field_value(tok).ok_or_else(|| {
                format!(
                    "invalid value {:?} for field {:?}",
                    truncate(tok),
                    truncate(&key)
                )
            })?;
            fields.push((key, v));
        }
        match b.get(pos) {
            Some(b',') => pos += 1,
            _ => break,
        }
    }
    let rest = line[pos..].trim_matches([' ', '\t']);
    let ts_nanos = if rest.is_empty() {
        None
    } else {
        let v: i64 = rest
            .parse()
            .map_err(|_| format!("invalid timestamp {:?}", truncate(rest)))?;
        Some(
            precision
                .to_nanos(v)
                .ok_or_else(|| format!("timestamp {v} out of range"))?,
        )
    };
    Ok(Line {
        measurement,
        tags,
        fields,
        strings,
        ts_nanos,
    })
}

/// Skip a string field body after its opening quote; returns the index after the closing
/// quote. `\"` and `\\` are the only escapes.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// A numeric field value: float, `123i`, `123u` or a boolean (1/0).
fn parse_field_value(tok: &str) -> Option<f64> {
    match tok {
        "t" | "T" | "true" | "True" | "TRUE" => return Some(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Some(0.0),
        _ => {}
    }
    if let Some(i) = tok.strip_suffix('i') {
        return i.parse::<i64>().ok().map(|v| v as f64);
    }
    if let Some(u) = tok.strip_suffix('u') {
        return u.parse::<u64>().ok().map(|v| v as f64);
    }
    tok.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(body: &str) -> Decoded<'_> {
        decode(body, Precision::Nanoseconds, 42, &Limits::default()).unwrap()
    }

    #[test]
    fn decodes_fields_tags_and_types() {
        let d = dec("cpu,host=a,region=eu value=0.5,user=3i,idle=7u,up=true,note=\"x y\" 1700000000000000000\n");
        assert!(d.report.is_clean(), "{}", d.report);
        assert_eq!(d.report.skipped["string_field"], 1);
        let names: Vec<_> = d
            .batch
            .iter()
            .map(|s| s.label(METRIC_NAME).unwrap().to_owned())
            .collect();
        assert_eq!(names, vec!["cpu", "cpu_user", "cpu_idle", "cpu_up"]);
        let s = d.batch.get(1).unwrap();
        assert_eq!(s.floats[0].value, 3.0);
        assert_eq!(s.floats[0].ts_nanos, 1_700_000_000_000_000_000);
        assert_eq!(s.label("host"), Some("a"));
        assert_eq!(d.batch.get(3).unwrap().floats[0].value, 1.0);
    }

    #[test]
    fn escapes_and_sanitizing() {
        let d = dec("my\\ meas\\,x,tag\\ k=v\\,1\\=2 fi\\=eld=1 5\n");
        assert!(d.report.is_clean(), "{}", d.report);
        let s = d.batch.get(0).unwrap();
        assert_eq!(s.label(METRIC_NAME), Some("my_meas_x_fi_eld"));
        assert_eq!(s.label("tag_k"), Some("v,1=2"));
        assert_eq!(s.floats[0].ts_nanos, 5);
    }

    #[test]
    fn precision_and_default_timestamp() {
        let d = decode(
            "m v=1 3\nm v=2\n",
            Precision::Seconds,
            9,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(d.batch.get(0).unwrap().floats[0].ts_nanos, 3_000_000_000);
        assert_eq!(d.batch.get(1).unwrap().floats[0].ts_nanos, 9);
        let d = decode(
            "m v=1 9223372036854775807\n",
            Precision::Seconds,
            9,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(d.report.rejected["syntax"], 1);
        assert_eq!(Precision::parse("ms"), Some(Precision::Milliseconds));
        assert_eq!(Precision::parse("h"), None);
    }

    #[test]
    fn bad_lines_are_rejected_alone() {
        let d = dec("ok v=1\nnofields\nbad v=abc\n# comment\n\nm,t= v=1\nok2 v=2 1\nm v=\"open\n");
        assert_eq!(d.batch.len_series(), 2);
        assert_eq!(d.report.rejected["syntax"], 4);
        assert!(
            d.report.messages[0].starts_with("line 2:"),
            "{:?}",
            d.report.messages
        );
        assert!(d.report.messages[3].starts_with("line 8:"));
    }
}
