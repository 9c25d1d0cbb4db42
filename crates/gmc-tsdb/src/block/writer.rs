//! Writes one immutable block crash-safely: everything goes to `<parent>/<id>.tmp/`, each
//! file is fsynced, then the directory is renamed to `<parent>/<id>` and the parent fsynced.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use gmc_model::series_hash;

use super::chunks::{ChunkData, SegmentWriter, DEFAULT_SEGMENT_BYTES};
use super::meta::{BlockMeta, Compaction, Resolution, Stats, META_VERSION};
use super::{fsync_dir, new_block_id, Error, Result};
use crate::index::{self, ChunkMeta, LabelPairs, PackedLabels};

/// Builds a block. Series may be added in any order: chunk bytes are written to the
/// segment files as they arrive, and only labels and chunk metas are buffered; `finish`
/// sorts series by labels (the index needs sorted series ids) and writes the index.
/// Adding the same label set twice merges the chunk lists.
///
/// Dropping a writer without `finish` removes its `.tmp` directory (best effort; a crash
/// leaves it behind for [`super::open_all`] to delete).
#[derive(Debug)]
pub struct Writer {
    parent: PathBuf,
    id: String,
    tmp: PathBuf,
    segments: Option<SegmentWriter>,
    /// Labels packed (two allocations per series, not two per label: a flush buffers
    /// every head series here).
    series: Vec<(PackedLabels, Vec<ChunkMeta>)>,
    /// Label hash → indexes into `series` (labels are stored once, in `series`: a flush
    /// writes every head series, so a second copy here would be a large transient cost).
    by_hash: HashMap<u64, Vec<usize>>,
    resolution: Resolution,
    compaction: Compaction,
    stats: Stats,
    mint_nanos: i64,
    maxt_nanos: i64,
    finished: bool,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

impl Writer {
    /// Start a level-1 block of `resolution` under `parent` (created if missing).
    pub fn new(parent: &Path, resolution: Resolution) -> Result<Writer> {
        Self::with_segment_bytes(parent, resolution, DEFAULT_SEGMENT_BYTES)
    }

    /// Like [`Writer::new`] with a custom segment size (tests use small ones).
    pub fn with_segment_bytes(
        parent: &Path,
        resolution: Resolution,
        segment_bytes: u64,
    ) -> Result<Writer> {
        let id = new_block_id();
        let tmp = parent.join(format!("{id}.tmp"));
        let chunks = tmp.join("chunks");
        std::fs::create_dir_all(&chunks).map_err(io("create block dir", &chunks))?;
        Ok(Writer {
            parent: parent.to_owned(),
            compaction: Compaction {
                level: 1,
                sources: vec![id.clone()],
            },
            id,
            tmp,
            segments: Some(SegmentWriter::new(chunks, segment_bytes)),
            series: Vec::new(),
            by_hash: HashMap::new(),
            resolution,
            stats: Stats::default(),
            mint_nanos: i64::MAX,
            maxt_nanos: i64::MIN,
            finished: false,
        })
    }

    /// Mark the block as the result of a compaction (or rollup) of blocks `sources`.
    pub fn set_compaction(&mut self, level: u32, mut sources: Vec<String>) {
        sources.sort();
        sources.dedup();
        self.compaction = Compaction { level, sources };
    }

    /// The id the block will have.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Add a series with its chunks (any order; chunk metas are sorted by time).
    /// A series without chunks is ignored.
    pub fn add_series(
        &mut self,
        labels: &(impl LabelPairs + ?Sized),
        chunks: &[ChunkData<'_>],
    ) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let seg = self.segments.as_mut().ok_or(Error::InvalidChunk {
            reason: "writer already finished",
        })?;
        let mut metas = Vec::with_capacity(chunks.len());
        for c in chunks {
            if c.mint_nanos > c.maxt_nanos {
                return Err(Error::InvalidChunk {
                    reason: "chunk mint after maxt",
                });
            }
            let chunk_ref = seg.append(c)?;
            metas.push(ChunkMeta {
                mint_nanos: c.mint_nanos,
                maxt_nanos: c.maxt_nanos,
                chunk_ref,
            });
            self.stats.chunks += 1;
            self.stats.samples += u64::from(c.num_samples);
            self.mint_nanos = self.mint_nanos.min(c.mint_nanos);
            self.maxt_nanos = self.maxt_nanos.max(c.maxt_nanos);
        }
        let slots = self.by_hash.entry(series_hash(labels.pairs())).or_default();
        match slots
            .iter()
            .find(|&&i| self.series[i].0.pairs().eq(labels.pairs()))
        {
            Some(&i) => self.series[i].1.extend(metas),
            None => {
                let packed = PackedLabels::new(labels).ok_or(Error::InvalidChunk {
                    reason: "label set over 4 GiB",
                })?;
                slots.push(self.series.len());
                self.series.push((packed, metas));
            }
        }
        Ok(())
    }

    /// Write index and `meta.json`, fsync everything and atomically publish the block.
    /// Returns its meta. A block without series is refused ([`Error::Empty`]).
    pub fn finish(mut self) -> Result<BlockMeta> {
        if self.series.is_empty() {
            return Err(Error::Empty);
        }
        if let Some(seg) = self.segments.take() {
            seg.finish()?;
        }
        let mut series = std::mem::take(&mut self.series);
        self.by_hash = HashMap::new();
        series.sort_by(|a, b| a.0.pairs().cmp(b.0.pairs()));
        for (_, metas) in &mut series {
            metas.sort();
        }
        self.stats.series = series.len() as u64;
        index::write(&self.tmp.join("index"), &series)?;
        let meta = BlockMeta {
            version: META_VERSION,
            id: self.id.clone(),
            mint_nanos: self.mint_nanos,
            maxt_nanos: self.maxt_nanos,
            stats: self.stats,
            compaction: self.compaction.clone(),
            resolution: self.resolution,
        };
        let meta_path = self.tmp.join("meta.json");
        let json = serde_json::to_vec_pretty(&meta).map_err(|source| Error::Meta {
            path: meta_path.clone(),
            source,
        })?;
        let mut f =
            std::fs::File::create(&meta_path).map_err(io("create block meta", &meta_path))?;
        f.write_all(&json)
            .map_err(io("write block meta", &meta_path))?;
        f.sync_all().map_err(io("fsync block meta", &meta_path))?;
        fsync_dir(&self.tmp.join("chunks"))?;
        fsync_dir(&self.tmp)?;
        let dest = self.parent.join(&self.id);
        std::fs::rename(&self.tmp, &dest).map_err(io("publish block", &dest))?;
        // The rename is durable only once the parent directory is synced.
        fsync_dir(&self.parent)?;
        self.finished = true;
        Ok(meta)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a leftover `.tmp` is also removed by the next `open_all`.
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
