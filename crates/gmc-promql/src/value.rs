//! Query results: scalars, strings, instant vectors and range vectors (matrices), with
//! timestamps in milliseconds as Prometheus reports them.

use std::sync::Arc;
use std::time::Duration;

use gmc_model::{Histogram, Labels};

/// The value of one sample in a result.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// A float.
    Float(f64),
    /// A (float) native histogram: `gmc_model::Histogram` already keeps absolute `f64`
    /// bucket counts, so it doubles as Prometheus' `FloatHistogram`.
    Histogram(Arc<Histogram>),
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// Series labels.
    pub labels: Labels,
    /// Evaluation timestamp, milliseconds.
    pub t_ms: i64,
    /// Value.
    pub value: PointValue,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeSeries {
    /// Series labels.
    pub labels: Labels,
    /// Float points `(t_ms, value)` in time order.
    pub floats: Vec<(i64, f64)>,
    /// Histogram points `(t_ms, histogram)` in time order.
    pub histograms: Vec<(i64, Arc<Histogram>)>,
}

/// A query result value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar.
    Scalar {
        /// Timestamp, milliseconds.
        t_ms: i64,
        /// Value.
        v: f64,
    },
    /// A string.
    String {
        /// Timestamp, milliseconds.
        t_ms: i64,
        /// Value.
        s: String,
    },
    /// An instant vector.
    Vector(Vec<InstantSample>),
    /// A range vector (all range queries, and instant queries of range expressions).
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// Prometheus' `resultType` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Statistics of one query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    /// Samples read from the store and processed (Prometheus' `totalQueryableSamples`).
    pub samples_scanned: u64,
    /// Most samples held in memory at once (Prometheus' `peakSamples`).
    pub peak_samples: u64,
    /// Wall time of parsing and evaluation.
    pub eval_time: Duration,
    /// Series selected from the store, over all selectors.
    pub series_selected: u64,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The value.
    pub value: Value,
    /// Annotations (Prometheus warnings and infos), as `PromQL warning: ...` strings.
    pub warnings: Vec<String>,
    /// Statistics.
    pub stats: QueryStats,
}
