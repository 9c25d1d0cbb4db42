//! Self-metrics of the store (`gmc_tsdb_*`), kept in atomics and rendered as Prometheus
//! text format 0.0.4 by [`Metrics::encode_text`]. Every metric name is spelled here only.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Label key of the sample kind.
pub const LABEL_KIND: &str = "kind";
/// Label key of the rejection reason.
pub const LABEL_REASON: &str = "reason";

const HEAD_SERIES: &str = "gmc_tsdb_head_series";
const HEAD_CHUNKS: &str = "gmc_tsdb_head_chunks";
const HEAD_RECOMPRESSED: &str = "gmc_tsdb_head_chunks_recompressed_total";
const HEAD_SPILLED_BYTES: &str = "gmc_tsdb_head_spilled_bytes";
const HEAD_SPILL_SEGMENTS: &str = "gmc_tsdb_head_spill_segments";
const HEAD_SPILL_FAILURES: &str = "gmc_tsdb_head_spill_failures_total";
const HEAD_SERIES_CREATED: &str = "gmc_tsdb_head_series_created_total";
const APPENDED: &str = "gmc_tsdb_appended_samples_total";
const REJECTED: &str = "gmc_tsdb_rejected_samples_total";
const WAL_FSYNC: &str = "gmc_tsdb_wal_fsync_duration_seconds";
const APPEND_PHASE: &str = "gmc_tsdb_append_phase_duration_seconds";
const WAL_BYTES: &str = "gmc_tsdb_wal_written_bytes_total";
const WAL_WRITE_FAILURES: &str = "gmc_tsdb_wal_write_failures_total";
const WAL_SEGMENTS: &str = "gmc_tsdb_wal_segments";
const REPLAY_DURATION: &str = "gmc_tsdb_wal_replay_duration_seconds";
const REPLAY_RECORDS: &str = "gmc_tsdb_wal_replay_records_total";
const REPLAY_DROPPED_BYTES: &str = "gmc_tsdb_wal_replay_dropped_bytes_total";
const REPLAY_CORRUPTIONS: &str = "gmc_tsdb_wal_replay_corruptions_total";
const REPLAY_UNKNOWN: &str = "gmc_tsdb_wal_replay_unknown_series_samples_total";
const FLUSH_DURATION: &str = "gmc_tsdb_head_flush_duration_seconds";
const FLUSH_FAILURES: &str = "gmc_tsdb_head_flush_failures_total";
const DISK_BYTES: &str = "gmc_tsdb_storage_bytes";
const ROLLUP_BLOCKS: &str = "gmc_tsdb_rollup_blocks_written_total";
const ROLLUP_FAILURES: &str = "gmc_tsdb_rollup_failures_total";

/// Reasons a series' samples are rejected, in output order.
pub(crate) const REASONS: [&str; 4] = [
    "out_of_order",
    "duplicate_sample",
    "series_limit",
    "metric_series_limit",
];

/// Phases of an append, the `phase` label of `gmc_tsdb_append_phase_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendPhase {
    /// Finding or creating the series, validating and reserving the samples (on the
    /// cores, for a large write), and checking samples older than the flushed data.
    Prepare,
    /// Encoding the WAL records and writing them (one writer at a time).
    LogWrite,
    /// Storing the samples in the head while the log's sync is in flight; done when
    /// both are.
    StoreSync,
}

impl AppendPhase {
    const ALL: [AppendPhase; 3] = [
        AppendPhase::Prepare,
        AppendPhase::LogWrite,
        AppendPhase::StoreSync,
    ];

    fn as_str(self) -> &'static str {
        match self {
            AppendPhase::Prepare => "prepare",
            AppendPhase::LogWrite => "log_write",
            AppendPhase::StoreSync => "store_sync",
        }
    }
}

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS_S: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    10.0,
];

/// A classic latency histogram in atomics.
#[derive(Debug, Default)]
pub(crate) struct LatencyHistogram {
    buckets: [AtomicU64; BUCKETS_S.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    /// Record one observation.
    pub(crate) fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS_S.iter().position(|&b| s <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    fn encode(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.encode_series(out, name, "");
    }

    /// The series lines only, each with `label` (`name="value"`, or empty) first.
    fn encode_series(&self, out: &mut String, name: &str, label: &str) {
        let sep = if label.is_empty() { "" } else { "," };
        let mut cum = 0;
        for (b, c) in BUCKETS_S.iter().zip(&self.buckets) {
            cum += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{label}{sep}le=\"{b}\"}} {cum}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{label}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        if label.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        } else {
            let _ = writeln!(
                out,
                "{name}_sum{{{label}}} {sum}\n{name}_count{{{label}}} {count}"
            );
        }
    }
}

/// Self-metrics of one store.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) head_series: AtomicI64,
    pub(crate) head_chunks: AtomicI64,
    pub(crate) chunks_recompressed: AtomicU64,
    pub(crate) spilled_bytes: AtomicU64,
    pub(crate) spill_segments: AtomicU64,
    pub(crate) spill_failures: AtomicU64,
    pub(crate) series_created: AtomicU64,
    pub(crate) appended_floats: AtomicU64,
    pub(crate) appended_histograms: AtomicU64,
    pub(crate) rejected: [AtomicU64; REASONS.len()],
    pub(crate) wal_fsync: LatencyHistogram,
    append_phases: [LatencyHistogram; AppendPhase::ALL.len()],
    pub(crate) wal_bytes: AtomicU64,
    pub(crate) wal_write_failures: AtomicU64,
    pub(crate) wal_segments: AtomicI64,
    pub(crate) replay_nanos: AtomicU64,
    pub(crate) replay_records: AtomicU64,
    pub(crate) replay_dropped_bytes: AtomicU64,
    pub(crate) replay_corruptions: AtomicU64,
    pub(crate) replay_unknown_series_samples: AtomicU64,
    pub(crate) flush: LatencyHistogram,
    pub(crate) flush_failures: AtomicU64,
    pub(crate) disk_bytes: AtomicU64,
    pub(crate) rollup_blocks: AtomicU64,
    pub(crate) rollup_failures: AtomicU64,
}

impl Metrics {
    /// An append spent `d` in `phase`.
    pub(crate) fn append_phase(&self, phase: AppendPhase, d: Duration) {
        self.append_phases[phase as usize].observe(d);
    }

    /// Count a rejection by its stable reason string.
    pub(crate) fn reject(&self, reason: &str, samples: u64) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].fetch_add(samples, Relaxed);
        }
    }

    /// Samples rejected so far for `reason` (see `SampleError::reason`).
    pub fn rejected_samples(&self, reason: &str) -> u64 {
        REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.rejected[i].load(Relaxed))
    }

    /// Closed head chunks recompressed from the appendable codec since start.
    pub fn chunks_recompressed(&self) -> u64 {
        self.chunks_recompressed.load(Relaxed)
    }

    /// Bytes of closed head chunks in spill files (see `head::spill`).
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes.load(Relaxed)
    }

    /// Spill writes that failed (their chunks stayed in memory).
    pub fn spill_failures(&self) -> u64 {
        self.spill_failures.load(Relaxed)
    }

    /// Active series in the head.
    pub fn head_series(&self) -> i64 {
        self.head_series.load(Relaxed)
    }

    /// Bytes of torn or corrupt WAL data dropped by replays since start.
    pub fn replay_dropped_bytes(&self) -> u64 {
        self.replay_dropped_bytes.load(Relaxed)
    }

    /// Corrupt or torn WAL places found by replays since start.
    pub fn replay_corruptions(&self) -> u64 {
        self.replay_corruptions.load(Relaxed)
    }

    /// WAL samples skipped by replays since start because no series record defined
    /// their ref (a checkpoint or segment that lost it).
    pub fn replay_unknown_series_samples(&self) -> u64 {
        self.replay_unknown_series_samples.load(Relaxed)
    }

    /// Render all families in Prometheus text format 0.0.4.
    pub fn encode_text(&self, out: &mut String) {
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        gauge(
            out,
            HEAD_SERIES,
            "Active series in the head.",
            self.head_series.load(Relaxed) as f64,
        );
        gauge(
            out,
            HEAD_CHUNKS,
            "Chunks held by the head.",
            self.head_chunks.load(Relaxed) as f64,
        );
        counter(
            out,
            HEAD_RECOMPRESSED,
            "Closed head chunks recompressed from the appendable XOR codec to the denser closed-chunk codec.",
            self.chunks_recompressed.load(Relaxed),
        );
        gauge(
            out,
            HEAD_SPILLED_BYTES,
            "Bytes of closed head chunks held in spill files instead of memory (freed by flushes).",
            self.spilled_bytes.load(Relaxed) as f64,
        );
        gauge(
            out,
            HEAD_SPILL_SEGMENTS,
            "Open head chunk spill files.",
            self.spill_segments.load(Relaxed) as f64,
        );
        counter(
            out,
            HEAD_SPILL_FAILURES,
            "Spill writes that failed; their chunks stayed in memory.",
            self.spill_failures.load(Relaxed),
        );
        counter(
            out,
            HEAD_SERIES_CREATED,
            "Series created in the head.",
            self.series_created.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP {APPENDED} Samples appended, by kind.\n# TYPE {APPENDED} counter"
        );
        let _ = writeln!(
            out,
            "{APPENDED}{{{LABEL_KIND}=\"float\"}} {}",
            self.appended_floats.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "{APPENDED}{{{LABEL_KIND}=\"histogram\"}} {}",
            self.appended_histograms.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP {REJECTED} Samples rejected, by reason.\n# TYPE {REJECTED} counter"
        );
        for (r, c) in REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "{REJECTED}{{{LABEL_REASON}=\"{r}\"}} {}",
                c.load(Relaxed)
            );
        }
        self.wal_fsync
            .encode(out, WAL_FSYNC, "Latency of WAL fsyncs.");
        let _ = writeln!(
            out,
            "# HELP {APPEND_PHASE} Time an append spent in each phase: prepare (series lookup, validation), log_write (WAL records encoded and written), store_sync (head stores the samples while the WAL syncs).\n# TYPE {APPEND_PHASE} histogram"
        );
        for ph in AppendPhase::ALL {
            self.append_phases[ph as usize].encode_series(
                out,
                APPEND_PHASE,
                &format!("phase=\"{}\"", ph.as_str()),
            );
        }
        counter(
            out,
            WAL_BYTES,
            "Bytes written to the WAL.",
            self.wal_bytes.load(Relaxed),
        );
        counter(
            out,
            WAL_WRITE_FAILURES,
            "Failed WAL writes (nothing of those appends was acknowledged).",
            self.wal_write_failures.load(Relaxed),
        );
        gauge(
            out,
            WAL_SEGMENTS,
            "WAL segment files on disk.",
            self.wal_segments.load(Relaxed) as f64,
        );
        gauge(
            out,
            REPLAY_DURATION,
            "Duration of the last WAL replay.",
            self.replay_nanos.load(Relaxed) as f64 / 1e9,
        );
        counter(
            out,
            REPLAY_RECORDS,
            "WAL records replayed.",
            self.replay_records.load(Relaxed),
        );
        counter(
            out,
            REPLAY_DROPPED_BYTES,
            "Torn or corrupt WAL bytes dropped during replay.",
            self.replay_dropped_bytes.load(Relaxed),
        );
        counter(
            out,
            REPLAY_CORRUPTIONS,
            "Torn or corrupt places found in the WAL during replay.",
            self.replay_corruptions.load(Relaxed),
        );
        counter(
            out,
            REPLAY_UNKNOWN,
            "WAL samples skipped during replay because no series record defined their ref.",
            self.replay_unknown_series_samples.load(Relaxed),
        );
        self.flush
            .encode(out, FLUSH_DURATION, "Duration of head flushes to blocks.");
        counter(
            out,
            FLUSH_FAILURES,
            "Failed head flushes.",
            self.flush_failures.load(Relaxed),
        );
        gauge(
            out,
            DISK_BYTES,
            "Bytes of WAL and blocks on disk.",
            self.disk_bytes.load(Relaxed) as f64,
        );
        counter(
            out,
            ROLLUP_BLOCKS,
            "Rollup blocks (1m and 1h) written from raw blocks.",
            self.rollup_blocks.load(Relaxed),
        );
        counter(
            out,
            ROLLUP_FAILURES,
            "Failed rollup jobs (retried at the next maintenance round).",
            self.rollup_failures.load(Relaxed),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_output_has_every_family_once() {
        let m = Metrics::default();
        m.reject("out_of_order", 3);
        m.wal_fsync.observe(Duration::from_micros(300));
        let mut s = String::new();
        m.encode_text(&mut s);
        assert!(s.contains("gmc_tsdb_rejected_samples_total{reason=\"out_of_order\"} 3"));
        assert!(s.contains("gmc_tsdb_wal_fsync_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(s.contains("gmc_tsdb_wal_fsync_duration_seconds_count 1"));
        m.append_phase(AppendPhase::LogWrite, Duration::from_micros(80));
        let mut s = String::new();
        m.encode_text(&mut s);
        assert!(s.contains(
            "gmc_tsdb_append_phase_duration_seconds_bucket{phase=\"log_write\",le=\"0.0001\"} 1\n"
        ));
        assert!(s.contains(
            "gmc_tsdb_append_phase_duration_seconds_bucket{phase=\"log_write\",le=\"0.00005\"} 0\n"
        ));
        assert!(s.contains("gmc_tsdb_append_phase_duration_seconds_count{phase=\"prepare\"} 0\n"));
        assert_eq!(
            s.matches("# TYPE gmc_tsdb_appended_samples_total").count(),
            1
        );
    }
}
