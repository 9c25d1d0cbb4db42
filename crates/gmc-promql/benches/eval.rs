//! PromQL evaluation benchmarks: 10 000 counter series (20 services × 500 instances) plus
//! 1 000 classic histogram bucket series, 25 minutes at a 15 s scrape interval, in a real
//! `gmc_tsdb::Db` (head). Run with `cargo bench -p gmc-promql --bench eval`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use gmc_model::WriteBatch;
use gmc_promql::{Engine, EngineOptions};
use gmc_tsdb::{Config, Db, SyncPolicy};

const STEP_S: i64 = 15;
const POINTS: i64 = 100; // 25 minutes
const T0_MS: i64 = 1_700_000_000_000;

fn load(db: &Db) {
    let mut batch = WriteBatch::new();
    for svc in 0..20 {
        for inst in 0..500 {
            let mut s = batch.series();
            s.label("__name__", "bench_requests_total");
            s.label("job", "bench");
            s.label("service", format!("svc-{svc}"));
            s.label("instance", format!("i-{inst}"));
            let rate = 1.0 + f64::from(inst % 7);
            for k in 0..POINTS {
                let t = T0_MS + k * STEP_S * 1000;
                s.float(gmc_model::millis_to_nanos(t), rate * (k * STEP_S) as f64);
            }
            s.finish().unwrap();
        }
    }
    for inst in 0..100 {
        for (i, le) in [
            "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "+Inf",
        ]
        .iter()
        .enumerate()
        {
            let mut s = batch.series();
            s.label("__name__", "bench_rtt_seconds_bucket");
            s.label("job", "bench");
            s.label("service", format!("svc-{}", inst % 20));
            s.label("instance", format!("i-{inst}"));
            s.label("le", *le);
            for k in 0..POINTS {
                let t = T0_MS + k * STEP_S * 1000;
                s.float(
                    gmc_model::millis_to_nanos(t),
                    (k * (i as i64 + 1) * 3) as f64,
                );
            }
            s.finish().unwrap();
        }
    }
    db.append(&batch).unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        sync: SyncPolicy::None,
        ..Config::default()
    };
    let db = Db::open(dir.path(), config).unwrap();
    load(&db);
    let engine = Engine::new(EngineOptions::default());
    let end = T0_MS + (POINTS - 1) * STEP_S * 1000;
    let start = T0_MS;
    let mut g = c.benchmark_group("promql");
    g.sample_size(20);
    // The store alone: what every query over all series pays before evaluation starts.
    g.bench_function("store_select_all_25m", |b| {
        let m = [gmc_model::Matcher::new(gmc_model::MatchOp::Regex, "__name__", ".+").unwrap()];
        b.iter(|| {
            let q = db
                .querier(
                    gmc_model::millis_to_nanos(start),
                    gmc_model::millis_to_nanos(end),
                )
                .unwrap();
            q.select(&m).unwrap().len()
        })
    });
    // Parsing alone (promql-parser), for the share of a point lookup it takes.
    g.bench_function("parse_point_selector", |b| {
        b.iter(|| {
            gmc_promql::parse(std::hint::black_box(
                r#"hft_pnl_usd{service="oms-0",pair="BTC-USDT"}"#,
            ))
            .unwrap()
        })
    });
    g.bench_function("parse_hist_quantile", |b| {
        b.iter(|| {
            gmc_promql::parse(std::hint::black_box(
                r#"histogram_quantile(0.99, sum by (le) (rate(hft_order_rtt_us_bucket{service="oms-0"}[1m])))"#,
            ))
            .unwrap()
        })
    });
    g.bench_function("instant_point_lookup", |b| {
        b.iter(|| {
            engine
                .instant_query(
                    &db,
                    r#"bench_requests_total{service="svc-3",instance="i-42"}"#,
                    end,
                )
                .unwrap()
        })
    });
    g.bench_function("instant_count_all", |b| {
        b.iter(|| {
            engine
                .instant_query(&db, r#"count({__name__=~".+"})"#, end)
                .unwrap()
        })
    });
    g.bench_function("instant_sum_rate_by_service", |b| {
        b.iter(|| {
            engine
                .instant_query(
                    &db,
                    "sum by (service) (rate(bench_requests_total[5m]))",
                    end,
                )
                .unwrap()
        })
    });
    g.bench_function("range_sum_rate_by_service_25m_15s", |b| {
        b.iter(|| {
            engine
                .range_query(
                    &db,
                    "sum by (service) (rate(bench_requests_total[5m]))",
                    start,
                    end,
                    STEP_S * 1000,
                )
                .unwrap()
        })
    });
    g.bench_function("range_hist_p99_by_service_25m_15s", |b| {
        b.iter(|| {
            engine
                .range_query(
                    &db,
                    "histogram_quantile(0.99, sum by (le, service) (rate(bench_rtt_seconds_bucket[5m])))",
                    start,
                    end,
                    STEP_S * 1000,
                )
                .unwrap()
        })
    });
    g.bench_function("range_topk5_25m_60s", |b| {
        b.iter(|| {
            engine
                .range_query(
                    &db,
                    "topk(5, sum by (instance) (rate(bench_requests_total[5m])))",
                    start,
                    end,
                    60_000,
                )
                .unwrap()
        })
    });
    g.bench_function("range_raw_selector_10k_25m_15s", |b| {
        b.iter(|| {
            engine
                .range_query(&db, "bench_requests_total", start, end, STEP_S * 1000)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
