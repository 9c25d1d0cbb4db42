//! Criterion bench of remote_write ingest decoding on a request shaped like peerbench's
//! loadgen: 7,510 series × 1 sample, ~9 labels each (5 services of its default workload).

// A bench aborts loudly on a broken fixture; criterion's macros generate undocumented fns.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gmc_wire::remote_write::{self, proto};

mod request;
use gmc_wire::{snappy, Limits};
use prost::Message as _;
use request::request;

fn bench(c: &mut Criterion) {
    let req = request();
    let n = req.timeseries.len();
    assert_eq!(n, 7_510);
    let raw = req.encode_to_vec();
    let body = snappy::compress(&raw);
    let limits = Limits::default();
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("snappy_and_decode_7510", |b| {
        b.iter(|| {
            let buf = remote_write::decompress(black_box(&body), &limits).unwrap();
            let d = remote_write::decode(&buf, &limits).unwrap();
            assert_eq!(d.report.samples_accepted, n as u64);
            black_box(d.batch.len_series());
        })
    });
    g.bench_function("decode_only_7510", |b| {
        b.iter(|| {
            let d = remote_write::decode(black_box(&raw), &limits).unwrap();
            black_box(d.batch.len_series());
        })
    });
    g.bench_function("snappy_only_7510", |b| {
        b.iter(|| {
            black_box(
                remote_write::decompress(black_box(&body), &limits)
                    .unwrap()
                    .len(),
            )
        })
    });
    g.bench_function("prost_decode_7510", |b| {
        b.iter(|| {
            black_box(
                proto::WriteRequest::decode(black_box(&raw[..]))
                    .unwrap()
                    .timeseries
                    .len(),
            )
        })
    });
    // Baseline: only gmc-model's WriteBatch work (push borrowed labels, validate, sort
    // check, hash), with the strings already decoded by prost outside the timed loop.
    g.bench_function("model_batch_only_7510", |b| {
        b.iter(|| {
            let mut batch = gmc_model::WriteBatch::with_limits(limits.labels);
            batch.reserve(n, n);
            for ts in &req.timeseries {
                let mut s = batch.series();
                for l in &ts.labels {
                    s.label(l.name.as_str(), l.value.as_str());
                }
                s.float(ts.samples[0].timestamp, ts.samples[0].value);
                s.finish().unwrap();
            }
            black_box(batch.len_series())
        })
    });
    g.finish();
    eprintln!(
        "request: {n} series, {} bytes protobuf, {} bytes snappy",
        raw.len(),
        body.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
