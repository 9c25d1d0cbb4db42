//! Prometheus remote write 2.0 (`io.prometheus.write.v2.Request`): a zero-copy decoder
//! into the same [`WriteBatch`] as 1.0, and an encoder for clients and tests.
//!
//! 2.0 interns every string of a request once in a `symbols` table; a series names its
//! labels by pairs of indexes into it, and carries its own metadata (type, help and unit
//! by reference). Samples and native histograms are encoded exactly as in 1.0, so their
//! decoders are shared. The same contract holds: broken framing fails the request, a
//! series that is merely invalid (a reference outside the table, label rules, bad UTF-8)
//! is left out alone and counted.
//!
//! The table may in principle follow the series (protobuf does not order fields), so the
//! decoder first walks the top-level fields, noting each symbol's byte range and where the
//! series lie, then decodes the series; the walk reads keys and lengths only.

use std::collections::HashMap;

use gmc_model::{nanos_to_millis, Metadata, MetricType, WriteBatch};
use prost::Message as _;

use super::reader::{Reader, LEN, VARINT};
use super::{
    add_float, add_histogram, add_labels, finish_series, histogram_to_proto, metric_name_in,
    metric_type_from_proto, metric_type_to_proto, LabelRanges, Part, PbResult,
};
use crate::error::{Error, Result};
use crate::report::{Decoded, Limits, SampleBudget};

/// The `Content-Type` a 2.0 sender uses.
pub const CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// The `proto` parameter of [`CONTENT_TYPE`].
pub const PROTO_MESSAGE: &str = "io.prometheus.write.v2.Request";

/// The symbols of a request: byte ranges of the whole decompressed buffer.
#[derive(Debug, Clone)]
pub struct Symbols<'a> {
    buf: &'a [u8],
    ranges: Vec<(usize, usize)>,
}

impl<'a> Symbols<'a> {
    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The byte range of symbol `r`.
    #[inline]
    fn range(&self, r: u32) -> Option<(usize, usize)> {
        self.ranges.get(r as usize).copied()
    }

    /// Symbol `r` as text; `None` when out of range or not UTF-8.
    fn text(&self, r: u32) -> Option<&'a str> {
        let (a, b) = self.range(r)?;
        std::str::from_utf8(self.buf.get(a..b)?).ok()
    }
}

/// A decompressed 2.0 request cut for decoding: its symbol table and its series in up to
/// the asked number of [`Part`]s of about equal size (see [`split`]).
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    /// The symbol table every part refers to.
    pub symbols: Symbols<'a>,
    /// Runs of whole `TimeSeries` fields (and any unknown fields between them).
    pub parts: Vec<Part<'a>>,
}

/// Walk the top-level fields of a decompressed `Request`: note the symbols and cut the
/// series into at most `parts` pieces (one when `parts` ≤ 1) at field boundaries.
///
/// # Errors
/// [`Error::Protobuf`] for broken framing, [`Error::BodyTooLarge`] past
/// [`Limits::max_body_bytes`].
pub fn split<'a>(buf: &'a [u8], parts: usize, limits: &Limits) -> Result<Layout<'a>> {
    if buf.len() > limits.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: buf.len() as u64,
            limit: limits.max_body_bytes,
        });
    }
    let mut symbols = Symbols {
        buf,
        ranges: Vec::new(),
    };
    // Series fields as (start, end, series before), in order.
    let mut series: Vec<(usize, usize)> = Vec::new();
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let start = r.position();
        let (field, wt) = r.key()?;
        match (field, wt) {
            (4, LEN) => symbols.ranges.push(r.bytes_range()?),
            (5, LEN) => {
                r.bytes()?;
                series.push((start, r.position()));
            }
            (4 | 5, _) => return Err(r.error("wrong wire type for Request field").into()),
            _ => r.skip(field, wt)?,
        }
    }
    let parts = cut(buf, &series, parts.max(1));
    Ok(Layout { symbols, parts })
}

/// Group consecutive series fields into at most `n` parts of about equal bytes. Symbol
/// and unknown fields between series inside a part are skipped by the part's decoder.
fn cut<'a>(buf: &'a [u8], series: &[(usize, usize)], n: usize) -> Vec<Part<'a>> {
    let (Some(&(first, _)), Some(&(_, last))) = (series.first(), series.last()) else {
        return Vec::new();
    };
    let target = (last - first).div_ceil(n);
    let mut out = Vec::with_capacity(n);
    let (mut start, mut start_series) = (first, 0usize);
    for (i, &(_, end)) in series.iter().enumerate() {
        let is_last = i + 1 == series.len();
        if is_last || (end - start >= target && out.len() + 1 < n) {
            out.push(Part {
                bytes: &buf[start..end],
                offset: start,
                first_series: start_series,
            });
            (start, start_series) = (end, i + 1);
            if let Some(&(next, _)) = series.get(i + 1) {
                start = next;
            }
        }
    }
    out
}

/// Decode a decompressed `Request` in one piece; labels borrow from `buf`.
///
/// # Errors
/// As [`super::decode`]. Invalid series are not errors: they are left out and counted.
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Decoded<'a>> {
    let layout = split(buf, 1, limits)?;
    match layout.parts.first() {
        Some(&part) => decode_part(&layout.symbols, part, limits),
        None => Ok(Decoded::new(limits).done()),
    }
}

/// Decode one [`Part`] of a request against its symbol table (see [`split`]). The sample
/// limit applies per part; the caller checks the total.
///
/// # Errors
/// As [`decode`], offsets counted from the start of the whole request.
pub fn decode_part<'a>(
    symbols: &Symbols<'a>,
    part: Part<'a>,
    limits: &Limits,
) -> Result<Decoded<'a>> {
    let mut out = Decoded::new(limits);
    let mut budget = SampleBudget::new(limits);
    // 2.0 series are small (label references, one sample): ~30 bytes each.
    let guess = part.bytes.len() / 32;
    out.batch.reserve_key_bytes(guess * 96);
    out.batch.reserve(guess, guess);
    let mut st = State {
        symbols,
        limits,
        refs: Vec::with_capacity(32),
        labels: Vec::with_capacity(16),
        metadata: HashMap::new(),
    };
    let mut r = Reader::at(part.bytes, part.offset);
    let mut index = part.first_series;
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (5, LEN) => {
                let ts = r.message()?;
                decode_series(ts, index, &mut st, &mut budget, &mut out)?;
                index += 1;
            }
            // Symbols were noted by `split`.
            (4, LEN) => {
                r.bytes()?;
            }
            (4 | 5, _) => return Err(r.error("wrong wire type for Request field").into()),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(out.done())
}

/// Scratch state of one part's decode.
struct State<'s, 'a> {
    symbols: &'s Symbols<'a>,
    limits: &'s Limits,
    /// The series' label references as read.
    refs: Vec<u32>,
    /// Its labels as byte ranges of the request.
    labels: Vec<LabelRanges>,
    /// Metadata already put in the batch, by family: a request repeats it on every
    /// series of the family, and the batch should carry it once.
    metadata: HashMap<&'a str, MetadataRefs>,
}

/// A series' `Metadata` message as references.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct MetadataRefs {
    metric_type: i32,
    help: u32,
    unit: u32,
}

/// Decode one `TimeSeries` into the batch, or count why it was rejected.
#[allow(clippy::cast_possible_truncation)] // uint32 and enum varints truncate, as in prost
fn decode_series<'a>(
    mut r: Reader<'a>,
    index: usize,
    st: &mut State<'_, 'a>,
    budget: &mut SampleBudget,
    out: &mut Decoded<'a>,
) -> Result<()> {
    let symbols = st.symbols;
    let mut s = out.batch.series();
    let mut samples = 0usize;
    let mut exemplars = 0u64;
    let mut meta: Option<MetadataRefs> = None;
    st.refs.clear();
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, LEN) => {
                let mut p = r.message()?;
                while !p.is_empty() {
                    st.refs.push(p.varint()? as u32);
                }
            }
            (1, VARINT) => st.refs.push(r.varint()? as u32),
            (2, LEN) => {
                add_float(r.message()?, budget, &mut s)?;
                samples += 1;
            }
            (3, LEN) => {
                add_histogram(r.message()?, budget, &mut s)?;
                samples += 1;
            }
            (4, LEN) => {
                r.bytes()?;
                exemplars += 1;
            }
            (5, LEN) => meta = Some(decode_metadata(r.message()?)?),
            // The created timestamp is not stored (Prometheus ignores it by default too).
            (6, VARINT) => {
                r.varint()?;
            }
            (1..=6, _) => return Err(r.error("wrong wire type for TimeSeries field").into()),
            _ => r.skip(field, wt)?,
        }
    }
    out.report.skip("exemplar", exemplars);
    // Resolve the references to byte ranges; a bad one rejects the series.
    let mut bad: Option<Error> = None;
    if !st.refs.len().is_multiple_of(2) {
        bad = Some(bad_refs(format!(
            "series #{index}: {} label references, not name/value pairs",
            st.refs.len()
        )));
    }
    st.labels.clear();
    for pair in st.refs.chunks_exact(2) {
        match (symbols.range(pair[0]), symbols.range(pair[1])) {
            (Some(n), Some(v)) => st.labels.push((n, v)),
            (n, _) => {
                let r = if n.is_none() { pair[0] } else { pair[1] };
                bad.get_or_insert_with(|| {
                    bad_refs(format!(
                        "series #{index}: label reference {r} is outside the request's {} symbols",
                        symbols.len()
                    ))
                });
                break;
            }
        }
    }
    let buf = symbols.buf;
    let mut metric_name: &'a str = "";
    let mut labels = 0usize;
    let max_labels = st.limits.labels.max_labels;
    if bad.is_none() {
        add_labels(
            &mut s,
            (buf, 0),
            &st.labels,
            (&mut labels, max_labels),
            &mut metric_name,
            &mut bad,
        );
    }
    // The fast path does not note the metric name: look it up only when it is needed
    // (metadata, or a refusal's message).
    let name = |labels: &[LabelRanges]| match metric_name {
        "" => metric_name_in(buf, labels),
        known => known,
    };
    let report = &mut out.report;
    let stored = finish_series(
        s,
        bad,
        (labels, max_labels),
        samples,
        index,
        || name(&st.labels),
        report,
    );
    if let (true, Some(m)) = (stored, meta) {
        let metric_name = name(&st.labels);
        note_metadata(st, metric_name, m, out);
    }
    Ok(())
}

#[cold]
fn bad_refs(what: String) -> Error {
    Error::InvalidSymbolRef { what }
}

/// Decode a series' `Metadata` (type, help and unit references).
#[allow(clippy::cast_possible_truncation)] // uint32 and enum varints truncate, as in prost
fn decode_metadata(mut r: Reader<'_>) -> PbResult<MetadataRefs> {
    let mut m = MetadataRefs::default();
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, VARINT) => m.metric_type = r.varint()? as i32,
            (3, VARINT) => m.help = r.varint()? as u32,
            (4, VARINT) => m.unit = r.varint()? as u32,
            (1 | 3 | 4, _) => return Err(r.error("wrong wire type for Metadata field")),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(m)
}

/// Put a stored series' metadata in the batch once per family and request. The family is
/// the metric name, without the `_bucket` / `_sum` / `_count` suffix of a histogram's or
/// summary's series (as 1.0 senders name families). Metadata with no type, help or unit
/// says nothing and is dropped, as is any whose references are out of range or not text.
fn note_metadata<'a>(
    st: &mut State<'_, 'a>,
    metric_name: &'a str,
    m: MetadataRefs,
    out: &mut Decoded<'a>,
) {
    let metric_type = metric_type_from_proto(m.metric_type);
    let (Some(help), Some(unit)) = (st.symbols.text(m.help), st.symbols.text(m.unit)) else {
        return;
    };
    if metric_name.is_empty()
        || (metric_type == MetricType::Unknown && help.is_empty() && unit.is_empty())
    {
        return;
    }
    let family = metric_family(metric_name, metric_type);
    if st.metadata.insert(family, m) == Some(m) {
        return;
    }
    out.batch.push_metadata(Metadata {
        metric_family: family.to_owned(),
        metric_type,
        help: help.to_owned(),
        unit: unit.to_owned(),
    });
}

/// The family a series of type `t` belongs to, as 1.0 senders name families: its metric
/// name, without the `_bucket` / `_sum` / `_count` suffix of a histogram's or summary's
/// series.
fn metric_family(metric_name: &str, t: MetricType) -> &str {
    match t {
        MetricType::Histogram | MetricType::GaugeHistogram | MetricType::Summary => {
            family_stem(metric_name).unwrap_or(metric_name)
        }
        _ => metric_name,
    }
}

/// The metric name without a histogram's or summary's series suffix, when it has one.
fn family_stem(metric_name: &str) -> Option<&str> {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| metric_name.strip_suffix(s))
}

/// Remote write 2.0 messages as prost structs (declared by hand, as the 1.0 ones). Samples
/// and histograms are the 1.0 messages: their fields and numbers are the same.
pub mod proto {
    pub use crate::remote_write::proto::{BucketSpan, Histogram, Sample};

    /// `io.prometheus.write.v2.Request`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// Interned strings; the first is the empty string.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// Series with their samples.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Label name/value pairs as indexes into `symbols`, sorted by name.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Float samples in timestamp order.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histogram samples in timestamp order.
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
        /// Exemplars (gmc does not store them).
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        /// The series' metadata.
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
        /// When the counter started, ms (0: unknown).
        #[prost(int64, tag = "6")]
        pub created_timestamp: i64,
    }

    /// `io.prometheus.write.v2.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        /// Label references.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Value.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `io.prometheus.write.v2.Metadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        /// `MetricType` (the 1.0 enum's numbers).
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// Help text reference.
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        /// Unit reference.
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }
}

/// Interns strings for a [`proto::Request`].
struct Interner {
    symbols: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn new() -> Self {
        // The table starts with the empty string, as the specification requires.
        Interner {
            symbols: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&r) = self.index.get(s) {
            return r;
        }
        let r = u32::try_from(self.symbols.len()).unwrap_or(u32::MAX);
        self.symbols.push(s.to_owned());
        self.index.insert(s.to_owned(), r);
        r
    }
}

/// Build the prost 2.0 `Request` for a batch: labels sorted, timestamps in milliseconds
/// (rounding toward negative infinity), the batch's metadata attached to the series of
/// its family (matched as [`decode`] names families).
pub fn to_proto(batch: &WriteBatch<'_>) -> proto::Request {
    let mut syms = Interner::new();
    let mut timeseries = Vec::with_capacity(batch.len_series());
    let families: HashMap<&str, &Metadata> = batch
        .metadata()
        .iter()
        .map(|m| (m.metric_family.as_str(), m))
        .collect();
    for s in batch.iter() {
        // A batch's labels come sorted, as 2.0 wants them.
        let mut labels_refs = Vec::new();
        for (n, v) in s.labels() {
            labels_refs.push(syms.intern(n));
            labels_refs.push(syms.intern(v));
        }
        let name = s.label(gmc_model::METRIC_NAME).unwrap_or_default();
        // The family's metadata, named as the decoder names families.
        let metadata = [Some(name), family_stem(name)]
            .into_iter()
            .flatten()
            .filter_map(|f| families.get(f))
            .find(|m| metric_family(name, m.metric_type) == m.metric_family)
            .map(|m| proto::Metadata {
                r#type: metric_type_to_proto(m.metric_type) as i32,
                help_ref: syms.intern(&m.help),
                unit_ref: syms.intern(&m.unit),
            });
        timeseries.push(proto::TimeSeries {
            labels_refs,
            samples: s
                .floats
                .iter()
                .map(|f| proto::Sample {
                    value: f.value,
                    timestamp: nanos_to_millis(f.ts_nanos),
                })
                .collect(),
            histograms: s
                .histograms
                .iter()
                .map(|h| histogram_to_proto(&h.histogram, nanos_to_millis(h.ts_nanos)))
                .collect(),
            exemplars: Vec::new(),
            metadata,
            created_timestamp: 0,
        });
    }
    proto::Request {
        symbols: syms.symbols,
        timeseries,
    }
}

/// Encode a batch as a snappy-compressed 2.0 `Request`, ready to POST with
/// [`CONTENT_TYPE`].
pub fn encode_request(batch: &WriteBatch<'_>) -> Vec<u8> {
    crate::snappy::compress(&to_proto(batch).encode_to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::remote_write;

    fn batch() -> WriteBatch<'static> {
        let mut b = WriteBatch::new();
        for (i, svc) in ["oms", "risk", "oms"].iter().enumerate() {
            let mut s = b.series();
            s.label("__name__", "orders_total");
            s.label("service", *svc);
            s.label("venue", format!("v{i}"));
            s.float(1_700_000_000_000_000_000 + i as i64 * 1_000_000, i as f64);
            s.finish().unwrap();
        }
        let mut s = b.series();
        s.label("__name__", "latency_seconds");
        s.histogram(
            1_700_000_000_000_000_000,
            gmc_model::Histogram::custom_buckets(&[0.001, 0.01], &[1.0, 2.0, 0.0], 0.013),
        );
        s.finish().unwrap();
        b.push_metadata(Metadata {
            metric_family: "orders_total".into(),
            metric_type: MetricType::Counter,
            help: "Orders sent.".into(),
            unit: String::new(),
        });
        b
    }

    fn decode_body(body: &[u8]) -> Decoded<'static> {
        let limits = Limits::default();
        let buf = remote_write::decompress(body, &limits).unwrap();
        decode(&buf, &limits).unwrap().into_owned()
    }

    #[test]
    fn decodes_what_1_0_decodes_and_interns_strings() {
        let b = batch();
        let v2 = decode_body(&encode_request(&b));
        let limits = Limits::default();
        let buf =
            remote_write::decompress(&remote_write::encode_write_request(&b), &limits).unwrap();
        let v1 = remote_write::decode(&buf, &limits).unwrap();
        assert_eq!(v2.batch.len_series(), 4);
        for i in 0..4 {
            let (a, b) = (v2.batch.get(i).unwrap(), v1.batch.get(i).unwrap());
            assert_eq!(a.key, b.key);
            assert_eq!(a.floats, b.floats);
            assert_eq!(a.histograms, b.histograms);
        }
        // "oms" and "orders_total" are stored once in the table.
        let req = to_proto(&b);
        assert_eq!(req.symbols.iter().filter(|s| *s == "oms").count(), 1);
        assert_eq!(req.symbols[0], "");
        // Metadata is carried by three series and reaches the batch once.
        assert_eq!(v2.batch.metadata().len(), 1);
        assert_eq!(v2.batch.metadata()[0].help, "Orders sent.");
    }

    fn request(symbols: &[&str], series: Vec<proto::TimeSeries>) -> Vec<u8> {
        proto::Request {
            symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            timeseries: series,
        }
        .encode_to_vec()
    }

    fn series(refs: &[u32], samples: usize) -> proto::TimeSeries {
        proto::TimeSeries {
            labels_refs: refs.to_vec(),
            samples: (0..samples)
                .map(|i| proto::Sample {
                    value: 1.0,
                    timestamp: 1_000 + i as i64,
                })
                .collect(),
            histograms: Vec::new(),
            exemplars: Vec::new(),
            metadata: None,
            created_timestamp: 0,
        }
    }

    #[test]
    fn bad_references_reject_only_their_series() {
        let buf = request(
            &["", "__name__", "up", "job", "a", "b"],
            vec![
                series(&[1, 2, 3, 4], 1),
                series(&[1, 2, 3, 9], 1),
                series(&[1, 2, 3], 1),
                // Unsorted but valid: the slow path sorts.
                series(&[3, 5, 1, 2], 1),
                // A symbol that is not a label name.
                series(&[1, 2, 0, 4], 1),
            ],
        );
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 2);
        assert_eq!(d.batch.get(1).unwrap().label("job"), Some("b"));
        assert_eq!(d.report.rejected["invalid_symbol_ref"], 2);
        assert_eq!(d.report.rejected_total(), 3);
        assert!(
            d.report.messages[0].contains("label reference 9 is outside the request's 6 symbols"),
            "{:?}",
            d.report.messages
        );
        assert!(d.report.messages[1].contains("3 label references"));
    }

    #[test]
    fn symbols_after_the_series_and_unknown_fields_are_read() {
        // Series first, then the table; an unknown top-level field in between.
        let mut buf = proto::Request {
            symbols: Vec::new(),
            timeseries: vec![series(&[1, 2], 2)],
        }
        .encode_to_vec();
        buf.extend_from_slice(&[0x30, 0x07]); // field 6, varint 7
        buf.extend(
            proto::Request {
                symbols: vec![String::new(), "__name__".into(), "up".into()],
                timeseries: Vec::new(),
            }
            .encode_to_vec(),
        );
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 1);
        assert_eq!(d.batch.get(0).unwrap().floats.len(), 2);
    }

    #[test]
    fn broken_framing_fails_the_request() {
        let mut buf = request(&["", "__name__", "up"], vec![series(&[1, 2], 1)]);
        buf.pop();
        let e = decode(&buf, &Limits::default()).unwrap_err();
        assert_eq!(e.reason(), "invalid_protobuf");
        // A symbol with the wrong wire type.
        let e = decode(&[0x20, 0x01], &Limits::default()).unwrap_err();
        assert_eq!(e.reason(), "invalid_protobuf");
    }

    #[test]
    fn invalid_utf8_symbol_rejects_the_series_that_uses_it() {
        let mut req = proto::Request {
            symbols: vec![String::new(), "__name__".into(), "up".into(), "XX".into()],
            timeseries: vec![series(&[1, 2], 1), series(&[1, 3], 1)],
        }
        .encode_to_vec();
        let at = req.windows(2).position(|w| w == b"XX").unwrap();
        req[at] = 0xff;
        let d = decode(&req, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 1);
        assert_eq!(d.report.rejected["invalid_utf8"], 1);
    }

    #[test]
    fn parts_decode_like_the_whole() {
        let symbols = ["", "__name__", "m", "i"];
        let all: Vec<proto::TimeSeries> = (0..50).map(|_| series(&[1, 2], 1)).collect();
        let mut req = proto::Request {
            symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            timeseries: all,
        };
        for (k, ts) in req.timeseries.iter_mut().enumerate() {
            ts.samples[0].timestamp = k as i64;
        }
        let buf = req.encode_to_vec();
        let limits = Limits::default();
        let layout = split(&buf, 3, &limits).unwrap();
        assert_eq!(layout.parts.len(), 3);
        let mut ts = Vec::new();
        let mut first = Vec::new();
        for p in &layout.parts {
            first.push(p.first_series);
            let d = decode_part(&layout.symbols, *p, &limits).unwrap();
            ts.extend(d.batch.iter().map(|s| s.floats[0].ts_nanos));
        }
        let want: Vec<i64> = (0..50).map(gmc_model::millis_to_nanos).collect();
        assert_eq!(ts, want);
        assert_eq!(first[0], 0);
        assert!(first.windows(2).all(|w| w[0] < w[1]));
        // No series: no parts, and the whole decode is empty.
        let empty = request(&[""], Vec::new());
        assert!(split(&empty, 2, &limits).unwrap().parts.is_empty());
        assert_eq!(decode(&empty, &limits).unwrap().batch.len_series(), 0);
    }
}
