//! JSON encoding of query results exactly as Prometheus writes them: sample values as
//! strings in Go's shortest form, timestamps as seconds with millisecond precision, native
//! histograms as bucket lists. Written by hand into one buffer because a large matrix is
//! millions of points and a generic serializer would build a tree of values first.

use std::fmt::Write as _;

use gmc_model::{Histogram, Labels};

/// Append `v` the way Prometheus' `jsonutil.MarshalValue` does (without quotes): Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`, or `'e'` when `|v| < 1e-6` or `|v| ≥ 1e21`.
///
/// The shortest round-tripping digits come from `zmij`; only their layout is done here.
/// Why not `format!("{v}")`: a range answer is mostly floats, and core's formatter took
/// ~13 % of a 5,000-point range query's CPU (grisu plus the `fmt` machinery), about three
/// times what `zmij` and this layout take.
pub(crate) fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let mut buf = zmij::Buffer::new();
        let s = buf.format_finite(v);
        // zmij writes without an exponent only for magnitudes inside Go's 'f' range,
        // where the two layouts agree but for zmij's ".0" on integers. With one, its
        // mantissa has a single digit before the point, as Go's 'e' has.
        let Some((mantissa, exp)) = s.split_once('e') else {
            out.push_str(s.strip_suffix(".0").unwrap_or(s));
            return;
        };
        let exp: i32 = exp.parse().unwrap_or(0);
        let abs = v.abs();
        if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            // Go writes the exponent with a sign and at least two digits.
            out.push_str(mantissa);
            out.push_str(if exp < 0 { "e-" } else { "e+" });
            let e = exp.unsigned_abs();
            if e < 10 {
                out.push('0');
            }
            out.push_str(itoa::Buffer::new().format(e));
        } else {
            push_positional(out, mantissa, exp);
        }
    }
}

/// Go's `'f'` layout of `mantissa × 10^exp`, `mantissa` being `[-]d[.ddd]` without
/// trailing zeros: no exponent, no point for integers (`15000000000000000`, `0.0000015`).
fn push_positional(out: &mut String, mantissa: &str, exp: i32) {
    let mantissa = match mantissa.strip_prefix('-') {
        Some(m) => {
            out.push('-');
            m
        }
        None => mantissa,
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let zeros = |out: &mut String, n: usize| out.extend(std::iter::repeat_n('0', n));
    match usize::try_from(exp) {
        Err(_) => {
            out.push_str("0.");
            zeros(out, exp.unsigned_abs() as usize - 1);
            out.push_str(int);
            out.push_str(frac);
        }
        Ok(e) if frac.len() <= e => {
            out.push_str(int);
            out.push_str(frac);
            zeros(out, e - frac.len());
        }
        Ok(e) => {
            let (a, b) = frac.split_at(e);
            out.push_str(int);
            out.push_str(a);
            out.push('.');
            out.push_str(b);
        }
    }
}

/// Append a timestamp in Unix milliseconds as Prometheus' `marshalTimestamp` does:
/// seconds, and a three-digit fraction only when it is not zero.
pub(crate) fn push_timestamp(out: &mut String, ms: i64) {
    let mut t = ms;
    if t < 0 {
        out.push('-');
        t = t.wrapping_neg();
    }
    let mut b = itoa::Buffer::new();
    out.push_str(b.format(t / 1000));
    let frac = (t % 1000).unsigned_abs();
    if frac != 0 {
        let digits = [frac / 100, frac / 10 % 10, frac % 10].map(|d| char::from(b'0' + d as u8));
        out.push('.');
        out.extend(digits);
    }
}

/// Append `[a,b,…]`, writing each item with `each`.
pub(crate) fn push_array<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

/// Append `s` as a JSON string literal.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Append a label set as a JSON object.
pub(crate) fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, name);
        out.push(':');
        push_str(out, value);
    }
    out.push('}');
}

/// Append `[ts,"v"]`.
pub(crate) fn push_point(out: &mut String, ms: i64, v: f64) {
    out.push('[');
    push_timestamp(out, ms);
    out.push_str(",\"");
    push_float(out, v);
    out.push_str("\"]");
}

/// Append `[ts,{"count":..,"sum":..,"buckets":[..]}]`.
pub(crate) fn push_histogram_point(out: &mut String, ms: i64, h: &Histogram) {
    out.push('[');
    push_timestamp(out, ms);
    out.push(',');
    push_histogram(out, h);
    out.push(']');
}

/// Append a native histogram as Prometheus' API does: count, sum and the non-empty
/// buckets as `[boundary_rule, lower, upper, count]`, negative buckets first (most
/// negative first), then the zero bucket, then positive buckets ascending.
/// Boundary rules: 0 = (lower, upper], 1 = [lower, upper), 3 = [lower, upper].
pub(crate) fn push_histogram(out: &mut String, h: &Histogram) {
    out.push_str("{\"count\":\"");
    push_float(out, h.count);
    out.push_str("\",\"sum\":\"");
    push_float(out, h.sum);
    out.push('"');
    let mut buckets: Vec<(u8, f64, f64, f64)> = Vec::new();
    let neg = indexed_buckets(&h.negative_spans, &h.negative_buckets);
    for &(idx, count) in neg.iter().rev() {
        if count != 0.0 {
            let upper = Histogram::bucket_upper_bound(h.schema, idx);
            let lower = Histogram::bucket_upper_bound(h.schema, idx - 1);
            buckets.push((1, -upper, -lower, count));
        }
    }
    if h.zero_count != 0.0 {
        buckets.push((3, -h.zero_threshold, h.zero_threshold, h.zero_count));
    }
    for (idx, count) in indexed_buckets(&h.positive_spans, &h.positive_buckets) {
        if count != 0.0 {
            // Custom buckets carry their bounds (the first from -Inf, the last to +Inf).
            let (lower, upper) = h.positive_bucket_bounds(idx);
            buckets.push((0, lower, upper, count));
        }
    }
    if !buckets.is_empty() {
        out.push_str(",\"buckets\":");
        push_array(out, buckets, |out, (rule, lo, hi, c)| {
            let _ = write!(out, "[{rule},\"");
            push_float(out, lo);
            out.push_str("\",\"");
            push_float(out, hi);
            out.push_str("\",\"");
            push_float(out, c);
            out.push_str("\"]");
        });
    }
    out.push('}');
}

/// `(bucket index, count)` pairs of a span-encoded bucket list (absolute counts).
fn indexed_buckets(spans: &[gmc_model::Span], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut idx: i32 = 0;
    let mut it = counts.iter();
    for (n, span) in spans.iter().enumerate() {
        idx = if n == 0 {
            span.offset
        } else {
            idx.saturating_add(span.offset)
        };
        for _ in 0..span.length {
            match it.next() {
                Some(&c) => out.push((idx, c)),
                None => return out,
            }
            idx = idx.saturating_add(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut s = String::new();
        push_float(&mut s, v);
        s
    }

    fn ts(ms: i64) -> String {
        let mut s = String::new();
        push_timestamp(&mut s, ms);
        s
    }

    #[test]
    fn floats_match_go_strconv() {
        // Expected strings are what Prometheus 2.42 answers for these values.
        assert_eq!(f(1.0), "1");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1.5e-7), "1.5e-07");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(123456.789), "123456.789");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(f(0.1 + 0.2), "0.30000000000000004");
    }

    /// The previous implementation (core's `Display` / `LowerExp`), kept as the oracle of
    /// the layout. Its digits differ from Go's on exact ties between two shortest
    /// candidates, where core rounds up and Go (like `zmij`) to even: see [`same_as_go`].
    fn oracle(v: f64) -> String {
        if v.is_nan() {
            return "NaN".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
        }
        let abs = v.abs();
        if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            let s = format!("{v:e}");
            let (mant, exp) = s.split_once('e').unwrap();
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!(
                "{mant}e{sign}{}{digits}",
                if digits.len() < 2 { "0" } else { "" }
            )
        } else {
            format!("{v}")
        }
    }

    #[test]
    fn floats_equal_the_oracle_at_the_layout_edges() {
        let mut vals = vec![
            0.0,
            -0.0,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
        ];
        for e in -330..=310 {
            for m in [1.0, 1.5, 9.999999999999999, 1.2345678901234567, 5.0] {
                let v: f64 = format!("{m}e{e}").parse().unwrap();
                vals.extend([v, -v, v.next_up(), v.next_down()]);
            }
        }
        for v in vals {
            same_as_go(v);
        }
    }

    /// `f(v)` is the oracle's string, or on a tie the same string with the even one of
    /// the two candidate last digits; either way it reads back as `v`.
    fn same_as_go(v: f64) {
        let (got, want) = (f(v), oracle(v));
        if v.is_finite() {
            assert_eq!(
                got.parse::<f64>().ok().map(f64::to_bits),
                Some(v.to_bits()),
                "{got}"
            );
        }
        if got == want {
            return;
        }
        let (g, w) = (got.as_bytes(), want.as_bytes());
        let i = g.iter().zip(w).position(|(a, b)| a != b).unwrap();
        let tail = |s: &[u8]| {
            s[i + 1..].iter().all(|c| !c.is_ascii_digit() || *c == b'0') || s[i + 1] == b'e'
        };
        assert!(
            g.len() == w.len() && w[i] == g[i] + 1 && g[i] % 2 == 0 && tail(g) && tail(w),
            "{v:e}: {got} against {want}"
        );
    }

    #[test]
    fn ties_round_to_even_as_prometheus_does() {
        // Prometheus 2.42 answers `vector(1500000000000000.25)` with this (checked); the
        // value lies halfway between ...0.2 and ...0.3.
        assert_eq!(f(1.5e15 + 0.25), "1500000000000000.2");
    }

    proptest::proptest! {
        #[test]
        fn floats_equal_the_oracle_for_any_bits(bits in proptest::prelude::any::<u64>()) {
            same_as_go(f64::from_bits(bits));
        }

        #[test]
        fn floats_equal_the_oracle_for_decimals(n in -10_000_000_000i64..10_000_000_000, e in 0u32..12) {
            same_as_go(n as f64 / 10f64.powi(e as i32));
        }
    }

    #[test]
    fn timestamps_are_seconds_with_millis() {
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(1_435_781_451_500), "1435781451.500");
        assert_eq!(ts(1_435_781_451_000), "1435781451");
        assert_eq!(ts(5), "0.005");
        assert_eq!(ts(-1500), "-1.500");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
        let parsed: String = serde_json::from_str(&s).unwrap();
        assert_eq!(parsed, "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn custom_bucket_histogram_json_gives_its_bounds() {
        let h = Histogram {
            schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
            count: 4.0,
            sum: 5.0,
            positive_spans: vec![gmc_model::Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1.0, 2.0, 1.0],
            custom_values: vec![5.0, 10.0],
            ..Histogram::default()
        };
        let mut s = String::new();
        push_histogram(&mut s, &h);
        assert_eq!(
            s,
            "{\"count\":\"4\",\"sum\":\"5\",\"buckets\":[[0,\"-Inf\",\"5\",\"1\"],\
             [0,\"5\",\"10\",\"2\"],[0,\"10\",\"+Inf\",\"1\"]]}"
        );
    }

    #[test]
    fn histogram_json_lists_non_empty_buckets_in_order() {
        let h = Histogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 6.0,
            sum: 3.5,
            positive_spans: vec![gmc_model::Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1.0, 0.0, 2.0],
            negative_spans: vec![gmc_model::Span {
                offset: 1,
                length: 1,
            }],
            negative_buckets: vec![1.0],
            ..Histogram::default()
        };
        let mut s = String::new();
        push_histogram(&mut s, &h);
        assert_eq!(
            s,
            "{\"count\":\"6\",\"sum\":\"3.5\",\"buckets\":[[1,\"-2\",\"-1\",\"1\"],\
             [3,\"-0.001\",\"0.001\",\"2\"],[0,\"0.5\",\"1\",\"1\"],[0,\"2\",\"4\",\"2\"]]}"
        );
    }
}
