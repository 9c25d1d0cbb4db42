//! Chunk decode throughput on peerbench-like data (closed `PACKED` chunks of 120 and
//! 1440 samples, and appendable `XOR` head chunks).
#![allow(missing_docs, clippy::expect_used)]

mod peerlike;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gmc_tsdb::chunk;

fn bench(c: &mut Criterion) {
    // 2 services (3,004 series) × 1,440 ticks keeps setup short yet representative.
    let data = peerlike::generate(2, 1440, -1);
    let mut g = c.benchmark_group("decode");
    for per_chunk in [120usize, 1440] {
        let chunks: Vec<(u8, Vec<u8>)> = data
            .iter()
            .flat_map(|s| s.samples.chunks(per_chunk).map(chunk::encode_floats))
            .collect();
        let n: usize = data.iter().map(|s| s.samples.len()).sum();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("packed_{per_chunk}"), |b| {
            let mut buf = Vec::with_capacity(per_chunk);
            b.iter(|| {
                let mut acc = 0u64;
                for (enc, bytes) in &chunks {
                    buf.clear();
                    chunk::decode_floats(*enc, bytes, &mut buf).expect("chunk");
                    acc = acc.wrapping_add(buf.len() as u64);
                }
                acc
            })
        });
        g.bench_function(format!("packed_{per_chunk}_iter"), |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for (enc, bytes) in &chunks {
                    let mut it = chunk::decode_iter(*enc, bytes).expect("chunk");
                    while let Some(Ok((t, v))) = it.next_float() {
                        acc = acc.wrapping_add(t as u64 ^ v.to_bits());
                    }
                }
                acc
            })
        });
    }
    let xor: Vec<Vec<u8>> = data
        .iter()
        .flat_map(|s| {
            s.samples.chunks(120).map(|c| {
                let mut a = chunk::XorAppender::new();
                for &(t, v) in c {
                    a.append(t, v);
                }
                a.bytes()
            })
        })
        .collect();
    g.bench_function("xor_120", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for bytes in &xor {
                let mut it = chunk::decode_iter(chunk::ENCODING_XOR, bytes).expect("chunk");
                while let Some(Ok((t, v))) = it.next_float() {
                    acc = acc.wrapping_add(t as u64 ^ v.to_bits());
                }
            }
            acc
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
