//! Every record path runs without a heap allocation (counted per thread by a wrapping
//! global allocator), once the thread's first record has attached its arena.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to `System` unchanged; the counter is a const thread-local
// `Cell` (no allocation, no destructor), so it cannot recurse into the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn record_paths_do_not_allocate() {
    use gmc_client::trading::{Event, Stage, Trading};
    let r = gmc_client::Registry::new();
    let c = r.counter("a_total", "x").unwrap();
    let g = r.gauge("g", "x").unwrap();
    let gf = r.gauge_f64("gf", "x").unwrap();
    let fg = r.fixed_gauge_with("fg", "x", &[], 4).unwrap();
    let fa = r.fixed_adder_with("fa", "x", &[], 4).unwrap();
    let h = r.histogram("h_seconds", "x").unwrap();
    let fam = r.counter_family("dyn", "x", &["a", "b", "c"], 2).unwrap();
    let hfam = r.histogram_family("dynh_seconds", "x", &["a"], 4).unwrap();
    let t = Trading::new(&r).unwrap();
    let flow = t.order_flow("XNAS", "AAPL").unwrap();
    let venue = t.venue("XNAS").unwrap();
    // Warm-up: the thread attaches its arena, the clock calibrates, the families insert
    // their value sets and fill up (so later misses fold into the overflow series).
    gmc_client::prepare_thread();
    gmc_client::clock::calibrate();
    fam.with(&["x", "y", "z"]).inc();
    fam.with(&["x", "y", "w"]).inc();
    fam.with(&["full", "now", "!"]).inc();
    hfam.with(&["p"]).record(1);
    flow.rejected("price_band");
    let (lc, lh, lflow) = (c.local(), h.local(), flow.local());
    let reason = flow.reject_reason("price_band").local();

    let before = allocs();
    for i in 0..10_000u64 {
        c.inc();
        c.add(i);
        g.set(i as i64);
        g.add(-1);
        gf.set(i as f64);
        fg.set(i as i64);
        fg.add(3);
        fa.add(-(i as i64));
        h.record(i * 37);
        h.record_since(gmc_client::clock::now());
        h.record_since_instant(std::time::Instant::now());
        {
            let _span = h.start();
        }
        h.time(|| i);
        fam.with(&["x", "y", "z"]).inc();
        fam.with(&["not", "stored", "yet"]).inc();
        fam.with(&["wrong arity"]).inc();
        hfam.with(&["p"]).record(i);
        let d = gmc_client::clock::now();
        let s = flow.sent(d);
        let a = flow.acked(s);
        flow.partially_filled(a, 1);
        flow.filled(a, 2);
        flow.cancelled();
        flow.rejected("price_band");
        flow.record_stage(Stage::SendToAck, i);
        venue.heartbeat();
        lc.add(2);
        lh.record(i);
        drop(lh.start());
        let s = lflow.sent(d);
        lflow.filled(lflow.acked(s), 3);
        lflow.rejected_by(&reason);
        lflow.count(Event::Cancelled, 0);
    }
    let after = allocs();
    assert_eq!(
        after - before,
        0,
        "record paths allocated {} times",
        after - before
    );
    assert_eq!(c.get(), 30_000 + (0..10_000u64).sum::<u64>());
    assert_eq!(h.snapshot().count(), 70_000);
    assert_eq!(flow.stage(Stage::AckToFill).snapshot().count(), 30_000);
}

#[test]
fn records_from_many_threads_sum_exactly() {
    let r = gmc_client::Registry::new();
    let c = r.counter("threads_total", "x").unwrap();
    let h = r.histogram("threads_seconds", "x").unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (c, h) = (c.clone(), h.clone());
            s.spawn(move || {
                for i in 0..10_000u64 {
                    c.inc();
                    h.record(t * 1000 + i);
                }
            });
        }
    });
    assert_eq!(c.get(), 80_000);
    let snap = h.snapshot();
    assert_eq!(snap.count(), 80_000);
    assert_eq!(snap.min(), Some(0));
    assert_eq!(snap.max(), Some(7000 + 9999));
}
