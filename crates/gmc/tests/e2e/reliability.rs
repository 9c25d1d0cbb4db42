//! Crash loop: a writer records what gmc acknowledged while gmc is SIGKILLed at random
//! moments and restarted; every acknowledged sample must be readable afterwards. A second
//! thread flushes the head every few tens of milliseconds, so kills also land inside
//! flushes (block write, dropping emptied series, WAL checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{client, Gmc};

fn cycles() -> usize {
    std::env::var("GMC_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[test]
fn crash_loop_loses_no_acknowledged_sample() {
    let mut g = Gmc::start();
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut seq = 0u64;
    // Cheap deterministic jitter (no rand dependency): an LCG.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    // Start ten minutes back so the samples sit well inside the head and retention.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 600;
    for cycle in 0..cycles() {
        let stop = Arc::new(AtomicBool::new(false));
        let url = g.url("/write?precision=ns");
        let base = seq;
        let writer = {
            let stop = stop.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let c = client();
                let mut s = base;
                let t0_ns = t0 * 1_000_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!("crash,service=crash value={s} {}\n", t0_ns + s * 1_000_000);
                    match c.post(&url).body(body).send() {
                        Ok(r) if r.status().as_u16() == 204 => acked.lock().unwrap().push(s),
                        _ => {}
                    }
                    s += 1;
                }
                s
            })
        };
        let flusher = {
            let stop = stop.clone();
            let url = g.url("/api/v1/admin/flush");
            std::thread::spawn(move || {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let _ = c.post(&url).send();
                    std::thread::sleep(Duration::from_millis(30));
                }
            })
        };
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(50 + (rng >> 33) % 250));
        g.kill9();
        stop.store(true, Ordering::Relaxed);
        seq = writer.join().unwrap();
        flusher.join().unwrap();
        g.restart();
        assert!(cycle < 10_000);
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > cycles(),
        "too few writes were acknowledged: {}",
        acked.len()
    );
    // Read back in 5 s slices (5,000 samples at most each): an unstepped history read
    // refuses more than 11,000 raw points, and a long run writes more than that.
    let last = acked.iter().copied().max().unwrap_or(0);
    let mut stored: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut from = t0 - 1;
    while from <= t0 + last / 1000 + 1 {
        let (code, v) = g.get_json(&format!(
            "/metrics/history/crash?metric=crash&from={}&to={}",
            from,
            from + 5
        ));
        assert_eq!(code, 200, "{v}");
        if let Some(points) = v["series"][0]["points"].as_array() {
            stored.extend(points.iter().map(|p| p[1].as_f64().unwrap() as u64));
        }
        from += 5;
    }
    let lost: Vec<u64> = acked
        .iter()
        .filter(|s| !stored.contains(s))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged samples lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "crash loop: {} SIGKILL cycles, {} acknowledged samples, all readable ({} stored)",
        cycles(),
        acked.len(),
        stored.len()
    );
}
