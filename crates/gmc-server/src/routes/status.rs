//! Health, readiness, `/system/status`, `/metrics`, admin flush and the OpenAPI document.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::state::AppState;

/// How long after a failed store write `/system/status` keeps reporting it.
const STORAGE_ERROR_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /-/healthy`: the process is alive.
pub(crate) async fn healthy() -> &'static str {
    "gmc is healthy.\n"
}

/// `GET /-/ready`: the store is open and the server accepts traffic.
pub(crate) async fn ready() -> &'static str {
    // The listener is bound only after the store opened and replayed its WAL.
    "gmc is ready.\n"
}

/// `GET /metrics`: gmc's own metrics in text format 0.0.4.
pub(crate) async fn own_metrics(State(state): State<AppState>) -> Response {
    let body = render_own_metrics(&state);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Render server and store metrics together.
pub(crate) fn render_own_metrics(state: &AppState) -> String {
    let mut out = String::with_capacity(16 * 1024);
    state.metrics.encode_text(&mut out);
    state.db.metrics().encode_text(&mut out);
    out.push_str("# HELP gmc_uptime_seconds Seconds since gmc started.\n");
    out.push_str("# TYPE gmc_uptime_seconds gauge\n");
    out.push_str(&format!(
        "gmc_uptime_seconds {}\n",
        state.started.elapsed().as_secs_f64()
    ));
    out.push_str("# HELP gmc_build_info Build information.\n# TYPE gmc_build_info gauge\n");
    out.push_str(&format!(
        "gmc_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    out
}

/// Unlabelled samples of a text exposition, for the status summary.
fn plain_values(text: &str) -> BTreeMap<&str, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let (n, v) = l.split_once(' ')?;
            Some((n, v.trim().parse().ok()?))
        })
        .collect()
}

/// `GET /system/status`: gmc's own health; 503 with reasons when unhealthy.
pub(crate) async fn system_status(State(state): State<AppState>) -> Response {
    let mut reasons: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let storage_error = state.last_storage_error.lock().clone();
    if let Some((at, msg)) = &storage_error {
        if at.elapsed() < STORAGE_ERROR_WINDOW {
            reasons.push(format!(
                "storage write failed {:.0}s ago: {msg}",
                at.elapsed().as_secs_f64()
            ));
        }
    }
    let mut store_text = String::new();
    state.db.metrics().encode_text(&mut store_text);
    let storage: BTreeMap<&str, f64> = plain_values(&store_text)
        .into_iter()
        .filter(|(k, _)| !k.ends_with("_bucket") && !k.ends_with("_sum") && !k.ends_with("_count"))
        .collect();

    let now = gmc_model::now_nanos();
    let stale_after = state.config.server.service_stale_after;
    let mut services: Vec<Value> = state
        .services
        .lock()
        .iter()
        .map(|(svc, ts)| {
            let age = (now - ts) as f64 / 1e9;
            json!({
                "service": svc,
                "newest_sample": *ts as f64 / 1e9,
                "age_seconds": age,
                "fresh": age <= stale_after.as_secs_f64(),
            })
        })
        .collect();
    services.sort_by(|a, b| a["service"].as_str().cmp(&b["service"].as_str()));
    for s in &services {
        if s["fresh"] == Value::Bool(false) {
            warnings.push(format!(
                "service {} has sent nothing for {:.0}s",
                s["service"],
                s["age_seconds"].as_f64().unwrap_or(0.0)
            ));
        }
    }
    let targets = state.scrape_status.lock().clone();
    for t in targets.iter().filter(|t| !t.up && t.last_scrape_ms > 0) {
        warnings.push(format!(
            "scrape target {} of job {} is down: {}",
            t.url,
            t.job,
            t.last_error.as_deref().unwrap_or("unknown error")
        ));
    }
    let rejections: Vec<Value> = state
        .metrics
        .rejections()
        .into_iter()
        .map(|((p, r), n)| json!({"protocol": p, "reason": r, "count": n}))
        .collect();
    let samples: BTreeMap<&str, u64> = state.metrics.samples_by_protocol().into_iter().collect();
    let healthy = reasons.is_empty();
    let body = json!({
        "status": if healthy { "ok" } else { "unhealthy" },
        "reasons": reasons,
        "warnings": warnings,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "storage": storage,
        "ingest": {
            "samples_total": samples,
            "rejected": rejections,
            "inflight_write_slots_free": state.write_slots.available_permits(),
        },
        "scrape_targets": targets,
        "services": services,
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// `POST /api/v1/admin/flush`: persist the in-memory head as a block now.
pub(crate) async fn flush(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let db = state.db.clone();
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || db.flush())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::from_class(e.class(), format!("flush failed: {e}")))?;
    Ok(Json(json!({
        "status": "success",
        "elapsed_seconds": started.elapsed().as_secs_f64(),
        "series": report.series,
        "chunks": report.chunks,
        "series_removed": report.series_removed,
        "time_range": report.time_range.map(|(a, b)| [a as f64 / 1e9, b as f64 / 1e9]),
    })))
}

/// `GET /api/openapi.json`.
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
        .into_response()
}
