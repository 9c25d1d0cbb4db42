//! Compaction: merges blocks of adjacent or overlapping time ranges into one larger block
//! (series merged by labels, overlapping chunks merged sample by sample), and a planner in
//! the spirit of Prometheus' leveled one (2h → 6h → 24h by default).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use gmc_model::{ErrorClass, Labels};

use crate::block::{self, Block, BlockMeta, Chunk, ChunkMeta, Resolution};
use crate::querier::{Sample, SampleValue};

/// Samples per chunk when overlapping chunks are re-encoded: the size head flushes write
/// to blocks (`db/blocks.rs`; long chunks compress best, see `docs/adr/0001-chunk-codec.md`).
pub const MERGED_CHUNK_SAMPLES: usize = 2880;

/// Failures of compaction.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading a source block or writing the result failed.
    #[error(transparent)]
    Block(#[from] block::Error),
    /// The blocks to compact have different resolutions.
    #[error("cannot compact blocks of different resolutions ({a:?} and {b:?})")]
    MixedResolution {
        /// One resolution.
        a: Resolution,
        /// Another resolution.
        b: Resolution,
    },
    /// Fewer than two blocks were given.
    #[error("compaction needs at least two blocks, got {count}")]
    TooFewBlocks {
        /// Blocks given.
        count: usize,
    },
}

impl Error {
    /// The class of this error (see `gmc_model::ErrorClass`).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Block(e) => e.class(),
            _ => ErrorClass::BadInput,
        }
    }
}

/// Result alias of compaction.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Chooses which blocks to compact next.
///
/// `ranges[0]` is the size of blocks cut from the head; each further range is a level:
/// blocks that fall entirely inside one aligned window of that range are compacted
/// together once the window is complete (the newest block starts at or after its end).
/// Overlapping blocks (e.g. from out-of-order data) are compacted first, whatever their
/// size. The newest block is never planned: the head may still be producing data beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planner {
    ranges_nanos: Vec<i64>,
    resolutions: Vec<Resolution>,
}

impl Default for Planner {
    fn default() -> Self {
        Planner::new(&[
            Duration::from_secs(2 * 3600),
            Duration::from_secs(6 * 3600),
            Duration::from_secs(24 * 3600),
        ])
    }
}

impl Planner {
    /// A planner over the given ranges (ascending; zero ranges are ignored).
    pub fn new(ranges: &[Duration]) -> Self {
        let mut ranges_nanos: Vec<i64> = ranges
            .iter()
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .filter(|r| *r > 0)
            .collect();
        ranges_nanos.sort_unstable();
        ranges_nanos.dedup();
        Planner {
            ranges_nanos,
            resolutions: vec![Resolution::Raw, Resolution::OneMinute, Resolution::OneHour],
        }
    }

    /// Plan only blocks of `resolutions` (all by default), so raw blocks and rollups can
    /// use different level ranges.
    pub fn for_resolutions(mut self, resolutions: &[Resolution]) -> Self {
        self.resolutions = resolutions.to_vec();
        self
    }

    /// Ids of the blocks to compact together next (empty: nothing to do). Only blocks of
    /// one resolution are ever grouped.
    pub fn plan(&self, metas: &[BlockMeta]) -> Vec<String> {
        for &res in &self.resolutions {
            let mut v: Vec<&BlockMeta> = metas.iter().filter(|m| m.resolution == res).collect();
            v.sort_by(|a, b| (a.mint_nanos, &a.id).cmp(&(b.mint_nanos, &b.id)));
            let plan = self.plan_sorted(&v);
            if !plan.is_empty() {
                return plan;
            }
        }
        Vec::new()
    }

    fn plan_sorted(&self, sorted: &[&BlockMeta]) -> Vec<String> {
        // Exclude the newest block (largest maxt).
        let Some(newest) = sorted
            .iter()
            .enumerate()
            .max_by_key(|(_, m)| (m.maxt_nanos, &m.id))
            .map(|(i, _)| i)
        else {
            return Vec::new();
        };
        let newest_mint = sorted[newest].mint_nanos;
        let rest: Vec<&BlockMeta> = sorted
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != newest)
            .map(|(_, m)| *m)
            .collect();

        // Overlapping blocks first: one group of transitively overlapping ranges.
        let mut group: Vec<&BlockMeta> = Vec::new();
        let mut group_maxt = i64::MIN;
        for m in &rest {
            if !group.is_empty() && m.mint_nanos <= group_maxt {
                group.push(m);
                group_maxt = group_maxt.max(m.maxt_nanos);
                continue;
            }
            if group.len() > 1 {
                break;
            }
            group = vec![m];
            group_maxt = m.maxt_nanos;
        }
        if group.len() > 1 {
            return group.iter().map(|m| m.id.clone()).collect();
        }

        for &range in self.ranges_nanos.iter().skip(1) {
            let mut windows: BTreeMap<i64, Vec<&BlockMeta>> = BTreeMap::new();
            for m in &rest {
                let w = m.mint_nanos.div_euclid(range);
                if m.maxt_nanos.div_euclid(range) == w {
                    windows.entry(w).or_default().push(m);
                }
            }
            for (w, blocks) in windows {
                let window_end = (w + 1).saturating_mul(range);
                if blocks.len() > 1 && window_end <= newest_mint {
                    return blocks.iter().map(|m| m.id.clone()).collect();
                }
            }
        }
        Vec::new()
    }
}

/// Samples of one chunk group, merged: sorted by time, one sample per timestamp (the one
/// from the block listed last wins, so a newer block overrides an older one).
pub(crate) fn merge_samples(parts: Vec<(usize, Vec<Sample>)>) -> Vec<Sample> {
    let mut all: Vec<(i64, usize, Sample)> = parts
        .into_iter()
        .flat_map(|(b, v)| v.into_iter().map(move |s| (s.ts_nanos, b, s)))
        .collect();
    all.sort_by_key(|(ts, b, _)| (*ts, *b));
    let mut out: Vec<Sample> = Vec::with_capacity(all.len());
    for (_, _, s) in all {
        match out.last_mut() {
            Some(last) if last.ts_nanos == s.ts_nanos => *last = s,
            _ => out.push(s),
        }
    }
    out
}

/// Encode time-sorted samples into chunks of at most [`MERGED_CHUNK_SAMPLES`], starting a
/// new chunk whenever the sample kind changes (a chunk holds one kind).
pub(crate) fn encode_chunks(samples: &[Sample]) -> Vec<Chunk> {
    let is_float = |s: &Sample| matches!(s.value, SampleValue::Float(_));
    let mut out = Vec::new();
    let mut start = 0;
    while start < samples.len() {
        let kind = is_float(&samples[start]);
        let mut end = start + 1;
        while end < samples.len()
            && end - start < MERGED_CHUNK_SAMPLES
            && is_float(&samples[end]) == kind
        {
            end += 1;
        }
        let run = &samples[start..end];
        if let Some((encoding, bytes)) = crate::chunk::encode_samples(run) {
            out.push(Chunk::new(
                run[0].ts_nanos,
                run[run.len() - 1].ts_nanos,
                encoding,
                run.len() as u32,
                bytes,
            ));
        }
        start = end;
    }
    out
}

/// Decode one chunk of `block` into samples.
pub(crate) fn decode_chunk(block: &Block, meta: &ChunkMeta) -> block::Result<Vec<Sample>> {
    let c = block.read_chunk(meta)?;
    crate::chunk::decode_all(c.encoding, &c.bytes).map_err(|source| block::Error::Decode {
        path: block.dir().to_owned(),
        chunk_ref: meta.chunk_ref,
        source,
    })
}

/// Merge `blocks` (same resolution) into one new block under `parent` and return its meta.
/// Sources are left in place; see [`compact_and_replace`] for the full cycle.
pub fn compact(parent: &Path, blocks: &[&Block]) -> Result<BlockMeta> {
    if blocks.len() < 2 {
        return Err(Error::TooFewBlocks {
            count: blocks.len(),
        });
    }
    let res = blocks[0].meta().resolution;
    if let Some(b) = blocks.iter().find(|b| b.meta().resolution != res) {
        return Err(Error::MixedResolution {
            a: res,
            b: b.meta().resolution,
        });
    }
    // Later blocks override earlier ones on equal timestamps: order by creation (id).
    let mut order: Vec<&Block> = blocks.to_vec();
    order.sort_by(|a, b| a.meta().id.cmp(&b.meta().id));

    let mut series: BTreeMap<Labels, Vec<(usize, ChunkMeta)>> = BTreeMap::new();
    for (bi, b) in order.iter().enumerate() {
        for (labels, metas) in b.all_series()? {
            series
                .entry(labels)
                .or_default()
                .extend(metas.into_iter().map(|m| (bi, m)));
        }
    }

    let mut w = block::Writer::new(parent, res)?;
    let level = order
        .iter()
        .map(|b| b.meta().compaction.level)
        .max()
        .unwrap_or(1)
        + 1;
    w.set_compaction(
        level,
        order
            .iter()
            .flat_map(|b| b.meta().compaction.sources.iter().cloned())
            .collect(),
    );
    for (labels, mut metas) in series {
        metas.sort_by_key(|(bi, m)| (m.mint_nanos, m.maxt_nanos, *bi));
        let mut out: Vec<Chunk> = Vec::with_capacity(metas.len());
        let mut i = 0;
        while i < metas.len() {
            // A group: chunks whose ranges overlap transitively.
            let mut j = i + 1;
            let mut maxt = metas[i].1.maxt_nanos;
            while j < metas.len() && metas[j].1.mint_nanos <= maxt {
                maxt = maxt.max(metas[j].1.maxt_nanos);
                j += 1;
            }
            if j == i + 1 {
                let (bi, m) = metas[i];
                out.push(order[bi].read_chunk(&m)?);
            } else {
                let mut parts = Vec::with_capacity(j - i);
                for (bi, m) in &metas[i..j] {
                    parts.push((*bi, decode_chunk(order[*bi], m)?));
                }
                out.extend(encode_chunks(&merge_samples(parts)));
            }
            i = j;
        }
        let data: Vec<_> = out.iter().map(Chunk::as_data).collect();
        w.add_series(&labels, &data)?;
    }
    let meta = w.finish()?;
    tracing::info!(
        id = %meta.id,
        sources = order.len(),
        series = meta.stats.series,
        samples = meta.stats.samples,
        "Compacted blocks."
    );
    Ok(meta)
}

/// Compact `blocks` into a new block, then delete the sources. Sources are deleted only
/// after the new block is durable ([`block::Writer::finish`] renames it into place and
/// syncs the parent directory), so a crash at any point loses nothing: at worst both the
/// sources and the result exist, and the result's `sources` list tells which to drop.
pub fn compact_and_replace(parent: &Path, blocks: &[&Block]) -> Result<BlockMeta> {
    let meta = compact(parent, blocks)?;
    for b in blocks {
        block::delete(b.dir())?;
    }
    Ok(meta)
}

/// What one [`run`] did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Meta of the block written.
    pub created: BlockMeta,
    /// Ids of the source blocks deleted.
    pub deleted: Vec<String>,
}

/// Plan once from the `meta.json` files under `parent` and compact what the planner picks.
/// `Ok(None)`: nothing to do. Only the chosen blocks are opened (planning reads no index),
/// and `.tmp` directories of running writers are left alone.
pub fn run(parent: &Path, planner: &Planner) -> Result<Option<Report>> {
    let rd = std::fs::read_dir(parent).map_err(|source| block::Error::Io {
        op: "list blocks",
        path: parent.to_owned(),
        source,
    })?;
    let mut metas = Vec::new();
    for e in rd.flatten() {
        let is_block = e.file_name().to_str().is_some_and(block::is_block_id);
        if !is_block {
            continue;
        }
        // Unreadable blocks are reported by `block::open_all`; they are not compacted.
        if let Ok(m) = BlockMeta::read(&e.path()) {
            metas.push(m);
        }
    }
    let ids = planner.plan(&metas);
    if ids.is_empty() {
        return Ok(None);
    }
    let opened: Vec<Block> = ids
        .iter()
        .map(|id| Block::open(&parent.join(id)))
        .collect::<block::Result<_>>()?;
    let chosen: Vec<&Block> = opened.iter().collect();
    let created = compact_and_replace(parent, &chosen)?;
    Ok(Some(Report {
        created,
        deleted: ids,
    }))
}
