//! Real peers: Prometheus 2.42 remote-writes into gmc; promtool lints gmc's exposition.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{eventually, Gmc};
use crate::require;

/// Kills the child on drop so a failing assertion never leaks a Prometheus.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_remote_write_delivers_scraped_samples() {
    require!("prometheus");
    let g = Gmc::start();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: gmcself\n    static_configs:\n      - targets: ['{addr}']\n\
             remote_write:\n  - url: http://{addr}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n    metadata_config:\n      send_interval: 2s\n",
            addr = g.addr
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _reap = Reap(child);
    // Prometheus scrapes gmc every second and forwards within ~1 s of each scrape.
    let found = eventually(Duration::from_secs(60), || {
        let (code, v) = g.get_json("/metrics/gmcself");
        if code != 200 {
            return None;
        }
        let series = v["series"].as_array()?;
        let up = series
            .iter()
            .find(|s| s["metric"] == "up" && s["value"] == 1.0)?;
        let build = series.iter().find(|s| s["metric"] == "gmc_build_info")?;
        Some((up.clone(), build.clone(), series.len()))
    });
    let (up, build, n) = found.expect("Prometheus' samples never reached gmc");
    assert_eq!(up["labels"]["instance"], g.addr.to_string());
    assert_eq!(build["labels"]["job"], "gmcself");
    assert!(n > 20, "only {n} series arrived");
    // No rejection was needed to take Prometheus' traffic (metadata-only requests included).
    assert_eq!(
        g.metric("gmc_ingest_rejected_total{protocol=\"remote_write\",reason=\"decode_error\"}"),
        0.0
    );
    // Samples are visible once in the head, which may be a moment before their write is
    // durable and acknowledged; the counter counts acknowledged samples.
    let counted = eventually(Duration::from_secs(10), || {
        (g.metric("gmc_ingest_samples_total{protocol=\"remote_write\"}") > 0.0).then_some(())
    });
    assert!(
        counted.is_some(),
        "acknowledged remote_write samples were not counted"
    );
}

#[test]
fn own_exposition_is_clean_under_promtool() {
    require!("promtool");
    let g = Gmc::start();
    // Some traffic first so every family has samples.
    let _ = g.post(
        "/api/v1/push",
        "application/json",
        br#"{"service":"x","metrics":{"a":1}}"#.to_vec(),
    );
    let _ = g.post(
        "/write",
        "text/plain",
        b"bad line without fields\n".to_vec(),
    );
    let text = g.metrics_text();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}\n---\n{text}"
    );
}
