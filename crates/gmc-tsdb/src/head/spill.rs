//! Closed head chunks moved out of memory: once recompressed, a chunk's bytes go to a spill
//! segment file in `<data dir>/head_chunks/` and the head keeps only where they are.
//!
//! Why: closed chunks are most of the head's memory (on the trading workload ~4 bytes per
//! sample against ~0.3 kB of labels and index per series), and they grow with the head's
//! time range, while only the open chunk is written to. Prometheus keeps the same data in
//! memory-mapped `chunks_head` files for the same reason. Reads (queries over the head, a
//! flush, a retried write's duplicate check) come from the page cache while the machine
//! has memory to spare.
//!
//! Reads go through a read-only mapping of each segment: a query over the head touches
//! every chunk of thousands of series, and a `pread` plus a buffer per chunk made such
//! queries 5–16 % slower than with the chunks in memory. The pages a read touches count
//! in the process's RSS (as file pages the kernel may drop under pressure) until the
//! segment is freed; ingest never reads, so its memory peak is unaffected, and a flush,
//! which reads every chunk once, copies them out with `pread` instead (through the
//! mapping it raised the process's peak by the whole spill, 37 MB on peerbench).
//!
//! The files are a cache, not durable state: the WAL still holds every sample until a
//! flush has written it to a block, so nothing is fsynced and a restart discards them
//! (replay rebuilds the head, which spills again as it recompresses).
//!
//! A segment file is unlinked as soon as it is created (Linux keeps an open file's data
//! until its last descriptor closes): each spilled chunk holds its segment by reference
//! count, so the disk space goes back exactly when the last chunk written to it is
//! dropped (after a flush), and a crash leaves nothing to clean up. Where unlinking an
//! open file fails the path is removed when the segment drops instead, and leftovers are
//! removed when the store opens.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Name of the spill directory inside the data directory.
pub(crate) const DIR: &str = "head_chunks";

/// Size at which a segment is closed for writing and the next one started. Small enough
/// that a segment whose chunks were mostly flushed does not hold much dead space for
/// long; large enough that a file per segment costs nothing.
const SEGMENT_BYTES: u64 = 64 << 20;

/// Where closed head chunks are spilled; one per head.
#[derive(Debug)]
pub(crate) struct Spill {
    dir: PathBuf,
    metrics: Arc<Metrics>,
    current: Mutex<Current>,
}

#[derive(Debug, Default)]
struct Current {
    seg: Option<Arc<Segment>>,
    next_id: u64,
}

/// One spill file, alive while any chunk written to it is.
#[derive(Debug)]
pub(crate) struct Segment {
    file: File,
    /// The whole file (its size is fixed at creation), mapped read-only.
    map: memmap2::Mmap,
    /// Set when the file could not be unlinked at creation: removed on drop instead.
    path: Option<PathBuf>,
    /// Bytes written (the next chunk's offset).
    len: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.metrics
            .spilled_bytes
            .fetch_sub(self.len.load(Relaxed), Relaxed);
        self.metrics.spill_segments.fetch_sub(1, Relaxed);
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A spilled chunk's bytes: segment, offset and length.
#[derive(Debug, Clone)]
pub(crate) struct SpillRef {
    seg: Arc<Segment>,
    offset: u32,
    len: u32,
}

impl SpillRef {
    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// A copy of the bytes read from the file, leaving the mapping's pages untouched.
    pub(crate) fn read(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len as usize];
        self.seg
            .file
            .read_exact_at(&mut buf, u64::from(self.offset))
            .map_err(|e| Error::io("read spilled head chunk", Path::new(DIR), e))?;
        Ok(buf)
    }

    /// The bytes, through the segment's mapping.
    pub(crate) fn bytes(&self) -> Result<&[u8]> {
        let start = self.offset as usize;
        self.seg
            .map
            .get(start..start + self.len as usize)
            .ok_or_else(|| {
                Error::io(
                    "read spilled head chunk",
                    Path::new(DIR),
                    std::io::Error::other("chunk outside its segment"),
                )
            })
    }
}

impl Spill {
    /// A spill area in `data_dir`, emptied of what an earlier run may have left.
    pub(crate) fn open(data_dir: &Path, metrics: Arc<Metrics>) -> Result<Spill> {
        let dir = data_dir.join(DIR);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("clear head chunk spill directory", &dir, e)),
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("create head chunk spill directory", &dir, e))?;
        Ok(Spill {
            dir,
            metrics,
            current: Mutex::new(Current::default()),
        })
    }

    /// Write `chunks` (in order) and return where each went. All or nothing: on an error
    /// the caller keeps the chunks in memory.
    pub(crate) fn write(&self, chunks: &[&[u8]]) -> Result<Vec<SpillRef>> {
        let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        if total == 0 {
            return Ok(Vec::new());
        }
        let mut cur = self.current.lock();
        let seg = match &cur.seg {
            // A segment only the writer still holds is all dead space: start afresh.
            Some(s) if Arc::strong_count(s) > 1 && s.len.load(Relaxed) + total <= s.cap() => {
                Arc::clone(s)
            }
            _ => {
                let s = self.create(cur.next_id, total)?;
                cur.next_id += 1;
                cur.seg = Some(Arc::clone(&s));
                s
            }
        };
        let start = seg.len.load(Relaxed);
        // One write per call: a recompression pass spills a shard's chunks at once.
        let mut buf = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        let mut out = Vec::with_capacity(chunks.len());
        for c in chunks {
            let offset = start + buf.len() as u64;
            // A chunk larger than a segment still gets one of its own (offset 0).
            let (Ok(offset), Ok(len)) = (u32::try_from(offset), u32::try_from(c.len())) else {
                return Err(Error::io(
                    "spill head chunk",
                    &self.dir,
                    std::io::Error::other("chunk too large to spill"),
                ));
            };
            buf.extend_from_slice(c);
            out.push(SpillRef {
                seg: Arc::clone(&seg),
                offset,
                len,
            });
        }
        seg.file
            .write_all_at(&buf, start)
            .map_err(|e| Error::io("spill head chunks", &self.dir, e))?;
        seg.len.store(start + total, Relaxed);
        self.metrics.spilled_bytes.fetch_add(total, Relaxed);
        Ok(out)
    }

    /// Let the segment being written go if no chunk uses it any more (after a flush took
    /// the head's chunks), so its disk space returns now rather than at the next write.
    pub(crate) fn release_unused(&self) {
        let mut cur = self.current.lock();
        if cur.seg.as_ref().is_some_and(|s| Arc::strong_count(s) == 1) {
            cur.seg = None;
        }
    }

    /// A new segment of at least `need` bytes (normally [`SEGMENT_BYTES`]).
    fn create(&self, id: u64, need: u64) -> Result<Arc<Segment>> {
        let path = self.dir.join(format!("{id:08}.seg"));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("create head chunk spill segment", &path, e))?;
        let path = match std::fs::remove_file(&path) {
            Ok(()) => None,
            Err(_) => Some(path),
        };
        let cap = need.max(SEGMENT_BYTES);
        let dir = self.dir.as_path();
        // Sparse: blocks are allocated as chunks are written.
        file.set_len(cap)
            .map_err(|e| Error::io("size head chunk spill segment", dir, e))?;
        let len = usize::try_from(cap).map_err(|_| {
            Error::io(
                "map head chunk spill segment",
                dir,
                std::io::Error::other("segment larger than the address space"),
            )
        })?;
        let map = map_read_only(&file, len)
            .map_err(|e| Error::io("map head chunk spill segment", dir, e))?;
        self.metrics.spill_segments.fetch_add(1, Relaxed);
        Ok(Arc::new(Segment {
            file,
            map,
            path,
            len: AtomicU64::new(0),
            metrics: Arc::clone(&self.metrics),
        }))
    }
}

impl Segment {
    /// Bytes the segment can hold.
    fn cap(&self) -> u64 {
        self.map.len() as u64
    }
}

/// Map the first `len` bytes of `file` read-only.
#[allow(unsafe_code)]
fn map_read_only(file: &File, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: a mapped file that shrinks under the mapping turns reads into SIGBUS, and one
    // written by another process changes bytes under a `&[u8]`. Neither can happen here:
    // the file was created by this process with `create_new` in the data directory it
    // holds locked, unlinked at once where the OS allows (then no other process can open
    // it by name), sized before mapping and never resized; this process
    // writes only byte ranges that no chunk handed out so far refers to (each write goes
    // past the segment's current length), and every read stays below that length.
    unsafe { memmap2::MmapOptions::new().len(len).map(file) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_read_back_and_space_returns_with_the_last_reference() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let s = Spill::open(dir.path(), Arc::clone(&m)).unwrap();
        let a = vec![1u8; 300];
        let b: Vec<u8> = (0..=255).collect();
        let refs = s.write(&[&a, &b]).unwrap();
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].bytes().unwrap(), a);
        assert_eq!(refs[1].bytes().unwrap(), b);
        assert_eq!(refs[1].len(), 256);
        assert_eq!(refs[1].read().unwrap(), b);
        assert_eq!(m.spilled_bytes.load(Relaxed), 556);
        // The segment file is already unlinked: nothing to clean up after a crash.
        assert_eq!(std::fs::read_dir(dir.path().join(DIR)).unwrap().count(), 0);
        let more = s.write(&[&b]).unwrap();
        assert_eq!(more[0].bytes().unwrap(), b);
        assert_eq!(m.spilled_bytes.load(Relaxed), 812);
        drop(refs);
        s.release_unused();
        assert_eq!(
            m.spill_segments.load(Relaxed),
            1,
            "a chunk still uses the segment"
        );
        drop(more);
        s.release_unused();
        assert_eq!(m.spilled_bytes.load(Relaxed), 0);
        assert_eq!(m.spill_segments.load(Relaxed), 0);
    }

    #[test]
    fn a_full_segment_rolls_over_and_old_ones_free_when_unreferenced() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::default());
        let s = Spill::open(dir.path(), Arc::clone(&m)).unwrap();
        let big = vec![7u8; (SEGMENT_BYTES / 2 + 1) as usize];
        let first = s.write(&[&big]).unwrap();
        let second = s.write(&[&big]).unwrap();
        assert_eq!(m.spill_segments.load(Relaxed), 2);
        assert!(!Arc::ptr_eq(&first[0].seg, &second[0].seg));
        drop(first);
        assert_eq!(m.spill_segments.load(Relaxed), 1);
        assert_eq!(second[0].bytes().unwrap().len(), big.len());
    }

    #[test]
    fn leftovers_of_an_earlier_run_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(DIR)).unwrap();
        std::fs::write(dir.path().join(DIR).join("00000000.seg"), b"old").unwrap();
        let _s = Spill::open(dir.path(), Arc::new(Metrics::default())).unwrap();
        assert_eq!(std::fs::read_dir(dir.path().join(DIR)).unwrap().count(), 0);
    }
}
