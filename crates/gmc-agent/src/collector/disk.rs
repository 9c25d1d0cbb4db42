//! `/proc/diskstats`: I/O per block device (ops, bytes, time, in flight, discards,
//! flushes), named as node_exporter's `diskstats` collector.

use std::path::PathBuf;

use super::{parse_err, read_into, Collect, Env};
use crate::error::Result;
use crate::snapshot::{Kind, Snapshot};

/// The kernel counts sectors of 512 bytes in diskstats whatever the device's sector size.
const SECTOR_BYTES: f64 = 512.0;

/// (name, help, kind, scale) per diskstats column after `major minor device`.
const COLUMNS: [(&str, &str, Kind, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        Kind::Counter,
        SECTOR_BYTES,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        Kind::Counter,
        SECTOR_BYTES,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        Kind::Gauge,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        Kind::Counter,
        0.001,
    ),
];

pub(crate) struct DiskStats {
    path: PathBuf,
    buf: String,
}

impl DiskStats {
    pub(crate) fn new(env: &Env) -> Self {
        DiskStats {
            path: env.proc("diskstats"),
            buf: String::with_capacity(4096),
        }
    }
}

impl Collect for DiskStats {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.path, &mut self.buf)?;
        parse(&self.buf, out).map_err(|what| parse_err(&self.path, what))
    }
}

/// node_exporter 1.5's default `--collector.diskstats.device-exclude`:
/// `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$` (partitions and pseudo devices).
pub(crate) fn device_excluded(name: &str) -> bool {
    let digits_tail = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for p in ["ram", "loop", "fd"] {
        if name.strip_prefix(p).is_some_and(digits_tail) {
            return true;
        }
    }
    for p in ["hd", "sd", "vd", "xvd"] {
        if let Some(rest) = name.strip_prefix(p) {
            let mut cs = rest.chars();
            if cs.next().is_some_and(|c| c.is_ascii_lowercase()) && digits_tail(cs.as_str()) {
                return true;
            }
        }
    }
    if let Some(rest) = name.strip_prefix("nvme") {
        // nvme<d+>n<d+>p<d+>
        let take_digits = |s: &str| -> Option<usize> {
            let n = s.bytes().take_while(u8::is_ascii_digit).count();
            (n > 0).then_some(n)
        };
        if let Some(a) = take_digits(rest) {
            if let Some(rest) = rest[a..].strip_prefix('n') {
                if let Some(b) = take_digits(rest) {
                    if let Some(rest) = rest[b..].strip_prefix('p') {
                        return digits_tail(rest);
                    }
                }
            }
        }
    }
    false
}

pub(crate) fn parse(text: &str, out: &mut Snapshot) -> Result<(), &'static str> {
    let mut rows: Vec<(&str, Vec<f64>)> = Vec::with_capacity(8);
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(_major), Some(_minor), Some(dev)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if device_excluded(dev) {
            continue;
        }
        let vals: Vec<f64> = it
            .map(|v| v.parse::<u64>().map(|v| v as f64))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| "non-numeric diskstats field")?;
        if vals.len() < 11 {
            return Err("diskstats line with fewer than 14 fields");
        }
        rows.push((dev, vals));
    }
    for (i, (name, help, kind, scale)) in COLUMNS.iter().enumerate() {
        // Older kernels lack the discard (4.18) and flush (5.5) columns: leave the family out.
        if !rows.iter().any(|(_, v)| v.len() > i) {
            continue;
        }
        let f = out.family(*name, help, *kind);
        for (dev, vals) in &rows {
            if let Some(v) = vals.get(i) {
                f.push(vec![("device", (*dev).to_owned())], v * scale);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_partitions_and_pseudo_devices() {
        for d in ["loop0", "ram1", "sda1", "vda2", "xvdb3", "nvme0n1p1", "fd0"] {
            assert!(device_excluded(d), "{d}");
        }
        for d in ["sda", "vda", "nvme0n1", "zram0", "dm-0", "md0"] {
            assert!(!device_excluded(d), "{d}");
        }
    }

    #[test]
    fn parses_fixture_with_units() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/diskstats"
        ))
        .unwrap();
        let mut s = Snapshot::new(0);
        parse(&text, &mut s).unwrap();
        let rb = s.get("node_disk_read_bytes_total").unwrap();
        assert!(rb.samples.iter().all(|x| x.labels[0].1 != "loop0"));
        let vda = rb.samples.iter().find(|x| x.labels[0].1 == "vda").unwrap();
        assert_eq!(vda.value % 512.0, 0.0);
        assert!(s.get("node_disk_flush_requests_total").is_some());
        assert!(s.get("node_disk_io_now").is_some());
    }

    #[test]
    fn old_kernel_without_discards_leaves_families_out() {
        let mut s = Snapshot::new(0);
        parse("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n", &mut s).unwrap();
        assert_eq!(
            s.get("node_disk_read_time_seconds_total").unwrap().samples[0].value,
            0.004
        );
        assert!(s.get("node_disk_discards_completed_total").is_none());
    }
}
