//! `retire`: after `register`, the source's copies are retired, each only once its target
//! holds the certificate ACTIVE, and only as far as the flags say. The events (with what was
//! changed) go to the retire ledger.

use std::sync::Arc;

use crate::cli::{GlobalArgs, RetireArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::{ItemState, LedgerKind};
use crate::lifecycle::register::{to_undo, unretired, RetireSteps, Retirer};
use crate::run::{Execution, FailedItems, Run, RunSpec, UndoHistory};
use crate::session::TargetProfiles;

/// Runs `retire`.
pub async fn run(global: &GlobalArgs, args: RetireArgs) -> Result<ExitCode, Error> {
    if !(args.deactivate || args.detach_policies || args.detach_things || args.undo) {
        return Err(Error::Usage(
            "retire changes only what it is told to: give --deactivate, --detach-policies and/or --detach-things (or --undo)".into(),
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
    let source = run.own_clients().await?;
    // Undo acts on the source alone, from the ledger: no target credentials are needed to
    // bring the devices back.
    let targets = if args.undo {
        Vec::new()
    } else {
        let profiles = TargetProfiles::from_flags(
            args.targets.target_profile.as_deref(),
            args.targets.target_profile_template.as_deref(),
        )
        .ok_or_else(|| {
            Error::Usage("retire needs --target-profile or --target-profile-template".into())
        })?;
        run.targets(&profiles, "--target-profile").await?
    };
    let steps = RetireSteps {
        deactivate: args.deactivate,
        detach_policies: args.detach_policies,
        detach_things: args.detach_things,
    };
    let retirer = Arc::new(Retirer::new(
        run.writer(),
        run.state(),
        source,
        targets,
        steps,
        args.pacing.max_attempts,
    ));
    let undo = args.undo;
    if undo {
        // Only what this ledger says retire changed (or undo already put back) is this
        // run's business: a refused retirement changed nothing and has nothing to undo.
        run.restrict_to(Box::new(|rec, _row| {
            rec.is_some_and(|r| {
                r.state == ItemState::Restored || r.undo.is_some_and(|u| !u.is_empty())
            })
        }));
    }
    let how = Execution {
        concurrency: args.pacing.concurrency,
        canary: 0,
        limits: &args.limits,
        verb: if undo { "undoing retire" } else { "retiring" },
        // A retirement that failed half-way is exactly what undo is for.
        failed: FailedItems::retry_if(args.retry_failed || undo),
    };
    run.execute(
        how,
        move |rec, _row| if undo { to_undo(rec) } else { unretired(rec) },
        move |work| {
            let r = retirer.clone();
            async move {
                if undo {
                    r.undo(&work).await
                } else {
                    r.retire(&work).await
                }
            }
        },
    )
    .await
}
