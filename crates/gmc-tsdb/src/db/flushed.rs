//! Out-of-order window and duplicate checks against data already flushed out of the head
//! (blocks, and heads being flushed). The head validates against what it holds; a sample
//! at or before the newest flushed timestamp may also collide with flushed data, or be
//! too old for a series whose newest sample was flushed (after a restart the head knows
//! nothing about flushed samples). Such samples are rare (late retries, out-of-order data
//! right after a flush), so the check reads blocks only for them.

use std::sync::Arc;

use gmc_model::{BatchSeries, Matcher, WriteBatch};

use super::{blocks, Inner, Rejection};
use crate::block::Resolution;
use crate::error::{Result, SampleError};
use crate::head::{Frozen, Plan};
use crate::querier::{Sample, SampleValue, Source};

/// Where a series' flushed data can be found.
enum Flushed {
    Block(Arc<blocks::BlockSource>),
    Frozen(Arc<Frozen>),
}

impl Inner {
    /// Newest timestamp flushed out of the head (raw blocks and heads being flushed).
    pub(super) fn flushed_maxt(&self) -> i64 {
        let b = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.resolution() == Resolution::Raw)
            .map(|b| b.maxt())
            .max()
            .unwrap_or(i64::MIN);
        let f = self
            .frozen
            .read()
            .iter()
            .map(|f| f.maxt)
            .max()
            .unwrap_or(i64::MIN);
        b.max(f)
    }

    /// Reject, in `plan`, accepted series with a sample that conflicts with flushed data
    /// (a different value at a flushed timestamp) or is older than the out-of-order window
    /// behind the series' newest flushed sample.
    pub(super) fn check_flushed(&self, batch: &WriteBatch<'_>, plan: &mut Plan) {
        let window = self.config.ooo_window_nanos();
        let mut sources: Vec<Flushed> = self
            .frozen
            .read()
            .iter()
            .map(|f| Flushed::Frozen(Arc::clone(f)))
            .collect();
        sources.extend(
            self.blocks
                .read()
                .iter()
                .rev()
                .filter(|b| b.resolution() == Resolution::Raw)
                .map(|b| Flushed::Block(Arc::clone(b))),
        );
        for i in std::mem::take(&mut plan.touches_flushed) {
            if plan.refs[i].is_none() {
                continue;
            }
            let Some(s) = batch.get(i) else { continue };
            let e = match check_series(&s, &sources, window) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(err) => {
                    // Unreadable flushed data must not block ingest: the series is
                    // accepted as the head alone would accept it.
                    tracing::warn!(error = %err, "checking a sample against flushed data failed; accepted unchecked");
                    continue;
                }
            };
            self.metrics
                .reject(e.reason(), (s.floats.len() + s.histograms.len()) as u64);
            plan.refs[i] = None;
            plan.rejected.push(Rejection {
                series_index: i,
                error: e,
            });
        }
        plan.rejected.sort_by_key(|r| r.series_index);
    }
}

fn check_series(
    s: &BatchSeries<'_>,
    sources: &[Flushed],
    window: i64,
) -> Result<Option<SampleError>> {
    let labels = s.to_labels();
    let matchers: Vec<Matcher> = labels.iter().map(|(n, v)| Matcher::equal(n, v)).collect();
    let new: Vec<(i64, SampleValue)> = s
        .floats
        .iter()
        .map(|f| (f.ts_nanos, SampleValue::Float(f.value)))
        .chain(s.histograms.iter().map(|h| {
            (
                h.ts_nanos,
                SampleValue::Histogram(Arc::new(h.histogram.clone())),
            )
        }))
        .collect();
    let lo = new.iter().map(|x| x.0).min().unwrap_or(i64::MAX);
    let hi = new.iter().map(|x| x.0).max().unwrap_or(i64::MIN);
    // Newest flushed sample of the series, and flushed samples within [lo, hi].
    let mut newest = i64::MIN;
    let mut stored: Vec<Sample> = Vec::new();
    for src in sources {
        match src {
            Flushed::Block(b) => {
                let Some(metas) = b.series_chunks(&matchers, &labels)? else {
                    continue;
                };
                newest = newest.max(metas.iter().map(|m| m.maxt_nanos).max().unwrap_or(i64::MIN));
                b.decode_range(&metas, lo, hi, &mut stored)?;
            }
            Flushed::Frozen(f) => {
                let mut out = Vec::new();
                f.select(&matchers, lo, i64::MAX, &mut out)?;
                for (l, samples) in out {
                    if l != labels {
                        continue;
                    }
                    newest =
                        newest.max(samples.iter().map(|x| x.ts_nanos).max().unwrap_or(i64::MIN));
                    stored.extend(samples.into_iter().filter(|x| x.ts_nanos <= hi));
                }
            }
        }
    }
    for (ts, v) in &new {
        if *ts < newest.saturating_sub(window) {
            return Ok(Some(SampleError::OutOfOrderSample {
                ts_nanos: *ts,
                newest_nanos: newest,
                window_nanos: window,
            }));
        }
        // Sources are newest first, so the first stored sample at `ts` is the one reads see.
        if let Some(x) = stored.iter().find(|x| x.ts_nanos == *ts) {
            if !x.value.same_as(v) {
                return Ok(Some(SampleError::DuplicateSample { ts_nanos: *ts }));
            }
        }
    }
    Ok(None)
}
