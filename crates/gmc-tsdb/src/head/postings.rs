//! The head's in-memory inverted index (label pair → sorted series refs) and the label
//! string interner. Minimal on purpose: candidates come from the postings of matchers that
//! need the label present; every candidate is then checked against all matchers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gmc_model::{Matcher, METRIC_NAME};

/// Interns label strings so each distinct name or value is stored once.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<str>>,
}

impl Interner {
    /// The shared copy of `s`.
    pub(crate) fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(Arc::clone(&a));
        a
    }

    /// Drop strings no series uses any more.
    pub(crate) fn purge(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
    }
}

/// Label name → value → sorted series refs.
#[derive(Debug, Default)]
pub(crate) struct MemPostings {
    map: HashMap<Arc<str>, HashMap<Arc<str>, Vec<u64>>>,
}

fn insert_sorted(v: &mut Vec<u64>, r: u64) {
    // Refs grow over time, so the common case is a push at the end.
    match v.last() {
        Some(&l) if l >= r => {
            if let Err(i) = v.binary_search(&r) {
                v.insert(i, r);
            }
        }
        _ => v.push(r),
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn union(lists: Vec<&Vec<u64>>) -> Vec<u64> {
    let mut out: Vec<u64> = lists.into_iter().flatten().copied().collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl MemPostings {
    /// Index series `r` under each of its label pairs.
    pub(crate) fn add(&mut self, r: u64, labels: &[(Arc<str>, Arc<str>)]) {
        for (n, v) in labels {
            let values = self.map.entry(Arc::clone(n)).or_default();
            insert_sorted(values.entry(Arc::clone(v)).or_default(), r);
        }
    }

    /// Remove series `r`.
    pub(crate) fn remove(&mut self, r: u64, labels: &[(Arc<str>, Arc<str>)]) {
        for (n, v) in labels {
            let Some(values) = self.map.get_mut(n) else {
                continue;
            };
            if let Some(list) = values.get_mut(v) {
                if let Ok(i) = list.binary_search(&r) {
                    list.remove(i);
                }
                if list.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                self.map.remove(n);
            }
        }
    }

    /// Sorted refs that may match all `matchers` (a superset: callers check each series).
    pub(crate) fn candidates(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut acc: Option<Vec<u64>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let list = match self.map.get(m.name.as_str()) {
                None => Vec::new(),
                Some(values) => match m.op {
                    gmc_model::MatchOp::Equal => {
                        values.get(m.value.as_str()).cloned().unwrap_or_default()
                    }
                    _ => union(
                        values
                            .iter()
                            .filter(|(v, _)| m.matches(v))
                            .map(|(_, l)| l)
                            .collect(),
                    ),
                },
            };
            acc = Some(match acc {
                None => list,
                Some(a) => intersect(&a, &list),
            });
            if acc.as_ref().is_some_and(|a| a.is_empty()) {
                break;
            }
        }
        acc.unwrap_or_else(|| self.all())
    }

    /// Every indexed series (all have a metric name).
    pub(crate) fn all(&self) -> Vec<u64> {
        self.map
            .get(METRIC_NAME)
            .map(|values| union(values.values().collect()))
            .unwrap_or_default()
    }

    /// All label names.
    pub(crate) fn names(&self) -> Vec<String> {
        self.map.keys().map(|k| k.to_string()).collect()
    }

    /// All values of label `name`.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        self.map
            .get(name)
            .map(|v| v.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmc_model::MatchOp;
    use proptest::prelude::*;

    fn ls(pairs: &[(&str, &str)]) -> Vec<(Arc<str>, Arc<str>)> {
        pairs
            .iter()
            .map(|(n, v)| (Arc::from(*n), Arc::from(*v)))
            .collect()
    }

    #[test]
    fn candidates_intersect_and_fall_back_to_all() {
        let mut p = MemPostings::default();
        p.add(1, &ls(&[("__name__", "a"), ("job", "x")]));
        p.add(2, &ls(&[("__name__", "a"), ("job", "y")]));
        p.add(3, &ls(&[("__name__", "b"), ("job", "x")]));
        let eq = |n: &str, v: &str| Matcher::equal(n, v);
        assert_eq!(
            p.candidates(&[eq("__name__", "a"), eq("job", "x")]),
            vec![1]
        );
        let re = Matcher::new(MatchOp::Regex, "job", "x|y").unwrap();
        assert_eq!(p.candidates(&[re]), vec![1, 2, 3]);
        let ne = Matcher::new(MatchOp::NotEqual, "job", "x").unwrap();
        assert_eq!(p.candidates(&[ne]), vec![1, 2, 3]);
        p.remove(2, &ls(&[("__name__", "a"), ("job", "y")]));
        assert_eq!(p.values("job"), vec!["x".to_string()]);
    }

    proptest! {
        #[test]
        fn intersection_matches_naive_set(a in prop::collection::btree_set(0u64..200, 0..60),
                                          b in prop::collection::btree_set(0u64..200, 0..60)) {
            let av: Vec<u64> = a.iter().copied().collect();
            let bv: Vec<u64> = b.iter().copied().collect();
            let want: Vec<u64> = a.intersection(&b).copied().collect();
            prop_assert_eq!(intersect(&av, &bv), want);
        }
    }
}
