//! "Does any element (or adjacent pair) match?" over sample slices, for the checks that
//! nearly always answer no and so compare every element: a counter reset, a staleness
//! marker, timestamps out of order. Eight compares are combined per branch, without an
//! early exit inside a group, so the compiler vectorises them; `iter().any` and
//! `windows(2).any` exit after each compare and stayed scalar (together ~9 % of a `rate`
//! query over 8,000 series).

/// Elements combined per branch.
const LANES: usize = 8;

/// Whether `pred` holds for any element of `v`.
#[inline]
pub fn any<T>(v: &[T], pred: impl Fn(&T) -> bool) -> bool {
    let mut groups = v.chunks_exact(LANES);
    groups
        .by_ref()
        .any(|g| g.iter().fold(false, |hit, x| hit | pred(x)))
        || groups.remainder().iter().any(pred)
}

/// Whether `pred(earlier, later)` holds for any two adjacent elements of `v`.
#[inline]
pub fn any_adjacent<T>(v: &[T], pred: impl Fn(&T, &T) -> bool) -> bool {
    let pairs = v.len().saturating_sub(1);
    let mut k = 0;
    while k + LANES <= pairs {
        let hit = (k..k + LANES).fold(false, |hit, j| hit | pred(&v[j], &v[j + 1]));
        if hit {
            return true;
        }
        k += LANES;
    }
    v[k..].windows(2).any(|w| pred(&w[0], &w[1]))
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn any_and_any_adjacent_agree_with_the_scalar_scans(
            v in proptest::collection::vec(0u8..4, 0..40),
        ) {
            proptest::prop_assert_eq!(super::any(&v, |x| *x == 3), v.contains(&3));
            proptest::prop_assert_eq!(
                super::any_adjacent(&v, |a, b| b < a),
                v.windows(2).any(|w| w[1] < w[0])
            );
        }
    }
}
