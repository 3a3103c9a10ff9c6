//! `cancel`: CancelCertificateTransfer for every certificate the transfer ledger records as
//! transferred; with `--restore`, also the undo of what prepare changed.

use std::sync::Arc;

use crate::cli::{CancelArgs, GlobalArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::cancel::{concerns_cancel, pick};
use crate::lifecycle::{Canceller, Restore};
use crate::run::{Execution, FailedItems, Run, RunSpec, UndoHistory};

/// Runs `cancel`.
pub async fn run(global: &GlobalArgs, args: CancelArgs) -> Result<ExitCode, Error> {
    let restore = if args.restore {
        Restore::Yes
    } else {
        Restore::No
    };
    let mut run = Run::open(
        global,
        RunSpec {
            command: "cancel",
            manifest: &args.manifest,
            files: &args.files,
            kind: LedgerKind::Transfer,
            // Only restore needs what prepare changed.
            undo: match restore {
                Restore::Yes => UndoHistory::Keep,
                Restore::No => UndoHistory::Drop,
            },
            pacing: &args.pacing,
        },
    )
    .await?;
    let clients = run.own_clients().await?;
    // Certificates the transfer never touched (or refused untouched) are none of cancel's
    // business: they are neither processed nor counted.
    run.restrict_to(Box::new(|rec, _row| rec.is_some_and(concerns_cancel)));
    let canceller = Arc::new(Canceller::new(
        run.writer(),
        run.state(),
        clients,
        restore,
        args.pacing.max_attempts,
    ));
    let how = Execution {
        concurrency: args.pacing.concurrency,
        // The circuit breaker still stops a run whose calls all fail the same way.
        canary: 0,
        limits: &args.limits,
        verb: match restore {
            Restore::Yes => "cancelling and restoring",
            Restore::No => "cancelling",
        },
        // Cancel's own failures are tried again on every run (there is nothing to fix by
        // hand first, unlike a transfer refused for a missing flag); `pick` decides.
        failed: FailedItems::Retry,
    };
    run.execute(
        how,
        move |rec, _row| pick(rec, restore),
        move |work| {
            let c = canceller.clone();
            async move { c.cancel(&work).await }
        },
    )
    .await
}
