//! A minimal HTTP/1.1 server for `GET /metrics` (and `/-/healthy`), on one thread.
//!
//! Written on `std::net` rather than pulling an async stack into the agent: it answers one
//! scrape per interval, closes every connection, caps the request head at 8 KiB and times
//! out slow clients, so it cannot be made to hold memory or the thread for long.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::agent::Stop;
use crate::error::{Error, Result};

const MAX_HEAD_BYTES: usize = 8 * 1024;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The exposition served on `/metrics`, replaced after every cycle.
pub type Exposition = Arc<Mutex<String>>;

/// A bound listener.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Bind `addr` (port 0 picks a free port).
    pub fn bind(addr: &str) -> Result<Server> {
        let listener = TcpListener::bind(addr).map_err(|source| Error::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        Ok(Server { listener })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|source| Error::Bind {
            addr: "listener".to_owned(),
            source,
        })
    }

    /// Answer requests until `stop` (checked between connections; a 250 ms accept poll).
    pub fn serve(self, text: Exposition, stop: Stop) {
        if self.listener.set_nonblocking(true).is_err() {
            tracing::warn!(
                "Cannot make the /metrics listener non-blocking; it will not stop early."
            );
        }
        while !stop.is_stopped() {
            match self.listener.accept() {
                Ok((conn, _)) => {
                    if let Err(e) = answer(conn, &text) {
                        tracing::debug!(error = %e, "A /metrics client failed.");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    stop.wait(Duration::from_millis(250));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Accept failed on the /metrics listener.");
                    stop.wait(Duration::from_millis(250));
                }
            }
        }
    }
}

fn answer(mut conn: TcpStream, text: &Exposition) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD_BYTES {
            return respond(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
            );
        }
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = text.lock().map(|t| t.clone()).unwrap_or_default();
            respond(
                &mut conn,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
            )
        }
        ("GET", "/-/healthy") => respond(&mut conn, "200 OK", "text/plain", b"OK\n"),
        ("GET", _) => respond(
            &mut conn,
            "404 Not Found",
            "text/plain",
            b"only /metrics is served here\n",
        ),
        _ => respond(
            &mut conn,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
        ),
    }
}

fn respond(conn: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, req: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        // The server may answer and close before reading an oversized head: keep what came.
        let _ = c.write_all(req.as_bytes());
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let server = Server::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let text: Exposition = Arc::new(Mutex::new("node_load1 0.5\n".to_owned()));
        let stop = Stop::new();
        let t = {
            let (text, stop) = (text.clone(), stop.clone());
            std::thread::spawn(move || server.serve(text, stop))
        };
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.ends_with("node_load1 0.5\n"), "{ok}");
        assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
        assert!(get(addr, &huge).starts_with("HTTP/1.1 431"));
        stop.stop();
        t.join().unwrap();
    }
}
