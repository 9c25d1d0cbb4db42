//! Range queries that reach past the raw retention read the store's rollups and say so;
//! ranges that raw data still covers keep exact raw semantics and no warning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gmc_model::WriteBatch;
use gmc_promql::{Engine, EngineOptions, Value};
use gmc_tsdb::{Config, Db, SyncPolicy};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

#[test]
fn old_ranges_read_rollups_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Config {
            sync: SyncPolicy::None,
            retention_raw: Duration::from_secs(3600),
            // Maintenance is driven by the test.
            maintenance_interval: Duration::from_secs(3600),
            ..Config::default()
        },
    )
    .unwrap();
    let now_ms = gmc_model::now_nanos() / 1_000_000;
    // Two whole hours of 10 s samples, ending four hours ago.
    let start = (now_ms - 6 * HOUR).div_euclid(HOUR) * HOUR;
    let end = start + 2 * HOUR;
    let mut b = WriteBatch::new();
    let mut g = b.series();
    g.label("__name__", "position");
    let mut t = start;
    while t < end {
        g.float(gmc_model::millis_to_nanos(t), ((t - start) / MIN) as f64);
        t += 10_000;
    }
    g.finish().unwrap();
    let mut c = b.series();
    c.label("__name__", "orders_total");
    let (mut t, mut v) = (start, 0.0);
    while t < end {
        c.float(gmc_model::millis_to_nanos(t), v);
        v += 1.0;
        t += 10_000;
    }
    c.finish().unwrap();
    db.append(&b).unwrap();
    db.flush().unwrap();
    db.maintain().unwrap();
    // Raw data is gone (older than the 1 h raw retention): a raw read finds nothing.
    let q = db
        .querier(
            gmc_model::millis_to_nanos(start),
            gmc_model::millis_to_nanos(end),
        )
        .unwrap();
    assert!(q
        .select(&[gmc_model::Matcher::equal("__name__", "position")])
        .unwrap()
        .is_empty());

    let engine = Engine::new(EngineOptions::default());
    let (qs, qe) = (start + 30 * MIN, start + 90 * MIN);
    let r = engine
        .range_query(&db, "position", qs, qe, 5 * MIN)
        .unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("1m rollups")),
        "{:?}",
        r.warnings
    );
    let Value::Matrix(m) = &r.value else {
        panic!("matrix expected")
    };
    assert_eq!(m.len(), 1);
    // The 1 m rollup stamped T holds the last raw value of [T − 1 m, T): at a step on a
    // minute boundary that is the previous minute's value.
    let want: Vec<(i64, f64)> = (0..=12)
        .map(|k| {
            let t = qs + k * 5 * MIN;
            (t, ((t - start) / MIN - 1) as f64)
        })
        .collect();
    assert_eq!(m[0].floats, want);
    // Counters keep working on last-per-minute values: 6 increments a minute.
    let r = engine
        .range_query(&db, "rate(orders_total[5m])", qs, qe, 5 * MIN)
        .unwrap();
    let Value::Matrix(m) = &r.value else {
        panic!("matrix expected")
    };
    assert_eq!(m[0].floats.len(), 13);
    for (_, v) in &m[0].floats {
        assert!((v - 0.1).abs() < 1e-9, "rate {v}");
    }
    // A sub-minute step keeps raw semantics and says why it found nothing.
    let r = engine.range_query(&db, "position", qs, qe, 30_000).unwrap();
    assert!(r.warnings.iter().any(|w| w.contains("step of 1m or more")));
    let Value::Matrix(m) = &r.value else {
        panic!("matrix expected")
    };
    assert!(m.is_empty());
}

#[test]
fn ranges_raw_data_covers_stay_raw() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Config {
            sync: SyncPolicy::None,
            ..Config::default()
        },
    )
    .unwrap();
    let now_ms = gmc_model::now_nanos() / 1_000_000;
    let start = now_ms - 2 * HOUR;
    let mut b = WriteBatch::new();
    let mut g = b.series();
    g.label("__name__", "position");
    for k in 0..720 {
        g.float(gmc_model::millis_to_nanos(start + k * 10_000), k as f64);
    }
    g.finish().unwrap();
    db.append(&b).unwrap();
    let engine = Engine::new(EngineOptions::default());
    let r = engine
        .range_query(
            &db,
            "position",
            start + HOUR,
            start + HOUR + 10 * MIN,
            5 * MIN,
        )
        .unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let Value::Matrix(m) = &r.value else {
        panic!("matrix expected")
    };
    // Raw: the sample exactly at each step.
    assert_eq!(m[0].floats[0], (start + HOUR, 360.0));
}
