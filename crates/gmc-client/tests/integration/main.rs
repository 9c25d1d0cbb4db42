//! Integration tests of gmc-client in one binary: allocation-free recording, exposition
//! round trips (gmc-wire's parser, promtool, protobuf), push to a local listener
//! (remote_write and JSON), the drop counter, the `/metrics` server and the dependency
//! rule (no tokio/hyper/axum).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// The counting global allocator has to implement the unsafe `GlobalAlloc` trait; it only
// forwards to `System` and bumps a thread-local counter.
#![allow(unsafe_code)]

mod alloc;
mod deps;
mod exposition;
#[cfg(feature = "http")]
mod http;
mod push;

/// A registry with one of everything, recorded into.
pub fn sample_registry() -> gmc_client::Registry {
    let r = gmc_client::Registry::new();
    let c = r
        .counter_with(
            "orders",
            "Orders sent.",
            &[("venue", "XNAS"), ("note", "a \"quoted\"\\ value\nx")],
        )
        .unwrap();
    c.add(41);
    c.inc();
    r.counter("plain_events_total", "Events.").unwrap().add(7);
    r.gauge_with("queue_depth", "Depth.", &[("queue", "in")])
        .unwrap()
        .set(-12);
    r.gauge_f64("temperature_celsius", "Temp.")
        .unwrap()
        .set(21.625);
    r.fixed_gauge_with("exposure_usd", "Exposure.", &[("desk", "d1")], 2)
        .unwrap()
        .set(-123_456);
    r.fixed_adder_with("pnl_usd", "PnL.", &[("desk", "d1")], 8)
        .unwrap()
        .add(150_000_000);
    let h = r
        .histogram_with("rtt_seconds", "Round trip.", &[("venue", "XNAS")])
        .unwrap();
    for v in [0u64, 1, 70, 300, 5_000, 5_001, 1 << 20, 3_000_000_000] {
        h.record(v);
    }
    r.histogram("idle_seconds", "Never recorded.").unwrap();
    r
}
