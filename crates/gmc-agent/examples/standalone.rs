//! The agent loop without the `gmc` binary around it, for the overhead measurement
//! (`tools/agent-overhead.sh`): a release build of this crate alone, instead of the whole
//! workspace. Same code path as `gmc agent` apart from flag parsing and signal handling.
//!
//! `standalone --push URL [--listen ADDR] [--interval-ms N] [--spool-dir DIR]`

use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = gmc_agent::Config::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--push" => cfg.push_url = Some(val()?),
            "--listen" => cfg.listen = Some(val()?),
            "--interval-ms" => cfg.interval = Duration::from_millis(val()?.parse()?),
            "--spool-dir" => cfg.spool = gmc_agent::spool::Config::new(val()?),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let agent = gmc_agent::Agent::new(cfg)?;
    agent.run(gmc_agent::Stop::new())?;
    Ok(())
}
