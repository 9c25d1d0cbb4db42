//! A minimal zero-copy protobuf reader: varints, fixed-width fields and length-delimited
//! slices borrowed from the input, with strict bounds checks and skipping of unknown fields
//! of every wire type. Errors carry the absolute byte offset in the message.

use crate::error::Error;

/// A framing error: small and `Copy` so the hot path moves 16 bytes, not a whole [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PbError {
    /// Absolute byte offset in the message.
    pub(crate) offset: usize,
    /// What is wrong.
    pub(crate) reason: &'static str,
}

impl From<PbError> for Error {
    #[cold]
    fn from(e: PbError) -> Error {
        Error::Protobuf {
            offset: e.offset,
            reason: e.reason,
        }
    }
}

/// Result of reader operations.
pub(crate) type Result<T> = std::result::Result<T, PbError>;

/// Wire type of varint fields.
pub(crate) const VARINT: u8 = 0;
/// Wire type of 8-byte fields.
pub(crate) const FIXED64: u8 = 1;
/// Wire type of length-delimited fields.
pub(crate) const LEN: u8 = 2;
/// Wire type of a (deprecated) group start.
const START_GROUP: u8 = 3;
/// Wire type of a (deprecated) group end.
const END_GROUP: u8 = 4;
/// Wire type of 4-byte fields.
const FIXED32: u8 = 5;

/// Deepest group nesting we skip; prost uses the same recursion bound.
const MAX_GROUP_DEPTH: u32 = 100;

/// A cursor over one (sub)message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole message, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole message.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self::at(buf, 0)
    }

    /// A reader over `buf`, which starts `base` bytes into the whole message (error
    /// offsets stay whole-message offsets).
    pub(crate) fn at(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Whether every byte has been consumed.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Bytes not consumed yet.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Absolute offset of the cursor.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// An error at the cursor.
    #[cold]
    pub(crate) fn error(&self, reason: &'static str) -> PbError {
        PbError {
            offset: self.offset(),
            reason,
        }
    }

    /// Read a base-128 varint of at most 10 bytes that fits in 64 bits.
    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<u64> {
        // Fast path: most keys, lengths and small values are one byte.
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            Some(_) => self.varint_slow(),
            None => Err(self.error("truncated varint")),
        }
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64> {
        match varint_prefix(self.buf.get(self.pos..).unwrap_or_default()) {
            Ok((v, len)) => {
                self.pos += len;
                Ok(v)
            }
            Err(reason) => Err(self.error(reason)),
        }
    }

    /// Read a field key: `(field number, wire type)`.
    #[inline(always)]
    pub(crate) fn key(&mut self) -> Result<(u32, u8)> {
        let at = *self;
        let k = self.varint()?;
        let Ok(k) = u32::try_from(k) else {
            return Err(at.error("field key out of range"));
        };
        let field = k >> 3;
        if field == 0 {
            return Err(at.error("field number 0"));
        }
        // The low three bits always fit a u8.
        Ok((field, (k & 7) as u8))
    }

    /// Read 8 little-endian bytes.
    #[inline]
    pub(crate) fn fixed64(&mut self) -> Result<u64> {
        let end = self.pos + 8;
        match self.buf.get(self.pos..end) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                self.pos = end;
                Ok(u64::from_le_bytes(a))
            }
            None => Err(self.error("truncated fixed64")),
        }
    }

    /// Read a length-delimited field as a sub-reader.
    #[inline]
    pub(crate) fn message(&mut self) -> Result<Reader<'a>> {
        let bytes = self.bytes()?;
        // The payload ends at the cursor, so it starts `len` bytes before it.
        Ok(Reader {
            buf: bytes,
            pos: 0,
            base: self.offset() - bytes.len(),
        })
    }

    /// Read a length-delimited field as a borrowed slice.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let at = *self;
        let len = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                self.pos = end;
                Ok(&self.buf[start..end])
            }
            None => Err(at.error("length-delimited field runs past the end")),
        }
    }

    /// Read a length-delimited field as a byte range of this reader's slice.
    #[inline]
    pub(crate) fn bytes_range(&mut self) -> Result<(usize, usize)> {
        let b = self.bytes()?;
        Ok((self.pos - b.len(), self.pos))
    }

    /// The whole slice this reader walks.
    #[inline]
    pub(crate) fn slice(&self) -> &'a [u8] {
        self.buf
    }

    /// Position of the cursor in this reader's slice.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Absolute offset of this reader's slice start.
    #[inline]
    pub(crate) fn base(&self) -> usize {
        self.base
    }

    /// Skip a field of wire type `wt` whose key was just read.
    pub(crate) fn skip(&mut self, field: u32, wt: u8) -> Result<()> {
        self.skip_depth(field, wt, 0)
    }

    fn skip_depth(&mut self, field: u32, wt: u8, depth: u32) -> Result<()> {
        match wt {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                let end = self.pos + 4;
                if end > self.buf.len() {
                    return Err(self.error("truncated fixed32"));
                }
                self.pos = end;
                Ok(())
            }
            START_GROUP => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(self.error("groups nested too deeply"));
                }
                loop {
                    if self.is_empty() {
                        return Err(self.error("unterminated group"));
                    }
                    let (f, w) = self.key()?;
                    if w == END_GROUP {
                        if f != field {
                            return Err(self.error("mismatched end group"));
                        }
                        return Ok(());
                    }
                    self.skip_depth(f, w, depth + 1)?;
                }
            }
            END_GROUP => Err(self.error("unexpected end group")),
            _ => Err(self.error("invalid wire type")),
        }
    }
}

/// The base-128 varint at the start of `b` (at most 10 bytes, fitting 64 bits): its
/// value and length, or what is wrong with it.
#[inline]
pub(crate) fn varint_prefix(b: &[u8]) -> std::result::Result<(u64, usize), &'static str> {
    let mut v = 0u64;
    for i in 0..10 {
        let Some(&x) = b.get(i) else {
            return Err("truncated varint");
        };
        if i == 9 && x > 1 {
            return Err("varint overflows 64 bits");
        }
        v |= u64::from(x & 0x7f) << (7 * i);
        if x < 0x80 {
            return Ok((v, i + 1));
        }
    }
    Err("varint longer than 10 bytes")
}

/// Decode a zigzag-encoded signed 64-bit value.
#[inline]
pub(crate) fn zigzag64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Decode a zigzag-encoded signed 32-bit value (the varint is truncated first, as in prost).
#[allow(clippy::cast_possible_truncation)] // truncation is protobuf's sint32 semantics
#[inline]
pub(crate) fn zigzag32(n: u64) -> i32 {
    let n = n as u32;
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_and_reject_overflow() {
        let mut r = Reader::new(&[0x96, 0x01]);
        assert_eq!(r.varint().unwrap(), 150);
        assert!(r.is_empty());
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint().unwrap(), u64::MAX);
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&over).varint().is_err());
        let long = [0x80; 11];
        assert!(Reader::new(&long).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn lengths_past_the_end_fail() {
        let mut r = Reader::new(&[0x05, 1, 2]);
        assert_eq!(r.bytes().unwrap_err().offset, 0);
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(r.bytes().is_err());
    }

    #[test]
    fn skips_groups_and_rejects_stray_ends() {
        // field 5 start group, field 1 varint 7, field 5 end group, then field 2 varint 1
        let mut r = Reader::new(&[0x2b, 0x08, 0x07, 0x2c, 0x10, 0x01]);
        let (f, w) = r.key().unwrap();
        r.skip(f, w).unwrap();
        assert_eq!(r.key().unwrap(), (2, VARINT));
        let mut r = Reader::new(&[0x2c]);
        let (f, w) = r.key().unwrap();
        assert!(r.skip(f, w).is_err());
        let mut r = Reader::new(&[0x2f]);
        let (f, w) = r.key().unwrap();
        assert!(r.skip(f, w).is_err());
    }

    #[test]
    fn sub_message_offsets_are_absolute() {
        // field 1 LEN 2: [0x08 0x80] (truncated varint inside)
        let mut r = Reader::new(&[0x0a, 0x02, 0x08, 0x80]);
        r.key().unwrap();
        let mut sub = r.message().unwrap();
        assert_eq!(sub.offset(), 2);
        sub.key().unwrap();
        assert_eq!(sub.varint().unwrap_err().offset, 3);
    }

    #[test]
    fn zigzag_matches_protobuf() {
        assert_eq!(zigzag64(0), 0);
        assert_eq!(zigzag64(1), -1);
        assert_eq!(zigzag64(2), 1);
        assert_eq!(zigzag64(u64::MAX), i64::MIN);
        assert_eq!(zigzag32(3), -2);
    }
}
