//! The shared fixture of the remote_write decode benches: a request shaped like
//! peerbench's loadgen, 7,510 series × 1 sample, ~9 sorted labels each (5 services of its
//! default workload).
#![allow(dead_code)]

use gmc_wire::remote_write::proto;

const REGIONS: [&str; 3] = ["ld4", "ny4", "ty3"];
const KINDS: [&str; 5] = ["oms", "risk", "mdfeed", "gateway", "router"];
const VENUES: [&str; 5] = ["binance", "okx", "coinbase", "kraken", "bybit"];
const BASES: [&str; 10] = [
    "BTC", "ETH", "SOL", "XRP", "BNB", "ADA", "DOGE", "TRX", "AVAX", "DOT",
];
const QUOTES: [&str; 6] = ["USDT", "USD", "USDC", "BTC", "EUR", "ETH"];
const LE: [&str; 12] = [
    "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "+Inf",
];

/// One series: sorted labels, one sample at `ts`.
pub(crate) fn series(mut labels: Vec<(String, String)>, value: f64, ts: i64) -> proto::TimeSeries {
    labels.sort();
    proto::TimeSeries {
        labels: labels
            .into_iter()
            .map(|(name, value)| proto::Label { name, value })
            .collect(),
        samples: vec![proto::Sample {
            value,
            timestamp: ts,
        }],
        ..Default::default()
    }
}

/// The loadgen workload's first 5 services: 5 × (200 × 6 + 20 × 14 + 5 × 2 + 4 × 3) series.
pub(crate) fn request() -> proto::WriteRequest {
    let ts = 1_700_000_000_000i64;
    let mut out = Vec::new();
    let mut v = 1.0f64;
    let mut next = || {
        v = (v * 1.618_033_988_7 + 0.123).fract() * 1e6;
        v
    };
    for s in 0..5 {
        let service = format!("{}-{}", KINDS[s % 5], s / 5);
        let region = REGIONS[s % 3];
        let base = |name: &str| {
            vec![
                ("__name__".to_string(), name.to_string()),
                ("job".into(), "hft".into()),
                ("env".into(), "prod".into()),
                ("region".into(), region.to_string()),
                ("service".into(), service.clone()),
            ]
        };
        let inst = |i: usize| format!("{service}-{region}-{i:02}:9100");
        for p in 0..200 {
            let pair = format!("{}-{}", BASES[p % 10], QUOTES[(p / 10) % 6]);
            let common = |name: &str| {
                let mut l = base(name);
                l.push(("pair".into(), pair.clone()));
                l.push(("venue".into(), VENUES[p % 5].into()));
                l.push(("instance".into(), inst(p % 4)));
                l
            };
            let with = |mut l: Vec<(String, String)>, k: &str, v: &str| {
                l.push((k.into(), v.into()));
                l
            };
            out.push(series(
                with(common("hft_orders_total"), "status", "filled"),
                next(),
                ts,
            ));
            out.push(series(
                with(common("hft_orders_total"), "status", "rejected"),
                next(),
                ts,
            ));
            out.push(series(common("hft_trades_total"), next(), ts));
            out.push(series(
                with(common("hft_order_latency_us"), "quantile", "0.5"),
                next(),
                ts,
            ));
            out.push(series(
                with(common("hft_order_latency_us"), "quantile", "0.99"),
                next(),
                ts,
            ));
            out.push(series(common("hft_pnl_usd"), next(), ts));
            if p < 20 {
                for le in LE {
                    out.push(series(
                        with(common("hft_order_rtt_us_bucket"), "le", le),
                        next(),
                        ts,
                    ));
                }
                out.push(series(common("hft_order_rtt_us_sum"), next(), ts));
                out.push(series(common("hft_order_rtt_us_count"), next(), ts));
            }
        }
        for (v, venue) in VENUES.iter().enumerate() {
            for name in ["hft_venue_connected", "hft_venue_ws_reconnects_total"] {
                let mut l = base(name);
                l.push(("venue".into(), (*venue).into()));
                l.push(("instance".into(), inst(v % 4)));
                out.push(series(l, next(), ts));
            }
        }
        for i in 0..4 {
            for name in [
                "hft_process_cpu_ratio",
                "hft_process_resident_memory_bytes",
                "hft_go_gc_pause_seconds_total",
            ] {
                let mut l = base(name);
                l.push(("instance".into(), inst(i)));
                out.push(series(l, next(), ts));
            }
        }
    }
    proto::WriteRequest {
        timeseries: out,
        metadata: Vec::new(),
    }
}
