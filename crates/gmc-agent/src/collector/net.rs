//! `/proc/net/dev`: bytes, packets, errors and drops per network interface, named as
//! node_exporter's `netdev` collector. The loopback device is left out, as by the default
//! `--collector.netdev.device-exclude="^lo$"` of Debian's node_exporter package.

use std::path::PathBuf;

use super::{parse_err, read_into, Collect, Env};
use crate::error::Result;
use crate::snapshot::{Kind, Snapshot};

/// Family names in `/proc/net/dev` column order (8 receive, then 8 transmit columns).
const COLUMNS: [&str; 16] = [
    "node_network_receive_bytes_total",
    "node_network_receive_packets_total",
    "node_network_receive_errs_total",
    "node_network_receive_drop_total",
    "node_network_receive_fifo_total",
    "node_network_receive_frame_total",
    "node_network_receive_compressed_total",
    "node_network_receive_multicast_total",
    "node_network_transmit_bytes_total",
    "node_network_transmit_packets_total",
    "node_network_transmit_errs_total",
    "node_network_transmit_drop_total",
    "node_network_transmit_fifo_total",
    "node_network_transmit_colls_total",
    "node_network_transmit_carrier_total",
    "node_network_transmit_compressed_total",
];

pub(crate) struct NetDev {
    path: PathBuf,
    buf: String,
}

impl NetDev {
    pub(crate) fn new(env: &Env) -> Self {
        NetDev {
            path: env.proc("net/dev"),
            buf: String::with_capacity(2048),
        }
    }
}

impl Collect for NetDev {
    fn name(&self) -> &'static str {
        "netdev"
    }

    fn collect(&mut self, _env: &Env, out: &mut Snapshot) -> Result<()> {
        read_into(&self.path, &mut self.buf)?;
        parse(&self.buf, out).map_err(|what| parse_err(&self.path, what))
    }
}

pub(crate) fn parse(text: &str, out: &mut Snapshot) -> Result<(), &'static str> {
    let mut rows: Vec<(&str, [f64; 16])> = Vec::with_capacity(8);
    // Two header lines, then `  name: 16 numbers`.
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            return Err("interface line without colon");
        };
        let mut vals = [0.0; 16];
        let mut n = 0;
        for (slot, v) in vals.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = v.parse::<u64>().map_err(|_| "non-numeric net/dev field")? as f64;
            n += 1;
        }
        if n < 16 {
            return Err("interface line with fewer than 16 counters");
        }
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        rows.push((name, vals));
    }
    for (i, name) in COLUMNS.iter().enumerate() {
        let f = out.family(
            *name,
            "Network device statistic from /proc/net/dev.",
            Kind::Counter,
        );
        for (dev, vals) in &rows {
            f.push(vec![("device", (*dev).to_owned())], vals[i]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixture_per_interface() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/net/dev"
        ))
        .unwrap();
        let mut s = Snapshot::new(0);
        parse(&text, &mut s).unwrap();
        let rx = s.get("node_network_receive_bytes_total").unwrap();
        assert!(rx.samples.iter().all(|x| x.labels[0].1 != "lo"));
        assert!(rx
            .samples
            .iter()
            .any(|x| x.labels[0].1 == "eth0" && x.value > 0.0));
        assert_eq!(s.families.len(), 16);
    }

    #[test]
    fn rejects_short_lines() {
        let mut s = Snapshot::new(0);
        assert!(parse("h\nh\n  lo: 1 2 3\n", &mut s).is_err());
    }
}
