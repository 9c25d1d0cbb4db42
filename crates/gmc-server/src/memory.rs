//! Heap hygiene: returning free memory to the kernel where much was just freed, and
//! glibc's settings for builds that run on it. The `gmc` binary runs on jemalloc (see its
//! `alloc.rs` for the measurements) and installs its purge with [`set_release`]; without
//! one, releases call glibc's `malloc_trim` (mimalloc was measured too and held twice
//! the memory after ingest, 392 against 204 MiB).
//!
//! A query over tens of thousands of series (`count({__name__=~".+"})`) frees tens of MiB
//! of labels in chunks glibc keeps resident, and the next large query's peak stacks on
//! top: on the peerbench workload (with streaming selects) the query phase peaked at 301
//! MiB without the release and at 265 MiB with it (VictoriaMetrics: 287–315 MiB). [`release_after_query`] hands free pages back after such
//! queries, on a blocking thread, never on the response path.
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
use std::sync::OnceLock;

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

/// After a query that selected many series or held many samples, return the heap's free
/// pages to the kernel on a blocking thread (at most one such release runs at a time).
pub fn release_after_query(series_selected: u64, peak_samples: u64) {
    static RUNNING: AtomicBool = AtomicBool::new(false);
    if series_selected < RELEASE_SERIES && peak_samples < RELEASE_PEAK_SAMPLES {
        return;
    }
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let done = || RUNNING.store(false, Ordering::Release);
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            drop(h.spawn_blocking(move || {
                release();
                done();
            }));
        }
        Err(_) => {
            release();
            done();
        }
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
