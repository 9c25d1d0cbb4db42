//! The error table: every bad query gets a typed error with Prometheus' `errorType`, and
//! limits (samples, timeout) stop a query instead of letting it run away.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gmc_model::WriteBatch;
use gmc_promql::{Engine, EngineOptions, Error, PointValue, Value};
use gmc_tsdb::{Config, Db, SyncPolicy};

const MIN: i64 = 60_000;

fn db_with(series: usize, points: i64) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Config {
            sync: SyncPolicy::None,
            ..Config::default()
        },
    )
    .unwrap();
    let mut b = WriteBatch::new();
    for i in 0..series {
        let mut s = b.series();
        s.label("__name__", "req_total");
        s.label("job", if i % 2 == 0 { "a" } else { "b" });
        s.label("instance", format!("i{i}"));
        for k in 0..points {
            s.float(
                gmc_model::millis_to_nanos(k * 15_000),
                (k * (i as i64 + 1)) as f64,
            );
        }
        s.finish().unwrap();
    }
    db.append(&b).unwrap();
    (dir, db)
}

fn err(r: gmc_promql::Result<gmc_promql::QueryResult>) -> Error {
    match r {
        Ok(v) => panic!("expected an error, got {:?}", v.value),
        Err(e) => e,
    }
}

#[test]
fn bad_queries_are_bad_data_with_clear_messages() {
    let (_d, db) = db_with(2, 10);
    let e = Engine::new(EngineOptions::default());
    let cases: &[(&str, &str)] = &[
        ("sum(", "1:5: parse error"),
        ("foo{", "parse error"),
        ("1 +", "parse error"),
        ("nosuchfn(req_total)", "unknown function"),
        ("rate(req_total)", "expected type matrix"),
        ("abs(\"x\")", "expected type vector"),
        ("{}", "at least one non-empty matcher"),
        ("req_total{job=~\"(\"}", "regex"),
        // Duration expressions: a range must stay positive, and only arithmetic, step(),
        // range(), min_of() and max_of() are understood.
        ("req_total[5m-5m]", "duration must be greater than 0"),
        (
            "req_total[1m/0]",
            "division by zero in a duration expression",
        ),
        ("req_total[nope()]", "unknown duration function"),
        // The trim operators take histograms on their left, and are not comparisons.
        ("1 </ 2", "trim operator '</' needs an instant vector"),
        (
            "req_total >/ bool 1",
            "bool modifier can only be used on comparison",
        ),
    ];
    for (q, want) in cases {
        let x = err(e.instant_query(&db, q, 0));
        assert_eq!(x.error_type(), "bad_data", "{q}: {x}");
        assert!(
            x.to_string().contains(want),
            "{q}: {x} should mention {want:?}"
        );
    }
    let x = err(e.range_query(&db, "req_total", 0, MIN, 0));
    assert_eq!(x.error_type(), "bad_data");
    assert!(x
        .to_string()
        .contains("zero or negative query resolution step"));
    let x = err(e.range_query(&db, "req_total", MIN, 0, 1000));
    assert_eq!(x.error_type(), "bad_data");
    assert!(x
        .to_string()
        .contains("end timestamp must not be before start time"));
    let x = err(e.range_query(&db, "req_total", 0, 11_001 * 1000, 1000));
    assert_eq!(x.error_type(), "bad_data");
    assert!(x
        .to_string()
        .contains("exceeded maximum resolution of 11000 points"));
    // 11 000 points exactly is allowed.
    e.range_query(&db, "req_total", 0, 10_999 * 1000, 1000)
        .unwrap();
    let x = err(e.range_query(&db, "req_total[5m]", 0, MIN, 1000));
    assert_eq!(x.error_type(), "bad_data");
    assert!(x
        .to_string()
        .contains("invalid expression type \"range vector\""));
}

#[test]
fn absurd_nesting_is_refused() {
    let (_d, db) = db_with(1, 2);
    let q = format!("{}req_total{}", "(".repeat(100_000), ")".repeat(100_000));
    let x = err(Engine::default().instant_query(&db, &q, 0));
    assert_eq!(x.error_type(), "bad_data");
    // Reasonable nesting still works.
    let q = format!("{}req_total{}", "(".repeat(50), ")".repeat(50));
    Engine::default().instant_query(&db, &q, 0).unwrap();
    let q = vec!["1"; 20_000].join(" + ");
    let x = err(Engine::default().instant_query(&db, &q, 0));
    assert_eq!(x.error_type(), "bad_data");
}

#[test]
fn long_operator_chains_do_not_overflow_a_small_stack() {
    let (_d, db) = db_with(1, 2);
    let db = std::sync::Arc::new(db);
    // 1 000 chained operators on a thread with tokio's default 2 MiB blocking-pool stack.
    let q = vec!["1"; 1001].join(" + ");
    let d2 = std::sync::Arc::clone(&db);
    let v = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || Engine::default().instant_query(&d2, &q, 0).map(|r| r.value))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(v, Value::Scalar { t_ms: 0, v: 1001.0 });
}

#[test]
fn huge_regex_is_refused() {
    let (_d, db) = db_with(1, 2);
    let e = Engine::new(EngineOptions::default());
    let q = format!("req_total{{job=~\"{}\"}}", "(a{1000}){1000}");
    let x = err(e.instant_query(&db, &q, 0));
    assert_eq!(x.error_type(), "bad_data", "{x}");
}

#[test]
fn execution_errors() {
    let (_d, db) = db_with(4, 10);
    let e = Engine::new(EngineOptions::default());
    let x = err(e.instant_query(&db, "req_total + on(job) req_total", MIN));
    assert_eq!(x.error_type(), "execution");
    assert!(
        x.to_string().contains("many-to-many matching not allowed"),
        "{x}"
    );
    let x = err(e.instant_query(&db, "topk(scalar(vector(NaN)), req_total)", MIN));
    assert_eq!(x.error_type(), "execution");
    let x = err(e.instant_query(
        &db,
        r#"label_replace(req_total, "instance", "x", "", "")"#,
        MIN,
    ));
    assert_eq!(
        x.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
}

#[test]
fn sample_limit_stops_the_query() {
    let (_d, db) = db_with(50, 40);
    let e = Engine::new(EngineOptions {
        max_samples: 100,
        ..EngineOptions::default()
    });
    let x = err(e.range_query(&db, "sum(rate(req_total[5m]))", 0, 10 * MIN, 15_000));
    assert_eq!(x.error_type(), "execution");
    assert_eq!(
        x.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    // The same query within the default limit works and reports statistics.
    let ok = Engine::default()
        .range_query(&db, "sum(rate(req_total[5m]))", 0, 10 * MIN, 15_000)
        .unwrap();
    assert!(ok.stats.samples_scanned >= 50 * 40);
    assert!(ok.stats.peak_samples > 0);
}

#[test]
fn huge_subquery_is_refused_not_allocated() {
    let (_d, db) = db_with(1, 2);
    let e = Engine::default();
    let x = err(e.instant_query(&db, "max_over_time(req_total[10y:1ms])", MIN));
    assert_eq!(x.error_type(), "execution");
    let x = err(e.range_query(&db, "req_total", i64::MIN / 2, i64::MAX / 2, 1));
    assert_eq!(x.error_type(), "bad_data");
}

#[test]
fn timeout_stops_the_query() {
    let (_d, db) = db_with(300, 40);
    let e = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    let x = err(e.range_query(
        &db,
        "sum by (job) (rate(req_total[5m]))",
        0,
        10 * MIN,
        15_000,
    ));
    assert_eq!(x.error_type(), "timeout");
}

#[test]
fn basic_instant_and_range_results() {
    let (_d, db) = db_with(4, 41);
    let e = Engine::default();
    let r = e
        .instant_query(&db, "sum by (job) (req_total)", 10 * MIN)
        .unwrap();
    let Value::Vector(v) = r.value else {
        panic!("not a vector")
    };
    assert_eq!(v.len(), 2);
    let a = v.iter().find(|s| s.labels.get("job") == Some("a")).unwrap();
    // Sample 40 at 10 min: instances 0 and 2 have slopes 1 and 3.
    assert_eq!(a.value, PointValue::Float(40.0 * 1.0 + 40.0 * 3.0));
    assert_eq!(a.t_ms, 10 * MIN);
    let r = e.instant_query(&db, "1 + 2 * 3", 0).unwrap();
    assert_eq!(r.value, Value::Scalar { t_ms: 0, v: 7.0 });
    let r = e.instant_query(&db, "\"hello\"", 5).unwrap();
    assert_eq!(
        r.value,
        Value::String {
            t_ms: 5,
            s: "hello".into()
        }
    );
    let r = e
        .range_query(
            &db,
            "rate(req_total{instance=\"i1\"}[1m])",
            5 * MIN,
            10 * MIN,
            MIN,
        )
        .unwrap();
    let Value::Matrix(m) = r.value else {
        panic!("not a matrix")
    };
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].labels.get("__name__"),
        None,
        "rate drops the metric name"
    );
    assert_eq!(m[0].floats.len(), 6);
    for (_, v) in &m[0].floats {
        assert!((v - 2.0 / 15.0).abs() < 1e-9, "{v}");
    }
    // Range queries over scalars give one series without labels.
    let r = e.range_query(&db, "time()", 0, 2 * MIN, MIN).unwrap();
    let Value::Matrix(m) = r.value else {
        panic!("not a matrix")
    };
    assert_eq!(m[0].floats, vec![(0, 0.0), (MIN, 60.0), (2 * MIN, 120.0)]);
}

#[test]
fn engine_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
    let p = gmc_promql::parse("sum by (a) (rate(x[5m]))").unwrap();
    assert!(p.to_string().contains("rate"));
}
