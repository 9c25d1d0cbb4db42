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
    /// Batch series indexes grouped by shard.
    by_shard: Vec<Vec<u32>>,
    /// Accepted batch series with a sample at or before the `flushed_maxt` given to
    /// `prepare`: they must also be checked against flushed data.
    pub(crate) touches_flushed: Vec<usize>,
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
            by_shard: vec![Vec::new(); SHARDS],
            histograms: Vec::new(),
            ..Plan::default()
        };
        let any_hist = batch.len_histograms() > 0;
        for (i, s) in batch.iter().enumerate() {
            plan.by_shard[Self::shard_of_hash(s.hash)].push(i as u32);
            if any_hist {
                plan.histograms.push(
                    s.histograms
                        .iter()
                        .map(|h| Arc::new(h.histogram.clone()))
                        .collect(),
                );
            }
        }
        let window = self.settings.window_nanos;
        for (shard_idx, idxs) in plan.by_shard.iter().enumerate() {
            if idxs.is_empty() {
                continue;
            }
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
                    Ok(()) => {
                        plan.refs[i] = Some(r);
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
        for (shard_idx, idxs) in plan.by_shard.iter().enumerate() {
            if idxs.is_empty() {
                continue;
            }
            let mut shard = self.shards[shard_idx].lock();
            shard.touch(batch, idxs, false);
            for &i in idxs {
                let i = i as usize;
                let (Some(Some(r)), Some(s)) = (plan.refs.get(i), batch.get(i)) else {
                    continue;
                };
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
