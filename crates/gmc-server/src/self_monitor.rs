//! Self-monitoring: gmc records its own metrics into its own store as `job="gmc"`, so its
//! health can be queried, graphed and alerted on like any service's.

use tokio::sync::watch;

use crate::metrics::Protocol;
use crate::routes::ingest::{self, decode};
use crate::routes::status::render_own_metrics;
use crate::state::AppState;

/// Record own metrics every `self_monitoring.interval` until `stop` turns true.
pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.self_monitoring.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let st = state.clone();
        let res = tokio::task::spawn_blocking(move || record_once(&st)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "Self-monitoring write failed."),
            Err(e) => tracing::warn!(error = %e, "Self-monitoring task failed."),
        }
    }
}

fn record_once(state: &AppState) -> Result<(), crate::api_error::ApiError> {
    let text = render_own_metrics(state);
    let labels = vec![
        ("job".to_owned(), "gmc".to_owned()),
        (
            "instance".to_owned(),
            state.config.server.listen.to_string(),
        ),
    ];
    let opts = decode::ExpositionOptions {
        format: decode::TextFormat::Prometheus,
        default_ts_nanos: gmc_model::now_nanos(),
        target_labels: &labels,
        honor_labels: false,
        honor_timestamps: false,
    };
    let decoded =
        decode::exposition(text.as_bytes(), &opts, &decode::limits(state)).map_err(|r| r.error)?;
    ingest::commit(state, Protocol::SelfMonitoring, decoded).map(|_| ())
}
