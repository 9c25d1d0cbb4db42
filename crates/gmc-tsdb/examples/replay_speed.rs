//! WAL replay speed: write a WAL of about `MB` megabytes (10,000 series, one sample each per
//! append, no fsync), then time `Db::open`, which replays it, `RUNS` times (default 3;
//! the best run is reported, the machine being shared).
//! `cargo run --release -p gmc-tsdb --example replay_speed [MB] [RUNS]`
#![allow(clippy::print_stdout, clippy::expect_used, missing_docs)]

use std::time::Instant;

use gmc_model::WriteBatch;
use gmc_tsdb::{Config, Db, SyncPolicy};

fn main() {
    let mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("tempdir");
    // The head keeps everything written (2.5 h of 1 s samples): a flush during the write
    // would cut the WAL short and make the figure depend on when maintenance ran.
    let cfg = Config {
        sync: SyncPolicy::None,
        head_flush_range: std::time::Duration::from_secs(4 * 3600),
        maintenance_interval: std::time::Duration::from_secs(3600),
        ..Config::default()
    };
    let names: Vec<String> = (0..10_000).map(|i| format!("PAIR{i:05}")).collect();
    let wal_bytes = |d: &std::path::Path| -> u64 {
        std::fs::read_dir(d.join("wal"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    let mut samples = 0u64;
    {
        let db = Db::open(dir.path(), cfg.clone()).expect("open");
        let mut k = 0i64;
        while wal_bytes(dir.path()) < mb << 20 {
            for _ in 0..50 {
                k += 1;
                let mut b = WriteBatch::new();
                for (i, n) in names.iter().enumerate() {
                    let mut s = b.series();
                    s.label("__name__", "hft_orders_total");
                    s.label("pair", n.as_str());
                    s.float(
                        1_763_000_000_000_000_000 + k * 1_000_000_000,
                        (k * 7 + i as i64) as f64,
                    );
                    let _ = s.finish();
                }
                samples += db.append(&b).expect("append").accepted_floats as u64;
            }
        }
        db.close().expect("close");
    }
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let bytes = wal_bytes(dir.path());
    let mut secs = f64::MAX;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let db = Db::open(dir.path(), cfg.clone()).expect("reopen");
        secs = secs.min(t.elapsed().as_secs_f64());
        assert_eq!(db.metrics().replay_corruptions(), 0);
        // Dropped without close: nothing new is written to the WAL.
        drop(db);
    }
    println!(
        "WAL {:.1} MiB, {samples} samples, 10k series: replay {secs:.2} s = {:.0} MiB/s, {:.1} M samples/s; 1 GiB would take ~{:.1} s",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / (1 << 20) as f64 / secs,
        samples as f64 / secs / 1e6,
        1024.0 / (bytes as f64 / (1 << 20) as f64 / secs)
    );
}
