//! `plan` (and `transfer --dry-run`): read-only, a category per certificate and a duration
//! estimate. No ledger is opened or locked: a plan can run beside a transfer.

use crate::cli::{GlobalArgs, PlanArgs};
use crate::error::{Error, ExitCode};
use crate::manifest::Manifest;
use crate::output;
use crate::plan::{self, PlanCsv};
use crate::progress::Progress;
use crate::session::{Session, Settings};

/// Runs `plan`.
pub async fn run(global: &GlobalArgs, args: PlanArgs) -> Result<ExitCode, Error> {
    let settings = Settings::from_args(global, &args.pacing)?;
    let manifest = Manifest::load(&args.manifest)?;
    for w in manifest.warnings() {
        tracing::warn!("{}:{w}", args.manifest.display());
    }
    // Created before the first AWS call: an unwritable path is known before the work.
    let csv = match &args.plan_out {
        Some(p) => Some(PlanCsv::create(p)?),
        None => None,
    };
    let session = Session::connect(settings).await?;
    let clients = session.own_clients(manifest.regions()).await?;
    let progress = Progress::for_run(global, manifest.len() as u64, "planning");
    let report = plan::make(
        &args.manifest,
        &manifest,
        &session,
        &clients,
        args.pacing.concurrency,
        csv,
        &progress.tally(),
    )
    .await;
    progress.finish();
    output::emit(global.output, &report?);
    Ok(ExitCode::Success)
}
