//! Errors of query parsing and evaluation, each mapped to Prometheus' `errorType`.

use std::time::Duration;

/// A failed query.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The query does not parse; the message carries the parser's position when it has one.
    #[error("{0}")]
    Parse(String),
    /// The query parses but is invalid (wrong argument type, bad parameter, ...).
    #[error("{0}")]
    BadData(String),
    /// The range query's step is zero or negative.
    #[error(
        "zero or negative query resolution step widths are not accepted. Try a positive integer"
    )]
    ZeroStep,
    /// The range query ends before it starts.
    #[error("end timestamp must not be before start time")]
    EndBeforeStart,
    /// The range query would return more points per series than allowed.
    #[error("exceeded maximum resolution of {max} points per timeseries. Try decreasing the query resolution (?step=XX)")]
    TooManyPoints {
        /// The configured limit.
        max: usize,
    },
    /// The query failed while running (duplicate label sets, many-to-one without group_*, ...).
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples in memory than `max_samples`.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query ran longer than the timeout.
    #[error("query timed out in query execution after {0:?}")]
    Timeout(Duration),
    /// The caller canceled the query.
    #[error("query was canceled in query execution")]
    Canceled,
    /// The store failed to answer.
    #[error("storage error: {0}")]
    Storage(String),
}

impl Error {
    /// Prometheus' `errorType` for the HTTP envelope.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Parse(_)
            | Error::BadData(_)
            | Error::ZeroStep
            | Error::EndBeforeStart
            | Error::TooManyPoints { .. } => "bad_data",
            Error::Execution(_) | Error::TooManySamples | Error::Storage(_) => "execution",
            Error::Timeout(_) => "timeout",
            Error::Canceled => "canceled",
        }
    }

    /// Coarse class for callers that map classes to status codes.
    pub fn class(&self) -> gmc_model::ErrorClass {
        use gmc_model::ErrorClass;
        match self {
            Error::Parse(_)
            | Error::BadData(_)
            | Error::ZeroStep
            | Error::EndBeforeStart
            | Error::TooManyPoints { .. } => ErrorClass::BadInput,
            Error::TooManySamples | Error::Timeout(_) => ErrorClass::Limit,
            Error::Execution(_) => ErrorClass::BadInput,
            Error::Canceled => ErrorClass::Unavailable,
            Error::Storage(_) => ErrorClass::Internal,
        }
    }
}

impl From<gmc_tsdb::Error> for Error {
    fn from(e: gmc_tsdb::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
