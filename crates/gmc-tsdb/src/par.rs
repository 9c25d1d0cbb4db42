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
//! profile); waking a pool thread costs a few. Jobs that wait on I/O (the parts of a
//! write request waiting for their WAL commit) use [`each_blocking`], scoped threads of
//! their own, so they never hold the pool.

use std::sync::OnceLock;

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
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no worker pool: parallel work runs serially"))
            .ok()
    })
    .as_ref()
}

/// `items.into_iter().map(f).collect()` with every item but the first on the pool (the
/// calling thread takes the first): for a few large, independent jobs the caller has
/// already sized, such as the parts of one big write request. A panic in a job is
/// resumed on the caller once every job has ended.
pub fn each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let Some(pool) = pool().filter(|_| items.len() > 1) else {
        return items.into_iter().map(f).collect();
    };
    let f = &f;
    let mut slots: Vec<Option<R>> = items.iter().map(|_| None).collect();
    let mut it = items.into_iter();
    let first = it.next();
    if let Some((first_slot, rest)) = slots.split_first_mut() {
        pool.in_place_scope(|scope| {
            for (x, slot) in it.zip(rest.iter_mut()) {
                scope.spawn(move |_| *slot = Some(f(x)));
            }
            *first_slot = first.map(f);
        });
    }
    // Every slot is filled: the scope returns only after all jobs ended, and a panic in
    // any of them propagates out of it.
    slots.into_iter().flatten().collect()
}

/// [`each`] for jobs that wait on I/O (an append waiting for its WAL group commit):
/// every item but the first on its own scoped thread, so a job that sleeps never holds
/// a pool thread that queries' parts are queued behind.
pub fn each_blocking<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let mut it = items.into_iter();
        let first = it.next();
        let handles: Vec<_> = it.map(|x| scope.spawn(move || f(x))).collect();
        let mut out: Vec<R> = Vec::with_capacity(handles.len() + 1);
        out.extend(first.map(f));
        for h in handles {
            match h.join() {
                Ok(r) => out.push(r),
                // A panic in a worker is a bug; surface it on the caller.
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

/// `items.into_iter().map(f).collect()`, in order, split over up to one part per core
/// (the calling thread takes the first part).
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let mut out = Vec::with_capacity(n);
    for part in map_parts(items, |p| p.into_iter().map(&f).collect::<Vec<R>>()) {
        out.extend(part);
    }
    out
}

/// Split `items` into contiguous parts, one per core (one part when small), and run `f`
/// on each part, on the pool but the first; results in part order. For work that keeps
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

/// Run `f` over up to `parts` contiguous parts of `items` (capped by the core count).
fn split_run<T: Send, R: Send>(
    items: Vec<T>,
    parts: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    let parts = threads().min(parts).max(1);
    if parts == 1 {
        return vec![f(items)];
    }
    let per = n.div_ceil(parts);
    let mut it = items.into_iter();
    let mut split: Vec<Vec<T>> = Vec::with_capacity(parts);
    loop {
        let p: Vec<T> = it.by_ref().take(per).collect();
        if p.is_empty() {
            break;
        }
        split.push(p);
    }
    each(split, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runs_the_first_item_here_and_the_rest_on_the_pool_in_order() {
        let here = std::thread::current().id();
        let ids = each(vec![10, 20, 30], |x| {
            (
                x,
                std::thread::current().id(),
                std::thread::current().name().map(str::to_owned),
            )
        });
        assert_eq!(ids.iter().map(|p| p.0).collect::<Vec<_>>(), [10, 20, 30]);
        assert_eq!(ids[0].1, here);
        for (_, id, name) in &ids[1..] {
            assert_ne!(*id, here);
            assert!(
                name.as_deref().is_some_and(|n| n.starts_with("gmc-par-")),
                "{name:?}"
            );
        }
        assert_eq!(each(Vec::<u8>::new(), |x| x), Vec::<u8>::new());
        assert_eq!(each(vec![7], |x| x + 1), [8]);
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
    fn each_blocking_runs_every_item_in_order_off_the_pool() {
        let here = std::thread::current().id();
        let out = each_blocking(vec![1, 2, 3], |x| {
            let t = std::thread::current();
            (
                x,
                t.id(),
                t.name().is_some_and(|n| n.starts_with("gmc-par-")),
            )
        });
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(out[0].1, here);
        assert!(out[1..].iter().all(|o| o.1 != here && !o.2));
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
        assert_eq!(big.len(), threads().min(80));
        assert_eq!(big.concat(), items);
    }

    #[test]
    fn parts_cover_the_input_in_order() {
        for n in [0usize, 5, 64, 128, 1000] {
            let parts = map_parts((0..n).collect::<Vec<_>>(), |p| p);
            assert!(parts.len() <= threads().max(1));
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
