//! MSB-first bit writer and a branch-light bit reader used by every chunk codec.
//! The reader never panics on short or hostile input: reads past the end return `None`.

/// Mask of the low `n` bits (`n` ≤ 64).
#[inline]
pub(crate) fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Where an encoder's bits go: a [`BitWriter`], or a [`BitCount`] when an encoder only
/// needs the size a stream would have (choosing between codecs before writing one).
pub(crate) trait BitSink {
    /// Write the low `n` bits of `v` (`n` ≤ 64).
    fn put(&mut self, v: u64, n: u32);
}

/// Counts the bits written, keeping none.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BitCount(pub(crate) u64);

impl BitSink for BitCount {
    #[inline]
    fn put(&mut self, _v: u64, n: u32) {
        self.0 += u64::from(n.min(64));
    }
}

impl BitSink for BitWriter {
    #[inline]
    fn put(&mut self, v: u64, n: u32) {
        self.write(v, n);
    }
}

/// Appends bits most-significant first.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    /// An empty writer.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `bytes` bytes.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Write the low `n` bits of `v` (`n` ≤ 64).
    #[inline]
    pub(crate) fn write(&mut self, v: u64, n: u32) {
        let n = n.min(64);
        if n == 0 {
            return;
        }
        if n > 56 {
            // Split so each half fits the accumulator.
            self.write(v >> 32, n - 32);
            self.write(v, 32);
            return;
        }
        // nbits < 8 between calls, so nbits + n ≤ 63 bits fit without overflow; whole
        // bytes leave in one slice append instead of a push per byte (the XOR appender
        // writes a few bits per sample on the append path).
        self.acc = (self.acc << n) | (v & mask(n));
        self.nbits += n;
        let whole = self.nbits / 8;
        if whole > 0 {
            let rem = self.nbits % 8;
            // The whole bytes, moved to the top of a word: one fixed 8-byte append and a
            // truncate, where a slice of variable length cost a `memmove` call per write.
            let top = (self.acc >> rem) << (64 - 8 * whole);
            let len = self.buf.len() + whole as usize;
            self.buf.extend_from_slice(&top.to_be_bytes());
            self.buf.truncate(len);
            self.nbits = rem;
            self.acc &= mask(rem);
        }
    }

    /// Bits written so far.
    pub(crate) fn len_bits(&self) -> usize {
        self.buf.len() * 8 + self.nbits as usize
    }

    /// The bytes written so far, the last partial byte zero-padded (writer unchanged).
    pub(crate) fn snapshot_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf);
        if self.nbits > 0 {
            out.push((self.acc << (8 - self.nbits)) as u8);
        }
    }

    /// Consume into bytes, zero-padding the last byte.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len() + 1);
        self.snapshot_into(&mut out);
        out
    }
}

/// Reads bits most-significant first from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Pending bits, left-aligned; bits below `avail` are unspecified.
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Top up `buf` to at least 57 bits when the input allows.
    #[inline]
    fn refill(&mut self) {
        if !refill_word(self.data, &mut self.buf, &mut self.avail, &mut self.pos) {
            while self.avail <= 56 {
                let Some(&b) = self.data.get(self.pos) else {
                    break;
                };
                self.buf |= u64::from(b) << (56 - self.avail);
                self.pos += 1;
                self.avail += 8;
            }
        }
    }

    /// Read `n` ≤ 56 bits.
    #[inline]
    fn read_small(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if self.avail < n {
            self.refill();
            if self.avail < n {
                return None;
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.avail -= n;
        Some(v)
    }

    /// Read `n` ≤ 64 bits.
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> Option<u64> {
        if n <= 56 {
            self.read_small(n)
        } else if n <= 64 {
            let hi = self.read_small(n - 32)?;
            let lo = self.read_small(32)?;
            Some((hi << 32) | lo)
        } else {
            None
        }
    }

    /// Read one bit.
    #[inline]
    pub(crate) fn bit(&mut self) -> Option<bool> {
        self.read_small(1).map(|b| b == 1)
    }

    /// The common cases of a Gorilla (XOR) value, after at most one refill: a `0` bit (the
    /// value repeats) gives `Some(None)`; `10` followed by `sig` meaningful bits (the
    /// previous leading/trailing window, `1 ≤ sig ≤ 62`) gives `Some(Some(bits))`, all
    /// consumed. Anything else, or too few bits buffered, gives `None` with nothing
    /// consumed, and the caller takes the general path.
    #[inline]
    pub(crate) fn xor_common(&mut self, sig: u32) -> Option<Option<u64>> {
        if self.avail < 57 {
            self.refill();
        }
        let top = self.buf;
        if top >> 63 == 0 {
            if self.avail == 0 {
                return None;
            }
            self.buf = top << 1;
            self.avail -= 1;
            return Some(None);
        }
        let len = sig + 2;
        if top >> 62 != 0b10 || !(1..=62).contains(&sig) || len > self.avail {
            return None;
        }
        let bits = (top << 2) >> (64 - sig);
        self.buf = (top << (len - 1)) << 1;
        self.avail -= len;
        Some(Some(bits))
    }

    /// Consume a run of zero bits, at most `max` of them, and return its length (0 when
    /// the next bit is a one or the input is exhausted). In a Gorilla value stream each
    /// `0` is a repeat of the previous value, so flat series decode a word at a time.
    #[inline]
    pub(crate) fn take_zeros(&mut self, max: u64) -> u64 {
        let mut taken = 0u64;
        while taken < max {
            if self.avail < 57 {
                self.refill();
            }
            let z = self.buf.leading_zeros().min(self.avail);
            let z = u64::from(z).min(max - taken);
            if z == 0 {
                break;
            }
            // The byte-wise refill near the end of the input can fill all 64 bits, so
            // a run can empty the buffer: a shift by 64 leaves nothing.
            self.buf = self.buf.checked_shl(z as u32).unwrap_or(0);
            self.avail -= z as u32;
            taken += z;
        }
        taken
    }

    /// Count leading one bits, looking at most `max` (≤ 32) bits ahead, without consuming.
    #[inline]
    pub(crate) fn peek_ones(&mut self, max: u32) -> u32 {
        if self.avail < max {
            self.refill();
        }
        let ones = self.buf.leading_ones();
        ones.min(max).min(self.avail)
    }

    /// Skip `n` bits already known to be available (after `peek_ones`).
    #[inline]
    pub(crate) fn skip(&mut self, n: u32) -> Option<()> {
        self.read_small(n).map(|_| ())
    }
}

/// The branchless refill of a reader's state (`buf`, `avail` ≤ 63, `pos` over `data`):
/// loads the 8 bytes at `pos` and tops `buf` up to at least 57 bits; false, changing
/// nothing, when fewer than 8 bytes remain. Bits below the new `avail` that come from the
/// same input bytes are ORed in again identically by the next refill. Shared by
/// [`BitReader`] and the batch reader, which keeps the state in locals.
#[inline(always)]
fn refill_word(data: &[u8], buf: &mut u64, avail: &mut u32, pos: &mut usize) -> bool {
    let Some(w) = data.get(*pos..*pos + 8) else {
        return false;
    };
    let mut word = [0u8; 8];
    word.copy_from_slice(w);
    *buf |= u64::from_be_bytes(word) >> *avail;
    let bytes = (63 - *avail) >> 3;
    *pos += bytes as usize;
    *avail += bytes * 8;
    true
}

/// Take one Rice code with parameter `k` from a buffer of `avail` valid bits (left
/// aligned), if it is there whole and not escaped; otherwise `None`, nothing consumed.
#[inline(always)]
fn take_rice(buf: &mut u64, avail: &mut u32, k: u32) -> Option<u64> {
    let q = buf.leading_ones();
    let len = q + 1 + k;
    if q >= RICE_ESCAPE || len > *avail {
        return None;
    }
    // Two shifts each, so that k = 0 yields 0 and len = 64 empties the buffer (a shift
    // by 64 is not allowed).
    let low = ((*buf << q) << 1) >> 1 >> (63 - k);
    *buf = (*buf << (len - 1)) << 1;
    *avail -= len;
    Some((u64::from(q) << k) | low)
}

/// Unary quotients of this length or more escape to a raw 64-bit value.
pub(crate) const RICE_ESCAPE: u32 = 24;
#[inline]
pub(crate) fn rice_cost(u: u64, k: u32) -> u64 {
    let q = u >> k;
    if q >= u64::from(RICE_ESCAPE) {
        u64::from(RICE_ESCAPE) + 64
    } else {
        q + 1 + u64::from(k)
    }
}

/// Bits of Rice-coding every value of `us` with parameter `k`.
#[inline]
pub(crate) fn rice_bits(us: &[u64], k: u32) -> u64 {
    us.iter().map(|&u| rice_cost(u, k)).sum()
}

/// Best Rice parameter for `us` and the resulting bit count.
///
/// The total cost is close to convex in `k` with its minimum near `log2` of the mean, so
/// the search starts one below the mean's bit length and walks downhill: usually three
/// passes over `us`, where trying a fixed window of six parameters took twice as long
/// (the search dominated the encoding of closed chunks).
pub(crate) fn best_rice(us: &[u64]) -> (u32, u64) {
    if us.is_empty() {
        return (0, 0);
    }
    let mean = us.iter().fold(0u128, |a, &u| a + u128::from(u)) / us.len() as u128;
    let guess = 64 - (mean as u64).leading_zeros();
    let mut k = guess.saturating_sub(1).min(63);
    let mut best = rice_bits(us, k);
    // Downhill first (lower parameters win ties), then uphill if down did not improve.
    let mut moved = false;
    while k > 0 {
        let c = rice_bits(us, k - 1);
        if c > best {
            break;
        }
        (k, best, moved) = (k - 1, c, true);
    }
    if !moved {
        while k < 63 {
            let c = rice_bits(us, k + 1);
            if c >= best {
                break;
            }
            (k, best) = (k + 1, c);
        }
    }
    (k, best)
}

#[inline]
pub(crate) fn write_rice(w: &mut BitWriter, u: u64, k: u32) {
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

// The fast path is always inlined (as a call, the reader's word and bit count went
// through memory for every value; inlined into the decode loops they stay in registers)
// and the rest kept out of line: decode of 120-sample chunks 97 → 101–104 M samples/s,
// of 1,440-sample chunks 104–105 → 108–109 (`decode_best_of`, alternating builds).
#[inline(always)]
pub(crate) fn read_rice(r: &mut BitReader<'_>, k: u32) -> Option<u64> {
    // Fast path: one refill, then quotient, stop bit and remainder straight from the
    // buffer (covers every non-escaped code up to 57 bits, e.g. k = 50 gauges).
    if r.avail < 57 {
        r.refill();
    }
    match take_rice(&mut r.buf, &mut r.avail, k) {
        Some(u) => Some(u),
        None => read_rice_slow(r, k),
    }
}

/// Read `n` Rice codes with parameter `k`, handing the `i`-th to `put(i, u)`.
///
/// The batch form of [`read_rice`] for whole-chunk decodes: the reader's word, bit count
/// and position live in locals for the run, and while eight input bytes remain the
/// refill is an unconditional load (no branch on the bit count, no slice bounds test).
/// Residuals go out through `put` so the caller can apply its predictor in a second,
/// branch-free pass: the bit-reading chain and the arithmetic no longer share registers.
#[inline(always)]
pub(crate) fn read_rice_each(
    r: &mut BitReader<'_>,
    k: u32,
    n: usize,
    mut put: impl FnMut(usize, u64),
) -> Option<()> {
    let data = r.data;
    let mut i = 0;
    while i < n {
        let (mut buf, mut avail, mut pos) = (r.buf, r.avail, r.pos);
        // `avail` ≤ 63 at each refill: at most 63 after one, and every code takes a bit.
        while i < n && refill_word(data, &mut buf, &mut avail, &mut pos) {
            let Some(u) = take_rice(&mut buf, &mut avail, k) else {
                break;
            };
            put(i, u);
            i += 1;
            // A second code from the same refill when it fits (always, for the small
            // parameters of counters; never, for raw-bit gauges: the branch follows k).
            if i < n {
                if let Some(u) = take_rice(&mut buf, &mut avail, k) {
                    put(i, u);
                    i += 1;
                }
            }
        }
        (r.buf, r.avail, r.pos) = (buf, avail, pos);
        // An escape, a code longer than the buffer, or the input's last bytes.
        if i < n {
            put(i, read_rice(r, k)?);
            i += 1;
        }
    }
    Some(())
}

/// [`read_rice`] for escapes and codes straddling the end of the input.
#[cold]
#[inline(never)]
fn read_rice_slow(r: &mut BitReader<'_>, k: u32) -> Option<u64> {
    let q = r.peek_ones(RICE_ESCAPE);
    if q >= RICE_ESCAPE {
        r.skip(RICE_ESCAPE)?;
        return r.read(64);
    }
    r.skip(q + 1)?;
    let low = r.read(k)?;
    Some((u64::from(q) << k) | low)
}

/// Append `v` as an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes of `v` as a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Append `v` zigzag-encoded as a varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Read an unsigned LEB128 varint from `buf` at `*pos`.
#[inline]
pub(crate) fn get_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Read a zigzag varint.
#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    get_uvarint(buf, pos).map(unzigzag)
}

/// Zigzag-map a signed integer so small magnitudes become small codes.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over every parameter: what `best_rice` approximates.
    fn brute_rice(us: &[u64]) -> u64 {
        (0..=63).map(|k| rice_bits(us, k)).min().unwrap_or(0)
    }

    #[test]
    fn rice_search_finds_the_optimum_of_geometric_residuals() {
        // Geometric-like residuals (what predictors leave) of means from 0.5 to 2^40:
        // the cost is convex there and the downhill search must land on the optimum.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for shift in 0..41u32 {
            let us: Vec<u64> = (0..300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                    (-(1.0 - u).ln() * (1u64 << shift) as f64) as u64
                })
                .collect();
            let (k, bits) = best_rice(&us);
            assert_eq!(bits, rice_bits(&us, k), "mean 2^{shift}");
            assert_eq!(bits, brute_rice(&us), "mean 2^{shift}: k = {k}");
            // The reported size is what writing takes.
            let mut w = BitWriter::new();
            for &u in &us {
                write_rice(&mut w, u, k);
            }
            assert_eq!(w.len_bits() as u64, bits);
        }
    }

    #[test]
    fn rice_search_with_outliers_is_no_worse_than_its_start() {
        // Small residuals with a few escapes: the mean points far above the small values'
        // optimum; walking downhill must still find a parameter no worse than the start.
        let mut us: Vec<u64> = (0..200).map(|i| i % 7).collect();
        us.extend([1u64 << 50, 1 << 45, 1 << 60]);
        let (k, bits) = best_rice(&us);
        assert_eq!(bits, rice_bits(&us, k));
        let mean = us.iter().map(|&u| u128::from(u)).sum::<u128>() / us.len() as u128;
        let start = (64 - (mean as u64).leading_zeros()).saturating_sub(1);
        assert!(bits <= rice_bits(&us, start));
        assert_eq!(bits, brute_rice(&us), "k = {k}");
    }

    #[test]
    fn bit_count_matches_what_the_writer_writes() {
        let mut w = BitWriter::new();
        let mut c = BitCount::default();
        for i in 0..500u64 {
            let (v, n) = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), (i % 65) as u32);
            w.put(v, n);
            c.put(v, n);
        }
        assert_eq!(c.0, w.len_bits() as u64);
    }

    #[test]
    fn bits_round_trip_mixed_widths() {
        let items: Vec<(u64, u32)> = (0..500u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), (i % 65) as u32))
            .collect();
        let mut w = BitWriter::new();
        for &(v, n) in &items {
            w.write(v, n);
        }
        let total = w.len_bits();
        let bytes = w.finish();
        assert_eq!(bytes.len(), total.div_ceil(8));
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &items {
            assert_eq!(r.read(n), Some(v & mask(n)), "width {n}");
        }
    }

    #[test]
    fn reader_reports_end_of_input() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.peek_ones(32), 8);
        assert_eq!(r.read(8), Some(0xff));
        assert_eq!(r.read(1), None);
        let mut pos = 0;
        assert_eq!(get_uvarint(&[0x80, 0x80], &mut pos), None);
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    proptest::proptest! {
        /// The batch reader returns what one `read_rice` per code returns, through
        /// escapes, k = 0 and k = 63, codes longer than a refill and the input's last
        /// bytes (where it leaves its fast loop), and fails as it does on short input.
        #[test]
        fn batch_rice_reads_what_single_reads_read(
            k in proptest::prop_oneof![0u32..=4, 5u32..=40, 41u32..=63],
            us in proptest::collection::vec(
                proptest::prop_oneof![0u64..64, 0u64..(1 << 20), proptest::num::u64::ANY],
                0..300,
            ),
            cut in 0usize..16,
        ) {
            let mut w = BitWriter::new();
            for &u in &us {
                // Codes whose quotient would escape are what the writer escapes.
                write_rice(&mut w, u, k);
            }
            let mut bytes = w.finish();
            let keep = bytes.len().saturating_sub(cut);
            bytes.truncate(if cut == 0 { bytes.len() } else { keep });
            let mut one = BitReader::new(&bytes);
            let single: Vec<Option<u64>> = us.iter().map(|_| read_rice(&mut one, k)).collect();
            let mut got = vec![None; us.len()];
            let mut r = BitReader::new(&bytes);
            let ok = read_rice_each(&mut r, k, us.len(), |i, u| got[i] = Some(u));
            let first_fail = single.iter().position(Option::is_none);
            match first_fail {
                None => {
                    proptest::prop_assert!(ok.is_some());
                    proptest::prop_assert_eq!(&got, &single);
                    if cut == 0 {
                        let want: Vec<Option<u64>> = us.iter().map(|&u| Some(u)).collect();
                        proptest::prop_assert_eq!(&got, &want);
                    }
                }
                Some(f) => {
                    proptest::prop_assert!(ok.is_none());
                    proptest::prop_assert_eq!(&got[..f], &single[..f]);
                }
            }
        }
    }
}
