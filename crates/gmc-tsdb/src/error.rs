//! Errors of the storage engine: whole-request failures (`Error`) and per-series
//! rejections (`SampleError`) that refuse one series of a batch but not the batch.

use std::path::PathBuf;

use gmc_model::ErrorClass;

/// Failures of the storage engine.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed; nothing of the current request was acknowledged.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done (`"write wal segment"`, `"fsync"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The I/O cause.
        #[source]
        source: std::io::Error,
    },
    /// The disk (or quota) is full; writes resume once space returns.
    #[error("disk full while {op} {path:?}")]
    DiskFull {
        /// What was being done.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
    },
    /// A chunk's bytes do not decode.
    #[error("corrupt chunk (encoding {encoding}): {reason}")]
    CorruptChunk {
        /// Chunk encoding byte.
        encoding: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// A chunk encoding byte is not known to this version.
    #[error("unknown chunk encoding {encoding}")]
    UnknownEncoding {
        /// The encoding byte.
        encoding: u8,
    },
    /// A WAL record does not decode (its checksum matched, so this is a bug or a
    /// format-version mismatch).
    #[error("corrupt WAL record in {path:?} at offset {offset}: {reason}")]
    CorruptRecord {
        /// Segment file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// Offending field.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The store is closed (or a previous fatal error closed it).
    #[error("the store is closed")]
    Closed,
    /// The block layer failed (writing, opening or reading a block).
    #[error("block layer: {0}")]
    Block(#[source] Box<crate::block::Error>),
    /// Compacting blocks failed.
    #[error("compaction: {0}")]
    Compaction(#[source] Box<crate::compact::Error>),
    /// A matcher or other model value is invalid.
    #[error(transparent)]
    Model(#[from] gmc_model::Error),
}

impl Error {
    /// The class of this error (see `gmc_model::ErrorClass`).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } | Error::DiskFull { .. } | Error::Closed => ErrorClass::Unavailable,
            Error::InvalidConfig { .. } => ErrorClass::BadInput,
            Error::Model(e) => e.class(),
            Error::CorruptChunk { .. }
            | Error::UnknownEncoding { .. }
            | Error::CorruptRecord { .. } => ErrorClass::Internal,
            Error::Block(e) => e.class(),
            Error::Compaction(e) => e.class(),
        }
    }

    /// Wrap an I/O error, mapping `ENOSPC`/`EDQUOT` to [`Error::DiskFull`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::DiskFull { op, path },
            _ if source.kind() == std::io::ErrorKind::StorageFull => Error::DiskFull { op, path },
            _ => Error::Io { op, path, source },
        }
    }
}

impl From<crate::block::Error> for Error {
    fn from(e: crate::block::Error) -> Self {
        match e {
            // One typed error for a full disk, wherever it happens.
            crate::block::Error::Io { op, path, source }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSPC) | Some(libc::EDQUOT)
                ) || source.kind() == std::io::ErrorKind::StorageFull =>
            {
                Error::DiskFull { op, path }
            }
            other => Error::Block(Box::new(other)),
        }
    }
}

impl From<crate::compact::Error> for Error {
    fn from(e: crate::compact::Error) -> Self {
        match e {
            crate::compact::Error::Block(b) => Error::Block(Box::new(b)),
            other => Error::Compaction(Box::new(other)),
        }
    }
}

/// Why one series of a batch was refused; the rest of the batch is unaffected.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SampleError {
    /// A sample is older than the out-of-order window allows.
    #[error("sample at {ts_nanos} ns is older than the out-of-order window ({window_nanos} ns behind the newest sample at {newest_nanos} ns)")]
    OutOfOrderSample {
        /// The refused timestamp.
        ts_nanos: i64,
        /// The series' newest timestamp.
        newest_nanos: i64,
        /// Configured window.
        window_nanos: i64,
    },
    /// A sample repeats a stored timestamp with a different value.
    #[error("duplicate sample at {ts_nanos} ns with a different value")]
    DuplicateSample {
        /// The timestamp.
        ts_nanos: i64,
    },
    /// Creating the series would exceed the global active-series limit.
    #[error("active series limit of {limit} reached")]
    SeriesLimit {
        /// Configured limit.
        limit: usize,
    },
    /// Creating the series would exceed the per-metric series limit.
    #[error("metric {metric:?} reached its limit of {limit} series")]
    MetricSeriesLimit {
        /// Metric name.
        metric: String,
        /// Configured limit.
        limit: usize,
    },
}

impl SampleError {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            SampleError::OutOfOrderSample { .. } | SampleError::DuplicateSample { .. } => {
                ErrorClass::BadInput
            }
            SampleError::SeriesLimit { .. } | SampleError::MetricSeriesLimit { .. } => {
                ErrorClass::Limit
            }
        }
    }

    /// A short stable reason, used as the `reason` label of rejection counters.
    pub fn reason(&self) -> &'static str {
        match self {
            SampleError::OutOfOrderSample { .. } => "out_of_order",
            SampleError::DuplicateSample { .. } => "duplicate_sample",
            SampleError::SeriesLimit { .. } => "series_limit",
            SampleError::MetricSeriesLimit { .. } => "metric_series_limit",
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
