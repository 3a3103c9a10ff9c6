//! `accept` (target side): accept the pending transfers addressed to the caller's account,
//! optionally activate them, attach policies and rebuild what they carried (`--carry`). Rows addressed to other accounts are left
//! to them: neither processed nor counted. The events go to the accept ledger.

use std::sync::Arc;

use crate::carry::store::SnapshotStore;
use crate::cli::{AcceptArgs, GlobalArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::accept::unfinished;
use crate::lifecycle::{AcceptOptions, Acceptor, Carrier};
use crate::run::{default_ledger, Execution, FailedItems, Run, RunSpec, UndoHistory};

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
    // Read before any AWS call: a missing or damaged transfer ledger stops nothing midway.
    let carry = match args.carry {
        false => None,
        true => {
            let from = args
                .from_ledger
                .clone()
                .unwrap_or_else(|| default_ledger(&args.manifest, LedgerKind::Transfer));
            let store = SnapshotStore::load(&from, |_| true).map_err(|e| {
                Error::Config(format!(
                    "--carry rebuilds what `transfer --carry` recorded in its ledger, and that \
                     ledger cannot be read: {e}; name it with --from-ledger"
                ))
            })?;
            tracing::info!(
                "{} certificates have a snapshot in {}",
                store.len(),
                from.display()
            );
            Some(Arc::new(Carrier::new(Arc::new(store), args.on_conflict)))
        }
    };
    let clients = run.as_target().await?;
    if carry.is_some() {
        run.add_device_endpoints(&clients).await;
    }
    let carrying = carry.is_some();
    let options = AcceptOptions {
        set_as_active: args.set_as_active,
        attach_policies: args.attach_policies,
        carry,
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
        move |rec, _row| unfinished(rec, carrying),
        move |work| {
            let a = acceptor.clone();
            async move { a.accept(&work).await }
        },
    )
    .await
}
