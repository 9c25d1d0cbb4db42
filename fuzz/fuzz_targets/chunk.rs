//! Fuzz every chunk decoder: the first byte picks the encoding, the rest is the chunk.
//! Decoding must end (with samples or an error) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&enc, bytes)) = data.split_first() else {
        return;
    };
    if let Ok(it) = gmc_tsdb::chunk::decode_iter(enc % 5, bytes) {
        // A corrupt count can claim up to 2^64 samples; each yields at most one error.
        for s in it.take(1 << 20) {
            if s.is_err() {
                break;
            }
        }
    }
    // The bulk float decoders (whole, from a time through the seek table, last value)
    // must end as cleanly on any input. What they return is checked on valid chunks only
    // (below): a corrupt seek table cannot be told from a good one without decoding the
    // whole stream, which is what it is there to avoid (block chunks are CRC-checked
    // before they are decoded).
    let enc = enc % 5;
    let mut whole = Vec::new();
    let _ = gmc_tsdb::chunk::decode_floats(enc, bytes, &mut whole);
    let _ = gmc_tsdb::chunk::last_float(enc, bytes);
    if let Some(&(mint, _)) = whole.get(whole.len() / 2) {
        let mut tail = Vec::new();
        let _ = gmc_tsdb::chunk::decode_floats_from(enc, bytes, mint, &mut tail);
    }
    // Round trip whatever decoded cleanly as floats.
    if let Ok(it) = gmc_tsdb::chunk::decode_iter(gmc_tsdb::chunk::ENCODING_PACKED, bytes) {
        let samples: Result<Vec<_>, _> = it.take(1 << 16).collect();
        if let Ok(samples) = samples {
            let floats: Vec<(i64, f64)> = samples
                .iter()
                .filter_map(|s| match s.value {
                    gmc_tsdb::SampleValue::Float(v) => Some((s.ts_nanos, v)),
                    gmc_tsdb::SampleValue::Histogram(_) => None,
                })
                .collect();
            let increasing = floats.windows(2).all(|w| w[0].0 < w[1].0);
            if increasing {
                let (e, b) = gmc_tsdb::chunk::encode_floats(&floats);
                let back: Vec<(i64, u64)> = gmc_tsdb::chunk::decode_all(e, &b)
                    .map(|v| {
                        v.into_iter()
                            .filter_map(|s| match s.value {
                                gmc_tsdb::SampleValue::Float(x) => Some((s.ts_nanos, x.to_bits())),
                                gmc_tsdb::SampleValue::Histogram(_) => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let want: Vec<(i64, u64)> = floats.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                assert_eq!(back, want, "re-encoded chunk does not round trip");
                // On that valid chunk, decoding from a time (through its seek table when it
                // has one) returns a suffix of the chunk holding every sample from that time.
                let times = [floats.get(floats.len() / 2), floats.last()];
                for mint in times.into_iter().flatten().map(|s| s.0) {
                    let mut tail = Vec::new();
                    gmc_tsdb::chunk::decode_floats_from(e, &b, mint, &mut tail)
                        .expect("a valid chunk decodes from any time");
                    let got: Vec<(i64, u64)> =
                        tail.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                    assert!(want.ends_with(&got), "decode from a time is not a suffix");
                    let from = want.iter().filter(|s| s.0 >= mint).count();
                    assert!(got.len() >= from, "samples after mint lost");
                }
            }
        }
    }
});
