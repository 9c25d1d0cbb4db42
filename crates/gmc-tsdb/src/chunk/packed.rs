//! Encoding 2, `PACKED`: the closed-chunk float codec, written once when a head chunk is
//! cut or a block is written. Timestamps use the run-length grid-residual stream; values use
//! the smaller for this chunk of Gorilla XOR and an integer mode: decimal integers (value =
//! m / 10^e exactly) with Rice-coded first or second differences when every value is
//! such a decimal, else Rice-coded differences of the raw IEEE bit patterns
//! (full-precision gauges).

use super::bits::{
    best_rice, get_uvarint, get_varint, put_uvarint, put_varint, read_rice, read_rice_each,
    rice_bits, unzigzag, varint_len, write_rice, zigzag, BitCount, BitReader, BitWriter,
};
use super::timestamps::{best_unit, encode_stream, StreamDecoder, UNITS};
use super::xor::{XorValues, XorValuesDecoder};
use crate::error::{Error, Result};

/// Encoding byte of this codec.
pub(crate) const ENCODING: u8 = 2;

const MODE_XOR: u8 = 0;
const MODE_DECIMAL: u8 = 1;
const MODE_BITS: u8 = 2;
/// Set in the mode byte of an integer mode when a seek table follows its parameters.
const SEEK_FLAG: u8 = 0x80;

/// Samples between the seek points of an integer-mode value stream: a reader that needs
/// only a chunk's tail (a `rate(x[1m])` at the end of a 2,880-sample block chunk, a
/// chunk's last value) starts at the last point before it instead of at sample 0. One
/// point costs 3–6 bytes against ~650 of values, about 1 %.
pub(crate) const SEEK_EVERY: usize = 256;

/// Largest decimal exponent tried.
const MAX_DECIMAL_EXP: usize = 15;
/// 2^53: integers below this magnitude are exact in an f64.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

const POW10: [f64; MAX_DECIMAL_EXP + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Integer predictor shared by the encoder and decoder: order 0 predicts the constant
/// `c`, order 1 the previous value plus `c`, order 2 the previous value plus the previous
/// difference (the first difference predicted as `c`).
#[derive(Debug, Clone, Copy)]
struct Predictor {
    order: u8,
    c: i64,
    prev: i64,
    prev_d: i64,
}

impl Predictor {
    fn new(order: u8, c: i64, first: i64) -> Self {
        Predictor {
            order,
            c,
            prev: first,
            prev_d: c,
        }
    }

    #[inline]
    fn predict(&self) -> i64 {
        match self.order {
            0 => self.c,
            1 => self.prev.wrapping_add(self.c),
            _ => self.prev.wrapping_add(self.prev_d),
        }
    }

    #[inline]
    fn push(&mut self, x: i64) {
        self.prev_d = x.wrapping_sub(self.prev);
        self.prev = x;
    }
}

/// Median of `v` (reordering it); 0 when empty.
fn median(v: &mut [i64]) -> i64 {
    if v.is_empty() {
        return 0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable(mid).1
}

/// An integer coding of a chunk's values: predictor `order` with constant `c`, Rice
/// parameter `k`, its size in `bits`, and the zigzagged residuals to write.
struct IntCoding {
    order: u8,
    c: i64,
    k: u32,
    bits: u64,
    us: Vec<u64>,
}

/// Zigzagged residuals of `x[1..]` under predictor `order` with constant `c` (the same
/// values [`Predictor`] produces, computed from the differences `d` of `x` in one loop
/// per order).
fn residuals(order: u8, c: i64, x: &[i64], d: &[i64], out: &mut Vec<u64>) {
    out.clear();
    match order {
        0 => out.extend(x[1..].iter().map(|&v| zigzag(v.wrapping_sub(c)))),
        1 => out.extend(d.iter().map(|&di| zigzag(di.wrapping_sub(c)))),
        _ => {
            // x[i+1] - (x[i] + d[i-1]) = d[i] - d[i-1], with d[-1] = c.
            let prev = std::iter::once(c).chain(d.iter().copied());
            out.extend(
                d.iter()
                    .zip(prev)
                    .map(|(&di, p)| zigzag(di.wrapping_sub(p))),
            );
        }
    }
}

/// The best integer coding of `x` (`None` when empty).
fn best_int_coding(x: &[i64]) -> Option<IntCoding> {
    if x.is_empty() {
        return None;
    }
    let d: Vec<i64> = x.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let mut sel = x.to_vec();
    let c0 = median(&mut sel);
    sel.clear();
    sel.extend_from_slice(&d);
    let c1 = median(&mut sel);
    let candidates = [(0u8, c0), (1, c1), (2, d.first().copied().unwrap_or(0))];
    let mut best: Option<IntCoding> = None;
    let mut us = Vec::with_capacity(d.len());
    for (order, c) in candidates {
        residuals(order, c, x, &d, &mut us);
        let (k, bits) = best_rice(&us);
        let bits = bits + 8 * (crate::chunk::bits::varint_len(zigzag(c)) as u64);
        if best.as_ref().is_none_or(|b| bits < b.bits) {
            let fresh = IntCoding {
                order,
                c,
                k,
                bits,
                us: std::mem::take(&mut us),
            };
            // Reuse the loser's buffer for the next candidate.
            us = best.replace(fresh).map(|b| b.us).unwrap_or_default();
        }
    }
    best
}

/// Encode float samples (timestamps strictly increasing) as encoding 2.
///
/// The value mode is chosen by size before any value stream is written: `XOR`'s size is
/// counted without writing it, and only the winner is written. Raw-bits mode is not tried
/// when decimal mode is exact: a decimal value's quantum `10^-e` is then at least the
/// float's spacing (its integer is below 2^53), so the decimal residuals are no larger.
pub(crate) fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let unit = best_unit(samples.iter().map(|s| s.0));
    let div = UNITS[usize::from(unit)];
    let ts_stream = encode_stream(samples.iter().map(|s| s.0 / div));

    // Candidate 1: XOR, counted.
    let mut xor_bits = BitCount::default();
    let mut xe = XorValues::default();
    for &(_, v) in samples {
        xe.push(&mut xor_bits, v.to_bits());
    }

    // Candidate 2: decimal integers, when every value is one at the chunk's exponent
    // (each value is exact at its own exponent, but the chunk uses the largest, and a
    // value exact as m/10^2 need not be as (m·10^3)/10^5); else raw bit patterns.
    let decimal = decimal_chunk_exp(samples).and_then(|e| {
        let m: Option<Vec<i64>> = samples.iter().map(|&(_, v)| decimal_int(v, e)).collect();
        m.map(|m| (e, m))
    });
    let (int_mode, exp, x) = match decimal {
        Some((e, m)) => (MODE_DECIMAL, Some(e), m),
        None => (
            MODE_BITS,
            None,
            samples.iter().map(|s| s.1.to_bits() as i64).collect(),
        ),
    };
    // The integer coding with its parameters' bytes and seek table, when smaller than XOR.
    let int = best_int_coding(&x)
        .map(|ic| {
            let table = seek_table(ic.order, &x, &ic.us, ic.k);
            let table_bytes = if table.is_empty() {
                0
            } else {
                varint_len(table.len() as u64) + table.len()
            };
            let params = 3 + varint_len(zigzag(x[0])) + table_bytes;
            (ic.bits + 8 * params as u64, ic, table)
        })
        .filter(|&(total, _, _)| total < xor_bits.0);

    let mut params: Vec<u8> = Vec::new();
    let (mode, value_stream) = match int {
        None => {
            let mut w = BitWriter::with_capacity(xor_bits.0.div_ceil(8) as usize);
            let mut xe = XorValues::default();
            for &(_, v) in samples {
                xe.push(&mut w, v.to_bits());
            }
            (MODE_XOR, w.finish())
        }
        Some((total, ic, table)) => {
            if let Some(e) = exp {
                params.push(e as u8);
            }
            params.extend_from_slice(&[ic.order, ic.k as u8]);
            put_varint(&mut params, x[0]);
            put_varint(&mut params, ic.c);
            let mut mode = int_mode;
            if !table.is_empty() {
                mode |= SEEK_FLAG;
                put_uvarint(&mut params, table.len() as u64);
                params.extend_from_slice(&table);
            }
            let mut w = BitWriter::with_capacity(total.div_ceil(8) as usize);
            for u in ic.us {
                write_rice(&mut w, u, ic.k);
            }
            (mode, w.finish())
        }
    };

    let mut out = Vec::with_capacity(16 + params.len() + ts_stream.len() + value_stream.len());
    put_uvarint(&mut out, samples.len() as u64);
    out.push(unit);
    put_varint(&mut out, samples.first().map(|s| s.0 / div).unwrap_or(0));
    out.push(mode);
    out.extend_from_slice(&params);
    put_uvarint(&mut out, ts_stream.len() as u64);
    out.extend_from_slice(&ts_stream);
    out.extend_from_slice(&value_stream);
    out
}

/// The seek table of an integer coding (empty when the chunk has no point): for sample
/// `i = j·SEEK_EVERY` (j ≥ 1) the value stream's bit position of its residual as the
/// difference from the previous point's, then the predictor's state before it: for
/// orders 1 and 2 `x[i-1]` as the difference from the previous point's (from `x[0]` for
/// the first), for order 2 also `x[i-1] - x[i-2]`. Order 0 keeps no state.
fn seek_table(order: u8, x: &[i64], us: &[u64], k: u32) -> Vec<u8> {
    let mut t = Vec::new();
    let (mut from, mut last_prev) = (0usize, x.first().copied().unwrap_or(0));
    // Sample `i`'s residual is `us[i - 1]`; a point's bit position is what the residuals
    // before it take, so each entry is the size of the residuals since the last point.
    for i in (SEEK_EVERY..x.len()).step_by(SEEK_EVERY) {
        put_uvarint(&mut t, rice_bits(&us[from..i - 1], k));
        if order >= 1 {
            put_varint(&mut t, x[i - 1].wrapping_sub(last_prev));
            last_prev = x[i - 1];
        }
        if order >= 2 {
            put_varint(&mut t, x[i - 1].wrapping_sub(x[i - 2]));
        }
        from = i - 1;
    }
    t
}

/// The decimal exponent a chunk of `samples` needs, if every value is a decimal: each
/// value is tried first at the exponent found so far (one test when the chunk's values
/// share a precision) and searched upwards from it otherwise. The caller still checks
/// every value at the result.
fn decimal_chunk_exp(samples: &[(i64, f64)]) -> Option<usize> {
    let mut e = 0usize;
    for &(_, v) in samples {
        if decimal_int(v, e).is_none() {
            e = (e + 1..=MAX_DECIMAL_EXP).find(|&x| decimal_int(v, x).is_some())?;
        }
    }
    Some(e)
}

/// The integer `m` below 2^53 with `v == m / 10^e` exactly (the decoder's arithmetic), if any.
#[inline]
fn decimal_int(v: f64, e: usize) -> Option<i64> {
    let m = (v * POW10[e]).round();
    // Through i64 so -0.0 (which has no integer form) is refused.
    (m.abs() < EXACT_INT && ((m as i64) as f64 / POW10[e]).to_bits() == v.to_bits())
        .then_some(m as i64)
}

#[derive(Debug, Clone)]
enum Values {
    Xor(XorValuesDecoder),
    /// Integers `m` with value `m / scale` (decimal mode) or raw bits (`scale` = None).
    Int {
        scale: Option<f64>,
        k: u32,
        p: Predictor,
        started: bool,
    },
}

/// Iterator over an encoding-2 chunk.
#[derive(Debug, Clone)]
pub(crate) struct PackedIter<'a> {
    tr: BitReader<'a>,
    vr: BitReader<'a>,
    /// The value stream, for seeking into it.
    vstream: &'a [u8],
    /// The seek table (empty when none).
    seek: &'a [u8],
    ts: StreamDecoder,
    vals: Values,
    left: u64,
}

fn corrupt(reason: &'static str) -> Error {
    Error::CorruptChunk {
        encoding: ENCODING,
        reason,
    }
}

/// Where the parts of an encoding-2 chunk lie (see [`layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Start of the value mode byte; before it: count, unit code, first timestamp.
    pub(crate) mode_at: usize,
    /// Start of the timestamp stream's length; before it (from `mode_at`): the value mode
    /// and its parameters.
    pub(crate) ts_len_at: usize,
    /// Start of the value stream; before it (from `ts_len_at`): the timestamp stream's
    /// length and the stream.
    pub(crate) values_at: usize,
}

/// Locate the parts of an encoding-2 chunk, checking its header.
pub(crate) fn layout(bytes: &[u8]) -> Result<Layout> {
    Header::parse(bytes).map(|h| h.layout)
}

/// A parsed encoding-2 header.
struct Header {
    count: u64,
    unit: u8,
    t0: i64,
    vals: Values,
    layout: Layout,
    /// The timestamp stream (`ts_len_at..values_at` without the length).
    ts_start: usize,
    /// The seek table's bytes (empty when the chunk has none).
    seek: std::ops::Range<usize>,
}

impl Header {
    fn parse(bytes: &[u8]) -> Result<Header> {
        let mut pos = 0;
        let count = get_uvarint(bytes, &mut pos).ok_or_else(|| corrupt("bad count"))?;
        let unit = *bytes.get(pos).ok_or_else(|| corrupt("short header"))?;
        pos += 1;
        if unit > 3 {
            return Err(corrupt("bad timestamp unit"));
        }
        let t0 = get_varint(bytes, &mut pos).ok_or_else(|| corrupt("bad first timestamp"))?;
        let mode_at = pos;
        let mode_byte = *bytes.get(pos).ok_or_else(|| corrupt("short header"))?;
        pos += 1;
        let mode = mode_byte & !SEEK_FLAG;
        let mut seek = 0..0;
        let vals = match mode {
            MODE_XOR if mode_byte & SEEK_FLAG != 0 => {
                return Err(corrupt("seek table on an XOR value stream"))
            }
            MODE_XOR => Values::Xor(XorValuesDecoder::default()),
            MODE_DECIMAL | MODE_BITS => {
                let scale = if mode == MODE_DECIMAL {
                    let e = usize::from(*bytes.get(pos).ok_or_else(|| corrupt("short header"))?);
                    pos += 1;
                    Some(
                        *POW10
                            .get(e)
                            .ok_or_else(|| corrupt("bad decimal exponent"))?,
                    )
                } else {
                    None
                };
                let p = bytes
                    .get(pos..pos + 2)
                    .ok_or_else(|| corrupt("short header"))?;
                let (order, k) = (p[0], u32::from(p[1]));
                pos += 2;
                if order > 2 || k > 63 {
                    return Err(corrupt("bad integer parameters"));
                }
                let first =
                    get_varint(bytes, &mut pos).ok_or_else(|| corrupt("bad first value"))?;
                let c = get_varint(bytes, &mut pos).ok_or_else(|| corrupt("bad offset"))?;
                if mode_byte & SEEK_FLAG != 0 {
                    let len = get_uvarint(bytes, &mut pos)
                        .and_then(|l| usize::try_from(l).ok())
                        .ok_or_else(|| corrupt("bad seek table length"))?;
                    let end = pos
                        .checked_add(len)
                        .filter(|&e| e <= bytes.len())
                        .ok_or_else(|| corrupt("short seek table"))?;
                    seek = pos..end;
                    pos = end;
                }
                Values::Int {
                    scale,
                    k,
                    p: Predictor::new(order, c, first),
                    started: false,
                }
            }
            _ => return Err(corrupt("unknown value mode")),
        };
        let ts_len_at = pos;
        let ts_len = get_uvarint(bytes, &mut pos).ok_or_else(|| corrupt("bad stream length"))?;
        let ts_end = usize::try_from(ts_len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| corrupt("short timestamp stream"))?;
        Ok(Header {
            count,
            unit,
            t0,
            vals,
            layout: Layout {
                mode_at,
                ts_len_at,
                values_at: ts_end,
            },
            ts_start: pos,
            seek,
        })
    }
}

impl<'a> PackedIter<'a> {
    /// Parse the header.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        let Header {
            count,
            unit,
            t0,
            vals,
            layout,
            ts_start,
            seek,
        } = Header::parse(bytes)?;
        let tstream = &bytes[ts_start..layout.values_at];
        let vstream = &bytes[layout.values_at..];
        // Every sample after the first takes at least one bit of the value stream; this bounds
        // allocations driven by a corrupt count.
        let room = |s: &[u8]| (s.len() as u64) * 8 + 1;
        if count > room(vstream) {
            return Err(corrupt("count exceeds stream"));
        }
        let mut tr = BitReader::new(tstream);
        Ok(PackedIter {
            vr: BitReader::new(vstream),
            vstream,
            seek: &bytes[seek],
            ts: StreamDecoder::new(&mut tr, t0, unit)
                .ok_or_else(|| corrupt("short timestamp stream"))?,
            tr,
            vals,
            left: count,
        })
    }

    #[inline]
    fn next_value(&mut self) -> Option<u64> {
        match &mut self.vals {
            Values::Xor(d) => d.next(&mut self.vr),
            Values::Int {
                scale,
                k,
                p,
                started,
            } => {
                let x = if *started {
                    let r = unzigzag(read_rice(&mut self.vr, *k)?);
                    let x = p.predict().wrapping_add(r);
                    p.push(x);
                    x
                } else {
                    *started = true;
                    p.prev
                };
                Some(match scale {
                    Some(s) => (x as f64 / *s).to_bits(),
                    None => x as u64,
                })
            }
        }
    }
}

impl PackedIter<'_> {
    /// The last value, decoding the value stream alone: the timestamp stream is never
    /// read, since callers know the last timestamp from the chunk's `maxt`. Instant
    /// queries need only this, and it skips about a third of a full decode.
    pub(crate) fn last_value(mut self) -> Result<Option<f64>> {
        if self.left == 0 {
            return Ok(None);
        }
        let n = usize::try_from(self.left).map_err(|_| corrupt("bad count"))?;
        // From the last seek point when there is one.
        let skip = self.seek_values((n - 1) / SEEK_EVERY)?;
        let bits = match &mut self.vals {
            Values::Xor(d) => {
                let (mut last, mut left) = (0, self.left);
                while left > 0 {
                    let (b, n) = d
                        .next_run(&mut self.vr, left)
                        .ok_or_else(|| corrupt("truncated stream"))?;
                    (last, left) = (b, left - n);
                }
                last
            }
            Values::Int {
                scale,
                k,
                p,
                started,
            } => {
                // Residuals left: all from a seek point, all but the stored first from 0.
                let rest = n - skip - usize::from(!*started);
                let (vr, k, c) = (&mut self.vr, *k, p.c);
                let (mut prev, mut prev_d) = (p.prev, p.prev_d);
                // One batch read per predictor order, so the order's `match` is not paid
                // per sample.
                match p.order {
                    0 => read_rice_each(vr, k, rest, |_, u| prev = c.wrapping_add(unzigzag(u))),
                    1 => read_rice_each(vr, k, rest, |_, u| {
                        prev = prev.wrapping_add(c).wrapping_add(unzigzag(u));
                    }),
                    _ => read_rice_each(vr, k, rest, |_, u| {
                        let x = prev.wrapping_add(prev_d).wrapping_add(unzigzag(u));
                        prev_d = x.wrapping_sub(prev);
                        prev = x;
                    }),
                }
                .ok_or_else(|| corrupt("truncated stream"))?;
                match scale {
                    Some(s) => (prev as f64 / *s).to_bits(),
                    None => prev as u64,
                }
            }
        };
        Ok(Some(f64::from_bits(bits)))
    }

    /// Samples remaining (the header count, bounded by the stream size at parse time).
    pub(crate) fn remaining(&self) -> usize {
        usize::try_from(self.left).unwrap_or(usize::MAX)
    }

    /// Decode all remaining samples into `out` with one tight loop per stream.
    pub(crate) fn decode_into(self, out: &mut Vec<(i64, f64)>) -> Result<()> {
        self.decode_from(i64::MIN, out)
    }

    /// Position the value stream at seek point `j` (1-based; 0 or a chunk without a
    /// table leaves it at the start) before any value is read, and return the index of
    /// the sample it starts at (0 when not moved). A point past the table's end is
    /// corruption (callers ask only for points below the count).
    fn seek_values(&mut self, j: usize) -> Result<usize> {
        let Values::Int { p, started, .. } = &mut self.vals else {
            return Ok(0);
        };
        if j == 0 || self.seek.is_empty() {
            return Ok(0);
        }
        let bad = || corrupt("bad seek table");
        let (mut pos, mut bit, mut prev, mut prev_d) = (0usize, 0u64, p.prev, p.prev_d);
        for _ in 0..j {
            let db = get_uvarint(self.seek, &mut pos).ok_or_else(bad)?;
            bit = bit.checked_add(db).ok_or_else(bad)?;
            if p.order >= 1 {
                prev = prev.wrapping_add(get_varint(self.seek, &mut pos).ok_or_else(bad)?);
            }
            if p.order >= 2 {
                prev_d = get_varint(self.seek, &mut pos).ok_or_else(bad)?;
            }
        }
        let byte = usize::try_from(bit / 8).map_err(|_| bad())?;
        let rest = self.vstream.get(byte..).ok_or_else(bad)?;
        let mut vr = BitReader::new(rest);
        vr.skip((bit % 8) as u32).ok_or_else(bad)?;
        self.vr = vr;
        (p.prev, p.prev_d, *started) = (prev, prev_d, true);
        Ok(j * SEEK_EVERY)
    }

    /// [`decode_into`](Self::decode_into) for a reader that needs only the samples at or
    /// after `mint`: the values before the last seek point at or before the first such
    /// sample are not decoded, and those samples are not returned (some earlier ones may
    /// be; callers clip). Timestamps are decoded in full: their runs are cheap, and they
    /// locate the point.
    pub(crate) fn decode_from(mut self, mint: i64, out: &mut Vec<(i64, f64)>) -> Result<()> {
        let n = usize::try_from(self.left).map_err(|_| corrupt("bad count"))?;
        let start = out.len();
        out.reserve(n);
        self.timestamps_into(n, |t| out.push((t, 0.0)))?;
        let skip = self.seek_for(mint, &out[start..], |s| s.0)?;
        self.values_into(&mut out[start + skip..])?;
        if skip > 0 {
            out.drain(start..start + skip);
        }
        Ok(())
    }

    /// [`decode_from`](Self::decode_from) with the chunk's timestamps already decoded
    /// (`ts`, one per sample, e.g. shared by the series of one block written together):
    /// only the value stream is read, and only from the seek point on.
    pub(crate) fn decode_values_from(
        mut self,
        ts: &[i64],
        mint: i64,
        out: &mut Vec<(i64, f64)>,
    ) -> Result<()> {
        if u64::try_from(ts.len()).ok() != Some(self.left) {
            return Err(corrupt("shared timestamps disagree with the count"));
        }
        let skip = self.seek_for(mint, ts, |&t| t)?;
        let start = out.len();
        out.extend(ts[skip..].iter().map(|&t| (t, 0.0)));
        self.values_into(&mut out[start..])
    }

    /// Every timestamp of the chunk (nanoseconds), the value stream untouched.
    pub(crate) fn timestamps(mut self) -> Result<Vec<i64>> {
        let n = usize::try_from(self.left).map_err(|_| corrupt("bad count"))?;
        let mut v = Vec::with_capacity(n);
        self.timestamps_into(n, |t| v.push(t))?;
        Ok(v)
    }

    /// Decode `n` timestamps, handing each to `emit`.
    #[inline(always)]
    fn timestamps_into(&mut self, n: usize, mut emit: impl FnMut(i64)) -> Result<()> {
        let mut left = n;
        while left > 0 {
            // Runs of on-grid timestamps (most of a regular series) in one tight loop.
            let run = self.ts.take_run(left, &mut emit);
            left -= run;
            if left == 0 {
                break;
            }
            let t = self
                .ts
                .next(&mut self.tr)
                .ok_or_else(|| corrupt("truncated stream"))?;
            emit(t);
            left -= 1;
        }
        Ok(())
    }

    /// Seek the value stream to the point at or before the first of `items` (the
    /// chunk's samples or timestamps, in order) whose timestamp is at or after `mint`;
    /// returns the samples skipped.
    fn seek_for<T>(&mut self, mint: i64, items: &[T], ts: impl Fn(&T) -> i64) -> Result<usize> {
        if self.seek.is_empty() {
            return Ok(0);
        }
        let first = items.partition_point(|x| ts(x) < mint);
        // The point at or before `first`, never past the last sample.
        self.seek_values(first.min(items.len().saturating_sub(1)) / SEEK_EVERY)
    }

    /// Fill the values of `slots`, the samples from where the value stream stands (its
    /// start, or the seek point [`seek_values`](Self::seek_values) moved it to).
    fn values_into(&mut self, slots: &mut [(i64, f64)]) -> Result<()> {
        match &mut self.vals {
            Values::Xor(d) => {
                let mut i = 0;
                while i < slots.len() {
                    let (b, n) = d
                        .next_run(&mut self.vr, (slots.len() - i) as u64)
                        .ok_or_else(|| corrupt("truncated stream"))?;
                    let end = i + n as usize;
                    for s in slots.get_mut(i..end).unwrap_or_default() {
                        s.1 = f64::from_bits(b);
                    }
                    i = end;
                }
            }
            Values::Int {
                scale,
                k,
                p,
                started,
            } => {
                let (k, scale) = (*k, *scale);
                // Sample 0 is stored whole; after a seek every sample is a residual.
                let rest = if !*started {
                    let Some((first, rest)) = slots.split_first_mut() else {
                        return Ok(());
                    };
                    first.1 = match scale {
                        Some(s) => p.prev as f64 / s,
                        None => f64::from_bits(p.prev as u64),
                    };
                    rest
                } else {
                    slots
                };
                // One monomorphized loop per conversion: no per-sample branch on the mode.
                let vr = &mut self.vr;
                match scale {
                    Some(1.0) => int_loop(vr, p, k, rest, |x| x as f64)?,
                    Some(s) => int_loop(vr, p, k, rest, |x| x as f64 / s)?,
                    None => int_loop(vr, p, k, rest, |x| f64::from_bits(x as u64))?,
                }
            }
        }
        Ok(())
    }
}

/// Decode the integer residuals of `out.len()` samples, converting with `conv`: first
/// every residual (parked in its slot's value bits, see [`read_rice_each`]), then one
/// arithmetic pass per predictor order, so the order's `match` is not paid per sample.
#[inline(always)]
fn int_loop(
    vr: &mut BitReader<'_>,
    p: &mut Predictor,
    k: u32,
    out: &mut [(i64, f64)],
    conv: impl Fn(i64) -> f64,
) -> Result<()> {
    read_rice_each(vr, k, out.len(), |i, u| {
        out[i].1 = f64::from_bits(u);
    })
    .ok_or_else(|| corrupt("truncated stream"))?;
    let r = |s: &(i64, f64)| unzigzag(s.1.to_bits());
    let (c, mut prev, mut prev_d) = (p.c, p.prev, p.prev_d);
    match p.order {
        0 => {
            for s in out {
                let x = c.wrapping_add(r(s));
                prev_d = x.wrapping_sub(prev);
                prev = x;
                s.1 = conv(x);
            }
        }
        1 => {
            for s in out {
                let x = prev.wrapping_add(c).wrapping_add(r(s));
                prev_d = x.wrapping_sub(prev);
                prev = x;
                s.1 = conv(x);
            }
        }
        _ => {
            for s in out {
                let x = prev.wrapping_add(prev_d).wrapping_add(r(s));
                prev_d = x.wrapping_sub(prev);
                prev = x;
                s.1 = conv(x);
            }
        }
    }
    (p.prev, p.prev_d) = (prev, prev_d);
    Ok(())
}

impl Iterator for PackedIter<'_> {
    type Item = Result<(i64, f64)>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let t = self.ts.next(&mut self.tr);
        let v = self.next_value();
        match (t, v) {
            (Some(t), Some(v)) => Some(Ok((t, f64::from_bits(v)))),
            _ => {
                self.left = 0;
                Some(Err(corrupt("truncated stream")))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, usize::try_from(self.left).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &[(i64, f64)]) -> Vec<u8> {
        let b = encode(s);
        let back: Vec<(i64, u64)> = PackedIter::new(&b)
            .unwrap()
            .map(|r| r.map(|(t, v)| (t, v.to_bits())))
            .collect::<Result<_>>()
            .unwrap();
        let want: Vec<(i64, u64)> = s.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(back, want);
        b
    }

    /// Series with long runs of one value in `XOR` mode (0/1 gauges, flat full-precision
    /// gauges): the bulk decode and `last_value` take runs of `0` codes a word at a time,
    /// and must agree with the one-sample-at-a-time iterator, runs crossing word and
    /// refill boundaries and ending the chunk included.
    #[test]
    fn xor_runs_decode_like_single_steps() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for case in 0..200 {
            let n = 1 + (next() % 900) as usize;
            let mut v = f64::from_bits(next() >> 2);
            let mut samples = Vec::with_capacity(n);
            while samples.len() < n {
                let run = match next() % 4 {
                    0 => 1,
                    1 => 1 + (next() % 70) as usize,
                    _ => 1 + (next() % 400) as usize,
                };
                for _ in 0..run.min(n - samples.len()) {
                    samples.push((samples.len() as i64 * 1_000, v));
                }
                v = match next() % 5 {
                    0 => f64::NAN,
                    1 => f64::from_bits(gmc_model::STALE_NAN_BITS),
                    2 => f64::from_bits(v.to_bits() ^ (next() & 0xffff)),
                    _ => f64::from_bits(next() >> 2),
                };
            }
            let b = round_trip(&samples);
            assert!(
                matches!(Header::parse(&b).unwrap().vals, Values::Xor(_)),
                "case {case}: not in XOR mode"
            );
            let mut bulk = Vec::new();
            PackedIter::new(&b).unwrap().decode_into(&mut bulk).unwrap();
            let bits =
                |s: &[(i64, f64)]| s.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
            assert_eq!(bits(&bulk), bits(&samples), "case {case}");
            let last = PackedIter::new(&b)
                .unwrap()
                .last_value()
                .unwrap()
                .map(f64::to_bits);
            assert_eq!(last, samples.last().map(|s| s.1.to_bits()), "case {case}");
        }
    }

    #[test]
    fn picks_decimal_mode_for_cents_and_counters() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                (
                    i * 1_000_000_000,
                    (1234.56 + i as f64 * 0.37 * 100.0).round() / 100.0,
                )
            })
            .collect();
        let b = round_trip(&s);
        assert!(b.len() < 120 * 2, "{} bytes", b.len());
        let c: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 1000, 1e6 + (i * 400) as f64))
            .collect();
        round_trip(&c);
    }

    #[test]
    fn special_values_round_trip() {
        let s = vec![
            (1, f64::NAN),
            (2, f64::from_bits(gmc_model::STALE_NAN_BITS)),
            (3, -0.0),
            (4, f64::INFINITY),
            (5, f64::NEG_INFINITY),
            (6, 1.5),
        ];
        round_trip(&s);
        round_trip(&[(7, 42.0)]);
        round_trip(&[]);
    }
}
