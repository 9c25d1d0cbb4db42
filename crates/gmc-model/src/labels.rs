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

/// [`series_hash`] of sorted `labels`, computed in one pass over `scratch` (reused between
/// calls). Produces exactly the same value: xxh3 over the same concatenated bytes.
pub fn series_hash_bytes(scratch: &mut Vec<u8>, labels: &[LabelRef<'_>]) -> u64 {
    scratch.clear();
    series_key_bytes(scratch, labels);
    series_key_hash(scratch)
}

/// The series hash of identity bytes built by [`series_key_bytes`]: xxh3-64, the one-shot
/// form of [`series_hash`] (property-tested equal). Persisted, so every one-shot caller
/// goes through here.
pub fn series_key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// Append the identity bytes of sorted `labels` to `out`: each label as name, `0xff`,
/// value, `0xff`. The series hash is xxh3 of these bytes; `0xff` never occurs in UTF-8,
/// so two different label sets never give the same bytes.
pub fn series_key_bytes(out: &mut Vec<u8>, labels: &[LabelRef<'_>]) {
    for l in labels {
        out.extend_from_slice(l.name.as_bytes());
        out.push(0xff);
        out.extend_from_slice(l.value.as_bytes());
        out.push(0xff);
    }
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
        self.normalize_tail(labels, 0).map(|_| ())
    }

    /// [`normalize`](Self::normalize) applied to `labels[start..]` in place (the part
    /// before `start` is untouched); returns the normalized tail's length. On error the
    /// tail may be partly reordered, and the caller discards it.
    pub fn normalize_tail(&self, labels: &mut Vec<LabelRef<'_>>, start: usize) -> Result<usize> {
        // Drop empty values (Prometheus semantics: an empty label is an absent label).
        let mut w = start;
        for r in start..labels.len() {
            if !labels[r].value.is_empty() {
                labels.swap(w, r);
                w += 1;
            }
        }
        labels.truncate(w);
        let tail = &mut labels[start..];
        if tail.len() > self.max_labels {
            return Err(Error::TooManyLabels {
                count: tail.len(),
                limit: self.max_labels,
            });
        }
        // Most senders already sort: strictly increasing names are sorted and free of
        // duplicates in one comparison per pair; anything else is sorted, then checked.
        let check_duplicates = !tail.windows(2).all(|w| w[0].name < w[1].name);
        if check_duplicates {
            tail.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
        let mut has_name = false;
        for (i, l) in tail.iter().enumerate() {
            if l.name.is_empty() {
                return Err(Error::EmptyLabelName);
            }
            if check_duplicates && i > 0 && tail[i - 1].name == l.name {
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
            if has_control(l.name.as_bytes()) {
                return Err(Error::InvalidLabelName {
                    name: truncate_for_error(&l.name),
                });
            }
            if l.name == METRIC_NAME {
                has_name = true;
                if has_control(l.value.as_bytes()) {
                    return Err(Error::InvalidMetricName {
                        name: truncate_for_error(&l.value),
                    });
                }
            }
        }
        if !has_name {
            return Err(Error::MissingMetricName);
        }
        Ok(tail.len())
    }
}

/// Whether `b` holds an ASCII control character (never valid in names).
pub(crate) fn has_control(b: &[u8]) -> bool {
    // No early exit: names are short, and a branch per byte cost more than the bytes.
    b.iter()
        .fold(false, |bad, &c| bad | (c < 0x20) | (c == 0x7f))
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

    fn normalize(pairs: &[(&'static str, &'static str)]) -> Result<Vec<(String, String)>> {
        let mut v: Vec<LabelRef<'_>> = pairs.iter().map(|(n, v)| LabelRef::new(*n, *v)).collect();
        ValidationLimits::default().normalize_tail(&mut v, 0)?;
        Ok(v.iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect())
    }

    #[test]
    fn normalize_sorts_and_refuses_duplicates_in_either_order() {
        assert_eq!(
            normalize(&[("z", "1"), ("__name__", "m"), ("a", "")]).unwrap(),
            [
                ("__name__".to_owned(), "m".to_owned()),
                ("z".to_owned(), "1".to_owned())
            ]
        );
        for dup in [
            &[("__name__", "m"), ("a", "1"), ("a", "2")][..],
            &[("a", "1"), ("__name__", "m"), ("a", "2")][..],
        ] {
            assert!(
                matches!(normalize(dup), Err(Error::DuplicateLabelName { .. })),
                "{dup:?}"
            );
        }
        // An empty name is reported before a duplicate, as it sorts first.
        assert_eq!(
            normalize(&[("", "1"), ("", "2"), ("__name__", "m")]),
            Err(Error::EmptyLabelName)
        );
    }

    proptest::proptest! {
        #[test]
        fn one_pass_hash_equals_streaming_hash(
            pairs in proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..10)
        ) {
            let labels: Vec<LabelRef<'_>> =
                pairs.iter().map(|(n, v)| LabelRef::new(n.as_str(), v.as_str())).collect();
            let streaming = series_hash(labels.iter().map(|l| (l.name.as_ref(), l.value.as_ref())));
            let mut scratch = Vec::new();
            proptest::prop_assert_eq!(series_hash_bytes(&mut scratch, &labels), streaming);
        }

        #[test]
        fn normalize_tail_leaves_the_head_alone(
            head in proptest::collection::vec(("[a-z]{1,4}", "[a-z]{0,3}"), 0..4),
            tail in proptest::collection::vec(("[a-z]{1,4}", "[a-z]{0,3}"), 0..6),
        ) {
            let lim = ValidationLimits::default();
            let mut all: Vec<LabelRef<'_>> = head.iter().map(|(n, v)| LabelRef::new(n.as_str(), v.as_str())).collect();
            let h = all.clone();
            all.push(LabelRef::new(METRIC_NAME, "m"));
            all.extend(tail.iter().map(|(n, v)| LabelRef::new(n.as_str(), v.as_str())));
            let mut alone: Vec<LabelRef<'_>> = all[h.len()..].to_vec();
            let whole = lim.normalize(&mut alone);
            let tailed = lim.normalize_tail(&mut all, h.len());
            proptest::prop_assert_eq!(whole.is_ok(), tailed.is_ok());
            proptest::prop_assert_eq!(&all[..h.len()], &h[..]);
            if whole.is_ok() {
                proptest::prop_assert_eq!(&all[h.len()..], &alone[..]);
            }
        }
    }

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
