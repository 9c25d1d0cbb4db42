//! `/proc/stat`: CPU time per core and mode, context switches, interrupts, forks, boot
//! time and runnable/blocked tasks (node_exporter's `cpu` and `stat` collectors).

use std::path::PathBuf;

use super::{parse_err, read_into, Collect, Env};
use crate::error::Result;
use crate::snapshot::{Kind, Snapshot};

/// Modes in `/proc/stat` column order (after the `cpuN` word) that node_exporter reports in
/// `node_cpu_seconds_total`; guest columns go to `node_cpu_guest_seconds_total`.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

pub(crate) struct Stat {
    path: PathBuf,
    buf: String,
}

impl Stat {
    pub(crate) fn new(env: &Env) -> Self {
        Stat {
            path: env.proc("stat"),
            buf: String::with_capacity(4096),
        }
    }
}

impl Collect for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn collect(&mut self, env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.path, &mut self.buf)?;
        parse(&self.buf, env.ticks_per_sec, out).map_err(|what| parse_err(&self.path, what))
    }
}

/// Parse the text of `/proc/stat`; jiffies become seconds with `ticks_per_sec`.
pub(crate) fn parse(
    text: &str,
    ticks_per_sec: f64,
    out: &mut Snapshot,
) -> Result<(), &'static str> {
    let mut cpu = Vec::with_capacity(64);
    let mut guest = Vec::with_capacity(16);
    let mut singles: Vec<(&'static str, &'static str, Kind, f64)> = Vec::with_capacity(6);
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(key) = it.next() else { continue };
        if let Some(id) = key.strip_prefix("cpu") {
            if id.is_empty() {
                continue; // the all-CPU line: node_exporter reports per core only
            }
            let vals: Vec<f64> = it
                .map(|v| v.parse::<u64>().map(|v| v as f64 / ticks_per_sec))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| "non-numeric cpu field")?;
            if vals.len() < MODES.len() {
                return Err("cpu line with fewer than 8 fields");
            }
            for (mode, v) in MODES.iter().zip(&vals) {
                cpu.push((id, *mode, *v));
            }
            // Kernels since 2.6.24 add guest and guest_nice.
            if vals.len() >= 10 {
                guest.push((id, "user", vals[8]));
                guest.push((id, "nice", vals[9]));
            }
            continue;
        }
        let value = || -> Result<f64, &'static str> {
            line.split_ascii_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .map(|v| v as f64)
                .ok_or("non-numeric stat field")
        };
        match key {
            "intr" => singles.push((
                "node_intr_total",
                "Total number of interrupts serviced.",
                Kind::Counter,
                value()?,
            )),
            "ctxt" => singles.push((
                "node_context_switches_total",
                "Total number of context switches.",
                Kind::Counter,
                value()?,
            )),
            "btime" => singles.push((
                "node_boot_time_seconds",
                "Node boot time, in unixtime.",
                Kind::Gauge,
                value()?,
            )),
            "processes" => singles.push((
                "node_forks_total",
                "Total number of forks.",
                Kind::Counter,
                value()?,
            )),
            "procs_running" => singles.push((
                "node_procs_running",
                "Number of processes in runnable state.",
                Kind::Gauge,
                value()?,
            )),
            "procs_blocked" => singles.push((
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                Kind::Gauge,
                value()?,
            )),
            _ => {}
        }
    }
    if cpu.is_empty() {
        return Err("no cpuN lines");
    }
    let f = out.family(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        Kind::Counter,
    );
    for (id, mode, v) in cpu {
        f.push(vec![("cpu", id.to_owned()), ("mode", mode.to_owned())], v);
    }
    if !guest.is_empty() {
        let f = out.family(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            Kind::Counter,
        );
        for (id, mode, v) in guest {
            f.push(vec![("cpu", id.to_owned()), ("mode", mode.to_owned())], v);
        }
    }
    for (name, help, kind, v) in singles {
        out.single(name, help, kind, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixture_per_core_and_mode() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/stat"
        ))
        .unwrap();
        let mut s = Snapshot::new(0);
        parse(&text, 100.0, &mut s).unwrap();
        let cpu = s.get("node_cpu_seconds_total").unwrap();
        assert_eq!(cpu.samples.len(), 2 * 8);
        let user0 = cpu
            .samples
            .iter()
            .find(|x| x.labels == vec![("cpu", "0".to_owned()), ("mode", "user".to_owned())])
            .unwrap();
        assert!(user0.value > 0.0);
        assert!(s.get("node_context_switches_total").unwrap().samples[0].value > 0.0);
        assert!(s.get("node_boot_time_seconds").unwrap().samples[0].value > 1.0e9);
        assert_eq!(
            s.get("node_cpu_guest_seconds_total").unwrap().samples.len(),
            4
        );
        for n in [
            "node_intr_total",
            "node_forks_total",
            "node_procs_running",
            "node_procs_blocked",
        ] {
            assert!(s.get(n).is_some(), "{n}");
        }
    }

    #[test]
    fn jiffies_become_seconds() {
        let mut s = Snapshot::new(0);
        parse("cpu0 100 0 50 0 0 0 0 0\nctxt 7\n", 100.0, &mut s).unwrap();
        let cpu = s.get("node_cpu_seconds_total").unwrap();
        assert_eq!(cpu.samples[0].value, 1.0);
        assert_eq!(cpu.samples[2].value, 0.5);
    }

    #[test]
    fn rejects_garbage() {
        let mut s = Snapshot::new(0);
        assert!(parse("cpu0 x y\n", 100.0, &mut s).is_err());
        assert!(parse("", 100.0, &mut s).is_err());
    }
}
