//! The durable spool: every collected cycle is appended here before it is sent, and leaves
//! only when the center acknowledged it. Segment files of CRC-checked records, a cursor file
//! naming the next record to deliver, a size bound that drops the oldest segment (counted).
//!
//! # On-disk format
//!
//! `<dir>/<first seq, 20 digits>.seg` holds records back to back:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | payload length, u32 LE |
//! | 4 | CRC-32 (IEEE) of the next 12 bytes and the payload, u32 LE |
//! | 8 | sequence number, u64 LE (consecutive across segments) |
//! | 4 | number of samples in the payload, u32 LE |
//! | n | payload: a snappy-compressed remote_write `WriteRequest` |
//!
//! `<dir>/cursor` is 12 bytes: the sequence number of the next record to deliver (u64 LE)
//! and its CRC-32. It is replaced atomically (write a temporary file, rename).
//!
//! # Guarantees
//!
//! Records are delivered in sequence order. A record is acknowledged (cursor moved past it)
//! only after the center answered 2xx, so a crash between the answer and the cursor write
//! sends it again; the center stores identical samples once (same series, timestamp and
//! value is an idempotent duplicate in gmc-tsdb and Prometheus), which makes delivery exactly
//! once in the store. On open, a torn or corrupt tail of the newest segment (a crash in the
//! middle of an append) is cut off; corruption inside an older segment skips the rest of
//! that segment and is counted.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Bytes before the payload.
pub const RECORD_HEADER_BYTES: u64 = 20;
const CURSOR_FILE: &str = "cursor";
const SEGMENT_SUFFIX: &str = ".seg";

/// When appends and cursor moves are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after every append and cursor move: survives power loss.
    Always,
    /// At most once per period: a power loss may lose up to that much.
    Every(Duration),
    /// Never: survives a crash or SIGKILL of the agent (the page cache keeps the data),
    /// not a power loss.
    Never,
}

impl SyncPolicy {
    /// Parse `always`, `never` or a duration such as `5s`.
    pub fn parse(s: &str) -> Option<SyncPolicy> {
        match s {
            "always" => Some(SyncPolicy::Always),
            "never" | "none" => Some(SyncPolicy::Never),
            d => parse_duration(d).map(SyncPolicy::Every),
        }
    }
}

/// `100ms`, `5s`, `2m`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    })
}

/// A spooled record, as read back for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number.
    pub seq: u64,
    /// Samples in the payload.
    pub samples: u32,
    /// Snappy-compressed remote_write request.
    pub payload: Vec<u8>,
}

/// Spool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Directory of segments and cursor (created if missing).
    pub dir: PathBuf,
    /// Bound on the segments' total size; the oldest segment is dropped beyond it.
    pub max_bytes: u64,
    /// Target segment size (at most a quarter of `max_bytes`, so dropping one segment
    /// loses a bounded share of the spool).
    pub segment_bytes: u64,
    /// Durability of appends and cursor moves.
    pub sync: SyncPolicy,
}

impl Config {
    /// Defaults for `dir`: 256 MiB bound, 8 MiB segments, fsync on every append.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Config {
            dir: dir.into(),
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            sync: SyncPolicy::Always,
        }
    }
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
}

/// Where the next unsent record sits, to avoid rescanning a segment on every read.
#[derive(Debug, Clone, Copy)]
struct ReadPos {
    first_seq: u64,
    offset: u64,
    seq: u64,
}

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of all segments.
    pub bytes: u64,
    /// Records appended and not yet acknowledged.
    pub pending_records: u64,
    /// Samples of unsent records dropped because the spool was full.
    pub dropped_full_samples: u64,
    /// Records skipped as corrupt (their sample count is unknowable when the header is bad).
    pub corrupt_records: u64,
    /// Bytes cut from a torn tail on open.
    pub truncated_bytes: u64,
}

/// The spool. Not thread-safe by itself; the agent wraps it in a mutex.
#[derive(Debug)]
pub struct Spool {
    cfg: Config,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    next_seq: u64,
    cursor: u64,
    read_pos: Option<ReadPos>,
    last_sync: Instant,
    stats: Stats,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::SpoolIo {
        path: path.to_owned(),
        source,
    }
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

/// Header fields of one record read from a file.
struct Header {
    len: u32,
    crc: u32,
    seq: u64,
    samples: u32,
}

fn parse_header(h: &[u8; RECORD_HEADER_BYTES as usize]) -> Header {
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[8..16]);
    Header {
        len: u32_at(0),
        crc: u32_at(4),
        seq: u64::from_le_bytes(seq),
        samples: u32_at(16),
    }
}

fn record_crc(seq: u64, samples: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&samples.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Encode one record (header and payload) as written to a segment.
pub fn encode_record(seq: u64, samples: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER_BYTES as usize + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(seq, samples, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&samples.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Outcome of reading one record at an offset.
enum ReadOutcome {
    Record(Record, u64),
    /// Clean end of file.
    End,
    /// Short or failing record: torn tail or corruption.
    Bad,
}

fn read_record(
    f: &mut File,
    offset: u64,
    file_len: u64,
    max_payload: u64,
) -> std::io::Result<ReadOutcome> {
    if offset == file_len {
        return Ok(ReadOutcome::End);
    }
    if offset + RECORD_HEADER_BYTES > file_len {
        return Ok(ReadOutcome::Bad);
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut hb = [0u8; RECORD_HEADER_BYTES as usize];
    f.read_exact(&mut hb)?;
    let h = parse_header(&hb);
    let end = offset + RECORD_HEADER_BYTES + u64::from(h.len);
    // A length beyond the file or the spool bound is a torn or garbage header: never allocate it.
    if end > file_len || u64::from(h.len) > max_payload {
        return Ok(ReadOutcome::Bad);
    }
    let mut payload = vec![0u8; h.len as usize];
    f.read_exact(&mut payload)?;
    if record_crc(h.seq, h.samples, &payload) != h.crc {
        return Ok(ReadOutcome::Bad);
    }
    Ok(ReadOutcome::Record(
        Record {
            seq: h.seq,
            samples: h.samples,
            payload,
        },
        end,
    ))
}

impl Spool {
    /// Open (or create) the spool in `cfg.dir`, cutting a torn tail off the newest segment.
    pub fn open(mut cfg: Config) -> Result<Spool> {
        if cfg.max_bytes < 4 * 1024 {
            return Err(Error::Config {
                key: "spool_max_bytes",
                reason: "must be at least 4KiB".to_owned(),
            });
        }
        cfg.segment_bytes = cfg.segment_bytes.clamp(1024, (cfg.max_bytes / 4).max(1024));
        std::fs::create_dir_all(&cfg.dir).map_err(io(&cfg.dir))?;
        let mut segments = Vec::new();
        for e in std::fs::read_dir(&cfg.dir).map_err(io(&cfg.dir))? {
            let e = e.map_err(io(&cfg.dir))?;
            let name = e.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let path = e.path();
            let bytes = e.metadata().map_err(io(&path))?.len();
            segments.push(Segment {
                first_seq: first,
                path,
                bytes,
            });
        }
        segments.sort_by_key(|s| s.first_seq);
        let mut spool = Spool {
            cursor: read_cursor(&cfg.dir.join(CURSOR_FILE)).unwrap_or(0),
            cfg,
            segments: segments.into(),
            writer: None,
            next_seq: 0,
            read_pos: None,
            last_sync: Instant::now(),
            stats: Stats::default(),
        };
        spool.recover_tail()?;
        if let Some(first) = spool.segments.front().map(|s| s.first_seq) {
            // Records below the oldest segment are gone (delivered or dropped).
            spool.cursor = spool.cursor.max(first);
        }
        spool.cursor = spool.cursor.min(spool.next_seq);
        spool.refresh_stats();
        Ok(spool)
    }

    /// Scan the newest segment, cut a torn tail, and learn `next_seq`.
    fn recover_tail(&mut self) -> Result<()> {
        let max_payload = self.cfg.max_bytes;
        let Some(last) = self.segments.back_mut() else {
            self.next_seq = self.cursor;
            return Ok(());
        };
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&last.path)
            .map_err(io(&last.path))?;
        let len = f.metadata().map_err(io(&last.path))?.len();
        let mut offset = 0;
        let mut seq = last.first_seq;
        loop {
            match read_record(&mut f, offset, len, max_payload).map_err(io(&last.path))? {
                ReadOutcome::Record(r, end) if r.seq == seq => {
                    offset = end;
                    seq += 1;
                }
                ReadOutcome::End => break,
                ReadOutcome::Record(..) | ReadOutcome::Bad => {
                    self.stats.truncated_bytes += len - offset;
                    tracing::warn!(
                        path = %last.path.display(),
                        offset,
                        cut_bytes = len - offset,
                        "Spool segment has a torn or corrupt tail; cutting it off."
                    );
                    f.set_len(offset).map_err(io(&last.path))?;
                    f.sync_all().map_err(io(&last.path))?;
                    break;
                }
            }
        }
        last.bytes = offset;
        self.next_seq = seq;
        f.seek(SeekFrom::End(0)).map_err(io(&last.path))?;
        self.writer = Some(f);
        Ok(())
    }

    fn refresh_stats(&mut self) {
        self.stats.bytes = self.segments.iter().map(|s| s.bytes).sum();
        self.stats.pending_records = self.next_seq - self.cursor;
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Sequence number the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Append a record; drops the oldest segments first when the bound would be exceeded.
    /// Returns the record's sequence number.
    pub fn append(&mut self, payload: &[u8], samples: u32) -> Result<u64> {
        let rec_len = RECORD_HEADER_BYTES + payload.len() as u64;
        if rec_len > self.cfg.max_bytes - self.cfg.segment_bytes.min(self.cfg.max_bytes / 2) {
            return Err(Error::RecordTooLarge {
                len: rec_len,
                limit: self.cfg.max_bytes,
            });
        }
        let active_bytes = self.segments.back().map_or(0, |s| s.bytes);
        if self.writer.is_none()
            || (active_bytes > 0 && active_bytes + rec_len > self.cfg.segment_bytes)
        {
            self.rotate()?;
        }
        loop {
            let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
            if total + rec_len <= self.cfg.max_bytes {
                break;
            }
            if self.segments.len() > 1 {
                self.drop_oldest()?;
            } else {
                self.rotate()?;
            }
        }
        let seq = self.next_seq;
        let rec = encode_record(seq, samples, payload);
        let sync = self.should_sync();
        let Some(last) = self.segments.back_mut() else {
            return Err(Error::SpoolIo {
                path: self.cfg.dir.clone(),
                source: std::io::Error::other("no active segment"),
            });
        };
        let Some(w) = self.writer.as_mut() else {
            return Err(Error::SpoolIo {
                path: last.path.clone(),
                source: std::io::Error::other("no open writer"),
            });
        };
        if let Err(source) = w.write_all(&rec) {
            // Leave no partial record behind: the next open would cut it, but appends that
            // follow it now would be lost with it.
            let _ = w.set_len(last.bytes);
            let _ = w.seek(SeekFrom::Start(last.bytes));
            return Err(Error::SpoolIo {
                path: last.path.clone(),
                source,
            });
        }
        last.bytes += rec_len;
        self.next_seq += 1;
        if sync {
            w.sync_data().map_err(io(&last.path))?;
            self.last_sync = Instant::now();
        }
        self.refresh_stats();
        Ok(seq)
    }

    fn should_sync(&self) -> bool {
        match self.cfg.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Every(d) => self.last_sync.elapsed() >= d,
            SyncPolicy::Never => false,
        }
    }

    /// Close the active segment and start a new one at `next_seq`.
    fn rotate(&mut self) -> Result<()> {
        if let (Some(w), Some(last)) = (self.writer.take(), self.segments.back()) {
            if self.cfg.sync != SyncPolicy::Never {
                w.sync_data().map_err(io(&last.path))?;
            }
        }
        if let Some(last) = self.segments.back() {
            if last.first_seq == self.next_seq {
                // Still empty: reuse it instead of creating a second file with the same name.
                let f = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(io(&last.path))?;
                self.writer = Some(f);
                return Ok(());
            }
        }
        let path = self.cfg.dir.join(segment_name(self.next_seq));
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if self.cfg.sync != SyncPolicy::Never {
            // The new file's directory entry must be durable before records in it count.
            File::open(&self.cfg.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.cfg.dir))?;
        }
        self.segments.push_back(Segment {
            first_seq: self.next_seq,
            path,
            bytes: 0,
        });
        self.writer = Some(f);
        Ok(())
    }

    /// Delete the oldest segment because the spool is full; its unsent samples are counted.
    fn drop_oldest(&mut self) -> Result<()> {
        let Some(seg) = self.segments.pop_front() else {
            return Ok(());
        };
        let next_first = self.segments.front().map_or(self.next_seq, |s| s.first_seq);
        if self.cursor < next_first {
            let lost = self.count_samples_from(&seg, self.cursor)?;
            self.stats.dropped_full_samples += lost;
            tracing::warn!(
                segment = %seg.path.display(),
                samples = lost,
                "Spool full; dropped its oldest unsent segment."
            );
            self.cursor = next_first;
            self.read_pos = None;
            self.write_cursor()?;
        }
        std::fs::remove_file(&seg.path).map_err(io(&seg.path))?;
        Ok(())
    }

    /// Sum the sample counts of records with `seq >= from` (headers only).
    fn count_samples_from(&self, seg: &Segment, from: u64) -> Result<u64> {
        let mut f = File::open(&seg.path).map_err(io(&seg.path))?;
        let len = f.metadata().map_err(io(&seg.path))?.len();
        let mut offset = 0;
        let mut total = 0;
        let mut hb = [0u8; RECORD_HEADER_BYTES as usize];
        while offset + RECORD_HEADER_BYTES <= len {
            f.seek(SeekFrom::Start(offset)).map_err(io(&seg.path))?;
            f.read_exact(&mut hb).map_err(io(&seg.path))?;
            let h = parse_header(&hb);
            if h.seq >= from {
                total += u64::from(h.samples);
            }
            offset += RECORD_HEADER_BYTES + u64::from(h.len);
        }
        Ok(total)
    }

    /// Up to `max_records` unsent records (at most about `max_bytes` of payload, at least
    /// one), oldest first, without acknowledging them.
    pub fn peek(&mut self, max_records: usize, max_bytes: u64) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        while out.len() < max_records && self.cursor_after(&out) < self.next_seq {
            let want = self.cursor_after(&out);
            let Some(idx) = self.segments.iter().rposition(|s| s.first_seq <= want) else {
                // The wanted records were dropped: move to the oldest kept one.
                let first = self.segments.front().map_or(self.next_seq, |s| s.first_seq);
                self.cursor = first;
                break;
            };
            let seg = &self.segments[idx];
            let (mut offset, mut seq) = match self.read_pos {
                Some(p) if p.first_seq == seg.first_seq && p.seq <= want => (p.offset, p.seq),
                _ => (0, seg.first_seq),
            };
            let mut f = File::open(&seg.path).map_err(io(&seg.path))?;
            let len = f.metadata().map_err(io(&seg.path))?.len();
            let mut corrupt = false;
            loop {
                match read_record(&mut f, offset, len, self.cfg.max_bytes).map_err(io(&seg.path))? {
                    ReadOutcome::Record(r, end) => {
                        if r.seq != seq {
                            corrupt = true;
                            break;
                        }
                        offset = end;
                        seq += 1;
                        self.read_pos = Some(ReadPos {
                            first_seq: seg.first_seq,
                            offset,
                            seq,
                        });
                        if r.seq >= want {
                            bytes += r.payload.len() as u64;
                            out.push(r);
                            if out.len() >= max_records || bytes >= max_bytes {
                                return Ok(out);
                            }
                        }
                    }
                    ReadOutcome::End => break,
                    ReadOutcome::Bad => {
                        corrupt = true;
                        break;
                    }
                }
            }
            let next_first = self.segments.get(idx + 1).map(|s| s.first_seq);
            match next_first {
                Some(n) if corrupt || seq < n => {
                    // Skip the unreadable rest of this segment; later segments are intact.
                    // Deliver what was read before the damage first.
                    if !out.is_empty() {
                        return Ok(out);
                    }
                    self.stats.corrupt_records += n.saturating_sub(seq);
                    tracing::warn!(
                        segment = %seg.path.display(),
                        offset,
                        records = n.saturating_sub(seq),
                        "Corrupt spool record; skipping the rest of the segment."
                    );
                    self.cursor = n;
                    self.read_pos = None;
                    self.write_cursor()?;
                }
                Some(_) => {}
                None if corrupt && seq < self.next_seq => {
                    // Damage inside the newest segment (bit rot after open): skip to the
                    // end and continue in a fresh segment so new records stay deliverable.
                    let lost = self.next_seq - seq;
                    self.stats.corrupt_records += lost;
                    tracing::warn!(
                        records = lost,
                        "Corrupt record in the newest spool segment; skipping it."
                    );
                    if !out.is_empty() {
                        return Ok(out);
                    }
                    self.cursor = self.next_seq;
                    self.read_pos = None;
                    self.write_cursor()?;
                    self.rotate()?;
                    break;
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn cursor_after(&self, out: &[Record]) -> u64 {
        out.last().map_or(self.cursor, |r| r.seq + 1)
    }

    /// Mark every record up to and including `seq` as delivered; deletes segments that hold
    /// only delivered records.
    pub fn ack(&mut self, seq: u64) -> Result<()> {
        if seq < self.cursor {
            return Ok(());
        }
        self.cursor = (seq + 1).min(self.next_seq);
        self.write_cursor()?;
        while self.segments.len() > 1 {
            let second = self.segments[1].first_seq;
            if second > self.cursor {
                break;
            }
            if let Some(seg) = self.segments.pop_front() {
                std::fs::remove_file(&seg.path).map_err(io(&seg.path))?;
            }
        }
        self.refresh_stats();
        Ok(())
    }

    /// Drop records up to and including `seq` that could not be delivered (refused by the
    /// center): same as [`Spool::ack`], counted by the caller.
    pub fn skip(&mut self, seq: u64) -> Result<()> {
        self.ack(seq)
    }

    fn write_cursor(&mut self) -> Result<()> {
        let path = self.cfg.dir.join(CURSOR_FILE);
        let tmp = self.cfg.dir.join("cursor.tmp");
        let mut buf = [0u8; 12];
        buf[..8].copy_from_slice(&self.cursor.to_le_bytes());
        let crc = crc32fast::hash(&buf[..8]);
        buf[8..].copy_from_slice(&crc.to_le_bytes());
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&buf).map_err(io(&tmp))?;
        if self.cfg.sync != SyncPolicy::Never {
            f.sync_data().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        self.refresh_stats();
        Ok(())
    }

    /// Force everything written so far to disk (at shutdown).
    pub fn sync(&mut self) -> Result<()> {
        if let (Some(w), Some(last)) = (self.writer.as_ref(), self.segments.back()) {
            w.sync_data().map_err(io(&last.path))?;
        }
        Ok(())
    }
}

fn read_cursor(path: &Path) -> Option<u64> {
    let b = std::fs::read(path).ok()?;
    if b.len() != 12 {
        return None;
    }
    let mut s = [0u8; 8];
    s.copy_from_slice(&b[..8]);
    let crc = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    (crc32fast::hash(&b[..8]) == crc).then(|| u64::from_le_bytes(s))
}

#[cfg(test)]
mod tests;
