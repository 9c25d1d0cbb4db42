//! Block write → open → select → read round trips, crash-safety leftovers and label APIs.

// Test helpers outside `#[test]` fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "block_common/helpers.rs"]
mod helpers;

use gmc_model::{Labels, MatchOp, Matcher};
use gmc_tsdb::block::{self, Block, ChunkData, Resolution, Writer};
use helpers::{floats, read_all, series_labels, write_block};

#[test]
fn written_block_reads_back_every_sample_in_label_order() {
    let dir = tempfile::tempdir().unwrap();
    // Added out of label order: the writer sorts.
    let series: Vec<_> = (0..40)
        .rev()
        .map(|i| {
            (
                series_labels(if i % 2 == 0 { "up" } else { "cpu" }, i),
                floats(1_000, 10, 250, i as u64),
            )
        })
        .collect();
    let meta = write_block(dir.path(), &series, 60, Resolution::Raw);
    assert_eq!(meta.stats.series, 40);
    assert_eq!(meta.stats.samples, 40 * 250);
    assert_eq!(meta.stats.chunks, 40 * 5);
    assert_eq!(
        (meta.mint_nanos, meta.maxt_nanos),
        (1_000, 1_000 + 249 * 10)
    );
    assert_eq!(meta.compaction.level, 1);

    let b = Block::open(&dir.path().join(&meta.id)).unwrap();
    assert_eq!(b.meta(), &meta);
    let all = read_all(&b);
    assert_eq!(all.len(), 40);
    for (labels, samples) in &series {
        let want: Vec<(i64, u64)> = samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        assert_eq!(all.get(labels), Some(&want));
    }
    let sel = b
        .select(&[
            Matcher::equal("__name__", "up"),
            Matcher::new(MatchOp::Regex, "i", "1.*").unwrap(),
        ])
        .unwrap();
    let got: Vec<String> = sel
        .iter()
        .map(|(l, _)| l.get("i").unwrap().to_owned())
        .collect();
    assert_eq!(got, vec!["10", "12", "14", "16", "18"]);
    assert!(sel.windows(2).all(|w| w[0].0 < w[1].0));
    // 60-sample chunks span 590 ns: [1000, 1590] only overlaps the first chunk.
    let r = b
        .select_range(&[Matcher::equal("i", "3")], 1_000, 1_590)
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1.len(), 1);
    assert!(b
        .select_range(&[Matcher::equal("i", "3")], 10_000, 20_000)
        .unwrap()
        .is_empty());
    assert_eq!(b.label_names().unwrap(), vec!["__name__", "i"]);
    assert_eq!(b.label_values("__name__").unwrap(), vec!["cpu", "up"]);
    let v = b.verify().unwrap();
    assert_eq!((v.series, v.chunks, v.samples), (40, 200, 10_000));
    assert!(b.size_bytes() > 0);
    // Small segments force several chunk files.
    assert!(dir
        .path()
        .join(&meta.id)
        .join("chunks")
        .join("000002")
        .exists());
}

#[test]
fn open_all_removes_leftover_tmp_dirs_and_reports_broken_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write_block(
        dir.path(),
        &[(series_labels("up", 0), floats(0, 1, 10, 1))],
        5,
        Resolution::Raw,
    );
    // An interrupted write: the writer is forgotten so its Drop cannot clean up.
    let w = Writer::new(dir.path(), Resolution::Raw).unwrap();
    let tmp = dir.path().join(format!("{}.tmp", w.id()));
    std::mem::forget(w);
    assert!(tmp.exists());
    // A block directory without meta.json.
    let broken = dir.path().join(block::new_block_id());
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();

    let r = block::open_all(dir.path()).unwrap();
    assert!(!tmp.exists());
    assert_eq!(r.removed_tmp, vec![tmp]);
    assert_eq!(r.blocks.len(), 1);
    assert_eq!(r.blocks[0].meta().id, meta.id);
    assert_eq!(r.failed.len(), 1);
    assert!(matches!(r.failed[0].1, block::Error::Io { .. }));
    assert!(dir.path().join("wal").exists());
}

#[test]
fn dropped_writer_leaves_nothing_and_empty_blocks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::new(dir.path(), Resolution::Raw).unwrap();
    assert!(matches!(w.finish(), Err(block::Error::Empty)));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let mut w = Writer::new(dir.path(), Resolution::Raw).unwrap();
    let bad = ChunkData {
        mint_nanos: 10,
        maxt_nanos: 5,
        encoding: 2,
        num_samples: 1,
        bytes: &[],
    };
    let l = Labels::from_pairs([("__name__", "x")]);
    assert!(matches!(
        w.add_series(&l, &[bad]),
        Err(block::Error::InvalidChunk { .. })
    ));
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn block_ids_are_unique_and_sort_by_creation() {
    let a = block::new_block_id();
    let b = block::new_block_id();
    assert_ne!(a, b);
    assert!(block::is_block_id(&a));
    assert_eq!(a.len(), 26);
    assert!(a[..10] <= b[..10]);
}

/// 600 one-second samples from `t0` with ±1 ms jitter on some ticks (the same ticks for
/// every series) and values of their own.
fn jittered(t0: i64, seed: u64) -> helpers::Floats {
    (0..600i64)
        .map(|k| {
            let jitter = match k % 7 {
                0 => 1_000_000,
                3 => -1_000_000,
                _ => 0,
            };
            let v = ((k as u64 * 2_654_435_761 + seed * 97) % 10_007) as f64 / 100.0;
            (t0 + k * 1_000_000_000 + jitter, v)
        })
        .collect()
}

fn chunk_bytes(block_dir: &std::path::Path) -> u64 {
    std::fs::read_dir(block_dir.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn series_sampled_together_store_their_timestamps_once() {
    const T0: i64 = 1_700_000_000_000_000_000;
    let together: Vec<_> = (0..50)
        .map(|i| (series_labels("m", i), jittered(T0, i as u64)))
        .collect();
    // The same values, each series sampled at its own instants.
    let apart: Vec<_> = (0..50)
        .map(|i| {
            (
                series_labels("m", i),
                jittered(T0 + i as i64 * 1_000_000, i as u64),
            )
        })
        .collect();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ma = write_block(a.path(), &together, 200, Resolution::Raw);
    let mb = write_block(b.path(), &apart, 200, Resolution::Raw);
    let (sa, sb) = (
        chunk_bytes(&a.path().join(&ma.id)),
        chunk_bytes(&b.path().join(&mb.id)),
    );
    // Each shared chunk saves its header and timestamp stream (tens of bytes) and costs a
    // few; the first chunk of each segment and pattern is stored whole.
    assert!(sa + 50 * 3 * 20 < sb, "shared {sa} B, apart {sb} B");
    for (dir, meta, series) in [(&a, &ma, &together), (&b, &mb, &apart)] {
        let blk = Block::open(&dir.path().join(&meta.id)).unwrap();
        let all = read_all(&blk);
        for (labels, samples) in series.iter() {
            let want: Vec<(i64, u64)> = samples.iter().map(|(t, v)| (*t, v.to_bits())).collect();
            assert_eq!(all.get(labels), Some(&want));
        }
        let v = blk.verify().unwrap();
        assert_eq!((v.series, v.samples), (50, 50 * 600));
    }
}
