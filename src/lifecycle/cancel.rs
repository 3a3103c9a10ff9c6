//! The cancel worker: CancelCertificateTransfer of a certificate the transfer ledger records
//! as transferred, and with restore the undo of what prepare changed (re-attach the detached
//! policies and things, re-activate what was ACTIVE), from what the ledger recorded.
//!
//! The events go to the transfer's own ledger, so a later `transfer` rerun knows these
//! certificates were cancelled and leaves them alone. A certificate the target already
//! accepted is recorded as accepted, not as a failure.

use std::sync::{Arc, Mutex};

use super::work::{Pick, Work};
use crate::certificate::CertStatus;
use crate::iot::{AccountClients, Iot};
use crate::ledger::{
    Details, ItemRecord, ItemState, LedgerError, LedgerState, LedgerWriter, Outcome, Stage, Via,
};
use crate::pipeline::ItemEnd;

use super::change::Change;
use super::check::{self, Side, SourceView};
use super::item::{Item, Settled, StepEnd, ALREADY_COMPLETED};

/// Whether cancel also undoes prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// Only cancel the transfer.
    No,
    /// Cancel, then re-attach and re-activate what prepare changed (`--restore`).
    Yes,
}

/// Whether a ledger record is something cancel acts on or reports.
pub fn concerns_cancel(rec: &ItemRecord) -> bool {
    if rec.open_intent.is_some() {
        return true;
    }
    match rec.state {
        ItemState::Transferred
        | ItemState::Cancelled
        | ItemState::Restored
        | ItemState::Accepted
        | ItemState::Carried
        | ItemState::Rejected
        | ItemState::Registered
        | ItemState::Retired => true,
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

/// Prepare changed something that restore has not undone yet (known only when the ledger was
/// read with the undo history).
fn has_undo(rec: &ItemRecord) -> bool {
    rec.undo.as_ref().is_some_and(|u| !u.is_empty())
}

/// What cancel does with a certificate, given what the ledger says of it.
pub fn pick(rec: Option<&ItemRecord>, restore: Restore) -> Pick {
    let Some(rec) = rec else { return Pick::Skip };
    let restore = restore == Restore::Yes;
    let wanted = match rec.state {
        ItemState::Transferred => true,
        ItemState::Cancelled => restore,
        // Prepare ran (partly, or fully) but the transfer never happened or failed.
        ItemState::Started => restore && has_undo(rec),
        ItemState::Failed => own_failure(rec) || (restore && has_undo(rec)),
        ItemState::Restored
        | ItemState::Accepted
        | ItemState::Carried
        | ItemState::Rejected
        | ItemState::Registered
        | ItemState::Retired => false,
    };
    if wanted {
        Pick::Process
    } else {
        Pick::Skip
    }
}

/// Cancels transfers (and undoes prepare) with the source account's credentials.
pub struct Canceller {
    ledger: LedgerWriter,
    state: Arc<Mutex<LedgerState>>,
    clients: AccountClients,
    restore: Restore,
    max_attempts: u32,
}

impl Canceller {
    /// A worker writing to the transfer ledger through `ledger`, reading its `state`.
    pub fn new(
        ledger: LedgerWriter,
        state: Arc<Mutex<LedgerState>>,
        clients: AccountClients,
        restore: Restore,
        max_attempts: u32,
    ) -> Self {
        Canceller {
            ledger,
            state,
            clients,
            restore,
            max_attempts,
        }
    }

    /// What `f` makes of the ledger's record of the certificate as it stands now.
    fn with_record<T>(&self, id: &str, f: impl FnOnce(Option<&ItemRecord>) -> T) -> T {
        f(self.state.lock().expect("ledger state").get(id).as_ref())
    }

    /// Cancels (and restores) one certificate.
    pub async fn cancel(&self, work: &Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let id = row.certificate_id.as_str();
        let item = Item::new(&self.ledger, row, Side::Source, self.max_attempts);
        let iot = self.clients.for_row(row);
        if let Some(open) = &work.open {
            if item.settle(iot, open).await? == Settled::InDoubt {
                return Ok(ItemEnd::InDoubt);
            }
            // Decide afresh from the ledger as it now stands (a transfer found done is cancelled).
            if self.with_record(id, |rec| pick(rec, self.restore)) == Pick::Skip {
                return Ok(ItemEnd::Done);
            }
        }

        let info = match check::source_view(iot, id).await {
            Ok(SourceView::Owned(info)) => info,
            Ok(SourceView::Gone(why)) => return already_accepted(&item, &why).await,
            Err(f) => return item.fail_call(Stage::Cancel, &f).await,
        };
        let state = self.with_record(id, |rec| rec.map(|r| r.state));
        if info.status == CertStatus::PendingTransfer {
            match item.step(iot, &Change::Cancel, &info.arn).await? {
                StepEnd::Done => {
                    item.terminal(
                        Stage::Cancel,
                        Outcome::Cancelled,
                        Via::Call,
                        Some(info.arn.clone()),
                    )
                    .await?;
                }
                StepEnd::Refused(f) if f.code() == Some(ALREADY_COMPLETED) => {
                    return already_accepted(&item, &f.error.message).await;
                }
                StepEnd::Refused(f) => return item.fail_call(Stage::Cancel, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        } else if state == Some(ItemState::Transferred) {
            // The ledger says pending, AWS says not: cancelled or rejected meanwhile.
            let details = Details {
                via: Some(Via::NotPending),
                message: Some(format!(
                    "the transfer was no longer pending (status {})",
                    info.status
                )),
                ..Default::default()
            };
            item.record(Stage::Cancel, Outcome::Cancelled, details)
                .await?;
        }
        if self.restore == Restore::No {
            return Ok(ItemEnd::Done);
        }
        self.undo_prepare(&item, iot, &info.arn).await
    }

    /// Re-attaches what prepare detached, then re-activates what it deactivated.
    async fn undo_prepare(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
    ) -> Result<ItemEnd, LedgerError> {
        let undo = self
            .with_record(&item.row().certificate_id, |rec| {
                rec.and_then(|r| r.undo.cloned())
            })
            .unwrap_or_default();
        item.restore(iot, &undo, arn).await
    }
}

/// The target accepted the certificate before cancel reached it: not a failure.
async fn already_accepted(item: &Item<'_>, message: &str) -> Result<ItemEnd, LedgerError> {
    let details = Details {
        message: Some(format!("the target already accepted it: {message}")),
        ..Default::default()
    };
    item.record(Stage::Cancel, Outcome::AlreadyAccepted, details)
        .await?;
    Ok(ItemEnd::Done)
}
