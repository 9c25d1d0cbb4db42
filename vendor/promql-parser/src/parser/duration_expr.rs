//! gmc: duration expressions (Prometheus 3.x, experimental there): the arithmetic the
//! grammar applies to durations, and `step()` / `range()`, which stand for the query's
//! step and range. Those two are known only per query, so the caller states them for
//! the parse (`parse_with_durations`); a plain `parse` takes them as 0.

use std::cell::Cell;
use std::time::Duration;

use crate::parser::Offset;

thread_local! {
    /// `(step, range)` of the query being parsed on this thread, in seconds.
    static QUERY_DURATIONS: Cell<(f64, f64)> = const { Cell::new((0.0, 0.0)) };
}

/// Run `f` with `step()` and `range()` meaning `step` and `range`.
pub(crate) fn with_query_durations<T>(step: Duration, range: Duration, f: impl FnOnce() -> T) -> T {
    let before = QUERY_DURATIONS.with(|c| c.replace((step.as_secs_f64(), range.as_secs_f64())));
    let out = f();
    QUERY_DURATIONS.with(|c| c.set(before));
    out
}

/// `step()`, `range()`, `min_of(a, b)`, `max_of(a, b)` (names in any case).
pub(crate) fn duration_call(name: &str, args: &[f64]) -> Result<f64, String> {
    let (step, range) = QUERY_DURATIONS.with(Cell::get);
    match (name.to_ascii_lowercase().as_str(), args) {
        ("step", []) => Ok(step),
        ("range", []) => Ok(range),
        ("min_of", [a, b]) => Ok(a.min(*b)),
        ("max_of", [a, b]) => Ok(a.max(*b)),
        (n, _) => Err(format!(
            "unknown duration function {n:?} with {} argument(s): expected step(), range(), min_of(a, b) or max_of(a, b)",
            args.len()
        )),
    }
}

/// A duration literal (`5m`, `0s`) in seconds; zero is a valid operand here (the result
/// is checked where it is used).
pub(crate) fn literal_seconds(s: &str) -> Result<f64, String> {
    match crate::util::parse_duration(s) {
        Ok(d) => Ok(d.as_secs_f64()),
        Err(_) if s.chars().all(|c| c == '0' || c.is_ascii_alphabetic()) => Ok(0.0),
        Err(e) => Err(e),
    }
}

pub(crate) fn duration_div(a: f64, b: f64) -> Result<f64, String> {
    if b == 0.0 {
        return Err("division by zero in a duration expression".into());
    }
    Ok(a / b)
}

pub(crate) fn duration_mod(a: f64, b: f64) -> Result<f64, String> {
    if b == 0.0 {
        return Err("modulo by zero in a duration expression".into());
    }
    Ok(a % b)
}

/// Seconds to a duration at millisecond resolution, refusing what is not finite.
fn to_duration(secs: f64) -> Result<Duration, String> {
    let ms = (secs.abs() * 1000.0).round();
    if !ms.is_finite() || ms > u64::MAX as f64 / 2.0 {
        return Err(format!("duration out of range: {secs}s"));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// A range or subquery duration: greater than zero.
pub(crate) fn positive_duration(secs: f64) -> Result<Duration, String> {
    if !(secs > 0.0) {
        return Err(format!("duration must be greater than 0, got {secs}s"));
    }
    to_duration(secs)
}

/// An offset, negative or not.
pub(crate) fn signed_offset(secs: f64) -> Result<Offset, String> {
    let d = to_duration(secs)?;
    Ok(if secs < 0.0 { Offset::Neg(d) } else { Offset::Pos(d) })
}
