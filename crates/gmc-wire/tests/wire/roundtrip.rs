//! Property tests: random `WriteRequest`s encoded with prost decode identically with the
//! zero-copy decoder (prost is the reference); batches survive encode → decode; random
//! series rendered as 0.0.4 / OpenMetrics text parse back to the same series.

use std::collections::BTreeMap;

use gmc_model::{
    millis_to_nanos, CounterResetHint, Histogram, Metadata, Span, WriteBatch, METRIC_NAME,
};
use gmc_wire::remote_write::{self, proto};
use gmc_wire::{exposition, DecodeReport, Limits};
use proptest::prelude::*;
use prost::Message as _;

use crate::{dump, fmt_f64};

// ---------------------------------------------------------------------------------------
// The reference: prost-decoded messages converted with the documented semantics.
// ---------------------------------------------------------------------------------------

fn histogram_from_proto(h: &proto::Histogram) -> Histogram {
    use proto::histogram::{Count, ZeroCount};
    let absolute = |d: &[i64]| {
        let mut acc = 0i64;
        d.iter()
            .map(|v| {
                acc = acc.wrapping_add(*v);
                acc as f64
            })
            .collect::<Vec<_>>()
    };
    let spans = |s: &[proto::BucketSpan]| {
        s.iter()
            .map(|s| Span {
                offset: s.offset,
                length: s.length,
            })
            .collect()
    };
    let is_float = matches!(h.count, Some(Count::CountFloat(_)));
    Histogram {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: match h.zero_count {
            Some(ZeroCount::ZeroCountInt(v)) => v as f64,
            Some(ZeroCount::ZeroCountFloat(v)) => v,
            None => 0.0,
        },
        count: match h.count {
            Some(Count::CountInt(v)) => v as f64,
            Some(Count::CountFloat(v)) => v,
            None => 0.0,
        },
        sum: h.sum,
        positive_spans: spans(&h.positive_spans),
        positive_buckets: if is_float {
            h.positive_counts.clone()
        } else {
            absolute(&h.positive_deltas)
        },
        negative_spans: spans(&h.negative_spans),
        negative_buckets: if is_float {
            h.negative_counts.clone()
        } else {
            absolute(&h.negative_deltas)
        },
        min: None,
        max: None,
        reset_hint: match h.reset_hint {
            1 => CounterResetHint::Reset,
            2 => CounterResetHint::NotReset,
            3 => CounterResetHint::Gauge,
            _ => CounterResetHint::Unknown,
        },
        custom_values: h.custom_values.clone(),
    }
}

/// Batch dump and rejection counts the reference semantics give for `req`.
fn reference(req: &proto::WriteRequest, limits: &Limits) -> (String, BTreeMap<&'static str, u64>) {
    let mut batch = WriteBatch::with_limits(limits.labels);
    let mut rejected = BTreeMap::new();
    for ts in &req.timeseries {
        let nonempty = ts.labels.iter().filter(|l| !l.value.is_empty()).count();
        if nonempty > limits.labels.max_labels {
            *rejected.entry("too_many_labels").or_default() += 1;
            continue;
        }
        if ts.samples.is_empty() && ts.histograms.is_empty() {
            continue;
        }
        let mut s = batch.series();
        for l in &ts.labels {
            s.label(l.name.as_str(), l.value.as_str());
        }
        for x in &ts.samples {
            s.float(millis_to_nanos(x.timestamp), x.value);
        }
        for h in &ts.histograms {
            s.histogram(millis_to_nanos(h.timestamp), histogram_from_proto(h));
        }
        if let Err(e) = s.finish() {
            *rejected.entry(e.reason()).or_default() += 1;
        }
    }
    for m in &req.metadata {
        if !m.metric_family_name.is_empty() {
            batch.push_metadata(Metadata {
                metric_family: m.metric_family_name.clone(),
                metric_type: remote_write::metric_type_from_proto(m.r#type),
                help: m.help.clone(),
                unit: m.unit.clone(),
            });
        }
    }
    (dump(&batch, &DecodeReport::default()), rejected)
}

// ---------------------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------------------

fn any_f64() -> impl Strategy<Value = f64> {
    // Every bit pattern, NaN payloads (the stale marker among them) included.
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::from_bits(gmc_model::STALE_NAN_BITS)),
        Just(0.0),
        -1e6f64..1e6,
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(METRIC_NAME.to_string()),
        Just("job".to_string()),
        Just("instance".to_string()),
        Just(String::new()),
        "[a-z_][a-z0-9_]{0,8}",
        "\\PC{1,6}",
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9]{1,8}", "\\PC{0,12}"]
}

fn labels() -> impl Strategy<Value = Vec<proto::Label>> {
    let named = (
        "[a-z_:][a-z0-9_:]{0,10}",
        prop::collection::vec((label_name(), label_value()), 0..6),
    )
        .prop_map(|(name, rest)| {
            let mut v = vec![proto::Label {
                name: METRIC_NAME.into(),
                value: name,
            }];
            v.extend(
                rest.into_iter()
                    .map(|(name, value)| proto::Label { name, value }),
            );
            v
        });
    let raw = prop::collection::vec((label_name(), label_value()), 0..5).prop_map(|v| {
        v.into_iter()
            .map(|(name, value)| proto::Label { name, value })
            .collect()
    });
    // Mostly well-formed series (sorted or not), sometimes anything at all.
    prop_oneof![4 => named, 1 => raw]
}

fn span() -> impl Strategy<Value = proto::BucketSpan> {
    (-5i32..5, 0u32..4).prop_map(|(offset, length)| proto::BucketSpan { offset, length })
}

fn histogram() -> impl Strategy<Value = proto::Histogram> {
    use proto::histogram::{Count, ZeroCount};
    (
        (
            prop_oneof![
                Just(None),
                any::<u64>().prop_map(|v| Some(Count::CountInt(v >> 12))),
                any_f64().prop_map(|v| Some(Count::CountFloat(v))),
            ],
            any_f64(),
            // Exponential schemas (some out of range), and custom buckets.
            prop_oneof![4 => -6i32..10, 1 => Just(-53)],
            prop_oneof![Just(0.0), 0.0f64..1.0, Just(-1.0)],
            prop_oneof![
                Just(None),
                (0u64..1000).prop_map(|v| Some(ZeroCount::ZeroCountInt(v))),
                any_f64().prop_map(|v| Some(ZeroCount::ZeroCountFloat(v))),
            ],
        ),
        (
            prop::collection::vec(span(), 0..3),
            prop::collection::vec(span(), 0..3),
            prop::collection::vec(-100i64..100, 0..8),
            prop::collection::vec(-100i64..100, 0..8),
            prop::collection::vec(any_f64(), 0..8),
            prop::collection::vec(any_f64(), 0..8),
            0i32..6,
            any::<i64>(),
        ),
        // Bounds: sorted or not, any floats, sometimes on an exponential schema.
        prop::collection::vec(any_f64(), 0..4),
    )
        .prop_map(
            |((count, sum, schema, zt, zc), (ps, ns, pd, nd, pc, nc, hint, ts), custom_values)| {
                proto::Histogram {
                    count,
                    sum,
                    schema,
                    zero_threshold: zt,
                    zero_count: zc,
                    negative_spans: ns,
                    negative_deltas: nd,
                    negative_counts: nc,
                    positive_spans: ps,
                    positive_deltas: pd,
                    positive_counts: pc,
                    reset_hint: hint,
                    timestamp: ts,
                    custom_values,
                }
            },
        )
}

fn timeseries() -> impl Strategy<Value = proto::TimeSeries> {
    (
        labels(),
        prop::collection::vec(
            (any_f64(), any::<i64>())
                .prop_map(|(value, timestamp)| proto::Sample { value, timestamp }),
            0..3,
        ),
        prop::collection::vec(
            (label_value(), any_f64(), any::<i64>()).prop_map(|(v, value, timestamp)| {
                proto::Exemplar {
                    labels: vec![proto::Label {
                        name: "trace_id".into(),
                        value: v,
                    }],
                    value,
                    timestamp,
                }
            }),
            0..2,
        ),
        prop::collection::vec(histogram(), 0..2),
    )
        .prop_map(
            |(labels, samples, exemplars, histograms)| proto::TimeSeries {
                labels,
                samples,
                exemplars,
                histograms,
            },
        )
}

fn write_request() -> impl Strategy<Value = proto::WriteRequest> {
    (
        prop::collection::vec(timeseries(), 0..6),
        prop::collection::vec(
            (0i32..9, "[a-z_]{0,8}", "\\PC{0,10}", "[a-z]{0,5}").prop_map(|(t, n, h, u)| {
                proto::MetricMetadata {
                    r#type: t,
                    metric_family_name: n,
                    help: h,
                    unit: u,
                }
            }),
            0..3,
        ),
    )
        .prop_map(|(timeseries, metadata)| proto::WriteRequest {
            timeseries,
            metadata,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The zero-copy decoder agrees with prost + the reference conversion.
    #[test]
    fn zero_copy_decoder_matches_prost(req in write_request(), max_labels in 2usize..8) {
        let limits = Limits {
            labels: gmc_model::ValidationLimits { max_labels, ..Default::default() },
            ..Limits::default()
        };
        let buf = req.encode_to_vec();
        let decoded = remote_write::decode(&buf, &limits).unwrap();
        let (want, want_rejected) = reference(&proto::WriteRequest::decode(&buf[..]).unwrap(), &limits);
        prop_assert_eq!(dump(&decoded.batch, &DecodeReport::default()), want);
        prop_assert_eq!(&decoded.report.rejected, &want_rejected);
        prop_assert_eq!(decoded.report.samples_accepted as usize, decoded.batch.len_samples());
    }

    /// Decoding the parts of a split request gives the series, metadata, rejections and
    /// messages of decoding it whole, in order.
    #[test]
    fn split_parts_decode_to_the_whole(req in write_request(), parts in 1usize..5, max_labels in 2usize..8) {
        let limits = Limits {
            labels: gmc_model::ValidationLimits { max_labels, ..Default::default() },
            ..Limits::default()
        };
        let buf = req.encode_to_vec();
        let whole = remote_write::decode(&buf, &limits).unwrap();
        let pieces = remote_write::split(&buf, parts);
        prop_assert!(pieces.len() <= parts.max(1));
        prop_assert_eq!(pieces.iter().map(|p| p.bytes.len()).sum::<usize>(), buf.len());
        let (mut series, mut meta, mut rejected, mut messages) = (String::new(), String::new(), BTreeMap::new(), Vec::new());
        for p in &pieces {
            prop_assert_eq!(p.bytes, &buf[p.offset..p.offset + p.bytes.len()]);
            let d = remote_write::decode_part(*p, &limits).unwrap();
            for line in dump(&d.batch, &DecodeReport::default()).lines().filter(|l| !l.starts_with("report")) {
                let out = if line.starts_with("metadata") { &mut meta } else { &mut series };
                out.push_str(line);
                out.push('\n');
            }
            for (k, v) in &d.report.rejected {
                *rejected.entry(*k).or_insert(0u64) += v;
            }
            messages.extend(d.report.messages.iter().cloned());
        }
        let want = dump(&whole.batch, &DecodeReport::default());
        let want_series: String = want.lines().filter(|l| !l.starts_with("report") && !l.starts_with("metadata")).map(|l| format!("{l}\n")).collect();
        let want_meta: String = want.lines().filter(|l| l.starts_with("metadata")).map(|l| format!("{l}\n")).collect();
        prop_assert_eq!(series, want_series);
        prop_assert_eq!(meta, want_meta);
        prop_assert_eq!(rejected, whole.report.rejected.clone());
        messages.truncate(gmc_wire::MAX_MESSAGES);
        prop_assert_eq!(messages, whole.report.messages.clone());
    }

    /// On any bytes, the parts fail exactly when the whole fails, and the first failing
    /// part reports the whole request's error (same offset).
    #[test]
    fn split_parts_fail_like_the_whole(req in write_request(), noise in prop::collection::vec(any::<u8>(), 0..8), at in any::<prop::sample::Index>(), parts in 2usize..5) {
        let mut buf = req.encode_to_vec();
        let i = at.index(buf.len() + 1);
        buf.splice(i..i, noise);
        let limits = Limits::default();
        let whole = remote_write::decode(&buf, &limits).map(|_| ()).map_err(|e| e.to_string());
        let first_err = remote_write::split(&buf, parts)
            .into_iter()
            .find_map(|p| remote_write::decode_part(p, &limits).err())
            .map(|e| e.to_string());
        prop_assert_eq!(whole.err(), first_err);
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = remote_write::decode(&buf, &Limits::default());
        let _ = gmc_wire::snappy::decompress_capped(&buf, 1 << 16);
    }

    /// A valid batch survives `encode_write_request` → decompress → decode bit-exactly.
    #[test]
    fn encode_then_decode_is_identity(mut req in write_request()) {
        // Millisecond timestamps beyond the nanosecond range saturate on decode, which is
        // not invertible; keep them in range here (saturation is covered by gmc-model).
        for ts in &mut req.timeseries {
            ts.samples.iter_mut().for_each(|s| s.timestamp %= 9_000_000_000_000);
            ts.histograms.iter_mut().for_each(|h| h.timestamp %= 9_000_000_000_000);
        }
        let limits = Limits::default();
        let buf = req.encode_to_vec();
        let first = remote_write::decode(&buf, &limits).unwrap();
        let body = remote_write::encode_write_request(&first.batch);
        let raw = remote_write::decompress(&body, &limits).unwrap();
        let second = remote_write::decode(&raw, &limits).unwrap();
        prop_assert!(second.report.is_clean(), "{}", second.report);
        prop_assert_eq!(
            dump(&second.batch, &DecodeReport::default()),
            dump(&first.batch, &DecodeReport::default())
        );
    }
}

// ---------------------------------------------------------------------------------------
// Exposition: a small renderer, then parse it back.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct TextSeries {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    ts_ms: Option<i64>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn render(series: &[TextSeries], om: bool) -> String {
    let mut out = String::new();
    for s in series {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            let l: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            out.push_str(&format!("{{{}}}", l.join(",")));
        }
        out.push(' ');
        out.push_str(&render_value(s.value));
        if let Some(ms) = s.ts_ms {
            if om {
                let sign = if ms < 0 { "-" } else { "" };
                out.push_str(&format!(
                    " {sign}{}.{:03}",
                    (ms / 1000).abs(),
                    (ms % 1000).abs()
                ));
            } else {
                out.push_str(&format!(" {ms}"));
            }
        }
        out.push('\n');
    }
    if om {
        out.push_str("# EOF\n");
    }
    out
}

fn text_series() -> impl Strategy<Value = TextSeries> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        prop::collection::btree_map(
            "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
            "\\PC{1,10}|[\"\\\\\n]{1,4}",
            0..5,
        ),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY)
        ],
        prop::option::of(-9_000_000_000_000i64..9_000_000_000_000),
    )
        .prop_map(|(name, mut labels, value, ts_ms)| {
            labels.remove(METRIC_NAME);
            TextSeries {
                name,
                labels,
                value,
                ts_ms,
            }
        })
        .prop_filter("_created series are skipped by design", |s| {
            !s.name.ends_with("_created")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Rendered text parses back to the same series in both formats.
    #[test]
    fn exposition_render_then_parse(series in prop::collection::vec(text_series(), 0..8), om: bool) {
        let format = if om { exposition::Format::OpenMetrics } else { exposition::Format::Prometheus };
        let text = render(&series, om);
        let opts = exposition::Options::new(format, 77);
        let d = exposition::decode(&text, &opts, &Limits::default()).unwrap();
        prop_assert!(d.report.is_clean(), "{}\n{}", d.report, text);
        prop_assert_eq!(d.batch.len_series(), series.len());
        for (s, got) in series.iter().zip(d.batch.iter()) {
            prop_assert_eq!(got.label(METRIC_NAME), Some(s.name.as_str()));
            for (k, v) in &s.labels {
                prop_assert_eq!(got.label(k), Some(v.as_str()));
            }
            prop_assert_eq!(got.labels().count(), s.labels.len() + 1);
            let f = got.floats[0];
            if s.value.is_nan() {
                prop_assert!(f.value.is_nan());
            } else {
                prop_assert_eq!(fmt_f64(f.value), fmt_f64(s.value));
            }
            prop_assert_eq!(f.ts_nanos, s.ts_ms.map_or(77, millis_to_nanos));
        }
    }
}

/// The same series as a remote write 2.0 request: every label string interned (in the
/// order given, duplicates and invalid names included), samples and histograms as they
/// are (2.0 encodes them alike). Family metadata has no 2.0 form and is left out.
fn as_v2(req: &proto::WriteRequest) -> remote_write::v2::proto::Request {
    use remote_write::v2::proto as v2;
    let mut symbols = vec![String::new()];
    let mut intern = |s: &str| -> u32 {
        let at = symbols.iter().position(|x| x == s).unwrap_or_else(|| {
            symbols.push(s.to_owned());
            symbols.len() - 1
        });
        at as u32
    };
    let timeseries = req
        .timeseries
        .iter()
        .map(|ts| v2::TimeSeries {
            labels_refs: ts
                .labels
                .iter()
                .flat_map(|l| [intern(&l.name), intern(&l.value)])
                .collect(),
            samples: ts.samples.clone(),
            histograms: ts.histograms.clone(),
            exemplars: ts
                .exemplars
                .iter()
                .map(|e| v2::Exemplar {
                    labels_refs: Vec::new(),
                    value: e.value,
                    timestamp: e.timestamp,
                })
                .collect(),
            metadata: None,
            created_timestamp: 0,
        })
        .collect();
    v2::Request {
        symbols,
        timeseries,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Remote write 2.0 decodes any request into what 1.0 decodes from the same series:
    /// the same series, samples and histograms, and the same rejections by reason.
    #[test]
    fn v2_decodes_like_v1(req in write_request(), max_labels in 2usize..8, parts in 1usize..4) {
        let limits = Limits {
            labels: gmc_model::ValidationLimits { max_labels, ..Default::default() },
            ..Limits::default()
        };
        let v1_buf = req.encode_to_vec();
        let v1 = remote_write::decode(&v1_buf, &limits).unwrap();
        let v2_buf = as_v2(&req).encode_to_vec();
        let layout = remote_write::v2::split(&v2_buf, parts, &limits).unwrap();
        let mut got = String::new();
        let mut rejected = std::collections::BTreeMap::new();
        let mut skipped = std::collections::BTreeMap::new();
        for p in layout.parts {
            let d = remote_write::v2::decode_part(&layout.symbols, p, &limits).unwrap();
            got.push_str(&dump(&d.batch, &DecodeReport::default()));
            for (k, v) in d.report.rejected { *rejected.entry(k).or_insert(0) += v; }
            for (k, v) in d.report.skipped { *skipped.entry(k).or_insert(0) += v; }
        }
        // Series lines only: each dump ends with its report, and 1.0's family metadata
        // has no 2.0 form.
        let series = |d: &str| -> String {
            d.lines()
                .filter(|l| !l.starts_with("report") && !l.starts_with("metadata"))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        prop_assert_eq!(series(&got), series(&dump(&v1.batch, &DecodeReport::default())));
        prop_assert_eq!(rejected, v1.report.rejected);
        let mut want_skipped = v1.report.skipped.clone();
        want_skipped.remove("metadata_without_name");
        prop_assert_eq!(skipped, want_skipped);
    }

    /// Arbitrary bytes never panic the 2.0 decoder.
    #[test]
    fn v2_arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = remote_write::v2::decode(&buf, &Limits::default());
    }
}
