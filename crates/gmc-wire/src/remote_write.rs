//! Prometheus remote_write 1.0: a zero-copy decoder from the (snappy-decompressed)
//! protobuf `WriteRequest` into a [`WriteBatch`] whose labels borrow from the buffer, and
//! an encoder for clients and tests built on the prost messages in [`proto`].
//!
//! Framing errors (truncation, bad varints, wrong wire types) fail the whole request, as in
//! Prometheus; a series that is well framed but invalid (bad UTF-8, label rules, histogram
//! spans) is rejected alone and counted in the [`DecodeReport`](crate::DecodeReport).

use std::borrow::Cow;

use gmc_model::{
    millis_to_nanos, nanos_to_millis, CounterResetHint, Histogram, Metadata, MetricType, Piece,
    SeriesWriter, Span, WriteBatch, METRIC_NAME,
};
use prost::Message as _;

use crate::error::{Error, Result};
use crate::report::{Decoded, Limits, SampleBudget};

pub mod proto;
mod reader;
pub mod v2;

use reader::{varint_prefix, zigzag32, zigzag64, PbError, Reader, FIXED64, LEN, VARINT};

/// Result of the inner decoders, whose only failure is broken framing.
type PbResult<T> = std::result::Result<T, PbError>;

/// Decompress a snappy body (capped at [`Limits::max_body_bytes`]); decode the result with
/// [`decode`], keeping the returned buffer alive as long as the batch.
pub fn decompress(body: &[u8], limits: &Limits) -> Result<Vec<u8>> {
    crate::snappy::decompress_capped(body, limits.max_body_bytes)
}

/// [`decompress`] into `out` (replacing its content, reusing its capacity).
///
/// # Errors
/// As [`decompress`].
pub fn decompress_into(body: &[u8], limits: &Limits, out: &mut Vec<u8>) -> Result<()> {
    crate::snappy::decompress_capped_into(body, limits.max_body_bytes, out)
}

/// Decode a decompressed `WriteRequest`; labels borrow from `buf`.
///
/// # Errors
/// [`Error::Protobuf`] for broken framing, [`Error::TooManySamples`] past
/// [`Limits::max_samples`], [`Error::BodyTooLarge`] past [`Limits::max_body_bytes`].
/// Invalid series are not errors: they are left out and counted in the report.
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Decoded<'a>> {
    if buf.len() > limits.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: buf.len() as u64,
            limit: limits.max_body_bytes,
        });
    }
    decode_part(
        Part {
            bytes: buf,
            offset: 0,
            first_series: 0,
        },
        limits,
    )
}

/// A run of whole top-level fields of a `WriteRequest`, hence a `WriteRequest` itself;
/// see [`split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// The fields.
    pub bytes: &'a [u8],
    /// Where `bytes` starts in the whole request (error messages give whole-request
    /// offsets).
    pub offset: usize,
    /// `TimeSeries` before this part (rejection messages name series by their index in
    /// the whole request).
    pub first_series: usize,
}

/// Cut a decompressed `WriteRequest` into at most `parts` pieces of about equal size at
/// top-level field boundaries, so that the pieces can be decoded (and stored) on several
/// cores. Decoding every part with [`decode_part`] yields the series of [`decode`], in
/// order, split among the parts. A buffer whose framing breaks is returned whole, so the
/// decoder reports the error exactly as for an unsplit request.
///
/// The scan reads only keys and lengths, and stops at the last cut: the rest of the
/// buffer is framed by the last part's decoder, which reports a break there at the same
/// whole-request offset. (Each step of the scan is a cache miss in a freshly
/// decompressed request: 226 µs for a 10k-series request scanned to its end, the
/// request's one serial step after decompression.)
pub fn split(buf: &[u8], parts: usize) -> Vec<Part<'_>> {
    let whole = vec![Part {
        bytes: buf,
        offset: 0,
        first_series: 0,
    }];
    if parts <= 1 || buf.is_empty() {
        return whole;
    }
    let target = buf.len().div_ceil(parts);
    let mut out = Vec::with_capacity(parts);
    let mut r = Reader::new(buf);
    let (mut start, mut start_series, mut series) = (0usize, 0usize, 0usize);
    while !r.is_empty() {
        let Ok((field, wt)) = r.key() else {
            return whole;
        };
        if r.skip(field, wt).is_err() {
            return whole;
        }
        series += usize::from(field == 1);
        let end = r.position();
        if end - start >= target && out.len() + 1 < parts {
            out.push(Part {
                bytes: &buf[start..end],
                offset: start,
                first_series: start_series,
            });
            (start, start_series) = (end, series);
            if out.len() + 1 == parts {
                break;
            }
        }
    }
    if start < buf.len() {
        out.push(Part {
            bytes: &buf[start..],
            offset: start,
            first_series: start_series,
        });
    }
    out
}

/// Decode one [`Part`] of a request (see [`split`]); labels borrow from the request.
///
/// [`Limits::max_samples`] applies to the part: a caller that decodes several parts
/// checks their total (so an oversized request fails after decoding at most
/// `parts × max_samples`).
///
/// # Errors
/// As [`decode`], offsets counted from the start of the whole request.
pub fn decode_part<'a>(part: Part<'a>, limits: &Limits) -> Result<Decoded<'a>> {
    let buf = part.bytes;
    let mut out = Decoded::new(limits);
    let mut budget = SampleBudget::new(limits);
    // A pre-scan would cost as much as decoding; size from the body instead. A realistic
    // series (9 labels, 1 sample) takes ~190 bytes and `reserve` plans 8 labels per series,
    // so aim high: regrowing the label vector copies megabytes, while capacity that is
    // never written costs no physical memory.
    let guess = buf.len() / 128;
    // Identity keys are shorter than the labels' encoding: this never regrows. Reserved
    // first: after `reserve`'s smaller guess it reallocated (and copied) the key buffer.
    out.batch.reserve_key_bytes(buf.len());
    out.batch.reserve(guess, guess);
    let mut r = Reader::at(buf, part.offset);
    let mut index = part.first_series;
    let mut scratch = Vec::with_capacity(16);
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, LEN) => {
                let ts = r.message()?;
                decode_series(ts, index, limits, &mut budget, &mut scratch, &mut out)?;
                index += 1;
            }
            (3, LEN) => {
                let m = r.message()?;
                match decode_metadata(m)? {
                    Ok(Some(md)) => out.batch.push_metadata(md),
                    Ok(None) => out.report.skip("metadata_without_name", 1),
                    Err(e) => out.report.reject(&e),
                }
            }
            (1 | 3, _) => return Err(r.error("wrong wire type for WriteRequest field").into()),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(out.done())
}

/// Decode one `TimeSeries` into the batch, or count why it was rejected.
fn decode_series<'a>(
    mut r: Reader<'a>,
    index: usize,
    limits: &Limits,
    budget: &mut SampleBudget,
    scratch: &mut Vec<LabelRanges>,
    out: &mut Decoded<'a>,
) -> Result<()> {
    let max_labels = limits.labels.max_labels;
    let mut s = out.batch.series();
    // First problem found; the series is still parsed to the end so framing stays checked.
    let mut bad: Option<Error> = None;
    let mut metric_name: &'a str = "";
    let mut labels = 0usize;
    let mut samples = 0usize;
    let mut exemplars = 0u64;
    // Senders put all labels first, sorted: that run of label messages goes to the batch's
    // fast path as byte ranges, which checks their content in one pass over the key it
    // writes (short per-string UTF-8 checks cost ~15 % of the decode).
    let buf = r.slice();
    scratch.clear();
    while !r.is_empty() {
        let before = r;
        let (field, wt) = r.key()?;
        if (field, wt) != (1, LEN) {
            r = before;
            break;
        }
        let m = r.message()?;
        let shift = m.base() - r.base();
        let ((a, b), (c, d)) = label_ranges(m)?;
        scratch.push(((a + shift, b + shift), (c + shift, d + shift)));
    }
    let sorted = add_labels(
        &mut s,
        (buf, r.base()),
        scratch,
        (&mut labels, max_labels),
        &mut metric_name,
        &mut bad,
    );
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, LEN) => {
                let m = r.message()?;
                match label_strs(m.slice(), m.base(), label_ranges(m)?) {
                    Ok(pair) => push_label(&mut s, pair, &mut metric_name, &mut labels, max_labels),
                    Err(e) => {
                        bad.get_or_insert(e);
                    }
                }
            }
            (2, LEN) => {
                add_float(r.message()?, budget, &mut s)?;
                samples += 1;
            }
            (3, LEN) => {
                r.bytes()?;
                exemplars += 1;
            }
            (4, LEN) => {
                add_histogram(r.message()?, budget, &mut s)?;
                samples += 1;
            }
            (1..=4, _) => return Err(r.error("wrong wire type for TimeSeries field").into()),
            _ => r.skip(field, wt)?,
        }
    }
    out.report.skip("exemplar", exemplars);
    let (lim, report) = (max_labels, &mut out.report);
    let name = || {
        if sorted {
            // The fast path accepted the strings, so they are UTF-8.
            metric_name_in(buf, scratch)
        } else {
            metric_name
        }
    };
    finish_series(s, bad, (labels, lim), samples, index, name, report);
    Ok(())
}

/// The end of a series' decode, shared by 1.0 and 2.0: the label-count limit
/// (`labels` = (count, limit)), then the series is stored, skipped when it has no sample,
/// or refused and counted under its index and `name` (asked for only then). Returns
/// whether it was stored.
fn finish_series<'a>(
    s: SeriesWriter<'_, 'a>,
    mut bad: Option<Error>,
    (labels, max_labels): (usize, usize),
    samples: usize,
    index: usize,
    name: impl FnOnce() -> &'a str,
    report: &mut crate::DecodeReport,
) -> bool {
    if labels > max_labels && bad.is_none() {
        bad = Some(Error::InvalidSeries {
            series: String::new(),
            source: gmc_model::Error::TooManyLabels {
                count: labels,
                limit: max_labels,
            },
        });
    }
    let result = match bad {
        Some(e) => {
            drop(s);
            Err(e)
        }
        None if samples == 0 => {
            // Nothing to store; Prometheus accepts such series silently.
            drop(s);
            report.skip("series_without_samples", 1);
            return false;
        }
        None => s.finish().map_err(|source| Error::InvalidSeries {
            series: String::new(),
            source,
        }),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            report.reject(&name_series(e, index, name()));
            false
        }
    }
}

/// The `__name__` value among labels given as byte ranges of `buf` ("" when absent or
/// not UTF-8).
fn metric_name_in<'a>(buf: &'a [u8], labels: &[LabelRanges]) -> &'a str {
    labels
        .iter()
        .find(|&&(n, _)| buf.get(n.0..n.1) == Some(METRIC_NAME.as_bytes()))
        .and_then(|&(_, v)| std::str::from_utf8(buf.get(v.0..v.1)?).ok())
        .unwrap_or_default()
}

/// Add a `Sample` message to the series, counted against the request's sample budget.
#[inline]
fn add_float(m: Reader<'_>, budget: &mut SampleBudget, s: &mut SeriesWriter<'_, '_>) -> Result<()> {
    let (ts_ms, value) = decode_sample(m)?;
    budget.take(1)?;
    s.float(millis_to_nanos(ts_ms), value);
    Ok(())
}

/// Add a native `Histogram` message to the series, counted against the sample budget.
#[inline]
fn add_histogram(
    m: Reader<'_>,
    budget: &mut SampleBudget,
    s: &mut SeriesWriter<'_, '_>,
) -> Result<()> {
    let (ts_ms, h) = decode_histogram(m)?;
    budget.take(1)?;
    s.histogram(millis_to_nanos(ts_ms), h);
    Ok(())
}

/// Fill in which series an error is about (only on the error path, so it may allocate).
fn name_series(e: Error, index: usize, metric_name: &str) -> Error {
    let series = if metric_name.is_empty() {
        format!("#{index}")
    } else {
        format!("#{index} ({})", crate::error::truncate(metric_name))
    };
    match e {
        Error::InvalidSeries { source, .. } => Error::InvalidSeries { series, source },
        other => other,
    }
}

/// Byte ranges of a label's name and value.
type LabelRanges = ((usize, usize), (usize, usize));

/// Find a `Label`'s name and value, as ranges of the reader's slice.
///
/// Every sender encodes a label as the name field, then the value field, each with a
/// one-byte length: that layout is recognised from four bytes; any other goes through
/// the general field loop ([`label_ranges_general`]), which gives the same answer for it.
#[inline]
fn label_ranges(r: Reader<'_>) -> PbResult<LabelRanges> {
    let m = r.slice();
    if r.position() == 0 {
        if let [0x0a, n, rest @ ..] = m {
            let n = usize::from(*n);
            if let Some((_, [0x12, v, value @ ..])) = rest.split_at_checked(n) {
                if n < 0x80 && *v < 0x80 && usize::from(*v) == value.len() {
                    return Ok(((2, 2 + n), (4 + n, m.len())));
                }
            }
        }
    }
    label_ranges_general(r)
}

/// [`label_ranges`] for any encoding: fields in any order, repeated (the last wins), or
/// unknown (skipped).
fn label_ranges_general(mut r: Reader<'_>) -> PbResult<LabelRanges> {
    let (mut name, mut value) = ((0, 0), (0, 0));
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, LEN) => name = r.bytes_range()?,
            (2, LEN) => value = r.bytes_range()?,
            (1 | 2, _) => return Err(r.error("wrong wire type for Label field")),
            _ => r.skip(field, wt)?,
        }
    }
    Ok((name, value))
}

/// Add the labels at `ranges` of `buf` (which starts `base` bytes into the request) to
/// the series: in one pass when they are already the normalized set (the fast path takes
/// the strings as bytes and checks their content once over the key it builds; a range off
/// the buffer reads as empty, which it declines), else one by one, counting them in
/// `labels` (count, limit), noting the metric name, and the first invalid string in
/// `bad`. Returns whether the fast path took them (the metric name is then not noted: it
/// is looked up only for an error message).
#[inline]
fn add_labels<'a>(
    s: &mut SeriesWriter<'_, 'a>,
    (buf, base): (&'a [u8], usize),
    ranges: &[LabelRanges],
    (labels, max_labels): (&mut usize, usize),
    metric_name: &mut &'a str,
    bad: &mut Option<Error>,
) -> bool {
    let sorted = s.sorted_labels(
        ranges
            .iter()
            .map(|&(n, v)| (Piece::in_buffer(buf, n), Piece::in_buffer(buf, v))),
    );
    if sorted {
        *labels = ranges.len();
        return true;
    }
    for &(n, v) in ranges {
        match label_strs(buf, base, (n, v)) {
            Ok(pair) => push_label(s, pair, metric_name, labels, max_labels),
            Err(e) => {
                bad.get_or_insert(e);
            }
        }
    }
    false
}

/// Check name and value one by one (the slow path), naming the invalid one.
#[cold]
fn label_strs(buf: &[u8], base: usize, (n, v): LabelRanges) -> Result<(&str, &str)> {
    let check = |(a, b): (usize, usize), field| {
        std::str::from_utf8(&buf[a..b]).map_err(|_| Error::InvalidUtf8 {
            field,
            offset: base + a,
        })
    };
    Ok((check(n, "label name")?, check(v, "label value")?))
}

/// Add one label to the series being written, tracking the name and the label count.
#[inline]
fn push_label<'a>(
    s: &mut SeriesWriter<'_, 'a>,
    (name, value): (&'a str, &'a str),
    metric_name: &mut &'a str,
    labels: &mut usize,
    max_labels: usize,
) {
    if name == METRIC_NAME {
        *metric_name = value;
    }
    // Empty values mean "absent" and do not count toward the limit.
    if value.is_empty() {
        return;
    }
    *labels += 1;
    // Stop buffering past the limit so 100k labels cannot balloon memory; the count is
    // still reported exactly.
    if *labels <= max_labels {
        s.label(Cow::Borrowed(name), Cow::Borrowed(value));
    }
}

/// Decode a `Sample` into `(timestamp ms, value)`; NaN payloads are kept bit-exactly.
///
/// Senders write the value field, then the timestamp field: that layout is read
/// directly (the timestamp's multi-byte varint inline, where the reader sends it to its
/// out-of-line slow loop); any other goes through the general field loop
/// ([`decode_sample_general`]), which gives the same answer for it.
#[inline]
fn decode_sample(r: Reader<'_>) -> PbResult<(i64, f64)> {
    if r.position() == 0 {
        if let Some(([0x09, value @ .., 0x10], ts)) = r.slice().split_first_chunk::<10>() {
            if let Ok((t, len)) = varint_prefix(ts) {
                if len == ts.len() {
                    // int64 is the varint's two's complement bits.
                    return Ok((t as i64, f64::from_bits(u64::from_le_bytes(*value))));
                }
            }
        }
    }
    decode_sample_general(r)
}

/// [`decode_sample`] for any encoding: fields in any order, repeated (the last wins),
/// or unknown (skipped).
fn decode_sample_general(mut r: Reader<'_>) -> PbResult<(i64, f64)> {
    let mut value = 0.0;
    let mut ts = 0i64;
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, FIXED64) => value = f64::from_bits(r.fixed64()?),
            // int64 is the varint's two's complement bits.
            (2, VARINT) => ts = r.varint()? as i64,
            (1 | 2, _) => return Err(r.error("wrong wire type for Sample field")),
            _ => r.skip(field, wt)?,
        }
    }
    Ok((ts, value))
}

/// Decode a native `Histogram` into `(timestamp ms, histogram)` with absolute counts.
#[allow(clippy::cast_possible_truncation)] // enum varints truncate to int32, as in prost
fn decode_histogram(mut r: Reader<'_>) -> PbResult<(i64, Histogram)> {
    let mut h = Histogram::default();
    let mut is_float = false;
    let mut ts = 0i64;
    let (mut pos_deltas, mut neg_deltas) = (Vec::new(), Vec::new());
    let (mut pos_counts, mut neg_counts) = (Vec::new(), Vec::new());
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, VARINT) => {
                h.count = r.varint()? as f64;
                is_float = false;
            }
            (2, FIXED64) => {
                h.count = f64::from_bits(r.fixed64()?);
                is_float = true;
            }
            (3, FIXED64) => h.sum = f64::from_bits(r.fixed64()?),
            (4, VARINT) => h.schema = zigzag32(r.varint()?),
            (5, FIXED64) => h.zero_threshold = f64::from_bits(r.fixed64()?),
            (6, VARINT) => h.zero_count = r.varint()? as f64,
            (7, FIXED64) => h.zero_count = f64::from_bits(r.fixed64()?),
            (8, LEN) => h.negative_spans.push(decode_span(r.message()?)?),
            (9, _) => sint64s(&mut r, wt, &mut neg_deltas)?,
            (10, _) => doubles(&mut r, wt, &mut neg_counts)?,
            (11, LEN) => h.positive_spans.push(decode_span(r.message()?)?),
            (12, _) => sint64s(&mut r, wt, &mut pos_deltas)?,
            (13, _) => doubles(&mut r, wt, &mut pos_counts)?,
            (14, VARINT) => {
                h.reset_hint = match r.varint()? as i32 {
                    1 => CounterResetHint::Reset,
                    2 => CounterResetHint::NotReset,
                    3 => CounterResetHint::Gauge,
                    _ => CounterResetHint::Unknown,
                }
            }
            (15, VARINT) => ts = r.varint()? as i64,
            (16, _) => doubles(&mut r, wt, &mut h.custom_values)?,
            (1..=8 | 11 | 14 | 15, _) => return Err(r.error("wrong wire type for Histogram field")),
            _ => r.skip(field, wt)?,
        }
    }
    if is_float {
        h.positive_buckets = pos_counts;
        h.negative_buckets = neg_counts;
    } else {
        h.positive_buckets = absolute(&pos_deltas);
        h.negative_buckets = absolute(&neg_deltas);
    }
    Ok((ts, h))
}

/// Integer bucket deltas to absolute counts (wrapping like Go's int64 arithmetic).
fn absolute(deltas: &[i64]) -> Vec<f64> {
    let mut acc = 0i64;
    deltas
        .iter()
        .map(|d| {
            acc = acc.wrapping_add(*d);
            acc as f64
        })
        .collect()
}

#[allow(clippy::cast_possible_truncation)] // uint32 truncates the varint, as in prost
fn decode_span(mut r: Reader<'_>) -> PbResult<Span> {
    let mut span = Span {
        offset: 0,
        length: 0,
    };
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, VARINT) => span.offset = zigzag32(r.varint()?),
            // uint32: the varint is truncated, as prost does.
            (2, VARINT) => span.length = r.varint()? as u32,
            (1 | 2, _) => return Err(r.error("wrong wire type for BucketSpan field")),
            _ => r.skip(field, wt)?,
        }
    }
    Ok(span)
}

/// A repeated sint64, packed (LEN) or not (VARINT).
fn sint64s(r: &mut Reader<'_>, wt: u8, out: &mut Vec<i64>) -> PbResult<()> {
    match wt {
        VARINT => out.push(zigzag64(r.varint()?)),
        LEN => {
            let mut p = r.message()?;
            while !p.is_empty() {
                out.push(zigzag64(p.varint()?));
            }
        }
        _ => return Err(r.error("wrong wire type for repeated sint64")),
    }
    Ok(())
}

/// A repeated double, packed (LEN) or not (FIXED64).
fn doubles(r: &mut Reader<'_>, wt: u8, out: &mut Vec<f64>) -> PbResult<()> {
    match wt {
        FIXED64 => out.push(f64::from_bits(r.fixed64()?)),
        LEN => {
            let mut p = r.message()?;
            if p.remaining() % 8 != 0 {
                return Err(p.error("packed doubles not a multiple of 8 bytes"));
            }
            out.reserve(p.remaining() / 8);
            while !p.is_empty() {
                out.push(f64::from_bits(p.fixed64()?));
            }
        }
        _ => return Err(r.error("wrong wire type for repeated double")),
    }
    Ok(())
}

/// Decode `MetricMetadata`; `Ok(None)` when it names no family.
#[allow(clippy::cast_possible_truncation)] // enum varints truncate to int32, as in prost
fn decode_metadata(mut r: Reader<'_>) -> PbResult<Result<Option<Metadata>>> {
    let mut ty = MetricType::Unknown;
    let (mut name, mut help, mut unit) = (Ok(String::new()), Ok(String::new()), Ok(String::new()));
    let text = |r: &mut Reader<'_>, field: &'static str| -> PbResult<Result<String>> {
        let b = r.bytes()?;
        let offset = r.offset() - b.len();
        Ok(std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Error::InvalidUtf8 { field, offset }))
    };
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match (field, wt) {
            (1, VARINT) => ty = metric_type_from_proto(r.varint()? as i32),
            (2, LEN) => name = text(&mut r, "metadata family name")?,
            (4, LEN) => help = text(&mut r, "metadata help")?,
            (5, LEN) => unit = text(&mut r, "metadata unit")?,
            (1 | 2 | 4 | 5, _) => return Err(r.error("wrong wire type for MetricMetadata field")),
            _ => r.skip(field, wt)?,
        }
    }
    Ok((|| {
        let name = name?;
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Some(Metadata {
            metric_family: name,
            metric_type: ty,
            help: help?,
            unit: unit?,
        }))
    })())
}

/// Map the proto enum value to the model's type (unknown numbers → `Unknown`).
pub fn metric_type_from_proto(v: i32) -> MetricType {
    match v {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

/// Map the model's type to the proto enum.
pub fn metric_type_to_proto(t: MetricType) -> proto::MetricType {
    match t {
        MetricType::Unknown => proto::MetricType::Unknown,
        MetricType::Counter => proto::MetricType::Counter,
        MetricType::Gauge => proto::MetricType::Gauge,
        MetricType::Histogram => proto::MetricType::Histogram,
        MetricType::GaugeHistogram => proto::MetricType::Gaugehistogram,
        MetricType::Summary => proto::MetricType::Summary,
        MetricType::Info => proto::MetricType::Info,
        MetricType::StateSet => proto::MetricType::Stateset,
    }
}

/// Build the prost `WriteRequest` for a batch (timestamps become milliseconds, rounding
/// toward negative infinity; histograms with integral counts are sent as integer
/// histograms, others as float histograms; `min`/`max` are not part of remote_write).
pub fn to_proto(batch: &WriteBatch<'_>) -> proto::WriteRequest {
    let timeseries = batch
        .iter()
        .map(|s| proto::TimeSeries {
            labels: s
                .labels()
                .map(|(name, value)| proto::Label {
                    name: name.to_owned(),
                    value: value.to_owned(),
                })
                .collect(),
            samples: s
                .floats
                .iter()
                .map(|f| proto::Sample {
                    value: f.value,
                    timestamp: nanos_to_millis(f.ts_nanos),
                })
                .collect(),
            exemplars: Vec::new(),
            histograms: s
                .histograms
                .iter()
                .map(|h| histogram_to_proto(&h.histogram, nanos_to_millis(h.ts_nanos)))
                .collect(),
        })
        .collect();
    let metadata = batch
        .metadata()
        .iter()
        .map(|m| proto::MetricMetadata {
            r#type: metric_type_to_proto(m.metric_type) as i32,
            metric_family_name: m.metric_family.clone(),
            help: m.help.clone(),
            unit: m.unit.clone(),
        })
        .collect();
    proto::WriteRequest {
        timeseries,
        metadata,
    }
}

/// Encode a batch as a snappy-compressed `WriteRequest`, ready to POST.
pub fn encode_write_request(batch: &WriteBatch<'_>) -> Vec<u8> {
    crate::snappy::compress(&to_proto(batch).encode_to_vec())
}

/// Whether `v` survives the trip through an integer count exactly.
fn is_integral(v: f64) -> bool {
    // 2^53: beyond it not every integer is representable, so deltas could drift.
    v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0
}

/// Convert a model histogram to the proto message.
#[allow(clippy::cast_possible_truncation)] // integer form only when every count is integral
pub fn histogram_to_proto(h: &Histogram, ts_ms: i64) -> proto::Histogram {
    use proto::histogram::{Count, ResetHint, ZeroCount};
    let integral = h.count >= 0.0
        && h.zero_count >= 0.0
        && is_integral(h.count)
        && is_integral(h.zero_count)
        && h.positive_buckets.iter().all(|v| is_integral(*v))
        && h.negative_buckets.iter().all(|v| is_integral(*v));
    let spans = |s: &[Span]| {
        s.iter()
            .map(|s| proto::BucketSpan {
                offset: s.offset,
                length: s.length,
            })
            .collect::<Vec<_>>()
    };
    let deltas = |b: &[f64]| {
        let mut prev = 0i64;
        b.iter()
            .map(|v| {
                let cur = *v as i64;
                let d = cur.wrapping_sub(prev);
                prev = cur;
                d
            })
            .collect::<Vec<_>>()
    };
    let mut p = proto::Histogram {
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        negative_spans: spans(&h.negative_spans),
        positive_spans: spans(&h.positive_spans),
        reset_hint: match h.reset_hint {
            CounterResetHint::Unknown => ResetHint::Unknown,
            CounterResetHint::Reset => ResetHint::Yes,
            CounterResetHint::NotReset => ResetHint::No,
            CounterResetHint::Gauge => ResetHint::Gauge,
        } as i32,
        timestamp: ts_ms,
        custom_values: h.custom_values.clone(),
        ..proto::Histogram::default()
    };
    if integral {
        p.count = Some(Count::CountInt(h.count as u64));
        p.zero_count = Some(ZeroCount::ZeroCountInt(h.zero_count as u64));
        p.negative_deltas = deltas(&h.negative_buckets);
        p.positive_deltas = deltas(&h.positive_buckets);
    } else {
        p.count = Some(Count::CountFloat(h.count));
        p.zero_count = Some(ZeroCount::ZeroCountFloat(h.zero_count));
        p.negative_counts = h.negative_buckets.clone();
        p.positive_counts = h.positive_buckets.clone();
    }
    p
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// The `Sample` shortcut answers exactly as the general field loop, on canonical
        /// samples (any timestamp, negative ones are ten-byte varints), near misses and
        /// noise.
        #[test]
        fn sample_shortcut_matches_the_general_loop(
            value in proptest::num::u64::ANY,
            ts in proptest::num::i64::ANY,
            tweak in 0usize..6,
            at in proptest::num::usize::ANY,
            byte in proptest::num::u8::ANY,
        ) {
            let mut m = vec![0x09];
            m.extend_from_slice(&value.to_le_bytes());
            m.push(0x10);
            prost::encoding::encode_varint(ts as u64, &mut m);
            near_miss(&mut m, tweak, at, byte);
            let fast = decode_sample(Reader::new(&m))
                .map(|(t, v)| (t, v.to_bits()))
                .map_err(|e| (e.offset, e.reason));
            let general = decode_sample_general(Reader::new(&m))
                .map(|(t, v)| (t, v.to_bits()))
                .map_err(|e| (e.offset, e.reason));
            proptest::prop_assert_eq!(fast, general);
        }

        /// The canonical-layout shortcut answers exactly as the general field loop, on
        /// canonical labels, on near misses (lengths off by one, other tags) and on noise.
        #[test]
        fn label_ranges_shortcut_matches_the_general_loop(
            name in proptest::collection::vec(proptest::num::u8::ANY, 0..140),
            value in proptest::collection::vec(proptest::num::u8::ANY, 0..140),
            tweak in 0usize..6,
            at in proptest::num::usize::ANY,
            byte in proptest::num::u8::ANY,
        ) {
            let mut m = vec![0x0a];
            prost::encoding::encode_varint(name.len() as u64, &mut m);
            m.extend_from_slice(&name);
            m.push(0x12);
            prost::encoding::encode_varint(value.len() as u64, &mut m);
            m.extend_from_slice(&value);
            near_miss(&mut m, tweak, at, byte);
            let fast = label_ranges(Reader::new(&m)).map_err(|e| (e.offset, e.reason));
            let general = label_ranges_general(Reader::new(&m)).map_err(|e| (e.offset, e.reason));
            proptest::prop_assert_eq!(fast, general);
        }
    }

    use super::*;
    use gmc_model::{is_stale_nan, STALE_NAN_BITS};

    /// Turn a well-formed message into a near miss for the shortcut tests: `tweak` 1
    /// appends `byte`, 2 drops the last byte, 3 overwrites the byte at `at`, 4 truncates
    /// at `at`; anything else leaves it whole.
    fn near_miss(m: &mut Vec<u8>, tweak: usize, at: usize, byte: u8) {
        match tweak {
            1 => m.push(byte),
            2 => {
                m.pop();
            }
            3 => {
                let i = at % m.len();
                m[i] = byte;
            }
            4 => m.truncate(at % (m.len() + 1)),
            _ => {}
        }
    }

    fn label(n: &str, v: &str) -> proto::Label {
        proto::Label {
            name: n.into(),
            value: v.into(),
        }
    }

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
        proto::TimeSeries {
            labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| proto::Sample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_samples_and_labels() {
        let req = proto::WriteRequest {
            timeseries: vec![series(
                &[("__name__", "up"), ("job", "api")],
                &[
                    (1_700_000_000_000, 1.0),
                    (1_700_000_001_000, f64::from_bits(STALE_NAN_BITS)),
                ],
            )],
            metadata: vec![],
        };
        let buf = req.encode_to_vec();
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.report.samples_accepted, 2);
        let s = d.batch.get(0).unwrap();
        assert_eq!(
            s.labels().collect::<Vec<_>>(),
            [("__name__", "up"), ("job", "api")]
        );
        assert_eq!(s.label("job"), Some("api"));
        assert_eq!(s.floats[0].ts_nanos, 1_700_000_000_000_000_000);
        assert!(is_stale_nan(s.floats[1].value));
    }

    #[test]
    fn bad_series_is_rejected_alone() {
        let req = proto::WriteRequest {
            timeseries: vec![
                series(&[("job", "no-name")], &[(1, 1.0)]),
                series(&[("__name__", "ok")], &[(1, 1.0)]),
                series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
            ],
            metadata: vec![],
        };
        let buf = req.encode_to_vec();
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 1);
        assert_eq!(d.report.rejected["missing_metric_name"], 1);
        assert_eq!(d.report.rejected["duplicate_label_name"], 1);
        assert!(
            d.report.messages[1].contains("#2 (dup)"),
            "{:?}",
            d.report.messages
        );
    }

    #[test]
    fn sorted_and_unsorted_labels_give_one_identity_and_errors_name_the_metric() {
        let sorted = [("__name__", "m"), ("env", "prod"), ("job", "oms")];
        let shuffled = [
            ("job", "oms"),
            ("__name__", "m"),
            ("env", "prod"),
            ("x", ""),
        ];
        let bad_hist = proto::Histogram {
            count: Some(proto::histogram::Count::CountInt(1)),
            positive_spans: vec![proto::BucketSpan {
                offset: 0,
                length: 2,
            }],
            positive_deltas: vec![1],
            timestamp: 1,
            ..Default::default()
        };
        let req = proto::WriteRequest {
            timeseries: vec![
                series(&sorted, &[(1, 1.0)]),
                series(&shuffled, &[(2, 2.0)]),
                proto::TimeSeries {
                    labels: vec![label("__name__", "lat"), label("svc", "a")],
                    histograms: vec![bad_hist],
                    ..Default::default()
                },
            ],
            metadata: vec![],
        };
        let buf = req.encode_to_vec();
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 2);
        let (a, b) = (d.batch.get(0).unwrap(), d.batch.get(1).unwrap());
        assert_eq!(a.key, b.key);
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.labels().collect::<Vec<_>>(), sorted);
        assert_eq!(d.report.rejected_total(), 1);
        assert!(
            d.report.messages[0].contains("#2 (lat)"),
            "{:?}",
            d.report.messages
        );
    }

    #[test]
    fn integer_histogram_deltas_become_absolute_counts() {
        let h = proto::Histogram {
            count: Some(proto::histogram::Count::CountInt(9)),
            sum: 12.5,
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: Some(proto::histogram::ZeroCount::ZeroCountInt(1)),
            positive_spans: vec![
                proto::BucketSpan {
                    offset: -2,
                    length: 2,
                },
                proto::BucketSpan {
                    offset: 1,
                    length: 1,
                },
            ],
            positive_deltas: vec![2, 1, -1],
            reset_hint: proto::histogram::ResetHint::No as i32,
            timestamp: 5,
            ..Default::default()
        };
        let req = proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![label("__name__", "lat")],
                histograms: vec![h],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let buf = req.encode_to_vec();
        let d = decode(&buf, &Limits::default()).unwrap();
        let s = d.batch.get(0).unwrap();
        let got = &s.histograms[0];
        assert_eq!(got.ts_nanos, 5_000_000);
        assert_eq!(got.histogram.positive_buckets, vec![2.0, 3.0, 2.0]);
        assert_eq!(got.histogram.schema, 3);
        assert_eq!(got.histogram.reset_hint, CounterResetHint::NotReset);
        // And back: the encoder picks the integer form and the same deltas.
        let back = histogram_to_proto(&got.histogram, 5);
        assert_eq!(back, req.timeseries[0].histograms[0]);
    }

    #[test]
    fn custom_bucket_histograms_keep_their_bounds() {
        let nhcb = |bounds: Vec<f64>, ts: i64| proto::Histogram {
            count: Some(proto::histogram::Count::CountInt(4)),
            sum: 5.0,
            schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
            zero_count: Some(proto::histogram::ZeroCount::ZeroCountInt(0)),
            positive_spans: vec![proto::BucketSpan {
                offset: 0,
                length: 3,
            }],
            positive_deltas: vec![1, 1, -1],
            timestamp: ts,
            custom_values: bounds,
            ..Default::default()
        };
        let req = proto::WriteRequest {
            timeseries: vec![
                proto::TimeSeries {
                    labels: vec![label("__name__", "lat")],
                    histograms: vec![nhcb(vec![5.0, 10.0], 7)],
                    ..Default::default()
                },
                // Bounds that do not increase: the series is refused, with a reason.
                proto::TimeSeries {
                    labels: vec![label("__name__", "bad")],
                    histograms: vec![nhcb(vec![10.0, 5.0], 7)],
                    ..Default::default()
                },
            ],
            metadata: vec![],
        };
        let buf = req.encode_to_vec();
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 1);
        let got = &d.batch.get(0).unwrap().histograms[0];
        assert_eq!(got.histogram.custom_values, vec![5.0, 10.0]);
        assert_eq!(got.histogram.positive_buckets, vec![1.0, 2.0, 1.0]);
        assert_eq!(d.report.rejected_total(), 1);
        assert!(
            d.report.messages[0].contains("increase strictly"),
            "{:?}",
            d.report.messages
        );
        let back = histogram_to_proto(&got.histogram, 7);
        assert_eq!(back, req.timeseries[0].histograms[0]);
    }

    #[test]
    fn metadata_only_request_is_valid() {
        let req = proto::WriteRequest {
            timeseries: vec![],
            metadata: vec![proto::MetricMetadata {
                r#type: proto::MetricType::Counter as i32,
                metric_family_name: "http_requests_total".into(),
                help: "Requests.".into(),
                unit: String::new(),
            }],
        };
        let buf = req.encode_to_vec();
        let d = decode(&buf, &Limits::default()).unwrap();
        assert!(d.batch.is_empty());
        assert_eq!(d.batch.metadata()[0].metric_type, MetricType::Counter);
        assert!(d.report.is_clean());
    }

    #[test]
    fn too_many_samples_fails_the_request() {
        let req = proto::WriteRequest {
            timeseries: vec![series(
                &[("__name__", "m")],
                &[(1, 1.0), (2, 2.0), (3, 3.0)],
            )],
            metadata: vec![],
        };
        let buf = req.encode_to_vec();
        let limits = Limits {
            max_samples: 2,
            ..Limits::default()
        };
        assert!(matches!(
            decode(&buf, &limits),
            Err(Error::TooManySamples { limit: 2 })
        ));
    }

    #[test]
    fn invalid_utf8_rejects_the_series_only() {
        let mut buf = proto::WriteRequest {
            timeseries: vec![
                series(&[("__name__", "m"), ("a", "XY")], &[(1, 1.0)]),
                series(&[("__name__", "n")], &[(1, 1.0)]),
            ],
            metadata: vec![],
        }
        .encode_to_vec();
        let at = buf.windows(2).position(|w| w == b"XY").unwrap();
        buf[at] = 0xff;
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.batch.len_series(), 1);
        assert_eq!(d.report.rejected["invalid_utf8"], 1);
        assert!(d.report.messages[0].contains("label value"));
    }

    #[test]
    fn encode_round_trips_through_snappy() {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "m");
        s.float(3_000_000, 1.5);
        s.finish().unwrap();
        let body = encode_write_request(&b);
        let buf = decompress(&body, &Limits::default()).unwrap();
        let d = decode(&buf, &Limits::default()).unwrap();
        assert_eq!(d.batch.get(0).unwrap().floats[0].value, 1.5);
        assert_eq!(d.batch.get(0).unwrap().floats[0].ts_nanos, 3_000_000);
    }
}
