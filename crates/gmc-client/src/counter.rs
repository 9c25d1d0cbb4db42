//! Monotonic counter handle: per-thread single-writer cells, summed at collection.

use std::sync::Arc;

use crate::arena::{self, bump};
use crate::registry::{Series, Storage};

/// A counter resolved to its series. Recording is a thread-local load plus a plain load
/// and store on a cell only the calling thread writes: no lock, hash, allocation or
/// locked instruction, and no cache line shared with another recording thread.
#[derive(Debug, Clone)]
pub struct Counter {
    slot: usize,
    series: Arc<Series>,
}

impl Counter {
    pub(crate) fn from_series(series: Arc<Series>) -> Counter {
        let slot = match &series.storage {
            Storage::Counter(r) => r.start,
            // Registration only builds counters from counter storage.
            _ => usize::MAX,
        };
        Counter { slot, series }
    }

    /// Add one.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Add `n`.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        match arena::cells().get(self.slot) {
            Some(cell) => bump(cell, n),
            None => arena::bump_slow(self.slot, n),
        }
    }

    /// This handle bound to the calling thread's cell: increments become a plain load
    /// and store at a fixed address (see [`crate::LocalCounter`]).
    pub fn local(&self) -> crate::LocalCounter {
        crate::LocalCounter::new(self)
    }

    /// The slot of this counter's cell in every arena.
    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    /// Current total over all threads (a collection-time read; not for hot paths).
    pub fn get(&self) -> u64 {
        arena::sum_slot(&arena::arenas(), self.slot)
    }

    /// Labels of this series.
    pub fn labels(&self) -> &[(String, String)] {
        &self.series.labels
    }
}
