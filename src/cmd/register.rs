//! `register`: the zero-downtime move. Each certificate is registered in its target account
//! too (RegisterCertificateWithoutCA with its PEM), and with `--carry` what it carries is
//! rebuilt there; the source is not changed. The events go to the register ledger.

use std::sync::Arc;

use crate::certificate::CertStatus;
use crate::cli::{GlobalArgs, RegisterArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::register::{unregistered, RegisterCarry, Registrar};
use crate::run::{Execution, FailedItems, Run, RunSpec, UndoHistory};
use crate::session::TargetProfiles;

/// Runs `register`.
pub async fn run(global: &GlobalArgs, args: RegisterArgs) -> Result<ExitCode, Error> {
    let mut run = Run::open(
        global,
        RunSpec {
            command: "register",
            manifest: &args.manifest,
            files: &args.files,
            kind: LedgerKind::Register,
            undo: UndoHistory::Drop,
            pacing: &args.pacing,
        },
    )
    .await?;
    let profiles = TargetProfiles::from_flags(
        args.targets.target_profile.as_deref(),
        args.targets.target_profile_template.as_deref(),
    )
    .ok_or_else(|| {
        Error::Usage("register needs --target-profile or --target-profile-template".into())
    })?;
    let source = run.own_clients().await?;
    let targets = run.targets(&profiles, "--target-profile").await?;
    if args.carry {
        for t in &targets {
            run.add_device_endpoints(t).await;
        }
    }
    let carry = args.carry.then(|| RegisterCarry::new(args.on_conflict));
    let registrar = Arc::new(Registrar::new(
        run.writer(),
        source,
        targets,
        CertStatus::parse(&args.status),
        carry,
        args.pacing.max_attempts,
    ));
    let how = Execution {
        concurrency: args.pacing.concurrency,
        canary: args.canary,
        limits: &args.limits,
        verb: "registering",
        failed: FailedItems::retry_if(args.retry_failed),
    };
    run.execute(
        how,
        |rec, _row| unregistered(rec),
        move |work| {
            let r = registrar.clone();
            async move { r.register(&work).await }
        },
    )
    .await
}
