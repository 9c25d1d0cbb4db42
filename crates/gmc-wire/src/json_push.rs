//! JSON push for scripts: `{"service": "oms", "timestamp": 1700000000.5, "labels": {…},
//! "metrics": {"cpu_percent": 12.5, "disk_io": {"read_bytes": 1}}}` or an array of such
//! objects. Nested metrics flatten with `_`; every series gets the `service` label.

use std::borrow::Cow;

use gmc_model::{METRIC_NAME, NANOS_PER_SEC};
use serde_json::{Map, Value};

use crate::error::{truncate, Error, Result};
use crate::names;
use crate::report::{Decoded, Limits, SampleBudget};

/// Deepest nesting of `metrics` objects (the `metrics` object itself is level 1).
pub const MAX_DEPTH: usize = 8;

/// Decode a JSON push body; labels are owned, so the batch borrows nothing.
///
/// # Errors
/// [`Error::BodyTooLarge`], [`Error::Json`] when the body is not JSON,
/// [`Error::InvalidObject`] when it is neither an object nor an array, and
/// [`Error::TooManySamples`]. Bad objects and bad metrics are counted in the report.
pub fn decode(body: &[u8], default_ts_nanos: i64, limits: &Limits) -> Result<Decoded<'static>> {
    if body.len() > limits.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: body.len() as u64,
            limit: limits.max_body_bytes,
        });
    }
    let doc: Value = serde_json::from_slice(body).map_err(|source| Error::Json { source })?;
    let mut out = Decoded::new(limits);
    let mut budget = SampleBudget::new(limits);
    match doc {
        Value::Object(o) => push_object(&o, 0, default_ts_nanos, &mut budget, &mut out)?,
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(o) => push_object(o, i, default_ts_nanos, &mut budget, &mut out)?,
                    _ => out.report.reject(&Error::InvalidObject {
                        what: format!("element #{i} is not an object"),
                    }),
                }
            }
        }
        _ => {
            return Err(Error::InvalidObject {
                what: "expected an object or an array of objects".into(),
            })
        }
    }
    Ok(out.done())
}

/// The common part of every series of one object.
struct Header {
    service: String,
    ts_nanos: i64,
    labels: Vec<(String, String)>,
}

/// Validate one push object and add its metrics; a malformed object is counted, not fatal.
fn push_object(
    o: &Map<String, Value>,
    index: usize,
    default_ts_nanos: i64,
    budget: &mut SampleBudget,
    out: &mut Decoded<'static>,
) -> Result<()> {
    let header = match parse_header(o, default_ts_nanos) {
        Ok(h) => h,
        Err(what) => {
            out.report.reject(&Error::InvalidObject {
                what: format!("object #{index}: {what}"),
            });
            return Ok(());
        }
    };
    let Some(Value::Object(metrics)) = o.get("metrics") else {
        out.report.reject(&Error::InvalidObject {
            what: format!("object #{index}: \"metrics\" must be an object"),
        });
        return Ok(());
    };
    let mut flat = Vec::new();
    flatten("", metrics, 1, &mut flat, out);
    budget.take(flat.len())?;
    for (name, value) in flat {
        let name = names::metric_name(Cow::Owned(name)).into_owned();
        let mut s = out.batch.series();
        s.label(METRIC_NAME, name.clone());
        s.label("service", header.service.clone());
        for (k, v) in &header.labels {
            s.label(k.clone(), v.clone());
        }
        s.float(header.ts_nanos, value);
        if let Err(source) = s.finish() {
            out.report.reject(&Error::InvalidSeries {
                series: format!("{} of object #{index}", truncate(&name)),
                source,
            });
        }
    }
    Ok(())
}

fn parse_header(o: &Map<String, Value>, default_ts_nanos: i64) -> Result<Header, String> {
    let service = match o.get("service") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("\"service\" must be a non-empty string".into()),
    };
    let ts_nanos = match o.get("timestamp") {
        None | Some(Value::Null) => default_ts_nanos,
        Some(Value::Number(n)) => seconds_to_nanos(n.as_f64().unwrap_or(f64::NAN))
            .ok_or_else(|| format!("timestamp {n} is out of range"))?,
        Some(_) => return Err("\"timestamp\" must be a number of seconds".into()),
    };
    let mut labels = Vec::new();
    match o.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                // The top-level service wins over a `service` label.
                if k == "service" {
                    continue;
                }
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(format!("label {:?} must be a string", truncate(k))),
                };
                labels.push((names::label_name(Cow::Borrowed(k)).into_owned(), v));
            }
        }
        Some(_) => return Err("\"labels\" must be an object".into()),
    }
    Ok(Header {
        service,
        ts_nanos,
        labels,
    })
}

/// Unix seconds to nanoseconds, keeping microseconds: an f64 holding today's epoch
/// seconds resolves ~0.24 µs, so finer digits are float noise (`.25` must not become
/// `.249999872`). `None` outside the i64 nanosecond range (years 1678..2262).
#[allow(clippy::cast_possible_truncation)] // both parts are range-checked first
fn seconds_to_nanos(secs: f64) -> Option<i64> {
    if !secs.is_finite() || secs.abs() >= 9.2e9 {
        return None;
    }
    let whole = secs.trunc();
    let micros = ((secs - whole) * 1e6).round();
    // Both parts are bounded above, so the casts are exact.
    Some(whole as i64 * NANOS_PER_SEC + micros as i64 * 1_000)
}

/// Flatten nested metric objects into `(name, value)`, rejecting non-numbers one by one.
fn flatten(
    prefix: &str,
    m: &Map<String, Value>,
    depth: usize,
    flat: &mut Vec<(String, f64)>,
    out: &mut Decoded<'static>,
) {
    for (k, v) in m {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}_{k}")
        };
        let value = match v {
            Value::Number(n) => n.as_f64(),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Object(inner) => {
                if depth >= MAX_DEPTH {
                    out.report.reject(&Error::TooDeep {
                        name: truncate(&name),
                        limit: MAX_DEPTH,
                    });
                } else {
                    flatten(&name, inner, depth + 1, flat, out);
                }
                continue;
            }
            Value::Null => None,
            Value::String(_) | Value::Array(_) => None,
        };
        match value {
            Some(v) => flat.push((name, v)),
            None => out.report.reject(&Error::InvalidValue {
                name: truncate(&name),
                reason: match v {
                    Value::Null => "null is not a number",
                    Value::String(_) => "a string is not a number",
                    _ => "an array is not a number",
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_metrics_with_service_and_labels() {
        let body = br#"{"service": "oms", "timestamp": 1700000000.5,
            "labels": {"region": "ld4", "service": "ignored", "shard": 3},
            "metrics": {"cpu_percent": 12.5, "disk_io": {"read_bytes": 1, "ok": true}}}"#;
        let d = decode(body, 0, &Limits::default()).unwrap();
        assert!(d.report.is_clean(), "{}", d.report);
        assert_eq!(d.batch.len_series(), 3);
        // serde_json maps iterate in key order.
        let s = d.batch.get(2).unwrap();
        assert_eq!(s.label(METRIC_NAME), Some("disk_io_read_bytes"));
        assert_eq!(s.label("service"), Some("oms"));
        assert_eq!(s.label("region"), Some("ld4"));
        assert_eq!(s.label("shard"), Some("3"));
        assert_eq!(s.floats[0].ts_nanos, 1_700_000_000_500_000_000);
        assert_eq!(
            d.batch.get(1).unwrap().label(METRIC_NAME),
            Some("disk_io_ok")
        );
        assert_eq!(d.batch.get(1).unwrap().floats[0].value, 1.0);
    }

    #[test]
    fn rejects_bad_values_per_metric_and_bad_objects_per_object() {
        let body = br#"[{"service": "a", "metrics": {"x": null, "y": "s", "z": 1}},
                        {"metrics": {"x": 1}}, 5,
                        {"service": "b", "timestamp": "now", "metrics": {}}]"#;
        let d = decode(body, 7, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 1);
        assert_eq!(d.batch.get(0).unwrap().floats[0].ts_nanos, 7);
        assert_eq!(d.report.rejected["invalid_value"], 2);
        assert_eq!(d.report.rejected["invalid_object"], 3);
    }

    #[test]
    fn timestamps_keep_microseconds() {
        assert_eq!(
            seconds_to_nanos(1_700_000_000.25),
            Some(1_700_000_000_250_000_000)
        );
        assert_eq!(
            seconds_to_nanos(1_700_000_000.1),
            Some(1_700_000_000_100_000_000)
        );
        assert_eq!(seconds_to_nanos(-1.5), Some(-1_500_000_000));
        assert_eq!(seconds_to_nanos(1e300), None);
        assert_eq!(seconds_to_nanos(f64::NAN), None);
    }

    #[test]
    fn depth_limit_applies() {
        let mut inner = String::from("1");
        for i in 0..10 {
            inner = format!("{{\"l{i}\": {inner}}}");
        }
        let body = format!("{{\"service\": \"s\", \"metrics\": {inner}}}");
        let d = decode(body.as_bytes(), 0, &Limits::default()).unwrap();
        assert_eq!(d.report.rejected["too_deep"], 1);
        assert!(d.batch.is_empty());
        assert!(matches!(
            decode(b"{", 0, &Limits::default()),
            Err(Error::Json { .. })
        ));
        assert!(matches!(
            decode(b"3", 0, &Limits::default()),
            Err(Error::InvalidObject { .. })
        ));
    }
}
