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
/// Sum, max and complemented min of the values recorded as raw clock-tick deltas
/// (spans): their buckets are nanosecond buckets already, these three are converted at
/// collection, so the record path has no multiply.
const TICK_SUM: usize = POSITIONS + 3;
const TICK_MAX: usize = POSITIONS + 4;
const TICK_MIN_C: usize = POSITIONS + 5;
/// Slots one histogram shard takes.
pub(crate) const SLOTS: usize = POSITIONS + 6;

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

    /// Record the time between two clock readings (0 if `end` is before `start`). The
    /// tick delta is recorded as read; it is converted to nanoseconds at collection.
    #[inline(always)]
    pub fn record_ticks(&self, start: Ticks, end: Ticks) {
        match arena::cells().get(self.base..self.base + SLOTS) {
            Some(shard) => {
                if let Ok(shard) = <&Shard>::try_from(shard) {
                    record_ticks_shard(shard, start, end);
                }
            }
            None => self.record_ticks_slow(start, end),
        }
    }

    #[cold]
    #[inline(never)]
    fn record_ticks_slow(&self, start: Ticks, end: Ticks) {
        if let Some(Ok(shard)) = arena::attach()
            .get(self.base..self.base + SLOTS)
            .map(<&Shard>::try_from)
        {
            record_ticks_shard(shard, start, end);
        }
    }

    /// Record the time since `start` (reads the clock once).
    #[inline(always)]
    pub fn record_since(&self, start: Ticks) {
        // The shard first, the clock last: the thread-local lookup stays off the path
        // from the clock read to the record.
        match arena::cells()
            .get(self.base..self.base + SLOTS)
            .map(<&Shard>::try_from)
        {
            Some(Ok(shard)) => record_ticks_shard(shard, start, clock::now()),
            _ => self.record_ticks_slow(start, clock::now()),
        }
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

/// Record the tick delta `end - start` in a shard: the bucket of its nanosecond value,
/// and its ticks into the tick sum, max and min.
#[inline(always)]
pub(crate) fn record_ticks_shard(shard: &Shard, start: Ticks, end: Ticks) {
    let d = end.0.saturating_sub(start.0);
    raise(&shard[TICK_MAX], d);
    raise(&shard[TICK_MIN_C], !d);
    if let Some(b) = shard.get(clock::tick_index().position(d)) {
        bump(b, 1);
    }
    bump(&shard[TICK_SUM], d);
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
        self.hist.record_since(self.start);
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
        // The nanosecond records' stats, then the tick records' converted: `(lo, hi)`
        // bounds the positions either kind can have touched.
        let mut stats: Option<(u128, u64, u64, usize, usize)> = None;
        let mut note = |sum: u128, min: u64, max: u64, lo: usize, hi: usize| {
            stats = Some(match stats {
                None => (sum, min, max, lo, hi),
                Some((s, mn, mx, l, h)) => {
                    (s + sum, mn.min(min), mx.max(max), l.min(lo), h.max(hi))
                }
            });
        };
        let (max, min_c) = (shard[MAX].load(Relaxed), shard[MIN_C].load(Relaxed));
        // Any record moves one of the two: both zero means no record of that kind.
        if max != 0 || min_c != 0 {
            let min = !min_c;
            let sum = u128::from(shard[SUM].load(Relaxed));
            note(sum, min, max, position(min), position(max));
        }
        let (tmax, tmin_c) = (
            shard[TICK_MAX].load(Relaxed),
            shard[TICK_MIN_C].load(Relaxed),
        );
        if tmax != 0 || tmin_c != 0 {
            let tmin = !tmin_c;
            let index = clock::tick_index();
            let sum = u128::from(clock::delta_to_nanos(shard[TICK_SUM].load(Relaxed)));
            let (lo, hi) = (index.position(tmin), index.position(tmax));
            note(
                sum,
                clock::delta_to_nanos(tmin),
                clock::delta_to_nanos(tmax),
                lo,
                hi,
            );
        }
        let Some((sum, min, max, lo, hi)) = stats else {
            continue;
        };
        let buckets = shard[lo..=hi]
            .iter()
            .enumerate()
            .map(|(i, c)| (lo + i, c.load(Relaxed)));
        out.merge_raw(buckets, sum, min, max);
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

    /// Tick deltas land in the buckets of their nanosecond values, with sum, min and
    /// max converted at collection, and merge with nanosecond records of the same series.
    #[test]
    fn tick_deltas_land_in_their_nanosecond_buckets() {
        use crate::clock::{self, Ticks};
        let r = Registry::new();
        let h = r.histogram("tick_seconds", "Ticks.").unwrap();
        let local = h.local();
        let deltas: Vec<u64> = (0..2000u64).map(|i| 1 + i * i * 37).collect();
        let mut want = gmc_histogram::Histogram::new();
        let mut sum = 0u64;
        for (i, &d) in deltas.iter().enumerate() {
            let start = Ticks(1_000_000 + i as u64);
            if i % 2 == 0 {
                h.record_ticks(start, Ticks(start.0 + d));
            } else {
                local.record_ticks(start, Ticks(start.0 + d));
            }
            sum += d;
            want.merge_raw(
                [(clock::tick_index().position(d), 1)],
                0,
                clock::delta_to_nanos(d),
                clock::delta_to_nanos(d),
            );
        }
        // An end before its start is a zero-length span.
        h.record_ticks(Ticks(10), Ticks(5));
        want.record(0);
        h.record(123_456);
        want.record(123_456);
        let got = h.snapshot();
        assert_eq!(got.count(), want.count());
        assert_eq!(
            got.buckets().collect::<Vec<_>>(),
            want.buckets().collect::<Vec<_>>()
        );
        assert_eq!(got.min(), Some(0));
        let max = clock::delta_to_nanos(*deltas.last().unwrap());
        assert_eq!(got.max(), Some(max.max(123_456)));
        let tick_sum = u128::from(clock::delta_to_nanos(sum));
        assert_eq!(got.sum(), tick_sum + 123_456);
        // Every quantile is within the error bound of the exact nanosecond values.
        let ns_per_tick = clock::delta_to_nanos(1 << 40) as f64 / (1u64 << 40) as f64;
        let mut exact: Vec<f64> = deltas.iter().map(|&d| d as f64 * ns_per_tick).collect();
        exact.extend([0.0, 123_456.0]);
        exact.sort_by(f64::total_cmp);
        for q in [0.01, 0.25, 0.5, 0.9, 0.99, 0.999] {
            let rank = ((q * exact.len() as f64).ceil() as usize).max(1) - 1;
            let (e, g) = (exact[rank], got.quantile(q).unwrap());
            assert!(
                (g - e).abs() <= e * gmc_histogram::RELATIVE_ERROR + 1.0,
                "q={q}: {g} vs exact {e}"
            );
        }
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
