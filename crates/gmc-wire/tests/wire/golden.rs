//! Golden files: `tests/golden/<format>/<case>.in` decoded and dumped must equal
//! `<case>.out`. `GMC_BLESS=1 cargo test -p gmc-wire` rewrites the `.out` files.
//! remote_write inputs are request bodies captured from Prometheus 2.42 (snappy as sent),
//! except `nhcb_custom_buckets.in`: 2.42 cannot send custom-bucket histograms, so that body
//! was encoded by hand from `remote.proto` (field 16, packed bounds) with a literal-only
//! snappy block, independently of gmc's encoder. No remote write 2.0 sender runs here
//! either: `remote_write_v2/*.in` come from `remote_write_v2/encode_by_hand.py`, which
//! writes the protobuf from `io/prometheus/write/v2/types.proto` byte by byte.

use std::path::{Path, PathBuf};

use gmc_wire::{exposition, influx, json_push, remote_write, Decoded, Limits};

use crate::dump;

/// Fixed decode time and target labels, so outputs are stable.
const NOW_NANOS: i64 = 1_700_000_000_000_000_000;

fn target_labels() -> Vec<(String, String)> {
    vec![
        ("instance".to_string(), "127.0.0.1:9100".to_string()),
        ("job".to_string(), "golden".to_string()),
    ]
}

fn render(result: gmc_wire::Result<Decoded<'_>>) -> String {
    match result {
        Ok(d) => dump(&d.batch, &d.report),
        Err(e) => format!("error {}: {e}\n", e.reason()),
    }
}

fn decode_case(format: &str, case: &str, input: &[u8]) -> String {
    let limits = Limits::default();
    let text = || std::str::from_utf8(input).expect("text golden inputs are UTF-8");
    match format {
        "exposition" => {
            let targets = target_labels();
            let fmt = if case.starts_with("om_") {
                exposition::Format::OpenMetrics
            } else {
                exposition::Format::Prometheus
            };
            let mut opts = exposition::Options::new(fmt, NOW_NANOS);
            opts.target_labels = &targets;
            opts.honor_labels = case.contains("honor");
            render(exposition::decode(text(), &opts, &limits))
        }
        "influx" => {
            // An optional first line `# precision=<p>` picks the precision.
            let t = text();
            let precision = t
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# precision="))
                .and_then(influx::Precision::parse)
                .unwrap_or_default();
            render(influx::decode(t, precision, NOW_NANOS, &limits))
        }
        "json_push" => render(json_push::decode(input, NOW_NANOS, &limits)),
        "remote_write" => match remote_write::decompress(input, &limits) {
            Ok(buf) => render(remote_write::decode(&buf, &limits)),
            Err(e) => format!("error {}: {e}\n", e.reason()),
        },
        "remote_write_v2" => match remote_write::decompress(input, &limits) {
            Ok(buf) => render(remote_write::v2::decode(&buf, &limits)),
            Err(e) => format!("error {}: {e}\n", e.reason()),
        },
        other => panic!("unknown golden format {other}"),
    }
}

fn cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("golden dir") {
        let dir = dir.unwrap().path();
        let format = dir.file_name().unwrap().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "in") {
                out.push((format.clone(), p));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn golden_files_match() {
    let bless = std::env::var_os("GMC_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 10, "golden cases missing: {}", all.len());
    for (format, input) in all {
        let case = input.file_stem().unwrap().to_string_lossy().into_owned();
        let got = decode_case(&format, &case, &std::fs::read(&input).unwrap());
        let out_path = input.with_extension("out");
        if bless {
            std::fs::write(&out_path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&out_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{format}/{case}: output differs\n--- want\n{want}\n--- got\n{got}"
            )),
            Err(_) => failures.push(format!("{format}/{case}: no .out (run with GMC_BLESS=1)")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
