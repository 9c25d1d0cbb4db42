//! Command-line definition and dispatch. Each flag is defined once; clap renders its help.

mod agent;
mod check;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// gmc, the Global Metrics Center: metrics for trading infrastructure in one binary.
#[derive(Debug, Parser)]
#[command(name = "gmc", version, about, long_about = None)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Flags of `serve`, accepted without the subcommand because `serve` is the default.
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the center: ingest, storage, APIs (the default).
    Serve(serve::ServeArgs),
    /// Collect this host's figures (node_exporter compatible) and push them to a center
    /// through a durable spool (--push URL) and/or serve them on /metrics (--listen ADDR).
    Agent(agent::AgentArgs),
    /// Validate files offline.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Print version and build information.
    Version,
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Validate a gmc configuration file; errors name the file, line and key.
    Config {
        /// The TOML file.
        file: PathBuf,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        None => serve::run(args.serve),
        Some(Command::Serve(a)) => serve::run(a),
        Some(Command::Agent(a)) => agent::run(a, args.serve.listen, &args.serve.log_format),
        Some(Command::Check {
            what: CheckCommand::Config { file },
        }) => check::config(&file),
        Some(Command::Version) => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "gmc {} (rustc {}, {})",
                env!("CARGO_PKG_VERSION"),
                option_env!("GMC_RUSTC_VERSION").unwrap_or("stable"),
                std::env::consts::ARCH
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
