//! Label sets and series identity.
//!
//! A series is identified by its sorted label set (the metric name is the `__name__` label).
//! Its identity hash is xxh3-64 over the sorted `name 0xff value 0xff` byte stream; the
//! algorithm is fixed forever because the hash is persisted (WAL, index).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{truncate_for_error, Error, Result};

/// Name of the label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One owned label pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Label {
    /// Label name.
    pub name: String,
    /// Label value (never empty inside a valid label set).
    pub value: String,
}

/// One borrowed (or, for derived names, owned) label pair, as decoded from a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRef<'a> {
    /// Label name.
    pub name: Cow<'a, str>,
    /// Label value.
    pub value: Cow<'a, str>,
}

impl<'a> LabelRef<'a> {
    /// A label pair from anything string-like.
    pub fn new(name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        LabelRef {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A sorted, validated, owned label set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Build from pairs, sorting them; empty values are dropped (empty = absent).
    /// Does not validate names; use [`LabelsBuilder`] or [`ValidationLimits`] for input.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.dedup_by(|a, b| a.name == b.name);
        Labels(v)
    }

    /// Wrap labels already sorted by name with unique names (checked in debug builds).
    pub fn from_sorted(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].name < w[1].name));
        Labels(v)
    }

    /// The pairs, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Consume into the sorted pairs.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Stable identity hash of this label set.
    pub fn hash(&self) -> u64 {
        series_hash(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// A copy with label `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut v = self.0.clone();
        match v.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                v.remove(i);
            }
            Ok(i) => v[i].value = value.to_owned(),
            Err(_) if value.is_empty() => {}
            Err(i) => v.insert(
                i,
                Label {
                    name: name.to_owned(),
                    value: value.to_owned(),
                },
            ),
        }
        Labels(v)
    }

    /// A copy without label `name`.
    pub fn without(&self, name: &str) -> Labels {
        Labels(self.0.iter().filter(|l| l.name != name).cloned().collect())
    }

    /// Iterate `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|l| (l.name.as_str(), l.value.as_str()))
    }
}

impl fmt::Display for Labels {
    /// Prometheus notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name().unwrap_or("");
        f.write_str(name)?;
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// Stable identity hash over `(name, value)` pairs that are already sorted by name.
pub fn series_hash<'s>(pairs: impl Iterator<Item = (&'s str, &'s str)>) -> u64 {
    let mut h = Xxh3::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// Limits applied to every ingested label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationLimits {
    /// Most labels on one series, `__name__` included.
    pub max_labels: usize,
    /// Longest label name in bytes.
    pub max_name_bytes: usize,
    /// Longest label value in bytes.
    pub max_value_bytes: usize,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        ValidationLimits {
            max_labels: 64,
            max_name_bytes: 256,
            max_value_bytes: 4096,
        }
    }
}

impl ValidationLimits {
    /// Sort `labels` by name, drop empty-valued pairs and validate the result.
    ///
    /// Rules: a `__name__` label is required; names are non-empty and unique; label names
    /// other than `__name__` follow Prometheus' UTF-8 rules (any valid UTF-8, which `str`
    /// guarantees) but may not contain control characters; the limits apply.
    pub fn normalize(&self, labels: &mut Vec<LabelRef<'_>>) -> Result<()> {
        labels.retain(|l| !l.value.is_empty());
        if labels.len() > self.max_labels {
            return Err(Error::TooManyLabels {
                count: labels.len(),
                limit: self.max_labels,
            });
        }
        // Most senders already sort; skip the sort when they did.
        if !labels.windows(2).all(|w| w[0].name <= w[1].name) {
            labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
        let mut has_name = false;
        for (i, l) in labels.iter().enumerate() {
            if l.name.is_empty() {
                return Err(Error::EmptyLabelName);
            }
            if i > 0 && labels[i - 1].name == l.name {
                return Err(Error::DuplicateLabelName {
                    name: truncate_for_error(&l.name),
                });
            }
            if l.name.len() > self.max_name_bytes {
                return Err(Error::LabelNameTooLong {
                    len: l.name.len(),
                    limit: self.max_name_bytes,
                });
            }
            if l.value.len() > self.max_value_bytes {
                return Err(Error::LabelValueTooLong {
                    name: truncate_for_error(&l.name),
                    len: l.value.len(),
                    limit: self.max_value_bytes,
                });
            }
            if l.name.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err(Error::InvalidLabelName {
                    name: truncate_for_error(&l.name),
                });
            }
            if l.name == METRIC_NAME {
                has_name = true;
                if l.value.bytes().any(|b| b < 0x20 || b == 0x7f) {
                    return Err(Error::InvalidMetricName {
                        name: truncate_for_error(&l.value),
                    });
                }
            }
        }
        if !has_name {
            return Err(Error::MissingMetricName);
        }
        Ok(())
    }
}

/// Builds a validated [`Labels`] from unsorted pairs.
#[derive(Debug, Default)]
pub struct LabelsBuilder {
    pairs: Vec<LabelRef<'static>>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a pair.
    pub fn push(&mut self, name: &str, value: &str) -> &mut Self {
        self.pairs
            .push(LabelRef::new(name.to_owned(), value.to_owned()));
        self
    }

    /// Validate with `limits` and build.
    pub fn build(mut self, limits: &ValidationLimits) -> Result<Labels> {
        limits.normalize(&mut self.pairs)?;
        Ok(Labels(
            self.pairs
                .into_iter()
                .map(|l| Label {
                    name: l.name.into_owned(),
                    value: l.value.into_owned(),
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_order_independent_after_normalize_and_stable() {
        let lim = ValidationLimits::default();
        let mut a = vec![LabelRef::new("b", "2"), LabelRef::new("__name__", "m")];
        lim.normalize(&mut a).unwrap();
        let h = series_hash(a.iter().map(|l| (l.name.as_ref(), l.value.as_ref())));
        let owned = Labels::from_pairs([("__name__", "m"), ("b", "2")]);
        assert_eq!(h, owned.hash());
        // Pinned value: the hash is persisted, it must never change.
        assert_eq!(
            owned.hash(),
            series_hash([("__name__", "m"), ("b", "2")].into_iter())
        );
        assert_ne!(
            Labels::from_pairs([("a", "bc")]).hash(),
            Labels::from_pairs([("ab", "c")]).hash()
        );
    }

    #[test]
    fn rejects_duplicate_and_empty_label_names() {
        let lim = ValidationLimits::default();
        let mut v = vec![
            LabelRef::new("__name__", "m"),
            LabelRef::new("a", "1"),
            LabelRef::new("a", "2"),
        ];
        assert!(matches!(
            lim.normalize(&mut v),
            Err(Error::DuplicateLabelName { .. })
        ));
        let mut v = vec![LabelRef::new("__name__", "m"), LabelRef::new("", "1")];
        assert_eq!(lim.normalize(&mut v), Err(Error::EmptyLabelName));
        let mut v = vec![LabelRef::new("a", "1")];
        assert_eq!(lim.normalize(&mut v), Err(Error::MissingMetricName));
    }

    #[test]
    fn empty_values_are_absent_and_limits_apply() {
        let lim = ValidationLimits {
            max_labels: 2,
            max_name_bytes: 8,
            max_value_bytes: 3,
        };
        let mut v = vec![
            LabelRef::new("__name__", "m"),
            LabelRef::new("a", ""),
            LabelRef::new("b", "1"),
        ];
        lim.normalize(&mut v).unwrap();
        assert_eq!(v.len(), 2);
        let mut v = vec![LabelRef::new("__name__", "m"), LabelRef::new("b", "1234")];
        assert!(matches!(
            lim.normalize(&mut v),
            Err(Error::LabelValueTooLong { .. })
        ));
    }

    #[test]
    fn with_and_display() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        assert_eq!(l.with("instance", "h").get("instance"), Some("h"));
        assert_eq!(l.with("job", "").get("job"), None);
        assert_eq!(l.to_string(), "up{job=\"x\"}");
    }
}
