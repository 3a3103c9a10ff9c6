//! `man [--out DIR]`: the man pages of the one clap definition.

use std::io::Write;

use crate::cli::{GlobalArgs, ManArgs, OutputFormat};
use crate::error::{Error, ExitCode};
use crate::manual;

/// Runs `man`: the main page on stdout, or every page into `--out` (their paths on stdout).
pub fn run(global: &GlobalArgs, args: ManArgs) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    match args.out {
        None => {
            let page = manual::main_page();
            // A closed stdout (`| head`) is not an error.
            let _ = out.write_all(page.as_bytes());
        }
        Some(dir) => {
            let written = manual::write_pages(&dir)?;
            let _ = match global.output {
                OutputFormat::Json => {
                    writeln!(out, "{}", serde_json::json!({ "man_pages": written }))
                }
                OutputFormat::Text => written
                    .iter()
                    .try_for_each(|p| writeln!(out, "{}", p.display())),
            };
        }
    }
    Ok(ExitCode::Success)
}
