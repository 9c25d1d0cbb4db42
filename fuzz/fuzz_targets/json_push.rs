//! Fuzz the JSON push decoder. Must never panic (deep nesting included).
#![no_main]

use gmc_wire::{json_push, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = json_push::decode(data, 1_700_000_000_000_000_000, &Limits::default());
});
