//! Histogram handle and timed spans. Each thread records into its own shard of the
//! histogram's slot range (dense schema-6 buckets, sum, min, max); shards merge exactly
//! at collection into a [`gmc_histogram::Histogram`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use gmc_histogram::{position, POSITIONS};

use crate::arena::{self, bump, raise};
use crate::clock::{self, Ticks};
use crate::local::HistogramHandle;
use crate::registry::{Series, Storage};

/// Slot of the sum within a shard.
const SUM: usize = POSITIONS;
/// Slot of the max.
const MAX: usize = POSITIONS + 1;
/// Slot of the complemented min (`!min`), so a zeroed shard reads as "no min yet".
const MIN_C: usize = POSITIONS + 2;
/// Slots one histogram shard takes.
pub(crate) const SLOTS: usize = POSITIONS + 3;

pub(crate) type Shard = [AtomicU64; SLOTS];

/// A latency histogram resolved to its series: `u64` values (nanoseconds by convention),
/// ≤ 0.5416 % relative error on every quantile, exact count/sum/min/max.
///
/// Recording computes the bucket from the value's bits (no float) and does single-writer
/// load + store on the calling thread's shard: bucket, sum, and max/min when they move.
#[derive(Debug, Clone)]
pub struct Histogram {
    base: usize,
    series: Arc<Series>,
}

impl Histogram {
    pub(crate) fn from_series(series: Arc<Series>) -> Histogram {
        let base = match &series.storage {
            Storage::Histogram(r) => r.start,
            _ => usize::MAX,
        };
        Histogram { base, series }
    }

    /// Record one value.
    #[inline(always)]
    pub fn record(&self, v: u64) {
        match arena::cells().get(self.base..self.base + SLOTS) {
            Some(shard) => record_in(shard, v),
            None => self.record_slow(v),
        }
    }

    /// This handle bound to the calling thread's shard: records become a plain load and
    /// store at a fixed address (see [`crate::LocalHistogram`]).
    pub fn local(&self) -> crate::LocalHistogram {
        crate::LocalHistogram::new(self)
    }

    /// First slot of the histogram's shard.
    pub(crate) fn base(&self) -> usize {
        self.base
    }

    #[cold]
    #[inline(never)]
    fn record_slow(&self, v: u64) {
        if let Some(shard) = arena::attach().get(self.base..self.base + SLOTS) {
            record_in(shard, v);
        }
    }

    /// Record the time between two clock readings, in nanoseconds.
    #[inline(always)]
    pub fn record_ticks(&self, start: Ticks, end: Ticks) {
        self.record(clock::ticks_to_nanos(start, end));
    }

    /// Record the time since `start` (reads the clock once).
    #[inline(always)]
    pub fn record_since(&self, start: Ticks) {
        self.record_ticks(start, clock::now());
    }

    /// Record the time since an [`Instant`] (the portable, slower clock: ~2× the TSC path).
    #[inline(always)]
    pub fn record_since_instant(&self, start: Instant) {
        let ns = start.elapsed().as_nanos();
        self.record(u64::try_from(ns).unwrap_or(u64::MAX));
    }

    /// Start a span that records its duration when dropped (or on [`Span::finish`]).
    #[inline(always)]
    pub fn start(&self) -> Span<'_> {
        Span::new(self)
    }

    /// Time `f` and record its duration.
    #[inline(always)]
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let _span = self.start();
        f()
    }

    /// Merge all threads' shards now (a collection-time read; not for hot paths).
    pub fn snapshot(&self) -> gmc_histogram::Histogram {
        let mut h = gmc_histogram::Histogram::new();
        merge_shards(&arena::arenas(), self.base, &mut h);
        h
    }

    /// Labels of this series.
    pub fn labels(&self) -> &[(String, String)] {
        &self.series.labels
    }
}

/// Record `v` in one thread's shard (single writer: plain loads and stores).
#[inline(always)]
fn record_in(shard: &[AtomicU64], v: u64) {
    if let Ok(shard) = <&Shard>::try_from(shard) {
        record_shard(shard, v);
    }
}

/// Record `v` in a shard of the right size.
#[inline(always)]
pub(crate) fn record_shard(shard: &Shard, v: u64) {
    raise(&shard[MAX], v);
    raise(&shard[MIN_C], !v);
    if let Some(b) = shard.get(position(v)) {
        bump(b, 1);
    }
    bump(&shard[SUM], v);
}

/// A running timed span; records the elapsed nanoseconds into its histogram on drop.
#[derive(Debug)]
#[must_use = "a span records when dropped; bind it to a variable"]
pub struct Span<'a, H: HistogramHandle = Histogram> {
    hist: &'a H,
    start: Ticks,
}

impl<'a, H: HistogramHandle> Span<'a, H> {
    /// Start timing now.
    #[inline(always)]
    pub(crate) fn new(hist: &'a H) -> Span<'a, H> {
        Span {
            hist,
            start: clock::now(),
        }
    }

    /// End the span now.
    #[inline(always)]
    pub fn finish(self) {}

    /// Forget the span without recording.
    pub fn cancel(self) {
        std::mem::forget(self);
    }
}

impl<H: HistogramHandle> Drop for Span<'_, H> {
    #[inline(always)]
    fn drop(&mut self) {
        self.hist
            .record(clock::ticks_to_nanos(self.start, clock::now()));
    }
}

/// Add every arena's shard at `base` into `out`. Only the buckets between each shard's
/// min and max are read, so an idle or narrow shard costs a few loads.
pub(crate) fn merge_shards(
    arenas: &[&'static [AtomicU64]],
    base: usize,
    out: &mut gmc_histogram::Histogram,
) {
    for a in arenas {
        let Some(shard) = a.get(base..base + SLOTS) else {
            continue;
        };
        let max = shard[MAX].load(Relaxed);
        let min_c = shard[MIN_C].load(Relaxed);
        if max == 0 && min_c == 0 {
            // Any record moves one of the two: this shard is empty.
            continue;
        }
        let min = !min_c;
        let (lo, hi) = (position(min), position(max));
        let sum = shard[SUM].load(Relaxed);
        let buckets = shard[lo..=hi]
            .iter()
            .enumerate()
            .map(|(i, c)| (lo + i, c.load(Relaxed)));
        out.merge_raw(buckets, u128::from(sum), min, max);
    }
}

#[cfg(test)]
mod tests {
    use crate::Registry;

    #[test]
    fn shards_of_two_threads_merge_exactly() {
        let r = Registry::new();
        let h = r.histogram("lat_seconds", "Latency.").unwrap();
        let h2 = h.clone();
        std::thread::spawn(move || {
            for v in 1..=1000u64 {
                h2.record(v);
            }
        })
        .join()
        .unwrap();
        for v in 0..=1000u64 {
            h.record(v * 2);
        }
        let s = h.snapshot();
        let mut want = gmc_histogram::Histogram::new();
        for v in 1..=1000u64 {
            want.record(v);
        }
        for v in 0..=1000u64 {
            want.record(v * 2);
        }
        assert_eq!(s, want);
        assert_eq!(s.min(), Some(0));
        assert_eq!(s.max(), Some(2000));
    }

    #[test]
    fn span_records_elapsed_time() {
        let r = Registry::new();
        let h = r.histogram("span_seconds", "Spans.").unwrap();
        {
            let _s = h.start();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        h.start().cancel();
        let s = h.snapshot();
        assert_eq!(s.count(), 1);
        assert!(s.min().unwrap() >= 1_500_000);
    }
}
