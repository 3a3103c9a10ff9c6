//! `accept` (target side): accept the pending transfers addressed to the caller's account,
//! optionally activate them and attach policies. Rows addressed to other accounts are left
//! to them: neither processed nor counted. The events go to the accept ledger.

use std::sync::Arc;

use crate::cli::{AcceptArgs, GlobalArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::accept::unfinished;
use crate::lifecycle::{AcceptOptions, Acceptor};
use crate::run::{Execution, FailedItems, Run, RunSpec, UndoHistory};

/// Runs `accept`.
pub async fn run(global: &GlobalArgs, args: AcceptArgs) -> Result<ExitCode, Error> {
    let mut run = Run::open(
        global,
        RunSpec {
            command: "accept",
            manifest: &args.manifest,
            files: &args.files,
            kind: LedgerKind::Accept,
            undo: UndoHistory::Drop,
            pacing: &args.pacing,
        },
    )
    .await?;
    let clients = run.as_target().await?;
    let options = AcceptOptions {
        set_as_active: args.set_as_active,
        attach_policies: args.attach_policies,
    };
    let acceptor = Arc::new(Acceptor::new(
        run.writer(),
        run.state(),
        vec![clients],
        options,
        args.pacing.max_attempts,
    ));
    let how = Execution {
        concurrency: args.pacing.concurrency,
        // The circuit breaker still stops a run whose calls all fail the same way.
        canary: 0,
        limits: &args.limits,
        verb: "accepting",
        failed: FailedItems::retry_if(args.retry_failed),
    };
    run.execute(
        how,
        |rec, _row| unfinished(rec),
        move |work| {
            let a = acceptor.clone();
            async move { a.accept(&work).await }
        },
    )
    .await
}
