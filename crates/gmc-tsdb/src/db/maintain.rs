//! One maintenance round: compaction (raw blocks, then rollup blocks), rollups of raw
//! blocks not rolled up yet, retention per resolution. Serialized with flushes.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{blocks, Inner};
use crate::block::{Block, BlockMeta, Resolution};
use crate::downsample::job;
use crate::error::{Error, Result};
use crate::{compact, retention};

/// What [`super::Db::maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Blocks written by compaction.
    pub compacted: usize,
    /// Rollup blocks written (1m and 1h count separately).
    pub rollup_blocks: usize,
    /// Blocks deleted by retention (age or size).
    pub deleted: usize,
}

/// Compaction levels of rollup blocks: they are small, so they merge up to a week and
/// a year of 1-hour rollups stays at about 52 blocks.
const ROLLUP_MAX_RANGE: Duration = Duration::from_secs(7 * 24 * 3600);

impl Inner {
    pub(super) fn maintain(&self) -> Result<MaintenanceReport> {
        let _one = self.flush_lock.lock();
        let mut report = MaintenanceReport::default();
        let mut first_err: Option<Error> = None;
        let mut keep = |r: Result<()>| {
            if let Err(e) = r {
                tracing::warn!(error = %e, "maintenance step failed");
                first_err.get_or_insert(e);
            }
        };

        let range = self.config.head_flush_range;
        // Raw levels up to 48 ranges (24 h at the default 30 min), so 30 days of raw data
        // stay around 30 blocks.
        let raw = compact::Planner::new(&[range, range * 3, range * 12, range * 48])
            .for_resolutions(&[Resolution::Raw]);
        let rollups = compact::Planner::new(&[range, range * 12, ROLLUP_MAX_RANGE])
            .for_resolutions(&job::RESOLUTIONS);
        for planner in [raw, rollups] {
            keep(match compact::run(&self.dir, &planner) {
                Ok(Some(r)) => {
                    tracing::info!(created = %r.created.id, merged = r.deleted.len(), "Blocks compacted.");
                    report.compacted += 1;
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            });
        }
        if report.compacted > 0 {
            keep(self.reopen_blocks());
        }

        // Rollups before retention, so a raw block about to expire is rolled up first.
        let now = gmc_model::now_nanos();
        let policy = self.config.retention_policy();
        match self.roll_up(now, &policy) {
            Ok(n) => {
                report.rollup_blocks = n;
                if n > 0 {
                    keep(self.reopen_blocks());
                }
            }
            Err(e) => {
                self.metrics.rollup_failures.fetch_add(1, Relaxed);
                keep(Err(e));
            }
        }

        match retention::apply(&self.dir, now, &policy) {
            Ok(deleted) => {
                if !deleted.is_empty() {
                    tracing::info!(blocks = deleted.len(), "Retention deleted blocks.");
                    report.deleted = deleted.len();
                    keep(self.reopen_blocks());
                }
            }
            Err(e) => keep(Err(e.into())),
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn reopen_blocks(&self) -> Result<()> {
        let b = blocks::open_all(&self.dir)?;
        *self.blocks.write() = b;
        Ok(())
    }

    /// Plan and run the rollup jobs; returns the number of rollup blocks written.
    fn roll_up(&self, now: i64, policy: &retention::Policy) -> Result<usize> {
        let current = self.blocks.read().clone();
        let metas: Vec<BlockMeta> = current.iter().map(|b| b.block().meta().clone()).collect();
        // Windows still receiving data (the head, a head whose flush failed) wait.
        let mut horizon = now;
        if let Some((lo, _)) = self.head.time_range() {
            horizon = horizon.min(lo);
        }
        for f in self.frozen.read().iter() {
            horizon = horizon.min(f.mint);
        }
        let keep_since = |res: Resolution| {
            let age = i64::try_from(policy.age(res).as_nanos()).unwrap_or(i64::MAX);
            now.saturating_sub(age)
        };
        let raws: Vec<&Block> = current
            .iter()
            .map(|b| b.block())
            .filter(|b| b.meta().resolution == Resolution::Raw)
            .collect();
        let mut written = 0;
        for j in job::plan(&metas, horizon, keep_since) {
            let metas = job::run(&self.dir, &raws, &j)?;
            for m in &metas {
                tracing::info!(id = %m.id, resolution = ?m.resolution, series = m.stats.series, "Rollup block written.");
            }
            written += metas.len();
            self.metrics
                .rollup_blocks
                .fetch_add(metas.len() as u64, Relaxed);
        }
        Ok(written)
    }
}
