//! Encoding a 10 k-series text exposition (10 exchanges × 100 symbols × 10 strategies)
//! with gmc-client, `prometheus-client`, `prometheus` and `metrics-exporter-prometheus`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

fn label_sets() -> Vec<[String; 3]> {
    let mut v = Vec::with_capacity(10_000);
    for e in 0..10 {
        for s in 0..100 {
            for st in 0..10 {
                v.push([
                    format!("exch{e}"),
                    format!("SYM{s:03}USDT"),
                    format!("strat_{st}"),
                ]);
            }
        }
    }
    v
}

fn scrape(c: &mut Criterion) {
    let sets = label_sets();
    let mut g = c.benchmark_group("encode_10k_series");

    let reg = gmc_client::Registry::new();
    for (i, [e, s, st]) in sets.iter().enumerate() {
        reg.counter_with(
            "orders",
            "Orders.",
            &[("exchange", e), ("symbol", s), ("strategy", st)],
        )
        .unwrap()
        .add(i as u64);
    }
    let mut buf = Vec::with_capacity(1 << 20);
    g.bench_function("gmc_text", |b| {
        b.iter(|| {
            buf.clear();
            reg.encode(gmc_client::Format::Prometheus, &mut buf);
            buf.len()
        })
    });

    let mut pcr = prometheus_client::registry::Registry::default();
    type L = Vec<(String, String)>;
    let fam = prometheus_client::metrics::family::Family::<
        L,
        prometheus_client::metrics::counter::Counter,
    >::default();
    pcr.register("orders", "Orders.", fam.clone());
    for (i, [e, s, st]) in sets.iter().enumerate() {
        fam.get_or_create(&vec![
            ("exchange".into(), e.clone()),
            ("symbol".into(), s.clone()),
            ("strategy".into(), st.clone()),
        ])
        .inc_by(i as u64);
    }
    g.bench_function("prometheus_client_text", |b| {
        b.iter(|| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &pcr).unwrap();
            out.len()
        })
    });

    let pr = prometheus::Registry::new();
    let v = prometheus::IntCounterVec::new(
        prometheus::Opts::new("orders_total", "Orders."),
        &["exchange", "symbol", "strategy"],
    )
    .unwrap();
    pr.register(Box::new(v.clone())).unwrap();
    for (i, [e, s, st]) in sets.iter().enumerate() {
        v.with_label_values(&[e.as_str(), s.as_str(), st.as_str()])
            .inc_by(i as u64);
    }
    g.bench_function("prometheus_text", |b| {
        b.iter(|| {
            use prometheus::Encoder as _;
            let mut out = Vec::new();
            prometheus::TextEncoder::new()
                .encode(&pr.gather(), &mut out)
                .unwrap();
            out.len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = scrape
}
criterion_main!(benches);
