//! gmc's embedded time-series store: a write-ahead log, an in-memory head of compressed
//! chunks with an inverted index, immutable blocks, and a querier merging both.
//!
//! Writes go WAL first, then head, so an acknowledged append is durable under
//! [`Config::sync`]. Chunks are opaque `(mint, maxt, encoding, bytes)` outside [`chunk`];
//! every reader decodes them with [`chunk::decode_iter`].

#[doc(hidden)]
pub mod bench_support;
pub mod block;
pub mod chunk;
pub mod compact;
pub mod config;
pub mod db;
pub mod downsample;
pub mod error;
pub mod head;
pub mod index;
pub mod metrics;
pub mod querier;
pub mod retention;
pub mod wal;

pub use config::{Config, SyncPolicy};
pub use db::{AppendReport, Db, FlushReport, Rejection};
pub use error::{Error, Result, SampleError};
pub use metrics::Metrics;
pub use querier::{Querier, Sample, SampleValue, Series};
