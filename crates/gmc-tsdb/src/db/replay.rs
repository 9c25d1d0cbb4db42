//! WAL replay into the head on open. The calling thread reads and decodes records and
//! applies series and metadata records itself; samples are handed to worker threads
//! partitioned by head shard and already ordered by shard (so each series' samples stay
//! in WAL order on one worker) through bounded channels, and each worker locks a shard
//! once per run of samples.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use crate::error::Result;
use crate::head::{Head, U64Hasher, SHARDS};
use crate::querier::SampleValue;
use crate::wal::{self, record::Record};

/// Batches in flight per worker: enough to keep workers busy while the reader decodes,
/// few enough to bound memory (a batch is one record's samples for that worker).
const QUEUE_DEPTH: usize = 8;

type Batch = Vec<(u64, i64, SampleValue)>;

/// Replay the WAL in `wal_dir` into `head`, mapping WAL series refs to head refs. Returns
/// the WAL's replay statistics and the number of samples skipped because no series record
/// defined their ref.
pub(super) fn replay_into(wal_dir: &Path, head: &Head) -> Result<(wal::ReplayStats, u64)> {
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
                dispatch(&senders, &refmap, v, SampleValue::Float);
            }
            Record::Histograms(v) => {
                flush_refs(&mut pending_series, &mut refmap);
                dispatch(&senders, &refmap, v, |h| {
                    SampleValue::Histogram(Arc::new(h))
                });
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
        stats.map(|s| (s, unknown))
    })
}

/// Split one record's samples by worker and send them, each worker's part ordered by
/// head shard (a stable counting sort, so each series' samples keep their WAL order):
/// every sample is moved once, into its final place. A worker owns the shards congruent
/// to its index modulo the worker count.
fn dispatch<V>(
    senders: &[SyncSender<Batch>],
    refmap: &HashMap<u64, u64, BuildHasherDefault<U64Hasher>>,
    mut samples: Vec<(u64, i64, V)>,
    value: impl Fn(V) -> SampleValue,
) {
    let workers = senders.len().max(1);
    // Refs differ only when a series was recorded twice under different refs (rare: the
    // common case reads the samples without writing them).
    if !refmap.is_empty() {
        for x in &mut samples {
            x.0 = refmap.get(&x.0).copied().unwrap_or(x.0);
        }
    }
    let mut counts = [0usize; SHARDS];
    for x in &samples {
        counts[Head::shard_of_ref(x.0)] += 1;
    }
    // Start offset of each shard inside its worker's part, and each part's length.
    let mut starts = [0usize; SHARDS];
    let mut lens = vec![0usize; workers];
    for (shard, &c) in counts.iter().enumerate() {
        let w = shard % workers;
        starts[shard] = lens[w];
        lens[w] += c;
    }
    let mut parts: Vec<Batch> = lens
        .iter()
        .map(|&n| vec![(0, 0, SampleValue::Float(0.0)); n])
        .collect();
    for (r, ts, v) in samples {
        let shard = Head::shard_of_ref(r);
        let at = starts[shard];
        starts[shard] += 1;
        if let Some(slot) = parts.get_mut(shard % workers).and_then(|p| p.get_mut(at)) {
            *slot = (r, ts, value(v));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every sample reaches exactly one worker, the one owning its (mapped) shard; each
        /// part is ordered by shard; each series keeps its samples in record order.
        #[test]
        fn dispatch_partitions_by_shard_keeping_series_order(
            refs in proptest::collection::vec(0u64..300, 0..400),
            workers in 1usize..4,
            remap in proptest::option::of((0u64..300, 300u64..600)),
        ) {
            let mut refmap: HashMap<u64, u64, BuildHasherDefault<U64Hasher>> = HashMap::default();
            if let Some((from, to)) = remap {
                refmap.insert(from, to);
            }
            let (senders, receivers): (Vec<_>, Vec<_>) =
                (0..workers).map(|_| sync_channel::<Batch>(1)).unzip();
            let samples: Vec<(u64, i64, f64)> =
                refs.iter().enumerate().map(|(i, &r)| (r, i as i64, i as f64)).collect();
            dispatch(&senders, &refmap, samples, SampleValue::Float);
            drop(senders);
            let mut seen = 0;
            for (w, rx) in receivers.iter().enumerate() {
                let part = rx.try_recv().unwrap_or_default();
                seen += part.len();
                let shards: Vec<usize> = part.iter().map(|x| Head::shard_of_ref(x.0)).collect();
                prop_assert!(shards.windows(2).all(|p| p[0] <= p[1]), "not ordered by shard");
                prop_assert!(shards.iter().all(|s| s % workers == w), "wrong worker");
                for (r, ts, v) in &part {
                    let orig = refs[*ts as usize];
                    prop_assert_eq!(*r, refmap.get(&orig).copied().unwrap_or(orig));
                    prop_assert!(matches!(v, SampleValue::Float(f) if *f == *ts as f64));
                }
                // Within a series, timestamps (= record positions) increase.
                let mut last: HashMap<u64, i64> = HashMap::new();
                for (r, ts, _) in &part {
                    let prev = last.insert(*r, *ts);
                    prop_assert!(prev.is_none_or(|p| p < *ts), "series order lost");
                }
            }
            prop_assert_eq!(seen, refs.len());
        }
    }
}
