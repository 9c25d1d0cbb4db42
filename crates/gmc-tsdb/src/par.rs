//! Data parallelism for reads: a select that decodes thousands of series splits them over
//! the machine's cores with scoped threads. Decoding is the bulk of a large query's CPU
//! and series are independent, so two cores halve its latency; small selects stay on the
//! calling thread because a spawn costs tens of microseconds.

use std::sync::OnceLock;

/// Fewest items worth a thread of their own.
const MIN_ITEMS_PER_THREAD: usize = 64;

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

/// `items.into_iter().map(f).collect()`, in order, split over up to [`threads`] scoped
/// threads (the calling thread takes the first part).
pub(crate) fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let parts = threads().min(n / MIN_ITEMS_PER_THREAD).max(1);
    if parts == 1 {
        return items.into_iter().map(f).collect();
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
    let f = &f;
    std::thread::scope(|scope| {
        let mut rest = split.split_off(1);
        let handles: Vec<_> = rest
            .drain(..)
            .map(|p| scope.spawn(move || p.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = Vec::with_capacity(n);
        out.extend(split.pop().into_iter().flatten().map(f));
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                // A panic in a worker is a bug in a decoder; surface it on the caller.
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_every_item() {
        for n in [0usize, 1, 63, 64, 129, 1000, 4097] {
            let v: Vec<usize> = (0..n).collect();
            let out = map(v, |x| x * 3);
            assert_eq!(out, (0..n).map(|x| x * 3).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
