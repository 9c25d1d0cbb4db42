//! The histogram trim operators of Prometheus 3.x: `h </ v` keeps the observations of `h`
//! at or below `v`, `h >/ v` those at or above it.
//!
//! A bucket entirely on the kept side stays, one entirely on the other side goes, and the
//! bucket the cutoff falls into keeps the share of its count on the kept side, estimated
//! as `histogram_fraction` does: exponentially within standard buckets, linearly within
//! the zero bucket and custom buckets.
//!
//! When nothing was removed the histogram comes back unchanged. Otherwise its count is the
//! sum of what the buckets kept, and its sum is estimated from them: each bucket's kept
//! observations count at the mean of the part of the bucket they occupy (geometric for
//! standard buckets, arithmetic for the zero bucket and custom buckets).
//!
//! Buckets with an infinite bound are not interpolated (there is no width to share): a
//! cutoff inside one keeps the bucket whole at the cutoff when the kept side is the
//! unbounded one, and drops it otherwise; the first custom bucket counts as `[0, bound]`
//! when its bound is positive and the cutoff not negative, as for quantiles. These rules
//! are Prometheus', pinned by its own test cases (`native_histograms.test`).

use gmc_model::Histogram;

use super::{from_map, parts, upper, Buckets};

/// Which observations a trim keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// `</`: those at or below the cutoff.
    Below,
    /// `>/`: those at or above the cutoff.
    Above,
}

/// How observations are assumed to spread inside a bucket.
#[derive(Clone, Copy)]
enum Spread {
    /// Uniformly (zero bucket, custom buckets).
    Linear,
    /// Uniformly in log space (standard exponential buckets).
    Exponential,
}

/// What a bucket keeps: its remaining count and the value they are taken to have.
struct Kept {
    count: f64,
    at: f64,
}

impl Kept {
    /// Nothing kept.
    const NONE: Kept = Kept {
        count: 0.0,
        at: 0.0,
    };
}

/// Mean of the interval `[a, b]` under `spread`; an infinite end yields the finite one.
fn mean(a: f64, b: f64, spread: Spread) -> f64 {
    match (a.is_infinite(), b.is_infinite()) {
        (true, true) => 0.0,
        (true, false) => b,
        (false, true) => a,
        (false, false) => match spread {
            Spread::Linear => (a + b) / 2.0,
            // Standard buckets never straddle zero, so the product is positive.
            Spread::Exponential if a > 0.0 => (a * b).sqrt(),
            Spread::Exponential => -(a * b).sqrt(),
        },
    }
}

/// Share of the finite bucket `[lo, hi]` that lies below `v` (`lo < v < hi`).
fn share_below(lo: f64, hi: f64, v: f64, spread: Spread) -> f64 {
    match spread {
        Spread::Linear => (v - lo) / (hi - lo),
        // Same sign throughout, so every ratio is positive.
        Spread::Exponential if lo > 0.0 => (v / lo).ln() / (hi / lo).ln(),
        Spread::Exponential => (lo / v).ln() / (lo / hi).ln(),
    }
}

/// What the bucket `[lo, hi]` holding `count` keeps of a trim at `cutoff`.
fn trim_bucket(lo: f64, hi: f64, count: f64, cutoff: f64, keep: Keep, spread: Spread) -> Kept {
    let all = Kept {
        count,
        at: mean(lo, hi, spread),
    };
    let none = Kept::NONE;
    let (whole_kept, whole_dropped) = match keep {
        Keep::Below => (hi <= cutoff, lo >= cutoff),
        Keep::Above => (lo >= cutoff, hi <= cutoff),
    };
    if whole_kept {
        return all;
    }
    if whole_dropped {
        return none;
    }
    // The cutoff lies inside the bucket.
    match (lo.is_infinite(), hi.is_infinite(), keep) {
        (true, true, _) => none,
        // Unbounded on the kept side: all of it stays, counted at the cutoff.
        (true, false, Keep::Below) | (false, true, Keep::Above) => Kept { count, at: cutoff },
        (true, false, Keep::Above) | (false, true, Keep::Below) => none,
        (false, false, Keep::Below) => Kept {
            count: count * share_below(lo, hi, cutoff, spread),
            at: mean(lo, cutoff, spread),
        },
        (false, false, Keep::Above) => Kept {
            count: count * (1.0 - share_below(lo, hi, cutoff, spread)),
            at: mean(cutoff, hi, spread),
        },
    }
}

/// Running totals of a trim.
#[derive(Default)]
struct Totals {
    count: f64,
    sum: f64,
    /// Whether any observation was removed.
    trimmed: bool,
}

impl Totals {
    fn add(&mut self, before: f64, kept: &Kept) {
        if kept.count != before {
            self.trimmed = true;
        }
        if kept.count != 0.0 {
            self.count += kept.count;
            self.sum += kept.count * kept.at;
        }
    }
}

/// `h </ cutoff` ([`Keep::Below`]) or `h >/ cutoff` ([`Keep::Above`]).
pub(crate) fn trim(h: &Histogram, cutoff: f64, keep: Keep) -> Histogram {
    // Nothing lies above or below NaN.
    if cutoff.is_nan() {
        return h.clone();
    }
    let mut totals = Totals::default();
    let mut p = parts(h, h.schema);

    if h.uses_custom_buckets() {
        for (idx, c) in p.pos.iter_mut() {
            let (lo, hi) = h.positive_bucket_bounds(*idx);
            // The first bucket holds [0, bound] when its bound is positive; a cutoff below
            // zero lies in its unbounded part, where it is not interpolated: dropped.
            let first_positive = lo == f64::NEG_INFINITY && hi.is_finite() && hi > 0.0;
            let kept = if first_positive && cutoff >= 0.0 {
                trim_bucket(0.0, hi, *c, cutoff, keep, Spread::Linear)
            } else if first_positive && cutoff > f64::NEG_INFINITY {
                Kept::NONE
            } else {
                trim_bucket(lo, hi, *c, cutoff, keep, Spread::Linear)
            };
            totals.add(*c, &kept);
            *c = kept.count;
        }
    } else {
        let populated = |m: &Buckets| m.values().any(|c| *c > 0.0);
        let (has_pos, has_neg) = (populated(&p.pos), populated(&p.neg));
        for (idx, c) in p.neg.iter_mut() {
            let (lo, hi) = (-upper(p.schema, *idx), -upper(p.schema, idx - 1));
            let kept = trim_bucket(lo, hi, *c, cutoff, keep, Spread::Exponential);
            totals.add(*c, &kept);
            *c = kept.count;
        }
        if p.zc != 0.0 {
            // The zero bucket leans to the side that has observations.
            let (lo, hi) = match (has_pos, has_neg) {
                (true, false) => (0.0, p.zt),
                (false, true) => (-p.zt, 0.0),
                _ => (-p.zt, p.zt),
            };
            let kept = trim_bucket(lo, hi, p.zc, cutoff, keep, Spread::Linear);
            totals.add(p.zc, &kept);
            p.zc = kept.count;
        }
        for (idx, c) in p.pos.iter_mut() {
            let (lo, hi) = (upper(p.schema, idx - 1), upper(p.schema, *idx));
            let kept = trim_bucket(lo, hi, *c, cutoff, keep, Spread::Exponential);
            totals.add(*c, &kept);
            *c = kept.count;
        }
    }

    if !totals.trimmed {
        return h.clone();
    }
    p.pos.retain(|_, c| *c != 0.0);
    p.neg.retain(|_, c| *c != 0.0);
    let (positive_spans, positive_buckets) = from_map(&p.pos);
    let (negative_spans, negative_buckets) = from_map(&p.neg);
    Histogram {
        zero_count: p.zc,
        count: totals.count,
        sum: totals.sum,
        positive_spans,
        positive_buckets,
        negative_spans,
        negative_buckets,
        min: None,
        max: None,
        ..h.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmc_model::Span;

    fn exp(schema: i32, zc: f64, zt: f64, pos: &[f64], neg: &[f64]) -> Histogram {
        let count = zc + pos.iter().sum::<f64>() + neg.iter().sum::<f64>();
        let span = |n: usize| {
            vec![Span {
                offset: 0,
                length: u32::try_from(n).unwrap_or(0),
            }]
        };
        Histogram {
            schema,
            zero_threshold: zt,
            zero_count: zc,
            count,
            sum: 1.0,
            positive_spans: if pos.is_empty() {
                vec![]
            } else {
                span(pos.len())
            },
            positive_buckets: pos.to_vec(),
            negative_spans: if neg.is_empty() {
                vec![]
            } else {
                span(neg.len())
            },
            negative_buckets: neg.to_vec(),
            ..Histogram::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn a_cutoff_on_a_bound_moves_whole_buckets_and_re_estimates_the_sum() {
        // (0.5,1]: 2, (1,2]: 4, (2,4]: 8.
        let h = exp(0, 0.0, 0.0, &[2.0, 4.0, 8.0], &[]);
        let below = trim(&h, 2.0, Keep::Below);
        assert_eq!(below.count, 6.0);
        assert!(close(below.sum, 2.0 * 0.5f64.sqrt() + 4.0 * 2f64.sqrt()));
        let above = trim(&h, 2.0, Keep::Above);
        assert_eq!(above.count, 8.0);
        assert_eq!(above.positive_buckets, vec![8.0]);
        assert_eq!(above.positive_spans[0].offset, 2);
    }

    #[test]
    fn a_cutoff_inside_a_standard_bucket_splits_it_in_log_space() {
        let h = exp(0, 0.0, 0.0, &[0.0, 4.0], &[]);
        // sqrt(2) halves (1,2] in log space.
        let below = trim(&h, 2f64.sqrt(), Keep::Below);
        assert!(close(below.count, 2.0));
        assert!(close(below.sum, 2.0 * 2f64.powf(0.25)));
        let above = trim(&h, 2f64.sqrt(), Keep::Above);
        assert!(close(above.count, 2.0));
        assert!(close(above.sum, 2.0 * 2f64.powf(0.75)));
    }

    #[test]
    fn nothing_removed_returns_the_histogram_unchanged() {
        let h = exp(0, 2.0, 0.5, &[10.0], &[]);
        // The zero bucket leans to [0, 0.5]: nothing lies below 0.
        assert_eq!(trim(&h, 0.0, Keep::Above), h);
        assert_eq!(trim(&h, f64::INFINITY, Keep::Below), h);
        assert_eq!(trim(&h, f64::NEG_INFINITY, Keep::Above), h);
        assert_eq!(trim(&h, f64::NAN, Keep::Below), h);
        let empty = trim(&h, f64::NEG_INFINITY, Keep::Below);
        assert_eq!((empty.count, empty.sum, empty.zero_count), (0.0, 0.0, 0.0));
        assert!(empty.positive_buckets.is_empty());
    }

    #[test]
    fn the_zero_bucket_is_split_linearly_on_the_side_it_leans_to() {
        let h = exp(0, 2.0, 0.5, &[10.0], &[]);
        let above = trim(&h, 0.1, Keep::Above);
        assert!(close(above.zero_count, 1.6));
        assert!(close(above.sum, 10.0 * 0.5f64.sqrt() + 1.6 * 0.3));
        let symmetric = exp(0, 5.0, 0.1, &[], &[]);
        let below = trim(&symmetric, 0.05, Keep::Below);
        assert!(close(below.zero_count, 3.75));
        assert!(close(below.sum, -0.09375));
    }

    #[test]
    fn custom_buckets_interpolate_linearly_and_never_inside_infinite_ones() {
        let h = Histogram {
            schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![5.0, 10.0, 15.0, 20.0],
            count: 15.0,
            sum: 172.5,
            positive_spans: vec![Span {
                offset: 0,
                length: 5,
            }],
            positive_buckets: vec![1.0, 6.0, 4.0, 3.0, 1.0],
            ..Histogram::default()
        };
        let below = trim(&h, 13.0, Keep::Below);
        assert!(close(below.count, 9.4));
        assert!(close(below.sum, 1.0 * 2.5 + 6.0 * 7.5 + 2.4 * 11.5));
        // The +Inf bucket goes whole when the cutoff is inside it and the rest is kept...
        let below = trim(&h, 50.0, Keep::Below);
        assert_eq!(below.count, 14.0);
        // ...and stays whole, at its lower bound, when it is on the kept side.
        let above = trim(&h, 15.0, Keep::Above);
        assert!(close(above.sum, 3.0 * 17.5 + 20.0));
        // Nothing lies below the first bucket's assumed lower bound, 0.
        assert_eq!(trim(&h, 0.0, Keep::Above), h);
    }
}
