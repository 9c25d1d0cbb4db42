//! Errors of the agent: collector reads, the spool, and delivery to the center.

use std::path::PathBuf;

use gmc_model::ErrorClass;

/// What can go wrong in the agent.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A /proc or /sys file could not be read (missing, permission, vanished process).
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A /proc or /sys file did not have the expected shape.
    #[error("unexpected format in {path}: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: &'static str,
    },
    /// A spool file operation failed.
    #[error("spool I/O on {path}")]
    SpoolIo {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record does not fit in the spool even when it is empty.
    #[error("record of {len} bytes exceeds the spool bound of {limit} bytes")]
    RecordTooLarge {
        /// Encoded size.
        len: u64,
        /// `spool_max_bytes`.
        limit: u64,
    },
    /// A spooled record passed its CRC but its payload does not decompress (written by a
    /// different build, or damaged in memory before the CRC): it can never be sent.
    #[error("spool record {seq} does not decompress")]
    CorruptRecord {
        /// Its sequence number.
        seq: u64,
    },
    /// The center answered with a status that retrying will not fix (4xx other than 429).
    #[error("the center refused the write with status {status}")]
    Rejected {
        /// HTTP status.
        status: u16,
    },
    /// The center is unreachable, timed out or answered 5xx/429.
    #[error("the center is unavailable: {reason}")]
    Unavailable {
        /// Transport error or status.
        reason: String,
    },
    /// The /metrics listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is unusable.
    #[error("invalid value for `{key}`: {reason}")]
    Config {
        /// Flag or key name.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The stable class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorClass::NotFound
            }
            Error::Read { .. } | Error::SpoolIo { .. } | Error::Bind { .. } => {
                ErrorClass::Unavailable
            }
            Error::Unavailable { .. } => ErrorClass::Unavailable,
            Error::Parse { .. } | Error::CorruptRecord { .. } => ErrorClass::Internal,
            Error::RecordTooLarge { .. } => ErrorClass::Limit,
            Error::Rejected { .. } | Error::Config { .. } => ErrorClass::BadInput,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
