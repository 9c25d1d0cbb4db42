//! Instrumentation library for trading services: counters, gauges and histograms at the cost of an atomic add.
