//! Hot-path costs of gmc-client next to `prometheus`, `prometheus-client`, `metrics` and
//! raw-atomic baselines, one criterion run: counter/gauge on a handle (1 and 2 threads on
//! one metric), histogram record (1 and 2 threads), timed span, 3-label dynamic lookup.
//! Two-thread figures are per-thread time per op (each thread's wall time / its ops).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};

#[repr(align(128))]
struct Padded(AtomicU64);

/// 4096 latencies, log-uniform between 100 ns and 1 ms (xorshift, fixed seed).
fn latencies_ns() -> &'static [u64; 4096] {
    static V: OnceLock<[u64; 4096]> = OnceLock::new();
    V.get_or_init(|| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        std::array::from_fn(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (100.0 * 10f64.powf(4.0 * u)) as u64
        })
    })
}

fn latencies_s() -> &'static [f64; 4096] {
    static V: OnceLock<[f64; 4096]> = OnceLock::new();
    V.get_or_init(|| std::array::from_fn(|i| latencies_ns()[i] as f64 * 1e-9))
}

fn st(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: impl Fn(u64)) {
    g.bench_function(format!("{name}/st"), |b| {
        let mut i = 0u64;
        b.iter(|| {
            f(black_box(i));
            i = i.wrapping_add(1);
        })
    });
}

fn mt2(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: impl Fn(u64) + Sync) {
    g.bench_function(format!("{name}/mt2"), |b| {
        b.iter_custom(|iters| {
            let barrier = Barrier::new(2);
            let total: Duration = std::thread::scope(|s| {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            gmc_client::prepare_thread();
                            barrier.wait();
                            let t = Instant::now();
                            for i in 0..iters {
                                f(black_box(i));
                            }
                            t.elapsed()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            });
            total / 2
        })
    });
}

fn both(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: impl Fn(u64) + Sync) {
    st(g, name, &f);
    mt2(g, name, &f);
}

fn metrics_recorder() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static H: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        let rec = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&(0..24).map(|k| 1e-7 * 2f64.powi(k)).collect::<Vec<_>>())
            .unwrap()
            .build_recorder();
        let h = rec.handle();
        metrics::set_global_recorder(rec).unwrap();
        h
    })
}

fn counters(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_inc");
    let reg = gmc_client::Registry::new();
    let ours = reg.counter("bench_counter", "x").unwrap();
    both(&mut g, "gmc", |_| ours.inc());
    let own_line = [Padded(AtomicU64::new(0)), Padded(AtomicU64::new(0))];
    st(&mut g, "raw_load_store_own_line", |_| {
        let c = &own_line[0].0;
        c.store(c.load(Relaxed) + 1, Relaxed)
    });
    // Per-thread baseline: each thread bumps its own padded cell (index from a TLS slot).
    thread_local! {
        static IDX: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    mt2(&mut g, "raw_load_store_per_thread_cell", |_| {
        let i = IDX.with(|c| {
            if c.get() == usize::MAX {
                c.set(NEXT.fetch_add(1, Relaxed) & 1);
            }
            c.get()
        });
        let c = &own_line[i].0;
        c.store(c.load(Relaxed) + 1, Relaxed)
    });
    let shared = Padded(AtomicU64::new(0));
    both(&mut g, "raw_fetch_add_shared_line", |_| {
        shared.0.fetch_add(1, Relaxed);
    });
    let p = prometheus::IntCounter::new("p", "x").unwrap();
    both(&mut g, "prometheus", |_| p.inc());
    let pc = prometheus_client::metrics::counter::Counter::<u64>::default();
    both(&mut g, "prometheus_client", |_| {
        pc.inc();
    });
    metrics_recorder();
    let m = metrics::counter!("m_counter");
    both(&mut g, "metrics", |_| m.increment(1));
    g.finish();

    let mut g = c.benchmark_group("gauge_set");
    let ours = reg.gauge("bench_gauge", "x").unwrap();
    both(&mut g, "gmc", |i| ours.set(i as i64));
    let adder = reg.fixed_adder_with("bench_adder", "x", &[], 8).unwrap();
    both(&mut g, "gmc_fixed_adder_add", |i| adder.add(i as i64));
    let p = prometheus::IntGauge::new("pg", "x").unwrap();
    both(&mut g, "prometheus", |i| p.set(i as i64));
    let pc = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    both(&mut g, "prometheus_client", |i| {
        pc.set(i as i64);
    });
    let m = metrics::gauge!("m_gauge");
    both(&mut g, "metrics", |i| m.set(i as f64));
    g.finish();
}

fn histograms(c: &mut Criterion) {
    let ns = latencies_ns();
    let s = latencies_s();
    let mut g = c.benchmark_group("histogram_record");
    let reg = gmc_client::Registry::new();
    let ours = reg.histogram("bench_hist_seconds", "x").unwrap();
    both(&mut g, "gmc", |i| ours.record(ns[(i & 4095) as usize]));
    // The physical baseline of client-anchors.md: a per-thread log-linear shard (32
    // sub-buckets per octave, index from `leading_zeros`), bumping bucket and sum with
    // single-writer load + store; no min/max, ~3 % bucket width. Each thread its own shard.
    thread_local! {
        static SKETCH: Box<[AtomicU64; 2049]> =
            Box::new(std::array::from_fn(|_| AtomicU64::new(0)));
    }
    both(&mut g, "reference_per_thread_sketch", |i| {
        let v = ns[(i & 4095) as usize] | 1;
        let lz = v.leading_zeros() as usize;
        let idx = ((63 - lz) << 5) | ((v << lz >> 58) & 31) as usize;
        SKETCH.with(|s| {
            let b = &s[idx];
            b.store(b.load(Relaxed) + 1, Relaxed);
            s[2048].store(s[2048].load(Relaxed).wrapping_add(v), Relaxed);
        })
    });
    let p = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("ph", "x")
            .buckets(prometheus::exponential_buckets(1e-7, 2.0, 24).unwrap()),
    )
    .unwrap();
    both(&mut g, "prometheus_24exp", |i| {
        p.observe(s[(i & 4095) as usize])
    });
    let pc = prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(1e-7, 2.0, 24),
    );
    both(&mut g, "prometheus_client_24exp", |i| {
        pc.observe(s[(i & 4095) as usize])
    });
    metrics_recorder();
    let m = metrics::histogram!("m_hist");
    both(&mut g, "metrics", |i| m.record(s[(i & 4095) as usize]));
    g.finish();

    let mut g = c.benchmark_group("timed_span");
    gmc_client::clock::calibrate();
    st(&mut g, "gmc_tsc_span", |_| {
        let _s = ours.start();
    });
    st(&mut g, "gmc_instant_span", |_| {
        ours.record_since_instant(Instant::now())
    });
    st(&mut g, "gmc_two_reads_and_scale_no_record", |_| {
        let a = gmc_client::clock::now();
        black_box(gmc_client::clock::ticks_to_nanos(
            a,
            gmc_client::clock::now(),
        ));
    });
    st(&mut g, "gmc_record_ticks_precomputed", |i| {
        ours.record_ticks(
            gmc_client::clock::Ticks(1000),
            gmc_client::clock::Ticks(1000 + (i & 0xffff)),
        );
    });
    let clock = quanta::Clock::new();
    st(&mut g, "baseline_two_tsc_reads", |_| {
        let a = clock.raw();
        black_box(clock.raw().wrapping_sub(a));
    });
    st(&mut g, "baseline_instant_now_elapsed", |_| {
        black_box(Instant::now().elapsed());
    });
    g.finish();
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("dynamic_3_labels_inc");
    let reg = gmc_client::Registry::new();
    let fam = reg
        .counter_family("bench_dyn", "x", &["exchange", "symbol", "strategy"], 4096)
        .unwrap();
    for k in 0..1000 {
        fam.with(&["ex", &format!("sym{k}"), "s"]).inc();
    }
    both(&mut g, "gmc", |_| {
        fam.with(&["binance", "BTCUSDT", "mm_v2"]).inc()
    });
    let p = prometheus::IntCounterVec::new(
        prometheus::Opts::new("pv", "x"),
        &["exchange", "symbol", "strategy"],
    )
    .unwrap();
    for k in 0..1000 {
        p.with_label_values(&["ex", &format!("sym{k}"), "s"]).inc();
    }
    both(&mut g, "prometheus", |_| {
        p.with_label_values(&["binance", "BTCUSDT", "mm_v2"]).inc()
    });
    type L = Vec<(String, String)>;
    let pc = prometheus_client::metrics::family::Family::<
        L,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let mk = |s: &str| -> L {
        vec![
            ("exchange".into(), "binance".into()),
            ("symbol".into(), s.into()),
            ("strategy".into(), "mm_v2".into()),
        ]
    };
    for k in 0..1000 {
        pc.get_or_create(&mk(&format!("sym{k}"))).inc();
    }
    let key = mk("BTCUSDT");
    both(&mut g, "prometheus_client_prebuilt_labels", |_| {
        pc.get_or_create(&key).inc();
    });
    metrics_recorder();
    both(&mut g, "metrics_macro", |_| {
        metrics::counter!("m_dyn", "exchange" => "binance", "symbol" => "BTCUSDT", "strategy" => "mm_v2")
            .increment(1)
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = counters, histograms, lookups
}
criterion_main!(benches);
