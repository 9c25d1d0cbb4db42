//! WAL tests: replay after truncation at every byte offset yields exactly a prefix of the
//! acknowledged records; corruption is reported, never fatal; checkpoints bound replay.

use std::sync::Arc;

use gmc_model::Labels;

use super::record::{self, frame, Record};
use super::*;
use crate::metrics::Metrics;

fn labels(i: u64) -> Vec<(Arc<str>, Arc<str>)> {
    vec![
        (Arc::from("__name__"), Arc::from("m")),
        (Arc::from("i"), Arc::from(i.to_string().as_str())),
    ]
}

/// Write `n` appends (a series record + a float record each); returns the records.
fn write_log(dir: &Path, n: u64, policy: SyncPolicy) -> Vec<Record> {
    let wal = Wal::open(dir, 0, policy, 64 << 10, Arc::new(Metrics::default())).unwrap();
    let mut want = Vec::new();
    for i in 0..n {
        let l = labels(i);
        let mut buf = Vec::new();
        frame(&mut buf, record::TYPE_SERIES, |o| {
            record::series_payload(o, [(i, l.as_slice())].into_iter())
        });
        let samples = [(i, 1000 + i as i64, i as f64 * 0.5), (i, 2000, f64::NAN)];
        frame(&mut buf, record::TYPE_FLOATS, |o| {
            record::floats_payload(o, 2, 1000, samples.iter().copied())
        });
        wal.append(&buf).unwrap();
        want.push(Record::Series(vec![(
            i,
            Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]),
        )]));
        want.push(Record::Floats(samples.to_vec()));
    }
    want
}

fn replayed(dir: &Path) -> (Vec<Record>, ReplayStats) {
    let mut got = Vec::new();
    let stats = replay(dir, |r| got.push(r)).unwrap();
    (got, stats)
}

fn same(a: &[Record], b: &[Record]) -> bool {
    // NaN != NaN, so compare the debug form, which prints bits-equal NaNs identically.
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn replay_after_truncation_at_every_offset_is_a_prefix() {
    let src = tempfile::tempdir().unwrap();
    let want = write_log(src.path(), 6, SyncPolicy::None);
    let seg = src.path().join(segment_name(1));
    let full = std::fs::read(&seg).unwrap();
    for cut in 0..=full.len() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(segment_name(1)), &full[..cut]).unwrap();
        let (got, stats) = replayed(d.path());
        assert!(got.len() <= want.len(), "cut {cut}");
        assert!(same(&got, &want[..got.len()]), "cut {cut}: not a prefix");
        if cut == full.len() {
            assert_eq!(got.len(), want.len());
            assert_eq!(stats.corruptions, 0);
        } else if cut > SEGMENT_MAGIC.len() {
            // Any cut inside a record is reported unless it falls on a record boundary.
            assert!(stats.corruptions <= 1, "cut {cut}");
        }
        // The torn part was cut off, so a second replay is clean and identical.
        let (again, stats2) = replayed(d.path());
        assert!(same(&again, &got), "cut {cut}: second replay differs");
        assert_eq!(stats2.corruptions, 0, "cut {cut}");
    }
}

#[test]
fn flipped_byte_drops_the_rest_of_the_segment_and_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let want = write_log(d.path(), 4, SyncPolicy::Batch);
    let seg = d.path().join(segment_name(1));
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let (got, stats) = replayed(d.path());
    assert!(got.len() < want.len());
    assert!(same(&got, &want[..got.len()]));
    assert_eq!(stats.corruptions, 1);
    assert!(stats.dropped_bytes > 0);
}

#[test]
fn checkpoint_replaces_old_segments() {
    let d = tempfile::tempdir().unwrap();
    let m = Arc::new(Metrics::default());
    let wal = Wal::open(
        d.path(),
        0,
        SyncPolicy::GroupCommit {
            window: std::time::Duration::ZERO,
        },
        64 << 10,
        Arc::clone(&m),
    )
    .unwrap();
    let mut buf = Vec::new();
    let l = labels(1);
    frame(&mut buf, record::TYPE_SERIES, |o| {
        record::series_payload(o, [(1u64, l.as_slice())].into_iter())
    });
    frame(&mut buf, record::TYPE_FLOATS, |o| {
        record::floats_payload(o, 1, 5, [(1u64, 5i64, 1.0)].into_iter())
    });
    wal.append(&buf).unwrap();
    let upto = wal.cut().unwrap();
    assert_eq!(upto, 1);
    let mut cp = Vec::new();
    frame(&mut cp, record::TYPE_SERIES, |o| {
        record::series_payload(o, [(1u64, l.as_slice())].into_iter())
    });
    wal.checkpoint(upto, &cp).unwrap();
    assert!(!d.path().join(segment_name(1)).exists());
    let (got, stats) = replayed(d.path());
    assert_eq!(got.len(), 1, "only the checkpointed series record remains");
    assert!(matches!(got[0], Record::Series(_)));
    assert_eq!(stats.last_seq, 2);
}
