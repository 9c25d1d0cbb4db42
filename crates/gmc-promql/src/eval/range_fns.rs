//! Functions over range vectors (`rate`, `*_over_time`, `deriv`, ...): one window per
//! step, found by binary search in the series' samples, which were read once.

use std::sync::Arc;
use std::time::Instant;

use gmc_model::{Histogram, Labels, METRIC_NAME};
use promql_parser::parser::{Call, Expr};

use super::aggregate::{kahan_inc, quantile};
use super::window_extrema::WindowExtrema;
use super::window_sums::{self, WindowSums};
use super::{unparen, Evaluator, Grid, LazyInput, Pv, RangeInput, Raw, Series, Val};
use crate::error::{Error, Result};
use crate::hist;

mod extended;

/// Per-thread scratch of the range functions, reused across series: the counter-reset
/// prefix of `rate`-like functions and the sliding state of the `*_over_time` functions
/// that answer a window without visiting its samples.
#[derive(Debug, Default)]
pub(crate) struct WindowScratch {
    /// Counter-reset correction prefix sums; empty when the series never resets.
    resets: Vec<f64>,
    sums: WindowSums,
    extrema: WindowExtrema,
}

impl WindowScratch {
    /// Prepare for one series of `func`. Returns whether [`Self::slide`] may answer its
    /// windows: a range query (`steps` > 1) of a float-only series and a function with
    /// a sliding form whose preconditions the series meets.
    fn start(&mut self, func: RangeFn, counter: bool, r: &Raw, steps: usize) -> bool {
        self.resets.clear();
        // Most counters never reset: one compare per sample finds that out, and their
        // windows then need no correction at all, where building the prefix costs a
        // dependent add per sample.
        if counter && r.floats.len() > 2 && has_decrease(&r.floats) {
            self.resets.push(0.0);
            let mut acc = 0.0;
            for w in r.floats.windows(2) {
                if w[1].1 < w[0].1 {
                    acc += w[0].1;
                }
                self.resets.push(acc);
            }
        }
        if steps <= 1 || !r.hists.is_empty() {
            return false;
        }
        match func {
            // O(1) per step from prefix sums (`window_sums`).
            RangeFn::SumOverTime | RangeFn::AvgOverTime => {
                self.sums.build(r.floats.iter().map(|f| f.1))
            }
            // A monotonic queue slides with the windows (`window_extrema`).
            RangeFn::MaxOverTime | RangeFn::MinOverTime => {
                self.extrema.start(func == RangeFn::MinOverTime);
                true
            }
            _ => false,
        }
    }

    /// `func` over `floats[f0..f1]` from the sliding state, or `None` when the window
    /// must be evaluated directly (e.g. sums the prefixes cannot give to full precision).
    fn slide(&mut self, func: RangeFn, floats: &[(i64, f64)], f0: usize, f1: usize) -> Option<f64> {
        match func {
            RangeFn::SumOverTime => self.sums.window(f0, f1).map(window_sums::sum_of),
            RangeFn::AvgOverTime => self
                .sums
                .window(f0, f1)
                .map(|dd| window_sums::avg_of(dd, f1 - f0)),
            RangeFn::MaxOverTime | RangeFn::MinOverTime => self.extrema.window(floats, f0, f1),
            _ => None,
        }
    }
}

/// Names of the functions taking a range vector.
pub(crate) const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "changes",
    "resets",
    "deriv",
    "predict_linear",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "quantile_over_time",
    "mad_over_time",
    "double_exponential_smoothing",
    "holt_winters",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "absent_over_time",
];

/// A range function, resolved once per call (not per window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFn {
    /// `rate`
    Rate,
    /// `increase`
    Increase,
    /// `delta`
    Delta,
    /// `irate`
    Irate,
    /// `idelta`
    Idelta,
    /// `changes`
    Changes,
    /// `resets`
    Resets,
    /// `deriv`
    Deriv,
    /// `predict_linear`
    PredictLinear,
    /// `avg_over_time`
    AvgOverTime,
    /// `sum_over_time`
    SumOverTime,
    /// `count_over_time`
    CountOverTime,
    /// `min_over_time`
    MinOverTime,
    /// `max_over_time`
    MaxOverTime,
    /// `stddev_over_time`
    StddevOverTime,
    /// `stdvar_over_time`
    StdvarOverTime,
    /// `last_over_time`
    LastOverTime,
    /// `first_over_time`
    FirstOverTime,
    /// `present_over_time`
    PresentOverTime,
    /// `quantile_over_time`
    QuantileOverTime,
    /// `mad_over_time`
    MadOverTime,
    /// `double_exponential_smoothing`
    DoubleExponentialSmoothing,
    /// `holt_winters`
    HoltWinters,
    /// `ts_of_first_over_time`
    TsOfFirstOverTime,
    /// `ts_of_last_over_time`
    TsOfLastOverTime,
    /// `ts_of_min_over_time`
    TsOfMinOverTime,
    /// `ts_of_max_over_time`
    TsOfMaxOverTime,
    /// `absent_over_time`
    AbsentOverTime,
}

impl RangeFn {
    pub(crate) fn from_name(name: &str) -> Option<RangeFn> {
        Some(match name {
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "irate" => RangeFn::Irate,
            "idelta" => RangeFn::Idelta,
            "changes" => RangeFn::Changes,
            "resets" => RangeFn::Resets,
            "deriv" => RangeFn::Deriv,
            "predict_linear" => RangeFn::PredictLinear,
            "avg_over_time" => RangeFn::AvgOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "count_over_time" => RangeFn::CountOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "last_over_time" => RangeFn::LastOverTime,
            "first_over_time" => RangeFn::FirstOverTime,
            "present_over_time" => RangeFn::PresentOverTime,
            "quantile_over_time" => RangeFn::QuantileOverTime,
            "mad_over_time" => RangeFn::MadOverTime,
            "double_exponential_smoothing" => RangeFn::DoubleExponentialSmoothing,
            "holt_winters" => RangeFn::HoltWinters,
            "ts_of_first_over_time" => RangeFn::TsOfFirstOverTime,
            "ts_of_last_over_time" => RangeFn::TsOfLastOverTime,
            "ts_of_min_over_time" => RangeFn::TsOfMinOverTime,
            "ts_of_max_over_time" => RangeFn::TsOfMaxOverTime,
            "absent_over_time" => RangeFn::AbsentOverTime,
            _ => return None,
        })
    }
}

/// Context of one window.
pub(crate) struct Window<'s> {
    floats: &'s [(i64, f64)],
    hists: &'s [(i64, Arc<Histogram>)],
    /// Window end (evaluation time minus offset).
    end: i64,
    range: i64,
    /// Step timestamp (evaluation time).
    t: i64,
    /// Scalar parameters at this step.
    p: [f64; 2],
    /// Counter-reset correction prefix sums of the series and the window's first index;
    /// an empty slice when the series never resets (`None`: scan the window).
    resets: Option<(&'s [f64], usize)>,
}

/// Annotations a window function may raise.
#[derive(Default)]
pub(crate) struct Notes {
    mixed: bool,
    not_counter: bool,
    not_gauge: bool,
    quantile_range: Option<f64>,
    ignored_hist: bool,
    incompatible_schema: bool,
    /// Custom-bucket histograms with different bounds were combined on shared bounds,
    /// by aggregation over time, subtraction or addition.
    reconciled_agg: bool,
    reconciled_sub: bool,
    reconciled_add: bool,
}

impl Notes {
    /// Add the notes of another part of the same evaluation (the first quantile kept).
    fn merge(&mut self, o: Notes) {
        self.mixed |= o.mixed;
        self.not_counter |= o.not_counter;
        self.not_gauge |= o.not_gauge;
        self.quantile_range = self.quantile_range.or(o.quantile_range);
        self.ignored_hist |= o.ignored_hist;
        self.incompatible_schema |= o.incompatible_schema;
        self.reconciled_agg |= o.reconciled_agg;
        self.reconciled_sub |= o.reconciled_sub;
        self.reconciled_add |= o.reconciled_add;
    }
}

fn linear_regression(samples: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].1;
    let mut const_y = true;
    for (i, (t, f)) in samples.iter().enumerate() {
        if const_y && i > 0 && *f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (*t - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(*f, sy, cy);
        (sxy, cxy) = kahan_inc(x * f, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Prometheus' `extrapolatedRate` for `rate`, `increase` and `delta`.
fn extrapolated_rate(
    w: &Window<'_>,
    counter: bool,
    is_rate: bool,
    notes: &mut Notes,
) -> Option<Pv> {
    let (nf, nh) = (w.floats.len(), w.hists.len());
    if nf + nh < 2 {
        return None;
    }
    if nf > 0 && nh > 0 {
        notes.mixed = true;
        return None;
    }
    let range_start = w.end - w.range;
    let range_end = w.end;
    let (first_t, last_t, count) = if nf > 0 {
        (w.floats[0].0, w.floats[nf - 1].0, nf)
    } else {
        (w.hists[0].0, w.hists[nh - 1].0, nh)
    };
    let mut result_f = 0.0;
    let mut result_h = None;
    if nf > 0 {
        result_f = w.floats[nf - 1].1 - w.floats[0].1;
        if counter {
            match w.resets {
                // The series has no reset anywhere.
                Some(([], _)) => {}
                // Prefix sums of the reset corrections over the whole series.
                Some((pre, f0)) => result_f += pre[f0 + nf - 1] - pre[f0],
                None => {
                    let mut prev = w.floats[0].1;
                    for (_, v) in &w.floats[1..] {
                        if *v < prev {
                            result_f += prev;
                        }
                        prev = *v;
                    }
                }
            }
        }
    } else {
        let h = hist_rate(w.hists, counter, notes)?;
        result_h = Some(h);
    }
    // Durations stay in milliseconds: the extrapolation factor is a ratio of durations,
    // so the unit cancels out (and two divisions per window are saved).
    let sampled = (last_t - first_t) as f64;
    let avg_between = sampled / (count - 1) as f64;
    let mut to_start = (first_t - range_start) as f64;
    let mut to_end = (range_end - last_t) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    // Counters cannot go below zero: do not extrapolate past the zero point (for native
    // histograms, of the count).
    let (first_v, result_v) = match &result_h {
        Some(h) => (w.hists[0].1.count, h.count),
        None => (w.floats.first().map_or(0.0, |p| p.1), result_f),
    };
    if counter && result_v > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result_v);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.range as f64 / 1000.0;
    }
    match result_h {
        Some(h) => Some(Pv::H(Arc::new(hist::scale(&h, factor)))),
        None => Some(Pv::F(result_f * factor)),
    }
}

/// `last - first` of histograms, corrected for counter resets (Prometheus 3's
/// `histogramRate`). When the second sample follows a reset, the first one only marks
/// the start: it counts as an empty histogram of the second one's layout, so a change of
/// layout at the reset (e.g. from custom to exponential buckets) is not a conflict.
/// Otherwise every histogram must be of the same kind (custom or exponential); custom
/// bounds that differ are reconciled onto the bounds they share.
fn hist_rate(
    points: &[(i64, Arc<Histogram>)],
    counter: bool,
    notes: &mut Notes,
) -> Option<Histogram> {
    use gmc_model::CounterResetHint::Gauge;
    let last = &points[points.len() - 1].1;
    let mut first = std::borrow::Cow::Borrowed(&*points[0].1);
    if counter && (first.reset_hint == Gauge || last.reset_hint == Gauge) {
        notes.not_counter = true;
    }
    if counter && points.len() > 1 {
        let second = &points[1].1;
        if hist::detect_reset(second, &first) {
            first = std::borrow::Cow::Owned(Histogram {
                schema: second.schema,
                custom_values: second.custom_values.clone(),
                ..Histogram::default()
            });
        }
    }
    let custom = first.uses_custom_buckets();
    if last.uses_custom_buckets() != custom {
        notes.incompatible_schema = true;
        return None;
    }
    if counter {
        for (_, cur) in &points[1..points.len() - 1] {
            if cur.reset_hint == Gauge {
                notes.not_counter = true;
            }
            if cur.uses_custom_buckets() != custom {
                notes.incompatible_schema = true;
                return None;
            }
        }
    }
    notes.reconciled_sub |= hist::reconciles(last, &first);
    let mut h = hist::sub(last, &first)?;
    if counter {
        let mut prev: &Histogram = &first;
        for (_, cur) in &points[1..] {
            if hist::detect_reset(cur, prev) {
                notes.reconciled_add |= hist::reconciles(&h, prev);
                h = hist::add(&h, prev)?;
            }
            prev = cur;
        }
    } else if first.reset_hint != Gauge || last.reset_hint != Gauge {
        notes.not_gauge = true;
    }
    let mut h = hist::compact(h);
    h.reset_hint = Gauge;
    Some(h)
}

/// `sum_over_time` (or, with `avg`, `avg_over_time`) of a window's histograms; none when
/// custom and exponential histograms are mixed.
fn hist_sum_over_time(hs: &[(i64, Arc<Histogram>)], avg: bool, notes: &mut Notes) -> Option<Pv> {
    let first = &hs.first()?.1;
    let mut acc = if avg {
        hist::HistSum::new_avg(first)
    } else {
        hist::HistSum::new(first)
    };
    for (_, h) in &hs[1..] {
        if acc.add(h).is_none() {
            notes.incompatible_schema = true;
            return None;
        }
    }
    notes.reconciled_agg |= acc.reconciled;
    let factor = if avg { 1.0 / hs.len() as f64 } else { 1.0 };
    Some(Pv::H(Arc::new(acc.finish(factor))))
}

/// `irate` / `idelta`.
fn instant_value(w: &Window<'_>, is_rate: bool, notes: &mut Notes) -> Option<Pv> {
    // The last two samples, whatever their type.
    let mut all: Vec<(i64, Pv)> = Vec::with_capacity(4);
    for (t, f) in w.floats.iter().rev().take(2) {
        all.push((*t, Pv::F(*f)));
    }
    for (t, h) in w.hists.iter().rev().take(2) {
        all.push((*t, Pv::H(Arc::clone(h))));
    }
    if all.len() < 2 {
        return None;
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.0));
    let (lt, lv) = &all[0];
    let (pt, pv) = &all[1];
    let interval = lt - pt;
    if interval == 0 {
        return None;
    }
    match (lv, pv) {
        (Pv::F(l), Pv::F(p)) => {
            let mut r = if is_rate && l < p { *l } else { l - p };
            if is_rate {
                r /= interval as f64 / 1000.0;
            }
            Some(Pv::F(r))
        }
        (Pv::H(l), Pv::H(p)) => {
            let mut r = if is_rate && hist::detect_reset(l, p) {
                (**l).clone()
            } else {
                notes.reconciled_sub |= hist::reconciles(l, p);
                hist::sub(l, p)?
            };
            if is_rate {
                r = hist::scale(&r, 1000.0 / interval as f64);
            }
            r.reset_hint = gmc_model::CounterResetHint::Gauge;
            Some(Pv::H(Arc::new(hist::compact(r))))
        }
        _ => {
            notes.mixed = true;
            None
        }
    }
}

/// Floats and histograms of a window merged in time order.
fn merged<'s>(w: &Window<'s>) -> Vec<(i64, Pv)> {
    let mut v: Vec<(i64, Pv)> = w.floats.iter().map(|(t, f)| (*t, Pv::F(*f))).collect();
    if !w.hists.is_empty() {
        v.extend(w.hists.iter().map(|(t, h)| (*t, Pv::H(Arc::clone(h)))));
        v.sort_by_key(|p| p.0);
    }
    v
}

/// The Kahan–Neumaier sum of `fs` as [`kahan_inc`] accumulates it, `(sum, compensation)`,
/// when no partial sum leaves the finite range (`None` otherwise, and the caller runs the
/// serial form). While every partial sum is finite, `kahan_inc` never takes its infinity
/// branch, so this performs the same operations in the same order and returns the same
/// bits; it only leaves the per-step infinity tests out of the loop (one test of the
/// result covers them: a sum that overflowed or met a NaN stays non-finite), which
/// halves the cost of a long window (6.4 → 3.3 ns a sample, see
/// `benches/runs/2026-12-06-1715-seek-tables.md`).
fn neumaier_finite(fs: &[(i64, f64)]) -> Option<(f64, f64)> {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for &(_, f) in fs {
        let t = sum + f;
        c += if sum.abs() >= f.abs() {
            (sum - t) + f
        } else {
            (f - t) + sum
        };
        sum = t;
    }
    (sum.is_finite() && c.is_finite()).then_some((sum, c))
}

/// Prometheus' `sum_over_time` of floats: a Kahan sum.
fn sum_floats(fs: &[(i64, f64)]) -> f64 {
    let (s, c) = neumaier_finite(fs).unwrap_or_else(|| {
        fs.iter()
            .fold((0.0, 0.0), |(s, c), &(_, f)| kahan_inc(f, s, c))
    });
    s + c
}

/// Prometheus' `avg_over_time` of floats: a Kahan sum, switching to an incremental mean
/// once the sum would overflow.
fn avg_floats(fs: &[(i64, f64)]) -> f64 {
    if let Some((sum, c)) = neumaier_finite(fs) {
        // The serial form below divides its float count, which is exact up to 2^53.
        let count = fs.len() as f64;
        return sum / count + c / count;
    }
    avg_floats_serial(fs)
}

fn avg_floats_serial(fs: &[(i64, f64)]) -> f64 {
    let (mut sum, mut mean, mut count, mut c) = (0.0, 0.0, 0.0, 0.0);
    let mut incremental = false;
    for (_, f) in fs {
        let f = *f;
        count += 1.0;
        if !incremental {
            let (s2, c2) = kahan_inc(f, sum, c);
            if count == 1.0 || !s2.is_infinite() {
                sum = s2;
                c = c2;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        if mean.is_infinite() {
            if f.is_infinite() && (mean > 0.0) == (f > 0.0) {
                continue;
            }
            if !f.is_infinite() && !f.is_nan() {
                continue;
            }
        }
        let corrected = mean + c;
        (mean, c) = kahan_inc(f / count - corrected / count, mean, c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn variance(fs: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut cm, mut aux, mut ca) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (_, f) in fs {
        count += 1.0;
        let delta = f - (mean + cm);
        (mean, cm) = kahan_inc(delta / count, mean, cm);
        (aux, ca) = kahan_inc(delta * (f - (mean + cm)), aux, ca);
    }
    (aux + ca) / count
}

fn calc_trend(i: usize, tf: f64, s0: f64, s1: f64, b: f64) -> f64 {
    if i == 0 {
        return b;
    }
    tf * (s1 - s0) + (1.0 - tf) * b
}

/// Evaluate one range function over one window.
fn apply(f: RangeFn, w: &Window<'_>, notes: &mut Notes) -> Option<Pv> {
    let fs = w.floats;
    let hs = w.hists;
    let only_floats = |notes: &mut Notes| {
        if !hs.is_empty() {
            notes.ignored_hist = true;
        }
        !fs.is_empty()
    };
    match f {
        RangeFn::Rate => extrapolated_rate(w, true, true, notes),
        RangeFn::Increase => extrapolated_rate(w, true, false, notes),
        RangeFn::Delta => extrapolated_rate(w, false, false, notes),
        RangeFn::Irate => instant_value(w, true, notes),
        RangeFn::Idelta => instant_value(w, false, notes),
        RangeFn::Changes | RangeFn::Resets => {
            let m = merged(w);
            if m.is_empty() {
                return None;
            }
            let mut n = 0.0;
            for pair in m.windows(2) {
                let changed = match (&pair[0].1, &pair[1].1) {
                    (Pv::F(a), Pv::F(b)) => {
                        if f == RangeFn::Changes {
                            a != b && !(a.is_nan() && b.is_nan())
                        } else {
                            b < a
                        }
                    }
                    (Pv::H(a), Pv::H(b)) => {
                        if f == RangeFn::Changes {
                            !hist::equals(a, b)
                        } else {
                            hist::detect_reset(b, a)
                        }
                    }
                    _ => true,
                };
                if changed {
                    n += 1.0;
                }
            }
            Some(Pv::F(n))
        }
        RangeFn::Deriv => {
            if !hs.is_empty() && fs.is_empty() {
                notes.ignored_hist = true;
            }
            if fs.len() < 2 {
                return None;
            }
            Some(Pv::F(linear_regression(fs, fs[0].0).0))
        }
        RangeFn::PredictLinear => {
            if fs.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(fs, w.t);
            Some(Pv::F(slope * w.p[0] + intercept))
        }
        RangeFn::AvgOverTime => {
            if !fs.is_empty() && !hs.is_empty() {
                notes.mixed = true;
                return None;
            }
            if !fs.is_empty() {
                return Some(Pv::F(avg_floats(fs)));
            }
            hist_sum_over_time(hs, true, notes)
        }
        RangeFn::SumOverTime => {
            if !fs.is_empty() && !hs.is_empty() {
                notes.mixed = true;
                return None;
            }
            if !fs.is_empty() {
                return Some(Pv::F(sum_floats(fs)));
            }
            hist_sum_over_time(hs, false, notes)
        }
        RangeFn::CountOverTime => {
            let n = fs.len() + hs.len();
            (n > 0).then_some(Pv::F(n as f64))
        }
        RangeFn::PresentOverTime => (fs.len() + hs.len() > 0).then_some(Pv::F(1.0)),
        RangeFn::MinOverTime | RangeFn::MaxOverTime => {
            if !only_floats(notes) {
                return None;
            }
            Some(Pv::F(extreme(fs, f == RangeFn::MinOverTime)))
        }
        RangeFn::StddevOverTime | RangeFn::StdvarOverTime => {
            if !only_floats(notes) {
                return None;
            }
            let v = variance(fs);
            Some(Pv::F(if f == RangeFn::StddevOverTime {
                v.sqrt()
            } else {
                v
            }))
        }
        RangeFn::QuantileOverTime => {
            if !only_floats(notes) {
                return None;
            }
            let q = w.p[0];
            if !(0.0..=1.0).contains(&q) {
                notes.quantile_range = Some(q);
            }
            let mut v: Vec<f64> = fs.iter().map(|p| p.1).collect();
            Some(Pv::F(quantile(q, &mut v)))
        }
        RangeFn::MadOverTime => {
            if !only_floats(notes) {
                return None;
            }
            if fs.iter().any(|p| p.1.is_nan()) {
                return Some(Pv::F(f64::NAN));
            }
            let mut v: Vec<f64> = fs.iter().map(|p| p.1).collect();
            let median = quantile(0.5, &mut v);
            let mut dev: Vec<f64> = fs.iter().map(|p| (p.1 - median).abs()).collect();
            Some(Pv::F(quantile(0.5, &mut dev)))
        }
        RangeFn::LastOverTime => {
            let lf = fs.last();
            let lh = hs.last();
            match (lf, lh) {
                (Some(f), Some(h)) if h.0 > f.0 => Some(Pv::H(Arc::clone(&h.1))),
                (Some(f), _) => Some(Pv::F(f.1)),
                (None, Some(h)) => Some(Pv::H(Arc::clone(&h.1))),
                (None, None) => None,
            }
        }
        RangeFn::FirstOverTime => {
            let lf = fs.first();
            let lh = hs.first();
            match (lf, lh) {
                (Some(f), Some(h)) if h.0 < f.0 => Some(Pv::H(Arc::clone(&h.1))),
                (Some(f), _) => Some(Pv::F(f.1)),
                (None, Some(h)) => Some(Pv::H(Arc::clone(&h.1))),
                (None, None) => None,
            }
        }
        RangeFn::TsOfFirstOverTime => {
            let a = fs.first().map(|p| p.0);
            let b = hs.first().map(|p| p.0);
            let t = match (a, b) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) | (None, Some(x)) => x,
                _ => return None,
            };
            Some(Pv::F(t as f64 / 1000.0))
        }
        RangeFn::TsOfLastOverTime => {
            let a = fs.last().map(|p| p.0);
            let b = hs.last().map(|p| p.0);
            let t = match (a, b) {
                (Some(x), Some(y)) => x.max(y),
                (Some(x), None) | (None, Some(x)) => x,
                _ => return None,
            };
            Some(Pv::F(t as f64 / 1000.0))
        }
        RangeFn::TsOfMinOverTime | RangeFn::TsOfMaxOverTime => {
            if !only_floats(notes) {
                return None;
            }
            let (mut bt, mut bv) = fs[0];
            let min = f == RangeFn::TsOfMinOverTime;
            for (t, x) in &fs[1..] {
                let better = if min { *x <= bv } else { *x >= bv };
                if better || bv.is_nan() {
                    bv = *x;
                    bt = *t;
                }
            }
            Some(Pv::F(bt as f64 / 1000.0))
        }
        RangeFn::DoubleExponentialSmoothing | RangeFn::HoltWinters => {
            if fs.len() < 2 {
                if !hs.is_empty() && fs.is_empty() {
                    notes.ignored_hist = true;
                }
                return None;
            }
            let (sf, tf) = (w.p[0], w.p[1]);
            let (mut s0, mut s1, mut b) = (0.0, fs[0].1, fs[1].1 - fs[0].1);
            for (i, (_, f)) in fs.iter().enumerate().skip(1) {
                let x = sf * f;
                b = calc_trend(i - 1, tf, s0, s1, b);
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            Some(Pv::F(s1))
        }
        _ => None,
    }
}

/// Functions that keep the metric name of their input.
fn keeps_name(name: &str) -> bool {
    matches!(name, "last_over_time" | "first_over_time")
}

impl Evaluator<'_> {
    /// Evaluate a call of a range function.
    pub(crate) fn eval_range_call(&mut self, c: &Call, grid: Grid) -> Result<Val> {
        let name = c.func.name;
        let args = &c.args.args;
        let (matrix_idx, scalar_idx): (usize, &[usize]) = match name {
            "quantile_over_time" => (1, &[0]),
            "predict_linear" => (0, &[1]),
            "double_exponential_smoothing" | "holt_winters" => (0, &[1, 2]),
            _ => (0, &[]),
        };
        let marg = args
            .get(matrix_idx)
            .ok_or_else(|| Error::BadData(format!("missing argument to {name}")))?;
        let mut params: Vec<Vec<f64>> = Vec::new();
        for &i in scalar_idx {
            let a = args
                .get(i)
                .ok_or_else(|| Error::BadData(format!("missing argument to {name}")))?;
            params.push(self.eval_scalar(a, grid)?);
        }
        if name == "double_exponential_smoothing" || name == "holt_winters" {
            // Prometheus checks the factors at the first step and fails the query.
            let sf = params[0].first().copied().unwrap_or(f64::NAN);
            let tf = params[1].first().copied().unwrap_or(f64::NAN);
            if !(sf > 0.0 && sf < 1.0) {
                return Err(Error::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return Err(Error::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                )));
            }
        }
        let func = RangeFn::from_name(name)
            .ok_or_else(|| Error::BadData(format!("unknown function with name {name:?}")))?;
        let keep = keeps_name(name);
        let extended = match unparen(marg) {
            Expr::MatrixSelector(ms) if ms.vs.anchored || ms.vs.smoothed => Some(ms),
            _ => None,
        };
        // `absent_over_time` asks whether any series has a sample per window: read whole.
        let lazy = if name == "absent_over_time" || extended.is_some() {
            None
        } else {
            self.matrix_lazy(marg, grid)?
        };
        let (out, notes, metric_name) = match (lazy, extended) {
            (_, Some(ms)) => {
                extended::check_modifier(name, &ms.vs)?;
                let (out, notes) = self.extended_range_fn(ms, func, grid)?;
                (out, notes, super::selector_name(&ms.vs))
            }
            (Some(lazy), None) => {
                let metric_name = lazy.metric_name.clone();
                let (out, notes) = self.stream_range_fn(lazy, func, keep, &params, grid)?;
                (out, notes, metric_name)
            }
            (None, None) => {
                let input = self.range_input(marg, grid)?;
                if name == "absent_over_time" {
                    return Ok(self.absent_over_time(marg, &input, grid));
                }
                self.range_fn_decoded(input, func, keep, &params, grid)?
            }
        };
        let mname = metric_name.unwrap_or_default();
        if notes.mixed {
            self.warn(format!(
                "PromQL warning: encountered a mix of histograms and floats for metric name {mname:?}"
            ));
        }
        if notes.not_counter {
            self.warn(format!(
                "PromQL warning: this native histogram metric is not a counter: {mname:?}"
            ));
        }
        if notes.not_gauge {
            self.warn(format!(
                "PromQL warning: this native histogram metric is not a gauge: {mname:?}"
            ));
        }
        if notes.incompatible_schema {
            self.warn(format!(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name {mname:?}"
            ));
        }
        for (on, during) in [
            (notes.reconciled_agg, "aggregation"),
            (notes.reconciled_sub, "subtraction"),
            (notes.reconciled_add, "addition"),
        ] {
            if on {
                self.warn(format!(
                    "PromQL info: mismatched custom buckets were reconciled during {during}"
                ));
            }
        }
        if let Some(q) = notes.quantile_range {
            self.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                super::aggregate::format_float(q)
            ));
        }
        if notes.ignored_hist {
            self.warn(format!(
                "PromQL info: ignored histograms in a range containing both floats and histograms for metric name {mname:?}"
            ));
        }
        if name == "rate" || name == "increase" {
            self.counter_name_info(&out_names(&out), name);
        }
        Ok(Val::Vector(out))
    }

    /// A range function over series already decoded (subqueries, rollups): every
    /// series' samples are held for the whole call.
    fn range_fn_decoded(
        &mut self,
        input: RangeInput,
        func: RangeFn,
        keep: bool,
        params: &[Vec<f64>],
        grid: Grid,
    ) -> Result<(Vec<Series>, Notes, Option<String>)> {
        let loaded: usize = input
            .series
            .iter()
            .map(|r| r.floats.len() + r.hists.len())
            .sum();
        let mut notes = Notes::default();
        let mut out = Vec::with_capacity(input.series.len());
        let RangeInput {
            series,
            range,
            ends,
            metric_name,
        } = input;
        let call = RangeCall::new(func, keep, range, &ends, params, grid);
        let call = &call;
        // Series are independent: large inputs are split over the cores, each part with
        // its own window scratch and notes (merged below), in order.
        let deadline = self.deadline;
        let timeout = self.opts.timeout;
        // Work: every window visits its samples, so samples × windows per sample.
        let work = loaded.saturating_mul(super::windows_per_sample(range, grid, ends.len()));
        let parts = gmc_tsdb::par::map_parts_by_work(
            series,
            work,
            |part: Vec<Raw>| -> Result<(Vec<Series>, Notes)> {
                let mut notes = Notes::default();
                let mut scratch = WindowScratch::default();
                let mut done = Vec::with_capacity(part.len());
                for (k, r) in part.into_iter().enumerate() {
                    if k % 64 == 63 && Instant::now() > deadline {
                        return Err(Error::Timeout(timeout));
                    }
                    let s = range_series(r, call, &mut scratch, &mut notes);
                    if s.points() > 0 {
                        done.push(s);
                    }
                }
                Ok((done, notes))
            },
        );
        for part in parts {
            let (done, n) = part?;
            notes.merge(n);
            for s in done {
                self.track(s.points())?;
                out.push(s);
            }
        }
        self.release(loaded);
        Ok((out, notes, metric_name))
    }

    /// A range function over a matrix selector, decoding one series at a time per worker
    /// and dropping its samples once its windows are evaluated: the query holds the
    /// results and a decoded series per core, not every selected window at once. The
    /// sample limit applies to the samples held at once, as Prometheus counts them.
    fn stream_range_fn(
        &mut self,
        input: LazyInput,
        func: RangeFn,
        keep: bool,
        params: &[Vec<f64>],
        grid: Grid,
    ) -> Result<(Vec<Series>, Notes)> {
        let LazyInput {
            series,
            range,
            ends,
            span,
            ..
        } = input;
        // Work for the split over the cores, in sample-visits as `range_fn_decoded` counts
        // them (the samples themselves are estimated: they are unknown until decoded).
        let work = series
            .len()
            .saturating_mul(super::samples_guess(span))
            .saturating_mul(super::windows_per_sample(range, grid, ends.len()));
        let call = RangeCall::new(func, keep, range, &ends, params, grid);
        let call = &call;
        let (out, states) = self.stream_series(
            series,
            work,
            |mut r, (notes, scratch): &mut (Notes, WindowScratch)| {
                // Stale markers end a series for instant selectors only; windows skip them.
                gmc_model::drop_stale_floats(&mut r.floats);
                range_series(r, call, scratch, notes)
            },
        )?;
        let mut notes = Notes::default();
        for (n, _) in states {
            notes.merge(n);
        }
        Ok((out, notes))
    }

    fn counter_name_info(&mut self, names: &[String], _f: &str) {
        for n in names {
            let ok = n.ends_with("_total")
                || n.ends_with("_sum")
                || n.ends_with("_count")
                || n.ends_with("_bucket");
            if !ok {
                self.warn(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
                ));
            }
        }
    }

    fn absent_over_time(&mut self, arg: &Expr, input: &RangeInput, grid: Grid) -> Val {
        let labels = match unparen(arg) {
            Expr::MatrixSelector(ms) => absent_labels(&ms.vs),
            _ => Labels::default(),
        };
        let mut s = Series::new(labels, false);
        for (i, &end) in input.ends.iter().enumerate() {
            let lo = end - input.range;
            let any = input.series.iter().any(|r| {
                r.floats.iter().any(|p| p.0 > lo && p.0 <= end)
                    || r.hists.iter().any(|p| p.0 > lo && p.0 <= end)
            });
            if !any {
                s.floats.push((grid.ts(i), 1.0));
            }
        }
        Val::Vector(if s.points() > 0 { vec![s] } else { Vec::new() })
    }
}

/// What every series of one range-function call shares.
struct RangeCall<'a> {
    func: RangeFn,
    /// `rate` or `increase`: counter resets are corrected.
    counter: bool,
    /// The function keeps the metric name.
    keep: bool,
    /// Window length in milliseconds; a window is `(end - range, end]`.
    range: i64,
    /// Window end per grid step.
    ends: &'a [i64],
    /// Whether `ends` ascend (they do unless `@` or offsets make them otherwise).
    ends_sorted: bool,
    /// Scalar arguments per step.
    params: &'a [Vec<f64>],
    grid: Grid,
}

impl<'a> RangeCall<'a> {
    fn new(
        func: RangeFn,
        keep: bool,
        range: i64,
        ends: &'a [i64],
        params: &'a [Vec<f64>],
        grid: Grid,
    ) -> Self {
        RangeCall {
            func,
            counter: matches!(func, RangeFn::Rate | RangeFn::Increase),
            keep,
            range,
            ends,
            ends_sorted: ends.is_sorted(),
            params,
            grid,
        }
    }
}

/// One series of a range function over every window: the pure part of
/// [`Evaluator::eval_range_call`], run on several threads for large inputs. `scratch` is
/// reused across series.
fn range_series(
    r: Raw,
    call: &RangeCall<'_>,
    scratch: &mut WindowScratch,
    notes: &mut Notes,
) -> Series {
    let RangeCall {
        func,
        counter,
        keep,
        range,
        ends,
        ends_sorted,
        params,
        grid,
    } = *call;
    let sliding = scratch.start(func, counter, &r, ends.len());
    let steps = steps_with_data(&r, range, ends, ends_sorted);
    let mut s = Series::new(r.labels, !keep);
    s.floats.reserve(steps.len());
    let (mut f0, mut f1, mut h0, mut h1) = (0usize, 0usize, 0usize, 0usize);
    let mut prev_end = i64::MIN;
    for (i, &end) in ends.iter().enumerate().take(steps.end).skip(steps.start) {
        if end < prev_end {
            (f0, f1, h0, h1) = (0, 0, 0, 0);
        }
        prev_end = end;
        let lo = end - range;
        f1 = advance_past(&r.floats, f1, end, |p| p.0);
        f0 = advance_past(&r.floats[..f1], f0, lo, |p| p.0);
        h1 = advance_past(&r.hists, h1, end, |p| p.0);
        h0 = advance_past(&r.hists[..h1], h0, lo, |p| p.0);
        if f0 == f1 && h0 == h1 {
            continue;
        }
        if let Some(v) = sliding
            .then(|| scratch.slide(func, &r.floats, f0, f1))
            .flatten()
        {
            super::binary::push_point(&mut s, grid.ts(i), Pv::F(v));
            continue;
        }
        let w = Window {
            floats: &r.floats[f0..f1],
            hists: &r.hists[h0..h1],
            end,
            range,
            t: grid.ts(i),
            p: [
                params.first().map_or(f64::NAN, |p| p[i]),
                params.get(1).map_or(f64::NAN, |p| p[i]),
            ],
            resets: (counter && r.floats.len() > 2).then_some((scratch.resets.as_slice(), f0)),
        };
        if let Some(v) = apply(func, &w, notes) {
            super::binary::push_point(&mut s, grid.ts(i), v);
        }
    }
    s
}

/// The steps whose windows can hold a sample of `r`: with `ends` ascending, those ending
/// at or after its first sample and starting before its last. A range query over an hour
/// of steps often meets series that hold minutes of it; the steps outside cost four
/// window-edge searches each when visited (most of `range_series` in a `rate` query over
/// ten minutes of data).
fn steps_with_data(r: &Raw, range: i64, ends: &[i64], ends_sorted: bool) -> std::ops::Range<usize> {
    let Some((first, last)) = r.span() else {
        return 0..0;
    };
    if !ends_sorted {
        return 0..ends.len();
    }
    // A window is `(end - range, end]`.
    let lo = ends.partition_point(|&e| e < first);
    let hi = ends.partition_point(|&e| e.saturating_sub(range) < last);
    lo..hi.max(lo)
}

/// The first index at or after `from` whose timestamp is past `bound`, in `xs` sorted by
/// timestamp (`xs.len()` when there is none; `from` when `from` is past the end).
///
/// Why not a plain scan: a range query's step moves both window edges by a step's worth
/// of samples (60 at a 60 s step over 1 s data), and the scan's dependent compares were a
/// third of `range_series` in a `rate` query's profile. A binary search over the rest of
/// the series cost nearly as much (ten dependent probes per edge). Short hops are
/// scanned; longer ones gallop (probes 8, 16, 32 … samples ahead) and search only the
/// last bracket, so a hop of `d` samples costs about `2·log2(d)` probes.
#[inline]
pub(super) fn advance_past<T>(xs: &[T], from: usize, bound: i64, ts: impl Fn(&T) -> i64) -> usize {
    const SCAN: usize = 8;
    let Some(rest) = xs.get(from..) else {
        return from;
    };
    let head = rest.len().min(SCAN);
    if let Some(k) = rest[..head].iter().position(|x| ts(x) > bound) {
        return from + k;
    }
    // Every sample before `lo` is at or before `bound`; the answer is in `lo..=hi`.
    let (mut lo, mut step) = (head, SCAN);
    let hi = loop {
        let probe = lo + step;
        match rest.get(probe) {
            Some(x) if ts(x) <= bound => {
                lo = probe + 1;
                step *= 2;
            }
            Some(_) => break probe,
            None => break rest.len(),
        }
    };
    from + lo + rest[lo..hi].partition_point(|x| ts(x) <= bound)
}

/// Whether any value is below the one before it (a counter reset; NaN compares false,
/// as in the serial check).
fn has_decrease(fs: &[(i64, f64)]) -> bool {
    gmc_model::lanes::any_adjacent(fs, |a, b| b.1 < a.1)
}

/// `min_over_time` / `max_over_time` of a non-empty window, as Prometheus computes it:
/// start with the first value and take each later one that is better, or any value while
/// the current one is NaN. That is the extreme of the non-NaN values (the first of equal
/// ones), or NaN when all are NaN.
///
/// Why not that loop: it is one compare-and-select chain per sample. Past the leading
/// NaNs, four independent chains run here (a NaN is never better, so none can take one);
/// equal values are bit-identical except ±0, so only a zero result is decided again by
/// the serial loop, where "the first of equal ones" picks its sign.
fn extreme(fs: &[(i64, f64)], min: bool) -> f64 {
    let Some(k) = fs.iter().position(|p| !p.1.is_nan()) else {
        return extreme_serial(fs, min);
    };
    let rest = &fs[k..];
    let v = if min {
        extreme_lanes::<true>(rest)
    } else {
        extreme_lanes::<false>(rest)
    };
    if v == 0.0 {
        extreme_serial(rest, min)
    } else {
        v
    }
}

/// Prometheus' `min_over_time` / `max_over_time` loop as it is written there (NaN for an
/// empty window); the reference the faster scans are tested against.
pub(crate) fn extreme_serial(fs: &[(i64, f64)], min: bool) -> f64 {
    let mut v = fs.first().map_or(f64::NAN, |p| p.1);
    for &(_, x) in fs.iter().skip(1) {
        if (if min { x < v } else { x > v }) || v.is_nan() {
            v = x;
        }
    }
    v
}

/// The four-chain scan of [`extreme`] over a window that starts with a non-NaN value;
/// `MIN` is a constant so that the compare is one instruction in the unrolled loop.
fn extreme_lanes<const MIN: bool>(rest: &[(i64, f64)]) -> f64 {
    #[inline(always)]
    fn pick<const MIN: bool>(v: f64, x: f64) -> f64 {
        if (MIN && x < v) || (!MIN && x > v) {
            x
        } else {
            v
        }
    }
    let first = rest.first().map_or(f64::NAN, |p| p.1);
    let mut acc = [first; 4];
    let mut chunks = rest.chunks_exact(4);
    for c in &mut chunks {
        if let [a, b, c, d] = c {
            acc = [
                pick::<MIN>(acc[0], a.1),
                pick::<MIN>(acc[1], b.1),
                pick::<MIN>(acc[2], c.1),
                pick::<MIN>(acc[3], d.1),
            ];
        }
    }
    for p in chunks.remainder() {
        acc[0] = pick::<MIN>(acc[0], p.1);
    }
    pick::<MIN>(pick::<MIN>(acc[0], acc[1]), pick::<MIN>(acc[2], acc[3]))
}

fn out_names(out: &[Series]) -> Vec<String> {
    let mut v: Vec<String> = out
        .iter()
        .filter_map(|s| s.labels.get(METRIC_NAME).map(str::to_owned))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Labels of `absent()`'s result: the selector's equality matchers (names used once).
pub(crate) fn absent_labels(vs: &promql_parser::parser::VectorSelector) -> Labels {
    use promql_parser::label::MatchOp;
    let ms = &vs.matchers.matchers;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for m in ms {
        if m.name == METRIC_NAME {
            continue;
        }
        let count = ms.iter().filter(|x| x.name == m.name).count();
        if matches!(m.op, MatchOp::Equal) && count == 1 {
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    Labels::from_pairs(pairs)
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn advance_past_is_the_first_index_past_the_bound(
            mut ts in proptest::collection::vec(-500i64..500, 0..150),
            from in 0usize..160,
            bound in -600i64..600,
        ) {
            ts.sort_unstable();
            let mut want = from;
            while want < ts.len() && ts[want] <= bound {
                want += 1;
            }
            proptest::prop_assert_eq!(super::advance_past(&ts, from, bound, |t| *t), want);
        }

        /// Visiting only the steps that can hold a sample answers as visiting all of
        /// them, for series that start, end or lie wholly outside the grid.
        #[test]
        fn steps_without_data_are_skipped_without_changing_answers(
            start in 0i64..40,
            len in 0usize..40,
            gaps in proptest::collection::vec(1i64..4, 40),
            grid_start in -20i64..80,
            steps in 1usize..30,
            step in 1i64..6,
            range in 1i64..12,
            func in proptest::sample::select(vec![
                RangeFn::Rate, RangeFn::Delta, RangeFn::MaxOverTime, RangeFn::SumOverTime,
                RangeFn::CountOverTime, RangeFn::LastOverTime,
            ]),
        ) {
            let mut t = start;
            let floats: Vec<(i64, f64)> = (0..len)
                .map(|i| {
                    t += gaps[i];
                    (t, (i % 7) as f64)
                })
                .collect();
            let grid = Grid { start: grid_start, end: grid_start + (steps as i64 - 1) * step, step };
            let ends: Vec<i64> = (0..grid.len()).map(|i| grid.ts(i)).collect();
            let run = |sorted: bool| {
                let raw = Raw { labels: Labels::default(), floats: floats.clone(), hists: Vec::new() };
                let mut scratch = WindowScratch::default();
                let mut notes = Notes::default();
                let mut call = RangeCall::new(func, false, range, &ends, &[], grid);
                assert!(call.ends_sorted);
                call.ends_sorted = sorted;
                let s = super::range_series(raw, &call, &mut scratch, &mut notes);
                s.floats.iter().map(|(t, v)| (*t, v.to_bits())).collect::<Vec<_>>()
            };
            proptest::prop_assert_eq!(run(true), run(false));
        }

        #[test]
        fn has_decrease_is_any_pair_going_down(
            vs in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => (0u8..4).prop_map(f64::from),
                    1 => proptest::strategy::Just(f64::NAN),
                ],
                0..40,
            ),
            sorted in proptest::bool::ANY,
        ) {
            let mut vs = vs;
            if sorted {
                vs.sort_by(f64::total_cmp);
            }
            let fs: Vec<(i64, f64)> = vs.iter().enumerate().map(|(i, v)| (i as i64, *v)).collect();
            let want = fs.windows(2).any(|w| w[1].1 < w[0].1);
            proptest::prop_assert_eq!(super::has_decrease(&fs), want);
        }
    }

    use super::*;
    use proptest::prelude::*;

    fn extreme_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            -3.0f64..3.0,
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            any::<u64>().prop_map(f64::from_bits),
        ]
    }

    proptest! {
        #[test]
        fn extreme_equals_prometheus_loop_bit_for_bit(
            vals in proptest::collection::vec(extreme_value(), 1..40),
        ) {
            let fs: Vec<(i64, f64)> = vals.iter().enumerate().map(|(i, v)| (i as i64, *v)).collect();
            for min in [false, true] {
                let (got, want) = (extreme(&fs, min), extreme_serial(&fs, min));
                prop_assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "min {min}: {got:?} against {want:?} over {vals:?}"
                );
            }
        }
    }

    #[test]
    fn extreme_keeps_the_first_zero_sign_and_skips_nans() {
        let fs = |v: &[f64]| v.iter().map(|x| (0i64, *x)).collect::<Vec<_>>();
        let bits = |x: f64| x.to_bits();
        assert_eq!(
            bits(extreme(&fs(&[-0.0, 0.0, -1.0, 0.0, -0.0]), false)),
            bits(-0.0)
        );
        assert_eq!(
            bits(extreme(&fs(&[f64::NAN, 0.0, -0.0, -5.0, -0.0, 0.0]), true)),
            bits(-5.0)
        );
        assert_eq!(
            bits(extreme(
                &fs(&[-1.0, -2.0, 0.0, -0.0, -3.0, -4.0, 0.0]),
                false
            )),
            bits(0.0)
        );
        assert_eq!(
            extreme(
                &fs(&[f64::NAN, f64::NAN, 2.0, f64::NAN, 1.0, 7.0, f64::NAN]),
                false
            ),
            7.0
        );
        assert!(extreme(&fs(&[f64::NAN, f64::NAN]), true).is_nan());
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            -1e3f64..1e3,
            -1e300f64..1e300,
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(1e100),
            Just(-1e100),
            Just(1.0),
            any::<u64>().prop_map(f64::from_bits),
        ]
    }

    proptest! {
        /// The fast sums return the serial algorithm's bits, overflow, NaN and ±Inf
        /// included (they fall back to it there).
        #[test]
        fn fast_sums_equal_the_serial_ones(vs in prop::collection::vec(value(), 1..300)) {
            let fs: Vec<(i64, f64)> = vs.iter().enumerate().map(|(i, &v)| (i as i64, v)).collect();
            prop_assert_eq!(avg_floats(&fs).to_bits(), avg_floats_serial(&fs).to_bits());
            let (mut s, mut c) = (0.0, 0.0);
            for (_, f) in &fs {
                (s, c) = kahan_inc(*f, s, c);
            }
            if let Some((fs_s, fs_c)) = neumaier_finite(&fs) {
                prop_assert_eq!((fs_s + fs_c).to_bits(), (s + c).to_bits());
            }
        }
    }

    #[test]
    fn cancellation_keeps_the_small_term() {
        let fs = [(0, 1e100), (1, 1.0), (2, -1e100)];
        assert_eq!(avg_floats(&fs), 1.0 / 3.0);
        assert_eq!(neumaier_finite(&fs).map(|(s, c)| s + c), Some(1.0));
    }
}
