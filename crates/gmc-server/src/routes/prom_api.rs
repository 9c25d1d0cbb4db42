//! The Prometheus HTTP API (`/api/v1/query`, `query_range`, `series`, `labels`, label
//! values, `metadata`, status, `format_query`, `rules`, `alerts`, `targets`), with
//! Prometheus' envelope, error types and status codes, so Grafana and promtool work
//! against gmc unchanged. Evaluation is `gmc_promql`; this module only speaks HTTP.

mod json;
mod params;
mod selector;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gmc_model::{Labels, Matcher};
use gmc_promql::{PointValue, QueryResult, Value};
use serde_json::json;

use crate::api_error::ApiError;
use crate::state::AppState;
use params::Params;

/// Prometheus' maximum number of points per series in a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Oldest and newest instants accepted when a request gives no `start`/`end`
/// (Prometheus' `minTime`/`maxTime`, clamped to what nanosecond storage can hold).
const MIN_TIME_MS: i64 = i64::MIN / 1_000_000 + 1;
const MAX_TIME_MS: i64 = i64::MAX / 1_000_000 - 1;

/// A successful envelope around pre-rendered `data` JSON.
/// Opening of Prometheus' success envelope, up to the data.
const SUCCESS_OPEN: &str = "{\"status\":\"success\",\"data\":";

fn success(data: &str, warnings: &[String]) -> Response {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str(SUCCESS_OPEN);
    out.push_str(data);
    finish_success(out, warnings)
}

/// A query's answer rendered straight into the envelope, in a buffer allocated once at
/// about its final size: a range result is megabytes, and building it as a separate
/// string cost a copy of all of it plus a dozen reallocations while it grew.
fn query_success(r: &QueryResult, stats: bool, queue_secs: f64) -> Response {
    let mut out = String::with_capacity(result_size_hint(&r.value) + 256);
    out.push_str(SUCCESS_OPEN);
    render_result(&mut out, r, stats, queue_secs);
    finish_success(out, &r.warnings)
}

/// About how many bytes the JSON of `v` takes: ~28 a float point (`[1796608578,"12.5"],`),
/// ~48 a label pair, ~256 a histogram. Capped: past the cap the buffer grows as needed.
fn result_size_hint(v: &Value) -> usize {
    const CAP: usize = 64 << 20;
    let labels = |l: &gmc_model::Labels| l.len() * 48 + 16;
    let n: usize = match v {
        Value::Vector(s) => s.iter().map(|s| labels(&s.labels) + 48).sum(),
        Value::Matrix(m) => m
            .iter()
            .map(|s| labels(&s.labels) + s.floats.len() * 28 + s.histograms.len() * 256)
            .sum(),
        Value::Scalar { .. } | Value::String { .. } => 64,
    };
    n.min(CAP)
}

/// Close the success envelope after the data: warnings, then the final brace.
fn finish_success(mut out: String, warnings: &[String]) -> Response {
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        json::push_array(&mut out, warnings, |out, w| json::push_str(out, w));
    }
    out.push('}');
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

fn success_value(data: serde_json::Value) -> Response {
    success(&data.to_string(), &[])
}

/// Map an engine error to Prometheus' error type and status.
fn query_error(e: &gmc_promql::Error) -> ApiError {
    let error_type = e.error_type();
    let status = match error_type {
        "bad_data" => StatusCode::BAD_REQUEST,
        "execution" => StatusCode::UNPROCESSABLE_ENTITY,
        "timeout" => StatusCode::SERVICE_UNAVAILABLE,
        // nginx's "client closed request", used by Prometheus for canceled queries.
        "canceled" => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::typed(status, error_type, e.to_string())
}

/// Shared preamble of every handler: merge query string and form body.
fn params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
    Params::from_request(query.as_deref(), headers, body)
}

fn now_ms() -> i64 {
    params::nanos_to_ms(gmc_model::now_nanos())
}

/// The engine for one request: the server's, or a copy with a shorter `timeout` when the
/// request asks for one (a request can shorten the server's limit, never extend it).
fn engine_for(state: &AppState, p: &Params) -> Result<Arc<gmc_promql::Engine>, ApiError> {
    let Some(raw) = p.get("timeout") else {
        return Ok(Arc::clone(&state.engine));
    };
    let asked = crate::routes::time_param::parse_duration("timeout", raw)?;
    let opts = state.engine.options();
    if asked >= opts.timeout {
        return Ok(Arc::clone(&state.engine));
    }
    Ok(Arc::new(gmc_promql::Engine::new(
        gmc_promql::EngineOptions {
            timeout: asked,
            ..opts.clone()
        },
    )))
}

/// Run a query off the async tasks (see [`crate::blocking`]) under the concurrency limit.
async fn run_query<F>(
    state: &AppState,
    engine: Arc<gmc_promql::Engine>,
    f: F,
) -> Result<QueryResult, ApiError>
where
    F: FnOnce(&gmc_promql::Engine, &gmc_tsdb::Db) -> gmc_promql::Result<QueryResult>
        + Send
        + 'static,
{
    let wait = state.config.query.timeout;
    let permit = tokio::time::timeout(wait, state.query_slots.clone().acquire_owned())
        .await
        .map_err(|_| {
            ApiError::typed(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "query timed out in the queue: too many concurrent queries".to_owned(),
            )
        })?
        .map_err(|_| ApiError::unavailable("server is shutting down"))?;
    let db = Arc::clone(&state.db);
    let res = crate::blocking::run(move || {
        let _permit = permit;
        f(&engine, &db)
    })
    .await
    .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?;
    if let Ok(r) = &res {
        crate::memory::release_after_query(r.stats.series_selected, r.stats.peak_samples);
    }
    let res = res.map_err(|e| query_error(&e));
    state.metrics.query_done(res.is_ok());
    res
}

/// Whether the client asked for statistics (`stats=all`, as Prometheus).
fn wants_stats(p: &Params) -> bool {
    p.get("stats").is_some()
}

/// Render `data` of a query response: `{"resultType":..,"result":..[,"stats":..]}`.
fn render_result(out: &mut String, r: &QueryResult, stats: bool, queue_secs: f64) {
    out.push_str("{\"resultType\":\"");
    match &r.value {
        Value::Scalar { t_ms, v } => {
            out.push_str("scalar\",\"result\":");
            json::push_point(out, *t_ms, *v);
        }
        Value::String { t_ms, s } => {
            out.push_str("string\",\"result\":[");
            json::push_timestamp(out, *t_ms);
            out.push(',');
            json::push_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str("vector\",\"result\":");
            json::push_array(out, samples, |out, s| {
                out.push_str("{\"metric\":");
                json::push_labels(out, &s.labels);
                match &s.value {
                    PointValue::Float(v) => {
                        out.push_str(",\"value\":");
                        json::push_point(out, s.t_ms, *v);
                    }
                    PointValue::Histogram(h) => {
                        out.push_str(",\"histogram\":");
                        json::push_histogram_point(out, s.t_ms, h);
                    }
                }
                out.push('}');
            });
        }
        Value::Matrix(series) => {
            out.push_str("matrix\",\"result\":");
            json::push_array(out, series, |out, s| {
                out.push_str("{\"metric\":");
                json::push_labels(out, &s.labels);
                if !s.floats.is_empty() {
                    out.push_str(",\"values\":");
                    json::push_array(out, &s.floats, |out, (t, v)| json::push_point(out, *t, *v));
                }
                if !s.histograms.is_empty() {
                    out.push_str(",\"histograms\":");
                    json::push_array(out, &s.histograms, |out, (t, h)| {
                        json::push_histogram_point(out, *t, h)
                    });
                }
                out.push('}');
            });
        }
    }
    if stats {
        let eval = r.stats.eval_time.as_secs_f64();
        let st = json!({
            "timings": {
                "evalTotalTime": eval,
                "resultSortTime": 0.0,
                "queryPreparationTime": 0.0,
                "innerEvalTime": eval,
                "execQueueTime": queue_secs,
                "execTotalTime": eval + queue_secs,
            },
            "samples": {
                "totalQueryableSamples": r.stats.samples_scanned,
                "peakSamples": r.stats.peak_samples,
            }
        });
        out.push_str(",\"stats\":");
        out.push_str(&st.to_string());
    }
    out.push('}');
}

/// `GET|POST /api/v1/query`.
pub(crate) async fn query(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(raw, &headers, &body)?;
    let q = p.required("query")?.to_owned();
    let t = p.time_ms("time", now_ms())?;
    let stats = wants_stats(&p);
    let started = Instant::now();
    let engine = engine_for(&state, &p)?;
    let r = run_query(&state, engine, move |engine, db| {
        engine.instant_query(db, &q, t)
    })
    .await?;
    let queue = (started.elapsed().as_secs_f64() - r.stats.eval_time.as_secs_f64()).max(0.0);
    Ok(query_success(&r, stats, queue))
}

/// `GET|POST /api/v1/query_range`.
pub(crate) async fn query_range(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(raw, &headers, &body)?;
    let q = p.required("query")?.to_owned();
    let start = p.required_time_ms("start")?;
    let end = p.required_time_ms("end")?;
    if end < start {
        return Err(ApiError::bad_request(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step_raw = p.required("step")?;
    let step_ms = parse_step_ms(step_raw)?;
    if (end - start) / step_ms > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_request(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the \
             query resolution (?step=XX)",
        ));
    }
    let stats = wants_stats(&p);
    let started = Instant::now();
    let engine = engine_for(&state, &p)?;
    let r = run_query(&state, engine, move |engine, db| {
        engine.range_query(db, &q, start, end, step_ms)
    })
    .await?;
    let queue = (started.elapsed().as_secs_f64() - r.stats.eval_time.as_secs_f64()).max(0.0);
    Ok(query_success(&r, stats, queue))
}

/// A range-query step: float seconds or a Prometheus duration; must be positive.
fn parse_step_ms(v: &str) -> Result<i64, ApiError> {
    let zero = || {
        ApiError::bad_request(
            "invalid parameter \"step\": zero or negative query resolution step widths are not \
             accepted. Try a positive integer",
        )
    };
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() {
            return Err(ApiError::bad_request(format!(
                "invalid parameter \"step\": cannot parse {v:?} to a valid duration"
            )));
        }
        let ms = (secs * 1000.0).round();
        if ms <= 0.0 {
            return Err(zero());
        }
        return Ok(ms.min(i64::MAX as f64) as i64);
    }
    match gmc_promql::parse_duration_ms(v) {
        Some(ms) if ms > 0 => Ok(ms),
        Some(_) => Err(zero()),
        None => Err(ApiError::bad_request(format!(
            "invalid parameter \"step\": cannot parse {v:?} to a valid duration"
        ))),
    }
}

/// Parse every `match[]` selector into matcher sets (one set per alternative).
fn match_sets(p: &Params, required: bool) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let raw = p.all("match[]");
    if raw.is_empty() && required {
        return Err(ApiError::bad_request("no match[] parameter provided"));
    }
    let mut sets = Vec::new();
    for s in raw {
        sets.extend(selector::parse_selector(s)?);
    }
    Ok(sets)
}

/// `[start, end]` in ns from optional `start`/`end` parameters.
fn time_range_ns(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = p.time_ms("start", MIN_TIME_MS)?;
    let end = p.time_ms("end", MAX_TIME_MS)?;
    if end < start {
        return Err(ApiError::bad_request(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let ns = |ms: i64| ms.clamp(MIN_TIME_MS, MAX_TIME_MS).saturating_mul(1_000_000);
    Ok((ns(start), ns(end)))
}

/// Run a metadata lookup off the async tasks (index reads can touch disk; see
/// [`crate::blocking`]).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::blocking::run(f)
        .await
        .map_err(|e| ApiError::internal(format!("lookup task failed: {e}")))?
}

fn storage_error(e: gmc_tsdb::Error) -> ApiError {
    ApiError::typed(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("storage: {e}"),
    )
}

/// Truncate to `limit`, noting it in the warnings as Prometheus 3.x does.
fn apply_limit<T>(items: &mut Vec<T>, limit: Option<usize>, warnings: &mut Vec<String>) {
    if let Some(l) = limit {
        if items.len() > l {
            items.truncate(l);
            warnings.push("results truncated due to limit".to_owned());
        }
    }
}

/// `GET|POST /api/v1/series`.
pub(crate) async fn series(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(raw, &headers, &body)?;
    let sets = match_sets(&p, true)?;
    let (mint, maxt) = time_range_ns(&p)?;
    let limit = p.limit()?;
    let db = Arc::clone(&state.db);
    let mut found: Vec<Labels> = blocking(move || {
        let q = db.querier(mint, maxt).map_err(storage_error)?;
        let mut all: BTreeSet<Labels> = BTreeSet::new();
        for set in &sets {
            // Only the labels are needed: the newest-sample read keeps one sample per
            // series instead of decoding every sample in the range.
            for s in q
                .select_latest(set, maxt, i64::MAX)
                .map_err(storage_error)?
            {
                all.insert(s.labels().clone());
            }
        }
        Ok(all.into_iter().collect())
    })
    .await?;
    let mut warnings = Vec::new();
    apply_limit(&mut found, limit, &mut warnings);
    let mut out = String::with_capacity(found.len() * 64 + 2);
    json::push_array(&mut out, &found, json::push_labels);
    Ok(success(&out, &warnings))
}

/// Sorted union of `lookup` over every matcher set (all series when there is none), read
/// off the async tasks.
async fn union_lookup(
    state: &AppState,
    mint: i64,
    maxt: i64,
    sets: Vec<Vec<Matcher>>,
    lookup: impl Fn(&gmc_tsdb::Querier, &[Matcher]) -> gmc_tsdb::Result<Vec<String>> + Send + 'static,
) -> Result<Vec<String>, ApiError> {
    let db = Arc::clone(&state.db);
    blocking(move || {
        let q = db.querier(mint, maxt).map_err(storage_error)?;
        let mut all = BTreeSet::new();
        if sets.is_empty() {
            all.extend(lookup(&q, &[]).map_err(storage_error)?);
        }
        for set in &sets {
            all.extend(lookup(&q, set).map_err(storage_error)?);
        }
        Ok(all.into_iter().collect())
    })
    .await
}

/// `GET|POST /api/v1/labels`.
pub(crate) async fn labels(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(raw, &headers, &body)?;
    let sets = match_sets(&p, false)?;
    let (mint, maxt) = time_range_ns(&p)?;
    let limit = p.limit()?;
    let mut names = union_lookup(&state, mint, maxt, sets, |q, m| q.label_names(m)).await?;
    let mut warnings = Vec::new();
    apply_limit(&mut names, limit, &mut warnings);
    Ok(success(&string_array(&names), &warnings))
}

/// `GET /api/v1/label/{name}/values`.
pub(crate) async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(raw, &headers, &body)?;
    let name = unescape_label_name(&name)?;
    let sets = match_sets(&p, false)?;
    let (mint, maxt) = time_range_ns(&p)?;
    let limit = p.limit()?;
    let mut values = union_lookup(&state, mint, maxt, sets, move |q, m| {
        q.label_values(&name, m)
    })
    .await?;
    let mut warnings = Vec::new();
    apply_limit(&mut values, limit, &mut warnings);
    Ok(success(&string_array(&values), &warnings))
}

/// Label names in the path may be `U__`-escaped (Prometheus 3.x, for UTF-8 names):
/// `U__` followed by the name with `_xx_` hex code points and `__` for `_`.
fn unescape_label_name(raw: &str) -> Result<String, ApiError> {
    let Some(rest) = raw.strip_prefix("U__") else {
        return Ok(raw.to_owned());
    };
    let bad = || ApiError::bad_request(format!("invalid label name {raw:?}"));
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return Err(bad()),
            }
        }
        let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
        out.push(char::from_u32(code).ok_or_else(bad)?);
    }
    Ok(out)
}

fn string_array(items: &[String]) -> String {
    let mut out = String::with_capacity(items.len() * 16 + 2);
    json::push_array(&mut out, items, |out, s| json::push_str(out, s));
    out
}

/// `GET /api/v1/metadata`: `{"<metric>": [{"type","help","unit"}]}`.
pub(crate) async fn metadata(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = params(raw, &HeaderMap::new(), &Bytes::new())?;
    let metric = p.get("metric").map(str::to_owned);
    let limit = p.limit()?;
    let per_metric = match p.get("limit_per_metric") {
        None => None,
        Some(v) => match v.parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid parameter \"limit_per_metric\": {v:?}"
                )))
            }
        },
    };
    let db = Arc::clone(&state.db);
    let all = blocking(move || {
        let q = db.querier(0, 0).map_err(storage_error)?;
        Ok(q.metadata(metric.as_deref()))
    })
    .await?;
    let mut grouped: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for m in all {
        if limit.is_some_and(|l| grouped.len() >= l && !grouped.contains_key(&m.metric_family)) {
            continue;
        }
        let entry = grouped.entry(m.metric_family.clone()).or_default();
        if per_metric.is_some_and(|l| entry.len() >= l) {
            continue;
        }
        entry.push(json!({
            "type": m.metric_type.as_str(),
            "help": m.help,
            "unit": m.unit,
        }));
    }
    Ok(success_value(json!(grouped)))
}

/// `GET /api/v1/status/buildinfo`. No `features` field: Grafana would take gmc for
/// Mimir/Cortex and look for a ruler API. `version` is the Prometheus API level gmc
/// answers (3.x semantics); gmc's own version is in `revision` and `gmcVersion`.
pub(crate) async fn buildinfo() -> Response {
    success_value(json!({
        "version": "3.0.0",
        "revision": concat!("gmc-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "gmcVersion": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /api/v1/status/runtimeinfo`.
pub(crate) async fn runtimeinfo(State(state): State<AppState>) -> Response {
    let uptime = state.started.elapsed();
    let start = std::time::SystemTime::now()
        .checked_sub(uptime)
        .unwrap_or(std::time::UNIX_EPOCH);
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1);
    success_value(json!({
        "startTime": humantime::format_rfc3339_millis(start).to_string(),
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": humantime::format_rfc3339_millis(start).to_string(),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
    }))
}

/// `GET|POST /api/v1/format_query`: the query pretty-printed by the parser.
pub(crate) async fn format_query(
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(raw, &headers, &body)?;
    let q = p.required("query")?;
    let expr = gmc_promql::parse(q).map_err(|e| query_error(&e))?;
    let mut out = String::new();
    json::push_str(&mut out, &expr.prettify());
    Ok(success(&out, &[]))
}

/// `GET /api/v1/rules`: truthfully empty until the rules engine exists.
pub(crate) async fn rules() -> Response {
    success_value(json!({ "groups": [] }))
}

/// `GET /api/v1/alerts`: truthfully empty until the rules engine exists.
pub(crate) async fn alerts() -> Response {
    success_value(json!({ "alerts": [] }))
}

/// `GET|POST /api/v1/query_exemplars`: gmc stores no exemplars; the answer is empty.
pub(crate) async fn query_exemplars() -> Response {
    success_value(json!([]))
}

/// `GET /api/v1/targets`: scrape targets and their health.
pub(crate) async fn targets(State(state): State<AppState>) -> Response {
    let targets = state.scrape_status.lock().clone();
    let active: Vec<_> = targets
        .iter()
        .map(|t| {
            let last = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(t.last_scrape_ms).unwrap_or(0));
            json!({
                "discoveredLabels": {"__address__": t.instance, "job": t.job},
                "labels": {"instance": t.instance, "job": t.job},
                "scrapePool": t.job,
                "scrapeUrl": t.url,
                "globalUrl": t.url,
                "lastError": t.last_error.clone().unwrap_or_default(),
                "lastScrape": humantime::format_rfc3339_millis(last).to_string(),
                "lastScrapeDuration": t.last_duration_seconds,
                "health": if t.last_scrape_ms == 0 { "unknown" } else if t.up { "up" } else { "down" },
            })
        })
        .collect();
    success_value(json!({ "activeTargets": active, "droppedTargets": [] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_like_prometheus() {
        assert_eq!(parse_step_ms("15").unwrap(), 15_000);
        assert_eq!(parse_step_ms("0.5").unwrap(), 500);
        assert_eq!(parse_step_ms("1m").unwrap(), 60_000);
        assert!(parse_step_ms("0")
            .unwrap_err()
            .message
            .contains("zero or negative"));
        assert!(parse_step_ms("-1").is_err());
        assert!(parse_step_ms("abc").is_err());
        assert!(parse_step_ms("NaN").is_err());
    }

    #[test]
    fn escaped_label_names_decode() {
        assert_eq!(unescape_label_name("job").unwrap(), "job");
        assert_eq!(unescape_label_name("U__a_2e_b").unwrap(), "a.b");
        assert_eq!(unescape_label_name("U__a__b").unwrap(), "a_b");
        assert!(unescape_label_name("U__a_zz_").is_err());
    }
}
