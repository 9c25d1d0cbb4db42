//! Property tests of the chunk codecs: bit-exact round trips for arbitrary floats
//! (NaN payloads, ±Inf, the stale marker, -0.0) and arbitrary increasing timestamps.

use proptest::prelude::*;

use super::*;

fn float_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::from_bits(gmc_model::STALE_NAN_BITS)),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        (-1_000_000i64..1_000_000).prop_map(|m| m as f64 / 100.0),
        // Decimals with different exponents in one chunk (the chunk uses the largest).
        (-1_000_000_000_000_000i64..1_000_000_000_000_000, 0i32..9)
            .prop_map(|(m, e)| m as f64 / 10f64.powi(e)),
        (0u32..1000).prop_map(f64::from),
    ]
}

fn samples_strategy() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (
        any::<i64>().prop_map(|t| t / 4),
        prop::collection::vec(
            (
                prop_oneof![
                    1i64..3,
                    Just(1_000_000_000),
                    999_000_000i64..1_001_000_001,
                    1i64..i64::MAX / 4096
                ],
                float_strategy(),
            ),
            0..300,
        ),
    )
        .prop_map(|(start, steps)| {
            let mut t = start;
            steps
                .into_iter()
                .map_while(|(d, v)| {
                    t = t.checked_add(d)?;
                    Some((t, v))
                })
                .collect()
        })
}

fn bits(v: &[(i64, f64)]) -> Vec<(i64, u64)> {
    v.iter().map(|&(t, x)| (t, x.to_bits())).collect()
}

fn decoded_bits(enc: u8, b: &[u8]) -> Vec<(i64, u64)> {
    decode_all(enc, b)
        .unwrap()
        .into_iter()
        .map(|s| match s.value {
            SampleValue::Float(v) => (s.ts_nanos, v.to_bits()),
            SampleValue::Histogram(_) => panic!("histogram in float chunk"),
        })
        .collect()
}

proptest! {
    #[test]
    fn last_float_is_the_last_decoded_value(samples in samples_strategy()) {
        let want = samples.last().map(|s| s.1.to_bits());
        let (enc, bytes) = encode_floats(&samples);
        prop_assert_eq!(last_float(enc, &bytes).unwrap().map(f64::to_bits), want);
        let mut a = XorAppender::new();
        for &(t, v) in &samples {
            a.append(t, v);
        }
        prop_assert_eq!(
            last_float(ENCODING_XOR, &a.bytes()).unwrap().map(f64::to_bits),
            want
        );
    }

    #[test]
    fn packed_round_trips_bit_exactly(s in samples_strategy()) {
        let (enc, b) = encode_floats(&s);
        prop_assert_eq!(decoded_bits(enc, &b), bits(&s));
    }

    #[test]
    fn xor_appender_round_trips_bit_exactly(s in samples_strategy()) {
        let mut a = XorAppender::new();
        for &(t, v) in s.iter().take(u16::MAX as usize) {
            a.append(t, v);
        }
        prop_assert_eq!(decoded_bits(ENCODING_XOR, &a.bytes()), bits(&s));
    }

    #[test]
    fn decoders_never_panic(enc in 0u8..5, b in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(it) = decode_iter(enc, &b) {
            for s in it.take(100_000) {
                if s.is_err() {
                    break;
                }
            }
        }
    }
}

#[test]
fn unit_change_reencodes_appender() {
    let mut a = XorAppender::new();
    a.append(5_000_000_000, 1.0);
    a.append(6_000_000_000, 2.0);
    a.append(6_500_000_123, 3.0);
    assert_eq!(
        decoded_bits(ENCODING_XOR, &a.bytes()),
        bits(&[
            (5_000_000_000, 1.0),
            (6_000_000_000, 2.0),
            (6_500_000_123, 3.0)
        ])
    );
}

#[test]
fn sample_count_reads_the_header_of_every_encoding() {
    let floats: Vec<(i64, f64)> = (0..300)
        .map(|i| (i * 1_000_000_000, i as f64 * 0.5))
        .collect();
    let (enc, bytes) = encode_floats(&floats);
    assert_eq!(sample_count(enc, &bytes).unwrap(), 300);
    let mut a = XorAppender::new();
    for &(t, v) in &floats[..77] {
        a.append(t, v);
    }
    assert_eq!(sample_count(ENCODING_XOR, &a.bytes()).unwrap(), 77);
    let h = Histogram::default();
    let hs: Vec<(i64, &Histogram)> = (0..9).map(|i| (i * 1_000_000_000, &h)).collect();
    let (enc, bytes) = encode_histograms(&hs);
    assert_eq!(sample_count(enc, &bytes).unwrap(), 9);
    assert!(sample_count(99, &bytes).is_err());
}

/// Fuzzer find (chunk target): the timestamp-run fast path must agree with the
/// per-sample decoder on corrupt input too (no panic, same samples).
#[test]
fn fuzz_crash_dcd70333_decodes_without_panic() {
    replay_chunk_fuzz_input(&[
        21, 5, 0, 1, 1, 6, 0, 61, 0, 0, 5, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 20,
        0, 12, 12, 12, 12, 12, 0, 44, 0, 0, 32, 255, 12, 12, 12, 12, 12, 12, 12, 44, 12, 12, 0, 2,
        255, 255, 255, 255, 255, 255, 127,
    ]);
}

/// Timestamps ~i64::MAX apart overflowed the step snapping of the timestamp encoder.
#[test]
fn fuzz_crash_327cf435_huge_timestamp_delta_round_trips() {
    replay_chunk_fuzz_input(&[
        0x38, 0xdb, 0x0a, 0x00, 0x00, 0xee, 0x24, 0x2a, 0x00, 0x00, 0x00, 0xc4, 0x2d, 0xda, 0x68,
        0xfb, 0xee, 0x02, 0x2a, 0xfa, 0xfa, 0x02, 0x24, 0x00, 0x00,
    ]);
    // The encoder on its own, with deltas at the edge of i64.
    for pair in [
        [(i64::MIN, 1.0), (i64::MAX, 2.0)],
        [(-1, 1.0), (i64::MAX, 2.0)],
        [(0, 1.0), (i64::MAX - 3, 2.0)],
    ] {
        let (e, b) = encode_floats(&pair);
        let back: Vec<(i64, f64)> = decode_all(e, &b)
            .unwrap()
            .into_iter()
            .filter_map(|s| match s.value {
                SampleValue::Float(x) => Some((s.ts_nanos, x)),
                SampleValue::Histogram(_) => None,
            })
            .collect();
        assert_eq!(back, pair);
    }
}

/// What the `chunk` fuzz target does with one input: decode with every decoder, compare
/// the bulk and iterator decodes, and round-trip clean float output.
fn replay_chunk_fuzz_input(data: &[u8]) {
    let (&enc, bytes) = data.split_first().unwrap();
    if let Ok(it) = decode_iter(enc % 5, bytes) {
        for s in it.take(1 << 20) {
            if s.is_err() {
                break;
            }
        }
    }
    let iter: Option<Vec<(i64, u64)>> = decode_iter(ENCODING_PACKED, bytes).ok().and_then(|it| {
        it.take(1 << 16)
            .map(|s| {
                s.ok().and_then(|s| match s.value {
                    SampleValue::Float(v) => Some((s.ts_nanos, v.to_bits())),
                    SampleValue::Histogram(_) => None,
                })
            })
            .collect()
    });
    let mut bulk = Vec::new();
    let bulk = decode_floats(ENCODING_PACKED, bytes, &mut bulk)
        .ok()
        .map(|()| {
            bulk.iter()
                .map(|&(t, v)| (t, v.to_bits()))
                .collect::<Vec<_>>()
        });
    if let (Some(a), Some(b)) = (&iter, &bulk) {
        assert_eq!(a, b);
    }
    if let Some(floats) = iter {
        let floats: Vec<(i64, f64)> = floats
            .iter()
            .map(|&(t, b)| (t, f64::from_bits(b)))
            .collect();
        if floats.windows(2).all(|w| w[0].0 < w[1].0) {
            let (e, b) = encode_floats(&floats);
            let back: Vec<(i64, u64)> = decode_all(e, &b)
                .unwrap()
                .into_iter()
                .filter_map(|s| match s.value {
                    SampleValue::Float(x) => Some((s.ts_nanos, x.to_bits())),
                    SampleValue::Histogram(_) => None,
                })
                .collect();
            let want: Vec<(i64, u64)> = floats.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            assert_eq!(back, want);
        }
    }
}

/// Long chunks of the integer value modes (counters, decimal gauges, second-order
/// trends, raw full-precision gauges), long enough to carry seek points.
fn long_int_samples() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (
        0u8..5,
        (SEEK_EVERY_FOR_TESTS + 1)..(5 * SEEK_EVERY_FOR_TESTS),
        any::<u64>(),
    )
        .prop_map(|(kind, n, seed)| {
            let mut x = seed | 1;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut v = 0.0f64;
            let mut acc = 0i64;
            (0..n)
                .map(|i| {
                    let r = rnd();
                    let t = 1_700_000_000_000_000_000
                        + i as i64 * 1_000_000_000
                        + if r % 8 == 0 { 1_000_000 } else { 0 };
                    v = match kind {
                        0 => v + (r % 50) as f64,
                        1 => ((r % 20_000) as i64 - 10_000) as f64 / 100.0,
                        2 => {
                            acc += (r % 5) as i64;
                            (i as f64) * (i as f64) + acc as f64
                        }
                        3 => 1.0 + (r >> 11) as f64 / (1u64 << 53) as f64,
                        _ => f64::from_bits(r),
                    };
                    (t, v)
                })
                .collect()
        })
}

const SEEK_EVERY_FOR_TESTS: usize = packed::SEEK_EVERY;

proptest! {
    /// A decode from `mint` returns the full decode from the seek point at or before the
    /// first sample at or after `mint` (exactly that suffix when the chunk has a table, the
    /// whole chunk when not), and the last value read through the last point is the last.
    #[test]
    fn decode_from_a_seek_point_is_a_suffix_of_the_full_decode(
        s in long_int_samples(),
        at in 0.0f64..1.2,
    ) {
        let (enc, b) = encode_floats(&s);
        prop_assert_eq!(enc, ENCODING_PACKED);
        let mut full = Vec::new();
        decode_floats(enc, &b, &mut full).unwrap();
        prop_assert_eq!(bits(&full), bits(&s));
        let n = s.len();
        let first = ((n as f64 * at) as usize).min(n);
        let mint = s.get(first).map_or(i64::MAX, |x| x.0);
        let mut part = vec![(0, 0.0)]; // decoding appends after what is there
        decode_floats_from(enc, &b, mint, &mut part).unwrap();
        let l = packed::layout(&b).unwrap();
        let seekable = b[l.mode_at] & 0x80 != 0;
        let from = if seekable { first.min(n - 1) / SEEK_EVERY_FOR_TESTS * SEEK_EVERY_FOR_TESTS } else { 0 };
        prop_assert_eq!(bits(&part[1..]), bits(&s[from..]));
        // With the timestamps given (as shared-timestamp chunks are read): the same.
        let ts = packed_timestamps(&b).unwrap();
        prop_assert_eq!(&ts, &s.iter().map(|x| x.0).collect::<Vec<_>>());
        let mut given = vec![(0, 0.0)];
        decode_floats_with_timestamps(&b, &ts, mint, &mut given).unwrap();
        prop_assert_eq!(bits(&given), bits(&part));
        prop_assert!(decode_floats_with_timestamps(&b, &ts[1..], mint, &mut given).is_err());
        prop_assert_eq!(
            last_float(enc, &b).unwrap().map(f64::to_bits),
            s.last().map(|x| x.1.to_bits())
        );
    }
}

#[test]
fn counters_and_decimal_gauges_get_a_seek_table() {
    // One point per 256 samples after the first: a 1,000-sample counter has three.
    let s: Vec<(i64, f64)> = (0..1000)
        .map(|i| (i * 1_000_000_000, (i * i % 97 + i * 40) as f64))
        .collect();
    let (enc, b) = encode_floats(&s);
    let l = packed::layout(&b).unwrap();
    assert_eq!(b[l.mode_at] & 0x80, 0x80, "mode byte {:#x}", b[l.mode_at]);
    let mut tail = Vec::new();
    decode_floats_from(enc, &b, 990 * 1_000_000_000, &mut tail).unwrap();
    assert_eq!(tail.first().map(|x| x.0), Some(768 * 1_000_000_000));
    assert_eq!(bits(&tail), bits(&s[768..]));
}

/// Fuzzer find (chunk target, 751bc049): a corrupt `PACKED` chunk (every timestamp 1)
/// whose seek table disagrees with its value stream. Every decoder must end cleanly;
/// decoding from a time then need not match the whole decode (the seek table cannot be
/// checked without decoding the stream it lets a reader skip; block chunks are
/// CRC-checked first), so that property is asserted on valid chunks only
/// (`decode_from_a_seek_point_is_a_suffix_of_the_full_decode` above and the fuzz target).
#[test]
fn fuzz_crash_751bc049_corrupt_seek_table_decodes_cleanly() {
    let data: &[u8] = &[
        42, 148, 5, 0, 2, 130, 2, 0, 0, 0, 17, 36, 0, 0, 193, 199, 199, 199, 34, 34, 34, 34, 34,
        34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 47,
        34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 34, 64, 0, 0,
        0, 255, 1, 44, 255, 90, 0, 0, 156, 156, 156, 156, 156, 156, 156, 156, 156, 156, 156, 156,
        156, 156, 240, 240, 240, 240, 240, 240, 240, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 240, 240, 240, 240, 1, 212, 16,
        0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 158, 158, 158, 158, 158, 0,
        58, 255, 255,
    ];
    replay_chunk_fuzz_input(data);
    let bytes = &data[1..];
    let mut whole = Vec::new();
    decode_floats(ENCODING_PACKED, bytes, &mut whole).unwrap();
    assert!(
        whole.windows(2).any(|w| w[0].0 >= w[1].0),
        "not the corrupt input"
    );
    let mut tail = Vec::new();
    let _ = decode_floats_from(ENCODING_PACKED, bytes, whole[whole.len() / 2].0, &mut tail);
    let _ = last_float(ENCODING_PACKED, bytes);
}

proptest! {
    /// `float_at` finds exactly what a linear scan of the decoded chunk finds, for stored
    /// timestamps and for timestamps between, before and after them, in both float
    /// encodings (long integer chunks exercise the `PACKED` seek table).
    #[test]
    fn float_at_agrees_with_a_scan(
        s in prop_oneof![samples_strategy(), long_int_samples()],
        picks in prop::collection::vec((any::<prop::sample::Index>(), -1i64..=1), 1..20),
    ) {
        let (enc, packed) = encode_floats(&s);
        let mut a = XorAppender::new();
        for &(t, v) in &s {
            a.append(t, v);
        }
        let xor = a.bytes();
        let scan = |ts: i64| s.iter().find(|p| p.0 == ts).map(|p| p.1.to_bits());
        let mut probes: Vec<i64> = picks
            .iter()
            .filter(|_| !s.is_empty())
            .map(|(i, d)| i.get(&s).0.saturating_add(*d))
            .collect();
        probes.extend([i64::MIN, i64::MAX]);
        for ts in probes {
            let want = scan(ts);
            prop_assert_eq!(float_at(enc, &packed, ts).unwrap().map(f64::to_bits), want, "{} at {}", enc, ts);
            prop_assert_eq!(float_at(ENCODING_XOR, &xor, ts).unwrap().map(f64::to_bits), want, "xor at {}", ts);
        }
    }
}
