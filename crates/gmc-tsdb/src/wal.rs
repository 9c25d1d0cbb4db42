//! Write-ahead log: numbered segment files of checksummed records, written before the head
//! so an acknowledged append survives a crash; replayed on open; checkpointed after a head
//! flush so replay stays bounded. Byte format: `docs/format/wal.md`.

pub mod record;
mod replay;

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::config::SyncPolicy;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

pub(crate) use replay::{replay, ReplayStats};

/// Magic and version at the start of every segment.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"GMCWAL\x00\x01";
/// Prefix of checkpoint directory names (`checkpoint.<last covered segment>`).
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";

/// Name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{seq:08}")
}

/// Segment numbers in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut v = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| Error::io("list wal", dir, e))?;
    for e in rd {
        let e = e.map_err(|e| Error::io("list wal", dir, e))?;
        if let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) {
            v.push(n);
        }
    }
    v.sort_unstable();
    Ok(v)
}

/// fsync a directory so created, renamed or removed entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("fsync dir", dir, e))
}

struct Inner {
    /// The segment being written; `None` while it could not be created (disk full at
    /// open), in which case the next append creates segment `seq`.
    file: Option<Arc<File>>,
    seq: u64,
    offset: u64,
    /// Number of successful writes so far (the group-commit sequence).
    written: u64,
}

#[derive(Default)]
struct SyncState {
    synced: u64,
    syncing: bool,
    /// Write ranges `(first, last)` whose fsync failed: those appends get an error.
    failed: Vec<(u64, u64)>,
}

/// A write to the log ([`Wal::write`]), to be made durable with [`Wal::sync`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// The write's number in the log's write count (`None`: nothing was written).
    number: Option<u64>,
    /// The segment it went to.
    pub(crate) segment: u64,
}

/// The WAL writer.
pub(crate) struct Wal {
    dir: PathBuf,
    policy: SyncPolicy,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.dir).finish()
    }
}

fn create_segment(dir: &Path, seq: u64) -> Result<File> {
    let path = dir.join(segment_name(seq));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)
        .map_err(|e| Error::io("create wal segment", &path, e))?;
    if let Err(e) = f.write_all(SEGMENT_MAGIC) {
        // Do not leave a headerless file behind (on a full disk the next attempt
        // recreates it; replay also discards such files).
        drop(f);
        let _ = fs::remove_file(&path);
        return Err(Error::io("write wal segment header", &path, e));
    }
    sync_dir(dir)?;
    Ok(f)
}

impl Wal {
    /// Open the WAL for writing in a fresh segment after `last_seq`.
    pub(crate) fn open(
        dir: &Path,
        last_seq: u64,
        policy: SyncPolicy,
        segment_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> Result<Wal> {
        let seq = last_seq + 1;
        // A full disk must not keep the store from starting and serving reads: the
        // segment is then created by the first append that finds space.
        let file = match create_segment(dir, seq) {
            Ok(f) => Some(Arc::new(f)),
            Err(e @ Error::DiskFull { .. }) => {
                tracing::warn!(error = %e, "disk full: WAL segment not created; appends fail until space returns");
                None
            }
            Err(e) => return Err(e),
        };
        metrics.wal_segments.store(
            list_segments(dir).map(|v| v.len() as i64).unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(Wal {
            dir: dir.to_path_buf(),
            policy,
            segment_bytes,
            inner: Mutex::new(Inner {
                file,
                seq,
                offset: SEGMENT_MAGIC.len() as u64,
                written: 0,
            }),
            sync: Mutex::new(SyncState::default()),
            synced_cv: Condvar::new(),
            metrics,
        })
    }

    fn seg_path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment_name(seq))
    }

    /// Start the next segment (the old one is fsynced first unless sync is off).
    fn rotate(&self, g: &mut Inner) -> Result<()> {
        let Some(old) = &g.file else {
            return self.create_current(g);
        };
        if self.policy != SyncPolicy::None {
            old.sync_data()
                .map_err(|e| Error::io("fsync wal segment", self.seg_path(g.seq), e))?;
        }
        let file = create_segment(&self.dir, g.seq + 1)?;
        g.seq += 1;
        g.file = Some(Arc::new(file));
        g.offset = SEGMENT_MAGIC.len() as u64;
        self.metrics
            .wal_segments
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Create segment `g.seq`, which could not be created before.
    fn create_current(&self, g: &mut Inner) -> Result<()> {
        let file = create_segment(&self.dir, g.seq)?;
        g.file = Some(Arc::new(file));
        g.offset = SEGMENT_MAGIC.len() as u64;
        self.metrics
            .wal_segments
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Write `buf` (whole records) and make it durable per the sync policy; returns the
    /// segment it went to (the current one when `buf` is empty). On error nothing of `buf`
    /// counts as written and the segment is cut back to its last good end. (The store
    /// writes and syncs in two steps, see [`crate::Db::append_parts`].)
    #[cfg(test)]
    pub(crate) fn append(&self, buf: &[u8]) -> Result<u64> {
        let w = self.write(buf)?;
        self.sync(w)?;
        Ok(w.segment)
    }

    /// Write `buf` (whole records), durable already under `sync = "batch"`; under group
    /// commit [`sync`](Self::sync) makes it durable, and the caller may do other work
    /// (store the samples in the head) meanwhile. On error nothing of `buf` counts as
    /// written and the segment is cut back to its last good end.
    pub(crate) fn write(&self, buf: &[u8]) -> Result<Written> {
        if buf.is_empty() {
            return Ok(Written {
                number: None,
                segment: self.inner.lock().seq,
            });
        }
        let (my, seq) = {
            let mut g = self.inner.lock();
            if g.file.is_none() {
                self.create_current(&mut g)
                    .inspect_err(|_| self.count_failure())?;
            }
            if g.offset + buf.len() as u64 > self.segment_bytes
                && g.offset > SEGMENT_MAGIC.len() as u64
            {
                self.rotate(&mut g).inspect_err(|_| self.count_failure())?;
            }
            let at = g.offset;
            let Some(file) = g.file.clone() else {
                return Err(Error::Closed);
            };
            if let Err(e) = file.write_all_at(buf, at) {
                // Cut off whatever part landed so the next record starts at a good offset
                // (shrinking needs no space, so this works on a full disk too).
                let _ = file.set_len(at);
                self.count_failure();
                return Err(Error::io("write wal segment", self.seg_path(g.seq), e));
            }
            if self.policy == SyncPolicy::Batch {
                let t = Instant::now();
                let res = file.sync_data();
                self.metrics.wal_fsync.observe(t.elapsed());
                if let Err(e) = res {
                    let _ = file.set_len(at);
                    self.count_failure();
                    return Err(Error::io("fsync wal segment", self.seg_path(g.seq), e));
                }
            }
            g.offset = at + buf.len() as u64;
            g.written += 1;
            self.metrics
                .wal_bytes
                .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
            (g.written, g.seq)
        };
        Ok(Written {
            number: Some(my),
            segment: seq,
        })
    }

    /// Whether [`sync`](Self::sync) has anything to wait for (group commit).
    pub(crate) fn syncs_after_write(&self) -> bool {
        matches!(self.policy, SyncPolicy::GroupCommit { .. })
    }

    /// Return once `w` is durable per the sync policy (at once unless it is group
    /// commit).
    pub(crate) fn sync(&self, w: Written) -> Result<()> {
        match (self.policy, w.number) {
            (SyncPolicy::GroupCommit { window }, Some(my)) => self.group_sync(my, window),
            _ => Ok(()),
        }
    }

    fn count_failure(&self) {
        self.metrics
            .wal_write_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Wait until write `my` is fsynced; the first waiter leads, later ones share its fsync.
    fn group_sync(&self, my: u64, window: std::time::Duration) -> Result<()> {
        let mut st = self.sync.lock();
        loop {
            if st.failed.iter().any(|&(lo, hi)| (lo..=hi).contains(&my)) {
                self.count_failure();
                return Err(Error::Io {
                    op: "fsync wal segment (group commit)",
                    path: self.dir.clone(),
                    source: std::io::Error::other("an earlier fsync of this data failed"),
                });
            }
            if st.synced >= my {
                return Ok(());
            }
            if st.syncing {
                self.synced_cv.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let first = st.synced + 1;
            drop(st);
            if !window.is_zero() {
                // Give concurrent appenders a chance to join this fsync.
                std::thread::sleep(window);
            }
            let (target, file, seq) = {
                let g = self.inner.lock();
                (g.written, g.file.clone(), g.seq)
            };
            let t = Instant::now();
            // Writes only succeed into an existing segment, so `None` has nothing to sync.
            let res = file.map_or(Ok(()), |f| f.sync_data());
            self.metrics.wal_fsync.observe(t.elapsed());
            st = self.sync.lock();
            st.syncing = false;
            match res {
                Ok(()) => st.synced = st.synced.max(target),
                Err(e) => {
                    tracing::warn!(error = %e, segment = seq, "WAL fsync failed");
                    st.failed.push((first, target));
                    if st.failed.len() > 64 {
                        st.failed.remove(0);
                    }
                    // Later writes may still succeed: move past the failed range.
                    st.synced = st.synced.max(target);
                }
            }
            self.synced_cv.notify_all();
        }
    }

    /// Close the current segment and start a new one; returns the last segment whose
    /// records all precede the cut.
    pub(crate) fn cut(&self) -> Result<u64> {
        let mut g = self.inner.lock();
        if g.file.is_none() || g.offset == SEGMENT_MAGIC.len() as u64 {
            return Ok(g.seq - 1);
        }
        let old = g.seq;
        self.rotate(&mut g)?;
        Ok(old)
    }

    /// Write a checkpoint covering segments `..= upto` (the `records` are what is still
    /// needed from them), then delete those segments and older checkpoints.
    pub(crate) fn checkpoint(&self, upto: u64, records: &[u8]) -> Result<()> {
        let final_dir = self.dir.join(format!("{CHECKPOINT_PREFIX}{upto:08}"));
        let tmp = self.dir.join(format!("{CHECKPOINT_PREFIX}{upto:08}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(|e| Error::io("create checkpoint", &tmp, e))?;
        let path = tmp.join(segment_name(0));
        let mut f = File::create(&path).map_err(|e| Error::io("create checkpoint", &path, e))?;
        f.write_all(SEGMENT_MAGIC)
            .and_then(|()| f.write_all(records))
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("write checkpoint", &path, e))?;
        sync_dir(&tmp)?;
        let _ = fs::remove_dir_all(&final_dir);
        fs::rename(&tmp, &final_dir).map_err(|e| Error::io("rename checkpoint", &tmp, e))?;
        sync_dir(&self.dir)?;
        // The checkpoint is durable: older segments and checkpoints are garbage now.
        for seq in list_segments(&self.dir)? {
            if seq <= upto {
                let p = self.seg_path(seq);
                fs::remove_file(&p).map_err(|e| Error::io("remove wal segment", &p, e))?;
                self.metrics
                    .wal_segments
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        for (n, p) in replay::list_checkpoints(&self.dir)? {
            if n < upto {
                fs::remove_dir_all(&p).map_err(|e| Error::io("remove checkpoint", &p, e))?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Bytes of all WAL files.
    pub(crate) fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = fs::read_dir(p) else { return 0 };
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.dir)
    }

    /// fsync whatever was written (used by close).
    pub(crate) fn sync_now(&self) -> Result<()> {
        let g = self.inner.lock();
        match &g.file {
            Some(f) => f
                .sync_data()
                .map_err(|e| Error::io("fsync wal segment", self.seg_path(g.seq), e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
