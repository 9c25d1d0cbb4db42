//! gmc's allocator: jemalloc, with one arena, purged when much memory was just freed.
//!
//! Measured on the peerbench backfill (`benches/runs/2026-12-06-1500-allocator.md`):
//!
//! - glibc with an arena per thread held the head in fragmented arenas: 100 MB in use in
//!   188 MB taken from the system after ingest (13 arenas). A store thread that frees
//!   what another allocated (a recompressed head chunk's old bytes, a request's
//!   buffers) leaves holes only that thread's arena can refill.
//! - glibc limited to one arena packed it (peak 127 MiB), but two query threads then
//!   contend for that arena's lock: the query set ran 20–40 % slower.
//! - jemalloc with one arena keeps most of both: its per-thread caches absorb the
//!   queries' small allocations (the heavier queries ran 10–45 % *faster* than on glibc), and
//!   one arena lets any thread reuse what another freed. Its peak is 10–20 MiB above one
//!   glibc arena's (size-class rounding, slabs that recompression leaves part-used),
//!   132–160 MiB. Its freed pages stay resident until they decay, so [`jemalloc::purge`] returns
//!   them where the store frees much (around head flushes, once a burst of large
//!   queries pauses), as `malloc_trim` did on glibc.
//!
//! Off Linux/glibc-compatible targets the system allocator stays.

#[cfg(all(target_os = "linux", not(target_env = "musl")))]
mod jemalloc {
    /// The allocator.
    #[global_allocator]
    static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// jemalloc's options, read at its first allocation (before `main`): one arena (see
    /// the module docs) and a background thread that returns decayed pages, so no request
    /// thread pays for it.
    #[allow(unsafe_code, non_upper_case_globals)]
    #[export_name = "_rjem_malloc_conf"]
    static malloc_conf: &[u8; 33] = b"narenas:1,background_thread:true\0";

    /// Return every arena's free pages to the kernel now.
    pub(super) fn purge() {
        // MALLCTL_ARENAS_ALL: the pseudo-index naming every arena.
        const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
        // SAFETY: `arena.<i>.purge` takes and returns nothing (null old/new pointers, zero
        // length) and is safe to call from any thread at any time.
        #[allow(unsafe_code)]
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                PURGE_ALL.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            tracing::debug!(rc, "jemalloc purge failed");
        }
    }
}

/// Set the allocator up for a long-running server; call first thing in `main`.
pub(crate) fn init() {
    #[cfg(all(target_os = "linux", not(target_env = "musl")))]
    gmc_server::memory::set_release(jemalloc::purge);
    #[cfg(not(all(target_os = "linux", not(target_env = "musl"))))]
    gmc_server::memory::tune_allocator();
}
