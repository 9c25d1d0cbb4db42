//! Encoding 3, `HISTOGRAM`: native histogram chunks. Timestamps use the shared grid-residual
//! bit stream; each histogram is a byte record whose float fields are integer deltas
//! against the previous sample when both are exact integers (counts usually are), else raw.
//! A record that states its schema and zero threshold (flag `F_SAME_SCHEMA` clear) and has
//! the custom-bucket schema (-53) follows them with its bucket bounds: a count, then each
//! bound's eight bytes. Exponential records never carry bounds, so chunks written before
//! custom buckets existed read unchanged.

use std::sync::Arc;

use gmc_model::{CounterResetHint, Histogram, Span};

use super::bits::{get_uvarint, get_varint, put_uvarint, put_varint, BitReader};
use super::timestamps::{best_unit, encode_stream, StreamDecoder, UNITS};
use crate::error::{Error, Result};

/// Encoding byte of this codec.
pub(crate) const ENCODING: u8 = 3;

const F_SAME_SPANS: u8 = 1;
const F_HAS_MIN: u8 = 2;
const F_HAS_MAX: u8 = 4;
const F_SAME_SCHEMA: u8 = 8;
const HINT_SHIFT: u8 = 4;

/// Bytes of the smallest histogram record (see `HistogramIter::new`).
const MIN_RECORD_BYTES: u64 = 4;

const EXACT_INT: f64 = 9_007_199_254_740_992.0;

#[inline]
fn exact_int(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() < EXACT_INT
}

/// A float as an integer delta to `prev` (tag bit 0) or raw bits (varint 1 + 8 bytes).
fn put_f64(out: &mut Vec<u8>, v: f64, prev: f64) {
    if exact_int(v) && exact_int(prev) && !(v == 0.0 && v.is_sign_negative()) {
        let d = (v as i64).wrapping_sub(prev as i64);
        put_uvarint(out, super::bits::zigzag(d) << 1);
    } else {
        out.push(1);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn get_f64(buf: &[u8], pos: &mut usize, prev: f64) -> Option<f64> {
    let x = get_uvarint(buf, pos)?;
    if x & 1 == 0 {
        let d = super::bits::unzigzag(x >> 1);
        Some((prev as i64).wrapping_add(d) as f64)
    } else {
        let b = buf.get(*pos..*pos + 8)?;
        *pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(f64::from_bits(u64::from_le_bytes(a)))
    }
}

fn hint_code(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::Reset => 1,
        CounterResetHint::NotReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn hint_from(c: u8) -> CounterResetHint {
    match c & 3 {
        1 => CounterResetHint::Reset,
        2 => CounterResetHint::NotReset,
        3 => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    }
}

fn put_spans(out: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(out, spans.len() as u64);
    for s in spans {
        put_varint(out, i64::from(s.offset));
        put_uvarint(out, u64::from(s.length));
    }
}

fn get_spans(buf: &[u8], pos: &mut usize) -> Option<Vec<Span>> {
    let n = get_uvarint(buf, pos)?;
    // Each span takes at least two bytes; refuse counts the input cannot hold.
    if n > (buf.len() as u64) / 2 {
        return None;
    }
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let offset = i32::try_from(get_varint(buf, pos)?).ok()?;
        let length = u32::try_from(get_uvarint(buf, pos)?).ok()?;
        v.push(Span { offset, length });
    }
    Some(v)
}

fn put_buckets(out: &mut Vec<u8>, cur: &[f64], prev: Option<&[f64]>) {
    let mut last = 0.0;
    for (i, &c) in cur.iter().enumerate() {
        let base = prev.and_then(|p| p.get(i).copied()).unwrap_or(last);
        put_f64(out, c, base);
        last = c;
    }
}

fn get_buckets(buf: &[u8], pos: &mut usize, n: usize, prev: Option<&[f64]>) -> Option<Vec<f64>> {
    if n > buf.len() {
        return None;
    }
    let mut v = Vec::with_capacity(n);
    let mut last = 0.0;
    for i in 0..n {
        let base = prev.and_then(|p| p.get(i).copied()).unwrap_or(last);
        let c = get_f64(buf, pos, base)?;
        v.push(c);
        last = c;
    }
    Some(v)
}

fn span_total(spans: &[Span]) -> Option<usize> {
    spans
        .iter()
        .try_fold(0usize, |a, s| a.checked_add(s.length as usize))
}

/// Bit-exact equality of two bound lists (`-0.0` and `0.0` are different bounds to
/// store, though they compare equal).
fn same_bounds(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn get_bounds(buf: &[u8], pos: &mut usize) -> Option<Vec<f64>> {
    let n = usize::try_from(get_uvarint(buf, pos)?).ok()?;
    // Refuse counts the input cannot hold.
    if n > buf.len().saturating_sub(*pos) / 8 {
        return None;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let b = buf.get(*pos..*pos + 8)?;
        *pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        v.push(f64::from_bits(u64::from_le_bytes(a)));
    }
    Some(v)
}

/// Encode histogram samples (timestamps strictly increasing) as encoding 3.
pub(crate) fn encode(samples: &[(i64, &Histogram)]) -> Vec<u8> {
    let unit = best_unit(samples.iter().map(|s| s.0));
    let div = UNITS[usize::from(unit)];
    let mut body = Vec::new();
    let mut prev: Option<&Histogram> = None;
    for &(_, h) in samples {
        let same_spans = prev.is_some_and(|p| {
            p.positive_spans == h.positive_spans && p.negative_spans == h.negative_spans
        });
        let same_schema = prev.is_some_and(|p| {
            p.schema == h.schema
                && p.zero_threshold.to_bits() == h.zero_threshold.to_bits()
                && same_bounds(&p.custom_values, &h.custom_values)
        });
        let mut flags = hint_code(h.reset_hint) << HINT_SHIFT;
        if same_spans {
            flags |= F_SAME_SPANS;
        }
        if same_schema {
            flags |= F_SAME_SCHEMA;
        }
        if h.min.is_some() {
            flags |= F_HAS_MIN;
        }
        if h.max.is_some() {
            flags |= F_HAS_MAX;
        }
        body.push(flags);
        if !same_schema {
            put_varint(&mut body, i64::from(h.schema));
            body.extend_from_slice(&h.zero_threshold.to_bits().to_le_bytes());
            if h.uses_custom_buckets() {
                put_uvarint(&mut body, h.custom_values.len() as u64);
                for b in &h.custom_values {
                    body.extend_from_slice(&b.to_bits().to_le_bytes());
                }
            }
        }
        let p = |f: fn(&Histogram) -> f64| prev.map(f).unwrap_or(0.0);
        put_f64(&mut body, h.zero_count, p(|x| x.zero_count));
        put_f64(&mut body, h.count, p(|x| x.count));
        put_f64(&mut body, h.sum, p(|x| x.sum));
        if let Some(m) = h.min {
            put_f64(&mut body, m, prev.and_then(|x| x.min).unwrap_or(0.0));
        }
        if let Some(m) = h.max {
            put_f64(&mut body, m, prev.and_then(|x| x.max).unwrap_or(0.0));
        }
        if !same_spans {
            put_spans(&mut body, &h.positive_spans);
            put_spans(&mut body, &h.negative_spans);
        }
        let pp = prev.filter(|_| same_spans);
        put_buckets(
            &mut body,
            &h.positive_buckets,
            pp.map(|x| x.positive_buckets.as_slice()),
        );
        put_buckets(
            &mut body,
            &h.negative_buckets,
            pp.map(|x| x.negative_buckets.as_slice()),
        );
        prev = Some(h);
    }
    let ts_stream = encode_stream(samples.iter().map(|s| s.0 / div));
    let mut out = Vec::with_capacity(16 + ts_stream.len() + body.len());
    put_uvarint(&mut out, samples.len() as u64);
    out.push(unit);
    put_varint(&mut out, samples.first().map(|s| s.0 / div).unwrap_or(0));
    put_uvarint(&mut out, ts_stream.len() as u64);
    out.extend_from_slice(&ts_stream);
    out.extend_from_slice(&body);
    out
}

/// Iterator over an encoding-3 chunk.
#[derive(Debug, Clone)]
pub(crate) struct HistogramIter<'a> {
    tr: BitReader<'a>,
    ts: StreamDecoder,
    body: &'a [u8],
    pos: usize,
    prev: Option<Arc<Histogram>>,
    left: u64,
}

fn corrupt(reason: &'static str) -> Error {
    Error::CorruptChunk {
        encoding: ENCODING,
        reason,
    }
}

impl<'a> HistogramIter<'a> {
    /// Parse the header.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        let mut pos = 0;
        let count = get_uvarint(bytes, &mut pos).ok_or_else(|| corrupt("bad count"))?;
        let unit = *bytes.get(pos).ok_or_else(|| corrupt("short header"))?;
        pos += 1;
        if unit > 3 {
            return Err(corrupt("bad timestamp unit"));
        }
        let t0 = get_varint(bytes, &mut pos).ok_or_else(|| corrupt("bad first timestamp"))?;
        let ts_len = get_uvarint(bytes, &mut pos).ok_or_else(|| corrupt("bad stream length"))?;
        let ts_end = usize::try_from(ts_len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .ok_or_else(|| corrupt("bad stream length"))?;
        let tstream = bytes
            .get(pos..ts_end)
            .ok_or_else(|| corrupt("short stream"))?;
        let body = bytes.get(ts_end..).ok_or_else(|| corrupt("short body"))?;
        // Refuse counts the body cannot hold (so a corrupt header cannot make a reader
        // loop or over-allocate). The smallest record is four bytes: flags, then one-byte
        // zero-count, count and sum deltas, when schema and spans repeat and there are no
        // buckets; the bound must not be tighter or valid chunks are refused.
        if count > body.len() as u64 / MIN_RECORD_BYTES {
            return Err(corrupt("count exceeds body"));
        }
        let mut tr = BitReader::new(tstream);
        Ok(HistogramIter {
            ts: StreamDecoder::new(&mut tr, t0, unit).ok_or_else(|| corrupt("short stream"))?,
            tr,
            body,
            pos: 0,
            prev: None,
            left: count,
        })
    }

    /// Samples remaining (the header count, bounded by the body size at parse time).
    pub(crate) fn remaining(&self) -> usize {
        usize::try_from(self.left).unwrap_or(usize::MAX)
    }

    fn next_hist(&mut self) -> Option<Histogram> {
        let buf = self.body;
        let pos = &mut self.pos;
        let flags = *buf.get(*pos)?;
        *pos += 1;
        let prev = self.prev.as_deref();
        let (schema, zero_threshold, custom_values) = if flags & F_SAME_SCHEMA != 0 {
            let p = prev?;
            (p.schema, p.zero_threshold, p.custom_values.clone())
        } else {
            let s = i32::try_from(get_varint(buf, pos)?).ok()?;
            let b = buf.get(*pos..*pos + 8)?;
            *pos += 8;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let bounds = if s == Histogram::CUSTOM_BUCKETS_SCHEMA {
                get_bounds(buf, pos)?
            } else {
                Vec::new()
            };
            (s, f64::from_bits(u64::from_le_bytes(a)), bounds)
        };
        let p = |f: fn(&Histogram) -> f64| prev.map(f).unwrap_or(0.0);
        let zero_count = get_f64(buf, pos, p(|x| x.zero_count))?;
        let count = get_f64(buf, pos, p(|x| x.count))?;
        let sum = get_f64(buf, pos, p(|x| x.sum))?;
        let min = if flags & F_HAS_MIN != 0 {
            Some(get_f64(buf, pos, prev.and_then(|x| x.min).unwrap_or(0.0))?)
        } else {
            None
        };
        let max = if flags & F_HAS_MAX != 0 {
            Some(get_f64(buf, pos, prev.and_then(|x| x.max).unwrap_or(0.0))?)
        } else {
            None
        };
        let same_spans = flags & F_SAME_SPANS != 0;
        let (positive_spans, negative_spans) = if same_spans {
            let p = prev?;
            (p.positive_spans.clone(), p.negative_spans.clone())
        } else {
            (get_spans(buf, pos)?, get_spans(buf, pos)?)
        };
        let pp = prev.filter(|_| same_spans);
        let positive_buckets = get_buckets(
            buf,
            pos,
            span_total(&positive_spans)?,
            pp.map(|x| x.positive_buckets.as_slice()),
        )?;
        let negative_buckets = get_buckets(
            buf,
            pos,
            span_total(&negative_spans)?,
            pp.map(|x| x.negative_buckets.as_slice()),
        )?;
        Some(Histogram {
            schema,
            zero_threshold,
            zero_count,
            count,
            sum,
            positive_spans,
            positive_buckets,
            negative_spans,
            negative_buckets,
            min,
            max,
            reset_hint: hint_from(flags >> HINT_SHIFT),
            custom_values,
        })
    }
}

impl Iterator for HistogramIter<'_> {
    type Item = Result<(i64, Arc<Histogram>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let t = self.ts.next(&mut self.tr);
        let h = self.next_hist();
        match (t, h) {
            (Some(t), Some(h)) => {
                let h = Arc::new(h);
                self.prev = Some(Arc::clone(&h));
                Some(Ok((t, h)))
            }
            _ => {
                self.left = 0;
                Some(Err(corrupt("truncated or malformed histogram")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(i: u32) -> Histogram {
        Histogram {
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: f64::from(i),
            count: f64::from(10 * i + 3),
            sum: 12.5 * f64::from(i) + 0.1,
            positive_spans: vec![
                Span {
                    offset: -2,
                    length: 2,
                },
                Span {
                    offset: 1,
                    length: 1,
                },
            ],
            positive_buckets: vec![f64::from(i), 2.0 * f64::from(i), 0.5],
            negative_spans: if i.is_multiple_of(3) {
                vec![]
            } else {
                vec![Span {
                    offset: 0,
                    length: 1,
                }]
            },
            negative_buckets: if i.is_multiple_of(3) {
                vec![]
            } else {
                vec![-0.0]
            },
            min: i.is_multiple_of(2).then_some(0.25),
            max: Some(1e9 + f64::from(i)),
            reset_hint: hint_from((i % 4) as u8),
            custom_values: Vec::new(),
        }
    }

    #[test]
    fn custom_bounds_are_stated_when_they_change_and_shared_when_they_repeat() {
        let nhcb = |bounds: &[f64], n: f64| Histogram {
            schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
            count: n,
            positive_spans: vec![Span {
                offset: 1,
                length: 1,
            }],
            positive_buckets: vec![n],
            custom_values: bounds.to_vec(),
            ..Histogram::default()
        };
        let hs = [
            nhcb(&[0.5, 1.0], 1.0),
            nhcb(&[0.5, 1.0], 2.0),
            nhcb(&[0.5, 2.0], 3.0),
            hist(4),
            nhcb(&[-0.0, 1.0], 5.0),
        ];
        let samples: Vec<(i64, &Histogram)> = hs
            .iter()
            .enumerate()
            .map(|(i, h)| (i as i64 * 1000, h))
            .collect();
        let bytes = encode(&samples);
        let back: Vec<_> = HistogramIter::new(&bytes)
            .unwrap()
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(back.len(), hs.len());
        for (b, h) in back.iter().zip(&hs) {
            assert_eq!(b.as_ref(), h);
            assert_eq!(b.custom_values.len(), h.custom_values.len());
        }
        assert!(back[4].custom_values[0].is_sign_negative());
        // The repeated bounds cost nothing: two records with equal bounds are smaller
        // than two with different ones.
        let same = encode(&[(0, &hs[0]), (1000, &hs[1])]);
        let differ = encode(&[(0, &hs[1]), (1000, &hs[2])]);
        assert!(
            same.len() + 16 < differ.len(),
            "{} vs {}",
            same.len(),
            differ.len()
        );
    }

    #[test]
    fn repeated_bucketless_histograms_round_trip() {
        // Four-byte records: these chunks were refused as "count exceeds body".
        let h = Histogram {
            zero_count: 2.0,
            count: 2.0,
            ..Histogram::default()
        };
        for n in [1usize, 2, 5, 120, 121, 3000] {
            let samples: Vec<(i64, &Histogram)> =
                (0..n).map(|i| (i as i64 * 1_000_000_000, &h)).collect();
            let b = encode(&samples);
            let back: Vec<(i64, Arc<Histogram>)> = HistogramIter::new(&b)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(back.len(), n);
            assert!(back.iter().all(|(_, x)| **x == h));
        }
    }

    #[test]
    fn histograms_round_trip() {
        let hs: Vec<Histogram> = (0..50).map(hist).collect();
        let samples: Vec<(i64, &Histogram)> = hs
            .iter()
            .enumerate()
            .map(|(i, h)| (i as i64 * 15_000_000_000, h))
            .collect();
        let b = encode(&samples);
        let back: Vec<(i64, Arc<Histogram>)> = HistogramIter::new(&b)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(back.len(), hs.len());
        for ((t, h), (t2, h2)) in samples.iter().zip(&back) {
            assert_eq!(t, t2);
            assert_eq!(format!("{h:?}"), format!("{:?}", **h2));
        }
    }
}
