//! Every ingest protocol stores data that the REST API reads back, durably.

use serde_json::Value;

use crate::harness::Gmc;

fn series_named<'a>(v: &'a Value, metric: &str) -> Vec<&'a Value> {
    v["series"]
        .as_array()
        .map(|a| a.iter().filter(|s| s["metric"] == metric).collect())
        .unwrap_or_default()
}

#[test]
fn json_push_flattens_and_reads_back() {
    let g = Gmc::start();
    let body = serde_json::json!({
        "service": "oms",
        "labels": {"venue": "XNAS"},
        "metrics": {"cpu_percent": 12.5, "disk_io": {"read_bytes": 1024, "write_bytes": 7}}
    });
    let (code, text) = g.post(
        "/api/v1/push",
        "application/json",
        body.to_string().into_bytes(),
    );
    assert_eq!(code, 200, "{text}");
    let (code, v) = g.get_json("/metrics/oms");
    assert_eq!(code, 200, "{v}");
    let cpu = series_named(&v, "cpu_percent");
    assert_eq!(cpu.len(), 1, "{v}");
    assert_eq!(cpu[0]["value"], 12.5);
    assert_eq!(cpu[0]["labels"]["venue"], "XNAS");
    assert_eq!(cpu[0]["labels"]["service"], "oms");
    assert_eq!(series_named(&v, "disk_io_read_bytes")[0]["value"], 1024.0);
    let (code, v) = g.get_json("/metrics/nosuchservice");
    assert_eq!(code, 404, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("nosuchservice"));
}

#[test]
fn influx_line_protocol_with_precision() {
    let g = Gmc::start();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!(
        "orders,service=gw,venue=XNYS filled=10i,rejected=1i {now_s}\nlatency,service=gw value=0.5 {now_s}\n"
    );
    let (code, text) = g.post("/write?precision=s", "text/plain", body.into_bytes());
    assert_eq!(code, 204, "{text}");
    let (_, v) = g.get_json("/metrics/gw");
    assert_eq!(series_named(&v, "orders_filled")[0]["value"], 10.0, "{v}");
    assert_eq!(series_named(&v, "latency")[0]["value"], 0.5, "{v}");
    let ts = series_named(&v, "latency")[0]["timestamp"]
        .as_f64()
        .unwrap();
    assert_eq!(ts, now_s as f64);
    let (code, _) = g.post(
        "/api/v2/write?precision=ms",
        "text/plain",
        format!("m2,service=gw v=1 {}\n", now_s * 1000).into_bytes(),
    );
    assert_eq!(code, 204);
}

#[test]
fn text_import_and_pushgateway_paths() {
    let g = Gmc::start();
    let text = "# TYPE risk_exposure_usd gauge\nrisk_exposure_usd{desk=\"fx\"} 1.5e6\n";
    let (code, body) = g.post(
        "/api/v1/import/prometheus?job=risk&instance=r1&extra_label=env=prod",
        "text/plain; version=0.0.4",
        text.as_bytes().to_vec(),
    );
    assert_eq!(code, 204, "{body}");
    let (_, v) = g.get_json("/metrics/risk");
    let s = series_named(&v, "risk_exposure_usd");
    assert_eq!(s.len(), 1, "{v}");
    assert_eq!(s[0]["labels"]["env"], "prod");
    assert_eq!(s[0]["labels"]["instance"], "r1");
    assert_eq!(s[0]["value"], 1.5e6);

    let (code, body) = g.post(
        "/metrics/job/batch/instance/b1",
        "text/plain",
        b"batch_last_success_unixtime 1.7e9\n".to_vec(),
    );
    assert_eq!(code, 200, "{body}");
    let (_, v) = g.get_json("/metrics/batch");
    assert_eq!(
        series_named(&v, "batch_last_success_unixtime")[0]["labels"]["instance"],
        "b1"
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut g = Gmc::start();
    for i in 0..50 {
        let body = serde_json::json!({"service": "dur", "metrics": {"seq": i}});
        let (code, t) = g.post(
            "/api/v1/push",
            "application/json",
            body.to_string().into_bytes(),
        );
        assert_eq!(code, 200, "{t}");
    }
    g.kill9();
    g.restart();
    let (code, v) = g.get_json("/metrics/history/dur?metric=seq");
    assert_eq!(code, 200, "{v}");
    let points = v["series"][0]["points"].as_array().expect("points").len();
    assert_eq!(points, 50, "{v}");
}

#[test]
fn history_aggregates_per_step() {
    let g = Gmc::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 120;
    let mut lines = String::new();
    for i in 0..60u64 {
        lines.push_str(&format!("lat,service=mx value={} {}\n", i, now + i));
    }
    let (code, t) = g.post("/write?precision=s", "text/plain", lines.into_bytes());
    assert_eq!(code, 204, "{t}");
    let (code, v) = g.get_json(&format!(
        "/metrics/history/mx?metric=lat&from={}&to={}&step=30s&agg=max",
        now,
        now + 60
    ));
    assert_eq!(code, 200, "{v}");
    let pts = v["series"][0]["points"].as_array().unwrap();
    let maxes: Vec<f64> = pts.iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert_eq!(maxes, vec![29.0, 59.0], "{v}");
    let (code, _) = g.get_json("/metrics/history/mx?from=10&to=5");
    assert_eq!(code, 400);
    let (code, _) = g.get_json("/metrics/history/mx?from=0&to=1000000000&step=1s");
    assert_eq!(code, 400, "too many points must be refused");
}

#[test]
fn status_openapi_and_own_metrics() {
    let g = Gmc::start();
    let (code, v) = g.get_json("/system/status");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "ok");
    let (code, v) = g.get_json("/api/openapi.json");
    assert_eq!(code, 200);
    assert_eq!(v["openapi"], "3.0.3");
    assert!(v["paths"]["/api/v1/write"].is_object());
    let text = g.metrics_text();
    assert!(
        text.contains("# TYPE gmc_ingest_samples_total counter"),
        "{text}"
    );
    assert!(text.contains("gmc_tsdb_"), "store metrics missing: {text}");
    let code = crate::harness::client()
        .post(g.url("/api/v1/admin/flush"))
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(code, 200);
}

#[test]
fn sigterm_stops_cleanly_and_keeps_data() {
    let mut g = Gmc::start();
    let (code, _) = g.post(
        "/api/v1/push",
        "application/json",
        br#"{"service":"term","metrics":{"x":42}}"#.to_vec(),
    );
    assert_eq!(code, 200);
    let status = g.stop();
    assert!(status.success(), "gmc exited with {status} on SIGTERM");
    g.restart();
    let (code, v) = g.get_json("/metrics/term");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["series"][0]["value"], 42.0);
}
