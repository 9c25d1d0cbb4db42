//! Process self-metrics for the instrumented service, read from `/proc/self` at each
//! collection (Linux; elsewhere the metrics stay at zero): CPU seconds, resident and
//! virtual memory, threads, open and maximum file descriptors, start time.

use std::fs;

use crate::error::Result;
use crate::metrics as own;
use crate::registry::Registry;

/// Linux reports `/proc` CPU times in USER_HZ, which is 100 on every supported arch.
const USER_HZ: f64 = 100.0;

/// What `/proc/self` says right now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub rss_bytes: u64,
    /// Virtual memory size.
    pub vsize_bytes: u64,
    /// OS threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Soft limit on file descriptors.
    pub max_fds: u64,
    /// Start time, Unix seconds.
    pub start_time_seconds: f64,
}

/// Read the stats (`None` where `/proc/self/stat` is missing or unreadable).
pub fn read() -> Option<ProcessStats> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Field numbers per proc(5), minus 3 for pid, comm and the slice start at state.
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let utime = num(14 - 3);
    let stime = num(15 - 3);
    let threads = num(20 - 3);
    let start_ticks = num(22 - 3);
    let vsize = num(23 - 3);
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    let open_fds = fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let max_fds = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let btime = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / USER_HZ,
        rss_bytes: rss_kb * 1024,
        vsize_bytes: vsize,
        threads,
        open_fds,
        max_fds,
        start_time_seconds: btime as f64 + start_ticks as f64 / USER_HZ,
    })
}

/// Register the `process_*` metrics in `registry`, refreshed before every collection.
pub fn register(registry: &Registry) -> Result<()> {
    let cpu = registry.observed_counter_with(
        own::PROCESS_CPU,
        "Total user and system CPU time spent in seconds.",
        &[],
    )?;
    let rss = registry.gauge(own::PROCESS_RSS, "Resident memory size in bytes.")?;
    let vsz = registry.gauge(own::PROCESS_VSZ, "Virtual memory size in bytes.")?;
    let threads = registry.gauge(own::PROCESS_THREADS, "Number of OS threads in the process.")?;
    let fds = registry.gauge(own::PROCESS_FDS, "Number of open file descriptors.")?;
    let max_fds = registry.gauge(
        own::PROCESS_MAX_FDS,
        "Maximum number of open file descriptors.",
    )?;
    let start = registry.gauge_f64(
        own::PROCESS_START,
        "Start time of the process since unix epoch in seconds.",
    )?;
    registry.on_collect(move || {
        if let Some(s) = read() {
            let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            cpu.set(s.cpu_seconds);
            rss.set(i(s.rss_bytes));
            vsz.set(i(s.vsize_bytes));
            threads.set(i(s.threads));
            fds.set(i(s.open_fds));
            max_fds.set(i(s.max_fds));
            start.set(s.start_time_seconds);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let s = super::read().unwrap();
        assert!(s.threads >= 1);
        assert!(s.rss_bytes > 0);
        assert!(s.open_fds >= 3);
        assert!(s.start_time_seconds > 1.0e9);
    }
}
