//! Prometheus text exposition 0.0.4 and OpenMetrics 1.0 parser, for scraping and text
//! pushes. Lines that do not parse, and series that fail validation, are rejected one by one
//! with their line number; OpenMetrics' `# EOF` rule is checked for the whole body.
//!
//! Target labels follow Prometheus' `honor_labels: false` rule by default: the target's
//! label wins and the exposed one is kept as `exported_<name>`.

use std::borrow::Cow;
use std::collections::HashMap;

use gmc_model::{millis_to_nanos, LabelRef, Metadata, MetricType, METRIC_NAME};

use crate::error::{truncate, Error, Result};
use crate::report::{Decoded, Limits, SampleBudget};

mod lexer;

use lexer::Cursor;

/// Which text format a body is in (chosen from the response's `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `text/plain; version=0.0.4`: millisecond timestamps, no `# EOF`.
    #[default]
    Prometheus,
    /// `application/openmetrics-text`: second timestamps, `# EOF` required.
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` header names; anything unknown is read as 0.0.4, as
    /// Prometheus 2.x does.
    pub fn from_content_type(content_type: &str) -> Format {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// How to turn an exposition into series.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The body's format.
    pub format: Format,
    /// Timestamp (ns) of samples that carry none (the scrape time).
    pub default_ts_nanos: i64,
    /// Labels every series gets (`job`, `instance`, …).
    pub target_labels: &'a [(String, String)],
    /// When true, exposed labels win over target labels (Prometheus `honor_labels`).
    pub honor_labels: bool,
    /// When false, exposed timestamps are ignored (Prometheus `honor_timestamps`).
    pub honor_timestamps: bool,
}

impl Options<'_> {
    /// Options with no target labels, honouring timestamps, target labels winning.
    pub fn new(format: Format, default_ts_nanos: i64) -> Self {
        Options {
            format,
            default_ts_nanos,
            target_labels: &[],
            honor_labels: false,
            honor_timestamps: true,
        }
    }
}

/// Metadata collected for one family while parsing.
#[derive(Debug)]
struct Family {
    name: String,
    ty: Option<MetricType>,
    help: Option<String>,
    unit: Option<String>,
}

/// Families in order of first appearance, indexed by name.
#[derive(Debug, Default)]
struct Families {
    list: Vec<Family>,
    index: HashMap<String, usize>,
}

impl Families {
    fn get_mut(&mut self, name: &str) -> &mut Family {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.index.insert(name.to_owned(), self.list.len());
                self.list.push(Family {
                    name: name.to_owned(),
                    ty: None,
                    help: None,
                    unit: None,
                });
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }

    fn type_of(&self, name: &str) -> Option<MetricType> {
        self.index.get(name).and_then(|&i| self.list[i].ty)
    }

    /// Whether `name` is the `_created` series of a counter, histogram or summary, which
    /// carries a start time rather than a value and is not stored.
    fn is_created_series(&self, name: &str) -> bool {
        let Some(base) = name.strip_suffix("_created") else {
            return false;
        };
        let has_start_time = |t: Option<MetricType>| {
            matches!(
                t,
                Some(
                    MetricType::Counter
                        | MetricType::Histogram
                        | MetricType::GaugeHistogram
                        | MetricType::Summary
                )
            )
        };
        // 0.0.4 exporters (client_python) type the counter as `<base>_total`.
        has_start_time(self.type_of(base))
            || self.type_of(&format!("{base}_total")) == Some(MetricType::Counter)
    }
}

/// One parsed sample line.
struct Sample<'a> {
    name: Cow<'a, str>,
    value: f64,
    ts_nanos: Option<i64>,
    exemplar: bool,
}

/// Parse an exposition body into a batch.
///
/// # Errors
/// [`Error::BodyTooLarge`], [`Error::TooManySamples`]; for OpenMetrics also
/// [`Error::MissingEof`] and a [`Error::Syntax`] for text after `# EOF`. Bad lines and
/// invalid series are counted in the report instead.
pub fn decode<'a>(body: &'a str, opts: &Options<'a>, limits: &Limits) -> Result<Decoded<'a>> {
    if body.len() > limits.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: body.len() as u64,
            limit: limits.max_body_bytes,
        });
    }
    let om = opts.format == Format::OpenMetrics;
    let mut out = Decoded::new(limits);
    let mut budget = SampleBudget::new(limits);
    let mut families = Families::default();
    // Reused for every line: the exposed labels before target labels are merged in.
    let mut labels: Vec<LabelRef<'a>> = Vec::new();
    let mut eof = false;
    for (i, raw) in body.split_terminator('\n').enumerate() {
        let line_no = i + 1;
        if eof {
            return Err(Error::Syntax {
                line: line_no,
                reason: "text after \"# EOF\"".into(),
            });
        }
        // 0.0.4 parsers tolerate CRLF; OpenMetrics forbids `\r`, so it fails the line there.
        let line = if om {
            raw
        } else {
            raw.strip_suffix('\r').unwrap_or(raw)
        };
        let res = if line.trim_matches([' ', '\t']).is_empty() {
            if om {
                Err("blank lines are not allowed in OpenMetrics".to_owned())
            } else {
                Ok(())
            }
        } else if let Some(comment) = line.strip_prefix('#') {
            parse_comment(comment, om, &mut families, &mut eof)
        } else {
            labels.clear();
            match parse_sample(line, om, &mut labels) {
                Ok(s) => {
                    if s.exemplar {
                        out.report.skip("exemplar", 1);
                    }
                    if families.is_created_series(&s.name) {
                        out.report.skip("created", 1);
                    } else {
                        budget.take(1)?;
                        let ts = match s.ts_nanos {
                            Some(ts) if opts.honor_timestamps => ts,
                            _ => opts.default_ts_nanos,
                        };
                        add_series(&mut out, s.name, &mut labels, opts, ts, s.value, line_no);
                    }
                    Ok(())
                }
                Err(reason) => Err(reason),
            }
        };
        if let Err(reason) = res {
            out.report.reject(&Error::Syntax {
                line: line_no,
                reason,
            });
        }
    }
    if om && !eof {
        return Err(Error::MissingEof);
    }
    for f in families.list {
        out.batch.push_metadata(Metadata {
            metric_family: f.name,
            metric_type: f.ty.unwrap_or_default(),
            help: f.help.unwrap_or_default(),
            unit: f.unit.unwrap_or_default(),
        });
    }
    Ok(out.done())
}

/// Merge target labels into the exposed ones and commit the series (or count why not).
fn add_series<'a>(
    out: &mut Decoded<'a>,
    name: Cow<'a, str>,
    exposed: &mut Vec<LabelRef<'a>>,
    opts: &Options<'a>,
    ts_nanos: i64,
    value: f64,
    line_no: usize,
) {
    merge_target_labels(exposed, opts.target_labels, opts.honor_labels);
    let mut s = out.batch.series();
    s.label(Cow::Borrowed(METRIC_NAME), name.clone());
    for l in exposed.drain(..) {
        s.label(l.name, l.value);
    }
    s.float(ts_nanos, value);
    if let Err(source) = s.finish() {
        out.report.reject(&Error::InvalidSeries {
            series: format!("on line {line_no} ({})", truncate(&name)),
            source,
        });
    }
}

/// Apply Prometheus' target-label rules to `exposed` (which then holds the full label set
/// except `__name__`).
fn merge_target_labels<'a>(
    exposed: &mut Vec<LabelRef<'a>>,
    target: &'a [(String, String)],
    honor_labels: bool,
) {
    let present =
        |v: &[LabelRef<'a>], n: &str| v.iter().any(|l| l.name == n && !l.value.is_empty());
    // Exposed labels that clash with a target label; renamed after all targets are in.
    let mut conflicting: Vec<LabelRef<'a>> = Vec::new();
    for (name, value) in target {
        if value.is_empty() {
            continue;
        }
        if present(exposed, name) {
            if honor_labels {
                continue;
            }
            if let Some(i) = exposed.iter().position(|l| l.name == name.as_str()) {
                conflicting.push(exposed.swap_remove(i));
            }
        }
        exposed.push(LabelRef::new(Cow::Borrowed(name.as_str()), value.as_str()));
    }
    for l in conflicting {
        let mut new_name = format!("exported_{}", l.name);
        while present(exposed, &new_name) {
            new_name.insert_str(0, "exported_");
        }
        exposed.push(LabelRef::new(new_name, l.value));
    }
}

/// Handle a `#` line (the `#` already stripped): HELP, TYPE, UNIT, EOF or a comment.
fn parse_comment(
    rest: &str,
    om: bool,
    families: &mut Families,
    eof: &mut bool,
) -> Result<(), String> {
    let rest = rest.trim_start_matches([' ', '\t']);
    if rest == "EOF" && om {
        *eof = true;
        return Ok(());
    }
    let (keyword, after) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let kind = match keyword {
        "HELP" | "TYPE" => keyword,
        "UNIT" if om => keyword,
        // Any other comment is free text in 0.0.4; OpenMetrics readers ignore it too.
        _ => return Ok(()),
    };
    let mut c = Cursor::new(after);
    c.skip_ws();
    let name = if c.peek() == Some(b'"') {
        c.quoted()?
    } else {
        let n = c.metric_name();
        if n.is_empty() {
            return Err(format!("{kind} line without a metric name"));
        }
        Cow::Borrowed(n)
    };
    let text = c.rest();
    // One separator after the name; the rest is the text, spaces included.
    let text = match text.as_bytes().first() {
        Some(b' ' | b'\t') => &text[1..],
        None => "",
        Some(_) => return Err(format!("{kind} line: no space after the metric name")),
    };
    match kind {
        "HELP" => {
            let fam = families.get_mut(&name);
            if fam.help.is_some() {
                return Err(format!("second HELP line for {:?}", truncate(&name)));
            }
            fam.help = Some(lexer::unescape_help(text, om).into_owned());
        }
        "TYPE" => {
            let word = text.trim_matches([' ', '\t']);
            let ty = match (word, om) {
                ("untyped", true) | ("unknown", false) => None,
                ("gaugehistogram" | "info" | "stateset", false) => None,
                _ => MetricType::parse(word),
            };
            let Some(ty) = ty else {
                return Err(format!("unknown metric type {:?}", truncate(word)));
            };
            let fam = families.get_mut(&name);
            if fam.ty.is_some() {
                return Err(format!("second TYPE line for {:?}", truncate(&name)));
            }
            fam.ty = Some(ty);
        }
        _ => {
            let unit = text.trim_matches([' ', '\t']);
            if !unit.is_empty() && !name.ends_with(&format!("_{unit}")) {
                return Err(format!(
                    "metric name {:?} does not end with its unit {:?}",
                    truncate(&name),
                    truncate(unit)
                ));
            }
            families.get_mut(&name).unit = Some(unit.to_owned());
        }
    }
    Ok(())
}

/// Parse `name{labels} value [timestamp] [# exemplar]`; exposed labels go to `labels`.
fn parse_sample<'a>(
    line: &'a str,
    om: bool,
    labels: &mut Vec<LabelRef<'a>>,
) -> Result<Sample<'a>, String> {
    let mut c = Cursor::new(line);
    let mut name: Option<Cow<'a, str>> = None;
    if c.peek() != Some(b'{') {
        let n = c.metric_name();
        if n.is_empty() {
            return Err(format!(
                "expected a metric name at {:?}",
                truncate(c.rest())
            ));
        }
        name = Some(Cow::Borrowed(n));
    }
    if c.eat(b'{') {
        parse_labels(&mut c, om, &mut name, labels)?;
    }
    let Some(name) = name else {
        return Err("no metric name inside the braces".into());
    };
    if c.at_end() {
        return Err("missing value".into());
    }
    if !c.skip_ws() {
        return Err(format!(
            "expected a space before the value at {:?}",
            truncate(c.rest())
        ));
    }
    if c.at_end() {
        return Err("missing value".into());
    }
    let tok = c.token();
    let value =
        lexer::parse_float(tok).ok_or_else(|| format!("invalid value {:?}", truncate(tok)))?;
    c.skip_ws();
    let mut ts_nanos = None;
    let mut exemplar = false;
    if !c.at_end() && c.peek() != Some(b'#') {
        let tok = c.token();
        let ts = if om {
            lexer::parse_seconds(tok)
        } else {
            tok.parse::<i64>().ok().map(millis_to_nanos)
        };
        ts_nanos = Some(ts.ok_or_else(|| format!("invalid timestamp {:?}", truncate(tok)))?);
        c.skip_ws();
    }
    if c.peek() == Some(b'#') && om {
        // Exemplars are not stored; the line's sample still counts.
        exemplar = true;
    } else if !c.at_end() {
        return Err(format!(
            "unexpected text {:?} after the sample",
            truncate(c.rest())
        ));
    }
    Ok(Sample {
        name,
        value,
        ts_nanos,
        exemplar,
    })
}

/// Parse the label set after `{` up to and including `}`.
fn parse_labels<'a>(
    c: &mut Cursor<'a>,
    om: bool,
    name: &mut Option<Cow<'a, str>>,
    labels: &mut Vec<LabelRef<'a>>,
) -> Result<(), String> {
    let mut first = true;
    loop {
        c.skip_ws();
        if c.eat(b'}') {
            if !first && om {
                return Err("trailing comma in label set".into());
            }
            return Ok(());
        }
        let (label, quoted) = if c.peek() == Some(b'"') {
            (c.quoted()?, true)
        } else {
            let n = c.label_name();
            if n.is_empty() {
                return Err(format!("expected a label name at {:?}", truncate(c.rest())));
            }
            (Cow::Borrowed(n), false)
        };
        c.skip_ws();
        if quoted && first && name.is_none() && matches!(c.peek(), Some(b',' | b'}')) {
            // `{"my.metric", …}`: a lone quoted string first is the metric name.
            *name = Some(label);
        } else {
            if !c.eat(b'=') {
                return Err(format!("expected '=' after label {:?}", truncate(&label)));
            }
            c.skip_ws();
            if c.peek() != Some(b'"') {
                return Err(format!(
                    "expected a quoted value for label {:?}",
                    truncate(&label)
                ));
            }
            let value = c.quoted()?;
            labels.push(LabelRef::new(label, value));
        }
        first = false;
        c.skip_ws();
        if c.eat(b',') {
            // A trailing comma is allowed in 0.0.4 (checked at the closing brace for OM).
            c.skip_ws();
            if c.peek() == Some(b'}') && om {
                return Err("trailing comma in label set".into());
            }
            continue;
        }
        if c.eat(b'}') {
            return Ok(());
        }
        return Err(format!("expected ',' or '}}' at {:?}", truncate(c.rest())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmc_model::Labels;

    fn parse(text: &str, format: Format) -> Decoded<'_> {
        decode(text, &Options::new(format, 7), &Limits::default()).unwrap()
    }

    fn all(d: &Decoded<'_>) -> Vec<(String, f64, i64)> {
        d.batch
            .iter()
            .map(|s| {
                (
                    s.to_labels().to_string(),
                    s.floats[0].value,
                    s.floats[0].ts_nanos,
                )
            })
            .collect()
    }

    #[test]
    fn parses_prometheus_text() {
        let text = "# HELP http_requests_total The total.\\nSecond line \\\\ x\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\",} 1027 1395066363000\n\
                    http_requests_total{method=\"get\", code=\"400\"}    3   1395066363000\n\
                    \n\
                    # A normal comment\n\
                    msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                    metric_without_timestamp_and_labels 12.47\n\
                    something_weird{problem=\"division by zero\"} +Inf -3982045\n\
                    nan_value NaN\n";
        let d = parse(text, Format::Prometheus);
        assert!(d.report.is_clean(), "{}", d.report);
        let got = all(&d);
        assert_eq!(got.len(), 6);
        assert_eq!(
            got[0],
            (
                "http_requests_total{code=\"200\", method=\"post\"}".to_string(),
                1027.0,
                1_395_066_363_000_000_000
            )
        );
        let s = d.batch.get(2).unwrap();
        assert_eq!(s.label("path"), Some("C:\\DIR\\FILE.TXT"));
        assert_eq!(s.label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
        assert_eq!(got[3].2, 7, "default timestamp");
        assert_eq!(got[4].1, f64::INFINITY);
        assert_eq!(got[4].2, -3_982_045_000_000);
        assert!(got[5].1.is_nan());
        let md = &d.batch.metadata()[0];
        assert_eq!(md.metric_type, MetricType::Counter);
        assert_eq!(md.help, "The total.\nSecond line \\ x");
    }

    #[test]
    fn parses_openmetrics_with_units_exemplars_and_created() {
        let text = "# TYPE acme_http_router_request_seconds summary\n\
                    # UNIT acme_http_router_request_seconds seconds\n\
                    # HELP acme_http_router_request_seconds Latency \\\"quoted\\\".\n\
                    acme_http_router_request_seconds_sum{path=\"/api/v1\"} 9036.32 1520879607.789\n\
                    acme_http_router_request_seconds_count{path=\"/api/v1\"} 807283.0\n\
                    acme_http_router_request_seconds_created{path=\"/api/v1\"} 1605281325.0\n\
                    # TYPE foo counter\n\
                    foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
                    foo_created 1520430000.123\n\
                    # EOF\n";
        let d = parse(text, Format::OpenMetrics);
        assert!(d.report.is_clean(), "{}", d.report);
        assert_eq!(d.batch.len_series(), 3);
        assert_eq!(d.report.skipped["created"], 2);
        assert_eq!(d.report.skipped["exemplar"], 1);
        let s = d.batch.get(0).unwrap();
        assert_eq!(s.floats[0].ts_nanos, 1_520_879_607_789_000_000);
        let md = &d.batch.metadata()[0];
        assert_eq!(md.unit, "seconds");
        assert_eq!(md.help, "Latency \"quoted\".");
    }

    #[test]
    fn openmetrics_requires_eof_and_nothing_after_it() {
        let opts = Options::new(Format::OpenMetrics, 0);
        let lim = Limits::default();
        assert!(matches!(
            decode("a 1\n", &opts, &lim),
            Err(Error::MissingEof)
        ));
        assert!(matches!(
            decode("a 1\n# EOF\nb 2\n", &opts, &lim),
            Err(Error::Syntax { line: 3, .. })
        ));
        assert!(decode("a 1\n# EOF", &opts, &lim).is_ok());
        let d = decode("a{x=\"1\",} 1\n# EOF\n", &opts, &lim).unwrap();
        assert_eq!(d.report.rejected["syntax"], 1, "no trailing comma in OM");
    }

    #[test]
    fn quoted_utf8_names() {
        let text = "{\"my.metric\", \"a.b\"=\"x\"} 1\n\"other.metric\"{} 2\n";
        let d = parse(text, Format::Prometheus);
        assert_eq!(
            d.batch.get(0).unwrap().label(METRIC_NAME),
            Some("my.metric")
        );
        assert_eq!(d.batch.get(0).unwrap().label("a.b"), Some("x"));
        // A quoted name before the braces is not valid syntax.
        assert_eq!(d.report.rejected["syntax"], 1);
    }

    #[test]
    fn target_labels_win_and_exposed_become_exported() {
        let target = vec![
            ("instance".to_string(), "h:9100".to_string()),
            ("job".to_string(), "node".to_string()),
        ];
        let text = "up{job=\"x\",exported_job=\"y\"} 1\n";
        let mut opts = Options::new(Format::Prometheus, 0);
        opts.target_labels = &target;
        let d = decode(text, &opts, &Limits::default()).unwrap();
        let l = d.batch.get(0).unwrap().to_labels();
        assert_eq!(
            l,
            Labels::from_pairs([
                ("__name__", "up"),
                ("exported_exported_job", "x"),
                ("exported_job", "y"),
                ("instance", "h:9100"),
                ("job", "node"),
            ])
        );
        opts.honor_labels = true;
        let d = decode(text, &opts, &Limits::default()).unwrap();
        let l = d.batch.get(0).unwrap().to_labels();
        assert_eq!(l.get("job"), Some("x"));
        assert_eq!(l.get("instance"), Some("h:9100"));
    }

    #[test]
    fn bad_lines_are_reported_with_line_numbers() {
        let text = "ok 1\nbad{ 1\nalso_bad\n# TYPE x nonsense\nok2 2\nno_ts 1 abc\n";
        let d = parse(text, Format::Prometheus);
        assert_eq!(d.batch.len_series(), 2);
        assert_eq!(d.report.rejected["syntax"], 4);
        let lines: Vec<_> = d
            .report
            .messages
            .iter()
            .map(|m| m.split(':').next())
            .collect();
        assert_eq!(
            lines,
            vec![
                Some("line 2"),
                Some("line 3"),
                Some("line 4"),
                Some("line 6")
            ]
        );
    }

    #[test]
    fn honor_timestamps_false_uses_scrape_time() {
        let mut opts = Options::new(Format::Prometheus, 99);
        opts.honor_timestamps = false;
        let d = decode("a 1 123\n", &opts, &Limits::default()).unwrap();
        assert_eq!(d.batch.get(0).unwrap().floats[0].ts_nanos, 99);
    }

    #[test]
    fn content_type_picks_format() {
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4"),
            Format::Prometheus
        );
        assert_eq!(Format::from_content_type(""), Format::Prometheus);
    }
}
