//! memjitter: does this machine stall memory-bound code now and then? Streams over a 4 MiB
//! buffer (`reuse`: the same buffer each pass; `alloc`: a fresh one each pass, as a
//! request decoder does) for 10 s, then prints the pass-time distribution and every pass
//! slower than 4x the median, with its time into the run.
//!
//! No dependencies; build and run it pinned to one CPU:
//!   rustc -O benches/env/memjitter.rs -o /tmp/memjitter && taskset -c 0 /tmp/memjitter reuse
//!
//! On the project's 2-vCPU guest (2026-12-01), a quiet machine showed 10x slower passes
//! for 50-100 ms about every 1.5 s, which is the same period as the remote-write latency
//! tail in `benches/runs/2026-12-01-0245-spans-in-ticks-label-bytes.md`.
use std::time::Instant;

fn main() {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "reuse".to_owned());
    let words = 1usize << 19; // 4 MiB of u64
    let start = Instant::now();
    let mut passes = Vec::new();
    let mut keep: Vec<u64> = vec![1; words];
    let mut acc = 0u64;
    while start.elapsed().as_secs_f64() < 10.0 {
        let t = Instant::now();
        if mode == "alloc" {
            let mut v: Vec<u64> = Vec::with_capacity(words);
            v.extend((0..words as u64).map(|i| i ^ acc));
            acc = acc.wrapping_add(v.iter().fold(0, |a, &x| a ^ x));
        } else {
            for (i, x) in keep.iter_mut().enumerate() {
                *x = (i as u64) ^ acc;
            }
            acc = acc.wrapping_add(keep.iter().fold(0, |a, &x| a ^ x));
        }
        passes.push((
            t.duration_since(start).as_secs_f64(),
            t.elapsed().as_secs_f64() * 1e3,
        ));
    }
    let mut ms: Vec<f64> = passes.iter().map(|p| p.1).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    println!(
        "{mode}: {} passes, median {median:.3} ms, p99 {:.3}, max {:.3} (checksum {acc})",
        ms.len(),
        ms[ms.len() * 99 / 100],
        ms[ms.len() - 1]
    );
    for (at, t) in &passes {
        if *t > 4.0 * median {
            print!("{at:.2}s:{t:.2}ms ");
        }
    }
    println!();
}
