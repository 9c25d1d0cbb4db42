//! The REST API for humans and scripts: a service's latest values and its history.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::Json;
use gmc_model::{is_stale_nan, Matcher, NANOS_PER_SEC};
use gmc_tsdb::block::Resolution;
use gmc_tsdb::downsample::Aggregate;
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
    select_service_with(state, service, extra, mint, maxt, |q, m| q.select(m))
}

/// [`select_service`] with the read done by `read` (raw samples or one rollup aggregate).
fn select_service_with(
    state: &AppState,
    service: &str,
    extra: Option<Matcher>,
    mint: i64,
    maxt: i64,
    read: impl Fn(&gmc_tsdb::Querier, &[Matcher]) -> gmc_tsdb::Result<Vec<Series>>,
) -> Result<Vec<Series>, ApiError> {
    let q = state
        .db
        .querier(mint, maxt)
        .map_err(|e| ApiError::from_class(e.class(), e.to_string()))?;
    for label in ["service", "job"] {
        let mut m = vec![Matcher::equal(label, service)];
        m.extend(extra.clone());
        let series = read(&q, &m).map_err(|e| ApiError::from_class(e.class(), e.to_string()))?;
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
    let series = crate::blocking::run(move || select_service(&st, &svc, None, mint, i64::MAX))
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

/// Fold `(ts, value, weight)` points, in time order, into step buckets `[from + k·step,
/// from + (k+1)·step)`, each labelled by its end. Left-closed like the store's rollups (a
/// rollup stamped `T` covers `[T − resolution, T)`), so raw and rollup answers agree
/// exactly when `from` and `step` are whole minutes. `avg` divides the bucket's sum by
/// its summed weights and `count` reports them: raw samples weigh 1, rollup sums weigh
/// their bucket's count.
fn fold_buckets(
    points: impl Iterator<Item = (i64, f64, f64)>,
    from: i64,
    step: i64,
    agg: Agg,
) -> Vec<(f64, Value)> {
    // (bucket end, min, max, sum, last, weight)
    type Acc = (i64, f64, f64, f64, f64, f64);
    let emit = |(end, min, max, sum, last, n): Acc, out: &mut Vec<(f64, Value)>| {
        let v = match agg {
            Agg::Avg => sum / n,
            Agg::Min => min,
            Agg::Max => max,
            Agg::Sum => sum,
            Agg::Last => last,
            Agg::Count => n,
        };
        out.push((end as f64 / 1e9, float_json(v)));
    };
    let mut out = Vec::new();
    let mut cur: Option<Acc> = None;
    for (ts, v, w) in points {
        let end = bucket_end(ts, from, step);
        match &mut cur {
            Some(b) if b.0 == end => {
                b.1 = b.1.min(v);
                b.2 = b.2.max(v);
                b.3 += v;
                b.4 = v;
                b.5 += w;
            }
            _ => {
                if let Some(b) = cur.take() {
                    emit(b, &mut out);
                }
                cur = Some((end, v, v, v, v, w));
            }
        }
    }
    if let Some(b) = cur {
        emit(b, &mut out);
    }
    out
}

/// The non-stale float samples of `s` as `(ts, value)`.
fn floats(s: &Series) -> impl Iterator<Item = (i64, f64)> + '_ {
    s.iter().filter_map(|p| match p.value {
        SampleValue::Float(v) if !is_stale_nan(v) => Some((p.ts_nanos, v)),
        _ => None,
    })
}

/// Raw samples of one series folded into step buckets.
fn aggregate(s: &Series, from: i64, step: i64, agg: Agg) -> Vec<(f64, Value)> {
    fold_buckets(floats(s).map(|(t, v)| (t, v, 1.0)), from, step, agg)
}

/// End of the step bucket `[from + k·step, from + (k+1)·step)` holding `ts`.
fn bucket_end(ts: i64, from: i64, step: i64) -> i64 {
    from + ((ts - from).div_euclid(step) + 1) * step
}

/// The rollup aggregates `agg` needs, in the order [`rollup_points`] expects.
fn rollup_aggregates(agg: Agg) -> &'static [Aggregate] {
    match agg {
        Agg::Avg => &[Aggregate::Sum, Aggregate::Count],
        Agg::Min => &[Aggregate::Min],
        Agg::Max => &[Aggregate::Max],
        Agg::Sum => &[Aggregate::Sum],
        Agg::Last => &[Aggregate::Last],
        Agg::Count => &[Aggregate::Count],
    }
}

/// Fold rollup buckets into step buckets. A rollup sample stamped `T` summarises
/// `[T − resolution, T)`, so it belongs to the step bucket holding `T − 1 ns`. `parts`
/// holds one series per aggregate of [`rollup_aggregates`] (same labels, same stamps).
fn rollup_points(parts: &[&Series], from: i64, step: i64, agg: Agg) -> Vec<(f64, Value)> {
    let Some(first) = parts.first() else {
        return Vec::new();
    };
    // For avg, the count series weighs each bucket's sum; for count, the counts weigh
    // themselves.
    let counts: HashMap<i64, f64> = parts
        .get(1)
        .map(|s| floats(s).collect())
        .unwrap_or_default();
    let points = floats(first).map(|(t, v)| {
        let w = match agg {
            Agg::Avg => counts.get(&t).copied().unwrap_or(0.0),
            Agg::Count => v,
            _ => 1.0,
        };
        (t - 1, v, w)
    });
    fold_buckets(points, from, step, agg)
}

/// `GET /metrics/history/{service}?metric=&from=&to=&step=&agg=`.
///
/// With a `step` of a minute or more over a range whose start only the store's rollups
/// still cover (or where they are simply cheaper: a bucket that fits in `step`), the
/// answer is computed from the 1 m or 1 h rollups; `resolution` in the answer says which.
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
    let resolution = match step {
        Some(st) if st >= 60 * NANOS_PER_SEC => state
            .db
            .resolution_for(std::time::Duration::from_nanos(st.unsigned_abs()), from),
        _ => Resolution::Raw,
    };
    if let (Some(step), true) = (step, resolution != Resolution::Raw) {
        let st = state.clone();
        let svc = service.clone();
        let parts: Vec<Vec<Series>> = crate::blocking::run(move || {
            rollup_aggregates(agg)
                .iter()
                .map(|&a| {
                    select_service_with(&st, &svc, metric.clone(), from, to, |q, m| {
                        q.select_rollup(m, resolution, a)
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
        let Some(primary) = parts.first().filter(|p| !p.is_empty()) else {
            return Err(ApiError::not_found(format!(
                "no series with service or job {service:?} between the given times"
            )));
        };
        let mut out = Vec::with_capacity(primary.len());
        for s in primary {
            let mut aligned: Vec<&Series> = vec![s];
            for other in &parts[1..] {
                if let Some(o) = other.iter().find(|o| o.labels() == s.labels()) {
                    aligned.push(o);
                }
            }
            out.push(serde_json::json!({
                "metric": s.labels().metric_name().unwrap_or_default(),
                "labels": labels_map(s),
                "points": rollup_points(&aligned, from, step, agg),
            }));
        }
        return Ok(Json(serde_json::json!({
            "service": service,
            "from": from as f64 / 1e9,
            "to": to as f64 / 1e9,
            "step": step as f64 / 1e9,
            "agg": format!("{agg:?}").to_ascii_lowercase(),
            "resolution": resolution_name(resolution),
            "series": out,
        })));
    }
    let st = state.clone();
    let svc = service.clone();
    let series = crate::blocking::run(move || select_service(&st, &svc, metric, from, to))
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
        "resolution": "raw",
        "series": out,
    })))
}

fn resolution_name(r: Resolution) -> &'static str {
    match r {
        Resolution::Raw => "raw",
        Resolution::OneMinute => "1m",
        Resolution::OneHour => "1h",
    }
}
