//! Aggregation operators (`sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`, `limitk`, `limit_ratio`).
//! Each input series is mapped to its group once; steps are then walked with one cursor
//! per series, so no label set is hashed per step.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use gmc_model::{Histogram, Labels, METRIC_NAME};
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMITK, T_LIMIT_RATIO, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::{Evaluator, Grid, Pv, Series, Val};
use crate::error::{Error, Result};
use crate::hist;

/// Neumaier-compensated summation step, as Prometheus' `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Prometheus' `quantile` over floats (sorted in place; NaN sorts first).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Delayed name removal: a group that keeps `__name__` (`by (__name__, ...)`) drops it
/// at the end when any of its members was to drop it.
fn propagate_drop_name(
    out: &mut [Series],
    input: &[Series],
    of: &[usize],
    by: bool,
    names: &[String],
) {
    if !by || !names.iter().any(|n| n == METRIC_NAME) {
        return;
    }
    for (i, s) in input.iter().enumerate() {
        if s.drop_name {
            if let Some(o) = out.get_mut(of[i]) {
                o.drop_name = true;
            }
        }
    }
}

/// Accumulator cells per block of steps in `agg_simple` (bounds its memory).
const AGG_CELLS: usize = 1 << 16;

/// Annotations raised by `agg_simple`.
#[derive(Default)]
struct AggNotes {
    mixed: bool,
    ignored_hist: bool,
    /// Custom-bucket histograms with different bounds were summed on shared bounds.
    reconciled: bool,
    /// Custom-bucket and exponential histograms met in one sum: no result.
    custom_mix: bool,
}

fn acc_float(op: u16, acc: &mut Acc, f: f64) {
    acc.seen = true;
    acc.count += 1.0;
    let first = !acc.has_float;
    acc.has_float = true;
    match op {
        T_SUM => {
            let (s2, c2) = kahan_inc(f, acc.f, acc.c);
            acc.f = s2;
            acc.c = c2;
        }
        T_AVG => avg_inc(acc, f),
        T_MIN if first || acc.f > f || acc.f.is_nan() => acc.f = f,
        T_MAX if first || acc.f < f || acc.f.is_nan() => acc.f = f,
        T_STDDEV | T_STDVAR => {
            if f.is_nan() || f.is_infinite() {
                acc.nan_var = true;
            }
            let delta = f - acc.mean;
            acc.mean += delta / acc.count;
            acc.f += delta * (f - acc.mean);
        }
        _ => {}
    }
}

fn acc_hist(op: u16, acc: &mut Acc, h: &Arc<Histogram>, notes: &mut AggNotes) {
    acc.seen = true;
    acc.count += 1.0;
    match op {
        T_SUM | T_AVG => {
            if acc.hist_incompatible {
            } else if let Some(cur) = &mut acc.h {
                if cur.add(h).is_none() {
                    acc.hist_incompatible = true;
                }
            } else if op == T_AVG {
                acc.h = Some(Box::new(hist::HistSum::new_avg(h)));
            } else {
                acc.h = Some(Box::new(hist::HistSum::new(h)));
            }
        }
        T_MIN | T_MAX | T_STDDEV | T_STDVAR => {
            notes.ignored_hist = true;
            acc.count -= 1.0;
        }
        _ => {}
    }
}

fn emit(op: u16, acc: Acc, t: i64, o: &mut Series, notes: &mut AggNotes) {
    match op {
        T_COUNT => o.floats.push((t, acc.count)),
        T_GROUP => o.floats.push((t, 1.0)),
        T_SUM | T_AVG => {
            if acc.has_float && acc.h.is_some() {
                notes.mixed = true;
                return;
            }
            if acc.hist_incompatible {
                notes.custom_mix = true;
                return;
            }
            if let Some(h) = acc.h {
                notes.reconciled |= h.reconciled;
                let factor = if op == T_AVG { 1.0 / acc.count } else { 1.0 };
                o.hists.push((t, Arc::new(h.finish(factor))));
            } else if op == T_SUM {
                o.floats.push((t, acc.f + acc.c));
            } else if acc.incremental {
                o.floats.push((t, acc.mean + acc.c));
            } else {
                o.floats.push((t, acc.f / acc.count + acc.c / acc.count));
            }
        }
        T_MIN | T_MAX if acc.has_float => o.floats.push((t, acc.f)),
        T_STDDEV | T_STDVAR if acc.has_float => {
            let v = if acc.nan_var {
                f64::NAN
            } else {
                acc.f / acc.count
            };
            o.floats
                .push((t, if op == T_STDDEV { v.sqrt() } else { v }));
        }
        _ => {}
    }
}

/// Running state of one group at one step.
#[derive(Clone, Default)]
struct Acc {
    seen: bool,
    count: f64,
    has_float: bool,
    f: f64,
    c: f64,
    mean: f64,
    incremental: bool,
    nan_var: bool,
    h: Option<Box<hist::HistSum>>,
    hist_incompatible: bool,
}

/// The grouping label set of a series.
pub(crate) fn group_labels(l: &Labels, by: bool, names: &[String]) -> Labels {
    if by {
        Labels::from_pairs(l.iter().filter(|(n, _)| names.iter().any(|x| x == n)))
    } else {
        Labels::from_pairs(
            l.iter()
                .filter(|(n, _)| *n != METRIC_NAME && !names.iter().any(|x| x == n)),
        )
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

fn is_valid_label_name(s: &str) -> bool {
    !s.is_empty() && std::str::from_utf8(s.as_bytes()).is_ok() && !s.contains('\u{fffd}')
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&mut self, a: &AggregateExpr, grid: Grid) -> Result<Val> {
        let op = a.op.id();
        let (by, names): (bool, Vec<String>) = match &a.modifier {
            Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
            Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
            None => (true, Vec::new()),
        };
        // Parameters first, as Prometheus evaluates them.
        let mut fparam: Option<Vec<f64>> = None;
        let mut sparam: Option<String> = None;
        if let Some(p) = &a.param {
            match op {
                T_COUNT_VALUES => match super::unparen(p) {
                    Expr::StringLiteral(s) => sparam = Some(s.val.clone()),
                    _ => match self.eval(p, grid)? {
                        Val::Str(s) => sparam = Some(s),
                        _ => {
                            return Err(Error::BadData(
                                "count_values expects a string parameter".into(),
                            ))
                        }
                    },
                },
                _ => fparam = Some(self.eval_scalar(p, grid)?),
            }
        }
        let input = self.eval_vector(&a.expr, grid)?;
        match op {
            T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
                let p = fparam.unwrap_or_else(|| vec![f64::NAN; grid.len()]);
                self.agg_select(op, input, &p, by, &names, grid)
            }
            T_QUANTILE => {
                let p = fparam.unwrap_or_else(|| vec![f64::NAN; grid.len()]);
                self.agg_quantile(input, &p, by, &names, grid)
            }
            T_COUNT_VALUES => {
                let label = sparam.unwrap_or_default();
                if let Some(raw) = self.invalid_utf8(&label) {
                    return Err(Error::Execution(format!("invalid label name \"{raw}\"")));
                }
                if !is_valid_label_name(&label) {
                    return Err(Error::Execution(format!("invalid label name {label:?}")));
                }
                self.agg_count_values(input, &label, by, &names, grid)
            }
            _ => self.agg_simple(op, input, by, &names, grid),
        }
    }

    /// Map each series to a group; returns `(series -> group, group labels)`.
    fn groups(input: &[Series], by: bool, names: &[String]) -> (Vec<usize>, Vec<Labels>) {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut labels = Vec::new();
        let mut of = Vec::with_capacity(input.len());
        // Fast path: `by ()` / no modifier puts everything in one group.
        if by && names.is_empty() {
            return (vec![0; input.len()], vec![Labels::default()]);
        }
        for s in input {
            let g = group_labels(&s.labels, by, names);
            let n = index.len();
            let idx = *index.entry(g.clone()).or_insert_with(|| {
                labels.push(g);
                n
            });
            of.push(idx);
        }
        (of, labels)
    }

    fn agg_simple(
        &mut self,
        op: u16,
        input: Vec<Series>,
        by: bool,
        names: &[String],
        grid: Grid,
    ) -> Result<Val> {
        let (of, glabels) = Self::groups(&input, by, names);
        let ng = glabels.len().max(1);
        let n = grid.len();
        let mut out: Vec<Series> = glabels.into_iter().map(|l| Series::new(l, false)).collect();
        propagate_drop_name(&mut out, &input, &of, by, names);
        // Series-major over blocks of steps: each series' points are read sequentially
        // once per block, into a (group x step-in-block) grid of accumulators.
        let bsz = (AGG_CELLS / ng).clamp(1, n);
        let mut accs: Vec<Acc> = vec![Acc::default(); ng * bsz];
        let mut cur: Vec<(usize, usize)> = vec![(0, 0); input.len()];
        let mut notes = AggNotes::default();
        let mut k0 = 0;
        while k0 < n {
            self.check_deadline()?;
            let k1 = (k0 + bsz).min(n);
            let t_end = grid.ts(k1 - 1);
            for (i, s) in input.iter().enumerate() {
                let base = of[i] * bsz;
                let (fi, hi) = &mut cur[i];
                while let Some(&(t, f)) = s.floats.get(*fi).filter(|p| p.0 <= t_end) {
                    *fi += 1;
                    acc_float(op, &mut accs[base + grid.idx(t) - k0], f);
                }
                while let Some((t, h)) = s.hists.get(*hi).filter(|p| p.0 <= t_end) {
                    *hi += 1;
                    acc_hist(op, &mut accs[base + grid.idx(*t) - k0], h, &mut notes);
                }
            }
            for (g, o) in out.iter_mut().enumerate() {
                for k in 0..k1 - k0 {
                    let cell = &mut accs[g * bsz + k];
                    if cell.seen {
                        let acc = std::mem::take(cell);
                        emit(op, acc, grid.ts(k0 + k), o, &mut notes);
                    }
                }
            }
            k0 = k1;
        }
        if notes.mixed {
            self.warn(
                "PromQL warning: encountered a mix of histograms and floats for aggregation".into(),
            );
        }
        if notes.custom_mix {
            self.warn(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\""
                    .into(),
            );
        }
        if notes.reconciled {
            self.warn(
                "PromQL info: mismatched custom buckets were reconciled during aggregation".into(),
            );
        }
        if notes.ignored_hist {
            let name = match op {
                T_MIN => "min",
                T_MAX => "max",
                T_STDDEV => "stddev",
                _ => "stdvar",
            };
            self.warn(format!(
                "PromQL info: ignored histogram in {name} aggregation"
            ));
        }
        out.retain(|s| s.points() > 0);
        Ok(Val::Vector(out))
    }

    fn agg_select(
        &mut self,
        op: u16,
        input: Vec<Series>,
        param: &[f64],
        by: bool,
        names: &[String],
        grid: Grid,
    ) -> Result<Val> {
        let (of, glabels) = Self::groups(&input, by, names);
        let ng = glabels.len();
        let instant = grid.len() == 1;
        let mut out: Vec<Series> = input
            .iter()
            .map(|s| Series::new(s.labels.clone(), s.drop_name))
            .collect();
        let mut order: Vec<usize> = Vec::new();
        let mut per_group: Vec<Vec<(usize, Pv)>> = vec![Vec::new(); ng];
        let mut group_order: Vec<usize> = Vec::new();
        let mut cur: Vec<(usize, usize)> = vec![(0, 0); input.len()];
        let mut ignored_hist = false;
        for k in 0..grid.len() {
            self.check_deadline()?;
            let t = grid.ts(k);
            let p = param.get(k).copied().unwrap_or(f64::NAN);
            let mut any = false;
            for (i, s) in input.iter().enumerate() {
                let (fi, hi) = &mut cur[i];
                let v = if *fi < s.floats.len() && s.floats[*fi].0 == t {
                    *fi += 1;
                    Pv::F(s.floats[*fi - 1].1)
                } else if *hi < s.hists.len() && s.hists[*hi].0 == t {
                    *hi += 1;
                    Pv::H(Arc::clone(&s.hists[*hi - 1].1))
                } else {
                    continue;
                };
                any = true;
                let g = of[i];
                if per_group[g].is_empty() {
                    group_order.push(g);
                }
                per_group[g].push((i, v));
            }
            if p.is_nan() {
                return Err(Error::Execution(if op == T_LIMIT_RATIO {
                    "Ratio value is NaN".into()
                } else {
                    "Parameter value is NaN".into()
                }));
            }
            if op != T_LIMIT_RATIO && p >= 9.223_372_036_854_776e18 {
                return Err(Error::Execution(format!(
                    "Scalar value {p} overflows int64"
                )));
            }
            if !any {
                continue;
            }
            for &g in &group_order {
                let mut items = std::mem::take(&mut per_group[g]);
                let chosen: Vec<(usize, Pv)> = match op {
                    T_TOPK | T_BOTTOMK => {
                        let k = p as i64;
                        if k < 1 {
                            Vec::new()
                        } else {
                            let before = items.len();
                            items.retain(|(_, v)| matches!(v, Pv::F(_)));
                            if items.len() != before {
                                ignored_hist = true;
                            }
                            let floats: Vec<(usize, f64)> = items
                                .iter()
                                .filter_map(|(i, v)| match v {
                                    Pv::F(f) => Some((*i, *f)),
                                    Pv::H(_) => None,
                                })
                                .collect();
                            let k = usize::try_from(k).unwrap_or(usize::MAX);
                            heap_select(floats, k, op == T_TOPK)
                                .into_iter()
                                .map(|(i, f)| (i, Pv::F(f)))
                                .collect()
                        }
                    }
                    T_LIMITK => {
                        let k = p as i64;
                        if k < 1 {
                            Vec::new()
                        } else {
                            items.truncate(usize::try_from(k).unwrap_or(usize::MAX));
                            items
                        }
                    }
                    _ => {
                        // limit_ratio: a deterministic sample by series hash.
                        let r = p.clamp(-1.0, 1.0);
                        items
                            .into_iter()
                            .filter(|(i, _)| {
                                let h = input[*i].labels.hash() as f64 / u64::MAX as f64;
                                if r >= 0.0 {
                                    h < r
                                } else {
                                    h >= 1.0 + r
                                }
                            })
                            .collect()
                    }
                };
                for (i, v) in chosen {
                    if instant {
                        order.push(i);
                    }
                    super::binary::push_point(&mut out[i], t, v);
                }
            }
            group_order.clear();
        }
        if ignored_hist {
            let name = if op == T_TOPK { "topk" } else { "bottomk" };
            self.warn(format!(
                "PromQL info: ignored histogram in {name} aggregation"
            ));
        }
        if instant {
            let mut taken: Vec<Option<Series>> = out.into_iter().map(Some).collect();
            let mut ordered = Vec::with_capacity(order.len());
            for i in order {
                if let Some(s) = taken[i].take() {
                    ordered.push(s);
                }
            }
            return Ok(Val::Vector(ordered));
        }
        out.retain(|s| s.points() > 0);
        Ok(Val::Vector(out))
    }

    fn agg_quantile(
        &mut self,
        input: Vec<Series>,
        param: &[f64],
        by: bool,
        names: &[String],
        grid: Grid,
    ) -> Result<Val> {
        let (of, glabels) = Self::groups(&input, by, names);
        let ng = glabels.len();
        let mut out: Vec<Series> = glabels.into_iter().map(|l| Series::new(l, false)).collect();
        propagate_drop_name(&mut out, &input, &of, by, names);
        let mut vals: Vec<Vec<f64>> = vec![Vec::new(); ng];
        let mut seen: Vec<bool> = vec![false; ng];
        let mut touched = Vec::new();
        let mut cur: Vec<(usize, usize)> = vec![(0, 0); input.len()];
        let mut ignored_hist = false;
        for k in 0..grid.len() {
            self.check_deadline()?;
            let t = grid.ts(k);
            for (i, s) in input.iter().enumerate() {
                let (fi, hi) = &mut cur[i];
                let g = of[i];
                if *fi < s.floats.len() && s.floats[*fi].0 == t {
                    *fi += 1;
                    vals[g].push(s.floats[*fi - 1].1);
                } else if *hi < s.hists.len() && s.hists[*hi].0 == t {
                    *hi += 1;
                    ignored_hist = true;
                } else {
                    continue;
                }
                if !seen[g] {
                    seen[g] = true;
                    touched.push(g);
                }
            }
            let q = param.get(k).copied().unwrap_or(f64::NAN);
            if !touched.is_empty() && !(0.0..=1.0).contains(&q) {
                self.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    format_float(q)
                ));
            }
            for &g in &touched {
                seen[g] = false;
                if !vals[g].is_empty() {
                    let v = quantile(q, &mut vals[g]);
                    out[g].floats.push((t, v));
                }
                vals[g].clear();
            }
            touched.clear();
        }
        if ignored_hist {
            self.warn("PromQL info: ignored histogram in quantile aggregation".into());
        }
        out.retain(|s| s.points() > 0);
        Ok(Val::Vector(out))
    }

    fn agg_count_values(
        &mut self,
        input: Vec<Series>,
        label: &str,
        by: bool,
        names: &[String],
        grid: Grid,
    ) -> Result<Val> {
        let mut out: Vec<Series> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let base: Vec<Labels> = input
            .iter()
            .map(|s| group_labels(&s.labels, by, names))
            .collect();
        let mut counts: HashMap<usize, f64> = HashMap::new();
        let mut cur: Vec<(usize, usize)> = vec![(0, 0); input.len()];
        let mut order: Vec<usize> = Vec::new();
        for k in 0..grid.len() {
            self.check_deadline()?;
            let t = grid.ts(k);
            for (i, s) in input.iter().enumerate() {
                let (fi, hi) = &mut cur[i];
                let sval = if *fi < s.floats.len() && s.floats[*fi].0 == t {
                    *fi += 1;
                    format_float(s.floats[*fi - 1].1)
                } else if *hi < s.hists.len() && s.hists[*hi].0 == t {
                    *hi += 1;
                    hist::to_string(&s.hists[*hi - 1].1)
                } else {
                    continue;
                };
                let l = base[i].with(label, &sval);
                let n = out.len();
                let idx = *index.entry(l.clone()).or_insert_with(|| {
                    out.push(Series::new(l, false));
                    n
                });
                let c = counts.entry(idx).or_insert_with(|| {
                    order.push(idx);
                    0.0
                });
                *c += 1.0;
            }
            for idx in order.drain(..) {
                if let Some(c) = counts.remove(&idx) {
                    out[idx].floats.push((t, c));
                }
            }
        }
        Ok(Val::Vector(out))
    }
}

/// Prometheus 3's `avg`: compensated sum, switching to an incremental mean on overflow.
fn avg_inc(acc: &mut Acc, f: f64) {
    let n = acc.count;
    if !acc.incremental {
        let (s2, c2) = kahan_inc(f, acc.f, acc.c);
        if n == 1.0 || !s2.is_infinite() {
            acc.f = s2;
            acc.c = c2;
            return;
        }
        acc.incremental = true;
        acc.mean = acc.f / (n - 1.0);
        acc.c /= n - 1.0;
    }
    if acc.mean.is_infinite() {
        if f.is_infinite() && (acc.mean > 0.0) == (f > 0.0) {
            return;
        }
        if !f.is_infinite() && !f.is_nan() {
            return;
        }
    }
    let current = acc.mean + acc.c;
    let (m, c) = kahan_inc(f / n - current / n, acc.mean, acc.c);
    acc.mean = m;
    acc.c = c;
}

/// `topk`/`bottomk` selection exactly as Prometheus makes it, so ties between equal values
/// resolve to the same series: Go's `container/heap` fed the group's samples in input
/// order (a new sample replaces the heap's top only when strictly better), then
/// `sort.Sort(sort.Reverse(heap))`, which for up to 12 elements is Go's insertion sort.
fn heap_select(items: Vec<(usize, f64)>, k: usize, top: bool) -> Vec<(usize, f64)> {
    if k == 0 {
        return Vec::new();
    }
    // Prometheus' vectorByValueHeap (topk) / vectorByReverseValueHeap (bottomk) `Less`.
    let less = |a: f64, b: f64| {
        if a.is_nan() {
            true
        } else if top {
            a < b
        } else {
            a > b
        }
    };
    let up = |h: &mut Vec<(usize, f64)>, mut j: usize| {
        while j > 0 {
            let i = (j - 1) / 2;
            if !less(h[j].1, h[i].1) {
                break;
            }
            h.swap(i, j);
            j = i;
        }
    };
    let down = |h: &mut Vec<(usize, f64)>, i0: usize| -> bool {
        let n = h.len();
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && less(h[j1 + 1].1, h[j1].1) {
                j = j1 + 1;
            }
            if !less(h[j].1, h[i].1) {
                break;
            }
            h.swap(i, j);
            i = j;
        }
        i > i0
    };
    let mut h: Vec<(usize, f64)> = Vec::with_capacity(k.min(items.len()));
    for (i, v) in items {
        if h.len() < k {
            h.push((i, v));
            let last = h.len() - 1;
            up(&mut h, last);
        } else {
            let t = h[0].1;
            let better = if top { t < v } else { t > v };
            if better || (t.is_nan() && !v.is_nan()) {
                h[0] = (i, v);
                if k > 1 && !down(&mut h, 0) {
                    up(&mut h, 0);
                }
            }
        }
    }
    // sort.Reverse(heap): Less(i, j) = heap.Less(j, i).
    if h.len() <= 12 {
        for i in 1..h.len() {
            let mut j = i;
            while j > 0 && less(h[j - 1].1, h[j].1) {
                h.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        // Go's pdqsort is not stable; ties beyond 12 elements may order differently.
        h.sort_by(|a, b| {
            if less(b.1, a.1) {
                std::cmp::Ordering::Less
            } else if less(a.1, b.1) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_ties_resolve_like_prometheus_heap() {
        // Input order 0..4 with ties at the boundary: the heap keeps the earliest ties
        // unless a strictly larger value evicts the heap's top.
        let items = vec![(0, 1.0), (1, 1.0), (2, 1.0), (3, 2.0), (4, 1.0)];
        let got: Vec<usize> = heap_select(items, 2, true).iter().map(|x| x.0).collect();
        // Heap after 0,1: [0,1]; 2 does not replace (not strictly greater); 3 replaces
        // the top (0) → {3,1}; 4 ties, ignored. Reverse-sorted: 3 then 1.
        assert_eq!(got, vec![3, 1]);
        let items = vec![(0, 3.0), (1, f64::NAN), (2, 1.0)];
        let got: Vec<usize> = heap_select(items, 2, false).iter().map(|x| x.0).collect();
        assert_eq!(got, vec![2, 0]);
        assert!(heap_select(vec![(0, 1.0)], 0, true).is_empty());
    }

    #[test]
    fn compensated_sum_survives_cancellation() {
        let (mut s, mut c) = (0.0, 0.0);
        for x in [1.0, 1e100, 1.0, -1e100] {
            (s, c) = kahan_inc(x, s, c);
        }
        assert_eq!(s + c, 2.0);
    }

    #[test]
    fn quantile_interpolates_and_sorts_nan_first() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(0.75, &mut [1.0, 2.0]), 1.75);
        assert!(quantile(0.0, &mut [f64::NAN, 1.0]).is_nan());
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.25), "0.25");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
    }
}
