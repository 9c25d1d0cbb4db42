//! Errors of the ingest codecs: whole-request failures (returned as `Err`) and per-series
//! or per-line failures (counted in a [`crate::DecodeReport`] by their [`Error::reason`]).

use gmc_model::ErrorClass;

/// What went wrong while decoding a payload.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The (decompressed) body is larger than the configured cap.
    #[error("body of {len} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Size found (for snappy: the size the header announces).
        len: u64,
        /// Configured limit in bytes.
        limit: usize,
    },
    /// The snappy block is corrupt or truncated.
    #[error("invalid snappy block: {source}")]
    Snappy {
        /// The decoder's complaint.
        #[source]
        source: snap::Error,
    },
    /// The protobuf framing is broken (truncated, bad varint, wrong wire type…).
    #[error("invalid protobuf at byte {offset}: {reason}")]
    Protobuf {
        /// Byte offset inside the decompressed message.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A string field is not valid UTF-8.
    #[error("invalid UTF-8 in {field} at byte {offset}")]
    InvalidUtf8 {
        /// Which field (`label name`, `label value`, …).
        field: &'static str,
        /// Byte offset of the string inside the (decompressed) body.
        offset: usize,
    },
    /// The request carries more samples than allowed.
    #[error("request has more than {limit} samples")]
    TooManySamples {
        /// Configured limit.
        limit: usize,
    },
    /// A line of a text format does not parse.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An OpenMetrics exposition does not end with `# EOF`.
    #[error("OpenMetrics exposition does not end with \"# EOF\"")]
    MissingEof,
    /// The JSON document does not parse.
    #[error("invalid JSON: {source}")]
    Json {
        /// The parser's complaint (carries line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A JSON push object is missing a field or has one of the wrong type.
    #[error("{what}")]
    InvalidObject {
        /// What is wrong.
        what: String,
    },
    /// A metric value is not a number (JSON `null`, string, array…).
    #[error("metric {name:?}: {reason}")]
    InvalidValue {
        /// The flattened metric name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Nested JSON metrics go deeper than allowed.
    #[error("metric {name:?} is nested deeper than {limit} levels")]
    TooDeep {
        /// The flattened name prefix where the limit hit.
        name: String,
        /// Configured limit.
        limit: usize,
    },
    /// A remote write 2.0 series refers to a symbol the request's table does not have,
    /// or its label references are not name/value pairs.
    #[error("{what}")]
    InvalidSymbolRef {
        /// What is wrong, naming the series by its index.
        what: String,
    },
    /// A series failed label or histogram validation.
    #[error("series {series}: {source}")]
    InvalidSeries {
        /// Short rendering of the series (metric name and position or line).
        series: String,
        /// The validation error.
        #[source]
        source: gmc_model::Error,
    },
}

impl Error {
    /// The class of this error, for the HTTP edge.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::BodyTooLarge { .. } | Error::TooManySamples { .. } | Error::TooDeep { .. } => {
                ErrorClass::Limit
            }
            Error::InvalidSeries { source, .. } => source.class(),
            _ => ErrorClass::BadInput,
        }
    }

    /// A short stable reason string, used as the `reason` label of rejection counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::Snappy { .. } => "invalid_snappy",
            Error::Protobuf { .. } => "invalid_protobuf",
            Error::InvalidUtf8 { .. } => "invalid_utf8",
            Error::TooManySamples { .. } => "too_many_samples",
            Error::Syntax { .. } => "syntax",
            Error::MissingEof => "missing_eof",
            Error::Json { .. } => "invalid_json",
            Error::InvalidObject { .. } => "invalid_object",
            Error::InvalidValue { .. } => "invalid_value",
            Error::TooDeep { .. } => "too_deep",
            Error::InvalidSymbolRef { .. } => "invalid_symbol_ref",
            Error::InvalidSeries { source, .. } => source.reason(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Cut user input for inclusion in an error message (at a char boundary).
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 96;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_reasons_are_stable() {
        let e = Error::TooManySamples { limit: 3 };
        assert_eq!(e.class(), ErrorClass::Limit);
        assert_eq!(e.reason(), "too_many_samples");
        let e = Error::InvalidSeries {
            series: "x".into(),
            source: gmc_model::Error::MissingMetricName,
        };
        assert_eq!(e.reason(), "missing_metric_name");
        assert_eq!(e.class(), ErrorClass::BadInput);
        assert_eq!(
            e.to_string(),
            "series x: series has no metric name (__name__ label)"
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(100);
        let t = truncate(&s);
        assert!(t.len() < s.len());
        assert!(t.ends_with('…'));
    }
}
