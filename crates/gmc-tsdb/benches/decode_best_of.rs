//! Best-of-N decode throughput of closed `PACKED` chunks on peerbench-like data, for A/B
//! runs on a shared virtual machine.
//!
//! Criterion's medians of the `decode` bench swing by 30–50 % here when the host is busy;
//! the fastest of many full passes is the figure noise cannot improve, so two builds
//! compared this way (in alternation) differ by their code, not by their neighbours.
//! Run with `cargo bench -p gmc-tsdb --bench decode_best_of` (about 20 s).
//!
//! It also prints the cost of writing those samples: appending them to head `XOR` chunks,
//! and encoding 120-sample chunks as `PACKED` (what recompressing a closed head chunk
//! costs), with the bytes per sample of each.
#![allow(missing_docs, clippy::expect_used, clippy::print_stdout)]

mod peerlike;

use std::hint::black_box;
use std::time::Instant;

use gmc_tsdb::chunk;

const REPEATS: usize = 41;

fn main() {
    let data = peerlike::generate(2, 1440, -1);
    let n: usize = data.iter().map(|s| s.samples.len()).sum();
    println!("best of {REPEATS} passes over {n} samples, M samples/s (one core)");
    for per_chunk in [120usize, 1440] {
        let chunks: Vec<(u8, Vec<u8>)> = data
            .iter()
            .flat_map(|s| s.samples.chunks(per_chunk).map(chunk::encode_floats))
            .collect();
        let mut buf = Vec::with_capacity(per_chunk);
        let mut best = f64::MAX;
        for _ in 0..REPEATS {
            let t = Instant::now();
            let mut acc = 0usize;
            for (enc, bytes) in &chunks {
                buf.clear();
                chunk::decode_floats(*enc, bytes, &mut buf).expect("chunk");
                acc = acc.wrapping_add(buf.len());
            }
            black_box(acc);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{:8.1}  packed_{per_chunk}", n as f64 / best / 1e6);
    }
    encode_rows(&data, n);
}

/// ns per sample of appending to `XOR` head chunks and of `PACKED` encoding (120-sample
/// chunks, as the head cuts them), best of the passes, with each format's bytes per sample.
fn encode_rows(data: &[peerlike::GenSeries], n: usize) {
    const PER_CHUNK: usize = 120;
    let mut best_xor = f64::MAX;
    let mut xor_bytes = 0usize;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let mut bytes = 0usize;
        for s in data {
            for c in s.samples.chunks(PER_CHUNK) {
                let mut a = chunk::XorAppender::with_capacity(512);
                for &(ts, v) in c {
                    a.append(ts, v);
                }
                bytes += a.size_bytes();
                black_box(&a);
            }
        }
        best_xor = best_xor.min(t.elapsed().as_secs_f64());
        xor_bytes = bytes;
    }
    let mut best_packed = f64::MAX;
    let mut packed_bytes = 0usize;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let mut bytes = 0usize;
        for s in data {
            for c in s.samples.chunks(PER_CHUNK) {
                bytes += black_box(chunk::encode_floats(c)).1.len();
            }
        }
        best_packed = best_packed.min(t.elapsed().as_secs_f64());
        packed_bytes = bytes;
    }
    println!("encode, ns/sample and bytes/sample ({PER_CHUNK}-sample chunks)");
    let row = |name: &str, secs: f64, bytes: usize| {
        println!(
            "{:8.1} ns {:6.3} B  {name}",
            secs * 1e9 / n as f64,
            bytes as f64 / n as f64
        );
    };
    row("xor_append", best_xor, xor_bytes);
    row("packed_encode", best_packed, packed_bytes);
}
