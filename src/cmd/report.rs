//! `report MANIFEST [--html PATH]`: how far the migration is, what failed, how fast, from
//! every ledger of the manifest (transfer, accept, register, retire, handoff; read only, never
//! locked): text or JSON on stdout, and with `--html` a self-contained page. With
//! `--devices`, also whether each certificate's devices arrived (read-only AWS calls, see
//! [`crate::devices`]).

use crate::cli::{GlobalArgs, ReportArgs};
use crate::devices;
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::manifest::Manifest;
use crate::output;
use crate::report::html;
use crate::report::ledgers;
use crate::report::migration::MigrationReport;

/// Runs `report`.
pub async fn run(global: &GlobalArgs, args: ReportArgs) -> Result<ExitCode, Error> {
    let manifest = Manifest::load(&args.manifest)?;
    for w in manifest.warnings() {
        tracing::warn!("{}:{w}", args.manifest.display());
    }
    if let Some(path) = &args.html {
        html::check_writable(path)?;
    }
    let given = [
        (LedgerKind::Transfer, args.ledger),
        (LedgerKind::Accept, args.accept_ledger),
    ];
    let (read, missing) = ledgers::read(&args.manifest, &given)?;
    if read.is_empty() {
        let looked_for: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::Usage(format!(
            "no ledger of {} to report on: {} not found (run transfer or register first, or pass --ledger)",
            args.manifest.display(),
            looked_for.join(", ")
        )));
    }
    let mut report = MigrationReport::build(&manifest, &read)?;
    if let Some(options) = super::look_options(global, &args.devices) {
        report.devices = Some(devices::look(&args.manifest, &manifest, options).await?);
    }
    if let Some(path) = &args.html {
        html::write(path, &html::render(&report))?;
        report.html = Some(path.clone());
    }
    output::emit(global.output, &report);
    Ok(super::exit_after_devices(report.devices.as_ref()))
}
