//! Rollup jobs: which raw blocks still need rolling up ([`plan`]), and writing the rollup
//! blocks of whole hour windows from every raw block overlapping them ([`run`]).
//!
//! A raw block is rolled up at a resolution once each of its compaction sources appears in
//! the sources of some block of that resolution, so compacting raw or rollup blocks never
//! triggers new work, while a late raw block (out-of-order data flushed after its window
//! was rolled up) does: its windows are recomputed from all raw data and the newer rollup
//! block wins on the (fixed, see [`super::bucket_stamp`]) bucket timestamps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gmc_model::{Labels, NANOS_PER_SEC};

use super::{rollup, ROLLUP_LABEL};
use crate::block::{self, Block, BlockMeta, Chunk, ChunkMeta, Resolution, Writer};
use crate::compact::{decode_chunk, encode_chunks, merge_samples};

/// Rollups are computed over whole hour windows, the bucket of the coarsest resolution,
/// so a window's buckets never depend on data outside it.
pub const WINDOW_NANOS: i64 = 3600 * NANOS_PER_SEC;

/// Most raw blocks one job rolls up (the oldest due first): bounds the time a round holds
/// the flush lock when much is due at once (e.g. the first round over an existing store).
pub const MAX_BLOCKS_PER_JOB: usize = 8;

/// The rollup resolutions, finest first.
pub const RESOLUTIONS: [Resolution; 2] = [Resolution::OneMinute, Resolution::OneHour];

/// One unit of rollup work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Resolutions to write (one block each).
    pub resolutions: Vec<Resolution>,
    /// Ids of the raw blocks whose data this job covers; their compaction sources become
    /// the rollup blocks' sources.
    pub chosen: Vec<String>,
    /// Hour-aligned half-open windows `[start, end)` recomputed, sorted and disjoint.
    pub windows: Vec<(i64, i64)>,
}

fn sources_of(m: &BlockMeta) -> Vec<&str> {
    if m.compaction.sources.is_empty() {
        vec![m.id.as_str()]
    } else {
        m.compaction.sources.iter().map(String::as_str).collect()
    }
}

/// The hour windows a block's samples fall in: `[floor(mint), floor(maxt) + 1 h)`.
fn window_of(m: &BlockMeta) -> (i64, i64) {
    let lo = m
        .mint_nanos
        .div_euclid(WINDOW_NANOS)
        .saturating_mul(WINDOW_NANOS);
    let hi = m
        .maxt_nanos
        .div_euclid(WINDOW_NANOS)
        .saturating_add(1)
        .saturating_mul(WINDOW_NANOS);
    (lo, hi)
}

/// Plan the rollup work among `metas` (every block of the store).
///
/// A raw block is chosen for a resolution when one of its sources is not yet covered by a
/// block of that resolution, its last window ends at or before `horizon_nanos` (data
/// for later windows may still be in the head), and it is not older than
/// `keep_since[res]` (its rollup would be deleted by retention at once). Resolutions
/// with the same chosen blocks share one job, so raw chunks are decoded once.
pub fn plan(
    metas: &[BlockMeta],
    horizon_nanos: i64,
    keep_since: impl Fn(Resolution) -> i64,
) -> Vec<Job> {
    let horizon = horizon_nanos
        .div_euclid(WINDOW_NANOS)
        .saturating_mul(WINDOW_NANOS);
    let mut by_chosen: BTreeMap<Vec<String>, Vec<Resolution>> = BTreeMap::new();
    for res in RESOLUTIONS {
        let covered: BTreeSet<&str> = metas
            .iter()
            .filter(|m| m.resolution == res)
            .flat_map(sources_of)
            .collect();
        let since = keep_since(res);
        let mut due: Vec<&BlockMeta> = metas
            .iter()
            .filter(|m| m.resolution == Resolution::Raw)
            .filter(|m| m.maxt_nanos >= since && window_of(m).1 <= horizon)
            .filter(|m| sources_of(m).iter().any(|s| !covered.contains(s)))
            .collect();
        due.sort_by(|a, b| (a.mint_nanos, &a.id).cmp(&(b.mint_nanos, &b.id)));
        let mut chosen: Vec<String> = due
            .into_iter()
            .take(MAX_BLOCKS_PER_JOB)
            .map(|m| m.id.clone())
            .collect();
        chosen.sort();
        if !chosen.is_empty() {
            by_chosen.entry(chosen).or_default().push(res);
        }
    }
    by_chosen
        .into_iter()
        .map(|(chosen, resolutions)| {
            let mut w: Vec<(i64, i64)> = metas
                .iter()
                .filter(|m| chosen.binary_search(&m.id).is_ok())
                .map(window_of)
                .collect();
            w.sort_unstable();
            let mut windows: Vec<(i64, i64)> = Vec::with_capacity(w.len());
            for (lo, hi) in w {
                match windows.last_mut() {
                    Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                    _ => windows.push((lo, hi)),
                }
            }
            Job {
                resolutions,
                chosen,
                windows,
            }
        })
        .collect()
}

fn in_windows(windows: &[(i64, i64)], ts: i64) -> bool {
    let i = windows.partition_point(|w| w.1 <= ts);
    windows.get(i).is_some_and(|w| w.0 <= ts)
}

fn overlaps_windows(windows: &[(i64, i64)], mint: i64, maxt: i64) -> bool {
    windows.iter().any(|w| w.0 <= maxt && mint < w.1)
}

/// Execute `job`: read every raw block of `raws` overlapping its windows (the newest block
/// wins on equal timestamps, as in compaction), roll each series up and write one block
/// per resolution under `parent`. Series are processed one at a time, so memory stays at
/// one series' samples plus the blocks' label index. Returns the metas written (none when
/// the windows hold no samples).
pub fn run(parent: &Path, raws: &[&Block], job: &Job) -> block::Result<Vec<BlockMeta>> {
    let windows = &job.windows;
    let mut order: Vec<&Block> = raws
        .iter()
        .copied()
        .filter(|b| b.meta().resolution == Resolution::Raw)
        .filter(|b| overlaps_windows(windows, b.meta().mint_nanos, b.meta().maxt_nanos))
        .collect();
    order.sort_by(|a, b| a.meta().id.cmp(&b.meta().id));
    let sources: Vec<String> = order
        .iter()
        .filter(|b| job.chosen.contains(&b.meta().id))
        .flat_map(|b| sources_of(b.meta()).into_iter().map(str::to_owned))
        .collect();

    let mut series: BTreeMap<Labels, Vec<(usize, ChunkMeta)>> = BTreeMap::new();
    for (bi, b) in order.iter().enumerate() {
        for (labels, metas) in b.all_series()? {
            let keep: Vec<(usize, ChunkMeta)> = metas
                .into_iter()
                .filter(|m| overlaps_windows(windows, m.mint_nanos, m.maxt_nanos))
                .map(|m| (bi, m))
                .collect();
            if !keep.is_empty() {
                series.entry(labels).or_default().extend(keep);
            }
        }
    }

    let mut writers: Vec<(Resolution, Writer, bool)> = Vec::new();
    for &res in &job.resolutions {
        let mut w = Writer::new(parent, res)?;
        w.set_compaction(1, sources.clone());
        writers.push((res, w, false));
    }
    for (labels, metas) in series {
        let mut parts = Vec::with_capacity(metas.len());
        for (bi, m) in &metas {
            parts.push((*bi, decode_chunk(order[*bi], m)?));
        }
        let mut samples = merge_samples(parts);
        samples.retain(|s| in_windows(windows, s.ts_nanos));
        if samples.is_empty() {
            continue;
        }
        for (res, w, any) in &mut writers {
            for (agg, rolled) in rollup(&samples, res.step_nanos()) {
                let chunks: Vec<Chunk> = encode_chunks(&rolled);
                let data: Vec<_> = chunks.iter().map(Chunk::as_data).collect();
                w.add_series(&labels.with(ROLLUP_LABEL, agg), &data)?;
                *any |= !data.is_empty();
            }
        }
    }
    let mut out = Vec::new();
    for (_, w, any) in writers {
        // A writer without series is dropped, which removes its temporary directory.
        if any {
            out.push(w.finish()?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Compaction, Stats, META_VERSION};

    fn meta(id: &str, res: Resolution, mint: i64, maxt: i64, sources: &[&str]) -> BlockMeta {
        BlockMeta {
            version: META_VERSION,
            id: id.to_owned(),
            mint_nanos: mint,
            maxt_nanos: maxt,
            stats: Stats::default(),
            compaction: Compaction {
                level: 1,
                sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            },
            resolution: res,
        }
    }

    const H: i64 = WINDOW_NANOS;

    #[test]
    fn plans_uncovered_raw_blocks_behind_the_horizon() {
        let metas = vec![
            meta("A", Resolution::Raw, 0, 2 * H - 1, &["A"]),
            meta("B", Resolution::Raw, 2 * H, 3 * H + 5, &["B"]),
            meta("C", Resolution::Raw, 5 * H, 6 * H, &["C"]),
        ];
        let jobs = plan(&metas, 5 * H + 10, |_| i64::MIN);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].resolutions, RESOLUTIONS.to_vec());
        assert_eq!(jobs[0].chosen, vec!["A".to_owned(), "B".to_owned()]);
        assert_eq!(jobs[0].windows, vec![(0, 4 * H)]);

        // Rolled up at 1m only (e.g. the 1h write failed): only 1h is planned.
        let mut more = metas.clone();
        more.push(meta("R", Resolution::OneMinute, 0, 4 * H, &["A", "B"]));
        let jobs = plan(&more, 5 * H + 10, |_| i64::MIN);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].resolutions, vec![Resolution::OneHour]);

        // Compacting the raw blocks does not make them new work.
        let compacted = vec![
            meta("AB", Resolution::Raw, 0, 3 * H + 5, &["A", "B"]),
            meta("R1", Resolution::OneMinute, 0, 4 * H, &["A", "B"]),
            meta("R2", Resolution::OneHour, 0, 4 * H, &["A", "B"]),
        ];
        assert!(plan(&compacted, 9 * H, |_| i64::MIN).is_empty());

        // Blocks about to be deleted by the rollup retention are not rolled up.
        assert!(plan(&metas, 5 * H + 10, |_| 4 * H).is_empty());
    }

    #[test]
    fn a_job_takes_the_oldest_due_blocks_first() {
        let metas: Vec<BlockMeta> = (0..20i64)
            .map(|i| {
                let id = format!("B{:02}", 19 - i);
                meta(&id, Resolution::Raw, i * H, i * H + 10, &[id.as_str()])
            })
            .collect();
        let jobs = plan(&metas, 100 * H, |_| i64::MIN);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].chosen.len(), MAX_BLOCKS_PER_JOB);
        assert_eq!(jobs[0].windows, vec![(0, MAX_BLOCKS_PER_JOB as i64 * H)]);
    }

    #[test]
    fn window_membership() {
        let w = [(0, H), (3 * H, 4 * H)];
        assert!(in_windows(&w, 0));
        assert!(!in_windows(&w, H));
        assert!(in_windows(&w, 3 * H + 1));
        assert!(!in_windows(&w, 4 * H));
        assert!(!in_windows(&w, -1));
        assert!(overlaps_windows(&w, H - 1, 2 * H));
        assert!(!overlaps_windows(&w, H, 3 * H - 1));
    }
}
