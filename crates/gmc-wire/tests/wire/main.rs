//! Integration tests of gmc-wire in one binary (fast linking): golden files, malformed
//! inputs per decoder, and property tests (prost differential, exposition round-trip).

// Test helpers outside `#[test]` functions panic on purpose when a fixture is broken.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod golden;
mod malformed;
mod roundtrip;

use std::fmt::Write as _;

use gmc_model::WriteBatch;
use gmc_wire::DecodeReport;

/// A float rendered so that every bit pattern reads back the same (NaN payloads shown).
pub fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        format!("NaN(0x{:016x})", v.to_bits())
    } else {
        format!("{v:?}")
    }
}

/// A stable text dump of a decoded batch and its report (the golden `.out` format).
pub fn dump(batch: &WriteBatch<'_>, report: &DecodeReport) -> String {
    let mut out = String::new();
    for s in batch.iter() {
        let labels: Vec<String> = s
            .labels()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        let _ = writeln!(out, "series {{{}}}", labels.join(", "));
        for f in s.floats {
            let _ = writeln!(out, "  float {} {}", f.ts_nanos, fmt_f64(f.value));
        }
        for h in s.histograms {
            let g = &h.histogram;
            let spans = |sp: &[gmc_model::Span], b: &[f64]| {
                let sp: Vec<String> = sp
                    .iter()
                    .map(|s| format!("{}:{}", s.offset, s.length))
                    .collect();
                let b: Vec<String> = b.iter().map(|v| fmt_f64(*v)).collect();
                format!("[{}]/[{}]", sp.join(","), b.join(","))
            };
            let _ = writeln!(
                out,
                "  histogram {} schema={} count={} sum={} zero_threshold={} zero_count={} pos={} neg={} hint={:?}",
                h.ts_nanos,
                g.schema,
                fmt_f64(g.count),
                fmt_f64(g.sum),
                fmt_f64(g.zero_threshold),
                fmt_f64(g.zero_count),
                spans(&g.positive_spans, &g.positive_buckets),
                spans(&g.negative_spans, &g.negative_buckets),
                g.reset_hint
            );
            if !g.custom_values.is_empty() {
                let b: Vec<String> = g.custom_values.iter().map(|v| fmt_f64(*v)).collect();
                let _ = writeln!(out, "    bounds=[{}]", b.join(","));
            }
        }
    }
    for m in batch.metadata() {
        let _ = writeln!(
            out,
            "metadata {} {} unit={:?} help={:?}",
            m.metric_family,
            m.metric_type.as_str(),
            m.unit,
            m.help
        );
    }
    let _ = writeln!(
        out,
        "report samples={} series={} rejected={:?} skipped={:?}",
        report.samples_accepted, report.series_accepted, report.rejected, report.skipped
    );
    for m in &report.messages {
        let _ = writeln!(out, "message {m}");
    }
    out
}
