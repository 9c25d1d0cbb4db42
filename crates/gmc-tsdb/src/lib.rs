//! gmc embedded time-series store (under construction in this change).
