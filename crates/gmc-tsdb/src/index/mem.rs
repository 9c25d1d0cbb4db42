//! The head's in-memory inverted index. Thread-safe on its own: an internal `RwLock` lets
//! one writer (appends, garbage collection) and many readers (queries) share it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use gmc_model::{Labels, Matcher};
use parking_lot::RwLock;

use super::{postings, LabelIndex, Result, Source};

/// Label name → value → sorted series refs, plus the sorted list of every ref.
///
/// Locking: every method takes the internal lock itself (write for `add`/`remove`/`gc`,
/// read for queries), so callers need no lock of their own. A query holds the read lock
/// for its whole duration; appends of new series wait for it (existing series never touch
/// the index).
#[derive(Debug, Default)]
pub struct MemPostings {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
    all: Vec<u32>,
}

fn insert_sorted(v: &mut Vec<u32>, r: u32) {
    // Head refs grow over time, so the common case is a push at the end.
    match v.last() {
        Some(&l) if l >= r => {
            if let Err(i) = v.binary_search(&r) {
                v.insert(i, r);
            }
        }
        _ => v.push(r),
    }
}

fn remove_sorted(v: &mut Vec<u32>, r: u32) {
    if let Ok(i) = v.binary_search(&r) {
        v.remove(i);
    }
}

impl MemPostings {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Index series `series_ref` under each of its label pairs. Adding a ref twice is a no-op.
    pub fn add(&self, series_ref: u32, labels: &Labels) {
        let mut g = self.inner.write();
        insert_sorted(&mut g.all, series_ref);
        for (n, v) in labels.iter() {
            let values = match g.map.get_mut(n) {
                Some(values) => values,
                None => g.map.entry(n.to_owned()).or_default(),
            };
            match values.get_mut(v) {
                Some(list) => insert_sorted(list, series_ref),
                None => {
                    values.insert(v.to_owned(), vec![series_ref]);
                }
            }
        }
    }

    /// Remove one series (its labels say which lists hold it); empty lists are dropped.
    pub fn remove(&self, series_ref: u32, labels: &Labels) {
        let mut g = self.inner.write();
        remove_sorted(&mut g.all, series_ref);
        for (n, v) in labels.iter() {
            let Some(values) = g.map.get_mut(n) else {
                continue;
            };
            if let Some(list) = values.get_mut(v) {
                remove_sorted(list, series_ref);
                if list.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                g.map.remove(n);
            }
        }
    }

    /// Garbage-collect many series at once (e.g. those dropped after a head flush) without
    /// knowing their labels: one pass over every list. `dropped` must be sorted.
    pub fn gc(&self, dropped: &[u32]) {
        if dropped.is_empty() {
            return;
        }
        let mut g = self.inner.write();
        g.all = postings::subtract(&g.all, dropped);
        g.map.retain(|_, values| {
            values.retain(|_, list| {
                if postings::intersects(list, dropped) {
                    *list = postings::subtract(list, dropped);
                }
                !list.is_empty()
            });
            !values.is_empty()
        });
    }

    /// Number of indexed series.
    pub fn len(&self) -> usize {
        self.inner.read().all.len()
    }

    /// Whether no series is indexed.
    pub fn is_empty(&self) -> bool {
        self.inner.read().all.is_empty()
    }
}

impl Source for Inner {
    fn all_refs(&self) -> Result<Cow<'_, [u32]>> {
        Ok(Cow::Borrowed(&self.all))
    }

    fn names(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }

    fn values(&self, name: &str) -> Vec<&str> {
        self.map
            .get(name)
            .map(|v| v.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn postings(&self, name: &str, value: &str) -> Result<Cow<'_, [u32]>> {
        Ok(Cow::Borrowed(
            self.map
                .get(name)
                .and_then(|v| v.get(value))
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        ))
    }
}

impl LabelIndex for MemPostings {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>> {
        super::select(&*self.inner.read(), matchers)
    }

    fn label_names(&self, refs: Option<&[u32]>) -> Result<Vec<String>> {
        super::label_names(&*self.inner.read(), refs)
    }

    fn label_values(&self, name: &str, refs: Option<&[u32]>) -> Result<Vec<String>> {
        super::label_values(&*self.inner.read(), name, refs)
    }
}

#[cfg(test)]
mod tests {
    use gmc_model::MatchOp;

    use super::*;

    fn idx() -> MemPostings {
        let p = MemPostings::new();
        p.add(0, &Labels::from_pairs([("__name__", "up"), ("job", "a")]));
        p.add(1, &Labels::from_pairs([("__name__", "up"), ("job", "b")]));
        p.add(2, &Labels::from_pairs([("__name__", "cpu")]));
        p
    }

    #[test]
    fn empty_matching_matchers_select_series_without_the_label() {
        let p = idx();
        let m = Matcher::new(MatchOp::Equal, "job", "").unwrap();
        assert_eq!(p.select(&[m]).unwrap(), vec![2]);
        let m = Matcher::new(MatchOp::NotEqual, "job", "a").unwrap();
        assert_eq!(p.select(&[m]).unwrap(), vec![1, 2]);
        let m = Matcher::new(MatchOp::Regex, "job", "a|b").unwrap();
        assert_eq!(p.select(&[m]).unwrap(), vec![0, 1]);
    }

    #[test]
    fn readers_see_consistent_sorted_results_while_one_writer_adds() {
        let p = std::sync::Arc::new(MemPostings::new());
        let m = [Matcher::equal("job", "a")];
        std::thread::scope(|s| {
            for _ in 0..3 {
                let p = std::sync::Arc::clone(&p);
                let m = m.clone();
                s.spawn(move || {
                    let mut last = 0;
                    for _ in 0..200 {
                        let r = p.select(&m).unwrap();
                        assert!(r.windows(2).all(|w| w[0] < w[1]));
                        assert!(r.len() >= last, "a reader saw the index shrink");
                        last = r.len();
                    }
                });
            }
            for i in 0..2000u32 {
                let job = if i % 2 == 0 { "a" } else { "b" };
                p.add(i, &Labels::from_pairs([("__name__", "up"), ("job", job)]));
            }
        });
        assert_eq!(p.select(&m).unwrap().len(), 1000);
    }

    #[test]
    fn remove_and_gc_drop_series_and_empty_lists() {
        let p = idx();
        p.remove(2, &Labels::from_pairs([("__name__", "cpu")]));
        assert_eq!(p.label_values("__name__", None).unwrap(), vec!["up"]);
        p.gc(&[0]);
        assert_eq!(p.label_values("job", None).unwrap(), vec!["b"]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.label_names(Some(&[1])).unwrap(), vec!["__name__", "job"]);
    }
}
