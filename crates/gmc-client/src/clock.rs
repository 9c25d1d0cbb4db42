//! The cheap clock behind spans: raw TSC ticks via `quanta` (one `rdtsc`, ~10 ns here),
//! converted to nanoseconds with an integer multiply and shift when a span ends, so the
//! histogram stays in exact nanosecond buckets.

use std::sync::OnceLock;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

#[inline(always)]
fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
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
