//! Raw `Db::append` throughput (no HTTP): remote-write-like batches of 10,000 series with
//! one sample each, under group commit, without fsync, and head only (no WAL).
#![allow(missing_docs, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gmc_model::WriteBatch;
use gmc_tsdb::{Config, Db, SyncPolicy};

const SERIES: usize = 10_000;

fn make_batch(names: &[(String, String)], ts: i64, k: i64) -> WriteBatch<'_> {
    let mut b = WriteBatch::new();
    b.reserve(SERIES, SERIES);
    for (i, (pair, inst)) in names.iter().enumerate() {
        let mut s = b.series();
        s.label("__name__", "hft_orders_total");
        s.label("instance", inst.as_str());
        s.label("pair", pair.as_str());
        s.label("service", "oms-1");
        s.float(ts, (k * 17 + i as i64) as f64);
        let _ = s.finish();
    }
    b
}

fn bench(c: &mut Criterion) {
    let names: Vec<(String, String)> = (0..SERIES)
        .map(|i| (format!("PAIR{i:05}"), format!("host-{}:9100", i % 16)))
        .collect();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(SERIES as u64));
    for (label, sync) in [
        (
            "group_commit",
            SyncPolicy::GroupCommit {
                window: Duration::ZERO,
            },
        ),
        ("batch_fsync", SyncPolicy::Batch),
        ("no_fsync", SyncPolicy::None),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = Config {
            sync,
            ..Config::default()
        };
        let db = Db::open(dir.path(), cfg).expect("open");
        let mut k = 0i64;
        let t0 = 1_763_000_000_000_000_000i64;
        g.bench_function(label, |b| {
            b.iter_batched(
                || {
                    k += 1;
                    make_batch(&names, t0 + k * 1_000_000_000, k)
                },
                |batch| db.append(&batch).expect("append"),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    // Fewer series with more samples each (e.g. a remote-write sender that queued up):
    // the per-series lookup cost is shared by ten samples.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Config::default()).expect("open");
        let few: Vec<(String, String)> = names.iter().take(SERIES / 10).cloned().collect();
        let mut k = 0i64;
        let t0 = 1_763_000_000_000_000_000i64;
        g.bench_function("group_commit_1k_series_x10", |b| {
            b.iter_batched(
                || {
                    k += 1;
                    let mut b = WriteBatch::new();
                    for (i, (pair, inst)) in few.iter().enumerate() {
                        let mut s = b.series();
                        s.label("__name__", "hft_orders_total");
                        s.label("instance", inst.as_str());
                        s.label("pair", pair.as_str());
                        s.label("service", "oms-1");
                        for j in 0..10 {
                            let t = t0 + (k * 10 + j) * 1_000_000_000;
                            s.float(t, ((k * 10 + j) * 17 + i as i64) as f64);
                        }
                        let _ = s.finish();
                    }
                    b
                },
                |batch| db.append(&batch).expect("append"),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    let mut head = gmc_tsdb::bench_support::HeadOnly::new();
    let mut k = 0i64;
    let t0 = 1_763_000_000_000_000_000i64;
    g.bench_function("head_only", |b| {
        b.iter_batched(
            || {
                k += 1;
                make_batch(&names, t0 + k * 1_000_000_000, k)
            },
            |batch| head.append(&batch),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
