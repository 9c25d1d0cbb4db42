//! WAL replay: the newest checkpoint, then every later segment, in order. A torn or corrupt
//! record ends its segment: the rest is dropped, counted and logged, and the file is cut
//! back to the last good record. Replay never refuses to start because of bad data.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::record::{self, Record};
use super::{list_segments, segment_name, CHECKPOINT_PREFIX, SEGMENT_MAGIC};
use crate::error::{Error, Result};

/// What a replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ReplayStats {
    /// Records applied.
    pub(crate) records: u64,
    /// Segments read (checkpoint included).
    pub(crate) segments: u64,
    /// Bytes dropped as torn or corrupt.
    pub(crate) dropped_bytes: u64,
    /// Places where data was dropped.
    pub(crate) corruptions: u64,
    /// Highest segment number present (0 when none).
    pub(crate) last_seq: u64,
}

/// Checkpoint directories `(covered segment, path)`, ascending; unfinished ones are removed.
pub(crate) fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| Error::io("list wal", dir, e))?;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|s| s.strip_prefix(CHECKPOINT_PREFIX))
        else {
            continue;
        };
        if rest.ends_with(".tmp") {
            let _ = fs::remove_dir_all(e.path());
            continue;
        }
        if let Ok(n) = rest.parse::<u64>() {
            v.push((n, e.path()));
        }
    }
    v.sort_unstable_by_key(|x| x.0);
    Ok(v)
}

/// Replay the WAL in `dir`, calling `apply` for every good record.
pub(crate) fn replay(dir: &Path, mut apply: impl FnMut(Record)) -> Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    let checkpoints = list_checkpoints(dir)?;
    let mut after = 0u64;
    if let Some((n, path)) = checkpoints.last() {
        after = *n;
        for seq in list_segments(path)? {
            replay_segment(&path.join(segment_name(seq)), &mut stats, &mut apply)?;
        }
    }
    for seq in list_segments(dir)? {
        stats.last_seq = stats.last_seq.max(seq);
        if seq <= after {
            // Left over from a checkpoint whose cleanup was interrupted.
            let p = dir.join(segment_name(seq));
            fs::remove_file(&p).map_err(|e| Error::io("remove wal segment", &p, e))?;
            continue;
        }
        replay_segment(&dir.join(segment_name(seq)), &mut stats, &mut apply)?;
    }
    stats.last_seq = stats.last_seq.max(after);
    Ok(stats)
}

fn replay_segment(
    path: &Path,
    stats: &mut ReplayStats,
    apply: &mut impl FnMut(Record),
) -> Result<()> {
    let data = fs::read(path).map_err(|e| Error::io("read wal segment", path, e))?;
    stats.segments += 1;
    if data.len() < SEGMENT_MAGIC.len() || &data[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        // A strict prefix of the header is a segment whose creation was interrupted
        // (crash or full disk): it never held records, so it is not a corruption.
        if SEGMENT_MAGIC.starts_with(&data) {
            tracing::debug!(path = %path.display(), "Removing unfinished WAL segment.");
        } else {
            tracing::warn!(path = %path.display(), bytes = data.len(), "WAL segment has no valid header; dropping it");
            stats.dropped_bytes += data.len() as u64;
            stats.corruptions += 1;
        }
        // Removed rather than rewritten: removing needs no disk space.
        fs::remove_file(path).map_err(|e| Error::io("remove wal segment", path, e))?;
        return Ok(());
    }
    let mut pos = SEGMENT_MAGIC.len();
    while pos < data.len() {
        match record::parse_frame(&data[pos..]) {
            Ok(Some((typ, payload, n))) => {
                match record::decode(typ, payload) {
                    Ok(r) => {
                        stats.records += 1;
                        apply(r);
                    }
                    Err(e) => {
                        // The checksum matched, so the frame is intact: skip just this one.
                        tracing::warn!(path = %path.display(), offset = pos, reason = e.0, "undecodable WAL record skipped");
                        stats.corruptions += 1;
                        stats.dropped_bytes += n as u64;
                    }
                }
                pos += n;
            }
            Ok(None) => break,
            Err(e) => {
                let dropped = (data.len() - pos) as u64;
                tracing::warn!(path = %path.display(), offset = pos, dropped_bytes = dropped, reason = e.0, "torn or corrupt WAL tail dropped");
                stats.dropped_bytes += dropped;
                stats.corruptions += 1;
                truncate(path, pos as u64)?;
                break;
            }
        }
    }
    Ok(())
}

/// Cut a segment back to `len` bytes.
fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open wal segment", path, e))?;
    f.set_len(len)
        .map_err(|e| Error::io("truncate wal segment", path, e))?;
    f.sync_all()
        .map_err(|e| Error::io("fsync wal segment", path, e))
}
