//! Builds the WAL records of one append (series first, so replay knows every ref before
//! its samples) and of a checkpoint.

use gmc_model::{Histogram, Metadata, WriteBatch};

use crate::head::{Head, Plan};
use crate::wal::record::{self, frame};

/// The records for an accepted plan, as one buffer written with a single `write`.
pub(super) fn wal_records(batch: &WriteBatch<'_>, plan: &Plan, metadata: &[Metadata]) -> Vec<u8> {
    let (floats, hists) = plan.accepted(batch);
    let mut out = Vec::with_capacity(32 + floats * 14 + plan.new_series.len() * 128);
    if !plan.new_series.is_empty() {
        frame(&mut out, record::TYPE_SERIES, |o| {
            record::series_payload(o, plan.new_series.iter().map(|(r, l)| (*r, &l[..])))
        });
    }
    let accepted = || {
        plan.refs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some(((*r)?, batch.get(i)?, i)))
    };
    if floats > 0 {
        let base = accepted()
            .find_map(|(_, s, _)| s.floats.first().map(|f| f.ts_nanos))
            .unwrap_or(0);
        frame(&mut out, record::TYPE_FLOATS, |o| {
            record::floats_payload(
                o,
                floats,
                base,
                accepted()
                    .flat_map(|(r, s, _)| s.floats.iter().map(move |f| (r, f.ts_nanos, f.value))),
            )
        });
    }
    if hists > 0 {
        let samples: Vec<(u64, i64, &Histogram)> = accepted()
            .flat_map(|(r, s, _)| {
                s.histograms
                    .iter()
                    .map(move |h| (r, h.ts_nanos, &h.histogram))
            })
            .collect();
        frame(&mut out, record::TYPE_HISTOGRAMS, |o| {
            record::histograms_payload(o, &samples)
        });
    }
    if !metadata.is_empty() {
        frame(&mut out, record::TYPE_METADATA, |o| {
            record::metadata_payload(o, metadata)
        });
    }
    out
}

/// Series and metadata records of everything the head still needs after a flush.
pub(super) fn checkpoint_records(head: &Head) -> Vec<u8> {
    let series = head.all_series();
    let mut out = Vec::with_capacity(series.len() * 32);
    let mut scratch = Vec::new();
    // Bounded record sizes keep replay memory small; compressed because a checkpoint holds
    // every head series' labels and lives on disk until the next flush.
    for part in series.chunks(10_000) {
        record::frame_compressed(&mut out, &mut scratch, record::TYPE_SERIES, |o| {
            record::series_payload(o, part.iter().map(|(r, l)| (*r, &l[..])))
        });
    }
    let md: Vec<Metadata> = head.metadata().values().cloned().collect();
    if !md.is_empty() {
        frame(&mut out, record::TYPE_METADATA, |o| {
            record::metadata_payload(o, &md)
        });
    }
    out
}
