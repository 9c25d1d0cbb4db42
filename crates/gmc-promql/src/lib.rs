//! PromQL evaluation over gmc-tsdb with Prometheus 3.x semantics.
//!
//! Parsing is done by the `promql-parser` crate; evaluation is ours. [`Engine`] runs
//! instant and range queries against a [`gmc_tsdb::Db`], in milliseconds like Prometheus
//! (the store keeps nanoseconds; the conversion happens at the storage boundary).
//!
//! ```no_run
//! # fn demo(db: &gmc_tsdb::Db) -> gmc_promql::Result<()> {
//! use gmc_promql::{Engine, EngineOptions, Value};
//! let engine = Engine::new(EngineOptions::default());
//! let res = engine.instant_query(db, "sum by (job) (rate(http_requests_total[5m]))", 1_700_000_000_000)?;
//! if let Value::Vector(v) = res.value {
//!     println!("{} series", v.len());
//! }
//! # Ok(()) }
//! ```

mod engine;
mod error;
mod eval;
mod hist;
mod value;

pub use engine::{parse, parse_duration_ms, parse_selector, Engine, EngineOptions};
pub use error::{Error, Result};
pub use value::{InstantSample, PointValue, QueryResult, QueryStats, RangeSeries, Value};
