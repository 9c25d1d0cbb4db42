//! The cheap clock behind spans: raw TSC ticks via `quanta` (one `rdtsc`, ~10 ns here).
//! A span records its tick delta as read: a bucket table rotated for the calibrated tick
//! length ([`gmc_histogram::ScaledIndex`]) puts it straight into the nanosecond bucket of
//! `ticks × ns_per_tick`, and its sum, min and max are converted to nanoseconds with an
//! integer multiply and shift at collection. No multiply on the record path.

use std::sync::OnceLock;

use gmc_histogram::ScaledIndex;

/// The calibrated clock and the bucket table of its tick.
struct State {
    clock: quanta::Clock,
    index: ScaledIndex,
}

static STATE: OnceLock<State> = OnceLock::new();

#[inline(always)]
fn state() -> &'static State {
    STATE.get_or_init(|| {
        let clock = quanta::Clock::new();
        // ns per tick to ~12 significant digits: the scaled length of 2^40 ticks.
        const SPAN: u64 = 1 << 40;
        let ns_per_tick = clock.delta_as_nanos(0, SPAN) as f64 / SPAN as f64;
        // A tick outside 2^-40..2^40 ns is no clock; fall back to whole nanoseconds, which
        // is what `quanta` then reports too (its monotonic source).
        let index = ScaledIndex::new(ns_per_tick).unwrap_or_else(ScaledIndex::identity);
        State { clock, index }
    })
}

#[inline(always)]
fn clock() -> &'static quanta::Clock {
    &state().clock
}

/// The bucket table of a raw tick delta: `tick_index().position(end - start)` is the
/// dense position of the delta's nanosecond value.
#[inline(always)]
pub(crate) fn tick_index() -> &'static ScaledIndex {
    &state().index
}

/// Nanoseconds in a tick count (a sum or extreme of deltas). Integer scaling only.
pub(crate) fn delta_to_nanos(ticks: u64) -> u64 {
    clock().delta_as_nanos(0, ticks)
}

/// A raw clock reading (TSC ticks where the CPU has an invariant TSC, else nanoseconds).
/// Only differences of two readings mean anything; convert with [`ticks_to_nanos`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticks(pub u64);

/// Read the clock (one `rdtsc` on x86-64 with invariant TSC).
#[inline(always)]
pub fn now() -> Ticks {
    Ticks(clock().raw())
}

/// Nanoseconds between two readings (0 if `end` is before `start`). Integer scaling only.
#[inline(always)]
pub fn ticks_to_nanos(start: Ticks, end: Ticks) -> u64 {
    if end.0 <= start.0 {
        return 0;
    }
    clock().delta_as_nanos(start.0, end.0)
}

/// Calibrate the clock now rather than on the first span (calibration takes ~10 ms).
pub fn calibrate() {
    let _ = clock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_measure_a_sleep() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let ns = ticks_to_nanos(a, now());
        assert!(ns >= 4_000_000, "{ns}");
        assert_eq!(ticks_to_nanos(now(), a), 0);
    }
}
