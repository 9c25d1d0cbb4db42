//! In-process host collection: every `host.interval` gmc runs gmc-agent's collectors on its
//! own host and commits the result through the ingest path as `job="gmc_host"`,
//! `instance=<hostname>` — a different `job` from `gmc agent`'s `job="node"`, so an agent
//! pushing from the same host never writes into these series.

use std::sync::Arc;

use gmc_agent::Collectors;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::metrics::Protocol;
use crate::routes::ingest;
use crate::state::AppState;

/// Collect and record until `stop` turns true.
pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let collectors = Arc::new(Mutex::new(Collectors::new(&Default::default())));
    let target = Arc::new(vec![
        ("job".to_owned(), gmc_agent::IN_PROCESS_JOB.to_owned()),
        ("instance".to_owned(), gmc_agent::hostname()),
    ]);
    let mut tick = tokio::time::interval(state.config.host.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let (st, c, t) = (state.clone(), collectors.clone(), target.clone());
        let res = tokio::task::spawn_blocking(move || record_once(&st, &c, &t)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "Host collection write failed."),
            Err(e) => tracing::warn!(error = %e, "Host collection task failed."),
        }
    }
}

fn record_once(
    state: &AppState,
    collectors: &Mutex<Collectors>,
    target: &[(String, String)],
) -> Result<(), crate::api_error::ApiError> {
    let snap = {
        let mut c = collectors.lock();
        let mut snap = c.collect(gmc_model::now_nanos());
        c.describe(&mut snap);
        snap
    };
    let (batch, _invalid) = snap.to_batch(target, state.config.ingest.validation_limits());
    let decoded = gmc_wire::Decoded {
        batch,
        report: gmc_wire::DecodeReport::default(),
    };
    ingest::commit(state, Protocol::SelfMonitoring, decoded).map(|_| ())
}
