//! Mergeable log-linear (base-2 exponential) latency histogram over integer nanoseconds.
