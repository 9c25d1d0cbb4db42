//! `gmc serve`: open the store, start the HTTP server, stop cleanly on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use crate::config;

/// Flags of `gmc serve`. Each also reads a `GMC_*` variable; a flag beats the variable,
/// which beats the config file, which beats the defaults.
#[derive(Debug, Args, Default)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9300].
    #[arg(long, env = "GMC_LISTEN", global = true)]
    pub(crate) listen: Option<SocketAddr>,
    /// Directory of the embedded store [default: ./gmc-data].
    #[arg(long, visible_alias = "data", env = "GMC_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (see config/gmc.example.toml).
    #[arg(long, env = "GMC_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, env = "GMC_LOG_FORMAT", default_value = "text", global = true)]
    pub(crate) log_format: String,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing(&args.log_format);
    let mut cfg = config::load(args.config.as_deref())?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data dir {}", cfg.data_dir.display()))?;
    let started = std::time::Instant::now();
    let db = gmc_tsdb::Db::open(&cfg.data_dir, cfg.storage.clone())
        .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))?;
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Store opened."
    );
    let db = Arc::new(db);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gmc-http")
        .build()
        .context("cannot start the async runtime")?;
    let server_cfg = cfg.server_config();
    // The server runs as a task on the worker threads, not as the future `block_on`
    // drives on this thread: its accept loop then runs on a worker, and a new connection's
    // task starts on that same worker at once. Accepting here woke a worker for every
    // connection (one thread switch per request for clients that open a connection per
    // query, as many scripts and benchmark clients do).
    let result = runtime.block_on(async {
        match tokio::spawn(gmc_server::run(server_cfg, db.clone(), shutdown_signal())).await {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::anyhow!("server task failed: {e}")),
        }
    });
    // Stop background tasks before closing the store so nothing appends after close.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let closed = match Arc::try_unwrap(db) {
        Ok(db) => db.close().context("closing the store"),
        Err(_) => {
            tracing::warn!("Store still referenced at shutdown; relying on WAL replay.");
            Ok(())
        }
    };
    result.context("server failed")?;
    closed?;
    tracing::info!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C stops gmc.");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("Shutdown requested.");
}

pub(crate) fn init_tracing(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GMC_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
