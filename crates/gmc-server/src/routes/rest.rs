//! The REST API for humans and scripts: a service's latest values and its history.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::Json;
use gmc_model::{is_stale_nan, Matcher, NANOS_PER_SEC};
use gmc_tsdb::{SampleValue, Series};
use serde::Serialize;
use serde_json::Value;

use crate::api_error::ApiError;
use crate::routes::time_param::{parse_duration, parse_time};
use crate::state::AppState;

/// Most points one history series may return (as Prometheus' 11,000 per series).
const MAX_POINTS_PER_SERIES: i64 = 11_000;
/// Most series one REST answer may carry; beyond it the caller must narrow with `metric`.
const MAX_SERIES: usize = 10_000;

#[derive(Debug, Serialize)]
struct LatestSeries {
    metric: String,
    labels: BTreeMap<String, String>,
    value: Value,
    timestamp: f64,
}

/// Select a service's series by `service` label, falling back to `job`.
fn select_service(
    state: &AppState,
    service: &str,
    extra: Option<Matcher>,
    mint: i64,
    maxt: i64,
) -> Result<Vec<Series>, ApiError> {
    let q = state
        .db
        .querier(mint, maxt)
        .map_err(|e| ApiError::from_class(e.class(), e.to_string()))?;
    for label in ["service", "job"] {
        let mut m = vec![Matcher::equal(label, service)];
        m.extend(extra.clone());
        let series = q
            .select(&m)
            .map_err(|e| ApiError::from_class(e.class(), e.to_string()))?;
        if !series.is_empty() {
            if series.len() > MAX_SERIES {
                return Err(ApiError::bad_request(format!(
                    "service {service:?} has {} series in range, more than {MAX_SERIES}; narrow with ?metric=",
                    series.len()
                )));
            }
            return Ok(series);
        }
    }
    Ok(Vec::new())
}

fn value_json(v: &SampleValue) -> Value {
    match v {
        SampleValue::Float(f) => float_json(*f),
        SampleValue::Histogram(h) => serde_json::json!({
            "count": float_json(h.count),
            "sum": float_json(h.sum),
            "schema": h.schema,
            "zero_count": float_json(h.zero_count),
            "min": h.min.map(float_json),
            "max": h.max.map(float_json),
        }),
    }
}

/// JSON has no NaN or infinities; render them as Prometheus does, as strings.
fn float_json(f: f64) -> Value {
    if f.is_finite() {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    } else if f.is_nan() {
        Value::String("NaN".into())
    } else if f > 0.0 {
        Value::String("+Inf".into())
    } else {
        Value::String("-Inf".into())
    }
}

fn labels_map(s: &Series) -> BTreeMap<String, String> {
    s.labels()
        .iter()
        .filter(|(n, _)| *n != gmc_model::METRIC_NAME)
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// `GET /metrics/{service}?lookback=5m`: the newest value of every live series.
pub(crate) async fn latest(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let lookback = match params.get("lookback") {
        Some(v) => parse_duration("lookback", v)?,
        None => std::time::Duration::from_secs(300),
    };
    let now = gmc_model::now_nanos();
    let mint = now - i64::try_from(lookback.as_nanos()).unwrap_or(i64::MAX / 2);
    let st = state.clone();
    let svc = service.clone();
    let series =
        tokio::task::spawn_blocking(move || select_service(&st, &svc, None, mint, i64::MAX))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
    if series.is_empty() {
        return Err(ApiError::not_found(format!(
            "no series with service or job {service:?} in the last {}",
            humantime::format_duration(lookback)
        )));
    }
    let mut out = Vec::with_capacity(series.len());
    for s in &series {
        let Some(last) = s.iter().last() else {
            continue;
        };
        // A stale marker means the series ended: it has no current value.
        if matches!(last.value, SampleValue::Float(f) if is_stale_nan(f)) {
            continue;
        }
        out.push(LatestSeries {
            metric: s.labels().metric_name().unwrap_or_default().to_owned(),
            labels: labels_map(s),
            value: value_json(&last.value),
            timestamp: last.ts_nanos as f64 / 1e9,
        });
    }
    Ok(Json(serde_json::json!({
        "service": service,
        "series": out,
    })))
}

/// How samples within one step are combined.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Agg {
    Avg,
    Min,
    Max,
    Sum,
    Last,
    Count,
}

impl Agg {
    fn parse(s: &str) -> Result<Agg, ApiError> {
        Ok(match s {
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "sum" => Agg::Sum,
            "last" => Agg::Last,
            "count" => Agg::Count,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid parameter \"agg\": {s:?}; use avg, min, max, sum, last or count"
                )))
            }
        })
    }
}

/// Fold the float samples of one series into step buckets `(start, start+step]`, labelled
/// by their end, as Prometheus' range queries label points.
fn aggregate(s: &Series, from: i64, step: i64, agg: Agg) -> Vec<(f64, Value)> {
    let mut out = Vec::new();
    let mut cur: Option<(i64, f64, f64, f64, f64, u64)> = None; // (bucket end, min, max, sum, last, n)
    let emit = |b: (i64, f64, f64, f64, f64, u64), out: &mut Vec<(f64, Value)>| {
        let (end, min, max, sum, last, n) = b;
        let v = match agg {
            Agg::Avg => sum / n as f64,
            Agg::Min => min,
            Agg::Max => max,
            Agg::Sum => sum,
            Agg::Last => last,
            Agg::Count => n as f64,
        };
        out.push((end as f64 / 1e9, float_json(v)));
    };
    for smp in s.iter() {
        let SampleValue::Float(v) = smp.value else {
            continue;
        };
        if is_stale_nan(v) {
            continue;
        }
        // Bucket k covers (from + (k-1)·step, from + k·step].
        let k = (smp.ts_nanos - from + step - 1).div_euclid(step);
        let end = from + k * step;
        match &mut cur {
            Some(b) if b.0 == end => {
                b.1 = b.1.min(v);
                b.2 = b.2.max(v);
                b.3 += v;
                b.4 = v;
                b.5 += 1;
            }
            _ => {
                if let Some(b) = cur.take() {
                    emit(b, &mut out);
                }
                cur = Some((end, v, v, v, v, 1));
            }
        }
    }
    if let Some(b) = cur {
        emit(b, &mut out);
    }
    out
}

/// `GET /metrics/history/{service}?metric=&from=&to=&step=&agg=`.
pub(crate) async fn history(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let now = gmc_model::now_nanos();
    let to = match params.get("to") {
        Some(v) => parse_time("to", v)?,
        None => now,
    };
    let from = match params.get("from") {
        Some(v) => parse_time("from", v)?,
        None => to - 3600 * NANOS_PER_SEC,
    };
    if to < from {
        return Err(ApiError::bad_request(
            "invalid parameters: \"to\" is before \"from\"",
        ));
    }
    let step = match params.get("step") {
        Some(v) => Some(i64::try_from(parse_duration("step", v)?.as_nanos()).unwrap_or(i64::MAX)),
        None => None,
    };
    if let Some(step) = step {
        if (to - from) / step > MAX_POINTS_PER_SERIES {
            return Err(ApiError::bad_request(format!(
                "exceeded maximum resolution of {MAX_POINTS_PER_SERIES} points per series; use a larger step"
            )));
        }
    }
    let agg = Agg::parse(params.get("agg").map(String::as_str).unwrap_or("avg"))?;
    let metric = params
        .get("metric")
        .map(|m| Matcher::equal(gmc_model::METRIC_NAME, m.as_str()));
    let st = state.clone();
    let svc = service.clone();
    let series = tokio::task::spawn_blocking(move || select_service(&st, &svc, metric, from, to))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    if series.is_empty() {
        return Err(ApiError::not_found(format!(
            "no series with service or job {service:?} between the given times"
        )));
    }
    let mut out = Vec::with_capacity(series.len());
    for s in &series {
        let points: Vec<(f64, Value)> = match step {
            Some(step) => aggregate(s, from, step, agg),
            None => {
                let pts: Vec<_> = s
                    .iter()
                    .filter(|p| !matches!(p.value, SampleValue::Float(f) if is_stale_nan(f)))
                    .take(MAX_POINTS_PER_SERIES as usize + 1)
                    .map(|p| (p.ts_nanos as f64 / 1e9, value_json(&p.value)))
                    .collect();
                if pts.len() > MAX_POINTS_PER_SERIES as usize {
                    return Err(ApiError::bad_request(format!(
                        "a series has more than {MAX_POINTS_PER_SERIES} raw points in range; give a step"
                    )));
                }
                pts
            }
        };
        out.push(serde_json::json!({
            "metric": s.labels().metric_name().unwrap_or_default(),
            "labels": labels_map(s),
            "points": points,
        }));
    }
    Ok(Json(serde_json::json!({
        "service": service,
        "from": from as f64 / 1e9,
        "to": to as f64 / 1e9,
        "step": step.map(|s| s as f64 / 1e9),
        "agg": step.map(|_| format!("{agg:?}").to_ascii_lowercase()),
        "series": out,
    })))
}
