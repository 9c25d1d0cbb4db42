//! Golden file of the block index format (`docs/format/index.md`): a fixed set of series
//! must encode to exactly the committed bytes, so any change to the on-disk layout shows
//! up here as a diff to review (and a format version to bump). The same file seeds the
//! `index_section` fuzz target with a valid index. Rewrite it with `GMC_BLESS=1`.

use std::path::Path;

use gmc_model::{Labels, Matcher};
use gmc_tsdb::index::{self, ChunkMeta, LabelIndex, Reader};

/// 60 series: 3 metrics × 4 services × 5 pairs. `job` is on every series (a dense list,
/// bitmap-encoded), `pair` values are spread out (delta-encoded lists).
fn series() -> Vec<(Labels, Vec<ChunkMeta>)> {
    let mut out = Vec::new();
    for metric in ["hft_fills_total", "hft_orders_total", "hft_pnl_usd"] {
        for service in ["gw-0", "oms-0", "oms-1", "risk-0"] {
            for pair in ["BTC-USDT", "DOGE-USD", "ETH-USDT", "SOL-EUR", "XRP-USDC"] {
                out.push(Labels::from_pairs([
                    ("__name__", metric),
                    ("job", "hft"),
                    ("pair", pair),
                    ("service", service),
                ]));
            }
        }
    }
    out.sort();
    out.into_iter()
        .enumerate()
        .map(|(i, l)| {
            let i = i as i64;
            let metas = (0..1 + i % 2)
                .map(|k| ChunkMeta {
                    mint_nanos: 1_700_000_000_000_000_000 + k * 600_000_000_000,
                    maxt_nanos: 1_700_000_000_000_000_000 + k * 600_000_000_000 + 599_000_000_000,
                    chunk_ref: (1 << 32) | (8 + 64 * (2 * i as u64 + k as u64)),
                })
                .collect();
            (l, metas)
        })
        .collect()
}

#[test]
fn index_bytes_match_the_golden_file() {
    let bytes = index::encode(&series()).expect("encode");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/index/small.in");
    if std::env::var_os("GMC_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &bytes).expect("write golden");
    }
    let want = std::fs::read(&path).expect("golden index (bless with GMC_BLESS=1)");
    assert!(
        bytes == want,
        "index encoding changed ({} bytes, golden {}): review the format spec, bump its \
         version if readers must tell the layouts apart, then bless",
        bytes.len(),
        want.len()
    );
}

#[test]
fn golden_index_answers_lookups() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/index/small.in");
    let bytes = std::fs::read(path).expect("golden index");
    let r = Reader::from_bytes(bytes, Path::new("golden")).expect("decode");
    assert_eq!(r.num_series(), 60);
    let ids = |ms: &[Matcher]| r.select(ms).expect("select");
    // A point lookup: three equality matchers, one series.
    let one = ids(&[
        Matcher::equal("__name__", "hft_pnl_usd"),
        Matcher::equal("service", "oms-0"),
        Matcher::equal("pair", "BTC-USDT"),
    ]);
    assert_eq!(one.len(), 1);
    let (labels, metas) = r.series(one[0]).expect("series");
    assert_eq!(labels.get("pair"), Some("BTC-USDT"));
    assert_eq!(labels.metric_name(), Some("hft_pnl_usd"));
    assert!(!metas.is_empty());
    // The dense `job` list (bitmap) filtering a smaller one.
    assert_eq!(
        ids(&[
            Matcher::equal("job", "hft"),
            Matcher::equal("service", "gw-0")
        ])
        .len(),
        15
    );
    // A value no series has, and a label no series has.
    assert!(ids(&[
        Matcher::equal("job", "hft"),
        Matcher::equal("pair", "ADA-USD")
    ])
    .is_empty());
    assert!(ids(&[Matcher::equal("venue", "x"), Matcher::equal("job", "hft")]).is_empty());
}
