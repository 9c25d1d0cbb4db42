//! Binary operators: arithmetic, comparison (with and without `bool`) and set operators
//! between scalars and vectors, with `on`/`ignoring` and `group_left`/`group_right`
//! vector matching. Match signatures and result label sets are computed once per series
//! (or series pair), then reused at every step.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use gmc_model::{Labels, METRIC_NAME};
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, T_TRIM_LOWER, T_TRIM_UPPER,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{Evaluator, Grid, Pv, Series, Val};
use crate::error::{Error, Result};
use crate::hist;

/// Token ids of comparison operators.
fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

fn is_set(op: u16) -> bool {
    matches!(op, T_LAND | T_LOR | T_LUNLESS)
}

fn is_trim(op: u16) -> bool {
    matches!(op, T_TRIM_UPPER | T_TRIM_LOWER)
}

/// Whether the result keeps the left side's metric name: filtering comparisons and the
/// histogram trim operators (`</`, `>/`) do, arithmetic does not.
fn keeps_name(op: u16, return_bool: bool) -> bool {
    (is_comparison(op) && !return_bool) || is_trim(op)
}

/// Float arithmetic of a binary operator.
pub(crate) fn arith(op: u16, l: f64, r: f64) -> f64 {
    match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_MOD => l % r,
        T_POW => l.powf(r),
        T_ATAN2 => l.atan2(r),
        _ => f64::NAN,
    }
}

/// Float comparison of a binary operator.
pub(crate) fn compare(op: u16, l: f64, r: f64) -> bool {
    match op {
        T_EQLC => l == r,
        T_NEQ => l != r,
        T_GTR => l > r,
        T_LSS => l < r,
        T_GTE => l >= r,
        T_LTE => l <= r,
        _ => false,
    }
}

/// Result of an element operation: the value and whether to keep it.
enum ElemOut {
    Keep(Pv),
    Drop,
    /// Incompatible operand types: dropped with an annotation.
    Incompatible(&'static str),
    /// Kept; custom-bucket histograms with different bounds were combined on the bounds
    /// they share during this operation ("addition" or "subtraction").
    Reconciled(Pv, &'static str),
    /// A custom-bucket and an exponential histogram added or subtracted: dropped with
    /// Prometheus' warning.
    MixedSchemas,
}

fn elem_op(op: u16, l: &Pv, r: &Pv) -> ElemOut {
    match (l, r) {
        (Pv::F(_), Pv::F(_)) if is_trim(op) => ElemOut::Incompatible(op_name(op)),
        (Pv::F(a), Pv::F(b)) => {
            if is_comparison(op) {
                if compare(op, *a, *b) {
                    ElemOut::Keep(Pv::F(*a))
                } else {
                    ElemOut::Drop
                }
            } else {
                ElemOut::Keep(Pv::F(arith(op, *a, *b)))
            }
        }
        (Pv::H(a), Pv::H(b)) => match op {
            T_ADD | T_SUB => {
                let r = if op == T_ADD {
                    hist::add(a, b)
                } else {
                    hist::sub(a, b)
                };
                match r {
                    None if a.uses_custom_buckets() != b.uses_custom_buckets() => {
                        ElemOut::MixedSchemas
                    }
                    None => ElemOut::Incompatible(if op == T_ADD { "add" } else { "sub" }),
                    Some(h) if hist::reconciles(a, b) => {
                        let during = if op == T_ADD {
                            "addition"
                        } else {
                            "subtraction"
                        };
                        ElemOut::Reconciled(Pv::H(Arc::new(h)), during)
                    }
                    Some(h) => ElemOut::Keep(Pv::H(Arc::new(h))),
                }
            }
            T_EQLC => {
                if hist::equals(a, b) {
                    ElemOut::Keep(Pv::H(Arc::clone(a)))
                } else {
                    ElemOut::Drop
                }
            }
            T_NEQ => {
                if !hist::equals(a, b) {
                    ElemOut::Keep(Pv::H(Arc::clone(a)))
                } else {
                    ElemOut::Drop
                }
            }
            _ => ElemOut::Incompatible(op_name(op)),
        },
        (Pv::H(a), Pv::F(b)) => match op {
            T_TRIM_UPPER => ElemOut::Keep(Pv::H(Arc::new(hist::trim(a, *b, hist::Keep::Below)))),
            T_TRIM_LOWER => ElemOut::Keep(Pv::H(Arc::new(hist::trim(a, *b, hist::Keep::Above)))),
            T_MUL => ElemOut::Keep(Pv::H(Arc::new(hist::scale(a, *b)))),
            // Division by zero leaves no finite bucket: Prometheus keeps only the
            // (infinite or NaN) totals and zero bucket.
            T_DIV if *b == 0.0 => ElemOut::Keep(Pv::H(Arc::new(gmc_model::Histogram {
                schema: a.schema,
                zero_threshold: a.zero_threshold,
                zero_count: a.zero_count / *b,
                count: a.count / *b,
                sum: a.sum / *b,
                reset_hint: a.reset_hint,
                ..gmc_model::Histogram::default()
            }))),
            T_DIV => ElemOut::Keep(Pv::H(Arc::new(hist::scale(a, 1.0 / *b)))),
            _ => ElemOut::Incompatible(op_name(op)),
        },
        (Pv::F(a), Pv::H(b)) => match op {
            T_MUL => ElemOut::Keep(Pv::H(Arc::new(hist::scale(b, *a)))),
            _ => ElemOut::Incompatible(op_name(op)),
        },
    }
}

fn op_name(op: u16) -> &'static str {
    match op {
        T_ADD => "+",
        T_SUB => "-",
        T_MUL => "*",
        T_DIV => "/",
        T_MOD => "%",
        T_POW => "^",
        T_ATAN2 => "atan2",
        T_EQLC => "==",
        T_NEQ => "!=",
        T_GTR => ">",
        T_LSS => "<",
        T_GTE => ">=",
        T_LTE => "<=",
        T_TRIM_UPPER => "</",
        T_TRIM_LOWER => ">/",
        _ => "?",
    }
}

/// Match signature of a label set: the `on` labels, or all but the `ignoring` labels and
/// the metric name.
fn signature(labels: &Labels, on: bool, names: &[String]) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x5eed).build_hasher();
    for (n, v) in labels.iter() {
        let include = if on {
            names.iter().any(|x| x == n)
        } else {
            n != METRIC_NAME && !names.iter().any(|x| x == n)
        };
        if include {
            h.write(n.as_bytes());
            h.write_u8(0xff);
            h.write(v.as_bytes());
            h.write_u8(0xff);
        }
    }
    h.finish()
}

/// Points of a vector grouped by step: `(series index, value)` per step.
pub(crate) fn by_step(series: &[Series], grid: Grid) -> Vec<Vec<(u32, Pv)>> {
    let mut steps: Vec<Vec<(u32, Pv)>> = vec![Vec::new(); grid.len()];
    for (i, s) in series.iter().enumerate() {
        for (t, f) in &s.floats {
            steps[grid.idx(*t)].push((i as u32, Pv::F(*f)));
        }
        for (t, h) in &s.hists {
            steps[grid.idx(*t)].push((i as u32, Pv::H(Arc::clone(h))));
        }
    }
    steps
}

pub(crate) fn push_point(s: &mut Series, t: i64, v: Pv) {
    match v {
        Pv::F(f) => s.floats.push((t, f)),
        Pv::H(h) => s.hists.push((t, h)),
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&mut self, b: &BinaryExpr, grid: Grid) -> Result<Val> {
        let op = b.op.id();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, grid)?;
        let rhs = self.eval(&b.rhs, grid)?;
        match (lhs, rhs) {
            (Val::Scalar(a), Val::Scalar(c)) => Ok(Val::Scalar(
                a.iter()
                    .zip(&c)
                    .map(|(x, y)| {
                        if is_comparison(op) {
                            f64::from(u8::from(compare(op, *x, *y)))
                        } else {
                            arith(op, *x, *y)
                        }
                    })
                    .collect(),
            )),
            (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(self.vector_scalar(
                op,
                v,
                &s,
                false,
                return_bool,
                grid,
            ))),
            (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(self.vector_scalar(
                op,
                v,
                &s,
                true,
                return_bool,
                grid,
            ))),
            (Val::Vector(l), Val::Vector(r)) => {
                let modifier = b.modifier.as_ref();
                let (on, names): (bool, Vec<String>) =
                    match modifier.and_then(|m| m.matching.as_ref()) {
                        Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                        Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                        None => (false, Vec::new()),
                    };
                if is_set(op) {
                    return Ok(Val::Vector(self.set_op(op, l, r, on, &names, grid)?));
                }
                let card = modifier.map_or(VectorMatchCardinality::OneToOne, |m| m.card.clone());
                let fill =
                    modifier.map_or((None, None), |m| (m.fill_values.lhs, m.fill_values.rhs));
                Ok(Val::Vector(self.vector_vector(
                    op,
                    l,
                    r,
                    Matching {
                        on,
                        names: &names,
                        card: &card,
                        fill,
                    },
                    return_bool,
                    grid,
                )?))
            }
            _ => Err(Error::BadData(
                "binary operators are only defined between scalars and instant vectors".into(),
            )),
        }
    }

    fn vector_scalar(
        &mut self,
        op: u16,
        v: Vec<Series>,
        s: &[f64],
        swap: bool,
        return_bool: bool,
        grid: Grid,
    ) -> Vec<Series> {
        let cmp = is_comparison(op);
        let mut out = Vec::with_capacity(v.len());
        let mut notes = BinNotes::default();
        for mut series in v {
            let drop = series.drop_name || !keeps_name(op, return_bool);
            let mut floats = Vec::with_capacity(series.floats.len());
            if is_trim(op) && !series.floats.is_empty() {
                // Only histograms have observations to trim.
                series.floats.clear();
                notes.incompatible = Some(op_name(op));
            }
            for (t, f) in series.floats.drain(..) {
                let x = s[grid.idx(t)];
                let (l, r) = if swap { (x, f) } else { (f, x) };
                if cmp {
                    let keep = compare(op, l, r);
                    if return_bool {
                        floats.push((t, f64::from(u8::from(keep))));
                    } else if keep {
                        floats.push((t, f));
                    }
                } else {
                    floats.push((t, arith(op, l, r)));
                }
            }
            let mut hists = Vec::new();
            for (t, h) in series.hists.drain(..) {
                let x = Pv::F(s[grid.idx(t)]);
                let hv = Pv::H(h);
                let (l, r) = if swap { (&x, &hv) } else { (&hv, &x) };
                match elem_op(op, l, r) {
                    ElemOut::Keep(Pv::H(h)) => hists.push((t, h)),
                    ElemOut::Keep(Pv::F(f)) => floats.push((t, f)),
                    ElemOut::Drop => {}
                    ElemOut::Incompatible(o) => notes.incompatible = Some(o),
                    ElemOut::MixedSchemas => notes.mixed_schemas = true,
                    ElemOut::Reconciled(v, during) => {
                        notes.reconciled = Some(during);
                        match v {
                            Pv::H(h) => hists.push((t, h)),
                            Pv::F(f) => floats.push((t, f)),
                        }
                    }
                }
            }
            if !hists.is_empty() && !floats.is_empty() {
                floats.sort_by_key(|p| p.0);
            }
            if floats.is_empty() && hists.is_empty() {
                continue;
            }
            out.push(Series {
                labels: series.labels,
                drop_name: drop,
                floats,
                hists,
            });
        }
        self.bin_notes(notes);
        out
    }

    fn set_op(
        &mut self,
        op: u16,
        l: Vec<Series>,
        r: Vec<Series>,
        on: bool,
        names: &[String],
        grid: Grid,
    ) -> Result<Vec<Series>> {
        let n = grid.len();
        let lsig: Vec<u64> = l.iter().map(|s| signature(&s.labels, on, names)).collect();
        let rsig: Vec<u64> = r.iter().map(|s| signature(&s.labels, on, names)).collect();
        let sigs_at = |series: &[Series], sigs: &[u64]| -> Vec<HashSet<u64>> {
            let mut v: Vec<HashSet<u64>> = vec![HashSet::new(); n];
            for (i, s) in series.iter().enumerate() {
                for (t, _) in &s.floats {
                    v[grid.idx(*t)].insert(sigs[i]);
                }
                for (t, _) in &s.hists {
                    v[grid.idx(*t)].insert(sigs[i]);
                }
            }
            v
        };
        let mut out = Vec::new();
        match op {
            T_LAND | T_LUNLESS => {
                let want = op == T_LAND;
                if r.is_empty() {
                    return Ok(if want { Vec::new() } else { l });
                }
                let rs = sigs_at(&r, &rsig);
                for (i, mut s) in l.into_iter().enumerate() {
                    let sig = lsig[i];
                    s.floats
                        .retain(|(t, _)| rs[grid.idx(*t)].contains(&sig) == want);
                    s.hists
                        .retain(|(t, _)| rs[grid.idx(*t)].contains(&sig) == want);
                    if s.points() > 0 {
                        out.push(s);
                    }
                }
            }
            _ => {
                let ls = sigs_at(&l, &lsig);
                out.extend(l);
                for (i, mut s) in r.into_iter().enumerate() {
                    let sig = rsig[i];
                    s.floats.retain(|(t, _)| !ls[grid.idx(*t)].contains(&sig));
                    s.hists.retain(|(t, _)| !ls[grid.idx(*t)].contains(&sig));
                    if s.points() > 0 {
                        out.push(s);
                    }
                }
            }
        }
        Ok(out)
    }

    fn vector_vector(
        &mut self,
        op: u16,
        l: Vec<Series>,
        r: Vec<Series>,
        m: Matching<'_>,
        return_bool: bool,
        grid: Grid,
    ) -> Result<Vec<Series>> {
        let Matching {
            on,
            names,
            card,
            fill,
        } = m;
        let (swapped, include): (bool, &[String]) = match card {
            VectorMatchCardinality::OneToOne => (false, &[]),
            VectorMatchCardinality::ManyToOne(ls) => (false, &ls.labels),
            VectorMatchCardinality::OneToMany(ls) => (true, &ls.labels),
            VectorMatchCardinality::ManyToMany => {
                return Err(Error::BadData(
                    "many-to-many only allowed for set operators".into(),
                ))
            }
        };
        // fill_left fills a missing "many" side, fill_right a missing "one" side (the sides
        // after group_right's swap, as Prometheus applies them).
        let (fill_many, fill_one) = fill;
        let no_fill = fill_many.is_none() && fill_one.is_none();
        if (l.is_empty() && r.is_empty()) || (no_fill && (l.is_empty() || r.is_empty())) {
            return Ok(Vec::new());
        }
        let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
        let (many, one) = if swapped { (r, l) } else { (l, r) };
        let msig: Vec<u64> = many
            .iter()
            .map(|s| signature(&s.labels, on, names))
            .collect();
        let osig: Vec<u64> = one
            .iter()
            .map(|s| signature(&s.labels, on, names))
            .collect();
        let many_at = by_step(&many, grid);
        let one_at = by_step(&one, grid);
        let mut out: Vec<Series> = Vec::new();
        let mut out_index: HashMap<Labels, usize> = HashMap::new();
        let mut pair_cache: HashMap<(u32, u32), usize> = HashMap::new();
        let mut right: HashMap<u64, (u32, Pv)> = HashMap::new();
        let mut matched: HashMap<u64, HashSet<usize>> = HashMap::new();
        let mut hit: HashSet<u64> = HashSet::new();
        let mut notes = BinNotes::default();
        for k in 0..grid.len() {
            self.check_deadline()?;
            let t = grid.ts(k);
            right.clear();
            matched.clear();
            for (oi, v) in &one_at[k] {
                let sig = osig[*oi as usize];
                if let Some((prev, _)) = right.get(&sig) {
                    let side = if swapped { "left" } else { "right" };
                    let a = &one[*oi as usize].labels;
                    let b = &one[*prev as usize].labels;
                    let group = match_labels(a, on, names);
                    let (x, y) = if a <= b { (a, b) } else { (b, a) };
                    return Err(Error::Execution(format!(
                        "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        labels_str(x),
                        labels_str(y)
                    )));
                }
                right.insert(sig, (*oi, v.clone()));
            }
            hit.clear();
            for (mi, mv) in &many_at[k] {
                let sig = msig[*mi as usize];
                let Some((oi, ov)) = right.get(&sig) else {
                    // No "one" side: filled, or dropped.
                    if let Some(f) = fill_one {
                        let fv = Pv::F(f);
                        let (lv, rv) = if swapped { (&fv, mv) } else { (mv, &fv) };
                        let Some(value) = elem_value(op, lv, rv, return_bool, &mut notes) else {
                            continue;
                        };
                        let ms = &many[*mi as usize];
                        let idx = slot(
                            &mut out,
                            &mut out_index,
                            &mut pair_cache,
                            (*mi, u32::MAX),
                            || {
                                (
                                    result_labels(
                                        &ms.labels,
                                        &Labels::default(),
                                        one_to_one,
                                        on,
                                        names,
                                        include,
                                    ),
                                    ms.drop_name || !keeps_name(op, return_bool),
                                )
                            },
                        );
                        put(&mut out[idx], t, value)?;
                    }
                    continue;
                };
                hit.insert(sig);
                // Prometheus 3 checks one-to-one uniqueness before filtering.
                if one_to_one {
                    let entry = matched.entry(sig).or_default();
                    if !entry.is_empty() {
                        return Err(Error::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                        ));
                    }
                    entry.insert(usize::MAX);
                }
                let (lv, rv) = if swapped { (ov, mv) } else { (mv, ov) };
                let value = match elem_op(op, lv, rv) {
                    ElemOut::Keep(v) => {
                        if return_bool {
                            Pv::F(1.0)
                        } else {
                            v
                        }
                    }
                    ElemOut::Drop => {
                        if return_bool {
                            Pv::F(0.0)
                        } else {
                            continue;
                        }
                    }
                    ElemOut::Incompatible(o) => {
                        notes.incompatible = Some(o);
                        continue;
                    }
                    ElemOut::MixedSchemas => {
                        notes.mixed_schemas = true;
                        continue;
                    }
                    ElemOut::Reconciled(v, during) => {
                        notes.reconciled = Some(during);
                        if return_bool {
                            Pv::F(1.0)
                        } else {
                            v
                        }
                    }
                };
                let oidx = match pair_cache.get(&(*mi, *oi)) {
                    Some(x) => *x,
                    None => {
                        let ms = &many[*mi as usize];
                        let labels = result_labels(
                            &ms.labels,
                            &one[*oi as usize].labels,
                            one_to_one,
                            on,
                            names,
                            include,
                        );
                        let drop = ms.drop_name || !keeps_name(op, return_bool);
                        let idx = match out_index.get(&labels) {
                            Some(x) => *x,
                            None => {
                                out.push(Series::new(labels.clone(), drop));
                                out_index.insert(labels, out.len() - 1);
                                out.len() - 1
                            }
                        };
                        pair_cache.insert((*mi, *oi), idx);
                        idx
                    }
                };
                if !one_to_one && !matched.entry(sig).or_default().insert(oidx) {
                    return Err(Error::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
                let s = &mut out[oidx];
                let dup = match &value {
                    Pv::F(_) => s.floats.last().is_some_and(|p| p.0 == t),
                    Pv::H(_) => s.hists.last().is_some_and(|p| p.0 == t),
                };
                if dup {
                    return Err(Error::Execution(
                        "vector cannot contain metrics with the same labelset".into(),
                    ));
                }
                push_point(s, t, value);
            }
            // "One" side samples nothing matched: filled, or dropped.
            if let Some(f) = fill_many {
                for (sig, (oi, ov)) in &right {
                    if hit.contains(sig) {
                        continue;
                    }
                    let fv = Pv::F(f);
                    let (lv, rv) = if swapped { (ov, &fv) } else { (&fv, ov) };
                    let Some(value) = elem_value(op, lv, rv, return_bool, &mut notes) else {
                        continue;
                    };
                    let os = &one[*oi as usize];
                    let idx = slot(
                        &mut out,
                        &mut out_index,
                        &mut pair_cache,
                        (u32::MAX, *oi),
                        || {
                            (
                                Labels::from_pairs(os.labels.iter().filter(|(n, _)| {
                                    if on {
                                        names.iter().any(|x| x == n)
                                    } else {
                                        *n != METRIC_NAME && !names.iter().any(|x| x == n)
                                    }
                                })),
                                false,
                            )
                        },
                    );
                    put(&mut out[idx], t, value)?;
                }
            }
        }
        self.bin_notes(notes);
        Ok(out)
    }

    /// The annotations a binary operation collected.
    fn bin_notes(&mut self, notes: BinNotes) {
        if let Some(o) = notes.incompatible {
            self.warn(format!(
                "PromQL info: incompatible sample types encountered for binary operator \"{o}\""
            ));
        }
        if notes.mixed_schemas {
            self.warn(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\""
                    .into(),
            );
        }
        if let Some(during) = notes.reconciled {
            self.warn(format!(
                "PromQL info: mismatched custom buckets were reconciled during {during}"
            ));
        }
    }
}

/// Annotations of one binary operation.
#[derive(Default)]
struct BinNotes {
    /// Operand types the operator does not combine (the operator's name).
    incompatible: Option<&'static str>,
    /// Custom-bucket histograms were combined on shared bounds ("addition", ...).
    reconciled: Option<&'static str>,
    /// A custom-bucket and an exponential histogram met in `+` or `-`.
    mixed_schemas: bool,
}

/// How the two sides of a vector-vector operation are matched.
struct Matching<'a> {
    on: bool,
    names: &'a [String],
    card: &'a VectorMatchCardinality,
    /// `fill_left` / `fill_right` values (experimental `fill()` modifiers).
    fill: (Option<f64>, Option<f64>),
}

/// The value of one matched (or filled) pair, `None` when it is filtered out.
fn elem_value(op: u16, l: &Pv, r: &Pv, return_bool: bool, notes: &mut BinNotes) -> Option<Pv> {
    match elem_op(op, l, r) {
        ElemOut::Keep(v) => Some(if return_bool { Pv::F(1.0) } else { v }),
        ElemOut::Reconciled(v, during) => {
            notes.reconciled = Some(during);
            Some(if return_bool { Pv::F(1.0) } else { v })
        }
        ElemOut::Drop => return_bool.then_some(Pv::F(0.0)),
        ElemOut::Incompatible(o) => {
            notes.incompatible = Some(o);
            None
        }
        ElemOut::MixedSchemas => {
            notes.mixed_schemas = true;
            None
        }
    }
}

/// The output series for `key`, created with the labels from `make` on first use.
fn slot(
    out: &mut Vec<Series>,
    index: &mut HashMap<Labels, usize>,
    cache: &mut HashMap<(u32, u32), usize>,
    key: (u32, u32),
    make: impl FnOnce() -> (Labels, bool),
) -> usize {
    if let Some(x) = cache.get(&key) {
        return *x;
    }
    let (labels, drop) = make();
    let idx = match index.get(&labels) {
        Some(x) => *x,
        None => {
            out.push(Series::new(labels.clone(), drop));
            index.insert(labels, out.len() - 1);
            out.len() - 1
        }
    };
    cache.insert(key, idx);
    idx
}

/// Append a point, refusing a second point for the same series at the same step.
fn put(s: &mut Series, t: i64, v: Pv) -> Result<()> {
    let dup = match &v {
        Pv::F(_) => s.floats.last().is_some_and(|p| p.0 == t),
        Pv::H(_) => s.hists.last().is_some_and(|p| p.0 == t),
    };
    if dup {
        return Err(Error::Execution(
            "vector cannot contain metrics with the same labelset".into(),
        ));
    }
    push_point(s, t, v);
    Ok(())
}

/// The label set of a vector-vector result: the "many" side's labels, reduced to the
/// `on` labels (or without the `ignoring` labels) for one-to-one matching, plus the
/// `group_x` labels copied from the "one" side.
fn result_labels(
    many: &Labels,
    one: &Labels,
    one_to_one: bool,
    on: bool,
    names: &[String],
    include: &[String],
) -> Labels {
    let mut pairs: Vec<(String, String)> = many
        .iter()
        .filter(|(n, _)| {
            if !one_to_one {
                true
            } else if on {
                names.iter().any(|x| x == n)
            } else {
                !names.iter().any(|x| x == n)
            }
        })
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    for n in include {
        pairs.retain(|(k, _)| k != n);
        if let Some(v) = one.get(n) {
            pairs.push((n.clone(), v.to_owned()));
        }
    }
    Labels::from_pairs(pairs)
}

fn match_labels(l: &Labels, on: bool, names: &[String]) -> String {
    let pairs = l.iter().filter(|(n, _)| {
        if on {
            names.iter().any(|x| x == n)
        } else {
            *n != METRIC_NAME && !names.iter().any(|x| x == n)
        }
    });
    labels_str(&Labels::from_pairs(pairs))
}

/// Prometheus' `labels.String()`: `{a="b", c="d"}` with the name as a plain label.
pub(crate) fn labels_str(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}
