//! The cancel workflow: CancelCertificateTransfer of a certificate the transfer ledger records
//! as transferred, and with restore the undo of what prepare changed (re-attach the detached
//! policies and things, re-activate what was ACTIVE), from what the ledger recorded.
//!
//! The events go to the transfer's own ledger, so a later `transfer` rerun knows these
//! certificates were cancelled and leaves them alone. A certificate the target already
//! accepted is recorded as accepted, not as a failure.

use crate::certificate::CertStatus;
use crate::error::Error;
use crate::iot::{AccountClients, AwsCode, Iot};
use crate::ledger::{
    Details, ItemRecord, ItemState, LedgerError, LedgerKind, OpenIntent, Outcome, Stage,
    UndoHistory, Via,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;

use super::change::Change;
use super::check::{self, Side, SourceView};
use super::item::{Item, StepEnd};
use super::workflow::{AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};

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
        ItemState::HandedOff => false,
        ItemState::Failed => own_failure(rec) || has_undo(rec),
        ItemState::Started | ItemState::Waiting => has_undo(rec),
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

/// Whether cancel still has work with a certificate, given what the ledger says of it.
pub fn wanted(rec: Option<&ItemRecord>, restore: Restore) -> bool {
    let Some(rec) = rec else { return false };
    let restore = restore == Restore::Yes;
    match rec.state {
        ItemState::Transferred => true,
        ItemState::Cancelled => restore,
        // Prepare ran (partly, or fully) but the transfer never happened or failed.
        ItemState::Started | ItemState::Waiting => restore && has_undo(rec),
        ItemState::Failed => own_failure(rec) || (restore && has_undo(rec)),
        ItemState::Restored
        | ItemState::Accepted
        | ItemState::Carried
        | ItemState::Rejected
        | ItemState::Registered
        | ItemState::Retired
        | ItemState::HandedOff => false,
    }
}

/// Cancels transfers (and undoes prepare) with the source account's credentials.
pub struct Canceller {
    clients: AccountClients,
    restore: Restore,
}

impl Canceller {
    /// Cancels (and restores) one certificate.
    pub async fn cancel(&self, work: &Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let id = row.certificate_id.as_str();
        let item = work.item(Side::Source);
        let iot = self.clients.for_row(row);
        let info = match check::source_view(iot, id).await {
            Ok(SourceView::Owned(info)) => info,
            Ok(SourceView::Gone(why)) => return already_accepted(&item, &why).await,
            Err(f) => return item.fail_call(Stage::Cancel, &f).await,
        };
        let state = work.record(|rec| rec.map(|r| r.state));
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
                StepEnd::Refused(f) if f.is(AwsCode::TransferAlreadyCompleted) => {
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
        // Re-attach what prepare detached, then re-activate what it deactivated.
        let undo = work
            .record(|rec| rec.and_then(|r| r.undo.cloned()))
            .unwrap_or_default();
        item.restore(iot, &undo, &info.arn).await
    }
}

impl Workflow for Canceller {
    type Options = Restore;
    const COMMAND: &'static str = "cancel";

    /// The transfer's own ledger, so that a later `transfer` rerun knows these certificates
    /// were cancelled; only restore needs what prepare changed.
    fn ledger(restore: &Restore) -> LedgerSpec {
        LedgerSpec {
            kind: LedgerKind::Transfer,
            undo: match restore {
                Restore::Yes => UndoHistory::Keep,
                Restore::No => UndoHistory::Drop,
            },
        }
    }

    async fn connect(setup: &mut Setup<'_>, restore: Restore) -> Result<Self, Error> {
        Ok(Canceller {
            clients: setup.own_clients().await?,
            restore,
        })
    }

    fn verb(&self) -> &'static str {
        match self.restore {
            Restore::Yes => "cancelling and restoring",
            Restore::No => "cancelling",
        }
    }

    /// Certificates the transfer never touched (or refused untouched) are none of cancel's
    /// business: they are neither processed nor counted.
    fn in_scope(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        rec.is_some_and(concerns_cancel)
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        wanted(rec, self.restore)
    }

    /// Cancel settles whatever the transfer ledger left open, with the source's credentials.
    fn settler(&self, row: &ManifestRow, _open: &OpenIntent) -> Option<(&Iot, Side)> {
        Some((self.clients.for_row(row), Side::Source))
    }

    /// What the ledger now says decides (a transfer found done is cancelled).
    fn after_settle(&self, _row: &ManifestRow, _open: &OpenIntent, _took: bool) -> AfterSettle {
        AfterSettle::Continue(Resume::Start)
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.cancel(&work).await
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
