//! Collectors over a fake /proc built from the fixtures: missing, unreadable and malformed
//! files and vanished processes are skipped with counted errors, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use gmc_agent::collector::{Collectors, Config, ProcessSelector};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn fake_root() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let proc = d.path().join("proc");
    copy_dir(&fixtures(), &proc);
    (d, proc)
}

fn collectors(proc: &Path, processes: Vec<ProcessSelector>) -> Collectors {
    Collectors::new(&Config {
        proc_root: proc.to_owned(),
        processes,
    })
}

fn errors(c: &Collectors, name: &str) -> u64 {
    c.stats()
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .errors_total
}

#[test]
fn fixture_root_collects_every_family_without_errors() {
    let (_d, proc) = fake_root();
    let mut c = collectors(
        &proc,
        vec![ProcessSelector::Name {
            group: "svc".into(),
            comm: "tradingsvc".into(),
        }],
    );
    let snap = c.collect(1);
    for s in c.stats() {
        assert_eq!(s.errors_total, 0, "{} failed on the fixtures", s.name);
    }
    for n in [
        "node_cpu_seconds_total",
        "node_load1",
        "node_memory_MemAvailable_bytes",
        "node_disk_read_bytes_total",
        "node_network_receive_bytes_total",
        "node_netstat_Tcp_RetransSegs",
        "node_sockstat_TCP_inuse",
        "node_context_switches_total",
        "node_intr_total",
        "node_filefd_allocated",
        "namedprocess_namegroup_num_threads",
    ] {
        assert!(snap.get(n).is_some_and(|f| !f.samples.is_empty()), "{n}");
    }
    let procs = snap.get("namedprocess_namegroup_num_procs").unwrap();
    assert_eq!(procs.samples[0].value, 1.0);
    let fds = snap.get("namedprocess_namegroup_open_filedesc").unwrap();
    assert_eq!(fds.samples[0].value, 3.0);
}

#[test]
fn missing_and_malformed_files_are_counted_and_skipped() {
    let (_d, proc) = fake_root();
    std::fs::remove_file(proc.join("meminfo")).unwrap();
    std::fs::write(proc.join("loadavg"), "garbage\n").unwrap();
    // A directory where a file should be: read fails even for root (EISDIR).
    std::fs::remove_file(proc.join("diskstats")).unwrap();
    std::fs::create_dir(proc.join("diskstats")).unwrap();
    std::fs::remove_file(proc.join("net/snmp6")).unwrap();
    let mut c = collectors(&proc, Vec::new());
    for _ in 0..3 {
        let snap = c.collect(1);
        assert!(snap.get("node_memory_MemTotal_bytes").is_none());
        assert!(snap.get("node_load1").is_none());
        assert!(
            snap.get("node_cpu_seconds_total").is_some(),
            "other collectors still run"
        );
        assert!(
            snap.get("node_netstat_Tcp_InSegs").is_some(),
            "IPv4 figures survive without snmp6"
        );
    }
    assert_eq!(errors(&c, "meminfo"), 3);
    assert_eq!(errors(&c, "loadavg"), 3);
    assert_eq!(errors(&c, "diskstats"), 3);
    assert_eq!(errors(&c, "stat"), 0);
    assert!(c.partial_errors_total() >= 3, "snmp6 misses counted");
    let mut out = gmc_agent::Snapshot::new(0);
    c.describe(&mut out);
    let errs = out.get("gmc_agent_collector_errors_total").unwrap();
    let mem = errs
        .samples
        .iter()
        .find(|s| s.labels[0].1 == "meminfo")
        .unwrap();
    assert_eq!(mem.value, 3.0);
}

#[test]
fn empty_root_never_panics() {
    let d = tempfile::tempdir().unwrap();
    let mut c = collectors(
        d.path(),
        vec![ProcessSelector::PidFile {
            group: "gone".into(),
            path: d.path().join("nope.pid"),
        }],
    );
    let snap = c.collect(1);
    // uname and time need no files.
    assert!(snap.get("node_uname_info").is_some());
    assert!(errors(&c, "stat") == 1 && errors(&c, "meminfo") == 1);
}

#[test]
fn vanished_process_is_skipped_and_counted() {
    let (d, proc) = fake_root();
    let pidfile = d.path().join("svc.pid");
    std::fs::write(&pidfile, "4242\n").unwrap();
    let sel = vec![ProcessSelector::PidFile {
        group: "svc".into(),
        path: pidfile.clone(),
    }];
    let mut c = collectors(&proc, sel);
    let snap = c.collect(1);
    assert_eq!(
        snap.get("namedprocess_namegroup_num_procs")
            .unwrap()
            .samples[0]
            .value,
        1.0
    );
    assert_eq!(c.partial_errors_total(), 0);
    // The process exits: its /proc directory disappears.
    std::fs::remove_dir_all(proc.join("4242")).unwrap();
    let snap = c.collect(2);
    assert_eq!(
        snap.get("namedprocess_namegroup_num_procs")
            .unwrap()
            .samples[0]
            .value,
        0.0
    );
    assert_eq!(c.partial_errors_total(), 1);
    // A pid file with garbage is counted too.
    std::fs::write(&pidfile, "not a pid\n").unwrap();
    c.collect(3);
    assert_eq!(c.partial_errors_total(), 2);
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    const FILES: [&str; 13] = [
        "stat",
        "meminfo",
        "vmstat",
        "diskstats",
        "loadavg",
        "net/dev",
        "net/netstat",
        "net/snmp",
        "net/snmp6",
        "net/sockstat",
        "net/sockstat6",
        "sys/fs/file-nr",
        "1/mounts",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the kernel files contain (truncated, binary, huge numbers), collecting
        /// never panics; a collector either reports or counts an error.
        #[test]
        fn collectors_survive_arbitrary_file_contents(
            which in 0usize..FILES.len(),
            keep in 0usize..4096,
            junk in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let (_d, proc) = fake_root();
            let path = proc.join(FILES[which]);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.truncate(keep.min(bytes.len()));
            bytes.extend_from_slice(&junk);
            std::fs::write(&path, &bytes).unwrap();
            let mut c = collectors(&proc, vec![ProcessSelector::Name {
                group: "svc".into(),
                comm: "tradingsvc".into(),
            }]);
            let snap = c.collect(1);
            prop_assert!(snap.get("node_uname_info").is_some());
        }
    }
}
