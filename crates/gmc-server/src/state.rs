//! Shared state of the HTTP handlers: the store, the configuration, metrics, admission
//! control for writes, and what `/system/status` reports (service freshness, scrapes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::ServerMetrics;

/// Decompression buffers kept for reuse: one per write a 2–8 core machine runs at once.
const DECODE_BUFFERS_KEPT: usize = 8;
/// Larger buffers (requests of over 16 MiB decompressed) are freed after use.
const DECODE_BUFFER_MAX_BYTES: usize = 16 << 20;

/// Cloned into every handler and, by axum, into every route's service per connection:
/// one reference count, however many fields the state grows.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct SharedState {
    /// The embedded store.
    pub db: Arc<gmc_tsdb::Db>,
    /// Effective configuration.
    pub config: Config,
    /// Server self-metrics.
    pub metrics: ServerMetrics,
    /// Admission control: one permit per write being decoded and appended.
    pub write_slots: Arc<Semaphore>,
    /// Newest sample timestamp (ns) per service, for freshness in `/system/status`.
    pub services: Mutex<HashMap<String, i64>>,
    /// Latest result of every scrape target.
    pub scrape_status: Mutex<Vec<TargetStatus>>,
    /// Last write failure of the store, cleared by the next success.
    pub last_storage_error: Mutex<Option<(Instant, String)>>,
    /// When the server started.
    pub started: Instant,
    /// PromQL engine.
    pub engine: Arc<gmc_promql::Engine>,
    /// Admission control for queries: one permit per query being evaluated.
    pub query_slots: Arc<Semaphore>,
    /// Decompression buffers reused across write requests.
    pub decode_buffers: crate::buffers::BufferPool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Last result of one scrape target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetStatus {
    /// `job` label.
    pub job: String,
    /// Scraped URL.
    pub url: String,
    /// `instance` label.
    pub instance: String,
    /// Whether the last scrape succeeded.
    pub up: bool,
    /// Error of the last scrape, if it failed.
    pub last_error: Option<String>,
    /// Unix ms of the last scrape start.
    pub last_scrape_ms: i64,
    /// Duration of the last scrape in seconds.
    pub last_duration_seconds: f64,
    /// Samples returned by the last scrape.
    pub samples: u64,
}

impl AppState {
    /// Cores not taken by another write right now (the caller's own write counted as not
    /// taking one): how many parts a large write may be split into without slowing the
    /// writes beside it.
    pub fn spare_write_cores(&self) -> usize {
        let busy = self
            .config
            .server
            .max_inflight_writes
            .saturating_sub(self.write_slots.available_permits());
        (gmc_tsdb::par::max_threads() + 1).saturating_sub(busy.max(1))
    }

    /// Build the state for `config` over `db`.
    pub fn new(config: Config, db: Arc<gmc_tsdb::Db>) -> Self {
        AppState(Arc::new(SharedState {
            db,
            decode_buffers: crate::buffers::BufferPool::new(
                config.server.max_inflight_writes.min(DECODE_BUFFERS_KEPT),
                DECODE_BUFFER_MAX_BYTES,
            ),
            write_slots: Arc::new(Semaphore::new(config.server.max_inflight_writes)),
            query_slots: Arc::new(Semaphore::new(config.query.max_concurrent)),
            engine: Arc::new(gmc_promql::Engine::new(gmc_promql::EngineOptions {
                lookback_delta: config.query.lookback_delta,
                max_samples: config.query.max_samples,
                timeout: config.query.timeout,
                ..gmc_promql::EngineOptions::default()
            })),
            config,
            metrics: ServerMetrics::default(),
            services: Mutex::new(HashMap::new()),
            scrape_status: Mutex::new(Vec::new()),
            last_storage_error: Mutex::new(None),
            started: Instant::now(),
        }))
    }

    /// Note the newest timestamp seen per service in a stored batch.
    pub fn note_services(&self, batch: &gmc_model::WriteBatch<'_>) {
        // Per service run of the batch (consecutive series with one value), the newest
        // timestamp; series keys are not read again, and the shared map is locked once.
        let mut newest = vec![i64::MIN; batch.service_runs()];
        for (i, s) in batch.iter().enumerate() {
            let Some(slot) = batch.service_run(i).and_then(|r| newest.get_mut(r)) else {
                continue;
            };
            if let Some(ts) = s.newest_ts() {
                *slot = (*slot).max(ts);
            }
        }
        let mut local: HashMap<&str, i64> = HashMap::new();
        for (run, ts) in newest.into_iter().enumerate() {
            if ts == i64::MIN {
                continue;
            }
            if let Some(svc) = batch.service_name(run) {
                let e = local.entry(svc).or_insert(ts);
                *e = (*e).max(ts);
            }
        }
        if local.is_empty() {
            return;
        }
        let mut map = self.services.lock();
        for (svc, ts) in local {
            match map.get_mut(svc) {
                Some(v) => *v = (*v).max(ts),
                None => {
                    map.insert(svc.to_owned(), ts);
                }
            }
        }
    }
}
