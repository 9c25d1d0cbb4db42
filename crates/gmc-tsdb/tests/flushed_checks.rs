//! The out-of-order window and idempotent retries hold against data already flushed to
//! blocks, before and after a restart (when the head no longer knows the flushed samples).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gmc_model::{Matcher, WriteBatch, NANOS_PER_SEC};
use gmc_tsdb::{Config, Db, SampleError, SampleValue, SyncPolicy};

const S: i64 = NANOS_PER_SEC;
const T0: i64 = 1_763_000_000 * S;

fn config() -> Config {
    Config {
        sync: SyncPolicy::None,
        maintenance_interval: Duration::from_secs(3600),
        ..Config::default()
    }
}

fn batch(samples: &[(i64, f64)]) -> WriteBatch<'static> {
    let mut b = WriteBatch::new();
    let mut s = b.series();
    s.label("__name__", "m");
    s.label("host", "a");
    for &(t, v) in samples {
        s.float(t, v);
    }
    s.finish().unwrap();
    b
}

fn stored(db: &Db) -> Vec<(i64, f64)> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let got = q.select(&[Matcher::equal("__name__", "m")]).unwrap();
    got.iter()
        .flat_map(|s| {
            s.iter().map(|x| match x.value {
                SampleValue::Float(v) => (x.ts_nanos, v),
                SampleValue::Histogram(_) => panic!("histogram"),
            })
        })
        .collect()
}

fn rejection(db: &Db, samples: &[(i64, f64)]) -> Option<SampleError> {
    let r = db.append(&batch(samples)).unwrap();
    r.rejected.first().map(|x| x.error.clone())
}

#[test]
fn retries_and_window_hold_against_flushed_data_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    // 20 minutes at 10 s.
    let first: Vec<(i64, f64)> = (0..120).map(|i| (T0 + i * 10 * S, i as f64)).collect();
    let newest = first[first.len() - 1].0;
    {
        let db = Db::open(dir.path(), config()).unwrap();
        assert_eq!(rejection(&db, &first), None);
        db.flush().unwrap();
        // An exact retry of flushed data is accepted and changes nothing.
        assert_eq!(rejection(&db, &first[100..]), None);
        // A different value at a flushed timestamp is a conflict.
        assert_eq!(
            rejection(&db, &[(first[110].0, -1.0)]),
            Some(SampleError::DuplicateSample {
                ts_nanos: first[110].0
            })
        );
        db.flush().unwrap();
        assert_eq!(stored(&db), first);
        db.close().unwrap();
    }
    // After a restart the head holds none of these samples: blocks decide.
    let db = Db::open(dir.path(), config()).unwrap();
    assert_eq!(rejection(&db, &first[90..]), None);
    assert_eq!(
        rejection(&db, &[(first[115].0, 7.0)]),
        Some(SampleError::DuplicateSample {
            ts_nanos: first[115].0
        })
    );
    // Older than the 10-minute window behind the newest flushed sample.
    let old = T0 + 30 * S + S / 2;
    assert!(matches!(
        rejection(&db, &[(old, 1.0)]),
        Some(SampleError::OutOfOrderSample { ts_nanos, newest_nanos, .. })
            if ts_nanos == old && newest_nanos == newest
    ));
    // Within the window and not stored yet: accepted.
    let late = newest - 5 * 60 * S + S / 2;
    assert_eq!(rejection(&db, &[(late, 42.0)]), None);
    let mut want = first.clone();
    want.push((late, 42.0));
    want.sort_by_key(|x| x.0);
    assert_eq!(stored(&db), want);
    assert_eq!(db.metrics().rejected_samples("duplicate_sample"), 1);
    assert_eq!(db.metrics().rejected_samples("out_of_order"), 1);
}
