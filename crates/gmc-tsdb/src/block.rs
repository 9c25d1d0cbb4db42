//! Immutable blocks: a directory `<ulid>/` with `meta.json`, chunk segments `chunks/000001…`
//! and an `index` (formats: `docs/format/block.md`, `docs/format/index.md`).
//! [`Writer`] builds one crash-safely; [`Block`] opens, queries and verifies one.

mod chunks;
mod meta;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gmc_model::{ErrorClass, Labels, Matcher};

pub use chunks::{Chunk, ChunkData, DEFAULT_SEGMENT_BYTES, SEGMENT_MAGIC, SEGMENT_VERSION};
pub use meta::{BlockMeta, Compaction, Resolution, Stats, META_VERSION};
pub use writer::Writer;

pub use crate::index::ChunkMeta;
use crate::index::{self, LabelIndex};

/// Failures of the block layer.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O cause.
        #[source]
        source: std::io::Error,
    },
    /// The block's index is unreadable or corrupt.
    #[error(transparent)]
    Index(#[from] index::Error),
    /// A chunk segment is structurally damaged (truncated, bad header, bad reference).
    #[error("corrupt chunk segment {path:?} at offset {offset}: {reason}")]
    CorruptChunk {
        /// Segment file.
        path: PathBuf,
        /// Byte offset of the record (or 0 for the header).
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A chunk record's CRC32 does not match.
    #[error("chunk segment {path:?}: CRC32 mismatch in the record at offset {offset}")]
    ChunkChecksum {
        /// Segment file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
    },
    /// `meta.json` does not parse or cannot be written.
    #[error("block meta {path:?}: {source}")]
    Meta {
        /// The `meta.json` path.
        path: PathBuf,
        /// The JSON cause.
        #[source]
        source: serde_json::Error,
    },
    /// A file of the block has an unknown format version.
    #[error("{path:?}: unsupported format version {version}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// A chunk given to the writer is invalid.
    #[error("invalid chunk: {reason}")]
    InvalidChunk {
        /// What is wrong.
        reason: &'static str,
    },
    /// `finish` was called on a writer without series.
    #[error("refusing to write a block without series")]
    Empty,
    /// `meta.json` disagrees with the block's contents (found by [`Block::verify`]).
    #[error("block {path:?}: {what} in meta.json is {meta}, the block holds {found}")]
    StatsMismatch {
        /// Block directory.
        path: PathBuf,
        /// Which statistic.
        what: &'static str,
        /// Value in `meta.json`.
        meta: u64,
        /// Value counted.
        found: u64,
    },
    /// A chunk's samples do not decode (compaction, rollups, verify).
    #[error("block {path:?}: chunk at ref {chunk_ref:#x} does not decode: {source}")]
    Decode {
        /// Block directory.
        path: PathBuf,
        /// Chunk reference.
        chunk_ref: u64,
        /// The codec's error.
        #[source]
        source: crate::error::Error,
    },
}

impl Error {
    /// The class of this error (see `gmc_model::ErrorClass`).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } => ErrorClass::Unavailable,
            Error::Index(e) => e.class(),
            Error::InvalidChunk { .. } | Error::Empty => ErrorClass::BadInput,
            _ => ErrorClass::Internal,
        }
    }
}

/// Result alias of the block layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Crockford base32 alphabet of ULIDs.
const ULID_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID: 48-bit millisecond time then 80 bits that differ per call and process, so
/// ids sort by creation time. Randomness comes from hashing time, pid and a counter,
/// which is unique enough for directory names of one store.
pub fn new_block_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = gmc_model::now_nanos();
    let ms = (gmc_model::nanos_to_millis(now) as u64) & ((1 << 48) - 1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&now.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&n.to_le_bytes());
    let r = h.digest128();
    let value: u128 = (u128::from(ms) << 80) | (r & ((1u128 << 80) - 1));
    (0..26)
        .rev()
        .map(|i| ULID_ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// Whether `s` looks like a block id (26 Crockford base32 characters).
pub fn is_block_id(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| ULID_ALPHABET.contains(&b))
}

/// fsync a directory so renames and new entries in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|source| Error::Io {
            op: "fsync directory",
            path: dir.to_owned(),
            source,
        })
}

/// Delete a block directory crash-safely: rename to `<id>.tmp` (atomic; a leftover is
/// removed by [`open_all`]), sync the parent, then remove the files.
pub fn delete(dir: &Path) -> Result<()> {
    let io = |op: &'static str| {
        move |source| Error::Io {
            op,
            path: dir.to_owned(),
            source,
        }
    };
    let mut tmp = dir.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::rename(dir, &tmp).map_err(io("rename block for deletion"))?;
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    std::fs::remove_dir_all(&tmp).map_err(io("remove block"))?;
    Ok(())
}

/// An opened block. Reads take `&self` and need no lock.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: index::Reader,
    segments: chunks::SegmentReader,
    meta_bytes: u64,
}

/// Result of [`open_all`].
#[derive(Debug, Default)]
pub struct OpenReport {
    /// Blocks opened, sorted by `mint` then id.
    pub blocks: Vec<Block>,
    /// Block directories that failed to open, with the reason; left in place for an
    /// operator (they are not served).
    pub failed: Vec<(PathBuf, Error)>,
    /// Leftover `<id>.tmp` directories of interrupted writes or deletions, removed.
    pub removed_tmp: Vec<PathBuf>,
}

/// Open every block directory under `parent` (directories named by a block id), deleting
/// leftover `<id>.tmp` directories. Other entries (e.g. the WAL) are ignored.
///
/// Call this at startup only: a `.tmp` directory may belong to a writer running right now.
/// Later scans use [`open_existing`].
pub fn open_all(parent: &Path) -> Result<OpenReport> {
    open_dir(parent, true)
}

/// Like [`open_all`] but leaves `.tmp` directories alone (safe while writers run).
pub fn open_existing(parent: &Path) -> Result<OpenReport> {
    open_dir(parent, false)
}

fn open_dir(parent: &Path, remove_tmp: bool) -> Result<OpenReport> {
    let io = |op: &'static str| {
        move |source| Error::Io {
            op,
            path: parent.to_owned(),
            source,
        }
    };
    let mut report = OpenReport::default();
    if !parent.exists() {
        return Ok(report);
    }
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(parent).map_err(io("list blocks"))? {
        let e = e.map_err(io("list blocks"))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".tmp") {
            if remove_tmp && is_block_id(stem) {
                std::fs::remove_dir_all(e.path()).map_err(|source| Error::Io {
                    op: "remove leftover block tmp dir",
                    path: e.path(),
                    source,
                })?;
                report.removed_tmp.push(e.path());
            }
            continue;
        }
        if is_block_id(name) && e.path().is_dir() {
            dirs.push(e.path());
        }
    }
    for d in dirs {
        match Block::open(&d) {
            Ok(b) => report.blocks.push(b),
            Err(err) => report.failed.push((d, err)),
        }
    }
    report
        .blocks
        .sort_by(|a, b| (a.meta.mint_nanos, &a.meta.id).cmp(&(b.meta.mint_nanos, &b.meta.id)));
    Ok(report)
}

/// What [`Block::verify`] checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Series read.
    pub series: u64,
    /// Chunks read, CRC-checked and decoded.
    pub chunks: u64,
    /// Samples decoded.
    pub samples: u64,
}

impl Block {
    /// Open and validate (meta, index checksums, segment headers) the block at `dir`.
    pub fn open(dir: &Path) -> Result<Block> {
        let meta = BlockMeta::read(dir)?;
        let meta_bytes = std::fs::metadata(dir.join("meta.json"))
            .map(|m| m.len())
            .unwrap_or(0);
        let index = index::Reader::open(&dir.join("index"))?;
        let segments = chunks::SegmentReader::open(&dir.join("chunks"))?;
        Ok(Block {
            dir: dir.to_owned(),
            meta,
            index,
            segments,
            meta_bytes,
        })
    }

    /// The block's `meta.json`.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's index (for [`LabelIndex`] queries returning series ids).
    pub fn index(&self) -> &index::Reader {
        &self.index
    }

    /// Bytes on disk: meta, index and chunk segments.
    pub fn size_bytes(&self) -> u64 {
        self.meta_bytes + self.index.size_bytes() + self.segments.size_bytes()
    }

    /// Series matching all `matchers`, in label order, with their chunk metas.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<(Labels, Vec<ChunkMeta>)>> {
        let ids = self.index.select(matchers)?;
        Ok(self.index.series_many(&ids)?)
    }

    /// Like [`Block::select`], keeping only chunks overlapping `[mint_nanos, maxt_nanos]`
    /// and only series left with at least one chunk.
    pub fn select_range(
        &self,
        matchers: &[Matcher],
        mint_nanos: i64,
        maxt_nanos: i64,
    ) -> Result<Vec<(Labels, Vec<ChunkMeta>)>> {
        if !self.meta.overlaps(mint_nanos, maxt_nanos) {
            return Ok(Vec::new());
        }
        let mut out = self.select(matchers)?;
        for (_, metas) in &mut out {
            metas.retain(|m| m.mint_nanos <= maxt_nanos && mint_nanos <= m.maxt_nanos);
        }
        out.retain(|(_, metas)| !metas.is_empty());
        Ok(out)
    }

    /// Every series, in label order.
    pub fn all_series(&self) -> Result<Vec<(Labels, Vec<ChunkMeta>)>> {
        let ids: Vec<u32> = (0..self.index.num_series()).collect();
        Ok(self.index.series_many(&ids)?)
    }

    /// Read one chunk (CRC-checked).
    pub fn read_chunk(&self, meta: &ChunkMeta) -> Result<Chunk> {
        self.segments.read(meta)
    }

    /// Sorted label names.
    pub fn label_names(&self) -> Result<Vec<String>> {
        Ok(self.index.label_names(None)?)
    }

    /// Sorted values of label `name`.
    pub fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.index.label_values(name, None)?)
    }

    /// Read every series and chunk, checking CRCs, that each chunk decodes to its declared
    /// sample count, and that `meta.json`'s statistics match. The first problem is returned.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut r = VerifyReport::default();
        for id in 0..self.index.num_series() {
            let (_, metas) = self.index.series(id)?;
            r.series += 1;
            for m in &metas {
                let c = self.read_chunk(m)?;
                let decode_err = |source| Error::Decode {
                    path: self.dir.clone(),
                    chunk_ref: m.chunk_ref,
                    source,
                };
                let mut n = 0u64;
                for s in crate::chunk::decode_iter(c.encoding, &c.bytes).map_err(decode_err)? {
                    s.map_err(decode_err)?;
                    n += 1;
                }
                if n != u64::from(c.num_samples) {
                    return Err(Error::CorruptChunk {
                        path: self
                            .dir
                            .join("chunks")
                            .join(chunks::segment_name(m.segment())),
                        offset: u64::from(m.offset()),
                        reason: "decoded sample count differs from the record header",
                    });
                }
                r.chunks += 1;
                r.samples += n;
            }
        }
        let st = self.meta.stats;
        for (what, meta, found) in [
            ("series", st.series, r.series),
            ("chunks", st.chunks, r.chunks),
            ("samples", st.samples, r.samples),
        ] {
            if meta != found {
                return Err(Error::StatsMismatch {
                    path: self.dir.clone(),
                    what,
                    meta,
                    found,
                });
            }
        }
        Ok(r)
    }
}
