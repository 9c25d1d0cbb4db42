//! Pull scraping with Prometheus' semantics: static and file-discovered targets, `up`,
//! `scrape_duration_seconds`, `scrape_samples_scraped`, `scrape_series_added`, and
//! staleness markers when a series disappears, a scrape fails or a target goes away.

mod discovery;
mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::ScrapeConfig;
use crate::state::AppState;

pub(crate) use target::Target;

/// Run every scrape config until `stop` turns true.
pub(crate) async fn run(state: AppState, stop: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .user_agent(concat!("gmc/", env!("CARGO_PKG_VERSION")))
        .gzip(true)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the scrape HTTP client; scraping is off.");
            return;
        }
    };
    let mut managers = Vec::new();
    for sc in state.config.scrape_configs.iter().cloned() {
        managers.push(tokio::spawn(manage(
            state.clone(),
            client.clone(),
            Arc::new(sc),
            stop.clone(),
        )));
    }
    for m in managers {
        let _ = m.await;
    }
}

/// Keep one task per discovered target of `sc`, starting and stopping them as discovery
/// changes; a stopped target writes staleness markers for everything it had.
async fn manage(
    state: AppState,
    client: reqwest::Client,
    sc: Arc<ScrapeConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<Target, (watch::Sender<bool>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    let refresh = sc
        .file_sd_configs
        .iter()
        .map(|f| f.refresh_interval)
        .min()
        .unwrap_or(Duration::from_secs(3600))
        .max(Duration::from_millis(500));
    let mut cache = HashMap::new();
    loop {
        let wanted = discovery::targets(&sc, &mut cache).await;
        running.retain(|t, (tx, _)| {
            let keep = wanted.contains(t);
            if !keep {
                tracing::info!(job = %sc.job_name, url = %t.url, "Scrape target removed.");
                let _ = tx.send(true);
            }
            keep
        });
        for t in wanted {
            if running.contains_key(&t) {
                continue;
            }
            tracing::info!(job = %sc.job_name, url = %t.url, "Scrape target added.");
            let (tx, rx) = watch::channel(false);
            let h = tokio::spawn(target::run(
                state.clone(),
                client.clone(),
                sc.clone(),
                t.clone(),
                rx,
            ));
            running.insert(t, (tx, h));
        }
        let finished: Vec<Target> = running
            .iter()
            .filter(|(_, (_, h))| h.is_finished())
            .map(|(t, _)| t.clone())
            .collect();
        for t in finished {
            running.remove(&t);
        }
        tokio::select! {
            _ = tokio::time::sleep(refresh) => {}
            _ = stop.changed() => break,
        }
    }
    for (_, (tx, h)) in running {
        let _ = tx.send(true);
        let _ = h.await;
    }
}
