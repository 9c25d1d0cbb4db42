//! Raw append throughput per batch shape on one core, robust to a noisy shared machine:
//! each shape appends `ROUNDS` batches (each built just before it is appended, outside the
//! measurement) and reports samples per second of the appending thread's CPU time (from
//! `/proc/thread-self/schedstat`, so time the scheduler gives other processes does not
//! count), plus the best single batch by wall time. Through `Db::append` without fsync
//! (everything runs on the calling thread) and through the head alone.
//! `cargo run --release -p gmc-tsdb --example append_speed [ROUNDS]`
#![allow(clippy::print_stdout, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use gmc_model::WriteBatch;
use gmc_tsdb::{Config, Db, SyncPolicy};

const T0: i64 = 1_763_000_000_000_000_000;

fn make_batch(names: &[(String, String)], per_series: i64, k: i64) -> WriteBatch<'_> {
    let mut b = WriteBatch::new();
    b.reserve(names.len(), names.len() * per_series as usize);
    for (i, (pair, inst)) in names.iter().enumerate() {
        let mut s = b.series();
        s.label("__name__", "hft_orders_total");
        s.label("instance", inst.as_str());
        s.label("pair", pair.as_str());
        s.label("service", "oms-1");
        for j in 0..per_series {
            let n = k * per_series + j;
            s.float(T0 + n * 1_000_000_000, (n * 17 + i as i64) as f64);
        }
        let _ = s.finish();
    }
    b
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn report(what: &str, samples: usize, mut times: Vec<Duration>, cpu_nanos: u64) {
    times.sort();
    let best = times[0].as_secs_f64();
    let total = samples as f64 * times.len() as f64;
    println!(
        "{what:<22} {:>6.2} M samples/s per CPU-second   (best batch {:>6.2} M/s wall)",
        total / (cpu_nanos as f64 / 1e9) / 1e6,
        samples as f64 / best / 1e6
    );
}

fn main() {
    let rounds: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    for (name, series, per) in [
        ("10k_x1", 10_000usize, 1i64),
        ("10k_x10", 10_000, 10),
        ("1k_x100", 1_000, 100),
    ] {
        let names: Vec<(String, String)> = (0..series)
            .map(|i| (format!("PAIR{i:05}"), format!("host-{}:9100", i % 16)))
            .collect();
        let n = series * per as usize;
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let cfg = Config {
                sync: SyncPolicy::None,
                maintenance_interval: Duration::from_secs(3600),
                ..Config::default()
            };
            let db = Db::open(dir.path(), cfg).expect("open");
            // The first batch creates the series; it is not measured.
            db.append(&make_batch(&names, per, 0)).expect("append");
            let mut times = Vec::new();
            let mut cpu = 0;
            for k in 1..=rounds {
                let b = make_batch(&names, per, k);
                let c = thread_cpu_nanos();
                let t = Instant::now();
                let r = db.append(&b).expect("append");
                times.push(t.elapsed());
                cpu += thread_cpu_nanos() - c;
                assert_eq!(r.accepted_floats, n);
            }
            report(&format!("{name} db no_fsync"), n, times, cpu);
        }
        let mut head = gmc_tsdb::bench_support::HeadOnly::new();
        head.append(&make_batch(&names, per, 0));
        let mut times = Vec::new();
        let mut cpu = 0;
        for k in 1..=rounds {
            let b = make_batch(&names, per, k);
            let c = thread_cpu_nanos();
            let t = Instant::now();
            let accepted = head.append(&b);
            times.push(t.elapsed());
            cpu += thread_cpu_nanos() - c;
            assert_eq!(accepted, n);
        }
        report(&format!("{name} head only"), n, times, cpu);
    }
}
