//! `plan` (and `transfer --dry-run`): read-only, a category per certificate and a duration
//! estimate; `--mode register` says whether each certificate can be registered in its
//! target instead. No ledger is opened or locked: a plan can run beside a transfer.

use crate::carry;
use crate::cli::{GlobalArgs, PlanArgs, PlanMode};
use crate::error::{Error, ExitCode};
use crate::files::{check_writable, Writing};
use crate::manifest::Manifest;
use crate::output;
use crate::plan::{self, PlanCsv};
use crate::progress::Progress;
use crate::registration;
use crate::session::TargetProfiles;
use crate::session::{Session, Settings};

/// Runs `plan`.
pub async fn run(global: &GlobalArgs, args: PlanArgs) -> Result<ExitCode, Error> {
    let settings = super::settings(global, &args.pacing);
    let manifest = Manifest::load(&args.manifest)?;
    for w in manifest.warnings() {
        tracing::warn!("{}:{w}", args.manifest.display());
    }
    if args.mode == PlanMode::Register {
        return register_mode(global, args, settings, manifest).await;
    }
    // Created before the first AWS call: an unwritable path is known before the work.
    let csv = match &args.plan_out {
        Some(p) => Some(PlanCsv::create(p)?),
        None => None,
    };
    let session = Session::connect(settings).await?;
    let clients = session.own_clients(manifest.regions()).await?;
    let profiles = TargetProfiles::from_flags(
        args.target_profile.as_deref(),
        args.target_profile_template.as_deref(),
    );
    let targets = match (&profiles, args.carry) {
        (Some(p), true) => {
            session
                .target_clients(&manifest, p, "--target-profile")
                .await?
        }
        _ => Vec::new(),
    };
    let progress = Progress::start(&super::progress(global), manifest.len() as u64, "planning");
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
    let mut report = report?;
    if args.carry {
        let preview =
            carry::preview::preview(&manifest, &clients, &targets, args.pacing.concurrency).await?;
        report = report.with_carry(preview);
    }
    output::emit(global.output, &report);
    Ok(ExitCode::Success)
}

/// `plan --mode register`: read-only on both sides.
async fn register_mode(
    global: &GlobalArgs,
    args: PlanArgs,
    settings: Settings,
    manifest: Manifest,
) -> Result<ExitCode, Error> {
    let profiles = TargetProfiles::from_flags(
        args.target_profile.as_deref(),
        args.target_profile_template.as_deref(),
    )
    .expect("clap requires target credentials with --mode register");
    if let Some(p) = &args.plan_out {
        check_writable(p, "plan CSV", Writing::Replace)?;
    }
    let session = Session::connect(settings).await?;
    let source = session.own_clients(manifest.regions()).await?;
    let targets = session
        .target_clients(&manifest, &profiles, "--target-profile")
        .await?;
    let plan = registration::plan(
        &args.manifest,
        &manifest,
        &source,
        &targets,
        args.pacing.concurrency,
        args.plan_out.as_deref(),
    )
    .await?;
    output::emit(global.output, &plan);
    Ok(ExitCode::Success)
}
