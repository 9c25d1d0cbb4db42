//! Adapter between the store and the block layer (`crate::block`): writing a flushed head
//! as a raw block (recompressed into long chunks), opening blocks, and reading them as a
//! querier [`Source`].

use std::path::Path;
use std::sync::Arc;

use gmc_model::{Labels, Matcher};

use crate::block::{self, Block, ChunkData, Resolution};
use crate::chunk;
use crate::error::Result;
use crate::head::Frozen;
use crate::querier::{
    finish_floats, finish_samples, FloatRead, Pending, Sample, SampleValue, SeriesData, Source,
};

/// Samples per chunk written to blocks (48 min at a 1 s interval). Long chunks amortize
/// chunk headers and let the codec fit its parameters to more data: on the peerbench-like
/// mix 2,880-sample chunks take 2.38 B/sample against 2.40 at 1,440 and 2.55 with the
/// head's 120 (see docs/adr/0001-chunk-codec.md).
const BLOCK_CHUNK_SAMPLES: usize = 2880;

/// Whether blocks can be written (the background flush only runs when they can).
pub(super) const AVAILABLE: bool = true;

/// A block read through the querier interface.
#[derive(Debug)]
pub(super) struct BlockSource {
    block: Block,
}

impl BlockSource {
    pub(super) fn size_bytes(&self) -> u64 {
        self.block.size_bytes()
    }

    /// One series' data in `read` from its chunk metas (`None`: no chunk in the range).
    fn decode_metas(
        &self,
        metas: &[crate::block::ChunkMeta],
        read: &FloatRead,
    ) -> Result<Option<SeriesData>> {
        let (mint, maxt) = (read.mint, read.maxt);
        let in_range = metas
            .iter()
            .filter(|m| m.maxt_nanos >= mint && m.mint_nanos <= maxt);
        if read.last_only {
            // Newest chunk first; stop at the first with a sample in the range (a chunk
            // can overlap the range without holding a sample in it).
            for m in in_range.rev() {
                let c = self.block.read_chunk(m)?;
                if m.maxt_nanos <= maxt && c.encoding != chunk::ENCODING_HISTOGRAM {
                    // Ends inside the range: its last sample, at `maxt_nanos`, is the
                    // newest; only the values need decoding.
                    if let Some(f) = chunk::last_float(c.encoding, &c.bytes)? {
                        let mut data = SeriesData::Floats(vec![(m.maxt_nanos, f)]);
                        data.shape(read);
                        return Ok(Some(data));
                    }
                }
                let mut data = decode_series(std::slice::from_ref(&c), mint, maxt)?;
                if data.last_ts().is_some() {
                    data.shape(read);
                    return Ok(Some(data));
                }
            }
            return Ok(None);
        }
        let chunks = in_range
            .map(|m| Ok(self.block.read_chunk(m)?))
            .collect::<Result<Vec<_>>>()?;
        if chunks.is_empty() {
            return Ok(None);
        }
        let mut data = decode_series(&chunks, mint, maxt)?;
        data.shape(read);
        Ok(Some(data))
    }

    pub(super) fn resolution(&self) -> Resolution {
        self.block.meta().resolution
    }

    pub(super) fn id(&self) -> &str {
        &self.block.meta().id
    }

    pub(super) fn maxt(&self) -> i64 {
        self.block.meta().maxt_nanos
    }

    pub(super) fn block(&self) -> &Block {
        &self.block
    }

    /// Chunk metas of the series with exactly `labels` (`matchers`: one equality matcher
    /// per label), if the block has it.
    pub(super) fn series_chunks(
        &self,
        matchers: &[Matcher],
        labels: &Labels,
    ) -> Result<Option<Vec<crate::block::ChunkMeta>>> {
        if self.block.meta().stats.series == 0 {
            return Ok(None);
        }
        Ok(self
            .block
            .select(matchers)?
            .into_iter()
            .find(|(l, _)| l == labels)
            .map(|(_, m)| m))
    }

    /// Decode the samples of `metas` within `[mint, maxt]` into `out`.
    pub(super) fn decode_range(
        &self,
        metas: &[crate::block::ChunkMeta],
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<()> {
        for m in metas
            .iter()
            .filter(|m| m.maxt_nanos >= mint && m.mint_nanos <= maxt)
        {
            let c = self.block.read_chunk(m)?;
            chunk::decode_range(c.encoding, &c.bytes, mint, maxt, out)?;
        }
        Ok(())
    }

    /// The chunks of `metas` overlapping `[mint, maxt]`, read.
    fn read_overlapping(
        &self,
        metas: &[crate::block::ChunkMeta],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<block::Chunk>> {
        metas
            .iter()
            .filter(|m| m.maxt_nanos >= mint && m.mint_nanos <= maxt)
            .map(|m| Ok(self.block.read_chunk(m)?))
            .collect()
    }
}

/// Most samples reserved up front from chunk headers (a corrupt count must not make a
/// reader allocate gigabytes; past this the vector grows as usual).
const MAX_RESERVE: usize = 1 << 20;

/// Exact capacity for the samples of `chunks` (their stored counts), bounded.
fn capacity(chunks: &[block::Chunk]) -> usize {
    chunks
        .iter()
        .map(|c| c.num_samples as usize)
        .sum::<usize>()
        .min(MAX_RESERVE)
}

/// Decode `chunks` (time-ordered, non-overlapping) into float pairs clipped to
/// `[mint, maxt]` when none holds histograms, else into samples.
fn decode_series(chunks: &[block::Chunk], mint: i64, maxt: i64) -> Result<SeriesData> {
    if chunks
        .iter()
        .any(|c| c.encoding == chunk::ENCODING_HISTOGRAM)
    {
        let mut v = Vec::with_capacity(capacity(chunks));
        for c in chunks {
            chunk::decode_range(c.encoding, &c.bytes, mint, maxt, &mut v)?;
        }
        finish_samples(&mut v, mint, maxt);
        // A histogram chunk can overlap the range with only floats inside it.
        return Ok(SeriesData::from_samples(v));
    }
    let mut v = Vec::with_capacity(capacity(chunks));
    for c in chunks {
        c.decode_floats_from(mint, &mut v)?;
    }
    finish_floats(&mut v, mint, maxt);
    Ok(SeriesData::Floats(v))
}

/// Open every block under `dir`, oldest first; blocks that fail to open are logged and
/// left out (never a reason to refuse to start).
pub(super) fn open_all(dir: &Path) -> Result<Vec<Arc<BlockSource>>> {
    let report = block::open_all(dir)?;
    for (path, err) in &report.failed {
        tracing::warn!(path = %path.display(), error = %err, "block could not be opened; not served");
    }
    Ok(report
        .blocks
        .into_iter()
        .map(|block| Arc::new(BlockSource { block }))
        .collect())
}

/// Encode `samples` (sorted, unique timestamps) as block chunks, splitting on kind changes.
fn encode_chunks(samples: &[Sample], out: &mut Vec<(i64, i64, u8, u32, Vec<u8>)>) {
    let mut start = 0;
    while start < samples.len() {
        let is_float = |s: &Sample| matches!(s.value, SampleValue::Float(_));
        let kind = is_float(&samples[start]);
        let mut end = start;
        while end < samples.len()
            && end - start < BLOCK_CHUNK_SAMPLES
            && is_float(&samples[end]) == kind
        {
            end += 1;
        }
        let run = &samples[start..end];
        if let Some((enc, bytes)) = chunk::encode_samples(run) {
            out.push((
                run[0].ts_nanos,
                run[run.len() - 1].ts_nanos,
                enc,
                run.len() as u32,
                bytes,
            ));
        }
        start = end;
    }
}

/// Write `frozen` as a raw block under `dir`; returns the opened block and its chunk count,
/// or `None` when there was nothing to write.
pub(super) fn write(dir: &Path, frozen: &Frozen) -> Result<Option<(Arc<BlockSource>, usize)>> {
    if frozen.len() == 0 {
        return Ok(None);
    }
    let mut w = block::Writer::new(dir, Resolution::Raw)?;
    let mut samples = Vec::new();
    let mut encoded = Vec::new();
    let mut chunks = 0;
    for (labels, taken) in &frozen.series {
        samples.clear();
        encoded.clear();
        taken.decode_all_once(&mut samples)?;
        encode_chunks(&samples, &mut encoded);
        let data: Vec<ChunkData<'_>> = encoded
            .iter()
            .map(|(mint, maxt, enc, n, bytes)| ChunkData {
                mint_nanos: *mint,
                maxt_nanos: *maxt,
                encoding: *enc,
                num_samples: *n,
                bytes,
            })
            .collect();
        chunks += data.len();
        w.add_series(&**labels, &data)?;
    }
    let meta = w.finish()?;
    let block = Block::open(&dir.join(&meta.id))?;
    Ok(Some((Arc::new(BlockSource { block }), chunks)))
}

impl BlockSource {
    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.block.meta().overlaps(mint, maxt)
    }

    fn matching_labels(&self, matchers: &[Matcher]) -> Result<Vec<Labels>> {
        Ok(self
            .block
            .select(matchers)?
            .into_iter()
            .map(|(l, _)| l)
            .collect())
    }
}

impl Source for BlockSource {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        out: &mut Vec<(Labels, Vec<Sample>)>,
    ) -> Result<()> {
        if !self.overlaps(mint, maxt) {
            return Ok(());
        }
        for (labels, metas) in self.block.select(matchers)? {
            let chunks = self.read_overlapping(&metas, mint, maxt)?;
            if chunks.is_empty() {
                continue;
            }
            let mut samples = Vec::with_capacity(capacity(&chunks));
            for c in &chunks {
                chunk::decode_range(c.encoding, &c.bytes, mint, maxt, &mut samples)?;
            }
            if !samples.is_empty() {
                out.push((labels, samples));
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
        let (mint, maxt) = (read.mint, read.maxt);
        if !self.overlaps(mint, maxt) {
            return Ok(());
        }
        let decode = |(labels, metas): (Labels, Vec<crate::block::ChunkMeta>)| -> Result<Option<(Labels, SeriesData)>> {
            Ok(self.decode_metas(&metas, read)?.map(|d| (labels, d)))
        };
        for r in crate::par::map(self.block.select(matchers)?, decode) {
            out.extend(r?);
        }
        Ok(())
    }

    fn plan_floats(
        self: Arc<Self>,
        matchers: &[Matcher],
        read: &FloatRead,
        out: &mut Vec<(Labels, Pending)>,
    ) -> Result<()> {
        if !self.overlaps(read.mint, read.maxt) {
            return Ok(());
        }
        let read = *read;
        for (labels, metas) in self.block.select(matchers)? {
            // Only series with a chunk in the range: the rest would decode to nothing.
            if !metas
                .iter()
                .any(|m| m.maxt_nanos >= read.mint && m.mint_nanos <= read.maxt)
            {
                continue;
            }
            let me = Arc::clone(&self);
            let job: Pending = Box::new(move || {
                Ok(me
                    .decode_metas(&metas, &read)?
                    .unwrap_or(SeriesData::Floats(Vec::new())))
            });
            out.push((labels, job));
        }
        Ok(())
    }

    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self.block.label_names()?);
        }
        let mut v: Vec<String> = self
            .matching_labels(matchers)?
            .iter()
            .flat_map(|l| l.iter().map(|(n, _)| n.to_owned()).collect::<Vec<_>>())
            .collect();
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        if !self.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() {
            return Ok(self.block.label_values(name)?);
        }
        let mut v: Vec<String> = self
            .matching_labels(matchers)?
            .iter()
            .filter_map(|l| l.get(name).map(str::to_owned))
            .collect();
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }
}
