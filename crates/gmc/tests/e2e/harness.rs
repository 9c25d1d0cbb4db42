//! Starting, stopping and talking to a real `gmc serve` process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running gmc server.
pub(crate) struct Gmc {
    child: Option<Child>,
    pub(crate) addr: SocketAddr,
    pub(crate) data_dir: PathBuf,
    config: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gmc")
}

impl Gmc {
    /// Start on a fresh temporary data dir.
    pub(crate) fn start() -> Gmc {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut g = Gmc::start_in(&data, None);
        g._tmp = Some(tmp);
        g
    }

    /// Start with a config file's contents, on a fresh data dir.
    pub(crate) fn start_with_config(toml: &str) -> Gmc {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = tmp.path().join("gmc.toml");
        std::fs::write(&cfg, toml).expect("write config");
        let data = tmp.path().join("data");
        let mut g = Gmc::start_in(&data, Some(cfg));
        g._tmp = Some(tmp);
        g
    }

    /// Start on `data_dir` (kept by the caller).
    pub(crate) fn start_in(data_dir: &Path, config: Option<PathBuf>) -> Gmc {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .env("GMC_LOG", "info")
            .env_remove("GMC_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(c) = &config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd.spawn().expect("spawn gmc");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("Listening") {
                    if let Some(addr) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                if std::env::var_os("GMC_TEST_LOG").is_some() {
                    eprintln!("[gmc] {line}");
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().ok();
                panic!("gmc did not start within 20 s: {out:?}");
            }
        };
        let g = Gmc {
            child: Some(child),
            addr,
            data_dir: data_dir.to_owned(),
            config,
            _tmp: None,
        };
        g.wait_ready();
        g
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = client().get(self.url("/-/ready")).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gmc not ready within 30 s");
    }

    /// SIGKILL, no chance to flush anything.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = i32::try_from(c.id()).expect("pid");
        // std offers only SIGKILL; SIGTERM goes through kill(1).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("gmc did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restart on the same data dir (after kill9 or stop).
    pub(crate) fn restart(&mut self) {
        let tmp = self._tmp.take();
        let mut g = Gmc::start_in(&self.data_dir.clone(), self.config.clone());
        g._tmp = tmp;
        std::mem::swap(self, &mut g);
        // `g` is the old, stopped handle now; nothing to clean up.
        g._tmp = None;
    }

    pub(crate) fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = client().get(self.url(path)).send().expect("GET");
        let code = r.status().as_u16();
        let text = r.text().expect("body");
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (code, v)
    }

    pub(crate) fn post(&self, path: &str, ctype: &str, body: Vec<u8>) -> (u16, String) {
        let r = client()
            .post(self.url(path))
            .header("Content-Type", ctype)
            .body(body)
            .send()
            .expect("POST");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    pub(crate) fn metrics_text(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .expect("GET /metrics")
            .text()
            .expect("text")
    }

    /// Value of an exact series line in `/metrics` (e.g. `gmc_x{a="b"}`), or 0.
    pub(crate) fn metric(&self, series: &str) -> f64 {
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Gmc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Poll `f` until it returns Some or `timeout` passes.
pub(crate) fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Skip a test whose peer is missing, loudly (CI installs them; a user's clone may not).
#[macro_export]
macro_rules! require {
    ($cmd:expr) => {
        if !$crate::harness::have($cmd) {
            eprintln!(
                "SKIPPED: {} is not installed (scripts/test installs it)",
                $cmd
            );
            return;
        }
    };
}
