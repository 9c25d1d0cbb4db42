//! One scrape target: its loop, one scrape, report series and staleness tracking.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmc_model::{Labels, NANOS_PER_MILLI, STALE_NAN_BITS};
use tokio::sync::watch;

use crate::config::ScrapeConfig;
use crate::metrics::Protocol;
use crate::routes::ingest::{self, decode, Decoded};
use crate::state::{AppState, TargetStatus};

/// What Prometheus 2.42 sends; servers pick OpenMetrics or text 0.0.4.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A scrape target: a URL plus the labels every scraped series gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    /// Full URL scraped.
    pub(crate) url: String,
    /// `job`, `instance` and configured labels, sorted by name.
    pub(crate) labels: Vec<(String, String)>,
}

impl Target {
    pub(crate) fn new(sc: &ScrapeConfig, addr: &str, extra: &BTreeMap<String, String>) -> Self {
        let mut labels: BTreeMap<String, String> = extra.clone();
        labels.insert("job".to_owned(), sc.job_name.clone());
        labels
            .entry("instance".to_owned())
            .or_insert_with(|| addr.to_owned());
        Target {
            url: format!("{}://{}{}", sc.scheme, addr, sc.metrics_path),
            labels: labels.into_iter().collect(),
        }
    }

    fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// Series seen by the previous scrape, by identity hash, to write staleness markers for
/// the ones that disappear.
#[derive(Debug, Default)]
struct Seen {
    series: HashMap<u64, Labels>,
}

/// Scrape `t` every interval until `stop` turns true; then mark all its series stale.
pub(crate) async fn run(
    state: AppState,
    client: reqwest::Client,
    sc: Arc<ScrapeConfig>,
    t: Target,
    mut stop: watch::Receiver<bool>,
) {
    // Spread targets over the interval deterministically, as Prometheus does.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.url.hash(&mut h);
    let interval = sc.scrape_interval;
    let offset = Duration::from_nanos(h.finish() % (interval.as_nanos().max(1) as u64));
    tokio::select! {
        _ = tokio::time::sleep(offset) => {}
        _ = stop.changed() => return,
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen = Seen::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        seen = scrape_once(&state, &client, &sc, &t, seen).await;
    }
    // Target gone or server stopping: end every series it had, with the report series.
    let st = state.clone();
    let t2 = t.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let mut batch = gmc_model::WriteBatch::with_limits(decode::limits(&st).labels);
        let now = round_ms(gmc_model::now_nanos());
        for labels in seen.series.values() {
            push_stale(&mut batch, labels, now);
        }
        for name in REPORT_SERIES {
            push_stale(&mut batch, &report_labels(&t2, name), now);
        }
        let decoded = Decoded {
            batch,
            report: Default::default(),
        };
        if let Err(e) = ingest::commit(&st, Protocol::Scrape, decoded) {
            tracing::warn!(url = %t2.url, error = %e, "Cannot write staleness markers for a removed target.");
        }
    })
    .await;
    state
        .scrape_status
        .lock()
        .retain(|s| !(s.url == t.url && s.job == sc.job_name));
}

const REPORT_SERIES: [&str; 4] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_series_added",
];

fn report_labels(t: &Target, name: &str) -> Labels {
    Labels::from_pairs(
        t.labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain([(gmc_model::METRIC_NAME, name)]),
    )
}

fn push_stale(batch: &mut gmc_model::WriteBatch<'_>, labels: &Labels, ts: i64) {
    let mut s = batch.series();
    for (n, v) in labels.iter() {
        s.label(n.to_owned(), v.to_owned());
    }
    s.float(ts, f64::from_bits(STALE_NAN_BITS));
    let _ = s.finish();
}

/// Prometheus timestamps are milliseconds; keep scrape timestamps on that grid so data
/// compares equal with Prometheus' own.
fn round_ms(ns: i64) -> i64 {
    ns - ns.rem_euclid(NANOS_PER_MILLI)
}

async fn fetch(
    client: &reqwest::Client,
    t: &Target,
    timeout: Duration,
    max_bytes: u64,
) -> Result<(Vec<u8>, decode::TextFormat), String> {
    let resp = client
        .get(&t.url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", timeout.as_secs_f64()),
        )
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let format = decode::TextFormat::from_content_type(
        resp.headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading body failed: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max_bytes {
            return Err(format!(
                "body exceeds {max_bytes} bytes (ingest.max_body_bytes)"
            ));
        }
    }
    Ok((body, format))
}

async fn scrape_once(
    state: &AppState,
    client: &reqwest::Client,
    sc: &Arc<ScrapeConfig>,
    t: &Target,
    seen: Seen,
) -> Seen {
    let started = Instant::now();
    let ts = round_ms(gmc_model::now_nanos());
    let fetched = fetch(client, t, sc.timeout(), state.config.ingest.max_body_bytes).await;
    let st = state.clone();
    let sc2 = sc.clone();
    let t2 = t.clone();
    let joined = tokio::task::spawn_blocking(move || {
        build_and_commit(&st, &sc2, &t2, fetched, ts, started, seen)
    })
    .await;
    match joined {
        Ok((seen, status)) => {
            state.metrics.scraped(status.up);
            let mut all = state.scrape_status.lock();
            match all
                .iter_mut()
                .find(|s| s.url == status.url && s.job == status.job)
            {
                Some(s) => *s = status,
                None => all.push(status),
            }
            seen
        }
        Err(e) => {
            tracing::error!(url = %t.url, error = %e, "Scrape task failed.");
            Seen::default()
        }
    }
}

fn build_and_commit(
    state: &AppState,
    sc: &ScrapeConfig,
    t: &Target,
    fetched: Result<(Vec<u8>, decode::TextFormat), String>,
    ts: i64,
    started: Instant,
    mut seen: Seen,
) -> (Seen, TargetStatus) {
    let limits = decode::limits(state);
    let mut error: Option<String> = None;
    let body_and_format = match fetched {
        Ok(v) => Some(v),
        Err(e) => {
            error = Some(e);
            None
        }
    };
    let mut decoded = match &body_and_format {
        Some((body, format)) => {
            let opts = decode::ExpositionOptions {
                format: *format,
                default_ts_nanos: ts,
                target_labels: &t.labels,
                honor_labels: sc.honor_labels,
                honor_timestamps: sc.honor_timestamps,
            };
            match decode::exposition(body, &opts, &limits) {
                Ok(d) if d.batch.len_samples() > sc.sample_limit => {
                    error = Some(format!(
                        "sample_limit exceeded: {} samples, the limit is {}",
                        d.batch.len_samples(),
                        sc.sample_limit
                    ));
                    None
                }
                Ok(d) => Some(d),
                Err(r) => {
                    error = Some(r.error.message);
                    None
                }
            }
        }
        None => None,
    };
    if let Some(d) = &decoded {
        if !d.report.is_clean() && d.batch.is_empty() {
            error = Some(format!("no valid series: {}", d.report));
        }
    }
    let up = error.is_none();
    let mut d = decoded.take().filter(|_| up).unwrap_or_else(|| Decoded {
        batch: gmc_model::WriteBatch::with_limits(limits.labels),
        report: Default::default(),
    });
    let scraped = d.batch.len_samples() as u64;

    // Staleness: every series of the previous scrape missing now gets a stale marker.
    let current: HashSet<u64> = d.batch.iter().map(|s| s.hash).collect();
    let mut added = 0u64;
    for s in d.batch.iter() {
        if !seen.series.contains_key(&s.hash) {
            added += 1;
        }
    }
    let gone: Vec<u64> = seen
        .series
        .keys()
        .filter(|h| !current.contains(h))
        .copied()
        .collect();
    let new_labels: Vec<(u64, Labels)> = d
        .batch
        .iter()
        .filter(|s| !seen.series.contains_key(&s.hash))
        .map(|s| (s.hash, s.to_labels()))
        .collect();
    for h in gone {
        if let Some(labels) = seen.series.remove(&h) {
            push_stale(&mut d.batch, &labels, ts);
        }
    }
    seen.series.extend(new_labels);

    let duration = started.elapsed().as_secs_f64();
    let report = [
        ("up", if up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", duration),
        ("scrape_samples_scraped", scraped as f64),
        ("scrape_series_added", added as f64),
    ];
    for (name, v) in report {
        let mut s = d.batch.series();
        for (n, val) in &t.labels {
            s.label(n.clone(), val.clone());
        }
        s.label(gmc_model::METRIC_NAME, name);
        s.float(ts, v);
        let _ = s.finish();
    }
    if let Err(e) = ingest::commit(state, Protocol::Scrape, d) {
        tracing::warn!(url = %t.url, error = %e, "Storing a scrape failed.");
    }
    if let Some(e) = &error {
        tracing::debug!(url = %t.url, error = %e, "Scrape failed.");
    }
    let status = TargetStatus {
        job: sc.job_name.clone(),
        url: t.url.clone(),
        instance: t.label("instance").to_owned(),
        up,
        last_error: error,
        last_scrape_ms: ts / NANOS_PER_MILLI,
        last_duration_seconds: duration,
        samples: scraped,
    };
    (seen, status)
}
