//! `retire`: after `register`, the source's copies are retired, each only once its target
//! holds the certificate ACTIVE, and only as far as the flags say. The events (with what was
//! changed) go to the retire ledger.

use std::sync::Arc;

use crate::cli::{GlobalArgs, RetireArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::register::{unretired, RetireSteps, Retirer};
use crate::run::{Execution, FailedItems, Run, RunSpec, UndoHistory};
use crate::session::TargetProfiles;

/// Runs `retire`.
pub async fn run(global: &GlobalArgs, args: RetireArgs) -> Result<ExitCode, Error> {
    if !(args.deactivate || args.detach_policies || args.detach_things) {
        return Err(Error::Usage(
            "retire changes only what it is told to: give --deactivate, --detach-policies and/or --detach-things".into(),
        ));
    }
    let mut run = Run::open(
        global,
        RunSpec {
            command: "retire",
            manifest: &args.manifest,
            files: &args.files,
            kind: LedgerKind::Retire,
            // What retire changed, for undo.
            undo: UndoHistory::Keep,
            pacing: &args.pacing,
        },
    )
    .await?;
    let profiles = TargetProfiles::from_flags(
        args.targets.target_profile.as_deref(),
        args.targets.target_profile_template.as_deref(),
    )
    .ok_or_else(|| {
        Error::Usage("retire needs --target-profile or --target-profile-template".into())
    })?;
    let source = run.own_clients().await?;
    let targets = run.targets(&profiles, "--target-profile").await?;
    let steps = RetireSteps {
        deactivate: args.deactivate,
        detach_policies: args.detach_policies,
        detach_things: args.detach_things,
    };
    let retirer = Arc::new(Retirer::new(
        run.writer(),
        source,
        targets,
        steps,
        args.pacing.max_attempts,
    ));
    let how = Execution {
        concurrency: args.pacing.concurrency,
        canary: 0,
        limits: &args.limits,
        verb: "retiring",
        failed: FailedItems::retry_if(args.retry_failed),
    };
    run.execute(
        how,
        |rec, _row| unretired(rec),
        move |work| {
            let r = retirer.clone();
            async move { r.retire(&work).await }
        },
    )
    .await
}
