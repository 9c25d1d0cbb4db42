//! Fuzz the remote_write ingest path: raw protobuf, and snappy + protobuf as the server
//! receives it. Must never panic, whatever the bytes; a request split into parts (as the
//! server does for large ones) must succeed or fail exactly like the whole.
#![no_main]

use gmc_wire::{remote_write, snappy, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_body_bytes: 1 << 20,
        max_samples: 100_000,
        ..Limits::default()
    };
    let whole = remote_write::decode(data, &limits);
    let parts = 2 + data.first().map_or(0, |b| usize::from(b % 3));
    let first_err = remote_write::split(data, parts)
        .into_iter()
        .map(|p| remote_write::decode_part(p, &limits))
        .try_fold(0usize, |n, d| d.map(|d| n + d.batch.len_series()));
    match (&whole, &first_err) {
        (Ok(d), Ok(n)) => assert_eq!(d.batch.len_series(), *n),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("split decode disagrees with the whole: {whole:?} vs {first_err:?}"),
    }
    if let Ok(d) = whole {
        // Whatever decoded must encode again.
        let _ = remote_write::encode_write_request(&d.batch);
    }
    if let Ok(buf) = snappy::decompress_capped(data, limits.max_body_bytes) {
        let _ = remote_write::decode(&buf, &limits);
    }
});
