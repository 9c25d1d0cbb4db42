//! Best-of-N decode throughput of closed `PACKED` chunks on peerbench-like data, for A/B
//! runs on a shared virtual machine.
//!
//! Criterion's medians of the `decode` bench swing by 30–50 % here when the host is busy;
//! the fastest of many full passes is the figure noise cannot improve, so two builds
//! compared this way (in alternation) differ by their code, not by their neighbours.
//! Run with `cargo bench -p gmc-tsdb --bench decode_best_of` (about 20 s).
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
}
