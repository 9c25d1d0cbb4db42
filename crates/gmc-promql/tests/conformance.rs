//! Runs Prometheus' own PromQL test scripts (`shared/conformance/promql/*.test`, unmodified)
//! against gmc's engine over a real `gmc_tsdb::Db`, reports pass/fail/skip per file and per
//! case, scores the core float and native-histogram cases of `cases.tsv`, and fails below
//! either recorded baseline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gmc_model::{CounterResetHint, Histogram, Labels, Span, WriteBatch};
use gmc_promql::{Engine, EngineOptions, PointValue, QueryResult, Value};
use gmc_tsdb::{Config, Db, SyncPolicy};

/// Where the scripts live: `GMC_CONFORMANCE_DIR`, else `../../../shared/conformance/promql`
/// from this crate (CI checks the repository out next to `shared`).
fn corpus_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("GMC_CONFORMANCE_DIR") {
        return Some(PathBuf::from(d));
    }
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/promql");
    d.is_dir().then_some(d)
}

// ---------------------------------------------------------------- values and series

#[derive(Debug, Clone)]
enum Val {
    F(f64),
    H(Histogram),
    Skip,
    Stale,
}

fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if let Ok(n) = s.parse::<f64>() {
        let ms = (n * 1000.0).round() as i64;
        return Some(if neg { -ms } else { ms });
    }
    let mut total = 0i64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1
        } else {
            match c {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 604_800_000,
                'y' => 31_536_000_000,
                _ => return None,
            }
        };
        total += n * unit;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(if neg { -total } else { total })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse::<f64>().ok(),
    }
}

fn parse_hist(body: &str) -> Option<Histogram> {
    // body is the text between {{ and }}.
    let mut h = Histogram::default();
    let mut buckets: Vec<f64> = Vec::new();
    let mut nbuckets: Vec<f64> = Vec::new();
    let mut offset = 0i32;
    let mut noffset = 0i32;
    let mut rest = body.trim();
    while !rest.is_empty() {
        let colon = rest.find(':')?;
        let key = rest[..colon].trim();
        rest = rest[colon + 1..].trim_start();
        let value;
        if rest.starts_with('[') {
            let end = rest.find(']')?;
            value = &rest[1..end];
            rest = rest[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = &rest[..end];
            rest = rest[end..].trim_start();
        }
        let list =
            |v: &str| -> Option<Vec<f64>> { v.split_whitespace().map(parse_float).collect() };
        match key {
            "schema" => h.schema = value.parse().ok()?,
            "sum" => h.sum = parse_float(value)?,
            "count" => h.count = parse_float(value)?,
            "z_bucket" => h.zero_count = parse_float(value)?,
            "z_bucket_w" => h.zero_threshold = parse_float(value)?,
            "buckets" => buckets = list(value)?,
            "n_buckets" => nbuckets = list(value)?,
            "offset" => offset = value.parse().ok()?,
            "n_offset" => noffset = value.parse().ok()?,
            "custom_values" => h.custom_values = list(value)?,
            "counter_reset_hint" => {
                h.reset_hint = match value {
                    "gauge" => CounterResetHint::Gauge,
                    "reset" => CounterResetHint::Reset,
                    "not_reset" => CounterResetHint::NotReset,
                    _ => CounterResetHint::Unknown,
                }
            }
            _ => return None,
        }
    }
    if !buckets.is_empty() {
        h.positive_spans = vec![Span {
            offset,
            length: buckets.len() as u32,
        }];
        h.positive_buckets = buckets;
    }
    if !nbuckets.is_empty() {
        h.negative_spans = vec![Span {
            offset: noffset,
            length: nbuckets.len() as u32,
        }];
        h.negative_buckets = nbuckets;
    }
    Some(h)
}

fn hist_add(a: &Histogram, b: &Histogram, sign: f64) -> Histogram {
    let merge = |sa: &[Span], ca: &[f64], sb: &[Span], cb: &[f64]| -> (Vec<Span>, Vec<f64>) {
        let mut m: BTreeMap<i32, f64> = BTreeMap::new();
        let ha = Histogram {
            positive_spans: sa.to_vec(),
            positive_buckets: ca.to_vec(),
            ..Histogram::default()
        };
        let hb = Histogram {
            positive_spans: sb.to_vec(),
            positive_buckets: cb.to_vec(),
            ..Histogram::default()
        };
        for (i, c) in ha.positive_iter() {
            *m.entry(i).or_default() += c;
        }
        for (i, c) in hb.positive_iter() {
            // Reduce b's buckets to a's (coarser or equal) schema.
            let i = if b.schema > a.schema {
                ((i - 1) >> (b.schema - a.schema)) + 1
            } else {
                i
            };
            *m.entry(i).or_default() += sign * c;
        }
        let mut spans: Vec<Span> = Vec::new();
        let mut counts = Vec::new();
        let mut prev: Option<i32> = None;
        for (i, c) in m {
            match prev {
                Some(p) if p + 1 == i => spans.last_mut().unwrap().length += 1,
                Some(p) => spans.push(Span {
                    offset: i - p - 1,
                    length: 1,
                }),
                None => spans.push(Span {
                    offset: i,
                    length: 1,
                }),
            }
            counts.push(c);
            prev = Some(i);
        }
        (spans, counts)
    };
    let (ps, pc) = merge(
        &a.positive_spans,
        &a.positive_buckets,
        &b.positive_spans,
        &b.positive_buckets,
    );
    let (ns, nc) = merge(
        &a.negative_spans,
        &a.negative_buckets,
        &b.negative_spans,
        &b.negative_buckets,
    );
    Histogram {
        schema: a.schema,
        zero_threshold: a.zero_threshold,
        zero_count: a.zero_count + sign * b.zero_count,
        count: a.count + sign * b.count,
        sum: a.sum + sign * b.sum,
        positive_spans: ps,
        positive_buckets: pc,
        negative_spans: ns,
        negative_buckets: nc,
        min: None,
        max: None,
        reset_hint: a.reset_hint,
        custom_values: a.custom_values.clone(),
    }
}

/// Split a value list into items, keeping `{{...}}` groups whole.
fn tokenize_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c == '{' && i + 1 < b.len() && b[i + 1] == b'{' {
            depth += 1;
            cur.push_str("{{");
            i += 2;
            continue;
        }
        if c == '}' && i + 1 < b.len() && b[i + 1] == b'}' && depth > 0 {
            depth -= 1;
            cur.push_str("}}");
            i += 2;
            continue;
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn expand_item(item: &str) -> Result<Vec<Val>, String> {
    if item == "_" {
        return Ok(vec![Val::Skip]);
    }
    if item == "stale" {
        return Ok(vec![Val::Stale]);
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad item {item}"))?;
        return Ok(vec![Val::Skip; n]);
    }
    if item.starts_with("{{") {
        // {{A}}, {{A}}xN, {{A}}+{{B}}xN, {{A}}-{{B}}xN
        let end_a = item.find("}}").ok_or("bad histogram")?;
        let a =
            parse_hist(&item[2..end_a]).ok_or_else(|| format!("unsupported histogram {item}"))?;
        let rest = &item[end_a + 2..];
        if rest.is_empty() {
            return Ok(vec![Val::H(a)]);
        }
        if let Some(n) = rest.strip_prefix('x') {
            let n: usize = n.parse().map_err(|_| "bad count")?;
            return Ok(vec![Val::H(a); n + 1]);
        }
        let sign = if rest.starts_with('+') { 1.0 } else { -1.0 };
        let rest = &rest[1..];
        let end_b = rest.find("}}").ok_or("bad histogram")?;
        let b =
            parse_hist(&rest[2..end_b]).ok_or_else(|| format!("unsupported histogram {item}"))?;
        let n: usize = rest[end_b + 2..]
            .strip_prefix('x')
            .and_then(|n| n.parse().ok())
            .ok_or("bad count")?;
        let mut out = Vec::with_capacity(n + 1);
        let mut cur = a;
        for _ in 0..=n {
            out.push(Val::H(cur.clone()));
            cur = hist_add(&cur, &b, sign);
        }
        return Ok(out);
    }
    if let Some(f) = parse_float(item) {
        return Ok(vec![Val::F(f)]);
    }
    // a+bxn, a-bxn, axn
    let x = item.rfind('x').ok_or_else(|| format!("bad value {item}"))?;
    let n: usize = item[x + 1..]
        .parse()
        .map_err(|_| format!("bad value {item}"))?;
    let head = &item[..x];
    let bytes = head.as_bytes();
    let mut split = None;
    for i in 1..bytes.len() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && bytes[i - 1] != b'e' && bytes[i - 1] != b'E' {
            split = Some(i);
        }
    }
    let (a, b) = match split {
        Some(i) => {
            let a = parse_float(&head[..i]).ok_or_else(|| format!("bad value {item}"))?;
            let b = parse_float(&head[i + 1..]).ok_or_else(|| format!("bad value {item}"))?;
            (a, if bytes[i] == b'-' { -b } else { b })
        }
        None => (
            parse_float(head).ok_or_else(|| format!("bad value {item}"))?,
            0.0,
        ),
    };
    let mut out = Vec::with_capacity(n + 1);
    let mut k = a;
    for _ in 0..=n {
        out.push(Val::F(k));
        k += b;
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out: Vec<u8> = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'"' => out.push(b'"'),
                b'\'' => out.push(b'\''),
                b'x' if i + 3 < b.len() + 1 => {
                    if let Ok(v) = u8::from_str_radix(&s[i + 2..(i + 4).min(s.len())], 16) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                    out.push(b'x');
                }
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `name{a="b", ...} rest`; returns labels and the rest of the line.
fn parse_series_desc(line: &str) -> Result<(Labels, String), String> {
    let line = line.trim();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        let b = rest.as_bytes();
        let mut i = 1;
        let mut items: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut in_q = false;
        while i < b.len() {
            let c = b[i] as char;
            if in_q {
                cur.push(c);
                if c == '\\' && i + 1 < b.len() {
                    cur.push(b[i + 1] as char);
                    i += 2;
                    continue;
                }
                if c == '"' {
                    in_q = false;
                }
            } else if c == '"' {
                in_q = true;
                cur.push(c);
            } else if c == ',' {
                items.push(std::mem::take(&mut cur));
            } else if c == '}' {
                items.push(std::mem::take(&mut cur));
                i += 1;
                break;
            } else {
                cur.push(c);
            }
            i += 1;
        }
        // Byte-wise copy above may split UTF-8; rebuild from the original slice instead.
        let inner_len = i;
        let inner = &rest[1..inner_len - 1];
        items = split_items(inner);
        rest = &rest[inner_len..];
        for it in items {
            let it = it.trim();
            if it.is_empty() {
                continue;
            }
            match it.find('=') {
                Some(eq) if !it[..eq].trim().starts_with('"') || it[..eq].trim().ends_with('"') => {
                    let n = it[..eq].trim().trim_matches('"');
                    let v = it[eq + 1..].trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .ok_or_else(|| format!("bad label {it}"))?;
                    pairs.push((unescape(n), unescape(v)));
                }
                _ => {
                    let n = it.trim_matches('"');
                    pairs.push(("__name__".into(), unescape(n)));
                }
            }
        }
    }
    Ok((Labels::from_pairs(pairs), rest.trim().to_owned()))
}

fn split_items(inner: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut esc = false;
    for c in inner.chars() {
        if in_q {
            cur.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_q = false;
            }
        } else if c == '"' {
            in_q = true;
            cur.push(c);
        } else if c == ',' {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    items
}

fn expand_values(s: &str) -> Result<Vec<Val>, String> {
    let mut out = Vec::new();
    for t in tokenize_values(s) {
        out.extend(expand_item(&t)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------- script model

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug)]
struct Case {
    file: String,
    line: usize,
    query: String,
    outcome: Outcome,
}

struct Expect {
    fail: bool,
    fail_msg: Option<String>,
    fail_re: Option<String>,
    ordered: bool,
    range_vector: Option<(i64, i64, i64)>,
    string: Option<String>,
    scalar: Option<f64>,
    series: Vec<(Labels, Vec<Val>)>,
}

fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let eps = 1e-6;
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn hist_equal(a: &Histogram, b: &Histogram) -> bool {
    type Buckets = Vec<(i32, f64)>;
    let buckets = |h: &Histogram| -> (Buckets, Buckets) {
        (
            h.positive_iter().filter(|(_, c)| *c != 0.0).collect(),
            h.negative_iter().filter(|(_, c)| *c != 0.0).collect(),
        )
    };
    let (ap, an) = buckets(a);
    let (bp, bn) = buckets(b);
    let beq = |x: &[(i32, f64)], y: &[(i32, f64)]| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(p, q)| p.0 == q.0 && almost_equal(p.1, q.1))
    };
    a.schema == b.schema
        && a.custom_values == b.custom_values
        && almost_equal(a.count, b.count)
        && almost_equal(a.sum, b.sum)
        && almost_equal(a.zero_count, b.zero_count)
        && almost_equal(a.zero_threshold, b.zero_threshold)
        && beq(&ap, &bp)
        && beq(&an, &bn)
}

fn val_matches(exp: &Val, got: &PointValue) -> bool {
    match (exp, got) {
        (Val::F(e), PointValue::Float(g)) => almost_equal(*e, *g),
        (Val::H(e), PointValue::Histogram(g)) => hist_equal(e, g),
        _ => false,
    }
}

fn fmt_labels(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn check_result(
    exp: &Expect,
    res: &QueryResult,
    range: Option<(i64, i64, i64)>,
) -> Result<(), String> {
    if let Some(s) = &exp.string {
        return match &res.value {
            Value::String { s: got, .. } if got == s => Ok(()),
            other => Err(format!("expected string {s:?}, got {other:?}")),
        };
    }
    if let Some(x) = exp.scalar {
        return match &res.value {
            Value::Scalar { v, .. } if almost_equal(*v, x) => Ok(()),
            other => Err(format!("expected scalar {x}, got {}", short(other))),
        };
    }
    let grid = range.or(exp.range_vector);
    match (&res.value, grid) {
        (Value::Vector(v), None) => {
            if v.len() != exp.series.len() {
                return Err(format!(
                    "expected {} samples, got {}: {}",
                    exp.series.len(),
                    v.len(),
                    short(&res.value)
                ));
            }
            for (pos, s) in v.iter().enumerate() {
                let Some(idx) = exp.series.iter().position(|(l, _)| *l == s.labels) else {
                    return Err(format!(
                        "unexpected series {}: {}",
                        fmt_labels(&s.labels),
                        short(&res.value)
                    ));
                };
                let want = exp.series[idx].1.first().ok_or("expected value missing")?;
                if !val_matches(want, &s.value) {
                    return Err(format!(
                        "value of {}: expected {want:?}, got {:?}",
                        fmt_labels(&s.labels),
                        s.value
                    ));
                }
                if exp.ordered && idx != pos {
                    return Err(format!(
                        "order: {} at {pos}, expected at {idx}",
                        fmt_labels(&s.labels)
                    ));
                }
            }
            Ok(())
        }
        (Value::Matrix(m), Some((t0, t1, step))) => {
            let want_series: Vec<_> = exp
                .series
                .iter()
                .filter(|(_, vals)| vals.iter().any(|v| !matches!(v, Val::Skip)))
                .collect();
            if m.len() != want_series.len() {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    want_series.len(),
                    m.len(),
                    short(&res.value)
                ));
            }
            for s in m {
                let Some((_, vals)) = want_series.iter().find(|(l, _)| *l == s.labels) else {
                    return Err(format!("unexpected series {}", fmt_labels(&s.labels)));
                };
                let mut want_f = Vec::new();
                let mut want_h = Vec::new();
                let mut t = t0;
                for v in vals.iter() {
                    if t > t1 {
                        break;
                    }
                    match v {
                        Val::F(f) => want_f.push((t, *f)),
                        Val::H(h) => want_h.push((t, h.clone())),
                        _ => {}
                    }
                    t += step;
                }
                let ok_f = want_f.len() == s.floats.len()
                    && want_f
                        .iter()
                        .zip(&s.floats)
                        .all(|(a, b)| a.0 == b.0 && almost_equal(a.1, b.1));
                let ok_h = want_h.len() == s.histograms.len()
                    && want_h
                        .iter()
                        .zip(&s.histograms)
                        .all(|(a, b)| a.0 == b.0 && hist_equal(&a.1, &b.1));
                if !ok_f || !ok_h {
                    return Err(format!(
                        "series {}: expected {:?} {:?}, got {:?} {:?}",
                        fmt_labels(&s.labels),
                        want_f,
                        want_h.len(),
                        s.floats,
                        s.histograms.len()
                    ));
                }
            }
            Ok(())
        }
        (Value::Matrix(m), None) if exp.series.is_empty() && m.is_empty() => Ok(()),
        (Value::Vector(v), Some(_)) if v.is_empty() && exp.series.is_empty() => Ok(()),
        (other, _) => Err(format!("unexpected result type: {}", short(other))),
    }
}

fn short(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 600 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(600).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

// ---------------------------------------------------------------- runner

struct Store {
    _dir: tempfile::TempDir,
    db: Db,
}

fn new_store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        sync: SyncPolicy::None,
        out_of_order_window: Duration::from_secs(100 * 365 * 86_400),
        maintenance_interval: Duration::from_secs(365 * 86_400),
        head_flush_range: Duration::from_secs(100 * 365 * 86_400),
        ..Config::default()
    };
    let db = Db::open(dir.path(), config).unwrap();
    Store { _dir: dir, db }
}

/// Load series; series the store refuses as invalid histograms are left out and their
/// metric names returned.
fn load(
    db: &Db,
    step_ms: i64,
    lines: &[String],
    unsupported: &mut Vec<String>,
) -> Result<(), String> {
    let mut parsed: Vec<(Labels, Vec<Val>)> = Vec::new();
    for l in lines {
        let (labels, rest) = parse_series_desc(l)?;
        let vals = match expand_values(&rest) {
            Ok(v) => v,
            Err(e) if e.starts_with("unsupported histogram") => {
                unsupported.push(labels.metric_name().unwrap_or_default().to_owned());
                continue;
            }
            Err(e) => return Err(e),
        };
        // A repeated series line replaces the earlier one.
        parsed.retain(|(x, _)| *x != labels);
        parsed.push((labels, vals));
    }
    let mut batch = WriteBatch::new();
    for (labels, vals) in &parsed {
        let mut s = batch.series();
        for (n, v) in labels.iter() {
            s.label(n.to_owned(), v.to_owned());
        }
        for (k, v) in vals.iter().enumerate() {
            let t = gmc_model::millis_to_nanos(k as i64 * step_ms);
            match v {
                Val::F(f) => s.float(t, *f),
                Val::Stale => s.float(t, f64::from_bits(gmc_model::STALE_NAN_BITS)),
                Val::H(h) => s.histogram(t, h.clone()),
                Val::Skip => {}
            }
        }
        if let Err(e) = s.finish() {
            // A histogram gmc's model refuses: leave the series out and skip the cases
            // that query it.
            if matches!(e, gmc_model::Error::InvalidHistogram { .. }) {
                unsupported.push(labels.metric_name().unwrap_or_default().to_owned());
                continue;
            }
            return Err(format!("series {}: {e}", fmt_labels(labels)));
        }
    }
    append_all(db, &batch, "")
}

/// `load_with_nhcb`: every classic histogram (`X_bucket{le}`, `X_sum`, `X_count`) of the
/// block is also stored as a custom-bucket native histogram `X`, one per timestamp at
/// which any of its series has a value, as Prometheus' test runner converts them: bounds
/// are the finite `le` values, counts the differences of the cumulative buckets, the
/// count from `X_count` (else the `+Inf` bucket), the sum from `X_sum` (else 0).
fn load_nhcb(db: &Db, step_ms: i64, lines: &[String]) -> Result<(), String> {
    #[derive(Default)]
    struct Temp {
        buckets: BTreeMap<u64, (f64, f64)>,
        count: Option<f64>,
        sum: Option<f64>,
    }
    // (base labels) -> step index -> partial histogram
    let mut hists: BTreeMap<Vec<(String, String)>, BTreeMap<usize, Temp>> = BTreeMap::new();
    for l in lines {
        let (labels, rest) = parse_series_desc(l)?;
        let Some(name) = labels.metric_name() else {
            continue;
        };
        let (base, kind) = if let Some(b) = name.strip_suffix("_bucket") {
            (b, 0)
        } else if let Some(b) = name.strip_suffix("_count") {
            (b, 1)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (b, 2)
        } else {
            continue;
        };
        let le = if kind == 0 {
            match labels.get("le").and_then(parse_float) {
                Some(le) if !le.is_nan() => Some(le),
                _ => continue,
            }
        } else {
            None
        };
        let mut key: Vec<(String, String)> = labels
            .iter()
            .filter(|(n, _)| *n != "le" && *n != "__name__")
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        key.push(("__name__".to_owned(), base.to_owned()));
        key.sort();
        let vals = expand_values(&rest)?;
        let per_ts = hists.entry(key).or_default();
        for (k, v) in vals.iter().enumerate() {
            let Val::F(f) = v else {
                continue;
            };
            let t = per_ts.entry(k).or_default();
            match le {
                // Keyed by the bound's bits, ordered by value below.
                Some(le) => {
                    t.buckets.insert(le.to_bits(), (le, *f));
                }
                None if kind == 1 => t.count = Some(*f),
                None => t.sum = Some(*f),
            }
        }
    }
    let mut batch = WriteBatch::new();
    for (key, per_ts) in &hists {
        let mut s = batch.series();
        for (n, v) in key {
            s.label(n.clone(), v.clone());
        }
        for (k, t) in per_ts {
            let mut buckets: Vec<(f64, f64)> = t.buckets.values().copied().collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let last = buckets.last().map(|b| b.1).unwrap_or(0.0);
            if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                buckets.push((f64::INFINITY, t.count.unwrap_or(last)));
            }
            let count = t
                .count
                .unwrap_or_else(|| buckets.last().map_or(0.0, |b| b.1));
            let mut prev = 0.0;
            let counts: Vec<f64> = buckets
                .iter()
                .map(|(_, c)| {
                    let d = c - prev;
                    prev = *c;
                    d
                })
                .collect();
            let bounds: Vec<f64> = buckets
                .iter()
                .map(|b| b.0)
                .filter(|b| b.is_finite())
                .collect();
            let mut h = Histogram::custom_buckets(&bounds, &counts, t.sum.unwrap_or(0.0));
            h.count = count;
            s.histogram(gmc_model::millis_to_nanos(*k as i64 * step_ms), h);
        }
        s.finish()
            .map_err(|e| format!("NHCB series {key:?}: {e}"))?;
    }
    append_all(db, &batch, "NHCB ")
}

/// Append `batch`; an error if the store refuses it or any of its series (`what` names
/// the kind of series in the message).
fn append_all(db: &Db, batch: &WriteBatch, what: &str) -> Result<(), String> {
    let rep = db.append(batch).map_err(|e| e.to_string())?;
    if let Some(r) = rep.rejected.first() {
        return Err(format!(
            "store rejected {what}series #{}: {:?}",
            r.series_index, r.error
        ));
    }
    Ok(())
}

/// Instant cases re-run as range queries (see `run_eval`).
static RANGE_RERUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn run_eval(
    engine: &Engine,
    db: &Db,
    cmd: &str,
    body: &[String],
    old_fail: bool,
    old_ordered: bool,
) -> Outcome {
    let mut exp = Expect {
        fail: old_fail,
        fail_msg: None,
        fail_re: None,
        ordered: old_ordered,
        range_vector: None,
        string: None,
        scalar: None,
        series: Vec::new(),
    };
    for l in body {
        let l = l.trim();
        if let Some(r) = l.strip_prefix("expect ") {
            let r = r.trim();
            if let Some(f) = r.strip_prefix("fail") {
                exp.fail = true;
                let f = f.trim();
                if let Some(m) = f.strip_prefix("msg:") {
                    exp.fail_msg = Some(m.trim().to_owned());
                } else if let Some(m) = f.strip_prefix("regex:") {
                    exp.fail_re = Some(m.trim().to_owned());
                }
            } else if r == "ordered" {
                exp.ordered = true;
            } else if let Some(rv) = r.strip_prefix("range vector from ") {
                let p: Vec<&str> = rv.split_whitespace().collect();
                if p.len() == 5 {
                    exp.range_vector = Some((
                        parse_duration_ms(p[0]).unwrap_or(0),
                        parse_duration_ms(p[2]).unwrap_or(0),
                        parse_duration_ms(p[4]).unwrap_or(1),
                    ));
                }
            } else if let Some(s) = r.strip_prefix("string ") {
                let s = s.trim();
                // Go string notation: "..." (escapes) or `...` (raw).
                exp.string = Some(
                    match s.strip_prefix('`').and_then(|x| x.strip_suffix('`')) {
                        Some(raw) => raw.to_owned(),
                        None => unescape(s.trim_matches('"')),
                    },
                );
            }
            // warn/info/no_warn/no_info: annotations are not checked.
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message ") {
            exp.fail = true;
            exp.fail_msg = Some(m.trim().to_owned());
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_regexp ") {
            exp.fail = true;
            exp.fail_re = Some(m.trim().to_owned());
            continue;
        }
        if let Some(x) = parse_float(l) {
            exp.scalar = Some(x);
            continue;
        }
        match parse_series_desc(l).and_then(|(labels, rest)| Ok((labels, expand_values(&rest)?))) {
            Ok(s) => exp.series.push(s),
            Err(e) => return Outcome::Skip(format!("harness cannot parse expectation: {e}")),
        }
    }
    // Command: "instant at <t> <q>" or "range from <a> to <b> step <s> <q>".
    let mut instant_at: Option<(i64, String)> = None;
    let (res, range) = if let Some(r) = cmd.strip_prefix("instant at ") {
        let r = r.trim_start();
        let sp = r.find(char::is_whitespace).unwrap_or(r.len());
        let Some(t) = parse_duration_ms(&r[..sp]) else {
            return Outcome::Skip(format!("bad time {}", &r[..sp]));
        };
        instant_at = Some((t, r[sp..].trim().to_owned()));
        (engine.instant_query(db, r[sp..].trim(), t), None)
    } else if let Some(r) = cmd.strip_prefix("range from ") {
        let p: Vec<&str> = r.splitn(6, char::is_whitespace).collect();
        if p.len() < 6 {
            return Outcome::Skip("bad range command".into());
        }
        let (Some(a), Some(b), Some(s)) = (
            parse_duration_ms(p[0]),
            parse_duration_ms(p[2]),
            parse_duration_ms(p[4]),
        ) else {
            return Outcome::Skip("bad range times".into());
        };
        (
            engine.range_query(db, p[5].trim(), a, b, s),
            Some((a, b, s)),
        )
    } else {
        return Outcome::Skip(format!("unknown eval form: {cmd}"));
    };
    match res {
        Err(e) => {
            if !exp.fail {
                return Outcome::Fail(format!("unexpected error: {e}"));
            }
            let msg = e.to_string();
            if let Some(m) = &exp.fail_msg {
                if &msg != m {
                    return Outcome::Fail(format!("error message {msg:?}, expected {m:?}"));
                }
            }
            if let Some(re) = &exp.fail_re {
                match regex::Regex::new(re) {
                    Ok(r) if r.is_match(&msg) => {}
                    _ => {
                        return Outcome::Fail(format!(
                            "error message {msg:?} does not match {re:?}"
                        ))
                    }
                }
            }
            Outcome::Pass
        }
        Ok(r) => {
            if exp.fail {
                return Outcome::Fail(format!("expected an error, got {}", short(&r.value)));
            }
            if let Err(e) = check_result(&exp, &r, range) {
                return Outcome::Fail(e);
            }
            // Like Prometheus' own runner: an instant vector query must give the same answer
            // as the middle step of a range query T-1m..T+1m.
            if let (Some((t, q)), Value::Vector(_)) = (&instant_at, &r.value) {
                let depends_on_range = ["start()", "end()", "step()", "range()"]
                    .iter()
                    .any(|f| q.contains(f));
                if !exp.ordered && !depends_on_range {
                    RANGE_RERUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    match engine.range_query(db, q, t - 60_000, t + 60_000, 60_000) {
                        Err(e) => return Outcome::Fail(format!("range re-run failed: {e}")),
                        Ok(rr) => {
                            let Value::Matrix(m) = rr.value else {
                                return Outcome::Fail("range re-run: not a matrix".into());
                            };
                            let v: Vec<gmc_promql::InstantSample> = m
                                .into_iter()
                                .filter_map(|s| {
                                    let f = s
                                        .floats
                                        .iter()
                                        .find(|p| p.0 == *t)
                                        .map(|p| PointValue::Float(p.1));
                                    let h = s
                                        .histograms
                                        .iter()
                                        .find(|p| p.0 == *t)
                                        .map(|p| PointValue::Histogram(p.1.clone()));
                                    f.or(h).map(|value| gmc_promql::InstantSample {
                                        labels: s.labels,
                                        t_ms: *t,
                                        value,
                                    })
                                })
                                .collect();
                            let as_instant = QueryResult {
                                value: Value::Vector(v),
                                warnings: Vec::new(),
                                stats: Default::default(),
                            };
                            if let Err(e) = check_result(&exp, &as_instant, None) {
                                return Outcome::Fail(format!(
                                    "range re-run (middle step) differs: {e}"
                                ));
                            }
                        }
                    }
                }
            }
            Outcome::Pass
        }
    }
}

fn run_file(engine: &Engine, path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut cases = Vec::new();
    let mut store = new_store();
    let mut load_error: Option<String> = None;
    // Metric names whose data could not be stored: (name, reason).
    let mut missing: Vec<(String, &'static str)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let lineno = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The block: following non-blank lines (comments skipped).
        let mut body = Vec::new();
        let is_cmd = |l: &str| {
            l == "clear"
                || l.starts_with("load ")
                || l.starts_with("load_with_nhcb ")
                || l.starts_with("eval")
        };
        while i < lines.len()
            && !lines[i].trim().is_empty()
            && !is_cmd(lines[i].trim())
            && line != "clear"
        {
            let l = lines[i].trim();
            if !l.starts_with('#') {
                body.push(l.to_owned());
            }
            i += 1;
        }
        if line == "clear" {
            store = new_store();
            load_error = None;
            missing.clear();
            continue;
        }
        if let Some(step) = line
            .strip_prefix("load_with_nhcb ")
            .or_else(|| line.strip_prefix("load "))
        {
            let step = parse_duration_ms(step).unwrap_or(0);
            // Start-timestamp lines (`name@st ...`) are not supported: drop them, and skip
            // the cases that query those metrics.
            for l in &body {
                let head = l.split_whitespace().next().unwrap_or("");
                if head.contains("@st") {
                    let name = head.split(['{', '@']).next().unwrap_or("").to_owned();
                    if !name.is_empty() && !missing.iter().any(|(n, _)| *n == name) {
                        missing.push((
                            name,
                            "needs start timestamps (@st), which gmc's store does not keep",
                        ));
                    }
                }
            }
            let body: Vec<String> = body
                .into_iter()
                .filter(|l| {
                    let head = l.split_whitespace().next().unwrap_or("");
                    !head.contains("@st")
                })
                .collect();
            let mut unsupported = Vec::new();
            if let Err(e) = load(&store.db, step, &body, &mut unsupported) {
                load_error = Some(e);
            }
            if line.starts_with("load_with_nhcb") {
                if let Err(e) = load_nhcb(&store.db, step, &body) {
                    load_error = Some(e);
                }
            }
            for n in unsupported {
                missing.push((n, "data holds a histogram gmc's model refuses"));
            }
            continue;
        }
        let (cmd, old_fail, old_ordered) = if let Some(c) = line.strip_prefix("eval_fail ") {
            (c, true, false)
        } else if let Some(c) = line.strip_prefix("eval_ordered ") {
            (c, false, true)
        } else if let Some(c) = line
            .strip_prefix("eval_warn ")
            .or_else(|| line.strip_prefix("eval_info "))
        {
            (c, false, false)
        } else if let Some(c) = line.strip_prefix("eval ") {
            (c, false, false)
        } else {
            continue;
        };
        let query = cmd.to_owned();
        let needs = missing.iter().find(|(n, _)| mentions_metric(cmd, n));
        let outcome = match (&load_error, needs) {
            (Some(e), _) => Outcome::Skip(format!("data not loadable: {e}")),
            (None, Some((n, why))) => Outcome::Skip(format!("{why} ({n})")),
            (None, None) => {
                let engine = engine.clone();
                let db = &store.db;
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_eval(&engine, db, cmd, &body, old_fail, old_ordered)
                }))
                .unwrap_or_else(|_| Outcome::Fail("engine panicked".into()))
            }
        };
        cases.push(Case {
            file: file.clone(),
            line: lineno,
            query,
            outcome,
        });
    }
    cases
}

/// Whether `query` refers to metric `name` itself (not `name_bucket` etc.).
fn mentions_metric(query: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut from = 0;
    while let Some(p) = query[from..].find(name) {
        let start = from + p;
        let end = start + name.len();
        let before_ok = query[..start].chars().last().is_none_or(|c| !is_ident(c));
        let after_ok = query[end..].chars().next().is_none_or(|c| !is_ident(c));
        if before_ok && after_ok {
            return true;
        }
        from = end;
    }
    false
}

struct Tier {
    core_float: bool,
    native_hist: bool,
}

fn read_tiers(dir: &Path, set: &str) -> HashMap<(String, usize), Tier> {
    let mut m = HashMap::new();
    let Ok(text) = std::fs::read_to_string(dir.join("cases.tsv")) else {
        return m;
    };
    for l in text.lines() {
        if l.starts_with('#') || l.starts_with("set\t") {
            continue;
        }
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() < 8 || f[0] != set {
            continue;
        }
        let file = f[1].rsplit('/').next().unwrap_or(f[1]).to_owned();
        let Ok(line) = f[2].parse::<usize>() else {
            continue;
        };
        m.insert(
            (file, line),
            Tier {
                core_float: f[4] == "core" && f[5] != "new-feature",
                native_hist: f[7].contains("native-histogram"),
            },
        );
    }
    m
}

/// Scores of one suite: `(passed, total)` of its core float cases, of its native-histogram
/// cases (both per `cases.tsv`) and of all its cases.
struct Scores {
    core: (usize, usize),
    native_histogram: (usize, usize),
    all: (usize, usize),
}

/// Runs one suite and scores it.
fn run_suite(engine: &Engine, dir: &Path, set: &str, report: &mut String) -> Scores {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let tiers = read_tiers(
        if set == "main" {
            dir
        } else {
            dir.parent().unwrap_or(dir)
        },
        set,
    );
    let (mut core_pass, mut core_total, mut nh_pass, mut nh_total) = (0, 0, 0, 0);
    let mut all_cases = Vec::new();
    let _ = writeln!(report, "== suite {set} ({}) ==", dir.display());
    for f in &files {
        let cases = run_file(engine, f);
        let p = cases.iter().filter(|c| c.outcome == Outcome::Pass).count();
        let s = cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skip(_)))
            .count();
        let _ = writeln!(
            report,
            "{:<28} pass {:>4}  fail {:>4}  skip {:>4}",
            f.file_name().unwrap().to_string_lossy(),
            p,
            cases.len() - p - s,
            s
        );
        all_cases.extend(cases);
    }
    for c in &all_cases {
        if let Some(t) = tiers.get(&(c.file.clone(), c.line)) {
            let pass = c.outcome == Outcome::Pass;
            if t.core_float {
                core_total += 1;
                core_pass += usize::from(pass);
            }
            if t.native_hist {
                nh_total += 1;
                nh_pass += usize::from(pass);
            }
        }
    }
    let total = all_cases.len();
    let pass = all_cases
        .iter()
        .filter(|c| c.outcome == Outcome::Pass)
        .count();
    let skip = all_cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skip(_)))
        .count();
    let _ = writeln!(
        report,
        "total: {pass} passed, {} failed, {skip} skipped",
        total - pass - skip
    );
    if set == "main" {
        let _ = writeln!(
            report,
            "core float cases (cases.tsv): {core_pass} / {core_total} pass"
        );
        let _ = writeln!(
            report,
            "native-histogram cases (cases.tsv): {nh_pass} / {nh_total} pass"
        );
    }
    let _ = writeln!(report, "-- cases --");
    for c in &all_cases {
        // Tiers describe the main set; the 2.42 set is reported without them.
        let tier = if set == "main" {
            tiers.get(&(c.file.clone(), c.line))
        } else {
            None
        };
        let tag = match tier {
            Some(t) if t.core_float => " [core]",
            Some(t) if t.native_hist => " [nh]",
            _ => "",
        };
        let (st, why) = match &c.outcome {
            Outcome::Pass => ("PASS", String::new()),
            Outcome::Fail(w) => ("FAIL", format!(" -- {w}")),
            Outcome::Skip(w) => ("SKIP", format!(" -- {w}")),
        };
        let _ = writeln!(report, "{st} {}:{}{tag} {}{why}", c.file, c.line, c.query);
    }
    Scores {
        core: (core_pass, core_total),
        native_histogram: (nh_pass, nh_total),
        all: (pass, total),
    }
}

#[test]
fn prometheus_conformance() {
    let Some(dir) = corpus_dir() else {
        println!(
            "SKIPPED: PromQL conformance corpus not found (set GMC_CONFORMANCE_DIR or check out the repository next to shared/conformance/promql)"
        );
        return;
    };
    let engine = Engine::new(EngineOptions {
        max_samples: 10_000_000,
        ..EngineOptions::default()
    });
    let mut report = String::new();
    let scores = run_suite(&engine, &dir, "main", &mut report);
    let v242 = dir.join("v2.42.0");
    if v242.is_dir() {
        run_suite(&engine, &v242, "v2.42.0", &mut report);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let out = target.join("promql-conformance-report.txt");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(&out, &report);
    // Summary lines to stdout (the full per-case list is in the report file).
    for l in report.lines().filter(|l| !l.starts_with("PASS ")) {
        println!("{l}");
    }
    println!(
        "instant cases cross-checked as range queries: {}",
        RANGE_RERUNS.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("full report: {}", out.display());
    let baseline_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-baseline.txt");
    // Non-comment lines: the core float baseline, the native-histogram one, then the one of
    // all main-suite cases (experimental syntax included).
    let baselines: Vec<usize> = std::fs::read_to_string(&baseline_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for (what, (pass, total), baseline) in [
        ("core float", scores.core, baselines.first()),
        (
            "native-histogram",
            scores.native_histogram,
            baselines.get(1),
        ),
        ("all main-suite", scores.all, baselines.get(2)),
    ] {
        let baseline = baseline.copied().unwrap_or(0);
        println!("{what} score: {pass} / {total} (baseline {baseline})");
        assert!(
            pass >= baseline,
            "{what} conformance dropped: {pass} < baseline {baseline}"
        );
        if pass > baseline {
            println!(
                "{what} pass count rose above the baseline: raise it in {}",
                baseline_path.display()
            );
        }
    }
}
