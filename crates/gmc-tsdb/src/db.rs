//! The store: opens the data directory (replaying the WAL into the head), appends batches
//! WAL-first, serves queriers over head + blocks, flushes the head to blocks and runs the
//! background maintenance thread.

mod blocks;
mod encode;
mod flushed;
mod maintain;
mod replay;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gmc_model::WriteBatch;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::block::Resolution;
use crate::config::Config;
use crate::error::{Error, Result, SampleError};
use crate::head::{Frozen, Head, Settings};
use crate::metrics::{AppendPhase, Metrics};
use crate::querier::{Querier, Source, SourceSet};
use crate::wal::Wal;
pub use maintain::MaintenanceReport;

/// A series of a batch that was refused; the rest of the batch is unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the series in the batch.
    pub series_index: usize,
    /// Why (see [`SampleError::reason`]).
    pub error: SampleError,
}

/// What an append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReport {
    /// Float samples accepted (idempotent duplicates included).
    pub accepted_floats: usize,
    /// Histogram samples accepted.
    pub accepted_histograms: usize,
    /// Series created by this batch.
    pub new_series: usize,
    /// Series refused, by batch index.
    pub rejected: Vec<Rejection>,
}

/// One job of [`Db::append_parts`] after its log write: the sync, or storing a part in
/// the head.
enum AppendJob<'a, 'b> {
    Sync,
    Commit(&'a WriteBatch<'b>, &'a crate::head::Plan),
}

/// Fewest samples in one write for which the head stores them on the pool while the log
/// syncs: below it (a scrape, a JSON push, self-monitoring) storing takes microseconds,
/// less than waking a pool thread, so the calling thread syncs and then stores.
const OVERLAP_MIN_SAMPLES: usize = 2_000;

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Series written.
    pub series: usize,
    /// Chunks written.
    pub chunks: usize,
    /// Oldest and newest timestamp written (`None` when the head was empty).
    pub time_range: Option<(i64, i64)>,
    /// Series dropped from the head because they had no data left.
    pub series_removed: usize,
    /// How long the flush took.
    pub duration: Duration,
}

struct Inner {
    dir: PathBuf,
    config: Config,
    head: Arc<Head>,
    wal: Wal,
    /// Appends hold it shared from validation to head insert; a flush holds it exclusively
    /// just to cut the WAL, so every record before the cut is in the head when it is taken.
    gate: RwLock<()>,
    frozen: RwLock<Vec<Arc<Frozen>>>,
    blocks: RwLock<Vec<Arc<blocks::BlockSource>>>,
    flush_lock: Mutex<()>,
    metrics: Arc<Metrics>,
    closed: AtomicBool,
    stop: Mutex<bool>,
    stop_cv: Condvar,
    /// Set (then `recompress_cv` signalled under `stop`) when the head's closed-chunk
    /// backlog asks for recompression before the next maintenance round.
    recompress_due: AtomicBool,
    recompress_cv: Condvar,
    /// Called around a flush, when much memory has just been freed (see
    /// [`Db::set_release_hook`]).
    release_hook: std::sync::OnceLock<ReleaseHook>,
    _lock_file: File,
}

/// A callback the store runs where much memory has just been freed (around head flushes).
pub type ReleaseHook = Box<dyn Fn() + Send + Sync>;

impl SourceSet for Inner {
    fn sources(&self) -> Vec<Arc<dyn Source>> {
        let mut v: Vec<Arc<dyn Source>> = vec![Arc::clone(&self.head) as Arc<dyn Source>];
        v.extend(
            self.frozen
                .read()
                .iter()
                .map(|f| Arc::clone(f) as Arc<dyn Source>),
        );
        // Newest block first, so on duplicate timestamps newer data wins. Rollup blocks
        // are read through `rollup_sources` only.
        v.extend(
            self.blocks
                .read()
                .iter()
                .rev()
                .filter(|b| b.resolution() == Resolution::Raw)
                .map(|b| Arc::clone(b) as Arc<dyn Source>),
        );
        v
    }

    fn rollup_sources(&self, res: Resolution) -> (Vec<Arc<dyn Source>>, i64) {
        let blocks = self.blocks.read();
        let mut v: Vec<&Arc<blocks::BlockSource>> =
            blocks.iter().filter(|b| b.resolution() == res).collect();
        // Newest (by creation) first: a re-rollup overrides the bucket it recomputed.
        v.sort_by(|a, b| b.id().cmp(a.id()));
        let watermark = v.iter().map(|b| b.maxt()).max().unwrap_or(i64::MIN);
        (
            v.into_iter()
                .map(|b| Arc::clone(b) as Arc<dyn Source>)
                .collect(),
            watermark,
        )
    }
}

/// The embedded time-series store. `Send + Sync`; share it behind an `Arc`.
pub struct Db {
    inner: Arc<Inner>,
    /// The maintenance and recompression threads.
    background: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish()
    }
}

impl Db {
    /// Open (or create) the store in `dir`, replaying the WAL. Torn or corrupt WAL data is
    /// dropped and reported (log + metrics), never a reason to refuse to start.
    pub fn open(dir: &Path, config: Config) -> Result<Db> {
        config.validate()?;
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| Error::io("create dir", &wal_dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock_file =
            File::create(&lock_path).map_err(|e| Error::io("create lock", &lock_path, e))?;
        lock_file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::Error(e) => Error::io("lock data dir", &lock_path, e),
            std::fs::TryLockError::WouldBlock => Error::io(
                "lock data dir (another process uses it)",
                &lock_path,
                std::io::Error::from(std::io::ErrorKind::WouldBlock),
            ),
        })?;
        let metrics = Arc::new(Metrics::default());
        let head = Head::new(Settings::from_config(&config), Arc::clone(&metrics));
        let head = Arc::new(if config.head_chunks_on_disk {
            head.with_spill(dir)
        } else {
            head
        });
        let started = Instant::now();
        let (stats, unknown_series_samples) = replay::replay_into(&wal_dir, &head)?;
        metrics.replay_nanos.store(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Relaxed,
        );
        metrics.replay_records.fetch_add(stats.records, Relaxed);
        metrics
            .replay_dropped_bytes
            .fetch_add(stats.dropped_bytes, Relaxed);
        metrics
            .replay_corruptions
            .fetch_add(stats.corruptions, Relaxed);
        metrics
            .replay_unknown_series_samples
            .fetch_add(unknown_series_samples, Relaxed);
        if stats.corruptions > 0 {
            tracing::warn!(
                dropped_bytes = stats.dropped_bytes,
                places = stats.corruptions,
                "WAL replay dropped torn or corrupt data"
            );
        }
        tracing::info!(
            records = stats.records,
            segments = stats.segments,
            series = head.series_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "WAL replayed"
        );
        let wal = Wal::open(
            &wal_dir,
            stats.last_seq,
            config.sync,
            config.wal_segment_bytes,
            Arc::clone(&metrics),
        )?;
        let blocks = blocks::open_all(dir)?;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            config,
            head,
            wal,
            gate: RwLock::new(()),
            frozen: RwLock::new(Vec::new()),
            blocks: RwLock::new(blocks),
            flush_lock: Mutex::new(()),
            metrics,
            closed: AtomicBool::new(false),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            recompress_due: AtomicBool::new(false),
            recompress_cv: Condvar::new(),
            release_hook: std::sync::OnceLock::new(),
            _lock_file: lock_file,
        });
        inner.update_disk_bytes();
        let bg = Arc::clone(&inner);
        let maint = std::thread::Builder::new()
            .name("gmc-tsdb-maint".into())
            .spawn(move || {
                background_priority();
                bg.maintenance_loop();
            })
            .map_err(|e| Error::io("spawn maintenance thread", dir, e))?;
        let rc = Arc::clone(&inner);
        let recompress = std::thread::Builder::new()
            .name("gmc-tsdb-recompress".into())
            .spawn(move || {
                background_priority();
                rc.recompress_loop();
            });
        let recompress = match recompress {
            Ok(h) => h,
            Err(e) => {
                inner.stop_background(vec![maint]);
                return Err(Error::io("spawn recompression thread", dir, e));
            }
        };
        // The replay closed its chunks as `XOR` without counting them: recompress now
        // rather than at the first maintenance round (cheap when the head is empty).
        inner.wake_recompressor();
        Ok(Db {
            inner,
            background: Mutex::new(vec![maint, recompress]),
        })
    }

    /// Append a batch. Returns only after every accepted sample is durable under
    /// `config.sync`. Per-series problems reject only that series (see
    /// [`AppendReport::rejected`]); whole-batch failures (I/O, disk full, closed) return
    /// `Err`, and then nothing of the batch is acknowledged.
    pub fn append(&self, batch: &WriteBatch<'_>) -> Result<AppendReport> {
        let mut reports = self.append_parts(&[batch])?;
        Ok(reports.pop().unwrap_or_default())
    }

    /// [`append`](Self::append) for the parts of one large write, as one write: the
    /// parts are checked against the head and stored in it on the cores
    /// ([`crate::par`]), and their WAL records go to disk in a single write made durable
    /// by a single sync. Appending the parts one by one on threads of their own cost a
    /// 10 k-sample request two syncs when the second part reached the log after the
    /// first part's sync had begun, plus a thread start per part; together about a third
    /// of its latency. One report per part, in order; an `Err` acknowledges no part.
    pub fn append_parts(&self, batches: &[&WriteBatch<'_>]) -> Result<Vec<AppendReport>> {
        let inner = &self.inner;
        if inner.closed.load(Relaxed) {
            return Err(Error::Closed);
        }
        let _gate = inner.gate.read();
        let flushed_maxt = inner.flushed_maxt();
        let started = Instant::now();
        let plans = crate::par::each(batches.to_vec(), |batch| {
            let mut plan = inner.head.prepare(batch, flushed_maxt);
            if !plan.touches_flushed.is_empty() {
                inner.check_flushed(batch, &mut plan);
            }
            plan
        });
        let prepared = Instant::now();
        inner
            .metrics
            .append_phase(AppendPhase::Prepare, prepared - started);
        let mut buf = Vec::new();
        let mut new_meta = Vec::new();
        for (batch, plan) in batches.iter().zip(&plans) {
            // Metadata another part already changed is not logged twice.
            let changed: Vec<_> = inner
                .head
                .changed_metadata(batch.metadata())
                .into_iter()
                .filter(|m| !new_meta.contains(m))
                .collect();
            let records = encode::wal_records(batch, plan, &changed);
            if buf.is_empty() {
                buf = records;
            } else {
                buf.extend_from_slice(&records);
            }
            new_meta.extend(changed);
        }
        let written = inner.wal.write(&buf)?;
        let logged = Instant::now();
        inner
            .metrics
            .append_phase(AppendPhase::LogWrite, logged - prepared);
        // For a large write the head stores the parts while the log's sync is in flight
        // (the sync first, so the calling thread usually takes it and the pool the
        // parts): a 10 k-sample request no longer waits for the sync and then for the
        // head one after the other (small writes: see `OVERLAP_MIN_SAMPLES`). Queries may see the samples a moment before they are durable, as in
        // Prometheus' head; nothing is acknowledged before the sync returns, and a failed
        // sync fails the write (a retry of the same samples is accepted as a duplicate).
        let mut jobs = Vec::with_capacity(batches.len() + 1);
        if inner.wal.syncs_after_write() {
            jobs.push(AppendJob::Sync);
        }
        jobs.extend(
            batches
                .iter()
                .zip(&plans)
                .map(|(batch, plan)| AppendJob::Commit(batch, plan)),
        );
        let run = |job: AppendJob<'_, '_>| match job {
            // A sync reports no recompression to wake.
            AppendJob::Sync => inner.wal.sync(written).map(|()| false),
            AppendJob::Commit(batch, plan) => Ok(inner.head.commit(batch, plan, written.segment)),
        };
        let samples: usize = batches.iter().map(|b| b.len_samples()).sum();
        let done: Vec<Result<bool>> = if samples >= OVERLAP_MIN_SAMPLES {
            crate::par::each(jobs, run)
        } else {
            jobs.into_iter().map(run).collect()
        };
        if done.iter().any(|d| matches!(d, Ok(true))) {
            inner.wake_recompressor();
        }
        inner
            .metrics
            .append_phase(AppendPhase::StoreSync, logged.elapsed());
        done.into_iter().collect::<Result<Vec<bool>>>()?;
        // Exactly what was logged, so the head holds what a replay would rebuild.
        inner.head.set_metadata(&new_meta);
        let reports = batches
            .iter()
            .zip(plans)
            .map(|(batch, plan)| {
                let (f, h) = plan.accepted(batch);
                inner.metrics.appended_floats.fetch_add(f as u64, Relaxed);
                inner
                    .metrics
                    .appended_histograms
                    .fetch_add(h as u64, Relaxed);
                AppendReport {
                    accepted_floats: f,
                    accepted_histograms: h,
                    new_series: plan.created,
                    rejected: plan.rejected,
                }
            })
            .collect();
        Ok(reports)
    }

    /// Run `hook` on the flushing thread when a flush (manual or background) starts
    /// writing and again once the flushed head data is freed. The server uses it to hand
    /// free heap pages back to the kernel: memory freed by ingest and by the flush
    /// otherwise stays resident under the block writer's and the next query's peaks.
    /// Only the first hook set is kept; returns whether this one was.
    pub fn set_release_hook(&self, hook: ReleaseHook) -> bool {
        self.inner.release_hook.set(hook).is_ok()
    }

    /// A read view over `[mint_nanos, maxt_nanos]`. Cheap; reads take short locks only.
    pub fn querier(&self, mint_nanos: i64, maxt_nanos: i64) -> Result<Querier> {
        if self.inner.closed.load(Relaxed) {
            return Err(Error::Closed);
        }
        Ok(Querier::new(
            mint_nanos,
            maxt_nanos,
            Arc::clone(&self.inner) as Arc<dyn SourceSet>,
            self.inner.head.metadata(),
        ))
    }

    /// Persist the head to an immutable block now.
    pub fn flush(&self) -> Result<FlushReport> {
        if self.inner.closed.load(Relaxed) {
            return Err(Error::Closed);
        }
        self.inner.flush()
    }

    /// Run one maintenance round now (the background thread does every
    /// `maintenance_interval`): compact blocks, write the 1-minute and 1-hour rollups of
    /// raw blocks not rolled up yet, apply retention per resolution. Every step runs even
    /// when an earlier one fails; the first error is returned.
    pub fn maintain(&self) -> Result<MaintenanceReport> {
        if self.inner.closed.load(Relaxed) {
            return Err(Error::Closed);
        }
        let r = self.inner.maintain();
        self.inner.update_disk_bytes();
        r
    }

    /// The resolution a query over `[mint_nanos, now]` with evaluation step `step` should
    /// read (see [`crate::retention::Policy::resolution_for`]): the coarsest whose bucket
    /// fits in `step` and whose retention still covers `mint_nanos`.
    pub fn resolution_for(&self, step: Duration, mint_nanos: i64) -> Resolution {
        self.inner.config.retention_policy().resolution_for(
            step,
            mint_nanos,
            gmc_model::now_nanos(),
        )
    }

    /// Newest bucket timestamp held by rollup blocks of `res`, if there are any.
    /// Readers use it to decide whether rollups can answer for an old range at all.
    pub fn rollup_watermark(&self, res: Resolution) -> Option<i64> {
        let (blocks, watermark) = self.inner.rollup_sources(res);
        (!blocks.is_empty()).then_some(watermark)
    }

    /// Self-metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Stop background work and sync the WAL. Also done, best effort, on drop.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Relaxed) {
            return Ok(());
        }
        self.inner
            .stop_background(std::mem::take(&mut *self.background.lock()));
        // Wait for in-flight appends, then make everything written durable.
        let _gate = self.inner.gate.write();
        self.inner.wal.sync_now()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "closing the store failed");
        }
    }
}

impl Inner {
    fn flush(&self) -> Result<FlushReport> {
        let _one = self.flush_lock.lock();
        let started = Instant::now();
        let upto = {
            let _gate = self.gate.write();
            self.wal.cut()?
        };
        {
            // Registered under the lock readers take after reading the head, so data is
            // always visible in the head, here, or both.
            let mut frozen = self.frozen.write();
            let f = self.head.take_all();
            if f.len() > 0 {
                frozen.push(Arc::new(f));
            }
        }
        let pending: Vec<Arc<Frozen>> = self.frozen.read().clone();
        // Before the block writer allocates: pages the allocator holds from freed
        // ingest buffers go back first, so the writer's memory does not stack on them.
        self.release_memory();
        let mut report = FlushReport::default();
        for f in &pending {
            let written = blocks::write(&self.dir, f).inspect_err(|_| {
                self.metrics.flush_failures.fetch_add(1, Relaxed);
            })?;
            if let Some((source, chunks)) = written {
                self.blocks.write().push(source);
                report.chunks += chunks;
            }
            report.series += f.len();
            report.time_range = Some(match report.time_range {
                None => (f.mint, f.maxt),
                Some((a, b)) => (a.min(f.mint), b.max(f.maxt)),
            });
            self.frozen.write().retain(|x| !Arc::ptr_eq(x, f));
        }
        // The last references to the written head data: free it before the checkpoint
        // is built and the release hook runs.
        drop(pending);
        self.head.release_spill();
        // Series left empty by the take (idle since) leave the head first, so the
        // checkpoint holds only series that can still receive samples: after a backfill
        // or on a fleet that rotates instances this keeps the WAL from carrying every
        // label set the block already has. A series whose last samples went to a segment
        // after the cut stays (that segment outlives the checkpoint and refers to it).
        report.series_removed = {
            let _gate = self.gate.write();
            self.head.gc_empty_series(upto)
        };
        let records = encode::checkpoint_records(&self.head);
        self.wal.checkpoint(upto, &records)?;
        report.duration = started.elapsed();
        self.metrics.flush.observe(report.duration);
        self.update_disk_bytes();
        self.release_memory();
        Ok(report)
    }

    fn release_memory(&self) {
        if let Some(hook) = self.release_hook.get() {
            hook();
        }
    }

    fn update_disk_bytes(&self) {
        let blocks: u64 = self.blocks.read().iter().map(|b| b.size_bytes()).sum();
        let bytes = self.wal.disk_bytes() + blocks;
        self.metrics.disk_bytes.store(bytes, Relaxed);
    }

    /// Stop the background threads `handles` and wait for them.
    fn stop_background(&self, handles: Vec<JoinHandle<()>>) {
        *self.stop.lock() = true;
        self.stop_cv.notify_all();
        self.recompress_cv.notify_all();
        for h in handles {
            let _ = h.join();
        }
    }

    /// Ask the recompression thread for a pass (flag, then signal under the lock its
    /// wait checks the flag under, so the wake-up cannot be lost).
    fn wake_recompressor(&self) {
        self.recompress_due.store(true, Relaxed);
        let _stop = self.stop.lock();
        self.recompress_cv.notify_one();
    }

    /// Recompress closed head chunks whenever appends report a backlog (see
    /// `Head::note_opened_chunks`), and at every maintenance round for what a slow
    /// trickle of cuts leaves: the only thread that recompresses.
    fn recompress_loop(&self) {
        loop {
            {
                let mut stop = self.stop.lock();
                while !*stop && !self.recompress_due.swap(false, Relaxed) {
                    self.recompress_cv.wait(&mut stop);
                }
                if *stop {
                    return;
                }
            }
            let started = std::time::Instant::now();
            let n = self.head.recompress_closed();
            tracing::debug!(
                chunks = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Recompressed closed head chunks."
            );
        }
    }

    fn maintenance_loop(&self) {
        let interval = self.config.maintenance_interval;
        let range = i64::try_from(self.config.head_flush_range.as_nanos()).unwrap_or(i64::MAX);
        loop {
            {
                let mut stop = self.stop.lock();
                if *stop {
                    return;
                }
                self.stop_cv.wait_for(&mut stop, interval);
                if *stop {
                    return;
                }
            }
            // Flush once the head spans 1.5 ranges, keeping the flushed part a full range.
            let due = self
                .head
                .time_range()
                .is_some_and(|(lo, hi)| hi.saturating_sub(lo) >= range.saturating_add(range / 2));
            if due && blocks::AVAILABLE {
                match self.flush() {
                    Ok(r) => tracing::info!(series = r.series, chunks = r.chunks, "head flushed"),
                    Err(e) => tracing::warn!(error = %e, "head flush failed"),
                }
            }
            // What a slow trickle of cuts left below the backlog trigger; the pass runs on
            // the recompression thread, so two passes never encode the same chunks.
            self.wake_recompressor();
            if let Err(e) = self.maintain() {
                tracing::warn!(error = %e, "maintenance round failed; retried next round");
            }
            self.update_disk_bytes();
        }
    }
}

/// Run the calling (background) thread at a lower CPU priority, nice +10, where the OS
/// lets a thread have its own (Linux). Recompression and maintenance (flushes, compaction,
/// rollups, retention) then give the cores to appends and queries whenever both want
/// them, and still get about a tenth of a contended core, so their backlog cannot grow
/// without bound. On a 2-core host the recompression thread ran in most 50 ms windows of
/// a 550k samples/s remote-write load (`benches/rwload/tail.sh`), beside the requests.
/// Best effort: a failure leaves the thread at normal priority.
fn background_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::debug!(error = %e, "background thread keeps its priority");
    }
}
