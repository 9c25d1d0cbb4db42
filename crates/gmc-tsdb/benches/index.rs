//! Select latency of the head index (`MemPostings`) and the on-disk block index over a
//! peerbench-like label set: 20 services × (200 pairs × 6 + 20 histograms × 14 + 5 venues
//! × 2 + 4 hosts × 3) = 30,040 series with job, env, region, service, instance, pair,
//! venue, status/quantile/le labels.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use gmc_model::{Labels, MatchOp, Matcher};
use gmc_tsdb::index::{self, ChunkMeta, LabelIndex, MemPostings, Reader};

const KINDS: [&str; 5] = ["oms", "risk", "mdfeed", "gateway", "router"];
const REGIONS: [&str; 3] = ["ld4", "ny4", "ty3"];
const VENUES: [&str; 5] = ["binance", "okx", "coinbase", "kraken", "bybit"];
const LE: [&str; 12] = [
    "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "+Inf",
];

fn peerlike_series() -> Vec<Labels> {
    let mut out = Vec::with_capacity(30_040);
    for s in 0..20 {
        let service = format!("{}-{}", KINDS[s % 5], s / 5);
        let base = |name: &str, extra: Vec<(&str, String)>| {
            let mut v: Vec<(&str, String)> = vec![
                ("__name__", name.to_owned()),
                ("job", "hft".into()),
                ("env", "prod".into()),
                ("region", REGIONS[s % 3].into()),
                ("service", service.clone()),
            ];
            v.extend(extra);
            Labels::from_pairs(v)
        };
        for p in 0..200 {
            let common = || {
                vec![
                    ("pair", format!("P{p}-USD")),
                    ("venue", VENUES[p % 5].to_owned()),
                    ("instance", format!("10.0.{s}.{}:9100", p % 4)),
                ]
            };
            let with = |k: &'static str, v: &str| {
                let mut c = common();
                c.push((k, v.to_owned()));
                c
            };
            out.push(base("hft_orders_total", with("status", "filled")));
            out.push(base("hft_orders_total", with("status", "rejected")));
            out.push(base("hft_trades_total", common()));
            out.push(base("hft_order_latency_us", with("quantile", "0.5")));
            out.push(base("hft_order_latency_us", with("quantile", "0.99")));
            out.push(base("hft_pnl_usd", common()));
            if p < 20 {
                for le in LE {
                    out.push(base("hft_order_rtt_us_bucket", with("le", le)));
                }
                out.push(base("hft_order_rtt_us_sum", common()));
                out.push(base("hft_order_rtt_us_count", common()));
            }
        }
        for (v, venue) in VENUES.iter().enumerate() {
            let l = || {
                vec![
                    ("venue", (*venue).to_owned()),
                    ("instance", format!("10.0.{s}.{}:9100", v % 4)),
                ]
            };
            out.push(base("hft_venue_connected", l()));
            out.push(base("hft_venue_ws_reconnects_total", l()));
        }
        for i in 0..4 {
            let l = || vec![("instance", format!("10.0.{s}.{i}:9100"))];
            out.push(base("hft_process_cpu_ratio", l()));
            out.push(base("hft_process_resident_memory_bytes", l()));
            out.push(base("hft_go_gc_pause_seconds_total", l()));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn queries() -> Vec<(&'static str, Vec<Matcher>)> {
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap_or_else(|e| panic!("{e}"));
    vec![
        ("service_eq", vec![m(MatchOp::Equal, "service", "oms-1")]),
        (
            "name_and_venue_set",
            vec![
                m(MatchOp::Equal, "__name__", "hft_orders_total"),
                m(MatchOp::Regex, "venue", "binance|okx"),
            ],
        ),
        ("name_any", vec![m(MatchOp::Regex, "__name__", ".+")]),
    ]
}

fn bench_select(c: &mut Criterion) {
    let series = peerlike_series();
    assert_eq!(series.len(), 30_040);
    let mem = MemPostings::new();
    for (i, l) in series.iter().enumerate() {
        mem.add(i as u32, l);
    }
    let input: Vec<(Labels, Vec<ChunkMeta>)> = series
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let meta = ChunkMeta {
                mint_nanos: 0,
                maxt_nanos: 7_200_000_000_000,
                chunk_ref: (1 << 32) | (8 + 300 * i as u64),
            };
            (l.clone(), vec![meta])
        })
        .collect();
    let bytes = index::encode(&input).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "index: {} series, {} bytes ({:.1} B/series)",
        input.len(),
        bytes.len(),
        bytes.len() as f64 / input.len() as f64
    );
    let disk =
        Reader::from_bytes(bytes.clone(), Path::new("bench")).unwrap_or_else(|e| panic!("{e}"));
    for (name, ms) in queries() {
        let n = mem.select(&ms).unwrap_or_default().len();
        assert_eq!(disk.select(&ms).unwrap_or_default().len(), n);
        eprintln!("{name}: {n} series");
        c.bench_function(&format!("mem_select/{name}"), |b| {
            b.iter(|| black_box(mem.select(black_box(&ms))))
        });
        c.bench_function(&format!("disk_select/{name}"), |b| {
            b.iter(|| black_box(disk.select(black_box(&ms))))
        });
    }
    c.bench_function("disk_open/30040", |b| {
        b.iter(|| black_box(Reader::from_bytes(bytes.clone(), Path::new("bench"))))
    });
}

criterion_group!(benches, bench_select);
criterion_main!(benches);
