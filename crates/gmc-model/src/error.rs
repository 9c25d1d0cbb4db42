//! Errors raised while validating labels, samples and matchers.

/// Coarse class of an error; only the HTTP edge maps classes to status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input is wrong and will never succeed as sent.
    BadInput,
    /// A configured limit was reached.
    Limit,
    /// The thing asked for does not exist.
    NotFound,
    /// A dependency is temporarily unavailable; retrying may succeed.
    Unavailable,
    /// A bug or an unexpected failure inside gmc.
    Internal,
}

/// Validation errors of the data model.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A series has no `__name__` label.
    #[error("series has no metric name (__name__ label)")]
    MissingMetricName,
    /// A label name is empty.
    #[error("empty label name")]
    EmptyLabelName,
    /// The same label name appears twice in one series.
    #[error("duplicate label name {name:?}")]
    DuplicateLabelName {
        /// The repeated name.
        name: String,
    },
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*` (or the metric name rule).
    #[error("invalid label name {name:?}")]
    InvalidLabelName {
        /// The offending name (truncated to 128 bytes).
        name: String,
    },
    /// A metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {name:?}")]
    InvalidMetricName {
        /// The offending name (truncated to 128 bytes).
        name: String,
    },
    /// Too many labels on one series.
    #[error("series has {count} labels, the limit is {limit}")]
    TooManyLabels {
        /// Labels found.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// A label name is longer than allowed.
    #[error("label name of {len} bytes exceeds the limit of {limit}")]
    LabelNameTooLong {
        /// Length in bytes.
        len: usize,
        /// Configured limit.
        limit: usize,
    },
    /// A label value is longer than allowed.
    #[error("value of label {name:?} has {len} bytes, the limit is {limit}")]
    LabelValueTooLong {
        /// Label name.
        name: String,
        /// Length in bytes.
        len: usize,
        /// Configured limit.
        limit: usize,
    },
    /// A regular expression in a matcher does not compile or is too large.
    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern (truncated).
        pattern: String,
        /// Why it was refused.
        reason: String,
    },
    /// A histogram's spans and bucket counts disagree.
    #[error("invalid histogram: {reason}")]
    InvalidHistogram {
        /// What is inconsistent.
        reason: &'static str,
    },
}

impl Error {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::TooManyLabels { .. }
            | Error::LabelNameTooLong { .. }
            | Error::LabelValueTooLong { .. } => ErrorClass::Limit,
            _ => ErrorClass::BadInput,
        }
    }

    /// A short stable reason string, used as the `reason` label of rejection counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingMetricName => "missing_metric_name",
            Error::EmptyLabelName => "empty_label_name",
            Error::DuplicateLabelName { .. } => "duplicate_label_name",
            Error::InvalidLabelName { .. } => "invalid_label_name",
            Error::InvalidMetricName { .. } => "invalid_metric_name",
            Error::TooManyLabels { .. } => "too_many_labels",
            Error::LabelNameTooLong { .. } => "label_name_too_long",
            Error::LabelValueTooLong { .. } => "label_value_too_long",
            Error::InvalidRegex { .. } => "invalid_regex",
            Error::InvalidHistogram { .. } => "invalid_histogram",
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Cut a user-provided string for inclusion in an error message.
pub(crate) fn truncate_for_error(s: &str) -> String {
    const MAX: usize = 128;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
