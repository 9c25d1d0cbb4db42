//! Small system-wide figures: load average, open file handles, `uname` and the clock
//! (node_exporter's `loadavg`, `filefd`, `uname` and `time` collectors).

use std::path::PathBuf;

use super::{parse_err, read_into, Collect, Env};
use crate::error::Result;
use crate::snapshot::{Kind, Snapshot};

pub(crate) struct LoadAvg {
    path: PathBuf,
    buf: String,
}

impl LoadAvg {
    pub(crate) fn new(env: &Env) -> Self {
        LoadAvg {
            path: env.proc("loadavg"),
            buf: String::with_capacity(128),
        }
    }
}

impl Collect for LoadAvg {
    fn name(&self) -> &'static str {
        "loadavg"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.path, &mut self.buf)?;
        let loads = parse_loadavg(&self.buf).map_err(|w| parse_err(&self.path, w))?;
        for (name, v) in ["node_load1", "node_load5", "node_load15"]
            .into_iter()
            .zip(loads)
        {
            out.single(
                name,
                "Load average over 1, 5 or 15 minutes.",
                Kind::Gauge,
                v,
            );
        }
        Ok(())
    }
}

pub(crate) fn parse_loadavg(text: &str) -> Result<[f64; 3], &'static str> {
    let mut it = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        *slot = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or("loadavg needs three numbers")?;
    }
    Ok(out)
}

pub(crate) struct FileFd {
    path: PathBuf,
    buf: String,
}

impl FileFd {
    pub(crate) fn new(env: &Env) -> Self {
        FileFd {
            path: env.proc("sys/fs/file-nr"),
            buf: String::with_capacity(64),
        }
    }
}

impl Collect for FileFd {
    fn name(&self) -> &'static str {
        "filefd"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.path, &mut self.buf)?;
        let mut it = self.buf.split_ascii_whitespace().map(str::parse::<u64>);
        let (Some(Ok(alloc)), Some(Ok(_unused)), Some(Ok(max))) = (it.next(), it.next(), it.next())
        else {
            return Err(parse_err(&self.path, "file-nr needs three numbers"));
        };
        out.single(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            Kind::Gauge,
            alloc as f64,
        );
        out.single(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            Kind::Gauge,
            max as f64,
        );
        Ok(())
    }
}

/// `node_uname_info`, the label carrier dashboards use to list hosts.
pub(crate) struct Uname;

impl Collect for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        let u = rustix::system::uname();
        let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
        out.family(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            Kind::Gauge,
        )
        .push(
            vec![
                ("domainname", s(u.domainname())),
                ("machine", s(u.machine())),
                ("nodename", s(u.nodename())),
                ("release", s(u.release())),
                ("sysname", s(u.sysname())),
                ("version", s(u.version())),
            ],
            1.0,
        );
        Ok(())
    }
}

/// `node_time_seconds`: the host's clock, to spot skew between hosts.
pub(crate) struct Time;

impl Collect for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        let now = gmc_model::now_nanos() as f64 / 1e9;
        out.single(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            Kind::Gauge,
            now,
        );
        Ok(())
    }
}

/// The host name used as the `instance` label (`uname -n`).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_fixture() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/loadavg"
        ))
        .unwrap();
        let l = parse_loadavg(&text).unwrap();
        assert!(l.iter().all(|v| *v >= 0.0));
        assert!(parse_loadavg("1.0 x").is_err());
    }
}
