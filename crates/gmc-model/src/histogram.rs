//! Native (sparse exponential) histogram samples, as in Prometheus' native histograms.
//!
//! Bucket boundaries for schema `s` are powers of `2^(2^-s)`: bucket index `i` covers
//! `(base^(i-1), base^i]` for positive values (mirrored for negative ones). Counts are held
//! as absolute `f64` per bucket (not deltas): integer counts up to 2^53 stay exact, and
//! float histograms (e.g. after `rate`) use the same type.

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
        }
    }
}

impl Histogram {
    /// Lowest schema Prometheus defines.
    pub const MIN_SCHEMA: i32 = -4;
    /// Highest schema Prometheus defines.
    pub const MAX_SCHEMA: i32 = 8;

    /// Check that spans and bucket counts agree and the schema is in range.
    pub fn validate(&self) -> Result<()> {
        if !(Self::MIN_SCHEMA..=Self::MAX_SCHEMA).contains(&self.schema) {
            return Err(Error::InvalidHistogram {
                reason: "schema out of range -4..=8",
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

    /// Iterate `(bucket index, count)` of the positive buckets.
    pub fn positive_iter(&self) -> BucketIter<'_> {
        BucketIter::new(&self.positive_spans, &self.positive_buckets)
    }

    /// Iterate `(bucket index, count)` of the negative buckets.
    pub fn negative_iter(&self) -> BucketIter<'_> {
        BucketIter::new(&self.negative_spans, &self.negative_buckets)
    }

    /// Upper bound of positive bucket `index` for this histogram's schema.
    pub fn bucket_upper_bound(schema: i32, index: i32) -> f64 {
        // base = 2^(2^-schema); upper = base^index = 2^(index * 2^-schema)
        let exp = f64::from(index) * (-f64::from(schema)).exp2();
        exp.exp2()
    }
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
        assert!((Histogram::bucket_upper_bound(1, 1) - 2f64.sqrt()).abs() < 1e-12);
    }
}
