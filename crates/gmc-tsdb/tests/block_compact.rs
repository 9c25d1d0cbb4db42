//! Compaction keeps every sample (overlaps merged sample-wise, newer block wins on equal
//! timestamps), deletes sources only after the result exists, and the planner's choices.

// Test helpers outside `#[test]` fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "block_common/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;
use std::time::Duration;

use gmc_model::Labels;
use gmc_tsdb::block::{self, Block, BlockMeta, Compaction, Resolution, Stats};
use gmc_tsdb::compact::{self, Planner};
use helpers::{floats, read_all, series_labels, write_block};

#[test]
fn compaction_keeps_every_sample_and_deletes_sources() {
    let dir = tempfile::tempdir().unwrap();
    // A: t 0..2000, B: adjacent 2000..4000, C: overlaps A's second half and has one
    // series of its own; on equal timestamps C (newest) must win.
    let a: Vec<_> = (0..6)
        .map(|i| (series_labels("m", i), floats(0, 10, 200, i as u64 + 1)))
        .collect();
    let b: Vec<_> = (0..6)
        .map(|i| (series_labels("m", i), floats(2000, 10, 200, i as u64 + 50)))
        .collect();
    let mut c: Vec<_> = (3..6)
        .map(|i| (series_labels("m", i), floats(1000, 5, 150, i as u64 + 99)))
        .collect();
    c.push((series_labels("other", 0), floats(1500, 7, 40, 3)));
    let metas: Vec<BlockMeta> = [&a, &b, &c]
        .iter()
        .map(|s| write_block(dir.path(), s, 64, Resolution::Raw))
        .collect();

    // Expected: union by timestamp, later-written block overriding.
    let mut want: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
    for set in [&a, &b, &c] {
        for (l, s) in set.iter() {
            let e = want.entry(l.clone()).or_default();
            for (t, v) in s {
                e.insert(*t, v.to_bits());
            }
        }
    }
    let blocks: Vec<Block> = metas
        .iter()
        .map(|m| Block::open(&dir.path().join(&m.id)).unwrap())
        .collect();
    let refs: Vec<&Block> = blocks.iter().collect();
    let out = compact::compact_and_replace(dir.path(), &refs).unwrap();
    for m in &metas {
        assert!(
            !dir.path().join(&m.id).exists(),
            "source {} not deleted",
            m.id
        );
    }
    let merged = Block::open(&dir.path().join(&out.id)).unwrap();
    merged.verify().unwrap();
    let got = read_all(&merged);
    let want: BTreeMap<Labels, Vec<(i64, u64)>> = want
        .into_iter()
        .map(|(l, m)| (l, m.into_iter().collect()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(out.compaction.level, 2);
    let mut srcs: Vec<String> = metas.iter().map(|m| m.id.clone()).collect();
    srcs.sort();
    assert_eq!(out.compaction.sources, srcs);
    assert_eq!(out.stats.series, 7);
    assert_eq!(
        out.stats.samples,
        got.values().map(|v| v.len() as u64).sum::<u64>()
    );
    assert_eq!((out.mint_nanos, out.maxt_nanos), (0, 2000 + 199 * 10));
}

#[test]
fn compaction_refuses_mixed_resolutions_and_single_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let s = vec![(series_labels("m", 0), floats(0, 10, 10, 1))];
    let a = write_block(dir.path(), &s, 5, Resolution::Raw);
    let b = write_block(dir.path(), &s, 5, Resolution::OneMinute);
    let a = Block::open(&dir.path().join(&a.id)).unwrap();
    let b = Block::open(&dir.path().join(&b.id)).unwrap();
    assert!(matches!(
        compact::compact(dir.path(), &[&a, &b]),
        Err(compact::Error::MixedResolution { .. })
    ));
    assert!(matches!(
        compact::compact(dir.path(), &[&a]),
        Err(compact::Error::TooFewBlocks { count: 1 })
    ));
}

const H: i64 = 3600 * 1_000_000_000;

fn meta(id: &str, mint: i64, maxt: i64) -> BlockMeta {
    BlockMeta {
        version: 1,
        id: id.to_owned(),
        mint_nanos: mint,
        maxt_nanos: maxt,
        stats: Stats::default(),
        compaction: Compaction {
            level: 1,
            sources: vec![id.to_owned()],
        },
        resolution: Resolution::Raw,
    }
}

#[test]
fn planner_groups_complete_windows_and_never_the_newest_block() {
    let p = Planner::default();
    // Three 2h blocks filling 0..6h, plus the newest at 6h..8h: 0..6h is complete.
    let m = vec![
        meta("a", 0, 2 * H - 1),
        meta("b", 2 * H, 4 * H - 1),
        meta("c", 4 * H, 6 * H - 1),
        meta("d", 6 * H, 8 * H - 1),
    ];
    assert_eq!(p.plan(&m), vec!["a", "b", "c"]);
    // Without a newer block the window might still grow: nothing to do.
    assert!(p.plan(&m[..3]).is_empty());
    // Only the newest block is in the open window: nothing to do.
    assert!(p.plan(&m[2..]).is_empty());
    // Overlapping blocks are compacted first, whatever their ranges.
    let o = vec![
        meta("x", 0, 3 * H),
        meta("y", H, 2 * H),
        meta("z", 10 * H, 12 * H),
    ];
    assert_eq!(p.plan(&o), vec!["x", "y"]);
    // The newest block never takes part, even when overlapping.
    let o = vec![meta("x", 0, 3 * H), meta("y", H, 4 * H)];
    assert!(p.plan(&o).is_empty());
    // Level 2: four 6h blocks of one day, then the next day's block.
    let l2: Vec<_> = (0..4)
        .map(|i| meta(&format!("s{i}"), i * 6 * H, (i + 1) * 6 * H - 1))
        .chain([meta("n", 24 * H, 26 * H - 1)])
        .collect();
    assert_eq!(p.plan(&l2), vec!["s0", "s1", "s2", "s3"]);
    let custom = Planner::new(&[Duration::from_secs(3600), Duration::from_secs(2 * 3600)]);
    let m = vec![
        meta("a", 0, H - 1),
        meta("b", H, 2 * H - 1),
        meta("c", 2 * H, 3 * H - 1),
    ];
    assert_eq!(custom.plan(&m), vec!["a", "b"]);
}

#[test]
fn run_plans_compacts_and_replaces_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4i64 {
        let s = vec![(
            series_labels("m", 0),
            floats(i * 2 * H, 60 * 1_000_000_000, 120, i as u64 + 1),
        )];
        write_block(dir.path(), &s, 60, Resolution::Raw);
    }
    let r = compact::run(dir.path(), &Planner::default())
        .unwrap()
        .unwrap();
    assert_eq!(r.deleted.len(), 3);
    let left = block::open_all(dir.path()).unwrap();
    assert_eq!(left.blocks.len(), 2);
    assert_eq!(left.blocks[0].meta().id, r.created.id);
    assert_eq!(r.created.stats.samples, 360);
    assert!(compact::run(dir.path(), &Planner::default())
        .unwrap()
        .is_none());
}
