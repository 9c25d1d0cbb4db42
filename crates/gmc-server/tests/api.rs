//! In-process API tests (router driven with `oneshot`, no sockets): remote_write round
//! trips bit-exactly through the store, metadata-only requests, and admission control.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gmc_model::{Histogram, Matcher, Span, WriteBatch, STALE_NAN_BITS};
use gmc_server::config::Config;
use gmc_server::AppState;
use tower::ServiceExt as _;

fn state(config: Config) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = gmc_tsdb::Db::open(dir.path(), gmc_tsdb::Config::default()).unwrap();
    (AppState::new(config, Arc::new(db)), dir)
}

fn rw_request(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/write")
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(Body::from(body))
        .unwrap()
}

/// Send `b` over remote_write; the answer's status.
async fn write(st: &AppState, b: &WriteBatch<'_>) -> StatusCode {
    let body = gmc_wire::remote_write::encode_write_request(b);
    gmc_server::router(st.clone())
        .oneshot(rw_request(body))
        .await
        .unwrap()
        .status()
}

/// The body of an answer, as text.
async fn body_text(resp: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// How many series the store holds under metric `name`.
fn series_named(st: &AppState, name: &str) -> usize {
    let q = st.db.querier(0, i64::MAX).unwrap();
    q.select(&[Matcher::equal("__name__", name)]).unwrap().len()
}

/// `n` valid series `big_request_series` with long labels, one sample each a minute ago:
/// large enough, encoded, to be decoded in parts.
fn big_request_batch(n: usize) -> WriteBatch<'static> {
    let t = now_ms() - 60_000;
    let mut good = WriteBatch::new();
    for i in 0..n {
        let mut s = good.series();
        s.label("__name__", "big_request_series");
        s.label(
            "instance",
            format!("host-{i:05}.trading.example.internal:9100"),
        );
        s.label("job", "order-gateway-with-a-long-job-name");
        s.label("venue", ["XNAS", "XNYS", "BATS"][i % 3]);
        s.float(t * 1_000_000, i as f64);
        s.finish().unwrap();
    }
    good
}

/// What [`partial_write`] leaves for more checks.
struct PartialWrite {
    /// Headers of the answer to the partial write.
    headers: axum::http::HeaderMap,
    /// The server whose sample limit refused the whole request.
    limited: AppState,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Send `body`, a request of `n` series `big_request_series` of which #3 and #n-2 are
/// invalid, built into a request by `request`: a default server stores the rest and
/// answers 400 naming both (`name_of(index)` as the message names a series); a server
/// whose sample limit is below the request's total stores nothing, whichever way the
/// request was split.
async fn partial_write(
    request: fn(Vec<u8>) -> Request<Body>,
    body: Vec<u8>,
    n: usize,
    name_of: fn(usize) -> String,
) -> PartialWrite {
    let (st, d1) = state(Config::default());
    let resp = gmc_server::router(st.clone())
        .oneshot(request(body.clone()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let headers = resp.headers().clone();
    let msg = body_text(resp).await;
    assert!(
        msg.contains(&format!("stored {} samples; refused 2 series", n - 2)),
        "{msg}"
    );
    assert!(
        msg.contains(&name_of(3)) && msg.contains(&name_of(n - 2)),
        "{msg}"
    );
    assert_eq!(series_named(&st, "big_request_series"), n - 2);

    let mut cfg = Config::default();
    cfg.ingest.max_samples_per_request = n - 100;
    let (limited, d2) = state(cfg);
    let resp = gmc_server::router(limited.clone())
        .oneshot(request(body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(series_named(&limited, "big_request_series"), 0);
    PartialWrite {
        headers,
        limited,
        _dirs: (d1, d2),
    }
}

fn now_ms() -> i64 {
    gmc_model::now_nanos() / 1_000_000
}

#[tokio::test]
async fn remote_write_round_trips_floats_stale_markers_and_histograms() {
    let (st, _dir) = state(Config::default());
    let t = now_ms() - 60_000;
    let mut b = WriteBatch::new();
    let mut s = b.series();
    s.label("__name__", "fills_total");
    s.label("venue", "XNAS");
    s.float(t * 1_000_000, 1.0);
    s.float((t + 1000) * 1_000_000, f64::from_bits(STALE_NAN_BITS));
    s.finish().unwrap();
    let h = Histogram {
        schema: 3,
        zero_threshold: 1e-9,
        zero_count: 1.0,
        count: 6.0,
        sum: 42.5,
        positive_spans: vec![Span {
            offset: 2,
            length: 2,
        }],
        positive_buckets: vec![2.0, 3.0],
        ..Histogram::default()
    };
    let mut s = b.series();
    s.label("__name__", "match_latency_seconds");
    s.histogram(t * 1_000_000, h.clone());
    s.finish().unwrap();
    assert_eq!(write(&st, &b).await, StatusCode::NO_CONTENT);

    let q = st.db.querier(0, i64::MAX).unwrap();
    let fills = q
        .select(&[Matcher::equal("__name__", "fills_total")])
        .unwrap();
    let samples: Vec<_> = fills[0].iter().collect();
    assert_eq!(samples.len(), 2);
    match samples[1].value {
        gmc_tsdb::SampleValue::Float(v) => assert_eq!(v.to_bits(), STALE_NAN_BITS),
        ref other => panic!("expected the stale marker, got {other:?}"),
    }
    let lat = q
        .select(&[Matcher::equal("__name__", "match_latency_seconds")])
        .unwrap();
    let first = lat[0].iter().next().unwrap();
    match &first.value {
        gmc_tsdb::SampleValue::Histogram(got) => {
            assert_eq!(got.count, h.count);
            assert_eq!(got.sum, h.sum);
            assert_eq!(got.schema, h.schema);
            assert_eq!(got.positive_spans, h.positive_spans);
            assert_eq!(got.positive_buckets, h.positive_buckets);
        }
        other => panic!("expected a histogram, got {other:?}"),
    }
}

/// Custom-bucket histograms (NHCB, as Prometheus 3 sends converted classic histograms)
/// are stored with their bounds and answered by PromQL: the raw sample lists its
/// bounds, `histogram_quantile` interpolates linearly, and a sum over series whose
/// bounds differ is taken on the bounds they share.
#[tokio::test]
async fn custom_bucket_histograms_are_stored_and_queried() {
    let (st, _dir) = state(Config::default());
    let t = now_ms() - 30_000;
    let nhcb = |bounds: &[f64], buckets: &[f64]| Histogram::custom_buckets(bounds, buckets, 5.0);
    let mut b = WriteBatch::new();
    for (venue, h) in [
        ("XNAS", nhcb(&[5.0, 10.0], &[1.0, 2.0, 1.0])),
        ("XLON", nhcb(&[2.0, 10.0], &[4.0, 0.0, 1.0])),
    ] {
        let mut s = b.series();
        s.label("__name__", "ack_latency_us");
        s.label("venue", venue);
        s.histogram(t * 1_000_000, h);
        s.finish().unwrap();
    }
    assert_eq!(write(&st, &b).await, StatusCode::NO_CONTENT);

    let query = |q: &str| {
        let uri = format!(
            "/api/v1/query?query={}&time={}",
            q.replace(' ', "%20")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('(', "%28")
                .replace(')', "%29")
                .replace(',', "%2C"),
            (t + 1000) as f64 / 1000.0
        );
        Request::get(uri).body(Body::empty()).unwrap()
    };
    let get = |req: Request<Body>| {
        let st = st.clone();
        async move {
            let resp = gmc_server::router(st).oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        }
    };
    let v = get(query("ack_latency_us{venue=\"XNAS\"}")).await;
    let buckets = &v["data"]["result"][0]["histogram"][1]["buckets"];
    assert_eq!(
        buckets,
        &serde_json::json!([
            [0, "-Inf", "5", "1"],
            [0, "5", "10", "2"],
            [0, "10", "+Inf", "1"]
        ]),
        "{v}"
    );
    // Rank 2 of 4 lies halfway through (5, 10].
    let v = get(query(
        "histogram_quantile(0.5, ack_latency_us{venue=\"XNAS\"})",
    ))
    .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "7.5", "{v}");
    // The bounds both share are {10}: (-Inf,10] holds 1+2 and 4+0, (10,+Inf] 1 and 1.
    let v = get(query("sum(ack_latency_us)")).await;
    assert_eq!(
        v["data"]["result"][0]["histogram"][1]["buckets"],
        serde_json::json!([[0, "-Inf", "10", "7"], [0, "10", "+Inf", "2"]]),
        "{v}"
    );
}

#[tokio::test]
async fn metadata_only_request_is_accepted() {
    let (st, _dir) = state(Config::default());
    let mut b = WriteBatch::new();
    b.push_metadata(gmc_model::Metadata {
        metric_family: "orders_total".into(),
        metric_type: gmc_model::MetricType::Counter,
        help: "Orders sent.".into(),
        unit: String::new(),
    });
    let body = gmc_wire::remote_write::encode_write_request(&b);
    let resp = gmc_server::router(st)
        .oneshot(rw_request(body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn saturated_server_answers_429_with_retry_after() {
    let mut cfg = Config::default();
    cfg.server.max_inflight_writes = 1;
    cfg.server.overload_wait = std::time::Duration::from_millis(10);
    let (st, _dir) = state(cfg);
    // Hold the only write slot, as a long write would.
    let _held = st.write_slots.clone().acquire_owned().await.unwrap();
    let resp = gmc_server::router(st.clone())
        .oneshot(
            Request::post("/api/v1/push")
                .body(Body::from(r#"{"service":"s","metrics":{"a":1}}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let mut text = String::new();
    st.metrics.encode_text(&mut text);
    assert!(text.contains("gmc_ingest_overloaded_total 1"), "{text}");
}

#[tokio::test]
async fn gzip_bodies_are_decoded_with_the_size_cap() {
    use std::io::Write as _;
    let mut cfg = Config::default();
    cfg.ingest.max_body_bytes = 4096;
    let (st, _dir) = state(cfg);
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let ok = gz(b"gz_metric{job=\"z\"} 3\n");
    let resp = gmc_server::router(st.clone())
        .oneshot(
            Request::post("/api/v1/import/prometheus")
                .header("Content-Encoding", "gzip")
                .body(Body::from(ok))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // A gzip bomb: 1 MiB of zeros compresses to about 1 KiB, far under the body limit.
    let bomb = gz(&vec![b'#'; 1 << 20]);
    assert!(bomb.len() < 4096);
    let resp = gmc_server::router(st)
        .oneshot(
            Request::post("/api/v1/import/prometheus")
                .header("Content-Encoding", "gzip")
                .body(Body::from(bomb))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Every route the router serves is documented in the OpenAPI file (and nothing more).
#[test]
fn every_route_is_in_the_openapi_document() {
    let src = include_str!("../src/lib.rs");
    let doc: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    let documented: std::collections::BTreeSet<String> =
        doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed: std::collections::BTreeSet<String> = src
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"'))
        .filter_map(|rest| rest.split('"').next())
        // The Pushgateway wildcard is documented under its meaning.
        .map(|p| p.replace("{*rest}", "{grouping}"))
        .collect();
    assert!(routed.len() > 20, "route extraction broke: {routed:?}");
    assert_eq!(routed, documented);
}

/// History with a step of a minute or more reads the 1 m rollups and says so; the
/// figures equal the raw aggregation when the step is a whole number of minutes.
#[tokio::test]
async fn history_with_long_steps_reads_rollups_with_the_same_answer() {
    let (st, _dir) = state(Config::default());
    // Two hours of 10 s samples ending a minute ago, minute-aligned.
    let end_ms = (now_ms() / 60_000 - 1) * 60_000;
    let start_ms = end_ms - 2 * 3600 * 1000;
    let mut b = WriteBatch::new();
    let mut s = b.series();
    s.label("__name__", "pnl_usd");
    s.label("service", "risk");
    let mut expected_max = std::collections::BTreeMap::new();
    let mut t = start_ms;
    let mut i = 0u64;
    while t < end_ms {
        let v = ((i * 37) % 101) as f64 - 50.0;
        s.float(t * 1_000_000, v);
        // Step buckets are [from + k·10m, from + (k+1)·10m) with from = start_ms.
        let k = (t - start_ms).div_euclid(600_000);
        let e = expected_max.entry(k).or_insert(f64::MIN);
        *e = f64::max(*e, v);
        t += 10_000;
        i += 1;
    }
    s.finish().unwrap();
    st.db.append(&b).unwrap();
    let app = gmc_server::router(st.clone());
    let uri = format!(
        "/metrics/history/risk?metric=pnl_usd&from={}&to={}&step=10m&agg=max",
        start_ms as f64 / 1000.0,
        end_ms as f64 / 1000.0
    );
    let resp = app
        .clone()
        .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["resolution"], "1m", "{v}");
    let points = v["series"][0]["points"].as_array().unwrap();
    let got: Vec<f64> = points.iter().map(|p| p[1].as_f64().unwrap()).collect();
    let want: Vec<f64> = expected_max.values().copied().collect();
    assert_eq!(got, want);
    // A sub-minute step stays on raw samples.
    let uri = format!(
        "/metrics/history/risk?metric=pnl_usd&from={}&to={}&step=30s&agg=max",
        (end_ms - 600_000) as f64 / 1000.0,
        end_ms as f64 / 1000.0
    );
    let resp = app
        .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["resolution"], "raw");
}

/// A request large enough to be decoded and stored in parts on several cores (when the
/// machine has them) answers exactly as a small one: invalid series at both ends are
/// refused and named, every valid series is stored, and the sample limit applies to the
/// whole request, with nothing stored when it is exceeded.
#[tokio::test]
async fn large_requests_split_across_cores_answer_like_small_ones() {
    let n = 8_000usize;
    let good = big_request_batch(n);
    // The batch builder refuses invalid series, so encode a valid batch and break the
    // label name of two series in the protobuf message.
    let raw = {
        use prost::Message as _;
        let body = gmc_wire::remote_write::encode_write_request(&good);
        let buf = gmc_wire::remote_write::decompress(&body, &gmc_wire::Limits::default()).unwrap();
        let mut req = gmc_wire::remote_write::proto::WriteRequest::decode(&buf[..]).unwrap();
        for at in [3, n - 2] {
            req.timeseries[at].labels[0].name = "0bad".into();
        }
        req.encode_to_vec()
    };
    assert!(
        raw.len() > 2 * 256 * 1024,
        "request of {} bytes would not split",
        raw.len()
    );
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let done = partial_write(rw_request, body, n, |i| format!("#{i}")).await;
    let st = done.limited;
    let mut text = String::new();
    st.metrics.encode_text(&mut text);
    assert!(
        text.contains(
            r#"gmc_ingest_rejected_total{protocol="remote_write",reason="too_many_samples"} 1"#
        ),
        "{text}"
    );
}

fn rw2_request(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/write")
        .header("Content-Type", gmc_wire::remote_write::v2::CONTENT_TYPE)
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        .body(Body::from(body))
        .unwrap()
}

/// The three counts remote write 2.0 answers with, as (samples, histograms, exemplars).
fn written(headers: &axum::http::HeaderMap) -> (u64, u64, u64) {
    let get = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("missing {h} in {headers:?}"))
    };
    (
        get("x-prometheus-remote-write-samples-written"),
        get("x-prometheus-remote-write-histograms-written"),
        get("x-prometheus-remote-write-exemplars-written"),
    )
}

/// Remote write 2.0 stores what 1.0 stores, into the same series (a series first sent
/// over 1.0 goes on over 2.0), answers with the written counts, and takes the series'
/// metadata.
#[tokio::test]
async fn remote_write_2_stores_into_the_series_of_1_0_and_reports_what_it_wrote() {
    let (st, _dir) = state(Config::default());
    let t = now_ms() - 60_000;
    let batch = |t: i64| {
        let mut b = WriteBatch::new();
        let mut s = b.series();
        s.label("__name__", "orders_sent_total");
        s.label("service", "oms");
        s.label("venue", "XNAS");
        s.float(t * 1_000_000, 7.0);
        s.finish().unwrap();
        let mut s = b.series();
        s.label("__name__", "match_latency_seconds");
        s.label("service", "oms");
        s.histogram(
            t * 1_000_000,
            Histogram::custom_buckets(&[0.0001, 0.0005], &[3.0, 1.0, 0.0], 0.0009),
        );
        s.finish().unwrap();
        b.push_metadata(gmc_model::Metadata {
            metric_family: "orders_sent_total".into(),
            metric_type: gmc_model::MetricType::Counter,
            help: "Orders sent to venues.".into(),
            unit: String::new(),
        });
        b
    };
    assert_eq!(write(&st, &batch(t)).await, StatusCode::NO_CONTENT);
    let body = gmc_wire::remote_write::v2::encode_request(&batch(t + 1000));
    let resp = gmc_server::router(st.clone())
        .oneshot(rw2_request(body))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(written(resp.headers()), (1, 1, 0));

    let q = st.db.querier(0, i64::MAX).unwrap();
    let sent = q
        .select(&[Matcher::equal("__name__", "orders_sent_total")])
        .unwrap();
    assert_eq!(sent.len(), 1, "one series for both protocols");
    assert_eq!(sent[0].iter().count(), 2);
    let lat = q
        .select(&[Matcher::equal("__name__", "match_latency_seconds")])
        .unwrap();
    assert_eq!(lat[0].iter().count(), 2);
    let md = q.metadata(Some("orders_sent_total"));
    assert_eq!(md.len(), 1, "{md:?}");
    assert_eq!(md[0].help, "Orders sent to venues.");

    let mut text = String::new();
    st.metrics.encode_text(&mut text);
    assert!(
        text.contains(r#"gmc_ingest_samples_total{protocol="remote_write_v2"} 2"#),
        "{text}"
    );
}

/// A 2.0 request large enough to be decoded in parts: invalid series are refused alone
/// (400 naming them, with the written counts), and the sample limit counts the whole
/// request.
#[tokio::test]
async fn remote_write_2_partial_writes_answer_400_with_the_written_counts() {
    use gmc_wire::remote_write::v2;
    use prost::Message as _;
    let n = 8_000usize;
    let good = big_request_batch(n);
    let mut req = v2::to_proto(&good);
    let outside = req.symbols.len() as u32;
    for at in [3, n - 2] {
        req.timeseries[at].labels_refs[1] = outside;
    }
    let raw = req.encode_to_vec();
    assert!(
        raw.len() > 2 * 40 * 1024,
        "{} bytes would not split",
        raw.len()
    );
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let done = partial_write(rw2_request, body, n, |i| format!("series #{i}:")).await;
    assert_eq!(written(&done.headers), (n as u64 - 2, 0, 0));
}

/// Content types: 1.0 with or without the `proto` parameter (and with none at all), 2.0
/// by its parameter, anything else 415 naming what is accepted.
#[tokio::test]
async fn remote_write_content_types_choose_the_message() {
    let (st, _dir) = state(Config::default());
    let t = now_ms() - 60_000;
    let mut b = WriteBatch::new();
    let mut s = b.series();
    s.label("__name__", "ctype_probe");
    s.float(t * 1_000_000, 1.0);
    s.finish().unwrap();
    let v1 = gmc_wire::remote_write::encode_write_request(&b);
    let v2 = gmc_wire::remote_write::v2::encode_request(&b);
    let cases: [(&str, &Vec<u8>, u16); 6] = [
        ("", &v1, 204),
        ("application/x-protobuf", &v1, 204),
        (
            "application/x-protobuf;proto=prometheus.WriteRequest",
            &v1,
            204,
        ),
        (
            "application/x-protobuf; proto=io.prometheus.write.v2.Request",
            &v2,
            204,
        ),
        (
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            &v2,
            415,
        ),
        ("application/json", &v1, 415),
    ];
    for (ctype, body, want) in cases {
        let mut req = Request::post("/api/v1/write").header("Content-Encoding", "snappy");
        if !ctype.is_empty() {
            req = req.header("Content-Type", ctype);
        }
        let resp = gmc_server::router(st.clone())
            .oneshot(req.body(Body::from(body.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want, "{ctype:?}");
    }
}
