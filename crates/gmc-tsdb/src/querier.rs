//! Read side: a [`Querier`] is a snapshot over `[mint, maxt]` that merges the head, chunks
//! being flushed and blocks, deduplicating samples that more than one of them holds.

use std::collections::btree_map::Entry;
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
        && fs(&a.custom_values, &b.custom_values)
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

/// A float-only series selected by [`Querier::select_floats`]: `(ts_nanos, value)` pairs,
/// 16 bytes a sample instead of the 24 of a [`Sample`], decoded without the enum.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatSeries {
    labels: Labels,
    samples: Vec<(i64, f64)>,
}

impl FloatSeries {
    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// `(ts_nanos, value)` in time order, deduplicated, clipped to the querier's range;
    /// values bit-exact as appended.
    pub fn samples(&self) -> &[(i64, f64)] {
        &self.samples
    }

    /// Take the labels and samples apart without copying them (the caller may rewrite the
    /// pairs in place, e.g. to another time unit).
    pub fn into_parts(self) -> (Labels, Vec<(i64, f64)>) {
        (self.labels, self.samples)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples (never true for a series returned by a querier).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// A series selected by [`Querier::select_floats`]: compact when it holds only floats.
#[derive(Debug, Clone)]
pub enum Selected {
    /// Only float samples in the range.
    Floats(FloatSeries),
    /// At least one native histogram in the range: every sample as a [`Sample`].
    Samples(Series),
}

impl Selected {
    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        match self {
            Selected::Floats(s) => s.labels(),
            Selected::Samples(s) => s.labels(),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Selected::Floats(s) => s.len(),
            Selected::Samples(s) => s.len(),
        }
    }

    /// Whether there are no samples (never true for a series returned by a querier).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The samples one source holds for one series: float pairs when all are floats.
#[derive(Debug)]
pub(crate) enum SeriesData {
    /// `(ts_nanos, value)`.
    Floats(Vec<(i64, f64)>),
    /// At least one histogram.
    Samples(Vec<Sample>),
}

impl SeriesData {
    /// Float pairs when `samples` holds no histogram.
    pub(crate) fn from_samples(samples: Vec<Sample>) -> Self {
        if samples
            .iter()
            .all(|s| matches!(s.value, SampleValue::Float(_)))
        {
            SeriesData::Floats(
                samples
                    .into_iter()
                    .filter_map(|s| match s.value {
                        SampleValue::Float(v) => Some((s.ts_nanos, v)),
                        SampleValue::Histogram(_) => None,
                    })
                    .collect(),
            )
        } else {
            SeriesData::Samples(samples)
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            SeriesData::Floats(v) => v.is_empty(),
            SeriesData::Samples(v) => v.is_empty(),
        }
    }

    /// Timestamp of the last sample (the newest once finished).
    pub(crate) fn last_ts(&self) -> Option<i64> {
        match self {
            SeriesData::Floats(v) => v.last().map(|s| s.0),
            SeriesData::Samples(v) => v.last().map(|s| s.ts_nanos),
        }
    }

    /// Clip to `[mint, maxt]`, sort and deduplicate.
    pub(crate) fn finish(&mut self, mint: i64, maxt: i64) {
        match self {
            SeriesData::Floats(v) => finish_floats(v, mint, maxt),
            SeriesData::Samples(v) => finish_samples(v, mint, maxt),
        }
    }

    /// Shape finished data as `read` asks: with `last_only`, keep only the newest sample
    /// (in a fresh one-element vector, so the decoded capacity is freed); with a `unit`
    /// above one nanosecond, rewrite timestamps to that unit (floor) in place, while the
    /// series is still in cache on the thread that decoded it.
    pub(crate) fn shape(&mut self, read: &FloatRead) {
        let unit = read.unit_nanos;
        match self {
            SeriesData::Floats(v) => {
                if read.last_only && v.len() > 1 {
                    *v = v.last().copied().into_iter().collect();
                }
                rescale(v, unit, |p| &mut p.0);
            }
            SeriesData::Samples(v) => {
                if read.last_only && v.len() > 1 {
                    *v = v.pop().into_iter().collect();
                }
                rescale(v, unit, |p| &mut p.ts_nanos);
            }
        }
    }

    fn into_samples(self) -> Vec<Sample> {
        match self {
            SeriesData::Samples(v) => v,
            SeriesData::Floats(v) => v
                .into_iter()
                .map(|(ts_nanos, f)| Sample {
                    ts_nanos,
                    value: SampleValue::Float(f),
                })
                .collect(),
        }
    }

    /// Append `other` (from an older source) after `self`.
    fn append(&mut self, other: SeriesData) {
        match (&mut *self, other) {
            (SeriesData::Floats(a), SeriesData::Floats(mut b)) => a.append(&mut b),
            (SeriesData::Samples(a), b) => a.extend(b.into_samples()),
            (SeriesData::Floats(_), b @ SeriesData::Samples(_)) => {
                let a = std::mem::replace(self, SeriesData::Floats(Vec::new()));
                let mut v = a.into_samples();
                v.extend(b.into_samples());
                *self = SeriesData::Samples(v);
            }
        }
    }
}

/// Divide every timestamp of `v` by `unit` (floor). Milliseconds, the unit PromQL asks
/// for, get a loop with a constant divisor: a multiply instead of a ~40-cycle `idiv`.
fn rescale<T>(v: &mut [T], unit: i64, ts: impl Fn(&mut T) -> &mut i64) {
    const MS: i64 = gmc_model::NANOS_PER_MILLI;
    match unit {
        ..=1 => {}
        MS => v.iter_mut().for_each(|p| {
            let t = ts(p);
            *t = t.div_euclid(MS);
        }),
        _ => v.iter_mut().for_each(|p| {
            let t = ts(p);
            *t = t.div_euclid(unit);
        }),
    }
}

/// What the sources gave for one float read.
enum SourceRead {
    /// At most one source had data: the answer, sorted by labels.
    Final(Vec<Selected>),
    /// Several sources had data: their series lists, newest source first, to merge.
    Merge(Vec<Vec<(Labels, SeriesData)>>),
}

/// A finished series as the querier's public type.
fn to_selected(labels: Labels, data: SeriesData) -> Selected {
    match data {
        SeriesData::Floats(samples) => Selected::Floats(FloatSeries { labels, samples }),
        SeriesData::Samples(samples) => Selected::Samples(Series { labels, samples }),
    }
}

/// Clip `v` to `[mint, maxt]`, sort it and keep the first sample at each timestamp (a
/// stable sort, so the newest source's sample wins). Sorted input, the usual case, costs
/// two binary searches.
pub(crate) fn finish_floats(v: &mut Vec<(i64, f64)>, mint: i64, maxt: i64) {
    if strictly_increasing(v) {
        let hi = v.partition_point(|s| s.0 <= maxt);
        v.truncate(hi);
        let lo = v.partition_point(|s| s.0 < mint);
        v.drain(..lo);
    } else {
        v.retain(|s| s.0 >= mint && s.0 <= maxt);
        v.sort_by_key(|s| s.0);
        v.dedup_by_key(|s| s.0);
    }
}

/// Whether the timestamps strictly increase (decoded series nearly always do).
fn strictly_increasing(v: &[(i64, f64)]) -> bool {
    !gmc_model::lanes::any_adjacent(v, |a, b| a.0 >= b.0)
}

/// [`finish_floats`] for samples.
pub(crate) fn finish_samples(v: &mut Vec<Sample>, mint: i64, maxt: i64) {
    if v.windows(2).all(|w| w[0].ts_nanos < w[1].ts_nanos) {
        let hi = v.partition_point(|s| s.ts_nanos <= maxt);
        v.truncate(hi);
        let lo = v.partition_point(|s| s.ts_nanos < mint);
        v.drain(..lo);
    } else {
        v.retain(|s| s.ts_nanos >= mint && s.ts_nanos <= maxt);
        v.sort_by_key(|s| s.ts_nanos);
        v.dedup_by_key(|s| s.ts_nanos);
    }
}

/// A series found by [`Querier::select_floats_lazy`], decoded on demand.
pub struct LazySeries {
    labels: Labels,
    /// One part per source holding the series, newest source first.
    parts: Vec<Pending>,
}

impl std::fmt::Debug for LazySeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazySeries")
            .field("labels", &self.labels)
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl LazySeries {
    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Decode the series as [`Querier::select_floats_in`] would return it, or `None` when
    /// it has no sample in the querier's range.
    pub fn decode(self) -> Result<Option<Selected>> {
        let mut data: Option<SeriesData> = None;
        let mut appended = false;
        for part in self.parts {
            let d = part()?;
            if d.is_empty() {
                continue;
            }
            match &mut data {
                None => data = Some(d),
                Some(have) => {
                    have.append(d);
                    appended = true;
                }
            }
        }
        Ok(data.map(|mut d| {
            if appended {
                // Each part is already clipped; only order and duplicates remain.
                d.finish(i64::MIN, i64::MAX);
            }
            to_selected(self.labels, d)
        }))
    }
}

/// What [`Source::select_floats`] reads: samples in `[mint, maxt]` (nanoseconds), all or
/// only each series' newest, with timestamps in units of `unit_nanos` (1 = nanoseconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloatRead {
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) last_only: bool,
    pub(crate) unit_nanos: i64,
}

/// One source's share of a series, located but not decoded (see [`Source::plan_floats`]):
/// decodes to the same data [`Source::select_floats`] returns for the series.
pub(crate) type Pending = Box<dyn FnOnce() -> Result<SeriesData> + Send>;

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

    /// [`Source::select`] with float-only series as `(ts, value)` pairs, clipped to
    /// `[read.mint, read.maxt]`, sorted, deduplicated and shaped by [`SeriesData::shape`]
    /// (newest sample only, timestamps in `read.unit_nanos`). The default converts the
    /// output of `select`; sources override it to decode floats directly.
    fn select_floats(
        &self,
        matchers: &[Matcher],
        read: &FloatRead,
        out: &mut Vec<(Labels, SeriesData)>,
    ) -> Result<()> {
        let mut buf = Vec::new();
        self.select(matchers, read.mint, read.maxt, &mut buf)?;
        out.extend(buf.into_iter().map(|(l, s)| {
            let mut d = SeriesData::from_samples(s);
            d.finish(read.mint, read.maxt);
            d.shape(read);
            (l, d)
        }));
        Ok(())
    }

    /// [`Source::select_floats`] without decoding: each matching series' labels and a job
    /// that decodes its data later. The job holds chunk references, not samples, so a
    /// reader can decode and drop a few series at a time instead of holding every
    /// selected window at once. The default decodes now (for sources that are small).
    fn plan_floats(
        self: Arc<Self>,
        matchers: &[Matcher],
        read: &FloatRead,
        out: &mut Vec<(Labels, Pending)>,
    ) -> Result<()> {
        let mut buf = Vec::new();
        self.select_floats(matchers, read, &mut buf)?;
        out.extend(
            buf.into_iter()
                .map(|(l, d)| (l, Box::new(move || Ok(d)) as Pending)),
        );
        Ok(())
    }

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
    /// The head's metadata when the querier was made (shared, not copied).
    metadata: Arc<BTreeMap<String, Metadata>>,
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
        metadata: Arc<BTreeMap<String, Metadata>>,
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
        crate::inplace::around(|| self.select_now(matchers))
    }

    /// [`Querier::select`] on this thread.
    fn select_now(&self, matchers: &[Matcher]) -> Result<Vec<Series>> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        let sources = self.set.sources();
        let (mint, maxt) = (self.mint, self.maxt);
        let finish = |labels: Labels, mut samples: Vec<Sample>| -> Option<Series> {
            // Sources usually return clipped, sorted, duplicate-free samples: then this is
            // one pass and two binary searches.
            finish_samples(&mut samples, mint, maxt);
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
                // The first source's vector moves in (no copy); later ones append.
                match merged.entry(labels) {
                    Entry::Vacant(e) => {
                        e.insert(samples);
                    }
                    Entry::Occupied(mut e) => e.get_mut().extend(samples),
                }
            }
        }
        Ok(merged
            .into_iter()
            .filter_map(|(labels, samples)| finish(labels, samples))
            .collect())
    }

    /// [`Querier::select`] with float-only series returned as compact
    /// [`FloatSeries`] (`(ts_nanos, value)` pairs, decoded straight from float chunks
    /// without the [`Sample`] enum); series with a native histogram in the range come back
    /// as [`Series`]. Same order (by labels), clipping and deduplication as `select`.
    pub fn select_floats(&self, matchers: &[Matcher]) -> Result<Vec<Selected>> {
        self.select_floats_in(matchers, 1)
    }

    /// [`Querier::select_floats`] with every timestamp in units of `unit_nanos` (floor;
    /// e.g. `gmc_model::NANOS_PER_MILLI` for PromQL), converted by the threads that decode
    /// the series instead of in a second pass. Samples are deduplicated by nanosecond
    /// timestamp within a source, so two samples within one unit can both remain.
    pub fn select_floats_in(&self, matchers: &[Matcher], unit_nanos: i64) -> Result<Vec<Selected>> {
        // The lazy read decoded at once, on the cores: one merge of the sources' parts.
        let lazy = self.select_floats_lazy(matchers, unit_nanos)?;
        let mut out = Vec::with_capacity(lazy.len());
        for s in crate::par::map(lazy, LazySeries::decode) {
            out.extend(s?);
        }
        Ok(out)
    }

    /// [`Querier::select_floats_in`] that locates the matching series without decoding
    /// them, sorted by labels. Each [`LazySeries`] decodes on its own (on the caller's
    /// thread), so a query can stream through a large selection holding a few decoded
    /// series at a time: memory is the compressed chunks the head or the blocks hold
    /// anyway, plus one decoded window per worker.
    pub fn select_floats_lazy(
        &self,
        matchers: &[Matcher],
        unit_nanos: i64,
    ) -> Result<Vec<LazySeries>> {
        crate::inplace::around(|| self.select_floats_lazy_now(matchers, unit_nanos))
    }

    /// [`Querier::select_floats_lazy`] on this thread.
    fn select_floats_lazy_now(
        &self,
        matchers: &[Matcher],
        unit_nanos: i64,
    ) -> Result<Vec<LazySeries>> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        let read = FloatRead {
            mint: self.mint,
            maxt: self.maxt,
            last_only: false,
            unit_nanos: unit_nanos.max(1),
        };
        let mut per_source: Vec<Vec<(Labels, Pending)>> = Vec::new();
        for src in self.set.sources() {
            let mut buf = Vec::new();
            src.plan_floats(matchers, &read, &mut buf)?;
            if !buf.is_empty() {
                per_source.push(buf);
            }
        }
        let lazy = |labels, parts| LazySeries { labels, parts };
        if per_source.len() <= 1 {
            let mut out: Vec<LazySeries> = per_source
                .into_iter()
                .flatten()
                .map(|(l, p)| lazy(l, vec![p]))
                .collect();
            out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
            return Ok(out);
        }
        // Sources are newest first; parts keep that order so the merge below keeps the
        // newest source's sample at a timestamp several sources hold, as the eager read.
        let mut merged: BTreeMap<Labels, Vec<Pending>> = BTreeMap::new();
        for buf in per_source {
            for (labels, p) in buf {
                merged.entry(labels).or_default().push(p);
            }
        }
        Ok(merged.into_iter().map(|(l, p)| lazy(l, p)).collect())
    }

    /// For instant selectors: the newest sample of each matching series with
    /// `t_nanos - lookback_nanos < ts <= t_nanos` (and within the querier's range), one
    /// sample per series, sorted by labels. Each source keeps only the newest sample of a
    /// series as soon as it is decoded, and blocks decode their chunks newest first and stop
    /// at the first one holding a sample in the window, so memory is one sample per series
    /// instead of the whole window. When several sources hold the newest timestamp, the
    /// newest source's sample wins (as in [`Querier::select`]).
    pub fn select_latest(
        &self,
        matchers: &[Matcher],
        t_nanos: i64,
        lookback_nanos: i64,
    ) -> Result<Vec<Selected>> {
        crate::inplace::around(|| self.select_latest_now(matchers, t_nanos, lookback_nanos))
    }

    /// [`Querier::select_latest`] on this thread.
    fn select_latest_now(
        &self,
        matchers: &[Matcher],
        t_nanos: i64,
        lookback_nanos: i64,
    ) -> Result<Vec<Selected>> {
        let mint = self
            .mint
            .max(t_nanos.saturating_sub(lookback_nanos).saturating_add(1));
        let maxt = self.maxt.min(t_nanos);
        if matchers.is_empty() || mint > maxt {
            return Ok(Vec::new());
        }
        let read = FloatRead {
            mint,
            maxt,
            last_only: true,
            unit_nanos: 1,
        };
        let per_source = match self.read_sources(matchers, &read)? {
            SourceRead::Final(single) => return Ok(single),
            SourceRead::Merge(several) => several,
        };
        let mut merged: BTreeMap<Labels, SeriesData> = BTreeMap::new();
        for buf in per_source {
            for (labels, data) in buf {
                match merged.entry(labels) {
                    Entry::Vacant(e) => {
                        e.insert(data);
                    }
                    Entry::Occupied(mut e) => {
                        // Strictly newer only: at equal timestamps the newer source wins.
                        if data.last_ts() > e.get().last_ts() {
                            e.insert(data);
                        }
                    }
                }
            }
        }
        Ok(merged
            .into_iter()
            .map(|(labels, data)| to_selected(labels, data))
            .collect())
    }

    /// Every source's non-empty series for `read`, newest source first; final (sorted by
    /// labels, no merge map built) when at most one source has data, the usual case.
    fn read_sources(&self, matchers: &[Matcher], read: &FloatRead) -> Result<SourceRead> {
        let mut per_source: Vec<Vec<(Labels, SeriesData)>> = Vec::new();
        for src in &self.set.sources() {
            let mut buf = Vec::new();
            src.select_floats(matchers, read, &mut buf)?;
            buf.retain(|(_, d)| !d.is_empty());
            if !buf.is_empty() {
                per_source.push(buf);
            }
        }
        if per_source.len() > 1 {
            return Ok(SourceRead::Merge(per_source));
        }
        let mut out: Vec<Selected> = per_source
            .into_iter()
            .flatten()
            .map(|(labels, data)| to_selected(labels, data))
            .collect();
        out.sort_unstable_by(|a, b| a.labels().cmp(b.labels()));
        Ok(SourceRead::Final(out))
    }

    /// Sorted label names of series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        // No boundary inside the index walk: long for all the lease can tell.
        crate::inplace::move_off(|| self.label_names_now(matchers))
    }

    /// [`Querier::label_names`] on this thread.
    fn label_names_now(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
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
        // No boundary inside the index walk: long for all the lease can tell.
        crate::inplace::move_off(|| self.label_values_now(name, matchers))
    }

    /// [`Querier::label_values`] on this thread.
    fn label_values_now(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
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
        match metric {
            Some(n) => self.metadata.get(n).cloned().into_iter().collect(),
            None => self.metadata.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn strictly_increasing_is_every_pair_in_order(
            steps in proptest::collection::vec(-1i64..4, 0..40),
        ) {
            let mut t = 0;
            let v: Vec<(i64, f64)> = steps
                .iter()
                .map(|d| {
                    t += d;
                    (t, 0.0)
                })
                .collect();
            let want = v.windows(2).all(|w| w[0].0 < w[1].0);
            proptest::prop_assert_eq!(super::strictly_increasing(&v), want);
        }
    }
}
