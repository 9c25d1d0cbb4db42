//! Filesystems: size, free, available, inodes and read-only flag per mount point from
//! `/proc/1/mounts` and `statvfs(2)`, with the default exclusions of Debian's node_exporter.
//!
//! `statvfs` on a dead network mount can block; node_exporter guards it with a goroutine
//! and a timeout. Trading hosts mount local filesystems, so this collector calls it inline
//! and documents the risk rather than paying a thread per mount.

use std::collections::HashSet;
use std::path::PathBuf;

use super::{read_into, Collect, Env};
use crate::error::Result;
use crate::snapshot::{Kind, Snapshot};

/// node_exporter's `--collector.filesystem.fs-types-exclude` default.
const FS_TYPES_EXCLUDED: [&str; 23] = [
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
];

/// `tracefs` too; kept apart so the array above stays in node_exporter's order.
const FS_TYPES_EXCLUDED_MORE: [&str; 1] = ["tracefs"];

/// The `--collector.filesystem.mount-points-exclude` default of Debian's node_exporter
/// package (the reference the comparison test runs):
/// `^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`.
pub(crate) fn mount_point_excluded(mp: &str) -> bool {
    let Some(rest) = mp.strip_prefix('/') else {
        return false;
    };
    let whole = |p: &str| rest == p || rest.strip_prefix(p).is_some_and(|r| r.starts_with('/'));
    // `.+` after the prefix: something non-empty must follow the slash.
    let below = |p: &str| {
        rest.strip_prefix(p)
            .is_some_and(|r| r.len() > 1 && r.starts_with('/'))
    };
    whole("dev")
        || whole("proc")
        || whole("run")
        || whole("sys")
        || whole("mnt")
        || whole("media")
        || below("var/lib/docker")
        || below("var/lib/containers/storage")
}

fn fs_type_excluded(t: &str) -> bool {
    FS_TYPES_EXCLUDED.contains(&t) || FS_TYPES_EXCLUDED_MORE.contains(&t)
}

/// Undo the octal escapes of /proc/*/mounts (`\040` space, `\011` tab, `\012`, `\134`).
pub(crate) fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One mount to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) device: String,
    pub(crate) mountpoint: String,
    pub(crate) fstype: String,
    pub(crate) read_only: bool,
}

/// Parse a mounts file, dropping excluded and duplicate entries.
pub(crate) fn parse_mounts(text: &str) -> Vec<Mount> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(dev), Some(mp), Some(fstype), Some(opts)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let mp = unescape_mount(mp);
        if fs_type_excluded(fstype) || mount_point_excluded(&mp) {
            continue;
        }
        if !seen.insert(mp.clone()) {
            continue; // over-mounted: the kernel reports the same point twice
        }
        out.push(Mount {
            device: unescape_mount(dev),
            mountpoint: mp,
            fstype: fstype.to_owned(),
            read_only: opts.split(',').any(|o| o == "ro"),
        });
    }
    out
}

/// Labels of one mount's series.
type Labels = Vec<(&'static str, String)>;

pub(crate) struct Filesystems {
    paths: [PathBuf; 2],
    buf: String,
}

impl Filesystems {
    pub(crate) fn new(env: &Env) -> Self {
        Filesystems {
            paths: [env.proc("1/mounts"), env.proc("self/mounts")],
            buf: String::with_capacity(4096),
        }
    }
}

const FAMILIES: [(&str, &str); 7] = [
    ("node_filesystem_size_bytes", "Filesystem size in bytes."),
    (
        "node_filesystem_free_bytes",
        "Filesystem free space in bytes.",
    ),
    (
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
    ),
    ("node_filesystem_files", "Filesystem total file nodes."),
    (
        "node_filesystem_files_free",
        "Filesystem total free file nodes.",
    ),
    ("node_filesystem_readonly", "Filesystem read-only status."),
    (
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
    ),
];

impl Collect for Filesystems {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        // node_exporter reads PID 1's view (the host's, when the agent runs in a container
        // with the host's /proc) and falls back to its own.
        if read_into(&self.paths[0], &mut self.buf).is_err() {
            read_into(&self.paths[1], &mut self.buf)?;
        }
        let mounts = parse_mounts(&self.buf);
        let mut rows: Vec<(Labels, Option<[f64; 6]>)> = Vec::with_capacity(mounts.len());
        for m in mounts {
            let labels = vec![
                ("device", m.device),
                ("fstype", m.fstype),
                ("mountpoint", m.mountpoint.clone()),
            ];
            let stat = rustix::fs::statvfs(m.mountpoint.as_str()).ok().map(|st| {
                let bs = st.f_frsize as f64;
                [
                    st.f_blocks as f64 * bs,
                    st.f_bfree as f64 * bs,
                    st.f_bavail as f64 * bs,
                    st.f_files as f64,
                    st.f_ffree as f64,
                    if m.read_only { 1.0 } else { 0.0 },
                ]
            });
            rows.push((labels, stat));
        }
        for (i, (name, help)) in FAMILIES.iter().enumerate() {
            let f = out.family(*name, help, Kind::Gauge);
            for (labels, stat) in &rows {
                match (i, stat) {
                    (6, s) => f.push(labels.clone(), if s.is_some() { 0.0 } else { 1.0 }),
                    (_, Some(v)) => f.push(labels.clone(), v[i]),
                    (_, None) => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_exclusions_match_node_exporter() {
        for mp in [
            "/dev",
            "/dev/shm",
            "/proc",
            "/sys/fs/cgroup",
            "/run",
            "/run/user/0",
            "/mnt/x",
            "/media",
            "/var/lib/docker/overlay",
        ] {
            assert!(mount_point_excluded(mp), "{mp}");
        }
        for mp in [
            "/",
            "/devices",
            "/running",
            "/var/lib/docker",
            "/home",
            "/mnt2",
        ] {
            assert!(!mount_point_excluded(mp), "{mp}");
        }
        assert!(fs_type_excluded("tracefs") && fs_type_excluded("cgroup2"));
        assert!(!fs_type_excluded("ext4") && !fs_type_excluded("tmpfs"));
    }

    #[test]
    fn parses_fixture_mounts() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/1/mounts"
        ))
        .unwrap();
        let m = parse_mounts(&text);
        assert!(m.iter().any(|m| m.mountpoint == "/" && m.fstype == "ext4"));
        assert!(m
            .iter()
            .all(|m| !m.mountpoint.starts_with("/sys") && !m.mountpoint.starts_with("/dev")));
    }

    #[test]
    fn unescapes_and_flags_read_only() {
        let m = parse_mounts(
            "/dev/x /data/a\\040b ext4 ro,relatime 0 0\n/dev/y /data/a\\040b ext4 rw 0 0\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mountpoint, "/data/a b");
        assert!(m[0].read_only);
    }
}
