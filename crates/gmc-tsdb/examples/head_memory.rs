//! Peak RSS per active series on the peerbench-like trading workload: one sample per
//! series per simulated second, through `Db::append` (no fsync), for twice the head flush
//! range, with the background maintenance (flush, head recompression) running every
//! 50 ms of real time (≈ 1 simulated minute at the ingest speed of this run).
//! `cargo run --release -p gmc-tsdb --example head_memory [HEAD_FLUSH_RANGE_S] [SERVICES] [CHUNK_SAMPLES]`
#![allow(clippy::print_stdout, clippy::expect_used, missing_docs)]

#[path = "../benches/peerlike.rs"]
mod peerlike;

use std::time::Duration;

use gmc_model::WriteBatch;
use gmc_tsdb::{Config, Db, SyncPolicy};

/// `VmRSS` and `VmHWM` of this process, bytes.
fn rss() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let range_s: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7200);
    let services: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2);
    let chunk_samples: usize = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(Config::default().chunk_samples);
    // 20 simulated minutes of data, replayed cyclically (shifted in time) to bound the
    // generator's own memory.
    const CYCLE: u64 = 1200;
    let data = peerlike::generate(services, CYCLE, -1);
    let n = data.len();
    let names: Vec<String> = (0..n).map(|i| format!("s{i:06}")).collect();
    let (base_rss, _) = rss();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config {
        sync: SyncPolicy::None,
        head_flush_range: Duration::from_secs(range_s),
        maintenance_interval: Duration::from_millis(50),
        chunk_samples,
        ..Config::default()
    };
    let db = Db::open(dir.path(), cfg).expect("open");
    let ticks = 2 * range_s;
    let mut peak_head_series = 0;
    let mut before_flush = 0;
    for t in 0..ticks {
        let cycle = (t / CYCLE) as i64;
        let i = (t % CYCLE) as usize;
        let shift = cycle * CYCLE as i64 * 1_000_000_000;
        let mut b = WriteBatch::new();
        b.reserve(n, n);
        for (k, s) in data.iter().enumerate() {
            let (ts, v) = s.samples[i];
            let mut w = b.series();
            w.label("__name__", "peer");
            w.label("id", names[k].as_str());
            w.float(ts + shift, v);
            let _ = w.finish();
        }
        db.append(&b).expect("append");
        if t == range_s * 3 / 2 - 60 {
            // Just before the first flush: the head at its largest.
            std::thread::sleep(Duration::from_millis(120));
            before_flush = rss().0;
        }
        peak_head_series = peak_head_series.max(db.metrics().head_series());
    }
    // Let a last maintenance round run.
    std::thread::sleep(Duration::from_millis(200));
    let (now_rss, hwm) = rss();
    let per = |b: u64| (b.saturating_sub(base_rss)) as f64 / n as f64;
    println!(
        "{n} series, head_flush_range {range_s} s, chunk_samples {chunk_samples}, {ticks} s ingested: peak RSS {:.1} MiB \
         ({:.0} B/series above the {:.1} MiB before open; {:.0} B/series total), \
         RSS before the first flush {:.0} B/series above base, at end {:.0}",
        hwm as f64 / 1048576.0,
        per(hwm),
        base_rss as f64 / 1048576.0,
        hwm as f64 / n as f64,
        per(before_flush),
        per(now_rss)
    );
    drop(db);
}
