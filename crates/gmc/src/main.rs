//! `gmc`, the Global Metrics Center: a thin command-line shell over the gmc libraries.
//!
//! Subcommands: `serve` (the default), `agent` (host collection pushing to a center),
//! `check config FILE`, `version`.

mod alloc;
mod cli;
mod config;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before the first large allocation (see `alloc.rs` for the measurements).
    alloc::init();
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // A closed stdout (`gmc version | head -0`) is not a failure.
            if err
                .chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("gmc: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
