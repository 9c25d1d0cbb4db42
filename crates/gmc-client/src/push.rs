//! Push to a gmc center from a background thread: Prometheus remote_write (snappy
//! protobuf, native histograms included) or the center's JSON push format, every second
//! by default. Batches wait in a bounded buffer while the center is unreachable; when it
//! is full the oldest batch is dropped and counted.
//!
//! HTTP is a hand-written HTTP/1.1 POST over `std::net::TcpStream` (plain `http://` only):
//! a push is one small request per second to a known center, and this keeps the client's
//! dependency tree free of an HTTP stack (no tokio, hyper, rustls). Put TLS in a sidecar
//! or agent when the center is remote.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use gmc_model::{Metadata, MetricType, WriteBatch, METRIC_NAME, NANOS_PER_SEC};

use crate::counter::Counter;
use crate::error::{Error, Result};
use crate::gauge::Gauge;
use crate::metrics as own;
use crate::registry::{FamilySnapshot, Kind, Registry, Value};

/// What to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushFormat {
    /// Prometheus remote_write 1.0 (`POST /api/v1/write`).
    RemoteWrite,
    /// The center's JSON push (`POST /api/v1/push`); every object carries `service`.
    Json {
        /// Value of the `service` field.
        service: String,
    },
}

/// Push settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// `http://host:port` (the format's default path is used) or `http://host:port/path`.
    pub url: String,
    /// Time between pushes.
    pub interval: Duration,
    /// Wire format.
    pub format: PushFormat,
    /// Batches kept while the receiver is unreachable; older ones are dropped.
    pub max_buffered_batches: usize,
    /// Connect, write and read timeout of one request.
    pub timeout: Duration,
    /// Labels added to every series (e.g. `job`, `instance`).
    pub extra_labels: Vec<(String, String)>,
}

impl PushConfig {
    /// remote_write to `url` every second, 60 batches of buffer, 2 s timeout.
    pub fn remote_write(url: impl Into<String>) -> Self {
        PushConfig {
            url: url.into(),
            interval: Duration::from_secs(1),
            format: PushFormat::RemoteWrite,
            max_buffered_batches: 60,
            timeout: Duration::from_secs(2),
            extra_labels: Vec::new(),
        }
    }

    /// JSON push to `url` as `service`, otherwise like [`PushConfig::remote_write`].
    pub fn json(url: impl Into<String>, service: impl Into<String>) -> Self {
        PushConfig {
            format: PushFormat::Json {
                service: service.into(),
            },
            ..Self::remote_write(url)
        }
    }
}

/// A parsed `http://host:port/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host_port: String,
    pub(crate) path: String,
}

impl Target {
    pub(crate) fn parse(url: &str, default_path: &str) -> Result<Target> {
        let bad = || Error::InvalidUrl {
            url: url.to_owned(),
        };
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (host_port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if host_port.is_empty() || !host_port.contains(':') {
            return Err(bad());
        }
        let path = if path.is_empty() || path == "/" {
            default_path
        } else {
            path
        };
        Ok(Target {
            host_port: host_port.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// POST `body` and return the status code; 2xx is `Ok`.
pub(crate) fn post(
    target: &Target,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<u16> {
    let io = |source| Error::Io {
        peer: target.host_port.clone(),
        source,
    };
    let addr = target
        .host_port
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| io(std::io::Error::other("no address")))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    let _ = s.set_nodelay(true);
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gmc-client/{}\r\nContent-Type: {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host_port,
        env!("CARGO_PKG_VERSION"),
        content_type,
        extra_headers,
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut resp = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !resp.windows(2).any(|w| w == b"\r\n") && resp.len() < 4096 {
        let n = s.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&resp);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| io(std::io::Error::other("no HTTP status line")))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(Error::HttpStatus { status })
    }
}

/// One encoded batch waiting to be sent.
#[derive(Debug)]
struct Pending {
    body: Vec<u8>,
    samples: u64,
}

/// Collects, encodes and sends batches; [`Pusher::spawn`] runs it on its own thread.
#[derive(Debug)]
pub struct Pusher {
    registry: Registry,
    config: PushConfig,
    target: Target,
    queue: VecDeque<Pending>,
    sent: Counter,
    dropped: Counter,
    dropped_samples: Counter,
    errors: Counter,
    queued: Gauge,
}

impl Pusher {
    /// A pusher of `registry` (its own push metrics are registered there too).
    pub fn new(registry: Registry, config: PushConfig) -> Result<Pusher> {
        let default_path = match config.format {
            PushFormat::RemoteWrite => "/api/v1/write",
            PushFormat::Json { .. } => "/api/v1/push",
        };
        let target = Target::parse(&config.url, default_path)?;
        Ok(Pusher {
            sent: registry.counter(own::PUSH_SENT, "Batches accepted by the receiver.")?,
            dropped: registry.counter(
                own::PUSH_DROPPED,
                "Batches dropped: buffer full while the receiver was unreachable, or rejected with 4xx.",
            )?,
            dropped_samples: registry
                .counter(own::PUSH_DROPPED_SAMPLES, "Samples in dropped batches.")?,
            errors: registry.counter(own::PUSH_ERRORS, "Failed send attempts.")?,
            queued: registry.gauge(own::PUSH_QUEUED, "Batches waiting to be sent.")?,
            registry,
            config,
            target,
            queue: VecDeque::new(),
        })
    }

    /// Collect now, queue the batch (dropping the oldest when full), then send queued
    /// batches oldest first until one fails. Returns how many were sent.
    pub fn tick(&mut self) -> usize {
        let snap = self.registry.collect();
        let ts = gmc_model::now_nanos();
        let pending = match &self.config.format {
            PushFormat::RemoteWrite => encode_remote_write(&snap, &self.config.extra_labels, ts),
            PushFormat::Json { service } => {
                encode_json(&snap, service, &self.config.extra_labels, ts)
            }
        };
        if self.queue.len() >= self.config.max_buffered_batches.max(1) {
            if let Some(old) = self.queue.pop_front() {
                self.dropped.inc();
                self.dropped_samples.add(old.samples);
            }
        }
        self.queue.push_back(pending);
        let mut sent = 0;
        while let Some(p) = self.queue.front() {
            let (ct, headers) = match self.config.format {
                PushFormat::RemoteWrite => (
                    "application/x-protobuf",
                    "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n",
                ),
                PushFormat::Json { .. } => ("application/json", ""),
            };
            match post(&self.target, ct, headers, &p.body, self.config.timeout) {
                Ok(_) => {
                    self.queue.pop_front();
                    self.sent.inc();
                    sent += 1;
                }
                Err(Error::HttpStatus { status })
                    if (400..500).contains(&status) && status != 429 =>
                {
                    // The receiver will never take this batch: drop it, keep going.
                    self.errors.inc();
                    if let Some(old) = self.queue.pop_front() {
                        self.dropped.inc();
                        self.dropped_samples.add(old.samples);
                    }
                }
                Err(_) => {
                    self.errors.inc();
                    break;
                }
            }
        }
        self.queued
            .set(i64::try_from(self.queue.len()).unwrap_or(i64::MAX));
        sent
    }

    /// Batches waiting in the buffer.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Run [`Pusher::tick`] every `interval` on a background thread until the handle is
    /// stopped or dropped (one last tick then flushes the latest values).
    pub fn spawn(mut self) -> Result<PushHandle> {
        let (tx, rx) = mpsc::channel::<()>();
        let interval = self.config.interval;
        let thread = std::thread::Builder::new()
            .name("gmc-push".into())
            .spawn(move || loop {
                match rx.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {
                        self.tick();
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        self.tick();
                        return;
                    }
                }
            })
            .map_err(|source| Error::Io {
                peer: "gmc-push thread".into(),
                source,
            })?;
        Ok(PushHandle {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

/// Stops the push thread when dropped.
#[derive(Debug)]
pub struct PushHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PushHandle {
    /// Push one last time and stop.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PushHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn metric_type(k: Kind) -> MetricType {
    match k {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Histogram => MetricType::Histogram,
    }
}

/// The snapshot as a remote_write batch: floats for counters and gauges, native
/// histograms (schema 6) for histograms, plus family metadata.
pub fn to_write_batch(
    snap: &[FamilySnapshot],
    extra_labels: &[(String, String)],
    ts_nanos: i64,
) -> WriteBatch<'static> {
    let mut batch = WriteBatch::new();
    for f in snap {
        batch.push_metadata(Metadata {
            metric_family: f.name.clone(),
            metric_type: metric_type(f.kind),
            help: f.help.clone(),
            unit: String::new(),
        });
        for s in &f.series {
            let mut w = batch.series();
            w.label(METRIC_NAME, Cow::Owned(f.name.clone()));
            for (k, v) in extra_labels {
                if !s.labels.iter().any(|(n, _)| n == k) {
                    w.label(Cow::Owned(k.clone()), Cow::Owned(v.clone()));
                }
            }
            for (k, v) in &s.labels {
                w.label(Cow::Owned(k.clone()), Cow::Owned(v.clone()));
            }
            match &s.value {
                Value::Counter(n) => w.float(ts_nanos, *n as f64),
                Value::CounterF64(x) | Value::Gauge(x) => w.float(ts_nanos, *x),
                Value::Histogram(h) => w.histogram(ts_nanos, f.native(h)),
            }
            // Our names and labels are validated at registration; a series the model
            // still refuses is left out rather than failing the batch.
            let _ = w.finish();
        }
    }
    batch
}

fn encode_remote_write(
    snap: &[FamilySnapshot],
    extra: &[(String, String)],
    ts_nanos: i64,
) -> Pending {
    let batch = to_write_batch(snap, extra, ts_nanos);
    Pending {
        samples: batch.len_samples() as u64,
        body: gmc_wire::remote_write::encode_write_request(&batch),
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The snapshot in the center's JSON push format: one object per label set, metrics by
/// name; histograms become `_count`, `_sum`, `_min`, `_max`, `_p50`, `_p99`, `_p999`.
pub fn to_json(
    snap: &[FamilySnapshot],
    service: &str,
    extra_labels: &[(String, String)],
    ts_nanos: i64,
) -> (String, u64) {
    type Group = (Vec<(String, String)>, Vec<(String, f64)>);
    let mut groups: Vec<Group> = Vec::new();
    for f in snap {
        for s in &f.series {
            let mut labels: Vec<(String, String)> = extra_labels
                .iter()
                .filter(|(k, _)| !s.labels.iter().any(|(n, _)| n == k))
                .cloned()
                .collect();
            labels.extend(s.labels.iter().cloned());
            labels.sort();
            let mut values: Vec<(String, f64)> = Vec::new();
            match &s.value {
                Value::Counter(n) => values.push((f.name.clone(), *n as f64)),
                Value::CounterF64(x) | Value::Gauge(x) => values.push((f.name.clone(), *x)),
                Value::Histogram(h) => {
                    values.push((format!("{}_count", f.name), h.count() as f64));
                    values.push((format!("{}_sum", f.name), f.sum(h)));
                    let unit = if f.seconds { 1e-9 } else { 1.0 };
                    if let (Some(mn), Some(mx)) = (h.min(), h.max()) {
                        values.push((format!("{}_min", f.name), mn as f64 * unit));
                        values.push((format!("{}_max", f.name), mx as f64 * unit));
                    }
                    for (q, suffix) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
                        if let Some(v) = h.quantile(q) {
                            values.push((format!("{}_{suffix}", f.name), v * unit));
                        }
                    }
                }
            }
            match groups.iter_mut().find(|(l, _)| *l == labels) {
                Some((_, v)) => v.extend(values),
                None => groups.push((labels, values)),
            }
        }
    }
    let secs = ts_nanos / NANOS_PER_SEC;
    let micros = (ts_nanos % NANOS_PER_SEC) / 1000;
    let mut out = String::from("[");
    let mut samples = 0u64;
    for (gi, (labels, values)) in groups.iter().enumerate() {
        if gi > 0 {
            out.push(',');
        }
        out.push_str("{\"service\":");
        json_str(&mut out, service);
        out.push_str(&format!(",\"timestamp\":{secs}.{micros:06},\"labels\":{{"));
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(&mut out, k);
            out.push(':');
            json_str(&mut out, v);
        }
        out.push_str("},\"metrics\":{");
        let mut first = true;
        for (k, v) in values {
            // JSON has no NaN or infinities.
            if !v.is_finite() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            json_str(&mut out, k);
            out.push(':');
            let mut b = Vec::new();
            crate::exposition::write_f64(&mut b, *v);
            out.push_str(&String::from_utf8_lossy(&b));
            samples += 1;
        }
        out.push_str("}}");
    }
    out.push(']');
    (out, samples)
}

fn encode_json(
    snap: &[FamilySnapshot],
    service: &str,
    extra: &[(String, String)],
    ts_nanos: i64,
) -> Pending {
    let (body, samples) = to_json(snap, service, extra, ts_nanos);
    Pending {
        body: body.into_bytes(),
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_paths() {
        let t = Target::parse("http://127.0.0.1:9300", "/api/v1/write").unwrap();
        assert_eq!(t.host_port, "127.0.0.1:9300");
        assert_eq!(t.path, "/api/v1/write");
        let t = Target::parse("http://h:1/x/y", "/d").unwrap();
        assert_eq!(t.path, "/x/y");
        assert!(Target::parse("https://h:1", "/").is_err());
        assert!(Target::parse("http://nohost", "/").is_err());
    }
}
