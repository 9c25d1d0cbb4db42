//! Fuzz the WAL frame parser and record decoder: any bytes must yield records or errors,
//! never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whole-segment style: walk frames until the first error.
    let mut pos = 0;
    while let Ok(Some((typ, payload, n))) = gmc_tsdb::wal::record::parse_frame(&data[pos..]) {
        let _ = gmc_tsdb::wal::record::decode(typ, payload);
        pos += n;
    }
    // Payload style: the first byte picks the record type, the rest is the payload.
    if let Some((&typ, payload)) = data.split_first() {
        let _ = gmc_tsdb::wal::record::decode((typ % 6) | (typ & 0x80), payload);
    }
});
