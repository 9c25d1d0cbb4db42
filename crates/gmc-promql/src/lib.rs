//! PromQL evaluation over gmc-tsdb with Prometheus 3.x semantics.
