//! gmc's embedded time-series store: a write-ahead log, an in-memory head of compressed
//! chunks with an inverted index, immutable blocks, and a querier merging both.
//!
//! Writes go WAL first, then head, so an acknowledged append is durable under
//! [`Config::sync`] ([`Db::append`]). Reads go through [`Db::querier`]: raw samples with
//! [`Querier::select`], 1-minute and 1-hour rollups (kept longer than raw data) with
//! [`Querier::select_rollup`] at the resolution [`Db::resolution_for`] picks.
//!
//! # Chunks
//!
//! Outside [`chunk`], a chunk is opaque: `(mint_nanos, maxt_nanos, encoding: u8, bytes)`.
//! Every reader (querier, compaction, rollups) decodes with
//! [`chunk::decode_iter`] (lazy, yields [`Sample`]s), [`chunk::decode_floats`] (fastest,
//! `(ts, f64)` pairs) or [`chunk::decode_all`]; writers encode with
//! [`chunk::encode_floats`], [`chunk::encode_histograms`] or [`chunk::encode_samples`]
//! (samples sorted by strictly increasing timestamp). Decoders never panic on corrupt
//! bytes. Formats: `docs/format/chunk.md`; the WAL: `docs/format/wal.md`.
//!
//! ```
//! use gmc_tsdb::{chunk, Sample, SampleValue};
//! let (enc, bytes) = chunk::encode_floats(&[(1_000_000_000, 1.0), (2_000_000_000, f64::NAN)]);
//! let mut out = Vec::new();
//! chunk::decode_floats(enc, &bytes, &mut out).unwrap();
//! assert_eq!(out[0], (1_000_000_000, 1.0));
//! let s: Vec<Sample> = chunk::decode_iter(enc, &bytes).unwrap().collect::<Result<_, _>>().unwrap();
//! assert!(matches!(s[1].value, SampleValue::Float(v) if v.is_nan()));
//! ```

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
pub mod inplace;
pub mod metrics;
pub mod par;
pub mod querier;
pub mod retention;
pub mod wal;

pub use config::{Config, SyncPolicy};
pub use db::{AppendReport, Db, FlushReport, MaintenanceReport, Rejection, ReleaseHook};
pub use error::{Error, Result, SampleError};
pub use metrics::Metrics;
pub use querier::{FloatSeries, LazySeries, Querier, Sample, SampleValue, Selected, Series};
