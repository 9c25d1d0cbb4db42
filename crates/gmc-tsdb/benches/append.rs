//! Raw `Db::append` throughput (no HTTP) in samples/s, for realistic batch shapes:
//! 10k series × 1 sample (a scrape or remote-write of a large target set), 10k × 10 and
//! 1k × 100 (senders that queued up). Each shape runs through the whole store without
//! fsync (WAL encode + write + head: the CPU cost) and head only (no WAL); 10k × 1 also
//! with the default group commit and with fsync per batch (the disk's cost on top).
//! Batches are built outside the timed section, as a decoder would hand them over.
#![allow(missing_docs, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gmc_model::WriteBatch;
use gmc_tsdb::{Config, Db, SyncPolicy};

const T0: i64 = 1_763_000_000_000_000_000;

struct Shape {
    name: &'static str,
    series: usize,
    per_series: i64,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "10k_x1",
        series: 10_000,
        per_series: 1,
    },
    Shape {
        name: "10k_x10",
        series: 10_000,
        per_series: 10,
    },
    Shape {
        name: "1k_x100",
        series: 1_000,
        per_series: 100,
    },
];

/// Label values of `n` series: trading pairs on 16 hosts.
fn names(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("PAIR{i:05}"), format!("host-{}:9100", i % 16)))
        .collect()
}

/// Batch `k` of a shape: every series gets `per_series` samples 1 s apart after those of
/// batch `k - 1`.
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

fn db(sync: SyncPolicy) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config {
        sync,
        // Keep the background flush out of the measurement.
        maintenance_interval: Duration::from_secs(3600),
        ..Config::default()
    };
    let db = Db::open(dir.path(), cfg).expect("open");
    (dir, db)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    for shape in &SHAPES {
        let names = names(shape.series);
        g.throughput(Throughput::Elements(
            shape.series as u64 * shape.per_series as u64,
        ));
        let mut runs: Vec<(&str, SyncPolicy)> = vec![("no_fsync", SyncPolicy::None)];
        if shape.per_series == 1 {
            runs.push((
                "group_commit",
                SyncPolicy::GroupCommit {
                    window: Duration::ZERO,
                },
            ));
            runs.push(("batch_fsync", SyncPolicy::Batch));
        }
        for (label, sync) in runs {
            let (_dir, db) = db(sync);
            let mut k = 0i64;
            g.bench_function(format!("{}/{label}", shape.name), |b| {
                b.iter_batched(
                    || {
                        k += 1;
                        make_batch(&names, shape.per_series, k)
                    },
                    |batch| db.append(&batch).expect("append"),
                    BatchSize::LargeInput,
                )
            });
        }
        let mut head = gmc_tsdb::bench_support::HeadOnly::new();
        let mut k = 0i64;
        g.bench_function(format!("{}/head_only", shape.name), |b| {
            b.iter_batched(
                || {
                    k += 1;
                    make_batch(&names, shape.per_series, k)
                },
                |batch| head.append(&batch),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
