//! Encoding 1, `XOR`: the appendable head-chunk codec. Timestamps use the grid-residual
//! code of `timestamps.rs`, values Gorilla XOR with a reusable leading/trailing window.
//! One interleaved bit stream, so a sample can be appended in O(1).

use super::bits::{get_varint, put_varint, BitReader, BitSink, BitWriter};
use super::timestamps::{best_unit, fits_unit, TsDecoder, TsEncoder, UNITS};
use crate::error::{Error, Result};

/// Encoding byte of this codec.
pub(crate) const ENCODING: u8 = 1;

/// Gorilla XOR value encoder state.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XorValues {
    prev: u64,
    leading: u32,
    trailing: u32,
    started: bool,
}

impl XorValues {
    /// Encode the next value's bits (or, into a `BitCount`, only count them).
    #[inline]
    pub(crate) fn push<S: BitSink>(&mut self, w: &mut S, bits: u64) {
        if !self.started {
            w.put(bits, 64);
            self.prev = bits;
            self.started = true;
            // An impossible window forces the first non-zero XOR to declare one.
            self.leading = u32::MAX;
            return;
        }
        let x = bits ^ self.prev;
        self.prev = bits;
        if x == 0 {
            w.put(0, 1);
            return;
        }
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        if self.leading != u32::MAX && lead >= self.leading && trail >= self.trailing {
            w.put(0b10, 2);
            let sig = 64 - self.leading - self.trailing;
            w.put(x >> self.trailing, sig);
        } else {
            let sig = 64 - lead - trail;
            w.put(0b11, 2);
            w.put(u64::from(lead), 5);
            // 64 significant bits is written as 0: 6 bits cannot hold 64.
            w.put(u64::from(sig & 63), 6);
            w.put(x >> trail, sig);
            self.leading = lead;
            self.trailing = trail;
        }
    }
}

/// Gorilla XOR value decoder state.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XorValuesDecoder {
    prev: u64,
    leading: u32,
    trailing: u32,
    started: bool,
}

impl XorValuesDecoder {
    /// Decode the next value's bits.
    #[inline]
    pub(crate) fn next(&mut self, r: &mut BitReader<'_>) -> Option<u64> {
        self.next_code(r).map(|(v, _)| v)
    }

    /// Decode the next value and the run of repeats that follows it, at most `max`
    /// values in all (`max` ≥ 1): `(bits, count)`. A repeat is a `0` code, and once one
    /// is read the rest of its run is taken a word at a time (flat series: 0/1 gauges).
    #[inline]
    pub(crate) fn next_run(&mut self, r: &mut BitReader<'_>, max: u64) -> Option<(u64, u64)> {
        let (v, repeat) = self.next_code(r)?;
        let more = if repeat {
            r.take_zeros(max.saturating_sub(1))
        } else {
            0
        };
        Some((v, 1 + more))
    }

    /// The next value's bits, and whether its code was a repeat (`0`).
    #[inline]
    fn next_code(&mut self, r: &mut BitReader<'_>) -> Option<(u64, bool)> {
        if !self.started {
            self.prev = r.read(64)?;
            self.started = true;
            return Some((self.prev, false));
        }
        // A repeat, or a value inside the previous window: most values of a series.
        match r.xor_common(64 - self.leading - self.trailing) {
            Some(None) => return Some((self.prev, true)),
            Some(Some(x)) => {
                self.prev ^= x << self.trailing;
                return Some((self.prev, false));
            }
            None => {}
        }
        if !r.bit()? {
            return Some((self.prev, true));
        }
        if r.bit()? {
            self.leading = r.read(5)? as u32;
            let mut sig = r.read(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            if self.leading + sig > 64 {
                return None;
            }
            self.trailing = 64 - self.leading - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        let x = r.read(sig)?;
        self.prev ^= x.checked_shl(self.trailing).unwrap_or(0);
        Some((self.prev, false))
    }
}

/// An appendable float chunk (encoding 1).
#[derive(Debug, Clone)]
pub struct XorAppender {
    w: BitWriter,
    ts: TsEncoder,
    vals: XorValues,
    count: u16,
    unit: u8,
    t0: i64,
    last_ts: i64,
}

impl XorAppender {
    /// An empty chunk; the timestamp unit is chosen by the first sample.
    pub fn new() -> Self {
        XorAppender {
            w: BitWriter::new(),
            ts: TsEncoder::default(),
            vals: XorValues::default(),
            count: 0,
            unit: 3,
            t0: 0,
            last_ts: i64::MIN,
        }
    }

    /// An empty chunk with room for `bytes` bytes of samples (a series' previous chunk
    /// tells how many its next one needs: the appender then never regrows).
    pub fn with_capacity(bytes: usize) -> Self {
        XorAppender {
            w: BitWriter::with_capacity(bytes),
            ..Self::new()
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Timestamp of the first sample (ns), if any.
    pub fn first_ts(&self) -> Option<i64> {
        (self.count > 0).then(|| self.t0.wrapping_mul(UNITS[usize::from(self.unit)]))
    }

    /// Timestamp of the last sample (ns), if any.
    pub fn last_ts(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last_ts)
    }

    /// Append a sample; the caller keeps timestamps increasing and below 65,535 samples.
    /// A timestamp not divisible by the current unit re-encodes the chunk with a finer one.
    pub fn append(&mut self, ts_nanos: i64, value: f64) {
        if self.count == 0 {
            self.unit = best_unit([ts_nanos]);
            self.t0 = ts_nanos / UNITS[usize::from(self.unit)];
        } else if !fits_unit(ts_nanos, self.unit) {
            self.reencode_for(ts_nanos);
        }
        let t = ts_nanos / UNITS[usize::from(self.unit)];
        self.ts.push(&mut self.w, t);
        self.vals.push(&mut self.w, value.to_bits());
        self.count = self.count.saturating_add(1);
        self.last_ts = ts_nanos;
    }

    fn reencode_for(&mut self, ts_nanos: i64) {
        // Our own bytes always decode; start over rather than panic if they do not.
        let samples: Vec<(i64, f64)> = decode(&self.bytes()).unwrap_or_default();
        let unit = best_unit(samples.iter().map(|s| s.0).chain([ts_nanos]));
        let mut fresh = XorAppender::new();
        fresh.unit = unit;
        for (i, (t, v)) in samples.into_iter().enumerate() {
            if i == 0 {
                fresh.t0 = t / UNITS[usize::from(unit)];
            }
            let tu = t / UNITS[usize::from(unit)];
            fresh.ts.push(&mut fresh.w, tu);
            fresh.vals.push(&mut fresh.w, v.to_bits());
            fresh.count += 1;
            fresh.last_ts = t;
        }
        *self = fresh;
    }

    /// The chunk bytes as they stand (header + stream; the appender is unchanged).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.w.len_bits() / 8 + 1);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.push(self.unit);
        put_varint(&mut out, self.t0);
        self.w.snapshot_into(&mut out);
        out
    }

    /// Approximate heap bytes held.
    pub fn size_bytes(&self) -> usize {
        self.w.len_bits() / 8 + 16
    }
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

/// Iterator over an encoding-1 chunk.
#[derive(Debug, Clone)]
pub(crate) struct XorIter<'a> {
    r: BitReader<'a>,
    ts: TsDecoder,
    vals: XorValuesDecoder,
    left: u16,
}

impl<'a> XorIter<'a> {
    /// Parse the header.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        let corrupt = |reason| Error::CorruptChunk {
            encoding: ENCODING,
            reason,
        };
        let count = bytes
            .get(..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| corrupt("short header"))?;
        let unit = *bytes.get(2).ok_or_else(|| corrupt("short header"))?;
        if unit > 3 {
            return Err(corrupt("bad timestamp unit"));
        }
        let mut pos = 3;
        let t0 = get_varint(bytes, &mut pos).ok_or_else(|| corrupt("bad first timestamp"))?;
        let stream = bytes.get(pos..).ok_or_else(|| corrupt("short header"))?;
        Ok(XorIter {
            r: BitReader::new(stream),
            ts: TsDecoder::new(t0, unit),
            vals: XorValuesDecoder::default(),
            left: count,
        })
    }

    /// Samples remaining.
    pub(crate) fn remaining(&self) -> usize {
        usize::from(self.left)
    }
}

impl Iterator for XorIter<'_> {
    type Item = Result<(i64, f64)>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let s = self
            .ts
            .next(&mut self.r)
            .and_then(|t| Some((t, f64::from_bits(self.vals.next(&mut self.r)?))));
        match s {
            Some(s) => Some(Ok(s)),
            None => {
                self.left = 0;
                Some(Err(Error::CorruptChunk {
                    encoding: ENCODING,
                    reason: "truncated stream",
                }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// Decode a whole encoding-1 chunk.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>> {
    let it = XorIter::new(bytes)?;
    let mut out = Vec::with_capacity(it.remaining().min(4096));
    for s in it {
        out.push(s?);
    }
    Ok(out)
}
