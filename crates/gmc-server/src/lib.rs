//! gmc's HTTP server: ingest endpoints for every supported protocol, pull scraping, the
//! REST and status APIs, and self-monitoring. Every write goes through the embedded store
//! ([`gmc_tsdb::Db`]) and is acknowledged only once durable.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let db = Arc::new(gmc_tsdb::Db::open(std::path::Path::new("./gmc-data"), Default::default())?);
//! let config = gmc_server::config::Config::default();
//! gmc_server::run(config, db, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod api_error;
mod blocking;
pub mod buffers;
pub mod config;
pub mod error;
mod host;
pub mod memory;
pub mod metrics;
mod routes;
mod scrape;
mod self_monitor;
pub mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub use error::{Error, Result};
pub use state::{AppState, SharedState};

/// Build the router over `state` (used by `run` and by in-process tests).
pub fn router(state: AppState) -> Router {
    use routes::{ingest, prom_api as api, rest, status};
    Router::new()
        .route("/api/v1/query", get(api::query).post(api::query))
        .route(
            "/api/v1/query_range",
            get(api::query_range).post(api::query_range),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/metadata", get(api::metadata))
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/api/v1/status/runtimeinfo", get(api::runtimeinfo))
        .route(
            "/api/v1/format_query",
            get(api::format_query).post(api::format_query),
        )
        .route("/api/v1/rules", get(api::rules))
        .route("/api/v1/alerts", get(api::alerts))
        .route(
            "/api/v1/query_exemplars",
            get(api::query_exemplars).post(api::query_exemplars),
        )
        .route("/api/v1/targets", get(api::targets))
        .route("/api/v1/write", post(ingest::remote_write))
        .route("/api/v1/import/prometheus", post(ingest::import_prometheus))
        .route(
            "/metrics/job/{*rest}",
            post(ingest::pushgateway).put(ingest::pushgateway),
        )
        .route("/write", post(ingest::influx))
        .route("/api/v2/write", post(ingest::influx))
        .route("/api/v1/push", post(ingest::json_push))
        .route("/metrics", get(status::own_metrics))
        .route("/metrics/history/{service}", get(rest::history))
        .route("/metrics/{service}", get(rest::latest))
        .route("/system/status", get(status::system_status))
        .route("/-/healthy", get(status::healthy).head(status::healthy))
        .route("/-/ready", get(status::ready).head(status::ready))
        .route("/api/v1/admin/flush", post(status::flush))
        .route("/api/openapi.json", get(status::openapi))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        // Bodies are read by the handlers with their own, configurable limit.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Count every request and time it by route template (never by raw path: bounded labels).
async fn record_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .http_request(&route, resp.status().as_u16(), started.elapsed());
    resp
}

/// Serve until `shutdown` resolves: bind, start scraping and self-monitoring, then answer
/// requests; in-flight requests finish before this returns.
pub async fn run(
    config: config::Config,
    db: Arc<gmc_tsdb::Db>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    let addr = config.server.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener.local_addr().map_err(Error::Serve)?;
    serve_on(listener, config, db, shutdown, local).await
}

/// Like [`run`] on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: config::Config,
    db: Arc<gmc_tsdb::Db>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    local: std::net::SocketAddr,
) -> Result<()> {
    // Around a flush: hand freed pages back before the writer's and the next query's peaks.
    db.set_release_hook(Box::new(memory::release_around_flush));
    let state = AppState::new(config, db);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background = Vec::new();
    background.push(tokio::spawn(scrape::run(state.clone(), stop_rx.clone())));
    if state.config.self_monitoring.enabled {
        background.push(tokio::spawn(self_monitor::run(
            state.clone(),
            stop_rx.clone(),
        )));
    }
    if state.config.host.enabled {
        background.push(tokio::spawn(host::run(state.clone(), stop_rx.clone())));
    }
    tracing::info!(addr = %local, "Listening.");
    let app = router(state);
    // Replies go out at once, never held back by Nagle's algorithm waiting for an ACK
    // (hyper usually writes a response in one call, so no difference was measurable on
    // loopback; Go's servers, VictoriaMetrics' and Prometheus', set it too).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    // One router shared by every connection. Served directly, axum 0.8 rebuilds the
    // whole router for each new connection (`Router::with_state(())` re-wraps every
    // route) and frees it when the connection closes: on one-request connections (most
    // HTTP clients of a query API) that cost more CPU than a point lookup's evaluation.
    let result = axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve);
    let _ = stop_tx.send(true);
    for task in background {
        let _ = task.await;
    }
    result
}
