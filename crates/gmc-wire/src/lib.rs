//! Ingest codecs of gmc: Prometheus remote_write 1.0, text exposition 0.0.4 and
//! OpenMetrics 1.0, InfluxDB line protocol and JSON push, each decoding into a
//! [`gmc_model::WriteBatch`] plus a [`DecodeReport`] of what was rejected and why.
//!
//! Every decoder follows the same contract: a payload whose framing is broken, or that
//! breaks a request-wide [`Limits`] entry, fails as a whole with an [`Error`]; a series that
//! is merely invalid is left out, counted by [`Error::reason`] and quoted in the report, so
//! the HTTP layer can store the good series and still answer 400 with a readable message.
//! Timestamps in the batch are `i64` nanoseconds since the epoch.
//!
//! ```
//! use gmc_model::WriteBatch;
//! use gmc_wire::{remote_write, Limits};
//!
//! // A client encodes a batch as a snappy-compressed remote_write request …
//! let mut batch = WriteBatch::new();
//! let mut s = batch.series();
//! s.label("__name__", "orders_total");
//! s.label("venue", "XNAS");
//! s.float(1_700_000_000_000_000_000, 42.0);
//! s.finish()?;
//! let body = remote_write::encode_write_request(&batch);
//!
//! // … and the server decompresses (capped) and decodes it without copying labels.
//! let limits = Limits::default();
//! let buf = remote_write::decompress(&body, &limits)?;
//! let decoded = remote_write::decode(&buf, &limits)?;
//! assert_eq!(decoded.report.samples_accepted, 1);
//! let series = decoded.batch.get(0).unwrap();
//! assert_eq!(series.label("venue"), Some("XNAS"));
//! assert_eq!(series.floats[0].ts_nanos, 1_700_000_000_000_000_000);
//!
//! // Text formats work the same way; bad lines are reported, good ones kept.
//! let text = "# TYPE up gauge\nup{job=\"api\"} 1\nbroken{ 1\n";
//! let opts = gmc_wire::exposition::Options::new(gmc_wire::exposition::Format::Prometheus, 0);
//! let decoded = gmc_wire::exposition::decode(text, &opts, &limits)?;
//! assert_eq!(decoded.batch.len_series(), 1);
//! assert_eq!(decoded.report.rejected["syntax"], 1);
//! assert!(decoded.report.messages[0].starts_with("line 3:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
// Codecs narrow integers on purpose in a few places; each such spot says why.
#![warn(clippy::cast_possible_truncation)]

mod error;
pub mod exposition;
pub mod influx;
pub mod json_push;
mod names;
pub mod remote_write;
mod report;
pub mod snappy;

pub use error::{Error, Result};
pub use report::{DecodeReport, Decoded, Limits, MAX_MESSAGES};
