//! Configuration of the HTTP server: listen address, ingest limits, scraping and
//! self-monitoring. Part of the top-level `gmc.toml` (sections `[server]`, `[ingest]`,
//! `[self_monitoring]` and `[[scrape_configs]]`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::ConfigError;

/// `[server]`: where to listen and how much concurrent work to admit.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Most ingest requests decoded and appended at once; more wait up to
    /// `overload_wait`, then get `429 Too Many Requests` with `Retry-After`.
    pub max_inflight_writes: usize,
    /// How long a write waits for a free slot before it is refused as overloaded.
    #[serde(deserialize_with = "de_duration")]
    pub overload_wait: Duration,
    /// Time after which a known service without new samples counts as stale in
    /// `/system/status`.
    #[serde(deserialize_with = "de_duration")]
    pub service_stale_after: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9300)),
            max_inflight_writes: 64,
            overload_wait: Duration::from_secs(2),
            service_stale_after: Duration::from_secs(300),
        }
    }
}

/// `[ingest]`: limits applied to every write, whatever the protocol.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest request body accepted, after decompression.
    #[serde(deserialize_with = "de_size")]
    pub max_body_bytes: u64,
    /// Most samples in one request.
    pub max_samples_per_request: usize,
    /// Most labels on one series, `__name__` included.
    pub max_labels_per_series: usize,
    /// Longest label name in bytes.
    pub max_label_name_bytes: usize,
    /// Longest label value in bytes.
    pub max_label_value_bytes: usize,
    /// Samples further than this in the future are rejected (clock skew guard).
    #[serde(deserialize_with = "de_duration")]
    pub max_future_skew: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 64 << 20,
            max_samples_per_request: 1_000_000,
            max_labels_per_series: 64,
            max_label_name_bytes: 256,
            max_label_value_bytes: 4096,
            max_future_skew: Duration::from_secs(600),
        }
    }
}

impl IngestConfig {
    /// The label limits as the data model expresses them.
    pub fn validation_limits(&self) -> gmc_model::ValidationLimits {
        gmc_model::ValidationLimits {
            max_labels: self.max_labels_per_series,
            max_name_bytes: self.max_label_name_bytes,
            max_value_bytes: self.max_label_value_bytes,
        }
    }
}

/// `[self_monitoring]`: gmc writes its own metrics into its own store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SelfMonitoringConfig {
    /// Whether gmc records its own metrics as `job="gmc"`.
    pub enabled: bool,
    /// How often.
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
}

impl Default for SelfMonitoringConfig {
    fn default() -> Self {
        SelfMonitoringConfig {
            enabled: true,
            interval: Duration::from_secs(10),
        }
    }
}

/// `[query]`: PromQL evaluation limits. A query breaching one gets a Prometheus-style
/// error; none can exhaust memory or hold the server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// How far back an instant selector looks for the latest sample.
    #[serde(deserialize_with = "de_duration")]
    pub lookback_delta: Duration,
    /// Longest a query may evaluate (also the longest it waits for a slot).
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Most samples a query may hold in memory at once.
    pub max_samples: usize,
    /// Most queries evaluated at once; more wait for a slot.
    pub max_concurrent: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_concurrent: 20,
        }
    }
}

/// `[host]`: `gmc serve` collects its own host's figures (CPU, memory, disks, network,
/// TCP, filesystems) with gmc-agent's node_exporter-compatible collectors, as
/// `job="gmc_host"`, `instance=<hostname>` (an agent on the same host pushes `job="node"`:
/// the two never share a series).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Whether to collect.
    pub enabled: bool,
    /// How often (100 ms at least).
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: true,
            interval: Duration::from_secs(1),
        }
    }
}

/// One `[[scrape_configs]]` entry, in Prometheus' vocabulary.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    /// `job` label of every series scraped by this config.
    pub job_name: String,
    /// Time between scrapes (100 ms at least).
    #[serde(deserialize_with = "de_duration")]
    pub scrape_interval: Duration,
    /// Per-scrape timeout; at most the interval.
    #[serde(deserialize_with = "de_opt_duration")]
    pub scrape_timeout: Option<Duration>,
    /// HTTP path of the exposition.
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Keep exposed labels that clash with target labels instead of renaming them.
    pub honor_labels: bool,
    /// Use timestamps from the exposition when present.
    pub honor_timestamps: bool,
    /// Most samples one scrape may return; above it the scrape fails (`up` = 0).
    pub sample_limit: usize,
    /// Targets listed here.
    pub static_configs: Vec<StaticConfig>,
    /// Files listing targets in Prometheus' file_sd format (JSON or YAML-free TOML is not
    /// supported: JSON only), re-read when they change.
    pub file_sd_configs: Vec<FileSdConfig>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            scrape_interval: Duration::from_secs(15),
            scrape_timeout: None,
            metrics_path: "/metrics".to_owned(),
            scheme: "http".to_owned(),
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 200_000,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
        }
    }
}

impl ScrapeConfig {
    /// The effective timeout: the configured one, capped at the interval (default 10 s).
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout
            .unwrap_or(Duration::from_secs(10))
            .min(self.scrape_interval)
    }
}

/// A list of `host:port` targets sharing labels.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels added to every series of these targets.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// File-based discovery.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileSdConfig {
    /// JSON files in Prometheus' file_sd format: `[{"targets": [...], "labels": {...}}]`.
    pub files: Vec<PathBuf>,
    /// How often the files are re-read.
    #[serde(deserialize_with = "de_duration")]
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(30),
        }
    }
}

/// Everything the server needs besides the store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[ingest]`
    pub ingest: IngestConfig,
    /// `[self_monitoring]`
    pub self_monitoring: SelfMonitoringConfig,
    /// `[query]`
    pub query: QueryConfig,
    /// `[host]`
    pub host: HostConfig,
    /// `[[scrape_configs]]`
    pub scrape_configs: Vec<ScrapeConfig>,
}

impl Config {
    /// Check values that parse but make no sense; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: String, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        if self.server.max_inflight_writes == 0 {
            return Err(bad(
                "server.max_inflight_writes".into(),
                "must be at least 1",
            ));
        }
        if self.ingest.max_body_bytes < 1024 {
            return Err(bad("ingest.max_body_bytes".into(), "must be at least 1KiB"));
        }
        if self.ingest.max_labels_per_series < 2 {
            return Err(bad(
                "ingest.max_labels_per_series".into(),
                "must be at least 2",
            ));
        }
        if self.query.max_concurrent == 0 {
            return Err(bad("query.max_concurrent".into(), "must be at least 1"));
        }
        if self.query.max_samples == 0 {
            return Err(bad("query.max_samples".into(), "must be at least 1"));
        }
        if self.query.timeout < Duration::from_millis(1) {
            return Err(bad("query.timeout".into(), "must be at least 1ms"));
        }
        if self.query.lookback_delta < Duration::from_millis(1) {
            return Err(bad("query.lookback_delta".into(), "must be at least 1ms"));
        }
        if self.host.interval < Duration::from_millis(100) {
            return Err(bad("host.interval".into(), "must be at least 100ms"));
        }
        if self.self_monitoring.interval < Duration::from_millis(100) {
            return Err(bad(
                "self_monitoring.interval".into(),
                "must be at least 100ms",
            ));
        }
        let mut jobs = std::collections::HashSet::new();
        for (i, sc) in self.scrape_configs.iter().enumerate() {
            let key = |k: &str| format!("scrape_configs[{i}].{k}");
            if sc.job_name.is_empty() {
                return Err(bad(key("job_name"), "must not be empty"));
            }
            if !jobs.insert(sc.job_name.clone()) {
                return Err(bad(key("job_name"), "duplicate job_name"));
            }
            if sc.scrape_interval < Duration::from_millis(100) {
                return Err(bad(key("scrape_interval"), "must be at least 100ms"));
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                return Err(bad(key("scheme"), "must be http or https"));
            }
            if !sc.metrics_path.starts_with('/') {
                return Err(bad(key("metrics_path"), "must start with /"));
            }
            for (j, st) in sc.static_configs.iter().enumerate() {
                for t in &st.targets {
                    if t.is_empty() || t.contains('/') || t.contains(' ') {
                        return Err(bad(
                            key(&format!("static_configs[{j}].targets")),
                            "targets are host:port without scheme or path",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Deserialize a duration written as a human string ("15s", "100ms", "2h").
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!("invalid duration {s:?} ({e}); write e.g. \"15s\""))
    })
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Deserialize a size written as a number of bytes or a human string ("64MiB", "1GB").
pub fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(u64),
        Str(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) => Ok(n),
        Raw::Str(s) => parse_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid size {s:?}; write e.g. \"64MiB\""))
        }),
    }
}

/// Parse "123", "64KiB", "64MiB", "1GiB", "10MB" (decimal units) into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("10 MB"), Some(10_000_000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1XB"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn validate_names_the_key() {
        let mut c = Config::default();
        c.scrape_configs.push(ScrapeConfig {
            job_name: "a".into(),
            scrape_interval: Duration::from_millis(10),
            ..ScrapeConfig::default()
        });
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("scrape_configs[0].scrape_interval"), "{e}");
    }
}
