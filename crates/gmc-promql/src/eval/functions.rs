//! Functions over instant vectors and scalars: math, clamping, rounding, time and date,
//! label manipulation, sorting, `absent`, `scalar`/`vector`, and the histogram functions.

use foldhash::{HashMap, HashMapExt};
use gmc_model::Labels;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Call, Expr};

use super::aggregate::{format_float, group_labels};
use super::binary::by_step;
use super::range_fns::{absent_labels, RANGE_FUNCTIONS};
use super::{unparen, Evaluator, Grid, Pv, Series, Val};
use crate::error::{Error, Result};
use crate::hist;

/// Evaluates classic buckets `(upper bound, cumulative count)` at a step.
type ClassicFn<'a> = dyn Fn(usize, &mut [(f64, f64)]) -> f64 + 'a;

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Days since the epoch to (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_fn(name: &str, secs: f64) -> f64 {
    if !secs.is_finite() {
        return f64::NAN;
    }
    let s = secs as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_month" => f64::from(d),
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
            let mut doy = cum[(m - 1) as usize] + d;
            if m > 2 && is_leap(y) {
                doy += 1;
            }
            f64::from(doy)
        }
        "month" => f64::from(m),
        "year" => y as f64,
        "days_in_month" => {
            let dim = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let mut n = dim[(m - 1) as usize];
            if m == 2 && is_leap(y) {
                n += 1;
            }
            f64::from(n)
        }
        _ => f64::NAN,
    }
}

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x| x * 180.0 / std::f64::consts::PI,
        "rad" => |x| x * std::f64::consts::PI / 180.0,
        "sgn" => |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        },
        _ => return None,
    })
}

/// Merge series that share a label set (their points at different steps form one
/// series, as Prometheus' range evaluation does); two points at one step are an error.
pub(crate) fn merge_same_labels(series: Vec<Series>) -> Result<Vec<Series>> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut merged_any = false;
    for s in series {
        if s.points() == 0 {
            continue;
        }
        match index.get(&s.labels) {
            Some(&j) => {
                let o = &mut out[j];
                let clash = s
                    .floats
                    .iter()
                    .map(|p| p.0)
                    .chain(s.hists.iter().map(|p| p.0))
                    .any(|t| {
                        o.floats.binary_search_by_key(&t, |p| p.0).is_ok()
                            || o.hists.binary_search_by_key(&t, |p| p.0).is_ok()
                    });
                if clash {
                    return Err(Error::Execution(
                        "vector cannot contain metrics with the same labelset".into(),
                    ));
                }
                o.floats.extend(s.floats);
                o.hists.extend(s.hists);
                o.floats.sort_by_key(|p| p.0);
                o.hists.sort_by_key(|p| p.0);
                o.drop_name &= s.drop_name;
                merged_any = true;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    let _ = merged_any;
    Ok(out)
}

fn valid_label_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('\u{fffd}')
}

fn string_arg(e: &Expr) -> Result<String> {
    match unparen(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(Error::BadData("expected a string literal argument".into())),
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_call(&mut self, c: &Call, grid: Grid) -> Result<Val> {
        let name = c.func.name;
        let args = &c.args.args;
        if RANGE_FUNCTIONS.contains(&name) {
            return self.eval_range_call(c, grid);
        }
        let n = grid.len();
        let arg = |i: usize| -> Result<&Expr> {
            args.get(i)
                .map(|b| &**b)
                .ok_or_else(|| Error::BadData(format!("missing argument {} to {name}", i + 1)))
        };
        if let Some(f) = math_fn(name) {
            let mut v = self.eval_vector(arg(0)?, grid)?;
            for s in &mut v {
                s.drop_name = true;
                s.floats.iter_mut().for_each(|p| p.1 = f(p.1));
                if !s.hists.is_empty() {
                    s.hists.clear();
                }
            }
            v.retain(|s| s.points() > 0);
            return Ok(Val::Vector(v));
        }
        match name {
            "time" => Ok(Val::Scalar(
                (0..n).map(|i| grid.ts(i) as f64 / 1000.0).collect(),
            )),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
            "start" => Ok(Val::Scalar(vec![self.query_start as f64 / 1000.0; n])),
            "end" => Ok(Val::Scalar(vec![self.query_end as f64 / 1000.0; n])),
            "range" => Ok(Val::Scalar(vec![
                (self.query_end - self.query_start) as f64
                    / 1000.0;
                n
            ])),
            "step" => Ok(Val::Scalar(vec![
                if self.query_end > self.query_start {
                    self.query_step_secs()
                } else {
                    0.0
                };
                n
            ])),
            "max_of" | "min_of" => {
                let a = self.eval_scalar(arg(0)?, grid)?;
                let b = self.eval_scalar(arg(1)?, grid)?;
                Ok(Val::Scalar(
                    a.iter()
                        .zip(&b)
                        .map(|(x, y)| {
                            if x.is_nan() || y.is_nan() {
                                f64::NAN
                            } else if name == "max_of" {
                                x.max(*y)
                            } else {
                                x.min(*y)
                            }
                        })
                        .collect(),
                ))
            }
            "vector" => {
                let s = self.eval_scalar(arg(0)?, grid)?;
                let mut out = Series::new(Labels::default(), false);
                out.floats = s
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (grid.ts(i), *v))
                    .collect();
                Ok(Val::Vector(vec![out]))
            }
            "scalar" => {
                let v = self.eval_vector(arg(0)?, grid)?;
                let mut vals = vec![f64::NAN; n];
                let mut counts = vec![0u32; n];
                for s in &v {
                    for (t, f) in &s.floats {
                        let k = grid.idx(*t);
                        counts[k] += 1;
                        vals[k] = *f;
                    }
                }
                for k in 0..n {
                    if counts[k] != 1 {
                        vals[k] = f64::NAN;
                    }
                }
                Ok(Val::Scalar(vals))
            }
            "timestamp" => {
                let a = arg(0)?;
                let mut v = match unparen(a) {
                    Expr::VectorSelector(vs) => self.eval_vector_selector(vs, grid, true)?,
                    _ => {
                        let mut v = self.eval_vector(a, grid)?;
                        for s in &mut v {
                            for (t, f) in &mut s.floats {
                                *f = *t as f64 / 1000.0;
                            }
                            let hs = std::mem::take(&mut s.hists);
                            s.floats
                                .extend(hs.into_iter().map(|(t, _)| (t, t as f64 / 1000.0)));
                            s.floats.sort_by_key(|p| p.0);
                        }
                        v
                    }
                };
                for s in &mut v {
                    s.drop_name = true;
                }
                Ok(Val::Vector(v))
            }
            "round" => {
                let mut v = self.eval_vector(arg(0)?, grid)?;
                let to = match args.get(1) {
                    Some(e) => self.eval_scalar(e, grid)?,
                    None => vec![1.0; n],
                };
                for s in &mut v {
                    s.drop_name = true;
                    s.hists.clear();
                    for (t, f) in &mut s.floats {
                        let inv = 1.0 / to[grid.idx(*t)];
                        *f = (*f * inv + 0.5).floor() / inv;
                    }
                }
                v.retain(|s| s.points() > 0);
                Ok(Val::Vector(v))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let mut v = self.eval_vector(arg(0)?, grid)?;
                let (lo, hi) = match name {
                    "clamp" => (
                        self.eval_scalar(arg(1)?, grid)?,
                        self.eval_scalar(arg(2)?, grid)?,
                    ),
                    "clamp_min" => (self.eval_scalar(arg(1)?, grid)?, vec![f64::NAN; n]),
                    _ => (vec![f64::NAN; n], self.eval_scalar(arg(1)?, grid)?),
                };
                for s in &mut v {
                    s.drop_name = true;
                    s.hists.clear();
                    s.floats.retain_mut(|(t, f)| {
                        let k = grid.idx(*t);
                        match name {
                            "clamp" => {
                                if hi[k] < lo[k] {
                                    return false;
                                }
                                *f = go_max(lo[k], go_min(hi[k], *f));
                            }
                            "clamp_min" => *f = go_max(lo[k], *f),
                            _ => *f = go_min(hi[k], *f),
                        }
                        true
                    });
                }
                v.retain(|s| s.points() > 0);
                Ok(Val::Vector(v))
            }
            "minute" | "hour" | "day_of_month" | "day_of_week" | "day_of_year" | "month"
            | "year" | "days_in_month" => {
                let mut v = match args.first() {
                    Some(a) => self.eval_vector(a, grid)?,
                    None => {
                        let mut s = Series::new(Labels::default(), false);
                        s.floats = (0..n)
                            .map(|i| (grid.ts(i), grid.ts(i) as f64 / 1000.0))
                            .collect();
                        vec![s]
                    }
                };
                for s in &mut v {
                    s.drop_name = true;
                    s.hists.clear();
                    s.floats.iter_mut().for_each(|p| p.1 = date_fn(name, p.1));
                }
                v.retain(|s| s.points() > 0);
                Ok(Val::Vector(v))
            }
            "absent" => {
                let a = arg(0)?;
                let v = self.eval_vector(a, grid)?;
                let mut present = vec![false; n];
                for s in &v {
                    for (t, _) in &s.floats {
                        present[grid.idx(*t)] = true;
                    }
                    for (t, _) in &s.hists {
                        present[grid.idx(*t)] = true;
                    }
                }
                let labels = match unparen(a) {
                    Expr::VectorSelector(vs) => absent_labels(vs),
                    _ => Labels::default(),
                };
                let mut s = Series::new(labels, false);
                s.floats = (0..n)
                    .filter(|k| !present[*k])
                    .map(|k| (grid.ts(k), 1.0))
                    .collect();
                Ok(Val::Vector(if s.points() > 0 {
                    vec![s]
                } else {
                    Vec::new()
                }))
            }
            "label_replace" => {
                let mut v = self.eval_vector(arg(0)?, grid)?;
                let dst = string_arg(arg(1)?)?;
                let repl = string_arg(arg(2)?)?;
                let src = string_arg(arg(3)?)?;
                let re_s = string_arg(arg(4)?)?;
                let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|_| {
                    Error::BadData(format!(
                        "invalid regular expression in label_replace(): {re_s}"
                    ))
                })?;
                if !valid_label_name(&dst) || self.invalid_utf8(&dst).is_some() {
                    return Err(Error::BadData(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                for s in &mut v {
                    let val = s.labels.get(&src).unwrap_or("");
                    if let Some(caps) = re.captures(val) {
                        let mut out = String::new();
                        caps.expand(&repl, &mut out);
                        s.labels = s.labels.with(&dst, &out);
                        if dst == gmc_model::METRIC_NAME {
                            s.drop_name = false;
                        }
                    }
                }
                Ok(Val::Vector(merge_same_labels(v)?))
            }
            "label_join" => {
                let mut v = self.eval_vector(arg(0)?, grid)?;
                let dst = string_arg(arg(1)?)?;
                let sep = string_arg(arg(2)?)?;
                let mut srcs = Vec::new();
                for a in args.iter().skip(3) {
                    srcs.push(string_arg(a)?);
                }
                if !valid_label_name(&dst) || self.invalid_utf8(&dst).is_some() {
                    return Err(Error::BadData(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                for s in &mut v {
                    let joined: Vec<&str> =
                        srcs.iter().map(|l| s.labels.get(l).unwrap_or("")).collect();
                    let joined = joined.join(&sep);
                    s.labels = s.labels.with(&dst, &joined);
                    if dst == gmc_model::METRIC_NAME {
                        s.drop_name = false;
                    }
                }
                Ok(Val::Vector(merge_same_labels(v)?))
            }
            "sort" | "sort_desc" => {
                let mut v = self.eval_vector(arg(0)?, grid)?;
                for s in &mut v {
                    s.hists.clear();
                }
                v.retain(|s| !s.floats.is_empty());
                if n == 1 {
                    let key = |s: &Series| s.floats.first().map_or(f64::NAN, |p| p.1);
                    let desc = name == "sort_desc";
                    v.sort_by(|a, b| {
                        let (x, y) = (key(a), key(b));
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ => {
                                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                                if desc {
                                    o.reverse()
                                } else {
                                    o
                                }
                            }
                        }
                    });
                }
                Ok(Val::Vector(v))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = self.eval_vector(arg(0)?, grid)?;
                let mut labels = Vec::new();
                for a in args.iter().skip(1) {
                    labels.push(string_arg(a)?);
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    for l in &labels {
                        let (x, y) = (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                        let o = natural_cmp(x, y);
                        if o != std::cmp::Ordering::Equal {
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
                Ok(Val::Vector(v))
            }
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                let mut v = self.eval_vector(arg(0)?, grid)?;
                for s in &mut v {
                    s.drop_name = true;
                    s.floats = s
                        .hists
                        .drain(..)
                        .map(|(t, h)| {
                            let x = match name {
                                "histogram_count" => h.count,
                                "histogram_sum" => h.sum,
                                "histogram_avg" => h.sum / h.count,
                                "histogram_stddev" => hist::stdvar(&h).sqrt(),
                                _ => hist::stdvar(&h),
                            };
                            (t, x)
                        })
                        .collect();
                }
                v.retain(|s| s.points() > 0);
                Ok(Val::Vector(v))
            }
            "histogram_fraction" => {
                let lo = self.eval_scalar(arg(0)?, grid)?;
                let hi = self.eval_scalar(arg(1)?, grid)?;
                let v = self.eval_vector(arg(2)?, grid)?;
                self.histogram_fn(
                    name,
                    v,
                    grid,
                    &|k, h| hist::fraction(lo[k], hi[k], h),
                    &|k, b| bucket_fraction(lo[k], hi[k], b),
                )
            }
            "info" => self.eval_info(arg(0)?, args.get(1).map(|b| &**b), grid),
            "histogram_quantiles" => {
                let v = self.eval_vector(arg(0)?, grid)?;
                let label = string_arg(arg(1)?)?;
                let mut all = Vec::new();
                for a in args.iter().skip(2) {
                    let q = self.eval_scalar(a, grid)?;
                    let qv = q.first().copied().unwrap_or(f64::NAN);
                    let mut qs = format_float(qv);
                    if qv.is_finite() && !qs.contains('.') && !qs.contains('e') {
                        qs.push_str(".0");
                    }
                    let Val::Vector(out) = self.histogram_fn(
                        name,
                        v.clone(),
                        grid,
                        &|k, h| hist::quantile(q[k], h),
                        &|k, b| bucket_quantile(q[k], b).0,
                    )?
                    else {
                        continue;
                    };
                    for mut s in out {
                        s.labels = s.labels.with(&label, &qs);
                        all.push(s);
                    }
                }
                Ok(Val::Vector(merge_same_labels(all)?))
            }
            "histogram_quantile" => {
                let q = self.eval_scalar(arg(0)?, grid)?;
                let v = self.eval_vector(arg(1)?, grid)?;
                if q.iter().any(|x| !(0.0..=1.0).contains(x)) {
                    let bad = q
                        .iter()
                        .find(|x| !(0.0..=1.0).contains(*x))
                        .copied()
                        .unwrap_or(f64::NAN);
                    if !v.is_empty() {
                        self.warn(format!(
                            "PromQL warning: quantile value should be between 0 and 1, got {}",
                            format_float(bad)
                        ));
                    }
                }
                self.histogram_fn(name, v, grid, &|k, h| hist::quantile(q[k], h), &|k, b| {
                    bucket_quantile(q[k], b).0
                })
            }
            other => Err(Error::BadData(format!(
                "unknown function with name {other:?}"
            ))),
        }
    }

    /// The time shift (`@`, `offset`) of the selector under `e`, which `info()` applies to
    /// its info series too.
    fn info_time(&self, e: &Expr) -> (Option<i64>, i64) {
        match unparen(e) {
            Expr::VectorSelector(vs) => (self.at_ms(&vs.at), super::offset_ms(&vs.offset)),
            Expr::MatrixSelector(ms) => (self.at_ms(&ms.vs.at), super::offset_ms(&ms.vs.offset)),
            Expr::Subquery(sq) => {
                let (ia, io) = self.info_time(&sq.expr);
                if ia.is_some() {
                    return (ia, io);
                }
                (self.at_ms(&sq.at), super::offset_ms(&sq.offset) + io)
            }
            Expr::Call(c) => c
                .args
                .args
                .iter()
                .find(|a| matches!(a.value_type(), ValueType::Vector | ValueType::Matrix))
                .map_or((None, 0), |a| self.info_time(a)),
            Expr::Aggregate(a) => self.info_time(&a.expr),
            Expr::Unary(u) => self.info_time(&u.expr),
            Expr::Binary(b) => self.info_time(&b.lhs),
            _ => (None, 0),
        }
    }

    /// `info(v, [selector])`: enrich `v` with the data labels of info series (by default
    /// `target_info`) that share its identifying labels (`instance`, `job`) at the time of
    /// each sample.
    fn eval_info(&mut self, base: &Expr, sel: Option<&Expr>, grid: Grid) -> Result<Val> {
        use promql_parser::label::{MatchOp as PM, Matcher as PMatcher};
        const IDENTIFYING: [&str; 2] = ["instance", "job"];
        let input = self.eval_vector(base, grid)?;
        let mut vs = match sel.map(unparen) {
            Some(Expr::VectorSelector(vs)) => vs.clone(),
            Some(_) => {
                return Err(Error::BadData(
                    "info(): the second argument must be a vector selector".into(),
                ))
            }
            None => promql_parser::parser::VectorSelector::default(),
        };
        if let Some(n) = vs.name.take() {
            vs.matchers
                .matchers
                .push(PMatcher::new(PM::Equal, gmc_model::METRIC_NAME, &n));
        }
        let name_ms: Vec<PMatcher> = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name == gmc_model::METRIC_NAME)
            .cloned()
            .collect();
        let data_ms: Vec<PMatcher> = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name != gmc_model::METRIC_NAME)
            .cloned()
            .collect();
        let positive = name_ms
            .iter()
            .any(|m| matches!(m.op, PM::Equal | PM::Re(_)));
        let mut select_vs = vs.clone();
        if name_ms.is_empty() {
            select_vs.matchers.matchers.push(PMatcher::new(
                PM::Equal,
                gmc_model::METRIC_NAME,
                "target_info",
            ));
        } else if !positive {
            let re =
                regex::Regex::new("^(?:.+_info)$").map_err(|e| Error::BadData(e.to_string()))?;
            select_vs.matchers.matchers.push(PMatcher::new(
                PM::Re(re),
                gmc_model::METRIC_NAME,
                ".+_info",
            ));
        }
        let implicit_names: Vec<PMatcher> = select_vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name == gmc_model::METRIC_NAME)
            .cloned()
            .collect();
        let (at, off) = self.info_time(base);
        let lookback = super::dur_ms(&self.opts.lookback_delta);
        let n = grid.len();
        let te: Vec<i64> = (0..n).map(|k| at.unwrap_or(grid.ts(k)) - off).collect();
        let lo = te.iter().copied().min().unwrap_or(0);
        let hi = te.iter().copied().max().unwrap_or(0);
        let infos = self.select(&select_vs, lo - lookback + 1, hi)?;
        if infos.iter().any(|r| !r.hists.is_empty()) {
            return Err(Error::Execution(
                "info(): info series must have float samples, found a native histogram".into(),
            ));
        }
        // Per info series and step: the timestamp of the sample in force, if any.
        let key = |l: &Labels| -> (String, String) {
            (
                l.get(IDENTIFYING[0]).unwrap_or("").to_owned(),
                l.get(IDENTIFYING[1]).unwrap_or("").to_owned(),
            )
        };
        let mut by_key: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut live: Vec<Vec<Option<i64>>> = Vec::with_capacity(infos.len());
        for (i, r) in infos.iter().enumerate() {
            by_key.entry(key(&r.labels)).or_default().push(i);
            let mut v = vec![None; n];
            for (k, t) in te.iter().enumerate() {
                let j = r.floats.partition_point(|p| p.0 <= *t);
                if let Some((ts, f)) = j.checked_sub(1).map(|x| r.floats[x]) {
                    if ts > t - lookback && !gmc_model::is_stale_nan(f) {
                        v[k] = Some(ts);
                    }
                }
            }
            live.push(v);
        }
        let needs_match = data_ms.iter().any(|m| !m.is_match(""));
        let mut out: Vec<Series> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for s in input {
            let name = s.labels.metric_name().unwrap_or("");
            let is_info = implicit_names.iter().all(|m| m.is_match(name));
            if is_info {
                out.push(s);
                continue;
            }
            let cands = by_key.get(&key(&s.labels));
            let points: Vec<(i64, Pv)> = s
                .floats
                .iter()
                .map(|(t, f)| (*t, Pv::F(*f)))
                .chain(
                    s.hists
                        .iter()
                        .map(|(t, h)| (*t, Pv::H(std::sync::Arc::clone(h)))),
                )
                .collect();
            for (t, v) in points {
                let k = grid.idx(t);
                // Latest sample per info metric name wins.
                let mut chosen: Vec<(&str, i64, usize)> = Vec::new();
                for &i in cands.map(Vec::as_slice).unwrap_or(&[]) {
                    let Some(ts) = live[i][k] else { continue };
                    let iname = infos[i].labels.metric_name().unwrap_or("");
                    match chosen.iter_mut().find(|c| c.0 == iname) {
                        Some(c) if ts > c.1 => *c = (iname, ts, i),
                        Some(_) => {}
                        None => chosen.push((iname, ts, i)),
                    }
                }
                if chosen.is_empty() && needs_match {
                    continue;
                }
                let mut add: Vec<(String, String)> = Vec::new();
                for (_, _, i) in &chosen {
                    for (ln, lv) in infos[*i].labels.iter() {
                        if ln == gmc_model::METRIC_NAME
                            || IDENTIFYING.contains(&ln)
                            || s.labels.get(ln).is_some()
                            || (!data_ms.is_empty() && !data_ms.iter().any(|m| m.name == ln))
                        {
                            continue;
                        }
                        match add.iter().find(|(a, _)| a == ln) {
                            Some((_, prev)) if prev != lv => {
                                return Err(Error::Execution(format!(
                                    "conflicting label {ln:?}: {prev:?} and {lv:?} from different info metrics"
                                )))
                            }
                            Some(_) => {}
                            None => add.push((ln.to_owned(), lv.to_owned())),
                        }
                    }
                }
                let labels = if add.is_empty() {
                    s.labels.clone()
                } else {
                    Labels::from_pairs(
                        s.labels
                            .iter()
                            .map(|(a, b)| (a.to_owned(), b.to_owned()))
                            .chain(add),
                    )
                };
                let idx = match index.get(&labels) {
                    Some(x) => *x,
                    None => {
                        index.insert(labels.clone(), out.len());
                        out.push(Series::new(labels, s.drop_name));
                        out.len() - 1
                    }
                };
                super::binary::push_point(&mut out[idx], t, v);
            }
        }
        Ok(Val::Vector(merge_same_labels(out)?))
    }

    fn query_step_secs(&self) -> f64 {
        self.query_step_ms() as f64 / 1000.0
    }

    /// `histogram_quantile` and `histogram_fraction` over native histograms (per series)
    /// and classic buckets (grouped by their labels without `le`, the metric name
    /// included, as Prometheus does: two bucket sets whose labels differ only in the
    /// name give two results with one label set, an error).
    fn histogram_fn(
        &mut self,
        fname: &str,
        v: Vec<Series>,
        grid: Grid,
        native: &dyn Fn(usize, &gmc_model::Histogram) -> f64,
        classic: &ClassicFn<'_>,
    ) -> Result<Val> {
        let n = grid.len();
        let mut out: Vec<Series> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut members: Vec<Vec<(usize, f64)>> = Vec::new();
        let mut is_classic: Vec<bool> = Vec::new();
        let mut bad_le = None;
        let mut native_keys: Vec<(Labels, usize)> = Vec::new();
        for (i, s) in v.iter().enumerate() {
            if !s.hists.is_empty() {
                let mut o = Series::new(s.labels.clone(), true);
                for (t, h) in &s.hists {
                    o.floats.push((*t, native(grid.idx(*t), h)));
                }
                native_keys.push((group_labels(&s.labels, false, &[]), out.len()));
                out.push(o);
                is_classic.push(false);
                members.push(Vec::new());
            }
            if !s.floats.is_empty() {
                let le = s.labels.get("le");
                match le.and_then(parse_le) {
                    Some(le) => {
                        let key = s.labels.without("le");
                        let idx = match index.get(&key) {
                            Some(x) => *x,
                            None => {
                                index.insert(key.clone(), out.len());
                                out.push(Series::new(key, true));
                                is_classic.push(true);
                                members.push(Vec::new());
                                out.len() - 1
                            }
                        };
                        members[idx].push((i, le));
                    }
                    None => {
                        bad_le = Some((
                            le.unwrap_or("").to_owned(),
                            s.labels.metric_name().unwrap_or("").to_owned(),
                        ))
                    }
                }
            }
        }
        if let Some((le, name)) = bad_le {
            self.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?} for metric name {name:?}"
            ));
        }
        // A native histogram and classic buckets with the same labels: Prometheus drops
        // both (with a warning).
        let mut mixed_name = None;
        let classic_by_key: HashMap<Labels, usize> = index
            .values()
            .map(|&g| (group_labels(&out[g].labels, false, &[]), g))
            .collect();
        for (key, ni) in &native_keys {
            if let Some(&ci) = classic_by_key.get(key) {
                mixed_name = v
                    .get(members[ci].first().map_or(0, |m| m.0))
                    .and_then(|s| s.labels.metric_name().map(str::to_owned));
                out[*ni].floats.clear();
                members[ci].clear();
            }
        }
        if let Some(name) = mixed_name {
            self.warn(format!(
                "PromQL warning: vector contains a mix of classic and native histograms for metric name {name:?}"
            ));
        }
        if index.values().any(|&g| !members[g].is_empty()) {
            let steps = by_step(&v, grid);
            let mut at: Vec<Option<f64>> = vec![None; v.len()];
            let mut buckets: Vec<(f64, f64)> = Vec::new();
            for (k, step) in steps.iter().enumerate().take(n) {
                self.check_deadline()?;
                for (i, pv) in step {
                    if let Pv::F(f) = pv {
                        at[*i as usize] = Some(*f);
                    }
                }
                for (g, ms) in members.iter().enumerate() {
                    if !is_classic[g] || ms.is_empty() {
                        continue;
                    }
                    buckets.clear();
                    buckets.extend(ms.iter().filter_map(|(i, le)| at[*i].map(|c| (*le, c))));
                    if buckets.is_empty() {
                        continue;
                    }
                    let val = classic(k, &mut buckets);
                    out[g].floats.push((grid.ts(k), val));
                }
                for (i, _) in step {
                    at[*i as usize] = None;
                }
            }
        }
        let _ = fname;
        out.retain(|s| s.points() > 0);
        // A native and a classic histogram can produce the same labels.
        Ok(Val::Vector(merge_same_labels(out)?))
    }
}

/// Prometheus' `BucketFraction` over classic buckets: share of observations in
/// `[lo, hi]`, interpolating linearly inside finite buckets (the first bucket starts at 0
/// when its upper bound is positive, at -Inf otherwise; infinite-width buckets only count
/// when fully covered).
pub(crate) fn bucket_fraction(lo: f64, hi: f64, buckets: &mut [(f64, f64)]) -> f64 {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if !buckets.last().is_some_and(|b| b.0 == f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(*b),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for b in merged.iter_mut() {
        if b.1 >= max {
            max = b.1;
        } else {
            b.1 = max;
        }
    }
    let total = merged[merged.len() - 1].1;
    if total == 0.0 || lo.is_nan() || hi.is_nan() {
        return f64::NAN;
    }
    if lo >= hi {
        return 0.0;
    }
    let mut acc = 0.0;
    let mut prev_count = 0.0;
    for (i, &(u, cum)) in merged.iter().enumerate() {
        let l = if i == 0 {
            if u > 0.0 {
                0.0
            } else {
                f64::NEG_INFINITY
            }
        } else {
            merged[i - 1].0
        };
        let c = cum - prev_count;
        prev_count = cum;
        if hi <= l || lo >= u {
            continue;
        }
        // An infinite-width bucket counts fully when its infinite side is covered.
        let covers_low = lo <= l;
        let covers_high = hi >= u;
        let full = if covers_high {
            covers_low || u.is_infinite()
        } else {
            covers_low && l.is_infinite()
        };
        if full {
            acc += c;
        } else if l.is_finite() && u.is_finite() {
            let a = lo.max(l);
            let b = hi.min(u);
            acc += c * (b - a) / (u - l);
        }
    }
    acc / total
}

fn parse_le(s: &str) -> Option<f64> {
    let s = s.trim();
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

/// Prometheus' `BucketQuantile` over classic buckets `(upper bound, cumulative count)`.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if !buckets.last().is_some_and(|b| b.0 == f64::INFINITY) {
        return (f64::NAN, false);
    }
    // Merge buckets with equal upper bounds (summing counts).
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(*b),
        }
    }
    let buckets = &mut merged;
    if buckets.len() < 2 {
        return (f64::NAN, false);
    }
    // Enforce monotonicity.
    let mut forced = false;
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 >= max {
            max = b.1;
        } else {
            forced = true;
            b.1 = max;
        }
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = buckets.partition_point(|x| x.1 < rank);
    if b == buckets.len() - 1 {
        return (buckets[buckets.len() - 2].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Natural ordering of label values (digits compared as numbers), as Prometheus'
/// `sort_by_label`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut ai, mut bi) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(c) = ai.peek().copied().filter(char::is_ascii_digit) {
                    na.push(c);
                    ai.next();
                }
                let mut nb = String::new();
                while let Some(c) = bi.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(c);
                    bi.next();
                }
                let ta = na.trim_start_matches('0');
                let tb = nb.trim_start_matches('0');
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                ai.next();
                bi.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(date_fn("day_of_week", 0.0), 4.0); // Thursday
        assert_eq!(date_fn("days_in_month", 951_782_400.0), 29.0); // Feb 2000
        assert_eq!(date_fn("day_of_year", 978_220_800.0), 366.0); // 2000-12-31
        assert!(date_fn("hour", f64::NAN).is_nan());
    }

    #[test]
    fn classic_quantile_and_fraction() {
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, &mut b).0, 1.0);
        assert_eq!(bucket_quantile(0.75, &mut b).0, 1.5);
        let mut no_inf = vec![(1.0, 10.0)];
        assert!(bucket_quantile(0.5, &mut no_inf).0.is_nan());
        let mut b = vec![(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (f64::INFINITY, 100.0)];
        assert!((bucket_fraction(0.0, 1.5, &mut b) - 0.02).abs() < 1e-12);
        assert!((bucket_fraction(400.0, f64::INFINITY, &mut b) - 0.94).abs() < 1e-12);
    }

    #[test]
    fn natural_order_compares_digits_as_numbers() {
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("b", "a10"), std::cmp::Ordering::Greater);
        assert!(go_max(1.0, f64::NAN).is_nan());
    }
}
