//! End-to-end tests of `Db`: durability across reopen, out-of-order window, idempotent
//! retries, limits, concurrent appenders, torn WAL tails and the read API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gmc_model::{
    Histogram, MatchOp, Matcher, Metadata, MetricType, Span, WriteBatch, NANOS_PER_SEC,
    STALE_NAN_BITS,
};
use gmc_tsdb::{Config, Db, SampleValue, SyncPolicy};

const T0: i64 = 1_763_000_000 * NANOS_PER_SEC;

fn batch(series: &[(&str, u64)], ts: i64, value: f64) -> WriteBatch<'static> {
    let mut b = WriteBatch::new();
    for &(name, i) in series {
        let mut s = b.series();
        s.label("__name__", name.to_string());
        s.label("i", i.to_string());
        s.float(ts, value);
        s.finish().unwrap();
    }
    b
}

fn config() -> Config {
    Config {
        sync: SyncPolicy::Batch,
        ..Config::default()
    }
}

fn floats(db: &Db, name: &str) -> Vec<(String, Vec<(i64, u64)>)> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .into_iter()
        .map(|s| {
            let v = s
                .iter()
                .map(|x| match x.value {
                    SampleValue::Float(f) => (x.ts_nanos, f.to_bits()),
                    SampleValue::Histogram(_) => (x.ts_nanos, u64::MAX),
                })
                .collect();
            (s.labels().get("i").unwrap_or("").to_string(), v)
        })
        .collect()
}

#[test]
fn appended_samples_survive_reopen_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let h = Histogram {
        schema: 2,
        count: 4.0,
        sum: 10.5,
        positive_spans: vec![Span {
            offset: 1,
            length: 2,
        }],
        positive_buckets: vec![1.0, 3.0],
        ..Histogram::default()
    };
    {
        let db = Db::open(dir.path(), config()).unwrap();
        for k in 0..300 {
            let v = if k == 299 {
                f64::from_bits(STALE_NAN_BITS)
            } else {
                k as f64 * 0.1
            };
            let r = db
                .append(&batch(&[("a", 1), ("a", 2)], T0 + k * NANOS_PER_SEC, v))
                .unwrap();
            assert_eq!(r.accepted_floats, 2);
            assert!(r.rejected.is_empty());
        }
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "lat");
        s.histogram(T0, h.clone());
        s.finish().unwrap();
        b.push_metadata(Metadata {
            metric_family: "lat".into(),
            metric_type: MetricType::Histogram,
            help: "latency".into(),
            unit: "seconds".into(),
        });
        assert_eq!(db.append(&b).unwrap().accepted_histograms, 1);
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), config()).unwrap();
    let got = floats(&db, "a");
    assert_eq!(got.len(), 2);
    for (_, samples) in &got {
        assert_eq!(samples.len(), 300);
        assert_eq!(samples[299].1, STALE_NAN_BITS);
        assert_eq!(samples[10], (T0 + 10 * NANOS_PER_SEC, (1.0f64).to_bits()));
    }
    let q = db.querier(T0, T0).unwrap();
    let hs = q.select(&[Matcher::equal("__name__", "lat")]).unwrap();
    assert_eq!(hs.len(), 1);
    let s: Vec<_> = hs[0].iter().collect();
    assert_eq!(s[0].value, SampleValue::Histogram(Arc::new(h)));
    assert_eq!(q.metadata(Some("lat"))[0].unit, "seconds");
    assert_eq!(db.metrics().replay_corruptions(), 0);
}

#[test]
fn parts_appended_as_one_write_survive_reopen_with_a_report_each() {
    // The default group commit: the head stores the parts while the log syncs.
    let dir = tempfile::tempdir().unwrap();
    let meta = Metadata {
        metric_family: "p".into(),
        metric_type: MetricType::Gauge,
        help: "parts".into(),
        unit: String::new(),
    };
    {
        let db = Db::open(dir.path(), Config::default()).unwrap();
        for k in 0..50 {
            let ts = T0 + k * NANOS_PER_SEC;
            let series: Vec<(&str, u64)> = (0..300).map(|i| ("p", i)).collect();
            let mut a = batch(&series[..100], ts, k as f64);
            let mut b = batch(&series[100..], ts, k as f64);
            // Both parts carry the same metadata: it is stored once.
            a.push_metadata(meta.clone());
            b.push_metadata(meta.clone());
            // One refused series in the second part (its sample is beyond the
            // out-of-order window of the newest sample, which the first part sets).
            let mut old = batch(&[("q", 0)], ts, 1.0);
            if k == 49 {
                old = batch(&[("p", 0)], T0, 9.0);
            }
            let reports = db.append_parts(&[&a, &b, &old]).unwrap();
            assert_eq!(reports.len(), 3);
            assert_eq!(reports[0].accepted_floats, 100);
            assert_eq!(reports[1].accepted_floats, 200);
            if k == 0 {
                assert_eq!(reports[0].new_series, 100);
                assert_eq!(reports[1].new_series, 200);
            }
            if k == 49 {
                // `p{i="0"}` at T0 again with another value: a conflict, refused.
                assert_eq!(reports[2].accepted_floats, 0);
                assert_eq!(reports[2].rejected.len(), 1);
            }
        }
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), Config::default()).unwrap();
    let got = floats(&db, "p");
    assert_eq!(got.len(), 300);
    for (i, samples) in &got {
        assert_eq!(samples.len(), 50, "series {i}");
        assert_eq!(samples[0], (T0, 0f64.to_bits()), "series {i}");
        assert_eq!(samples[49].1, 49f64.to_bits(), "series {i}");
    }
    assert_eq!(floats(&db, "q").len(), 1);
    let q = db.querier(T0, T0).unwrap();
    assert_eq!(q.metadata(Some("p")), vec![meta]);
    assert_eq!(db.metrics().replay_corruptions(), 0);
}

#[test]
fn out_of_order_window_accepts_recent_and_rejects_old() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    db.append(&batch(&[("m", 1)], T0, 1.0)).unwrap();
    let r = db
        .append(&batch(&[("m", 1)], T0 - 300 * NANOS_PER_SEC, 2.0))
        .unwrap();
    assert!(
        r.rejected.is_empty(),
        "5 min behind is inside the 10 min window"
    );
    let r = db
        .append(&batch(&[("m", 1)], T0 - 1200 * NANOS_PER_SEC, 3.0))
        .unwrap();
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].series_index, 0);
    assert_eq!(r.rejected[0].error.reason(), "out_of_order");
    assert_eq!(db.metrics().rejected_samples("out_of_order"), 1);
    let got = floats(&db, "m");
    assert_eq!(
        got[0].1,
        vec![
            (T0 - 300 * NANOS_PER_SEC, 2f64.to_bits()),
            (T0, 1f64.to_bits())
        ]
    );
    // Out-of-order data survives a restart too.
    drop(db);
    let db = Db::open(dir.path(), config()).unwrap();
    assert_eq!(floats(&db, "m")[0].1.len(), 2);
}

#[test]
fn retried_batch_is_idempotent_and_conflicts_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    let b = batch(&[("m", 1), ("m", 2)], T0, 7.0);
    db.append(&b).unwrap();
    db.append(&batch(&[("m", 1)], T0 + NANOS_PER_SEC, 8.0))
        .unwrap();
    let r = db.append(&b).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.accepted_floats, 2);
    let r = db.append(&batch(&[("m", 1), ("m", 2)], T0, 9.0)).unwrap();
    assert_eq!(r.rejected.len(), 2);
    assert!(r
        .rejected
        .iter()
        .all(|x| x.error.reason() == "duplicate_sample"));
    let got = floats(&db, "m");
    assert_eq!(got[0].1.len(), 2);
    assert_eq!(got[1].1, vec![(T0, 7f64.to_bits())]);
}

#[test]
fn series_limits_reject_only_new_series() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        max_series: 3,
        max_series_per_metric: 2,
        ..config()
    };
    let db = Db::open(dir.path(), cfg).unwrap();
    let r = db
        .append(&batch(&[("a", 1), ("a", 2), ("a", 3), ("b", 1)], T0, 1.0))
        .unwrap();
    assert_eq!(r.new_series, 3);
    assert_eq!(r.rejected.len(), 1);
    // Series are visited by shard, so which of the three `a` series hits the limit is
    // not specified; exactly one does.
    assert!(r.rejected[0].series_index < 3);
    assert_eq!(r.rejected[0].error.reason(), "metric_series_limit");
    let r = db
        .append(&batch(&[("c", 1), ("b", 1)], T0 + 1, 1.0))
        .unwrap();
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].error.reason(), "series_limit");
    assert_eq!(r.accepted_floats, 1);
}

#[test]
fn concurrent_appenders_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        sync: SyncPolicy::GroupCommit {
            window: Duration::ZERO,
        },
        ..Config::default()
    };
    let db = Arc::new(Db::open(dir.path(), cfg.clone()).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for k in 0..100i64 {
                    // Shared series across threads, distinct timestamps per thread.
                    let ts = T0 + (k * 4 + t as i64) * NANOS_PER_SEC;
                    let r = db
                        .append(&batch(&[("c", 0), ("c", 1), ("c", 2 + t)], ts, k as f64))
                        .unwrap();
                    assert_eq!(r.accepted_floats, 3);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let check = |db: &Db| {
        let got = floats(db, "c");
        assert_eq!(got.len(), 6);
        let shared: Vec<_> = got.iter().filter(|(i, _)| i == "0" || i == "1").collect();
        for (_, s) in shared {
            assert_eq!(s.len(), 400);
            assert!(s.windows(2).all(|w| w[0].0 < w[1].0));
        }
    };
    check(&db);
    drop(db);
    check(&Db::open(dir.path(), cfg).unwrap());
}

#[test]
fn torn_wal_tail_is_dropped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), config()).unwrap();
        db.append(&batch(&[("t", 1)], T0, 1.0)).unwrap();
        db.append(&batch(&[("t", 1)], T0 + NANOS_PER_SEC, 2.0))
            .unwrap();
    }
    let seg = dir.path().join("wal").join("00000001");
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 3).unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    assert_eq!(db.metrics().replay_corruptions(), 1);
    assert!(db.metrics().replay_dropped_bytes() > 0);
    assert_eq!(floats(&db, "t")[0].1, vec![(T0, 1f64.to_bits())]);
    // Writing works after the repair, and what is written now survives.
    db.append(&batch(&[("t", 1)], T0 + 5 * NANOS_PER_SEC, 3.0))
        .unwrap();
    drop(db);
    let db = Db::open(dir.path(), config()).unwrap();
    assert_eq!(floats(&db, "t")[0].1.len(), 2);
    let mut text = String::new();
    db.metrics().encode_text(&mut text);
    assert!(text.contains("gmc_tsdb_head_series 1"));
}

#[test]
fn label_queries_follow_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    db.append(&batch(&[("x", 1), ("x", 2), ("y", 3)], T0, 1.0))
        .unwrap();
    let q = db.querier(T0, T0).unwrap();
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "i"]);
    assert_eq!(
        q.label_values("i", &[Matcher::equal("__name__", "x")])
            .unwrap(),
        vec!["1", "2"]
    );
    let re = Matcher::new(MatchOp::Regex, "i", "1|3").unwrap();
    let sel = q.select(&[re]).unwrap();
    assert_eq!(sel.len(), 2);
    assert!(sel[0].labels() < sel[1].labels());
    let ne = Matcher::new(MatchOp::NotEqual, "__name__", "x").unwrap();
    assert_eq!(q.select(&[ne]).unwrap().len(), 1);
    assert!(db
        .querier(T0 + 1, T0 + 2)
        .unwrap()
        .select(&[])
        .unwrap()
        .is_empty());
}

#[test]
fn flushing_keeps_every_sample_readable_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    for k in 0..250 {
        db.append(&batch(&[("f", 1)], T0 + k * NANOS_PER_SEC, k as f64))
            .unwrap();
    }
    let report = db.flush().unwrap();
    assert_eq!(report.series, 1);
    assert!(report.chunks >= 1);
    assert_eq!(report.time_range, Some((T0, T0 + 249 * NANOS_PER_SEC)));
    // The flushed segments are replaced by a checkpoint.
    let wal: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(wal.iter().any(|n| n.starts_with("checkpoint.")), "{wal:?}");
    assert!(!wal.iter().any(|n| n == "00000001"), "{wal:?}");
    db.append(&batch(&[("f", 1)], T0 + 250 * NANOS_PER_SEC, 250.0))
        .unwrap();
    assert_eq!(floats(&db, "f")[0].1.len(), 251);
    drop(db);
    let db = Db::open(dir.path(), config()).unwrap();
    assert_eq!(floats(&db, "f")[0].1.len(), 251);
}

#[test]
fn release_hook_runs_before_and_after_each_flush_and_only_the_first_is_kept() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), config()).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    assert!(db.set_release_hook(Box::new(move || {
        c.fetch_add(1, SeqCst);
    })));
    assert!(!db.set_release_hook(Box::new(|| panic!("a second hook must not run"))));
    db.append(&batch(&[("f", 1)], T0, 1.0)).unwrap();
    assert_eq!(calls.load(SeqCst), 0, "appends never release");
    db.flush().unwrap();
    assert_eq!(calls.load(SeqCst), 2);
    db.flush().unwrap();
    assert_eq!(calls.load(SeqCst), 4, "an empty flush releases too");
    assert_eq!(floats(&db, "f")[0].1.len(), 1);
}

#[test]
fn db_and_querier_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Db>();
    assert_send_sync::<gmc_tsdb::Metrics>();
    fn assert_send<T: Send>() {}
    assert_send::<gmc_tsdb::Querier>();
}

#[test]
fn flushes_racing_appends_lose_nothing_and_leave_no_orphan_samples() {
    // One thread appends to a rotating set of series (some go idle and are dropped from the
    // head by a flush, then come back) while another flushes. After a restart every
    // acknowledged sample is readable, and replay found a series record for every sample
    // in the WAL (no sample refers to a series a checkpoint dropped).
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Db::open(dir.path(), config()).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 3 {
                db.flush().unwrap();
                n += 1;
            }
            n
        })
    };
    let mut acked = 0usize;
    for k in 0..600i64 {
        let series: Vec<(&str, u64)> = (0..8).map(|i| ("r", ((k / 50) as u64 + i) % 12)).collect();
        db.append(&batch(&series, T0 + k * NANOS_PER_SEC, k as f64))
            .unwrap();
        acked += series.len();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(flusher.join().unwrap() >= 3);
    let db = std::sync::Arc::try_unwrap(db).ok().unwrap();
    let before: usize = floats(&db, "r").iter().map(|(_, v)| v.len()).sum();
    assert_eq!(before, acked);
    drop(db);
    let db = Db::open(dir.path(), config()).unwrap();
    let after: usize = floats(&db, "r").iter().map(|(_, v)| v.len()).sum();
    assert_eq!(after, acked);
    assert_eq!(db.metrics().replay_unknown_series_samples(), 0);
    assert_eq!(db.metrics().replay_corruptions(), 0);
}

/// Wait up to 30 s for `db`'s first recompression pass, which `after` should have caused.
fn await_recompression(db: &Db, after: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while db.metrics().chunks_recompressed() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no recompression within 30 s after {after}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 64 series `g{i=…}` of 1,120 one-second samples in 70 batches of 16 per series: in
/// 8-sample chunks they open 8,960 chunks, past the recompression backlog of 8,192.
const SERIES: u64 = 64;
const PER_BATCH: i64 = 16;
const BATCHES: i64 = 70;

/// 8-sample chunks, no fsync, and a maintenance round that never comes within a test:
/// only the backlog trigger recompresses.
fn backlog_config() -> Config {
    Config {
        sync: SyncPolicy::None,
        chunk_samples: 8,
        maintenance_interval: Duration::from_secs(3600),
        ..Config::default()
    }
}

/// Append the [`SERIES`] with values from `value(i, k)` (series, sample number).
fn write_series(db: &Db, value: impl Fn(u64, i64) -> f64) {
    for b in 0..BATCHES {
        let mut wb = WriteBatch::new();
        for i in 0..SERIES {
            let mut s = wb.series();
            s.label("__name__", "g");
            s.label("i", i.to_string());
            for j in 0..PER_BATCH {
                let k = b * PER_BATCH + j;
                s.float(T0 + k * NANOS_PER_SEC, value(i, k));
            }
            s.finish().unwrap();
        }
        db.append(&wb).unwrap();
    }
}

/// Every sample [`write_series`] wrote reads back bit-exactly.
fn check_series(db: &Db, value: impl Fn(u64, i64) -> f64) {
    let got = floats(db, "g");
    assert_eq!(got.len(), SERIES as usize);
    for (i, samples) in got {
        let i: u64 = i.parse().unwrap();
        let want: Vec<(i64, u64)> = (0..BATCHES * PER_BATCH)
            .map(|k| (T0 + k * NANOS_PER_SEC, value(i, k).to_bits()))
            .collect();
        assert_eq!(samples, want, "series {i}");
    }
}

#[test]
fn a_backlog_of_closed_chunks_is_recompressed_before_the_maintenance_round() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = backlog_config();
    let db = Db::open(dir.path(), cfg.clone()).unwrap();
    let value = |i: u64, k: i64| ((i as f64) * 0.61 + (k as f64) * 0.37).sin() * 1e3;
    write_series(&db, value);
    await_recompression(&db, "appends");
    let mut text = String::new();
    db.metrics().encode_text(&mut text);
    assert!(
        text.contains("gmc_tsdb_head_chunks_recompressed_total "),
        "{text}"
    );
    check_series(&db, value);

    // A replay rebuilds the chunks as `XOR` without counting them: reopening must still
    // recompress them before the maintenance round.
    drop(db);
    let db = Db::open(dir.path(), cfg).unwrap();
    await_recompression(&db, "the replay");
    assert_eq!(floats(&db, "g").len(), SERIES as usize);
}

#[test]
fn recompressed_chunks_spill_to_disk_read_back_exactly_and_free_their_space_on_flush() {
    let value = |i: u64, k: i64| ((i as f64) * 0.29 + (k as f64) * 0.53).cos() * 1e6;
    for on_disk in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            head_chunks_on_disk: on_disk,
            ..backlog_config()
        };
        let db = Db::open(dir.path(), cfg).unwrap();
        write_series(&db, value);
        await_recompression(&db, "appends");
        let spilled = db.metrics().spilled_bytes();
        assert_eq!(
            spilled > 0,
            on_disk,
            "spilled {spilled} bytes, on_disk={on_disk}"
        );
        let mut text = String::new();
        db.metrics().encode_text(&mut text);
        assert!(text.contains("gmc_tsdb_head_spilled_bytes "), "{text}");
        // Queries over the head read the spilled chunks back bit-exactly.
        check_series(&db, value);
        // A flush writes them into a block and frees the spill space.
        db.flush().unwrap();
        assert_eq!(db.metrics().spilled_bytes(), 0);
        check_series(&db, value);
        drop(db);
        // Nothing is left behind in the data directory's spill area.
        let left = std::fs::read_dir(dir.path().join("head_chunks"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0);
    }
}

#[test]
fn chunks_stay_in_memory_when_spilling_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), backlog_config()).unwrap();
    // No spill directory: every segment creation fails.
    std::fs::remove_dir_all(dir.path().join("head_chunks")).unwrap();
    let value = |i: u64, k: i64| (i as f64) * 1e3 + (k as f64) * 0.25;
    write_series(&db, value);
    await_recompression(&db, "appends");
    assert!(db.metrics().spill_failures() > 0);
    assert_eq!(db.metrics().spilled_bytes(), 0);
    check_series(&db, value);
    db.flush().unwrap();
    check_series(&db, value);
}

#[test]
fn a_spill_directory_that_cannot_be_prepared_does_not_stop_the_store() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the spill directory belongs: it can be neither cleared nor created.
    std::fs::write(dir.path().join("head_chunks"), b"not a directory").unwrap();
    let db = Db::open(dir.path(), backlog_config()).unwrap();
    assert!(db.metrics().spill_failures() > 0);
    let value = |i: u64, k: i64| (i as f64) - (k as f64) * 0.5;
    write_series(&db, value);
    await_recompression(&db, "appends");
    assert_eq!(db.metrics().spilled_bytes(), 0);
    check_series(&db, value);
}
