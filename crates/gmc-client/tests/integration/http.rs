//! The `/metrics` server (feature `http`) negotiates the format from `Accept`.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::sample_registry;

fn get(addr: std::net::SocketAddr, path: &str, accept: &str) -> (String, Vec<u8>) {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let i = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&out[..i]).into_owned(),
        out[i + 4..].to_vec(),
    )
}

#[test]
fn serves_text_openmetrics_and_protobuf() {
    let s = gmc_client::http::MetricsServer::start(sample_registry(), "127.0.0.1:0").unwrap();
    let a = s.local_addr();
    let (h, b) = get(a, "/metrics", "text/plain");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert!(h.contains("version=0.0.4"));
    assert!(String::from_utf8(b).unwrap().contains("orders_total"));
    let (h, b) = get(a, "/metrics", "application/openmetrics-text; version=1.0.0");
    assert!(h.contains("application/openmetrics-text"), "{h}");
    assert!(String::from_utf8(b).unwrap().ends_with("# EOF\n"));
    let (h, _) = get(
        a,
        "/metrics",
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;q=0.3",
    );
    assert!(h.contains("application/vnd.google.protobuf"), "{h}");
    let (h, _) = get(a, "/nope", "*/*");
    assert!(h.starts_with("HTTP/1.1 404"), "{h}");
}
