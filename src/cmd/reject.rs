//! `reject` (target side): reject the pending transfers addressed to the caller's account;
//! the certificates go back to the source, INACTIVE. The events go to the accept ledger.

use std::sync::Arc;

use crate::cli::{GlobalArgs, RejectArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::accept::unfinished;
use crate::lifecycle::Rejecter;
use crate::run::{Execution, FailedItems, Run, RunSpec, UndoHistory};

/// Longest reject reason AWS accepts.
pub const MAX_REASON_CHARS: usize = 128;

/// Runs `reject`.
pub async fn run(global: &GlobalArgs, args: RejectArgs) -> Result<ExitCode, Error> {
    // Checked before anything else: AWS would refuse every call.
    let n = args.reason.chars().count();
    if n > MAX_REASON_CHARS {
        return Err(Error::Usage(format!(
            "--reason has {n} characters; AWS accepts at most {MAX_REASON_CHARS}"
        )));
    }
    let mut run = Run::open(
        global,
        RunSpec {
            command: "reject",
            manifest: &args.manifest,
            files: &args.files,
            kind: LedgerKind::Accept,
            undo: UndoHistory::Drop,
            pacing: &args.pacing,
        },
    )
    .await?;
    let clients = run.as_target().await?;
    let rejecter = Arc::new(Rejecter::new(
        run.writer(),
        clients,
        args.reason,
        args.pacing.max_attempts,
    ));
    let how = Execution {
        concurrency: args.pacing.concurrency,
        // The circuit breaker still stops a run whose calls all fail the same way.
        canary: 0,
        limits: &args.limits,
        verb: "rejecting",
        failed: FailedItems::Skip,
    };
    run.execute(
        how,
        |rec, _row| unfinished(rec, false),
        move |work| {
            let r = rejecter.clone();
            async move { r.reject(&work).await }
        },
    )
    .await
}
