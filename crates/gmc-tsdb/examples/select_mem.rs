//! Peak heap and time of `Querier::select`, `select_floats` and `select_latest` over 30 000
//! float series × 300 samples (5 min at 1 s), from the head and after a flush from a block.
//! Run: `cargo run --release -p gmc-tsdb --example select_mem`.
// A counting global allocator needs `unsafe` (it only forwards to `System`).
#![allow(
    missing_docs,
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use gmc_model::{MatchOp, Matcher, WriteBatch, NANOS_PER_SEC};
use gmc_tsdb::{Config, Db, SyncPolicy};

struct Counting;
static CUR: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
// SAFETY: every call forwards to `System` unchanged; the counters do not touch memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let c = CUR.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(c, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        CUR.fetch_sub(l.size(), Relaxed);
        // SAFETY: `p` came from `System.alloc` with layout `l` (see `alloc`).
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Config {
            sync: SyncPolicy::None,
            ..Config::default()
        },
    )
    .unwrap();
    let t0 = 1_763_000_000 * NANOS_PER_SEC;
    let (series, ticks) = (30_000u32, 300i64);
    for part in 0..(series / 1000) {
        let mut b = WriteBatch::new();
        for i in part * 1000..(part + 1) * 1000 {
            let mut s = b.series();
            s.label("__name__", format!("hft_m{}", i % 50));
            s.label("i", i.to_string());
            for k in 0..ticks {
                s.float(t0 + k * NANOS_PER_SEC, (k as f64) * 1.5 + f64::from(i));
            }
            s.finish().unwrap();
        }
        db.append(&b).unwrap();
    }
    let m = [Matcher::new(MatchOp::Regex, "__name__", "hft_.+").unwrap()];
    let end = t0 + (ticks - 1) * NANOS_PER_SEC;
    for round in 0..4 {
        if round == 2 {
            db.flush().unwrap();
            println!("-- flushed to a block");
        }
        let q = db.querier(end - 300 * NANOS_PER_SEC, end).unwrap();
        let base = CUR.load(Relaxed);
        PEAK.store(base, Relaxed);
        let t = Instant::now();
        let n: usize = q.select(&m).unwrap().iter().map(|s| s.len()).sum();
        println!(
            "round {round} select        samples={n} time={:?} peak_extra_MB={:.1}",
            t.elapsed(),
            (PEAK.load(Relaxed) - base) as f64 / 1e6
        );
        let base = CUR.load(Relaxed);
        PEAK.store(base, Relaxed);
        let t = Instant::now();
        let n: usize = q.select_floats(&m).unwrap().iter().map(|s| s.len()).sum();
        println!(
            "round {round} select_floats samples={n} time={:?} peak_extra_MB={:.1}",
            t.elapsed(),
            (PEAK.load(Relaxed) - base) as f64 / 1e6
        );
        let base = CUR.load(Relaxed);
        PEAK.store(base, Relaxed);
        let t = Instant::now();
        let n: usize = q
            .select_latest(&m, end, 300 * NANOS_PER_SEC)
            .unwrap()
            .iter()
            .map(|s| s.len())
            .sum();
        println!(
            "round {round} select_latest samples={n} time={:?} peak_extra_MB={:.1}",
            t.elapsed(),
            (PEAK.load(Relaxed) - base) as f64 / 1e6
        );
    }
}
