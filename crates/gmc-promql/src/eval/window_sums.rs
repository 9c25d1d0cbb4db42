//! `sum_over_time` and `avg_over_time` of a range query in O(1) per step, from prefix
//! sums of the series kept to about twice `f64` precision.
//!
//! A range query's windows overlap: `avg_over_time(x[5m])` at a 15 s step reads each
//! sample in 20 windows, and summing every window anew was 62 % of such a query's CPU.
//! Differences of plain `f64` prefix sums would cancel catastrophically (a window's sum
//! can be tiny next to everything before it), so each prefix is a pair `(hi, lo)`: `hi`
//! the running `f64` sum, `lo` the running sum of `hi`'s exact rounding errors (TwoSum).
//! The two chains are independent, one add each per sample; a normalised double-double
//! (renormalising after every sample) was a chain of six dependent operations, and
//! building it took 60 % of the range function's time.
//!
//! Error: each rounding error `eᵢ` is at most `u·Σ|x|` (`u = 2⁻⁵³`), and `lo` sums them with
//! error at most `n·u·Σ|eᵢ|`, so a prefix is off the exact sum by at most `n²·2⁻¹⁰⁶·Σ|x|`
//! and a window (two prefixes) by `2.1·n²·2⁻¹⁰⁶·Σ|x|`. A window is answered from the
//! prefixes only when that bound is below `2⁻⁶⁰` of its result; otherwise (heavy
//! cancellation, a zero sum, very long series) and for series with non-finite values or
//! overflowing magnitudes, the caller sums the window directly as Prometheus does. The
//! answer then differs from Prometheus' Kahan sum by at most its own rounding error,
//! far inside the 1e-6 relative tolerance of Prometheus' test scripts.

/// `(s, e)` with `s = fl(a + b)` and `a + b = s + e` exactly (Knuth's TwoSum).
#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// Series longer than this keep the direct sums (past it the bound answers no window).
const MAX_SAMPLES: usize = 1 << 24;

/// `2⁴⁴`: a window is answered when `|sum| · 2⁴⁴ ≥ n² · Σ|x|`, which puts the error bound
/// `2.1·n²·2⁻¹⁰⁶·Σ|x|` below `2.1 · 2⁻⁶² · |sum| < 2⁻⁶⁰ · |sum|`.
const ANSWER_SCALE: f64 = 17_592_186_044_416.0;

/// Prefix sums of one series' values; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct WindowSums {
    /// `hi[k] + lo[k]` ≈ the sum of the first `k` values (interleaved: `2k`, `2k + 1`).
    prefix: Vec<f64>,
    /// `n² · Σ|x| / 2⁴⁴` over the series: the smallest `|sum|` a window is answered for.
    min_answer: f64,
}

impl WindowSums {
    /// Rebuild over `values`; `false` (and no prefixes) if the series does not qualify:
    /// a non-finite value, magnitudes whose sum overflows, or too many samples.
    pub(crate) fn build(&mut self, values: impl ExactSizeIterator<Item = f64>) -> bool {
        self.prefix.clear();
        self.min_answer = f64::INFINITY;
        let n = values.len();
        if n > MAX_SAMPLES {
            return false;
        }
        self.prefix.reserve(2 * (values.len() + 1));
        self.prefix.extend([0.0, 0.0]);
        let (mut hi, mut lo, mut abs) = (0.0f64, 0.0f64, 0.0f64);
        for x in values {
            if !x.is_finite() {
                self.prefix.clear();
                return false;
            }
            abs += x.abs();
            let e;
            (hi, e) = two_sum(hi, x);
            lo += e;
            self.prefix.extend([hi, lo]);
        }
        if !abs.is_finite() {
            self.prefix.clear();
            return false;
        }
        let n = n as f64;
        self.min_answer = n * n * abs / ANSWER_SCALE;
        true
    }

    /// The sum of values `f0..f1` as a normalised double-double `(hi, lo)`, or `None`
    /// when the prefixes cannot answer it to full precision (the caller sums directly).
    pub(crate) fn window(&self, f0: usize, f1: usize) -> Option<(f64, f64)> {
        if f1 <= f0 {
            return None;
        }
        let (h0, l0) = (*self.prefix.get(2 * f0)?, *self.prefix.get(2 * f0 + 1)?);
        let (h1, l1) = (*self.prefix.get(2 * f1)?, *self.prefix.get(2 * f1 + 1)?);
        let (s, e) = two_sum(h1, -h0);
        let (hi, lo) = two_sum(s, e + (l1 - l0));
        // Answer only when the error bound is below 2⁻⁶⁰ · |sum| (see `ANSWER_SCALE`).
        (hi.abs() >= self.min_answer && hi != 0.0).then_some((hi, lo))
    }
}

/// `sum_over_time` from a window's double-double sum.
pub(crate) fn sum_of((hi, lo): (f64, f64)) -> f64 {
    hi + lo
}

/// `avg_over_time` of `count` values from their double-double sum, in the shape of
/// Prometheus' non-overflowing branch (`sum / count + compensation / count`).
pub(crate) fn avg_of((hi, lo): (f64, f64), count: usize) -> f64 {
    let n = count as f64;
    hi / n + lo / n
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::eval::aggregate::kahan_inc;

    fn kahan(xs: &[f64]) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for &x in xs {
            (s, c) = kahan_inc(x, s, c);
        }
        s + c
    }

    /// Exact sum of finite doubles (as a correctly rounded f64), by splitting into
    /// non-overlapping partials (Shewchuk's algorithm, as Python's `math.fsum`).
    fn exact(xs: &[f64]) -> f64 {
        let mut partials: Vec<f64> = Vec::new();
        for &x in xs {
            let mut x = x;
            let mut kept = Vec::with_capacity(partials.len() + 1);
            for &p in &partials {
                let (hi, lo) = if x.abs() < p.abs() {
                    two_sum(p, x)
                } else {
                    two_sum(x, p)
                };
                if lo != 0.0 {
                    kept.push(lo);
                }
                x = hi;
            }
            kept.push(x);
            partials = kept;
        }
        partials.iter().rev().fold(0.0, |acc, p| acc + p)
    }

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / a.abs().max(b.abs())
        }
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1e6f64..1e6),
            (0.0f64..1.0),
            (-1e300f64..1e300),
            (1e9f64..1e9 + 1000.0),
            Just(0.0),
        ]
    }

    proptest! {
        #[test]
        fn answered_windows_match_the_exact_sum(
            xs in proptest::collection::vec(value(), 1..300),
            cuts in proptest::collection::vec((0usize..300, 0usize..300), 1..20),
        ) {
            let mut w = WindowSums::default();
            prop_assume!(w.build(xs.iter().copied()));
            for (a, b) in cuts {
                let (f0, f1) = (a.min(b) % (xs.len() + 1), a.max(b) % (xs.len() + 1));
                let (f0, f1) = (f0.min(f1), f0.max(f1));
                let Some(dd) = w.window(f0, f1) else { continue };
                let want = exact(&xs[f0..f1]);
                prop_assert!(rel(sum_of(dd), want) <= 4.0 * f64::EPSILON,
                    "{f0}..{f1}: {} vs exact {want}", sum_of(dd));
                // Kahan (Prometheus) is within its own error of the exact sum; so are we.
                let k = kahan(&xs[f0..f1]);
                let scale: f64 = xs[f0..f1].iter().map(|x| x.abs()).sum();
                prop_assert!((sum_of(dd) - k).abs() <= 4.0 * f64::EPSILON * scale);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Long gauge-like series (the case the prefixes exist for): every window is
        /// answered, and within 4 ulp of the exact sum. Dropping the error chain (`lo`)
        /// leaves errors of ~n/2 ulp here.
        #[test]
        fn long_gauge_windows_are_answered_exactly(
            base in 0.1f64..1e6,
            noise in proptest::collection::vec(0.0f64..1.0, 1000..4000),
            width in 20usize..400,
        ) {
            let xs: Vec<f64> = noise.iter().map(|r| base * (1.0 + r)).collect();
            let mut w = WindowSums::default();
            prop_assert!(w.build(xs.iter().copied()));
            for f1 in (width..=xs.len()).step_by(37) {
                let f0 = f1 - width;
                let dd = w.window(f0, f1);
                prop_assert!(dd.is_some(), "{f0}..{f1} not answered");
                let want = exact(&xs[f0..f1]);
                let got = dd.map_or(f64::NAN, sum_of);
                prop_assert!(rel(got, want) <= 4.0 * f64::EPSILON, "{f0}..{f1}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn cancelling_and_non_finite_series_fall_back() {
        let mut w = WindowSums::default();
        assert!(w.build([1e300, 1.0, -1e300, 2.0].into_iter()));
        assert_eq!(w.window(0, 4), None, "1e300 - 1e300 cancels: sum directly");
        assert!(w.window(0, 1).is_some());
        assert!(!w.build([1.0, f64::NAN].into_iter()));
        assert!(!w.build([1.0, f64::INFINITY].into_iter()));
        assert!(!w.build([f64::MAX, f64::MAX].into_iter()), "Σ|x| overflows");
        assert!(w.build([0.0, 0.0].into_iter()));
        assert_eq!(w.window(0, 2), None, "a zero sum is summed directly");
        assert!(w.build([3.0, 4.0, 5.0].into_iter()));
        assert_eq!(w.window(1, 3).map(sum_of), Some(9.0));
        assert_eq!(w.window(0, 3).map(|d| avg_of(d, 3)), Some(4.0));
        assert_eq!(w.window(2, 2), None);
        assert_eq!(w.window(0, 9), None);
    }
}
