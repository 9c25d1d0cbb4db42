//! Label sets as the block writer buffers them: every name and value of a series in one
//! string plus one offset array, two allocations per series instead of two per label.
//! A flush buffers the labels of every head series until the index is written; as
//! `gmc_model::Labels` (a `String` per name and value) that was ~1.1 kB per series of the
//! trading workload, ~34 MB for its 30,040 series, on top of the head being flushed.

use std::sync::Arc;

use gmc_model::Labels;

/// What the index encoder needs of a series' label set: its pairs, sorted by name.
pub trait LabelPairs {
    /// Number of label pairs.
    fn label_count(&self) -> usize;
    /// The pairs in name order.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_;
}

impl LabelPairs for Labels {
    fn label_count(&self) -> usize {
        self.len()
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.iter()
    }
}

/// The head's interned pairs (`head::LabelSet`): a flush hands them to the block writer
/// as they are, without building a `Labels` per series first.
impl LabelPairs for [(Arc<str>, Arc<str>)] {
    fn label_count(&self) -> usize {
        self.len()
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.iter().map(|(n, v)| (&**n, &**v))
    }
}

/// A label set packed into one string: names and values back to back, `ends[i]` the end
/// of the `i`-th string (names at even, values at odd positions).
#[derive(Debug)]
pub struct PackedLabels {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl PackedLabels {
    /// Pack the pairs of `labels`. `None` if the text exceeds 4 GiB.
    pub fn new(labels: &(impl LabelPairs + ?Sized)) -> Option<Self> {
        let (mut len, mut n) = (0usize, 0usize);
        for (k, v) in labels.pairs() {
            len += k.len() + v.len();
            n += 2;
        }
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(n);
        for (k, v) in labels.pairs() {
            for s in [k, v] {
                text.push_str(s);
                ends.push(u32::try_from(text.len()).ok()?);
            }
        }
        Some(PackedLabels {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        })
    }

    /// The `i`-th packed string.
    fn string(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        // Offsets are the ends of whole strings pushed in `new`, so always char
        // boundaries; `get` keeps this panic-free regardless.
        self.text.get(start as usize..end as usize).unwrap_or("")
    }
}

impl LabelPairs for PackedLabels {
    fn label_count(&self) -> usize {
        self.ends.len() / 2
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.label_count()).map(|i| (self.string(2 * i), self.string(2 * i + 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_in_order() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a"), ("x", ""), ("é", "ü")]);
        let p = PackedLabels::new(&l).unwrap();
        assert_eq!(p.label_count(), l.len());
        assert!(p.pairs().eq(l.iter()));
        let empty = PackedLabels::new(&Labels::default()).unwrap();
        assert_eq!(empty.pairs().count(), 0);
    }

    #[test]
    fn pair_order_matches_labels_order() {
        let sets = [
            Labels::from_pairs([("a", "1")]),
            Labels::from_pairs([("a", "1"), ("b", "2")]),
            Labels::from_pairs([("a", "10")]),
            Labels::from_pairs([("a", "2")]),
            Labels::from_pairs([("ab", "1")]),
        ];
        for x in &sets {
            for y in &sets {
                let (px, py) = (PackedLabels::new(x).unwrap(), PackedLabels::new(y).unwrap());
                assert_eq!(px.pairs().cmp(py.pairs()), x.cmp(y), "{x} vs {y}");
            }
        }
    }
}
