//! Bytes per sample of the chunk codecs on the peerbench-like workload, next to the
//! information floor of the values (`peerlike::Floor`: what no codec can beat).
//! `cargo run --release -p gmc-tsdb --example chunk_bytes [services] [ticks] [chunk_samples]`
#![allow(clippy::print_stdout, clippy::expect_used, missing_docs)]

#[path = "../benches/peerlike.rs"]
mod peerlike;

use std::collections::BTreeMap;

use gmc_tsdb::chunk;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let services = args.first().copied().unwrap_or(20);
    let ticks = args.get(1).copied().unwrap_or(720) as u64;
    let per_chunk = args.get(2).copied().unwrap_or(120);
    for decimals in [-1, 0] {
        let mut floor = peerlike::Floor::default();
        let data = peerlike::generate_with_floor(services, ticks, decimals, &mut floor);
        let mut by_kind: BTreeMap<peerlike::Kind, (usize, usize, usize)> = BTreeMap::new();
        let (mut total_b, mut total_n, mut xor_b) = (0usize, 0usize, 0usize);
        for s in &data {
            for c in s.samples.chunks(per_chunk) {
                let (_, b) = chunk::encode_floats(c);
                let mut a = chunk::XorAppender::new();
                for &(t, v) in c {
                    a.append(t, v);
                }
                xor_b += a.bytes().len();
                let e = by_kind.entry(s.kind).or_default();
                e.0 += b.len();
                e.1 += c.len();
                e.2 += 1;
                total_b += b.len();
                total_n += c.len();
            }
        }
        println!(
            "latency_decimals={decimals} series={} samples={total_n} chunk_samples={per_chunk}: packed {:.3} B/sample, xor(head) {:.3} B/sample",
            data.len(),
            total_b as f64 / total_n as f64,
            xor_b as f64 / total_n as f64
        );
        let floor_bits: f64 = floor.bits.values().sum();
        println!(
            "  information floor of the values: {:.3} B/sample",
            floor_bits / 8.0 / total_n as f64
        );
        for (k, (b, n, c)) in by_kind {
            let f = floor.bits.get(&k).copied().unwrap_or(0.0) / 8.0 / n as f64;
            println!(
                "  {:<10} {:>7} chunks {:.3} B/sample (floor {f:.3})",
                format!("{k:?}"),
                c,
                b as f64 / n as f64
            );
        }
    }
}
