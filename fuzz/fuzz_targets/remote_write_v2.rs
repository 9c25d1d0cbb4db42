//! Fuzz the remote write 2.0 decoder: raw protobuf, and snappy + protobuf as the server
//! receives it. Must never panic, whatever the bytes; a request decoded in parts (as the
//! server does for large ones) must succeed or fail exactly like the whole, with the same
//! series in the same order.
#![no_main]

use gmc_wire::remote_write::v2;
use gmc_wire::{snappy, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_body_bytes: 1 << 20,
        max_samples: 100_000,
        ..Limits::default()
    };
    let whole = v2::decode(data, &limits);
    let parts = 2 + data.first().map_or(0, |b| usize::from(b % 3));
    let split = v2::split(data, parts, &limits).and_then(|layout| {
        let mut keys = Vec::new();
        for p in layout.parts {
            let d = v2::decode_part(&layout.symbols, p, &limits)?;
            keys.extend(d.batch.iter().map(|s| s.key.to_vec()));
        }
        Ok(keys)
    });
    match (&whole, &split) {
        (Ok(d), Ok(keys)) => {
            let want: Vec<Vec<u8>> = d.batch.iter().map(|s| s.key.to_vec()).collect();
            assert_eq!(&want, keys);
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("split decode disagrees with the whole: {whole:?} vs {split:?}"),
    }
    if let Ok(d) = whole {
        // Whatever decoded must encode again, and decode to the same series.
        let body = v2::encode_request(&d.batch);
        let buf = snappy::decompress_capped(&body, 64 << 20).expect("own encoding");
        let again = v2::decode(&buf, &Limits::default()).expect("own encoding decodes");
        assert_eq!(again.batch.len_series(), d.batch.len_series());
    }
    if let Ok(buf) = snappy::decompress_capped(data, limits.max_body_bytes) {
        let _ = v2::decode(&buf, &limits);
    }
});
