//! Helpers shared by the block tests: building blocks from float series and reading every
//! sample back through the chunk decoder.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use gmc_model::Labels;
use gmc_tsdb::block::{Block, BlockMeta, ChunkData, Resolution, Writer};
use gmc_tsdb::chunk;
use gmc_tsdb::querier::SampleValue;

/// Float samples of one series.
pub(crate) type Floats = Vec<(i64, f64)>;

/// Labels `{__name__=name, i=idx}`.
pub(crate) fn series_labels(name: &str, idx: usize) -> Labels {
    Labels::from_pairs([("__name__", name.to_owned()), ("i", idx.to_string())])
}

/// Write `series` as one block (chunks of `per_chunk` samples) under `parent`.
pub(crate) fn write_block(
    parent: &Path,
    series: &[(Labels, Floats)],
    per_chunk: usize,
    res: Resolution,
) -> BlockMeta {
    let mut w = Writer::with_segment_bytes(parent, res, 4096).unwrap();
    for (labels, samples) in series {
        let encoded: Vec<(i64, i64, u8, u32, Vec<u8>)> = samples
            .chunks(per_chunk)
            .map(|c| {
                let (enc, bytes) = chunk::encode_floats(c);
                (c[0].0, c[c.len() - 1].0, enc, c.len() as u32, bytes)
            })
            .collect();
        let data: Vec<ChunkData<'_>> = encoded
            .iter()
            .map(|(mint, maxt, enc, n, bytes)| ChunkData {
                mint_nanos: *mint,
                maxt_nanos: *maxt,
                encoding: *enc,
                num_samples: *n,
                bytes,
            })
            .collect();
        w.add_series(labels, &data).unwrap();
    }
    w.finish().unwrap()
}

/// Every float sample of every series of `block`, by labels (bit patterns of values).
pub(crate) fn read_all(block: &Block) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    let mut out = BTreeMap::new();
    for (labels, metas) in block.all_series().unwrap() {
        let mut v = Vec::new();
        for m in &metas {
            let c = block.read_chunk(m).unwrap();
            for s in chunk::decode_iter(c.encoding, &c.bytes).unwrap() {
                let s = s.unwrap();
                match s.value {
                    SampleValue::Float(f) => v.push((s.ts_nanos, f.to_bits())),
                    SampleValue::Histogram(_) => panic!("unexpected histogram"),
                }
            }
        }
        out.insert(labels, v);
    }
    out
}

/// A deterministic series: `n` samples every `step` ns from `start`, values from `seed`.
pub(crate) fn floats(start: i64, step: i64, n: usize, seed: u64) -> Floats {
    let mut x = seed | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (start + i as i64 * step, (x % 1000) as f64 / 8.0)
        })
        .collect()
}
