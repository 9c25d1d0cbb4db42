//! Per-thread slot arenas: the storage every sharded metric records into. Each thread that
//! records gets its own zeroed arena of `AtomicU64` cells; a metric owns a range of slot
//! numbers, valid in every arena; only the owning thread writes its arena, with relaxed
//! load + store, and collection sums a slot over all arenas.
//!
//! Why this layout: a recording thread never writes a cache line another thread writes
//! (arenas are separate allocations), the hot path is one thread-local load plus a load and
//! a store, and collection walks memory in order. Arenas are allocated zeroed through the
//! allocator's `calloc` path, so pages a thread never touches stay virtual.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::error::{Error, Result};

/// Default slots per arena: 4 Mi cells = 32 MiB of address space per recording thread,
/// of which only touched pages become resident. Room for ~1000 histograms or 4 M counters.
pub const DEFAULT_SLOT_CAPACITY: usize = 1 << 22;

/// One thread's cells. Leaked on purpose: arenas outlive their threads and are handed to
/// the next new thread, so collection can keep plain `&'static` references.
pub(crate) type Arena = [AtomicU64];

/// Add `n` to a cell only this thread writes: a plain load and store, no locked RMW.
#[inline(always)]
pub(crate) fn bump(cell: &AtomicU64, n: u64) {
    cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Raise a single-writer cell to `v` if it is lower.
#[inline(always)]
pub(crate) fn raise(cell: &AtomicU64, v: u64) {
    if v > cell.load(Relaxed) {
        cell.store(v, Relaxed);
    }
}

static CAPACITY: OnceLock<usize> = OnceLock::new();

/// Every arena ever created, in creation order.
static ARENAS: Mutex<Vec<&'static Arena>> = Mutex::new(Vec::new());
/// Arenas whose thread has exited, ready for the next new thread.
static FREE_ARENAS: Mutex<Vec<&'static Arena>> = Mutex::new(Vec::new());
/// Slot numbers handed out so far and released ranges by length.
static SLOTS: Mutex<SlotAlloc> = Mutex::new(SlotAlloc {
    next: 0,
    free: None,
});

struct SlotAlloc {
    next: usize,
    free: Option<HashMap<usize, Vec<usize>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves the data consistent (every critical
    // section is a push, pop or counter bump), so poisoning is ignored.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fix the number of slots per arena. Only possible before the first metric or arena is
/// created; afterwards it fails with [`Error::CapacityFixed`].
pub fn set_slot_capacity(slots: usize) -> Result<()> {
    let slots = slots.max(1);
    CAPACITY
        .set(slots)
        .map_err(|_| Error::CapacityFixed {
            capacity: capacity(),
        })
        .or_else(|e| if capacity() == slots { Ok(()) } else { Err(e) })
}

/// Slots per arena in force.
pub fn capacity() -> usize {
    *CAPACITY.get_or_init(|| DEFAULT_SLOT_CAPACITY)
}

thread_local! {
    /// This thread's cells (empty until attached); const-initialised and without
    /// destructor, so reading it is two thread-pointer-relative loads, and the "not yet
    /// attached" test is the bounds check every record does anyway.
    static LOCAL: Cell<&'static [AtomicU64]> = const { Cell::new(&[]) };
    /// Hands the arena back when the thread exits (registered on first use only).
    static RETURN: ReturnOnExit = const { ReturnOnExit(Cell::new(None)) };
    /// Live thread-bound handles ([`crate::LocalCounter`], …) holding references into
    /// this thread's arena. Const and without destructor, so it stays readable while the
    /// thread's other thread-locals are torn down.
    static PINS: Cell<usize> = const { Cell::new(0) };
}

struct ReturnOnExit(Cell<Option<&'static Arena>>);

impl Drop for ReturnOnExit {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            LOCAL.with(|l| l.set(&[]));
            // A thread-bound handle kept in another thread-local may still record during
            // the rest of the teardown; handing its arena to a new thread would then make
            // two writers of one cell. Such an arena is kept out of reuse (its counts
            // still sum at collection).
            if PINS.with(Cell::get) == 0 {
                lock(&FREE_ARENAS).push(a);
            }
        }
    }
}

/// This thread's cells; empty before the thread's first record (then index misses and
/// the caller takes its cold path through [`attach`]).
#[inline(always)]
pub(crate) fn cells() -> &'static [AtomicU64] {
    LOCAL.with(Cell::get)
}

/// This thread's arena, attaching one on first use.
#[inline]
pub(crate) fn local() -> &'static [AtomicU64] {
    let c = cells();
    if c.is_empty() {
        attach()
    } else {
        c
    }
}

/// First record of this thread: take a free arena or create one, and arrange its return.
#[cold]
#[inline(never)]
pub(crate) fn attach() -> &'static [AtomicU64] {
    let reused = lock(&FREE_ARENAS).pop();
    let arena = match reused {
        Some(a) => a,
        None => {
            let cells = bytemuck::allocation::zeroed_slice_box::<AtomicU64>(capacity());
            let a: &'static Arena = Box::leak(cells);
            lock(&ARENAS).push(a);
            a
        }
    };
    LOCAL.with(|l| l.set(arena));
    // During thread teardown this TLS may already be gone; the arena then simply is not
    // reused, which costs memory, never correctness.
    let _ = RETURN.try_with(|r| r.0.set(Some(arena)));
    arena
}

/// Cold path of a counter-like record whose slot missed: attach, then bump.
#[cold]
#[inline(never)]
pub(crate) fn bump_slow(slot: usize, n: u64) {
    if let Some(c) = attach().get(slot) {
        bump(c, n);
    }
}

/// This thread's arena for a new thread-bound handle, which must call [`unpin`] when it
/// is dropped: while pinned, the arena is never handed to another thread.
pub(crate) fn pin() -> &'static Arena {
    PINS.with(|p| p.set(p.get() + 1));
    local()
}

/// A thread-bound handle of this thread was dropped.
pub(crate) fn unpin() {
    PINS.with(|p| p.set(p.get().saturating_sub(1)));
}

/// Attach an arena to the calling thread now, so its first record is as cheap as the rest
/// (the attach takes a lock and registers a thread-exit hook, which allocates).
pub fn prepare_thread() {
    let _ = local();
}

/// All arenas, for collection (a copy, so no lock is held while reading cells).
pub(crate) fn arenas() -> Vec<&'static Arena> {
    lock(&ARENAS).clone()
}

/// Sum of one slot over every arena (wrapping, so `i64` deltas sum exactly too).
pub(crate) fn sum_slot(arenas: &[&'static Arena], slot: usize) -> u64 {
    arenas
        .iter()
        .filter_map(|a| a.get(slot))
        .fold(0u64, |s, c| s.wrapping_add(c.load(Relaxed)))
}

/// A range of slots owned by one metric series; freed (zeroed everywhere) on drop.
#[derive(Debug)]
pub(crate) struct SlotRange {
    pub(crate) start: usize,
    pub(crate) len: usize,
}

impl SlotRange {
    /// Reserve `len` consecutive slots.
    pub(crate) fn alloc(len: usize) -> Result<SlotRange> {
        let cap = capacity();
        let mut s = lock(&SLOTS);
        if let Some(start) = s
            .free
            .as_mut()
            .and_then(|f| f.get_mut(&len))
            .and_then(Vec::pop)
        {
            return Ok(SlotRange { start, len });
        }
        if s.next + len > cap {
            return Err(Error::SlotsExhausted {
                needed: len,
                capacity: cap,
            });
        }
        let start = s.next;
        s.next += len;
        Ok(SlotRange { start, len })
    }
}

impl Drop for SlotRange {
    fn drop(&mut self) {
        // No handle of this series is left, so no thread writes these cells any more:
        // zeroing them from here does not race with an owner.
        for a in arenas() {
            if let Some(r) = a.get(self.start..self.start + self.len) {
                for c in r {
                    c.store(0, Relaxed);
                }
            }
        }
        let mut s = lock(&SLOTS);
        s.free
            .get_or_insert_with(HashMap::new)
            .entry(self.len)
            .or_default()
            .push(self.start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_arena_is_not_reused_after_its_thread_exits() {
        let pinned = std::thread::spawn(|| {
            // The thread's teardown as it runs with a thread-bound handle still alive in
            // another thread-local; the real exit hook is disarmed so that only this
            // simulated one decides.
            let a = pin();
            let _ = RETURN.with(|r| r.0.take());
            drop(ReturnOnExit(Cell::new(Some(a))));
            unpin();
            a
        })
        .join()
        .unwrap();
        assert!(!lock(&FREE_ARENAS).iter().any(|f| std::ptr::eq(*f, pinned)));
    }
}
