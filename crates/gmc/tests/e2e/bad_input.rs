//! A table of malformed requests for every protocol: each gets a 4xx with a message, is
//! counted by reason, and good traffic sent at the same time is stored untouched.

use crate::harness::{client, Gmc};

struct Case {
    name: &'static str,
    path: &'static str,
    ctype: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    want: u16,
    /// Substring the error message must contain.
    says: &'static str,
}

fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(b).unwrap()
}

fn cases() -> Vec<Case> {
    let many_labels: String = (0..100_000)
        .map(|i| format!("l{i}=\"v\""))
        .collect::<Vec<_>>()
        .join(",");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut truncated = snappy(&[0x0a; 64]);
    truncated.truncate(truncated.len() / 2);
    vec![
        Case {
            name: "truncated snappy",
            path: "/api/v1/write",
            ctype: "application/x-protobuf",
            encoding: Some("snappy"),
            body: truncated,
            want: 400,
            says: "snappy",
        },
        Case {
            name: "invalid protobuf",
            path: "/api/v1/write",
            ctype: "application/x-protobuf",
            encoding: Some("snappy"),
            body: snappy(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
            want: 400,
            says: "",
        },
        Case {
            name: "remote write with an unknown protobuf message",
            path: "/api/v1/write",
            ctype: "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            encoding: Some("snappy"),
            body: snappy(b""),
            want: 415,
            says: "io.prometheus.write.v2.Request",
        },
        Case {
            name: "remote write 2.0 label reference outside the symbols",
            path: "/api/v1/write",
            ctype: "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            encoding: Some("snappy"),
            // symbols ["", "__name__"]; one series with refs [1, 7] and a sample.
            body: snappy(&[
                0x22, 0x00, 0x22, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x2a, 0x0f,
                0x0a, 0x02, 0x01, 0x07, 0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
            ]),
            want: 400,
            says: "outside the request's 2 symbols",
        },
        Case {
            name: "unknown content type",
            path: "/api/v1/write",
            ctype: "application/json",
            encoding: None,
            body: b"{}".to_vec(),
            want: 415,
            says: "Content-Type",
        },
        Case {
            name: "unknown content encoding",
            path: "/api/v1/import/prometheus",
            ctype: "text/plain",
            encoding: Some("br"),
            body: b"x 1\n".to_vec(),
            want: 415,
            says: "Content-Encoding",
        },
        Case {
            name: "invalid UTF-8 in exposition",
            path: "/api/v1/import/prometheus",
            ctype: "text/plain",
            encoding: None,
            body: b"m{a=\"\xff\xfe\"} 1\n".to_vec(),
            want: 400,
            says: "",
        },
        Case {
            name: "duplicate label name",
            path: "/api/v1/import/prometheus",
            ctype: "text/plain",
            encoding: None,
            body: b"m{a=\"1\",a=\"2\"} 1\n".to_vec(),
            want: 400,
            says: "duplicate",
        },
        Case {
            name: "100k labels in one series",
            path: "/api/v1/import/prometheus",
            ctype: "text/plain",
            encoding: None,
            body: format!("m{{{many_labels}}} 1\n").into_bytes(),
            want: 400,
            says: "labels",
        },
        Case {
            name: "influx line without fields",
            path: "/write",
            ctype: "text/plain",
            encoding: None,
            body: b"cpu,host=a\n".to_vec(),
            want: 400,
            says: "line 1",
        },
        Case {
            name: "influx bad precision",
            path: "/write?precision=fortnight",
            ctype: "text/plain",
            encoding: None,
            body: b"cpu v=1\n".to_vec(),
            want: 400,
            says: "precision",
        },
        Case {
            name: "json not an object",
            path: "/api/v1/push",
            ctype: "application/json",
            encoding: None,
            body: b"[1,2".to_vec(),
            want: 400,
            says: "",
        },
        Case {
            name: "json without service",
            path: "/api/v1/push",
            ctype: "application/json",
            encoding: None,
            body: br#"{"metrics":{"a":1}}"#.to_vec(),
            want: 400,
            says: "service",
        },
        Case {
            name: "timestamp a day in the future",
            path: "/write?precision=s",
            ctype: "text/plain",
            encoding: None,
            body: format!("fut,service=s value=1 {}\n", now_s + 86_400).into_bytes(),
            want: 400,
            says: "future",
        },
        Case {
            name: "timestamp beyond the representable range",
            path: "/write?precision=s",
            ctype: "text/plain",
            encoding: None,
            body: b"fut,service=s value=1 99999999999\n".to_vec(),
            want: 400,
            says: "range",
        },
        Case {
            name: "timestamp far in the past (out of order for an existing series)",
            path: "/write?precision=s",
            ctype: "text/plain",
            encoding: None,
            body: format!(
                "good_old,service=good value=1 {now_s}\ngood_old,service=good value=2 {}\n",
                now_s - 86_400
            )
            .into_bytes(),
            want: 400,
            says: "out",
        },
        Case {
            name: "body over the limit",
            path: "/api/v1/import/prometheus",
            ctype: "text/plain",
            encoding: None,
            body: vec![b'#'; 5 << 20],
            want: 413,
            says: "limit",
        },
    ]
}

#[test]
fn malformed_requests_get_4xx_and_good_traffic_is_unaffected() {
    // A small body limit keeps the oversized case cheap; 4 MiB still fits every other case.
    let g = Gmc::start_with_config("[ingest]\nmax_body_bytes = \"4MiB\"\n");
    let good = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut ok = 0;
            for i in 0..200 {
                let body = serde_json::json!({"service": "good", "metrics": {"seq": i}});
                let (code, _) = g.post(
                    "/api/v1/push",
                    "application/json",
                    body.to_string().into_bytes(),
                );
                if code == 200 {
                    ok += 1;
                }
            }
            ok
        });
        for c in cases() {
            let mut req = client()
                .post(g.url(c.path))
                .header("Content-Type", c.ctype)
                .body(c.body);
            if let Some(e) = c.encoding {
                req = req.header("Content-Encoding", e);
            }
            let resp = req.send().unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let code = resp.status().as_u16();
            let text = resp.text().unwrap_or_default();
            assert_eq!(code, c.want, "{}: {text}", c.name);
            assert!(
                text.contains("\"error\"") && text.to_lowercase().contains(&c.says.to_lowercase()),
                "{}: message {text:?} should mention {:?}",
                c.name,
                c.says
            );
        }
        writer.join().unwrap()
    });
    assert_eq!(good, 200, "good writes failed while bad ones were refused");
    let (_, v) = g.get_json("/metrics/history/good?metric=seq");
    assert_eq!(
        v["series"][0]["points"].as_array().map(Vec::len),
        Some(200),
        "{v}"
    );
    let text = g.metrics_text();
    let rejected: f64 = text
        .lines()
        .filter(|l| l.starts_with("gmc_ingest_rejected_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        rejected >= cases().len() as f64,
        "rejections not counted:\n{text}"
    );
}

#[test]
fn nan_and_infinities_are_valid_samples() {
    let g = Gmc::start();
    let (code, t) = g.post(
        "/api/v1/import/prometheus?job=nan",
        "text/plain",
        b"a NaN\nb +Inf\nc -Inf\n".to_vec(),
    );
    assert_eq!(code, 204, "{t}");
    let (_, v) = g.get_json("/metrics/nan");
    let vals: Vec<String> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].to_string())
        .collect();
    assert_eq!(vals.len(), 3, "{v}");
    for want in ["\"NaN\"", "\"+Inf\"", "\"-Inf\""] {
        assert!(vals.iter().any(|x| x == want), "{want} missing in {vals:?}");
    }
}

#[test]
fn an_over_limit_body_sent_in_full_gets_its_413() {
    use std::io::{Read as _, Write as _};
    // 12 MiB beyond a 1 MiB limit: more than loopback's socket buffers hold, so a server
    // that answered and closed after the first MiB would reset the sender mid-body, and
    // the sender would never read the 413 (a remote-write sender retries such errors).
    let g = Gmc::start_with_config("[ingest]\nmax_body_bytes = \"1MiB\"\n");
    let body = vec![b'#'; 13 << 20];
    let mut s = std::net::TcpStream::connect(g.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/v1/import/prometheus HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        g.addr,
        body.len()
    );
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(head.as_bytes())?;
        w.write_all(&body)
    });
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let sent = writer.join().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        sent.is_ok(),
        "the body was cut off: {sent:?}; answer {text:?}"
    );
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    assert!(text.contains("ingest.max_body_bytes"), "{text:?}");
}
