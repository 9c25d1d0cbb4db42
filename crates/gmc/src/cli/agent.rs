//! `gmc agent`: collect this host's figures every interval and push them to a center with
//! remote_write through a durable spool, and/or serve them on `/metrics`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

/// Flags of `gmc agent`. `--listen ADDR` (shared with `serve`) serves `/metrics` here.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// remote_write URL of the center, e.g. http://center:9300/api/v1/write.
    #[arg(long, env = "GMC_AGENT_PUSH")]
    push: Option<String>,
    /// Time between collections (100ms at least).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Directory of the spool that holds cycles until the center acknowledged them.
    #[arg(long, env = "GMC_AGENT_SPOOL_DIR", default_value = "./gmc-agent-spool")]
    spool_dir: PathBuf,
    /// Bound on the spool's size ("256MiB", bytes); beyond it the oldest data is dropped
    /// and counted in gmc_agent_samples_dropped_total{reason="spool_full"}.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    spool_max_bytes: u64,
    /// When the spool is fsynced: always, never (survives SIGKILL, not power loss), or a
    /// period such as 5s.
    #[arg(long, default_value = "always", value_parser = parse_sync)]
    spool_sync: gmc_agent::spool::SyncPolicy,
    /// `instance` label of every series [default: the host name].
    #[arg(long)]
    instance: Option<String>,
    /// Report processes per group: NAME (matches the process name), GROUP=NAME, or
    /// GROUP=@/path/to/pidfile. Repeatable.
    #[arg(long = "process", value_name = "SPEC", value_parser = parse_process)]
    processes: Vec<gmc_agent::ProcessSelector>,
    /// Root of procfs (for containers with the host's /proc mounted elsewhere).
    #[arg(long, default_value = "/proc")]
    proc_root: PathBuf,
    /// Timeout of one push request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    push_timeout: Duration,
}

fn parse_size(s: &str) -> Result<u64, String> {
    gmc_server::config::parse_size(s)
        .ok_or_else(|| format!("invalid size {s:?}; write e.g. \"256MiB\""))
}

fn parse_sync(s: &str) -> Result<gmc_agent::spool::SyncPolicy, String> {
    gmc_agent::spool::SyncPolicy::parse(s)
        .ok_or_else(|| format!("invalid sync policy {s:?}; write always, never or e.g. 5s"))
}

fn parse_process(s: &str) -> Result<gmc_agent::ProcessSelector, String> {
    gmc_agent::ProcessSelector::parse(s).ok_or_else(|| {
        format!("invalid process spec {s:?}; write NAME, GROUP=NAME or GROUP=@PIDFILE")
    })
}

pub(crate) fn run(
    args: AgentArgs,
    listen: Option<SocketAddr>,
    log_format: &str,
) -> anyhow::Result<ExitCode> {
    super::serve::init_tracing(log_format);
    let mut cfg = gmc_agent::Config::new();
    cfg.interval = args.interval;
    cfg.push_url = args.push;
    cfg.push_timeout = args.push_timeout;
    cfg.listen = listen.map(|a| a.to_string());
    cfg.spool = gmc_agent::spool::Config {
        max_bytes: args.spool_max_bytes,
        sync: args.spool_sync,
        ..gmc_agent::spool::Config::new(args.spool_dir)
    };
    if let Some(i) = args.instance {
        cfg.instance = i;
    }
    cfg.collectors = gmc_agent::collector::Config {
        proc_root: args.proc_root,
        processes: args.processes,
    };
    let agent = gmc_agent::Agent::new(cfg).context("cannot start the agent")?;
    if let Some(addr) = agent.local_addr() {
        tracing::info!(addr = %addr, "Listening.");
    }
    let stop = gmc_agent::Stop::new();
    let signal_stop = stop.clone();
    // A small runtime only to wait for SIGTERM/Ctrl-C; the agent itself is plain threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    std::thread::Builder::new()
        .name("gmc-agent-signal".into())
        .spawn(move || {
            runtime.block_on(super::serve::shutdown_signal());
            signal_stop.stop();
        })
        .context("cannot start the signal thread")?;
    agent.run(stop).context("agent failed")?;
    Ok(ExitCode::SUCCESS)
}
