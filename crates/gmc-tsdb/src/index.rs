//! Inverted indexes (label pair → postings of series ids): [`MemPostings`] for the head and
//! the on-disk block index ([`write()`]/[`Reader`], format in `docs/format/index.md`).
//! Both answer matcher queries through one shared algorithm, so their semantics agree.

mod encoding;
mod mem;
mod packed;
pub mod postings;
mod reader;
mod writer;

use std::borrow::Cow;
use std::path::PathBuf;

use gmc_model::{ErrorClass, MatchOp, Matcher};

pub use mem::MemPostings;
pub use packed::{LabelPairs, PackedLabels};
pub use reader::Reader;
pub use writer::{encode, write};

/// Current on-disk index format version (byte 4 of the file).
pub const FORMAT_VERSION: u8 = 1;
/// First four bytes of every index file.
pub const MAGIC: [u8; 4] = *b"GMCI";

/// Failures of the index layer.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the index file failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The index file.
        path: PathBuf,
        /// The I/O cause.
        #[source]
        source: std::io::Error,
    },
    /// The file's bytes are inconsistent (checksums matched or the damage is structural).
    #[error("corrupt index {path:?}: section {section} at offset {offset}: {reason}")]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// Section name (`header`, `toc`, `symbols`, `series`, `series_offsets`, `postings`,
        /// `postings_table`).
        section: &'static str,
        /// Absolute byte offset of the section, or of the entry when known.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A section's CRC32 does not match its bytes.
    #[error("index {path:?}: CRC32 mismatch in section {section} at offset {offset}")]
    Checksum {
        /// The index file.
        path: PathBuf,
        /// Section name.
        section: &'static str,
        /// Absolute byte offset of the section's length field.
        offset: u64,
    },
    /// The file was written by an unknown format version.
    #[error("index {path:?}: unsupported format version {version}")]
    UnsupportedVersion {
        /// The index file.
        path: PathBuf,
        /// The version byte found.
        version: u8,
    },
    /// Series given to the writer are not in strictly increasing label order.
    #[error("series #{position} is not in strictly increasing label order")]
    UnsortedSeries {
        /// Position of the offending series in the input.
        position: usize,
    },
    /// The index would exceed a 32-bit limit of the format (4 Gi series, 4 GiB sections).
    #[error("index too large: {what}")]
    TooLarge {
        /// Which limit.
        what: &'static str,
    },
}

impl Error {
    /// The class of this error (see `gmc_model::ErrorClass`).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } => ErrorClass::Unavailable,
            Error::UnsortedSeries { .. } => ErrorClass::BadInput,
            Error::TooLarge { .. } => ErrorClass::Limit,
            _ => ErrorClass::Internal,
        }
    }
}

/// Result alias of the index layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where one chunk of a series lives and which time range it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkMeta {
    /// Timestamp of the first sample, nanoseconds.
    pub mint_nanos: i64,
    /// Timestamp of the last sample, nanoseconds (inclusive).
    pub maxt_nanos: i64,
    /// Chunk reference: segment number (1-based) in the high 32 bits, byte offset of the
    /// record inside that segment file in the low 32 bits.
    pub chunk_ref: u64,
}

impl ChunkMeta {
    /// Segment number of the referenced chunk.
    pub fn segment(&self) -> u32 {
        (self.chunk_ref >> 32) as u32
    }

    /// Byte offset of the referenced chunk record in its segment.
    pub fn offset(&self) -> u32 {
        (self.chunk_ref & 0xffff_ffff) as u32
    }
}

/// Read access shared by [`MemPostings`] and the on-disk [`Reader`].
///
/// Matcher semantics are Prometheus': a matcher that accepts the empty string also selects
/// series lacking the label, and a set of only such matchers selects from all series.
/// An empty matcher list selects nothing.
pub trait LabelIndex {
    /// Sorted ids of the series matching every matcher.
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>>;
    /// Sorted label names present on any series (restricted to `refs` when given, which
    /// must be sorted).
    fn label_names(&self, refs: Option<&[u32]>) -> Result<Vec<String>>;
    /// Sorted values of label `name` (restricted to `refs` when given, which must be sorted).
    fn label_values(&self, name: &str, refs: Option<&[u32]>) -> Result<Vec<String>>;
}

/// The primitives each index provides; the matcher algorithm is written once over them.
pub(crate) trait Source {
    /// Every series id, sorted.
    fn all_refs(&self) -> Result<Cow<'_, [u32]>>;
    /// Every label name, sorted.
    fn names(&self) -> Vec<&str>;
    /// Values of one label, sorted.
    fn values(&self, name: &str) -> Vec<&str>;
    /// Postings of one label pair (empty when absent).
    fn postings(&self, name: &str, value: &str) -> Result<Cow<'_, [u32]>>;
    /// How many series carry one label pair (a bound is enough: it orders intersections).
    fn postings_len(&self, name: &str, value: &str) -> Result<usize> {
        Ok(self.postings(name, value)?.len())
    }
    /// The ids of sorted `candidates` that carry one label pair. Sources that store
    /// postings encoded answer without decoding the whole list.
    fn postings_filter(&self, name: &str, value: &str, candidates: &[u32]) -> Result<Vec<u32>> {
        Ok(postings::intersect(
            candidates,
            &self.postings(name, value)?,
        ))
    }
}

/// Union of the postings of `name`'s values for which `pred` holds.
fn postings_where<S: Source + ?Sized>(
    s: &S,
    name: &str,
    pred: impl Fn(&str) -> bool,
) -> Result<Vec<u32>> {
    let mut lists = Vec::new();
    for v in s.values(name) {
        if pred(v) {
            lists.push(s.postings(name, v)?);
        }
    }
    Ok(postings::union(&lists))
}

/// Postings of the series that carry label `m.name` with a value `m` accepts.
fn postings_matching<S: Source + ?Sized>(s: &S, m: &Matcher) -> Result<Vec<u32>> {
    if m.op == MatchOp::Equal {
        return Ok(s.postings(&m.name, &m.value)?.into_owned());
    }
    if let Some(lits) = m.set_literals() {
        // `a|b|c`: direct lookups instead of running the regex over every value.
        let mut lists = Vec::with_capacity(lits.len());
        for l in lits.into_iter().filter(|l| !l.is_empty()) {
            lists.push(s.postings(&m.name, l)?);
        }
        return Ok(postings::union(&lists));
    }
    postings_where(s, &m.name, |v| m.matches(v))
}

/// Series ids matching all `matchers` (see [`LabelIndex`] for the semantics).
pub(crate) fn select<S: Source + ?Sized>(s: &S, matchers: &[Matcher]) -> Result<Vec<u32>> {
    if matchers.is_empty() {
        return Ok(Vec::new());
    }
    let mut positive: Vec<Vec<u32>> = Vec::new();
    let mut negative: Vec<Vec<u32>> = Vec::new();
    // Equality matchers are looked up by size first and read only as filters of the
    // smaller running result (a point lookup's `service="a",pair="b"` then decodes one
    // short list instead of three).
    let mut equal: Vec<(usize, &Matcher)> = Vec::new();
    for m in matchers {
        if m.op == MatchOp::Equal && !m.matches_empty() {
            let n = s.postings_len(&m.name, &m.value)?;
            if n == 0 {
                return Ok(Vec::new());
            }
            equal.push((n, m));
            continue;
        }
        if m.matches_empty() {
            // Accepts absent labels: keep everything except series whose value is rejected.
            negative.push(match m.op {
                // `a!="x"` rejects exactly the series with a="x": one lookup.
                MatchOp::NotEqual => s.postings(&m.name, &m.value)?.into_owned(),
                _ => postings_where(s, &m.name, |v| !m.matches(v))?,
            });
        } else {
            let p = postings_matching(s, m)?;
            if p.is_empty() {
                return Ok(Vec::new());
            }
            positive.push(p);
        }
    }
    // Intersect smallest first: every step can only shrink the running result. The
    // smallest equality list is decoded when it is the smallest of all.
    positive.sort_by_key(Vec::len);
    equal.sort_by_key(|&(n, _)| n);
    let mut equal = equal.into_iter().peekable();
    if let Some((_, m)) = equal.next_if(|&(n, _)| positive.first().is_none_or(|p| n <= p.len())) {
        positive.insert(0, s.postings(&m.name, &m.value)?.into_owned());
    }
    let mut lists = positive.into_iter();
    let mut acc = match lists.next() {
        Some(first) => first,
        None => s.all_refs()?.into_owned(),
    };
    for p in lists {
        acc = postings::intersect(&acc, &p);
        if acc.is_empty() {
            return Ok(acc);
        }
    }
    for (_, m) in equal {
        acc = s.postings_filter(&m.name, &m.value, &acc)?;
        if acc.is_empty() {
            return Ok(acc);
        }
    }
    for n in &negative {
        acc = postings::subtract(&acc, n);
    }
    Ok(acc)
}

/// Label names, optionally restricted to series in `refs`.
pub(crate) fn label_names<S: Source + ?Sized>(s: &S, refs: Option<&[u32]>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for name in s.names() {
        let present = match refs {
            None => true,
            Some(r) => {
                let mut any = false;
                for v in s.values(name) {
                    if postings::intersects(&s.postings(name, v)?, r) {
                        any = true;
                        break;
                    }
                }
                any
            }
        };
        if present {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Values of `name`, optionally restricted to series in `refs`.
pub(crate) fn label_values<S: Source + ?Sized>(
    s: &S,
    name: &str,
    refs: Option<&[u32]>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in s.values(name) {
        let keep = match refs {
            None => true,
            Some(r) => postings::intersects(&s.postings(name, v)?, r),
        };
        if keep {
            out.push(v.to_owned());
        }
    }
    Ok(out)
}
