//! Read paths over the head and over a frozen head being flushed: shard locks are held
//! only to copy chunk handles; decoding happens after they are released.

use std::sync::Arc;

use gmc_model::{Labels, Matcher};

use super::{to_labels, Head, LabelSet, Taken, SHARDS};
use crate::error::Result;
use crate::querier::{FloatRead, Pending, Sample, SeriesData, Source};

/// Whether an interned label set satisfies every matcher (absent label = empty value).
pub(crate) fn matches_all(labels: &[(Arc<str>, Arc<str>)], matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| {
        let v = labels
            .iter()
            .find(|(n, _)| **n == *m.name)
            .map(|(_, v)| &**v)
            .unwrap_or("");
        m.matches(v)
    })
}

fn decode_into(
    snaps: Vec<(LabelSet, Taken)>,
    mint: i64,
    maxt: i64,
    out: &mut Vec<(Labels, Vec<Sample>)>,
) -> Result<()> {
    for (labels, snap) in snaps {
        let mut samples = Vec::new();
        snap.decode(mint, maxt, &mut samples)?;
        if !samples.is_empty() {
            out.push((to_labels(&labels), samples));
        }
    }
    Ok(())
}

/// One series' data as `read` asks (all samples or the newest), shaped.
fn decode_read(labels: &LabelSet, t: &Taken, read: &FloatRead) -> Result<(Labels, SeriesData)> {
    Ok((to_labels(labels), decode_data(t, read)?))
}

/// [`decode_read`] without the labels.
fn decode_data(t: &Taken, read: &FloatRead) -> Result<SeriesData> {
    let mut data = if read.last_only {
        t.decode_last(read.mint, read.maxt)?
    } else {
        t.decode_data(read.mint, read.maxt)?
    };
    data.shape(read);
    Ok(data)
}

fn names_of<'a>(sets: impl Iterator<Item = &'a LabelSet>) -> Vec<String> {
    let mut v: Vec<String> = sets
        .flat_map(|l| l.iter().map(|(n, _)| n.to_string()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn values_of<'a>(sets: impl Iterator<Item = &'a LabelSet>, name: &str) -> Vec<String> {
    let mut v: Vec<String> = sets
        .filter_map(|l| {
            l.iter()
                .find(|(n, _)| **n == *name)
                .map(|(_, v)| v.to_string())
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Head {
    /// Matching series with a snapshot of their data in `[mint, maxt]`.
    fn snapshots(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(LabelSet, Taken)> {
        let refs = self.postings.read().candidates(matchers);
        let mut by_shard: Vec<Vec<u64>> = vec![Vec::new(); SHARDS];
        for r in refs {
            by_shard[Self::shard_of_ref(r)].push(r);
        }
        let mut out = Vec::new();
        for (i, refs) in by_shard.iter().enumerate() {
            if refs.is_empty() {
                continue;
            }
            let shard = self.shards[i].lock();
            for r in refs {
                let Some(s) = shard.get(*r) else {
                    continue;
                };
                if !matches_all(&s.labels, matchers) {
                    continue;
                }
                let snap = s.snapshot(mint, maxt);
                if !snap.chunks.is_empty() || !snap.ooo.is_empty() {
                    out.push((Arc::clone(&s.labels), snap));
                }
            }
        }
        out
    }

    /// Label sets of matching series (time range ignored: head series are recent).
    fn matching_sets(&self, matchers: &[Matcher]) -> Vec<LabelSet> {
        let refs = self.postings.read().candidates(matchers);
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let shard = self.shards[Self::shard_of_ref(r)].lock();
            if let Some(s) = shard.get(r) {
                if matches_all(&s.labels, matchers) && !s.is_empty() {
                    out.push(Arc::clone(&s.labels));
                }
            }
        }
        out
    }
}

impl Source for Head {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        out: &mut Vec<(Labels, Vec<Sample>)>,
    ) -> Result<()> {
        decode_into(self.snapshots(matchers, mint, maxt), mint, maxt, out)
    }

    fn select_floats(
        &self,
        matchers: &[Matcher],
        read: &FloatRead,
        out: &mut Vec<(Labels, SeriesData)>,
    ) -> Result<()> {
        let snaps = self.snapshots(matchers, read.mint, read.maxt);
        out.reserve(snaps.len());
        for r in crate::par::map(snaps, |(labels, snap)| decode_read(&labels, &snap, read)) {
            out.push(r?);
        }
        Ok(())
    }

    fn plan_floats(
        self: Arc<Self>,
        matchers: &[Matcher],
        read: &FloatRead,
        out: &mut Vec<(Labels, Pending)>,
    ) -> Result<()> {
        // The snapshot holds the series' compressed chunks (closed ones shared, the open
        // one copied): the decode happens later, outside every lock.
        let read = *read;
        for (labels, snap) in self.snapshots(matchers, read.mint, read.maxt) {
            let job: Pending = Box::new(move || decode_data(&snap, &read));
            out.push((to_labels(&labels), job));
        }
        Ok(())
    }

    fn label_names(&self, matchers: &[Matcher], _mint: i64, _maxt: i64) -> Result<Vec<String>> {
        if matchers.is_empty() {
            let mut v = self.postings.read().names();
            v.sort_unstable();
            return Ok(v);
        }
        Ok(names_of(self.matching_sets(matchers).iter()))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        _mint: i64,
        _maxt: i64,
    ) -> Result<Vec<String>> {
        if matchers.is_empty() {
            let mut v = self.postings.read().values(name);
            v.sort_unstable();
            return Ok(v);
        }
        Ok(values_of(self.matching_sets(matchers).iter(), name))
    }
}

/// Head data moved out for a flush: readable until its block is in place.
#[derive(Debug, Default)]
pub(crate) struct Frozen {
    pub(crate) series: Vec<(LabelSet, Taken)>,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
}

impl Frozen {
    pub(crate) fn new(mut series: Vec<(LabelSet, Taken)>) -> Self {
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        for (_, t) in &series {
            for c in &t.chunks {
                mint = mint.min(c.mint);
                maxt = maxt.max(c.maxt);
            }
            for s in &t.ooo {
                mint = mint.min(s.ts_nanos);
                maxt = maxt.max(s.ts_nanos);
            }
        }
        Frozen { series, mint, maxt }
    }

    /// Number of samples-bearing series.
    pub(crate) fn len(&self) -> usize {
        self.series.len()
    }
}

impl Source for Frozen {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        out: &mut Vec<(Labels, Vec<Sample>)>,
    ) -> Result<()> {
        if maxt < self.mint || mint > self.maxt {
            return Ok(());
        }
        for (labels, t) in &self.series {
            if !matches_all(labels, matchers) {
                continue;
            }
            let mut samples = Vec::new();
            t.decode(mint, maxt, &mut samples)?;
            if !samples.is_empty() {
                out.push((to_labels(labels), samples));
            }
        }
        Ok(())
    }

    fn select_floats(
        &self,
        matchers: &[Matcher],
        read: &FloatRead,
        out: &mut Vec<(Labels, SeriesData)>,
    ) -> Result<()> {
        if read.maxt < self.mint || read.mint > self.maxt {
            return Ok(());
        }
        let matching: Vec<&(LabelSet, Taken)> = self
            .series
            .iter()
            .filter(|(labels, _)| matches_all(labels, matchers))
            .collect();
        for r in crate::par::map(matching, |(labels, t)| decode_read(labels, t, read)) {
            out.push(r?);
        }
        Ok(())
    }

    fn plan_floats(
        self: Arc<Self>,
        matchers: &[Matcher],
        read: &FloatRead,
        out: &mut Vec<(Labels, Pending)>,
    ) -> Result<()> {
        if read.maxt < self.mint || read.mint > self.maxt {
            return Ok(());
        }
        let read = *read;
        for (i, (labels, _)) in self.series.iter().enumerate() {
            if !matches_all(labels, matchers) {
                continue;
            }
            let me = Arc::clone(&self);
            let job: Pending = Box::new(move || match me.series.get(i) {
                Some((_, t)) => decode_data(t, &read),
                None => Ok(SeriesData::Floats(Vec::new())),
            });
            out.push((to_labels(labels), job));
        }
        Ok(())
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        if maxt < self.mint || mint > self.maxt {
            return Ok(Vec::new());
        }
        Ok(names_of(
            self.series
                .iter()
                .filter(|(l, _)| matches_all(l, matchers))
                .map(|(l, _)| l),
        ))
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        if maxt < self.mint || mint > self.maxt {
            return Ok(Vec::new());
        }
        Ok(values_of(
            self.series
                .iter()
                .filter(|(l, _)| matches_all(l, matchers))
                .map(|(l, _)| l),
            name,
        ))
    }
}
