//! `transfer`: prepare -> transfer -> record for every certificate of the manifest, and with
//! `--accept-profile(-template)` the accept in the target account right after.

use std::collections::HashSet;
use std::sync::Arc;

use crate::carry::store::SnapshotStore;
use crate::cli::{GlobalArgs, TransferArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::{ItemState, LedgerKind};
use crate::lifecycle::{AcceptOptions, Acceptor, Allowed, Carrier, Migrator, Rollback};
use crate::lifecycle::{Mandate, Pick, Work};
use crate::pipeline::ItemEnd;
use crate::run::{Execution, FailedItems, Run, RunSpec, UndoHistory};
use crate::session::TargetProfiles;

/// Runs `transfer` (`--dry-run` is dispatched to `plan` before this).
pub async fn run(global: &GlobalArgs, args: TransferArgs) -> Result<ExitCode, Error> {
    let mut run = Run::open(
        global,
        RunSpec {
            command: "transfer",
            manifest: &args.manifest,
            files: &args.files,
            kind: LedgerKind::Transfer,
            // What prepare changed, until the certificate is transferred: a certificate
            // that fails is rolled back from it.
            undo: UndoHistory::UntilTransferred,
            pacing: &args.pacing,
        },
    )
    .await?;
    let clients = run.own_clients().await?;
    // Combined mode with --carry: each snapshot goes straight to the accept of the same run;
    // those of earlier runs (transferred, not yet accepted) come from the ledger.
    let combined = args.accept_profile.is_some() || args.accept_profile_template.is_some();
    let handover = match (args.carry, combined) {
        (true, true) => Some(Arc::new(
            SnapshotStore::load(run.ledger_path(), |_| true).map_err(Error::Ledger)?,
        )),
        _ => None,
    };
    let allowed = Allowed {
        deactivate: args.deactivate,
        detach_policies: args.detach_policies,
        detach_things: args.detach_things,
    };
    let rollback = if args.no_rollback {
        Rollback::Never
    } else {
        Rollback::OnFailure
    };
    let mut migrator = Migrator::new(
        run.writer(),
        run.state(),
        clients,
        allowed,
        rollback,
        args.pacing.max_attempts,
    )
    .with_propagation_wait(args.propagation_wait);
    if args.carry {
        migrator = migrator.with_carry(handover.clone());
    }
    let migrator = Arc::new(migrator);
    // End-to-end mode: each transfer is accepted right away with the target's credentials.
    let profiles = TargetProfiles::from_flags(
        args.accept_profile.as_deref(),
        args.accept_profile_template.as_deref(),
    );
    let acceptor = match profiles {
        None => None,
        Some(p) => {
            let targets = run
                .session
                .target_clients(&run.manifest, &p, "--accept-profile")
                .await?;
            for t in &targets {
                if handover.is_some() {
                    run.add_device_endpoints(t).await;
                }
            }
            let options = AcceptOptions {
                set_as_active: args.set_as_active,
                attach_policies: Vec::new(),
                carry: handover
                    .clone()
                    .map(|store| Arc::new(Carrier::new(store, args.on_conflict))),
            };
            let writer = run.writer();
            let acceptor = Acceptor::new(
                writer,
                run.state(),
                targets,
                options,
                args.pacing.max_attempts,
            );
            Some(Arc::new(acceptor))
        }
    };
    // Target accounts to accept for (not the acceptor itself: `pick` outlives the items,
    // and the acceptor's ledger handle must be gone before the ledger can close).
    let accepting: HashSet<String> = acceptor.iter().flat_map(|a| a.accounts()).collect();
    let how = Execution {
        concurrency: args.pacing.concurrency,
        canary: args.canary,
        limits: &args.limits,
        verb: "transferring",
        failed: FailedItems::retry_if(args.retry_failed),
    };
    let pick = move |rec: Option<&crate::ledger::ItemRecord>,
                     row: &crate::manifest::ManifestRow| {
        match rec.map(|r| r.state) {
            None | Some(ItemState::Started) | Some(ItemState::Failed) => Pick::Process,
            // Transferred by an earlier run, still to be accepted.
            Some(ItemState::Transferred) if accepting.contains(&row.target_account) => {
                Pick::Process
            }
            // Cancelled, restored, accepted or rejected certificates are never re-sent by a
            // rerun (a nightly cron job must not undo an operator's cancel).
            Some(_) => Pick::Skip,
        }
    };
    run.execute(how, pick, move |work| {
        let (m, acceptor) = (migrator.clone(), acceptor.clone());
        async move {
            let Some(a) = acceptor else {
                return m.migrate(&work).await;
            };
            if a.takes_over(&work) {
                return a.accept(&work).await;
            }
            match m.migrate(&work).await? {
                ItemEnd::Done => {
                    let next = Work {
                        open: None,
                        mandate: Mandate::Proceed,
                        ..work
                    };
                    a.accept(&next).await
                }
                end => Ok(end),
            }
        }
    })
    .await
}
