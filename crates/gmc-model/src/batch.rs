//! The write batch: what every ingest protocol decodes into and what the store appends.
//!
//! Laid out flat (one vector of labels, one of samples, one of series entries) so decoding
//! a 10 k-series request costs a handful of allocations, and labels can borrow from the
//! request body. Each series is validated and hashed when it is finished, so the store
//! receives only well-formed, sorted label sets.

use std::borrow::Cow;
use std::ops::Range;

use crate::error::Result;
use crate::histogram::Histogram;
use crate::labels::{series_key_bytes, series_key_hash, Label, LabelRef, Labels, ValidationLimits};
use crate::metadata::Metadata;

/// A float sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatSample {
    /// Timestamp, nanoseconds since the epoch.
    pub ts_nanos: i64,
    /// Value; NaN payloads (the stale marker) are preserved bit-exactly.
    pub value: f64,
}

/// A native histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    /// Timestamp, nanoseconds since the epoch.
    pub ts_nanos: i64,
    /// The histogram.
    pub histogram: Histogram,
}

/// Where one series' data sits in the batch's flat vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry {
    labels: Range<u32>,
    floats: Range<u32>,
    histograms: Range<u32>,
    key: Range<u32>,
    hash: u64,
}

/// A batch of series with their samples, plus family metadata.
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    labels: Vec<LabelRef<'a>>,
    floats: Vec<FloatSample>,
    histograms: Vec<HistogramSample>,
    series: Vec<SeriesEntry>,
    metadata: Vec<Metadata>,
    limits: ValidationLimits,
    /// Every series' identity bytes (see [`BatchSeries::key`]), back to back: built once
    /// for the hash (hashing many tiny pieces through a streaming hasher costs several
    /// times more) and kept, so the store compares a series with one slice compare over
    /// contiguous memory instead of walking label references.
    keys: Vec<u8>,
}

/// A read view of one series in a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchSeries<'b, 'a> {
    /// Sorted, validated labels.
    pub labels: &'b [LabelRef<'a>],
    /// Float samples in arrival order.
    pub floats: &'b [FloatSample],
    /// Histogram samples in arrival order.
    pub histograms: &'b [HistogramSample],
    /// Identity hash of `labels` (see [`crate::series_hash`]).
    pub hash: u64,
    /// The bytes `hash` is computed over: each label as name, `0xff`, value, `0xff`, in
    /// label order (see [`crate::series_key_bytes`]).
    pub key: &'b [u8],
}

impl<'b> BatchSeries<'b, '_> {
    /// Owned copy of the labels.
    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted(
            self.labels
                .iter()
                .map(|l| Label {
                    name: l.name.to_string(),
                    value: l.value.to_string(),
                })
                .collect(),
        )
    }

    /// Value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&'b str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_ref())
    }
}

impl<'a> WriteBatch<'a> {
    /// An empty batch validating with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch validating with `limits`.
    pub fn with_limits(limits: ValidationLimits) -> Self {
        WriteBatch {
            limits,
            ..Self::default()
        }
    }

    /// Reserve room for `series` series and `samples` samples.
    pub fn reserve(&mut self, series: usize, samples: usize) {
        self.series.reserve(series);
        self.labels.reserve(series * 8);
        self.floats.reserve(samples);
        self.keys.reserve(series * 96);
    }

    /// Start a new series; finish it with [`SeriesWriter::finish`].
    pub fn series(&mut self) -> SeriesWriter<'_, 'a> {
        SeriesWriter {
            start_labels: self.labels.len(),
            start_floats: self.floats.len(),
            start_hist: self.histograms.len(),
            start_key: self.keys.len(),
            batch: self,
            finished: false,
        }
    }

    /// Add family metadata.
    pub fn push_metadata(&mut self, m: Metadata) {
        self.metadata.push(m);
    }

    /// Family metadata carried by the batch.
    pub fn metadata(&self) -> &[Metadata] {
        &self.metadata
    }

    /// Number of series.
    pub fn len_series(&self) -> usize {
        self.series.len()
    }

    /// Number of samples (floats and histograms).
    pub fn len_samples(&self) -> usize {
        self.floats.len() + self.histograms.len()
    }

    /// Number of float samples.
    pub fn len_floats(&self) -> usize {
        self.floats.len()
    }

    /// Number of histogram samples.
    pub fn len_histograms(&self) -> usize {
        self.histograms.len()
    }

    /// Whether there is nothing to write (metadata aside).
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Iterate the series.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchSeries<'_, 'a>> + '_ {
        self.series.iter().map(move |e| self.view(e))
    }

    /// The series at position `i`.
    pub fn get(&self, i: usize) -> Option<BatchSeries<'_, 'a>> {
        self.series.get(i).map(|e| self.view(e))
    }

    fn view(&self, e: &SeriesEntry) -> BatchSeries<'_, 'a> {
        let r = |r: &Range<u32>| r.start as usize..r.end as usize;
        BatchSeries {
            labels: &self.labels[r(&e.labels)],
            floats: &self.floats[r(&e.floats)],
            histograms: &self.histograms[r(&e.histograms)],
            hash: e.hash,
            key: &self.keys[r(&e.key)],
        }
    }

    /// Keep only the series for which `keep` returns true.
    pub fn retain_series(&mut self, mut keep: impl FnMut(usize, BatchSeries<'_, 'a>) -> bool) {
        let mut out = Vec::with_capacity(self.series.len());
        for (i, e) in self.series.iter().enumerate() {
            if keep(i, self.view(e)) {
                out.push(e.clone());
            }
        }
        self.series = out;
    }
}

/// Writes one series into a [`WriteBatch`]; dropped without `finish`, it leaves no trace.
#[derive(Debug)]
pub struct SeriesWriter<'b, 'a> {
    batch: &'b mut WriteBatch<'a>,
    start_labels: usize,
    start_floats: usize,
    start_hist: usize,
    start_key: usize,
    finished: bool,
}

impl<'a> SeriesWriter<'_, 'a> {
    /// Add a label pair (order does not matter; empty values are dropped at finish).
    pub fn label(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.batch.labels.push(LabelRef::new(name, value));
    }

    /// Number of labels added so far.
    pub fn label_count(&self) -> usize {
        self.batch.labels.len() - self.start_labels
    }

    /// Add a float sample.
    pub fn float(&mut self, ts_nanos: i64, value: f64) {
        self.batch.floats.push(FloatSample { ts_nanos, value });
    }

    /// Add a histogram sample.
    pub fn histogram(&mut self, ts_nanos: i64, histogram: Histogram) {
        self.batch.histograms.push(HistogramSample {
            ts_nanos,
            histogram,
        });
    }

    /// Validate and sort the labels, hash them and commit the series to the batch.
    /// On error the series is removed again and the batch is as before.
    pub fn finish(mut self) -> Result<()> {
        let limits = self.batch.limits;
        // Normalize in place: no per-series allocation on the ingest hot path.
        let len = limits.normalize_tail(&mut self.batch.labels, self.start_labels)?;
        debug_assert_eq!(len, self.batch.labels.len() - self.start_labels);
        for h in &self.batch.histograms[self.start_hist..] {
            h.histogram.validate()?;
        }
        let labels = &self.batch.labels[self.start_labels..];
        series_key_bytes(&mut self.batch.keys, labels);
        let hash = series_key_hash(&self.batch.keys[self.start_key..]);
        let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let entry = SeriesEntry {
            labels: to_u32(self.start_labels)..to_u32(self.batch.labels.len()),
            floats: to_u32(self.start_floats)..to_u32(self.batch.floats.len()),
            histograms: to_u32(self.start_hist)..to_u32(self.batch.histograms.len()),
            key: to_u32(self.start_key)..to_u32(self.batch.keys.len()),
            hash,
        };
        self.batch.series.push(entry);
        self.finished = true;
        Ok(())
    }
}

impl Drop for SeriesWriter<'_, '_> {
    fn drop(&mut self) {
        if !self.finished {
            self.batch.labels.truncate(self.start_labels);
            self.batch.floats.truncate(self.start_floats);
            self.batch.histograms.truncate(self.start_hist);
            self.batch.keys.truncate(self.start_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn failed_series_leaves_batch_untouched() {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "a");
        s.float(1, 1.0);
        s.finish().unwrap();
        let mut s = b.series();
        s.label("x", "1");
        s.float(2, 2.0);
        assert_eq!(s.finish(), Err(Error::MissingMetricName));
        assert_eq!(b.len_series(), 1);
        assert_eq!(b.len_samples(), 1);
        let only = b.get(0).unwrap();
        assert_eq!(only.floats[0].value, 1.0);
        assert_eq!(only.to_labels().metric_name(), Some("a"));
    }

    #[test]
    fn labels_are_sorted_on_finish() {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("z", "1");
        s.label("__name__", "m");
        s.float(1, 1.0);
        s.finish().unwrap();
        let v = b.get(0).unwrap();
        assert_eq!(v.labels[0].name, "__name__");
        assert_eq!(
            v.hash,
            Labels::from_pairs([("z", "1"), ("__name__", "m")]).hash()
        );
        assert_eq!(v.key, b"__name__\xffm\xffz\xff1\xff");
        assert_eq!(v.hash, xxhash_rust::xxh3::xxh3_64(v.key));
    }

    #[test]
    fn each_series_keeps_its_own_key_after_failures_and_filtering() {
        let mut b = WriteBatch::new();
        for (i, name) in ["a", "", "b", "c"].iter().enumerate() {
            let mut s = b.series();
            s.label("__name__", *name);
            s.label("i", i.to_string());
            s.float(1, 1.0);
            // The empty name fails validation and must leave no key bytes behind.
            let _ = s.finish();
        }
        b.retain_series(|_, s| s.labels[0].value != "b");
        let keys: Vec<&[u8]> = b.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                &b"__name__\xffa\xffi\xff0\xff"[..],
                &b"__name__\xffc\xffi\xff3\xff"[..]
            ]
        );
    }
}
