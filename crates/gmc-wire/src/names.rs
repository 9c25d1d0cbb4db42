//! Prometheus name rules for formats whose names are free-form (Influx, JSON push):
//! characters outside the legacy sets become `_`, and a leading digit gets a `_` prefix.

use std::borrow::Cow;

/// Whether `c` may appear in a metric name (`[a-zA-Z0-9_:]`, not first when a digit).
#[inline]
fn metric_char(c: u8, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || (!first && c.is_ascii_digit())
}

/// Whether `c` may appear in a label name (`[a-zA-Z0-9_]`, not first when a digit).
#[inline]
fn label_char(c: u8, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || (!first && c.is_ascii_digit())
}

fn sanitize<'a>(s: Cow<'a, str>, ok: fn(u8, bool) -> bool) -> Cow<'a, str> {
    let valid = !s.is_empty() && s.bytes().enumerate().all(|(i, c)| ok(c, i == 0));
    if valid {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 1);
    if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    // Per char, not per byte, so one multi-byte character becomes one `_`.
    for c in s.chars() {
        let keep = c.is_ascii() && ok(c as u8, false);
        out.push(if keep { c } else { '_' });
    }
    Cow::Owned(out)
}

/// Make `s` a valid metric name, borrowing when it already is one.
pub(crate) fn metric_name(s: Cow<'_, str>) -> Cow<'_, str> {
    sanitize(s, metric_char)
}

/// Make `s` a valid label name, borrowing when it already is one.
pub(crate) fn label_name(s: Cow<'_, str>) -> Cow<'_, str> {
    sanitize(s, label_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_only_when_needed() {
        assert!(matches!(
            metric_name("cpu:usage_1".into()),
            Cow::Borrowed(_)
        ));
        assert_eq!(metric_name("cpu.usage-%".into()), "cpu_usage__");
        assert_eq!(metric_name("1m_load".into()), "_1m_load");
        assert_eq!(label_name("host:name".into()), "host_name");
        assert_eq!(label_name("héllo".into()), "h_llo");
        assert_eq!(label_name("".into()), "");
    }
}
