//! `plan` (and `transfer --dry-run`): read-only, a category per certificate and a duration
//! estimate; `--mode register` says whether each certificate can be registered in its
//! target instead. No ledger is opened or locked: a plan can run beside a transfer. Exit 4
//! when a signal stopped it.

use crate::carry;
use crate::cli::{GlobalArgs, PlanArgs, PlanMode};
use crate::error::{Error, ExitCode};
use crate::manifest::Manifest;
use crate::output;
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
        output::emit(global.output, &plan);
        plan.stopped.is_some()
    } else {
        let mut report =
            plan::make(&args.manifest, &manifest, &session, &source, &sweep, csv).await?;
        if args.carry {
            // After a stop request it starts no certificate, and says so.
            let preview = carry::preview::preview(&manifest, &source, &targets, &sweep).await?;
            report = report.with_carry(preview);
        }
        output::emit(global.output, &report);
        report.stopped()
    };
    Ok(if stopped {
        ExitCode::Stopped
    } else {
        ExitCode::Success
    })
}
