//! Exposition round trips: text 0.0.4 and OpenMetrics parsed back identically by gmc's
//! own ingest parser; `promtool check metrics` clean; protobuf decoded field by field.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use gmc_client::{Format, Value};
use gmc_wire::exposition::{decode, Format as WireFormat, Options};
use gmc_wire::Limits;

use super::sample_registry;

type Flat = BTreeSet<(String, Vec<(String, String)>, u64)>;

fn le_text(le: f64, om: bool) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else if le.fract() == 0.0 {
        if om {
            format!("{le}.0")
        } else {
            format!("{le}")
        }
    } else if le < 1e-4 {
        format!("{le:e}")
    } else {
        format!("{le}")
    }
}

/// What the exposition must contain, from a snapshot: (name, labels, value bits).
fn expected(r: &gmc_client::Registry, om: bool) -> Flat {
    let mut out = Flat::new();
    for f in r.collect() {
        for s in &f.series {
            let with = |extra: Option<(&str, String)>| {
                let mut l = s.labels.clone();
                if let Some((k, v)) = extra {
                    l.push((k.to_owned(), v));
                }
                l.sort();
                l
            };
            match &s.value {
                Value::Counter(n) => {
                    out.insert((f.name.clone(), with(None), (*n as f64).to_bits()));
                }
                Value::CounterF64(x) | Value::Gauge(x) => {
                    out.insert((f.name.clone(), with(None), x.to_bits()));
                }
                Value::Histogram(h) => {
                    for (le, cum) in f.classic(h) {
                        out.insert((
                            format!("{}_bucket", f.name),
                            with(Some(("le", le_text(le, om)))),
                            (cum as f64).to_bits(),
                        ));
                    }
                    out.insert((format!("{}_sum", f.name), with(None), f.sum(h).to_bits()));
                    out.insert((
                        format!("{}_count", f.name),
                        with(None),
                        (h.count() as f64).to_bits(),
                    ));
                }
            }
        }
    }
    out
}

fn parsed(text: &str, om: bool) -> Flat {
    let fmt = if om {
        WireFormat::OpenMetrics
    } else {
        WireFormat::Prometheus
    };
    let d = decode(text, &Options::new(fmt, 0), &Limits::default()).unwrap();
    assert!(d.report.is_clean(), "{}\n{text}", d.report);
    d.batch
        .iter()
        .map(|s| {
            let l = s.to_labels();
            let name = l.metric_name().unwrap().to_owned();
            let labels = l
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (name, labels, s.floats[0].value.to_bits())
        })
        .collect()
}

#[test]
fn text_and_openmetrics_parse_back_identically() {
    let r = sample_registry();
    // Values are static now, so the snapshot and the encodings agree.
    for (fmt, om) in [(Format::Prometheus, false), (Format::OpenMetrics, true)] {
        let text = r.encode_to_string(fmt);
        let want = expected(&r, om);
        let got = parsed(&text, om);
        assert_eq!(got, want, "format {fmt:?}:\n{text}");
        // Family types come back too.
        let wf = if om {
            WireFormat::OpenMetrics
        } else {
            WireFormat::Prometheus
        };
        let d = decode(&text, &Options::new(wf, 0), &Limits::default()).unwrap();
        let types: BTreeSet<_> = d
            .batch
            .metadata()
            .iter()
            .map(|m| (m.metric_family.clone(), m.metric_type.as_str()))
            .collect();
        let base = |n: &str| {
            if om {
                n.trim_end_matches("_total").to_owned()
            } else {
                n.to_owned()
            }
        };
        assert!(
            types.contains(&(base("orders_total"), "counter")),
            "{types:?}"
        );
        assert!(
            types.contains(&("rtt_seconds".to_owned(), "histogram")),
            "{types:?}"
        );
        assert!(
            types.contains(&("queue_depth".to_owned(), "gauge")),
            "{types:?}"
        );
    }
}

#[test]
fn promtool_check_metrics_is_clean() {
    let promtool = "/usr/bin/promtool";
    if !std::path::Path::new(promtool).exists() {
        eprintln!("skipping: {promtool} not found (install prometheus to run this check)");
        return;
    }
    let r = sample_registry();
    gmc_client::process::register(&r).unwrap();
    let text = r.encode_to_string(Format::Prometheus);
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && msg.trim().is_empty(),
        "promtool: {msg}\n{text}"
    );
}

mod pb {
    //! The parts of `io.prometheus.client` metrics.proto the test reads (field numbers
    //! from the upstream file).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct MetricFamily {
        #[prost(string, optional, tag = "1")]
        pub(super) name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub(super) help: Option<String>,
        #[prost(int32, optional, tag = "3")]
        pub(super) r#type: Option<i32>,
        #[prost(message, repeated, tag = "4")]
        pub(super) metric: Vec<Metric>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct LabelPair {
        #[prost(string, optional, tag = "1")]
        pub(super) name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub(super) value: Option<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Simple {
        #[prost(double, optional, tag = "1")]
        pub(super) value: Option<f64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Metric {
        #[prost(message, repeated, tag = "1")]
        pub(super) label: Vec<LabelPair>,
        #[prost(message, optional, tag = "2")]
        pub(super) gauge: Option<Simple>,
        #[prost(message, optional, tag = "3")]
        pub(super) counter: Option<Simple>,
        #[prost(message, optional, tag = "7")]
        pub(super) histogram: Option<Histogram>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Bucket {
        #[prost(uint64, optional, tag = "1")]
        pub(super) cumulative_count: Option<u64>,
        #[prost(double, optional, tag = "2")]
        pub(super) upper_bound: Option<f64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct BucketSpan {
        #[prost(sint32, optional, tag = "1")]
        pub(super) offset: Option<i32>,
        #[prost(uint32, optional, tag = "2")]
        pub(super) length: Option<u32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Histogram {
        #[prost(uint64, optional, tag = "1")]
        pub(super) sample_count: Option<u64>,
        #[prost(double, optional, tag = "2")]
        pub(super) sample_sum: Option<f64>,
        #[prost(message, repeated, tag = "3")]
        pub(super) bucket: Vec<Bucket>,
        #[prost(sint32, optional, tag = "5")]
        pub(super) schema: Option<i32>,
        #[prost(double, optional, tag = "6")]
        pub(super) zero_threshold: Option<f64>,
        #[prost(uint64, optional, tag = "7")]
        pub(super) zero_count: Option<u64>,
        #[prost(message, repeated, tag = "12")]
        pub(super) positive_span: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "13")]
        pub(super) positive_delta: Vec<i64>,
    }
}

#[test]
fn protobuf_exposition_carries_native_and_classic_buckets() {
    use prost::Message as _;
    let r = sample_registry();
    let mut buf = Vec::new();
    r.encode(Format::Protobuf, &mut buf);
    let mut rest = &buf[..];
    let mut fams = Vec::new();
    while !rest.is_empty() {
        fams.push(pb::MetricFamily::decode_length_delimited(&mut rest).unwrap());
    }
    let snap = r.collect();
    assert_eq!(fams.len(), snap.len());
    let rtt = fams
        .iter()
        .find(|f| f.name.as_deref() == Some("rtt_seconds"))
        .unwrap();
    assert_eq!(rtt.r#type, Some(4));
    let h = rtt.metric[0].histogram.as_ref().unwrap();
    let want = snap
        .iter()
        .find(|f| f.name == "rtt_seconds")
        .and_then(|f| match &f.series[0].value {
            Value::Histogram(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(h.sample_count, Some(want.count()));
    assert_eq!(h.schema, Some(6));
    assert_eq!(h.zero_count, Some(1));
    // Rebuild absolute counts from spans + deltas and compare with the native form.
    let native = want.to_native_seconds();
    let mut counts = Vec::new();
    let mut prev = 0i64;
    for d in &h.positive_delta {
        prev += d;
        counts.push(prev as f64);
    }
    assert_eq!(counts, native.positive_buckets);
    let spans: Vec<_> = h
        .positive_span
        .iter()
        .map(|s| (s.offset.unwrap_or(0), s.length.unwrap_or(0)))
        .collect();
    let want_spans: Vec<_> = native
        .positive_spans
        .iter()
        .map(|s| (s.offset, s.length))
        .collect();
    assert_eq!(spans, want_spans);
    assert_eq!(
        h.bucket.len(),
        gmc_client::exposition::CLASSIC_BOUNDS_NS.len()
    );
    let orders = fams
        .iter()
        .find(|f| f.name.as_deref() == Some("orders_total"))
        .unwrap();
    assert_eq!(orders.metric[0].counter.as_ref().unwrap().value, Some(42.0));
    // An empty histogram still says it is native (one empty span).
    let idle = fams
        .iter()
        .find(|f| f.name.as_deref() == Some("idle_seconds"))
        .unwrap();
    assert_eq!(
        idle.metric[0]
            .histogram
            .as_ref()
            .unwrap()
            .positive_span
            .len(),
        1
    );
}
