//! Retention deletes blocks older than their resolution's age, then oldest-first over the
//! size budget, and reports what it deleted.

// Test helpers outside `#[test]` fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "block_common/helpers.rs"]
mod helpers;

use gmc_tsdb::block::{self, Resolution};
use gmc_tsdb::retention::{self, Policy, Reason};
use helpers::{floats, series_labels, write_block};

const DAY: i64 = 24 * 3600 * 1_000_000_000;

#[test]
fn deletes_by_age_per_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let now = 1000 * DAY;
    let s = |start: i64| vec![(series_labels("m", 0), floats(start, 1_000_000_000, 10, 1))];
    let old_raw = write_block(dir.path(), &s(now - 40 * DAY), 5, Resolution::Raw);
    let new_raw = write_block(dir.path(), &s(now - 10 * DAY), 5, Resolution::Raw);
    let old_1m = write_block(dir.path(), &s(now - 40 * DAY), 5, Resolution::OneMinute);
    let ancient_1h = write_block(dir.path(), &s(now - 800 * DAY), 5, Resolution::OneHour);
    let del = retention::apply(dir.path(), now, &Policy::default()).unwrap();
    let mut ids: Vec<&str> = del.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    let mut want = vec![old_raw.id.as_str(), ancient_1h.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert!(del
        .iter()
        .all(|d| d.reason == Reason::Age && d.size_bytes > 0));
    let left: Vec<String> = block::open_all(dir.path())
        .unwrap()
        .blocks
        .iter()
        .map(|b| b.meta().id.clone())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&new_raw.id) && left.contains(&old_1m.id));
}

#[test]
fn deletes_oldest_first_over_the_size_budget() {
    let dir = tempfile::tempdir().unwrap();
    let now = 100 * DAY;
    let metas: Vec<_> = (0..4)
        .map(|i| {
            let s = vec![(
                series_labels("m", 0),
                floats(now - (5 - i) * DAY, 1_000_000_000, 200, 3),
            )];
            write_block(dir.path(), &s, 50, Resolution::Raw)
        })
        .collect();
    let sizes: Vec<u64> = metas
        .iter()
        .map(|m| retention::dir_size_bytes(&dir.path().join(&m.id)))
        .collect();
    // Room for the two newest blocks only.
    let policy = Policy {
        max_bytes: Some(sizes[2] + sizes[3]),
        ..Policy::default()
    };
    let del = retention::apply(dir.path(), now, &policy).unwrap();
    let ids: Vec<&str> = del.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, vec![metas[0].id.as_str(), metas[1].id.as_str()]);
    assert!(del.iter().all(|d| d.reason == Reason::Size));
    assert_eq!(block::open_all(dir.path()).unwrap().blocks.len(), 2);
    assert!(retention::apply(dir.path(), now, &policy)
        .unwrap()
        .is_empty());
}
