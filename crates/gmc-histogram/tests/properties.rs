//! Property tests of the histogram: every quantile within the stated bound over random
//! distributions, merges exact and associative, native conversion consistent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gmc_histogram::{Histogram, RELATIVE_ERROR};
use proptest::prelude::*;

/// Values from several shapes: tiny integers, log-uniform latencies, and wide u64s.
fn values() -> impl Strategy<Value = Vec<u64>> {
    let one = prop_oneof![
        0u64..50,
        (0u32..40, any::<u64>()).prop_map(|(bits, r)| (1u64 << bits) + r % (1u64 << bits)),
        any::<u64>(),
        100u64..1_000_000,
    ];
    prop::collection::vec(one, 1..400)
}

fn hist(vs: &[u64]) -> Histogram {
    let mut h = Histogram::new();
    for &v in vs {
        h.record(v);
    }
    h
}

/// Exact nearest-rank quantile of sorted data.
fn exact(sorted: &[u64], q: f64) -> u64 {
    let n = sorted.len() as u64;
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    sorted[(rank - 1) as usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_quantile_is_within_the_bound(vs in values(), qs in prop::collection::vec(0.0f64..=1.0, 1..20)) {
        let h = hist(&vs);
        let mut sorted = vs.clone();
        sorted.sort_unstable();
        for q in qs.into_iter().chain([0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0]) {
            let want = exact(&sorted, q) as f64;
            let got = h.quantile(q).unwrap();
            // The bound, plus f64 rounding of the bucket bounds themselves.
            prop_assert!((got - want).abs() <= want * (RELATIVE_ERROR + 1e-12),
                "q={} want={} got={}", q, want, got);
        }
        prop_assert_eq!(h.count(), vs.len() as u64);
        prop_assert_eq!(h.sum(), vs.iter().map(|&v| u128::from(v)).sum::<u128>());
        prop_assert_eq!(h.min(), vs.iter().copied().min());
        prop_assert_eq!(h.max(), vs.iter().copied().max());
    }

    #[test]
    fn merge_of_parts_equals_whole(vs in values(), cut in any::<prop::sample::Index>()) {
        let k = cut.index(vs.len() + 1);
        let mut a = hist(&vs[..k]);
        a.merge(&hist(&vs[k..]));
        prop_assert_eq!(a, hist(&vs));
    }

    #[test]
    fn merge_is_associative_and_commutative(a in values(), b in values(), c in values()) {
        let (ha, hb, hc) = (hist(&a), hist(&b), hist(&c));
        let mut left = ha.clone();
        left.merge(&hb);
        left.merge(&hc);
        let mut bc = hb.clone();
        bc.merge(&hc);
        let mut right = ha.clone();
        right.merge(&bc);
        prop_assert_eq!(&left, &right);
        let mut swapped = hc.clone();
        swapped.merge(&ha);
        swapped.merge(&hb);
        prop_assert_eq!(&left, &swapped);
    }

    #[test]
    fn native_conversion_keeps_every_observation(vs in values()) {
        let h = hist(&vs);
        let n = h.to_native();
        n.validate().unwrap();
        let total: f64 = n.positive_iter().map(|(_, c)| c).sum::<f64>() + n.zero_count;
        prop_assert_eq!(total, vs.len() as f64);
        for (i, _) in n.positive_iter() {
            let (l, u) = gmc_histogram::bucket_bounds(i);
            prop_assert!(vs.iter().any(|&v| (v as f64) > l * (1.0 - 1e-12) && (v as f64) <= u * (1.0 + 1e-12)));
        }
    }

    #[test]
    fn rebuilding_from_positions_matches_recording(vs in values()) {
        let h = hist(&vs);
        let mut r = Histogram::new();
        let half = vs.len() / 2;
        for part in [&vs[..half], &vs[half..]] {
            if let (Some(&mn), Some(&mx)) = (part.iter().min(), part.iter().max()) {
                let sum = part.iter().map(|&v| u128::from(v)).sum();
                r.merge_raw(part.iter().map(|&v| (gmc_histogram::position(v), 1)), sum, mn, mx);
            }
        }
        prop_assert_eq!(r, h);
    }
}
