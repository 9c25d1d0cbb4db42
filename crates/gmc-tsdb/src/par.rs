//! Data parallelism: a select that decodes thousands of series splits them over the
//! machine's cores with scoped threads. Decoding is the bulk of a large query's CPU and
//! series are independent, so two cores halve its latency; small selects stay on the
//! calling thread because a spawn costs tens of microseconds. Public because the query
//! engine splits its per-series work (range functions) the same way, and the server
//! decodes and stores the parts of a large write request with [`each`].

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

/// `items.into_iter().map(f).collect()` with every item on its own scoped thread (the
/// calling thread takes the first): for a few large, independent jobs the caller has
/// already sized, such as the parts of one big write request. A panic in a worker is
/// resumed on the caller.
pub fn each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
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

/// `items.into_iter().map(f).collect()`, in order, split over up to one scoped thread
/// per core (the calling thread takes the first part).
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let mut out = Vec::with_capacity(n);
    for part in map_parts(items, |p| p.into_iter().map(&f).collect::<Vec<R>>()) {
        out.extend(part);
    }
    out
}

/// Split `items` into contiguous parts, one per thread (one part when small), and run `f`
/// on each part on its own scoped thread; results in part order. For work that keeps
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
    fn each_runs_every_item_on_its_own_thread_in_order() {
        let ids = each(vec![10, 20, 30], |x| (x, std::thread::current().id()));
        assert_eq!(ids.iter().map(|p| p.0).collect::<Vec<_>>(), [10, 20, 30]);
        assert_eq!(ids[0].1, std::thread::current().id());
        assert_ne!(ids[1].1, ids[0].1);
        assert_ne!(ids[2].1, ids[1].1);
        assert_eq!(each(Vec::<u8>::new(), |x| x), Vec::<u8>::new());
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
