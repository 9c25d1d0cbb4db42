//! The collector set: each collector reads a few /proc or /sys files and adds node_exporter
//! families to a [`Snapshot`]. A failing collector is counted and skipped; the others run.

mod cpu;
mod disk;
mod filesystem;
mod memory;
mod net;
mod netstat;
mod process;
mod system;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::snapshot::{Kind, Snapshot};

pub use process::ProcessSelector;
pub use system::hostname;

/// What to collect and where the kernel's files are. Every collector reads procfs (or a
/// syscall: `statvfs`, `uname`); none reads sysfs, so there is no sysfs root to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Root of procfs (`/proc`; a fixture directory in tests).
    pub proc_root: PathBuf,
    /// Processes to report per group (process-exporter's `namedprocess_namegroup_*`).
    pub processes: Vec<ProcessSelector>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            proc_root: PathBuf::from("/proc"),
            processes: Vec::new(),
        }
    }
}

/// Facts every collector may need, read once.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub(crate) proc_root: PathBuf,
    /// `USER_HZ`: units of the jiffy counters in /proc/stat and /proc/<pid>/stat.
    pub(crate) ticks_per_sec: f64,
    /// Page size, for sockstat's `mem` (pages) and `/proc/<pid>/stat` rss (pages).
    pub(crate) page_bytes: f64,
}

impl Env {
    pub(crate) fn proc(&self, rel: &str) -> PathBuf {
        self.proc_root.join(rel)
    }
}

/// Read a whole file into `buf` (cleared first), mapping errors to [`Error::Read`].
pub(crate) fn read_into(path: &Path, buf: &mut String) -> Result<()> {
    buf.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(buf))
        .map(|_| ())
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })
}

pub(crate) fn parse_err(path: &Path, what: &'static str) -> Error {
    Error::Parse {
        path: path.to_owned(),
        what,
    }
}

/// One collector.
pub(crate) trait Collect: Send {
    /// Stable name, the `collector` label of the agent's own metrics.
    fn name(&self) -> &'static str;
    /// Add this collector's families; an error skips the rest of this collector only.
    fn collect(&mut self, env: &Env, out: &mut Snapshot) -> Result<()>;
    /// Failures that skipped only part of the output (one vanished process, one file of
    /// several) since start; the run itself still counted as a success.
    fn partial_errors(&self) -> u64 {
        0
    }
}

/// Per-collector figures of the last cycle and since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectorStats {
    /// Collector name.
    pub name: &'static str,
    /// Duration of its last run.
    pub last_duration: Duration,
    /// Runs that failed (unreadable or malformed file, vanished process).
    pub errors_total: u64,
    /// Whether the last run succeeded.
    pub last_success: bool,
}

/// All collectors, run in a fixed order every cycle.
pub struct Collectors {
    env: Env,
    collectors: Vec<Box<dyn Collect>>,
    stats: Vec<CollectorStats>,
    cycles: u64,
}

impl std::fmt::Debug for Collectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collectors")
            .field("env", &self.env)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Collectors {
    /// Build the standard set for `config`.
    pub fn new(config: &Config) -> Self {
        let env = Env {
            proc_root: config.proc_root.clone(),
            ticks_per_sec: f64::from(rustix::param::clock_ticks_per_second().max(1) as u32),
            page_bytes: rustix::param::page_size() as f64,
        };
        let collectors: Vec<Box<dyn Collect>> = vec![
            Box::new(cpu::Stat::new(&env)),
            Box::new(system::LoadAvg::new(&env)),
            Box::new(memory::MemInfo::new(&env)),
            Box::new(memory::VmStat::new(&env)),
            Box::new(disk::DiskStats::new(&env)),
            Box::new(filesystem::Filesystems::new(&env)),
            Box::new(net::NetDev::new(&env)),
            Box::new(netstat::Netstat::new(&env)),
            Box::new(netstat::Sockstat::new(&env)),
            Box::new(system::FileFd::new(&env)),
            Box::new(system::Uname),
            Box::new(system::Time),
            Box::new(process::Processes::new(&env, config.processes.clone())),
        ];
        let stats = collectors
            .iter()
            .map(|c| CollectorStats {
                name: c.name(),
                ..CollectorStats::default()
            })
            .collect();
        Collectors {
            env,
            collectors,
            stats,
            cycles: 0,
        }
    }

    /// Run every collector once into a fresh snapshot stamped `ts_nanos`.
    pub fn collect(&mut self, ts_nanos: i64) -> Snapshot {
        let mut out = Snapshot::new(ts_nanos);
        self.collect_into(&mut out);
        out
    }

    /// Run every collector once, appending to `out`.
    pub fn collect_into(&mut self, out: &mut Snapshot) {
        self.cycles += 1;
        for (c, st) in self.collectors.iter_mut().zip(self.stats.iter_mut()) {
            let started = Instant::now();
            let res = c.collect(&self.env, out);
            st.last_duration = started.elapsed();
            st.last_success = res.is_ok();
            if let Err(e) = res {
                st.errors_total += 1;
                // Debug only: a missing file fails every cycle and must not flood the log;
                // the counter is what operators alert on.
                tracing::debug!(collector = st.name, error = %e, "Collector failed; skipped.");
            }
        }
    }

    /// Figures per collector.
    pub fn stats(&self) -> &[CollectorStats] {
        &self.stats
    }

    /// Cycles run so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Errors inside collectors that skip only part of their output (a vanished process,
    /// one unreadable file among several), summed over collectors.
    pub fn partial_errors_total(&self) -> u64 {
        self.collectors
            .iter()
            .map(|c| c.partial_errors())
            .sum::<u64>()
    }

    /// Add the agent's per-collector families (duration, success, errors) to `out`.
    pub fn describe(&self, out: &mut Snapshot) {
        let f = out.family(
            crate::metrics::COLLECTOR_DURATION,
            "Duration of the collector's last run.",
            Kind::Gauge,
        );
        for st in &self.stats {
            f.push(
                vec![("collector", st.name.to_owned())],
                st.last_duration.as_secs_f64(),
            );
        }
        let f = out.family(
            crate::metrics::COLLECTOR_SUCCESS,
            "Whether the collector's last run succeeded.",
            Kind::Gauge,
        );
        for st in &self.stats {
            f.push(
                vec![("collector", st.name.to_owned())],
                if st.last_success { 1.0 } else { 0.0 },
            );
        }
        let f = out.family(
            crate::metrics::COLLECTOR_ERRORS,
            "Collector runs or reads that failed and were skipped (unreadable file, vanished process).",
            Kind::Counter,
        );
        for (st, c) in self.stats.iter().zip(&self.collectors) {
            f.push(
                vec![("collector", st.name.to_owned())],
                (st.errors_total + c.partial_errors()) as f64,
            );
        }
    }
}
