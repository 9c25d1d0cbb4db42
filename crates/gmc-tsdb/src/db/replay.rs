//! WAL replay into the head on open. The calling thread reads and decodes records and
//! applies series and metadata records itself; samples are handed to worker threads
//! partitioned by head shard (so each series' samples stay in WAL order on one worker)
//! through bounded channels, and each worker locks a shard once per run of samples.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use crate::error::Result;
use crate::head::{Head, U64Hasher};
use crate::querier::SampleValue;
use crate::wal::{self, record::Record};

/// Batches in flight per worker: enough to keep workers busy while the reader decodes,
/// few enough to bound memory (a batch is one record's samples for that worker).
const QUEUE_DEPTH: usize = 8;

type Batch = Vec<(u64, i64, SampleValue)>;

/// Replay the WAL in `wal_dir` into `head`, mapping WAL series refs to head refs.
pub(super) fn replay_into(wal_dir: &Path, head: &Head) -> Result<wal::ReplayStats> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    std::thread::scope(|scope| {
        let mut senders: Vec<SyncSender<Batch>> = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = sync_channel::<Batch>(QUEUE_DEPTH);
            senders.push(tx);
            handles.push(scope.spawn(move || {
                let mut unknown = 0u64;
                for mut batch in rx {
                    unknown += head.replay_batch(&mut batch);
                }
                unknown
            }));
        }
        let mut refmap: HashMap<u64, u64, BuildHasherDefault<U64Hasher>> = HashMap::default();
        let mut pending_series: Vec<(u64, u64)> = Vec::new();
        let stats = wal::replay(wal_dir, |rec| match rec {
            Record::Series(v) => {
                // Series are created here, before any later record's samples are sent,
                // so workers always find them.
                for (r, labels) in v {
                    let got = head.replay_series(r, &labels);
                    pending_series.push((r, got));
                }
            }
            Record::Floats(v) => {
                flush_refs(&mut pending_series, &mut refmap);
                dispatch(
                    &senders,
                    &refmap,
                    v.into_iter()
                        .map(|(r, ts, x)| (r, ts, SampleValue::Float(x)))
                        .collect(),
                );
            }
            Record::Histograms(v) => {
                flush_refs(&mut pending_series, &mut refmap);
                dispatch(
                    &senders,
                    &refmap,
                    v.into_iter()
                        .map(|(r, ts, h)| (r, ts, SampleValue::Histogram(Arc::new(h))))
                        .collect(),
                );
            }
            Record::Metadata(m) => head.set_metadata(&m),
        });
        drop(senders);
        let mut unknown = 0;
        for h in handles {
            match h.join() {
                Ok(n) => unknown += n,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        if unknown > 0 {
            tracing::warn!(
                samples = unknown,
                "WAL samples of unknown series skipped (their series record was lost)"
            );
        }
        stats
    })
}

/// Split one record's samples by worker (head shard modulo workers) and send them.
fn dispatch(
    senders: &[SyncSender<Batch>],
    refmap: &HashMap<u64, u64, BuildHasherDefault<U64Hasher>>,
    samples: Batch,
) {
    let workers = senders.len();
    let per = samples.len() / workers + 1;
    let mut parts: Vec<Batch> = (0..workers).map(|_| Vec::with_capacity(per)).collect();
    for (r, ts, v) in samples {
        // Refs differ only when a series was recorded twice under different refs.
        let r = if refmap.is_empty() {
            r
        } else {
            refmap.get(&r).copied().unwrap_or(r)
        };
        parts[Head::shard_of_ref(r) % workers].push((r, ts, v));
    }
    for (tx, part) in senders.iter().zip(parts) {
        if !part.is_empty() {
            // A send fails only if the worker died; its panic is re-raised by the caller.
            let _ = tx.send(part);
        }
    }
}

/// Apply the ref mapping of the series records seen since the last samples record.
fn flush_refs(
    pending: &mut Vec<(u64, u64)>,
    refmap: &mut HashMap<u64, u64, BuildHasherDefault<U64Hasher>>,
) {
    for (r, got) in pending.drain(..) {
        if got != r {
            refmap.insert(r, got);
        } else {
            refmap.remove(&r);
        }
    }
}
