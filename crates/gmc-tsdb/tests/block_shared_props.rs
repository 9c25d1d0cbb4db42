//! Property test of shared-timestamp records: whatever mix of sampling patterns, chunk
//! lengths and segment sizes a block is written with, every chunk reads back exactly and
//! the block verifies.

// Test helpers outside `#[test]` fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "block_common/helpers.rs"]
mod helpers;

use gmc_tsdb::block::{Block, Resolution};
use helpers::{read_all, series_labels, write_block, Floats};
use proptest::prelude::*;

/// Samples of one series: pattern `p` fixes the timestamps (start and jittered ticks);
/// `seed` the values (decimal, bit-pattern and XOR-friendly mixes).
fn samples(p: u8, n: usize, seed: u64) -> Floats {
    let start = 1_700_000_000_000_000_000i64 + i64::from(p) * 1_000_000;
    (0..n as i64)
        .map(|k| {
            let jitter = if (k + i64::from(p)) % 5 == 0 {
                1_000_000
            } else {
                0
            };
            let x = (k as u64)
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(seed);
            let v = match seed % 3 {
                0 => (x % 10_000) as f64 / 100.0,
                1 => f64::from_bits((x >> 12) | 0x3ff0_0000_0000_0000),
                _ => (k % 7) as f64,
            };
            (start + k * 1_000_000_000 + jitter, v)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn shared_timestamp_blocks_read_back_exactly(
        series in proptest::collection::vec((0u8..4, 1usize..200, any::<u64>()), 1..24),
        per_chunk in 1usize..80,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let input: Vec<_> = series
            .iter()
            .enumerate()
            .map(|(i, &(p, n, seed))| (series_labels("m", i), samples(p, n, seed)))
            .collect();
        // The helper's 4 KiB segments make the writer start new segments mid-block.
        let meta = write_block(dir.path(), &input, per_chunk, Resolution::Raw);
        let b = Block::open(&dir.path().join(&meta.id)).unwrap();
        let all = read_all(&b);
        for (labels, s) in &input {
            let want: Vec<(i64, u64)> = s.iter().map(|(t, v)| (*t, v.to_bits())).collect();
            prop_assert_eq!(all.get(labels), Some(&want));
        }
        let total: usize = input.iter().map(|(_, s)| s.len()).sum();
        prop_assert_eq!(b.verify().unwrap().samples as usize, total);
    }
}
