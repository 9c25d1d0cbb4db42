//! Per-process figures for configured process names or pid files, summed per group and
//! named as process-exporter's `namedprocess_namegroup_*` families: CPU seconds, memory,
//! threads, open fds, context switches, start time.
//!
//! Name matching reads `/proc/<pid>/comm` once per new pid (cached while the pid lives), so a
//! steady host costs one directory listing per cycle plus the matched processes' files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{read_into, Collect, Env};
use crate::error::Result;
use crate::snapshot::{Kind, Snapshot};

/// Which processes make up a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSelector {
    /// Every process whose `comm` (the kernel's 15-byte name) equals `comm` (compared on
    /// its first 15 bytes); reported as `groupname=<comm>`.
    Name {
        /// Group label value.
        group: String,
        /// The process name.
        comm: String,
    },
    /// The process whose pid is written in `path` (re-read every cycle).
    PidFile {
        /// Group label value.
        group: String,
        /// The pid file.
        path: PathBuf,
    },
}

impl ProcessSelector {
    /// Parse a command-line spelling: `NAME`, `GROUP=NAME` or `GROUP=@/path/to/pidfile`.
    pub fn parse(s: &str) -> Option<ProcessSelector> {
        let (group, what) = s.split_once('=').unwrap_or((s, s));
        if group.is_empty() || what.is_empty() {
            return None;
        }
        Some(match what.strip_prefix('@') {
            Some(p) if !p.is_empty() => ProcessSelector::PidFile {
                group: group.to_owned(),
                path: PathBuf::from(p),
            },
            Some(_) => return None,
            None => ProcessSelector::Name {
                group: group.to_owned(),
                comm: what.to_owned(),
            },
        })
    }

    fn group(&self) -> &str {
        match self {
            ProcessSelector::Name { group, .. } | ProcessSelector::PidFile { group, .. } => group,
        }
    }
}

/// Figures read for one process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProcStat {
    pub(crate) utime_ticks: u64,
    pub(crate) stime_ticks: u64,
    pub(crate) threads: u64,
    pub(crate) start_ticks: u64,
    pub(crate) vsize_bytes: u64,
    pub(crate) rss_pages: u64,
}

/// Parse `/proc/<pid>/stat`; the name in parentheses may itself contain spaces and `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_ascii_whitespace().collect();
    // `f[0]` is field 3 (state) of proc(5).
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        utime_ticks: n(11)?,
        stime_ticks: n(12)?,
        threads: n(17)?,
        start_ticks: n(19)?,
        vsize_bytes: n(20)?,
        rss_pages: n(21)?,
    })
}

/// `(voluntary, nonvoluntary, swap bytes)` from `/proc/<pid>/status`.
pub(crate) fn parse_status(text: &str) -> Option<(u64, u64, u64)> {
    let mut vol = None;
    let mut nonvol = None;
    let mut swap = 0;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let num = || {
            v.split_ascii_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
        };
        match k {
            "voluntary_ctxt_switches" => vol = num(),
            "nonvoluntary_ctxt_switches" => nonvol = num(),
            "VmSwap" => swap = num().unwrap_or(0) * 1024,
            _ => {}
        }
    }
    Some((vol?, nonvol?, swap))
}

#[derive(Debug, Clone, Copy, Default)]
struct GroupSum {
    procs: u64,
    user_s: f64,
    system_s: f64,
    rss: f64,
    vsize: f64,
    swap: f64,
    threads: f64,
    fds: f64,
    vol: f64,
    nonvol: f64,
    oldest_start_s: Option<f64>,
}

pub(crate) struct Processes {
    proc_root: PathBuf,
    selectors: Vec<ProcessSelector>,
    /// pid → index of the name selector it matched (None: matched nothing). Entries are
    /// dropped when the pid leaves /proc, so a reused pid is matched afresh.
    cache: HashMap<u32, Option<usize>>,
    seen: Vec<u32>,
    boot_time_s: Option<f64>,
    buf: String,
    partial_errors: u64,
}

impl Processes {
    pub(crate) fn new(env: &Env, selectors: Vec<ProcessSelector>) -> Self {
        Processes {
            proc_root: env.proc_root.clone(),
            selectors,
            cache: HashMap::new(),
            seen: Vec::new(),
            boot_time_s: None,
            buf: String::with_capacity(1024),
            partial_errors: 0,
        }
    }

    fn boot_time(&mut self) -> Option<f64> {
        if self.boot_time_s.is_none() {
            let mut b = String::new();
            if read_into(&self.proc_root.join("stat"), &mut b).is_ok() {
                self.boot_time_s = b
                    .lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<f64>().ok());
            }
        }
        self.boot_time_s
    }

    /// Pids per selector index for this cycle.
    fn assign(&mut self) -> Vec<Vec<u32>> {
        let mut groups = vec![Vec::new(); self.selectors.len()];
        let any_name = self
            .selectors
            .iter()
            .any(|s| matches!(s, ProcessSelector::Name { .. }));
        if any_name {
            self.seen.clear();
            if let Ok(dir) = std::fs::read_dir(&self.proc_root) {
                for e in dir.flatten() {
                    let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    self.seen.push(pid);
                }
            } else {
                self.partial_errors += 1;
            }
            let seen = std::mem::take(&mut self.seen);
            let mut alive: HashMap<u32, Option<usize>> = HashMap::with_capacity(seen.len());
            for &pid in &seen {
                let m = match self.cache.get(&pid) {
                    Some(m) => *m,
                    None => self.match_name(pid),
                };
                alive.insert(pid, m);
                if let Some(i) = m {
                    groups[i].push(pid);
                }
            }
            self.cache = alive;
            self.seen = seen;
        }
        for (i, s) in self.selectors.iter().enumerate() {
            if let ProcessSelector::PidFile { path, .. } = s {
                match read_pid_file(path, &mut self.buf) {
                    Some(pid) => groups[i].push(pid),
                    None => self.partial_errors += 1,
                }
            }
        }
        groups
    }

    fn match_name(&mut self, pid: u32) -> Option<usize> {
        let path = self.proc_root.join(pid.to_string()).join("comm");
        // A process that exits between listing and reading is simply not matched.
        read_into(&path, &mut self.buf).ok()?;
        let comm = self.buf.trim_end_matches('\n');
        self.selectors.iter().position(|s| match s {
            ProcessSelector::Name { comm: want, .. } => {
                let want = &want.as_bytes()[..want.len().min(15)];
                comm.as_bytes() == want
            }
            ProcessSelector::PidFile { .. } => false,
        })
    }

    fn read_one(&mut self, pid: u32, env: &Env, boot_s: f64, sum: &mut GroupSum) -> Option<()> {
        let dir = self.proc_root.join(pid.to_string());
        read_into(&dir.join("stat"), &mut self.buf).ok()?;
        let st = parse_stat(&self.buf)?;
        read_into(&dir.join("status"), &mut self.buf).ok()?;
        let (vol, nonvol, swap) = parse_status(&self.buf)?;
        let fds = std::fs::read_dir(dir.join("fd")).ok()?.count();
        sum.procs += 1;
        sum.user_s += st.utime_ticks as f64 / env.ticks_per_sec;
        sum.system_s += st.stime_ticks as f64 / env.ticks_per_sec;
        sum.rss += st.rss_pages as f64 * env.page_bytes;
        sum.vsize += st.vsize_bytes as f64;
        sum.swap += swap as f64;
        sum.threads += st.threads as f64;
        sum.fds += fds as f64;
        sum.vol += vol as f64;
        sum.nonvol += nonvol as f64;
        let start = boot_s + st.start_ticks as f64 / env.ticks_per_sec;
        sum.oldest_start_s = Some(sum.oldest_start_s.map_or(start, |o: f64| o.min(start)));
        Some(())
    }
}

fn read_pid_file(path: &Path, buf: &mut String) -> Option<u32> {
    read_into(path, buf).ok()?;
    buf.trim().parse().ok()
}

impl Collect for Processes {
    fn name(&self) -> &'static str {
        "process"
    }

    fn collect(&mut self, env: &Env, out: &mut Snapshot) -> Result<()> {
        if self.selectors.is_empty() {
            return Ok(());
        }
        let boot_s = self.boot_time().unwrap_or(0.0);
        let groups = self.assign();
        let mut sums = vec![GroupSum::default(); self.selectors.len()];
        for (i, pids) in groups.iter().enumerate() {
            for &pid in pids {
                if self.read_one(pid, env, boot_s, &mut sums[i]).is_none() {
                    // Vanished between listing and reading, or unreadable: counted, skipped.
                    self.partial_errors += 1;
                    self.cache.remove(&pid);
                }
            }
        }
        // Several selectors may share a group name (a name and a pid file): merge them.
        let mut merged: Vec<(String, GroupSum)> = Vec::new();
        for (s, g) in self.selectors.iter().zip(sums) {
            match merged.iter_mut().find(|(n, _)| n == s.group()) {
                Some((_, m)) => {
                    m.procs += g.procs;
                    m.user_s += g.user_s;
                    m.system_s += g.system_s;
                    m.rss += g.rss;
                    m.vsize += g.vsize;
                    m.swap += g.swap;
                    m.threads += g.threads;
                    m.fds += g.fds;
                    m.vol += g.vol;
                    m.nonvol += g.nonvol;
                    m.oldest_start_s = match (m.oldest_start_s, g.oldest_start_s) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => merged.push((s.group().to_owned(), g)),
            }
        }
        let g = |n: &String| ("groupname", n.clone());
        let f = out.family(
            "namedprocess_namegroup_num_procs",
            "Number of processes in this group.",
            Kind::Gauge,
        );
        for (n, s) in &merged {
            f.push(vec![g(n)], s.procs as f64);
        }
        let f = out.family(
            "namedprocess_namegroup_cpu_seconds_total",
            "CPU user/system time in seconds.",
            Kind::Counter,
        );
        for (n, s) in &merged {
            f.push(vec![g(n), ("mode", "user".to_owned())], s.user_s);
            f.push(vec![g(n), ("mode", "system".to_owned())], s.system_s);
        }
        let f = out.family(
            "namedprocess_namegroup_memory_bytes",
            "Number of bytes of memory in use.",
            Kind::Gauge,
        );
        for (n, s) in &merged {
            f.push(vec![g(n), ("memtype", "resident".to_owned())], s.rss);
            f.push(vec![g(n), ("memtype", "virtual".to_owned())], s.vsize);
            f.push(vec![g(n), ("memtype", "swapped".to_owned())], s.swap);
        }
        let f = out.family(
            "namedprocess_namegroup_num_threads",
            "Number of threads.",
            Kind::Gauge,
        );
        for (n, s) in &merged {
            f.push(vec![g(n)], s.threads);
        }
        let f = out.family(
            "namedprocess_namegroup_open_filedesc",
            "Number of open file descriptors for this group.",
            Kind::Gauge,
        );
        for (n, s) in &merged {
            f.push(vec![g(n)], s.fds);
        }
        let f = out.family(
            "namedprocess_namegroup_context_switches_total",
            "Context switches.",
            Kind::Counter,
        );
        for (n, s) in &merged {
            f.push(vec![g(n), ("ctxswitchtype", "voluntary".to_owned())], s.vol);
            f.push(
                vec![g(n), ("ctxswitchtype", "nonvoluntary".to_owned())],
                s.nonvol,
            );
        }
        let f = out.family(
            "namedprocess_namegroup_oldest_start_time_seconds",
            "Start time in seconds since 1970/01/01 of oldest process in group.",
            Kind::Gauge,
        );
        for (n, s) in &merged {
            if let Some(t) = s.oldest_start_s {
                f.push(vec![g(n)], t);
            }
        }
        Ok(())
    }

    fn partial_errors(&self) -> u64 {
        self.partial_errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_spellings() {
        assert_eq!(
            ProcessSelector::parse("gmc"),
            Some(ProcessSelector::Name {
                group: "gmc".into(),
                comm: "gmc".into()
            })
        );
        assert_eq!(
            ProcessSelector::parse("oms=@/run/oms.pid"),
            Some(ProcessSelector::PidFile {
                group: "oms".into(),
                path: "/run/oms.pid".into()
            })
        );
        assert_eq!(ProcessSelector::parse("x=@"), None);
        assert_eq!(ProcessSelector::parse("=y"), None);
    }

    #[test]
    fn stat_with_parenthesised_name() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/4242/stat"
        ))
        .unwrap();
        let st = parse_stat(&text).unwrap();
        assert!(st.threads >= 1 && st.rss_pages > 0 && st.start_ticks > 0);
        let weird = text.replacen('(', "(a) b (", 1);
        assert_eq!(parse_stat(&weird), Some(st));
        assert_eq!(parse_stat("12 (x) S 1"), None);
    }

    #[test]
    fn status_fixture() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/4242/status"
        ))
        .unwrap();
        let (vol, _nonvol, _swap) = parse_status(&text).unwrap();
        assert!(vol > 0);
        assert_eq!(parse_status("Name: x\n"), None);
    }
}
