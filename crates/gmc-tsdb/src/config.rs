//! Store configuration: sync policy, out-of-order window, series limits, segment sizes.
//! Deserialized from the `[tsdb]` section of the server config; every field has a default.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// How appends are made durable before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SyncPolicy {
    /// Every append writes and fsyncs the WAL itself.
    Batch,
    /// Concurrent appends share one fsync: the first waiter becomes the leader, waits up to
    /// `window` for followers (only while others are writing), fsyncs once and wakes them.
    GroupCommit {
        /// Longest extra wait of the leader for followers (0 = no extra wait: appenders
        /// that arrive while an fsync runs still share the next one).
        #[serde(with = "duration_ms")]
        window: Duration,
    },
    /// No fsync at all: acknowledged data survives a process crash (it is in the page
    /// cache) but not a power loss. For tests and benchmarks.
    None,
}

impl Default for SyncPolicy {
    /// Group commit without extra wait: measured in `docs/adr/0001-chunk-codec.md`, it
    /// costs a single appender nothing over `Batch` and lets N concurrent appenders share
    /// one fsync, so throughput scales with concurrency instead of fsync latency.
    fn default() -> Self {
        SyncPolicy::GroupCommit {
            window: Duration::ZERO,
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Configuration of the store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// WAL durability policy.
    pub sync: SyncPolicy,
    /// How far behind a series' newest sample a sample may arrive and still be accepted.
    #[serde(with = "duration_secs_f")]
    pub out_of_order_window: Duration,
    /// Most active (in-memory) series in the store.
    pub max_series: usize,
    /// Most active series per metric name.
    pub max_series_per_metric: usize,
    /// Size at which a WAL segment is closed and the next one started.
    pub wal_segment_bytes: u64,
    /// Time range of head data after which the head is flushed to a block (when it spans
    /// 1.5 times this). 30 min by default: the head's memory grows with it (peak RSS per
    /// series on the trading workload at 1 sample/s: ~15 kB at 30 min, ~53 kB at 2 h;
    /// `examples/head_memory.rs`), and a flush then still fills a block chunk (2,700 of
    /// 2,880 samples at 1 s).
    #[serde(with = "duration_secs_f")]
    pub head_flush_range: Duration,
    /// Interval of the background maintenance loop (head flush checks).
    #[serde(with = "duration_secs_f")]
    pub maintenance_interval: Duration,
    /// Samples per head chunk before it is cut and recompressed.
    pub chunk_samples: usize,
    /// Keep recompressed closed head chunks in files under `<data dir>/head_chunks/`
    /// instead of memory (read through a read-only mapping; the WAL stays the durable
    /// copy). The head's memory then holds series, index and open chunks only.
    pub head_chunks_on_disk: bool,
    /// Raw blocks entirely older than this are deleted (their rollups stay).
    #[serde(with = "duration_secs_f")]
    pub retention_raw: Duration,
    /// 1-minute rollup blocks entirely older than this are deleted.
    #[serde(with = "duration_secs_f")]
    pub retention_one_minute: Duration,
    /// 1-hour rollup blocks entirely older than this are deleted.
    #[serde(with = "duration_secs_f")]
    pub retention_one_hour: Duration,
    /// Size budget over all blocks in bytes; the oldest go first (`None`: unlimited).
    pub retention_max_bytes: Option<u64>,
}

mod duration_secs_f {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sync: SyncPolicy::default(),
            out_of_order_window: Duration::from_secs(600),
            max_series: 5_000_000,
            max_series_per_metric: 500_000,
            wal_segment_bytes: 64 << 20,
            head_flush_range: Duration::from_secs(1800),
            maintenance_interval: Duration::from_secs(60),
            chunk_samples: 120,
            head_chunks_on_disk: true,
            retention_raw: Duration::from_secs(30 * 24 * 3600),
            retention_one_minute: Duration::from_secs(180 * 24 * 3600),
            retention_one_hour: Duration::from_secs(730 * 24 * 3600),
            retention_max_bytes: None,
        }
    }
}

impl Config {
    /// Check ranges that serde cannot express.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.max_series == 0 {
            return bad("max_series", "must be at least 1");
        }
        if self.max_series_per_metric == 0 {
            return bad("max_series_per_metric", "must be at least 1");
        }
        if self.wal_segment_bytes < 64 << 10 {
            return bad("wal_segment_bytes", "must be at least 64 KiB");
        }
        if !(8..=65_535).contains(&self.chunk_samples) {
            return bad("chunk_samples", "must be within 8..=65535");
        }
        if self.head_flush_range < Duration::from_secs(60) {
            return bad("head_flush_range", "must be at least 60 s");
        }
        if self.maintenance_interval.is_zero() {
            return bad("maintenance_interval", "must be positive");
        }
        if let SyncPolicy::GroupCommit { window } = self.sync {
            if window > Duration::from_secs(1) {
                return bad("sync.group_commit.window", "must be at most 1000 ms");
            }
        }
        for (field, d) in [
            ("retention_raw", self.retention_raw),
            ("retention_one_minute", self.retention_one_minute),
            ("retention_one_hour", self.retention_one_hour),
        ] {
            if d < Duration::from_secs(3600) {
                return bad(field, "must be at least 1 h");
            }
            if i64::try_from(d.as_nanos()).is_err() {
                return bad(field, "too large");
            }
        }
        if i64::try_from(self.out_of_order_window.as_nanos()).is_err() {
            return bad("out_of_order_window", "too large");
        }
        Ok(())
    }

    /// The retention policy of blocks (every resolution and the size budget).
    pub fn retention_policy(&self) -> crate::retention::Policy {
        crate::retention::Policy {
            raw: self.retention_raw,
            one_minute: self.retention_one_minute,
            one_hour: self.retention_one_hour,
            max_bytes: self.retention_max_bytes,
        }
    }

    /// The out-of-order window in nanoseconds.
    pub(crate) fn ooo_window_nanos(&self) -> i64 {
        i64::try_from(self.out_of_order_window.as_nanos()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_unknown_fields_are_refused() {
        Config::default().validate().unwrap();
        let c: Config = serde_json::from_str(r#"{"max_series": 10, "sync": "batch"}"#).unwrap();
        assert_eq!(c.max_series, 10);
        assert_eq!(c.sync, SyncPolicy::Batch);
        let c: Config =
            serde_json::from_str(r#"{"sync": {"group_commit": {"window": 2}}}"#).unwrap();
        assert_eq!(
            c.sync,
            SyncPolicy::GroupCommit {
                window: Duration::from_millis(2)
            }
        );
        assert!(serde_json::from_str::<Config>(r#"{"nope": 1}"#).is_err());
        let c = Config {
            max_series: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
