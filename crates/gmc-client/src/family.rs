//! Dynamic-label metric families for cold paths: label values are looked up in a
//! lock-free, insert-only open-addressing table (foldhash, linear probing). A hit reads
//! shared memory only — no lock, no reference count, no allocation — so two threads
//! looking up the same series do not write a shared line. Misses insert under a mutex.
//! Past `max_series` distinct value sets, lookups fold into one `__overflow__` series and
//! are counted in `gmc_client_label_overflow_total{metric=...}`.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::counter::Counter;
use crate::error::{Error, Result};
use crate::gauge::Gauge;
use crate::histogram::Histogram;
use crate::metrics as own;
use crate::registry::{lock, valid_label_name, Registry};

/// Label value of the series that collects lookups past the cardinality cap.
pub const OVERFLOW_VALUE: &str = "__overflow__";

/// A metric type that a [`Family`] can hold.
pub trait FamilyMetric: Clone + Send + Sync + Sized + 'static {
    /// Resolve the series `name{labels}` in `registry`.
    fn resolve(
        registry: &Registry,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Self>;
}

impl FamilyMetric for Counter {
    fn resolve(r: &Registry, name: &str, help: &str, labels: &[(&str, &str)]) -> Result<Self> {
        r.counter_with(name, help, labels)
    }
}

impl FamilyMetric for Gauge {
    fn resolve(r: &Registry, name: &str, help: &str, labels: &[(&str, &str)]) -> Result<Self> {
        r.gauge_with(name, help, labels)
    }
}

impl FamilyMetric for Histogram {
    fn resolve(r: &Registry, name: &str, help: &str, labels: &[(&str, &str)]) -> Result<Self> {
        r.histogram_with(name, help, labels)
    }
}

struct Entry<M> {
    hash: u64,
    values: Box<[Box<str>]>,
    metric: M,
}

/// A metric family keyed by label values known only at run time.
pub struct Family<M: FamilyMetric> {
    registry: Registry,
    name: String,
    help: String,
    label_names: Box<[String]>,
    table: Box<[OnceLock<Box<Entry<M>>>]>,
    mask: usize,
    len: AtomicUsize,
    max_series: usize,
    full: AtomicBool,
    insert: Mutex<()>,
    overflow: M,
    overflowed: Counter,
    hasher: foldhash::fast::FixedState,
}

impl<M: FamilyMetric> std::fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("label_names", &self.label_names)
            .field("len", &self.len())
            .field("max_series", &self.max_series)
            .finish()
    }
}

impl<M: FamilyMetric> Family<M> {
    pub(crate) fn new(
        registry: Registry,
        name: &str,
        help: &str,
        label_names: &[&str],
        max_series: usize,
    ) -> Result<Self> {
        for n in label_names {
            if !valid_label_name(n) {
                return Err(Error::InvalidName {
                    what: "label",
                    name: (*n).to_owned(),
                });
            }
        }
        let max_series = max_series.max(1);
        // Load factor ≤ 1/2 keeps probes short and guarantees an empty slot ends a probe.
        let size = (max_series * 2).next_power_of_two().max(8);
        let overflow_labels: Vec<(&str, &str)> =
            label_names.iter().map(|n| (*n, OVERFLOW_VALUE)).collect();
        let overflow = M::resolve(&registry, name, help, &overflow_labels)?;
        let overflowed = registry.counter_with(
            own::LABEL_OVERFLOW,
            own::LABEL_OVERFLOW_HELP,
            &[(own::LABEL_METRIC, name)],
        )?;
        Ok(Family {
            name: name.to_owned(),
            help: help.to_owned(),
            label_names: label_names.iter().map(|s| (*s).to_owned()).collect(),
            table: (0..size).map(|_| OnceLock::new()).collect(),
            mask: size - 1,
            len: AtomicUsize::new(0),
            max_series,
            full: AtomicBool::new(false),
            insert: Mutex::new(()),
            overflow,
            overflowed,
            hasher: foldhash::fast::FixedState::with_seed(0x243f_6a88_85a3_08d3),
            registry,
        })
    }

    #[inline]
    fn hash(&self, values: &[&str]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for v in values {
            h.write(v.as_bytes());
            // A separator keeps ("ab", "c") and ("a", "bc") apart.
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// The series for `values` (one per label name, in order), created on first use.
    /// A wrong number of values, or a new value set past the cap, gives the overflow
    /// series and counts the lookup in `gmc_client_label_overflow_total`.
    #[inline]
    pub fn with(&self, values: &[&str]) -> &M {
        if values.len() != self.label_names.len() {
            return self.fold();
        }
        let hash = self.hash(values);
        // The mask bounds the index; truncating the hash to usize is the point.
        #[allow(clippy::cast_possible_truncation)]
        let mut i = hash as usize & self.mask;
        loop {
            match self.table.get(i).and_then(OnceLock::get) {
                Some(e) => {
                    if e.hash == hash && same(&e.values, values) {
                        return &e.metric;
                    }
                }
                None => return self.insert_slow(hash, values),
            }
            i = (i + 1) & self.mask;
        }
    }

    fn fold(&self) -> &M {
        self.overflowed.inc();
        &self.overflow
    }

    #[cold]
    fn insert_slow(&self, hash: u64, values: &[&str]) -> &M {
        if self.full.load(Ordering::Relaxed) {
            return self.fold();
        }
        let _g = lock(&self.insert);
        #[allow(clippy::cast_possible_truncation)]
        let mut i = hash as usize & self.mask;
        loop {
            let Some(slot) = self.table.get(i) else {
                return self.fold();
            };
            match slot.get() {
                Some(e) if e.hash == hash && same(&e.values, values) => return &e.metric,
                Some(_) => i = (i + 1) & self.mask,
                None => {
                    if self.len.load(Ordering::Relaxed) >= self.max_series {
                        self.full.store(true, Ordering::Relaxed);
                        return self.fold();
                    }
                    let labels: Vec<(&str, &str)> = self
                        .label_names
                        .iter()
                        .map(String::as_str)
                        .zip(values.iter().copied())
                        .collect();
                    let Ok(metric) = M::resolve(&self.registry, &self.name, &self.help, &labels)
                    else {
                        return self.fold();
                    };
                    self.len.fetch_add(1, Ordering::Relaxed);
                    let e = slot.get_or_init(|| {
                        Box::new(Entry {
                            hash,
                            values: values.iter().map(|v| Box::from(*v)).collect(),
                            metric,
                        })
                    });
                    return &e.metric;
                }
            }
        }
    }

    /// An owned handle for `values` (resolve once, then record without any lookup).
    pub fn handle(&self, values: &[&str]) -> M {
        self.with(values).clone()
    }

    /// Distinct value sets stored (the overflow series not included).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no value set was stored yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups folded into the overflow series so far.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.get()
    }
}

#[inline]
fn same(stored: &[Box<str>], values: &[&str]) -> bool {
    stored.len() == values.len() && stored.iter().zip(values).all(|(a, b)| **a == **b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_hit_the_same_series_and_overflow_past_the_cap() {
        let r = Registry::new();
        let f = r
            .counter_family("req", "Requests.", &["venue", "sym"], 2)
            .unwrap();
        f.with(&["a", "x"]).inc();
        f.with(&["a", "x"]).inc();
        f.with(&["b", "x"]).inc();
        f.with(&["c", "x"]).add(5);
        f.with(&["only-one"]).inc();
        assert_eq!(f.len(), 2);
        assert_eq!(f.with(&["a", "x"]).get(), 2);
        assert_eq!(f.overflowed(), 2);
        assert_eq!(f.with(&["zz", "zz"]).get(), 5 + 1);
        assert_eq!(f.overflowed(), 3);
    }

    #[test]
    fn separator_keeps_value_sets_apart() {
        let r = Registry::new();
        let f = r.counter_family("sep", "x", &["a", "b"], 10).unwrap();
        f.with(&["ab", "c"]).inc();
        f.with(&["a", "bc"]).add(2);
        assert_eq!(f.with(&["ab", "c"]).get(), 1);
        assert_eq!(f.len(), 2);
    }
}
