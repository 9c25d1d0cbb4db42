//! `gmc agent` end to end: the real binary pushing to a real center. The center is killed
//! and restarted while the agent runs (every cycle collected meanwhile arrives once, in
//! order), and the agent is SIGKILLed and restarted (nothing spooled is lost).
//!
//! `GMC_AGENT_OUTAGE_SECS` sets the center's outage (default 10 s; the figure is
//! 60 s, run as `GMC_AGENT_OUTAGE_SECS=60 cargo test -p gmc --test e2e agent_`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{bin, client, eventually};

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawn `cmd`, wait for its `Listening. addr=` log line, return the child and address.
fn spawn_listening(mut cmd: Command, what: &str) -> (Child, SocketAddr) {
    cmd.env("GMC_LOG", "info")
        .env_remove("GMC_CONFIG")
        .env_remove("GMC_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let tag = what.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("Listening") {
                if let Some(a) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("addr="))
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(a);
                    sent = true;
                }
            }
            if std::env::var_os("GMC_TEST_LOG").is_some() {
                eprintln!("[{tag}] {line}");
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => (child, a),
        Err(_) => {
            let _ = child.kill();
            panic!("{what} did not start within 30 s");
        }
    }
}

/// A center on a fixed port, so it can come back where the agent pushes.
pub(crate) struct Center {
    child: Option<Child>,
    pub(crate) port: u16,
    data_dir: PathBuf,
}

impl Center {
    pub(crate) fn start(data_dir: &Path, port: u16) -> Center {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir);
        let (child, _) = spawn_listening(cmd, "center");
        let c = Center {
            child: Some(child),
            port,
            data_dir: data_dir.to_owned(),
        };
        eventually(Duration::from_secs(30), || {
            client()
                .get(c.url("/-/ready"))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
        })
        .expect("center ready");
        c
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn restart(&mut self) {
        self.kill9();
        let port = self.port;
        let dir = self.data_dir.clone();
        *self = Center::start(&dir, port);
    }

    /// `(timestamp seconds, value)` of every series of `metric` with `job`, by instance.
    pub(crate) fn points(
        &self,
        job: &str,
        metric: &str,
        from: f64,
    ) -> Vec<(serde_json::Value, Vec<(f64, f64)>)> {
        let r = client()
            .get(self.url(&format!(
                "/metrics/history/{job}?metric={metric}&from={from}&to={}",
                now_secs() + 60.0
            )))
            .send()
            .expect("GET history");
        if r.status().as_u16() == 404 {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_str(&r.text().expect("body")).expect("json");
        v["series"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                let pts = s["points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                    .collect();
                (s["labels"].clone(), pts)
            })
            .collect()
    }
}

impl Drop for Center {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running `gmc agent` with `/metrics` on a random port.
pub(crate) struct Agent {
    child: Option<Child>,
    pub(crate) addr: SocketAddr,
}

impl Agent {
    pub(crate) fn start(args: &[&str]) -> Agent {
        let mut cmd = Command::new(bin());
        cmd.arg("agent")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args);
        let (child, addr) = spawn_listening(cmd, "agent");
        Agent {
            child: Some(child),
            addr,
        }
    }

    pub(crate) fn metrics_text(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// Value of an unlabelled (or exactly spelled) series, once the first cycle ran.
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("GMC_AGENT_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    )
}

/// The agent's own collection counter as stored: one point per cycle, values 1, 2, 3 …
/// per agent run. Returns the runs, each a list of `(ts, value)` in time order.
fn runs_of(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    for &p in points {
        match runs.last_mut() {
            Some(r) if p.1 > r.last().unwrap().1 => r.push(p),
            _ => runs.push(vec![p]),
        }
    }
    runs
}

fn assert_consecutive_from_one(run: &[(f64, f64)], what: &str) {
    for (i, (ts, v)) in run.iter().enumerate() {
        assert_eq!(
            *v,
            (i + 1) as f64,
            "{what}: cycle {} missing or duplicated (found value {v} at t={ts}); run: {:?}",
            i + 1,
            &run[i.saturating_sub(3)..(i + 3).min(run.len())]
        );
    }
    for w in run.windows(2) {
        assert!(w[1].0 > w[0].0, "{what}: timestamps not increasing: {w:?}");
    }
}

#[test]
fn agent_delivers_every_cycle_once_across_a_center_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut center = Center::start(&tmp.path().join("data"), port);
    let t0 = now_secs() - 1.0;
    let push = center.url("/api/v1/write");
    let spool = tmp.path().join("spool");
    let agent = Agent::start(&[
        "--push",
        &push,
        "--interval",
        "250ms",
        "--spool-dir",
        spool.to_str().unwrap(),
        "--instance",
        "e2e-agent",
    ]);
    // Delivery works before the outage.
    eventually(Duration::from_secs(30), || {
        agent
            .metric("gmc_agent_samples_sent_total")
            .filter(|v| *v > 0.0)
    })
    .expect("agent delivered nothing while the center was up");

    center.kill9();
    let before = agent.metric("gmc_agent_collections_total").unwrap();
    std::thread::sleep(outage());
    let during = agent.metric("gmc_agent_collections_total").unwrap();
    let pending = agent.metric("gmc_agent_spool_pending_records").unwrap();
    assert!(
        during > before,
        "the agent stopped collecting during the outage"
    );
    assert!(pending > 0.0, "nothing was spooled during the outage");
    assert!(agent.metric("gmc_agent_send_errors_total").unwrap() > 0.0);

    center.restart();
    eventually(Duration::from_secs(60), || {
        agent
            .metric("gmc_agent_spool_pending_records")
            .filter(|v| *v == 0.0)
    })
    .expect("the spool did not drain after the center came back");
    let last = agent.metric("gmc_agent_collections_total").unwrap();
    let points = eventually(Duration::from_secs(30), || {
        let s = center.points("node", "gmc_agent_collections_total", t0);
        let pts = s.into_iter().next()?.1;
        (pts.last()?.1 >= last).then_some(pts)
    })
    .expect("the store never caught up with the agent");
    let runs = runs_of(&points);
    assert_eq!(runs.len(), 1, "one agent run expected, got {}", runs.len());
    assert_consecutive_from_one(&runs[0], "center outage");
    let in_outage = runs[0]
        .iter()
        .filter(|(_, v)| *v > before && *v <= during)
        .count();
    eprintln!(
        "agent outage test: outage {:?}, {} cycles collected while the center was down, {} cycles stored in total, no gaps, no duplicates",
        outage(),
        in_outage,
        runs[0].len()
    );
    assert_eq!(in_outage as f64, during - before);

    // A host series carries every cycle too, with the original timestamps.
    let load = center.points("node", "node_load1", t0);
    assert_eq!(load.len(), 1);
    let load_ts: Vec<f64> = load[0].1.iter().map(|p| p.0).collect();
    let cycle_ts: Vec<f64> = runs[0].iter().map(|p| p.0).collect();
    assert_eq!(
        &load_ts[..cycle_ts.len().min(load_ts.len())],
        &cycle_ts[..cycle_ts.len().min(load_ts.len())]
    );

    // In-process collection of the same host writes job="gmc_host": never the agent's series.
    let host = eventually(Duration::from_secs(30), || {
        let s = center.points("gmc_host", "node_load1", t0);
        (!s.is_empty()).then_some(s)
    })
    .expect("gmc serve collected no host data");
    for (labels, _) in &host {
        assert_eq!(labels["job"], "gmc_host");
    }
    assert_eq!(load[0].0["job"], "node");
    assert_eq!(load[0].0["instance"], "e2e-agent");
}

#[test]
fn agent_sigkill_loses_nothing_spooled() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let push = format!("http://127.0.0.1:{port}/api/v1/write");
    let spool = tmp.path().join("spool");
    let args = [
        "--push",
        push.as_str(),
        "--interval",
        "200ms",
        "--spool-dir",
        spool.to_str().unwrap(),
        "--instance",
        "e2e-kill",
    ];
    let t0 = now_secs() - 1.0;
    // The center is down: everything goes to the spool.
    let mut agent = Agent::start(&args);
    let spooled = eventually(Duration::from_secs(30), || {
        agent
            .metric("gmc_agent_collections_total")
            .filter(|v| *v >= 15.0)
    })
    .expect("agent did not collect");
    let killed_at = now_secs();
    agent.kill9();

    let center = Center::start(&tmp.path().join("data"), port);
    let agent = Agent::start(&args);
    let points = eventually(Duration::from_secs(60), || {
        let s = center.points("node", "gmc_agent_collections_total", t0);
        let pts = s.into_iter().next()?.1;
        let first_run = pts.iter().filter(|p| p.0 <= killed_at).count() as f64;
        (first_run >= spooled).then_some(pts)
    })
    .expect("cycles spooled before SIGKILL never arrived");
    let runs = runs_of(&points);
    assert!(runs.len() <= 2, "{} runs", runs.len());
    assert_consecutive_from_one(&runs[0], "first agent run");
    assert!(runs[0].len() as f64 >= spooled);
    if let Some(second) = runs.get(1) {
        assert_consecutive_from_one(second, "second agent run");
    }
    eprintln!(
        "agent SIGKILL test: {} cycles seen before SIGKILL, {} of the first run stored",
        spooled,
        runs[0].len()
    );
    drop(agent);
}

#[test]
fn agent_refuses_bad_flags() {
    let out = Command::new(bin())
        .args([
            "agent",
            "--interval",
            "10ms",
            "--push",
            "http://127.0.0.1:1/api/v1/write",
        ])
        .env_remove("GMC_LISTEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interval"), "{err}");
    let out = Command::new(bin())
        .args(["agent"])
        .env_remove("GMC_LISTEN")
        .env_remove("GMC_AGENT_PUSH")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let _ = Instant::now();
}
