//! Fuzz the remote_write ingest path: raw protobuf, and snappy + protobuf as the server
//! receives it. Must never panic, whatever the bytes.
#![no_main]

use gmc_wire::{remote_write, snappy, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_body_bytes: 1 << 20,
        max_samples: 100_000,
        ..Limits::default()
    };
    if let Ok(d) = remote_write::decode(data, &limits) {
        // Whatever decoded must encode again.
        let _ = remote_write::encode_write_request(&d.batch);
    }
    if let Ok(buf) = snappy::decompress_capped(data, limits.max_body_bytes) {
        let _ = remote_write::decode(&buf, &limits);
    }
});
