//! `meta.json` of a block: identity, time range, statistics, compaction lineage and
//! resolution. JSON so operators can read it; versioned like every on-disk format.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Current `meta.json` format version.
pub const META_VERSION: u32 = 1;

/// Sample resolution of a block: raw data or a rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Resolution {
    /// Samples as ingested.
    #[serde(rename = "raw")]
    Raw,
    /// One-minute rollups.
    #[serde(rename = "1m")]
    OneMinute,
    /// One-hour rollups.
    #[serde(rename = "1h")]
    OneHour,
}

impl Resolution {
    /// Bucket width in nanoseconds (0 for raw).
    pub fn step_nanos(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::OneMinute => 60 * gmc_model::NANOS_PER_SEC,
            Resolution::OneHour => 3600 * gmc_model::NANOS_PER_SEC,
        }
    }

    /// Every resolution, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Raw, Resolution::OneMinute, Resolution::OneHour];

    /// The coarsest resolution whose bucket is at most `step` (raw below one minute).
    /// For a choice that also checks retention, see
    /// [`crate::retention::Policy::resolution_for`].
    pub fn for_step(step: std::time::Duration) -> Resolution {
        let step = i64::try_from(step.as_nanos()).unwrap_or(i64::MAX);
        Resolution::ALL
            .into_iter()
            .rev()
            .find(|r| r.step_nanos() <= step)
            .unwrap_or(Resolution::Raw)
    }
}

/// Counts of a block's contents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of series.
    pub series: u64,
    /// Number of samples (sum of the chunks' sample counts).
    pub samples: u64,
    /// Number of chunks.
    pub chunks: u64,
}

/// Compaction lineage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    /// 1 for a block written from the head, parent level + 1 after each compaction.
    pub level: u32,
    /// Ids of the level-1 blocks whose data this block holds (itself for level 1).
    pub sources: Vec<String>,
}

/// Contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockMeta {
    /// Format version of the block (index, chunks and this file).
    pub version: u32,
    /// Block id: a ULID (creation time + randomness), also the directory name.
    pub id: String,
    /// Smallest sample timestamp, nanoseconds.
    pub mint_nanos: i64,
    /// Largest sample timestamp, nanoseconds (inclusive).
    pub maxt_nanos: i64,
    /// Content counts.
    pub stats: Stats,
    /// Compaction lineage.
    pub compaction: Compaction,
    /// Raw data or rollup resolution.
    pub resolution: Resolution,
}

impl BlockMeta {
    /// Read and parse `<dir>/meta.json`.
    pub fn read(dir: &Path) -> Result<BlockMeta> {
        let path = dir.join("meta.json");
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            op: "read block meta",
            path: path.clone(),
            source,
        })?;
        let meta: BlockMeta = serde_json::from_slice(&bytes).map_err(|source| Error::Meta {
            path: path.clone(),
            source,
        })?;
        if meta.version != META_VERSION {
            return Err(Error::UnsupportedVersion {
                path,
                version: meta.version,
            });
        }
        Ok(meta)
    }

    /// Whether the block's time range overlaps `[mint, maxt]`.
    pub fn overlaps(&self, mint_nanos: i64, maxt_nanos: i64) -> bool {
        self.mint_nanos <= maxt_nanos && mint_nanos <= self.maxt_nanos
    }
}
