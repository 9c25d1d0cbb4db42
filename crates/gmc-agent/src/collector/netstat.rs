//! TCP/IP counters and socket usage: `/proc/net/{netstat,snmp,snmp6}` (retransmits,
//! resets, current connections, errors) and `/proc/net/sockstat{,6}`, named as
//! node_exporter's `netstat` and `sockstat` collectors.

use std::path::PathBuf;

use super::{parse_err, read_into, Collect, Env};
use crate::error::{Error, Result};
use crate::snapshot::{Kind, Snapshot};

/// node_exporter 1.5's default `--collector.netstat.fields`:
/// `^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)
/// |TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs
/// |OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts
/// |RcvbufErrors|SndbufErrors))$`, plus the reset and abort counters exchange sessions
/// need ([`EXTRA_FIELDS`]).
pub(crate) fn field_wanted(proto: &str, field: &str) -> bool {
    if field == "InErrors" || field == "InErrs" {
        return true;
    }
    match proto {
        "Ip" => field == "Forwarding",
        "Ip6" | "IpExt" => field == "InOctets" || field == "OutOctets",
        "Icmp" | "Icmp6" => field == "InMsgs" || field == "OutMsgs",
        "TcpExt" => {
            field.starts_with("Listen")
                || field.starts_with("Syncookies")
                || field == "TCPSynRetrans"
                || field == "TCPTimeouts"
                || EXTRA_FIELDS.contains(&(proto, field))
        }
        "Tcp" => {
            matches!(
                field,
                "ActiveOpens"
                    | "InSegs"
                    | "OutSegs"
                    | "OutRsts"
                    | "PassiveOpens"
                    | "RetransSegs"
                    | "CurrEstab"
            ) || EXTRA_FIELDS.contains(&(proto, field))
        }
        "Udp" | "Udp6" => matches!(
            field,
            "InDatagrams" | "OutDatagrams" | "NoPorts" | "RcvbufErrors" | "SndbufErrors"
        ),
        _ => false,
    }
}

/// Fields beyond node_exporter's defaults: connection resets and aborts, which tell a
/// dropped exchange session from a quiet one.
pub(crate) const EXTRA_FIELDS: [(&str, &str); 4] = [
    ("Tcp", "EstabResets"),
    ("Tcp", "AttemptFails"),
    ("TcpExt", "TCPAbortOnTimeout"),
    ("TcpExt", "TCPAbortOnData"),
];

pub(crate) struct Netstat {
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    buf: String,
    partial_errors: u64,
}

impl Netstat {
    pub(crate) fn new(env: &Env) -> Self {
        Netstat {
            netstat: env.proc("net/netstat"),
            snmp: env.proc("net/snmp"),
            snmp6: env.proc("net/snmp6"),
            buf: String::with_capacity(8192),
            partial_errors: 0,
        }
    }
}

impl Collect for Netstat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        let mut pairs: Vec<(String, f64)> = Vec::with_capacity(64);
        read_into(&self.netstat, &mut self.buf)?;
        parse_header_pairs(&self.buf, &mut pairs).map_err(|w| parse_err(&self.netstat, w))?;
        read_into(&self.snmp, &mut self.buf)?;
        parse_header_pairs(&self.buf, &mut pairs).map_err(|w| parse_err(&self.snmp, w))?;
        // No IPv6 on the host (ipv6.disable=1) is normal: count it, keep the IPv4 figures.
        match read_into(&self.snmp6, &mut self.buf) {
            Ok(()) => parse_snmp6(&self.buf, &mut pairs).map_err(|w| parse_err(&self.snmp6, w))?,
            Err(Error::Read { .. }) => self.partial_errors += 1,
            Err(e) => return Err(e),
        }
        for (name, v) in pairs {
            out.single(
                name,
                "Statistic from /proc/net/{netstat,snmp,snmp6}.",
                Kind::Untyped,
                v,
            );
        }
        Ok(())
    }

    fn partial_errors(&self) -> u64 {
        self.partial_errors
    }
}

/// `/proc/net/netstat` and `/proc/net/snmp`: a header line `Proto: A B C` followed by a
/// value line `Proto: 1 2 3`.
pub(crate) fn parse_header_pairs(
    text: &str,
    out: &mut Vec<(String, f64)>,
) -> Result<(), &'static str> {
    let mut lines = text.lines();
    while let Some(header) = lines.next() {
        let Some(values) = lines.next() else {
            return Err("header line without values");
        };
        let (Some((proto, names)), Some((proto2, vals))) =
            (header.split_once(':'), values.split_once(':'))
        else {
            return Err("line without protocol prefix");
        };
        if proto != proto2 {
            return Err("header and value lines of different protocols");
        }
        for (name, val) in names
            .split_ascii_whitespace()
            .zip(vals.split_ascii_whitespace())
        {
            if field_wanted(proto, name) {
                let v: f64 = val.parse().map_err(|_| "non-numeric value")?;
                out.push((format!("node_netstat_{proto}_{name}"), v));
            }
        }
    }
    Ok(())
}

/// `/proc/net/snmp6`: `Ip6InReceives  123` lines; the protocol ends at the first `6`.
pub(crate) fn parse_snmp6(text: &str, out: &mut Vec<(String, f64)>) -> Result<(), &'static str> {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(key), Some(val)) = (it.next(), it.next()) else {
            continue;
        };
        let Some(six) = key.find('6') else { continue };
        let (proto, field) = key.split_at(six + 1);
        if field_wanted(proto, field) {
            let v: f64 = val.parse().map_err(|_| "non-numeric value")?;
            out.push((format!("node_netstat_{proto}_{field}"), v));
        }
    }
    Ok(())
}

pub(crate) struct Sockstat {
    v4: PathBuf,
    v6: PathBuf,
    buf: String,
    partial_errors: u64,
}

impl Sockstat {
    pub(crate) fn new(env: &Env) -> Self {
        Sockstat {
            v4: env.proc("net/sockstat"),
            v6: env.proc("net/sockstat6"),
            buf: String::with_capacity(1024),
            partial_errors: 0,
        }
    }
}

impl Collect for Sockstat {
    fn name(&self) -> &'static str {
        "sockstat"
    }

    fn collect(&mut self, env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.v4, &mut self.buf)?;
        parse_sockstat(&self.buf, env.page_bytes, out).map_err(|w| parse_err(&self.v4, w))?;
        match read_into(&self.v6, &mut self.buf) {
            Ok(()) => {
                parse_sockstat(&self.buf, env.page_bytes, out).map_err(|w| parse_err(&self.v6, w))
            }
            Err(Error::Read { .. }) => {
                self.partial_errors += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn partial_errors(&self) -> u64 {
        self.partial_errors
    }
}

/// `TCP: inuse 2 orphan 0 tw 1 alloc 2 mem 0` becomes `node_sockstat_TCP_inuse` …; `mem`
/// (pages) also yields `node_sockstat_TCP_mem_bytes`.
pub(crate) fn parse_sockstat(
    text: &str,
    page_bytes: f64,
    out: &mut Snapshot,
) -> Result<(), &'static str> {
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let mut it = rest.split_ascii_whitespace();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let v: f64 = v.parse().map_err(|_| "non-numeric sockstat value")?;
            let help =
                "Number of sockets (or pages) per protocol and state from /proc/net/sockstat.";
            out.single(format!("node_sockstat_{proto}_{k}"), help, Kind::Gauge, v);
            if k == "mem" {
                out.single(
                    format!("node_sockstat_{proto}_mem_bytes"),
                    help,
                    Kind::Gauge,
                    v * page_bytes,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/proc/net/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn netstat_and_snmp_fixtures_give_default_fields() {
        let mut pairs = Vec::new();
        parse_header_pairs(&fixture("netstat"), &mut pairs).unwrap();
        parse_header_pairs(&fixture("snmp"), &mut pairs).unwrap();
        parse_snmp6(&fixture("snmp6"), &mut pairs).unwrap();
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        for n in [
            "node_netstat_Tcp_RetransSegs",
            "node_netstat_Tcp_OutRsts",
            "node_netstat_Tcp_CurrEstab",
            "node_netstat_Tcp_EstabResets",
            "node_netstat_TcpExt_ListenDrops",
            "node_netstat_IpExt_InOctets",
            "node_netstat_Ip6_InOctets",
            "node_netstat_Udp6_InDatagrams",
            "node_netstat_UdpLite6_InErrors",
            "node_netstat_Ip_Forwarding",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(!names.contains(&"node_netstat_Tcp_RtoAlgorithm"));
    }

    #[test]
    fn mismatched_header_is_an_error() {
        let mut pairs = Vec::new();
        assert!(parse_header_pairs("Tcp: A\nUdp: 1\n", &mut pairs).is_err());
        assert!(parse_header_pairs("Tcp: A\n", &mut pairs).is_err());
    }

    #[test]
    fn sockstat_fixture_with_mem_bytes() {
        let mut s = Snapshot::new(0);
        parse_sockstat(&fixture("sockstat"), 4096.0, &mut s).unwrap();
        parse_sockstat(&fixture("sockstat6"), 4096.0, &mut s).unwrap();
        for n in [
            "node_sockstat_sockets_used",
            "node_sockstat_TCP_inuse",
            "node_sockstat_TCP_tw",
            "node_sockstat_TCP_mem_bytes",
            "node_sockstat_UDP_mem_bytes",
            "node_sockstat_FRAG_memory",
            "node_sockstat_TCP6_inuse",
        ] {
            assert!(s.get(n).is_some(), "{n}");
        }
    }
}
