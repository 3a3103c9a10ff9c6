//! `cancel`: CancelCertificateTransfer for every certificate the transfer ledger records as
//! transferred, and with `--restore` undo of what prepare changed (re-attach the detached
//! policies and things, re-activate what was ACTIVE), from what the ledger recorded.
//!
//! The events go to the transfer's own ledger, so a later `transfer` rerun knows these
//! certificates were cancelled and leaves them alone. Every call is write-ahead; a certificate
//! the target already accepted is reported as accepted, not as a failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cli::{CancelArgs, GlobalArgs};
use crate::cmd::reconcile::{self, Item, StepEnd, ALREADY_COMPLETED};
use crate::cmd::{self, Pick, Run, Work};
use crate::error::{Error, ExitCode};
use crate::iot::{Iot, OutgoingIndex};
use crate::ledger::{
    Action, Details, ItemRecord, ItemState, LedgerError, LedgerKind, LedgerState, LedgerWriter,
    Outcome, Stage, Undo,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;

/// Runs `cancel`.
pub async fn run(global: &GlobalArgs, args: CancelArgs) -> Result<ExitCode, Error> {
    let restore = args.restore;
    let mut run = Run::open(
        global,
        &args.manifest,
        &args.files,
        LedgerKind::Transfer,
        restore,
        &args.pacing,
    )
    .await?;
    run.command = "cancel";
    let clients = run.source_clients().await?;
    let outgoing = clients
        .iter()
        .map(|(region, iot)| (region.clone(), Arc::new(OutgoingIndex::new(iot.clone()))))
        .collect();
    // Certificates the transfer never touched (or refused untouched) are none of cancel's
    // business: they are neither processed nor counted.
    run.restrict_to(Box::new(|rec, _row| rec.is_some_and(concerns_cancel)));
    let canceller = Arc::new(Canceller {
        ledger: run.writer.clone(),
        state: run.state.clone(),
        clients,
        outgoing,
        restore,
        max_attempts: args.pacing.max_attempts.max(1),
    });
    // Cancel's own failures are tried again on every run (there is nothing to fix by hand
    // first, unlike a transfer refused for a missing flag); `pick` decides.
    run.execute(
        args.pacing.concurrency,
        &args.limits,
        if restore {
            "cancelling and restoring"
        } else {
            "cancelling"
        },
        true,
        move |rec, _row| pick(rec, restore),
        move |work| {
            let c = canceller.clone();
            async move { c.cancel(work).await }
        },
    )
    .await
}

/// Whether a ledger record is something cancel acts on or reports.
fn concerns_cancel(rec: &ItemRecord) -> bool {
    if rec.open_intent.is_some() {
        return true;
    }
    match rec.state {
        ItemState::Transferred
        | ItemState::Cancelled
        | ItemState::Restored
        | ItemState::Accepted
        | ItemState::Rejected => true,
        ItemState::Failed => own_failure(rec) || has_undo(rec),
        ItemState::Started => has_undo(rec),
    }
}

/// A failure of `cancel` itself (as opposed to one of the transfer's).
fn own_failure(rec: &ItemRecord) -> bool {
    rec.failure
        .as_ref()
        .is_some_and(|f| matches!(f.stage, Stage::Cancel | Stage::Restore))
}

/// Prepare changed something that restore has not undone yet (known only with `--restore`,
/// which keeps that history).
fn has_undo(rec: &ItemRecord) -> bool {
    rec.undo.as_ref().is_some_and(|u| !u.is_empty())
}

/// What cancel does with a certificate, given what the ledger says of it.
fn pick(rec: Option<&ItemRecord>, restore: bool) -> Pick {
    let Some(rec) = rec else { return Pick::Skip };
    let wanted = match rec.state {
        ItemState::Transferred => true,
        ItemState::Cancelled => restore,
        // Prepare ran (partly, or fully) but the transfer never happened or failed.
        ItemState::Started => restore && has_undo(rec),
        ItemState::Failed => own_failure(rec) || (restore && has_undo(rec)),
        ItemState::Restored | ItemState::Accepted | ItemState::Rejected => false,
    };
    if wanted {
        Pick::Process
    } else {
        Pick::Skip
    }
}

/// Everything one certificate's cancel needs.
struct Canceller {
    ledger: LedgerWriter,
    state: Arc<Mutex<LedgerState>>,
    /// IoT client per region (`None` = the run's default region).
    clients: HashMap<Option<String>, Iot>,
    outgoing: HashMap<Option<String>, Arc<OutgoingIndex>>,
    restore: bool,
    max_attempts: u32,
}

impl Canceller {
    fn iot(&self, row: &ManifestRow) -> &Iot {
        cmd::for_region(&self.clients, row).expect("a client for every manifest region")
    }

    fn outgoing(&self, row: &ManifestRow) -> &OutgoingIndex {
        cmd::for_region(&self.outgoing, row).expect("an outgoing index for every manifest region")
    }

    /// The ledger's record of the certificate as it stands now.
    fn record(&self, row: &ManifestRow) -> Option<ItemRecord> {
        self.state
            .lock()
            .expect("ledger state")
            .get(&row.certificate_id)
            .cloned()
    }

    async fn cancel(&self, work: Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let item = Item::new(&self.ledger, row, self.max_attempts);
        let iot = self.iot(row);
        if let Some(open) = &work.open {
            let finding = reconcile::source_check(
                iot,
                self.outgoing(row),
                &row.certificate_id,
                &row.target_account,
                open.action,
                open.subject.as_deref(),
            )
            .await;
            let via = || Details {
                via: Some("reconciled".into()),
                ..Default::default()
            };
            match finding {
                Ok(f) => match (f.took_effect, open.action) {
                    (Some(true), Action::Transfer) => {
                        item.record(Stage::Transfer, Outcome::Transferred, via())
                            .await?
                    }
                    (Some(true), Action::Accept) => {
                        item.record(Stage::Accept, Outcome::Accepted, via()).await?
                    }
                    (Some(true), Action::Cancel) => {
                        item.record(Stage::Cancel, Outcome::Cancelled, via())
                            .await?
                    }
                    (Some(took), _) => item.settle(open, took).await?,
                    (None, _) => return Ok(ItemEnd::InDoubt),
                },
                Err(e) => {
                    tracing::warn!(certificate = %row.certificate_id, "still in doubt: cannot reconcile: {e}");
                    return Ok(ItemEnd::InDoubt);
                }
            }
            // Decide afresh from the ledger as it now stands (a transfer found done is cancelled).
            if pick(self.record(row).as_ref(), self.restore) == Pick::Skip {
                return Ok(ItemEnd::Done);
            }
        }

        let info = match iot.describe(&row.certificate_id).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                return self
                    .already_accepted(&item, "the certificate is no longer in the source account")
                    .await
            }
            Err(f) => return item.fail_call(Stage::Cancel, &f).await,
        };
        let state = self.record(row).map(|r| r.state);
        if info.status == "PENDING_TRANSFER" {
            let details = Details {
                action: Some(Action::Cancel),
                ..Default::default()
            };
            let check = || {
                reconcile::source_check(
                    iot,
                    self.outgoing(row),
                    &row.certificate_id,
                    &row.target_account,
                    Action::Cancel,
                    None,
                )
            };
            match item
                .step(
                    Stage::Cancel,
                    details,
                    || iot.cancel(&row.certificate_id),
                    check,
                )
                .await?
            {
                StepEnd::Done => {
                    let details = Details {
                        arn: Some(info.arn.clone()),
                        via: Some("call".into()),
                        ..Default::default()
                    };
                    item.record(Stage::Cancel, Outcome::Cancelled, details)
                        .await?;
                }
                StepEnd::Refused(f) if f.code() == Some(ALREADY_COMPLETED) => {
                    return self.already_accepted(&item, &f.error.message).await;
                }
                StepEnd::Refused(f) => return item.fail_call(Stage::Cancel, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        } else if state == Some(ItemState::Transferred) {
            // The ledger says pending, AWS says not: cancelled or rejected meanwhile.
            let details = Details {
                via: Some("not_pending".into()),
                message: Some(format!(
                    "the transfer was no longer pending (status {})",
                    info.status
                )),
                ..Default::default()
            };
            item.record(Stage::Cancel, Outcome::Cancelled, details)
                .await?;
        }
        if !self.restore {
            return Ok(ItemEnd::Done);
        }
        self.restore(&item, row, iot, &info.arn).await
    }

    async fn already_accepted(
        &self,
        item: &Item<'_>,
        message: &str,
    ) -> Result<ItemEnd, LedgerError> {
        let details = Details {
            message: Some(format!("the target already accepted it: {message}")),
            ..Default::default()
        };
        item.record(Stage::Cancel, Outcome::AlreadyAccepted, details)
            .await?;
        Ok(ItemEnd::Done)
    }

    /// Re-attaches what prepare detached, then re-activates what it deactivated (last, so
    /// that devices reconnect to a certificate that has everything back).
    async fn restore(
        &self,
        item: &Item<'_>,
        row: &ManifestRow,
        iot: &Iot,
        arn: &str,
    ) -> Result<ItemEnd, LedgerError> {
        let undo: Undo = self
            .record(row)
            .and_then(|r| r.undo.map(|u| *u))
            .unwrap_or_default();
        let check = |action: Action, subject: Option<String>| {
            move || {
                let subject = subject.clone();
                async move {
                    reconcile::source_check(
                        iot,
                        self.outgoing(row),
                        &row.certificate_id,
                        &row.target_account,
                        action,
                        subject.as_deref(),
                    )
                    .await
                }
            }
        };
        for p in &undo.policies {
            let details = Details {
                action: Some(Action::ReattachPolicy),
                policy: Some(p.clone()),
                ..Default::default()
            };
            let call = || iot.attach_policy(p, arn);
            let end = item
                .step(
                    Stage::Restore,
                    details,
                    call,
                    check(Action::ReattachPolicy, Some(p.clone())),
                )
                .await?;
            if let Some(end) = self.step_failed(item, end).await? {
                return Ok(end);
            }
        }
        for t in &undo.things {
            let details = Details {
                action: Some(Action::ReattachThing),
                thing: Some(t.clone()),
                ..Default::default()
            };
            let call = || iot.attach_thing(t, arn);
            let end = item
                .step(
                    Stage::Restore,
                    details,
                    call,
                    check(Action::ReattachThing, Some(t.clone())),
                )
                .await?;
            if let Some(end) = self.step_failed(item, end).await? {
                return Ok(end);
            }
        }
        if undo.previous_status.as_deref() == Some("ACTIVE") {
            let details = Details {
                action: Some(Action::Reactivate),
                previous_status: Some("INACTIVE".into()),
                ..Default::default()
            };
            let call = || iot.update_status(&row.certificate_id, "ACTIVE");
            let end = item
                .step(
                    Stage::Restore,
                    details,
                    call,
                    check(Action::Reactivate, None),
                )
                .await?;
            if let Some(end) = self.step_failed(item, end).await? {
                return Ok(end);
            }
        }
        item.record(Stage::Restore, Outcome::Restored, Details::default())
            .await?;
        Ok(ItemEnd::Done)
    }

    /// `None` when the step is done; else how the item ends.
    async fn step_failed(
        &self,
        item: &Item<'_>,
        end: StepEnd,
    ) -> Result<Option<ItemEnd>, LedgerError> {
        match end {
            StepEnd::Done => Ok(None),
            StepEnd::Refused(f) => Ok(Some(item.fail_call(Stage::Restore, &f).await?)),
            StepEnd::InDoubt => Ok(Some(ItemEnd::InDoubt)),
        }
    }
}
