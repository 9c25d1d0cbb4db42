//! `max_over_time` and `min_over_time` of a range query in amortized O(1) per step: a
//! monotonic queue of sample indexes slides with the windows, so each sample enters and
//! leaves it once instead of being compared in every window that holds it.
//!
//! Prometheus' semantics are kept exactly: NaN values never win (a window of only NaN
//! gives NaN), and among equal values the earliest wins (it decides between `0` and
//! `-0`). The queue keeps indexes of a non-increasing run of values (non-decreasing for
//! `min`), dropping from the back only values strictly beaten by a newer one, so its
//! front is always the earliest best value of the window.

use std::collections::VecDeque;

/// The sliding state of one series; reused across series (see [`Self::start`]).
#[derive(Debug, Default)]
pub(crate) struct WindowExtrema {
    queue: VecDeque<usize>,
    /// Next sample index to enter the queue.
    next: usize,
    /// Start of the previous window (windows that move back restart the queue).
    last_f0: usize,
    min: bool,
}

impl WindowExtrema {
    /// Start a series; `min` selects `min_over_time`.
    pub(crate) fn start(&mut self, min: bool) {
        self.queue.clear();
        self.next = 0;
        self.last_f0 = 0;
        self.min = min;
    }

    /// `true` when `a` beats `b` (strictly).
    #[inline]
    fn beats(&self, a: f64, b: f64) -> bool {
        if self.min {
            a < b
        } else {
            a > b
        }
    }

    /// The extreme value of `values[f0..f1]` (`None` for an empty window). Windows
    /// normally move forward; one that starts earlier or ends before the queue's
    /// position restarts it.
    pub(crate) fn window(&mut self, values: &[(i64, f64)], f0: usize, f1: usize) -> Option<f64> {
        if f0 >= f1 || f1 > values.len() {
            return None;
        }
        if f0 < self.last_f0 || f1 < self.next {
            self.queue.clear();
            self.next = f0;
        }
        self.last_f0 = f0;
        self.next = self.next.max(f0);
        while self.next < f1 {
            let i = self.next;
            self.next += 1;
            let Some(&(_, x)) = values.get(i) else { break };
            if x.is_nan() {
                continue;
            }
            while let Some(&b) = self.queue.back() {
                match values.get(b) {
                    Some(&(_, y)) if self.beats(x, y) => {
                        self.queue.pop_back();
                    }
                    _ => break,
                }
            }
            self.queue.push_back(i);
        }
        while self.queue.front().is_some_and(|&i| i < f0) {
            self.queue.pop_front();
        }
        Some(match self.queue.front() {
            Some(&i) => values.get(i).map_or(f64::NAN, |v| v.1),
            // Only NaN in the window.
            None => f64::NAN,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    use crate::eval::range_fns::extreme_serial as naive;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (-3i8..4).prop_map(f64::from),
            1 => Just(f64::NAN),
            1 => Just(-0.0),
            1 => Just(0.0),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
        ]
    }

    proptest! {
        #[test]
        fn sliding_matches_the_direct_loop_bit_for_bit(
            xs in proptest::collection::vec(value(), 1..80),
            moves in proptest::collection::vec((0usize..6, 0usize..12), 1..40),
            min in any::<bool>(),
        ) {
            let fs: Vec<(i64, f64)> = xs.iter().enumerate().map(|(i, x)| (i as i64, *x)).collect();
            let mut w = WindowExtrema::default();
            w.start(min);
            // Mostly forward-sliding windows of varying length (so the end moves back
            // at times), and sometimes a jump back.
            let mut f0 = 0usize;
            for (step, len) in moves {
                if step == 5 {
                    f0 /= 2;
                } else {
                    f0 = (f0 + step).min(fs.len());
                }
                let f1 = (f0 + len).min(fs.len());
                let got = w.window(&fs, f0, f1);
                if f0 >= f1 {
                    prop_assert_eq!(got, None);
                    continue;
                }
                let want = naive(&fs[f0..f1], min);
                let got = got.unwrap();
                prop_assert_eq!(got.to_bits(), want.to_bits(), "{:?} [{}, {})", &xs, f0, f1);
            }
        }
    }

    #[test]
    fn nan_never_wins_and_the_earliest_equal_does() {
        let fs: Vec<(i64, f64)> = [f64::NAN, -0.0, 0.0, f64::NAN, 1.0, 1.0]
            .into_iter()
            .enumerate()
            .map(|(i, x)| (i as i64, x))
            .collect();
        let mut w = WindowExtrema::default();
        w.start(false);
        assert!(w.window(&fs, 0, 1).unwrap().is_nan());
        assert_eq!(w.window(&fs, 0, 3).unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(w.window(&fs, 2, 4).unwrap().to_bits(), 0.0f64.to_bits());
        assert_eq!(w.window(&fs, 3, 6), Some(1.0));
        assert!(
            w.window(&fs, 3, 4).unwrap().is_nan(),
            "a window moving back restarts"
        );
        assert_eq!(w.window(&fs, 2, 2), None);
        assert_eq!(w.window(&fs, 0, 9), None);
    }
}
