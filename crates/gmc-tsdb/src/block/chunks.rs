//! Chunk segment files `chunks/000001…`: a header, then records of
//! `len | encoding | num_samples | mint | maxt | bytes | crc32` (spec: `docs/format/block.md`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::{Error, Result};
use crate::chunk::{self, get_uvarint, put_uvarint, ENCODING_PACKED};
use crate::index::ChunkMeta;

/// First bytes of every chunk segment: magic, version, three zero bytes.
pub const SEGMENT_MAGIC: [u8; 4] = *b"GMCC";
/// Current chunk segment format version (2 added shared-timestamp records; 3 lets
/// `PACKED` records carry a seek table, so a binary that cannot read one refuses the
/// segment by its version instead of calling its chunks corrupt; versions 1 and 2 are
/// still read).
pub const SEGMENT_VERSION: u8 = 3;
/// Record encoding found only in chunk segments of version 2 and later: a `PACKED` chunk whose
/// count, unit, first timestamp and timestamp stream are those of an earlier `PACKED`
/// record of the same segment (series sampled at the same instants, such as the series of
/// one scrape or one sender, have identical timestamp parts). Readers return the
/// rebuilt `PACKED` chunk; the codecs never see this encoding.
pub(super) const ENCODING_SHARED_TS: u8 = 4;
/// Distinct timestamp parts the writer remembers per segment: bounds its memory when
/// every series has timestamps of its own.
const MAX_SHARED_KEYS: usize = 1 << 16;
/// Base records whose timestamp parts a reader keeps decoded.
const MAX_CACHED_BASES: usize = 1 << 12;
pub(super) const SEGMENT_HEADER_LEN: u64 = 8;
/// `len u32 | encoding u8 | num_samples u32 | mint i64 | maxt i64`.
pub(super) const RECORD_HEADER_LEN: usize = 4 + 1 + 4 + 8 + 8;
/// Body bytes read together with a record's header: most chunks of a block fit (600
/// samples of a counter take ~1.5 KiB); a longer one takes a second read.
const SPECULATIVE_BODY: usize = 4096;
/// Default size at which the writer starts a new segment.
pub const DEFAULT_SEGMENT_BYTES: u64 = 512 << 20;

/// One chunk as handed to the block writer; its bytes are opaque to the block layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkData<'a> {
    /// First sample timestamp, nanoseconds.
    pub mint_nanos: i64,
    /// Last sample timestamp, nanoseconds (inclusive).
    pub maxt_nanos: i64,
    /// Encoding byte of `crate::chunk`.
    pub encoding: u8,
    /// Number of samples in the chunk.
    pub num_samples: u32,
    /// Encoded samples.
    pub bytes: &'a [u8],
}

/// A chunk read back from a block (CRC-checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// First sample timestamp, nanoseconds.
    pub mint_nanos: i64,
    /// Last sample timestamp, nanoseconds (inclusive).
    pub maxt_nanos: i64,
    /// Encoding byte of `crate::chunk`.
    pub encoding: u8,
    /// Number of samples in the chunk.
    pub num_samples: u32,
    /// Encoded samples.
    pub bytes: Vec<u8>,
    /// For a chunk rebuilt from a shared-timestamp record: its base's timestamp part,
    /// which also holds the timestamps decoded once for every chunk that shares them.
    shared: Option<SharedTimestamps>,
}

/// A shared base's timestamp part, as a [`Chunk`] carries it. Two chunks compare equal
/// by their bytes alone: the decoded timestamps are a cache of what the bytes say.
#[derive(Debug, Clone)]
struct SharedTimestamps(Arc<SharedPart>);

impl PartialEq for SharedTimestamps {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SharedTimestamps {}

impl Chunk {
    /// A chunk with timestamps of its own.
    pub fn new(
        mint_nanos: i64,
        maxt_nanos: i64,
        encoding: u8,
        num_samples: u32,
        bytes: Vec<u8>,
    ) -> Self {
        Chunk {
            mint_nanos,
            maxt_nanos,
            encoding,
            num_samples,
            bytes,
            shared: None,
        }
    }

    /// Decode the chunk's float samples from `mint` on into `out`, as
    /// [`chunk::decode_floats_from`] does; a chunk that shares its timestamps with others
    /// copies them from its base's cache and decodes only its values.
    pub fn decode_floats_from(
        &self,
        mint: i64,
        out: &mut Vec<(i64, f64)>,
    ) -> crate::error::Result<()> {
        match self.shared_timestamps() {
            Some(ts) => chunk::decode_floats_with_timestamps(&self.bytes, &ts, mint, out),
            None => chunk::decode_floats_from(self.encoding, &self.bytes, mint, out),
        }
    }

    /// The chunk's timestamps (nanoseconds), decoded once per shared-timestamp base and
    /// segment reader, when the chunk shares them with others: series written together
    /// carry the same instants, and decoding them was a third of a block decode. `None`
    /// for chunks with timestamps of their own, or when this chunk does not decode (then
    /// nothing is cached, so one bad sharer does not cost the others the shortcut).
    fn shared_timestamps(&self) -> Option<Arc<[i64]>> {
        let part = &self.shared.as_ref()?.0;
        if let Some(ts) = part.decoded.get() {
            return Some(Arc::clone(ts));
        }
        let ts: Arc<[i64]> = chunk::packed_timestamps(&self.bytes).ok()?.into();
        // Racing readers decode the same stream; the first to finish is kept.
        Some(Arc::clone(part.decoded.get_or_init(|| ts)))
    }

    /// Borrow as [`ChunkData`] (e.g. to copy it into another block).
    pub fn as_data(&self) -> ChunkData<'_> {
        ChunkData {
            mint_nanos: self.mint_nanos,
            maxt_nanos: self.maxt_nanos,
            encoding: self.encoding,
            num_samples: self.num_samples,
            bytes: &self.bytes,
        }
    }
}

pub(super) fn segment_name(n: u32) -> String {
    format!("{n:06}")
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Appends chunk records to numbered segment files.
#[derive(Debug)]
pub(super) struct SegmentWriter {
    dir: PathBuf,
    max_bytes: u64,
    current: Option<(BufWriter<File>, PathBuf, u32, u64)>,
    next_segment: u32,
    /// Timestamp parts (`header ++ timestamps` of `chunk::PackedParts`) of the current
    /// segment's `PACKED` records, with the offset of the first record holding each.
    shared: HashMap<Vec<u8>, u32>,
    /// Scratch for a shared-timestamp record's data.
    scratch: Vec<u8>,
    /// Scratch for the timestamp part looked up in `shared` (copied only when inserted).
    key: Vec<u8>,
}

impl SegmentWriter {
    pub(super) fn new(dir: PathBuf, max_bytes: u64) -> Self {
        SegmentWriter {
            dir,
            // Offsets are 32-bit in a chunk ref.
            max_bytes: max_bytes.clamp(1 << 10, u64::from(u32::MAX)),
            current: None,
            next_segment: 1,
            shared: HashMap::new(),
            scratch: Vec::new(),
            key: Vec::new(),
        }
    }

    /// Write one record; returns its reference.
    pub(super) fn append(&mut self, c: &ChunkData<'_>) -> Result<u64> {
        let plain_len = u32::try_from(c.bytes.len()).map_err(|_| Error::InvalidChunk {
            reason: "chunk larger than 4 GiB",
        })?;
        let rec_len = (RECORD_HEADER_LEN + c.bytes.len() + 4) as u64;
        let full = match &self.current {
            Some((_, _, _, pos)) => *pos + rec_len > self.max_bytes && *pos > SEGMENT_HEADER_LEN,
            None => true,
        };
        if full {
            self.close_current()?;
            let n = self.next_segment;
            self.next_segment += 1;
            let path = self.dir.join(segment_name(n));
            let f = File::create(&path).map_err(io("create chunk segment", &path))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            w.write_all(&SEGMENT_MAGIC)
                .and_then(|()| w.write_all(&[SEGMENT_VERSION, 0, 0, 0]))
                .map_err(io("write chunk segment", &path))?;
            self.current = Some((w, path, n, SEGMENT_HEADER_LEN));
            self.shared.clear();
        }
        let Some((w, path, n, pos)) = self.current.as_mut() else {
            return Err(Error::InvalidChunk {
                reason: "no open segment",
            });
        };
        if *pos + rec_len > u64::from(u32::MAX) {
            return Err(Error::InvalidChunk {
                reason: "chunk does not fit a segment",
            });
        }
        // Offsets fit 32 bits (checked above); shared records only shrink the record.
        let here = *pos as u32;
        let (encoding, data) =
            match share_timestamps(&mut self.shared, &mut self.key, &mut self.scratch, c, here) {
                Some(d) => (ENCODING_SHARED_TS, d),
                None => (c.encoding, c.bytes),
            };
        let len = u32::try_from(data.len()).unwrap_or(plain_len);
        let rec_len = (RECORD_HEADER_LEN + data.len() + 4) as u64;
        let mut head = [0u8; RECORD_HEADER_LEN];
        head[..4].copy_from_slice(&len.to_le_bytes());
        head[4] = encoding;
        head[5..9].copy_from_slice(&c.num_samples.to_le_bytes());
        head[9..17].copy_from_slice(&c.mint_nanos.to_le_bytes());
        head[17..25].copy_from_slice(&c.maxt_nanos.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&head[4..]);
        h.update(data);
        let crc = h.finalize();
        w.write_all(&head)
            .and_then(|()| w.write_all(data))
            .and_then(|()| w.write_all(&crc.to_le_bytes()))
            .map_err(io("write chunk segment", path))?;
        let r = (u64::from(*n) << 32) | *pos;
        *pos += rec_len;
        Ok(r)
    }

    /// Close the current segment (fsynced).
    fn close_current(&mut self) -> Result<()> {
        if let Some((w, path, _, _)) = self.current.take() {
            let f = w.into_inner().map_err(|e| Error::Io {
                op: "flush chunk segment",
                path: path.clone(),
                source: e.into_error(),
            })?;
            f.sync_all().map_err(io("fsync chunk segment", &path))?;
        }
        Ok(())
    }

    /// Flush and fsync the open segment.
    pub(super) fn finish(mut self) -> Result<()> {
        self.close_current()
    }
}

/// The data of a shared-timestamp record for `c` (written at offset `here`) when an
/// earlier record of the segment has the same timestamp part and sharing saves bytes;
/// otherwise remembers `c`'s timestamp part (when it has one) and returns `None`.
///
/// Data: `uvarint base offset | uvarint params length | params | value stream`.
fn share_timestamps<'s>(
    shared: &mut HashMap<Vec<u8>, u32>,
    key: &mut Vec<u8>,
    scratch: &'s mut Vec<u8>,
    c: &ChunkData<'_>,
    here: u32,
) -> Option<&'s [u8]> {
    if c.encoding != ENCODING_PACKED {
        return None;
    }
    let p = chunk::packed_parts(c.bytes).ok()?;
    key.clear();
    key.extend_from_slice(p.header);
    key.extend_from_slice(p.timestamps);
    let Some(&base) = shared.get(key.as_slice()) else {
        if shared.len() < MAX_SHARED_KEYS {
            shared.insert(key.clone(), here);
        }
        return None;
    };
    scratch.clear();
    put_uvarint(scratch, u64::from(base));
    put_uvarint(scratch, p.params.len() as u64);
    scratch.extend_from_slice(p.params);
    scratch.extend_from_slice(p.values);
    (scratch.len() < c.bytes.len()).then_some(scratch.as_slice())
}

/// Random-access reader over a block's segments (positional reads, no shared cursor, so
/// concurrent queries need no lock).
#[derive(Debug)]
pub(super) struct SegmentReader {
    segments: Vec<Segment>,
    /// Timestamp parts of base records of shared-timestamp records, by chunk ref:
    /// `(header ++ timestamps, header length)`. Few (one per sampling pattern and
    /// segment) and small, so queries read each base once.
    bases: RwLock<HashMap<u64, Arc<SharedPart>>>,
}

/// An open chunk segment: file, path, size, format version.
type Segment = (File, PathBuf, u64, u8);

/// A base record's timestamp part: `header ++ timestamps` of `chunk::PackedParts`, the
/// header's length, and the timestamps decoded by the first reader that wanted them.
#[derive(Debug)]
struct SharedPart {
    bytes: Vec<u8>,
    header_len: usize,
    decoded: OnceLock<Arc<[i64]>>,
}

impl SegmentReader {
    /// Open `dir/000001…` in order; numbering must be contiguous from 1.
    pub(super) fn open(dir: &Path) -> Result<SegmentReader> {
        let mut names: Vec<(u32, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io("list chunk segments", dir))? {
            let e = e.map_err(io("list chunk segments", dir))?;
            let name = e.file_name();
            let Some(n) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            names.push((n, e.path()));
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for (i, (n, path)) in names.into_iter().enumerate() {
            if n as usize != i + 1 {
                return Err(Error::CorruptChunk {
                    path,
                    offset: 0,
                    reason: "chunk segment numbering has a gap",
                });
            }
            let f = File::open(&path).map_err(io("open chunk segment", &path))?;
            let size = f.metadata().map_err(io("stat chunk segment", &path))?.len();
            let mut head = [0u8; SEGMENT_HEADER_LEN as usize];
            if size < SEGMENT_HEADER_LEN {
                return Err(Error::CorruptChunk {
                    path,
                    offset: 0,
                    reason: "segment shorter than its header",
                });
            }
            f.read_exact_at(&mut head, 0)
                .map_err(io("read chunk segment", &path))?;
            if head[..4] != SEGMENT_MAGIC {
                return Err(Error::CorruptChunk {
                    path,
                    offset: 0,
                    reason: "bad segment magic",
                });
            }
            if head[5..] != [0, 0, 0] {
                return Err(Error::CorruptChunk {
                    path,
                    offset: 5,
                    reason: "reserved segment header bytes are not zero",
                });
            }
            if !(1..=SEGMENT_VERSION).contains(&head[4]) {
                return Err(Error::UnsupportedVersion {
                    path,
                    version: u32::from(head[4]),
                });
            }
            segments.push((f, path, size, head[4]));
        }
        Ok(SegmentReader {
            segments,
            bases: RwLock::new(HashMap::new()),
        })
    }

    /// Total bytes of all segments.
    pub(super) fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.2).sum()
    }

    /// Read and CRC-check the chunk `meta` points at; its header must agree with `meta`.
    /// A shared-timestamp record comes back as the `PACKED` chunk it stands for.
    pub(super) fn read(&self, meta: &ChunkMeta) -> Result<Chunk> {
        let seg = meta.segment();
        let offset = u64::from(meta.offset());
        let segment = self.segment(seg, offset)?;
        let mut chunk = Self::read_record(segment, offset)?;
        let (_, path, _, version) = segment;
        let corrupt = |reason| Error::CorruptChunk {
            path: path.clone(),
            offset,
            reason,
        };
        if chunk.mint_nanos != meta.mint_nanos || chunk.maxt_nanos != meta.maxt_nanos {
            return Err(corrupt("chunk time range disagrees with the index"));
        }
        if chunk.encoding == ENCODING_SHARED_TS {
            if *version < 2 {
                return Err(corrupt("shared-timestamp record in a version 1 segment"));
            }
            let (bytes, part) = self
                .unshare(seg, segment, offset, &chunk.bytes)
                .map_err(corrupt)?;
            chunk.bytes = bytes;
            chunk.shared = Some(SharedTimestamps(part));
            chunk.encoding = ENCODING_PACKED;
        }
        Ok(chunk)
    }

    /// Segment `seg` (1-based), or the error for a ref naming a missing one.
    fn segment(&self, seg: u32, offset: u64) -> Result<&Segment> {
        seg.checked_sub(1)
            .and_then(|i| self.segments.get(i as usize))
            .ok_or_else(|| Error::CorruptChunk {
                path: PathBuf::from(segment_name(seg)),
                offset,
                reason: "chunk ref names a missing segment",
            })
    }

    /// The `PACKED` chunk a shared-timestamp record at `seg`/`offset` with `data` stands
    /// for: its base record's count, unit, first timestamp and timestamp stream around its
    /// own value mode, parameters and value stream.
    fn unshare(
        &self,
        seg: u32,
        segment: &Segment,
        offset: u64,
        data: &[u8],
    ) -> std::result::Result<(Vec<u8>, Arc<SharedPart>), &'static str> {
        let mut pos = 0;
        let base = get_uvarint(data, &mut pos).ok_or("bad shared-timestamp base")?;
        let params_len = get_uvarint(data, &mut pos)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("bad shared-timestamp parameters")?;
        let own = &data[pos..];
        if base >= offset || params_len > own.len() {
            return Err("bad shared-timestamp record");
        }
        let key = (u64::from(seg) << 32) | base;
        let cached = self.bases.read().get(&key).cloned();
        let parts = match cached {
            Some(p) => p,
            None => {
                let b = Self::read_record(segment, base)
                    .map_err(|_| "unreadable shared-timestamp base record")?;
                if b.encoding != ENCODING_PACKED {
                    return Err("shared-timestamp base is not a PACKED chunk");
                }
                let p =
                    chunk::packed_parts(&b.bytes).map_err(|_| "corrupt shared-timestamp base")?;
                let mut v = Vec::with_capacity(p.header.len() + p.timestamps.len());
                v.extend_from_slice(p.header);
                v.extend_from_slice(p.timestamps);
                let p = Arc::new(SharedPart {
                    bytes: v,
                    header_len: p.header.len(),
                    decoded: OnceLock::new(),
                });
                let mut cache = self.bases.write();
                if cache.len() < MAX_CACHED_BASES {
                    cache.insert(key, Arc::clone(&p));
                }
                p
            }
        };
        let (shared, header_len) = (&parts.bytes, parts.header_len);
        let mut out = Vec::with_capacity(shared.len() + own.len());
        out.extend_from_slice(&shared[..header_len]);
        out.extend_from_slice(&own[..params_len]);
        out.extend_from_slice(&shared[header_len..]);
        out.extend_from_slice(&own[params_len..]);
        Ok((out, parts))
    }

    /// Read and CRC-check the record at `seg`/`offset`, as stored.
    fn read_record((f, path, size, _): &Segment, offset: u64) -> Result<Chunk> {
        let corrupt = |reason| Error::CorruptChunk {
            path: path.clone(),
            offset,
            reason,
        };
        if offset < SEGMENT_HEADER_LEN || offset + RECORD_HEADER_LEN as u64 > *size {
            return Err(corrupt("chunk record header beyond end of segment"));
        }
        // One read takes the header and, usually, the whole record: a query over thousands
        // of short series made two `pread` calls per chunk, and syscall entry plus the
        // page-cache copy were 6-12 % of its CPU (`topk(10, hft_pnl_usd)` 12.0 -> 9.9 ms
        // with one). Longer records take a second read for the rest.
        let first = (RECORD_HEADER_LEN + SPECULATIVE_BODY).min((*size - offset) as usize);
        let mut buf = vec![0u8; first];
        f.read_exact_at(&mut buf, offset)
            .map_err(io("read chunk segment", path))?;
        let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let le64 = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            i64::from_le_bytes(a)
        };
        let len = le32(&buf[..4]) as usize;
        let end = offset + (RECORD_HEADER_LEN + len + 4) as u64;
        if end > *size {
            return Err(corrupt("chunk record overruns the segment"));
        }
        let crc_at = RECORD_HEADER_LEN + len;
        if crc_at + 4 > first {
            buf.resize(crc_at + 4, 0);
            f.read_exact_at(&mut buf[first..], offset + first as u64)
                .map_err(io("read chunk segment", path))?;
        }
        // The checksum covers the header after its length field and the body, which lie
        // back to back in the record.
        if crc32fast::hash(&buf[4..crc_at]) != le32(&buf[crc_at..]) {
            return Err(Error::ChunkChecksum {
                path: path.clone(),
                offset,
            });
        }
        let (mint, maxt) = (le64(&buf[9..17]), le64(&buf[17..25]));
        let (encoding, samples) = (buf[4], le32(&buf[5..9]));
        buf.truncate(crc_at);
        buf.drain(..RECORD_HEADER_LEN);
        Ok(Chunk::new(mint, maxt, encoding, samples, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::ChunkMeta;

    /// Records around the size one read takes (header + 4 KiB), and the last record of a
    /// segment shorter than that, read back whole; a flipped byte past the first read is
    /// caught by the CRC.
    #[test]
    fn records_of_any_length_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = dir.path().join("chunks");
        std::fs::create_dir(&chunks).unwrap();
        let sizes = [
            0,
            1,
            SPECULATIVE_BODY - 5,
            SPECULATIVE_BODY - 4,
            SPECULATIVE_BODY - 3,
            SPECULATIVE_BODY,
            3 * SPECULATIVE_BODY + 7,
            17,
        ];
        let bodies: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 31 + i * 7) as u8).collect())
            .collect();
        let mut w = SegmentWriter::new(chunks.clone(), DEFAULT_SEGMENT_BYTES);
        let mut metas = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            let c = ChunkData {
                mint_nanos: i as i64,
                maxt_nanos: i as i64 + 1,
                encoding: crate::chunk::ENCODING_XOR,
                num_samples: 1,
                bytes: b,
            };
            let chunk_ref = w.append(&c).unwrap();
            metas.push(ChunkMeta {
                mint_nanos: c.mint_nanos,
                maxt_nanos: c.maxt_nanos,
                chunk_ref,
            });
        }
        w.finish().unwrap();
        let r = SegmentReader::open(&chunks).unwrap();
        for (m, b) in metas.iter().zip(&bodies) {
            let c = r.read(m).unwrap();
            assert_eq!(&c.bytes, b, "record of {} bytes", b.len());
        }
        drop(r);
        // Damage the long record beyond what the first read takes.
        let long = metas[6];
        let path = chunks.join(segment_name(long.segment()));
        let mut file = std::fs::read(&path).unwrap();
        let at = long.offset() as usize + RECORD_HEADER_LEN + 2 * SPECULATIVE_BODY;
        file[at] ^= 0x40;
        std::fs::write(&path, file).unwrap();
        let r = SegmentReader::open(&chunks).unwrap();
        assert!(matches!(r.read(&long), Err(Error::ChunkChecksum { .. })));
        assert_eq!(r.read(&metas[7]).unwrap().bytes, bodies[7]);
    }
}
