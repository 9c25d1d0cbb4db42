//! Read side: a [`Querier`] is a snapshot over `[mint, maxt]` that merges the head, chunks
//! being flushed and blocks, deduplicating samples that more than one of them holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use gmc_model::{Histogram, Labels, Matcher, Metadata};

use crate::error::Result;

/// One sample value.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    /// A float, bit-exact as appended (NaN payloads and the stale marker included).
    Float(f64),
    /// A native histogram.
    Histogram(Arc<Histogram>),
}

impl SampleValue {
    /// Bit-exact equality (floats compare by bits, so NaN equals the same NaN).
    pub fn same_as(&self, other: &SampleValue) -> bool {
        match (self, other) {
            (SampleValue::Float(a), SampleValue::Float(b)) => a.to_bits() == b.to_bits(),
            (SampleValue::Histogram(a), SampleValue::Histogram(b)) => {
                Arc::ptr_eq(a, b) || histogram_bits_eq(a, b)
            }
            _ => false,
        }
    }
}

fn histogram_bits_eq(a: &Histogram, b: &Histogram) -> bool {
    let f = |x: f64, y: f64| x.to_bits() == y.to_bits();
    let fs = |x: &[f64], y: &[f64]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| f(*p, *q));
    let fo = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(p), Some(q)) => f(p, q),
        (None, None) => true,
        _ => false,
    };
    a.schema == b.schema
        && f(a.zero_threshold, b.zero_threshold)
        && f(a.zero_count, b.zero_count)
        && f(a.count, b.count)
        && f(a.sum, b.sum)
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && fs(&a.positive_buckets, &b.positive_buckets)
        && fs(&a.negative_buckets, &b.negative_buckets)
        && fo(a.min, b.min)
        && fo(a.max, b.max)
        && a.reset_hint == b.reset_hint
}

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Timestamp, nanoseconds since the epoch.
    pub ts_nanos: i64,
    /// Value.
    pub value: SampleValue,
}

/// A series selected by a querier, with its samples in `[mint, maxt]`.
#[derive(Debug, Clone)]
pub struct Series {
    labels: Labels,
    samples: Vec<Sample>,
}

impl Series {
    pub(crate) fn new(labels: Labels, samples: Vec<Sample>) -> Self {
        Series { labels, samples }
    }

    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Samples in time order, deduplicated across head and blocks, clipped to the range.
    pub fn iter(&self) -> impl Iterator<Item = Sample> + '_ {
        self.samples.iter().cloned()
    }

    /// Samples in time order, borrowed (no per-sample clone).
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Take the labels and samples apart without copying them.
    pub fn into_parts(self) -> (Labels, Vec<Sample>) {
        (self.labels, self.samples)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples (never true for a series returned by `select`).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Something the querier reads series from: the head, a head being flushed, a block.
pub(crate) trait Source: Send + Sync {
    /// Series matching all `matchers` with their samples overlapping `[mint, maxt]`
    /// (samples need not be clipped or sorted).
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        out: &mut Vec<(Labels, Vec<Sample>)>,
    ) -> Result<()>;

    /// Label names of series matching `matchers` with data in `[mint, maxt]`.
    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>>;

    /// Values of label `name` on series matching `matchers` with data in `[mint, maxt]`.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>>;
}

/// Provides the current sources, newest first: the head, heads being flushed, blocks.
/// Asked again for every read so a flush running meanwhile never hides data: the head is
/// read before the flushing heads, and those before the blocks that replace them.
pub(crate) trait SourceSet: Send + Sync {
    /// The sources to read, in order.
    fn sources(&self) -> Vec<Arc<dyn Source>>;

    /// Rollup blocks of `res`, newest first, and the newest bucket timestamp they hold
    /// (`i64::MIN` when none): rollups above it are computed from [`Self::sources`].
    fn rollup_sources(&self, _res: crate::block::Resolution) -> (Vec<Arc<dyn Source>>, i64) {
        (Vec::new(), i64::MIN)
    }
}

/// A read view over `[mint, maxt]` (nanoseconds, inclusive).
pub struct Querier {
    mint: i64,
    maxt: i64,
    set: Arc<dyn SourceSet>,
    metadata: Vec<Metadata>,
}

impl std::fmt::Debug for Querier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Querier")
            .field("mint", &self.mint)
            .field("maxt", &self.maxt)
            .finish()
    }
}

impl Querier {
    /// The sources and range (for `select_rollup` in `downsample/read.rs`).
    pub(crate) fn view(&self) -> (&Arc<dyn SourceSet>, i64, i64) {
        (&self.set, self.mint, self.maxt)
    }

    pub(crate) fn new(
        mint: i64,
        maxt: i64,
        set: Arc<dyn SourceSet>,
        metadata: Vec<Metadata>,
    ) -> Self {
        Querier {
            mint,
            maxt,
            set,
            metadata,
        }
    }

    /// Series with at least one sample in `[mint, maxt]` matching all `matchers`, sorted by
    /// labels. An empty matcher list selects nothing (as in Prometheus).
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        let sources = self.set.sources();
        let (mint, maxt) = (self.mint, self.maxt);
        let finish = |labels: Labels, mut samples: Vec<Sample>| -> Option<Series> {
            // Sources usually return clipped, sorted, duplicate-free samples: only pay for
            // clipping, sorting and deduplication when they did not.
            let clean = samples.first().is_some_and(|s| s.ts_nanos >= mint)
                && samples.last().is_some_and(|s| s.ts_nanos <= maxt)
                && samples.windows(2).all(|w| w[0].ts_nanos < w[1].ts_nanos);
            if !clean {
                samples.retain(|s| s.ts_nanos >= mint && s.ts_nanos <= maxt);
                samples.sort_by_key(|s| s.ts_nanos);
                samples.dedup_by_key(|s| s.ts_nanos);
            }
            (!samples.is_empty()).then_some(Series { labels, samples })
        };
        // One source (the usual case: everything still in the head) holds each series at
        // most once, so no merge map is needed.
        if let [only] = sources.as_slice() {
            let mut buf = Vec::new();
            only.select(matchers, mint, maxt, &mut buf)?;
            let mut out: Vec<Series> = buf
                .into_iter()
                .filter_map(|(labels, samples)| finish(labels, samples))
                .collect();
            out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(out);
        }
        let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        let mut buf = Vec::new();
        // Sources are newest first; a stable sort keeps the first source's sample at a
        // timestamp that several sources hold.
        for src in &sources {
            buf.clear();
            src.select(matchers, mint, maxt, &mut buf)?;
            for (labels, samples) in buf.drain(..) {
                merged.entry(labels).or_default().extend(samples);
            }
        }
        Ok(merged
            .into_iter()
            .filter_map(|(labels, samples)| finish(labels, samples))
            .collect())
    }

    /// Sorted label names of series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut all = Vec::new();
        for src in &self.set.sources() {
            all.extend(src.label_names(matchers, self.mint, self.maxt)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Sorted values of label `name` on series matching `matchers`.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut all = Vec::new();
        for src in &self.set.sources() {
            all.extend(src.label_values(name, matchers, self.mint, self.maxt)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Metadata of all families, or of `metric` only.
    pub fn metadata(&self, metric: Option<&str>) -> Vec<Metadata> {
        self.metadata
            .iter()
            .filter(|m| metric.is_none_or(|n| m.metric_family == n))
            .cloned()
            .collect()
    }
}
