//! Running blocking work (queries, index lookups) from a request handler.
//!
//! On the multi-threaded runtime the work runs in place on the handler's own worker
//! thread (`block_in_place`): tokio hands that worker's other tasks to another thread and
//! the query starts at once, hot in the cache of the thread that parsed the request.
//! `spawn_blocking` instead queued it for a pool thread and woke that thread, and the
//! handler then waited for a second wake-up to answer: on this project's 2-vCPU host that
//! round trip cost ~0.1–0.2 ms per query, more than evaluating a point lookup (about
//! 50 µs), so small queries spent most of their server time switching threads (measured
//! in `benches/runs/2026-11-30-1800-query-overhead.md`).
//!
//! The current-thread runtime (tests) cannot block in place, so there the work still goes
//! to the blocking pool. Either way a panic in the work becomes an error, not a dropped
//! connection.

use std::panic::{catch_unwind, AssertUnwindSafe};

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

/// Run `f`, which may block for a while, without stalling other tasks.
pub(crate) async fn run<T, F>(f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let in_place =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if in_place {
        tokio::task::block_in_place(|| catch_unwind(AssertUnwindSafe(f)))
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
