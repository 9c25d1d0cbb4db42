//! Protobuf exposition (`io.prometheus.client.MetricFamily`, length-delimited), hand
//! encoded to keep the dependency tree small. Histograms carry both the native schema-6
//! buckets (spans + count deltas) and the classic `le` buckets.

use crate::registry::{FamilySnapshot, Kind, Value};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Low seven bits plus the continuation bit; truncation is the encoding.
        #[allow(clippy::cast_possible_truncation)]
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    buf.push(v as u8);
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from(field << 3 | wire));
}

fn uint(buf: &mut Vec<u8>, field: u32, v: u64) {
    key(buf, field, VARINT);
    varint(buf, v);
}

fn sint(buf: &mut Vec<u8>, field: u32, v: i64) {
    key(buf, field, VARINT);
    #[allow(clippy::cast_sign_loss)]
    varint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn double(buf: &mut Vec<u8>, field: u32, v: f64) {
    key(buf, field, FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn bytes(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(buf, field, LEN);
    varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Encode snapshots as length-delimited `MetricFamily` messages appended to `buf`.
pub(crate) fn encode(families: &[FamilySnapshot], buf: &mut Vec<u8>) {
    let mut fam = Vec::new();
    let mut metric = Vec::new();
    let mut inner = Vec::new();
    let mut scratch = Vec::new();
    for f in families {
        fam.clear();
        bytes(&mut fam, 1, f.name.as_bytes());
        bytes(&mut fam, 2, f.help.as_bytes());
        // MetricType: COUNTER = 0, GAUGE = 1, HISTOGRAM = 4.
        uint(
            &mut fam,
            3,
            match f.kind {
                Kind::Counter => 0,
                Kind::Gauge => 1,
                Kind::Histogram => 4,
            },
        );
        for s in &f.series {
            metric.clear();
            for (k, v) in &s.labels {
                inner.clear();
                bytes(&mut inner, 1, k.as_bytes());
                bytes(&mut inner, 2, v.as_bytes());
                bytes(&mut metric, 1, &inner);
            }
            inner.clear();
            match &s.value {
                Value::Counter(n) => {
                    double(&mut inner, 1, *n as f64);
                    bytes(&mut metric, 3, &inner);
                }
                Value::CounterF64(x) => {
                    double(&mut inner, 1, *x);
                    bytes(&mut metric, 3, &inner);
                }
                Value::Gauge(x) => {
                    double(&mut inner, 1, *x);
                    bytes(&mut metric, 2, &inner);
                }
                Value::Histogram(h) => {
                    histogram(&mut inner, f, h, &mut scratch);
                    bytes(&mut metric, 7, &inner);
                }
            }
            bytes(&mut fam, 4, &metric);
        }
        varint(buf, fam.len() as u64);
        buf.extend_from_slice(&fam);
    }
}

fn histogram(
    buf: &mut Vec<u8>,
    f: &FamilySnapshot,
    h: &gmc_histogram::Histogram,
    scratch: &mut Vec<u8>,
) {
    uint(buf, 1, h.count());
    double(buf, 2, f.sum(h));
    for (le, cum) in f.classic(h) {
        if le.is_infinite() {
            continue;
        }
        scratch.clear();
        uint(scratch, 1, cum);
        double(scratch, 2, le);
        bytes(buf, 3, scratch);
    }
    let native = f.native(h);
    sint(buf, 5, i64::from(native.schema));
    double(buf, 6, native.zero_threshold);
    uint(buf, 7, h.zero_count());
    if native.positive_spans.is_empty() {
        // An empty span marks the histogram as native even with no observations yet.
        scratch.clear();
        sint(scratch, 1, 0);
        uint(scratch, 2, 0);
        bytes(buf, 12, scratch);
    }
    for span in &native.positive_spans {
        scratch.clear();
        sint(scratch, 1, i64::from(span.offset));
        uint(scratch, 2, u64::from(span.length));
        bytes(buf, 12, scratch);
    }
    if !native.positive_buckets.is_empty() {
        scratch.clear();
        let mut prev = 0i64;
        for &c in &native.positive_buckets {
            // Counts are integers below 2^53 in practice.
            #[allow(clippy::cast_possible_truncation)]
            let c = c as i64;
            #[allow(clippy::cast_sign_loss)]
            varint(scratch, (((c - prev) << 1) ^ ((c - prev) >> 63)) as u64);
            prev = c;
        }
        bytes(buf, 13, scratch);
    }
}
