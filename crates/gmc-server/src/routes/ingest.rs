//! Write endpoints. Every protocol goes through one pipeline: read the body within the
//! size limit → decompress (capped) → decode on a blocking thread → reject what is invalid
//! (counted by reason) → append to the store, which returns once the write is durable →
//! answer `204`, or `400` naming what was refused while keeping what was good.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gmc_model::{WriteBatch, NANOS_PER_SEC};

use crate::api_error::ApiError;
use crate::metrics::{IngestStage, Protocol};
use crate::state::AppState;

pub(crate) mod decode;

pub(crate) use gmc_wire::Decoded;

/// How many rejection messages one response quotes.
const MAX_MESSAGES: usize = 5;

/// A refusal of the whole request, with its counter reason.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) reason: &'static str,
    pub(crate) error: ApiError,
}

impl Refusal {
    pub(crate) fn bad(reason: &'static str, msg: impl Into<String>) -> Self {
        Refusal {
            reason,
            error: ApiError::bad_request(msg),
        }
    }
}

/// What a stored request achieved.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Samples stored, floats and histograms.
    pub(crate) samples: u64,
    /// Of those, histogram samples.
    pub(crate) histograms: u64,
    pub(crate) rejected_series: u64,
    pub(crate) messages: Vec<String>,
}

/// Bytes of an over-limit body read on and dropped before the refusal is sent.
const DRAIN_BYTES: usize = 16 << 20;

/// Longest wait for them.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Read the body, refusing more than `limit` bytes. An over-limit body is read on and
/// dropped (up to [`DRAIN_BYTES`] more, for up to [`DRAIN_TIME`]) before the refusal is
/// sent: a server that closes a connection whose request is still arriving resets it,
/// and the sender then sees a connection error, which remote-write senders retry
/// forever, instead of the 413 that says this request will never succeed. (The e2e
/// bad-input test met that reset on a loaded machine.)
async fn read_body(state: &AppState, p: Protocol, body: Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    let limit = usize::try_from(state.config.ingest.max_body_bytes).unwrap_or(usize::MAX);
    let refuse = |why: String| {
        state.metrics.rejected(p, "body_too_large", 1);
        ApiError::too_large(why)
    };
    let mut body = body;
    let mut parts: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| refuse(format!("request body could not be read: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > limit {
            drain(&mut body).await;
            return Err(refuse(format!(
                "request body exceeds the limit of {limit} bytes (ingest.max_body_bytes)"
            )));
        }
        parts.push(data);
    }
    Ok(match parts.len() {
        0 => Bytes::new(),
        1 => parts.pop().unwrap_or_default(),
        _ => {
            let mut all = Vec::with_capacity(total);
            for part in parts {
                all.extend_from_slice(&part);
            }
            Bytes::from(all)
        }
    })
}

/// Read and drop what is left of `body`, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(body: &mut Body) {
    use http_body_util::BodyExt as _;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0usize;
        while n < DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => n += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
    })
    .await;
}

/// Undo `Content-Encoding: gzip` with the decompressed size capped like the body.
fn decode_content_encoding(
    state: &AppState,
    p: Protocol,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Bytes, ApiError> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match enc.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let limit = state.config.ingest.max_body_bytes;
            let mut out = Vec::new();
            let mut rd = flate2::read::MultiGzDecoder::new(&body[..]).take(limit + 1);
            rd.read_to_end(&mut out).map_err(|e| {
                state.metrics.rejected(p, "bad_gzip", 1);
                ApiError::bad_request(format!("cannot decompress gzip body: {e}"))
            })?;
            if out.len() as u64 > limit {
                state.metrics.rejected(p, "body_too_large", 1);
                return Err(ApiError::too_large(format!(
                    "decompressed body exceeds the limit of {limit} bytes (ingest.max_body_bytes)"
                )));
            }
            Ok(Bytes::from(out))
        }
        other => {
            state.metrics.rejected(p, "unsupported_encoding", 1);
            Err(ApiError::unsupported_media(format!(
                "unsupported Content-Encoding {other:?}; use gzip or none"
            )))
        }
    }
}

/// Decode and store `body`; the closure decodes on a blocking thread. `ctx` (labels,
/// options) lives as long as the decoded batch, so the batch may borrow from it.
pub(crate) async fn store<C, F>(
    state: &AppState,
    p: Protocol,
    body: Bytes,
    ctx: C,
    decode: F,
) -> Result<Outcome, ApiError>
where
    C: Send + 'static,
    F: for<'a> FnOnce(&'a [u8], &'a mut Vec<u8>, &'a C) -> Result<Vec<Decoded<'a>>, Refusal>
        + Send
        + 'static,
{
    let queued = std::time::Instant::now();
    let wait = state.config.server.overload_wait;
    let permit = match tokio::time::timeout(wait, state.write_slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            state.metrics.overloaded();
            return Err(ApiError::overloaded(
                "gmc is saturated with writes; retry after the delay in Retry-After",
                1,
            ));
        }
    };
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        st.metrics.ingest_stage(IngestStage::Wait, queued.elapsed());
        store_blocking(&st, p, &body, &ctx, decode)
    })
    .await
    .map_err(|e| ApiError::internal(format!("write task failed: {e}")))?
}

fn store_blocking<C, F>(
    state: &AppState,
    p: Protocol,
    body: &[u8],
    ctx: &C,
    decode: F,
) -> Result<Outcome, ApiError>
where
    F: for<'a> FnOnce(&'a [u8], &'a mut Vec<u8>, &'a C) -> Result<Vec<Decoded<'a>>, Refusal>,
{
    let started = std::time::Instant::now();
    let mut scratch = state.decode_buffers.take();
    let parts = decode(body, &mut scratch, ctx).map_err(|r| {
        state.metrics.rejected(p, r.reason, 1);
        r.error
    })?;
    // The batches keep only owned data: the decompressed request goes back to the pool
    // now, not after the append's wait for the WAL, so the pool needs about one buffer
    // per decoding thread rather than one per write in flight.
    let parts: Vec<Decoded<'static>> = parts.into_iter().map(Decoded::into_owned).collect();
    drop(scratch);
    let decoded = std::time::Instant::now();
    state
        .metrics
        .ingest_stage(IngestStage::Decode, decoded - started);
    if parts.is_empty() {
        return Ok(Outcome::default());
    }
    let outcome = commit_parts(state, p, parts);
    state
        .metrics
        .ingest_stage(IngestStage::Store, decoded.elapsed());
    outcome
}

/// Store the decoded parts of one request (one, or several from `decode::remote_write`)
/// as one write: the store checks and stores the parts on the cores and logs them with
/// one sync ([`gmc_tsdb::Db::append_parts`]). The request's sample limit applies to their
/// total, before anything is stored. If the store refuses the write, nothing is
/// acknowledged.
fn commit_parts(
    state: &AppState,
    p: Protocol,
    mut parts: Vec<Decoded<'_>>,
) -> Result<Outcome, ApiError> {
    let total: usize = parts.iter().map(|d| d.batch.len_samples()).sum();
    let max = state.config.ingest.max_samples_per_request;
    if total > max {
        state.metrics.rejected(p, "too_many_samples", 1);
        return Err(too_many_samples(total, max));
    }
    let mut tallies: Vec<Tally> = parts
        .iter_mut()
        .map(|d| Tally::before_append(state, d))
        .collect();
    let batches: Vec<&WriteBatch<'_>> = parts.iter().map(|d| &d.batch).collect();
    let reports = state
        .db
        .append_parts(&batches)
        .map_err(|e| storage_refused(state, p, e))?;
    *state.last_storage_error.lock() = None;
    let mut out = Outcome::default();
    for ((t, d), report) in tallies.iter_mut().zip(&parts).zip(&reports) {
        t.after_append(state, p, d, report);
    }
    for t in tallies {
        out.samples += t.outcome.samples;
        out.histograms += t.outcome.histograms;
        out.rejected_series += t.outcome.rejected_series;
        out.messages.extend(t.outcome.messages);
    }
    out.messages.truncate(MAX_MESSAGES);
    Ok(out)
}

fn too_many_samples(n: usize, limit: usize) -> ApiError {
    ApiError::bad_request(format!(
        "request carries {n} samples, the limit is {limit} (ingest.max_samples_per_request)"
    ))
}

/// Check request-level limits, drop future samples, append durably and count everything.
/// Blocking: call from a blocking thread.
pub(crate) fn commit(
    state: &AppState,
    p: Protocol,
    decoded: Decoded<'_>,
) -> Result<Outcome, ApiError> {
    commit_parts(state, p, vec![decoded])
}

/// What one decoded batch's write refused and achieved, counted by reason once the
/// store has answered.
struct Tally {
    outcome: Outcome,
    by_reason: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// Take over the decoder's rejections and drop future samples from the batch.
    fn before_append(state: &AppState, decoded: &mut Decoded<'_>) -> Self {
        let mut outcome = Outcome::default();
        let mut by_reason: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (reason, n) in &decoded.report.rejected {
            *by_reason.entry(reason).or_default() += n;
            outcome.rejected_series += n;
        }
        outcome.messages.append(&mut decoded.report.messages);
        outcome.messages.truncate(MAX_MESSAGES);
        reject_future(state, &mut decoded.batch, &mut by_reason, &mut outcome);
        Tally { outcome, by_reason }
    }

    /// Count what the store refused and stored.
    fn after_append(
        &mut self,
        state: &AppState,
        p: Protocol,
        decoded: &Decoded<'_>,
        report: &gmc_tsdb::AppendReport,
    ) {
        let outcome = &mut self.outcome;
        for r in &report.rejected {
            *self.by_reason.entry(r.error.reason()).or_default() += 1;
            outcome.rejected_series += 1;
            if outcome.messages.len() < MAX_MESSAGES {
                let labels = decoded
                    .batch
                    .get(r.series_index)
                    .map(|s| s.to_labels().to_string())
                    .unwrap_or_default();
                outcome.messages.push(format!("{labels}: {}", r.error));
            }
        }
        for (reason, n) in std::mem::take(&mut self.by_reason) {
            state.metrics.rejected(p, reason, n);
        }
        outcome.samples = (report.accepted_floats + report.accepted_histograms) as u64;
        outcome.histograms = report.accepted_histograms as u64;
        state.metrics.ingested(p, outcome.samples);
        if outcome.samples > 0 {
            state.note_services(&decoded.batch);
        }
    }
}

/// The store refused a whole write: count it, remember it for `/system/status` and
/// answer with its class.
fn storage_refused(state: &AppState, p: Protocol, e: gmc_tsdb::Error) -> ApiError {
    state.metrics.rejected(p, "storage_error", 1);
    *state.last_storage_error.lock() = Some((std::time::Instant::now(), e.to_string()));
    tracing::error!(error = %e, protocol = p.as_str(), "Store refused a write; nothing of it was acknowledged.");
    ApiError::from_class(
        e.class(),
        format!("storage refused the write, nothing was stored: {e}"),
    )
}

/// Drop series with samples beyond the allowed clock skew into the future.
fn reject_future(
    state: &AppState,
    batch: &mut WriteBatch<'_>,
    by_reason: &mut BTreeMap<&'static str, u64>,
    outcome: &mut Outcome,
) {
    let skew = i64::try_from(state.config.ingest.max_future_skew.as_nanos()).unwrap_or(i64::MAX);
    let limit = gmc_model::now_nanos().saturating_add(skew);
    // Nearly every batch has nothing to drop: one pass over its samples says so, where
    // rebuilding the series list cost ~2 % of remote-write CPU.
    if batch.newest_ts().is_none_or(|t| t <= limit) {
        return;
    }
    let mut dropped = 0u64;
    let mut first: Option<String> = None;
    batch.retain_series(|_, s| {
        let newest = s.newest_ts().unwrap_or(i64::MIN);
        if newest > limit {
            dropped += 1;
            if first.is_none() {
                first = Some(format!(
                    "{}: sample timestamp {:.3} is more than {}s in the future",
                    s.to_labels(),
                    newest as f64 / NANOS_PER_SEC as f64,
                    skew / NANOS_PER_SEC
                ));
            }
            false
        } else {
            true
        }
    });
    if dropped > 0 {
        *by_reason.entry("too_far_in_future").or_default() += dropped;
        outcome.rejected_series += dropped;
        if let Some(m) = first {
            if outcome.messages.len() < MAX_MESSAGES {
                outcome.messages.push(m);
            }
        }
    }
}

/// The response for a stored request: `204`, or `400` listing what was refused.
fn respond(outcome: Outcome, ok: StatusCode) -> Response {
    if outcome.rejected_series == 0 {
        return ok.into_response();
    }
    let mut msg = format!(
        "stored {} samples; refused {} series: {}",
        outcome.samples,
        outcome.rejected_series,
        outcome.messages.join("; ")
    );
    if msg.len() > 4096 {
        msg.truncate(msg.floor_char_boundary(4096));
    }
    ApiError::bad_request(msg).into_response()
}

/// Which remote-write message a request carries, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RemoteWriteMessage {
    /// `prometheus.WriteRequest` (remote write 1.0).
    V1,
    /// `io.prometheus.write.v2.Request` (remote write 2.0).
    V2,
}

/// The message of a remote-write `Content-Type`: `application/x-protobuf`, 1.0 unless a
/// `proto` parameter names 2.0 (as the 2.0 specification negotiates it). No content type
/// at all is 1.0, as old senders send none. `Err` gives the counter reason and says why
/// the type is refused (415).
fn remote_write_message(ctype: &str) -> Result<RemoteWriteMessage, (&'static str, String)> {
    let ctype = ctype.trim();
    if ctype.is_empty() {
        return Ok(RemoteWriteMessage::V1);
    }
    let mut parts = ctype.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err((
            "unsupported_content_type",
            format!(
                "unsupported Content-Type {ctype:?}; remote write sends application/x-protobuf"
            ),
        ));
    }
    for param in parts {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("proto") {
            return match v.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Ok(RemoteWriteMessage::V1),
                gmc_wire::remote_write::v2::PROTO_MESSAGE => Ok(RemoteWriteMessage::V2),
                other => Err((
                    "unsupported_message",
                    format!(
                        "unsupported protobuf message {other:?}; gmc accepts prometheus.WriteRequest (remote write 1.0) and {} (2.0)",
                        gmc_wire::remote_write::v2::PROTO_MESSAGE
                    ),
                )),
            };
        }
    }
    Ok(RemoteWriteMessage::V1)
}

/// The response headers remote write 2.0 requires on a stored request (success or a
/// partial write): what was written, so the sender can tell a partial write from a full
/// one. gmc does not store exemplars, so it reports none written.
fn respond_with_written(outcome: Outcome) -> Response {
    let histograms = outcome.histograms;
    let floats = outcome.samples.saturating_sub(histograms);
    let mut resp = respond(outcome, StatusCode::NO_CONTENT);
    let h = resp.headers_mut();
    for (name, n) in [
        ("x-prometheus-remote-write-samples-written", floats),
        ("x-prometheus-remote-write-histograms-written", histograms),
        ("x-prometheus-remote-write-exemplars-written", 0),
    ] {
        h.insert(name, axum::http::HeaderValue::from(n));
    }
    resp
}

/// `POST /api/v1/write`: Prometheus remote write 1.0 and 2.0 (protobuf, snappy block
/// format), told apart by the `Content-Type`'s `proto` parameter.
pub(crate) async fn remote_write(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let message = remote_write_message(ctype).map_err(|(reason, why)| {
        state.metrics.rejected(Protocol::RemoteWrite, reason, 1);
        ApiError::unsupported_media(why)
    })?;
    let p = match message {
        RemoteWriteMessage::V1 => Protocol::RemoteWrite,
        RemoteWriteMessage::V2 => Protocol::RemoteWriteV2,
    };
    if let Some(enc) = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        if !enc.eq_ignore_ascii_case("snappy") {
            state.metrics.rejected(p, "unsupported_encoding", 1);
            return Err(ApiError::unsupported_media(format!(
                "unsupported Content-Encoding {enc:?}; remote write uses snappy"
            )));
        }
    }
    let body = read_body(&state, p, body).await?;
    let ctx = (decode::limits(&state), state.clone());
    match message {
        RemoteWriteMessage::V1 => {
            let outcome = store(&state, p, body, ctx, |b, scratch, (limits, st)| {
                decode::remote_write(b, scratch, limits, st.spare_write_cores())
            })
            .await?;
            Ok(respond(outcome, StatusCode::NO_CONTENT))
        }
        RemoteWriteMessage::V2 => {
            let outcome = store(&state, p, body, ctx, |b, scratch, (limits, st)| {
                decode::remote_write_v2(b, scratch, limits, st.spare_write_cores())
            })
            .await?;
            Ok(respond_with_written(outcome))
        }
    }
}

/// Extra labels for pushed expositions: `job`, `instance` and repeated `extra_label=k=v`.
fn import_labels(raw_query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut labels = Vec::new();
    for (k, v) in form_pairs(raw_query.unwrap_or("")) {
        match k.as_str() {
            "job" | "instance" => labels.push((k, v)),
            "extra_label" => {
                let (n, val) = v.split_once('=').ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid extra_label {v:?}; write extra_label=name=value"
                    ))
                })?;
                labels.push((n.to_owned(), val.to_owned()));
            }
            _ => {}
        }
    }
    Ok(labels)
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((percent_decode(k), percent_decode(v)));
    }
    out
}

/// Decode `%XX` and `+` in a query component; invalid escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn exposition_format(headers: &HeaderMap) -> decode::TextFormat {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    decode::TextFormat::from_content_type(ctype)
}

/// `POST /api/v1/import/prometheus`: push a text exposition.
pub(crate) async fn import_prometheus(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let labels = import_labels(uri.query())?;
    let outcome = store_exposition(&state, &headers, body, labels).await?;
    Ok(respond(outcome, StatusCode::NO_CONTENT))
}

/// Read, decode (format from the `Content-Type`, timestamps honoured, missing ones = now)
/// and store a pushed exposition with `labels` added to every series.
async fn store_exposition(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    labels: Vec<(String, String)>,
) -> Result<Outcome, ApiError> {
    let p = Protocol::Exposition;
    let body = read_body(state, p, body).await?;
    let body = decode_content_encoding(state, p, headers, body)?;
    let format = exposition_format(headers);
    let ctx = (decode::limits(state), labels, gmc_model::now_nanos());
    store(state, p, body, ctx, move |b, _, (limits, labels, now)| {
        let opts = decode::ExpositionOptions {
            format,
            default_ts_nanos: *now,
            target_labels: labels,
            honor_labels: false,
            honor_timestamps: true,
        };
        decode::exposition(b, &opts, limits).map(|d| vec![d])
    })
    .await
}

/// `PUT|POST /metrics/job/<job>{/<label>/<value>}`: Pushgateway-style push. Unlike a
/// Pushgateway, gmc stores the pushed samples at once (receive time unless the exposition
/// has timestamps); there is no group cache to scrape or delete.
pub(crate) async fn pushgateway(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Protocol::Exposition;
    let mut parts = rest.split('/').filter(|s| !s.is_empty());
    let job = parts.next().map(percent_decode).unwrap_or_default();
    if job.is_empty() {
        state.metrics.rejected(p, "bad_path", 1);
        return Err(ApiError::bad_request(
            "the job name in /metrics/job/<job> is empty",
        ));
    }
    let mut labels = vec![("job".to_owned(), job)];
    let rest: Vec<&str> = parts.collect();
    if !rest.len().is_multiple_of(2) {
        state.metrics.rejected(p, "bad_path", 1);
        return Err(ApiError::bad_request(
            "grouping labels in the path must come in /<label>/<value> pairs",
        ));
    }
    for pair in rest.chunks(2) {
        labels.push((percent_decode(pair[0]), percent_decode(pair[1])));
    }
    let outcome = store_exposition(&state, &headers, body, labels).await?;
    Ok(respond(outcome, StatusCode::OK))
}

/// `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (2.x): line protocol.
pub(crate) async fn influx(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Protocol::Influx;
    let raw = params.get("precision").map(String::as_str).unwrap_or("ns");
    let Some(precision) = gmc_wire::influx::Precision::parse(raw) else {
        state.metrics.rejected(p, "bad_precision", 1);
        return Err(ApiError::bad_request(format!(
            "invalid precision {raw:?}; use ns, us, ms or s"
        )));
    };
    let body = read_body(&state, p, body).await?;
    let body = decode_content_encoding(&state, p, &headers, body)?;
    let ctx = (decode::limits(&state), gmc_model::now_nanos());
    let outcome = store(&state, p, body, ctx, move |b, _, (limits, now)| {
        decode::influx(b, precision, *now, limits).map(|d| vec![d])
    })
    .await?;
    Ok(respond(outcome, StatusCode::NO_CONTENT))
}

/// `POST /api/v1/push`: gmc's JSON push.
pub(crate) async fn json_push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Protocol::Json;
    let body = read_body(&state, p, body).await?;
    let body = decode_content_encoding(&state, p, &headers, body)?;
    let ctx = (decode::limits(&state), gmc_model::now_nanos());
    let outcome = store(&state, p, body, ctx, |b, _, (limits, now)| {
        decode::json(b, *now, limits).map(|d| vec![d])
    })
    .await?;
    if outcome.rejected_series > 0 {
        return Ok(respond(outcome, StatusCode::OK));
    }
    Ok((
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "success", "samples": outcome.samples})),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_write_content_types() {
        use RemoteWriteMessage::{V1, V2};
        for (ctype, want) in [
            ("", Ok(V1)),
            ("application/x-protobuf", Ok(V1)),
            ("Application/X-Protobuf ; charset=binary", Ok(V1)),
            (
                "application/x-protobuf;proto=prometheus.WriteRequest",
                Ok(V1),
            ),
            (
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                Ok(V2),
            ),
            (
                "application/x-protobuf; proto=\"io.prometheus.write.v2.Request\"",
                Ok(V2),
            ),
            (
                "application/x-protobuf;proto=io.prometheus.write.v3.Request",
                Err("protobuf message"),
            ),
            ("application/json", Err("Content-Type")),
        ] {
            let got = remote_write_message(ctype);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{ctype}"),
                (Err((_, e)), Err(w)) => assert!(e.contains(w), "{ctype}: {e}"),
                (got, want) => panic!("{ctype}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn percent_decoding_and_import_labels() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("%4"), "%4");
        let l = import_labels(Some("job=x&instance=h%3A1&extra_label=env=prod&other=1")).unwrap();
        assert_eq!(
            l,
            vec![
                ("job".into(), "x".into()),
                ("instance".into(), "h:1".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert!(import_labels(Some("extra_label=novalue")).is_err());
    }
}
