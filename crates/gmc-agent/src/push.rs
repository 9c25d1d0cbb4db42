//! Delivery to the center: a sender thread that drains the spool in order with
//! remote_write, merging a backlog into larger requests and retrying with backoff.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::agent::Stop;
use crate::error::{Error, Result};
use crate::metrics::Counters;
use crate::spool::{Record, Spool};

/// Most records merged into one request while catching up.
const MAX_RECORDS_PER_REQUEST: usize = 64;
/// Most compressed payload bytes merged into one request.
const MAX_BYTES_PER_REQUEST: u64 = 4 << 20;
/// Cap of the decompressed size of one spooled record (a cycle is far below it).
const MAX_RECORD_RAW_BYTES: usize = 64 << 20;
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Short enough that a returning center gets the backlog within a second.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A remote_write client for one URL.
#[derive(Debug)]
pub struct Client {
    url: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client posting to `url` (`http://host:port/api/v1/write`) with `timeout` per request.
    pub fn new(url: &str, timeout: Duration) -> Result<Client> {
        if !url.starts_with("http://") {
            return Err(Error::Config {
                key: "push",
                reason: format!("{url:?} must start with http:// (https is not built in)"),
            });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(Client {
            url: url.to_owned(),
            agent,
        })
    }

    /// POST one snappy-compressed `WriteRequest`.
    ///
    /// # Errors
    /// [`Error::Rejected`] for a 4xx other than 429 (retrying cannot help),
    /// [`Error::Unavailable`] for transport errors, 429 and 5xx.
    pub fn send(&self, body: &[u8]) -> Result<()> {
        let resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header(
                "User-Agent",
                concat!("gmc-agent/", env!("CARGO_PKG_VERSION")),
            )
            .send(body)
            .map_err(|e| Error::Unavailable {
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(Error::Unavailable {
                reason: format!("status {status}"),
            }),
            _ => Err(Error::Rejected { status }),
        }
    }
}

/// Merge records into one request: remote_write `WriteRequest`s concatenate as protobuf
/// messages (repeated fields append), so decompress, concatenate, compress once.
pub fn merge(records: &[Record]) -> Result<Vec<u8>> {
    if let [one] = records {
        return Ok(one.payload.clone());
    }
    let mut raw = Vec::new();
    for r in records {
        let part = gmc_wire::snappy::decompress_capped(&r.payload, MAX_RECORD_RAW_BYTES)
            .map_err(|_| Error::CorruptRecord { seq: r.seq })?;
        raw.extend_from_slice(&part);
    }
    Ok(gmc_wire::snappy::compress(&raw))
}

/// The spool with the condition variable the collector signals after each append.
pub type SharedSpool = Arc<(Mutex<Spool>, Condvar)>;

/// Drain the spool to `client` until `stop`; on stop, keep sending for at most `drain`
/// while records remain, then return (the rest stays spooled).
pub fn run_sender(
    client: Client,
    spool: SharedSpool,
    counters: Arc<Counters>,
    stop: Stop,
    drain: Duration,
) {
    let mut backoff = BACKOFF_START;
    let mut stop_deadline = None;
    loop {
        if stop.is_stopped() && stop_deadline.is_none() {
            stop_deadline = Some(std::time::Instant::now() + drain);
        }
        if stop_deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return;
        }
        let (lock, cv) = &*spool;
        let records = {
            let Ok(mut s) = lock.lock() else { return };
            match s.peek(MAX_RECORDS_PER_REQUEST, MAX_BYTES_PER_REQUEST) {
                Ok(r) if r.is_empty() => {
                    if stop_deadline.is_some() {
                        return;
                    }
                    // Woken by the next append, or after a second to notice a stop.
                    let _ = cv.wait_timeout(s, Duration::from_secs(1));
                    continue;
                }
                Ok(r) => r,
                Err(e) => {
                    drop(s);
                    tracing::error!(error = %e, "Cannot read the spool; retrying.");
                    if stop.wait(BACKOFF_MAX) && stop_deadline.is_some() {
                        return;
                    }
                    continue;
                }
            }
        };
        let Some(last_seq) = records.last().map(|r| r.seq) else {
            continue;
        };
        let samples: u64 = records.iter().map(|r| u64::from(r.samples)).sum();
        let result = merge(&records).and_then(|body| client.send(&body));
        match result {
            Ok(()) => {
                backoff = BACKOFF_START;
                counters.samples_sent.fetch_add(samples, Ordering::Relaxed);
                if let Ok(mut s) = lock.lock() {
                    if let Err(e) = s.ack(last_seq) {
                        tracing::error!(error = %e, "Cannot move the spool cursor; records may be sent twice.");
                    }
                }
            }
            Err(Error::CorruptRecord { seq }) => {
                counters
                    .dropped_rejected
                    .fetch_add(samples, Ordering::Relaxed);
                tracing::error!(
                    seq,
                    samples,
                    "Undecodable spool record; dropped with its batch."
                );
                if let Ok(mut s) = lock.lock() {
                    let _ = s.skip(last_seq);
                }
            }
            Err(Error::Rejected { status }) => {
                counters
                    .dropped_rejected
                    .fetch_add(samples, Ordering::Relaxed);
                tracing::warn!(
                    status,
                    samples,
                    "The center refused spooled samples; dropped."
                );
                if let Ok(mut s) = lock.lock() {
                    let _ = s.skip(last_seq);
                }
            }
            Err(e) => {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, backoff_ms = backoff.as_millis() as u64, "Send failed; will retry.");
                if stop.wait(backoff) && stop_deadline.is_none() {
                    stop_deadline = Some(std::time::Instant::now() + drain);
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Kind, Snapshot};

    fn record(seq: u64, ts: i64, v: f64) -> Record {
        let mut s = Snapshot::new(ts);
        s.single("node_load1", "l", Kind::Gauge, v);
        let target = vec![("job".to_owned(), "node".to_owned())];
        let (b, _) = s.to_batch(&target, gmc_model::ValidationLimits::default());
        Record {
            seq,
            samples: 1,
            payload: gmc_wire::remote_write::encode_write_request(&b),
        }
    }

    #[test]
    fn merged_records_decode_as_one_request_in_order() {
        let body = merge(&[record(0, 1_000_000, 1.0), record(1, 2_000_000, 2.0)]).unwrap();
        let raw = gmc_wire::remote_write::decompress(&body, &gmc_wire::Limits::default()).unwrap();
        let d = gmc_wire::remote_write::decode(&raw, &gmc_wire::Limits::default()).unwrap();
        let got: Vec<(i64, f64)> = d
            .batch
            .iter()
            .flat_map(|s| s.floats.iter().map(|f| (f.ts_nanos, f.value)))
            .collect();
        assert_eq!(got, vec![(1_000_000, 1.0), (2_000_000, 2.0)]);
    }

    #[test]
    fn undecodable_record_is_reported_not_retried() {
        let bad = Record {
            seq: 7,
            samples: 1,
            payload: vec![0xff; 16],
        };
        assert!(matches!(
            merge(&[record(6, 1, 1.0), bad]),
            Err(Error::CorruptRecord { seq: 7 })
        ));
    }

    #[test]
    fn client_refuses_https_and_classifies_refused_connections() {
        assert!(Client::new("https://x/api/v1/write", Duration::from_secs(1)).is_err());
        // Port 1 on localhost: nothing listens, the connection is refused at once.
        let c = Client::new("http://127.0.0.1:1/api/v1/write", Duration::from_secs(1)).unwrap();
        assert!(matches!(c.send(b"x"), Err(Error::Unavailable { .. })));
    }
}
