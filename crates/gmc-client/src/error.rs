//! Errors of metric registration and export. Recording never fails, so none of these
//! appear on a hot path; they are small and cheap to match on.

use gmc_model::ErrorClass;

/// What went wrong while registering a metric or exporting.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A metric or label name breaks Prometheus' naming rules.
    #[error("invalid {what} name {name:?}")]
    InvalidName {
        /// `"metric"` or `"label"`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// A family of that name exists with another type or other label names.
    #[error("metric {name:?} is already registered with another type or label names")]
    Conflict {
        /// The family name.
        name: String,
    },
    /// Label values given do not match the family's label names.
    #[error("metric {name:?} takes {expected} label values, got {got}")]
    LabelCount {
        /// The family name.
        name: String,
        /// Number of label names of the family.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// The per-thread slot arenas are full (see [`crate::set_slot_capacity`]).
    #[error("metric storage is full: {needed} more slots needed, capacity {capacity}")]
    SlotsExhausted {
        /// Slots the new metric needs.
        needed: usize,
        /// Configured capacity.
        capacity: usize,
    },
    /// The slot capacity can only be set before the first metric is created.
    #[error("slot capacity is already fixed at {capacity}")]
    CapacityFixed {
        /// The capacity in force.
        capacity: usize,
    },
    /// A push or listen URL is not `http://host:port[/path]`.
    #[error("unsupported URL {url:?}: only http://host:port[/path] is supported")]
    InvalidUrl {
        /// The URL given.
        url: String,
    },
    /// Network I/O failed.
    #[error("I/O error talking to {peer}")]
    Io {
        /// Address or URL of the peer.
        peer: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The receiver answered with a non-2xx status.
    #[error("receiver answered HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
}

impl Error {
    /// The stable class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidName { .. }
            | Error::Conflict { .. }
            | Error::LabelCount { .. }
            | Error::InvalidUrl { .. }
            | Error::CapacityFixed { .. } => ErrorClass::BadInput,
            Error::SlotsExhausted { .. } => ErrorClass::Limit,
            Error::Io { .. } | Error::HttpStatus { .. } => ErrorClass::Unavailable,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
