//! Fuzz the InfluxDB line-protocol decoder at every precision. Must never panic.
#![no_main]

use gmc_wire::{influx, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for p in ["ns", "us", "ms", "s"] {
        if let Some(precision) = influx::Precision::parse(p) {
            let _ = influx::decode(
                text,
                precision,
                1_700_000_000_000_000_000,
                &Limits::default(),
            );
        }
    }
});
