//! Rollups: from raw blocks, 1-minute or 1-hour blocks whose series carry a `__rollup__`
//! label naming the aggregate (`docs/adr/0002-block-format.md` and
//! `docs/adr/0003-rollups-in-db.md`). [`job`] writes them, `read` serves them.

pub mod job;
pub(crate) mod read;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use gmc_model::{is_stale_nan, CounterResetHint, Histogram, Labels, Span};

use crate::block::{self, Block, BlockMeta, Chunk, Resolution};
use crate::compact::{decode_chunk, encode_chunks};
use crate::querier::{Sample, SampleValue};

/// Label added to every rollup series; its value names the aggregate.
pub const ROLLUP_LABEL: &str = "__rollup__";

/// Float aggregates, one series each: smallest value of the bucket.
pub const AGG_MIN: &str = "min";
/// Largest value of the bucket.
pub const AGG_MAX: &str = "max";
/// Sum of the values of the bucket.
pub const AGG_SUM: &str = "sum";
/// Number of samples of the bucket (floats and histograms alike).
pub const AGG_COUNT: &str = "count";
/// Last value of the bucket.
pub const AGG_LAST: &str = "last";
/// Reset-aware counter increase over the bucket: for each sample, `cur - prev`, or `cur`
/// when it dropped (a reset), with `prev` the sample before it in the raw block.
pub const AGG_INCREASE: &str = "increase";
/// Histogram aggregates: the bucket-wise sum of every histogram of the bucket.
pub const AGG_HIST_SUM: &str = "hsum";
/// The last histogram of the bucket (for counter histograms: rate from consecutive lasts).
pub const AGG_HIST_LAST: &str = "hlast";

/// One rollup aggregate, as stored in the `__rollup__` label and asked for by
/// [`crate::Querier::select_rollup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Aggregate {
    /// Smallest float of the bucket.
    Min,
    /// Largest float of the bucket.
    Max,
    /// Sum of the floats of the bucket.
    Sum,
    /// Number of samples of the bucket (floats and histograms; stale markers excluded).
    Count,
    /// Last float of the bucket.
    Last,
    /// Reset-aware counter increase over the bucket (see [`AGG_INCREASE`]).
    Increase,
    /// Bucket-wise sum (merge) of the histograms of the bucket.
    HistogramSum,
    /// Last histogram of the bucket.
    HistogramLast,
}

impl Aggregate {
    /// Every aggregate.
    pub const ALL: [Aggregate; 8] = [
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Sum,
        Aggregate::Count,
        Aggregate::Last,
        Aggregate::Increase,
        Aggregate::HistogramSum,
        Aggregate::HistogramLast,
    ];

    /// The `__rollup__` label value of this aggregate.
    pub fn label_value(self) -> &'static str {
        match self {
            Aggregate::Min => AGG_MIN,
            Aggregate::Max => AGG_MAX,
            Aggregate::Sum => AGG_SUM,
            Aggregate::Count => AGG_COUNT,
            Aggregate::Last => AGG_LAST,
            Aggregate::Increase => AGG_INCREASE,
            Aggregate::HistogramSum => AGG_HIST_SUM,
            Aggregate::HistogramLast => AGG_HIST_LAST,
        }
    }

    /// The aggregate a `__rollup__` label value names.
    pub fn from_label_value(v: &str) -> Option<Aggregate> {
        Aggregate::ALL.into_iter().find(|a| a.label_value() == v)
    }
}

/// Timestamp of the rollup sample of bucket `[b·step, (b+1)·step)`: the bucket's exclusive
/// end, so a rollup sample at `T` summarises raw samples in `[T − step, T)` (everything it
/// says was known at `T`, as for a PromQL range ending at `T`). Fixed per bucket, so two
/// computations of one bucket (a re-rollup after late data) land on the same timestamp
/// and the newer one wins by the usual newest-block-first rule.
pub fn bucket_stamp(ts_nanos: i64, step_nanos: i64) -> i64 {
    let step = step_nanos.max(1);
    ts_nanos
        .div_euclid(step)
        .saturating_add(1)
        .saturating_mul(step)
}

#[derive(Debug, Default)]
struct FloatBucket {
    ts: i64,
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
    last: f64,
    increase: f64,
}

/// Merges native histograms bucket-wise, downscaling to the coarsest schema seen and
/// widening the zero bucket to the largest threshold seen. Custom-bucket histograms merge
/// onto the bounds they all share, as PromQL reconciles them; a mix of custom and
/// exponential histograms has no sum (PromQL drops such a sum with a warning), so the
/// merger then yields nothing.
#[derive(Debug, Clone)]
pub struct HistogramMerger {
    schema: i32,
    zero_threshold: f64,
    zero_count: f64,
    count: f64,
    sum: f64,
    positive: BTreeMap<i32, f64>,
    negative: BTreeMap<i32, f64>,
    min: Option<f64>,
    max: Option<f64>,
    has_min_max: bool,
    all_gauge: bool,
    empty: bool,
    /// Shared bounds so far when the histograms have custom buckets.
    custom: Option<Vec<f64>>,
    /// Custom and exponential histograms were both added.
    mixed: bool,
}

impl Default for HistogramMerger {
    fn default() -> Self {
        HistogramMerger {
            schema: Histogram::MAX_SCHEMA,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count: 0.0,
            sum: 0.0,
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
            min: None,
            max: None,
            has_min_max: true,
            all_gauge: true,
            empty: true,
            custom: None,
            mixed: false,
        }
    }
}

/// Bucket `idx` of schema `from` in the coarser schema `to` (Prometheus' rule: bucket
/// `(base^(i-1), base^i]` lands in `((i - 1) >> delta) + 1`).
fn downscale_index(idx: i32, from: i32, to: i32) -> i32 {
    let delta = (from - to).clamp(0, 31);
    ((idx - 1) >> delta) + 1
}

fn rescale(map: &mut BTreeMap<i32, f64>, from: i32, to: i32) {
    if from == to {
        return;
    }
    let old = std::mem::take(map);
    for (i, c) in old {
        *map.entry(downscale_index(i, from, to)).or_insert(0.0) += c;
    }
}

/// Move buckets entirely inside `[-zt, zt]` into the zero bucket.
fn absorb_into_zero(map: &mut BTreeMap<i32, f64>, schema: i32, zt: f64) -> f64 {
    let mut moved = 0.0;
    map.retain(|&i, c| {
        if Histogram::bucket_upper_bound(schema, i) <= zt {
            moved += *c;
            false
        } else {
            true
        }
    });
    moved
}

fn spans_of(map: &BTreeMap<i32, f64>) -> (Vec<Span>, Vec<f64>) {
    gmc_model::spans_from_buckets(map.iter().map(|(&i, &c)| (i, c)))
}

impl HistogramMerger {
    /// An empty merger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one histogram.
    pub fn add(&mut self, h: &Histogram) {
        if self.mixed {
            return;
        }
        if !self.empty && self.custom.is_some() != h.uses_custom_buckets() {
            self.mixed = true;
            return;
        }
        if h.uses_custom_buckets() {
            self.add_custom(h);
        } else {
            self.add_exponential(h);
        }
        self.count += h.count;
        self.sum += h.sum;
        match (h.min, h.max) {
            (Some(lo), Some(hi)) => {
                self.min = Some(self.min.map_or(lo, |m| m.min(lo)));
                self.max = Some(self.max.map_or(hi, |m| m.max(hi)));
            }
            _ => self.has_min_max = false,
        }
        self.all_gauge &= h.reset_hint == CounterResetHint::Gauge;
        self.empty = false;
    }

    fn add_custom(&mut self, h: &Histogram) {
        let bounds = match self.custom.take() {
            Some(old) if old == h.custom_values => old,
            Some(old) => {
                // Fold the buckets so far onto the narrower set of shared bounds.
                let bounds = gmc_model::intersect_custom_bounds(&old, &h.custom_values);
                for (i, c) in std::mem::take(&mut self.positive) {
                    let j = gmc_model::custom_bucket_onto(&old, i, &bounds);
                    *self.positive.entry(j).or_insert(0.0) += c;
                }
                bounds
            }
            None => h.custom_values.clone(),
        };
        for (i, c) in h.positive_iter() {
            let j = gmc_model::custom_bucket_onto(&h.custom_values, i, &bounds);
            *self.positive.entry(j).or_insert(0.0) += c;
        }
        self.custom = Some(bounds);
    }

    fn add_exponential(&mut self, h: &Histogram) {
        let schema = h.schema.clamp(Histogram::MIN_SCHEMA, Histogram::MAX_SCHEMA);
        if schema < self.schema {
            rescale(&mut self.positive, self.schema, schema);
            rescale(&mut self.negative, self.schema, schema);
            self.schema = schema;
        }
        if h.zero_threshold > self.zero_threshold {
            self.zero_threshold = h.zero_threshold;
            self.zero_count +=
                absorb_into_zero(&mut self.positive, self.schema, self.zero_threshold);
            self.zero_count +=
                absorb_into_zero(&mut self.negative, self.schema, self.zero_threshold);
        }
        for (iter, map) in [
            (h.positive_iter(), &mut self.positive),
            (h.negative_iter(), &mut self.negative),
        ] {
            for (i, c) in iter {
                let j = downscale_index(i, schema, self.schema);
                if Histogram::bucket_upper_bound(self.schema, j) <= self.zero_threshold {
                    self.zero_count += c;
                } else {
                    *map.entry(j).or_insert(0.0) += c;
                }
            }
        }
        self.zero_count += h.zero_count;
    }

    /// The merged histogram (`None` if nothing was added, or custom and exponential
    /// histograms were mixed).
    pub fn finish(&self) -> Option<Histogram> {
        if self.empty || self.mixed {
            return None;
        }
        let (positive_spans, positive_buckets) = spans_of(&self.positive);
        let (negative_spans, negative_buckets) = spans_of(&self.negative);
        Some(Histogram {
            schema: if self.custom.is_some() {
                Histogram::CUSTOM_BUCKETS_SCHEMA
            } else {
                self.schema
            },
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count,
            count: self.count,
            sum: self.sum,
            positive_spans,
            positive_buckets,
            negative_spans,
            negative_buckets,
            min: self.min.filter(|_| self.has_min_max),
            max: self.max.filter(|_| self.has_min_max),
            reset_hint: if self.all_gauge {
                CounterResetHint::Gauge
            } else {
                CounterResetHint::Unknown
            },
            custom_values: self.custom.clone().unwrap_or_default(),
        })
    }
}

/// Rollup samples of one series' raw samples (sorted by time, one per timestamp), stamped
/// by [`bucket_stamp`]. Returns `(aggregate name, samples)` pairs, omitting empty ones.
pub fn rollup(samples: &[Sample], step_nanos: i64) -> Vec<(&'static str, Vec<Sample>)> {
    let step = step_nanos.max(1);
    let mut floats: BTreeMap<i64, FloatBucket> = BTreeMap::new();
    let mut hists: BTreeMap<i64, (i64, HistogramMerger, Arc<Histogram>, u64)> = BTreeMap::new();
    let mut prev: Option<f64> = None;
    for s in samples {
        let b = s.ts_nanos.div_euclid(step);
        let stamp = bucket_stamp(s.ts_nanos, step);
        match &s.value {
            // Staleness markers end a series; they are not values to aggregate.
            SampleValue::Float(v) if is_stale_nan(*v) => {}
            SampleValue::Float(v) => {
                let v = *v;
                let inc = match prev {
                    Some(p) if v >= p => v - p,
                    Some(_) => v,
                    None => 0.0,
                };
                prev = Some(v);
                let fb = floats.entry(b).or_insert_with(|| FloatBucket {
                    min: v,
                    max: v,
                    ..FloatBucket::default()
                });
                fb.ts = stamp;
                fb.min = fb.min.min(v);
                fb.max = fb.max.max(v);
                fb.sum += v;
                fb.count += 1;
                fb.last = v;
                fb.increase += inc;
            }
            SampleValue::Histogram(h) => {
                let e = hists
                    .entry(b)
                    .or_insert_with(|| (stamp, HistogramMerger::new(), Arc::clone(h), 0));
                e.1.add(h);
                e.2 = Arc::clone(h);
                e.3 += 1;
            }
        }
    }
    let float = |ts: i64, v: f64| Sample {
        ts_nanos: ts,
        value: SampleValue::Float(v),
    };
    let mut out: Vec<(&'static str, Vec<Sample>)> = Vec::new();
    if !floats.is_empty() {
        type Get = fn(&FloatBucket) -> f64;
        let aggs: [(&'static str, Get); 5] = [
            (AGG_MIN, |b| b.min),
            (AGG_MAX, |b| b.max),
            (AGG_SUM, |b| b.sum),
            (AGG_LAST, |b| b.last),
            (AGG_INCREASE, |b| b.increase),
        ];
        for (name, get) in aggs {
            out.push((name, floats.values().map(|b| float(b.ts, get(b))).collect()));
        }
    }
    // Count covers both kinds.
    let mut counts: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    for (k, b) in &floats {
        counts.insert(*k, (b.ts, b.count));
    }
    for (k, (ts, _, _, n)) in &hists {
        counts.entry(*k).or_insert((*ts, 0)).1 += n;
    }
    if !counts.is_empty() {
        out.push((
            AGG_COUNT,
            counts
                .values()
                .map(|(ts, n)| float(*ts, *n as f64))
                .collect(),
        ));
    }
    if !hists.is_empty() {
        out.push((
            AGG_HIST_SUM,
            hists
                .values()
                .filter_map(|(ts, m, _, _)| {
                    m.finish().map(|h| Sample {
                        ts_nanos: *ts,
                        value: SampleValue::Histogram(Arc::new(h)),
                    })
                })
                .collect(),
        ));
        out.push((
            AGG_HIST_LAST,
            hists
                .values()
                .map(|(ts, _, h, _)| Sample {
                    ts_nanos: *ts,
                    value: SampleValue::Histogram(Arc::clone(h)),
                })
                .collect(),
        ));
    }
    out
}

/// Write the `resolution` rollup of raw block `raw` as a new block under `parent`.
/// `Ok(None)` when the raw block has no samples to roll up.
pub fn downsample(
    raw: &Block,
    resolution: Resolution,
    parent: &Path,
) -> block::Result<Option<BlockMeta>> {
    if raw.meta().resolution != Resolution::Raw || resolution == Resolution::Raw {
        return Err(block::Error::InvalidChunk {
            reason: "downsampling reads a raw block and writes a rollup resolution",
        });
    }
    let mut w = block::Writer::new(parent, resolution)?;
    w.set_compaction(
        raw.meta().compaction.level,
        raw.meta().compaction.sources.clone(),
    );
    let mut any = false;
    for (labels, metas) in raw.all_series()? {
        let mut samples = Vec::new();
        for m in &metas {
            samples.extend(decode_chunk(raw, m)?);
        }
        // Chunks of one block do not overlap, but be robust to duplicates anyway.
        samples.sort_by_key(|s| s.ts_nanos);
        samples.dedup_by_key(|s| s.ts_nanos);
        for (agg, rolled) in rollup(&samples, resolution.step_nanos()) {
            let chunks: Vec<Chunk> = encode_chunks(&rolled);
            let data: Vec<_> = chunks.iter().map(Chunk::as_data).collect();
            let l: Labels = labels.with(ROLLUP_LABEL, agg);
            w.add_series(&l, &data)?;
            any |= !data.is_empty();
        }
    }
    if !any {
        return Ok(None);
    }
    w.finish().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(ts: i64, v: f64) -> Sample {
        Sample {
            ts_nanos: ts,
            value: SampleValue::Float(v),
        }
    }

    fn get(r: &[(&'static str, Vec<Sample>)], name: &str) -> Vec<(i64, f64)> {
        r.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| {
                v.iter()
                    .map(|s| match s.value {
                        SampleValue::Float(x) => (s.ts_nanos, x),
                        SampleValue::Histogram(_) => (s.ts_nanos, f64::NAN),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn float_rollup_is_reset_aware_and_skips_stale_markers() {
        // Counter 0,5,10 | 12, reset to 3, 4 | stale
        let s = vec![
            f(0, 0.0),
            f(10, 5.0),
            f(20, 10.0),
            f(100, 12.0),
            f(110, 3.0),
            f(120, 4.0),
            f(130, f64::from_bits(gmc_model::STALE_NAN_BITS)),
        ];
        let r = rollup(&s, 100);
        assert_eq!(get(&r, AGG_MIN), vec![(100, 0.0), (200, 3.0)]);
        assert_eq!(get(&r, AGG_MAX), vec![(100, 10.0), (200, 12.0)]);
        assert_eq!(get(&r, AGG_SUM), vec![(100, 15.0), (200, 19.0)]);
        assert_eq!(get(&r, AGG_COUNT), vec![(100, 3.0), (200, 3.0)]);
        assert_eq!(get(&r, AGG_LAST), vec![(100, 10.0), (200, 4.0)]);
        // 2 + 3 (reset: counts the new value) + 1
        assert_eq!(get(&r, AGG_INCREASE), vec![(100, 10.0), (200, 6.0)]);
    }

    #[test]
    fn histogram_merge_downscales_finer_schema() {
        let a = Histogram {
            schema: 1,
            count: 3.0,
            sum: 6.0,
            // schema 1 buckets 1 and 2 map to schema-0 bucket 1, bucket 3 to 2
            positive_spans: vec![Span {
                offset: 1,
                length: 3,
            }],
            positive_buckets: vec![1.0, 1.0, 1.0],
            ..Histogram::default()
        };
        let b = Histogram {
            schema: 0,
            count: 2.0,
            sum: 3.0,
            positive_spans: vec![Span {
                offset: 1,
                length: 1,
            }],
            positive_buckets: vec![2.0],
            ..Histogram::default()
        };
        let mut m = HistogramMerger::new();
        m.add(&a);
        m.add(&b);
        let h = m.finish().unwrap();
        h.validate().unwrap();
        assert_eq!(h.schema, 0);
        assert_eq!(h.count, 5.0);
        assert_eq!(h.sum, 9.0);
        let buckets: Vec<_> = h.positive_iter().collect();
        assert_eq!(buckets, vec![(1, 4.0), (2, 1.0)]);
        let total: f64 = buckets.iter().map(|b| b.1).sum::<f64>() + h.zero_count;
        assert_eq!(total, h.count);
    }

    fn nhcb(bounds: &[f64], offset: i32, buckets: &[f64]) -> Histogram {
        Histogram {
            schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
            count: buckets.iter().sum(),
            sum: 1.0,
            positive_spans: vec![Span {
                offset,
                length: buckets.len() as u32,
            }],
            positive_buckets: buckets.to_vec(),
            custom_values: bounds.to_vec(),
            ..Histogram::default()
        }
    }

    #[test]
    fn custom_bucket_merge_reconciles_onto_shared_bounds() {
        let mut m = HistogramMerger::new();
        // (-Inf,5] 1, (5,10] 2, (10,+Inf] 1
        m.add(&nhcb(&[5.0, 10.0], 0, &[1.0, 2.0, 1.0]));
        // (-Inf,2] 4, (2,10] 1: shares only 10 with the first.
        m.add(&nhcb(&[2.0, 10.0], 0, &[4.0, 1.0]));
        let h = m.finish().unwrap();
        h.validate().unwrap();
        assert_eq!(h.schema, Histogram::CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(h.custom_values, vec![10.0]);
        let v: Vec<_> = h.positive_iter().collect();
        assert_eq!(v, vec![(0, 8.0), (1, 1.0)]);
        assert_eq!(h.count, 9.0);
        // A third one with the same bound keeps the layout.
        m.add(&nhcb(&[10.0], 1, &[2.0]));
        let v: Vec<_> = m.finish().unwrap().positive_iter().collect();
        assert_eq!(v, vec![(0, 8.0), (1, 3.0)]);
    }

    #[test]
    fn custom_and_exponential_histograms_have_no_sum() {
        let mut m = HistogramMerger::new();
        m.add(&nhcb(&[5.0], 0, &[1.0]));
        m.add(&Histogram {
            count: 1.0,
            zero_count: 1.0,
            ..Histogram::default()
        });
        assert!(m.finish().is_none());
        m.add(&nhcb(&[5.0], 0, &[1.0]));
        assert!(m.finish().is_none());
    }
}
