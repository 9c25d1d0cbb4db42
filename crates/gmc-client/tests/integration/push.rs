//! Push to a local HTTP listener: remote_write decodes with gmc-wire (native histograms
//! included), JSON decodes with the center's JSON decoder, and a dead receiver fills the
//! bounded buffer and counts drops.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use gmc_client::push::{PushConfig, Pusher};
use gmc_client::Value;
use gmc_wire::Limits;

use super::sample_registry;

/// One request received by the fake center.
struct Received {
    head: String,
    body: Vec<u8>,
}

/// Accept `n` requests, answer each with `status`, hand them over the channel.
fn fake_center(n: usize, status: u16) -> (String, mpsc::Receiver<Received>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..n {
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut data = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body_start) = loop {
                let k = c.read(&mut chunk).unwrap();
                assert!(k > 0, "client closed early");
                data.extend_from_slice(&chunk[..k]);
                if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&data[..i]).into_owned(), i + 4);
                }
            };
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            while data.len() < body_start + len {
                let k = c.read(&mut chunk).unwrap();
                data.extend_from_slice(&chunk[..k]);
            }
            let body = data[body_start..body_start + len].to_vec();
            write!(c, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").unwrap();
            tx.send(Received { head, body }).unwrap();
        }
    });
    (url, rx)
}

#[test]
fn remote_write_push_decodes_with_gmc_wire() {
    let r = sample_registry();
    let (url, rx) = fake_center(1, 204);
    let mut cfg = PushConfig::remote_write(url);
    cfg.extra_labels = vec![("job".into(), "engine".into())];
    let mut p = Pusher::new(r.clone(), cfg).unwrap();
    assert_eq!(p.tick(), 1);
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        got.head.starts_with("POST /api/v1/write HTTP/1.1"),
        "{}",
        got.head
    );
    assert!(got.head.contains("Content-Encoding: snappy"));
    let buf = gmc_wire::remote_write::decompress(&got.body, &Limits::default()).unwrap();
    let d = gmc_wire::remote_write::decode(&buf, &Limits::default()).unwrap();
    assert!(d.report.is_clean(), "{}", d.report);
    let series: Vec<_> = d.batch.iter().collect();
    let orders = series
        .iter()
        .find(|s| s.label("__name__") == Some("orders_total"))
        .unwrap();
    assert_eq!(orders.floats[0].value, 42.0);
    assert_eq!(orders.label("job"), Some("engine"));
    let rtt = series
        .iter()
        .find(|s| s.label("__name__") == Some("rtt_seconds"))
        .unwrap();
    let want = r
        .collect()
        .into_iter()
        .find(|f| f.name == "rtt_seconds")
        .and_then(|f| match &f.series[0].value {
            Value::Histogram(h) => Some(f.native(h)),
            _ => None,
        })
        .unwrap();
    let h = &rtt.histograms[0].histogram;
    assert_eq!(h.schema, 6);
    assert_eq!(h.count, want.count);
    assert_eq!(h.positive_spans, want.positive_spans);
    assert_eq!(h.positive_buckets, want.positive_buckets);
    assert!(d
        .batch
        .metadata()
        .iter()
        .any(|m| m.metric_family == "rtt_seconds"));
}

#[test]
fn json_push_decodes_with_the_center_decoder() {
    let r = sample_registry();
    let (url, rx) = fake_center(1, 200);
    let mut p = Pusher::new(r, PushConfig::json(url, "engine")).unwrap();
    assert_eq!(p.tick(), 1);
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        got.head.starts_with("POST /api/v1/push HTTP/1.1"),
        "{}",
        got.head
    );
    let d = gmc_wire::json_push::decode(&got.body, 0, &Limits::default()).unwrap();
    assert!(d.report.is_clean(), "{}", d.report);
    let find = |name: &str| {
        d.batch
            .iter()
            .find(|s| s.label("__name__") == Some(name))
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let o = find("orders_total");
    assert_eq!(o.label("service"), Some("engine"));
    assert_eq!(o.label("venue"), Some("XNAS"));
    assert_eq!(o.floats[0].value, 42.0);
    assert_eq!(find("rtt_seconds_count").floats[0].value, 8.0);
    assert_eq!(find("exposure_usd").floats[0].value, -1234.56);
    assert_eq!(find("pnl_usd").floats[0].value, 1.5);
}

#[test]
fn dead_receiver_fills_the_buffer_and_counts_drops() {
    let r = gmc_client::Registry::new();
    r.counter("x_total", "x").unwrap().inc();
    // A port that was just free: connections are refused.
    let url = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut cfg = PushConfig::remote_write(url);
    cfg.max_buffered_batches = 2;
    cfg.timeout = Duration::from_millis(300);
    let mut p = Pusher::new(r.clone(), cfg).unwrap();
    for _ in 0..5 {
        assert_eq!(p.tick(), 0);
    }
    assert_eq!(p.queued(), 2);
    let text = r.encode_to_string(gmc_client::Format::Prometheus);
    assert!(
        text.contains("gmc_client_push_dropped_batches_total 3\n"),
        "{text}"
    );
    assert!(text.contains("gmc_client_push_errors_total 5\n"), "{text}");
    assert!(
        text.contains("gmc_client_push_queued_batches 2\n"),
        "{text}"
    );
}

#[test]
fn background_pusher_sends_every_interval_and_flushes_on_stop() {
    let r = gmc_client::Registry::new();
    r.counter("bg_total", "x").unwrap().inc();
    let (url, rx) = fake_center(2, 204);
    let mut cfg = PushConfig::remote_write(url);
    cfg.interval = Duration::from_millis(50);
    let h = Pusher::new(r, cfg).unwrap().spawn().unwrap();
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    h.stop();
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
}
