//! Data parallelism: a select that decodes thousands of series splits them over the
//! machine's cores. Decoding is the bulk of a large query's CPU and series are
//! independent, so two cores halve its latency; small selects stay on the calling thread.
//! Public because the query engine splits its per-series work (range functions) the same
//! way, and the server decodes and stores the parts of a large write request with
//! [`each`].
//!
//! The parts run on one persistent pool (rayon's, one thread per core, named `gmc-par`),
//! not on threads spawned per call: a spawn and its exit cost 30–60 µs of kernel work
//! here, which was 10 % of a 200-series instant query's CPU (`finish_task_switch` in its
//! profile); waking a pool thread costs a few.
//!
//! Two things make a split run in parallel rather than one part after the other:
//! - **Items are claimed, not assigned.** The caller and every pool thread take the next
//!   unclaimed item until none is left, so a thread that starts late does less instead of
//!   making the others wait for its share.
//! - **Pool thread `i` is pinned to the `i`-th CPU the process may use.** Unpinned, the
//!   kernel often queued a woken pool thread on the caller's own CPU (the other one
//!   looked busy or was a halted vCPU), where it preempted the caller or waited behind
//!   it: in a 10 k-sample remote-write request, the two halves of the head commit ran
//!   one after the other in 68 of 76 requests, and decoding in 44 of 82. Pinned, one pool
//!   thread is always woken on a CPU the caller is not using.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Fewest items worth a thread of their own.
const MIN_ITEMS_PER_THREAD: usize = 64;

/// Fewest sample-visits worth a thread of their own (about 100 µs of work).
const MIN_WORK_PER_THREAD: usize = 200_000;

/// Most threads one select uses (more buys nothing once memory bandwidth is the limit).
const MAX_THREADS: usize = 8;

fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS)
    })
}

/// Most threads a split uses: the core count, capped.
pub fn max_threads() -> usize {
    threads()
}

/// The shared pool; `None` if the OS refused its threads (then calls run serially).
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads())
            .thread_name(|i| format!("gmc-par-{i}"))
            .start_handler(pin_pool_thread)
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no worker pool: parallel work runs serially"))
            .ok()
    })
    .as_ref()
}

/// `items.into_iter().map(f).collect()`, the items run on the calling thread and the
/// pool (each thread claims the next unclaimed item until none is left); results in
/// order. For a few large, independent jobs the caller has already sized, such as the
/// parts of one big write request. A panic in a job is resumed on the caller once every
/// other job has ended.
pub fn each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let Some(pool) = pool().filter(|_| items.len() > 1) else {
        return items.into_iter().map(f).collect();
    };
    // One job per pool thread (up to one per item), not one per item beyond the first:
    // rayon wakes its sleeping threads in index order, and the first may be pinned to the
    // caller's CPU; waking them all wakes one on another CPU. A job that finds nothing
    // left to claim ends at once.
    let helpers = threads().min(items.len());
    let jobs: Vec<Mutex<Option<T>>> = items.into_iter().map(|x| Mutex::new(Some(x))).collect();
    let results: Vec<Mutex<Option<R>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let claim = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let (Some(job), Some(slot)) = (jobs.get(i), results.get(i)) else {
            break;
        };
        // Each index is claimed once, so these locks are never contended; a poisoned
        // lock only means another job panicked, which the scope resumes below.
        let x = job.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(x) = x {
            let r = f(x);
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        }
    };
    let claim = &claim;
    pool.in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(move |_| claim());
        }
        claim();
    });
    // Every item was claimed and finished: the scope returns only after all its jobs
    // ended, and a panic in any of them propagates out of it.
    results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

/// `items.into_iter().map(f).collect()`, in order, split over up to one worker per core
/// (the calling thread is one of them).
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    if workers_for(n / MIN_ITEMS_PER_THREAD) == 1 {
        // One thread: a boundary after each item, so a long run of them can move off an
        // async worker (see `crate::inplace`).
        return crate::inplace::map(items, f);
    }
    let mut out = Vec::with_capacity(n);
    for part in map_parts(items, |p| p.into_iter().map(&f).collect::<Vec<R>>()) {
        out.extend(part);
    }
    out
}

/// Split `items` into contiguous parts (one part when small, else a few per core) and run
/// `f` on each part, on the calling thread and the pool; results in part order. For work that keeps
/// per-part state (buffers, annotations) across its items.
pub fn map_parts<T: Send, R: Send>(items: Vec<T>, f: impl Fn(Vec<T>) -> R + Sync) -> Vec<R> {
    let parts = items.len() / MIN_ITEMS_PER_THREAD;
    split_run(items, parts, f)
}

/// [`map_parts`] for items whose cost is known better than by their count: `work` is the
/// total in rough sample-visits (a thread is worth it from about 200,000). A few series
/// with long windows (e.g. `avg_over_time(x[5m])` at a 15 s step) then split too.
pub fn map_parts_by_work<T: Send, R: Send>(
    items: Vec<T>,
    work: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let parts = (work / MIN_WORK_PER_THREAD).min(items.len());
    split_run(items, parts, f)
}

/// Chunks per worker in a split: with a few chunks per core, a worker that starts late
/// or meets slower series claims fewer chunks and nobody waits for its share.
const CHUNKS_PER_WORKER: usize = 4;

/// Run `f` over contiguous chunks of `items`, a few per worker, with up to `parts`
/// workers (capped by the core count); results in chunk order.
fn split_run<T: Send, R: Send>(
    items: Vec<T>,
    parts: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    let workers = workers_for(parts);
    if workers == 1 {
        return vec![crate::inplace::around(|| f(items))];
    }
    let per = n.div_ceil(n.min(workers * CHUNKS_PER_WORKER));
    let mut it = items.into_iter();
    let mut chunks: Vec<Vec<T>> = Vec::new();
    loop {
        let c: Vec<T> = it.by_ref().take(per).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    // More parts than threads is more work than a thread's share on each: long enough to
    // move off an async worker at once rather than at the next boundary.
    if parts > workers {
        crate::inplace::move_off(|| each(chunks, f))
    } else {
        crate::inplace::around(|| each(chunks, f))
    }
}

/// Threads a split into `parts` parts uses: one per part, up to the core count.
fn workers_for(parts: usize) -> usize {
    threads().min(parts).max(1)
}

/// Pin the calling pool thread `index` to the `index`-th CPU this process may run on
/// (wrapping), so the pool's threads sit on distinct CPUs (see the module docs). A
/// failure leaves the thread unpinned: slower splits, same results.
fn pin_pool_thread(index: usize) {
    if let Err(e) = affinity::pin_to_nth_allowed(index) {
        tracing::debug!(error = %e, index, "pool thread not pinned");
    }
    if let Err(e) = affinity::batch_policy() {
        tracing::debug!(error = %e, index, "pool thread keeps the normal policy");
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod affinity {
    /// Pin the calling thread to the `n`-th CPU of its current affinity mask (wrapping).
    pub(super) fn pin_to_nth_allowed(n: usize) -> std::io::Result<()> {
        // SAFETY: cpu_set_t is plain bits, valid when zeroed; sched_getaffinity and
        // sched_setaffinity read or write at most `size_of::<cpu_set_t>()` bytes of it,
        // and pid 0 names the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_getaffinity(0, size, &mut set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect();
            if allowed.len() < 2 {
                return Ok(());
            }
            let cpu = allowed[n % allowed.len()];
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            if libc::sched_setaffinity(0, size, &one) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Put the calling thread under `SCHED_BATCH`: same share of the CPU, but waking it
    /// never preempts the running thread. The caller of a split wakes every pool thread
    /// and then works itself; under the normal policy the pool thread pinned to the
    /// caller's CPU preempted the caller at the first wake, before it had woken the
    /// thread on the other CPU, and ran the split's items alone.
    pub(super) fn batch_policy() -> std::io::Result<()> {
        // SAFETY: sched_param is plain data; pid 0 names the calling thread, and
        // SCHED_BATCH requires priority 0.
        let rc = unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param)
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub(super) fn pin_to_nth_allowed(_n: usize) -> std::io::Result<()> {
        Ok(())
    }

    pub(super) fn batch_policy() -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn each_runs_every_item_once_in_order() {
        let ran = AtomicUsize::new(0);
        let out = each((0..100u32).collect(), |x| {
            ran.fetch_add(1, Ordering::Relaxed);
            x * 2
        });
        assert_eq!(ran.load(Ordering::Relaxed), 100);
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(each(Vec::<u8>::new(), |x| x), Vec::<u8>::new());
        assert_eq!(each(vec![7], |x| x + 1), [8]);
    }

    #[test]
    fn a_slow_item_does_not_hold_the_others() {
        if threads() < 2 {
            return;
        }
        // The thread that claims item 0 waits there until every other item is done: the
        // other threads must claim them all, whichever thread that is.
        let done = AtomicUsize::new(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let out = each((0..9u32).collect(), |x| {
            if x == 0 {
                while done.load(Ordering::Acquire) < 8 && std::time::Instant::now() < deadline {
                    std::thread::yield_now();
                }
                return done.load(Ordering::Acquire);
            }
            done.fetch_add(1, Ordering::Release);
            0
        });
        assert_eq!(out[0], 8, "items 1..9 waited behind item 0");
    }

    #[test]
    fn the_caller_runs_everything_while_the_pool_is_busy() {
        let Some(pool) = pool() else {
            return;
        };
        // Occupy every pool thread until the items are done (or 60 s passed): jobs
        // assigned to the pool in advance would wait all that time; claimed items are
        // all run by the caller.
        let started = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for _ in 0..threads() {
            let (started, done) = (Arc::clone(&started), Arc::clone(&done));
            pool.spawn(move || {
                started.fetch_add(1, Ordering::AcqRel);
                while done.load(Ordering::Acquire) < 6 && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            });
        }
        while started.load(Ordering::Acquire) < threads() {
            std::thread::yield_now();
        }
        let here = std::thread::current().id();
        let out = each((0..6u32).collect(), |x| {
            done.fetch_add(1, Ordering::AcqRel);
            (x, std::thread::current().id())
        });
        assert_eq!(
            out.iter().map(|o| o.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        assert!(
            out.iter().all(|o| o.1 == here),
            "an item waited for the busy pool"
        );
    }

    #[test]
    fn a_panicking_job_panics_the_caller_after_the_others_ran() {
        let done = std::sync::atomic::AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            each((0..6).collect(), |x: u32| {
                assert!(x != 3, "job 3 fails");
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                x
            })
        }));
        assert!(r.is_err());
        assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 5);
    }

    #[test]
    fn nested_splits_finish() {
        // A part that splits again (a select inside a range function's part) must not
        // wait on a pool its own caller occupies.
        let out = each((0..4).collect(), |x: usize| {
            each((0..4).collect(), |y: usize| x * 10 + y)
                .into_iter()
                .sum::<usize>()
        });
        assert_eq!(out, [6, 46, 86, 126]);
    }

    #[test]
    fn work_decides_the_split() {
        let items: Vec<u32> = (0..80).collect();
        let small = map_parts_by_work(items.clone(), 1_000, |p| p);
        assert_eq!(small.len(), 1);
        let big = map_parts_by_work(items.clone(), 10_000_000, |p| p);
        assert_eq!(big.len(), (threads() * CHUNKS_PER_WORKER).min(80));
        assert_eq!(big.concat(), items);
    }

    #[test]
    fn parts_cover_the_input_in_order() {
        for n in [0usize, 5, 64, 128, 1000] {
            let parts = map_parts((0..n).collect::<Vec<_>>(), |p| p);
            assert!(parts.len() <= threads() * CHUNKS_PER_WORKER);
            assert_eq!(parts.concat(), (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn keeps_order_and_every_item() {
        for n in [0usize, 1, 63, 64, 129, 1000, 4097] {
            let v: Vec<usize> = (0..n).collect();
            let out = map(v, |x| x * 3);
            assert_eq!(out, (0..n).map(|x| x * 3).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
