//! Best-of-N timings of the record paths next to their physical baselines, one thread.
//!
//! Criterion's medians swing by ±40 % on a shared virtual machine when the host moves
//! the vCPUs; the minimum over many repetitions of a long loop is the figure noise cannot
//! lower, so ratios between rows of this table are stable from run to run. Run with
//! `cargo bench -p gmc-client --bench best_of` (about 30 s).
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

const N: u64 = 10_000_000;

/// The bare time-stamp counter read the anchors measured (`quanta` adds a clock-kind
/// match); only for the span baseline row.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64; it only reads the counter.
    unsafe { std::arch::x86_64::_rdtsc() }
}
const REPEATS: usize = 25;

/// ns per operation: the best of `REPEATS` loops of `N` operations.
fn best(mut op: impl FnMut(u64)) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..REPEATS {
        let t = Instant::now();
        for i in 0..N {
            op(black_box(i));
        }
        best = best.min(t.elapsed().as_nanos() as f64 / N as f64);
    }
    best
}

/// 4096 latencies, log-uniform between 100 ns and 1 ms (the hot_path bench's inputs).
fn latencies() -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (100.0 * 10f64.powf(4.0 * u)) as u64
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let v = latencies();
    let reg = gmc_client::Registry::new();
    let counter = reg.counter("c_total", "x").unwrap();
    let hist = reg.histogram("h_seconds", "x").unwrap();
    gmc_client::prepare_thread();
    gmc_client::clock::calibrate();
    let local_counter = counter.local();
    let local_hist = hist.local();

    #[repr(align(128))]
    struct Line(AtomicU64);
    // On the heap, like the arenas: a stack slot would get the CPU's stack-specific
    // store forwarding and flatter the baseline.
    let line = Box::new(Line(AtomicU64::new(0)));
    // The anchors' per-thread sketch: 32 sub-buckets per octave, bucket + sum, no min/max.
    let sketch: Box<[AtomicU64; 2049]> = Box::new(std::array::from_fn(|_| AtomicU64::new(0)));

    let rows = [
        (
            "raw load+store, own line (counter baseline)",
            best(|_| line.0.store(line.0.load(Relaxed) + 1, Relaxed)),
        ),
        ("gmc counter inc", best(|_| counter.inc())),
        (
            "gmc counter inc, thread-bound handle",
            best(|_| local_counter.inc()),
        ),
        (
            "reference per-thread sketch record (histogram baseline)",
            best(|i| {
                let x = v[(i & 4095) as usize] | 1;
                let lz = x.leading_zeros() as usize;
                let idx = ((63 - lz) << 5) | ((x << lz >> 58) & 31) as usize;
                let b = &sketch[idx];
                b.store(b.load(Relaxed) + 1, Relaxed);
                sketch[2048].store(sketch[2048].load(Relaxed).wrapping_add(x), Relaxed);
            }),
        ),
        (
            "gmc histogram record (schema 6, exact sum/min/max)",
            best(|i| hist.record(v[(i & 4095) as usize])),
        ),
        (
            "gmc histogram record, thread-bound handle",
            best(|i| local_hist.record(v[(i & 4095) as usize])),
        ),
        (
            "two TSC reads (span baseline)",
            best(|_| {
                let a = gmc_client::clock::now();
                black_box(gmc_client::clock::now().0.wrapping_sub(a.0));
            }),
        ),
        #[cfg(target_arch = "x86_64")]
        (
            "two raw rdtsc + reference sketch record (span baseline)",
            best(|i| {
                let a = rdtsc();
                let x = (rdtsc().wrapping_sub(a) + (i & 1)) | 1;
                let lz = x.leading_zeros() as usize;
                let idx = ((63 - lz) << 5) | ((x << lz >> 58) & 31) as usize;
                let b = &sketch[idx];
                b.store(b.load(Relaxed) + 1, Relaxed);
                sketch[2048].store(sketch[2048].load(Relaxed).wrapping_add(x), Relaxed);
            }),
        ),
        (
            "gmc timed span (two TSC reads + record)",
            best(|_| drop(hist.start())),
        ),
        (
            "gmc timed span, thread-bound handle",
            best(|_| drop(local_hist.start())),
        ),
    ];
    // Two threads on one metric, each through its own thread-bound handle, at once; the
    // slower thread's figure counts.
    let two = |f: &(dyn Fn() -> f64 + Sync)| {
        std::thread::scope(|s| {
            let a = s.spawn(f);
            let b = s.spawn(f);
            a.join().unwrap().max(b.join().unwrap())
        })
    };
    let mt = [
        (
            "gmc counter inc, thread-bound, 2 threads on one counter",
            two(&|| {
                let l = counter.local();
                best(|_| l.inc())
            }),
        ),
        (
            "gmc histogram record, thread-bound, 2 threads on one histogram",
            two(&|| {
                let l = hist.local();
                best(|i| l.record(v[(i & 4095) as usize]))
            }),
        ),
    ];
    println!("best of {REPEATS} × {N} operations, ns/op");
    for (name, ns) in rows.into_iter().chain(mt) {
        println!("{ns:8.3}  {name}");
    }
}
