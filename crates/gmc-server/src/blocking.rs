//! Running blocking work (queries, index lookups) from a request handler.
//!
//! On the multi-threaded runtime the work starts in place on the handler's own worker
//! thread, hot in the cache of the thread that parsed the request, and stays there while
//! it is short. `spawn_blocking` instead queued it for a pool thread and woke that thread,
//! and the handler then waited for a second wake-up to answer: on this project's 2-vCPU
//! host that round trip cost ~0.1–0.2 ms per query, more than evaluating a point lookup
//! (about 50 µs) (`benches/runs/2026-11-30-1800-query-overhead.md`). Handing the
//! worker's other tasks to another thread before the work (`block_in_place`) still woke
//! a thread per query: 0.05–0.15 ms more than running in place
//! (`benches/runs/2026-12-07-1000-queries-in-place.md`).
//!
//! So the work runs under a [`gmc_tsdb::inplace`] lease: after [`IN_PLACE_BUDGET`] the
//! store's and the evaluator's next boundary moves the rest of it off the worker with
//! `block_in_place`, and the worker's other connections go on on another thread.
//!
//! The current-thread runtime (tests) cannot block in place, so there the work still goes
//! to the blocking pool. Either way a panic in the work becomes an error, not a dropped
//! connection.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Why blocking work did not return a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlockingError {
    /// The work panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The blocking pool dropped the task (runtime shutting down).
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
}

/// How long blocking work may hold its async worker before it moves off: about what
/// moving costs, so a query that moves has spent at most twice the least it could.
pub(crate) const IN_PLACE_BUDGET: Duration = Duration::from_micros(200);

/// The lease's mover: hand this worker's other tasks to another thread, then run `work`.
fn move_off_worker(work: &mut dyn FnMut()) {
    tokio::task::block_in_place(work);
}

/// Run `f`, which may block for a while, without stalling other tasks.
pub(crate) async fn run<T, F>(f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let in_place =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if in_place {
        catch_unwind(AssertUnwindSafe(|| {
            gmc_tsdb::inplace::run(IN_PLACE_BUDGET, move_off_worker, f)
        }))
        .map_err(|p| BlockingError::Panicked(panic_message(p.as_ref())))
    } else {
        Ok(tokio::task::spawn_blocking(f).await?)
    }
}

/// The message of a panic payload, when it has one.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_in_place_on_the_multi_threaded_runtime() {
        let caller = std::thread::current().id();
        let ran_on = run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(ran_on, caller);
    }

    /// The handler runs on the only worker; a ticker task needs that worker too. Work
    /// longer than the budget must hand the worker over, or the ticker stalls until the
    /// work ends (here: until its 5 s cap).
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn long_work_moves_off_the_worker_and_short_work_stays() {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        use std::sync::Arc;
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                t.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Arc::clone(&ticks);
        let handler = tokio::spawn(async move {
            let worker = std::thread::current().id();
            run(move || {
                let short_on = std::thread::current().id();
                let before = t.load(Relaxed);
                // Up to 5 s of 1 ms items, stopping early once the ticker has ticked.
                gmc_tsdb::inplace::map((0..5000).collect(), |_: u32| {
                    if t.load(Relaxed) < before + 3 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
                (worker == short_on, t.load(Relaxed) - before)
            })
            .await
            .unwrap()
        });
        let (started_in_place, ticked) = handler.await.unwrap();
        ticker.abort();
        assert!(started_in_place);
        assert!(
            ticked >= 3,
            "the ticker ran {ticked} times during 5 s of work"
        );
    }

    #[tokio::test]
    async fn uses_the_pool_on_the_current_thread_runtime() {
        let caller = std::thread::current().id();
        let ran_on = run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(ran_on, caller);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_an_error() {
        let err = run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }
}
