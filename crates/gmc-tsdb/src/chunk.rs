//! Chunk codecs: compressed runs of one series' samples, stored by the head and by blocks as
//! opaque `(mint, maxt, encoding: u8, bytes)`. Byte formats: `docs/format/chunk.md`.
//!
//! Encodings: [`ENCODING_XOR`] (appendable head chunk), [`ENCODING_PACKED`] (closed float
//! chunk, smallest of three value modes), [`ENCODING_HISTOGRAM`] (native histograms).

mod bits;
mod histogram;
mod packed;
mod timestamps;
mod xor;

use std::sync::Arc;

use gmc_model::Histogram;

pub use xor::XorAppender;

pub(crate) use bits::{get_uvarint, put_uvarint};

use crate::error::{Error, Result};
use crate::querier::{Sample, SampleValue};

/// Appendable float chunk: grid-residual timestamps + Gorilla XOR values.
pub const ENCODING_XOR: u8 = xor::ENCODING;
/// Closed float chunk: grid-residual timestamps + best of XOR / decimal-Rice / bits-Rice.
pub const ENCODING_PACKED: u8 = packed::ENCODING;
/// Native histogram chunk.
pub const ENCODING_HISTOGRAM: u8 = histogram::ENCODING;

/// The parts of an [`ENCODING_PACKED`] chunk, for a block writer that stores identical
/// timestamp parts once: the chunk is `header ++ params ++ timestamps ++ values`, and
/// `header ++ timestamps` (count, unit, first timestamp, timestamp stream) is identical
/// for every series sampled at the same instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedParts<'a> {
    /// Sample count, timestamp unit code and first timestamp.
    pub(crate) header: &'a [u8],
    /// Value mode and its parameters.
    pub(crate) params: &'a [u8],
    /// Timestamp stream length and stream.
    pub(crate) timestamps: &'a [u8],
    /// Value stream.
    pub(crate) values: &'a [u8],
}

/// Split an [`ENCODING_PACKED`] chunk into its parts (checking its header).
pub(crate) fn packed_parts(bytes: &[u8]) -> Result<PackedParts<'_>> {
    let l = packed::layout(bytes)?;
    Ok(PackedParts {
        header: &bytes[..l.mode_at],
        params: &bytes[l.mode_at..l.ts_len_at],
        timestamps: &bytes[l.ts_len_at..l.values_at],
        values: &bytes[l.values_at..],
    })
}

/// Encode float samples (strictly increasing timestamps) with the closed-chunk codec.
/// Returns `(encoding, bytes)`.
pub fn encode_floats(samples: &[(i64, f64)]) -> (u8, Vec<u8>) {
    (ENCODING_PACKED, packed::encode(samples))
}

/// Encode histogram samples (strictly increasing timestamps). Returns `(encoding, bytes)`.
pub fn encode_histograms(samples: &[(i64, &Histogram)]) -> (u8, Vec<u8>) {
    (ENCODING_HISTOGRAM, histogram::encode(samples))
}

/// Encode mixed samples (all of one kind) with the right codec; `None` when they mix kinds.
pub fn encode_samples(samples: &[Sample]) -> Option<(u8, Vec<u8>)> {
    if samples
        .iter()
        .all(|s| matches!(s.value, SampleValue::Float(_)))
    {
        let f: Vec<(i64, f64)> = samples
            .iter()
            .filter_map(|s| match s.value {
                SampleValue::Float(v) => Some((s.ts_nanos, v)),
                SampleValue::Histogram(_) => None,
            })
            .collect();
        return Some(encode_floats(&f));
    }
    let h: Vec<(i64, &Histogram)> = samples
        .iter()
        .filter_map(|s| match &s.value {
            SampleValue::Histogram(h) => Some((s.ts_nanos, h.as_ref())),
            SampleValue::Float(_) => None,
        })
        .collect();
    (h.len() == samples.len()).then(|| encode_histograms(&h))
}

/// Iterator over the samples of one chunk, in time order. Yields an error (once, then
/// ends) when the bytes are corrupt; never panics on any input.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a>(Inner<'a>);

#[derive(Debug, Clone)]
enum Inner<'a> {
    Xor(xor::XorIter<'a>),
    Packed(packed::PackedIter<'a>),
    Histogram(histogram::HistogramIter<'a>),
}

impl ChunkIter<'_> {
    /// Next float sample as `(ts_nanos, value)`, skipping the `Sample` wrapper; `None` at
    /// the end. Histogram chunks yield an error.
    #[inline]
    pub fn next_float(&mut self) -> Option<Result<(i64, f64)>> {
        match &mut self.0 {
            Inner::Xor(i) => i.next(),
            Inner::Packed(i) => i.next(),
            Inner::Histogram(i) => i.next().map(|r| {
                r.and(Err(Error::CorruptChunk {
                    encoding: ENCODING_HISTOGRAM,
                    reason: "not a float chunk",
                }))
            }),
        }
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<Sample>;

    #[inline]
    fn next(&mut self) -> Option<Result<Sample>> {
        let float = |r: Result<(i64, f64)>| {
            r.map(|(ts_nanos, v)| Sample {
                ts_nanos,
                value: SampleValue::Float(v),
            })
        };
        match &mut self.0 {
            Inner::Xor(i) => i.next().map(float),
            Inner::Packed(i) => i.next().map(float),
            Inner::Histogram(i) => i.next().map(|r| {
                r.map(|(ts_nanos, h)| Sample {
                    ts_nanos,
                    value: SampleValue::Histogram(h),
                })
            }),
        }
    }
}

/// Decode a chunk lazily. This is the API for every reader of stored chunks (querier,
/// compaction, rollups): `encoding` and `bytes` exactly as stored.
///
/// ```
/// use gmc_tsdb::chunk;
/// let (enc, bytes) = chunk::encode_floats(&[(1_000_000, 1.5), (2_000_000, 2.5)]);
/// let v: Vec<_> = chunk::decode_iter(enc, &bytes).unwrap().collect::<Result<_, _>>().unwrap();
/// assert_eq!(v.len(), 2);
/// assert_eq!(v[1].ts_nanos, 2_000_000);
/// ```
pub fn decode_iter(encoding: u8, bytes: &[u8]) -> Result<ChunkIter<'_>> {
    Ok(ChunkIter(match encoding {
        ENCODING_XOR => Inner::Xor(xor::XorIter::new(bytes)?),
        ENCODING_PACKED => Inner::Packed(packed::PackedIter::new(bytes)?),
        ENCODING_HISTOGRAM => Inner::Histogram(histogram::HistogramIter::new(bytes)?),
        _ => return Err(Error::UnknownEncoding { encoding }),
    }))
}

/// Append the samples of a chunk within `[mint, maxt]` to `out`, stopping at the first
/// one after `maxt` (a chunk's samples are in time order).
pub fn decode_range(
    encoding: u8,
    bytes: &[u8],
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
) -> Result<()> {
    for s in decode_iter(encoding, bytes)? {
        let s = s?;
        if s.ts_nanos > maxt {
            break;
        }
        if s.ts_nanos >= mint {
            out.push(s);
        }
    }
    Ok(())
}

/// Decode a whole float chunk into `(ts_nanos, value)` pairs appended to `out`: the
/// fastest path (one tight loop per stream). Histogram chunks are an error.
pub fn decode_floats(encoding: u8, bytes: &[u8], out: &mut Vec<(i64, f64)>) -> Result<()> {
    match encoding {
        ENCODING_PACKED => packed::PackedIter::new(bytes)?.decode_into(out),
        ENCODING_XOR => {
            for s in xor::XorIter::new(bytes)? {
                out.push(s?);
            }
            Ok(())
        }
        ENCODING_HISTOGRAM => Err(Error::CorruptChunk {
            encoding,
            reason: "not a float chunk",
        }),
        _ => Err(Error::UnknownEncoding { encoding }),
    }
}

/// [`decode_floats`] for a reader that needs only the samples at or after `mint`: a
/// `PACKED` chunk with a seek table skips the values before the last seek point at or
/// before the first such sample. Samples before `mint` may still be appended (callers
/// clip); every sample at or after it is.
pub fn decode_floats_from(
    encoding: u8,
    bytes: &[u8],
    mint: i64,
    out: &mut Vec<(i64, f64)>,
) -> Result<()> {
    match encoding {
        ENCODING_PACKED => packed::PackedIter::new(bytes)?.decode_from(mint, out),
        _ => decode_floats(encoding, bytes, out),
    }
}

/// [`decode_floats_from`] for a `PACKED` chunk whose timestamps the caller already has
/// decoded (`ts`, one per sample; see `block::Chunk::decode_floats_from`): only values
/// are decoded. A count that disagrees with `ts` is corruption.
pub(crate) fn decode_floats_with_timestamps(
    bytes: &[u8],
    ts: &[i64],
    mint: i64,
    out: &mut Vec<(i64, f64)>,
) -> Result<()> {
    packed::PackedIter::new(bytes)?.decode_values_from(ts, mint, out)
}

/// The value stored at `ts` in a float chunk, if any, decoding no further than needed:
/// an `XOR` chunk up to `ts`, a `PACKED` one from its last seek point before `ts`. The
/// store asks this for every sample a retried write sends again; walking the generic
/// sample iterator to it made a retry cost 5.7× a first write.
pub(crate) fn float_at(encoding: u8, bytes: &[u8], ts: i64) -> Result<Option<f64>> {
    match encoding {
        ENCODING_XOR => {
            for s in xor::XorIter::new(bytes)? {
                let (t, v) = s?;
                if t >= ts {
                    return Ok((t == ts).then_some(v));
                }
            }
            Ok(None)
        }
        ENCODING_PACKED => {
            let mut out = Vec::new();
            packed::PackedIter::new(bytes)?.decode_from(ts, &mut out)?;
            Ok(out
                .binary_search_by_key(&ts, |p| p.0)
                .ok()
                .map(|i| out[i].1))
        }
        ENCODING_HISTOGRAM => Err(Error::CorruptChunk {
            encoding,
            reason: "not a float chunk",
        }),
        _ => Err(Error::UnknownEncoding { encoding }),
    }
}

/// Every timestamp (nanoseconds) of a `PACKED` chunk, its values untouched.
pub(crate) fn packed_timestamps(bytes: &[u8]) -> Result<Vec<i64>> {
    packed::PackedIter::new(bytes)?.timestamps()
}

/// The value of a float chunk's last sample (`None` when empty). Its timestamp is the
/// chunk's `maxt`; closed chunks skip decoding timestamps altogether. Histogram chunks
/// are an error.
pub fn last_float(encoding: u8, bytes: &[u8]) -> Result<Option<f64>> {
    match encoding {
        ENCODING_PACKED => packed::PackedIter::new(bytes)?.last_value(),
        ENCODING_XOR => {
            let mut last = None;
            for s in xor::XorIter::new(bytes)? {
                last = Some(s?.1);
            }
            Ok(last)
        }
        ENCODING_HISTOGRAM => Err(Error::CorruptChunk {
            encoding,
            reason: "not a float chunk",
        }),
        _ => Err(Error::UnknownEncoding { encoding }),
    }
}

/// Number of samples in a chunk, from its header alone (for exact output capacity). The
/// headers' counts are checked against the stream sizes, so a corrupt chunk cannot claim
/// much more than its bytes could hold.
pub fn sample_count(encoding: u8, bytes: &[u8]) -> Result<usize> {
    Ok(match decode_iter(encoding, bytes)?.0 {
        Inner::Xor(i) => i.remaining(),
        Inner::Packed(i) => i.remaining(),
        Inner::Histogram(i) => i.remaining(),
    })
}

/// Decode a whole chunk into samples.
pub fn decode_all(encoding: u8, bytes: &[u8]) -> Result<Vec<Sample>> {
    decode_iter(encoding, bytes)?.collect()
}

/// Convenience: a histogram sample value.
pub fn histogram_value(h: Histogram) -> SampleValue {
    SampleValue::Histogram(Arc::new(h))
}

#[cfg(test)]
mod tests;
