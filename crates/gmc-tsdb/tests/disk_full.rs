//! Disk full on a real small filesystem (a 2 MiB tmpfs mounted by the test; skipped with a
//! message where mounting is not permitted): appends fail with `Error::DiskFull`, nothing
//! acknowledged is lost, and writing resumes once space returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gmc_model::{Matcher, WriteBatch, NANOS_PER_SEC};
use gmc_tsdb::{Config, Db, Error, SampleValue, SyncPolicy};

const T0: i64 = 1_763_000_000 * NANOS_PER_SEC;
const SERIES: usize = 50;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after printing why) when this process may not mount.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs ({}); run as root to test disk full",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); run as root to test disk full");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (should not happen): detach it so the directory can go.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn config() -> Config {
    Config {
        sync: SyncPolicy::Batch,
        wal_segment_bytes: 64 << 10,
        maintenance_interval: Duration::from_secs(3600),
        ..Config::default()
    }
}

fn batch(k: i64) -> WriteBatch<'static> {
    let mut b = WriteBatch::new();
    for i in 0..SERIES {
        let mut s = b.series();
        s.label("__name__", "fill");
        s.label("i", i.to_string());
        // A few samples per series and batch, with values that compress poorly.
        for j in 0..4 {
            let t = T0 + (k * 4 + j) * NANOS_PER_SEC;
            s.float(
                t,
                f64::from_bits(0x4000_0000_0000_0000 ^ (t as u64).rotate_left(17)),
            );
        }
        s.finish().unwrap();
    }
    b
}

type Stored = BTreeMap<(String, i64), u64>;

fn expected(acked: &[i64]) -> Stored {
    let mut m = Stored::new();
    for &k in acked {
        let b = batch(k);
        for i in 0..SERIES {
            let s = b.get(i).unwrap();
            for f in s.floats {
                m.insert((i.to_string(), f.ts_nanos), f.value.to_bits());
            }
        }
    }
    m
}

fn stored(db: &Db) -> Stored {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut m = Stored::new();
    for s in q.select(&[Matcher::equal("__name__", "fill")]).unwrap() {
        let i = s.labels().get("i").unwrap().to_string();
        for x in s.iter() {
            let SampleValue::Float(v) = x.value else {
                panic!("histogram")
            };
            m.insert((i.clone(), x.ts_nanos), v.to_bits());
        }
    }
    m
}

/// Fill the filesystem with a file until only about `leave` bytes are free.
fn fill(path: &Path, leave: u64) -> PathBuf {
    let p = path.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let chunk = vec![0xa5u8; 4096];
    loop {
        let free = fs_free_bytes(path);
        if free <= leave {
            break;
        }
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    f.sync_all().unwrap();
    p
}

fn fs_free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Append batches until `failures` of them failed; returns the acknowledged batch keys.
fn append_until_full(db: &Db, k: &mut i64, failures: usize) -> Vec<i64> {
    let mut acked = Vec::new();
    let mut failed = 0;
    while failed < failures {
        assert!(*k < 100_000, "the filesystem never filled up");
        match db.append(&batch(*k)) {
            Ok(r) => {
                assert!(r.rejected.is_empty(), "{:?}", r.rejected);
                acked.push(*k);
            }
            Err(e) => {
                assert!(matches!(e, Error::DiskFull { .. }), "unexpected error: {e}");
                failed += 1;
            }
        }
        *k += 1;
    }
    acked
}

#[test]
fn disk_full_fails_cleanly_loses_nothing_and_resumes() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let data = fs.path().join("db");
    let filler = fill(fs.path(), 512 << 10);
    let mut k = 0i64;
    let mut acked = Vec::new();
    {
        let db = Db::open(&data, config()).unwrap();
        acked.extend(append_until_full(&db, &mut k, 5));
        assert!(!acked.is_empty());
        // Failed appends acknowledged nothing and stored nothing.
        assert_eq!(stored(&db), expected(&acked));
        // A flush cannot write its block either; the data stays readable meanwhile.
        let e = db.flush().unwrap_err();
        assert!(matches!(e, Error::DiskFull { .. }), "unexpected error: {e}");
        assert_eq!(stored(&db), expected(&acked));

        // Space returns: the same store writes again, starting with a retry of the
        // batches that failed.
        std::fs::remove_file(&filler).unwrap();
        for _ in 0..20 {
            db.append(&batch(k)).unwrap();
            acked.push(k);
            k += 1;
        }
        assert_eq!(stored(&db), expected(&acked));
        db.flush().unwrap();
        assert_eq!(stored(&db), expected(&acked));

        // Full again, then closed while full.
        let filler = fill(fs.path(), 64 << 10);
        acked.extend(append_until_full(&db, &mut k, 3));
        db.close().unwrap();
        std::fs::remove_file(&filler).unwrap();
    }
    // Everything acknowledged is replayed.
    let db = Db::open(&data, config()).unwrap();
    assert_eq!(db.metrics().replay_corruptions(), 0);
    assert_eq!(stored(&db), expected(&acked));
    db.append(&batch(k)).unwrap();
}

#[test]
fn store_opens_and_serves_reads_on_a_full_disk() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let data = fs.path().join("db");
    let mut k = 0;
    let acked;
    {
        let db = Db::open(&data, config()).unwrap();
        let _filler = fill(fs.path(), 256 << 10);
        acked = append_until_full(&db, &mut k, 2);
        db.close().unwrap();
    }
    // Not a single free block left: the store still starts and serves what it has.
    let _rest = fill(fs.path(), 0);
    let db = Db::open(&data, config()).unwrap();
    assert_eq!(stored(&db), expected(&acked));
    let e = db.append(&batch(k)).unwrap_err();
    assert!(matches!(e, Error::DiskFull { .. }), "unexpected error: {e}");
}
