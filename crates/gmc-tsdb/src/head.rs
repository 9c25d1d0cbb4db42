//! The head: every active series in memory, sharded by label hash so concurrent appenders
//! rarely contend, with interned labels, an inverted index and per-series chunks.
//!
//! Lock order: a shard, then `postings` / `interner` / `per_metric`. Readers take the
//! postings lock and shard locks one after the other, never nested.

mod append;
mod postings;
mod read;
mod series;
mod spill;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use gmc_model::{Label, LabelRef, Labels, Metadata, WriteBatch, METRIC_NAME};
use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::error::SampleError;
use crate::metrics::Metrics;

pub(crate) use append::Plan;
pub(crate) use read::Frozen;
pub(crate) use series::{Inserted, LabelSet, MemSeries, Taken};

use postings::{Interner, MemPostings};

/// Number of shards; a power of two, the low bits of a series ref name its shard.
pub(crate) const SHARDS: usize = 64;
const SHARD_BITS: u32 = 6;

/// Hasher for keys that are already hashes or sequence numbers: one multiply spreads them.
#[derive(Default, Clone, Copy)]
pub(crate) struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type U64Map<V> = HashMap<u64, V, BuildHasherDefault<U64Hasher>>;

#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// Series by label hash (the first series with that hash): appends find their series
    /// with one lookup.
    /// Boxed: a table sized for growth keeps up to twice its entries' room, and a
    /// `MemSeries` is ~300 bytes (inline, the 30,040-series peerbench head's tables took
    /// 19.5 MiB).
    by_hash: U64Map<Box<MemSeries>>,
    /// Further series sharing a label hash with another (collisions), by ref. Invariant:
    /// every hash here is also a key of `by_hash`.
    collided: U64Map<Box<MemSeries>>,
    /// Ref → label hash, for ref-based access (queries, replay).
    refs: U64Map<u64>,
}

impl Shard {
    /// Load what an append phase reads of the batch's series `idxs` (table entry and open
    /// chunk; with `keys`, also the stored key and the batch's key, which only the
    /// validating phase compares), discarding the values.
    ///
    /// Why: in a batch the series' entries are mostly cache misses. The append loop does
    /// so much work per series that the CPU has one or two of those misses in flight at a
    /// time; this loop is a few dozen instructions per series, so the out-of-order window
    /// spans many iterations and their misses overlap. The append pass that follows finds
    /// its data in cache. (Measured on a 10k-series request: see the ingest notes in
    /// `benches/runs/`.)
    pub(crate) fn touch(&self, batch: &WriteBatch<'_>, idxs: &[u32], keys: bool) {
        let mut acc = 0u64;
        for &i in idxs {
            let i = i as usize;
            if keys {
                let first = batch.key(i).and_then(|k| k.first().copied());
                acc = acc.wrapping_add(u64::from(first.unwrap_or(0)));
            }
            if let Some(m) = batch.hash(i).and_then(|h| self.by_hash.get(&h)) {
                acc = acc.wrapping_add(m.touch(keys));
            }
        }
        std::hint::black_box(acc);
    }

    /// Ref of the series with exactly these identity bytes: one probe of the hash table,
    /// and a key compare only on a hash match (collisions are searched only when the
    /// primary series' key differs).
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<u64> {
        self.find_series(hash, key).map(|s| s.ref_id)
    }

    fn find_series(&self, hash: u64, key: &[u8]) -> Option<&MemSeries> {
        let s = self.by_hash.get(&hash)?;
        if *s.key == *key {
            return Some(s);
        }
        self.collided
            .values()
            .find(|s| *s.key == *key)
            .map(|s| &**s)
    }

    /// Series `r`, whose label hash is `hash`.
    pub(crate) fn get_mut_hinted(&mut self, hash: u64, r: u64) -> Option<&mut MemSeries> {
        match self.by_hash.get_mut(&hash) {
            Some(s) if s.ref_id == r => Some(s),
            _ => self.collided.get_mut(&r).map(|s| &mut **s),
        }
    }

    /// Series `r`.
    pub(crate) fn get(&self, r: u64) -> Option<&MemSeries> {
        let hash = self.refs.get(&r)?;
        match self.by_hash.get(hash) {
            Some(s) if s.ref_id == r => Some(s),
            _ => self.collided.get(&r).map(|s| &**s),
        }
    }

    /// Series `r`, mutably.
    pub(crate) fn get_mut(&mut self, r: u64) -> Option<&mut MemSeries> {
        let hash = *self.refs.get(&r)?;
        self.get_mut_hinted(hash, r)
    }

    /// Every series.
    pub(crate) fn values(&self) -> impl Iterator<Item = &MemSeries> {
        self.by_hash
            .values()
            .chain(self.collided.values())
            .map(|s| &**s)
    }

    /// Every series, mutably.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut MemSeries> {
        self.by_hash
            .values_mut()
            .chain(self.collided.values_mut())
            .map(|s| &mut **s)
    }

    fn insert(&mut self, hash: u64, s: MemSeries) {
        let s = Box::new(s);
        let r = s.ref_id;
        self.refs.insert(r, hash);
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.insert(r, s);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(s);
            }
        }
    }

    fn remove(&mut self, hash: u64, r: u64) -> Option<Box<MemSeries>> {
        self.refs.remove(&r);
        match self.by_hash.get(&hash) {
            Some(s) if s.ref_id == r => {
                let removed = self.by_hash.remove(&hash);
                // Keep the invariant `find_mut` relies on: a hash some series has is in
                // `by_hash`. Promote a collided series with the same hash, if any.
                let heir = self
                    .collided
                    .keys()
                    .copied()
                    .find(|c| self.refs.get(c) == Some(&hash));
                if let Some(s) = heir.and_then(|c| self.collided.remove(&c)) {
                    self.by_hash.insert(hash, s);
                }
                removed
            }
            _ => self.collided.remove(&r),
        }
    }
}

/// The series key of `labels` (see [`gmc_model::series_key_bytes`]): stored with every
/// series in one allocation, so the identity check on every append is one sequential
/// compare against the batch's own key bytes.
pub(crate) fn series_key(labels: &[LabelRef<'_>]) -> Vec<u8> {
    let mut k = Vec::with_capacity(
        labels
            .iter()
            .map(|l| l.name.len() + l.value.len() + 2)
            .sum(),
    );
    gmc_model::series_key_bytes(&mut k, labels);
    k
}

/// Hash of an interned label set (same as `gmc_model::series_hash`).
pub(crate) fn label_set_hash(l: &[(Arc<str>, Arc<str>)]) -> u64 {
    gmc_model::series_hash(l.iter().map(|(n, v)| (&**n, &**v)))
}

/// Owned model labels of an interned set.
pub(crate) fn to_labels(l: &[(Arc<str>, Arc<str>)]) -> Labels {
    Labels::from_sorted(
        l.iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
    )
}

/// Settings the head needs from [`Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) window_nanos: i64,
    pub(crate) chunk_samples: usize,
    pub(crate) range_nanos: i64,
    pub(crate) max_series: usize,
    pub(crate) max_series_per_metric: usize,
}

impl Settings {
    pub(crate) fn from_config(c: &Config) -> Self {
        Settings {
            window_nanos: c.ooo_window_nanos(),
            chunk_samples: c.chunk_samples,
            range_nanos: i64::try_from(c.head_flush_range.as_nanos())
                .unwrap_or(i64::MAX)
                .max(1),
            max_series: c.max_series,
            max_series_per_metric: c.max_series_per_metric,
        }
    }
}

/// The in-memory head.
#[derive(Debug)]
pub(crate) struct Head {
    shards: Box<[Mutex<Shard>]>,
    postings: RwLock<MemPostings>,
    interner: Mutex<Interner>,
    per_metric: Mutex<HashMap<Arc<str>, usize>>,
    /// Family metadata by family name, copy-on-write: a querier takes the current map
    /// by reference count, and the rare change (a new family or new help text) copies it.
    metadata: RwLock<Arc<BTreeMap<String, Metadata>>>,
    next_seq: AtomicU64,
    series_count: AtomicUsize,
    /// Oldest and newest sample timestamps since the last flush.
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Chunks opened since the last recompression pass began (each cut opens one): the
    /// backlog of closed `XOR` chunks, approximately.
    opened_since_recompress: AtomicUsize,
    /// Where recompressed closed chunks go (`None`: they stay in memory).
    spill: Option<spill::Spill>,
    /// Whether the last spill write failed (logged on change only: a full disk fails
    /// every shard of every pass).
    spill_failing: std::sync::atomic::AtomicBool,
    pub(crate) settings: Settings,
    metrics: Arc<Metrics>,
}

/// Closed `XOR` chunks (about 460 bytes each on the trading workload, a third more than
/// recompressed) after which recompression runs at once instead of at the next
/// maintenance round; raised to a quarter of the series count so a large head is not
/// rescanned for a small backlog. A backfill cuts chunks far faster than one per series
/// per maintenance interval: without this, peerbench's 10-minute backfill held every
/// closed chunk as `XOR` at its memory peak.
const RECOMPRESS_BACKLOG_CHUNKS: usize = 8_192;

impl Head {
    pub(crate) fn new(settings: Settings, metrics: Arc<Metrics>) -> Self {
        Head {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            postings: RwLock::new(MemPostings::default()),
            interner: Mutex::new(Interner::default()),
            per_metric: Mutex::new(HashMap::new()),
            metadata: RwLock::new(Arc::new(BTreeMap::new())),
            next_seq: AtomicU64::new(1),
            series_count: AtomicUsize::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            opened_since_recompress: AtomicUsize::new(0),
            spill: None,
            spill_failing: std::sync::atomic::AtomicBool::new(false),
            settings,
            metrics,
        }
    }

    /// Spill recompressed closed chunks to files in `data_dir` (see [`spill`]) rather
    /// than keep them in memory. If the spill directory cannot be prepared the store
    /// still opens, keeping closed chunks in memory (counted and logged): the files are
    /// a memory saving, never a reason to refuse to start.
    pub(crate) fn with_spill(mut self, data_dir: &std::path::Path) -> Self {
        match spill::Spill::open(data_dir, Arc::clone(&self.metrics)) {
            Ok(s) => self.spill = Some(s),
            Err(e) => {
                self.metrics.spill_failures.fetch_add(1, Relaxed);
                self.spill_failing.store(true, Relaxed);
                tracing::warn!(error = %e, "head chunks stay in memory: no spill directory");
            }
        }
        self
    }

    /// Count `n` newly opened chunks; true exactly when this crosses the backlog at which
    /// closed chunks should be recompressed now (see [`RECOMPRESS_BACKLOG_CHUNKS`]).
    pub(crate) fn note_opened_chunks(&self, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        let limit = RECOMPRESS_BACKLOG_CHUNKS.max(self.series_count() / 4);
        let before = self.opened_since_recompress.fetch_add(n, Relaxed);
        before < limit && before + n >= limit
    }

    fn shard_of_hash(hash: u64) -> usize {
        (hash as usize) & (SHARDS - 1)
    }

    pub(crate) fn shard_of_ref(r: u64) -> usize {
        (r as usize) & (SHARDS - 1)
    }

    /// Number of active series.
    pub(crate) fn series_count(&self) -> usize {
        self.series_count.load(Relaxed)
    }

    /// Oldest and newest timestamps appended since the last flush, if any.
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        let (lo, hi) = (self.min_time.load(Relaxed), self.max_time.load(Relaxed));
        (lo <= hi).then_some((lo, hi))
    }

    pub(crate) fn note_time(&self, ts: i64) {
        self.min_time.fetch_min(ts, Relaxed);
        self.max_time.fetch_max(ts, Relaxed);
    }

    /// Create a series in `shard` (already locked), enforcing limits unless `ref_id` is
    /// given (replay recreates what was accepted before).
    fn create(
        &self,
        shard_idx: usize,
        shard: &mut Shard,
        hash: u64,
        labels: &[LabelRef<'_>],
        key: &[u8],
        ref_id: Option<u64>,
    ) -> Result<u64, SampleError> {
        let metric = labels
            .iter()
            .find(|l| l.name == METRIC_NAME)
            .map(|l| l.value.as_ref())
            .unwrap_or("");
        if ref_id.is_none() {
            // The per-metric limit is checked first: it names the culprit more precisely.
            let per = self.per_metric.lock();
            if per.get(metric).copied().unwrap_or(0) >= self.settings.max_series_per_metric {
                return Err(SampleError::MetricSeriesLimit {
                    metric: metric.to_owned(),
                    limit: self.settings.max_series_per_metric,
                });
            }
            drop(per);
            if self.series_count.load(Relaxed) >= self.settings.max_series {
                return Err(SampleError::SeriesLimit {
                    limit: self.settings.max_series,
                });
            }
        }
        let set: LabelSet = {
            let mut i = self.interner.lock();
            labels
                .iter()
                .map(|l| (i.intern(&l.name), i.intern(&l.value)))
                .collect()
        };
        let r = match ref_id {
            Some(r) => {
                // Keep fresh refs above replayed ones.
                self.next_seq.fetch_max((r >> SHARD_BITS) + 1, Relaxed);
                r
            }
            None => (self.next_seq.fetch_add(1, Relaxed) << SHARD_BITS) | shard_idx as u64,
        };
        self.postings.write().add(r, &set);
        {
            let mut per = self.per_metric.lock();
            let key = set
                .iter()
                .find(|(n, _)| &**n == METRIC_NAME)
                .map(|(_, v)| Arc::clone(v))
                .unwrap_or_else(|| Arc::from(metric));
            *per.entry(key).or_insert(0) += 1;
        }
        shard.insert(hash, MemSeries::new(r, set, key.into()));
        self.series_count.fetch_add(1, Relaxed);
        self.metrics.series_created.fetch_add(1, Relaxed);
        self.metrics.head_series.fetch_add(1, Relaxed);
        Ok(r)
    }

    /// Replay: (re)create series `ref_id` with `labels`; returns its ref (the existing one
    /// if the same labels were already replayed under another ref).
    pub(crate) fn replay_series(&self, ref_id: u64, labels: &Labels) -> u64 {
        let refs: Vec<LabelRef<'_>> = labels
            .as_slice()
            .iter()
            .map(|l| LabelRef::new(l.name.as_str(), l.value.as_str()))
            .collect();
        let hash = labels.hash();
        let key = series_key(&refs);
        // A replayed ref must stay in the shard its low bits name, so look it up there.
        let idx = Self::shard_of_ref(ref_id);
        let mut shard = self.shards[idx].lock();
        if let Some(r) = shard.find(hash, &key) {
            return r;
        }
        let home = Self::shard_of_hash(hash);
        if home != idx {
            drop(shard);
            let mut shard = self.shards[home].lock();
            if let Some(r) = shard.find(hash, &key) {
                return r;
            }
            let fresh = self.create(home, &mut shard, hash, &refs, &key, None);
            return fresh.unwrap_or(0);
        }
        let r = self.create(idx, &mut shard, hash, &refs, &key, Some(ref_id));
        if let Some(s) = r.as_ref().ok().and_then(|r| shard.get_mut(*r)) {
            s.wal_logged = true;
        }
        r.unwrap_or(ref_id)
    }

    /// Replay: store a batch of samples ordered by shard (each series' samples in WAL
    /// order), locking each shard once per run of its samples. Returns the number of
    /// samples whose series is unknown.
    pub(crate) fn replay_batch(
        &self,
        samples: &mut Vec<(u64, i64, crate::querier::SampleValue)>,
    ) -> u64 {
        let (cs, range) = (self.settings.chunk_samples, self.settings.range_nanos);
        let mut unknown = 0u64;
        let mut chunk_delta = 0i64;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let mut cur: Option<(usize, parking_lot::MutexGuard<'_, Shard>)> = None;
        for (r, ts, v) in samples.drain(..) {
            let idx = Self::shard_of_ref(r);
            if cur.as_ref().is_none_or(|c| c.0 != idx) {
                // Release the previous shard first: never hold two shard locks.
                drop(cur.take());
                cur = Some((idx, self.shards[idx].lock()));
            }
            let Some((_, shard)) = cur.as_mut() else {
                continue;
            };
            let Some(s) = shard.get_mut(r) else {
                unknown += 1;
                continue;
            };
            let before = s.chunk_count() as i64;
            s.insert(ts, v, cs, range);
            chunk_delta += s.chunk_count() as i64 - before;
            lo = lo.min(ts);
            hi = hi.max(ts);
        }
        drop(cur);
        self.metrics.head_chunks.fetch_add(chunk_delta, Relaxed);
        if lo <= hi {
            self.note_time(lo);
            self.note_time(hi);
        }
        unknown
    }

    /// Record family metadata (newest wins).
    pub(crate) fn set_metadata(&self, m: &[Metadata]) {
        if m.is_empty() {
            return;
        }
        // The append path passes only what changed (`changed_metadata`), so the copy
        // `make_mut` makes while queriers hold the map is paid on a real change, not on
        // every request.
        let mut guard = self.metadata.write();
        let map = Arc::make_mut(&mut guard);
        for x in m {
            if map.get(&x.metric_family) != Some(x) {
                map.insert(x.metric_family.clone(), x.clone());
            }
        }
    }

    /// The entries of `m` that differ from what the head holds (so only changes are logged).
    pub(crate) fn changed_metadata(&self, m: &[Metadata]) -> Vec<Metadata> {
        if m.is_empty() {
            return Vec::new();
        }
        let map = self.metadata.read();
        m.iter()
            .filter(|x| map.get(&x.metric_family) != Some(*x))
            .cloned()
            .collect()
    }

    /// All metadata, by family name (a shared snapshot: cloning the `Arc` is the cost).
    pub(crate) fn metadata(&self) -> Arc<BTreeMap<String, Metadata>> {
        Arc::clone(&self.metadata.read())
    }

    /// Refs and labels of every series (for a WAL checkpoint).
    pub(crate) fn all_series(&self) -> Vec<(u64, LabelSet)> {
        let mut out = Vec::with_capacity(self.series_count());
        for shard in self.shards.iter() {
            let g = shard.lock();
            out.extend(g.values().map(|s| (s.ref_id, Arc::clone(&s.labels))));
        }
        out.sort_unstable_by_key(|x| x.0);
        out
    }

    /// Move every series' data into a [`Frozen`] snapshot for a flush. Appends may run
    /// meanwhile; what they add after a series was visited stays in the head.
    pub(crate) fn take_all(&self) -> Frozen {
        let mut out = Vec::new();
        let mut chunks_taken = 0i64;
        for shard in self.shards.iter() {
            let mut g = shard.lock();
            for s in g.values_mut() {
                let before = s.chunk_count() as i64;
                let t = s.take();
                chunks_taken += before - s.chunk_count() as i64;
                if !t.chunks.is_empty() || !t.ooo.is_empty() {
                    out.push((Arc::clone(&s.labels), t));
                }
            }
        }
        self.metrics.head_chunks.fetch_sub(chunks_taken, Relaxed);
        self.min_time.store(i64::MAX, Relaxed);
        self.max_time.store(i64::MIN, Relaxed);
        Frozen::new(out)
    }

    /// Recompress closed `XOR` chunks with the denser closed-chunk codec, one shard at a
    /// time, encoding outside the shard lock so appends are delayed by two short lock
    /// holds per shard. Returns the number of chunks replaced.
    pub(crate) fn recompress_closed(&self) -> usize {
        self.opened_since_recompress.store(0, Relaxed);
        let mut replaced = 0;
        for shard in self.shards.iter() {
            let todo: Vec<(u64, usize, series::Chunk)> = {
                let g = shard.lock();
                g.values()
                    .flat_map(|s| s.xor_closed().map(|(i, c)| (s.ref_id, i, c.clone())))
                    .collect()
            };
            if todo.is_empty() {
                continue;
            }
            let mut done: Vec<(u64, usize, Arc<[u8]>, series::Chunk)> = todo
                .into_iter()
                .filter_map(|(r, i, c)| {
                    let fresh = series::recompress(&c)?;
                    Some((r, i, c.bytes.in_memory()?.clone(), fresh))
                })
                .collect();
            self.spill(&mut done);
            let mut g = shard.lock();
            for (r, i, was, fresh) in done {
                if let Some(s) = g.get_mut(r) {
                    replaced += usize::from(s.replace_closed(i, &was, fresh));
                }
            }
        }
        self.metrics
            .chunks_recompressed
            .fetch_add(replaced as u64, Relaxed);
        replaced
    }

    /// Return the disk space of spill files no chunk uses any more (after a flush).
    pub(crate) fn release_spill(&self) {
        if let Some(s) = &self.spill {
            s.release_unused();
        }
    }

    /// Move the bytes of freshly recompressed chunks to the spill files, if the head has
    /// them; on a write error they stay in memory (counted; logged when spilling starts
    /// or stops failing).
    fn spill(&self, done: &mut [(u64, usize, Arc<[u8]>, series::Chunk)]) {
        let Some(spill) = &self.spill else {
            return;
        };
        // Fresh recompressions are in memory (`None` never happens; it would skip the pass).
        let written = {
            let Some(slices) = done
                .iter()
                .map(|d| d.3.bytes.in_memory().map(|b| &b[..]))
                .collect::<Option<Vec<&[u8]>>>()
            else {
                return;
            };
            spill.write(&slices)
        };
        match written {
            Ok(refs) => {
                for (d, r) in done.iter_mut().zip(refs) {
                    d.3.bytes = series::ChunkBytes::Spilled(r);
                }
                if self.spill_failing.swap(false, Relaxed) {
                    tracing::info!("head chunks spill to disk again");
                }
            }
            Err(e) => {
                self.metrics.spill_failures.fetch_add(1, Relaxed);
                if !self.spill_failing.swap(true, Relaxed) {
                    tracing::warn!(error = %e, "head chunks stay in memory: spilling failed");
                }
            }
        }
    }

    /// Drop series holding no data whose newest samples were logged in WAL segment
    /// `upto` or earlier (a series with samples in a later segment must outlive the
    /// checkpoint of `upto`); the caller excludes concurrent appends.
    pub(crate) fn gc_empty_series(&self, upto: u64) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut g = shard.lock();
            let dead: Vec<(u64, u64)> = g
                .values()
                .filter(|s| s.is_empty() && s.last_segment <= upto)
                .map(|s| (label_set_hash(&s.labels), s.ref_id))
                .collect();
            for (hash, r) in dead {
                if let Some(s) = g.remove(hash, r) {
                    self.postings.write().remove(r, &s.labels);
                    let mut per = self.per_metric.lock();
                    if let Some((_, m)) = s.labels.iter().find(|(n, _)| &**n == METRIC_NAME) {
                        if let Some(c) = per.get_mut(m) {
                            *c = c.saturating_sub(1);
                            if *c == 0 {
                                per.remove(m);
                            }
                        }
                    }
                    removed += 1;
                }
            }
        }
        self.series_count.fetch_sub(removed, Relaxed);
        self.metrics.head_series.fetch_sub(removed as i64, Relaxed);
        self.interner.lock().purge();
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(r: u64, labels: &[LabelRef<'_>]) -> MemSeries {
        let set: LabelSet = labels
            .iter()
            .map(|l| (Arc::from(&*l.name), Arc::from(&*l.value)))
            .collect();
        MemSeries::new(r, set, series_key(labels).into())
    }

    #[test]
    fn colliding_hashes_keep_series_apart() {
        let a = [LabelRef::new("__name__", "a")];
        let b = [LabelRef::new("__name__", "b")];
        let mut shard = Shard::default();
        // Pretend both label sets hash to 7.
        shard.insert(7, series(1, &a));
        shard.insert(7, series(2, &b));
        let (ka, kb) = (series_key(&a), series_key(&b));
        assert_eq!(shard.find(7, &ka), Some(1));
        assert_eq!(shard.find(7, &kb), Some(2));
        assert_eq!(shard.get(2).map(|s| s.ref_id), Some(2));
        assert_eq!(shard.get_mut_hinted(7, 2).map(|s| s.ref_id), Some(2));
        assert_eq!(shard.values().count(), 2);
        assert!(shard.remove(7, 1).is_some());
        assert!(shard.find(7, &ka).is_none());
        assert_eq!(shard.find(7, &kb), Some(2));
        // The separators keep label boundaries apart.
        assert_ne!(
            series_key(&[LabelRef::new("__name__", "ab")]),
            series_key(&[LabelRef::new("__name__", "a"), LabelRef::new("b", "")])
        );
    }

    #[test]
    fn closed_chunks_are_recompressed_off_the_append_path() {
        use crate::querier::SampleValue;
        let head = Head::new(
            Settings::from_config(&Config::default()),
            Arc::new(Metrics::default()),
        );
        let labels = Labels::from_pairs([("__name__", "m")]);
        let r = head.replay_series(1 << SHARD_BITS, &labels);
        let n = 1000i64;
        let mut batch: Vec<(u64, i64, SampleValue)> = (0..n)
            .map(|i| {
                (
                    r,
                    i * 1_000_000_000,
                    SampleValue::Float((i as f64 * 0.37).sin()),
                )
            })
            .collect();
        assert_eq!(head.replay_batch(&mut batch), 0);
        let read = select_m;
        let before = read(&head);
        let encodings = |head: &Head| -> Vec<u8> {
            let g = head.shards[Head::shard_of_ref(r)].lock();
            g.get(r)
                .unwrap()
                .closed
                .iter()
                .map(|c| c.encoding)
                .collect()
        };
        assert!(encodings(&head)
            .iter()
            .all(|e| *e == crate::chunk::ENCODING_XOR));
        let closed = encodings(&head).len();
        assert!(closed >= 8);
        assert_eq!(head.recompress_closed(), closed);
        assert!(encodings(&head)
            .iter()
            .all(|e| *e != crate::chunk::ENCODING_XOR));
        assert_eq!(head.recompress_closed(), 0);
        assert_eq!(read(&head), before);
        assert_eq!(before[0].1.len(), n as usize);
    }

    fn float_batch(samples: &[(i64, f64)]) -> gmc_model::WriteBatch<'static> {
        let mut b = gmc_model::WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "m");
        for &(t, v) in samples {
            s.float(t, v);
        }
        s.finish().unwrap();
        b
    }

    /// Everything the head holds of the series named `m`.
    fn select_m(head: &Head) -> Vec<(Labels, Vec<crate::querier::Sample>)> {
        use crate::querier::Source as _;
        let mut out = Vec::new();
        head.select(
            &[gmc_model::Matcher::equal("__name__", "m")],
            0,
            i64::MAX,
            &mut out,
        )
        .unwrap();
        out
    }

    fn stored(head: &Head) -> Vec<(i64, f64)> {
        select_m(head)
            .into_iter()
            .flat_map(|(_, samples)| samples)
            .map(|s| match s.value {
                crate::querier::SampleValue::Float(v) => (s.ts_nanos, v),
                crate::querier::SampleValue::Histogram(_) => (s.ts_nanos, f64::NAN),
            })
            .collect()
    }

    #[test]
    fn a_retry_of_stored_samples_is_not_stored_again() {
        let head = Head::new(
            Settings::from_config(&Config::default()),
            Arc::new(Metrics::default()),
        );
        let first: Vec<(i64, f64)> = (1..=300).map(|i| (i * 1_000_000_000, i as f64)).collect();
        let b = float_batch(&first);
        let plan = head.prepare(&b, i64::MIN);
        assert!(plan.already_stored.is_empty());
        head.commit(&b, &plan, 0);
        // The same samples again (a retry), and a part of them out of order.
        for retry in [first.clone(), first[100..140].to_vec()] {
            let b = float_batch(&retry);
            let plan = head.prepare(&b, i64::MIN);
            assert_eq!(plan.refs.iter().flatten().count(), 1);
            assert_eq!(plan.already_stored, [true]);
            assert_eq!(plan.accepted(&b).0, retry.len());
            head.commit(&b, &plan, 0);
            assert_eq!(stored(&head), first);
        }
        // One new sample among stored ones: the series is stored, the new sample kept.
        let mut mixed = first[290..].to_vec();
        mixed.push((301_000_000_000, 301.0));
        let b = float_batch(&mixed);
        let plan = head.prepare(&b, i64::MIN);
        assert!(plan.already_stored.iter().all(|s| !s));
        head.commit(&b, &plan, 0);
        assert_eq!(stored(&head).len(), 301);
    }

    #[test]
    fn a_sample_only_reserved_by_another_write_is_stored_by_its_retry() {
        // Write A reserves a sample but never stores it (its WAL write failed); a retry
        // B of the same sample must store it, not take A's reservation for stored data.
        let head = Head::new(
            Settings::from_config(&Config::default()),
            Arc::new(Metrics::default()),
        );
        let base = float_batch(&[(1_000_000_000, 1.0)]);
        let plan = head.prepare(&base, i64::MIN);
        head.commit(&base, &plan, 0);
        let x = float_batch(&[(2_000_000_000, 2.0)]);
        let _a = head.prepare(&x, i64::MIN);
        let b = head.prepare(&x, i64::MIN);
        assert!(b.already_stored.iter().all(|s| !s));
        head.commit(&x, &b, 0);
        assert_eq!(stored(&head), [(1_000_000_000, 1.0), (2_000_000_000, 2.0)]);
    }
}
