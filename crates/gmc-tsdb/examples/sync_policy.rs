//! Compare WAL sync policies: appends/s and samples/s for 1, 4 and 16 concurrent appenders
//! each sending 100-series batches (the data directory is a temp dir on the same disk).
//! `cargo run --release -p gmc-tsdb --example sync_policy`
#![allow(clippy::print_stdout, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gmc_model::WriteBatch;
use gmc_tsdb::{Config, Db, SyncPolicy};

fn batch(thread: usize, k: i64) -> WriteBatch<'static> {
    let mut b = WriteBatch::new();
    for i in 0..100 {
        let mut s = b.series();
        s.label("__name__", "m");
        s.label("t", thread.to_string());
        s.label("i", i.to_string());
        s.float(1_763_000_000_000_000_000 + k * 1_000_000_000, k as f64);
        let _ = s.finish();
    }
    b
}

fn main() {
    let policies = [
        ("batch", SyncPolicy::Batch),
        (
            "group_commit(0ms)",
            SyncPolicy::GroupCommit {
                window: Duration::ZERO,
            },
        ),
        (
            "group_commit(1ms)",
            SyncPolicy::GroupCommit {
                window: Duration::from_millis(1),
            },
        ),
    ];
    for threads in [1usize, 4, 16] {
        for (name, sync) in policies {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = Arc::new(
                Db::open(
                    dir.path(),
                    Config {
                        sync,
                        ..Config::default()
                    },
                )
                .expect("open"),
            );
            let per_thread = 200i64;
            let start = Instant::now();
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    let db = Arc::clone(&db);
                    std::thread::spawn(move || {
                        for k in 0..per_thread {
                            db.append(&batch(t, k)).expect("append");
                        }
                    })
                })
                .collect();
            for h in hs {
                let _ = h.join();
            }
            let secs = start.elapsed().as_secs_f64();
            let appends = threads as f64 * per_thread as f64;
            println!(
                "threads={threads:<3} {name:<18} {:>9.0} appends/s {:>11.0} samples/s",
                appends / secs,
                appends * 100.0 / secs
            );
        }
    }
}
