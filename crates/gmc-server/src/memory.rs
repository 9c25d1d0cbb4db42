//! Heap hygiene for glibc's allocator, which gmc runs on (no allocator crate: mimalloc was
//! measured and held twice the memory after ingest, 392 against 204 MiB).
//!
//! Why it is needed, measured on the peerbench workload (30 k series, 18 M samples):
//! - glibc gives every thread that contends for the heap its own arena, up to 8 per core.
//!   Ingest runs on the runtime's workers, the blocking pool and decode threads, and each
//!   arena keeps the memory its threads freed: peak RSS after ingest was 191–207 MiB with
//!   the default, 179 MiB with 2 arenas and 161 MiB with 1, at the same ingest rate
//!   (each thread's cache of small blocks, glibc's `tcache`, takes no arena lock).
//!   [`limit_arenas`] allows one arena per 4 cores.
//! - A query over tens of thousands of series (`count({__name__=~".+"})`) frees tens of
//!   MiB of labels in chunks glibc does not return to the kernel, and the next large
//!   query's peak stacks on top. [`release_after_query`] hands free pages back after such
//!   queries, on a blocking thread, never on the response path.
//!
//! Elsewhere (non-glibc targets) both are no-ops.

use std::sync::atomic::{AtomicBool, Ordering};

/// Series selected above which a finished query triggers a release of free memory.
const RELEASE_SERIES: u64 = 5_000;
/// Peak samples above which a finished query triggers a release of free memory.
const RELEASE_PEAK_SAMPLES: u64 = 1_000_000;

/// Limit glibc to one heap arena per 4 cores (at least one). Call first thing in `main`,
/// before any thread starts, so no arena beyond the limit exists.
pub fn limit_arenas() {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    sys::set_arena_max(cores.div_ceil(4).max(1));
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
                sys::trim();
                done();
            }));
        }
        Err(_) => {
            sys::trim();
            done();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod sys {
    /// `mallopt(M_ARENA_MAX, n)`.
    pub(super) fn set_arena_max(n: usize) {
        let n = libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only adjusts allocator parameters; M_ARENA_MAX with a positive
        // value is a documented, thread-safe setting.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, n);
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
    pub(super) fn set_arena_max(_: usize) {}
    pub(super) fn trim() {}
}
