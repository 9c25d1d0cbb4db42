//! The one capped snappy (block format) decompressor every ingest path goes through, and
//! the matching compressor for clients. The cap is checked against the length header
//! *before* allocating, so a 20-byte body cannot make us reserve gigabytes.

use crate::error::{Error, Result};

/// Decompress a snappy block, refusing output larger than `max_bytes`.
///
/// # Errors
/// [`Error::BodyTooLarge`] when the header announces more than `max_bytes`;
/// [`Error::Snappy`] when the block is corrupt or truncated.
pub fn decompress_capped(body: &[u8], max_bytes: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_capped_into(body, max_bytes, &mut out)?;
    Ok(out)
}

/// [`decompress_capped`] into `out`, replacing its content and reusing its capacity (a
/// server recycles request buffers: see `gmc-server`'s `buffers`). On error `out` is
/// left empty.
///
/// # Errors
/// As [`decompress_capped`].
pub fn decompress_capped_into(body: &[u8], max_bytes: usize, out: &mut Vec<u8>) -> Result<()> {
    let len = match snap::raw::decompress_len(body) {
        Ok(len) if len > max_bytes => {
            out.clear();
            return Err(Error::BodyTooLarge {
                len: len as u64,
                limit: max_bytes,
            });
        }
        Ok(len) => len,
        Err(source) => {
            out.clear();
            return Err(Error::Snappy { source });
        }
    };
    // The decoder writes every one of the `len` bytes it announces (or fails), so the
    // bytes a reused buffer already holds need no zeroing: only growth is zeroed.
    // Clearing and zeroing a reused 1.5 MiB buffer for every remote-write request was
    // ~1.3 % of ingest CPU (a `memset` in the profile).
    if out.len() < len {
        out.resize(len, 0);
    } else {
        out.truncate(len);
    }
    match snap::raw::Decoder::new().decompress(body, out) {
        Ok(n) => {
            // The decoder checks that the output fills the announced length; keep it
            // honest anyway.
            out.truncate(n);
            Ok(())
        }
        Err(source) => {
            out.clear();
            Err(Error::Snappy { source })
        }
    }
}

/// Compress `data` as one snappy block (what remote_write senders put on the wire).
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; snap::raw::max_compress_len(data.len())];
    match snap::raw::Encoder::new().compress(data, &mut out) {
        Ok(n) => {
            out.truncate(n);
            out
        }
        // Only fails for inputs above ~4 GiB, which no client of ours builds; an empty block
        // then makes the receiver answer 400 instead of us panicking.
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let data = b"hello hello hello hello".repeat(10);
        let c = compress(&data);
        assert_eq!(decompress_capped(&c, 1 << 20).unwrap(), data);
    }

    #[test]
    fn refuses_announced_size_above_cap_before_allocating() {
        // Header announcing 2^32-1 bytes, no payload.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
        match decompress_capped(&body, 1 << 20) {
            Err(Error::BodyTooLarge { len, limit }) => {
                assert_eq!(len, u32::MAX as u64);
                assert_eq!(limit, 1 << 20);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn decompressing_into_a_used_buffer_replaces_its_content() {
        let mut out = b"left over from a longer request".repeat(40);
        let data = b"short".repeat(3);
        decompress_capped_into(&compress(&data), 1 << 20, &mut out).unwrap();
        assert_eq!(out, data);
        // A longer request into the shorter buffer: the reused bytes and the growth.
        let long = b"0123456789".repeat(30);
        decompress_capped_into(&compress(&long), 1 << 20, &mut out).unwrap();
        assert_eq!(out, long);
        let bad = compress(&data);
        assert!(decompress_capped_into(&bad[..bad.len() - 1], 1 << 20, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn truncated_block_is_a_typed_error() {
        let c = compress(&b"abcdefgh".repeat(100));
        for cut in [0, 1, 2, c.len() / 2, c.len() - 1] {
            assert!(
                matches!(
                    decompress_capped(&c[..cut], 1 << 20),
                    Err(Error::Snappy { .. })
                ),
                "cut {cut}"
            );
        }
    }
}
