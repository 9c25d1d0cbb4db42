//! Corruption: flipped bytes and truncations in index and chunk files give typed errors
//! naming the file and offset, never a panic; `verify` finds what `open` cannot.

// Test helpers outside `#[test]` fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "block_common/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};

use gmc_model::{MatchOp, Matcher};
use gmc_tsdb::block::{self, Block, Resolution};
use gmc_tsdb::index;
use helpers::{floats, series_labels, write_block};

fn make_block(parent: &Path) -> PathBuf {
    let series: Vec<_> = (0..12)
        .map(|i| (series_labels("m", i), floats(0, 1_000, 90, i as u64 + 7)))
        .collect();
    let meta = write_block(parent, &series, 30, Resolution::Raw);
    parent.join(meta.id)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("chunks")).unwrap();
    for f in ["meta.json", "index"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    for e in std::fs::read_dir(from.join("chunks")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("chunks").join(e.file_name())).unwrap();
    }
}

/// Open, query and verify; returns the first error. Must never panic.
fn check(dir: &Path) -> Result<(), block::Error> {
    let b = Block::open(dir)?;
    let m = Matcher::new(MatchOp::Regex, "i", "1.*").unwrap();
    for (_, metas) in b.select(&[m])? {
        for c in &metas {
            b.read_chunk(c)?;
        }
    }
    b.verify().map(|_| ())
}

fn assert_typed(e: &block::Error, file: &str) {
    match e {
        block::Error::Index(
            index::Error::Corrupt { path, .. }
            | index::Error::Checksum { path, .. }
            | index::Error::UnsupportedVersion { path, .. },
        ) => assert!(path.ends_with(file), "{e}"),
        block::Error::CorruptChunk { path, .. }
        | block::Error::ChunkChecksum { path, .. }
        | block::Error::UnsupportedVersion { path, .. } => {
            assert!(path.to_string_lossy().contains(file), "{e}")
        }
        other => panic!("untyped corruption error for {file}: {other:?}"),
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    vec![
        (dir.join("index"), "index"),
        (dir.join("chunks").join("000001"), "000001"),
    ]
}

#[test]
fn flipped_bytes_anywhere_in_index_or_chunks_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let good = make_block(tmp.path());
    check(&good).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..160 {
        let dir = tmp.path().join(format!("case{round}"));
        copy_dir(&good, &dir);
        let (file, name) = files(&dir)[round % 2].clone();
        let mut bytes = std::fs::read(&file).unwrap();
        let at = (rng.next() % bytes.len() as u64) as usize;
        bytes[at] ^= 1 + (rng.next() % 255) as u8;
        std::fs::write(&file, &bytes).unwrap();
        let err = check(&dir).expect_err(&format!("flip at {at} in {name} not detected"));
        assert_typed(&err, name);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn truncated_index_or_chunk_files_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let good = make_block(tmp.path());
    let mut rng = Rng(42);
    for round in 0..80 {
        let dir = tmp.path().join(format!("cut{round}"));
        copy_dir(&good, &dir);
        let (file, name) = files(&dir)[round % 2].clone();
        let len = std::fs::metadata(&file).unwrap().len();
        let cut = rng.next() % len;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let err = check(&dir).expect_err(&format!("cut at {cut} in {name} not detected"));
        assert_typed(&err, name);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn chunk_damage_is_invisible_to_open_but_reported_by_verify_with_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_block(tmp.path());
    let seg = dir.join("chunks").join("000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let b = Block::open(&dir).unwrap();
    match b.verify() {
        Err(block::Error::ChunkChecksum { path, offset }) => {
            assert_eq!(path, seg);
            assert!(offset > 8 && (offset as usize) < last);
        }
        other => panic!("expected a chunk checksum error, got {other:?}"),
    }
}

#[test]
fn damage_to_a_shared_timestamp_base_fails_its_sharers_only() {
    let tmp = tempfile::tempdir().unwrap();
    // Series 0..6 share one sampling pattern, series 6..12 another (shifted by 1 µs), so
    // each pattern's first chunk in a segment is the base of the others.
    let series: Vec<_> = (0..12)
        .map(|i| {
            let t0 = if i < 6 { 0 } else { 1_000 };
            (
                series_labels("m", i),
                floats(t0, 1_000_000, 90, i as u64 + 7),
            )
        })
        .collect();
    let meta = write_block(tmp.path(), &series, 30, Resolution::Raw);
    let dir = tmp.path().join(meta.id);
    let seg = dir.join("chunks").join("000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    // The first record of the segment is a base: damage its data.
    bytes[8 + 25 + 2] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();
    let b = Block::open(&dir).unwrap();
    let (mut ok, mut failed) = (0, 0);
    for (_, metas) in b.all_series().unwrap() {
        let first = &metas[0];
        if first.segment() != 1 {
            continue;
        }
        match b.read_chunk(first) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_typed(&e, "000001");
                failed += 1;
            }
        }
    }
    assert!(failed >= 2, "the base and its sharers fail ({failed})");
    assert!(ok >= 1, "the other pattern still reads ({ok})");
    assert!(b.verify().is_err());
}

#[test]
fn version_1_segments_still_read_but_may_not_hold_shared_records() {
    let tmp = tempfile::tempdir().unwrap();
    // Every series at its own instants: no shared records, as a version 1 writer wrote.
    let own: Vec<_> = (0..6)
        .map(|i| (series_labels("m", i), floats(i as i64, 1_000, 90, i as u64)))
        .collect();
    let shared: Vec<_> = (0..6)
        .map(|i| (series_labels("m", i), floats(0, 1_000, 90, i as u64)))
        .collect();
    for (series, readable) in [(own, true), (shared, false)] {
        let meta = write_block(tmp.path(), &series, 30, Resolution::Raw);
        let dir = tmp.path().join(meta.id);
        for e in std::fs::read_dir(dir.join("chunks")).unwrap() {
            let p = e.unwrap().path();
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[4] = 1;
            std::fs::write(&p, &bytes).unwrap();
        }
        match (check(&dir), readable) {
            (Ok(()), true) => {}
            (Err(e), false) => assert_typed(&e, "chunks/"),
            (r, _) => panic!("version 1 segment: {r:?}"),
        }
    }
}
