//! Fuzz PromQL: any query text is parsed (the vendored parser, with gmc's additions: trim
//! operators, `anchored`/`smoothed`) and, when it parses, evaluated against a small store
//! of floats, a counter with a reset, and exponential and custom-bucket histograms. Must
//! never panic; errors are fine. Limits keep every evaluation small and short.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use gmc_model::{Histogram, Span, WriteBatch};
use gmc_promql::{Engine, EngineOptions};
use gmc_tsdb::{Config, Db, SyncPolicy};
use libfuzzer_sys::fuzz_target;

const MIN_MS: i64 = 60_000;

fn store() -> &'static (Db, Engine) {
    static STORE: OnceLock<(Db, Engine)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gmc-fuzz-promql-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Db::open(
            &dir,
            Config {
                sync: SyncPolicy::None,
                ..Config::default()
            },
        )
        .expect("open the fuzz store");
        let mut b = WriteBatch::new();
        let exp = |k: f64| Histogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: k,
            count: 4.0 * k,
            sum: 6.0 * k,
            positive_spans: vec![Span { offset: 0, length: 2 }],
            positive_buckets: vec![k, k],
            negative_spans: vec![Span { offset: 0, length: 1 }],
            negative_buckets: vec![k],
            ..Histogram::default()
        };
        for (name, job) in [("up", "a"), ("req_total", "a"), ("req_total", "b")] {
            let mut s = b.series();
            s.label("__name__", name);
            s.label("job", job);
            for k in 0..20i64 {
                // req_total{job="b"} resets half-way.
                let v = if job == "b" && k >= 10 { (k - 10) as f64 } else { k as f64 };
                s.float(gmc_model::millis_to_nanos(k * MIN_MS / 2), v);
            }
            let _ = s.finish();
        }
        for (name, custom) in [("lat", false), ("lat_nhcb", true)] {
            let mut s = b.series();
            s.label("__name__", name);
            for k in 0..20i64 {
                let h = if custom {
                    Histogram::custom_buckets(&[1.0, 5.0], &[1.0, k as f64, 2.0], 1.0)
                } else {
                    exp(k as f64 + 1.0)
                };
                s.histogram(gmc_model::millis_to_nanos(k * MIN_MS / 2), h);
            }
            let _ = s.finish();
        }
        db.append(&b).expect("load the fuzz store");
        let engine = Engine::new(EngineOptions {
            max_samples: 20_000,
            timeout: Duration::from_millis(200),
            ..EngineOptions::default()
        });
        (db, engine)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    if q.len() > 512 {
        return;
    }
    let (db, engine) = store();
    let _ = engine.instant_query(db, q, 5 * MIN_MS);
    let _ = engine.range_query(db, q, 0, 10 * MIN_MS, 30_000);
});
