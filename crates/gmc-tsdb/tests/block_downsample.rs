//! Rollup blocks from a raw block: float aggregates on a known counter series and merged
//! histograms, read back through the chunk decoder.

// Test helpers outside `#[test]` fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gmc_model::{Histogram, Labels, Matcher, Span};
use gmc_tsdb::block::{Block, ChunkData, Resolution, Writer};
use gmc_tsdb::chunk;
use gmc_tsdb::downsample::{self, ROLLUP_LABEL};
use gmc_tsdb::querier::{Sample, SampleValue};

const S: i64 = 1_000_000_000;

fn read(b: &Block, name: &str, agg: &str) -> Vec<Sample> {
    let sel = b
        .select(&[
            Matcher::equal("__name__", name),
            Matcher::equal(ROLLUP_LABEL, agg),
        ])
        .unwrap();
    assert_eq!(sel.len(), 1, "{name} {agg}");
    let mut out = Vec::new();
    for m in &sel[0].1 {
        let c = b.read_chunk(m).unwrap();
        out.extend(chunk::decode_all(c.encoding, &c.bytes).unwrap());
    }
    out
}

fn floats(v: &[Sample]) -> Vec<(i64, f64)> {
    v.iter()
        .map(|s| match s.value {
            SampleValue::Float(f) => (s.ts_nanos, f),
            SampleValue::Histogram(_) => panic!("histogram"),
        })
        .collect()
}

fn hist(count: f64) -> Histogram {
    Histogram {
        schema: 0,
        count,
        sum: count * 2.0,
        positive_spans: vec![Span {
            offset: 1,
            length: 1,
        }],
        positive_buckets: vec![count],
        ..Histogram::default()
    }
}

#[test]
fn one_minute_rollup_of_a_counter_and_a_histogram() {
    let dir = tempfile::tempdir().unwrap();
    // Counter: +1 every 10 s for 3 minutes, reset to 0 at t=100 s.
    let counter: Vec<(i64, f64)> = (0..18)
        .map(|i| {
            let v = if i < 10 { i as f64 } else { (i - 10) as f64 };
            (i * 10 * S, v)
        })
        .collect();
    let hists: Vec<(i64, Histogram)> = (0..6).map(|i| (i * 20 * S, hist(i as f64 + 1.0))).collect();
    let mut w = Writer::new(dir.path(), Resolution::Raw).unwrap();
    let (enc, bytes) = chunk::encode_floats(&counter);
    w.add_series(
        &Labels::from_pairs([("__name__", "orders_total")]),
        &[ChunkData {
            mint_nanos: 0,
            maxt_nanos: 170 * S,
            encoding: enc,
            num_samples: 18,
            bytes: &bytes,
        }],
    )
    .unwrap();
    let hrefs: Vec<(i64, &Histogram)> = hists.iter().map(|(t, h)| (*t, h)).collect();
    let (henc, hbytes) = chunk::encode_histograms(&hrefs);
    w.add_series(
        &Labels::from_pairs([("__name__", "latency")]),
        &[ChunkData {
            mint_nanos: 0,
            maxt_nanos: 100 * S,
            encoding: henc,
            num_samples: 6,
            bytes: &hbytes,
        }],
    )
    .unwrap();
    let raw_meta = w.finish().unwrap();
    let raw = Block::open(&dir.path().join(&raw_meta.id)).unwrap();

    let out = dir.path().join("rollups");
    let meta = downsample::downsample(&raw, Resolution::OneMinute, &out)
        .unwrap()
        .unwrap();
    assert_eq!(meta.resolution, Resolution::OneMinute);
    let b = Block::open(&out.join(&meta.id)).unwrap();
    b.verify().unwrap();

    // Buckets [0,60): 0..5, [60,120): 6..9,0,1, [120,180): 2..7.
    let ts = [60 * S, 120 * S, 180 * S];
    let zip = |v: [f64; 3]| ts.iter().copied().zip(v).collect::<Vec<_>>();
    assert_eq!(
        floats(&read(&b, "orders_total", "min")),
        zip([0.0, 0.0, 2.0])
    );
    assert_eq!(
        floats(&read(&b, "orders_total", "max")),
        zip([5.0, 9.0, 7.0])
    );
    assert_eq!(
        floats(&read(&b, "orders_total", "sum")),
        zip([15.0, 31.0, 27.0])
    );
    assert_eq!(
        floats(&read(&b, "orders_total", "count")),
        zip([6.0, 6.0, 6.0])
    );
    assert_eq!(
        floats(&read(&b, "orders_total", "last")),
        zip([5.0, 1.0, 7.0])
    );
    // Increase: 0→5 is 5; then 5→6..9 (+4, the step across the boundary counts in the
    // later bucket), reset to 0 (+0: the counter restarted at 0), 0→1 (+1) is 5; then
    // 1→2..7 is 6. Total 16 = 9 before the reset + 7 after.
    assert_eq!(
        floats(&read(&b, "orders_total", "increase")),
        zip([5.0, 5.0, 6.0])
    );
    let total_increase: f64 = floats(&read(&b, "orders_total", "increase"))
        .iter()
        .map(|x| x.1)
        .sum();
    assert_eq!(total_increase, 16.0);

    // Histograms at 0,20,40 | 60,80,100 with counts 1,2,3 | 4,5,6.
    let hs = read(&b, "latency", "hsum");
    let merged: Vec<(i64, Arc<Histogram>)> = hs
        .into_iter()
        .map(|s| match s.value {
            SampleValue::Histogram(h) => (s.ts_nanos, h),
            SampleValue::Float(_) => panic!("float"),
        })
        .collect();
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].0, 60 * S);
    assert_eq!(merged[0].1.count, 6.0);
    assert_eq!(merged[1].1.count, 15.0);
    assert_eq!(merged[1].1.positive_buckets, vec![15.0]);
    assert_eq!(merged[1].1.sum, 30.0);
    let last = read(&b, "latency", "hlast");
    assert!(matches!(&last[1].value, SampleValue::Histogram(h) if h.count == 6.0));
    assert_eq!(
        floats(&read(&b, "latency", "count")),
        vec![(60 * S, 3.0), (120 * S, 3.0)]
    );

    // A 1h rollup has one bucket per series.
    let meta_h = downsample::downsample(&raw, Resolution::OneHour, &out)
        .unwrap()
        .unwrap();
    let bh = Block::open(&out.join(&meta_h.id)).unwrap();
    assert_eq!(
        floats(&read(&bh, "orders_total", "increase")),
        vec![(3600 * S, 16.0)]
    );
    assert_eq!(
        floats(&read(&bh, "orders_total", "count")),
        vec![(3600 * S, 18.0)]
    );
}
