//! Timestamp coding shared by all chunk encodings: timestamps are divided by a per-chunk
//! unit (1 ns, 1 µs, 1 ms or 1 s), then each is coded as its residual from a jitter-free
//! grid prediction, so ms-granular nanosecond timestamps cost what ms ones cost and a
//! ±1 ms scrape jitter costs a few bits once instead of three times (as delta-of-delta would).

use super::bits::{mask, BitReader, BitWriter};

/// Unit codes and their size in nanoseconds; the code is stored in chunk headers.
pub(crate) const UNITS: [i64; 4] = [1, 1_000, 1_000_000, 1_000_000_000];

/// Largest unit code dividing every timestamp in `ts`.
pub(crate) fn best_unit(ts: impl IntoIterator<Item = i64>) -> u8 {
    let mut code = 3u8;
    for t in ts {
        while code > 0 && t % UNITS[code as usize] != 0 {
            code -= 1;
        }
        if code == 0 {
            break;
        }
    }
    code
}

/// Whether `t` is a multiple of unit `code`.
#[inline]
pub(crate) fn fits_unit(t: i64, code: u8) -> bool {
    t % UNITS[usize::from(code & 3)] == 0
}

/// Residuals up to this fraction of the step keep the grid (treated as jitter).
#[inline]
fn tolerance(step: i64) -> u64 {
    step.unsigned_abs() >> 4
}

/// The step to predict with after observing delta `d`: `d` snapped to the roundest
/// multiple of a power of ten within 1/64 of it, so a jittered first delta (998 ms) does
/// not make every later prediction drift.
#[inline]
fn snap_step(d: i64) -> i64 {
    if d <= 0 {
        return d;
    }
    let tol = d >> 6;
    let mut best = d;
    let mut p: i64 = 10;
    while p <= d {
        let r = (d + p / 2) / p * p;
        if (r - d).abs() <= tol {
            best = r;
        }
        match p.checked_mul(10) {
            Some(n) => p = n,
            None => break,
        }
    }
    best
}

/// Encoder state for one chunk; timestamps are in units already.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TsEncoder {
    n: u32,
    prev: i64,
    grid: i64,
    step: i64,
    last_r: i64,
}

/// Bucketed signed residual: `0` (0) | `100` (+1) | `101` (-1) | `110`+8 | `1110`+16 |
/// `11110`+32 | `11111`+64 bits, two's complement. ±1 gets its own short codes because
/// ms scrape jitter is the common non-zero residual.
#[inline]
pub(crate) fn write_signed(w: &mut BitWriter, r: i64) {
    if r == 0 {
        w.write(0, 1);
    } else if r == 1 {
        w.write(0b100, 3);
    } else if r == -1 {
        w.write(0b101, 3);
    } else if (-128..128).contains(&r) {
        w.write(0b110, 3);
        w.write(r as u64, 8);
    } else if (-32_768..32_768).contains(&r) {
        w.write(0b1110, 4);
        w.write(r as u64, 16);
    } else if i32::try_from(r).is_ok() {
        w.write(0b11110, 5);
        w.write(r as u64, 32);
    } else {
        w.write(0b11111, 5);
        w.write(r as u64, 64);
    }
}

/// Inverse of [`write_signed`].
#[inline]
pub(crate) fn read_signed(r: &mut BitReader<'_>) -> Option<i64> {
    let ones = r.peek_ones(5);
    let (prefix, width) = match ones {
        0 => return r.skip(1).map(|()| 0),
        1 => {
            r.skip(2)?;
            return Some(if r.bit()? { -1 } else { 1 });
        }
        2 => (3, 8),
        3 => (4, 16),
        4 => (5, 32),
        _ => (5, 64),
    };
    r.skip(prefix)?;
    let raw = r.read(width)?;
    // Sign-extend from `width` bits.
    let shift = 64 - width;
    Some(((raw & mask(width)) << shift) as i64 >> shift)
}

impl TsEncoder {
    /// Encode the next timestamp (in units); the first one is not written (it is in the
    /// chunk header).
    #[inline]
    pub(crate) fn push(&mut self, w: &mut BitWriter, t: i64) {
        match self.n {
            0 => {
                self.grid = t;
            }
            1 => {
                let d = t.wrapping_sub(self.prev);
                write_signed(w, d);
                self.step = snap_step(d);
                self.grid = t;
            }
            _ => {
                let pred = self.grid.wrapping_add(self.step);
                let r = t.wrapping_sub(pred);
                write_signed(w, r);
                self.advance(t, r, pred);
                self.last_r = r;
            }
        }
        self.prev = t;
        self.n = self.n.saturating_add(1);
    }

    #[inline]
    fn advance(&mut self, t: i64, r: i64, pred: i64) {
        if r.unsigned_abs() <= tolerance(self.step) {
            // Jitter keeps the grid; the same offset twice means the grid itself is off.
            self.grid = if r != 0 && r == self.last_r { t } else { pred };
        } else {
            self.step = snap_step(t.wrapping_sub(self.prev));
            self.grid = t;
        }
    }
}

/// Decoder mirroring [`TsEncoder`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TsDecoder {
    n: u32,
    prev: i64,
    grid: i64,
    step: i64,
    last_r: i64,
    unit: i64,
}

impl TsDecoder {
    /// A decoder for a chunk whose first timestamp (in units) is `t0`.
    pub(crate) fn new(t0: i64, unit_code: u8) -> Self {
        TsDecoder {
            n: 0,
            prev: t0,
            grid: t0,
            step: 0,
            last_r: 0,
            unit: UNITS[usize::from(unit_code & 3)],
        }
    }

    /// The next timestamp in nanoseconds.
    #[inline]
    pub(crate) fn next(&mut self, r: &mut BitReader<'_>) -> Option<i64> {
        let t = match self.n {
            0 => self.prev,
            1 => {
                let d = read_signed(r)?;
                let t = self.prev.wrapping_add(d);
                self.step = snap_step(d);
                self.grid = t;
                t
            }
            _ => {
                let res = read_signed(r)?;
                let pred = self.grid.wrapping_add(self.step);
                let t = pred.wrapping_add(res);
                if res.unsigned_abs() <= tolerance(self.step) {
                    self.grid = if res != 0 && res == self.last_r {
                        t
                    } else {
                        pred
                    };
                } else {
                    self.step = snap_step(t.wrapping_sub(self.prev));
                    self.grid = t;
                }
                self.last_r = res;
                t
            }
        };
        self.prev = t;
        self.n = self.n.saturating_add(1);
        Some(t.wrapping_mul(self.unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_ms_timestamps_round_trip_and_stay_small() {
        let unit = 2u8;
        let ts: Vec<i64> = (0..120i64)
            .map(|i| {
                let j = match i % 16 {
                    0 => 1,
                    1 => -1,
                    _ => 0,
                };
                (1_700_000_000_000 + i * 1000 + 137 + j) * 1_000_000
            })
            .collect();
        assert_eq!(best_unit(ts.iter().copied()), unit);
        let mut w = BitWriter::new();
        let mut e = TsEncoder::default();
        for &t in &ts {
            e.push(&mut w, t / UNITS[2]);
        }
        let bits = w.len_bits();
        assert!(bits < 120 * 2, "{bits} bits");
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        let mut d = TsDecoder::new(ts[0] / UNITS[2], unit);
        for &t in &ts {
            assert_eq!(d.next(&mut r), Some(t));
        }
    }
}
