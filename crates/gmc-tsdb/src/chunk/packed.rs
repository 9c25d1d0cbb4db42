//! Encoding 2, `PACKED`: the closed-chunk float codec, written once when a head chunk is
//! cut or a block is written. Timestamps use the grid-residual code; values use whichever
//! of three modes is smallest for this chunk: Gorilla XOR, decimal integers (value =
//! m / 10^e exactly) with Rice-coded first or second differences, or Rice-coded
//! differences of the raw IEEE bit patterns (full-precision gauges).

use super::bits::{
    get_uvarint, get_varint, mask, put_uvarint, put_varint, unzigzag, zigzag, BitReader,
    BitWriter,
};
use super::timestamps::{best_unit, TsDecoder, TsEncoder, UNITS};
use super::xor::{XorValues, XorValuesDecoder};
use crate::error::{Error, Result};

/// Encoding byte of this codec.
pub(crate) const ENCODING: u8 = 2;

const MODE_XOR: u8 = 0;
const MODE_DECIMAL: u8 = 1;
const MODE_BITS_DELTA: u8 = 2;

/// Unary quotients of this length or more escape to a raw 64-bit value.
const RICE_ESCAPE: u32 = 24;
/// Largest decimal exponent tried.
const MAX_DECIMAL_EXP: usize = 15;
/// 2^53: integers below this magnitude are exact in an f64.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

const POW10: [f64; MAX_DECIMAL_EXP + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

#[inline]
fn rice_cost(u: u64, k: u32) -> u64 {
    let q = u >> k;
    if q >= u64::from(RICE_ESCAPE) {
        u64::from(RICE_ESCAPE) + 64
    } else {
        q + 1 + u64::from(k)
    }
}

/// Best Rice parameter for `us` and the resulting bit count.
fn best_rice(us: &[u64]) -> (u32, u64) {
    if us.is_empty() {
        return (0, 0);
    }
    let mean = us.iter().fold(0u128, |a, &u| a + u128::from(u)) / us.len() as u128;
    let guess = 64 - (mean as u64).leading_zeros();
    let lo = guess.saturating_sub(3);
    let hi = (guess + 2).min(63);
    (lo..=hi)
        .map(|k| (k, us.iter().map(|&u| rice_cost(u, k)).sum::<u64>()))
        .min_by_key(|&(_, c)| c)
        .unwrap_or((0, 0))
}

#[inline]
fn write_rice(w: &mut BitWriter, u: u64, k: u32) {
    let q = u >> k;
    if q >= u64::from(RICE_ESCAPE) {
        w.write(mask(RICE_ESCAPE), RICE_ESCAPE);
        w.write(u, 64);
    } else {
        // q ones and a terminating zero.
        w.write(mask(q as u32) << 1, q as u32 + 1);
        w.write(u & mask(k), k);
    }
}

#[inline]
fn read_rice(r: &mut BitReader<'_>, k: u32) -> Option<u64> {
    let q = r.peek_ones(RICE_ESCAPE);
    if q >= RICE_ESCAPE {
        r.skip(RICE_ESCAPE)?;
        return r.read(64);
    }
    r.skip(q + 1)?;
    let low = r.read(k)?;
    Some((u64::from(q) << k) | low)
}

/// Smallest exponent `e` with `v == m / 10^e` exactly for an integer `m`, if any.
#[inline]
fn decimal_exp(v: f64) -> Option<usize> {
    (0..=MAX_DECIMAL_EXP).find(|&e| {
        let m = (v * POW10[e]).round();
        m.abs() < EXACT_INT && (m / POW10[e]).to_bits() == v.to_bits()
    })
}

/// Zigzagged first (order 1) or second (order 2) differences of `m`, from index 1 on.
fn residuals(m: &[i64], order: u8) -> Vec<u64> {
    let mut out = Vec::with_capacity(m.len());
    let mut prev_d = 0i64;
    for i in 1..m.len() {
        let d = m[i].wrapping_sub(m[i - 1]);
        let r = if order == 2 && i >= 2 {
            d.wrapping_sub(prev_d)
        } else {
            d
        };
        prev_d = d;
        out.push(zigzag(r));
    }
    out
}

/// Encode float samples (timestamps strictly increasing) as encoding 2.
pub(crate) fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let unit = best_unit(samples.iter().map(|s| s.0));
    let div = UNITS[usize::from(unit)];
    let mut tw = BitWriter::new();
    let mut te = TsEncoder::default();
    for &(t, _) in samples {
        te.push(&mut tw, t / div);
    }
    let ts_stream = tw.finish();

    // Candidate 1: XOR.
    let mut xw = BitWriter::new();
    let mut xe = XorValues::default();
    for &(_, v) in samples {
        xe.push(&mut xw, v.to_bits());
    }
    let mut best_bits = xw.len_bits() as u64;
    let mut mode = MODE_XOR;
    let mut params: Vec<u8> = Vec::new();
    let mut rice: Option<(Vec<u64>, u32)> = None;

    // Candidate 2: decimal integers.
    let exp = samples
        .iter()
        .try_fold(0usize, |acc, &(_, v)| decimal_exp(v).map(|e| acc.max(e)));
    if let (Some(e), Some(first)) = (exp, samples.first()) {
        let m: Vec<i64> = samples
            .iter()
            .map(|&(_, v)| (v * POW10[e]).round() as i64)
            .collect();
        for order in [1u8, 2] {
            let us = residuals(&m, order);
            let (k, bits) = best_rice(&us);
            // Header bytes count too: exponent, order, k and the first value.
            let total = bits + 8 * 4;
            if total < best_bits {
                best_bits = total;
                mode = MODE_DECIMAL;
                params.clear();
                params.extend_from_slice(&[e as u8, order, k as u8]);
                put_varint(&mut params, (first.1 * POW10[e]).round() as i64);
                rice = Some((us, k));
            }
        }
    }

    // Candidate 3: raw bit-pattern differences.
    if let Some(first) = samples.first() {
        let bits: Vec<i64> = samples.iter().map(|s| s.1.to_bits() as i64).collect();
        let us = residuals(&bits, 1);
        let (k, cost) = best_rice(&us);
        let total = cost + 8 * 9;
        if total < best_bits {
            mode = MODE_BITS_DELTA;
            params.clear();
            params.push(k as u8);
            params.extend_from_slice(&first.1.to_bits().to_le_bytes());
            rice = Some((us, k));
        }
    }

    let value_stream = match (mode, rice) {
        (MODE_XOR, _) | (_, None) => {
            mode = MODE_XOR;
            params.clear();
            xw.finish()
        }
        (_, Some((us, k))) => {
            let mut w = BitWriter::new();
            for u in us {
                write_rice(&mut w, u, k);
            }
            w.finish()
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

#[derive(Debug, Clone)]
enum Values {
    Xor(XorValuesDecoder),
    Decimal {
        scale: f64,
        order: u8,
        k: u32,
        m: i64,
        d: i64,
        i: u32,
    },
    BitsDelta {
        k: u32,
        bits: i64,
        i: u32,
    },
}

/// Iterator over an encoding-2 chunk.
#[derive(Debug, Clone)]
pub(crate) struct PackedIter<'a> {
    tr: BitReader<'a>,
    vr: BitReader<'a>,
    ts: TsDecoder,
    vals: Values,
    left: u64,
}

fn corrupt(reason: &'static str) -> Error {
    Error::CorruptChunk {
        encoding: ENCODING,
        reason,
    }
}

impl<'a> PackedIter<'a> {
    /// Parse the header.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        let mut pos = 0;
        let count = get_uvarint(bytes, &mut pos).ok_or(corrupt("bad count"))?;
        let unit = *bytes.get(pos).ok_or(corrupt("short header"))?;
        pos += 1;
        if unit > 3 {
            return Err(corrupt("bad timestamp unit"));
        }
        let t0 = get_varint(bytes, &mut pos).ok_or(corrupt("bad first timestamp"))?;
        let mode = *bytes.get(pos).ok_or(corrupt("short header"))?;
        pos += 1;
        let vals = match mode {
            MODE_XOR => Values::Xor(XorValuesDecoder::default()),
            MODE_DECIMAL => {
                let p = bytes.get(pos..pos + 3).ok_or(corrupt("short header"))?;
                let (e, order, k) = (usize::from(p[0]), p[1], u32::from(p[2]));
                pos += 3;
                if e > MAX_DECIMAL_EXP || !(1..=2).contains(&order) || k > 63 {
                    return Err(corrupt("bad decimal parameters"));
                }
                let m = get_varint(bytes, &mut pos).ok_or(corrupt("bad first value"))?;
                Values::Decimal {
                    scale: POW10[e],
                    order,
                    k,
                    m,
                    d: 0,
                    i: 0,
                }
            }
            MODE_BITS_DELTA => {
                let p = bytes.get(pos..pos + 9).ok_or(corrupt("short header"))?;
                let k = u32::from(p[0]);
                if k > 63 {
                    return Err(corrupt("bad rice parameter"));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&p[1..9]);
                pos += 9;
                Values::BitsDelta {
                    k,
                    bits: u64::from_le_bytes(b) as i64,
                    i: 0,
                }
            }
            _ => return Err(corrupt("unknown value mode")),
        };
        let ts_len = get_uvarint(bytes, &mut pos).ok_or(corrupt("bad stream length"))?;
        let ts_end = usize::try_from(ts_len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .ok_or(corrupt("bad stream length"))?;
        let tstream = bytes.get(pos..ts_end).ok_or(corrupt("short timestamp stream"))?;
        let vstream = bytes.get(ts_end..).ok_or(corrupt("short value stream"))?;
        Ok(PackedIter {
            tr: BitReader::new(tstream),
            vr: BitReader::new(vstream),
            ts: TsDecoder::new(t0, unit),
            vals,
            left: count,
        })
    }

    #[inline]
    fn next_value(&mut self) -> Option<u64> {
        match &mut self.vals {
            Values::Xor(d) => d.next(&mut self.vr),
            Values::Decimal {
                scale,
                order,
                k,
                m,
                d,
                i,
                ..
            } => {
                if *i > 0 {
                    let r = unzigzag(read_rice(&mut self.vr, *k)?);
                    let delta = if *order == 2 && *i >= 2 {
                        d.wrapping_add(r)
                    } else {
                        r
                    };
                    *d = delta;
                    *m = m.wrapping_add(delta);
                }
                *i = i.saturating_add(1);
                Some((*m as f64 / *scale).to_bits())
            }
            Values::BitsDelta { k, bits, i } => {
                if *i > 0 {
                    let r = unzigzag(read_rice(&mut self.vr, *k)?);
                    *bits = bits.wrapping_add(r);
                }
                *i = i.saturating_add(1);
                Some(*bits as u64)
            }
        }
    }
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

    #[test]
    fn picks_decimal_mode_for_cents_and_counters() {
        let s: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 1_000_000_000, (1234.56 + i as f64 * 0.37 * 100.0).round() / 100.0))
            .collect();
        let b = round_trip(&s);
        assert!(b.len() < 120 * 2, "{} bytes", b.len());
        let c: Vec<(i64, f64)> = (0..120).map(|i| (i * 1000, 1e6 + (i * 400) as f64)).collect();
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
