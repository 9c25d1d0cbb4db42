//! Timestamp coding shared by all chunk encodings: timestamps are divided by a per-chunk
//! unit (1 ns, 1 µs, 1 ms or 1 s), then each is coded as its residual from a jitter-free
//! grid prediction, so ms-granular nanosecond timestamps cost what ms ones cost and a
//! ±1 ms scrape jitter costs a few bits once instead of three times (as delta-of-delta would).

use super::bits::{best_rice, mask, read_rice, write_rice, BitReader, BitWriter};

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
        // In i128: `d + p / 2` overflows i64 for deltas near i64::MAX (a fuzz find); a
        // rounded step that does not fit i64 is not taken.
        let (dw, pw) = (i128::from(d), i128::from(p));
        let r = (dw + pw / 2) / pw * pw;
        if (r - dw).abs() <= i128::from(tol) {
            if let Ok(r) = i64::try_from(r) {
                best = r;
            }
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
        if let Some(r) = self.residual(t) {
            write_signed(w, r);
        }
    }

    /// The residual of the next timestamp (in units); `None` for the first one.
    #[inline]
    pub(crate) fn residual(&mut self, t: i64) -> Option<i64> {
        let r = match self.n {
            0 => {
                self.grid = t;
                None
            }
            1 => {
                let d = t.wrapping_sub(self.prev);
                self.step = snap_step(d);
                self.grid = t;
                Some(d)
            }
            _ => {
                let pred = self.grid.wrapping_add(self.step);
                let r = t.wrapping_sub(pred);
                self.advance(t, r, pred);
                self.last_r = r;
                Some(r)
            }
        };
        self.prev = t;
        self.n = self.n.saturating_add(1);
        r
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
        let res = if self.n == 0 { 0 } else { read_signed(r)? };
        Some(self.apply(res))
    }

    /// `apply(0)` for a sample after the second: the grid just advances by one step.
    #[inline]
    fn apply_zero(&mut self) -> i64 {
        let t = self.grid.wrapping_add(self.step);
        self.grid = t;
        self.last_r = 0;
        self.prev = t;
        self.n = self.n.saturating_add(1);
        t.wrapping_mul(self.unit)
    }

    /// The next timestamp in nanoseconds given its residual (ignored for the first).
    #[inline]
    pub(crate) fn apply(&mut self, res: i64) -> i64 {
        let t = match self.n {
            0 => self.prev,
            1 => {
                let t = self.prev.wrapping_add(res);
                self.step = snap_step(res);
                self.grid = t;
                t
            }
            _ => {
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
        t.wrapping_mul(self.unit)
    }
}

/// Encode timestamps (in units; the first is in the chunk header) as a run-length stream
/// for closed chunks: 6 bits Rice parameter `k`, then for each non-zero residual the
/// Rice-coded count of zero residuals before it and the residual (`0`+sign bit for ±1,
/// else `1` + the `write_signed` code), then the Rice-coded count of trailing zeros.
pub(crate) fn encode_stream(ts: impl Iterator<Item = i64>) -> Vec<u8> {
    let mut e = TsEncoder::default();
    let residuals: Vec<i64> = ts.filter_map(|t| e.residual(t)).collect();
    let mut runs = Vec::new();
    let mut run = 0u64;
    for &r in &residuals {
        if r == 0 {
            run += 1;
        } else {
            runs.push(run);
            run = 0;
        }
    }
    if run > 0 {
        runs.push(run);
    }
    let (k, _) = best_rice(&runs);
    let mut w = BitWriter::new();
    w.write(u64::from(k), 6);
    let mut run = 0u64;
    for &r in &residuals {
        if r == 0 {
            run += 1;
            continue;
        }
        write_rice(&mut w, run, k);
        run = 0;
        match r {
            1 => w.write(0b00, 2),
            -1 => w.write(0b01, 2),
            _ => {
                w.write(1, 1);
                write_signed(&mut w, r);
            }
        }
    }
    if run > 0 {
        write_rice(&mut w, run, k);
    }
    w.finish()
}

/// Decoder of [`encode_stream`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamDecoder {
    dec: TsDecoder,
    k: u32,
    zeros_left: u64,
    value_pending: bool,
}

impl StreamDecoder {
    /// Read the stream header; `t0` is the first timestamp in units.
    pub(crate) fn new(r: &mut BitReader<'_>, t0: i64, unit_code: u8) -> Option<Self> {
        // An empty stream (a one-sample chunk) has no header; k is then never used.
        let k = r.read(6).unwrap_or(0) as u32;
        Some(StreamDecoder {
            dec: TsDecoder::new(t0, unit_code),
            k,
            zeros_left: 0,
            value_pending: false,
        })
    }

    fn residual(&mut self, r: &mut BitReader<'_>) -> Option<i64> {
        if self.zeros_left > 0 {
            self.zeros_left -= 1;
            return Some(0);
        }
        if !self.value_pending {
            let run = read_rice(r, self.k)?;
            if run > 0 {
                self.zeros_left = run - 1;
                self.value_pending = true;
                return Some(0);
            }
        }
        self.value_pending = false;
        if r.bit()? {
            read_signed(r)
        } else {
            Some(if r.bit()? { -1 } else { 1 })
        }
    }

    /// Emit up to `max` timestamps of the current run of zero residuals (each one grid
    /// step after the previous) without touching the bit stream; returns how many.
    #[inline]
    pub(crate) fn take_run(&mut self, max: usize, mut emit: impl FnMut(i64)) -> usize {
        if self.dec.n < 2 || self.zeros_left == 0 {
            return 0;
        }
        let k = usize::try_from(self.zeros_left).map_or(max, |z| z.min(max));
        let (step, unit) = (self.dec.step, self.dec.unit);
        let mut t = self.dec.grid;
        for _ in 0..k {
            t = t.wrapping_add(step);
            emit(t.wrapping_mul(unit));
        }
        // The same state `k` calls of `apply_zero` leave.
        self.dec.grid = t;
        self.dec.prev = t;
        self.dec.last_r = 0;
        self.dec.n = self
            .dec
            .n
            .saturating_add(u32::try_from(k).unwrap_or(u32::MAX));
        self.zeros_left -= k as u64;
        k
    }

    /// The next timestamp in nanoseconds.
    #[inline]
    pub(crate) fn next(&mut self, r: &mut BitReader<'_>) -> Option<i64> {
        if self.zeros_left > 0 && self.dec.n >= 2 {
            self.zeros_left -= 1;
            return Some(self.dec.apply_zero());
        }
        let res = if self.dec.n == 0 {
            0
        } else {
            self.residual(r)?
        };
        Some(self.dec.apply(res))
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
