//! `gmc check config FILE`: load and validate a configuration without starting anything.

use std::path::Path;
use std::process::ExitCode;

use crate::config;

pub(crate) fn config(file: &Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    // Environment overrides are deliberately ignored: the file alone is being checked.
    match config::load_file(file) {
        Ok(_) => {
            writeln!(std::io::stdout().lock(), "{}: OK", file.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
