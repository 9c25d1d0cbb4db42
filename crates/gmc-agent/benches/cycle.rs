//! One full collection cycle of every collector on this machine, and the cycle's encoding
//! into a remote_write request (the agent's per-interval CPU cost apart from I/O).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use gmc_agent::collector::{Collectors, Config, ProcessSelector};

fn bench(c: &mut Criterion) {
    let cfg = Config {
        // One name group, as a trading host would configure its services.
        processes: vec![ProcessSelector::Name {
            group: "bash".into(),
            comm: "bash".into(),
        }],
        ..Config::default()
    };
    let mut collectors = Collectors::new(&cfg);
    c.bench_function("collect_all", |b| {
        b.iter(|| collectors.collect(gmc_model::now_nanos()))
    });
    let snap = collectors.collect(gmc_model::now_nanos());
    let target = vec![
        ("job".to_owned(), "node".to_owned()),
        ("instance".to_owned(), "bench".to_owned()),
    ];
    c.bench_function("encode_remote_write", |b| {
        b.iter(|| {
            let (batch, _) = snap.to_batch(&target, gmc_model::ValidationLimits::default());
            gmc_wire::remote_write::encode_write_request(&batch)
        })
    });
    c.bench_function("render_text", |b| {
        b.iter(|| {
            let mut out = String::with_capacity(64 * 1024);
            snap.render_text(&mut out);
            out
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
