//! `/proc/meminfo` (memory and swap, every line as node_exporter's `meminfo` collector) and
//! `/proc/vmstat` (paging, swapping, faults and OOM kills: node_exporter's default fields).

use std::path::PathBuf;

use super::{parse_err, read_into, Collect, Env};
use crate::error::Result;
use crate::snapshot::{Kind, Snapshot};

pub(crate) struct MemInfo {
    path: PathBuf,
    buf: String,
}

impl MemInfo {
    pub(crate) fn new(env: &Env) -> Self {
        MemInfo {
            path: env.proc("meminfo"),
            buf: String::with_capacity(4096),
        }
    }
}

impl Collect for MemInfo {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.path, &mut self.buf)?;
        parse_meminfo(&self.buf, out).map_err(|what| parse_err(&self.path, what))
    }
}

/// `Active(anon):  123 kB` becomes `node_memory_Active_anon_bytes 125952`; lines without a
/// unit (`HugePages_Total:  0`) keep their value and get no `_bytes` suffix.
pub(crate) fn parse_meminfo(text: &str, out: &mut Snapshot) -> Result<(), &'static str> {
    let mut n = 0;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(key), Some(val)) = (it.next(), it.next()) else {
            continue;
        };
        let key = key.strip_suffix(':').ok_or("meminfo key without colon")?;
        let mut v: f64 = val
            .parse::<u64>()
            .map_err(|_| "non-numeric meminfo value")? as f64;
        let mut name = String::with_capacity(key.len() + 20);
        name.push_str("node_memory_");
        // node_exporter rewrites `(x)` as `_x`.
        for c in key.chars() {
            match c {
                '(' => name.push('_'),
                ')' => {}
                c => name.push(c),
            }
        }
        if it.next().is_some() {
            v *= 1024.0; // the only unit /proc/meminfo uses is kB (KiB)
            name.push_str("_bytes");
        }
        out.single(
            name,
            "Memory information field from /proc/meminfo.",
            Kind::Gauge,
            v,
        );
        n += 1;
    }
    if n == 0 {
        return Err("empty meminfo");
    }
    Ok(())
}

pub(crate) struct VmStat {
    path: PathBuf,
    buf: String,
}

impl VmStat {
    pub(crate) fn new(env: &Env) -> Self {
        VmStat {
            path: env.proc("vmstat"),
            buf: String::with_capacity(8192),
        }
    }
}

impl Collect for VmStat {
    fn name(&self) -> &'static str {
        "vmstat"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.path, &mut self.buf)?;
        parse_vmstat(&self.buf, out).map_err(|what| parse_err(&self.path, what))
    }
}

/// node_exporter's default field filter `^(oom_kill|pgpg|pswp|pg.*fault).*`.
fn vmstat_field_wanted(key: &str) -> bool {
    key.starts_with("oom_kill")
        || key.starts_with("pgpg")
        || key.starts_with("pswp")
        || (key.starts_with("pg") && key[2..].contains("fault"))
}

pub(crate) fn parse_vmstat(text: &str, out: &mut Snapshot) -> Result<(), &'static str> {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(key), Some(val)) = (it.next(), it.next()) else {
            continue;
        };
        if !vmstat_field_wanted(key) {
            continue;
        }
        let v = val.parse::<i64>().map_err(|_| "non-numeric vmstat value")? as f64;
        out.single(
            format!("node_vmstat_{key}"),
            "/proc/vmstat information field.",
            Kind::Untyped,
            v,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/proc/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn meminfo_fixture_names_and_units() {
        let mut s = Snapshot::new(0);
        parse_meminfo(&fixture("meminfo"), &mut s).unwrap();
        let total = s.get("node_memory_MemTotal_bytes").unwrap().samples[0].value;
        assert!(total > 1024.0 * 1024.0);
        assert_eq!(total % 1024.0, 0.0);
        assert!(s.get("node_memory_MemAvailable_bytes").is_some());
        assert!(s.get("node_memory_SwapTotal_bytes").is_some());
        assert!(s.get("node_memory_Active_anon_bytes").is_some());
        assert!(s.get("node_memory_HugePages_Total").is_some());
        assert!(s.get("node_memory_HugePages_Total_bytes").is_none());
    }

    #[test]
    fn meminfo_rejects_garbage() {
        let mut s = Snapshot::new(0);
        assert!(parse_meminfo("MemTotal: lots kB\n", &mut s).is_err());
        assert!(parse_meminfo("", &mut s).is_err());
    }

    #[test]
    fn vmstat_fixture_keeps_default_fields_only() {
        let mut s = Snapshot::new(0);
        parse_vmstat(&fixture("vmstat"), &mut s).unwrap();
        for n in [
            "node_vmstat_pgfault",
            "node_vmstat_pgmajfault",
            "node_vmstat_pgpgin",
            "node_vmstat_pgpgout",
            "node_vmstat_pswpin",
            "node_vmstat_pswpout",
            "node_vmstat_oom_kill",
        ] {
            assert!(s.get(n).is_some(), "{n}");
        }
        assert!(s.get("node_vmstat_nr_free_pages").is_none());
    }
}
