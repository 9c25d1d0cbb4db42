//! Exposition encoders: Prometheus text 0.0.4 and OpenMetrics 1.0 (written straight from
//! the live registry: pre-rendered label text, `itoa`, one reusable buffer) and the
//! protobuf exposition with native histograms. Content
//! negotiation picks the format from an `Accept` header.

use crate::arena;
use crate::registry::{lock, ns_to_seconds, read_scalar, Kind, Registry, Scalar, Storage};

/// Classic `le` bounds (ns) for histograms: 4^k from 64 ns to ~17 s. Powers of two are
/// bucket boundaries of the schema-6 layout, so these classic counts are exact.
pub const CLASSIC_BOUNDS_NS: [u64; 15] = [
    1 << 6,
    1 << 8,
    1 << 10,
    1 << 12,
    1 << 14,
    1 << 16,
    1 << 18,
    1 << 20,
    1 << 22,
    1 << 24,
    1 << 26,
    1 << 28,
    1 << 30,
    1 << 32,
    1 << 34,
];

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4 (classic histogram buckets).
    Prometheus,
    /// OpenMetrics 1.0 text (classic histogram buckets).
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` protobuf: native histograms
    /// (schema 6) and classic buckets in the same message.
    Protobuf,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// Pick the format an `Accept` header prefers (highest `q`, first on ties); text 0.0.4
    /// when nothing we serve is named.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut best: Option<(f64, Format)> = None;
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("");
            let mut q = 1.0;
            let mut proto_ok = false;
            let mut delimited = true;
            for p in params {
                if let Some(v) = p.strip_prefix("q=") {
                    q = v.parse().unwrap_or(0.0);
                } else if let Some(v) = p.strip_prefix("proto=") {
                    proto_ok = v == "io.prometheus.client.MetricFamily";
                } else if let Some(v) = p.strip_prefix("encoding=") {
                    delimited = v == "delimited";
                }
            }
            let f = match media {
                "application/vnd.google.protobuf" if proto_ok && delimited => Format::Protobuf,
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "*/*" | "text/*" => Format::Prometheus,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, f));
            }
        }
        best.map_or(Format::Prometheus, |(_, f)| f)
    }
}

impl Registry {
    /// Encode every family in `format` into `buf` (appended; clear it to reuse). Runs the
    /// collection hooks first. Takes only registration-side locks, never one a recording
    /// thread takes.
    pub fn encode(&self, format: Format, buf: &mut Vec<u8>) {
        match format {
            Format::Protobuf => crate::protobuf::encode(&self.collect(), buf),
            Format::Prometheus | Format::OpenMetrics => {
                self.run_hooks();
                encode_text(self, format == Format::OpenMetrics, buf);
            }
        }
    }

    /// The text 0.0.4 exposition as a `String`.
    pub fn encode_to_string(&self, format: Format) -> String {
        let mut buf = Vec::new();
        self.encode(format, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn encode_text(reg: &Registry, om: bool, buf: &mut Vec<u8>) {
    let arenas = arena::arenas();
    let mut scratch = gmc_histogram::Histogram::new();
    let mut itoa_buf = itoa::Buffer::new();
    for f in reg.families() {
        let series = lock(&f.series).clone();
        let base = if om && f.kind == Kind::Counter {
            f.name.strip_suffix("_total").unwrap_or(&f.name)
        } else {
            f.name.as_str()
        };
        buf.extend_from_slice(b"# HELP ");
        buf.extend_from_slice(base.as_bytes());
        buf.push(b' ');
        escape_help(buf, &f.help, om);
        buf.extend_from_slice(b"\n# TYPE ");
        buf.extend_from_slice(base.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(f.kind.as_str().as_bytes());
        buf.push(b'\n');
        for s in &series {
            if let Some(v) = read_scalar(&s.storage, &arenas) {
                buf.extend_from_slice(f.name.as_bytes());
                labels(buf, &s.rendered, None);
                buf.push(b' ');
                match v {
                    Scalar::Int(n) => buf.extend_from_slice(itoa_buf.format(n).as_bytes()),
                    Scalar::Signed(n) => buf.extend_from_slice(itoa_buf.format(n).as_bytes()),
                    Scalar::Float(x) => write_f64(buf, x),
                }
                buf.push(b'\n');
                continue;
            }
            let Storage::Histogram(r) = &s.storage else {
                continue;
            };
            scratch.clear();
            crate::histogram::merge_shards(&arenas, r.start, &mut scratch);
            for (le, cum) in scratch.to_classic(&CLASSIC_BOUNDS_NS) {
                let le = if f.seconds { ns_to_seconds(le) } else { le };
                buf.extend_from_slice(f.name.as_bytes());
                buf.extend_from_slice(b"_bucket");
                let mut le_text = Vec::with_capacity(16);
                write_le(&mut le_text, le, om);
                labels(buf, &s.rendered, Some(&le_text));
                buf.push(b' ');
                buf.extend_from_slice(itoa_buf.format(cum).as_bytes());
                buf.push(b'\n');
            }
            buf.extend_from_slice(f.name.as_bytes());
            buf.extend_from_slice(b"_sum");
            labels(buf, &s.rendered, None);
            buf.push(b' ');
            if f.seconds {
                write_f64(buf, ns_to_seconds(scratch.sum() as f64));
            } else {
                // Sums of integers are exact; print them as such (u128 range).
                buf.extend_from_slice(itoa_buf.format(scratch.sum()).as_bytes());
            }
            buf.push(b'\n');
            buf.extend_from_slice(f.name.as_bytes());
            buf.extend_from_slice(b"_count");
            labels(buf, &s.rendered, None);
            buf.push(b' ');
            buf.extend_from_slice(itoa_buf.format(scratch.count()).as_bytes());
            buf.push(b'\n');
        }
    }
    if om {
        buf.extend_from_slice(b"# EOF\n");
    }
}

/// `{rendered[,le="…"]}`, or nothing when both are empty.
fn labels(buf: &mut Vec<u8>, rendered: &str, le: Option<&[u8]>) {
    if rendered.is_empty() && le.is_none() {
        return;
    }
    buf.push(b'{');
    buf.extend_from_slice(rendered.as_bytes());
    if let Some(le) = le {
        if !rendered.is_empty() {
            buf.push(b',');
        }
        buf.extend_from_slice(b"le=\"");
        buf.extend_from_slice(le);
        buf.push(b'"');
    }
    buf.push(b'}');
}

fn write_le(buf: &mut Vec<u8>, le: f64, om: bool) {
    if le.is_infinite() {
        buf.extend_from_slice(b"+Inf");
        return;
    }
    write_f64(buf, le);
    // OpenMetrics wants the canonical float form of bucket bounds ("64.0").
    if om && le.fract() == 0.0 && le.abs() < 1e15 {
        buf.extend_from_slice(b".0");
    }
}

/// A float as Prometheus parsers read it: `NaN`, `+Inf`, `-Inf`, integers without a
/// fraction, otherwise the shortest round-trip form.
pub(crate) fn write_f64(buf: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Exact: |v| < 2^53 and integral.
        #[allow(clippy::cast_possible_truncation)]
        let i = v as i64;
        buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else if v.abs() >= 1e15 || v.abs() < 1e-4 {
        let _ = write!(buf, "{v:e}");
    } else {
        let _ = write!(buf, "{v}");
    }
}

fn escape_help(buf: &mut Vec<u8>, help: &str, om: bool) {
    for b in help.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'"' if om => buf.extend_from_slice(b"\\\""),
            _ => buf.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_highest_q() {
        let prom = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prom)), Format::Protobuf);
        let om = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(Format::negotiate(Some(om)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/html")), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }

    #[test]
    fn floats_are_written_as_parsers_expect() {
        let f = |v: f64| {
            let mut b = Vec::new();
            write_f64(&mut b, v);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(f(3.0), "3");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(1e20), "1e20");
        assert_eq!(f(1.5e-7), "1.5e-7");
    }

    #[test]
    fn text_has_help_type_and_samples() {
        let r = Registry::new();
        r.counter_with("orders", "Orders \"sent\".", &[("venue", "X\"1")])
            .unwrap()
            .add(3);
        r.histogram("lat_seconds", "Latency.").unwrap().record(100);
        r.histogram("size_bytes", "Sizes.").unwrap().record(100);
        let t = r.encode_to_string(Format::Prometheus);
        assert!(t.contains("# TYPE orders_total counter\n"), "{t}");
        assert!(t.contains("orders_total{venue=\"X\\\"1\"} 3\n"), "{t}");
        assert!(t.contains("lat_seconds_bucket{le=\"6.4e-8\"} 0\n"), "{t}");
        assert!(t.contains("lat_seconds_bucket{le=\"2.56e-7\"} 1\n"), "{t}");
        assert!(t.contains("lat_seconds_sum 1e-7\n"), "{t}");
        assert!(t.contains("lat_seconds_count 1\n"), "{t}");
        assert!(t.contains("size_bytes_bucket{le=\"256\"} 1\n"), "{t}");
        assert!(t.contains("size_bytes_sum 100\n"), "{t}");
        let o = r.encode_to_string(Format::OpenMetrics);
        assert!(o.contains("# TYPE orders counter\n"), "{o}");
        assert!(o.contains("le=\"256.0\""), "{o}");
        assert!(o.contains("le=\"2.56e-7\""), "{o}");
        assert!(o.ends_with("# EOF\n"));
    }
}
