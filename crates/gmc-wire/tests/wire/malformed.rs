//! Malformed inputs per decoder: each gives a typed error or a counted rejection, never a
//! panic. NaN and ±Inf values are valid samples and must come through.

use gmc_model::{ValidationLimits, STALE_NAN_BITS};
use gmc_wire::remote_write::proto;
use gmc_wire::{exposition, influx, json_push, remote_write, snappy, Error, Limits};
use prost::Message as _;

fn label(n: &str, v: &str) -> proto::Label {
    proto::Label {
        name: n.into(),
        value: v.into(),
    }
}

fn one_series(labels: Vec<proto::Label>, values: &[f64]) -> Vec<u8> {
    proto::WriteRequest {
        timeseries: vec![proto::TimeSeries {
            labels,
            samples: values
                .iter()
                .map(|&value| proto::Sample {
                    value,
                    timestamp: 1,
                })
                .collect(),
            ..Default::default()
        }],
        metadata: vec![],
    }
    .encode_to_vec()
}

/// What a malformed remote_write input must produce.
#[derive(Debug)]
enum Want {
    /// The whole request fails with this reason.
    Fails(&'static str),
    /// The request decodes; one series is rejected with this reason.
    Rejects(&'static str),
    /// The request decodes with this many samples and no rejection.
    Accepts(u64),
}

fn check_rw(name: &str, buf: &[u8], limits: &Limits, want: Want) {
    let got = remote_write::decode(buf, limits);
    match (&want, &got) {
        (Want::Fails(reason), Err(e)) => assert_eq!(e.reason(), *reason, "{name}: {e}"),
        (Want::Rejects(reason), Ok(d)) => {
            assert_eq!(
                d.report.rejected.get(reason),
                Some(&1),
                "{name}: {:?}",
                d.report
            );
            assert!(!d.report.messages.is_empty(), "{name}");
        }
        (Want::Accepts(n), Ok(d)) => {
            assert!(d.report.is_clean(), "{name}: {:?}", d.report);
            assert_eq!(d.report.samples_accepted, *n, "{name}");
        }
        _ => panic!("{name}: want {want:?}, got {got:?}"),
    }
}

#[test]
fn remote_write_malformed_table() {
    let limits = Limits::default();
    let good = one_series(vec![label("__name__", "m"), label("a", "b")], &[1.0]);
    let huge_varint = [
        0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ];
    let many_labels: Vec<_> = std::iter::once(label("__name__", "m"))
        .chain((0..100_000).map(|i| label(&format!("l{i}"), "v")))
        .collect();
    let mut bad_utf8_name = one_series(vec![label("__name__", "m"), label("QQ", "v")], &[1.0]);
    let at = bad_utf8_name.windows(2).position(|w| w == b"QQ").unwrap();
    bad_utf8_name[at + 1] = 0xc3; // a lead byte without its continuation
    let table: Vec<(&str, Vec<u8>, Want)> = vec![
        ("empty request", vec![], Want::Accepts(0)),
        ("good", good.clone(), Want::Accepts(1)),
        (
            "truncated by one byte",
            good[..good.len() - 1].to_vec(),
            Want::Fails("invalid_protobuf"),
        ),
        (
            "truncated to key",
            good[..1].to_vec(),
            Want::Fails("invalid_protobuf"),
        ),
        (
            "huge varint length",
            huge_varint.to_vec(),
            Want::Fails("invalid_protobuf"),
        ),
        (
            "11-byte varint",
            vec![0x80; 11],
            Want::Fails("invalid_protobuf"),
        ),
        (
            "field number zero",
            vec![0x02, 0x00],
            Want::Fails("invalid_protobuf"),
        ),
        ("wire type 6", vec![0x0e], Want::Fails("invalid_protobuf")),
        (
            "timeseries as varint",
            vec![0x08, 0x01],
            Want::Fails("invalid_protobuf"),
        ),
        (
            "stray end group",
            vec![0x0c],
            Want::Fails("invalid_protobuf"),
        ),
        (
            "unknown fields skipped",
            [
                &[
                    0x10, 0x05, 0x25, 1, 2, 3, 4, 0x29, 0, 0, 0, 0, 0, 0, 0, 0, 0x33, 0x08, 0x01,
                    0x34,
                ][..],
                &good[..],
            ]
            .concat(),
            Want::Accepts(1),
        ),
        (
            "sample value as varint",
            vec![0x0a, 0x04, 0x12, 0x02, 0x08, 0x01],
            Want::Fails("invalid_protobuf"),
        ),
        (
            "label as fixed64",
            vec![0x0a, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0, 0],
            Want::Fails("invalid_protobuf"),
        ),
        (
            "packed doubles not multiple of 8",
            vec![0x0a, 0x05, 0x22, 0x03, 0x52, 0x01, 0x00],
            Want::Fails("invalid_protobuf"),
        ),
        (
            "invalid utf-8 in name",
            bad_utf8_name,
            Want::Rejects("invalid_utf8"),
        ),
        (
            "empty label name",
            one_series(vec![label("__name__", "m"), label("", "v")], &[1.0]),
            Want::Rejects("empty_label_name"),
        ),
        (
            "duplicate label name",
            one_series(
                vec![label("__name__", "m"), label("a", "1"), label("a", "2")],
                &[1.0],
            ),
            Want::Rejects("duplicate_label_name"),
        ),
        (
            "missing metric name",
            one_series(vec![label("a", "1")], &[1.0]),
            Want::Rejects("missing_metric_name"),
        ),
        (
            "100k labels",
            one_series(many_labels, &[1.0]),
            Want::Rejects("too_many_labels"),
        ),
        (
            "control char in name",
            one_series(vec![label("__name__", "m"), label("a\u{1}", "1")], &[1.0]),
            Want::Rejects("invalid_label_name"),
        ),
        (
            "NaN, ±Inf and stale are valid",
            one_series(
                vec![label("__name__", "m")],
                &[
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::from_bits(STALE_NAN_BITS),
                ],
            ),
            Want::Accepts(4),
        ),
    ];
    for (name, buf, want) in table {
        check_rw(name, &buf, &limits, want);
    }
    let tight = Limits {
        max_samples: 1,
        ..Limits::default()
    };
    let two = one_series(vec![label("__name__", "m")], &[1.0, 2.0]);
    check_rw(
        "too many samples",
        &two,
        &tight,
        Want::Fails("too_many_samples"),
    );
    let small = Limits {
        max_body_bytes: 4,
        ..Limits::default()
    };
    check_rw(
        "body too large",
        &two,
        &small,
        Want::Fails("body_too_large"),
    );
    let long = Limits {
        labels: ValidationLimits {
            max_value_bytes: 3,
            ..ValidationLimits::default()
        },
        ..Limits::default()
    };
    let v = one_series(vec![label("__name__", "m"), label("a", "long")], &[1.0]);
    check_rw(
        "label value too long",
        &v,
        &long,
        Want::Rejects("label_value_too_long"),
    );
}

#[test]
fn remote_write_histogram_errors_reject_the_series() {
    let h = proto::Histogram {
        count: Some(proto::histogram::Count::CountInt(1)),
        schema: 9, // out of range
        ..Default::default()
    };
    let spans_mismatch = proto::Histogram {
        positive_spans: vec![proto::BucketSpan {
            offset: 0,
            length: 3,
        }],
        positive_deltas: vec![1],
        ..Default::default()
    };
    for (name, h) in [("schema", h), ("spans", spans_mismatch)] {
        let buf = proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![label("__name__", "h")],
                histograms: vec![h],
                ..Default::default()
            }],
            metadata: vec![],
        }
        .encode_to_vec();
        check_rw(
            name,
            &buf,
            &Limits::default(),
            Want::Rejects("invalid_histogram"),
        );
    }
}

#[test]
fn every_truncation_of_a_request_is_an_error_or_a_prefix() {
    let buf = proto::WriteRequest {
        timeseries: (0..3)
            .map(|i| proto::TimeSeries {
                labels: vec![label("__name__", "m"), label("i", &i.to_string())],
                samples: vec![proto::Sample {
                    value: 1.0,
                    timestamp: 1_700_000_000_000,
                }],
                histograms: vec![proto::Histogram {
                    count: Some(proto::histogram::Count::CountFloat(2.0)),
                    positive_spans: vec![proto::BucketSpan {
                        offset: 1,
                        length: 1,
                    }],
                    positive_counts: vec![2.0],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
    .encode_to_vec();
    for cut in 0..buf.len() {
        // Never panics; a cut at a series boundary is a valid shorter request.
        if let Ok(d) = remote_write::decode(&buf[..cut], &Limits::default()) {
            assert!(d.batch.len_series() < 3);
        }
    }
}

#[test]
fn snappy_malformed_table() {
    let body = snappy::compress(&b"0123456789".repeat(50));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "invalid_snappy"),
        (
            "truncated",
            body[..body.len() / 2].to_vec(),
            "invalid_snappy",
        ),
        ("header only", body[..2].to_vec(), "invalid_snappy"),
        ("bad varint header", vec![0xff; 12], "invalid_snappy"),
        (
            "announces 4 GiB",
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            "body_too_large",
        ),
    ];
    for (name, b, reason) in cases {
        match snappy::decompress_capped(&b, 1 << 20) {
            Err(e) => assert_eq!(e.reason(), reason, "{name}: {e}"),
            Ok(v) => panic!("{name}: decoded {} bytes", v.len()),
        }
    }
    assert!(matches!(
        snappy::decompress_capped(&body, 499),
        Err(Error::BodyTooLarge {
            len: 500,
            limit: 499
        })
    ));
}

#[test]
fn exposition_malformed_table() {
    let opts = exposition::Options::new(exposition::Format::Prometheus, 0);
    let lim = Limits::default();
    let bad = [
        "m{",
        "m{a}",
        "m{a=}",
        "m{a=\"x}",
        "m{a=\"x\" b=\"y\"} 1",
        "m 1 2 3",
        "m one",
        "m 1 1.5",
        "{} 1",
        "{\"unterminated} 1",
        "9m 1",
        "m{=\"x\"} 1",
        "# TYPE",
        "# TYPE m bogus",
        "# HELP \"m",
        "m\u{0}x 1",
    ];
    for line in bad {
        let text = format!("{line}\n");
        let d = exposition::decode(&text, &opts, &lim).unwrap();
        assert_eq!(d.report.rejected_total(), 1, "{line:?}: {:?}", d.report);
        assert!(d.report.messages[0].starts_with("line 1:"), "{line:?}");
        assert!(d.batch.is_empty());
    }
    // Special values are valid.
    let d = exposition::decode("a NaN\nb +Inf\nc -Inf\nd 1e-310\n", &opts, &lim).unwrap();
    assert_eq!(d.report.samples_accepted, 4);
    // A label name that is valid syntax but invalid as a series (duplicate).
    let d = exposition::decode("m{a=\"1\",a=\"2\"} 1\n", &opts, &lim).unwrap();
    assert_eq!(d.report.rejected["duplicate_label_name"], 1);
    let tight = Limits {
        max_samples: 1,
        ..Limits::default()
    };
    assert!(matches!(
        exposition::decode("a 1\nb 2\n", &opts, &tight),
        Err(Error::TooManySamples { limit: 1 })
    ));
    let om = exposition::Options::new(exposition::Format::OpenMetrics, 0);
    assert!(matches!(
        exposition::decode("", &om, &lim),
        Err(Error::MissingEof)
    ));
    assert!(matches!(
        exposition::decode("# EOF\n\n", &om, &lim),
        Err(Error::Syntax { line: 2, .. })
    ));
}

#[test]
fn influx_malformed_table() {
    let lim = Limits::default();
    let bad = [
        "m",
        "m ",
        "m v",
        "m v=",
        "m =1",
        "m,t v=1",
        "m,t=1",
        "m v=1 x",
        "m v=1.2.3",
        "m v=1u2",
        "m v=-1u",
        "m v=\"x",
        "m v=1,",
        "m v=99999999999999999999i",
        "m v=1 99999999999999999999",
    ];
    for line in bad {
        let d = influx::decode(line, influx::Precision::Nanoseconds, 0, &lim).unwrap();
        assert_eq!(d.report.rejected_total(), 1, "{line:?}: {:?}", d.report);
        assert!(d.batch.is_empty(), "{line:?}");
    }
    let d = influx::decode(
        "m v=NaN,w=inf,x=-inf",
        influx::Precision::Nanoseconds,
        0,
        &lim,
    )
    .unwrap();
    assert_eq!(d.report.samples_accepted, 3);
}

#[test]
fn json_malformed_table() {
    let lim = Limits::default();
    let whole = [
        ("", "invalid_json"),
        ("{", "invalid_json"),
        ("[1,", "invalid_json"),
        ("null", "invalid_object"),
        ("\"x\"", "invalid_object"),
    ];
    for (body, reason) in whole {
        match json_push::decode(body.as_bytes(), 0, &lim) {
            Err(e) => assert_eq!(e.reason(), reason, "{body:?}"),
            Ok(d) => panic!("{body:?}: {:?}", d.report),
        }
    }
    // Deep nesting beyond serde_json's recursion limit is an error, not a stack overflow.
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(json_push::decode(deep.as_bytes(), 0, &lim).is_err());
    let per_metric = br#"{"service": "s", "metrics": {"a": null, "b": "1", "c": [], "d": 1}}"#;
    let d = json_push::decode(per_metric, 0, &lim).unwrap();
    assert_eq!(d.report.rejected["invalid_value"], 3);
    assert_eq!(d.report.samples_accepted, 1);
}
