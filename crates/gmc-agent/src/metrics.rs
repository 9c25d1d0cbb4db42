//! The agent's own metrics: names as constants (call sites never spell them) and the
//! counters the sender updates, rendered into every cycle's snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::snapshot::{Kind, Snapshot};
use crate::spool;

/// Duration of each collector's last run, `{collector}`.
pub const COLLECTOR_DURATION: &str = "gmc_agent_collector_duration_seconds";
/// 1 if the collector's last run succeeded, `{collector}`.
pub const COLLECTOR_SUCCESS: &str = "gmc_agent_collector_success";
/// Failed collector runs and skipped reads, `{collector}`.
pub const COLLECTOR_ERRORS: &str = "gmc_agent_collector_errors_total";
/// Collection cycles since start; one sample per cycle, so gaps in delivery show as gaps
/// in this counter's values.
pub const COLLECTIONS: &str = "gmc_agent_collections_total";
/// Duration of the whole last cycle (collect, encode, spool).
pub const CYCLE_DURATION: &str = "gmc_agent_cycle_duration_seconds";
/// Bytes of spool segments.
pub const SPOOL_BYTES: &str = "gmc_agent_spool_bytes";
/// Records spooled and not yet acknowledged by the center.
pub const SPOOL_PENDING: &str = "gmc_agent_spool_pending_records";
/// Spool records skipped as corrupt (their samples are unknowable).
pub const SPOOL_CORRUPT: &str = "gmc_agent_spool_corrupt_records_total";
/// Failed sends (transport errors, 5xx, 429), each retried.
pub const SEND_ERRORS: &str = "gmc_agent_send_errors_total";
/// Samples the center acknowledged.
pub const SAMPLES_SENT: &str = "gmc_agent_samples_sent_total";
/// Samples lost, `{reason}`: `spool_full`, `rejected` (4xx from the center), `invalid` (a series broke label limits), `spool_error`.
pub const SAMPLES_DROPPED: &str = "gmc_agent_samples_dropped_total";

/// Counters shared by the collection loop and the sender.
#[derive(Debug, Default)]
pub struct Counters {
    /// See [`SEND_ERRORS`].
    pub send_errors: AtomicU64,
    /// See [`SAMPLES_SENT`].
    pub samples_sent: AtomicU64,
    /// Samples in requests the center refused with a 4xx.
    pub dropped_rejected: AtomicU64,
    /// Series the agent could not encode (label limits).
    pub dropped_invalid: AtomicU64,
    /// Samples of cycles the spool could not take (disk error).
    pub dropped_spool_error: AtomicU64,
}

impl Counters {
    /// Add the delivery families to `out`.
    pub fn describe(&self, spool: Option<spool::Stats>, out: &mut Snapshot) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        out.single(
            SEND_ERRORS,
            "Failed sends to the center (retried).",
            Kind::Counter,
            get(&self.send_errors),
        );
        out.single(
            SAMPLES_SENT,
            "Samples acknowledged by the center.",
            Kind::Counter,
            get(&self.samples_sent),
        );
        let sp = spool.unwrap_or_default();
        let f = out.family(SAMPLES_DROPPED, "Samples lost, by reason.", Kind::Counter);
        f.push(
            vec![("reason", "spool_full".to_owned())],
            sp.dropped_full_samples as f64,
        );
        f.push(
            vec![("reason", "rejected".to_owned())],
            get(&self.dropped_rejected),
        );
        f.push(
            vec![("reason", "invalid".to_owned())],
            get(&self.dropped_invalid),
        );
        f.push(
            vec![("reason", "spool_error".to_owned())],
            get(&self.dropped_spool_error),
        );
        if let Some(sp) = spool {
            out.single(
                SPOOL_BYTES,
                "Bytes of spool segments on disk.",
                Kind::Gauge,
                sp.bytes as f64,
            );
            out.single(
                SPOOL_CORRUPT,
                "Spool records skipped because they failed their CRC.",
                Kind::Counter,
                sp.corrupt_records as f64,
            );
            out.single(
                SPOOL_PENDING,
                "Spooled records not yet acknowledged.",
                Kind::Gauge,
                sp.pending_records as f64,
            );
        }
    }
}
