//! The Prometheus HTTP API against real clients: differential results against a real
//! Prometheus 2.42 fed the same data over remote_write, `promtool query`, the exact
//! requests Grafana's Prometheus data source sends, and the bad-input table.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use gmc_model::WriteBatch;
use serde_json::Value;

use crate::harness::{client, eventually, Gmc};
use crate::require;

/// Kills the child on drop so a failing assertion never leaks a Prometheus.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Scrape interval of the synthetic data set.
const STEP_MS: i64 = 15_000;
/// Points per series (40 minutes).
const POINTS: i64 = 160;
/// Samples sit 7 ms after the 15 s grid, so no sample ever lies exactly on a window
/// boundary of the queries below (which are on whole seconds): Prometheus 2.42 uses
/// closed windows `[t-r, t]` and 3.x left-open `(t-r, t]`; off the boundary they agree.
const SKEW_MS: i64 = 7;

/// Deterministic pseudo-random numbers (splitmix64), so both servers get the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One series of the data set: labels and one value per point.
struct SynthSeries {
    labels: Vec<(String, String)>,
    values: Vec<f64>,
}

fn series(name: &str, labels: &[(&str, &str)], values: Vec<f64>) -> SynthSeries {
    let mut l = vec![("__name__".to_owned(), name.to_owned())];
    l.extend(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    SynthSeries { labels: l, values }
}

/// A trading-flavoured data set: order counters (with a reset), classic latency
/// histograms, signed position gauges, `up`, CPU counters.
fn dataset() -> Vec<SynthSeries> {
    let mut rng = Rng(42);
    let mut out = Vec::new();
    let n = POINTS as usize;
    // A distinct fractional step per counter keeps rates from tying exactly: Prometheus
    // breaks `topk` ties by series order, which its range evaluation takes from a Go map
    // (random), so tied answers would differ from run to run even between Prometheuses.
    let mut counter_index = 0.0;
    for svc in ["matcher", "gateway", "risk"] {
        for venue in ["xnas", "xlon", "xtks"] {
            for status in ["filled", "rejected", "cancelled"] {
                let mut v = 0.0;
                counter_index += 1.0;
                let frac = 0.0137 * counter_index;
                let reset_at = if svc == "risk" && venue == "xlon" && status == "filled" {
                    Some(90)
                } else {
                    None
                };
                let values = (0..n)
                    .map(|i| {
                        if Some(i) == reset_at {
                            v = 0.0;
                        }
                        v += rng.below(50) as f64 + frac;
                        v
                    })
                    .collect();
                out.push(series(
                    "orders_total",
                    &[("service", svc), ("venue", venue), ("status", status)],
                    values,
                ));
            }
        }
        // Classic histogram: cumulative buckets.
        let les = [
            "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.01", "+Inf",
        ];
        let mut cum = [0.0f64; 7];
        let mut sum = 0.0;
        let mut bucket_values: Vec<Vec<f64>> = vec![Vec::new(); 7];
        let mut sums = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..n {
            for _ in 0..20 {
                let b = (rng.below(100) as usize * rng.below(100) as usize) / 1500;
                let b = b.min(6);
                for c in cum.iter_mut().skip(b) {
                    *c += 1.0;
                }
                sum += 0.0001 * (b as f64 + 1.0);
            }
            for (k, c) in cum.iter().enumerate() {
                bucket_values[k].push(*c);
            }
            sums.push(sum);
            counts.push(cum[6]);
        }
        for (k, le) in les.iter().enumerate() {
            out.push(series(
                "match_latency_seconds_bucket",
                &[("service", svc), ("le", le)],
                bucket_values[k].clone(),
            ));
        }
        out.push(series(
            "match_latency_seconds_sum",
            &[("service", svc)],
            sums,
        ));
        out.push(series(
            "match_latency_seconds_count",
            &[("service", svc)],
            counts,
        ));
        for inst in ["ES", "NQ", "CL", "GC"] {
            let mut p = 0.0;
            let values = (0..n)
                .map(|_| {
                    p += rng.below(21) as f64 - 10.0;
                    p * 0.25
                })
                .collect();
            out.push(series(
                "position_lots",
                &[("service", svc), ("instrument", inst)],
                values,
            ));
        }
        let values = (0..n)
            .map(|i| {
                if (60..64).contains(&i) && svc == "gateway" {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        out.push(series(
            "up",
            &[("job", svc), ("instance", &format!("{svc}:9100"))],
            values,
        ));
    }
    for cpu in ["0", "1"] {
        for mode in ["user", "system", "idle", "iowait"] {
            let mut v = 1000.0;
            let values = (0..n)
                .map(|_| {
                    v += rng.below(1500) as f64 / 100.0;
                    v
                })
                .collect();
            out.push(series(
                "node_cpu_seconds_total",
                &[("cpu", cpu), ("mode", mode)],
                values,
            ));
        }
    }
    out
}

/// Remote-write the data set in time order, one request per point in time (Prometheus
/// only appends within an hour of its newest sample, so order matters).
fn send_all(url: &str, data: &[SynthSeries], start_ms: i64) {
    let c = client();
    for i in 0..POINTS as usize {
        let ts_ms = start_ms + i as i64 * STEP_MS + SKEW_MS;
        let mut batch = WriteBatch::new();
        for s in data {
            let mut w = batch.series();
            for (k, v) in &s.labels {
                w.label(k.as_str(), v.as_str());
            }
            w.float(ts_ms * 1_000_000, s.values[i]);
            w.finish().unwrap();
        }
        let body = gmc_wire::remote_write::encode_write_request(&batch);
        let r = c
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .unwrap();
        assert!(
            r.status().is_success(),
            "{url}: {} {}",
            r.status(),
            r.text().unwrap_or_default()
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(dir: &std::path::Path) -> (Reap, String) {
    let port = free_port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let base = format!("http://127.0.0.1:{port}");
    let ready = eventually(Duration::from_secs(60), || {
        client()
            .get(format!("{base}/-/ready"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
    });
    assert!(ready.is_some(), "Prometheus did not become ready");
    (Reap(child), base)
}

fn post_form(url: &str, form: &[(&str, String)]) -> (u16, Value) {
    let r = client().post(url).form(form).send().unwrap();
    let code = r.status().as_u16();
    let text = r.text().unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A result in comparable form: labels (sorted JSON) → list of (ts, value string).
fn canonical(data: &Value) -> BTreeMap<String, Vec<(f64, String)>> {
    let mut out = BTreeMap::new();
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            out.insert(
                String::new(),
                vec![(
                    result[0].as_f64().unwrap_or(f64::NAN),
                    result[1].as_str().unwrap_or("").to_owned(),
                )],
            );
        }
        _ => {
            for s in result.as_array().into_iter().flatten() {
                let key = s["metric"].to_string();
                let mut pts = Vec::new();
                if let Some(v) = s.get("value") {
                    pts.push((v[0].as_f64().unwrap(), v[1].as_str().unwrap().to_owned()));
                }
                for v in s["values"].as_array().into_iter().flatten() {
                    pts.push((v[0].as_f64().unwrap(), v[1].as_str().unwrap().to_owned()));
                }
                out.insert(key, pts);
            }
        }
    }
    out
}

fn values_agree(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_nan() && y.is_nan() => true,
        (Ok(x), Ok(y)) => {
            let scale = x.abs().max(y.abs());
            (x - y).abs() <= 1e-9 * scale || (x - y).abs() < 1e-12
        }
        _ => false,
    }
}

/// Differences between two canonical results, as readable lines.
fn diff(
    a: &BTreeMap<String, Vec<(f64, String)>>,
    b: &BTreeMap<String, Vec<(f64, String)>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, pa) in a {
        match b.get(k) {
            None => out.push(format!("only in gmc: {k}")),
            Some(pb) => {
                if pa.len() != pb.len() {
                    out.push(format!("{k}: {} points vs {}", pa.len(), pb.len()));
                    continue;
                }
                for ((ta, va), (tb, vb)) in pa.iter().zip(pb) {
                    if ta != tb || !values_agree(va, vb) {
                        out.push(format!("{k} @ {ta}/{tb}: gmc {va} vs prometheus {vb}"));
                        break;
                    }
                }
            }
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            out.push(format!("only in prometheus: {k}"));
        }
    }
    out
}

/// Queries where Prometheus 3.x (gmc's reference) and 2.42 (the peer here) answer
/// differently by design, with the reason. Each still runs; a difference in any other
/// query fails the test.
const KNOWN_3X_DIFFERENCES: &[(&str, &str)] = &[(
    "rate(orders_total[5m] offset 10m)",
    "windows that start before a counter's first sample: 3.x caps the extrapolation to \
     the counter's zero point after the 110 % threshold check, 2.42 before it, so 2.42 extrapolates further at the series' start",
)];

/// One query per function family (and the operators, matching and aggregations).
const QUERIES: &[&str] = &[
    "orders_total",
    r#"orders_total{venue=~"x(nas|lon)", status!="rejected"}"#,
    "rate(orders_total[5m])",
    "irate(orders_total[5m])",
    "increase(orders_total[10m])",
    "resets(orders_total[30m])",
    "changes(up[30m])",
    "delta(position_lots[5m])",
    "idelta(position_lots[5m])",
    "deriv(position_lots[10m])",
    "predict_linear(position_lots[10m], 600)",
    "sum by (service) (rate(orders_total[5m]))",
    "sum without (venue) (rate(orders_total[5m]))",
    "avg by (venue) (rate(orders_total[5m]))",
    "max by (status) (orders_total)",
    "min(position_lots)",
    "count by (service) (position_lots > 0)",
    "stddev by (service) (position_lots)",
    "stdvar(position_lots)",
    "topk(3, rate(orders_total[5m]))",
    "bottomk(2, position_lots)",
    "quantile(0.9, rate(orders_total[5m]))",
    "count_values(\"pos\", position_lots)",
    "group by (service) (orders_total)",
    "histogram_quantile(0.99, sum by (le, service) (rate(match_latency_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(match_latency_seconds_bucket[5m]))",
    "rate(match_latency_seconds_sum[5m]) / rate(match_latency_seconds_count[5m])",
    "avg_over_time(position_lots[10m])",
    "min_over_time(position_lots[10m])",
    "max_over_time(position_lots[10m])",
    "sum_over_time(position_lots[10m])",
    "count_over_time(position_lots[10m])",
    "last_over_time(position_lots[10m])",
    "quantile_over_time(0.75, position_lots[10m])",
    "stddev_over_time(position_lots[10m])",
    "stdvar_over_time(position_lots[10m])",
    "present_over_time(up[5m])",
    "absent_over_time(nonexistent[5m])",
    "absent(nonexistent{job=\"x\"})",
    "abs(position_lots)",
    "ceil(position_lots / 3)",
    "floor(position_lots / 3)",
    "round(position_lots / 3)",
    "round(position_lots, 0.5)",
    "sqrt(abs(position_lots))",
    "exp(position_lots / 100)",
    "ln(orders_total + 1)",
    "log2(orders_total + 1)",
    "log10(orders_total + 1)",
    "clamp(position_lots, -2, 2)",
    "clamp_min(position_lots, 0)",
    "clamp_max(position_lots, 0)",
    "sgn(position_lots)",
    "sin(position_lots) + cos(position_lots)",
    "atan2(position_lots, 2)",
    "timestamp(up)",
    "time() - timestamp(up)",
    "minute(timestamp(up))",
    "hour() + day_of_week() + days_in_month() + month() + year() + day_of_month()",
    r#"label_replace(up, "svc", "$1", "instance", "(.*):.*")"#,
    r#"label_join(up, "both", "/", "job", "instance")"#,
    "sort(sum by (service) (orders_total))",
    "sort_desc(sum by (service) (orders_total))",
    "scalar(sum(up))",
    "vector(1)",
    "up == 0",
    "up == bool 0",
    "orders_total > 500 and on (service) up == 1",
    "orders_total or up",
    "orders_total unless on (service) (up == 0)",
    "rate(orders_total[5m]) / on (service) group_left sum by (service) (rate(orders_total[5m]))",
    "sum by (service) (rate(orders_total[5m])) / ignoring (status) group_right sum by (service, status) (rate(orders_total[5m]))",
    "max_over_time(rate(orders_total[1m])[10m:1m])",
    "avg_over_time(sum(position_lots)[15m:30s])",
    "orders_total offset 5m",
    "rate(orders_total[5m] offset 10m)",
    "-position_lots % 3",
    "position_lots ^ 2",
    "1 + 2 * 3 - 4 / 2",
    "2 ^ 3 ^ 2",
];

#[test]
fn promql_results_match_prometheus_2_42() {
    require!("prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let (_prom, prom) = start_prometheus(tmp.path());
    let g = Gmc::start();
    let data = dataset();
    // Whole seconds, 45 minutes ago: inside both stores' acceptance windows.
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let start = (now_ms / 60_000) * 60_000 - 45 * 60_000;
    send_all(&g.url("/api/v1/write"), &data, start);
    send_all(&format!("{prom}/api/v1/write"), &data, start);
    // 13 s off the minute: subquery steps (absolute multiples of their resolution) then
    // never fall on the left edge of a window either (closed in 2.42, open in 3.x).
    let at = start + 39 * 60_000 + 13_000;
    let (rstart, rend) = (start + 10 * 60_000 + 13_000, start + 39 * 60_000 + 13_000);
    let secs = |ms: i64| format!("{}", ms as f64 / 1000.0);
    let mut failures = Vec::new();
    for q in QUERIES {
        for (path, form) in [
            (
                "/api/v1/query",
                vec![("query", (*q).to_owned()), ("time", secs(at))],
            ),
            (
                "/api/v1/query_range",
                vec![
                    ("query", (*q).to_owned()),
                    ("start", secs(rstart)),
                    ("end", secs(rend)),
                    ("step", "60".to_owned()),
                ],
            ),
        ] {
            let (cg, vg) = post_form(&g.url(path), &form);
            let (cp, vp) = post_form(&format!("{prom}{path}"), &form);
            if cg != cp {
                failures.push(format!(
                    "{path} {q}: status gmc {cg} vs prometheus {cp}: {vg} / {vp}"
                ));
                continue;
            }
            if cp != 200 {
                continue;
            }
            if vg["data"]["resultType"] != vp["data"]["resultType"] {
                failures.push(format!("{path} {q}: result type differs"));
                continue;
            }
            let d = diff(&canonical(&vg["data"]), &canonical(&vp["data"]));
            if !d.is_empty() {
                failures.push(format!("{path} {q}:\n    {}", d.join("\n    ")));
            }
        }
    }
    let explained: Vec<&String> = failures
        .iter()
        .filter(|f| {
            KNOWN_3X_DIFFERENCES
                .iter()
                .any(|(q, _)| f.split(':').next().is_some_and(|h| h.ends_with(q)))
        })
        .collect();
    for (q, why) in KNOWN_3X_DIFFERENCES {
        eprintln!("expected difference (3.x semantics) for {q}: {why}");
    }
    let unexplained: Vec<&String> = failures.iter().filter(|f| !explained.contains(f)).collect();
    eprintln!(
        "differential: {} queries × 2 (instant, range): {} identical, {} differ as 3.x semantics \
         explain, {} unexplained",
        QUERIES.len(),
        QUERIES.len() * 2 - failures.len(),
        explained.len(),
        unexplained.len()
    );
    assert!(
        unexplained.is_empty(),
        "gmc and Prometheus 2.42 disagree:\n{}",
        unexplained
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn promtool_queries_gmc() {
    require!("promtool");
    let g = Gmc::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!(
        "{{\"service\":\"matcher\",\"timestamp\":{},\"metrics\":{{\"orders\":5}}}}",
        now - 30
    );
    let (code, _) = g.post("/api/v1/push", "application/json", body.into_bytes());
    assert_eq!(code, 200);
    let server = format!("http://{}", g.addr);
    let run = |args: &[&str]| {
        let out = Command::new("promtool")
            .arg("query")
            .args(args)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool query {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let instant = run(&["instant", &server, "orders{service=\"matcher\"}"]);
    assert!(instant.contains("=> 5 @["), "{instant}");
    let range = run(&[
        "range",
        "--start",
        &(now - 60).to_string(),
        "--end",
        &now.to_string(),
        "--step",
        "15s",
        &server,
        "orders",
    ]);
    assert!(range.contains("5 @["), "{range}");
    let series = run(&["series", "--match", "orders", &server]);
    assert!(series.contains("service=\"matcher\""), "{series}");
    let labels = run(&["labels", &server, "service"]);
    assert!(labels.lines().any(|l| l.trim() == "matcher"), "{labels}");
}

#[test]
fn grafana_datasource_requests_get_prometheus_shapes() {
    let g = Gmc::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!(
        "{{\"service\":\"gw\",\"timestamp\":{},\"metrics\":{{\"orders\":3}}}}",
        now - 10
    );
    assert_eq!(
        g.post("/api/v1/push", "application/json", body.into_bytes())
            .0,
        200
    );
    // "Save & test": instant `1+1` at t = 4 s, POST form.
    let (code, v) = post_form(
        &g.url("/api/v1/query"),
        &[("query", "1+1".to_owned()), ("time", "4".to_owned())],
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "scalar");
    assert_eq!(v["data"]["result"][0], 4);
    assert_eq!(v["data"]["result"][1], "2");
    // Flavour detection: no `features`, or Grafana would look for a Mimir ruler.
    let (code, v) = g.get_json("/api/v1/status/buildinfo");
    assert_eq!(code, 200);
    assert!(v["data"]["version"].is_string());
    assert!(v["data"].get("features").is_none());
    // Panel query: POST query_range with step in float seconds.
    let (code, v) = post_form(
        &g.url("/api/v1/query_range"),
        &[
            ("query", "orders".to_owned()),
            ("start", format!("{}", now - 300)),
            ("end", format!("{now}")),
            ("step", "15".to_owned()),
        ],
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let s = &v["data"]["result"][0];
    assert_eq!(s["metric"]["service"], "gw");
    let first = &s["values"][0];
    assert!(first[0].is_number() && first[1] == "3", "{s}");
    // Autocomplete: metric names, label names, series, values, metadata.
    let (code, v) = g.get_json("/api/v1/label/__name__/values");
    assert_eq!(code, 200);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .contains(&Value::from("orders")));
    let (code, v) = post_form(
        &g.url("/api/v1/labels"),
        &[
            ("start", format!("{}", now - 3600)),
            ("end", format!("{now}")),
        ],
    );
    assert_eq!(code, 200);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .contains(&Value::from("service")));
    let (code, v) = post_form(
        &g.url("/api/v1/series"),
        &[
            ("match[]", "{__name__!=\"\"}".to_owned()),
            ("start", format!("{}", now - 3600)),
            ("end", format!("{now}")),
            ("limit", "40000".to_owned()),
        ],
    );
    assert_eq!(code, 200, "{v}");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["__name__"] == "orders" && s["service"] == "gw"));
    let (code, v) = g.get_json("/api/v1/label/service/values?match[]=orders");
    assert_eq!(code, 200);
    assert_eq!(v["data"], serde_json::json!(["gw"]));
    let (code, v) = g.get_json("/api/v1/metadata");
    assert_eq!(code, 200);
    assert!(v["data"].is_object());
    // Alerting UI lists data-source-managed rules: present and truthfully empty.
    let (code, v) = g.get_json("/api/v1/rules");
    assert_eq!(code, 200);
    assert_eq!(v["data"]["groups"], serde_json::json!([]));
    let (code, v) = g.get_json("/api/v1/alerts");
    assert_eq!(code, 200);
    assert_eq!(v["data"]["alerts"], serde_json::json!([]));
    // Label values are GET-only in Prometheus: POST gets 405, and Grafana retries as GET.
    let r = client()
        .post(g.url("/api/v1/label/service/values"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[test]
fn query_api_bad_input_is_a_prometheus_error() {
    let g = Gmc::start();
    // (path, form, status, errorType, part of the message)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            "/api/v1/query",
            &[("query", "sum(up")],
            400,
            "bad_data",
            "unclosed",
        ),
        (
            "/api/v1/query",
            &[("query", "nosuchfn(up)")],
            400,
            "bad_data",
            "nosuchfn",
        ),
        (
            "/api/v1/query",
            &[("query", "rate(up)")],
            400,
            "bad_data",
            "expected type matrix",
        ),
        ("/api/v1/query", &[], 400, "bad_data", "query"),
        (
            "/api/v1/query",
            &[("query", "up"), ("time", "yesterday")],
            400,
            "bad_data",
            "time",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "100"),
                ("end", "200"),
                ("step", "0"),
            ],
            400,
            "bad_data",
            "zero or negative",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "100000"),
                ("step", "1"),
            ],
            400,
            "bad_data",
            "11,000 points",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "200"),
                ("end", "100"),
                ("step", "1"),
            ],
            400,
            "bad_data",
            "before start",
        ),
        ("/api/v1/series", &[], 400, "bad_data", "match[]"),
        (
            "/api/v1/series",
            &[("match[]", "sum(up)")],
            400,
            "bad_data",
            "selector",
        ),
    ];
    for (path, form, code, etype, needle) in cases {
        let form: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let (c, v) = post_form(&g.url(path), &form);
        assert_eq!(c, *code, "{path} {form:?}: {v}");
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["errorType"], *etype, "{path} {form:?}: {v}");
        let msg = v["error"].as_str().unwrap_or("");
        assert!(
            msg.contains(needle),
            "{path} {form:?}: {msg:?} lacks {needle:?}"
        );
    }
    // A huge regex is refused by the regex engine's size limit, not by the server dying.
    let huge = format!("up{{job=~\"{}\"}}", "((a|b|c|d|e|f){1,1000}){1,1000}");
    let (c, v) = post_form(&g.url("/api/v1/query"), &[("query", huge)]);
    assert!(c == 400 || c == 422, "{c} {v}");
    assert_eq!(v["status"], "error");
    // Still serving.
    let (c, _) = post_form(&g.url("/api/v1/query"), &[("query", "1".to_owned())]);
    assert_eq!(c, 200);
}
