//! Native (sparse exponential) histogram samples, as in Prometheus' native histograms.
//!
//! Bucket boundaries for schema `s` are powers of `2^(2^-s)`: bucket index `i` covers
//! `(base^(i-1), base^i]` for positive values (mirrored for negative ones). Counts are held
//! as absolute `f64` per bucket (not deltas): integer counts up to 2^53 stay exact, and
//! float histograms (e.g. after `rate`) use the same type.
//!
//! Custom-bucket histograms (NHCB, schema [`Histogram::CUSTOM_BUCKETS_SCHEMA`]) carry their
//! own upper bounds in `custom_values`: positive bucket `i` covers
//! `(custom_values[i-1], custom_values[i]]`, bucket 0 starts at `-Inf` and bucket
//! `custom_values.len()` ends at `+Inf`. They have no negative buckets and no zero bucket.
//! Prometheus 3 produces them from classic histograms; they arrive over remote_write.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A run of consecutive buckets: `offset` buckets skipped after the previous span (or from
/// index 0 for the first span), then `length` buckets present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// Gap to the previous span's end (or start index for the first span).
    pub offset: i32,
    /// Number of consecutive buckets in this span.
    pub length: u32,
}

/// What the sender said about counter resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CounterResetHint {
    /// Unknown: detect resets by comparing with the previous sample.
    #[default]
    Unknown,
    /// This sample follows a counter reset.
    Reset,
    /// This sample certainly does not follow a reset.
    NotReset,
    /// A gauge histogram: resets do not apply.
    Gauge,
}

/// One native histogram sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Resolution: -4..=8 (exponential) per Prometheus.
    pub schema: i32,
    /// Values with absolute value at most this go to the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// Total observations.
    pub count: f64,
    /// Sum of observations.
    pub sum: f64,
    /// Spans of positive buckets.
    pub positive_spans: Vec<Span>,
    /// Absolute counts of the positive buckets, in span order.
    pub positive_buckets: Vec<f64>,
    /// Spans of negative buckets.
    pub negative_spans: Vec<Span>,
    /// Absolute counts of the negative buckets, in span order.
    pub negative_buckets: Vec<f64>,
    /// Smallest observation, when the source tracked it.
    pub min: Option<f64>,
    /// Largest observation, when the source tracked it.
    pub max: Option<f64>,
    /// Counter-reset hint from the sender.
    pub reset_hint: CounterResetHint,
    /// Upper bounds of the buckets of a custom-bucket histogram (strictly increasing,
    /// finite; the `+Inf` bucket is implied). Empty for exponential schemas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_values: Vec<f64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            schema: 0,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count: 0.0,
            sum: 0.0,
            positive_spans: Vec::new(),
            positive_buckets: Vec::new(),
            negative_spans: Vec::new(),
            negative_buckets: Vec::new(),
            min: None,
            max: None,
            reset_hint: CounterResetHint::Unknown,
            custom_values: Vec::new(),
        }
    }
}

impl Histogram {
    /// Lowest schema Prometheus defines.
    pub const MIN_SCHEMA: i32 = -4;
    /// Highest schema Prometheus defines.
    pub const MAX_SCHEMA: i32 = 8;

    /// Schema of custom-bucket histograms (NHCB), as in Prometheus.
    pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

    /// A custom-bucket histogram with upper `bounds` and one count per bucket from the
    /// first, `(-Inf, bounds[0]]`, on (at most `bounds.len() + 1`, the last ending at
    /// `+Inf`); the total count is their sum. What a classic histogram's cumulative
    /// buckets become once differenced.
    pub fn custom_buckets(bounds: &[f64], counts: &[f64], sum: f64) -> Histogram {
        Histogram {
            schema: Self::CUSTOM_BUCKETS_SCHEMA,
            count: counts.iter().sum(),
            sum,
            positive_spans: if counts.is_empty() {
                Vec::new()
            } else {
                vec![Span {
                    offset: 0,
                    length: u32::try_from(counts.len()).unwrap_or(u32::MAX),
                }]
            },
            positive_buckets: counts.to_vec(),
            custom_values: bounds.to_vec(),
            ..Histogram::default()
        }
    }

    /// Whether this histogram has custom bucket bounds (schema -53).
    #[inline]
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == Self::CUSTOM_BUCKETS_SCHEMA
    }

    /// Check that spans and bucket counts agree and the schema is in range; for
    /// custom buckets also that the bounds increase strictly, are finite, and cover
    /// every bucket, and that there are no negative or zero buckets.
    pub fn validate(&self) -> Result<()> {
        if self.uses_custom_buckets() {
            self.validate_custom()?;
        } else if !(Self::MIN_SCHEMA..=Self::MAX_SCHEMA).contains(&self.schema) {
            return Err(Error::InvalidHistogram {
                reason: "schema out of range -4..=8 (or -53 for custom buckets)",
            });
        } else if !self.custom_values.is_empty() {
            return Err(Error::InvalidHistogram {
                reason: "custom bucket bounds on an exponential schema",
            });
        }
        let span_len = |s: &[Span]| s.iter().map(|s| s.length as usize).sum::<usize>();
        if span_len(&self.positive_spans) != self.positive_buckets.len() {
            return Err(Error::InvalidHistogram {
                reason: "positive spans do not match positive bucket count",
            });
        }
        if span_len(&self.negative_spans) != self.negative_buckets.len() {
            return Err(Error::InvalidHistogram {
                reason: "negative spans do not match negative bucket count",
            });
        }
        if self.zero_threshold < 0.0 || self.zero_threshold.is_nan() {
            return Err(Error::InvalidHistogram {
                reason: "negative or NaN zero threshold",
            });
        }
        Ok(())
    }

    fn validate_custom(&self) -> Result<()> {
        let bad = |reason| Err(Error::InvalidHistogram { reason });
        let mut prev = f64::NEG_INFINITY;
        for &b in &self.custom_values {
            if b.is_nan() || b <= prev {
                return bad("custom bucket bounds must increase strictly");
            }
            prev = b;
        }
        if prev == f64::INFINITY {
            return bad("custom bucket bounds must not list +Inf (the last bucket is implied)");
        }
        if !self.negative_spans.is_empty() || !self.negative_buckets.is_empty() {
            return bad("custom-bucket histogram with negative buckets");
        }
        if self.zero_count != 0.0 || self.zero_threshold != 0.0 {
            return bad("custom-bucket histogram with a zero bucket");
        }
        let mut next = 0i64;
        for s in &self.positive_spans {
            if s.offset < 0 {
                return bad("custom-bucket histogram with a negative span offset");
            }
            next += i64::from(s.offset) + i64::from(s.length);
        }
        if next > self.custom_values.len() as i64 + 1 {
            return bad("custom-bucket histogram has more buckets than bounds");
        }
        Ok(())
    }

    /// `(lower, upper)` bounds of positive bucket `index` (custom or exponential).
    /// Custom bucket 0 starts at `-Inf` and the last one ends at `+Inf`; exponential
    /// bucket `i` is `(base^(i-1), base^i]`.
    pub fn positive_bucket_bounds(&self, index: i32) -> (f64, f64) {
        if self.uses_custom_buckets() {
            let cv = &self.custom_values;
            let at = |i: i32| -> f64 {
                match usize::try_from(i) {
                    Err(_) => f64::NEG_INFINITY,
                    Ok(i) => cv.get(i).copied().unwrap_or(f64::INFINITY),
                }
            };
            (at(index - 1), at(index))
        } else {
            (
                Self::bucket_upper_bound(self.schema, index - 1),
                Self::bucket_upper_bound(self.schema, index),
            )
        }
    }

    /// Iterate `(bucket index, count)` of the positive buckets.
    pub fn positive_iter(&self) -> BucketIter<'_> {
        BucketIter::new(&self.positive_spans, &self.positive_buckets)
    }

    /// Iterate `(bucket index, count)` of the negative buckets.
    pub fn negative_iter(&self) -> BucketIter<'_> {
        BucketIter::new(&self.negative_spans, &self.negative_buckets)
    }

    /// Upper bound of positive bucket `index` of an exponential `schema`:
    /// `2^(index · 2^-schema)`, computed as Prometheus does (a mantissa in `[0.5, 1)` from
    /// the index's position within its power of two, scaled by that power), so the bounds
    /// the API lists and the ones PromQL interpolates with are Prometheus' numbers to the
    /// last bit. The bucket ending at 2^1024 (beyond `f64`) ends at `f64::MAX`.
    pub fn bucket_upper_bound(schema: i32, index: i32) -> f64 {
        if schema < 0 {
            let exp = i64::from(index) << (-schema).min(62);
            if exp == 1024 {
                return f64::MAX;
            }
            return 2f64.powi(i32::try_from(exp).unwrap_or(i32::MAX));
        }
        let shift = schema.min(30);
        let per = 1i64 << shift;
        let idx = i64::from(index);
        let frac = ((idx & (per - 1)) as f64 / per as f64).exp2() / 2.0;
        let exp = (idx >> shift) + 1;
        if frac == 0.5 && exp == 1025 {
            return f64::MAX;
        }
        frac * 2f64.powi(i32::try_from(exp).unwrap_or(i32::MAX))
    }
}

/// The bucket of `onto` (custom bounds, a subset of `from`) that bucket `idx` of `from`
/// folds into: the first whose upper bound is at or above its own, so no count changes
/// side of a kept bound. The one rule every re-bucketing of custom buckets uses.
pub fn custom_bucket_onto(from: &[f64], idx: i32, onto: &[f64]) -> i32 {
    let upper = usize::try_from(idx)
        .ok()
        .and_then(|i| from.get(i).copied())
        .unwrap_or(f64::INFINITY);
    i32::try_from(onto.partition_point(|&b| b < upper)).unwrap_or(i32::MAX)
}

/// Spans and counts of sparse buckets given as `(index, count)` in increasing index order:
/// a new span at every gap, its offset counted from the previous span's end (from index 0
/// for the first).
pub fn spans_from_buckets(buckets: impl IntoIterator<Item = (i32, f64)>) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::new();
    let mut next: Option<i32> = None;
    for (i, c) in buckets {
        match (next, spans.last_mut()) {
            (Some(n), Some(s)) if n == i => s.length += 1,
            (Some(n), _) => spans.push(Span {
                offset: i - n,
                length: 1,
            }),
            (None, _) => spans.push(Span {
                offset: i,
                length: 1,
            }),
        }
        counts.push(c);
        next = Some(i + 1);
    }
    (spans, counts)
}

/// The bounds two custom-bucket histograms share, in order (Prometheus reconciles
/// mismatched custom buckets onto this set).
pub fn intersect_custom_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x == y {
            out.push(x);
            i += 1;
            j += 1;
        } else if x < y {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Iterator over `(index, count)` pairs of sparse buckets.
#[derive(Debug, Clone)]
pub struct BucketIter<'a> {
    spans: &'a [Span],
    counts: &'a [f64],
    span: usize,
    in_span: u32,
    index: i32,
    pos: usize,
}

impl<'a> BucketIter<'a> {
    fn new(spans: &'a [Span], counts: &'a [f64]) -> Self {
        let index = spans.first().map(|s| s.offset).unwrap_or(0);
        BucketIter {
            spans,
            counts,
            span: 0,
            in_span: 0,
            index,
            pos: 0,
        }
    }
}

impl Iterator for BucketIter<'_> {
    type Item = (i32, f64);
    fn next(&mut self) -> Option<(i32, f64)> {
        loop {
            let span = self.spans.get(self.span)?;
            if self.in_span < span.length {
                let out = (self.index, *self.counts.get(self.pos)?);
                self.in_span += 1;
                self.pos += 1;
                self.index = self.index.saturating_add(1);
                return Some(out);
            }
            self.span += 1;
            self.in_span = 0;
            if let Some(next) = self.spans.get(self.span) {
                self.index = self.index.saturating_add(next.offset);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_iter_walks_spans_with_gaps() {
        let h = Histogram {
            positive_spans: vec![
                Span {
                    offset: -1,
                    length: 2,
                },
                Span {
                    offset: 3,
                    length: 1,
                },
            ],
            positive_buckets: vec![1.0, 2.0, 3.0],
            ..Histogram::default()
        };
        h.validate().unwrap();
        let v: Vec<_> = h.positive_iter().collect();
        assert_eq!(v, vec![(-1, 1.0), (0, 2.0), (4, 3.0)]);
    }

    #[test]
    fn validate_rejects_mismatched_spans() {
        let h = Histogram {
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1.0],
            ..Histogram::default()
        };
        assert!(h.validate().is_err());
    }

    #[test]
    fn upper_bounds_follow_schema() {
        assert_eq!(Histogram::bucket_upper_bound(0, 1), 2.0);
        assert_eq!(Histogram::bucket_upper_bound(0, 3), 8.0);
        assert!((Histogram::bucket_upper_bound(1, 1) - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(Histogram::bucket_upper_bound(0, -1), 0.5);
        assert_eq!(Histogram::bucket_upper_bound(-1, 1), 4.0);
        assert_eq!(Histogram::bucket_upper_bound(3, 8), 2.0);
        assert_eq!(Histogram::bucket_upper_bound(0, 1024), f64::MAX);
        assert_eq!(Histogram::bucket_upper_bound(-2, 256), f64::MAX);
    }

    fn nhcb(bounds: &[f64], spans: Vec<Span>, buckets: Vec<f64>) -> Histogram {
        Histogram {
            schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
            count: buckets.iter().sum(),
            positive_spans: spans,
            positive_buckets: buckets,
            custom_values: bounds.to_vec(),
            ..Histogram::default()
        }
    }

    fn span(offset: i32, length: u32) -> Span {
        Span { offset, length }
    }

    #[test]
    fn custom_bounds_validate_like_prometheus() {
        let ok = nhcb(&[5.0, 10.0], vec![span(0, 3)], vec![1.0, 2.0, 1.0]);
        ok.validate().unwrap();
        // Index 3 would be a bucket above +Inf.
        assert!(nhcb(&[5.0, 10.0], vec![span(1, 3)], vec![1.0, 2.0, 1.0])
            .validate()
            .is_err());
        assert!(nhcb(&[10.0, 5.0], vec![], vec![]).validate().is_err());
        assert!(nhcb(&[5.0, 5.0], vec![], vec![]).validate().is_err());
        assert!(nhcb(&[5.0, f64::NAN], vec![], vec![]).validate().is_err());
        assert!(nhcb(&[5.0, f64::INFINITY], vec![], vec![])
            .validate()
            .is_err());
        assert!(nhcb(&[5.0], vec![span(-1, 1)], vec![1.0])
            .validate()
            .is_err());
        let mut neg = ok.clone();
        neg.negative_spans = vec![span(0, 1)];
        neg.negative_buckets = vec![1.0];
        assert!(neg.validate().is_err());
        let mut zero = ok.clone();
        zero.zero_count = 1.0;
        assert!(zero.validate().is_err());
        let exp_with_bounds = Histogram {
            custom_values: vec![1.0],
            ..Histogram::default()
        };
        assert!(exp_with_bounds.validate().is_err());
    }

    #[test]
    fn dense_custom_buckets_are_valid_up_to_the_inf_bucket() {
        let h = Histogram::custom_buckets(&[5.0, 10.0], &[1.0, 2.0, 1.0], 9.0);
        h.validate().unwrap();
        assert_eq!(h.count, 4.0);
        assert_eq!(
            h.positive_iter().collect::<Vec<_>>(),
            vec![(0, 1.0), (1, 2.0), (2, 1.0)]
        );
        Histogram::custom_buckets(&[5.0], &[], 0.0)
            .validate()
            .unwrap();
        // One count too many: a bucket above +Inf.
        assert!(Histogram::custom_buckets(&[5.0], &[1.0, 1.0, 1.0], 0.0)
            .validate()
            .is_err());
    }

    #[test]
    fn custom_bucket_bounds_start_at_minus_inf_and_end_at_inf() {
        let h = nhcb(&[5.0, 10.0], vec![], vec![]);
        assert_eq!(h.positive_bucket_bounds(0), (f64::NEG_INFINITY, 5.0));
        assert_eq!(h.positive_bucket_bounds(1), (5.0, 10.0));
        assert_eq!(h.positive_bucket_bounds(2), (10.0, f64::INFINITY));
    }

    /// `h` re-bucketed onto `bounds` with the shared rule and span builder, as the
    /// store's rollups and PromQL's sums do.
    fn rebucket(h: &Histogram, bounds: &[f64]) -> Histogram {
        let mut folded = std::collections::BTreeMap::new();
        for (i, c) in h.positive_iter() {
            *folded
                .entry(custom_bucket_onto(&h.custom_values, i, bounds))
                .or_insert(0.0) += c;
        }
        let (positive_spans, positive_buckets) = spans_from_buckets(folded);
        Histogram {
            positive_spans,
            positive_buckets,
            custom_values: bounds.to_vec(),
            ..h.clone()
        }
    }

    #[test]
    fn rebucketing_onto_shared_bounds_keeps_counts_on_their_side() {
        let a = nhcb(
            &[2.0, 5.0, 10.0],
            vec![span(0, 2), span(1, 1)],
            vec![1.0, 2.0, 4.0],
        );
        let shared = intersect_custom_bounds(&a.custom_values, &[5.0, 7.0]);
        assert_eq!(shared, vec![5.0]);
        let r = rebucket(&a, &shared);
        r.validate().unwrap();
        // (-Inf,2] and (2,5] fold into (-Inf,5]; (10,+Inf] lands in (5,+Inf].
        let v: Vec<_> = r.positive_iter().collect();
        assert_eq!(v, vec![(0, 3.0), (1, 4.0)]);
        assert_eq!(r.count, a.count);
        // A gap survives the re-bucketing.
        let b = nhcb(&[1.0, 2.0, 3.0], vec![span(3, 1)], vec![7.0]);
        let r = rebucket(&b, &[1.0, 3.0]);
        assert_eq!(r.positive_spans, vec![span(2, 1)]);
        assert_eq!(r.positive_buckets, vec![7.0]);
    }
}
