//! gmc-client: instrumentation for trading services at the cost of a plain store.
//!
//! * **Handles** ([`Counter`], [`Gauge`], [`GaugeF64`], [`Histogram`], [`FixedGauge`],
//!   [`FixedAdder`]) are resolved once from a [`Registry`]; recording on a handle never
//!   hashes, locks or allocates. Counters, adders and histograms write per-thread cells
//!   (see `arena`): one thread-local load, then a relaxed load + store on a cache line no
//!   other thread writes. Collection sums the threads' cells. A thread that records for
//!   its whole life (an engine loop) can bind a handle to itself once more
//!   ([`Counter::local`], [`Histogram::local`]) and record at a fixed address.
//! * **Histograms** are schema-6 log-linear histograms over integer nanoseconds
//!   ([`gmc_histogram`]): every quantile within 0.5416 %, exact count/sum/min/max, exact
//!   merges, exported as Prometheus native histograms and as classic `le` buckets. A
//!   histogram whose name ends in `_seconds` takes nanoseconds and is exposed in seconds
//!   (classic counts stay exact; native buckets move to the seconds bucket holding their
//!   upper bound); any other histogram is exposed in the unit it records.
//! * **Spans**: [`Histogram::start`] reads the TSC (`quanta`) and records the elapsed
//!   nanoseconds on drop; [`clock`] exposes the raw ticks for stage latencies.
//! * **Dynamic labels** ([`Family`]) for cold paths: a lock-free read-mostly table, a
//!   per-family cardinality cap and an `__overflow__` series.
//! * **Export** off the hot path: [`Registry::encode`] (text 0.0.4, OpenMetrics, protobuf
//!   with native histograms; [`Format::negotiate`] reads `Accept`), the `http` feature's
//!   `http::MetricsServer`, and [`push::Pusher`] (remote_write or JSON, background thread,
//!   bounded buffer with a drop counter). [`process::register`] adds `process_*` metrics.
//! * [`trading`]: order lifecycle, stage latencies, venue connectivity, PnL and exposure.
//!
//! ```
//! use gmc_client::{Format, Registry};
//!
//! let registry = Registry::new();
//! // Resolve once, at start-up …
//! let orders = registry.counter_with("orders_sent", "Orders sent.", &[("venue", "XNAS")])?;
//! let latency = registry.histogram_with(
//!     "order_ack_latency_seconds",
//!     "Send to ack.",
//!     &[("venue", "XNAS")],
//! )?;
//! // … record on the hot path.
//! orders.inc();
//! latency.record(12_500);
//! {
//!     let _span = latency.start(); // records the elapsed ns when dropped
//! }
//! // Cold path with dynamic labels, capped at 100 distinct value sets.
//! let rejects = registry.counter_family("order_rejects", "Rejects.", &["reason"], 100)?;
//! rejects.with(&["price_band"]).inc();
//!
//! let text = registry.encode_to_string(Format::Prometheus);
//! assert!(text.contains("orders_sent_total{venue=\"XNAS\"} 1"));
//! assert!(text.contains("order_ack_latency_seconds_count{venue=\"XNAS\"} 2"));
//! let h = latency.snapshot();
//! assert_eq!(h.min(), Some(h.min().unwrap().min(12_500)));
//! # Ok::<(), gmc_client::Error>(())
//! ```

pub mod arena;
pub mod clock;
mod counter;
mod error;
pub mod exposition;
mod family;
mod gauge;
mod histogram;
#[cfg(feature = "http")]
pub mod http;
mod local;
pub mod metrics;
pub mod process;
mod protobuf;
pub mod push;
mod registry;
pub mod trading;

pub use arena::{prepare_thread, set_slot_capacity};
pub use counter::Counter;
pub use error::{Error, Result};
pub use exposition::Format;
pub use family::{Family, FamilyMetric, OVERFLOW_VALUE};
pub use gauge::{FixedAdder, FixedGauge, Gauge, GaugeF64};
pub use histogram::{Histogram, Span};
pub use local::{CounterHandle, HistogramHandle, LocalCounter, LocalHistogram};
pub use registry::{FamilySnapshot, Kind, ObservedCounter, Registry, SeriesSnapshot, Value};
