//! Custom-bucket histograms (NHCB) whose bounds differ are combined on the bounds they
//! share, and every query that does so says it did (Prometheus 3's info annotation); a
//! mix of custom and exponential histograms has no result and a warning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gmc_model::{Histogram, WriteBatch};
use gmc_promql::{Engine, EngineOptions, PointValue, QueryResult, Value};
use gmc_tsdb::{Config, Db, SyncPolicy};

const MIN: i64 = 60_000;

fn nhcb(bounds: &[f64], buckets: &[f64]) -> Histogram {
    Histogram::custom_buckets(bounds, buckets, 1.0)
}

/// `lat{venue}`: XNAS keeps bounds [5, 10]; XLON changes from [2, 10] to [1, 2, 10] at
/// minute 1 (a redeploy with a finer bucket). `mixed` holds an exponential histogram.
fn store() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Config {
            sync: SyncPolicy::None,
            ..Config::default()
        },
    )
    .unwrap();
    let t0 = (gmc_model::now_nanos() / 1_000_000 / MIN - 10) * MIN;
    let mut b = WriteBatch::new();
    let series: [(&str, &str, Vec<Histogram>); 3] = [
        (
            "lat",
            "XNAS",
            vec![
                nhcb(&[5.0, 10.0], &[1.0, 2.0, 1.0]),
                nhcb(&[5.0, 10.0], &[2.0, 4.0, 2.0]),
            ],
        ),
        (
            "lat",
            "XLON",
            vec![
                nhcb(&[2.0, 10.0], &[4.0, 0.0, 1.0]),
                nhcb(&[1.0, 2.0, 10.0], &[3.0, 3.0, 1.0, 1.0]),
            ],
        ),
        (
            "mixed",
            "XNAS",
            vec![Histogram {
                count: 1.0,
                zero_count: 1.0,
                ..Histogram::default()
            }],
        ),
    ];
    for (name, venue, hs) in series {
        let mut s = b.series();
        s.label("__name__", name);
        s.label("venue", venue);
        for (k, h) in hs.into_iter().enumerate() {
            s.histogram(gmc_model::millis_to_nanos(t0 + k as i64 * MIN), h);
        }
        s.finish().unwrap();
    }
    // `mixed` also gets a custom-bucket sample under another label.
    let mut s = b.series();
    s.label("__name__", "mixed");
    s.label("venue", "XLON");
    s.histogram(gmc_model::millis_to_nanos(t0), nhcb(&[5.0], &[1.0, 0.0]));
    s.finish().unwrap();
    db.append(&b).unwrap();
    (dir, db)
}

fn at(db: &Db, q: &str, minute: i64) -> QueryResult {
    let t0 = (gmc_model::now_nanos() / 1_000_000 / MIN - 10) * MIN;
    Engine::new(EngineOptions::default())
        .instant_query(db, q, t0 + minute * MIN)
        .unwrap()
}

fn hist(r: &QueryResult, venue: Option<&str>) -> Histogram {
    let Value::Vector(v) = &r.value else {
        panic!("vector expected: {r:?}")
    };
    let s = v
        .iter()
        .find(|s| venue.is_none_or(|x| s.labels.get("venue") == Some(x)))
        .unwrap_or_else(|| panic!("no result for {venue:?}: {r:?}"));
    match &s.value {
        PointValue::Histogram(h) => (**h).clone(),
        PointValue::Float(f) => panic!("histogram expected, got {f}"),
    }
}

fn buckets(h: &Histogram) -> Vec<(f64, f64)> {
    h.positive_iter()
        .filter(|(_, c)| *c != 0.0)
        .map(|(i, c)| (h.positive_bucket_bounds(i).1, c))
        .collect()
}

fn says(r: &QueryResult, what: &str) -> bool {
    r.warnings.iter().any(|w| w.contains(what))
}

fn assert_says(r: &QueryResult, what: &str) {
    assert!(says(r, what), "{:?}", r.warnings);
}

fn assert_empty(r: &QueryResult) {
    let Value::Vector(v) = &r.value else {
        panic!("vector expected")
    };
    assert!(v.is_empty(), "{v:?}");
}

#[test]
fn sums_over_series_use_the_shared_bounds_and_say_so() {
    let (_d, db) = store();
    let r = at(&db, "sum(lat)", 0);
    let h = hist(&r, None);
    assert_eq!(h.custom_values, vec![10.0]);
    assert_eq!(buckets(&h), vec![(10.0, 7.0), (f64::INFINITY, 2.0)]);
    assert!(
        says(
            &r,
            "mismatched custom buckets were reconciled during aggregation"
        ),
        "{:?}",
        r.warnings
    );
    // Same bounds: no annotation.
    let r = at(&db, "sum(lat{venue=\"XNAS\"})", 0);
    assert!(!says(&r, "reconciled"), "{:?}", r.warnings);
}

#[test]
fn binary_addition_reconciles_and_says_so() {
    let (_d, db) = store();
    let r = at(
        &db,
        "lat{venue=\"XNAS\"} + ignoring(venue) lat{venue=\"XLON\"}",
        0,
    );
    let h = hist(&r, None);
    assert_eq!(buckets(&h), vec![(10.0, 7.0), (f64::INFINITY, 2.0)]);
    assert_says(&r, "reconciled during addition");
}

#[test]
fn rates_across_a_bound_change_are_taken_on_the_shared_bounds() {
    let (_d, db) = store();
    // XLON: [2,10] -> [1,2,10]. On the shared bounds [2,10] the buckets go
    // (4,0,1) -> (6,1,1): an increase of (2,1,0), not a reset.
    let r = at(&db, "increase(lat{venue=\"XLON\"}[2m])", 1);
    let h = hist(&r, Some("XLON"));
    assert_eq!(h.custom_values, vec![2.0, 10.0]);
    let b = buckets(&h);
    assert_eq!(b.len(), 2, "{b:?}");
    // Extrapolated over the 2 m window: both buckets scale by the same factor.
    assert!((b[0].1 / b[1].1 - 2.0).abs() < 1e-9, "{b:?}");
    assert_says(&r, "reconciled during subtraction");
    // A finer layout is not a counter reset.
    let Value::Vector(v) = at(&db, "resets(lat{venue=\"XLON\"}[2m])", 1).value else {
        panic!("vector expected")
    };
    assert_eq!(v[0].value, PointValue::Float(0.0));
    let r = at(&db, "sum_over_time(lat{venue=\"XLON\"}[2m])", 1);
    assert_eq!(hist(&r, Some("XLON")).custom_values, vec![2.0, 10.0]);
    assert_says(&r, "reconciled during aggregation");
}

#[test]
fn custom_and_exponential_histograms_do_not_add() {
    let (_d, db) = store();
    let r = at(
        &db,
        "mixed{venue=\"XNAS\"} + ignoring(venue) mixed{venue=\"XLON\"}",
        0,
    );
    assert_empty(&r);
    assert_says(
        &r,
        "PromQL warning: vector contains a mix of histograms with exponential and custom buckets",
    );
}

#[test]
fn custom_and_exponential_histograms_do_not_sum() {
    let (_d, db) = store();
    let r = at(&db, "sum(mixed)", 0);
    assert_empty(&r);
    assert_says(&r, "mix of histograms with exponential and custom buckets");
}

#[test]
fn trim_operators_keep_the_name_and_bind_like_comparisons() {
    let (_d, db) = store();
    // XNAS at minute 1: bounds [5, 10], buckets [2, 4, 2].
    let r = at(&db, r#"lat{venue="XNAS"} </ 7.5"#, 1);
    let h = hist(&r, Some("XNAS"));
    // The first bucket counts as [0, 5] and stays whole, half of (5, 10] stays, and the
    // +Inf bucket goes; the sum is estimated from bucket mid-points.
    assert_eq!(buckets(&h), vec![(5.0, 2.0), (10.0, 2.0)]);
    assert_eq!((h.count, h.sum), (4.0, 2.0 * 2.5 + 2.0 * 6.25));
    let Value::Vector(v) = &r.value else {
        panic!("vector expected")
    };
    assert_eq!(v[0].labels.get("__name__"), Some("lat"));
    // `</` binds looser than `+`, as comparisons do.
    let r = at(&db, r#"lat{venue="XNAS"} </ 5 + 2.5"#, 1);
    assert_eq!(hist(&r, Some("XNAS")), h);
    let r = at(&db, r#"lat{venue="XNAS"} >/ 7.5"#, 1);
    let h = hist(&r, Some("XNAS"));
    assert_eq!(buckets(&h), vec![(10.0, 2.0), (f64::INFINITY, 2.0)]);
    // A float has no observations to trim: no result, and the query says why.
    let r = at(&db, r#"histogram_count(lat{venue="XNAS"}) </ 1"#, 1);
    assert_empty(&r);
    assert_says(
        &r,
        "incompatible sample types encountered for binary operator \"</\"",
    );
}
