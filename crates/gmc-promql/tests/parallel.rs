//! Queries over many series, which the store decodes and the engine evaluates on several
//! threads, give exactly what the same query gives series by series (one series never
//! splits): order, labels and every value bit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gmc_model::WriteBatch;
use gmc_promql::{Engine, EngineOptions, Value};
use gmc_tsdb::{Config, Db, SyncPolicy};

const SERIES: u32 = 400;

/// `(labels, [(t, value bits)])` of a matrix result.
fn listing(v: &Value) -> Vec<(String, Vec<(i64, u64)>)> {
    let Value::Matrix(m) = v else {
        panic!("not a matrix: {v:?}")
    };
    m.iter()
        .map(|s| {
            let pts = s.floats.iter().map(|&(t, f)| (t, f.to_bits())).collect();
            (format!("{:?}", s.labels), pts)
        })
        .collect()
}

#[test]
fn many_series_evaluate_like_each_series_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Config {
            sync: SyncPolicy::None,
            ..Config::default()
        },
    )
    .unwrap();
    let start = gmc_model::now_nanos() / 1_000_000 / 1000 * 1000 - 3_600_000;
    // Counters with resets, gauges with full-precision values; half flushed to a block so
    // reads merge the head and a block.
    for tick in 0..240i64 {
        if tick == 120 {
            db.flush().unwrap();
        }
        let mut b = WriteBatch::new();
        for i in 0..SERIES {
            let t = gmc_model::millis_to_nanos(start + tick * 10_000 + i64::from(i));
            let mut c = b.series();
            c.label("__name__", "orders_total");
            c.label("i", i.to_string());
            let reset = (tick + i64::from(i)) % 97 == 0;
            c.float(
                t,
                if reset {
                    0.0
                } else {
                    (tick * i64::from(i % 13 + 1)) as f64
                },
            );
            c.finish().unwrap();
            let mut g = b.series();
            g.label("__name__", "latency");
            g.label("i", i.to_string());
            g.float(t, ((tick as f64) * 0.37 + f64::from(i)).sin() * 1e-3);
            g.finish().unwrap();
        }
        db.append(&b).unwrap();
    }
    let engine = Engine::new(EngineOptions::default());
    let (qs, qe) = (start + 300_000, start + 2_400_000);
    for q in [
        "rate(orders_total[1m])",
        "increase(orders_total[5m])",
        "avg_over_time(latency[2m])",
        "max_over_time(latency[1m])",
        "latency",
        "timestamp(latency)",
    ] {
        let all = listing(&engine.range_query(&db, q, qs, qe, 15_000).unwrap().value);
        assert_eq!(all.len(), SERIES as usize, "{q}");
        let mut one_by_one = Vec::new();
        for i in 0..SERIES {
            let single = q.replace("orders_total", &format!("orders_total{{i=\"{i}\"}}"));
            let single = single.replace("latency", &format!("latency{{i=\"{i}\"}}"));
            let r = engine.range_query(&db, &single, qs, qe, 15_000).unwrap();
            one_by_one.extend(listing(&r.value));
        }
        one_by_one.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, one_by_one, "{q}");
    }
}
