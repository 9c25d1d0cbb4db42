//! Reads that start in place on the calling thread and move off it once they prove long.
//!
//! The server evaluates a query on the async worker thread that parsed its request. Most
//! queries (a dashboard's point lookups and single-series panels) finish in 20–200 µs
//! there. Handing the worker's other tasks to another thread first (tokio's
//! `block_in_place`) wakes a thread and cost 50–150 µs per query on this project's
//! 2-vCPU host, more than the query itself (`benches/runs/2026-12-07-1000-queries-in-place.md`).
//! A long query, though, must not hold the worker: the connections it serves (remote-write
//! senders among them) would wait behind it.
//!
//! So the server runs each read inside [`run`] with a time budget and a *mover*, and the
//! read's loops call [`around`] or [`map`] at natural boundaries (each expression node,
//! each decoded series, each split over the cores). Once the budget is spent, the next
//! boundary runs the rest of its work through the mover, which hands the worker's
//! other tasks to another thread before running it. Work the store knows is large before
//! it starts (a split over the cores of many parts) moves at once ([`move_off`]).
//!
//! The store does not depend on the async runtime: the mover is a plain function the
//! server supplies. Outside [`run`] (pool threads, tests, the ingest path) every call
//! here runs its work directly.
//!
//! How long can a read hold the worker? The budget plus the longest single unit between
//! two boundaries that started before the budget ran out: one series' decode, one
//! node's own arithmetic, or the index lookup of one selector; typically microseconds,
//! milliseconds for one series holding weeks of raw samples or a regex over many label
//! values. Label name and value listings have no boundary inside their walk over the
//! index, so they move at once ([`move_off`] in the querier).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Runs the work it is given after moving the caller's other duties elsewhere (the
/// server: `tokio::task::block_in_place`). Must call the work exactly once.
pub type Mover = fn(&mut dyn FnMut());

#[derive(Clone, Copy)]
struct Lease {
    /// The next boundary at or after this instant moves the rest of its work.
    due: Instant,
    /// Time between two attempts to move (a move of short work may not take).
    budget: Duration,
    mover: Mover,
}

thread_local! {
    static LEASE: Cell<Option<Lease>> = const { Cell::new(None) };
}

/// Run `f` on this thread; boundaries inside it move the rest of their work with `mover`
/// once `budget` has passed. Nested calls keep the outer lease.
pub fn run<R>(budget: Duration, mover: Mover, f: impl FnOnce() -> R) -> R {
    if LEASE.get().is_some() {
        return f();
    }
    /// Ends the lease when `f` returns or unwinds.
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            LEASE.set(None);
        }
    }
    LEASE.set(Some(Lease {
        due: Instant::now() + budget,
        budget,
        mover,
    }));
    let _end = End;
    f()
}

/// True when the calling thread holds a lease whose budget is spent: the caller should
/// pass the rest of its work to [`around`].
#[inline]
pub fn due() -> bool {
    LEASE.get().is_some_and(|l| Instant::now() >= l.due)
}

/// Run `f`: directly while the budget lasts (or outside [`run`]), else through the mover.
#[inline]
pub fn around<R>(f: impl FnOnce() -> R) -> R {
    if due() {
        move_off(f)
    } else {
        f()
    }
}

/// `items.into_iter().map(f).collect()` with a boundary after each item: once the budget
/// is spent, the remaining items run through the mover.
pub fn map<T, R>(items: Vec<T>, mut f: impl FnMut(T) -> R) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    let mut rest = items.into_iter();
    while let Some(x) = rest.next() {
        out.push(f(x));
        if rest.len() > 0 && due() {
            move_off(|| out.extend(rest.by_ref().map(&mut f)));
        }
    }
    out
}

/// Run `f` through the lease's mover (directly without a lease): for work known to be
/// long, and for [`around`] and [`map`] once the budget is spent. The next attempt is
/// allowed a budget later: a move whose work was short may not have taken (the worker
/// stays with this thread), and later boundaries then try again, at most once per budget.
pub fn move_off<R>(f: impl FnOnce() -> R) -> R {
    let Some(lease) = LEASE.get() else {
        return f();
    };
    let started = Instant::now();
    LEASE.set(Some(Lease {
        due: started + lease.budget,
        ..lease
    }));
    let mut f = Some(f);
    let mut out = None;
    (lease.mover)(&mut || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    });
    match (out, f) {
        (Some(r), _) => r,
        // A mover that did not call the work: run it here rather than lose it.
        (None, Some(f)) => f(),
        // The work ran and unwound through the mover, which swallowed the panic: nothing
        // to return, so the panic continues here.
        (None, None) => panic!("work passed to the in-place mover did not complete"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static MOVES: Cell<usize> = const { Cell::new(0) };
    }

    fn counting(f: &mut dyn FnMut()) {
        MOVES.set(MOVES.get() + 1);
        f();
    }

    fn moves() -> usize {
        MOVES.replace(0)
    }

    #[test]
    fn without_a_lease_everything_runs_directly() {
        moves();
        assert!(!due());
        assert_eq!(around(|| 1), 1);
        assert_eq!(move_off(|| 2), 2);
        assert_eq!(map(vec![1, 2, 3], |x| x * 2), vec![2, 4, 6]);
        assert_eq!(moves(), 0);
    }

    #[test]
    fn within_the_budget_work_stays_in_place() {
        moves();
        let r = run(Duration::from_secs(3600), counting, || {
            around(|| map((0..100).collect(), |x: i32| x + 1).len())
        });
        assert_eq!(r, 100);
        assert_eq!(moves(), 0);
    }

    #[test]
    fn a_spent_budget_moves_the_next_boundary_once_per_budget() {
        moves();
        run(Duration::ZERO, counting, || {
            assert!(due());
            around(|| ());
        });
        assert_eq!(moves(), 1);
        run(Duration::from_secs(3600), counting, || {
            assert!(!due());
            move_off(|| ());
            // The attempt re-arms the budget: no second move an hour early.
            around(|| ());
            assert!(!due());
        });
        assert_eq!(moves(), 1);
    }

    #[test]
    fn map_moves_the_remaining_items_in_order() {
        moves();
        let seen = RefCell::new(Vec::new());
        let out = run(Duration::from_millis(2), counting, || {
            map((0..6).collect(), |x: u32| {
                if x == 2 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                seen.borrow_mut().push(x);
                x * 10
            })
        });
        assert_eq!(out, vec![0, 10, 20, 30, 40, 50]);
        assert_eq!(*seen.borrow(), vec![0, 1, 2, 3, 4, 5]);
        // Items 3..6 ran inside one move.
        assert_eq!(moves(), 1);
    }

    #[test]
    fn the_lease_ends_with_run_even_when_it_unwinds() {
        fn boom() {
            panic!("boom")
        }
        let r = std::panic::catch_unwind(|| run(Duration::ZERO, counting, boom));
        assert!(r.is_err());
        assert!(LEASE.get().is_none());
        run(Duration::ZERO, counting, || ());
        assert!(LEASE.get().is_none());
        moves();
    }

    #[test]
    fn a_mover_that_drops_the_work_does_not_lose_it() {
        fn dropping(_: &mut dyn FnMut()) {}
        assert_eq!(run(Duration::ZERO, dropping, || around(|| 7)), 7);
    }

    #[test]
    fn nested_runs_keep_the_outer_lease() {
        moves();
        run(Duration::ZERO, counting, || {
            run(Duration::from_secs(3600), counting, || assert!(due()));
            around(|| ());
        });
        assert_eq!(moves(), 1);
    }
}
