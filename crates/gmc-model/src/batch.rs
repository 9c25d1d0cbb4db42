//! The write batch: what every ingest protocol decodes into and what the store appends.
//!
//! Laid out flat (one vector of samples, one of series entries, one of identity bytes) so
//! decoding a 10 k-series request costs a handful of allocations. A series is kept as its
//! identity key alone (sorted, validated labels as `name 0xff value 0xff …`, see
//! [`series_key_bytes`]): the store compares and hashes exactly those bytes, and the few
//! consumers that need label pairs (series creation, error messages) parse them back.
//!
//! Labels reach the key in one of two ways. [`SeriesWriter::label`] collects pairs in any
//! order; [`SeriesWriter::finish`] sorts and validates them and writes the key.
//! [`SeriesWriter::sorted_labels`] is the fast path for senders that already sort (every
//! Prometheus remote-write client does): it validates and writes the key in one pass,
//! with no intermediate pairs, and declines anything unusual, which the caller then
//! passes through `label` so that every error is reported exactly as on the slow path.

use std::borrow::Cow;
use std::ops::Range;

use crate::error::Result;
use crate::histogram::Histogram;
use crate::labels::{
    has_control, series_key_bytes, series_key_hash, Label, LabelRef, Labels, ValidationLimits,
};
use crate::metadata::Metadata;

/// A float sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatSample {
    /// Timestamp, nanoseconds since the epoch.
    pub ts_nanos: i64,
    /// Value; NaN payloads (the stale marker) are preserved bit-exactly.
    pub value: f64,
}

/// A native histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    /// Timestamp, nanoseconds since the epoch.
    pub ts_nanos: i64,
    /// The histogram.
    pub histogram: Histogram,
}

/// Where one series' data sits in the batch's flat vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry {
    floats: Range<u32>,
    histograms: Range<u32>,
    key: Range<u32>,
    hash: u64,
    /// Index into [`WriteBatch::services`] of the `service` label's value, else `job`'s
    /// ([`NO_SERVICE`]: neither).
    service: u32,
}

/// [`SeriesEntry::service`] of a series with neither a `service` nor a `job` label.
const NO_SERVICE: u32 = u32::MAX;

/// A batch of series with their samples, plus family metadata.
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    /// Pairs of the series being written through [`SeriesWriter::label`]; emptied when
    /// it finishes (only the key is kept), so its capacity is reused.
    pending: Vec<LabelRef<'a>>,
    floats: Vec<FloatSample>,
    histograms: Vec<HistogramSample>,
    series: Vec<SeriesEntry>,
    metadata: Vec<Metadata>,
    limits: ValidationLimits,
    /// Every series' identity bytes (see [`BatchSeries::key`]), back to back: the hash is
    /// one pass over them (hashing many tiny pieces through a streaming hasher costs
    /// several times more), and the store compares a series with one slice compare over
    /// contiguous memory.
    keys: Vec<u8>,
    /// Each run of consecutive series with one `service` (else `job`) value: where that
    /// value sits in `keys`. Senders group series by service, so a request has a few runs;
    /// the server notes freshness per run without reading every key again after the
    /// append (re-reading them was ~3 % of remote-write CPU, in cache misses).
    services: Vec<Range<u32>>,
}

/// A read view of one series in a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchSeries<'b> {
    /// Float samples in arrival order.
    pub floats: &'b [FloatSample],
    /// Histogram samples in arrival order.
    pub histograms: &'b [HistogramSample],
    /// Identity hash of `labels` (see [`crate::series_hash`]).
    pub hash: u64,
    /// The bytes `hash` is computed over: the sorted, validated labels, each as name,
    /// `0xff`, value, `0xff` (see [`crate::series_key_bytes`]).
    pub key: &'b [u8],
}

/// The newest timestamp of `floats` and `histograms` (`None` when both are empty): a
/// series' own samples or a whole batch's.
fn newest_ts(floats: &[FloatSample], histograms: &[HistogramSample]) -> Option<i64> {
    let f = floats.iter().map(|f| f.ts_nanos).max();
    let h = histograms.iter().map(|h| h.ts_nanos).max();
    f.max(h)
}

impl<'b> BatchSeries<'b> {
    /// The labels, sorted by name, parsed from the key.
    pub fn labels(&self) -> KeyLabels<'b> {
        KeyLabels { rest: self.key }
    }

    /// The labels as borrowed pairs (for the store's series creation).
    pub fn label_refs(&self) -> Vec<LabelRef<'b>> {
        self.labels().map(|(n, v)| LabelRef::new(n, v)).collect()
    }

    /// Owned copy of the labels.
    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted(
            self.labels()
                .map(|(n, v)| Label {
                    name: n.to_owned(),
                    value: v.to_owned(),
                })
                .collect(),
        )
    }

    /// The newest of the series' sample timestamps (`None` without samples).
    pub fn newest_ts(&self) -> Option<i64> {
        newest_ts(self.floats, self.histograms)
    }

    /// Value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&'b str> {
        self.labels().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// The `(name, value)` pairs of an identity key, in key order.
#[derive(Debug, Clone)]
pub struct KeyLabels<'b> {
    rest: &'b [u8],
}

impl<'b> Iterator for KeyLabels<'b> {
    type Item = (&'b str, &'b str);

    fn next(&mut self) -> Option<Self::Item> {
        let mut piece = || {
            let end = memchr::memchr(0xff, self.rest)?;
            let (s, rest) = self.rest.split_at(end);
            self.rest = rest.get(1..).unwrap_or_default();
            // Batch keys hold validated UTF-8 (both writer paths check it).
            Some(std::str::from_utf8(s).unwrap_or_default())
        };
        let name = piece()?;
        let value = piece()?;
        Some((name, value))
    }
}

impl<'a> WriteBatch<'a> {
    /// An empty batch validating with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch validating with `limits`.
    pub fn with_limits(limits: ValidationLimits) -> Self {
        WriteBatch {
            limits,
            ..Self::default()
        }
    }

    /// Reserve room for `series` series and `samples` samples.
    pub fn reserve(&mut self, series: usize, samples: usize) {
        self.series.reserve(series);
        self.floats.reserve(samples);
        self.keys.reserve(series * 96);
    }

    /// Reserve room for `bytes` more identity-key bytes (a decoder knows an upper bound:
    /// its input holds every label plus framing).
    pub fn reserve_key_bytes(&mut self, bytes: usize) {
        self.keys.reserve(bytes);
    }

    /// Start a new series; finish it with [`SeriesWriter::finish`].
    pub fn series(&mut self) -> SeriesWriter<'_, 'a> {
        self.pending.clear();
        SeriesWriter {
            keyed: false,
            service: 0..0,
            start_floats: self.floats.len(),
            start_hist: self.histograms.len(),
            start_key: self.keys.len(),
            batch: self,
            finished: false,
        }
    }

    /// Add family metadata.
    pub fn push_metadata(&mut self, m: Metadata) {
        self.metadata.push(m);
    }

    /// Family metadata carried by the batch.
    pub fn metadata(&self) -> &[Metadata] {
        &self.metadata
    }

    /// Number of series.
    pub fn len_series(&self) -> usize {
        self.series.len()
    }

    /// Number of samples (floats and histograms).
    pub fn len_samples(&self) -> usize {
        self.floats.len() + self.histograms.len()
    }

    /// Number of float samples.
    pub fn len_floats(&self) -> usize {
        self.floats.len()
    }

    /// Number of histogram samples.
    pub fn len_histograms(&self) -> usize {
        self.histograms.len()
    }

    /// Whether there is nothing to write (metadata aside).
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Iterate the series.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchSeries<'_>> + '_ {
        self.series.iter().map(move |e| self.view(e))
    }

    /// The value of series `i`'s `service` label, else of its `job` label (what gmc
    /// reports freshness by), noted while its key was written: no search.
    pub fn service(&self, i: usize) -> Option<&str> {
        self.service_name(self.service_run(i)?)
    }

    /// The service run of series `i` (see [`WriteBatch::service_runs`]): consecutive
    /// series with the same `service` (else `job`) value share one; `None` when the series
    /// has neither label.
    pub fn service_run(&self, i: usize) -> Option<usize> {
        let e = self.series.get(i)?;
        (e.service != NO_SERVICE).then_some(e.service as usize)
    }

    /// How many service runs the batch has; runs are numbered `0..service_runs()`. Two
    /// runs may carry the same value when its series are not adjacent.
    pub fn service_runs(&self) -> usize {
        self.services.len()
    }

    /// The `service` (else `job`) value of run `run`.
    pub fn service_name(&self, run: usize) -> Option<&str> {
        let r = self.services.get(run)?;
        // Keys hold validated UTF-8; checked once per run, not per series.
        self.keys
            .get(r.start as usize..r.end as usize)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The identity hash of series `i` alone (cheaper than a whole view where only the
    /// hash is wanted, as in the store's prefetch and shard grouping).
    pub fn hash(&self, i: usize) -> Option<u64> {
        self.series.get(i).map(|e| e.hash)
    }

    /// The identity key of series `i` alone (as [`hash`](Self::hash), without a view).
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let e = self.series.get(i)?;
        self.keys.get(e.key.start as usize..e.key.end as usize)
    }

    /// The series at position `i`.
    pub fn get(&self, i: usize) -> Option<BatchSeries<'_>> {
        self.series.get(i).map(|e| self.view(e))
    }

    fn view(&self, e: &SeriesEntry) -> BatchSeries<'_> {
        let r = |r: &Range<u32>| r.start as usize..r.end as usize;
        BatchSeries {
            floats: &self.floats[r(&e.floats)],
            histograms: &self.histograms[r(&e.histograms)],
            hash: e.hash,
            key: &self.keys[r(&e.key)],
        }
    }

    /// The same batch, borrowing nothing: a finished series keeps only owned data (its
    /// key, samples and metadata), so once decoding is done the input buffer can go
    /// (the server returns it to its pool before the append waits for the WAL).
    /// Labels of an unfinished series, if any, are copied.
    pub fn into_owned(self) -> WriteBatch<'static> {
        WriteBatch {
            pending: self
                .pending
                .into_iter()
                .map(|l| LabelRef::new(l.name.into_owned(), l.value.into_owned()))
                .collect(),
            floats: self.floats,
            histograms: self.histograms,
            series: self.series,
            metadata: self.metadata,
            limits: self.limits,
            keys: self.keys,
            services: self.services,
        }
    }

    /// The run of the series being finished, whose freshness value sits at `value` in
    /// `keys`: the last run when it has the same value (the last run's bytes were written
    /// moments ago, so the compare hits the cache), else a new one.
    fn service_run_of(&mut self, value: Range<usize>) -> u32 {
        let Some(v) = self.keys.get(value.clone()).filter(|v| !v.is_empty()) else {
            return NO_SERVICE;
        };
        if let Some(last) = self.services.last() {
            if self.keys.get(last.start as usize..last.end as usize) == Some(v) {
                return (self.services.len() - 1) as u32;
            }
        }
        match (
            u32::try_from(value.start),
            u32::try_from(value.end),
            u32::try_from(self.services.len()),
        ) {
            (Ok(start), Ok(end), Ok(run)) if run != NO_SERVICE => {
                self.services.push(start..end);
                run
            }
            _ => NO_SERVICE,
        }
    }

    /// The newest sample timestamp of the batch (`None` when it has no samples): one
    /// pass over the flat sample arrays, not a view per series.
    pub fn newest_ts(&self) -> Option<i64> {
        newest_ts(&self.floats, &self.histograms)
    }

    /// Keep only the series for which `keep` returns true.
    pub fn retain_series(&mut self, mut keep: impl FnMut(usize, BatchSeries<'_>) -> bool) {
        let mut out = Vec::with_capacity(self.series.len());
        for (i, e) in self.series.iter().enumerate() {
            if keep(i, self.view(e)) {
                out.push(e.clone());
            }
        }
        self.series = out;
    }
}

/// `a < b` for label names. Names of one series nearly always differ in their first
/// byte; deciding on it first saves a `memcmp` call per label on the ingest path.
/// A byte loop rather than `Ord for [u8]`: names are short, and the library compare is a
/// `memcmp` call per label (measured: 7 % of remote-write ingest CPU).
#[inline]
fn name_less(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// `n == "__name__"`, compared as one 8-byte word.
#[inline]
fn is_metric_name(n: &[u8]) -> bool {
    <[u8; 8]>::try_from(n).is_ok_and(|w| w == *b"__name__")
}

/// In one branch-free pass over a key (byte lanes, vectorizes): how many `0xff`
/// separators it holds, and whether every other byte is printable ASCII (then its
/// strings are valid UTF-8 without control characters).
#[inline]
fn key_content(key: &[u8]) -> (usize, bool) {
    key.chunks(255).fold((0, true), |(seps, ok), c| {
        let (n, printable) = c.iter().fold((0u8, true), |(n, ok), &b| {
            let sep = b == 0xff;
            (n + u8::from(sep), ok & ((0x20..0x7f).contains(&b) | sep))
        });
        (seps + usize::from(n), ok & printable)
    })
}

/// The exact content check of a key written from `count` labels, whose separators are
/// known to be exactly the `2 × count` written: every string is UTF-8, names have no
/// control characters and neither has the metric name's value.
#[cold]
fn strings_valid(key: &[u8], count: usize) -> bool {
    let mut parts = key.split(|&b| b == 0xff);
    (0..count).all(|_| {
        let (Some(n), Some(v)) = (parts.next(), parts.next()) else {
            return false;
        };
        std::str::from_utf8(n).is_ok()
            && std::str::from_utf8(v).is_ok()
            && !has_control(n)
            && !(is_metric_name(n) && has_control(v))
    })
}

/// The freshness label's value while a key is written: `service`, else `job` (see
/// [`WriteBatch::service`]). Both key paths note each label's value range here, so the
/// rule lives in one place.
#[derive(Default)]
struct ServiceLabel {
    service: Range<usize>,
    job: Range<usize>,
}

impl ServiceLabel {
    /// Label `name`'s value was written at `value` (offsets in the batch's key bytes).
    #[inline]
    fn note(&mut self, name: &[u8], value: Range<usize>) {
        match name {
            b"service" => self.service = value,
            b"job" => self.job = value,
            _ => {}
        }
    }

    /// The range of the value that counts (empty when neither label is there).
    fn range(self) -> Range<usize> {
        if self.service.is_empty() {
            self.job
        } else {
            self.service
        }
    }

    /// The slow path's way: walk the key starting at `start` of `keys`, already written.
    fn in_key(keys: &[u8], start: usize) -> Range<usize> {
        let mut found = ServiceLabel::default();
        let mut at = start;
        let labels = KeyLabels {
            rest: keys.get(start..).unwrap_or_default(),
        };
        for (n, v) in labels {
            let value = at + n.len() + 1;
            found.note(n.as_bytes(), value..value + v.len());
            at = value + v.len() + 1;
        }
        found.range()
    }
}

/// Number of `0xff` bytes in `b`, counted in byte lanes (vectorizes; a plain
/// `filter().count()` here did not).
fn count_separators(b: &[u8]) -> usize {
    b.chunks(255)
        .map(|c| usize::from(c.iter().fold(0u8, |n, &x| n + u8::from(x == 0xff))))
        .sum()
}

/// A label string for [`SeriesWriter::sorted_labels`], optionally with the bytes that
/// follow it in the sender's buffer ([`Piece::in_buffer`]).
///
/// Why: a library `memcpy` call per string (two per label, ~18 per series) cost more
/// than the copies. A string of at most 16 bytes with 16 readable bytes from its start
/// is copied as one fixed-size block (a single vector move), and the key's length then
/// cut back to the string's end.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'s> {
    /// The string, then possibly more bytes of the same buffer.
    window: &'s [u8],
    len: usize,
}

impl<'s> Piece<'s> {
    /// The string at `range` of `buf`, with up to 16 bytes of `buf` from its start. A
    /// range outside `buf` gives an empty string (which `sorted_labels` declines).
    #[inline]
    pub fn in_buffer(buf: &'s [u8], (a, b): (usize, usize)) -> Self {
        let end = a.saturating_add(16).max(b).min(buf.len());
        match buf.get(a..end) {
            Some(window) if a <= b && b <= end => Piece { window, len: b - a },
            _ => Piece {
                window: &[],
                len: 0,
            },
        }
    }

    /// The string.
    #[inline]
    pub fn bytes(&self) -> &'s [u8] {
        self.window.get(..self.len).unwrap_or_default()
    }

    /// Append the string and a `0xff` separator to `out`.
    #[inline]
    fn put(&self, out: &mut Vec<u8>) {
        let at = out.len();
        match self.window.first_chunk::<16>() {
            Some(block) if self.len <= 16 => {
                out.extend_from_slice(block);
                out.truncate(at + self.len);
            }
            _ => out.extend_from_slice(self.bytes()),
        }
        out.push(0xff);
    }
}

impl<'s> From<&'s [u8]> for Piece<'s> {
    fn from(s: &'s [u8]) -> Self {
        Piece {
            window: s,
            len: s.len(),
        }
    }
}

/// Writes one series into a [`WriteBatch`]; dropped without `finish`, it leaves no trace.
#[derive(Debug)]
pub struct SeriesWriter<'b, 'a> {
    batch: &'b mut WriteBatch<'a>,
    start_floats: usize,
    start_hist: usize,
    start_key: usize,
    /// The key was written by [`SeriesWriter::sorted_labels`].
    keyed: bool,
    /// Where [`SeriesWriter::sorted_labels`] wrote the `service` (else `job`) value, as
    /// offsets in the batch's key bytes.
    service: Range<usize>,
    finished: bool,
}

impl<'a> SeriesWriter<'_, 'a> {
    /// Add a label pair (order does not matter; empty values are dropped at finish).
    pub fn label(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.batch.pending.push(LabelRef::new(name, value));
    }

    /// Number of labels added so far.
    pub fn label_count(&self) -> usize {
        self.batch.pending.len() + self.key_label_count()
    }

    fn key_label_count(&self) -> usize {
        let key = &self.batch.keys[self.start_key..];
        count_separators(key) / 2
    }

    /// The fast path for labels that arrive sorted: validate `labels` and write the
    /// series' key in one pass. Returns `false`, leaving the series as it was, unless
    /// `labels` are already the normalized set (strictly increasing non-empty names,
    /// non-empty values, a metric name, every rule of [`ValidationLimits::normalize`]
    /// met), or if labels were already added; the caller then adds them with
    /// [`label`](Self::label), whose normalization reports the problem.
    pub fn sorted_labels<'s, P: Into<Piece<'s>>>(
        &mut self,
        labels: impl Iterator<Item = (P, P)>,
    ) -> bool {
        if self.keyed || !self.batch.pending.is_empty() {
            return false;
        }
        let lim = self.batch.limits;
        let keys = &mut self.batch.keys;
        let start = self.start_key;
        let mut prev: &[u8] = b"";
        let mut count = 0usize;
        let mut has_name = false;
        let mut service = ServiceLabel::default();
        let mut ok = true;
        for (pn, pv) in labels {
            let (pn, pv) = (pn.into(), pv.into());
            let (n, v) = (pn.bytes(), pv.bytes());
            count += 1;
            // `prev < n` also refuses an empty name (nothing sorts below "" but "" itself).
            if v.is_empty()
                || !name_less(prev, n)
                || count > lim.max_labels
                || n.len() > lim.max_name_bytes
                || v.len() > lim.max_value_bytes
            {
                ok = false;
                break;
            }
            has_name |= is_metric_name(n);
            pn.put(keys);
            let at = keys.len();
            pv.put(keys);
            service.note(n, at..at + v.len());
            prev = n;
        }
        // Content rules are checked once over the whole key. A `0xff` inside a string (never
        // UTF-8) shows as a separator too many; then printable ASCII passes every rule
        // (UTF-8, no control characters in names and the metric name). Anything else
        // (non-ASCII text, a tab in a value) takes the exact per-string check.
        let key = &keys[start..];
        let (separators, printable) = key_content(key);
        if ok && has_name && separators == 2 * count && (printable || strings_valid(key, count)) {
            self.keyed = true;
            self.service = service.range();
            true
        } else {
            keys.truncate(start);
            false
        }
    }

    /// Add a float sample.
    pub fn float(&mut self, ts_nanos: i64, value: f64) {
        self.batch.floats.push(FloatSample { ts_nanos, value });
    }

    /// Add a histogram sample.
    pub fn histogram(&mut self, ts_nanos: i64, histogram: Histogram) {
        self.batch.histograms.push(HistogramSample {
            ts_nanos,
            histogram,
        });
    }

    /// Validate and sort the labels, hash them and commit the series to the batch.
    /// On error the series is removed again and the batch is as before.
    pub fn finish(mut self) -> Result<()> {
        let limits = self.batch.limits;
        if self.keyed && !self.batch.pending.is_empty() {
            // Labels came both ways: move the keyed ones back into the pending pairs.
            let key = self.batch.keys.split_off(self.start_key);
            let keyed =
                KeyLabels { rest: &key }.map(|(n, v)| LabelRef::new(n.to_owned(), v.to_owned()));
            self.batch.pending.extend(keyed);
            self.keyed = false;
        }
        if !self.keyed {
            // Normalize in place: no per-series allocation on the ingest hot path.
            limits.normalize_tail(&mut self.batch.pending, 0)?;
            series_key_bytes(&mut self.batch.keys, &self.batch.pending);
            self.batch.pending.clear();
        }
        for h in &self.batch.histograms[self.start_hist..] {
            h.histogram.validate()?;
        }
        if !self.keyed {
            self.service = ServiceLabel::in_key(&self.batch.keys, self.start_key);
        }
        let hash = series_key_hash(&self.batch.keys[self.start_key..]);
        let to_u32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let service = self.batch.service_run_of(self.service.clone());
        let entry = SeriesEntry {
            floats: to_u32(self.start_floats)..to_u32(self.batch.floats.len()),
            histograms: to_u32(self.start_hist)..to_u32(self.batch.histograms.len()),
            key: to_u32(self.start_key)..to_u32(self.batch.keys.len()),
            hash,
            service,
        };
        self.batch.series.push(entry);
        self.finished = true;
        Ok(())
    }
}

impl Drop for SeriesWriter<'_, '_> {
    fn drop(&mut self) {
        if !self.finished {
            self.batch.pending.clear();
            self.batch.floats.truncate(self.start_floats);
            self.batch.histograms.truncate(self.start_hist);
            self.batch.keys.truncate(self.start_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn consecutive_series_of_one_service_share_a_run() {
        // (service, job, fast key path): runs follow adjacency, not distinct values.
        let series: &[(Option<&str>, Option<&str>, bool)] = &[
            (Some("oms"), Some("hft"), true),
            (Some("oms"), None, false),
            (None, Some("hft"), true),
            (None, None, true),
            (None, Some("hft"), false),
            (Some("oms"), Some("x"), true),
        ];
        let mut b = WriteBatch::new();
        for (i, (svc, job, fast)) in series.iter().enumerate() {
            let mut pairs = vec![("__name__".to_owned(), format!("m{i}"))];
            pairs.extend(job.map(|j| ("job".to_owned(), j.to_owned())));
            pairs.extend(svc.map(|v| ("service".to_owned(), v.to_owned())));
            let mut s = b.series();
            if *fast {
                assert!(s.sorted_labels(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))));
            } else {
                for (n, v) in &pairs {
                    s.label(n.clone(), v.clone());
                }
            }
            s.float(i as i64, 1.0);
            s.finish().unwrap();
        }
        // A failed series between two of one service does not split their run.
        let mut bad = b.series();
        bad.label("service", "oms");
        assert!(bad.finish().is_err());
        let mut s = b.series();
        s.label("__name__", "late");
        s.label("service", "oms");
        s.finish().unwrap();
        let runs: Vec<Option<usize>> = (0..b.len_series()).map(|i| b.service_run(i)).collect();
        assert_eq!(
            runs,
            [Some(0), Some(0), Some(1), None, Some(1), Some(2), Some(2)]
        );
        assert_eq!(b.service_runs(), 3);
        let names: Vec<Option<&str>> = (0..3).map(|r| b.service_name(r)).collect();
        assert_eq!(names, [Some("oms"), Some("hft"), Some("oms")]);
        assert_eq!(b.service_name(3), None);
        for i in 0..b.len_series() {
            let v = b.get(i).unwrap();
            assert_eq!(b.service(i), v.label("service").or_else(|| v.label("job")));
        }
        // Runs survive dropping series and the batch's move to owned data.
        b.retain_series(|i, _| i != 1);
        let b = b.into_owned();
        assert_eq!(b.service(0), Some("oms"));
        assert_eq!(b.service(1), Some("hft"));
        assert_eq!(b.service_run(2), None);
    }

    #[test]
    fn newest_ts_covers_floats_and_histograms() {
        let mut b = WriteBatch::new();
        assert_eq!(b.newest_ts(), None);
        let mut s = b.series();
        s.label("__name__", "a");
        s.float(5, 1.0);
        s.float(3, 1.0);
        s.finish().unwrap();
        assert_eq!(b.newest_ts(), Some(5));
        let mut s = b.series();
        s.label("__name__", "h");
        s.histogram(9, Histogram::default());
        s.finish().unwrap();
        assert_eq!(b.newest_ts(), Some(9));
        // A series that failed leaves no samples behind.
        let mut s = b.series();
        s.float(100, 1.0);
        assert!(s.finish().is_err());
        assert_eq!(b.newest_ts(), Some(9));
    }

    #[test]
    fn failed_series_leaves_batch_untouched() {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "a");
        s.float(1, 1.0);
        s.finish().unwrap();
        let mut s = b.series();
        s.label("x", "1");
        s.float(2, 2.0);
        assert_eq!(s.finish(), Err(Error::MissingMetricName));
        assert_eq!(b.len_series(), 1);
        assert_eq!(b.len_samples(), 1);
        let only = b.get(0).unwrap();
        assert_eq!(only.floats[0].value, 1.0);
        assert_eq!(only.to_labels().metric_name(), Some("a"));
    }

    #[test]
    fn pieces_in_a_buffer_write_the_same_key_as_plain_slices() {
        // Short and long strings, one ending exactly at the buffer's end (no room for a
        // 16-byte block), and a range off the buffer (declined).
        let buf = b"__name__|m|aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|x|z|tail-value-at-the-very-end";
        let at = |s: &str| {
            let a = std::str::from_utf8(buf).unwrap().find(s).unwrap();
            (a, a + s.len())
        };
        let names = [
            at("__name__"),
            at("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            at("z"),
        ];
        let values = [at("m"), at("x"), at("tail-value-at-the-very-end")];
        assert_eq!(values[2].1, buf.len());
        let key_of = |pieces: bool| {
            let mut b = WriteBatch::new();
            let mut s = b.series();
            let took = if pieces {
                s.sorted_labels(
                    names
                        .iter()
                        .zip(&values)
                        .map(|(&n, &v)| (Piece::in_buffer(buf, n), Piece::in_buffer(buf, v))),
                )
            } else {
                s.sorted_labels(
                    names
                        .iter()
                        .zip(&values)
                        .map(|(&(a, b), &(c, d))| (&buf[a..b], &buf[c..d])),
                )
            };
            assert!(took);
            s.float(1, 1.0);
            s.finish().unwrap();
            b.get(0).unwrap().key.to_vec()
        };
        assert_eq!(key_of(true), key_of(false));
        assert_eq!(
            key_of(true),
            b"__name__\xffm\xffaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xffx\xffz\xfftail-value-at-the-very-end\xff"
        );
        assert!(Piece::in_buffer(buf, (buf.len() - 1, buf.len() + 1))
            .bytes()
            .is_empty());
        assert!(Piece::in_buffer(buf, (5, 3)).bytes().is_empty());
        let mut b = WriteBatch::new();
        let mut s = b.series();
        let off = (
            Piece::in_buffer(buf, (0, 8)),
            Piece::in_buffer(buf, (500, 501)),
        );
        assert!(!s.sorted_labels([off].into_iter()));
    }

    #[test]
    fn an_owned_batch_keeps_every_series_after_its_input_is_gone() {
        let input = String::from("__name__ m z 1");
        let words: Vec<&str> = input.split(' ').collect();
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label(words[2], words[3]);
        s.label(words[0], words[1]);
        s.float(5, 2.5);
        s.finish().unwrap();
        // An unfinished series' labels are copied too.
        let mut s = b.series();
        s.label(words[0], words[1]);
        std::mem::forget(s);
        let owned = b.into_owned();
        drop(words);
        drop(input);
        assert_eq!(owned.len_series(), 1);
        let v = owned.get(0).unwrap();
        assert_eq!(v.key, b"__name__\xffm\xffz\xff1\xff");
        assert_eq!(
            v.floats,
            &[FloatSample {
                ts_nanos: 5,
                value: 2.5
            }]
        );
        assert_eq!(owned.pending.len(), 1);
    }

    #[test]
    fn labels_are_sorted_on_finish() {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("z", "1");
        s.label("__name__", "m");
        s.float(1, 1.0);
        s.finish().unwrap();
        let v = b.get(0).unwrap();
        assert_eq!(v.labels().next(), Some(("__name__", "m")));
        assert_eq!(v.label("z"), Some("1"));
        for absent in ["", "a", "__name", "__name__\u{ff}", "y", "zz"] {
            assert_eq!(v.label(absent), None, "{absent}");
        }
        assert_eq!(
            v.hash,
            Labels::from_pairs([("z", "1"), ("__name__", "m")]).hash()
        );
        assert_eq!(v.key, b"__name__\xffm\xffz\xff1\xff");
        assert_eq!(v.hash, xxhash_rust::xxh3::xxh3_64(v.key));
    }

    #[test]
    fn each_series_keeps_its_own_key_after_failures_and_filtering() {
        let mut b = WriteBatch::new();
        for (i, name) in ["a", "", "b", "c"].iter().enumerate() {
            let mut s = b.series();
            s.label("__name__", *name);
            s.label("i", i.to_string());
            s.float(1, 1.0);
            // The empty name fails validation and must leave no key bytes behind.
            let _ = s.finish();
        }
        b.retain_series(|_, s| s.label("__name__") != Some("b"));
        let keys: Vec<&[u8]> = b.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                &b"__name__\xffa\xffi\xff0\xff"[..],
                &b"__name__\xffc\xffi\xff3\xff"[..]
            ]
        );
    }

    /// What writing one series did: the outcome, the key, hash and service value on
    /// success, and whether the fast path took the labels.
    type Written = (Result<()>, Option<(Vec<u8>, u64, Option<String>)>, bool);

    /// Write one series from `pairs`, through the fast path when `fast`, falling back as
    /// a decoder does.
    fn write(limits: ValidationLimits, pairs: &[(String, String)], fast: bool) -> Written {
        let mut b = WriteBatch::with_limits(limits);
        let mut s = b.series();
        let took = fast && s.sorted_labels(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        if !took {
            for (n, v) in pairs {
                s.label(n.as_str(), v.as_str());
            }
        }
        s.float(1, 1.0);
        let res = s.finish();
        let got = b
            .get(0)
            .map(|v| (v.key.to_vec(), v.hash, b.service(0).map(str::to_owned)));
        (res, got, took)
    }

    #[test]
    fn sorted_labels_take_the_fast_path_and_match_the_slow_one() {
        let pairs: Vec<(String, String)> = [("__name__", "m"), ("a", "1"), ("b", "2")]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let lim = ValidationLimits::default();
        let (res, got, took) = write(lim, &pairs, true);
        assert!(took && res.is_ok());
        assert_eq!(got, write(lim, &pairs, false).1);
        let mut b = WriteBatch::new();
        let mut s = b.series();
        assert!(s.sorted_labels(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))));
        assert_eq!(s.label_count(), 3);
        // A second fast call, or one after `label`, is refused.
        assert!(!s.sorted_labels([(&b"c"[..], &b"3"[..])].into_iter()));
        s.label("c", "3");
        s.float(1, 1.0);
        s.finish().unwrap();
        let v = b.get(0).unwrap();
        assert_eq!(
            v.to_labels(),
            Labels::from_pairs([("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")])
        );
        assert_eq!(v.hash, v.to_labels().hash());
    }

    #[test]
    fn the_fast_path_declines_what_normalization_would_change_or_refuse() {
        let lim = ValidationLimits {
            max_labels: 3,
            max_name_bytes: 8,
            max_value_bytes: 4,
        };
        let cases: &[&[(&str, &str)]] = &[
            &[("__name__", "m"), ("b", "1"), ("a", "1")],
            &[("__name__", "m"), ("a", "1"), ("a", "2")],
            &[("__name__", "m"), ("a", "")],
            &[("", "x"), ("__name__", "m")],
            &[("__name__", "m"), ("a", "1"), ("b", "1"), ("c", "1")],
            &[("__name__", "m"), ("abcdefghi", "1")],
            &[("__name__", "m"), ("a", "12345")],
            &[("__name__", "m"), ("a\u{1}", "1")],
            &[("__name__", "m\n")],
            &[("a", "1")],
        ];
        for case in cases {
            let pairs: Vec<(String, String)> = case
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
            let (fast_res, fast_got, took) = write(lim, &pairs, true);
            assert!(!took, "{case:?}");
            let (slow_res, slow_got, _) = write(lim, &pairs, false);
            assert_eq!(fast_res, slow_res, "{case:?}");
            assert_eq!(fast_got, slow_got, "{case:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_and_slow_paths_agree(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["", "__name__", "a", "b", "B", "ab", "c\u{7f}", "job", "service", "zzzzzzzzz", "ü"]),
                    proptest::sample::select(vec!["", "m", "x", "yy", "\u{1}", "long value", "é", "x\ty"]),
                ),
                0..6,
            ),
            sort in proptest::bool::ANY,
        ) {
            let mut pairs: Vec<(String, String)> =
                pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            if sort {
                pairs.sort();
            }
            let lim = ValidationLimits { max_labels: 4, max_name_bytes: 8, max_value_bytes: 6 };
            let fast = write(lim, &pairs, true);
            let slow = write(lim, &pairs, false);
            proptest::prop_assert_eq!(&fast.0, &slow.0);
            let mut b = WriteBatch::with_limits(lim);
            let mut s = b.series();
            for (n, v) in &pairs {
                s.label(n.as_str(), v.as_str());
            }
            s.float(1, 1.0);
            if s.finish().is_ok() {
                let v = b.get(0).unwrap();
                for name in ["__name__", "a", "b", "B", "ab", "m", "x", "yy", "job", "zzzzzzzzz"] {
                    let want = v.labels().find(|(n, _)| *n == name).map(|(_, x)| x);
                    proptest::prop_assert_eq!(v.label(name), want);
                }
                let service = v.label("service").or_else(|| v.label("job"));
                proptest::prop_assert_eq!(b.service(0), service);
                if let Some((_, _, fast_service)) = &fast.1 {
                    proptest::prop_assert_eq!(fast_service.as_deref(), service);
                }
            }
            proptest::prop_assert_eq!(&fast.1, &slow.1);
            if let Some((key, hash, _)) = &fast.1 {
                proptest::prop_assert_eq!(*hash, series_key_hash(key));
            }
        }

        /// Arbitrary bytes (invalid UTF-8, `0xff`, control bytes): the fast path accepts
        /// only strings that are UTF-8 and that the slow path stores under the same key.
        #[test]
        fn the_fast_path_accepts_only_valid_strings(
            tail in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', 0xc3, 0xa9, 0xff, 0x09, 0x80]), 1..4),
                    proptest::collection::vec(proptest::sample::select(vec![b'v', 0xc3, 0xa9, 0xff, 0x01, 0xe0, b' ']), 1..4),
                ),
                0..3,
            ),
            name in proptest::collection::vec(proptest::sample::select(vec![b'm', 0xc3, 0xa9, 0xff, 0x0a]), 1..3),
        ) {
            let mut pairs = vec![(b"__name__".to_vec(), name)];
            pairs.extend(tail.into_iter().map(|(n, v)| ([b"x".to_vec(), n].concat(), v)));
            let mut b = WriteBatch::new();
            let mut s = b.series();
            let took = s.sorted_labels(pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
            s.float(1, 1.0);
            let fast = s.finish().ok().map(|()| b.get(0).map(|v| v.key.to_vec()));
            if took {
                let strs: Option<Vec<(&str, &str)>> = pairs
                    .iter()
                    .map(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
                    .collect();
                proptest::prop_assert!(strs.is_some(), "took non-UTF-8 {:?}", pairs);
                let strs = strs.unwrap_or_default();
                let mut b2 = WriteBatch::new();
                let mut s2 = b2.series();
                for (n, v) in &strs {
                    s2.label(*n, *v);
                }
                s2.float(1, 1.0);
                proptest::prop_assert!(s2.finish().is_ok());
                proptest::prop_assert_eq!(fast, Some(b2.get(0).map(|v| v.key.to_vec())));
            }
        }
    }
}
