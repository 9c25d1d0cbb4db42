//! Byte cursor and token helpers for the text formats: names, quoted strings with
//! Prometheus escapes (borrowed when there is nothing to unescape), floats, timestamps.

use std::borrow::Cow;

use gmc_model::NANOS_PER_SEC;

use crate::error::truncate;

/// A cursor over one line. Positions only ever stop at ASCII bytes, so slicing is safe.
#[derive(Debug)]
pub(super) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// Consume `c` if it is next.
    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skip spaces and tabs; whether any were skipped.
    pub(super) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn take_while(&mut self, ok: impl Fn(u8, bool) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !ok(c, self.pos == start) {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A legacy metric name `[a-zA-Z_:][a-zA-Z0-9_:]*` (empty if none).
    pub(super) fn metric_name(&mut self) -> &'a str {
        self.take_while(|c, first| {
            c.is_ascii_alphabetic() || c == b'_' || c == b':' || (!first && c.is_ascii_digit())
        })
    }

    /// A legacy label name `[a-zA-Z_][a-zA-Z0-9_]*` (empty if none).
    pub(super) fn label_name(&mut self) -> &'a str {
        self.take_while(|c, first| {
            c.is_ascii_alphabetic() || c == b'_' || (!first && c.is_ascii_digit())
        })
    }

    /// Everything up to the next space, tab or the end.
    pub(super) fn token(&mut self) -> &'a str {
        self.take_while(|c, _| c != b' ' && c != b'\t')
    }

    /// A double-quoted string at the cursor, unescaping `\\`, `\"` and `\n`; other escapes
    /// are kept as written, like Prometheus' parser does.
    pub(super) fn quoted(&mut self) -> Result<Cow<'a, str>, String> {
        if !self.eat(b'"') {
            return Err("expected '\"'".into());
        }
        let start = self.pos;
        let bytes = self.s.as_bytes();
        // Fast path: no escapes, borrow the text.
        let mut i = start;
        while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\\' {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'"' {
            self.pos = i + 1;
            return Ok(Cow::Borrowed(&self.s[start..i]));
        }
        let mut out = String::with_capacity(i - start + 16);
        let mut chunk = start;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    out.push_str(&self.s[chunk..i]);
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    out.push_str(&self.s[chunk..i]);
                    match bytes.get(i + 1) {
                        Some(b'\\') => out.push('\\'),
                        Some(b'"') => out.push('"'),
                        Some(b'n') => out.push('\n'),
                        Some(_) => {
                            // Unknown escape: keep the backslash, read the next char normally.
                            out.push('\\');
                            i += 1;
                            chunk = i;
                            continue;
                        }
                        None => break,
                    }
                    i += 2;
                    chunk = i;
                }
                _ => i += 1,
            }
        }
        Err(format!(
            "unterminated quoted string {:?}",
            truncate(&self.s[start..])
        ))
    }
}

/// Unescape HELP text: `\\` and `\n` in 0.0.4, also `\"` in OpenMetrics.
pub(super) fn unescape_help(s: &str, om: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if om => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Parse a sample value: decimal floats, `NaN`, `+Inf`, `-Inf`, and any case of
/// `inf`/`infinity`/`nan` as OpenMetrics allows. Go's ParseFloat (behind 0.0.4 parsers)
/// also takes hex floats, which no exporter emits; those are refused here.
pub(super) fn parse_float(tok: &str) -> Option<f64> {
    tok.parse::<f64>().ok()
}

/// Parse OpenMetrics seconds (`1520879607.789`) to nanoseconds, exactly for plain decimals.
#[allow(clippy::cast_possible_truncation)] // the f64 path is range-checked before the cast
pub(super) fn parse_seconds(tok: &str) -> Option<i64> {
    let (neg, body) = match tok.as_bytes().first()? {
        b'-' => (true, &tok[1..]),
        b'+' => (false, &tok[1..]),
        _ => (false, tok),
    };
    let plain = !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    if !plain {
        // Exponent forms: go through f64 (precision is then that of the float).
        let f = tok.parse::<f64>().ok()?;
        let ns = (f * NANOS_PER_SEC as f64).round();
        return (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64);
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let secs: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    // Digit weights of the first nine fractional digits; later digits are below 1 ns.
    const WEIGHTS: [i64; 9] = [
        100_000_000,
        10_000_000,
        1_000_000,
        100_000,
        10_000,
        1_000,
        100,
        10,
        1,
    ];
    let nanos: i64 = frac
        .bytes()
        .zip(WEIGHTS)
        .map(|(d, w)| i64::from(d - b'0') * w)
        .sum();
    let v = secs.checked_mul(NANOS_PER_SEC)?.checked_add(nanos)?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_borrows_without_escapes() {
        let mut c = Cursor::new("\"abc\" rest");
        assert!(matches!(c.quoted(), Ok(Cow::Borrowed("abc"))));
        assert_eq!(c.rest(), " rest");
        let mut c = Cursor::new(r#""a\"b\\c\nd\te""#);
        assert_eq!(c.quoted().unwrap(), "a\"b\\c\nd\\te");
        assert!(c.at_end());
        assert!(Cursor::new("\"abc").quoted().is_err());
        assert!(Cursor::new("\"abc\\").quoted().is_err());
        assert_eq!(Cursor::new("\"é\\\\ü\"").quoted().unwrap(), "é\\ü");
    }

    #[test]
    fn seconds_parse_exactly() {
        assert_eq!(
            parse_seconds("1520879607.789"),
            Some(1_520_879_607_789_000_000)
        );
        assert_eq!(parse_seconds("1.0000000019"), Some(1_000_000_001));
        assert_eq!(parse_seconds("-1.5"), Some(-1_500_000_000));
        assert_eq!(parse_seconds("1.5e3"), Some(1_500_000_000_000));
        assert_eq!(parse_seconds("."), None);
        assert_eq!(parse_seconds("1.2.3"), None);
        assert_eq!(parse_seconds("99999999999999999999"), None);
        assert_eq!(parse_seconds("abc"), None);
    }

    #[test]
    fn floats_accept_prometheus_specials() {
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float("1,5"), None);
    }
}
