//! Reference matching engine for gmc: price-time priority limit order books
//! ([`book`]), a synthetic bursty order flow ([`flow`]) and the engine that connects them
//! and reports every outcome to an observer, instrumented with gmc-client ([`engine`]),
//! answering the simulated gateway with FIX execution reports ([`gateway`]).

pub mod book;
pub mod engine;
pub mod flow;
pub mod gateway;
