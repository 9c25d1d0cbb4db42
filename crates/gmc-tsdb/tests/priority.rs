//! The store's background threads (recompression, maintenance) run at a lower CPU
//! priority than the threads that append and query (Linux only: a thread's own nice
//! value). In its own test binary, so no other test's store adds threads of the same name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(target_os = "linux")]
#[test]
fn background_threads_run_at_nice_10_or_lower_priority() {
    use std::time::{Duration, Instant};

    /// (thread name, nice) of every thread of this process.
    fn threads() -> Vec<(String, i64)> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| {
                let t = t.ok()?.path();
                let comm = std::fs::read_to_string(t.join("comm")).ok()?;
                let stat = std::fs::read_to_string(t.join("stat")).ok()?;
                // Fields after the parenthesised name start at field 3; nice is field 19.
                let rest = &stat[stat.rfind(')')? + 1..];
                let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
                Some((comm.trim().to_owned(), nice))
            })
            .collect()
    }

    let dir = tempfile::tempdir().unwrap();
    let db = gmc_tsdb::Db::open(dir.path(), gmc_tsdb::Config::default()).unwrap();
    // Each thread lowers its own priority as it starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = threads();
        let bg: Vec<&(String, i64)> = all
            .iter()
            .filter(|(name, _)| name.starts_with("gmc-tsdb-"))
            .collect();
        // At least 10: a process already started at a lower priority cannot raise it.
        if bg.len() == 2 && bg.iter().all(|(_, nice)| *nice >= 10) {
            break;
        }
        assert!(Instant::now() < deadline, "background threads: {all:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    db.close().unwrap();
}
