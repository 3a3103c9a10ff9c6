//! `plan` (and `transfer --dry-run`): read-only, a category per certificate and a duration
//! estimate; `--mode register` says whether each certificate can be registered in its
//! target instead; `--carry` adds what carry would create in each target (both modes). No
//! ledger is opened or locked: a plan can run beside a transfer. Exit 4 when a signal
//! stopped it.

use crate::carry;
use crate::carry::preview::{CarryPreview, WithCarry};
use crate::cli::{GlobalArgs, PlanArgs, PlanMode};
use crate::error::{Error, ExitCode};
use crate::iot::AccountClients;
use crate::manifest::Manifest;
use crate::output::{self, Render};
use crate::plan;
use crate::registration;
use crate::session::{Session, TargetCredentials};
use crate::stop::Stop;
use crate::verdict::{self, Sweep, VerdictCsv};

/// Runs `plan`.
pub async fn run(global: &GlobalArgs, args: PlanArgs) -> Result<ExitCode, Error> {
    let settings = super::settings(global, &args.pacing);
    let manifest = Manifest::load(&args.manifest)?;
    for w in manifest.warnings() {
        tracing::warn!("{}:{w}", args.manifest.display());
    }
    let register = args.mode == PlanMode::Register;
    let targets = TargetCredentials::from_flags(
        args.target_profile.as_deref(),
        args.target_profile_template.as_deref(),
        args.target_role_template.as_deref(),
    );
    // Opened before the first AWS call: an unwritable path is known before the work.
    let csv = match &args.plan_out {
        Some(p) => Some(VerdictCsv::create(p, "plan CSV")?),
        None => None,
    };
    let session = Session::connect(settings).await?;
    let source = session.own_clients(manifest.regions()).await?;
    let targets = match &targets {
        Some(p) if register || args.carry => {
            session
                .target_clients(&manifest, p, "--target-profile")
                .await?
        }
        _ => Vec::new(),
    };
    let sweep = Sweep::start(
        args.pacing.concurrency,
        super::progress(global),
        Stop::new(None, verdict::GRACE),
    );
    let stopped = if register {
        let plan =
            registration::plan(&args.manifest, &manifest, &source, &targets, &sweep, csv).await?;
        let stopped = plan.stopped.is_some();
        let carry = carry_preview(args.carry, &manifest, &source, &targets, &sweep).await?;
        emit(global, plan, carry) || stopped
    } else {
        let plan = plan::make(&args.manifest, &manifest, &session, &source, &sweep, csv).await?;
        let stopped = plan.stopped();
        let carry = carry_preview(args.carry, &manifest, &source, &targets, &sweep).await?;
        emit(global, plan, carry) || stopped
    };
    Ok(if stopped {
        ExitCode::Stopped
    } else {
        ExitCode::Success
    })
}

/// With `--carry`, what carry would create in each target (after a stop request it starts
/// no certificate, and says so).
async fn carry_preview(
    asked: bool,
    manifest: &Manifest,
    source: &AccountClients,
    targets: &[AccountClients],
    sweep: &Sweep,
) -> Result<Option<CarryPreview>, Error> {
    if !asked {
        return Ok(None);
    }
    Ok(Some(
        carry::preview::preview(manifest, source, targets, sweep).await?,
    ))
}

/// Prints the plan, with its carry section if any; whether a signal stopped the preview.
fn emit<P: Render>(global: &GlobalArgs, plan: P, carry: Option<CarryPreview>) -> bool {
    match carry {
        Some(carry) => {
            let stopped = carry.stopped.is_some();
            output::emit(global.output, &WithCarry { plan, carry });
            stopped
        }
        None => {
            output::emit(global.output, &plan);
            false
        }
    }
}
