//! Builds gmc's configuration: defaults < TOML file < `GMC_*` environment < command-line flags.
//!
//! Each library crate owns its section's type; this file composes them and turns every
//! error into a message that names the file, the line and the key.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct GmcConfig {
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// `[server]`
    pub server: gmc_server::config::ServerConfig,
    /// `[ingest]`
    pub ingest: gmc_server::config::IngestConfig,
    /// `[self_monitoring]`
    pub self_monitoring: gmc_server::config::SelfMonitoringConfig,
    /// `[query]`
    pub query: gmc_server::config::QueryConfig,
    /// `[host]`
    pub host: gmc_server::config::HostConfig,
    /// `[storage]`
    pub storage: gmc_tsdb::Config,
    /// `[[scrape_configs]]`
    pub scrape_configs: Vec<gmc_server::config::ScrapeConfig>,
}

impl Default for GmcConfig {
    fn default() -> Self {
        GmcConfig {
            data_dir: PathBuf::from("./gmc-data"),
            server: Default::default(),
            ingest: Default::default(),
            self_monitoring: Default::default(),
            query: Default::default(),
            host: Default::default(),
            storage: Default::default(),
            scrape_configs: Vec::new(),
        }
    }
}

impl GmcConfig {
    /// The server's part.
    pub(crate) fn server_config(&self) -> gmc_server::config::Config {
        gmc_server::config::Config {
            server: self.server.clone(),
            ingest: self.ingest.clone(),
            self_monitoring: self.self_monitoring.clone(),
            query: self.query.clone(),
            host: self.host.clone(),
            scrape_configs: self.scrape_configs.clone(),
        }
    }

    fn validate(&self) -> Result<(), (String, String)> {
        self.server_config().validate().map_err(|e| match e {
            gmc_server::error::ConfigError::Invalid { key, reason } => (key, reason),
            other => (String::new(), other.to_string()),
        })?;
        self.storage
            .validate()
            .map_err(|e| (String::from("storage"), e.to_string()))
    }
}

/// A configuration problem, located as precisely as we can.
#[derive(Debug)]
pub(crate) struct ConfigError {
    /// File the problem is in (`<environment>` for `GMC_*` variables).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Load and validate a file alone (used by `gmc check config`).
pub(crate) fn load_file(path: &Path) -> Result<GmcConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: path.display().to_string(),
        line: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    let value = parse_toml(&text, &path.display().to_string())?;
    finish(value, Some((path, &text)))
}

/// Load the effective configuration: defaults, then `file` if given, then environment.
pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<GmcConfig> {
    let (mut value, file) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?;
            (
                parse_toml(&text, &p.display().to_string())?,
                Some((p, text)),
            )
        }
        None => (toml::Table::new(), None),
    };
    apply_env(&mut value, std::env::vars())?;
    Ok(finish(value, file.as_ref().map(|(p, t)| (*p, t.as_str())))?)
}

fn parse_toml(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError {
        origin: origin.to_owned(),
        line: e.span().map(|s| line_of(text, s.start)),
        key: None,
        message: e.message().to_owned(),
    })
}

fn finish(value: toml::Table, file: Option<(&Path, &str)>) -> Result<GmcConfig, ConfigError> {
    let origin = file
        .map(|(p, _)| p.display().to_string())
        .unwrap_or_else(|| "<defaults and environment>".to_owned());
    // Re-serialise and parse with spans so type errors point at a line of the file. When the
    // environment changed a value, the line is that of the file's original key, if any.
    let text = toml::to_string(&value).map_err(|e| ConfigError {
        origin: origin.clone(),
        line: None,
        key: None,
        message: e.to_string(),
    })?;
    let cfg: GmcConfig = toml::from_str(&text).map_err(|e| {
        let key = key_from_message(e.message());
        ConfigError {
            line: file.and_then(|(_, t)| key.as_deref().and_then(|k| find_key_line(t, k))),
            origin: origin.clone(),
            key,
            message: e.message().to_owned(),
        }
    })?;
    cfg.validate().map_err(|(key, message)| ConfigError {
        line: file.and_then(|(_, t)| find_key_line(t, &key)),
        origin,
        key: (!key.is_empty()).then_some(key),
        message,
    })?;
    Ok(cfg)
}

/// Overlay `GMC_SECTION__KEY=value` variables (double underscore between levels).
pub(crate) fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("GMC_") else {
            continue;
        };
        if !rest.contains("__") {
            continue; // GMC_LOG, GMC_LISTEN, GMC_DATA_DIR are flags, handled by clap
        }
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let value = parse_env_value(&raw);
        let mut cur = &mut *table;
        for (i, seg) in path.iter().enumerate() {
            if i + 1 == path.len() {
                cur.insert(seg.clone(), value.clone());
                break;
            }
            let entry = cur
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ConfigError {
                        origin: format!("<environment {name}>"),
                        line: None,
                        key: Some(path[..=i].join(".")),
                        message: "is not a table".to_owned(),
                    })
                }
            };
        }
    }
    Ok(())
}

/// A TOML literal when it parses as one (`10`, `true`, `"x"`, `[1]`), else a plain string.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// serde's messages name the field: "unknown field `x`, expected …", "invalid type … for key `a.b`".
fn key_from_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_owned())
}

/// Best effort: the first line assigning the last segment of `key`.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let leaf = key.rsplit('.').next()?;
    let leaf = leaf.split('[').next()?;
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(leaf)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/gmc.example.toml")
    }

    #[test]
    fn example_config_parses_and_equals_defaults() {
        let cfg = load_file(&example()).unwrap();
        assert_eq!(
            cfg,
            GmcConfig::default(),
            "config/gmc.example.toml drifted from Default"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gmc.toml");
        std::fs::write(&p, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap();
        let e = load_file(&p).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("gmc.toml:3"), "{s}");
        assert!(s.contains("lisen"), "{s}");
    }

    #[test]
    fn syntax_error_names_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "data_dir = \"x\"\n[server\n").unwrap();
        let s = load_file(&p).unwrap_err().to_string();
        assert!(s.contains("bad.toml:2"), "{s}");
    }

    #[test]
    fn invalid_value_names_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.toml");
        std::fs::write(&p, "[server]\nmax_inflight_writes = 0\n").unwrap();
        let s = load_file(&p).unwrap_err().to_string();
        assert!(
            s.contains("v.toml:2") && s.contains("server.max_inflight_writes"),
            "{s}"
        );
    }

    #[test]
    fn environment_overrides_file() {
        let mut t: toml::Table = "[server]\nmax_inflight_writes = 3\n".parse().unwrap();
        apply_env(
            &mut t,
            [
                ("GMC_SERVER__MAX_INFLIGHT_WRITES".to_owned(), "7".to_owned()),
                ("GMC_DATA_DIR".to_owned(), "/ignored/here".to_owned()),
            ]
            .into_iter(),
        )
        .unwrap();
        let cfg = finish(t, None).unwrap();
        assert_eq!(cfg.server.max_inflight_writes, 7);
        assert_eq!(cfg.data_dir, PathBuf::from("./gmc-data"));
    }
}
