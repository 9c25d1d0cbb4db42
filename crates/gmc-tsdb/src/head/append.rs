//! Two-phase batch append. `prepare` finds or creates each series and validates and
//! reserves its samples under the shard lock; the caller then writes the WAL; `commit`
//! stores the samples. Shards are visited in order, each locked once per phase.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use gmc_model::{Histogram, WriteBatch};

use super::{Head, LabelSet, SHARDS};
use crate::db::Rejection;
use crate::querier::SampleValue;

/// The outcome of `prepare`: which series go to the WAL and the head.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Per batch series: its head ref when accepted.
    pub(crate) refs: Vec<Option<u64>>,
    /// Series that need a WAL series record before their samples.
    pub(crate) new_series: Vec<(u64, LabelSet)>,
    /// Series refused, with the reason.
    pub(crate) rejected: Vec<Rejection>,
    /// Series created by this batch.
    pub(crate) created: usize,
    /// Histograms of the batch, shared between WAL encoding and the head.
    pub(crate) histograms: Vec<Vec<Arc<Histogram>>>,
    /// Batch series indexes grouped by shard, in batch order within a shard.
    by_shard: ByShard,
    /// Accepted batch series with a sample at or before the `flushed_maxt` given to
    /// `prepare`: they must also be checked against flushed data.
    pub(crate) touches_flushed: Vec<usize>,
    /// Per batch series (empty when none is): every sample is already stored in the head
    /// with the same value, so `commit` skips it. A retried write otherwise looked up
    /// each sample's stored value twice, once to check it and once to store it.
    pub(crate) already_stored: Vec<bool>,
}

/// Indexes `0..n` grouped by shard in one array (a counting sort): a vector per shard
/// grew by doubling for every batch, ~2 % of remote-write CPU in reallocations.
#[derive(Debug, Default)]
struct ByShard {
    /// Indexes, shard by shard.
    idxs: Vec<u32>,
    /// Where each shard's indexes start in `idxs`; shard `k` ends where `k + 1` starts.
    starts: Vec<u32>,
}

impl ByShard {
    /// Group the indexes `0..n` by `shard_of` (each below [`SHARDS`]; called twice per
    /// index, so it should be cheap).
    fn new(n: usize, shard_of: impl Fn(usize) -> usize) -> ByShard {
        let mut starts = vec![0u32; SHARDS + 1];
        for i in 0..n {
            starts[shard_of(i) + 1] += 1;
        }
        for k in 0..SHARDS {
            starts[k + 1] += starts[k];
        }
        let mut next = starts.clone();
        let mut idxs = vec![0u32; n];
        for i in 0..n {
            let at = &mut next[shard_of(i)];
            idxs[*at as usize] = i as u32;
            *at += 1;
        }
        ByShard { idxs, starts }
    }

    /// `(shard, its indexes)` for every shard with any, in shard order.
    fn iter(&self) -> impl Iterator<Item = (usize, &[u32])> + '_ {
        self.starts
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[1] > w[0])
            .map(|(k, w)| (k, &self.idxs[w[0] as usize..w[1] as usize]))
    }
}

impl Plan {
    /// Accepted float and histogram sample counts.
    pub(crate) fn accepted(&self, batch: &WriteBatch<'_>) -> (usize, usize) {
        let mut f = 0;
        let mut h = 0;
        for (i, r) in self.refs.iter().enumerate() {
            if r.is_some() {
                if let Some(s) = batch.get(i) {
                    f += s.floats.len();
                    h += s.histograms.len();
                }
            }
        }
        (f, h)
    }
}

impl Head {
    /// Phase 1: resolve series, validate and reserve samples. Series with a sample at or
    /// before `flushed_maxt` are listed in [`Plan::touches_flushed`].
    pub(crate) fn prepare(&self, batch: &WriteBatch<'_>, flushed_maxt: i64) -> Plan {
        let n = batch.len_series();
        let mut plan = Plan {
            refs: vec![None; n],
            by_shard: ByShard::new(n, |i| batch.hash(i).map_or(0, Self::shard_of_hash)),
            histograms: Vec::new(),
            ..Plan::default()
        };
        if batch.len_histograms() > 0 {
            plan.histograms = batch
                .iter()
                .map(|s| {
                    s.histograms
                        .iter()
                        .map(|h| Arc::new(h.histogram.clone()))
                        .collect()
                })
                .collect();
        }
        let window = self.settings.window_nanos;
        for (shard_idx, idxs) in plan.by_shard.iter() {
            let mut shard = self.shards[shard_idx].lock();
            shard.touch(batch, idxs, true);
            for &i in idxs {
                let i = i as usize;
                let Some(s) = batch.get(i) else { continue };
                let r = match shard.find(s.hash, s.key) {
                    Some(r) => r,
                    None => match self.create(
                        shard_idx,
                        &mut shard,
                        s.hash,
                        &s.label_refs(),
                        s.key,
                        None,
                    ) {
                        Ok(r) => {
                            plan.created += 1;
                            r
                        }
                        Err(e) => {
                            self.metrics
                                .reject(e.reason(), (s.floats.len() + s.histograms.len()) as u64);
                            plan.rejected.push(Rejection {
                                series_index: i,
                                error: e,
                            });
                            continue;
                        }
                    },
                };
                // The second probe compares refs, not keys: the key was compared once.
                let Some(series) = shard.get_mut_hinted(s.hash, r) else {
                    continue;
                };
                let res = if s.histograms.is_empty() {
                    series.reserve_floats(s.floats, window)
                } else {
                    let hists = plan.histograms.get(i);
                    let samples = s
                        .floats
                        .iter()
                        .map(|f| (f.ts_nanos, SampleValue::Float(f.value)))
                        .chain(s.histograms.iter().enumerate().filter_map(|(j, h)| {
                            let x = hists?.get(j)?;
                            Some((h.ts_nanos, SampleValue::Histogram(Arc::clone(x))))
                        }));
                    series.reserve(samples, window)
                };
                match res {
                    Ok(stored) => {
                        plan.refs[i] = Some(r);
                        if stored {
                            if plan.already_stored.is_empty() {
                                plan.already_stored = vec![false; n];
                            }
                            plan.already_stored[i] = true;
                        }
                        // In-order floats: the first is the oldest, so this is one compare.
                        let old = s.floats.first().is_some_and(|f| f.ts_nanos <= flushed_maxt)
                            || (flushed_maxt > i64::MIN
                                && s.floats
                                    .iter()
                                    .map(|f| f.ts_nanos)
                                    .chain(s.histograms.iter().map(|h| h.ts_nanos))
                                    .any(|t| t <= flushed_maxt));
                        if old {
                            plan.touches_flushed.push(i);
                        }
                        if !series.wal_logged {
                            plan.new_series.push((r, Arc::clone(&series.labels)));
                        }
                    }
                    Err(e) => {
                        self.metrics
                            .reject(e.reason(), (s.floats.len() + s.histograms.len()) as u64);
                        plan.rejected.push(Rejection {
                            series_index: i,
                            error: e,
                        });
                    }
                }
            }
        }
        plan.rejected.sort_by_key(|r| r.series_index);
        plan
    }

    /// Phase 3 (after the WAL write to `segment`): store the samples of accepted series.
    /// Returns whether the closed chunks this left behind should be recompressed now.
    pub(crate) fn commit(&self, batch: &WriteBatch<'_>, plan: &Plan, segment: u64) -> bool {
        let (cs, range) = (self.settings.chunk_samples, self.settings.range_nanos);
        let mut conflicts = 0u64;
        let mut chunk_delta = 0i64;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (shard_idx, idxs) in plan.by_shard.iter() {
            let mut shard = self.shards[shard_idx].lock();
            shard.touch(batch, idxs, false);
            for &i in idxs {
                let i = i as usize;
                let (Some(Some(r)), Some(s)) = (plan.refs.get(i), batch.get(i)) else {
                    continue;
                };
                if plan.already_stored.get(i) == Some(&true) {
                    continue;
                }
                let Some(series) = shard.get_mut_hinted(s.hash, *r) else {
                    continue;
                };
                series.wal_logged = true;
                series.last_segment = segment;
                let before = series.chunk_count() as i64;
                for f in s.floats {
                    lo = lo.min(f.ts_nanos);
                    hi = hi.max(f.ts_nanos);
                    let out = series.insert(f.ts_nanos, SampleValue::Float(f.value), cs, range);
                    conflicts += u64::from(out == super::Inserted::Conflict);
                }
                if let Some(hs) = plan.histograms.get(i) {
                    for (h, x) in s.histograms.iter().zip(hs) {
                        lo = lo.min(h.ts_nanos);
                        hi = hi.max(h.ts_nanos);
                        let v = SampleValue::Histogram(Arc::clone(x));
                        let out = series.insert(h.ts_nanos, v, cs, range);
                        conflicts += u64::from(out == super::Inserted::Conflict);
                    }
                }
                chunk_delta += series.chunk_count() as i64 - before;
            }
        }
        if lo <= hi {
            self.note_time(lo);
            self.note_time(hi);
        }
        self.metrics.head_chunks.fetch_add(chunk_delta, Relaxed);
        if conflicts > 0 {
            // Two concurrent appends raced with different values for one timestamp; the
            // first stored wins and the other is dropped here.
            self.metrics.reject("duplicate_sample", conflicts);
        }
        self.note_opened_chunks(usize::try_from(chunk_delta).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::{ByShard, SHARDS};

    proptest::proptest! {
        #[test]
        fn by_shard_groups_indexes_in_order(
            shards in proptest::collection::vec(0usize..SHARDS, 0..300),
        ) {
            let g = ByShard::new(shards.len(), |i| shards[i]);
            let mut seen = Vec::new();
            let mut last_shard = None;
            for (k, idxs) in g.iter() {
                proptest::prop_assert!(!idxs.is_empty());
                proptest::prop_assert!(last_shard.is_none_or(|l| l < k));
                last_shard = Some(k);
                let want: Vec<u32> = (0..shards.len() as u32)
                    .filter(|&i| shards[i as usize] == k)
                    .collect();
                proptest::prop_assert_eq!(idxs, &want[..]);
                seen.extend_from_slice(idxs);
            }
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..shards.len() as u32).collect::<Vec<_>>());
        }
    }
}
