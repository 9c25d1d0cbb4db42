//! Best-of-N timing of remote_write decoding into a `WriteBatch` (labels validated, sorted
//! and hashed), for A/B runs on a shared virtual machine where criterion's medians swing
//! by 30 % or more: the fastest of many passes is the figure noise cannot improve.
//! Each request is timed as remote write 1.0 and as 2.0 (the same series; 2.0 names
//! labels by references into a symbol table). Run with
//! `cargo bench -p gmc-wire --bench decode_best_of` (about 20 s).
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
        let v1 = req.encode_to_vec();
        run("1.0", &v1, keep, &limits, remote_write::decode);
        let batch = remote_write::decode(&v1, &limits).unwrap().batch;
        let v2 = remote_write::v2::to_proto(&batch).encode_to_vec();
        run("2.0", &v2, keep, &limits, remote_write::v2::decode);
    }
}

/// Decode `raw` (`n` series) `REPEATS` times and print the fastest pass.
fn run(
    version: &str,
    raw: &[u8],
    n: usize,
    limits: &Limits,
    decode: for<'a> fn(&'a [u8], &Limits) -> gmc_wire::Result<gmc_wire::Decoded<'a>>,
) {
    let mut best = f64::MAX;
    for _ in 0..REPEATS {
        let t = Instant::now();
        let d = decode(black_box(raw), limits).unwrap();
        assert_eq!(d.batch.len_series(), n);
        black_box(d.batch.len_series());
        drop(d);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "decode_only {version}: best of {REPEATS}: {:.1} ns per series ({n} series, {} bytes)",
        best * 1e9 / n as f64,
        raw.len()
    );
}
