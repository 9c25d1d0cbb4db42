//! The `anchored` and `smoothed` selector modifiers of Prometheus 3.x (experimental there,
//! behind `--enable-feature=promql-extended-range-selectors`).
//!
//! - `f(x[r] anchored)`: each window also holds the last sample at or before its start
//!   (within the lookback delta). `rate`, `increase` and `delta` are then the plain
//!   difference from that sample to the window's last one, corrected for counter resets,
//!   without extrapolation; `changes` and `resets` count the anchor's transition too.
//! - `f(x[r] smoothed)`: the window also holds the first sample after its end (within the
//!   lookback delta), and the values at both edges are interpolated linearly between the
//!   samples around them (a counter that reset in between restarts from zero). Only
//!   `rate`, `increase` and `delta` take it.
//! - `x smoothed`: an instant vector whose value at each step is interpolated the same way
//!   between the samples before and after it; the last sample carries on when nothing
//!   follows.
//!
//! The rules (which sample is the anchor, when a reset was already accounted for by an
//! interpolation) follow Prometheus' `extendedRate` and `extendedHistogramRate`; its test
//! file `extended_vectors.test` pins them.

use std::sync::Arc;

use gmc_model::{CounterResetHint, Histogram, METRIC_NAME};
use promql_parser::parser::{MatrixSelector, VectorSelector};

use super::super::{offset_ms, Evaluator, Grid, Pv, Raw, Series};
use super::{apply, Notes, RangeFn, Window};
use crate::error::{Error, Result};
use crate::hist;

/// Functions that take an `anchored` range (sorted, as Prometheus names them).
const ANCHORED_SAFE: &[&str] = &["changes", "delta", "increase", "rate", "resets"];
/// Functions that take a `smoothed` range.
const SMOOTHED_SAFE: &[&str] = &["delta", "increase", "rate"];

/// Refuse a modifier the function `name` does not take.
pub(super) fn check_modifier(name: &str, vs: &VectorSelector) -> Result<()> {
    let (modifier, safe) = if vs.anchored {
        ("anchored", ANCHORED_SAFE)
    } else if vs.smoothed {
        ("smoothed", SMOOTHED_SAFE)
    } else {
        return Ok(());
    };
    if safe.contains(&name) {
        Ok(())
    } else {
        Err(Error::Execution(format!(
            "{modifier} modifier can only be used with: {} - not with {name}",
            safe.join(", ")
        )))
    }
}

/// The samples of one extended window of `r`: the anchor (the newest sample in
/// `(start - lookback, start]`), the samples in `(start, end]` and, when `smoothed`, the
/// first sample in `(end, end + lookback]`. Floats and histograms each stay in time order.
/// Returns whether any sample lies inside `(start, end]`: an anchored window without one
/// has no value (a smoothed one may still be interpolated across the gap).
fn window_points(
    r: &Raw,
    (start, end): (i64, i64),
    lookback: i64,
    smoothed: bool,
    fs: &mut Vec<(i64, f64)>,
    hs: &mut Vec<(i64, Arc<Histogram>)>,
) -> bool {
    fs.clear();
    hs.clear();
    let push = |fs: &mut Vec<_>, hs: &mut Vec<_>, (t, v): (i64, Pv)| match v {
        Pv::F(f) => fs.push((t, f)),
        Pv::H(h) => hs.push((t, h)),
    };
    let from = Past::new(r, start);
    let to = Past::new(r, end);
    if let Some(anchor) = from.before(r, start - lookback) {
        push(fs, hs, anchor);
    }
    fs.extend_from_slice(&r.floats[from.f..to.f]);
    hs.extend_from_slice(&r.hists[from.h..to.h]);
    if smoothed {
        if let Some(next) = to.after(r, end + lookback) {
            push(fs, hs, next);
        }
    }
    to.f > from.f || to.h > from.h
}

/// Where a time `t` falls in a series: the index of its first float and of its first
/// histogram after `t`. One binary search per kind, shared by what is looked up around `t`.
struct Past {
    f: usize,
    h: usize,
}

impl Past {
    fn new(r: &Raw, t: i64) -> Past {
        Past {
            f: r.floats.partition_point(|p| p.0 <= t),
            h: r.hists.partition_point(|p| p.0 <= t),
        }
    }

    /// The newest sample (float or histogram) at or before `t`, if after `lowest`.
    fn before(&self, r: &Raw, lowest: i64) -> Option<(i64, Pv)> {
        let f = self.f.checked_sub(1).map(|i| r.floats[i]);
        let h = self.h.checked_sub(1).map(|i| &r.hists[i]);
        pick(
            f.filter(|p| p.0 > lowest),
            h.filter(|p| p.0 > lowest),
            |f, h| f > h,
        )
    }

    /// The first sample (float or histogram) after `t`, if at or before `highest`.
    fn after(&self, r: &Raw, highest: i64) -> Option<(i64, Pv)> {
        let f = r.floats.get(self.f).copied().filter(|p| p.0 <= highest);
        let h = r.hists.get(self.h).filter(|p| p.0 <= highest);
        pick(f, h, |f, h| f < h)
    }
}

/// The float `f` or the histogram `h` as one sample: the float when both exist and
/// `float_first(its time, the histogram's)`, else whichever exists.
fn pick(
    f: Option<(i64, f64)>,
    h: Option<&(i64, Arc<Histogram>)>,
    float_first: impl Fn(i64, i64) -> bool,
) -> Option<(i64, Pv)> {
    match (f, h) {
        (Some(f), Some(h)) if float_first(f.0, h.0) => Some((f.0, Pv::F(f.1))),
        (_, Some(h)) => Some((h.0, Pv::H(Arc::clone(&h.1)))),
        (Some(f), None) => Some((f.0, Pv::F(f.1))),
        (None, None) => None,
    }
}

/// Linear interpolation at `t` between two float samples; a counter that went down in
/// between restarts from zero.
fn interpolate(p1: (i64, f64), p2: (i64, f64), t: i64, counter: bool) -> f64 {
    let y1 = if counter && p2.1 < p1.1 { 0.0 } else { p1.1 };
    y1 + (p2.1 - y1) * (t - p1.0) as f64 / (p2.0 - p1.0) as f64
}

/// Linear interpolation at `t` between two histograms (`None`: custom and exponential
/// buckets met). The result keeps `h2`'s counter-reset hint.
fn interpolate_hist(
    (t1, h1): (i64, &Histogram),
    (t2, h2): (i64, &Histogram),
    t: i64,
    counter: bool,
    notes: &mut Notes,
) -> Option<Histogram> {
    if t == t1 {
        return Some(h1.clone());
    }
    if t == t2 {
        return Some(h2.clone());
    }
    // Custom and exponential buckets do not mix, not even across a reset.
    if h1.uses_custom_buckets() != h2.uses_custom_buckets() {
        notes.incompatible_schema = true;
        return None;
    }
    let fraction = (t - t1) as f64 / (t2 - t1) as f64;
    if counter && hist::detect_reset(h2, h1) {
        return Some(hist::scale(h2, fraction));
    }
    notes.reconciled_sub |= hist::reconciles(h2, h1);
    let step = hist::scale(&hist::sub(h2, h1)?, fraction);
    notes.reconciled_add |= hist::reconciles(&step, h1);
    let mut out = hist::add(&step, h1)?;
    out.reset_hint = h2.reset_hint;
    Some(out)
}

/// Where the edges of an extended window lie in its samples `xs`: the index standing for
/// the start (the anchor, else the first sample) and for the end (with `smoothed`, the
/// first sample at or after the end). `None` when the window has no sample inside.
fn edges<T>(xs: &[(i64, T)], start: i64, end: i64, smoothed: bool) -> Option<(usize, usize)> {
    let mut last = xs.len().checked_sub(1)?;
    let first = xs[..last]
        .partition_point(|p| p.0 <= start)
        .saturating_sub(1);
    if smoothed {
        last = xs[..last].partition_point(|p| p.0 < end);
    }
    if xs[last].0 <= start || (smoothed && xs[first].0 > end) {
        return None;
    }
    Some((first, last))
}

/// `rate`/`increase`/`delta` over an extended window of floats (Prometheus'
/// `extendedRate`).
fn float_rate(
    f: &[(i64, f64)],
    (start, end, range): (i64, i64, i64),
    smoothed: bool,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (first, last) = edges(f, start, end, smoothed)?;
    let left = if smoothed && f[first].0 < start {
        interpolate(f[first], f[first + 1], start, counter)
    } else {
        f[first].1
    };
    let right = if smoothed && last > 0 && f[last].0 > end {
        interpolate(f[last - 1], f[last], end, counter)
    } else {
        f[last].1
    };
    let mut result = right - left;
    if counter {
        // Resets at the edges are in the interpolations; count those strictly inside.
        let from = first + usize::from(f[first].0 <= start);
        let to = if f[last].0 >= end { last } else { last + 1 };
        let mut prev = left;
        for p in f.get(from..to).unwrap_or(&[]) {
            if p.1 < prev {
                result += prev;
            }
            prev = p.1;
        }
        if right < prev {
            result += prev;
        }
    }
    if is_rate {
        result /= range as f64 / 1000.0;
    }
    Some(result)
}

/// `rate`/`increase`/`delta` over an extended window of histograms (Prometheus'
/// `extendedHistogramRate`).
fn hist_rate(
    h: &[(i64, Arc<Histogram>)],
    (start, end, range): (i64, i64, i64),
    smoothed: bool,
    counter: bool,
    is_rate: bool,
    notes: &mut Notes,
) -> Option<Histogram> {
    use CounterResetHint::Gauge;
    let (first, last) = edges(h, start, end, smoothed)?;
    let custom = h[first].1.uses_custom_buckets();
    for (_, p) in &h[first..=last] {
        if p.uses_custom_buckets() != custom {
            notes.incompatible_schema = true;
            return None;
        }
        if counter && p.reset_hint == Gauge {
            notes.not_counter = true;
        }
    }
    let at = |i: usize| (h[i].0, &*h[i].1);
    let left = if smoothed && h[first].0 < start {
        interpolate_hist(at(first), at(first + 1), start, counter, notes)?
    } else {
        (*h[first].1).clone()
    };
    let right = if smoothed && last > 0 && h[last].0 > end {
        interpolate_hist(at(last - 1), at(last), end, counter, notes)?
    } else {
        (*h[last].1).clone()
    };
    if !counter && (left.reset_hint != Gauge || right.reset_hint != Gauge) {
        notes.not_gauge = true;
    }
    notes.reconciled_sub |= hist::reconciles(&right, &left);
    let Some(mut result) = hist::sub(&right, &left) else {
        notes.incompatible_schema = true;
        return None;
    };
    if counter {
        let mut from = first + 1;
        let mut prev: &Histogram = &left;
        if smoothed && h[first].0 < start && hist::detect_reset(&h[first + 1].1, &h[first].1) {
            // The left interpolation already spans this reset.
            prev = &h[first + 1].1;
            from += 1;
        }
        // The last sample is `right` (or what it was interpolated from): compared below,
        // never in the loop, where its own reset hint would count it twice.
        if from <= last {
            let mut correction: Option<Histogram> = None;
            let mut add = |c: &Histogram, notes: &mut Notes| -> Option<()> {
                correction = Some(match correction.take() {
                    None => c.clone(),
                    Some(acc) => {
                        notes.reconciled_add |= hist::reconciles(&acc, c);
                        hist::add(&acc, c)?
                    }
                });
                Some(())
            };
            for (_, p) in &h[from..last] {
                if hist::detect_reset(p, prev) {
                    add(prev, notes)?;
                }
                prev = p;
            }
            if hist::detect_reset(&right, prev) {
                add(prev, notes)?;
            }
            if let Some(c) = correction {
                notes.reconciled_add |= hist::reconciles(&result, &c);
                result = hist::add(&result, &c)?;
            }
        }
    }
    if is_rate {
        result = hist::scale(&result, 1000.0 / range as f64);
    }
    let mut result = hist::compact(result);
    result.reset_hint = Gauge;
    Some(result)
}

/// One function over one extended window.
fn extended_value(
    func: RangeFn,
    fs: &[(i64, f64)],
    hs: &[(i64, Arc<Histogram>)],
    window: (i64, i64, i64),
    smoothed: bool,
    notes: &mut Notes,
) -> Option<Pv> {
    let (counter, is_rate) = match func {
        RangeFn::Rate => (true, true),
        RangeFn::Increase => (true, false),
        RangeFn::Delta => (false, false),
        _ => {
            let (_, end, range) = window;
            let w = Window {
                floats: fs,
                hists: hs,
                end,
                range,
                t: end,
                p: [0.0; 2],
                resets: None,
            };
            return apply(func, &w, notes);
        }
    };
    match (fs.is_empty(), hs.is_empty()) {
        (false, false) => {
            notes.mixed = true;
            None
        }
        (false, true) => float_rate(fs, window, smoothed, counter, is_rate).map(Pv::F),
        (true, false) => {
            hist_rate(hs, window, smoothed, counter, is_rate, notes).map(|h| Pv::H(Arc::new(h)))
        }
        (true, true) => None,
    }
}

impl Evaluator<'_> {
    /// The series of an extended range selector over every window of the grid (each
    /// window reaching a lookback further back, and, smoothed, further ahead), with the
    /// window ends, the range and the lookback (milliseconds).
    fn extended_select(
        &mut self,
        ms: &MatrixSelector,
        grid: Grid,
    ) -> Result<(Vec<Raw>, Vec<i64>, i64, i64)> {
        let lookback = self.lookback_ms();
        let (ends, lo, hi, range) = self.matrix_windows(ms, grid);
        let after = if ms.vs.smoothed { lookback } else { 0 };
        let series = self.select(&ms.vs, lo - range - lookback + 1, hi + after)?;
        Ok((series, ends, range, lookback))
    }

    /// `func` over an `anchored` or `smoothed` range selector.
    pub(super) fn extended_range_fn(
        &mut self,
        ms: &MatrixSelector,
        func: RangeFn,
        grid: Grid,
    ) -> Result<(Vec<Series>, Notes)> {
        let vs = &ms.vs;
        let (series, ends, range, lookback) = self.extended_select(ms, grid)?;
        // `select` counted the samples against the limit; released below.
        let loaded: usize = series.iter().map(|r| r.floats.len() + r.hists.len()).sum();
        let mut notes = Notes::default();
        let mut out = Vec::with_capacity(series.len());
        let (mut fs, mut hs) = (Vec::new(), Vec::new());
        for mut r in series {
            self.check_deadline()?;
            gmc_model::drop_stale_floats(&mut r.floats);
            let mut s = Series::new(std::mem::take(&mut r.labels), true);
            for (k, end) in ends.iter().enumerate() {
                let start = end - range;
                let inside =
                    window_points(&r, (start, *end), lookback, vs.smoothed, &mut fs, &mut hs);
                if !inside && !vs.smoothed {
                    continue;
                }
                let window = (start, *end, range);
                match extended_value(func, &fs, &hs, window, vs.smoothed, &mut notes) {
                    Some(Pv::F(v)) => s.floats.push((grid.ts(k), v)),
                    Some(Pv::H(h)) => s.hists.push((grid.ts(k), h)),
                    None => {}
                }
            }
            if s.points() > 0 {
                self.track(s.points())?;
                out.push(s);
            }
        }
        self.release(loaded);
        Ok((out, notes))
    }

    /// An `anchored` or `smoothed` range selector evaluated directly (an instant query):
    /// its samples with the anchor and, when smoothed, the sample after the end.
    pub(crate) fn extended_matrix(
        &mut self,
        ms: &MatrixSelector,
        grid: Grid,
    ) -> Result<Vec<Series>> {
        let vs = &ms.vs;
        let (series, ends, range, lookback) = self.extended_select(ms, grid)?;
        let end = ends.first().copied().unwrap_or(grid.start);
        let mut out = Vec::with_capacity(series.len());
        for mut r in series {
            gmc_model::drop_stale_floats(&mut r.floats);
            let mut s = Series::new(std::mem::take(&mut r.labels), false);
            let inside = window_points(
                &r,
                (end - range, end),
                lookback,
                vs.smoothed,
                &mut s.floats,
                &mut s.hists,
            );
            if (inside || vs.smoothed) && s.points() > 0 {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// `x smoothed`: at each step, the value interpolated between the newest sample at or
    /// before it and the first one after it (each within the lookback delta); the sample
    /// before carries on alone. With `timestamps` (for `timestamp()`), the step's time.
    pub(crate) fn smoothed_vector_selector(
        &mut self,
        vs: &VectorSelector,
        grid: Grid,
        timestamps: bool,
    ) -> Result<Vec<Series>> {
        let off = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let lookback = self.lookback_ms();
        let first = at.unwrap_or(grid.start) - off;
        let last = at.unwrap_or(grid.end) - off;
        // `select` counts the samples against the limit; released below.
        let series = self.select(vs, first - lookback + 1, last + lookback)?;
        let loaded: usize = series.iter().map(|r| r.floats.len() + r.hists.len()).sum();
        let mut notes = Notes::default();
        let mut mixed_names = Vec::new();
        let mut out = Vec::with_capacity(series.len());
        for mut r in series {
            self.check_deadline()?;
            gmc_model::drop_stale_floats(&mut r.floats);
            let mut s = Series::new(std::mem::take(&mut r.labels), false);
            let mut mixed = false;
            for k in 0..grid.len() {
                let t = at.unwrap_or(grid.ts(k)) - off;
                let v = match smoothed_at(&r, t, lookback, &mut notes) {
                    Ok(v) => v,
                    Err(Mixed) => {
                        mixed = true;
                        None
                    }
                };
                match v {
                    Some(_) if timestamps => s.floats.push((grid.ts(k), t as f64 / 1000.0)),
                    Some(Pv::F(f)) => s.floats.push((grid.ts(k), f)),
                    Some(Pv::H(h)) => s.hists.push((grid.ts(k), h)),
                    None => {}
                }
            }
            if mixed {
                mixed_names.push(s.labels.get(METRIC_NAME).unwrap_or_default().to_owned());
            }
            if s.points() > 0 {
                self.track(s.points())?;
                out.push(s);
            }
        }
        self.release(loaded);
        for name in mixed_names {
            self.warn(format!(
                "PromQL warning: encountered a mix of histograms and floats for metric name {name:?}"
            ));
        }
        if notes.incompatible_schema {
            let name = vs.name.clone().unwrap_or_default();
            self.warn(format!(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name:?}"
            ));
        }
        Ok(out)
    }
}

/// A float sample next to a histogram sample: no value, and a warning.
struct Mixed;

/// The `smoothed` value of `r` at `t`.
fn smoothed_at(
    r: &Raw,
    t: i64,
    lookback: i64,
    notes: &mut Notes,
) -> std::result::Result<Option<Pv>, Mixed> {
    let at = Past::new(r, t);
    let Some((prev_t, prev)) = at.before(r, t - lookback) else {
        return Ok(None);
    };
    if prev_t == t {
        return Ok(Some(prev));
    }
    let Some(next) = at.after(r, t + lookback) else {
        return Ok(Some(prev));
    };
    match (prev, next) {
        (Pv::F(a), (nt, Pv::F(b))) => Ok(Some(Pv::F(interpolate((prev_t, a), (nt, b), t, false)))),
        (Pv::H(a), (nt, Pv::H(b))) => {
            let counter =
                a.reset_hint != CounterResetHint::Gauge && b.reset_hint != CounterResetHint::Gauge;
            Ok(interpolate_hist((prev_t, &a), (nt, &b), t, counter, notes)
                .map(|h| Pv::H(Arc::new(h))))
        }
        _ => Err(Mixed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(floats: &[(i64, f64)]) -> Raw {
        Raw {
            floats: floats.to_vec(),
            ..Raw::default()
        }
    }

    #[test]
    fn the_anchor_is_the_newest_sample_within_the_lookback() {
        let r = raw(&[(0, 1.0), (120, 2.0), (480, 3.0)]);
        let (mut fs, mut hs) = (Vec::new(), Vec::new());
        window_points(&r, (420, 480), 301, false, &mut fs, &mut hs);
        assert_eq!(fs, vec![(120, 2.0), (480, 3.0)]);
        // 120 is exactly one lookback before 420: the lookback window is left-open.
        window_points(&r, (420, 480), 300, false, &mut fs, &mut hs);
        assert_eq!(fs, vec![(480, 3.0)]);
        window_points(&r, (0, 60), 300, true, &mut fs, &mut hs);
        assert_eq!(fs, vec![(0, 1.0), (120, 2.0)]);
    }

    #[test]
    fn anchored_increase_is_the_plain_difference_with_resets() {
        // 5, 10, then a reset to 3: 10 - 5 + 3.
        let f = [(0, 5.0), (30, 10.0), (60, 3.0)];
        assert_eq!(float_rate(&f, (0, 70, 70), false, true, false), Some(8.0));
        assert_eq!(float_rate(&f, (0, 70, 70), false, false, false), Some(-2.0));
    }

    #[test]
    fn smoothed_edges_are_interpolated() {
        // Window (5, 15]: 5 at t=10 and 6 at t=20 give 5.5 at the end; nothing before.
        let f = [(10, 5.0), (20, 6.0)];
        assert_eq!(float_rate(&f, (5, 15, 10), true, true, false), Some(0.5));
        // Only a sample after the window: no value.
        assert_eq!(float_rate(&[(10, 5.0)], (0, 5, 5), true, true, false), None);
        let r = raw(&[(10, 2.0), (20, 3.0)]);
        let mut notes = Notes::default();
        let v = smoothed_at(&r, 15, 300, &mut notes);
        assert!(matches!(v, Ok(Some(Pv::F(x))) if x == 2.5));
        // Nothing follows: the last sample carries on.
        assert!(matches!(smoothed_at(&r, 25, 300, &mut notes), Ok(Some(Pv::F(x))) if x == 3.0));
    }

    #[test]
    fn the_modifiers_parse_and_print_back() {
        for q in [
            "rate(x[5m] anchored)",
            "increase(x[5m] smoothed offset 1m)",
            "x smoothed @ 100.000",
        ] {
            let e = promql_parser::parser::parse(q).map(|e| e.to_string());
            assert_eq!(e.as_deref(), Ok(q));
        }
        for q in ["x anchored", "sum(x) smoothed", "x[5m] anchored smoothed"] {
            assert!(promql_parser::parser::parse(q).is_err(), "{q}");
        }
    }

    #[test]
    fn only_the_supported_functions_take_the_modifiers() {
        let mut vs = VectorSelector::from("x");
        vs.anchored = true;
        assert!(check_modifier("resets", &vs).is_ok());
        let e = check_modifier("deriv", &vs).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("anchored modifier can only be used with: changes, delta, increase, rate, resets - not with deriv")
        );
        vs.anchored = false;
        vs.smoothed = true;
        assert!(check_modifier("resets", &vs).is_err());
    }
}
