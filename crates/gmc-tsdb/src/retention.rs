//! Retention: deletes blocks whose whole time range is older than the retention age of
//! their resolution, then the oldest blocks while the total size exceeds a byte budget.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::block::{self, BlockMeta, Resolution};

const DAY: u64 = 24 * 3600;

/// How long each resolution is kept, and an optional size budget over all blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Age limit of raw blocks (default 30 days).
    pub raw: Duration,
    /// Age limit of 1-minute rollups (default 180 days).
    pub one_minute: Duration,
    /// Age limit of 1-hour rollups (default 2 years = 730 days).
    pub one_hour: Duration,
    /// Budget for the total size of all blocks, in bytes (`None`: unlimited).
    pub max_bytes: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            raw: Duration::from_secs(30 * DAY),
            one_minute: Duration::from_secs(180 * DAY),
            one_hour: Duration::from_secs(730 * DAY),
            max_bytes: None,
        }
    }
}

impl Policy {
    /// Age limit of `res`.
    pub fn age(&self, res: Resolution) -> Duration {
        match res {
            Resolution::Raw => self.raw,
            Resolution::OneMinute => self.one_minute,
            Resolution::OneHour => self.one_hour,
        }
    }

    /// The resolution a query starting at `mint_nanos` with evaluation step `step` should
    /// read at time `now_nanos`: the coarsest whose bucket is at most `step` and whose
    /// retention reaches back to `mint_nanos`; if none with a small enough bucket reaches
    /// back that far, the finest that does (coarser data beats none); if none does, the
    /// longest kept.
    pub fn resolution_for(&self, step: Duration, mint_nanos: i64, now_nanos: i64) -> Resolution {
        let covers = |r: Resolution| {
            let age = i64::try_from(self.age(r).as_nanos()).unwrap_or(i64::MAX);
            mint_nanos >= now_nanos.saturating_sub(age)
        };
        let fine_enough = Resolution::for_step(step);
        let all = Resolution::ALL;
        all.into_iter()
            .rev()
            .find(|r| *r <= fine_enough && covers(*r))
            .or_else(|| all.into_iter().find(|r| covers(*r)))
            .unwrap_or_else(|| {
                all.into_iter()
                    .max_by_key(|r| self.age(*r))
                    .unwrap_or(Resolution::OneHour)
            })
    }
}

/// Why a block was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every sample is older than the resolution's retention age.
    Age,
    /// The total size exceeded `max_bytes`; oldest blocks go first.
    Size,
}

/// One block chosen for deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// Block id.
    pub id: String,
    /// Resolution of the block.
    pub resolution: Resolution,
    /// Bytes the block occupied.
    pub size_bytes: u64,
    /// Why.
    pub reason: Reason,
}

/// Decide what to delete among `blocks` (meta and size in bytes) at time `now_nanos`.
/// Age first; then, if the rest still exceeds `max_bytes`, blocks in order of increasing
/// `maxt` (ties: resolution raw first, then id) until it fits.
pub fn plan(blocks: &[(BlockMeta, u64)], now_nanos: i64, policy: &Policy) -> Vec<Deleted> {
    let mut out = Vec::new();
    let mut kept: Vec<&(BlockMeta, u64)> = Vec::new();
    for b in blocks {
        let age = i64::try_from(policy.age(b.0.resolution).as_nanos()).unwrap_or(i64::MAX);
        if b.0.maxt_nanos < now_nanos.saturating_sub(age) {
            out.push(Deleted {
                id: b.0.id.clone(),
                resolution: b.0.resolution,
                size_bytes: b.1,
                reason: Reason::Age,
            });
        } else {
            kept.push(b);
        }
    }
    if let Some(max) = policy.max_bytes {
        kept.sort_by(|a, b| {
            (a.0.maxt_nanos, a.0.resolution, &a.0.id).cmp(&(
                b.0.maxt_nanos,
                b.0.resolution,
                &b.0.id,
            ))
        });
        let mut total: u64 = kept.iter().map(|b| b.1).sum();
        for b in kept {
            if total <= max {
                break;
            }
            total -= b.1;
            out.push(Deleted {
                id: b.0.id.clone(),
                resolution: b.0.resolution,
                size_bytes: b.1,
                reason: Reason::Size,
            });
        }
    }
    out
}

/// Bytes of all files under `dir`.
pub fn dir_size_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Apply `policy` to the blocks under `parent` at time `now_nanos`: reads each block's
/// `meta.json` and size, deletes what [`plan`] selects (crash-safely, see
/// [`block::delete`]) and returns it. Directories whose meta does not parse are skipped.
pub fn apply(parent: &Path, now_nanos: i64, policy: &Policy) -> block::Result<Vec<Deleted>> {
    let mut blocks: Vec<(BlockMeta, u64)> = Vec::new();
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    let rd = std::fs::read_dir(parent).map_err(|source| block::Error::Io {
        op: "list blocks",
        path: parent.to_owned(),
        source,
    })?;
    for e in rd.flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !block::is_block_id(&name) {
            continue;
        }
        match BlockMeta::read(&e.path()) {
            Ok(m) => {
                blocks.push((m, dir_size_bytes(&e.path())));
                dirs.push((name, e.path()));
            }
            Err(err) => {
                tracing::warn!(dir = ?e.path(), error = %err, "Skipping unreadable block in retention.");
            }
        }
    }
    let chosen = plan(&blocks, now_nanos, policy);
    for d in &chosen {
        if let Some((_, path)) = dirs.iter().find(|(n, _)| *n == d.id) {
            block::delete(path)?;
            tracing::info!(id = %d.id, reason = ?d.reason, bytes = d.size_bytes, "Deleted block by retention.");
        }
    }
    Ok(chosen)
}
