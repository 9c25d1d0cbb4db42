//! Rollups wired into `Db`: maintenance writes 1-minute and 1-hour rollup blocks from raw
//! blocks, `Querier::select_rollup` reads them (and computes not-yet-rolled-up buckets from
//! raw data), retention applies per resolution, and everything survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use gmc_model::{Matcher, WriteBatch, NANOS_PER_SEC, STALE_NAN_BITS};
use gmc_tsdb::block::Resolution;
use gmc_tsdb::downsample::{bucket_stamp, Aggregate};
use gmc_tsdb::{Config, Db, SampleValue, SyncPolicy};
use proptest::prelude::*;

const S: i64 = NANOS_PER_SEC;
const MIN: i64 = 60 * S;
const HOUR: i64 = 3600 * S;
const DAY: i64 = 24 * HOUR;

fn config() -> Config {
    Config {
        sync: SyncPolicy::None,
        // The test drives maintenance itself.
        maintenance_interval: Duration::from_secs(3600),
        ..Config::default()
    }
}

/// An hour boundary `days` days before now.
fn days_ago(days: i64) -> i64 {
    let t = gmc_model::now_nanos() - days * DAY;
    t - t.rem_euclid(HOUR)
}

fn append(db: &Db, name: &str, samples: &[(i64, f64)]) {
    // One sample per append keeps each series in order whatever the batch shape.
    for chunk in samples.chunks(500) {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", name.to_string());
        s.label("host", "a");
        for &(t, v) in chunk {
            s.float(t, v);
        }
        s.finish().unwrap();
        let r = db.append(&b).unwrap();
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    }
}

/// Per-bucket aggregates computed the obvious way.
fn naive(samples: &[(i64, f64)], step: i64, agg: Aggregate) -> Vec<(i64, f64)> {
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for &(t, v) in samples {
        if v.to_bits() == STALE_NAN_BITS {
            continue;
        }
        buckets.entry(bucket_stamp(t, step)).or_default().push(v);
    }
    buckets
        .into_iter()
        .map(|(t, v)| {
            let x = match agg {
                Aggregate::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
                Aggregate::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                Aggregate::Sum => v.iter().sum(),
                Aggregate::Count => v.len() as f64,
                Aggregate::Last => v[v.len() - 1],
                other => panic!("not a float aggregate: {other:?}"),
            };
            (t, x)
        })
        .collect()
}

fn rollup(
    db: &Db,
    name: &str,
    mint: i64,
    maxt: i64,
    res: Resolution,
    agg: Aggregate,
) -> Vec<(i64, f64)> {
    let q = db.querier(mint, maxt).unwrap();
    let got = q
        .select_rollup(&[Matcher::equal("__name__", name)], res, agg)
        .unwrap();
    assert!(got.len() <= 1);
    got.first()
        .map(|s| {
            assert_eq!(s.labels().get("host"), Some("a"));
            assert_eq!(s.labels().get("__rollup__"), None);
            s.iter()
                .map(|x| match x.value {
                    SampleValue::Float(f) => (x.ts_nanos, f),
                    SampleValue::Histogram(_) => panic!("histogram"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn raw_count(db: &Db, name: &str, mint: i64, maxt: i64) -> usize {
    let q = db.querier(mint, maxt).unwrap();
    q.select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .iter()
        .map(|s| s.len())
        .sum()
}

const FLOAT_AGGS: [Aggregate; 5] = [
    Aggregate::Min,
    Aggregate::Max,
    Aggregate::Sum,
    Aggregate::Count,
    Aggregate::Last,
];

fn check_all(db: &Db, name: &str, samples: &[(i64, f64)], mint: i64, maxt: i64, what: &str) {
    for res in [Resolution::OneMinute, Resolution::OneHour] {
        for agg in FLOAT_AGGS {
            let want: Vec<(i64, f64)> = naive(samples, res.step_nanos(), agg)
                .into_iter()
                .filter(|(t, _)| *t >= mint && *t <= maxt)
                .collect();
            let got = rollup(db, name, mint, maxt, res, agg);
            assert_eq!(got, want, "{what}: {res:?} {agg:?}");
        }
    }
}

fn samples_strategy() -> impl Strategy<Value = Vec<(i64, f64)>> {
    // Up to ~5 h of samples with gaps of 1 s .. 10 min; values include stale markers.
    proptest::collection::vec(
        (
            1i64..600,
            prop_oneof![
                8 => -1e6f64..1e6,
                1 => Just(f64::from_bits(STALE_NAN_BITS)),
                1 => Just(0.0f64),
            ],
        ),
        1..400,
    )
    .prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .map(|(d, v)| {
                t += d * S;
                (t, v)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// From the head (computed on the fly), from rollup blocks, and after a restart, every
    /// float aggregate equals the naive per-bucket computation.
    #[test]
    fn rollups_match_a_naive_computation(offsets in samples_strategy(), start_min in 0i64..120) {
        let base = days_ago(3) + start_min * MIN + 7 * S;
        let samples: Vec<(i64, f64)> = offsets.iter().map(|(t, v)| (base + t, *v)).collect();
        let (mint, maxt) = (base - DAY, base + DAY);
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), config()).unwrap();
            append(&db, "m", &samples);
            check_all(&db, "m", &samples, mint, maxt, "head");
            db.flush().unwrap();
            let r = db.maintain().unwrap();
            prop_assert_eq!(r.rollup_blocks, 2);
            check_all(&db, "m", &samples, mint, maxt, "blocks");
            // A range cutting buckets off at both ends.
            let (a, b) = (base + 600 * S, base + 7200 * S);
            check_all(&db, "m", &samples, a, b, "sub-range");
            db.close().unwrap();
        }
        let db = Db::open(dir.path(), config()).unwrap();
        check_all(&db, "m", &samples, mint, maxt, "after restart");
        // Nothing new to roll up after a restart.
        prop_assert_eq!(db.maintain().unwrap().rollup_blocks, 0);
    }
}

/// Samples every `every` from `from` for `span`, a counter-like ramp.
fn ramp(from: i64, span: i64, every: i64, k: f64) -> Vec<(i64, f64)> {
    (0..span / every)
        .map(|i| (from + i * every, k + i as f64))
        .collect()
}

#[test]
fn retention_is_per_resolution_and_rollups_outlive_raw_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    // Three generations of one series: 200 days old (only 1h rollups may stay), 40 days
    // old (raw expired, 1m and 1h stay), 1 day old (everything stays), then the head.
    let old = ramp(days_ago(200), 3 * HOUR, 30 * S, 0.0);
    let mid = ramp(days_ago(40), 3 * HOUR, 30 * S, 1000.0);
    let new = ramp(days_ago(1), 3 * HOUR, 30 * S, 2000.0);
    let head = ramp(days_ago(0) - 3 * HOUR, 2 * HOUR, 30 * S, 3000.0);
    for part in [&old, &mid, &new] {
        append(&db, "m", part);
        db.flush().unwrap();
        db.maintain().unwrap();
    }
    append(&db, "m", &head);
    db.maintain().unwrap();

    let all: Vec<(i64, f64)> = [&old, &mid, &new, &head]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let now = gmc_model::now_nanos();
    // Raw: only the last day and the head are left.
    assert_eq!(
        raw_count(&db, "m", i64::MIN, i64::MAX),
        new.len() + head.len()
    );
    assert_eq!(raw_count(&db, "m", days_ago(41), days_ago(30)), 0);

    // 1m: everything but the 200-day-old data (never written: it would expire at once).
    let since =
        |t0: i64| -> Vec<(i64, f64)> { all.iter().copied().filter(|(t, _)| *t >= t0).collect() };
    let want_1m: Vec<(i64, f64)> = naive(&since(days_ago(41)), MIN, Aggregate::Last)
        .into_iter()
        .filter(|(t, _)| *t <= now)
        .collect();
    let got = rollup(
        &db,
        "m",
        days_ago(250),
        now,
        Resolution::OneMinute,
        Aggregate::Last,
    );
    assert_eq!(got, want_1m);
    // A query spanning raw-deleted time (40 days ago) and the head: rollup blocks, then
    // buckets computed from raw blocks and the head.
    let got = rollup(
        &db,
        "m",
        days_ago(45),
        now,
        Resolution::OneMinute,
        Aggregate::Count,
    );
    let want: Vec<(i64, f64)> = naive(&since(days_ago(41)), MIN, Aggregate::Count)
        .into_iter()
        .filter(|(t, _)| *t <= now)
        .collect();
    assert_eq!(got, want);
    assert!(got.first().unwrap().0 < days_ago(39));
    assert!(got.last().unwrap().0 > days_ago(0) - 2 * HOUR);

    // 1h: all four generations.
    let got = rollup(
        &db,
        "m",
        days_ago(250),
        now,
        Resolution::OneHour,
        Aggregate::Max,
    );
    let want: Vec<(i64, f64)> = naive(&all, HOUR, Aggregate::Max)
        .into_iter()
        .filter(|(t, _)| *t <= now)
        .collect();
    assert_eq!(got, want);
    assert!(got.len() >= 3 + 3 + 3 + 2);

    // Choosing a resolution: 30 days back at a 5-minute step reads 1m rollups; 100 days
    // back at a 15 s step needs 1m (raw is gone); a year back needs 1h.
    assert_eq!(
        db.resolution_for(Duration::from_secs(300), days_ago(30)),
        Resolution::OneMinute
    );
    assert_eq!(
        db.resolution_for(Duration::from_secs(15), days_ago(7)),
        Resolution::Raw
    );
    assert_eq!(
        db.resolution_for(Duration::from_secs(15), days_ago(100)),
        Resolution::OneMinute
    );
    assert_eq!(
        db.resolution_for(Duration::from_secs(60), days_ago(365)),
        Resolution::OneHour
    );
    db.close().unwrap();

    // Restart: the same answers.
    let db = Db::open(dir.path(), config()).unwrap();
    let got = rollup(
        &db,
        "m",
        days_ago(250),
        now,
        Resolution::OneMinute,
        Aggregate::Last,
    );
    assert_eq!(got, want_1m);
}

#[test]
fn late_data_re_rolls_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    let base = days_ago(2);
    let first = ramp(base, 2 * HOUR, 60 * S, 0.0);
    append(&db, "m", &first);
    db.flush().unwrap();
    assert_eq!(db.maintain().unwrap().rollup_blocks, 2);
    // A second series arrives late for the same windows, and so does an out-of-order
    // sample of the first (within its 10-minute window).
    let late = ramp(base + 30 * S, HOUR, 60 * S, 100.0);
    append(&db, "late", &late);
    let ooo = (base + 2 * HOUR - 150 * S, -7.5);
    append(&db, "m", &[ooo]);
    db.flush().unwrap();
    assert_eq!(db.maintain().unwrap().rollup_blocks, 2);
    let (mint, maxt) = (base, base + DAY);
    let mut first = first;
    first.push(ooo);
    first.sort_by_key(|x| x.0);
    check_all(&db, "m", &first, mint, maxt, "first series");
    check_all(&db, "late", &late, mint, maxt, "late series");
    // Overlapping rollup blocks compact into one without changing answers.
    for _ in 0..4 {
        db.maintain().unwrap();
    }
    check_all(&db, "late", &late, mint, maxt, "after compaction");
}

#[test]
fn resolution_for_step() {
    assert_eq!(
        Resolution::for_step(Duration::from_secs(15)),
        Resolution::Raw
    );
    assert_eq!(
        Resolution::for_step(Duration::from_secs(60)),
        Resolution::OneMinute
    );
    assert_eq!(
        Resolution::for_step(Duration::from_secs(3599)),
        Resolution::OneMinute
    );
    assert_eq!(
        Resolution::for_step(Duration::from_secs(7200)),
        Resolution::OneHour
    );
}

#[test]
fn histogram_rollups_merge_buckets_from_head_and_blocks() {
    use gmc_model::{Histogram, Span};
    let h = |k: f64| Histogram {
        schema: 0,
        count: 3.0 * k,
        sum: 10.0 * k,
        positive_spans: vec![Span {
            offset: 1,
            length: 2,
        }],
        positive_buckets: vec![k, 2.0 * k],
        ..Histogram::default()
    };
    let base = days_ago(2);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    // Four histograms per minute for two hours.
    for i in 0..480i64 {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "lat");
        s.label("host", "a");
        s.histogram(base + i * 15 * S, h((i % 4 + 1) as f64));
        s.finish().unwrap();
        assert!(db.append(&b).unwrap().rejected.is_empty());
    }
    let check = |db: &Db, what: &str| {
        let q = db.querier(base, base + DAY).unwrap();
        let got = q
            .select_rollup(
                &[Matcher::equal("__name__", "lat")],
                Resolution::OneMinute,
                Aggregate::HistogramSum,
            )
            .unwrap();
        assert_eq!(got.len(), 1, "{what}");
        let v: Vec<_> = got[0].iter().collect();
        assert_eq!(v.len(), 120, "{what}");
        for (j, x) in v.iter().enumerate() {
            assert_eq!(x.ts_nanos, base + (j as i64 + 1) * MIN, "{what}");
            let SampleValue::Histogram(m) = &x.value else {
                panic!("{what}: float")
            };
            // 1 + 2 + 3 + 4 = 10 times the unit histogram.
            assert_eq!(m.count, 30.0, "{what}");
            assert_eq!(m.sum, 100.0, "{what}");
            assert_eq!(m.positive_buckets, vec![10.0, 20.0], "{what}");
        }
        let counts = rollup(
            db,
            "lat",
            base,
            base + DAY,
            Resolution::OneHour,
            Aggregate::Count,
        );
        assert_eq!(
            counts,
            vec![(base + HOUR, 240.0), (base + 2 * HOUR, 240.0)],
            "{what}"
        );
    };
    check(&db, "from the head");
    db.flush().unwrap();
    assert_eq!(db.maintain().unwrap().rollup_blocks, 2);
    check(&db, "from rollup blocks");
}
