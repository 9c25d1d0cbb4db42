//! Adapters from the server's ingest pipeline to the gmc-wire decoders: limits from the
//! configuration, body validation, and whole-request errors turned into counted refusals.

use gmc_wire::{Decoded, Limits};

use super::Refusal;
use crate::api_error::ApiError;
use crate::state::AppState;

pub(crate) use gmc_wire::exposition::{Format as TextFormat, Options as ExpositionOptions};

/// The decode limits of the configuration.
pub(crate) fn limits(state: &AppState) -> Limits {
    let ing = &state.config.ingest;
    Limits {
        max_body_bytes: usize::try_from(ing.max_body_bytes).unwrap_or(usize::MAX),
        max_samples: ing.max_samples_per_request,
        labels: ing.validation_limits(),
    }
}

/// A whole-request decode failure, counted under the decoder's reason.
fn refuse(e: gmc_wire::Error) -> Refusal {
    Refusal {
        reason: e.reason(),
        error: match e.class() {
            gmc_model::ErrorClass::Limit if matches!(e, gmc_wire::Error::BodyTooLarge { .. }) => {
                ApiError::too_large(e.to_string())
            }
            class => ApiError::from_class(class, e.to_string()),
        },
    }
}

fn utf8(body: &[u8]) -> Result<&str, Refusal> {
    std::str::from_utf8(body).map_err(|e| {
        Refusal::bad(
            "invalid_utf8",
            format!(
                "body is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Decompressed remote-write requests at least this large per core are decoded, and
/// then stored, in parts on several cores: a 10k-series request is ~1.5 MiB and takes
/// milliseconds, a thread spawn tens of microseconds.
const PARALLEL_PART_BYTES: usize = 256 << 10;

/// Remote write: snappy (capped) into `scratch`, then the zero-copy protobuf decoder. A
/// large request is split at series boundaries into up to `cores` parts decoded in
/// parallel (one batch per part, in request order). The caller passes the cores no other
/// write is using: under load, splitting would only make a request wait for the slower
/// of its parts (measured: p99 at half the maximum rate doubled when always splitting).
pub(crate) fn remote_write<'a>(
    body: &[u8],
    scratch: &'a mut Vec<u8>,
    limits: &Limits,
    cores: usize,
) -> Result<Vec<Decoded<'a>>, Refusal> {
    let (buf, parts) = decompress(body, scratch, limits, PARALLEL_PART_BYTES, cores)?;
    let pieces = gmc_wire::remote_write::split(buf, parts);
    all_parts(gmc_tsdb::par::each(pieces, |p| {
        gmc_wire::remote_write::decode_part(p, limits)
    }))
}

/// Snappy-decompress (capped) a remote-write body into `scratch`: the buffer, and how
/// many parts to decode it in (one per `part_bytes`, at most `cores`).
fn decompress<'a>(
    body: &[u8],
    scratch: &'a mut Vec<u8>,
    limits: &Limits,
    part_bytes: usize,
    cores: usize,
) -> Result<(&'a [u8], usize), Refusal> {
    gmc_wire::remote_write::decompress_into(body, limits, scratch).map_err(refuse)?;
    let parts = (scratch.len() / part_bytes).min(cores);
    Ok((scratch, parts))
}

/// The decoded parts of one request, or the refusal of the first that failed (a part
/// fails only on framing or a request-wide limit, which fail the request).
fn all_parts<'a>(parts: Vec<gmc_wire::Result<Decoded<'a>>>) -> Result<Vec<Decoded<'a>>, Refusal> {
    parts
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(refuse)
}

/// [`PARALLEL_PART_BYTES`] for remote write 2.0, whose series take ~30 bytes instead of
/// ~190 (labels are references into the request's symbol table): about the same number
/// of series per part.
const PARALLEL_PART_BYTES_V2: usize = 40 << 10;

/// Remote write 2.0: as [`remote_write`]; the symbol table is found first and shared by
/// the parts.
pub(crate) fn remote_write_v2<'a>(
    body: &[u8],
    scratch: &'a mut Vec<u8>,
    limits: &Limits,
    cores: usize,
) -> Result<Vec<Decoded<'a>>, Refusal> {
    use gmc_wire::remote_write::v2;
    let (buf, parts) = decompress(body, scratch, limits, PARALLEL_PART_BYTES_V2, cores)?;
    let layout = v2::split(buf, parts, limits).map_err(refuse)?;
    let symbols = &layout.symbols;
    all_parts(gmc_tsdb::par::each(layout.parts, |p| {
        v2::decode_part(symbols, p, limits)
    }))
}

/// Text exposition (0.0.4 or OpenMetrics).
pub(crate) fn exposition<'a>(
    body: &'a [u8],
    opts: &ExpositionOptions<'a>,
    limits: &Limits,
) -> Result<Decoded<'a>, Refusal> {
    gmc_wire::exposition::decode(utf8(body)?, opts, limits).map_err(refuse)
}

/// InfluxDB line protocol.
pub(crate) fn influx<'a>(
    body: &'a [u8],
    precision: gmc_wire::influx::Precision,
    default_ts_nanos: i64,
    limits: &Limits,
) -> Result<Decoded<'a>, Refusal> {
    gmc_wire::influx::decode(utf8(body)?, precision, default_ts_nanos, limits).map_err(refuse)
}

/// gmc's JSON push.
pub(crate) fn json(
    body: &[u8],
    default_ts_nanos: i64,
    limits: &Limits,
) -> Result<Decoded<'static>, Refusal> {
    gmc_wire::json_push::decode(body, default_ts_nanos, limits).map_err(refuse)
}
