//! rwload: sends Prometheus remote_write requests of N samples each to a server on
//! loopback, either as fast as it answers (`--rate 0`) or at a fixed sample rate (open
//! loop: requests start on schedule whether or not earlier ones finished, so queueing shows
//! up as latency), and prints throughput and request-latency percentiles as JSON.
//!
//! Bounded: stops after `--duration-s` seconds. Loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    addr: SocketAddr,
    path: String,
    samples_per_request: usize,
    conc: usize,
    rate: f64,
    duration_s: f64,
    /// Requests per worker left out of the latency figures (the first one creates the
    /// worker's series: a one-off cost, not the steady state).
    warmup: u64,
    /// Print the N slowest requests (start time into the run, latency) to stderr.
    slow: usize,
    /// Round 0's timestamp is this many seconds before now. A warm-up run given a larger
    /// offset than the measured run that follows it stays older than all of that run's
    /// samples; with equal offsets the measured run's first rounds would repeat the
    /// warm-up's timestamps and time the store's duplicate check, not the append.
    start_offset_s: i64,
    /// Round 0's timestamp in ms since the epoch, overriding `start_offset_s`: two runs
    /// with the same value send the same samples (a retry of everything).
    start_ms: Option<i64>,
    /// Send remote write 2.0 (`io.prometheus.write.v2.Request`) instead of 1.0: the same
    /// series and samples, labels as references into a symbol table.
    v2: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:9300".parse().expect("addr"),
        path: "/api/v1/write".into(),
        samples_per_request: 10_000,
        conc: 4,
        rate: 0.0,
        duration_s: 20.0,
        warmup: 0,
        slow: 0,
        start_offset_s: 3600,
        start_ms: None,
        v2: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--addr" => a.addr = v.parse().expect("--addr host:port"),
            "--path" => a.path = v,
            "--samples" => a.samples_per_request = v.parse().expect("--samples N"),
            "--conc" => a.conc = v.parse().expect("--conc N"),
            "--rate" => a.rate = v.parse().expect("--rate samples/s"),
            "--duration-s" => a.duration_s = v.parse().expect("--duration-s S"),
            "--warmup" => a.warmup = v.parse().expect("--warmup N"),
            "--slow" => a.slow = v.parse().expect("--slow N"),
            "--start-offset-s" => a.start_offset_s = v.parse().expect("--start-offset-s S"),
            "--start-ms" => a.start_ms = Some(v.parse().expect("--start-ms MS")),
            "--v2" => {
                a.v2 = true;
                i += 1;
                continue;
            }
            "--help" | "-h" => {
                eprintln!("rwload --addr 127.0.0.1:9300 [--samples 10000] [--conc 4] [--rate samples/s, 0 = max] [--duration-s 20] [--warmup requests per worker left out of the latencies, 0] [--slow N: print the N slowest requests to stderr] [--start-offset-s S: round 0 is S seconds ago, 3600] [--start-ms MS: round 0's timestamp] [--v2: remote write 2.0]");
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
        i += 2;
    }
    assert!(a.addr.ip().is_loopback(), "loopback targets only");
    a
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The label pairs of series `i` of worker `w`.
fn series_pairs(w: usize, i: usize) -> [(&'static str, String); 7] {
    let services = ["oms", "risk", "mdfeed", "gateway", "router"];
    let venues = ["XNAS", "XNYS", "BATS", "ARCA", "IEX"];
    [
        ("__name__", "hft_orders_total".to_owned()),
        ("instance", format!("w{w}")),
        ("job", "rwload".to_owned()),
        ("pair", format!("P{:04}", i / 25)),
        ("series", format!("{i}")),
        ("service", services[i % services.len()].to_owned()),
        ("venue", venues[(i / 5) % venues.len()].to_owned()),
    ]
}

/// A worker's series, encoded once so that per request only samples are encoded and the
/// generator stays cheap: 1.0 `Label` entries (field 1 of `TimeSeries`) per series, or
/// 2.0's symbol table (field 4 entries of `Request`) and each series' packed label
/// references (field 1 of its `TimeSeries`).
struct Series {
    symbols: Vec<u8>,
    labels: Vec<Vec<u8>>,
}

fn encode_series(w: usize, n: usize, v2: bool) -> Series {
    let mut table: Vec<String> = vec![String::new()];
    let mut index: std::collections::HashMap<String, u64> =
        std::collections::HashMap::from([(String::new(), 0)]);
    let mut intern = |s: &str| -> u64 {
        if let Some(&r) = index.get(s) {
            return r;
        }
        table.push(s.to_owned());
        index.insert(s.to_owned(), table.len() as u64 - 1);
        table.len() as u64 - 1
    };
    let labels = (0..n)
        .map(|i| {
            let mut out = Vec::new();
            if v2 {
                let mut refs = Vec::new();
                for (k, v) in series_pairs(w, i) {
                    varint(&mut refs, intern(k));
                    varint(&mut refs, intern(&v));
                }
                field_bytes(&mut out, 1, &refs);
            } else {
                for (k, v) in series_pairs(w, i) {
                    let mut l = Vec::new();
                    field_bytes(&mut l, 1, k.as_bytes());
                    field_bytes(&mut l, 2, v.as_bytes());
                    field_bytes(&mut out, 1, &l);
                }
            }
            out
        })
        .collect();
    let mut symbols = Vec::new();
    if v2 {
        for s in &table {
            field_bytes(&mut symbols, 4, s.as_bytes());
        }
    }
    Series { symbols, labels }
}

/// One snappy-compressed request with one sample per series at round `r` (timestamps
/// advance one second per round, so every series stays in order): a 1.0 `WriteRequest`
/// (series in field 1), or a 2.0 `Request` (symbols in field 4, series in field 5).
fn build_request(series: &Series, v2: bool, r: u64, t0_ms: i64, raw: &mut Vec<u8>) -> Vec<u8> {
    raw.clear();
    raw.extend_from_slice(&series.symbols);
    let ts = t0_ms + r as i64 * 1000;
    let mut ts_buf = Vec::with_capacity(64);
    for (i, l) in series.labels.iter().enumerate() {
        ts_buf.clear();
        ts_buf.extend_from_slice(l);
        let mut sample = Vec::with_capacity(20);
        sample.push(0x09); // field 1, fixed64: value
        sample.extend_from_slice(&((r * 7 + i as u64) as f64).to_le_bytes());
        sample.push(0x10); // field 2, varint: timestamp ms
        varint(&mut sample, ts as u64);
        field_bytes(&mut ts_buf, 2, &sample);
        field_bytes(raw, if v2 { 5 } else { 1 }, &ts_buf);
    }
    snap::raw::Encoder::new().compress_vec(raw).expect("snappy")
}

fn post(conn: &mut Option<BufReader<TcpStream>>, a: &Args, body: &[u8]) -> Result<u16, String> {
    if conn.is_none() {
        let s = TcpStream::connect_timeout(&a.addr, Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        *conn = Some(BufReader::new(s));
    }
    let c = conn.as_mut().ok_or("no connection")?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: {}\r\nContent-Length: {}\r\n\r\n",
        a.path,
        a.addr,
        if a.v2 {
            "application/x-protobuf;proto=io.prometheus.write.v2.Request"
        } else {
            "application/x-protobuf"
        },
        if a.v2 { "2.0.0" } else { "0.1.0" },
        body.len()
    );
    let res = (|| -> std::io::Result<u16> {
        let s = c.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut line = String::new();
        c.read_line(&mut line)?;
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            c.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut sink = vec![0u8; len];
        c.read_exact(&mut sink)?;
        Ok(code)
    })();
    res.map_err(|e| {
        *conn = None;
        e.to_string()
    })
}

/// One request: scheduled start after the run's start and latency (µs), worker, round.
type Timed = (u64, u64, usize, u64);

fn main() {
    let a = Arc::new(parse_args());
    let t0_ms = a.start_ms.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64
            - a.start_offset_s * 1000
    });
    let stop = Arc::new(AtomicBool::new(false));
    let lat_us: Arc<Mutex<Vec<u64>>> = Arc::default();
    // (scheduled start after the run's start, latency, worker, round), times in µs: for
    // `--slow N`.
    let timeline: Arc<Mutex<Vec<Timed>>> = Arc::default();
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.duration_s);
    let per_worker_interval = if a.rate > 0.0 {
        Some(Duration::from_secs_f64(
            a.samples_per_request as f64 * a.conc as f64 / a.rate,
        ))
    } else {
        None
    };
    let mut handles = Vec::new();
    for w in 0..a.conc {
        let (a, stop, lat_us, ok, errors) = (
            a.clone(),
            stop.clone(),
            lat_us.clone(),
            ok.clone(),
            errors.clone(),
        );
        let timeline = timeline.clone();
        handles.push(std::thread::spawn(move || {
            let mut conn = None;
            let mut r = 0u64;
            let labels = encode_series(w, a.samples_per_request, a.v2);
            let mut raw = Vec::new();
            let mut next = Instant::now()
                + per_worker_interval
                    .map(|i| i.mul_f64(w as f64 / a.conc as f64))
                    .unwrap_or_default();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let body = build_request(&labels, a.v2, r, t0_ms, &mut raw);
                if per_worker_interval.is_some() {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                }
                // Open loop: latency counts from the scheduled start.
                let sched = if per_worker_interval.is_some() {
                    next.min(Instant::now())
                } else {
                    Instant::now()
                };
                match post(&mut conn, &a, &body) {
                    Ok(c) if (200..300).contains(&c) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if r >= a.warmup {
                            let us = sched.elapsed().as_micros() as u64;
                            lat_us.lock().expect("lock").push(us);
                            let at = sched.duration_since(start).as_micros() as u64;
                            timeline.lock().expect("lock").push((at, us, w, r));
                        }
                    }
                    Ok(_) | Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let Some(iv) = per_worker_interval {
                    next += iv;
                }
                r += 1;
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    stop.store(true, Ordering::Relaxed);
    let wall = start.elapsed().as_secs_f64();
    if a.slow > 0 {
        let mut t = timeline.lock().expect("lock").clone();
        t.sort_unstable_by_key(|&(_, us, _, _)| std::cmp::Reverse(us));
        t.truncate(a.slow);
        t.sort_unstable();
        for (at, us, w, r) in t {
            eprintln!(
                "slow: at {:8.1} ms latency {:6.1} ms worker {w} round {r}",
                at as f64 / 1000.0,
                us as f64 / 1000.0
            );
        }
    }
    let mut l = lat_us.lock().expect("lock").clone();
    l.sort_unstable();
    let pct = |p: f64| -> f64 {
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l[i] as f64 / 1000.0
    };
    let n_ok = ok.load(Ordering::Relaxed);
    println!(
        "{{\"samples_per_request\":{},\"conc\":{},\"rate_target\":{},\"requests_ok\":{},\"requests_err\":{},\"samples_per_s\":{:.0},\"latency_ms\":{{\"p50\":{:.3},\"p90\":{:.3},\"p99\":{:.3},\"p999\":{:.3},\"max\":{:.3}}},\"wall_s\":{:.2}}}",
        a.samples_per_request,
        a.conc,
        a.rate,
        n_ok,
        errors.load(Ordering::Relaxed),
        n_ok as f64 * a.samples_per_request as f64 / wall,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        l.last().copied().unwrap_or(0) as f64 / 1000.0,
        wall
    );
}
