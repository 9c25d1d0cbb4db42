//! Native histogram series longer than one head chunk: read back bit-exactly from the head,
//! from a block after a flush and after a reopen (WAL replay), for fixed and random
//! sequences and chunk sizes, exponential and custom-bucket (NHCB) histograms mixed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gmc_model::{CounterResetHint, Histogram, Matcher, Span, WriteBatch, NANOS_PER_SEC};
use gmc_tsdb::{Config, Db, SampleValue, SyncPolicy};
use proptest::prelude::*;

const T0: i64 = 1_763_000_000 * NANOS_PER_SEC;

fn config(chunk_samples: usize) -> Config {
    Config {
        sync: SyncPolicy::Batch,
        chunk_samples,
        ..Config::default()
    }
}

/// A histogram whose spans change every few samples and whose counts grow, with a few
/// samples that have no buckets at all (the smallest records the codec writes).
fn hist(i: u32) -> Histogram {
    let n = i % 7;
    let positive_spans = if i % 11 == 5 {
        Vec::new()
    } else {
        vec![
            Span {
                offset: (i / 13) as i32 % 3 - 1,
                length: 1 + n % 3,
            },
            Span {
                offset: 2,
                length: n % 2,
            },
        ]
    };
    let total: u32 = positive_spans.iter().map(|s| s.length).sum();
    let positive_buckets = (0..total).map(|k| f64::from(i + k)).collect();
    Histogram {
        schema: if i % 50 < 25 { 3 } else { 2 },
        zero_threshold: 1e-128,
        zero_count: f64::from(i / 3),
        count: f64::from(4 * i + 1),
        sum: 0.25 * f64::from(i) + if i.is_multiple_of(9) { 0.1 } else { 0.0 },
        positive_spans,
        positive_buckets,
        negative_spans: Vec::new(),
        negative_buckets: Vec::new(),
        min: i.is_multiple_of(4).then_some(0.5),
        max: (!i.is_multiple_of(5)).then(|| f64::from(i) * 1.5),
        reset_hint: match i % 4 {
            0 => CounterResetHint::Unknown,
            1 => CounterResetHint::NotReset,
            2 => CounterResetHint::Reset,
            _ => CounterResetHint::Gauge,
        },
        custom_values: Vec::new(),
    }
}

/// A custom-bucket histogram whose bounds change every 40 samples (each change makes
/// the encoder state them again), with buckets up to the implied `+Inf` one.
fn nhcb(i: u32, bounds_seed: u32) -> Histogram {
    let nb = 1 + (bounds_seed % 4) as usize;
    let custom_values: Vec<f64> = (0..nb)
        .map(|k| f64::from(bounds_seed % 3) * 0.5 + k as f64 * 2.5 - 1.0)
        .collect();
    let len = (i % 3) + 1;
    let offset = (i / 3) % 2;
    let len = len.min(nb as u32 + 1 - offset);
    let positive_buckets: Vec<f64> = (0..len).map(|k| f64::from(i + 2 * k)).collect();
    Histogram {
        schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
        count: positive_buckets.iter().sum(),
        sum: f64::from(i) * 0.75,
        positive_spans: vec![Span {
            offset: offset as i32,
            length: len,
        }],
        positive_buckets,
        reset_hint: if i.is_multiple_of(5) {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        },
        custom_values,
        ..Histogram::default()
    }
}

fn append_all(db: &Db, samples: &[(i64, Histogram)]) {
    // A few samples per batch, as a scraper would send them.
    for part in samples.chunks(7) {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "lat");
        for (ts, h) in part {
            s.histogram(*ts, h.clone());
        }
        s.finish().unwrap();
        let r = db.append(&b).unwrap();
        assert_eq!(r.accepted_histograms, part.len(), "{:?}", r.rejected);
    }
}

fn read_back(db: &Db) -> Vec<(i64, Histogram)> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let got = q.select(&[Matcher::equal("__name__", "lat")]).unwrap();
    assert!(got.len() <= 1);
    got.into_iter()
        .flat_map(|s| s.into_parts().1)
        .map(|s| match s.value {
            SampleValue::Histogram(h) => (s.ts_nanos, (*h).clone()),
            SampleValue::Float(f) => panic!("float {f} in a histogram series"),
        })
        .collect()
}

fn assert_same(got: &[(i64, Histogram)], want: &[(i64, Histogram)], stage: &str) {
    assert_eq!(got.len(), want.len(), "{stage}: sample count");
    for ((t, h), (wt, wh)) in got.iter().zip(want) {
        assert_eq!(t, wt, "{stage}");
        let a = SampleValue::Histogram(h.clone().into());
        let b = SampleValue::Histogram(wh.clone().into());
        assert!(a.same_as(&b), "{stage} at {t}: {h:?} != {wh:?}");
    }
}

/// Head, then reopen (WAL replay), then flush to a block, then reopen again.
fn check_round_trip(samples: &[(i64, Histogram)], chunk_samples: usize) {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), config(chunk_samples)).unwrap();
        append_all(&db, samples);
        assert_same(&read_back(&db), samples, "head");
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), config(chunk_samples)).unwrap();
    assert_same(&read_back(&db), samples, "after WAL replay");
    db.flush().unwrap();
    assert_same(&read_back(&db), samples, "from block");
    db.close().unwrap();
    let db = Db::open(dir.path(), config(chunk_samples)).unwrap();
    assert_same(&read_back(&db), samples, "block after reopen");
    assert_eq!(db.metrics().replay_corruptions(), 0);
}

#[test]
fn histogram_series_longer_than_one_head_chunk_reads_back() {
    for n in [120u32, 121, 250, 1000] {
        let samples: Vec<(i64, Histogram)> = (0..n)
            .map(|i| (T0 + i64::from(i) * NANOS_PER_SEC, hist(i)))
            .collect();
        check_round_trip(&samples, 120);
    }
}

#[test]
fn custom_bucket_histograms_read_back_with_their_bounds() {
    // NHCB only, bounds changing every 40 samples; then NHCB and exponential alternating
    // in runs, so a chunk holds both kinds.
    let only: Vec<(i64, Histogram)> = (0..300u32)
        .map(|i| (T0 + i64::from(i) * NANOS_PER_SEC, nhcb(i, i / 40)))
        .collect();
    for (_, h) in &only {
        h.validate().unwrap();
    }
    check_round_trip(&only, 120);
    let mixed: Vec<(i64, Histogram)> = (0..300u32)
        .map(|i| {
            let h = if (i / 17) % 2 == 0 {
                nhcb(i, i / 30)
            } else {
                hist(i)
            };
            (T0 + i64::from(i) * NANOS_PER_SEC, h)
        })
        .collect();
    check_round_trip(&mixed, 50);
}

#[test]
fn identical_histograms_without_buckets_read_back() {
    // Same schema, same (empty) spans, unchanged counts: 4-byte records.
    let h = Histogram {
        zero_count: 3.0,
        count: 3.0,
        sum: 1.0,
        ..Histogram::default()
    };
    let samples: Vec<(i64, Histogram)> = (0..500)
        .map(|i| (T0 + i * 10 * NANOS_PER_SEC, h.clone()))
        .collect();
    check_round_trip(&samples, 120);
}

fn arb_hist() -> impl Strategy<Value = Histogram> {
    // Empty spans half the time: bucketless repeats make the smallest records.
    let spans = prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec((-3i32..4, 0u32..4), 1..3)
    ];
    (
        (0u32..3, spans.clone(), spans),
        (0u32..1000, 0u32..1000, prop_oneof![Just(0.0), -1e6f64..1e6]),
        (any::<bool>(), any::<bool>(), 0u8..4),
        any::<u64>(),
    )
        .prop_map(
            |((schema, ps, ns), (zc, c, sum), (hmin, hmax, hint), seed)| {
                let to_spans = |v: Vec<(i32, u32)>| -> Vec<Span> {
                    v.into_iter()
                        .map(|(offset, length)| Span { offset, length })
                        .collect()
                };
                let (ps, ns) = (to_spans(ps), to_spans(ns));
                let buckets = |spans: &[Span], salt: u64| -> Vec<f64> {
                    let n: u32 = spans.iter().map(|s| s.length).sum();
                    (0..u64::from(n))
                        .map(|k| {
                            let x = seed.rotate_left((k + salt) as u32) % 1000;
                            // Mostly integers; now and then a fraction (raw-bits path).
                            if x % 17 == 0 {
                                x as f64 + 0.5
                            } else {
                                x as f64
                            }
                        })
                        .collect()
                };
                Histogram {
                    schema: schema as i32,
                    zero_threshold: if seed % 5 == 0 { 0.0 } else { 1e-128 },
                    zero_count: f64::from(zc),
                    count: f64::from(c),
                    sum,
                    positive_buckets: buckets(&ps, 0),
                    positive_spans: ps,
                    negative_buckets: buckets(&ns, 32),
                    negative_spans: ns,
                    min: hmin.then_some(-0.5),
                    max: hmax.then_some(f64::from(c) * 2.0),
                    reset_hint: match hint {
                        0 => CounterResetHint::Unknown,
                        1 => CounterResetHint::Reset,
                        2 => CounterResetHint::NotReset,
                        _ => CounterResetHint::Gauge,
                    },
                    custom_values: Vec::new(),
                }
            },
        )
}

/// Either an exponential histogram or a custom-bucket one.
fn arb_any_hist() -> impl Strategy<Value = Histogram> {
    prop_oneof![
        3 => arb_hist(),
        1 => (0u32..500, 0u32..6).prop_map(|(i, seed)| nhcb(i, seed)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn random_histogram_sequences_read_back(
        chunk_samples in 8usize..200,
        // Runs of a repeated histogram make the smallest records; steps vary the intervals.
        seq in proptest::collection::vec((arb_any_hist(), 1usize..40, 1i64..30), 1..20),
    ) {
        let mut samples = Vec::new();
        let mut ts = T0;
        for (h, repeat, step) in seq {
            for _ in 0..repeat {
                samples.push((ts, h.clone()));
                ts += step * NANOS_PER_SEC;
            }
        }
        check_round_trip(&samples, chunk_samples);
    }
}
