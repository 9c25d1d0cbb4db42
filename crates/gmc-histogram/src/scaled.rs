//! Bucket positions for values counted in another unit — raw clock ticks — as if each had
//! first been converted to nanoseconds. A timed span records its tick delta as read, with
//! no multiply on its path, and the delta still lands in the nanosecond bucket of
//! `ticks × ns_per_tick`; sum, min and max stay in ticks until collection converts them.
//!
//! # Why a table suffices
//!
//! The bucket boundaries are the powers `2^(k/64)` ns. Measured in ticks they become
//! `2^(k/64) / f` (`f` = ns per tick): again a geometric series of ratio `2^(1/64)`, so
//! every power-of-two octave of ticks holds 64 boundaries at the *same* fractional
//! offsets. With `64·log2(f) = A + θ` (`A` an integer, `0 ≤ θ < 1`), a delta `t = 2^e·(1+x)`
//! belongs to Prometheus bucket
//!
//! `i = ceil(64·log2(t·f)) = 64·e + A + #{n ≥ 0 : 2^((n-θ)/64) - 1 < x}`,
//!
//! which is [`crate::position`]'s table lookup with the points rotated by `θ` and the
//! index shifted by `A`. For `f = 1` (`θ = 0`, `A = 0`) the table is [`crate::position`]'s
//! own. The points are still ≥ 1/93 apart, so one comparison per 1/128 slice still
//! finishes the lookup, and the worst relative error of a quantile is unchanged:
//! [`crate::RELATIVE_ERROR`] of the exact `t·f` (the bucket is chosen from the real
//! product, not from a rounded nanosecond count).
//!
//! Values below `2^(-1/64)` ns go to the zero bucket, as a nanosecond count of 0 would;
//! values above the last bucket go to it.

use crate::{COUNT_MASK, POSITIONS, SLICE_BITS, SUB_BUCKETS};

/// Positions of values in a unit worth `f` nanoseconds (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaledIndex {
    /// Per slice of the fraction: count of points below the slice, and the next point.
    slices: [u64; 1 << SLICE_BITS],
    /// `A`: whole buckets the scale moves every value by.
    offset: i64,
}

impl ScaledIndex {
    /// The index for a unit worth `ns_per_unit` nanoseconds; `None` unless it is a
    /// finite number in `[2^-40, 2^40]` (a clock tick is well inside).
    pub fn new(ns_per_unit: f64) -> Option<ScaledIndex> {
        const RANGE: f64 = 1_099_511_627_776.0; // 2^40
        if !(ns_per_unit.is_finite() && (1.0 / RANGE..=RANGE).contains(&ns_per_unit)) {
            return None;
        }
        let scaled = SUB_BUCKETS as f64 * ns_per_unit.log2();
        let a = scaled.floor();
        let theta = scaled - a;
        // The points 2^((n-θ)/64) - 1 for n = 0..=64, ascending: those below 0 are below
        // every fraction (they only count), those at or above 1 are above every fraction.
        let mut below_zero = 0u64;
        let mut points = [0u64; SUB_BUCKETS + 1];
        let mut len = 0;
        for n in 0..=SUB_BUCKETS {
            let q = ((n as f64 - theta) / SUB_BUCKETS as f64).exp2() - 1.0;
            if q < 0.0 {
                below_zero += 1;
            } else if q < 1.0 {
                // As a 63-bit fraction; the low bits hold the count in a table entry.
                points[len] = ((q * 9_223_372_036_854_775_808.0) as u64) & !COUNT_MASK;
                len += 1;
            }
        }
        let points = &points[..len];
        let mut slices = [0u64; 1 << SLICE_BITS];
        for (s, entry) in slices.iter_mut().enumerate() {
            let start = (s as u64) << (63 - SLICE_BITS);
            let below = points.iter().filter(|&&p| p < start).count() as u64;
            let next = points
                .iter()
                .copied()
                .find(|&p| p >= start)
                .unwrap_or(1 << 63);
            *entry = next | (below_zero + below);
        }
        Some(ScaledIndex {
            slices,
            offset: a as i64,
        })
    }

    /// The index of nanoseconds themselves (`f = 1`): [`crate::position`]'s own table.
    pub fn identity() -> ScaledIndex {
        ScaledIndex {
            slices: crate::SLICES,
            offset: 0,
        }
    }

    /// Dense position (as [`crate::position`]) of the nanosecond value `units × f`.
    /// Integer-only: a leading-zero count, one table load, one comparison, a clamp.
    #[inline(always)]
    pub fn position(&self, units: u64) -> usize {
        if units == 0 {
            return 0;
        }
        let lz = units.leading_zeros();
        let frac = (units << lz) & (u64::MAX >> 1);
        let e = self.slices[(frac >> (63 - SLICE_BITS)) as usize];
        let within = (e & COUNT_MASK) as i64 + i64::from(frac > e & !COUNT_MASK);
        let p = 1 + i64::from(63 - lz) * SUB_BUCKETS as i64 + within + self.offset;
        p.clamp(0, POSITIONS as i64 - 1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position;
    use proptest::prelude::*;

    /// Values around every octave edge and every slice edge, plus a spread of others.
    fn probes() -> Vec<u64> {
        let mut v = vec![1, 2, 3, 4, 5, 7, 8, 9, 1000, u64::MAX, u64::MAX - 1];
        for e in 0..64 {
            let p = 1u64 << e;
            v.extend([p - 1, p, p + 1, p | (p >> 1), p.saturating_mul(3) / 2 + 1]);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x >> (x % 64));
        }
        v
    }

    #[test]
    fn unit_scale_is_the_plain_index() {
        let s = ScaledIndex::new(1.0).unwrap();
        for v in probes() {
            assert_eq!(s.position(v), position(v), "v={v}");
        }
    }

    #[test]
    fn identity_is_the_unit_scale() {
        assert_eq!(ScaledIndex::identity(), ScaledIndex::new(1.0).unwrap());
    }

    #[test]
    fn power_of_two_scales_shift_whole_octaves() {
        for k in [-3i32, -1, 1, 2, 5] {
            let s = ScaledIndex::new(f64::from(k).exp2()).unwrap();
            for v in probes() {
                let want = if position(v) == 0 {
                    0
                } else {
                    (position(v) as i64 + 64 * i64::from(k)).clamp(0, POSITIONS as i64 - 1)
                };
                assert_eq!(s.position(v) as i64, want, "k={k} v={v}");
            }
        }
    }

    #[test]
    fn out_of_range_scales_are_refused() {
        for f in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-13, 1e13] {
            assert!(ScaledIndex::new(f).is_none(), "{f}");
        }
    }

    #[test]
    fn tiny_products_go_to_the_zero_bucket_and_huge_ones_to_the_last() {
        let s = ScaledIndex::new(0.25).unwrap();
        assert_eq!(s.position(0), 0);
        assert_eq!(s.position(1), 0); // 0.25 ns
        assert_eq!(s.position(3), 0); // 0.75 ns < 2^(-1/64)
        assert_eq!(s.position(4), 1); // exactly 1 ns: bucket 0
        let s = ScaledIndex::new(3.0).unwrap();
        assert_eq!(s.position(u64::MAX), POSITIONS - 1);
    }

    /// The bucket of `t·f` by its definition, in floating point; `None` when the product
    /// lies too close to a boundary for `f64` to tell.
    fn position_by_definition(t: u64, f: f64) -> Option<usize> {
        if t == 0 {
            return Some(0);
        }
        let x = SUB_BUCKETS as f64 * ((t as f64).log2() + f.log2());
        if (x - x.round()).abs() < 1e-6 {
            return None;
        }
        Some((1 + x.ceil() as i64).clamp(0, POSITIONS as i64 - 1) as usize)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Clock-like scales (0.05 ns to 20 ns per tick): every probe lands in the bucket
        /// its nanosecond value belongs to.
        #[test]
        fn every_value_lands_in_the_bucket_of_its_product(f in 0.05f64..20.0) {
            let s = ScaledIndex::new(f).unwrap();
            for t in probes() {
                if let Some(want) = position_by_definition(t, f) {
                    prop_assert_eq!(s.position(t), want, "t={} f={}", t, f);
                }
            }
        }
    }
}
