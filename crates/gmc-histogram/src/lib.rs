//! Mergeable log-linear (base-2 exponential) histogram over integer nanoseconds, laid out
//! exactly as a Prometheus native histogram of schema 6, so conversion to
//! [`gmc_model::Histogram`] is lossless.
//!
//! # Buckets and the error bound
//!
//! Values are `u64` (nanoseconds by convention). `0` has its own bucket; a value `v ≥ 1`
//! goes to the Prometheus bucket `i` with `2^((i-1)/64) < v ≤ 2^(i/64)` ([`SCHEMA`] `= 6`,
//! 64 buckets per power of two, indices `0..=4096` cover all of `u64`). Each bucket spans
//! a ratio `r = 2^(1/64)`; reporting a bucket by `2LU/(L+U)` (the harmonic mean of its
//! bounds), clamped to the exact `[min, max]`, is off from **any** value in the bucket by
//! at most `(r-1)/(r+1)` = [`RELATIVE_ERROR`] ≈ **0.5416 %**. Every quantile reported by
//! [`Histogram::quantile`] therefore lies within 0.5416 % of the exact nearest-rank
//! quantile of the recorded values (property-tested). Schema 5 (`r = 2^(1/32)`) would give
//! 1.08 %, above the 1 % the client promises, hence schema 6.
//!
//! Count, sum (`u128`), min and max are exact; [`Histogram::merge`] adds bucket counts, so
//! it is exact, associative and commutative.
//!
//! # Indexing without floating point
//!
//! [`position`] takes the octave from `leading_zeros` and the bucket inside the octave from
//! the mantissa bits: the top 7 fraction bits select one of 128 equal slices, and one
//! entry of a const table gives both how many bucket boundaries lie below the slice and
//! the single boundary that can fall inside it (boundaries are ≥ 1/92 apart, slices 1/128
//! wide); one integer comparison with it finishes the job. The 63 boundaries `2^(k/64) - 1` are the exact binary
//! fractions of the `f64` values Prometheus uses, so for `v ≤ 2^53` the index equals what
//! Prometheus computes from `v as f64`.
//!
//! [`ScaledIndex`] does the same for values counted in another unit (raw clock ticks):
//! a rotated table puts `ticks` straight into the bucket of `ticks × ns_per_tick`.
//!
//! ```
//! use gmc_histogram::Histogram;
//!
//! let mut h = Histogram::new();
//! for v in 1..=10_000u64 {
//!     h.record(v * 100);
//! }
//! let p99 = h.quantile(0.99).unwrap();
//! assert!((p99 - 990_000.0).abs() <= 990_000.0 * gmc_histogram::RELATIVE_ERROR);
//! assert_eq!(h.count(), 10_000);
//! assert_eq!(h.min(), Some(100));
//! let native = h.to_native();
//! assert_eq!(native.schema, 6);
//! assert_eq!(native.count, 10_000.0);
//! ```

mod scaled;

pub use scaled::ScaledIndex;

/// Prometheus native-histogram schema of the layout (64 buckets per power of two).
pub const SCHEMA: i32 = 6;

/// Buckets per power of two (`2^SCHEMA`).
pub const SUB_BUCKETS: usize = 64;

/// Highest Prometheus bucket index a `u64` can reach (`2^64` is bucket `64 * 64`).
pub const MAX_INDEX: i32 = 64 * 64;

/// Number of dense positions: the zero bucket plus indices `0..=MAX_INDEX`.
pub const POSITIONS: usize = MAX_INDEX as usize + 2;

/// Worst relative error of a reported quantile: `(r-1)/(r+1)` with `r = 2^(1/64)`.
pub const RELATIVE_ERROR: f64 = 0.005_415_159_415_902_577;

/// Index shift from a nanosecond bucket to the seconds bucket holding its upper bound:
/// `ceil(64 · log2(1e-9))` = `ceil(-1913.43)`.
pub const NS_TO_SECONDS_INDEX_SHIFT: i32 = -1913;

/// `2^(k/64) - 1` for `k = 1..=63` as 64-bit binary fractions (exact images of the `f64`
/// constants), followed by a sentinel that no fraction exceeds.
const BOUNDS: [u64; 64] = [
    0x02c9a3e778061000,
    0x059b0d3158574000,
    0x0874518759bc8000,
    0x0b5586cf9890f000,
    0x0e3ec32d3d1a2000,
    0x11301d0125b51000,
    0x1429aaea92de0000,
    0x172b83c7d517b000,
    0x1a35beb6fcb75000,
    0x1d4873168b9aa000,
    0x2063b88628cd6000,
    0x2387a6e756238000,
    0x26b4565e27cdd000,
    0x29e9df51fdee1000,
    0x2d285a6e4030b000,
    0x306fe0a31b715000,
    0x33c08b26416ff000,
    0x371a7373aa9cb000,
    0x3a7db34e59ff7000,
    0x3dea64c123422000,
    0x4160a21f72e2a000,
    0x44e086061892d000,
    0x486a2b5c13cd0000,
    0x4bfdad5362a27000,
    0x4f9b2769d2ca7000,
    0x5342b569d4f82000,
    0x56f4736b527da000,
    0x5ab07dd485429000,
    0x5e76f15ad2148000,
    0x6247eb03a5585000,
    0x6623882552225000,
    0x6a09e667f3bcd000,
    0x6dfb23c651a2f000,
    0x71f75e8ec5f74000,
    0x75feb564267c9000,
    0x7a11473eb0187000,
    0x7e2f336cf4e62000,
    0x82589994cce13000,
    0x868d99b4492ed000,
    0x8ace5422aa0db000,
    0x8f1ae99157736000,
    0x93737b0cdc5e5000,
    0x97d829fde4e50000,
    0x9c49182a3f090000,
    0xa0c667b5de565000,
    0xa5503b23e255d000,
    0xa9e6b5579fdbf000,
    0xae89f995ad3ad000,
    0xb33a2b84f15fb000,
    0xb7f76f2fb5e47000,
    0xbcc1e904bc1d2000,
    0xc199bdd85529c000,
    0xc67f12e57d14b000,
    0xcb720dcef9069000,
    0xd072d4a07897c000,
    0xd5818dcfba487000,
    0xda9e603db3285000,
    0xdfc97337b9b5f000,
    0xe502ee78b3ff6000,
    0xea4afa2a490da000,
    0xefa1bee615a27000,
    0xf50765b6e4540000,
    0xfa7c1819e90d8000,
    u64::MAX,
];

/// Fraction bits used to pick a slice (128 slices per octave).
const SLICE_BITS: u32 = 7;

/// Low bits of a [`SLICES`] entry that hold the count; the boundaries' own low 11 bits
/// are zero (an `f64` mantissa has 52 bits), so the count fits beside the boundary.
const COUNT_MASK: u64 = 0x7ff;

/// One entry per slice of the fraction `f` (63 bits, `f = v / 2^octave - 1` scaled by
/// `2^63`): in the low bits, how many of the points `0, B_1 … B_63` (`B_k` = `BOUNDS[k-1]
/// / 2`) lie strictly below the slice's start; in the high bits, the next such point,
/// which is the only one that can fall inside the slice (points are ≥ 1/92 apart, slices
/// 1/128 wide), or `2^63` (above every fraction) when none is left. The bucket inside
/// the octave is then `count + (f > point)`: one load, one comparison.
///
/// Why the point `0`: an exact power of two (`f = 0`) is the inclusive upper bound of the
/// octave below, i.e. bucket `0` of its own octave, and every other fraction is above it.
static SLICES: [u64; 1 << SLICE_BITS] = build_slices();

const fn build_slices() -> [u64; 1 << SLICE_BITS] {
    // The points, ascending: 0, then each boundary halved (63-bit fractions).
    let mut points = [0u64; 64];
    let mut k = 1;
    while k < 64 {
        points[k] = BOUNDS[k - 1] >> 1;
        k += 1;
    }
    let mut t = [0u64; 1 << SLICE_BITS];
    let mut s = 0;
    while s < t.len() {
        let start = (s as u64) << (63 - SLICE_BITS);
        let mut n = 0;
        while n < 64 && points[n] < start {
            n += 1;
        }
        let next = if n < 64 { points[n] } else { 1 << 63 };
        t[s] = next | n as u64;
        s += 1;
    }
    t
}

/// Dense position of `v`: `0` for zero, otherwise `1 + ` its Prometheus bucket index.
/// Integer-only: a leading-zero count, one table load and one comparison.
#[inline(always)]
pub fn position(v: u64) -> usize {
    if v == 0 {
        return 0;
    }
    let lz = v.leading_zeros();
    let octave = (63 - lz) as usize;
    // Bits below the leading one, left-aligned in 63 bits.
    let frac = (v << lz) & (u64::MAX >> 1);
    let e = SLICES[(frac >> (63 - SLICE_BITS)) as usize];
    let within = (e & COUNT_MASK) as usize + usize::from(frac > e & !COUNT_MASK);
    1 + octave * SUB_BUCKETS + within
}

/// Prometheus bucket index of a dense position (`None` for the zero bucket).
#[inline]
pub fn index_of_position(position: usize) -> Option<i32> {
    if position == 0 || position >= POSITIONS {
        None
    } else {
        i32::try_from(position - 1).ok()
    }
}

/// Prometheus bucket index of `v` (`None` for zero).
#[inline]
pub fn index(v: u64) -> Option<i32> {
    index_of_position(position(v))
}

/// `(lower, upper]` bounds of Prometheus bucket `index` at schema 6.
pub fn bucket_bounds(index: i32) -> (f64, f64) {
    let up = (f64::from(index) / SUB_BUCKETS as f64).exp2();
    let low = (f64::from(index - 1) / SUB_BUCKETS as f64).exp2();
    (low, up)
}

/// The value that stands for bucket `index`: the harmonic mean of its bounds, which
/// minimises the worst relative error over the bucket to [`RELATIVE_ERROR`].
pub fn representative(index: i32) -> f64 {
    let (l, u) = bucket_bounds(index);
    2.0 * l * u / (l + u)
}

/// An owned histogram: dense counts per position plus exact count, sum, min and max.
///
/// Memory: empty until the first record, then `POSITIONS × 8` bytes (32 KiB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Histogram {
    /// An empty histogram (allocates on the first record).
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget every observation, keeping the bucket memory for reuse.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.count = 0;
        self.sum = 0;
        self.min = 0;
        self.max = 0;
    }

    fn counts_mut(&mut self) -> &mut [u64] {
        if self.counts.is_empty() {
            self.counts = vec![0; POSITIONS];
        }
        &mut self.counts
    }

    /// Record one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.record_n(v, 1);
    }

    /// Record `n` occurrences of `v`.
    pub fn record_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        let p = position(v);
        self.counts_mut()[p] += n;
        self.note_stats(n, u128::from(v) * u128::from(n), v, v);
    }

    /// Fold in a shard given as dense `(position, count)` pairs plus its exact sum, min
    /// and max (how per-thread shards are merged at collection). Positions out of range
    /// are ignored; an empty shard changes nothing.
    pub fn merge_raw(
        &mut self,
        buckets: impl IntoIterator<Item = (usize, u64)>,
        sum: u128,
        min: u64,
        max: u64,
    ) {
        let mut n = 0u64;
        for (p, c) in buckets {
            if c == 0 || p >= POSITIONS {
                continue;
            }
            self.counts_mut()[p] += c;
            n += c;
        }
        if n > 0 {
            self.note_stats(n, sum, min, max);
        }
    }

    fn note_stats(&mut self, n: u64, sum: u128, min: u64, max: u64) {
        if self.count == 0 {
            self.min = min;
            self.max = max;
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
        self.count += n;
        self.sum += sum;
    }

    /// Add every observation of `other` (exact, associative, commutative).
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        let mine = self.counts_mut();
        for (a, b) in mine.iter_mut().zip(&other.counts) {
            *a += *b;
        }
        self.note_stats(other.count, other.sum, other.min, other.max);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact sum of observations.
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Smallest observation.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest observation.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// Observations in the zero bucket.
    pub fn zero_count(&self) -> u64 {
        self.counts.first().copied().unwrap_or(0)
    }

    /// Non-empty buckets as `(Prometheus index, count)`, ascending (zero bucket excluded).
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, &c)| c > 0)
            .filter_map(|(p, &c)| index_of_position(p).map(|i| (i, c)))
    }

    /// Nearest-rank `q`-quantile (`0 ≤ q ≤ 1`): the bucket holding the `⌈q·count⌉`-th
    /// smallest observation, reported by [`representative`] and clamped to `[min, max]`.
    /// Within [`RELATIVE_ERROR`] of the exact value; `q = 0` and `q = 1` are exact.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // Rank as an integer: ceil(q * count), at least 1.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let (min, max) = (self.min as f64, self.max as f64);
        let mut seen = 0u64;
        for (p, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(match index_of_position(p) {
                    None => 0.0,
                    Some(i) => representative(i).clamp(min, max),
                });
            }
        }
        Some(max)
    }

    /// Prometheus native histogram (schema 6, zero threshold 0, integer counts as `f64`).
    pub fn to_native(&self) -> gmc_model::Histogram {
        let mut spans: Vec<gmc_model::Span> = Vec::new();
        let mut counts = Vec::new();
        let mut next: Option<i32> = None;
        for (i, c) in self.buckets() {
            match (next, spans.last_mut()) {
                (Some(n), Some(last)) if n == i => last.length += 1,
                _ => spans.push(gmc_model::Span {
                    offset: match next {
                        Some(n) => i - n,
                        None => i,
                    },
                    length: 1,
                }),
            }
            counts.push(c as f64);
            next = Some(i + 1);
        }
        gmc_model::Histogram {
            schema: SCHEMA,
            zero_threshold: 0.0,
            zero_count: self.zero_count() as f64,
            count: self.count as f64,
            sum: self.sum as f64,
            positive_spans: spans,
            positive_buckets: counts,
            min: self.min().map(|v| v as f64),
            max: self.max().map(|v| v as f64),
            ..gmc_model::Histogram::default()
        }
    }

    /// The native histogram of the same observations expressed in **seconds** when the
    /// values were nanoseconds (Prometheus' base unit). `1 ns = 2^-29.897… s`, so bucket
    /// `i` in ns straddles seconds buckets `i - 1914` and `i - 1913`; every observation is
    /// placed in the upper one ([`NS_TO_SECONDS_INDEX_SHIFT`]), so a reported bucket never
    /// sits below its values and lies at most one bucket (1.09 %) above the exact one.
    /// Count and zero count are exact; sum, min and max are scaled by `1e-9`.
    pub fn to_native_seconds(&self) -> gmc_model::Histogram {
        let mut h = self.to_native();
        if let Some(first) = h.positive_spans.first_mut() {
            first.offset += NS_TO_SECONDS_INDEX_SHIFT;
        }
        h.sum *= 1e-9;
        h.min = h.min.map(|v| v * 1e-9);
        h.max = h.max.map(|v| v * 1e-9);
        h
    }

    /// Classic cumulative buckets for `le` bounds (ascending, in the recording unit), the
    /// `+Inf` bucket last. An observation is counted under the first `le` at or above the
    /// largest integer its bucket can hold, so counts are exact for integer data whenever
    /// no bucket straddles an `le` (always true for `le = 2^k` and for `le < 92`); otherwise
    /// a straddling bucket is counted one `le` later (the bucket is at most 1.09 % wide).
    pub fn to_classic(&self, bounds: &[u64]) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = bounds.iter().map(|&b| (b as f64, 0)).collect();
        let mut cum = vec![0u64; bounds.len()];
        for (p, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let top = match index_of_position(p) {
                None => 0u64,
                Some(i) => {
                    let (_, u) = bucket_bounds(i);
                    // Largest integer the bucket holds (u64::MAX for the last one).
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let t = u.floor() as u64;
                    t
                }
            };
            if let Some(k) = bounds.iter().position(|&b| b >= top) {
                cum[k] += c;
            }
        }
        let mut run = 0;
        for (slot, c) in out.iter_mut().zip(cum) {
            run += c;
            slot.1 = run;
        }
        out.push((f64::INFINITY, self.count));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_match_float_powers() {
        for k in 1..64u32 {
            let f = (f64::from(k) / 64.0).exp2() - 1.0;
            let fixed = (f * 18_446_744_073_709_551_616.0) as u64;
            let diff = fixed.abs_diff(BOUNDS[(k - 1) as usize]);
            assert!(diff < 1 << 12, "k={k} diff={diff}");
        }
    }

    /// The definition, by linear scan: 1 + the number of boundaries below the fraction.
    fn position_by_scan(v: u64) -> usize {
        if v == 0 {
            return 0;
        }
        let lz = v.leading_zeros();
        let frac = (v << lz) << 1;
        let within = if frac == 0 {
            0
        } else {
            1 + BOUNDS[..63].iter().filter(|&&b| b < frac).count()
        };
        1 + (63 - lz as usize) * SUB_BUCKETS + within
    }

    #[test]
    fn table_lookup_equals_the_scan_around_every_boundary_and_slice_edge() {
        let mut fracs: Vec<u64> = vec![0, 1, u64::MAX >> 1];
        for b in &BOUNDS[..63] {
            let h = b >> 1;
            fracs.extend([h - 1, h, h + 1]);
        }
        for s in 0..1u64 << SLICE_BITS {
            let start = s << (63 - SLICE_BITS);
            fracs.extend([start, start.saturating_sub(1), start + 1]);
        }
        for octave in [0u32, 1, 5, 10, 11, 12, 30, 52, 53, 62, 63] {
            for &f in &fracs {
                // v = 2^octave + the top `octave` bits of the fraction.
                let v = (1u64 << octave) | (f >> (63 - octave));
                assert_eq!(position(v), position_by_scan(v), "v={v} octave={octave}");
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x >> (x % 64);
            assert_eq!(position(v), position_by_scan(v), "v={v}");
        }
    }

    #[test]
    fn powers_of_two_are_upper_bounds() {
        assert_eq!(index(1), Some(0));
        assert_eq!(index(2), Some(64));
        assert_eq!(index(3), Some(64 + 38)); // 2^(101/64)=2.98.., 2^(102/64)=3.01..
        assert_eq!(index(1 << 20), Some(20 * 64));
        assert_eq!(index((1 << 20) + 1), Some(20 * 64 + 1));
        assert_eq!(index(u64::MAX), Some(MAX_INDEX));
        assert_eq!(position(0), 0);
    }

    #[test]
    fn index_agrees_with_float_definition() {
        let mut v: u64 = 1;
        while v < 1 << 53 {
            for d in [0u64, 1, 2, 3, 7] {
                let x = v + d;
                let i = index(x).unwrap();
                let (l, u) = bucket_bounds(i);
                let xf = x as f64;
                assert!(
                    xf > l * (1.0 - 1e-15) && xf <= u * (1.0 + 1e-15),
                    "{x} in {i}"
                );
            }
            v = v * 3 / 2 + 1;
        }
    }

    #[test]
    fn seconds_shift_puts_values_in_the_upper_straddled_bucket() {
        assert_eq!(
            NS_TO_SECONDS_INDEX_SHIFT,
            (64.0 * 1e-9f64.log2()).ceil() as i32
        );
        for v in [1u64, 7, 100, 999, 1000, 12_345, 1 << 30, 3_000_000_000] {
            let i = index(v).unwrap();
            let j = i + NS_TO_SECONDS_INDEX_SHIFT;
            let (_, up) = bucket_bounds(j);
            let (lo, _) = bucket_bounds(j - 1);
            let s = v as f64 * 1e-9;
            assert!(s <= up * (1.0 + 1e-12) && s > lo * (1.0 - 1e-12), "{v}");
        }
    }

    #[test]
    fn native_spans_follow_buckets() {
        let mut h = Histogram::new();
        h.record(0);
        h.record(1);
        h.record(2);
        h.record(2);
        let n = h.to_native();
        n.validate().unwrap();
        let got: Vec<_> = n.positive_iter().collect();
        assert_eq!(got, vec![(0, 1.0), (64, 2.0)]);
        assert_eq!(n.zero_count, 1.0);
        assert_eq!(n.sum, 5.0);
    }

    #[test]
    fn classic_buckets_are_cumulative_and_exact_at_powers_of_two() {
        let mut h = Histogram::new();
        for v in [1u64, 5, 100, 1000, 1024, 1025, 5000] {
            h.record(v);
        }
        let c = h.to_classic(&[8, 1024, 4096]);
        assert_eq!(
            c,
            vec![(8.0, 2), (1024.0, 5), (4096.0, 6), (f64::INFINITY, 7)]
        );
    }
}
