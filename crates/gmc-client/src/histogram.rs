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
            // Never inside an arena, and `base + SLOTS` cannot overflow.
            _ => usize::MAX - SLOTS,
        };
        Histogram { base, series }
    }

    /// Record one value.
    #[inline(always)]
    pub fn record(&self, v: u64) {
        match self.shard() {
            Some(shard) => record_shard(shard, v),
            None => self.record_slow(v),
        }
    }

    #[cold]
    #[inline(never)]
    fn record_slow(&self, v: u64) {
        if let Some(shard) = self.attached_shard() {
            record_shard(shard, v);
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

    /// The calling thread's shard; `None` until the thread's first record attaches its
    /// cells ([`Histogram::attached_shard`]).
    #[inline(always)]
    fn shard(&self) -> Option<&'static Shard> {
        shard_at(arena::cells(), self.base)
    }

    #[cold]
    #[inline(never)]
    fn attached_shard(&self) -> Option<&'static Shard> {
        shard_at(arena::attach(), self.base)
    }

    /// Record the time between two clock readings (0 if `end` is before `start`). The
    /// tick delta is recorded as read; it is converted to nanoseconds at collection.
    #[inline(always)]
    pub fn record_ticks(&self, start: Ticks, end: Ticks) {
        match self.shard() {
            Some(shard) => record_ticks_shard(shard, start, end),
            None => self.record_ticks_slow(start, end),
        }
    }

    #[cold]
    #[inline(never)]
    fn record_ticks_slow(&self, start: Ticks, end: Ticks) {
        if let Some(shard) = self.attached_shard() {
            record_ticks_shard(shard, start, end);
        }
    }

    /// Record the time since `start` (reads the clock once).
    #[inline(always)]
    pub fn record_since(&self, start: Ticks) {
        // The shard first, the clock last: the thread-local lookup stays off the path
        // from the clock read to the record.
        match self.shard() {
            Some(shard) => record_ticks_shard(shard, start, clock::now()),
            None => self.record_ticks_slow(start, clock::now()),
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

/// The shard at `base` in one thread's cells (`None` while the thread has none).
#[inline(always)]
pub(crate) fn shard_at(cells: &'static [AtomicU64], base: usize) -> Option<&'static Shard> {
    cells.get(base..base + SLOTS)?.try_into().ok()
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

/// What one kind of record (values in nanoseconds, or tick deltas) left in a shard: its
/// sum, min and max in nanoseconds and the positions its buckets can occupy.
struct KindStats {
    sum: u128,
    min: u64,
    max: u64,
    lo: usize,
    hi: usize,
}

impl KindStats {
    /// From a kind's `[sum, max, complemented min]` slots; `to_ns` converts the kind's
    /// unit, `pos` gives a recorded value's position. `None` when the kind has no record.
    fn read(
        shard: &Shard,
        [sum, max, min_c]: [usize; 3],
        to_ns: impl Fn(u64) -> u64,
        pos: impl Fn(u64) -> usize,
    ) -> Option<KindStats> {
        let (max, min_c) = (shard[max].load(Relaxed), shard[min_c].load(Relaxed));
        // Any record moves one of the two.
        if max == 0 && min_c == 0 {
            return None;
        }
        let min = !min_c;
        Some(KindStats {
            sum: u128::from(to_ns(shard[sum].load(Relaxed))),
            min: to_ns(min),
            max: to_ns(max),
            lo: pos(min),
            hi: pos(max),
        })
    }

    fn join(self, o: KindStats) -> KindStats {
        KindStats {
            sum: self.sum + o.sum,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
        }
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
        let Some(shard) = shard_at(a, base) else {
            continue;
        };
        let ns = KindStats::read(shard, [SUM, MAX, MIN_C], |v| v, position);
        let ticks = KindStats::read(
            shard,
            [TICK_SUM, TICK_MAX, TICK_MIN_C],
            clock::delta_to_nanos,
            |t| clock::tick_index().position(t),
        );
        let Some(s) = [ns, ticks].into_iter().flatten().reduce(KindStats::join) else {
            continue;
        };
        let buckets = shard[s.lo..=s.hi]
            .iter()
            .enumerate()
            .map(|(i, c)| (s.lo + i, c.load(Relaxed)));
        out.merge_raw(buckets, s.sum, s.min, s.max);
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
