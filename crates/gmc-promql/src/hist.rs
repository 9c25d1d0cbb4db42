//! Float native-histogram arithmetic for PromQL: add/subtract (at the coarser common
//! schema), scale, compare, counter-reset detection, quantiles and fractions.
//! `gmc_model::Histogram` keeps absolute `f64` counts, so it serves as Prometheus'
//! `FloatHistogram` directly. Custom-bucket histograms (NHCB, schema -53) combine only
//! with each other: when their bounds differ they are first re-bucketed onto the bounds
//! both share (Prometheus' reconciliation), and their quantiles, fractions and variance
//! interpolate linearly, as for classic histograms. The trim operators `</` and `>/`
//! live in `hist/trim.rs`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use gmc_model::{CounterResetHint, Histogram, Span};

mod trim;
pub(crate) use trim::{trim, Keep};

/// Whether combining `a` and `b` re-buckets custom buckets onto the bounds they share
/// (Prometheus then reports that it reconciled them).
pub(crate) fn reconciles(a: &Histogram, b: &Histogram) -> bool {
    a.uses_custom_buckets() && b.uses_custom_buckets() && a.custom_values != b.custom_values
}

/// The bounds two custom-bucket histograms are combined on.
fn shared_bounds<'a>(a: &'a Histogram, b: &Histogram) -> Cow<'a, [f64]> {
    if a.custom_values == b.custom_values {
        Cow::Borrowed(&a.custom_values)
    } else {
        Cow::Owned(gmc_model::intersect_custom_bounds(
            &a.custom_values,
            &b.custom_values,
        ))
    }
}

/// `h`'s (custom) buckets on `bounds`, a subset of its own, without copying `h`.
fn custom_parts(h: &Histogram, bounds: &[f64]) -> Parts {
    let mut pos = Buckets::new();
    for (i, c) in h.positive_iter() {
        *pos.entry(gmc_model::custom_bucket_onto(&h.custom_values, i, bounds))
            .or_insert(0.0) += c;
    }
    Parts {
        schema: Histogram::CUSTOM_BUCKETS_SCHEMA,
        zt: 0.0,
        zc: 0.0,
        pos,
        neg: Buckets::new(),
    }
}

type Buckets = BTreeMap<i32, f64>;

fn to_map(spans: &[Span], counts: &[f64], from: i32, to: i32) -> Buckets {
    let mut m = Buckets::new();
    let it = gmc_model::Histogram {
        positive_spans: spans.to_vec(),
        positive_buckets: counts.to_vec(),
        ..Histogram::default()
    };
    for (idx, c) in it.positive_iter() {
        let t = reduce_index(idx, from, to);
        *m.entry(t).or_insert(0.0) += c;
    }
    m
}

/// Bucket index at a coarser schema.
fn reduce_index(idx: i32, from: i32, to: i32) -> i32 {
    if from <= to {
        return idx;
    }
    ((idx - 1) >> (from - to)) + 1
}

fn from_map(m: &Buckets) -> (Vec<Span>, Vec<f64>) {
    gmc_model::spans_from_buckets(m.iter().map(|(&i, &c)| (i, c)))
}

/// Upper bound of bucket `idx` at `schema` (positive side).
fn upper(schema: i32, idx: i32) -> f64 {
    Histogram::bucket_upper_bound(schema, idx)
}

struct Parts {
    schema: i32,
    zt: f64,
    zc: f64,
    pos: Buckets,
    neg: Buckets,
}

fn parts(h: &Histogram, schema: i32) -> Parts {
    Parts {
        schema,
        zt: h.zero_threshold,
        zc: h.zero_count,
        pos: to_map(&h.positive_spans, &h.positive_buckets, h.schema, schema),
        neg: to_map(&h.negative_spans, &h.negative_buckets, h.schema, schema),
    }
}

/// Widen the zero bucket of `p` to `zt`, moving buckets that fall inside it.
fn widen_zero(p: &mut Parts, zt: f64) {
    if zt <= p.zt {
        return;
    }
    let schema = p.schema;
    let mut moved = 0.0;
    p.pos.retain(|idx, c| {
        if upper(schema, *idx) <= zt {
            moved += *c;
            false
        } else {
            true
        }
    });
    p.neg.retain(|idx, c| {
        if upper(schema, *idx) <= zt {
            moved += *c;
            false
        } else {
            true
        }
    });
    p.zc += moved;
    p.zt = zt;
}

/// `a` and `b` as buckets at their common (coarser) schema and the wider zero bucket,
/// ready to compare or combine bucket by bucket.
fn aligned(a: &Histogram, b: &Histogram) -> (i32, Parts, Parts) {
    let schema = a.schema.min(b.schema);
    let mut pa = parts(a, schema);
    let mut pb = parts(b, schema);
    let zt = pa.zt.max(pb.zt);
    widen_zero(&mut pa, zt);
    widen_zero(&mut pb, zt);
    (schema, pa, pb)
}

fn combine(a: &Histogram, b: &Histogram, sign: f64) -> Option<Histogram> {
    if a.uses_custom_buckets() != b.uses_custom_buckets() {
        return None;
    }
    let mut bounds = Vec::new();
    let (schema, mut pa, pb) = if a.uses_custom_buckets() {
        bounds = shared_bounds(a, b).into_owned();
        let (pa, pb) = (custom_parts(a, &bounds), custom_parts(b, &bounds));
        (Histogram::CUSTOM_BUCKETS_SCHEMA, pa, pb)
    } else {
        aligned(a, b)
    };
    let zt = pa.zt;
    for (k, v) in pb.pos {
        *pa.pos.entry(k).or_insert(0.0) += sign * v;
    }
    for (k, v) in pb.neg {
        *pa.neg.entry(k).or_insert(0.0) += sign * v;
    }
    let (ps, pc) = from_map(&pa.pos);
    let (ns, nc) = from_map(&pa.neg);
    Some(Histogram {
        schema,
        zero_threshold: zt,
        zero_count: pa.zc + sign * pb.zc,
        count: a.count + sign * b.count,
        sum: a.sum + sign * b.sum,
        positive_spans: ps,
        positive_buckets: pc,
        negative_spans: ns,
        negative_buckets: nc,
        min: None,
        max: None,
        reset_hint: if a.reset_hint == CounterResetHint::Gauge
            || b.reset_hint == CounterResetHint::Gauge
        {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        },
        custom_values: bounds,
    })
}

/// `a + b` (None when the bucket layouts are incompatible).
pub(crate) fn add(a: &Histogram, b: &Histogram) -> Option<Histogram> {
    combine(a, b, 1.0)
}

/// `a - b`.
pub(crate) fn sub(a: &Histogram, b: &Histogram) -> Option<Histogram> {
    combine(a, b, -1.0).map(|mut h| {
        h.reset_hint = CounterResetHint::Gauge;
        h
    })
}

/// `h * f`.
pub(crate) fn scale(h: &Histogram, f: f64) -> Histogram {
    let mut o = h.clone();
    o.zero_count *= f;
    o.count *= f;
    o.sum *= f;
    o.positive_buckets.iter_mut().for_each(|c| *c *= f);
    o.negative_buckets.iter_mut().for_each(|c| *c *= f);
    if f < 0.0 {
        // Negative counts make the histogram a gauge.
        o.reset_hint = CounterResetHint::Gauge;
    }
    o.min = None;
    o.max = None;
    o
}

/// Drop empty buckets and merge spans.
pub(crate) fn compact(h: Histogram) -> Histogram {
    let mut p = parts(&h, h.schema);
    p.pos.retain(|_, c| *c != 0.0);
    p.neg.retain(|_, c| *c != 0.0);
    let (ps, pc) = from_map(&p.pos);
    let (ns, nc) = from_map(&p.neg);
    Histogram {
        positive_spans: ps,
        positive_buckets: pc,
        negative_spans: ns,
        negative_buckets: nc,
        ..h
    }
}

/// Semantic equality (same schema, zero bucket, count, sum and non-empty buckets).
pub(crate) fn equals(a: &Histogram, b: &Histogram) -> bool {
    if a.schema != b.schema
        || a.custom_values != b.custom_values
        || a.zero_threshold != b.zero_threshold
        || a.zero_count != b.zero_count
        || a.count != b.count
        || !(a.sum == b.sum || (a.sum.is_nan() && b.sum.is_nan()))
    {
        return false;
    }
    let pa = parts(a, a.schema);
    let pb = parts(b, b.schema);
    let nz = |m: &Buckets| -> Vec<(i32, f64)> {
        m.iter()
            .filter(|(_, c)| **c != 0.0)
            .map(|(k, c)| (*k, *c))
            .collect()
    };
    nz(&pa.pos) == nz(&pb.pos) && nz(&pa.neg) == nz(&pb.neg)
}

/// Whether `cur` follows a counter reset relative to `prev` (Prometheus' `DetectReset`).
pub(crate) fn detect_reset(cur: &Histogram, prev: &Histogram) -> bool {
    match cur.reset_hint {
        CounterResetHint::Reset => return true,
        CounterResetHint::NotReset => return false,
        CounterResetHint::Gauge | CounterResetHint::Unknown => {}
    }
    if cur.count < prev.count {
        return true;
    }
    if cur.uses_custom_buckets() || prev.uses_custom_buckets() {
        // A change between custom and exponential buckets is a reset; custom bounds
        // that changed are compared on the bounds both share (a changed layout alone
        // is not a reset, as in Prometheus 3).
        if cur.schema != prev.schema {
            return true;
        }
        let bounds = shared_bounds(cur, prev);
        let (pc, pp) = (custom_parts(cur, &bounds), custom_parts(prev, &bounds));
        return pp
            .pos
            .iter()
            .any(|(k, v)| pc.pos.get(k).copied().unwrap_or(0.0) < *v);
    }
    if cur.schema > prev.schema {
        return true;
    }
    if cur.zero_threshold < prev.zero_threshold {
        return true;
    }
    let (_, pc, pp) = aligned(cur, prev);
    if pc.zc < pp.zc {
        return true;
    }
    let dec =
        |c: &Buckets, p: &Buckets| p.iter().any(|(k, v)| c.get(k).copied().unwrap_or(0.0) < *v);
    dec(&pc.pos, &pp.pos) || dec(&pc.neg, &pp.neg)
}

/// All buckets as `(lower, upper, count)` in ascending order of values.
fn all_buckets(h: &Histogram) -> Vec<(f64, f64, f64)> {
    let mut v = Vec::new();
    let p = parts(h, h.schema);
    for (idx, c) in p.neg.iter().rev() {
        v.push((-upper(h.schema, *idx), -upper(h.schema, idx - 1), *c));
    }
    if h.zero_count != 0.0 || h.zero_threshold != 0.0 {
        v.push((-h.zero_threshold, h.zero_threshold, h.zero_count));
    }
    // Custom buckets carry their bounds; exponential ones follow from the schema.
    for (idx, c) in &p.pos {
        let (lo, up) = h.positive_bucket_bounds(*idx);
        v.push((lo, up, *c));
    }
    v
}

/// Prometheus' `HistogramQuantile`.
pub(crate) fn quantile(q: f64, h: &Histogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let mut buckets = all_buckets(h);
    let forward = h.sum.is_nan() || q < 0.5;
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    if !forward {
        buckets.reverse();
    }
    let mut count = 0.0;
    let mut bucket = (0.0, 0.0, 0.0);
    for b in &buckets {
        bucket = *b;
        if b.2 == 0.0 {
            continue;
        }
        count += b.2;
        if count >= rank {
            break;
        }
    }
    if h.sum.is_nan() && count < rank {
        // NaN observations sort last; the rank lies among them.
        return f64::NAN;
    }
    let (mut lower, mut up, bc) = bucket;
    let custom = h.uses_custom_buckets();
    if custom {
        // The first bucket reaches down to -Inf: its observations lie between 0 and its
        // bound when that is positive, else at its bound; the last one's lie at its
        // lower bound.
        if lower == f64::NEG_INFINITY {
            if up <= 0.0 {
                return up;
            }
            lower = 0.0;
        } else if up == f64::INFINITY {
            return lower;
        }
    } else if lower < 0.0 && up > 0.0 {
        let has_neg =
            h.negative_buckets.iter().any(|c| *c != 0.0) || !h.negative_buckets.is_empty();
        let has_pos = !h.positive_buckets.is_empty();
        if !has_neg && has_pos {
            lower = 0.0;
        } else if !has_pos && has_neg {
            up = 0.0;
        }
    }
    if lower == up {
        return up;
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        return up;
    }
    if forward {
        rank -= count - bc;
    } else {
        rank = count - rank;
    }
    let fraction = rank / bc;
    if custom || lower <= 0.0 && up >= 0.0 {
        return lower + (up - lower) * fraction;
    }
    let ll = lower.abs().log2();
    let lu = up.abs().log2();
    if lower > 0.0 {
        (ll + (lu - ll) * fraction).exp2()
    } else {
        -(lu + (ll - lu) * (1.0 - fraction)).exp2()
    }
}

/// Prometheus' `HistogramFraction`: estimated share of observations in `[lo, hi]`.
pub(crate) fn fraction(lo: f64, hi: f64, h: &Histogram) -> f64 {
    if h.count == 0.0 || lo.is_nan() || hi.is_nan() {
        return f64::NAN;
    }
    if lo >= hi {
        return 0.0;
    }
    let interp = |b: &(f64, f64, f64), v: f64, zero_bucket: bool| -> f64 {
        // Share of bucket b's count below v.
        let (l, u, c) = *b;
        if v <= l {
            return 0.0;
        }
        if v >= u {
            return c;
        }
        if zero_bucket || l <= 0.0 && u >= 0.0 || l.is_infinite() || u.is_infinite() {
            return c * (v - l) / (u - l);
        }
        if l > 0.0 {
            let f = (v.log2() - l.log2()) / (u.log2() - l.log2());
            c * f
        } else {
            let f = ((-v).log2() - (-u).log2()) / ((-l).log2() - (-u).log2());
            c * (1.0 - f)
        }
    };
    if h.uses_custom_buckets() {
        return custom_fraction(lo, hi, h);
    }
    let buckets = all_buckets(h);
    let only_pos = h.negative_buckets.is_empty();
    let only_neg = h.positive_buckets.is_empty() && !h.negative_buckets.is_empty();
    let mut below_hi = 0.0;
    let mut below_lo = 0.0;
    for b in &buckets {
        let mut b2 = *b;
        let zero = b.0 < 0.0 && b.1 > 0.0 && b.0 == -h.zero_threshold;
        if zero {
            if only_pos {
                b2.0 = 0.0;
            } else if only_neg {
                b2.1 = 0.0;
            }
        }
        below_hi += interp(&b2, hi, zero);
        below_lo += interp(&b2, lo, zero);
    }
    (below_hi - below_lo) / h.count
}

/// `histogram_fraction` of a custom-bucket histogram: linear within a bucket, as for
/// classic histograms. A first bucket with a positive bound spans `[0, bound]`; an
/// infinitely wide bucket is not interpolated: the first one's observations count as
/// below any value inside it, the `+Inf` bucket's as above any finite value.
fn custom_fraction(lo: f64, hi: f64, h: &Histogram) -> f64 {
    let below = |v: f64| -> f64 {
        let mut n = 0.0;
        for (l, u, c) in all_buckets(h) {
            let l = if l == f64::NEG_INFINITY && u > 0.0 {
                0.0
            } else {
                l
            };
            if l == f64::NEG_INFINITY {
                n += if v == f64::NEG_INFINITY { 0.0 } else { c };
            } else if u == f64::INFINITY {
                n += if v == f64::INFINITY { c } else { 0.0 };
            } else if v >= u {
                n += c;
            } else if v > l {
                n += c * (v - l) / (u - l);
            }
        }
        n
    };
    (below(hi) - below(lo)) / h.count
}

/// Estimated variance of the observations (Prometheus' `histogram_stdvar`).
pub(crate) fn stdvar(h: &Histogram) -> f64 {
    if h.count == 0.0 {
        return f64::NAN;
    }
    let mean = h.sum / h.count;
    let custom = h.uses_custom_buckets();
    let mut var = 0.0;
    let mut comp = 0.0;
    for (l, u, c) in all_buckets(h) {
        if c == 0.0 {
            continue;
        }
        let val = if custom {
            // Arithmetic mid-point of a custom bucket.
            (l + u) / 2.0
        } else if l <= 0.0 && u >= 0.0 {
            0.0
        } else if l > 0.0 {
            (l * u).sqrt()
        } else {
            -(l * u).sqrt()
        };
        let delta = val - mean;
        let (s, cc) = crate::eval::kahan(c * delta * delta, var, comp);
        var = s;
        comp = cc;
    }
    (var + comp) / h.count
}

/// Prometheus' `FloatHistogram.String()` (used by `count_values`).
pub(crate) fn to_string(h: &Histogram) -> String {
    let f = crate::eval::format_float;
    let mut parts = vec![format!("count:{}", f(h.count)), format!("sum:{}", f(h.sum))];
    let p = parts_of(h);
    for (idx, c) in p.neg.iter().rev() {
        if *c != 0.0 {
            parts.push(format!(
                "[{},{}):{}",
                f(-upper(h.schema, *idx)),
                f(-upper(h.schema, idx - 1)),
                f(*c)
            ));
        }
    }
    if h.zero_count != 0.0 {
        parts.push(format!(
            "[{},{}]:{}",
            f(-h.zero_threshold),
            f(h.zero_threshold),
            f(h.zero_count)
        ));
    }
    for (idx, c) in &p.pos {
        if *c != 0.0 {
            let (lo, up) = h.positive_bucket_bounds(*idx);
            parts.push(format!("({},{}]:{}", f(lo), f(up), f(*c)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

fn parts_of(h: &Histogram) -> Parts {
    parts(h, h.schema)
}

/// Compensated (Kahan-Neumaier) running sum of histograms, as Prometheus' `KahanAdd`:
/// every field and bucket carries its own compensation term, so large values that
/// cancel out do not swallow small ones.
#[derive(Debug, Clone)]
pub(crate) struct HistSum {
    schema: i32,
    zt: f64,
    zc: (f64, f64),
    count: (f64, f64),
    sum: (f64, f64),
    pos: BTreeMap<i32, (f64, f64)>,
    neg: BTreeMap<i32, (f64, f64)>,
    gauge: bool,
    /// Bounds of a sum of custom-bucket histograms (the ones all added share).
    custom: Option<Vec<f64>>,
    /// Some added custom-bucket histograms had other bounds (Prometheus' info).
    pub(crate) reconciled: bool,
    /// Histograms added so far.
    n: f64,
    /// An average: when the plain sum would overflow, switch to a running mean.
    avg: bool,
    /// The fields hold the running mean, not the sum (an average that would overflow).
    incremental: bool,
}

fn kahan_add(acc: &mut (f64, f64), v: f64) {
    let (s, c) = crate::eval::kahan(v, acc.0, acc.1);
    *acc = (s, c);
}

impl HistSum {
    /// Start with `h`.
    pub(crate) fn new(h: &Histogram) -> HistSum {
        let p = parts(h, h.schema);
        HistSum {
            schema: h.schema,
            zt: h.zero_threshold,
            zc: (h.zero_count, 0.0),
            count: (h.count, 0.0),
            sum: (h.sum, 0.0),
            pos: p.pos.into_iter().map(|(k, v)| (k, (v, 0.0))).collect(),
            neg: p.neg.into_iter().map(|(k, v)| (k, (v, 0.0))).collect(),
            gauge: h.reset_hint == CounterResetHint::Gauge,
            custom: h.uses_custom_buckets().then(|| h.custom_values.clone()),
            reconciled: false,
            n: 1.0,
            avg: false,
            incremental: false,
        }
    }

    /// Start an average with `h`: a compensated sum divided at the end, or, from the
    /// histogram whose addition would overflow a field, a compensated running mean (as
    /// Prometheus averages floats and histograms).
    pub(crate) fn new_avg(h: &Histogram) -> HistSum {
        HistSum {
            avg: true,
            ..HistSum::new(h)
        }
    }

    /// Whether adding `h` would take a finite field of the sum to infinity.
    fn would_overflow(&self, h: &Histogram) -> bool {
        let over = |a: f64, b: f64| a.is_finite() && b.is_finite() && (a + b).is_infinite();
        if over(self.count.0, h.count) || over(self.sum.0, h.sum) || over(self.zc.0, h.zero_count) {
            return true;
        }
        let p = parts(h, self.schema.max(h.schema));
        let side = |mine: &BTreeMap<i32, (f64, f64)>, theirs: &Buckets| {
            theirs
                .iter()
                .any(|(k, v)| over(mine.get(k).map_or(0.0, |x| x.0), *v))
        };
        side(&self.pos, &p.pos) || side(&self.neg, &p.neg)
    }

    /// Apply `f` to every field and compensation term.
    fn map_all(&mut self, f: impl Fn(f64) -> f64) {
        for x in [&mut self.zc, &mut self.count, &mut self.sum]
            .into_iter()
            .chain(self.pos.values_mut())
            .chain(self.neg.values_mut())
        {
            *x = (f(x.0), f(x.1));
        }
    }

    fn reduce(m: &mut BTreeMap<i32, (f64, f64)>, from: i32, to: i32) {
        if from <= to {
            return;
        }
        let old = std::mem::take(m);
        for (k, (v, c)) in old {
            let e = m.entry(reduce_index(k, from, to)).or_insert((0.0, 0.0));
            e.0 += v;
            e.1 += c;
        }
    }

    /// Add a custom-bucket histogram, re-bucketing onto the bounds both share.
    fn add_custom(&mut self, h: &Histogram) -> Option<()> {
        let old = self.custom.take()?;
        let bounds = if old == h.custom_values {
            old
        } else {
            let bounds = gmc_model::intersect_custom_bounds(&old, &h.custom_values);
            for (i, (v, c)) in std::mem::take(&mut self.pos) {
                let e = self
                    .pos
                    .entry(gmc_model::custom_bucket_onto(&old, i, &bounds))
                    .or_insert((0.0, 0.0));
                e.0 += v;
                e.1 += c;
            }
            self.reconciled = true;
            bounds
        };
        kahan_add(&mut self.count, h.count);
        kahan_add(&mut self.sum, h.sum);
        for (i, v) in h.positive_iter() {
            let j = gmc_model::custom_bucket_onto(&h.custom_values, i, &bounds);
            kahan_add(self.pos.entry(j).or_insert((0.0, 0.0)), v);
        }
        self.gauge |= h.reset_hint == CounterResetHint::Gauge;
        self.custom = Some(bounds);
        Some(())
    }

    /// Add `h` (None when the layouts are incompatible: custom and exponential).
    pub(crate) fn add(&mut self, h: &Histogram) -> Option<()> {
        if h.uses_custom_buckets() != self.custom.is_some() {
            return None;
        }
        self.n += 1.0;
        if self.avg {
            // Divisions, not multiplications by a reciprocal: the rounding must be
            // Prometheus' for large values that cancel to come out the same.
            if !self.incremental && self.would_overflow(h) {
                // The fields become the mean of the histograms so far.
                let d = self.n - 1.0;
                self.map_all(|x| x / d);
                self.incremental = true;
            }
            if self.incremental {
                // mean_n = mean_{n-1} * (n-1)/n + h/n, each term compensated.
                let (n, q) = (self.n, (self.n - 1.0) / self.n);
                self.map_all(|x| x * q);
                let mut part = h.clone();
                for x in [&mut part.zero_count, &mut part.count, &mut part.sum]
                    .into_iter()
                    .chain(part.positive_buckets.iter_mut())
                    .chain(part.negative_buckets.iter_mut())
                {
                    *x /= n;
                }
                return self.add_plain(&part);
            }
        }
        self.add_plain(h)
    }

    fn add_plain(&mut self, h: &Histogram) -> Option<()> {
        if h.uses_custom_buckets() {
            return self.add_custom(h);
        }
        if h.schema < self.schema {
            Self::reduce(&mut self.pos, self.schema, h.schema);
            Self::reduce(&mut self.neg, self.schema, h.schema);
            self.schema = h.schema;
        }
        let mut p = parts(h, self.schema);
        if p.zt > self.zt {
            // Move our buckets that now fall into the wider zero bucket.
            let (schema, zt) = (self.schema, p.zt);
            let mut moved = (0.0, 0.0);
            for m in [&mut self.pos, &mut self.neg] {
                m.retain(|idx, v| {
                    if upper(schema, *idx) <= zt {
                        moved.0 += v.0;
                        moved.1 += v.1;
                        false
                    } else {
                        true
                    }
                });
            }
            kahan_add(&mut self.zc, moved.0);
            self.zc.1 += moved.1;
            self.zt = zt;
        } else {
            widen_zero(&mut p, self.zt);
        }
        kahan_add(&mut self.zc, p.zc);
        kahan_add(&mut self.count, h.count);
        kahan_add(&mut self.sum, h.sum);
        for (k, v) in p.pos {
            kahan_add(self.pos.entry(k).or_insert((0.0, 0.0)), v);
        }
        for (k, v) in p.neg {
            kahan_add(self.neg.entry(k).or_insert((0.0, 0.0)), v);
        }
        self.gauge |= h.reset_hint == CounterResetHint::Gauge;
        Some(())
    }

    /// The sum, scaled by `factor` (1 for `sum`, 1/n for `avg`; an average kept as a
    /// running mean is not scaled again).
    pub(crate) fn finish(&self, factor: f64) -> Histogram {
        let factor = if self.incremental { 1.0 } else { factor };
        let fold = |m: &BTreeMap<i32, (f64, f64)>| -> Buckets {
            m.iter().map(|(k, (v, c))| (*k, (v + c) * factor)).collect()
        };
        let (ps, pc) = from_map(&fold(&self.pos));
        let (ns, nc) = from_map(&fold(&self.neg));
        let val = |x: (f64, f64)| (x.0 + x.1) * factor;
        Histogram {
            schema: self.schema,
            zero_threshold: self.zt,
            zero_count: val(self.zc),
            count: val(self.count),
            sum: val(self.sum),
            positive_spans: ps,
            positive_buckets: pc,
            negative_spans: ns,
            negative_buckets: nc,
            min: None,
            max: None,
            reset_hint: if self.gauge {
                CounterResetHint::Gauge
            } else {
                CounterResetHint::Unknown
            },
            custom_values: self.custom.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn h(schema: i32, offset: i32, buckets: &[f64]) -> Histogram {
        let count: f64 = buckets.iter().sum();
        Histogram {
            schema,
            count,
            sum: count,
            positive_spans: vec![Span {
                offset,
                length: buckets.len() as u32,
            }],
            positive_buckets: buckets.to_vec(),
            ..Histogram::default()
        }
    }

    #[test]
    fn add_reduces_to_the_coarser_schema() {
        // schema 0 buckets (1,2] and (2,4] fold into schema -1 bucket (1,4] (index 1).
        let a = h(-1, 1, &[1.0]);
        let b = h(0, 1, &[2.0, 2.0]);
        let s = add(&a, &b).unwrap();
        assert_eq!(s.schema, -1);
        assert_eq!(s.positive_iter().collect::<Vec<_>>(), vec![(1, 5.0)]);
        assert_eq!(s.count, 5.0);
    }

    #[test]
    fn quantile_interpolates_exponentially_and_fraction_covers_all() {
        let x = h(0, 1, &[4.0]); // all in (1, 2]
        let q = quantile(0.5, &x);
        assert!((q - 2f64.sqrt()).abs() < 1e-12, "{q}");
        assert_eq!(quantile(-1.0, &x), f64::NEG_INFINITY);
        assert!((fraction(1.0, 2.0, &x) - 1.0).abs() < 1e-12);
        assert_eq!(fraction(3.0, 2.0, &x), 0.0);
    }

    #[test]
    fn reset_detection_follows_buckets_and_hints() {
        let a = h(0, 0, &[1.0, 2.0]);
        let b = h(0, 0, &[1.0, 3.0]);
        assert!(!detect_reset(&b, &a));
        assert!(detect_reset(&a, &b));
        let mut c = b.clone();
        c.reset_hint = CounterResetHint::Reset;
        assert!(detect_reset(&c, &a));
    }

    #[test]
    fn compensated_sum_keeps_small_values() {
        let mut big = h(0, 0, &[1.0]);
        big.sum = 1e100;
        let mut neg = big.clone();
        neg.sum = -1e100;
        let mut acc = HistSum::new(&h(0, 0, &[1.0]));
        acc.add(&big).unwrap();
        acc.add(&h(0, 0, &[1.0])).unwrap();
        acc.add(&neg).unwrap();
        let s = acc.finish(1.0);
        assert_eq!(s.sum, 2.0);
        assert_eq!(s.count, 4.0);
    }

    proptest! {
        #[test]
        fn add_then_sub_gives_back_the_original(
            sa in 0i32..3, sb in 0i32..3,
            oa in -3i32..3, ob in -3i32..3,
            ba in proptest::collection::vec(0u8..50, 1..6),
            bb in proptest::collection::vec(0u8..50, 1..6),
        ) {
            let a = h(sa.min(sb), oa, &ba.iter().map(|x| f64::from(*x)).collect::<Vec<_>>());
            let b = h(sb.max(sa), ob, &bb.iter().map(|x| f64::from(*x)).collect::<Vec<_>>());
            // a has the coarser (or equal) schema, so a + b - b == a exactly.
            let s = add(&a, &b).unwrap();
            let back = sub(&s, &b).unwrap();
            prop_assert!(equals(&compact(back), &compact(a.clone())));
            // Addition commutes.
            prop_assert!(equals(&compact(add(&b, &a).unwrap()), &compact(s)));
        }
    }
}
