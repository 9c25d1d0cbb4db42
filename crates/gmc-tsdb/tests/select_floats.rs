//! `Querier::select_floats` returns what `Querier::select` does, in compact form for
//! float-only series, and `Querier::select_latest` the newest sample of each series in the
//! lookback window (and `select_floats_lazy`, decoded, what `select_floats` does): over the head, blocks, out-of-order samples and mixed series, for
//! random ranges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gmc_model::{Histogram, Matcher, WriteBatch, NANOS_PER_SEC};
use gmc_tsdb::{Config, Db, Querier, SampleValue, Selected, SyncPolicy};
use proptest::prelude::*;

const T0: i64 = 1_763_000_000 * NANOS_PER_SEC;

/// A store in a fresh directory (kept alive by the returned guard) with head chunks of
/// `chunk_samples` and no fsyncs.
fn open_db(chunk_samples: usize) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Config {
            sync: SyncPolicy::None,
            chunk_samples,
            ..Config::default()
        },
    )
    .unwrap();
    (dir, db)
}

fn append(db: &Db, series: u32, ts: i64, v: Option<f64>) {
    let mut b = WriteBatch::new();
    let mut s = b.series();
    s.label("__name__", "m");
    s.label("i", series.to_string());
    match v {
        Some(f) => s.float(ts, f),
        None => s.histogram(
            ts,
            Histogram {
                count: 1.0,
                ..Histogram::default()
            },
        ),
    }
    s.finish().unwrap();
    db.append(&b).unwrap();
}

/// Series as `(labels, [(ts, value bits or `u64::MAX` for a histogram)])`.
type Listing = Vec<(String, Vec<(i64, u64)>)>;

/// A `Selected` list as a comparable listing (histograms as `u64::MAX`).
fn listing(sel: &[Selected]) -> Listing {
    sel.iter()
        .map(|s| {
            let v: Vec<(i64, u64)> = match s {
                Selected::Floats(f) => f.samples().iter().map(|&(t, v)| (t, v.to_bits())).collect(),
                Selected::Samples(x) => x
                    .samples()
                    .iter()
                    .map(|x| match x.value {
                        SampleValue::Float(f) => (x.ts_nanos, f.to_bits()),
                        SampleValue::Histogram(_) => (x.ts_nanos, u64::MAX),
                    })
                    .collect(),
            };
            (format!("{:?}", s.labels()), v)
        })
        .collect()
}

/// `select_floats_lazy` with every series decoded, empty ones dropped.
fn lazy(q: &Querier, unit: i64) -> Vec<Selected> {
    q.select_floats_lazy(&[Matcher::equal("__name__", "m")], unit)
        .unwrap()
        .into_iter()
        .filter_map(|s| s.decode().unwrap())
        .collect()
}

/// Both selects, as comparable `(labels, [(ts, value bits or MAX for a histogram)])`.
fn both(q: &Querier) -> (Listing, Listing) {
    let m = [Matcher::equal("__name__", "m")];
    let bits = |v: &SampleValue| match v {
        SampleValue::Float(f) => f.to_bits(),
        SampleValue::Histogram(_) => u64::MAX,
    };
    let a = q
        .select(&m)
        .unwrap()
        .iter()
        .map(|s| {
            let v = s.samples().iter().map(|x| (x.ts_nanos, bits(&x.value)));
            (format!("{:?}", s.labels()), v.collect())
        })
        .collect();
    let floats = q.select_floats(&m).unwrap();
    let b = listing(&floats);
    assert_eq!(listing(&lazy(q, 1)), b, "lazy select differs");
    for (s, (_, v)) in floats.iter().zip(&b) {
        if let Selected::Samples(_) = s {
            assert!(
                v.iter().any(|x| x.1 == u64::MAX),
                "float-only series not compact"
            );
        }
    }
    (a, b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn select_floats_matches_select(
        // (series, tick, value; None = histogram, flush after this sample)
        ops in proptest::collection::vec(
            (0u32..4, 0i64..400, prop_oneof![9 => any::<f64>().prop_map(Some), 1 => Just(None)], prop::bool::weighted(0.02)),
            1..300,
        ),
        lo in 0i64..400,
        len in 0i64..400,
    ) {
        let (_dir, db) = open_db(16);
        for (series, tick, v, flush) in ops {
            // Rejections (duplicates, kind changes) are fine: both selects see the same data.
            append(&db, series, T0 + tick * NANOS_PER_SEC, v);
            if flush {
                db.flush().unwrap();
            }
        }
        let mint = T0 + lo * NANOS_PER_SEC;
        let q = db.querier(mint, mint + len * NANOS_PER_SEC).unwrap();
        let (a, b) = both(&q);
        prop_assert_eq!(a, b);
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let (a, b) = both(&q);
        prop_assert_eq!(a, b);

        // The newest sample in (t - lookback, t], from `select` over that window.
        let (t, lookback) = (mint + len * NANOS_PER_SEC, (lo % 50 + 1) * NANOS_PER_SEC);
        let want: Listing = both(&db.querier(t - lookback + 1, t).unwrap())
            .0
            .into_iter()
            .map(|(l, mut v)| {
                let last = v.pop().unwrap();
                (l, vec![last])
            })
            .collect();
        let got = listing(
            &q.select_latest(&[Matcher::equal("__name__", "m")], t, lookback)
                .unwrap(),
        );
        prop_assert_eq!(got, want);
    }
}

/// Many series (enough for the store to decode them on several threads), spread over a
/// block and the head, with nanosecond timestamps: `select_floats_in` in milliseconds is
/// `select` with every timestamp floored to the millisecond, in the same order.
#[test]
fn select_floats_in_milliseconds_matches_select_over_many_series() {
    let (_dir, db) = open_db(16);
    let ns = |series: u32, tick: i64| T0 + tick * NANOS_PER_SEC + i64::from(series) * 1_234_567;
    for tick in 0..60 {
        if tick == 30 {
            db.flush().unwrap();
        }
        for series in 0..600u32 {
            // Every 7th series has a histogram, so both result kinds cross the threads.
            let v = (series % 7 != 0 || tick % 2 == 0).then_some(f64::from(series) + tick as f64);
            append(&db, series, ns(series, tick), v);
        }
    }
    let m = [Matcher::equal("__name__", "m")];
    let q = db.querier(ns(0, 10), ns(0, 50)).unwrap();
    let ms = gmc_model::NANOS_PER_MILLI;
    let want: Listing = both(&q)
        .0
        .into_iter()
        .map(|(l, v)| {
            (
                l,
                v.into_iter().map(|(t, b)| (t.div_euclid(ms), b)).collect(),
            )
        })
        .collect();
    let got = listing(&q.select_floats_in(&m, ms).unwrap());
    assert_eq!(got.len(), 600);
    assert_eq!(got, want);
    assert_eq!(listing(&lazy(&q, ms)), want);
}

/// Long block chunks (1,000 samples: seek points at 256, 512 and 768) of series sampled
/// at the same jittered instants, so the block stores their timestamps once and readers
/// decode them once: for windows that start before, on and between the seek points,
/// `select_floats` (values from the seek point, shared timestamps) returns what `select`
/// (every sample decoded) does.
#[test]
fn windows_inside_long_shared_timestamp_chunks_match_select() {
    let (_dir, db) = open_db(Config::default().chunk_samples);
    let ts = |tick: i64| T0 + tick * NANOS_PER_SEC + if tick % 8 == 3 { 1_000_000 } else { 0 };
    for tick in 0..1000i64 {
        for series in 0..12u32 {
            // Counters, decimal gauges and full-precision gauges: each integer mode.
            let v = match series % 3 {
                0 => (tick * (i64::from(series) + 1) + tick * tick % 7) as f64,
                1 => ((tick * 37 + i64::from(series)) % 1000) as f64 / 100.0,
                _ => 1.0 + (tick as f64).sin() / 3.0,
            };
            append(&db, series, ts(tick), Some(v));
        }
    }
    db.flush().unwrap();
    let m = [Matcher::equal("__name__", "m")];
    for (lo, hi) in [
        (0, 999),
        (255, 999),
        (256, 300),
        (257, 999),
        (600, 700),
        (767, 999),
        (990, 999),
        (999, 999),
    ] {
        let q = db.querier(ts(lo), ts(hi)).unwrap();
        let (want, _) = both(&q);
        let got = listing(&q.select_floats(&m).unwrap());
        assert_eq!(got.len(), 12, "window {lo}..={hi}");
        assert!(
            got.iter().all(|(_, v)| v.len() == (hi - lo + 1) as usize),
            "window {lo}..={hi}"
        );
        assert_eq!(got, want, "window {lo}..={hi}");
    }
}
