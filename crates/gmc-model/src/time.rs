//! Time inside gmc is `i64` nanoseconds since the Unix epoch; Prometheus edges use ms.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds per millisecond.
pub const NANOS_PER_MILLI: i64 = 1_000_000;
/// Nanoseconds per second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Current wall-clock time in nanoseconds since the epoch (0 if the clock is before 1970).
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds to nanoseconds, saturating at the i64 range.
#[inline]
pub fn millis_to_nanos(ms: i64) -> i64 {
    ms.saturating_mul(NANOS_PER_MILLI)
}

/// Nanoseconds to milliseconds, rounding toward negative infinity.
#[inline]
pub fn nanos_to_millis(ns: i64) -> i64 {
    ns.div_euclid(NANOS_PER_MILLI)
}
