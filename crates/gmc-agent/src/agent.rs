//! The agent loop: collect every interval, add the agent's own metrics, append the cycle to
//! the spool (when pushing) and publish it on `/metrics` (when listening).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::collector::{self, Collectors};
use crate::error::{Error, Result};
use crate::http::{Exposition, Server};
use crate::metrics::{self, Counters};
use crate::push::{self, SharedSpool};
use crate::snapshot::{Kind, Snapshot};
use crate::spool::{self, Spool};

/// A stop flag threads can wait on.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<(Mutex<bool>, Condvar)>);

impl Stop {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the flag and wake every waiter.
    pub fn stop(&self) {
        let (m, cv) = &*self.0;
        if let Ok(mut g) = m.lock() {
            *g = true;
        }
        cv.notify_all();
    }

    /// Whether the flag is set.
    pub fn is_stopped(&self) -> bool {
        self.0 .0.lock().map(|g| *g).unwrap_or(true)
    }

    /// Sleep up to `d`; returns true if the flag is (or becomes) set.
    pub fn wait(&self, d: Duration) -> bool {
        let (m, cv) = &*self.0;
        let Ok(g) = m.lock() else { return true };
        match cv.wait_timeout_while(g, d, |stopped| !*stopped) {
            Ok((g, _)) => *g,
            Err(_) => true,
        }
    }
}

/// Settings of `gmc agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What to collect.
    pub collectors: collector::Config,
    /// Time between cycles (100 ms at least).
    pub interval: Duration,
    /// remote_write URL of the center, if pushing.
    pub push_url: Option<String>,
    /// Per-request timeout of pushes.
    pub push_timeout: Duration,
    /// Address for `/metrics`, if serving.
    pub listen: Option<String>,
    /// Spool settings (used when pushing).
    pub spool: spool::Config,
    /// `instance` label (default: the host name).
    pub instance: String,
    /// How long a stopping agent keeps sending its backlog before it exits.
    pub drain_on_stop: Duration,
}

impl Config {
    /// Defaults: 1 s interval, spool in `./gmc-agent-spool`, instance = host name.
    pub fn new() -> Self {
        Config {
            collectors: collector::Config::default(),
            interval: Duration::from_secs(1),
            push_url: None,
            push_timeout: Duration::from_secs(10),
            listen: None,
            spool: spool::Config::new(PathBuf::from("./gmc-agent-spool")),
            instance: crate::hostname(),
            drain_on_stop: Duration::from_secs(2),
        }
    }

    /// Check values that parse but make no sense.
    pub fn validate(&self) -> Result<()> {
        if self.interval < Duration::from_millis(100) {
            return Err(Error::Config {
                key: "interval",
                reason: "must be at least 100ms".to_owned(),
            });
        }
        if self.push_url.is_none() && self.listen.is_none() {
            return Err(Error::Config {
                key: "push",
                reason: "give --push URL, --listen ADDR or both".to_owned(),
            });
        }
        if self.instance.is_empty() {
            return Err(Error::Config {
                key: "instance",
                reason: "must not be empty".to_owned(),
            });
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// A configured agent, bound and ready to run.
#[derive(Debug)]
pub struct Agent {
    config: Config,
    server: Option<Server>,
    spool: Option<SharedSpool>,
    client: Option<push::Client>,
}

impl Agent {
    /// Validate, open the spool and bind the listener (so errors surface before running).
    pub fn new(config: Config) -> Result<Agent> {
        config.validate()?;
        let server = config.listen.as_deref().map(Server::bind).transpose()?;
        let (spool, client) = match &config.push_url {
            Some(url) => {
                let client = push::Client::new(url, config.push_timeout)?;
                let spool = Spool::open(config.spool.clone())?;
                (
                    Some(Arc::new((Mutex::new(spool), Condvar::new()))),
                    Some(client),
                )
            }
            None => (None, None),
        };
        Ok(Agent {
            config,
            server,
            spool,
            client,
        })
    }

    /// Address `/metrics` is served on, if listening.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Run until `stop` is set; then flush the spool and return.
    pub fn run(self, stop: Stop) -> Result<()> {
        let Agent {
            config,
            server,
            spool,
            client,
        } = self;
        let counters = Arc::new(Counters::default());
        let exposition: Exposition = Arc::default();
        let mut threads = Vec::new();
        if let Some(server) = server {
            let (text, stop) = (exposition.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("gmc-agent-http".into())
                    .spawn(move || server.serve(text, stop))
                    .map_err(|source| Error::Bind {
                        addr: "thread".into(),
                        source,
                    })?,
            );
        }
        if let (Some(client), Some(spool)) = (client, spool.clone()) {
            let (counters, stop, drain) = (counters.clone(), stop.clone(), config.drain_on_stop);
            threads.push(
                std::thread::Builder::new()
                    .name("gmc-agent-push".into())
                    .spawn(move || push::run_sender(client, spool, counters, stop, drain))
                    .map_err(|source| Error::Bind {
                        addr: "thread".into(),
                        source,
                    })?,
            );
        }
        let mut cycle = Cycle {
            collectors: Collectors::new(&config.collectors),
            target: vec![
                ("job".to_owned(), crate::AGENT_JOB.to_owned()),
                ("instance".to_owned(), config.instance.clone()),
            ],
            last_cycle: Duration::ZERO,
            counters,
            spool,
            exposition: config.listen.as_ref().map(|_| exposition),
        };
        tracing::info!(
            interval_ms = config.interval.as_millis() as u64,
            instance = %config.instance,
            push = config.push_url.as_deref().unwrap_or("-"),
            "Agent started."
        );
        let mut next = Instant::now();
        while !stop.is_stopped() {
            cycle.run_once();
            next += config.interval;
            let now = Instant::now();
            if next <= now {
                // Overran (suspended, overloaded): skip missed ticks rather than burst.
                next = now + config.interval;
            }
            stop.wait(next - now);
        }
        if let Some(sp) = &cycle.spool {
            sp.1.notify_all();
        }
        for t in threads {
            let _ = t.join();
        }
        if let Some(sp) = &cycle.spool {
            if let Ok(mut s) = sp.0.lock() {
                s.sync()?;
            }
        }
        tracing::info!("Agent stopped.");
        Ok(())
    }
}

/// The per-cycle work of the agent loop: collect, describe itself, spool, publish.
struct Cycle {
    collectors: Collectors,
    target: Vec<(String, String)>,
    last_cycle: Duration,
    counters: Arc<Counters>,
    spool: Option<SharedSpool>,
    exposition: Option<Exposition>,
}

impl Cycle {
    fn run_once(&mut self) {
        let started = Instant::now();
        let mut snap = self.collectors.collect(gmc_model::now_nanos());
        self.collectors.describe(&mut snap);
        snap.single(
            metrics::COLLECTIONS,
            "Collection cycles since the agent started.",
            Kind::Counter,
            self.collectors.cycles() as f64,
        );
        snap.single(
            metrics::CYCLE_DURATION,
            "Duration of the previous whole cycle (collect, encode, spool).",
            Kind::Gauge,
            self.last_cycle.as_secs_f64(),
        );
        let spool_stats = self
            .spool
            .as_ref()
            .and_then(|s| s.0.lock().ok().map(|g| g.stats()));
        self.counters.describe(spool_stats, &mut snap);
        // Spool first: once a cycle is visible on /metrics it is already in the spool.
        if let Some(spool) = &self.spool {
            spool_cycle(&snap, &self.target, &self.counters, spool);
        }
        if let Some(text) = &self.exposition {
            let mut out = String::with_capacity(64 * 1024);
            snap.render_text(&mut out);
            if let Ok(mut t) = text.lock() {
                *t = out;
            }
        }
        self.last_cycle = started.elapsed();
    }
}

fn spool_cycle(
    snap: &Snapshot,
    target: &[(String, String)],
    counters: &Counters,
    spool: &SharedSpool,
) {
    let (batch, invalid) = snap.to_batch(target, gmc_model::ValidationLimits::default());
    if invalid > 0 {
        counters
            .dropped_invalid
            .fetch_add(invalid as u64, Ordering::Relaxed);
    }
    let samples = u32::try_from(batch.len_samples()).unwrap_or(u32::MAX);
    let payload = gmc_wire::remote_write::encode_write_request(&batch);
    let (lock, cv) = &**spool;
    match lock.lock() {
        Ok(mut s) => {
            if let Err(e) = s.append(&payload, samples) {
                counters
                    .dropped_spool_error
                    .fetch_add(u64::from(samples), Ordering::Relaxed);
                tracing::error!(error = %e, samples, "Cannot spool a cycle; its samples are lost.");
            }
        }
        Err(_) => {
            counters
                .dropped_spool_error
                .fetch_add(u64::from(samples), Ordering::Relaxed);
        }
    }
    cv.notify_all();
}
