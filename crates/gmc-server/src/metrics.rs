//! The server's own metrics (`gmc_ingest_*`, `gmc_http_*`, `gmc_scrape_*`), rendered in
//! Prometheus text format at `/metrics` and recorded into the store by self-monitoring.
//!
//! Plain atomics in fixed arrays: every label value is known up front (protocols, routes)
//! or is a `&'static str` reason, so recording never allocates or formats.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Ingest protocols, the `protocol` label of `gmc_ingest_samples_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Prometheus remote_write 1.0.
    RemoteWrite,
    /// Prometheus remote write 2.0.
    RemoteWriteV2,
    /// Text exposition pushed to the import endpoint or Pushgateway-style path.
    Exposition,
    /// InfluxDB line protocol.
    Influx,
    /// JSON push.
    Json,
    /// Pull scraping.
    Scrape,
    /// gmc's own metrics.
    SelfMonitoring,
}

impl Protocol {
    const ALL: [Protocol; 7] = [
        Protocol::RemoteWrite,
        Protocol::RemoteWriteV2,
        Protocol::Exposition,
        Protocol::Influx,
        Protocol::Json,
        Protocol::Scrape,
        Protocol::SelfMonitoring,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::RemoteWrite => "remote_write",
            Protocol::RemoteWriteV2 => "remote_write_v2",
            Protocol::Exposition => "exposition",
            Protocol::Influx => "influx",
            Protocol::Json => "json",
            Protocol::Scrape => "scrape",
            Protocol::SelfMonitoring => "self",
        }
    }
}

/// Steps of a write, the `stage` label of `gmc_ingest_stage_duration_seconds`: where a
/// slow write spent its time. A write is timed in each step it reaches (one refused while
/// decoding has no `store` time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestStage {
    /// Waiting for a write slot and a thread (queueing behind other writes).
    Wait,
    /// Decompression, decoding and validation.
    Decode,
    /// The store's append, until the write is durable.
    Store,
}

impl IngestStage {
    const ALL: [IngestStage; 3] = [IngestStage::Wait, IngestStage::Decode, IngestStage::Store];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestStage::Wait => "wait",
            IngestStage::Decode => "decode",
            IngestStage::Store => "store",
        }
    }
}

/// Upper bounds (seconds) of the request-duration histogram buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // Non-cumulative storage; cumulated when rendered.
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The series of one histogram with `labels` (rendered, without braces), after its
    /// family's HELP and TYPE lines.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0u64;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cum += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cum}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// All server metrics.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    samples: [AtomicU64; Protocol::ALL.len()],
    requests: [AtomicU64; Protocol::ALL.len()],
    rejected: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    http: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, std::sync::Arc<LatencyHistogram>>>,
    stages: [LatencyHistogram; IngestStage::ALL.len()],
    overloaded: AtomicU64,
    scrapes: AtomicU64,
    scrape_failures: AtomicU64,
    queries: AtomicU64,
    query_failures: AtomicU64,
}

impl ServerMetrics {
    /// Count accepted samples and one request for `p`.
    pub fn ingested(&self, p: Protocol, samples: u64) {
        self.samples[p as usize].fetch_add(samples, Ordering::Relaxed);
        self.requests[p as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Count `n` rejected series or samples for `reason`.
    pub fn rejected(&self, p: Protocol, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        *self
            .rejected
            .lock()
            .entry((p.as_str(), reason))
            .or_insert(0) += n;
    }

    /// Total rejections (all protocols, all reasons).
    pub fn rejected_total(&self) -> u64 {
        self.rejected.lock().values().sum()
    }

    /// Total accepted samples per protocol.
    pub fn samples_by_protocol(&self) -> Vec<(&'static str, u64)> {
        Protocol::ALL
            .iter()
            .map(|p| {
                (
                    p.as_str(),
                    self.samples[*p as usize].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Rejections by `(protocol, reason)`.
    pub fn rejections(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.rejected.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// A write was refused because the server was saturated.
    pub fn overloaded(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// A scrape finished.
    pub fn scraped(&self, ok: bool) {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.scrape_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Record an HTTP request on route `route` (the matched path template).
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        *self
            .http
            .lock()
            .entry((route.to_owned(), status))
            .or_insert(0) += 1;
        let h = {
            let mut m = self.latency.lock();
            match m.get(route) {
                Some(h) => h.clone(),
                None => m.entry(route.to_owned()).or_default().clone(),
            }
        };
        h.observe(elapsed);
    }

    /// A write spent `elapsed` in `stage`.
    pub fn ingest_stage(&self, stage: IngestStage, elapsed: Duration) {
        self.stages[stage as usize].observe(elapsed);
    }

    /// A PromQL query finished (`ok` = it produced a result).
    pub fn query_done(&self, ok: bool) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.query_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Render in Prometheus text format 0.0.4.
    pub fn encode_text(&self, out: &mut String) {
        out.push_str("# HELP gmc_queries_total PromQL queries evaluated.\n# TYPE gmc_queries_total counter\n");
        let _ = writeln!(
            out,
            "gmc_queries_total {}",
            self.queries.load(Ordering::Relaxed)
        );
        out.push_str("# HELP gmc_query_failures_total PromQL queries that ended in an error.\n# TYPE gmc_query_failures_total counter\n");
        let _ = writeln!(
            out,
            "gmc_query_failures_total {}",
            self.query_failures.load(Ordering::Relaxed)
        );
        out.push_str("# HELP gmc_ingest_samples_total Samples accepted and stored, by protocol.\n");
        out.push_str("# TYPE gmc_ingest_samples_total counter\n");
        for p in Protocol::ALL {
            let v = self.samples[p as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "gmc_ingest_samples_total{{protocol=\"{}\"}} {v}",
                p.as_str()
            );
        }
        out.push_str(
            "# HELP gmc_ingest_requests_total Write requests that stored data, by protocol.\n",
        );
        out.push_str("# TYPE gmc_ingest_requests_total counter\n");
        for p in Protocol::ALL {
            let v = self.requests[p as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "gmc_ingest_requests_total{{protocol=\"{}\"}} {v}",
                p.as_str()
            );
        }
        out.push_str(
            "# HELP gmc_ingest_rejected_total Series, samples or requests refused, by protocol and reason.\n",
        );
        out.push_str("# TYPE gmc_ingest_rejected_total counter\n");
        for ((p, r), v) in self.rejected.lock().iter() {
            let _ = writeln!(
                out,
                "gmc_ingest_rejected_total{{protocol=\"{p}\",reason=\"{r}\"}} {v}"
            );
        }
        out.push_str("# HELP gmc_ingest_overloaded_total Writes refused with 429 because the server was saturated.\n");
        out.push_str("# TYPE gmc_ingest_overloaded_total counter\n");
        let _ = writeln!(
            out,
            "gmc_ingest_overloaded_total {}",
            self.overloaded.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP gmc_scrape_total Scrapes performed.\n# TYPE gmc_scrape_total counter\n",
        );
        let _ = writeln!(
            out,
            "gmc_scrape_total {}",
            self.scrapes.load(Ordering::Relaxed)
        );
        out.push_str("# HELP gmc_scrape_failures_total Scrapes that failed.\n# TYPE gmc_scrape_failures_total counter\n");
        let _ = writeln!(
            out,
            "gmc_scrape_failures_total {}",
            self.scrape_failures.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP gmc_http_requests_total HTTP requests served, by route and status code.\n",
        );
        out.push_str("# TYPE gmc_http_requests_total counter\n");
        for ((route, code), v) in self.http.lock().iter() {
            let _ = writeln!(
                out,
                "gmc_http_requests_total{{code=\"{code}\",route=\"{}\"}} {v}",
                escape_label(route)
            );
        }
        out.push_str(
            "# HELP gmc_http_request_duration_seconds Time to answer an HTTP request, by route.\n",
        );
        out.push_str("# TYPE gmc_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().iter() {
            let route = escape_label(route);
            h.render(
                out,
                "gmc_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str(
            "# HELP gmc_ingest_stage_duration_seconds Time writes spent in each step they reached: waiting for a write slot, decoding, the store's append until durable.\n",
        );
        out.push_str("# TYPE gmc_ingest_stage_duration_seconds histogram\n");
        for st in IngestStage::ALL {
            self.stages[st as usize].render(
                out,
                "gmc_ingest_stage_duration_seconds",
                &format!("stage=\"{}\"", st.as_str()),
            );
        }
    }
}

/// Escape a label value for the text format.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let m = ServerMetrics::default();
        m.http_request("/api/v1/write", 204, Duration::from_micros(300));
        m.http_request("/api/v1/write", 204, Duration::from_millis(3));
        m.rejected(Protocol::Influx, "bad_line", 2);
        let mut s = String::new();
        m.encode_text(&mut s);
        assert!(s.contains("le=\"0.0005\"} 1\n"), "{s}");
        assert!(s.contains("le=\"0.005\"} 2\n"), "{s}");
        assert!(s.contains("gmc_ingest_rejected_total{protocol=\"influx\",reason=\"bad_line\"} 2"));
        assert!(s.contains(
            "gmc_http_request_duration_seconds_bucket{route=\"/api/v1/write\",le=\"+Inf\"} 2\n"
        ));
        assert!(s.contains("gmc_http_request_duration_seconds_count{route=\"/api/v1/write\"} 2\n"));
    }

    #[test]
    fn ingest_stages_render_one_histogram_each() {
        let m = ServerMetrics::default();
        m.ingest_stage(IngestStage::Decode, Duration::from_millis(2));
        m.ingest_stage(IngestStage::Store, Duration::from_millis(7));
        let mut s = String::new();
        m.encode_text(&mut s);
        assert_eq!(
            s.matches("# TYPE gmc_ingest_stage_duration_seconds histogram")
                .count(),
            1
        );
        assert!(
            s.contains(
                "gmc_ingest_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.0025\"} 1\n"
            ),
            "{s}"
        );
        assert!(
            s.contains(
                "gmc_ingest_stage_duration_seconds_bucket{stage=\"store\",le=\"0.005\"} 0\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("gmc_ingest_stage_duration_seconds_bucket{stage=\"store\",le=\"0.01\"} 1\n"),
            "{s}"
        );
        assert!(
            s.contains("gmc_ingest_stage_duration_seconds_count{stage=\"wait\"} 0\n"),
            "{s}"
        );
    }
}
