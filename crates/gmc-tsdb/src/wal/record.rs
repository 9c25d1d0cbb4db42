//! WAL record framing and payloads (byte format: `docs/format/wal.md`).
//!
//! Frame: `u32 LE payload length | u32 LE CRC-32 (IEEE) of type byte + payload | u8 type |
//! payload`. Decoding never panics: any inconsistency is an error the replay reports.

use gmc_model::{Histogram, Label, Labels, Metadata, MetricType};

use crate::chunk;
use crate::querier::SampleValue;

/// Bytes before the payload.
pub(crate) const FRAME_HEADER: usize = 9;
/// Largest payload accepted when reading (a sanity bound against garbage lengths).
pub(crate) const MAX_PAYLOAD: usize = 512 << 20;

/// Record type: series definitions.
pub(crate) const TYPE_SERIES: u8 = 1;
/// Record type: float samples.
pub(crate) const TYPE_FLOATS: u8 = 2;
/// Record type: histogram samples.
pub(crate) const TYPE_HISTOGRAMS: u8 = 3;
/// Record type: metric metadata.
pub(crate) const TYPE_METADATA: u8 = 4;
/// Flag on a record type: the payload is the snappy (raw block format) compression of the
/// payload of `type & !COMPRESSED`. Checkpoints use it for series records, whose label
/// strings repeat from series to series (about 6× smaller on the trading workload).
pub(crate) const COMPRESSED: u8 = 0x80;

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Series refs and their labels.
    Series(Vec<(u64, Labels)>),
    /// `(ref, ts_nanos, value)` float samples.
    Floats(Vec<(u64, i64, f64)>),
    /// `(ref, ts_nanos, histogram)` samples.
    Histograms(Vec<(u64, i64, Histogram)>),
    /// Family metadata.
    Metadata(Vec<Metadata>),
}

/// Why a record payload does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads payload fields.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .b
                .get(self.pos)
                .ok_or(DecodeError("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError("overlong varint"))
    }

    fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError("length overflow"))?;
        let s = self
            .b
            .get(self.pos..end)
            .ok_or(DecodeError("truncated field"))?;
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| DecodeError("bad length"))?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError("invalid UTF-8"))
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count of items each taking at least `min_bytes`, bounded by the bytes left.
    fn count(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        let left = (self.b.len() - self.pos.min(self.b.len())) / min_bytes.max(1);
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or(DecodeError("count exceeds payload"))
    }

    fn done(&self) -> Result<(), DecodeError> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

/// Appends one framed record; `fill` writes the payload.
pub(crate) fn frame(out: &mut Vec<u8>, typ: u8, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    out[start + 8] = typ;
    fill(out);
    let payload_len = (out.len() - start - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends one framed record whose payload `fill` writes, snappy-compressed (type flag
/// [`COMPRESSED`]) when that is smaller. `scratch` is reused between calls.
pub(crate) fn frame_compressed(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    typ: u8,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    scratch.clear();
    fill(scratch);
    let mut enc = snap::raw::Encoder::new();
    match enc.compress_vec(scratch) {
        Ok(z) if z.len() < scratch.len() => {
            frame(out, typ | COMPRESSED, |o| o.extend_from_slice(&z))
        }
        _ => frame(out, typ, |o| o.extend_from_slice(scratch)),
    }
}

/// Series record payload from `(ref, labels)` pairs.
pub(crate) fn series_payload<'l>(
    out: &mut Vec<u8>,
    series: impl ExactSizeIterator<Item = (u64, &'l [(std::sync::Arc<str>, std::sync::Arc<str>)])>,
) {
    put_uvarint(out, series.len() as u64);
    for (r, labels) in series {
        put_uvarint(out, r);
        put_uvarint(out, labels.len() as u64);
        for (n, v) in labels {
            put_str(out, n);
            put_str(out, v);
        }
    }
}

/// Float record payload; `base_ts` makes timestamps small deltas.
pub(crate) fn floats_payload(
    out: &mut Vec<u8>,
    count: usize,
    base_ts: i64,
    samples: impl Iterator<Item = (u64, i64, f64)>,
) {
    put_uvarint(out, count as u64);
    put_varint(out, base_ts);
    for (r, ts, v) in samples {
        put_uvarint(out, r);
        put_varint(out, ts.wrapping_sub(base_ts));
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// Histogram record payload: each histogram as a one-sample histogram chunk.
pub(crate) fn histograms_payload(out: &mut Vec<u8>, samples: &[(u64, i64, &Histogram)]) {
    put_uvarint(out, samples.len() as u64);
    for &(r, ts, h) in samples {
        put_uvarint(out, r);
        let (_, bytes) = chunk::encode_histograms(&[(ts, h)]);
        put_uvarint(out, bytes.len() as u64);
        out.extend_from_slice(&bytes);
    }
}

fn type_code(t: MetricType) -> u8 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

fn type_from(c: u8) -> Result<MetricType, DecodeError> {
    Ok(match c {
        0 => MetricType::Unknown,
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => return Err(DecodeError("unknown metric type")),
    })
}

/// Metadata record payload.
pub(crate) fn metadata_payload(out: &mut Vec<u8>, m: &[Metadata]) {
    put_uvarint(out, m.len() as u64);
    for x in m {
        put_str(out, &x.metric_family);
        out.push(type_code(x.metric_type));
        put_str(out, &x.help);
        put_str(out, &x.unit);
    }
}

/// Decode a record payload of type `typ` (a compressed one is decompressed first, to at
/// most 512 MiB).
pub fn decode(typ: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    if typ & COMPRESSED != 0 {
        let n = snap::raw::decompress_len(payload)
            .map_err(|_| DecodeError("bad compressed payload"))?;
        if n > MAX_PAYLOAD {
            return Err(DecodeError("implausible decompressed length"));
        }
        // Sized from the checked header, so the output is bounded: the technique of
        // `gmc_wire::snappy::decompress_capped`, which the store cannot call (it must not
        // depend on the protocol crate).
        let mut plain = vec![0u8; n];
        let got = snap::raw::Decoder::new()
            .decompress(payload, &mut plain)
            .map_err(|_| DecodeError("bad compressed payload"))?;
        return decode_plain(typ & !COMPRESSED, &plain[..got]);
    }
    decode_plain(typ, payload)
}

fn decode_plain(typ: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    let mut r = Reader { b: payload, pos: 0 };
    let rec = match typ {
        TYPE_SERIES => {
            let n = r.count(2)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.uvarint()?;
                let nl = r.count(2)?;
                let mut labels = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = r.str()?.to_owned();
                    let value = r.str()?.to_owned();
                    labels.push(Label { name, value });
                }
                if !labels.windows(2).all(|w| w[0].name < w[1].name) {
                    return Err(DecodeError("labels not sorted"));
                }
                v.push((id, Labels::from_sorted(labels)));
            }
            Record::Series(v)
        }
        TYPE_FLOATS => {
            let n = r.count(10)?;
            let base = r.varint()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.uvarint()?;
                let ts = base.wrapping_add(r.varint()?);
                v.push((id, ts, f64::from_bits(r.u64_le()?)));
            }
            Record::Floats(v)
        }
        TYPE_HISTOGRAMS => {
            let n = r.count(3)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.uvarint()?;
                let len = usize::try_from(r.uvarint()?).map_err(|_| DecodeError("bad length"))?;
                let bytes = r.bytes(len)?;
                let mut it = chunk::decode_iter(chunk::ENCODING_HISTOGRAM, bytes)
                    .map_err(|_| DecodeError("bad histogram"))?;
                let s = it
                    .next()
                    .ok_or(DecodeError("empty histogram"))?
                    .map_err(|_| DecodeError("bad histogram"))?;
                match s.value {
                    SampleValue::Histogram(h) => v.push((id, s.ts_nanos, (*h).clone())),
                    SampleValue::Float(_) => return Err(DecodeError("bad histogram")),
                }
            }
            Record::Histograms(v)
        }
        TYPE_METADATA => {
            let n = r.count(4)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let metric_family = r.str()?.to_owned();
                let t = *r.bytes(1)?.first().ok_or(DecodeError("truncated field"))?;
                let metric_type = type_from(t)?;
                let help = r.str()?.to_owned();
                let unit = r.str()?.to_owned();
                v.push(Metadata {
                    metric_family,
                    metric_type,
                    help,
                    unit,
                });
            }
            Record::Metadata(v)
        }
        _ => return Err(DecodeError("unknown record type")),
    };
    r.done()?;
    Ok(rec)
}

/// One parsed frame: record type, payload, and the frame's total length in bytes.
pub type Frame<'a> = (u8, &'a [u8], usize);

/// Parse one frame at the start of `buf`: `Ok(Some((type, payload, frame_len)))`,
/// `Ok(None)` when `buf` is empty, `Err` when the frame is torn or its checksum fails.
pub fn parse_frame(buf: &[u8]) -> Result<Option<Frame<'_>>, DecodeError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let hdr = buf
        .get(..FRAME_HEADER)
        .ok_or(DecodeError("torn frame header"))?;
    let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
    let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    if len > MAX_PAYLOAD {
        return Err(DecodeError("implausible record length"));
    }
    let end = FRAME_HEADER + len;
    let body = buf.get(8..end).ok_or(DecodeError("torn record"))?;
    if crc32fast::hash(body) != crc {
        return Err(DecodeError("checksum mismatch"));
    }
    Ok(Some((hdr[8], &buf[FRAME_HEADER..end], end)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn records_round_trip_through_frames() {
        let labels: Vec<(Arc<str>, Arc<str>)> = vec![
            (Arc::from("__name__"), Arc::from("up")),
            (Arc::from("job"), Arc::from("x")),
        ];
        let h = Histogram {
            count: 3.0,
            sum: 1.5,
            ..Histogram::default()
        };
        let md = vec![Metadata {
            metric_family: "up".into(),
            metric_type: MetricType::Gauge,
            help: "h".into(),
            unit: String::new(),
        }];
        let mut buf = Vec::new();
        frame(&mut buf, TYPE_SERIES, |o| {
            series_payload(o, [(7u64, labels.as_slice())].into_iter())
        });
        frame(&mut buf, TYPE_FLOATS, |o| {
            floats_payload(o, 2, 100, [(7, 100, 1.5), (7, 99, f64::NAN)].into_iter())
        });
        frame(&mut buf, TYPE_HISTOGRAMS, |o| {
            histograms_payload(o, &[(7, 5, &h)])
        });
        frame(&mut buf, TYPE_METADATA, |o| metadata_payload(o, &md));
        let mut pos = 0;
        let mut recs = Vec::new();
        while let Some((t, p, n)) = parse_frame(&buf[pos..]).unwrap() {
            recs.push(decode(t, p).unwrap());
            pos += n;
        }
        assert_eq!(recs.len(), 4);
        assert_eq!(
            recs[0],
            Record::Series(vec![(
                7,
                Labels::from_pairs([("__name__", "up"), ("job", "x")])
            )])
        );
        match &recs[1] {
            Record::Floats(v) => {
                assert_eq!(v[1].1, 99);
                assert!(v[1].2.is_nan());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(recs[2], Record::Histograms(vec![(7, 5, h)]));
        assert_eq!(recs[3], Record::Metadata(md));
        let mut bad = buf.clone();
        bad[12] ^= 1;
        assert!(parse_frame(&bad).is_err());
    }

    #[test]
    fn compressed_series_records_round_trip_and_shrink() {
        let labels: Vec<Vec<(Arc<str>, Arc<str>)>> = (0..200)
            .map(|i| {
                vec![
                    (Arc::from("__name__"), Arc::from("hft_orders_total")),
                    (Arc::from("service"), Arc::from(format!("oms-{}", i % 4))),
                    (Arc::from("venue"), Arc::from(format!("XNAS{i}"))),
                ]
            })
            .collect();
        let series = || {
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i as u64 * 64, l.as_slice()))
        };
        let (mut plain, mut packed, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        frame(&mut plain, TYPE_SERIES, |o| series_payload(o, series()));
        frame_compressed(&mut packed, &mut scratch, TYPE_SERIES, |o| {
            series_payload(o, series())
        });
        assert!(
            packed.len() * 3 < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        let (t, p, _) = parse_frame(&packed).unwrap().unwrap();
        assert_eq!(t, TYPE_SERIES | COMPRESSED);
        let (t0, p0, _) = parse_frame(&plain).unwrap().unwrap();
        assert_eq!(decode(t, p).unwrap(), decode(t0, p0).unwrap());
        // A payload that does not compress is stored plain.
        let mut small = Vec::new();
        frame_compressed(&mut small, &mut scratch, TYPE_SERIES, |o| {
            series_payload(o, std::iter::once((1u64, &labels[0][..1])))
        });
        assert_eq!(parse_frame(&small).unwrap().unwrap().0, TYPE_SERIES);
    }

    #[test]
    fn broken_compressed_payloads_are_errors() {
        // Not snappy at all, and a header announcing more than MAX_PAYLOAD bytes.
        assert!(decode(TYPE_SERIES | COMPRESSED, &[0xff, 0xff, 0xff]).is_err());
        assert!(decode(TYPE_SERIES | COMPRESSED, &[0x80, 0x80, 0x80, 0x80, 0x08, 0]).is_err());
        // Valid snappy of a payload that is not a series record.
        let z = snap::raw::Encoder::new().compress_vec(&[5, 1, 2]).unwrap();
        assert!(decode(TYPE_SERIES | COMPRESSED, &z).is_err());
        assert!(decode(0x7f | COMPRESSED, &z).is_err());
    }
}
