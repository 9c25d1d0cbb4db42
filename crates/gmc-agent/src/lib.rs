//! gmc's host agent: node_exporter-compatible collectors for Linux (/proc and /sys), a
//! durable on-disk spool, and delivery to a center by remote_write (`gmc agent`), or
//! in-process collection inside `gmc serve`.
//!
//! # Series identity: agent versus in-process collection
//!
//! `gmc agent` labels its series `job="node"`, `instance=<hostname>` (as a Prometheus scrape
//! of node_exporter would). `gmc serve` collects its own host with the same collectors but
//! labels them `job="gmc_host"` ([`IN_PROCESS_JOB`]), `instance=<hostname>`. The `job`
//! label differs, so an agent pushing from the same host never writes into the same series
//! as the in-process collection, and each shows in dashboards as its own job. The agent's
//! job is fixed to [`AGENT_JOB`] (there is no flag to change it), so the two cannot be made
//! to collide by configuration.
//!
//! # Delivery
//!
//! Each cycle's snapshot is encoded as a remote_write request and appended to the
//! [`spool::Spool`] before anything is sent; a sender thread delivers the spool in order and
//! moves its cursor only after a 2xx answer. See [`spool`] for the format and guarantees.

pub mod agent;
pub mod collector;
pub mod error;
pub mod http;
pub mod metrics;
pub mod push;
pub mod snapshot;
pub mod spool;

pub use agent::{Agent, Config, Stop};
pub use collector::{Collectors, ProcessSelector};
pub use error::{Error, Result};
pub use snapshot::{Family, Kind, Sample, Snapshot};

/// `job` label of series pushed by `gmc agent`.
pub const AGENT_JOB: &str = "node";
/// `job` label of series collected by `gmc serve` for its own host.
pub const IN_PROCESS_JOB: &str = "gmc_host";

/// The host name used as the default `instance` label (`uname -n`).
pub fn hostname() -> String {
    collector::hostname()
}
