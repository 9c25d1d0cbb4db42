//! End-to-end tests: the real `gmc` binary on 127.0.0.1 with a temporary data dir, driven
//! over HTTP, next to real peers (Prometheus, promtool) where the machine has them.
//! One test binary keeps linking fast (ripgrep's habit).

// Test helpers outside #[test] functions may panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent;
mod agent_node_exporter;
mod bad_input;
mod harness;
mod ingest;
mod peers;
mod promql;
mod reliability;
mod scrape;
