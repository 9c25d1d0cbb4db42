//! Heap hygiene: returning free memory to the kernel where much was just freed, and
//! glibc's settings for builds that run on it. The `gmc` binary runs on jemalloc (see its
//! `alloc.rs` for the measurements) and installs its purge with [`set_release`]; without
//! one, releases call glibc's `malloc_trim` (mimalloc was measured too and held twice
//! the memory after ingest, 392 against 204 MiB).
//!
//! A query over tens of thousands of series (`count({__name__=~".+"})`) frees tens of MiB
//! of labels in chunks glibc keeps resident, and the next large query's peak stacks on
//! top: on the peerbench workload (with streaming selects) the query phase peaked at 301
//! MiB without the release and at 265 MiB with it (VictoriaMetrics: 287–315 MiB).
//! [`release_after_query`] hands free pages back once such queries pause, on a blocking
//! thread, never on the response path.
//!
//! [`tune_allocator`] turns glibc's fastbins off (`M_MXFAST` 0). Each new connection
//! allocates hyper's buffers, and with a large heap of small store objects such a
//! request made glibc consolidate its fastbins first: the first byte of `/-/ready` on a
//! new connection came after 0.73 ms, against 0.52–0.57 ms without fastbins
//! (VictoriaMetrics: 0.41–0.57 ms). Each thread's small-block cache (`tcache`) still
//! serves the hot sizes; ingest CPU was unchanged (1.90–2.01 against 1.96–2.03 µs per
//! sample) and peak RSS after ingest fell from 206 to 193 MiB in the same pair of runs.
//!
//! Not done here, measured: limiting glibc to one arena (`MALLOC_ARENA_MAX=1`, which
//! glibc reads itself) lowers peak RSS after ingest from 191–207 to 161–165 MiB, because
//! each thread's arena keeps the ingest buffers it freed, but costs about 7 % more ingest
//! CPU and slowed allocation-heavy parallel queries by 20–80 % on 2 cores. Operators short
//! of memory can set it; the default favours latency.
//!
//! Elsewhere (non-glibc targets) both are no-ops unless a release function is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The allocator's "return free pages now", when it is not glibc's (see [`set_release`]).
static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Use `f` instead of glibc's `malloc_trim` wherever free memory is handed back (the
/// binary's allocator sets its own; the first call wins).
pub fn set_release(f: fn()) {
    let _ = RELEASE.set(f);
}

/// Hand free memory back to the kernel with the installed release function.
fn release() {
    match RELEASE.get() {
        Some(f) => f(),
        None => sys::trim(),
    }
}

/// Series selected above which a finished query triggers a release of free memory.
const RELEASE_SERIES: u64 = 5_000;
/// Peak samples above which a finished query triggers a release of free memory.
const RELEASE_PEAK_SAMPLES: u64 = 1_000_000;

/// Allocator settings for a long-running server; call first thing in `main`.
pub fn tune_allocator() {
    sys::disable_fastbins();
}

/// How long no large query must have finished before their free pages are returned.
/// Dashboards send their panels' queries in a burst: a release after each one made the
/// next re-fault the pages it would have reused (measured on the peerbench query set,
/// alternating servers on the same data, `benches/query_ab.py`: `count({__name__=~".+"})`
/// 95 against 78 ms, `r_topk5_pairs` 72 against 66 ms, with the same peak RSS).
const RELEASE_QUIET: Duration = Duration::from_secs(1);

/// After a query that selected many series or held many samples, return the heap's free
/// pages to the kernel once no such query has finished for a second (on a
/// blocking thread, never on the response path).
pub fn release_after_query(series_selected: u64, peak_samples: u64) {
    static AFTER_QUERIES: QuietRelease = QuietRelease::new(RELEASE_QUIET);
    if series_selected < RELEASE_SERIES && peak_samples < RELEASE_PEAK_SAMPLES {
        return;
    }
    AFTER_QUERIES.note(release);
}

/// Runs a release once the events asking for one have paused for `quiet`: one timer at a
/// time, pushed back by each new event.
pub(crate) struct QuietRelease {
    quiet: Duration,
    /// Whether a timer task is waiting to release.
    pending: AtomicBool,
    /// When the newest event happened.
    last: Mutex<Option<tokio::time::Instant>>,
}

impl QuietRelease {
    pub(crate) const fn new(quiet: Duration) -> Self {
        QuietRelease {
            quiet,
            pending: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<tokio::time::Instant>> {
        // The guarded value is one timestamp, consistent whatever a panicking holder did.
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An event wants `release` to run; outside a tokio runtime it runs at once.
    pub(crate) fn note(&'static self, release: fn()) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            release();
            return;
        };
        *self.last() = Some(tokio::time::Instant::now());
        if self.pending.swap(true, Ordering::AcqRel) {
            return; // the waiting timer sees the new time
        }
        rt.spawn(async move {
            loop {
                let due = self.last().map(|t| t + self.quiet);
                match due {
                    Some(due) if due > tokio::time::Instant::now() => {
                        tokio::time::sleep_until(due).await;
                    }
                    _ => break,
                }
            }
            // Cleared before releasing: an event from now on schedules a release after it.
            self.pending.store(false, Ordering::Release);
            let _ = tokio::task::spawn_blocking(release).await;
        });
    }
}

/// When a head flush starts writing and when it has freed the head (called by the store
/// on the flushing thread, never an async worker): return free pages to the kernel. On
/// the peerbench workload the process kept 251 MiB resident after a flush that left ~90
/// MiB in use, and the first large query's peak then stacked on top of the stale pages.
pub fn release_around_flush() {
    let started = std::time::Instant::now();
    release();
    tracing::debug!(
        elapsed_us = started.elapsed().as_micros() as u64,
        "Returned free heap pages to the kernel around a flush."
    );
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod sys {
    /// `mallopt(M_MXFAST, 0)`: no fastbins.
    pub(super) fn disable_fastbins() {
        // SAFETY: mallopt only adjusts allocator parameters; M_MXFAST 0 is documented and
        // may be set at any time (glibc consolidates existing fastbins first).
        unsafe {
            libc::mallopt(libc::M_MXFAST, 0);
        }
    }

    /// `malloc_trim(0)`: release free memory at the top of the heap and, since glibc
    /// 2.8, whole free pages inside every arena.
    pub(super) fn trim() {
        // SAFETY: malloc_trim takes the arena locks itself; it only releases free pages.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod sys {
    pub(super) fn disable_fastbins() {}
    pub(super) fn trim() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static RELEASES: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        RELEASES.fetch_add(1, Ordering::SeqCst);
    }

    /// Let the timer task and its blocking release run (time is paused: sleeping
    /// advances it only when every task waits).
    async fn settle(d: Duration) -> usize {
        tokio::time::sleep(d).await;
        for _ in 0..200 {
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
        RELEASES.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_events_releases_once_after_it_pauses() {
        static QUIET: QuietRelease = QuietRelease::new(Duration::from_secs(1));
        QUIET.note(count);
        assert_eq!(settle(Duration::from_millis(600)).await, 0);
        QUIET.note(count);
        QUIET.note(count);
        // 1.2 s after the first event but 0.6 s after the last: still waiting.
        assert_eq!(settle(Duration::from_millis(600)).await, 0);
        assert_eq!(settle(Duration::from_millis(500)).await, 1);
        assert_eq!(
            settle(Duration::from_secs(5)).await,
            1,
            "one release per burst"
        );
        // A later event schedules a release of its own.
        QUIET.note(count);
        assert_eq!(settle(Duration::from_millis(1100)).await, 2);
    }
}
