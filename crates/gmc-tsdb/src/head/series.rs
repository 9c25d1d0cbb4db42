//! One in-memory series: closed (recompressed) chunks, the open appendable chunk, a small
//! sorted out-of-order buffer, and the newest-sample state used to validate appends.

use std::borrow::Cow;
use std::sync::Arc;

use gmc_model::Histogram;

use super::spill::SpillRef;
use crate::chunk::{self, XorAppender};
use crate::error::{Result, SampleError};
use crate::querier::{finish_floats, Sample, SampleValue, SeriesData};

/// An interned label set: sorted `(name, value)` pairs.
pub(crate) type LabelSet = Arc<[(Arc<str>, Arc<str>)]>;

/// A closed chunk, immutable and shared with readers.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) encoding: u8,
    pub(crate) bytes: ChunkBytes,
}

/// Where a closed chunk's bytes are: in memory, or in a spill file once recompressed
/// (see `head::spill`).
#[derive(Debug, Clone)]
pub(crate) enum ChunkBytes {
    /// In memory, shared with readers.
    Mem(Arc<[u8]>),
    /// In a spill segment.
    Spilled(SpillRef),
}

impl ChunkBytes {
    /// The bytes, in memory or through the spill segment's mapping.
    pub(crate) fn get(&self) -> Result<&[u8]> {
        match self {
            ChunkBytes::Mem(b) => Ok(b),
            ChunkBytes::Spilled(r) => r.bytes(),
        }
    }

    /// The bytes if they are in memory.
    pub(crate) fn in_memory(&self) -> Option<&Arc<[u8]>> {
        match self {
            ChunkBytes::Mem(b) => Some(b),
            ChunkBytes::Spilled(_) => None,
        }
    }

    /// The bytes for a one-time read: spilled ones copied out of their file (see
    /// [`Taken::decode_all_once`]).
    pub(crate) fn read_once(&self) -> Result<Cow<'_, [u8]>> {
        match self {
            ChunkBytes::Mem(b) => Ok(Cow::Borrowed(b)),
            ChunkBytes::Spilled(r) => r.read().map(Cow::Owned),
        }
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            ChunkBytes::Mem(b) => b.len(),
            ChunkBytes::Spilled(r) => r.len(),
        }
    }

    /// Whether these are the in-memory bytes `b`.
    fn is(&self, b: &Arc<[u8]>) -> bool {
        self.in_memory().is_some_and(|m| Arc::ptr_eq(m, b))
    }
}

impl From<Vec<u8>> for ChunkBytes {
    fn from(v: Vec<u8>) -> Self {
        ChunkBytes::Mem(v.into())
    }
}

/// The chunk being appended to.
#[derive(Debug, Clone, Default)]
pub(crate) enum Open {
    /// No open chunk.
    #[default]
    Empty,
    /// Floats in an appendable XOR chunk.
    Float(XorAppender),
    /// Histograms, kept decoded until the chunk is cut (histogram series are few).
    Hist(Vec<(i64, Arc<Histogram>)>),
}

/// What inserting one sample did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Stored.
    New,
    /// The same sample was already stored: nothing to do.
    Duplicate,
    /// A different value is stored at this timestamp: dropped.
    Conflict,
}

/// An in-memory series.
#[derive(Debug)]
pub(crate) struct MemSeries {
    pub(crate) ref_id: u64,
    pub(crate) labels: LabelSet,
    /// Label bytes for the collision check (see `head::series_key`).
    pub(crate) key: Box<[u8]>,
    /// Whether a WAL series record for `ref_id` is durable in the current WAL.
    pub(crate) wal_logged: bool,
    /// WAL segment of the newest samples appended (0 for replayed ones, whose segments
    /// precede any cut made after the replay).
    pub(crate) last_segment: u64,
    pub(crate) closed: Vec<Chunk>,
    pub(crate) open: Open,
    open_mint: i64,
    /// Out-of-order samples, sorted by timestamp, unique.
    pub(crate) ooo: Vec<Sample>,
    /// Newest stored in-order timestamp (`i64::MIN` when none) and its value.
    pub(crate) max_ts: i64,
    last: Option<SampleValue>,
    /// Newest timestamp accepted by validation (≥ `max_ts` while appends are in flight).
    res_max_ts: i64,
    res_last: Option<SampleValue>,
    /// Oldest timestamp held (for query pruning); `i64::MAX` when empty.
    pub(crate) min_ts: i64,
}

/// Data moved out of a series by a flush.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) chunks: Vec<Chunk>,
    pub(crate) ooo: Vec<Sample>,
}

impl MemSeries {
    pub(crate) fn new(ref_id: u64, labels: LabelSet, key: Box<[u8]>) -> Self {
        MemSeries {
            ref_id,
            labels,
            key,
            wal_logged: false,
            last_segment: 0,
            closed: Vec::new(),
            open: Open::Empty,
            open_mint: i64::MIN,
            ooo: Vec::new(),
            max_ts: i64::MIN,
            last: None,
            res_max_ts: i64::MIN,
            res_last: None,
            min_ts: i64::MAX,
        }
    }

    /// A value read from every part of the series an append phase reads (see
    /// `Shard::touch`): the key only when validating (`key`), the open chunk always.
    #[inline]
    pub(crate) fn touch(&self, key: bool) -> u64 {
        let open = match &self.open {
            Open::Float(a) => a.len() as u64,
            _ => 0,
        };
        // The key compare that follows reads all of a ~150-byte key: its first, middle
        // and last lines are loaded here, where the misses of many series overlap.
        let k = if key {
            let at = |i: usize| u64::from(self.key.get(i).copied().unwrap_or(0));
            let n = self.key.len();
            at(0) ^ at(n / 2) ^ at(n.saturating_sub(1))
        } else {
            0
        };
        k ^ (self.res_max_ts as u64) ^ (self.max_ts as u64) ^ open
    }

    /// Number of chunks held (open one included).
    pub(crate) fn chunk_count(&self) -> usize {
        self.closed.len() + usize::from(!matches!(self.open, Open::Empty))
    }

    /// Whether the series holds no samples.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty() && matches!(self.open, Open::Empty) && self.ooo.is_empty()
    }

    /// Check `samples` (arrival order) against the series and, when all pass, reserve them
    /// so concurrent appends validate against them too. `Ok(true)`: every sample is
    /// already stored in the head with the same value (a retried write), so storing
    /// them again can be skipped. A sample that only matches another write's reservation
    /// does not count: that write may still fail.
    pub(crate) fn reserve(
        &mut self,
        samples: impl Iterator<Item = (i64, SampleValue)>,
        window_nanos: i64,
    ) -> Result<bool, SampleError> {
        let mut max = self.res_max_ts;
        let mut last = self.res_last.clone();
        let mut all_stored = true;
        for (ts, v) in samples {
            if ts > max {
                max = ts;
                last = Some(v);
                all_stored = false;
            } else if ts == max {
                if !last.as_ref().is_some_and(|l| l.same_as(&v)) {
                    return Err(SampleError::DuplicateSample { ts_nanos: ts });
                }
                all_stored &=
                    ts == self.max_ts && self.last.as_ref().is_some_and(|l| l.same_as(&v));
            } else {
                if ts < max.saturating_sub(window_nanos) {
                    return Err(SampleError::OutOfOrderSample {
                        ts_nanos: ts,
                        newest_nanos: max,
                        window_nanos,
                    });
                }
                match self.value_at(ts) {
                    Some(stored) if !stored.same_as(&v) => {
                        return Err(SampleError::DuplicateSample { ts_nanos: ts });
                    }
                    Some(_) => {}
                    None => all_stored = false,
                }
            }
        }
        self.res_max_ts = max;
        self.res_last = last;
        Ok(all_stored)
    }

    /// [`MemSeries::reserve`] for float-only samples, without building `SampleValue`s for
    /// the in-order common case (the append hot path).
    pub(crate) fn reserve_floats(
        &mut self,
        floats: &[gmc_model::FloatSample],
        window_nanos: i64,
    ) -> Result<bool, SampleError> {
        let in_order = floats.first().is_some_and(|f| f.ts_nanos > self.res_max_ts)
            && floats.windows(2).all(|w| w[0].ts_nanos < w[1].ts_nanos);
        if !in_order {
            return self.reserve(
                floats
                    .iter()
                    .map(|f| (f.ts_nanos, SampleValue::Float(f.value))),
                window_nanos,
            );
        }
        if let Some(f) = floats.last() {
            self.res_max_ts = f.ts_nanos;
            self.res_last = Some(SampleValue::Float(f.value));
        }
        Ok(floats.is_empty())
    }

    /// The stored value at `ts`, if any (decodes at most the chunks covering `ts`).
    fn value_at(&self, ts: i64) -> Option<SampleValue> {
        if let Ok(i) = self.ooo.binary_search_by_key(&ts, |s| s.ts_nanos) {
            return Some(self.ooo[i].value.clone());
        }
        if ts == self.max_ts {
            return self.last.clone();
        }
        let find = |enc: u8, bytes: &[u8]| -> Option<SampleValue> {
            if enc != chunk::ENCODING_HISTOGRAM {
                return chunk::float_at(enc, bytes, ts)
                    .ok()
                    .flatten()
                    .map(SampleValue::Float);
            }
            chunk::decode_iter(enc, bytes)
                .ok()?
                .map_while(|s| s.ok())
                // Chunk samples are in time order: stop at the first one past `ts`.
                .take_while(|s| s.ts_nanos <= ts)
                .find(|s| s.ts_nanos == ts)
                .map(|s| s.value)
        };
        match &self.open {
            Open::Float(a) if a.first_ts().is_some_and(|f| f <= ts) => {
                return find(chunk::ENCODING_XOR, &a.bytes());
            }
            Open::Hist(v) if v.first().is_some_and(|f| f.0 <= ts) => {
                return v
                    .iter()
                    .find(|s| s.0 == ts)
                    .map(|s| SampleValue::Histogram(Arc::clone(&s.1)));
            }
            _ => {}
        }
        self.closed
            .iter()
            .rev()
            .filter(|c| c.mint <= ts && ts <= c.maxt)
            // A spilled chunk that cannot be read back counts as not holding `ts`: the
            // sample is then judged as new, and a duplicate of it is dropped at read time.
            .find_map(|c| find(c.encoding, c.bytes.get().ok()?))
    }

    /// Store one sample (after it is in the WAL, or during replay).
    pub(crate) fn insert(
        &mut self,
        ts: i64,
        v: SampleValue,
        chunk_samples: usize,
        range_nanos: i64,
    ) -> Inserted {
        if ts > self.max_ts {
            self.append_in_order(ts, &v, chunk_samples, range_nanos);
            self.max_ts = ts;
            self.min_ts = self.min_ts.min(ts);
            if ts > self.res_max_ts {
                self.res_max_ts = ts;
                self.res_last = Some(v.clone());
            }
            self.last = Some(v);
            return Inserted::New;
        }
        match self.value_at(ts) {
            Some(stored) if stored.same_as(&v) => Inserted::Duplicate,
            Some(_) => Inserted::Conflict,
            None => {
                let i = self.ooo.partition_point(|s| s.ts_nanos < ts);
                self.ooo.insert(
                    i,
                    Sample {
                        ts_nanos: ts,
                        value: v,
                    },
                );
                self.min_ts = self.min_ts.min(ts);
                Inserted::New
            }
        }
    }

    fn append_in_order(&mut self, ts: i64, v: &SampleValue, chunk_samples: usize, range: i64) {
        let (len, kind_ok) = match (&self.open, v) {
            (Open::Empty, _) => (0, true),
            (Open::Float(a), SampleValue::Float(_)) => (a.len(), true),
            (Open::Hist(h), SampleValue::Histogram(_)) => (h.len(), true),
            _ => (0, false),
        };
        let crosses = len > 0 && ts.div_euclid(range) != self.open_mint.div_euclid(range);
        if !kind_ok || len >= chunk_samples || crosses {
            self.cut();
        }
        match (&mut self.open, v) {
            (Open::Float(a), SampleValue::Float(f)) => a.append(ts, *f),
            (Open::Hist(h), SampleValue::Histogram(x)) => h.push((ts, Arc::clone(x))),
            (open, SampleValue::Float(f)) => {
                // Room for as much as the chunk just closed took, and an eighth more.
                let hint = self
                    .closed
                    .last()
                    .filter(|c| c.encoding == chunk::ENCODING_XOR)
                    .map_or(0, |c| c.bytes.len() + c.bytes.len() / 8);
                let mut a = XorAppender::with_capacity(hint);
                a.append(ts, *f);
                *open = Open::Float(a);
                self.open_mint = ts;
            }
            (open, SampleValue::Histogram(x)) => {
                *open = Open::Hist(vec![(ts, Arc::clone(x))]);
                self.open_mint = ts;
            }
        }
    }

    /// Close the open chunk. A float chunk is closed as its appender's `XOR` bytes; the
    /// recompression to the denser closed-chunk codec (about half the time of an append
    /// otherwise) happens off the append path, in [`recompress`] run by the maintenance
    /// thread.
    pub(crate) fn cut(&mut self) {
        match std::mem::take(&mut self.open) {
            Open::Empty => {}
            Open::Float(a) => {
                let (Some(mint), Some(maxt)) = (a.first_ts(), a.last_ts()) else {
                    return;
                };
                self.closed.push(Chunk {
                    mint,
                    maxt,
                    encoding: chunk::ENCODING_XOR,
                    bytes: a.bytes().into(),
                });
            }
            Open::Hist(h) => {
                let (Some(first), Some(last)) = (h.first(), h.last()) else {
                    return;
                };
                let refs: Vec<(i64, &Histogram)> =
                    h.iter().map(|(t, x)| (*t, x.as_ref())).collect();
                let (encoding, bytes) = chunk::encode_histograms(&refs);
                self.closed.push(Chunk {
                    mint: first.0,
                    maxt: last.0,
                    encoding,
                    bytes: bytes.into(),
                });
            }
        }
    }

    /// Closed chunks still in the appender's `XOR` encoding: `(index, chunk)`.
    pub(crate) fn xor_closed(&self) -> impl Iterator<Item = (usize, &Chunk)> {
        self.closed
            .iter()
            .enumerate()
            .filter(|(_, c)| c.encoding == chunk::ENCODING_XOR)
    }

    /// Replace closed chunk `idx` by `with` if it is still `was` (a flush or another
    /// recompression may have moved it meanwhile). Returns whether it was replaced.
    pub(crate) fn replace_closed(&mut self, idx: usize, was: &Arc<[u8]>, with: Chunk) -> bool {
        match self.closed.get_mut(idx) {
            Some(c) if c.bytes.is(was) => {
                *c = with;
                true
            }
            _ => false,
        }
    }

    /// Chunks and out-of-order samples overlapping `[mint, maxt]`, copied or shared so the
    /// caller can decode them without holding the shard lock.
    pub(crate) fn snapshot(&self, mint: i64, maxt: i64) -> Taken {
        let mut t = Taken::default();
        if self.min_ts > maxt || (self.max_ts < mint && self.ooo.is_empty()) {
            return t;
        }
        for c in &self.closed {
            if c.maxt >= mint && c.mint <= maxt {
                t.chunks.push(c.clone());
            }
        }
        match &self.open {
            Open::Empty => {}
            Open::Float(a) => {
                if let (Some(lo), Some(hi)) = (a.first_ts(), a.last_ts()) {
                    if hi >= mint && lo <= maxt {
                        t.chunks.push(Chunk {
                            mint: lo,
                            maxt: hi,
                            encoding: chunk::ENCODING_XOR,
                            bytes: a.bytes().into(),
                        });
                    }
                }
            }
            Open::Hist(h) => {
                t.ooo
                    .extend(h.iter().filter(|(ts, _)| *ts >= mint && *ts <= maxt).map(
                        |(ts, x)| Sample {
                            ts_nanos: *ts,
                            value: SampleValue::Histogram(Arc::clone(x)),
                        },
                    ));
            }
        }
        t.ooo.extend(
            self.ooo
                .iter()
                .filter(|s| s.ts_nanos >= mint && s.ts_nanos <= maxt)
                .cloned(),
        );
        t
    }

    /// Move all data out (for a flush); the newest-sample state stays for validation.
    pub(crate) fn take(&mut self) -> Taken {
        // The block writer recompresses everything, so the open float chunk moves as is
        // (no recompression while the shard lock is held).
        if let Open::Float(a) = &self.open {
            if let (Some(mint), Some(maxt)) = (a.first_ts(), a.last_ts()) {
                self.closed.push(Chunk {
                    mint,
                    maxt,
                    encoding: chunk::ENCODING_XOR,
                    bytes: a.bytes().into(),
                });
            }
            self.open = Open::Empty;
        }
        self.cut();
        self.min_ts = i64::MAX;
        Taken {
            chunks: std::mem::take(&mut self.closed),
            ooo: std::mem::take(&mut self.ooo),
        }
    }
}

/// Recompress an `XOR` chunk with the closed-chunk codec (`chunk::encode_floats`); `None`
/// if it does not decode (then it stays as it is).
pub(crate) fn recompress(c: &Chunk) -> Option<Chunk> {
    let mut f: Vec<(i64, f64)> = Vec::with_capacity(128);
    chunk::decode_floats(c.encoding, c.bytes.get().ok()?, &mut f).ok()?;
    let (encoding, bytes) = chunk::encode_floats(&f);
    Some(Chunk {
        mint: c.mint,
        maxt: c.maxt,
        encoding,
        bytes: bytes.into(),
    })
}

impl Taken {
    /// Chunks overlapping `[mint, maxt]` (a frozen head keeps all of a series' chunks).
    fn chunks_in(&self, mint: i64, maxt: i64) -> impl DoubleEndedIterator<Item = &Chunk> {
        self.chunks
            .iter()
            .filter(move |c| c.maxt >= mint && c.mint <= maxt)
    }

    /// Decode everything into time-ordered, deduplicated samples in `[mint, maxt]`.
    pub(crate) fn decode(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
        self.decode_from(mint, maxt, out, |b| b.get().map(Cow::Borrowed))
    }

    /// [`Taken::decode`] of everything for a flush, which reads each chunk once: spilled
    /// chunks are copied out of their file rather than read through the mapping, whose
    /// touched pages would all count in the RSS until the flush frees the segments
    /// (37 MB at the end of peerbench's backfill, a third above the ingest peak).
    pub(crate) fn decode_all_once(&self, out: &mut Vec<Sample>) -> Result<()> {
        self.decode_from(i64::MIN, i64::MAX, out, ChunkBytes::read_once)
    }

    fn decode_from<'a>(
        &'a self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
        bytes: impl Fn(&'a ChunkBytes) -> Result<Cow<'a, [u8]>>,
    ) -> Result<()> {
        let start = out.len();
        for c in self.chunks_in(mint, maxt) {
            chunk::decode_range(c.encoding, &bytes(&c.bytes)?, mint, maxt, out)?;
        }
        out.extend(
            self.ooo
                .iter()
                .filter(|s| s.ts_nanos >= mint && s.ts_nanos <= maxt)
                .cloned(),
        );
        let tail = &mut out[start..];
        if !tail.windows(2).all(|w| w[0].ts_nanos < w[1].ts_nanos) {
            tail.sort_by_key(|s| s.ts_nanos);
            let mut v = out.split_off(start);
            v.dedup_by_key(|s| s.ts_nanos);
            out.extend(v);
        }
        Ok(())
    }

    /// The newest sample in `[mint, maxt]` (for instant selectors): float chunks are
    /// decoded newest first and only until one holds a sample in the range; with a
    /// histogram in the range, everything is decoded and the caller keeps the newest.
    pub(crate) fn decode_last(&self, mint: i64, maxt: i64) -> Result<SeriesData> {
        if self.has_histogram(mint, maxt) {
            return self.decode_data(mint, maxt);
        }
        // Out-of-order samples are sorted: the newest in range is the last one in range.
        let ooo = self
            .ooo
            .iter()
            .rev()
            .find(|s| s.ts_nanos >= mint && s.ts_nanos <= maxt)
            .and_then(|s| match s.value {
                SampleValue::Float(f) => Some((s.ts_nanos, f)),
                SampleValue::Histogram(_) => None,
            });
        let mut v: Vec<(i64, f64)> = Vec::new();
        let mut newest = None;
        // Chunks are in time order and do not overlap.
        for c in self.chunks_in(mint, maxt).rev() {
            if c.maxt <= maxt {
                // The chunk ends inside the range (it overlaps it): its last sample is
                // the newest, at `maxt`; only the values need decoding.
                if let Some(f) = chunk::last_float(c.encoding, c.bytes.get()?)? {
                    newest = Some((c.maxt, f));
                    break;
                }
            }
            v.clear();
            chunk::decode_floats(c.encoding, c.bytes.get()?, &mut v)?;
            finish_floats(&mut v, mint, maxt);
            if let Some(&last) = v.last() {
                newest = Some(last);
                break;
            }
        }
        // At equal timestamps the chunk's sample wins, as in `decode`.
        let last = match (newest, ooo) {
            (Some(c), Some(o)) => Some(if o.0 > c.0 { o } else { c }),
            (c, o) => c.or(o),
        };
        Ok(SeriesData::Floats(last.into_iter().collect()))
    }

    fn has_histogram(&self, mint: i64, maxt: i64) -> bool {
        self.chunks_in(mint, maxt)
            .any(|c| c.encoding == chunk::ENCODING_HISTOGRAM)
            || self.ooo.iter().any(|s| {
                matches!(s.value, SampleValue::Histogram(_))
                    && s.ts_nanos >= mint
                    && s.ts_nanos <= maxt
            })
    }

    /// [`Taken::decode`] as float pairs when the range holds no histogram (decoded with
    /// the whole-chunk float decoders, no per-sample enum), else as samples.
    pub(crate) fn decode_data(&self, mint: i64, maxt: i64) -> Result<SeriesData> {
        if self.has_histogram(mint, maxt) {
            let mut v = Vec::new();
            self.decode(mint, maxt, &mut v)?;
            crate::querier::finish_samples(&mut v, mint, maxt);
            // A histogram chunk can overlap the range with only floats inside it.
            return Ok(SeriesData::from_samples(v));
        }
        // Exact capacity from the chunk headers: growing by doubling would leave up to
        // half of every series' vector unused while the query holds it.
        let mut cap = self.ooo.len();
        for c in self.chunks_in(mint, maxt) {
            cap = cap.saturating_add(chunk::sample_count(c.encoding, c.bytes.get()?)?);
        }
        let mut v: Vec<(i64, f64)> = Vec::with_capacity(cap);
        for c in self.chunks_in(mint, maxt) {
            chunk::decode_floats(c.encoding, c.bytes.get()?, &mut v)?;
        }
        v.extend(self.ooo.iter().filter_map(|s| match s.value {
            SampleValue::Float(f) if s.ts_nanos >= mint && s.ts_nanos <= maxt => {
                Some((s.ts_nanos, f))
            }
            _ => None,
        }));
        finish_floats(&mut v, mint, maxt);
        Ok(SeriesData::Floats(v))
    }
}
