//! Hooks for the criterion benches: the head's append path without the WAL, to separate
//! in-memory cost from WAL encoding and fsync. Not part of the supported API.

use std::sync::Arc;

use gmc_model::WriteBatch;

use crate::config::Config;
use crate::head::{Head, Settings};
use crate::metrics::Metrics;

/// A bare head with default settings.
#[derive(Debug)]
pub struct HeadOnly {
    head: Head,
}

impl HeadOnly {
    /// A new, empty head.
    pub fn new() -> Self {
        HeadOnly {
            head: Head::new(
                Settings::from_config(&Config::default()),
                Arc::new(Metrics::default()),
            ),
        }
    }

    /// Validate and store `batch` (no WAL); returns accepted float samples.
    pub fn append(&mut self, batch: &WriteBatch<'_>) -> usize {
        let plan = self.head.prepare(batch, i64::MIN);
        self.head.commit(batch, &plan, 0);
        self.head.set_metadata(batch.metadata());
        plan.accepted(batch).0
    }
}

impl Default for HeadOnly {
    fn default() -> Self {
        Self::new()
    }
}
