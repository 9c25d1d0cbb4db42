//! Best-of-N timing of remote_write decoding into a `WriteBatch` (labels validated, sorted
//! and hashed), for A/B runs on a shared virtual machine where criterion's medians swing
//! by 30 % or more: the fastest of many passes is the figure noise cannot improve.
//! Run with `cargo bench -p gmc-wire --bench decode_best_of` (about 10 s).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use gmc_wire::{remote_write, Limits};
use prost::Message as _;

mod request;

const REPEATS: usize = 301;

fn main() {
    let mut req = request::request();
    let limits = Limits::default();
    for keep in [req.timeseries.len(), 500] {
        req.timeseries.truncate(keep);
        run(&req.encode_to_vec(), keep, &limits);
    }
}

/// Decode `raw` (`n` series) `REPEATS` times and print the fastest pass.
fn run(raw: &[u8], n: usize, limits: &Limits) {
    let mut best = f64::MAX;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let d = remote_write::decode(black_box(raw), limits).unwrap();
        black_box(d.batch.len_series());
        drop(d);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "decode_only: best of {REPEATS}: {:.1} ns per series ({n} series, {} bytes)",
        best * 1e9 / n as f64,
        raw.len()
    );
}
