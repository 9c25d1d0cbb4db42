//! Byte-level helpers of the on-disk index: LEB128 varints and a bounds-checked cursor
//! whose every read fails with a reason instead of panicking on short or hostile input.

/// Append `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append `v` zigzag-encoded as a varint (small magnitudes of either sign stay short).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Encoded length of `v` as a uvarint.
pub(crate) fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A read position over a byte slice. `base` is the slice's offset in the file, so errors
/// can name absolute offsets.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Whether every byte was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, &'static str> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err("varint overflows 64 bits");
            }
        }
    }

    pub(crate) fn varint(&mut self) -> Result<i64, &'static str> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint that must fit a `u32`.
    pub(crate) fn uvarint32(&mut self) -> Result<u32, &'static str> {
        u32::try_from(self.uvarint()?).map_err(|_| "value exceeds 32 bits")
    }

    /// A uvarint used as a length or count; bounded by the bytes left so a hostile count
    /// cannot make a reader pre-allocate gigabytes.
    pub(crate) fn len_prefix(&mut self) -> Result<usize, &'static str> {
        let v = self.uvarint()?;
        let left = (self.buf.len() - self.pos.min(self.buf.len())) as u64;
        if v > left {
            return Err("length exceeds the bytes left");
        }
        Ok(v as usize)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, &'static str> {
        let b = *self.buf.get(self.pos).ok_or("truncated byte")?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, &'static str> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.buf.get(self.pos..end).ok_or("truncated bytes")?;
        self.pos = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overflow() {
        let mut out = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            out.clear();
            put_uvarint(&mut out, v);
            assert_eq!(out.len(), uvarint_len(v));
            assert_eq!(Cursor::new(&out).uvarint(), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            out.clear();
            put_varint(&mut out, v);
            assert_eq!(Cursor::new(&out).varint(), Ok(v));
        }
        assert!(Cursor::new(&[0xff; 11]).uvarint().is_err());
        assert!(Cursor::new(&[0x80]).uvarint().is_err());
    }
}
