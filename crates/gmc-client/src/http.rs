//! A small blocking `/metrics` server (feature `http`, std only): one thread accepts and
//! answers each connection in turn, choosing text 0.0.4, OpenMetrics or protobuf from the
//! `Accept` header. Meant for a scraper or two, not for the open internet.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exposition::Format;
use crate::registry::Registry;

/// Largest request head read.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A running `/metrics` server; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Bind `addr` (port 0 picks a free port) and serve `registry` on `/metrics`.
    pub fn start(registry: Registry, addr: impl ToSocketAddrs) -> Result<MetricsServer> {
        let io = |source| Error::Io {
            peer: "metrics listener".into(),
            source,
        };
        let listener = TcpListener::bind(addr).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("gmc-metrics-http".into())
            .spawn(move || {
                let mut buf = Vec::new();
                for conn in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Ok(c) = conn {
                        // A client that misbehaves only loses its own response.
                        let _ = handle(&registry, c, &mut buf);
                    }
                }
            })
            .map_err(io)?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(registry: &Registry, mut c: TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    c.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut chunk)?;
        if n == 0 || head.len() > MAX_HEAD_BYTES {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut req = lines.next().unwrap_or("").split(' ');
    let (method, path) = (req.next().unwrap_or(""), req.next().unwrap_or(""));
    let accept = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("accept").then(|| v.trim())
    });
    let path = path.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut c,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
            false,
        );
    }
    if path != "/metrics" {
        return respond(
            &mut c,
            "404 Not Found",
            "text/plain",
            b"try /metrics\n",
            false,
        );
    }
    let format = Format::negotiate(accept);
    buf.clear();
    registry.encode(format, buf);
    respond(
        &mut c,
        "200 OK",
        format.content_type(),
        buf,
        method == "HEAD",
    )
}

fn respond(
    c: &mut TcpStream,
    status: &str,
    ct: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let h = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(h.as_bytes())?;
    if !head_only {
        c.write_all(body)?;
    }
    c.flush()
}
