//! HTTP routes, one module per concern; `router` assembles them.

pub(crate) mod ingest;
pub(crate) mod prom_api;
pub(crate) mod rest;
pub(crate) mod status;
pub(crate) mod time_param;
