//! End-to-end tests: the real `gmc` binary on 127.0.0.1 with a temporary data dir, driven
//! over HTTP, next to real peers (Prometheus, promtool) where the machine has them.
//! One test binary keeps linking fast (ripgrep's habit).

mod bad_input;
mod harness;
mod ingest;
mod peers;
mod reliability;
mod scrape;
