//! `report MANIFEST [--html PATH]`: how far the migration is, what failed, how fast, from
//! the transfer and accept ledgers (read only, never locked): text or JSON on stdout, and
//! with `--html` a self-contained page.

use std::path::PathBuf;

use crate::cli::{GlobalArgs, ReportArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::{Header, Ledger, LedgerError, LedgerKind, LedgerState, UndoHistory};
use crate::manifest::Manifest;
use crate::output;
use crate::report::html;
use crate::report::migration::{LedgerInput, MigrationReport};
use crate::run::default_ledger;

/// Runs `report`.
pub fn run(global: &GlobalArgs, args: ReportArgs) -> Result<ExitCode, Error> {
    let manifest = Manifest::load(&args.manifest)?;
    for w in manifest.warnings() {
        tracing::warn!("{}:{w}", args.manifest.display());
    }
    if let Some(path) = &args.html {
        html::check_writable(path)?;
    }
    let mut read: Vec<(PathBuf, Header, LedgerState)> = Vec::new();
    let mut looked_for = Vec::new();
    for (given, kind) in [
        (args.ledger, LedgerKind::Transfer),
        (args.accept_ledger, LedgerKind::Accept),
    ] {
        let path = given
            .clone()
            .unwrap_or_else(|| default_ledger(&args.manifest, kind));
        // A default ledger may not exist yet (no accept has run); a ledger named must.
        if given.is_none() && !path.exists() {
            looked_for.push(path.display().to_string());
            continue;
        }
        let (header, state, warnings) = Ledger::read_only(&path, UndoHistory::Drop)?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        if header.kind != kind {
            return Err(LedgerError::WrongKind {
                path,
                found: header.kind.to_string(),
                expected: kind.to_string(),
            }
            .into());
        }
        read.push((path, header, state));
    }
    if read.is_empty() {
        return Err(Error::Usage(format!(
            "no ledger of {} to report on: {} not found (run transfer first, or pass --ledger)",
            args.manifest.display(),
            looked_for.join(" and ")
        )));
    }
    let input = |kind: LedgerKind| {
        read.iter()
            .find(|(_, h, _)| h.kind == kind)
            .map(|(path, header, state)| LedgerInput {
                path,
                header,
                state,
            })
    };
    let mut report = MigrationReport::build(
        &manifest,
        input(LedgerKind::Transfer),
        input(LedgerKind::Accept),
    )?;
    if let Some(path) = &args.html {
        html::write(path, &html::render(&report))?;
        report.html = Some(path.clone());
    }
    output::emit(global.output, &report);
    Ok(ExitCode::Success)
}
