//! Shared data model of gmc: label sets and series identity, float and native-histogram
//! samples, label matchers, metric metadata, timestamps and the write batch that every
//! ingest protocol decodes into and the storage engine appends from.
//!
//! This crate does no I/O and has no async code; every other gmc crate depends on it.
//!
//! ```
//! use gmc_model::{WriteBatch, LabelsBuilder, STALE_NAN_BITS};
//!
//! let mut batch = WriteBatch::new();
//! let mut s = batch.series();
//! s.label("__name__", "orders_total");
//! s.label("venue", "XNAS");
//! s.float(1_700_000_000_000_000_000, 42.0);
//! s.finish().unwrap();
//! assert_eq!(batch.len_series(), 1);
//! assert_eq!(batch.len_samples(), 1);
//! assert!(f64::from_bits(STALE_NAN_BITS).is_nan());
//! let _ = LabelsBuilder::new();
//! ```

mod batch;
mod error;
mod histogram;
mod labels;
pub mod lanes;
mod matcher;
mod metadata;
mod time;

pub use batch::{
    BatchSeries, FloatSample, HistogramSample, KeyLabels, Piece, SeriesEntry, SeriesWriter,
    WriteBatch,
};
pub use error::{Error, ErrorClass, Result};
pub use histogram::{
    custom_bucket_onto, intersect_custom_bounds, spans_from_buckets, CounterResetHint, Histogram,
    Span,
};
pub use labels::{
    series_hash, series_hash_bytes, series_key_bytes, series_key_hash, Label, LabelRef, Labels,
    LabelsBuilder, ValidationLimits, METRIC_NAME,
};
pub use matcher::{MatchOp, Matcher};
pub use metadata::{Metadata, MetricType};
pub use time::{millis_to_nanos, nanos_to_millis, now_nanos, NANOS_PER_MILLI, NANOS_PER_SEC};

/// Bit pattern of Prometheus' staleness marker: a NaN that means "this series ended".
/// Stored bit-exactly; any other NaN is an ordinary value.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the Prometheus staleness marker (compares bits, not values).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Drop the staleness markers from float samples (range windows skip them). Most series
/// hold none, which [`lanes::any`] finds out faster than `retain`'s scan for the first.
pub fn drop_stale_floats(v: &mut Vec<(i64, f64)>) {
    if lanes::any(v, |p| is_stale_nan(p.1)) {
        v.retain(|p| !is_stale_nan(p.1));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (0u8..4).prop_map(f64::from),
            1 => Just(f64::from_bits(super::STALE_NAN_BITS)),
            1 => Just(f64::NAN),
        ]
    }

    proptest! {
        #[test]
        fn drop_stale_floats_keeps_every_other_sample_in_order(
            vs in proptest::collection::vec(value(), 0..40),
        ) {
            let v: Vec<(i64, f64)> = vs.iter().enumerate().map(|(i, f)| (i as i64, *f)).collect();
            let mut got = v.clone();
            super::drop_stale_floats(&mut got);
            let want: Vec<(i64, u64)> = v
                .iter()
                .filter(|p| !super::is_stale_nan(p.1))
                .map(|p| (p.0, p.1.to_bits()))
                .collect();
            let got: Vec<(i64, u64)> = got.iter().map(|p| (p.0, p.1.to_bits())).collect();
            prop_assert_eq!(got, want);
        }
    }
}
