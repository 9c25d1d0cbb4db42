//! Reading rollups: rollup blocks up to the newest bucket they hold (the watermark), and
//! above it the same aggregates computed on the fly from raw data (head and raw blocks),
//! so a rollup query covers all time: old raw data deleted by retention answers from
//! rollup blocks, recent data not yet rolled up answers from raw.

use std::collections::BTreeMap;
use std::sync::Arc;

use gmc_model::{Labels, Matcher};

use super::{rollup, Aggregate, ROLLUP_LABEL};
use crate::block::Resolution;
use crate::error::Result;
use crate::querier::{Querier, Sample, Series, SourceSet};

impl Querier {
    /// Like [`Querier::select`] at a rollup resolution: per series, the `agg` of every
    /// `res` bucket stamped within `[mint, maxt]` (a sample at `T` summarises raw samples
    /// in `[T − step, T)`; see [`super::bucket_stamp`]). Reads rollup blocks, so it
    /// answers for time whose raw data retention deleted, and computes buckets not rolled
    /// up yet from raw data (head and raw blocks). `Resolution::Raw` returns the raw
    /// samples whatever the aggregate. Choose `res` with [`crate::Db::resolution_for`].
    pub fn select_rollup(
        &self,
        matchers: &[Matcher],
        res: Resolution,
        agg: Aggregate,
    ) -> Result<Vec<Series>> {
        let (set, mint, maxt) = self.view();
        crate::inplace::around(|| select(set, mint, maxt, matchers, res, agg))
    }
}

/// Series matching `matchers` with their `agg` samples of resolution `res` stamped within
/// `[mint, maxt]` (see [`super::bucket_stamp`]), the `__rollup__` label removed, sorted
/// by labels. `Resolution::Raw` returns the raw samples whatever the aggregate.
fn select(
    set: &Arc<dyn SourceSet>,
    mint: i64,
    maxt: i64,
    matchers: &[Matcher],
    res: Resolution,
    agg: Aggregate,
) -> Result<Vec<Series>> {
    if matchers.is_empty() || mint > maxt {
        return Ok(Vec::new());
    }
    let raw = |lo: i64| Querier::new(lo, maxt, Arc::clone(set), Arc::default()).select(matchers);
    if res == Resolution::Raw {
        return raw(mint);
    }
    let step = res.step_nanos();
    let (sources, watermark) = set.rollup_sources(res);
    let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();

    // Rollup blocks, newest first: the stable sort below keeps the newest block's sample
    // of a bucket computed twice (a re-rollup after late data).
    let hi = maxt.min(watermark);
    if mint <= hi {
        let mut with_agg = matchers.to_vec();
        with_agg.push(Matcher::equal(ROLLUP_LABEL, agg.label_value()));
        let mut buf = Vec::new();
        for src in &sources {
            buf.clear();
            src.select(&with_agg, mint, hi, &mut buf)?;
            for (labels, samples) in buf.drain(..) {
                merged
                    .entry(labels.without(ROLLUP_LABEL))
                    .or_default()
                    .extend(samples);
            }
        }
    }

    // Above the watermark: from raw data. A bucket stamped `T` holds raw samples in
    // `[T − step, T)`; buckets above the watermark start at or after it.
    let lo = mint.saturating_sub(step).max(watermark);
    if lo <= maxt {
        for s in raw(lo)? {
            let samples: Vec<Sample> = s.iter().collect();
            let Some((_, rolled)) = rollup(&samples, step)
                .into_iter()
                .find(|(name, _)| *name == agg.label_value())
            else {
                continue;
            };
            merged.entry(s.labels().clone()).or_default().extend(
                rolled
                    .into_iter()
                    .filter(|x| x.ts_nanos > watermark && x.ts_nanos >= mint && x.ts_nanos <= maxt),
            );
        }
    }

    Ok(merged
        .into_iter()
        .filter_map(|(labels, mut samples)| {
            samples.retain(|s| s.ts_nanos >= mint && s.ts_nanos <= maxt);
            samples.sort_by_key(|s| s.ts_nanos);
            samples.dedup_by_key(|s| s.ts_nanos);
            (!samples.is_empty()).then(|| Series::new(labels, samples))
        })
        .collect())
}
