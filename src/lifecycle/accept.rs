//! The target-side workers: [`Acceptor`] (AcceptCertificateTransfer, then the policies the
//! operator asked for) and [`Rejecter`] (RejectCertificateTransfer). `transfer
//! --accept-profile(-template)` uses the acceptor to accept each certificate right after its
//! transfer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::work::{Mandate, Pick, Work};
use crate::certificate::cert_arn;
use crate::iot::{AccountClients, Iot};
use crate::ledger::{
    Action, ItemRecord, ItemState, LedgerError, LedgerState, LedgerWriter, Outcome, Stage, Via,
};
use crate::pipeline::{FailedOn, ItemEnd};

use super::change::Change;
use super::check::Side;
use super::item::{Item, Settled, StepEnd, ALREADY_COMPLETED};

/// What the target side still has to do with a certificate: accepted and rejected ones are
/// finished; everything else is (still) to do.
pub fn unfinished(rec: Option<&ItemRecord>) -> Pick {
    match rec.map(|r| r.state) {
        Some(ItemState::Accepted | ItemState::Rejected) => Pick::Skip,
        _ => Pick::Process,
    }
}

/// What accept does besides accepting.
#[derive(Debug, Clone, Default)]
pub struct AcceptOptions {
    /// Activate certificates on accept.
    pub set_as_active: bool,
    /// Policies to attach after accept.
    pub attach_policies: Vec<String>,
}

/// Accepts pending transfers with target-account credentials, write-ahead.
pub struct Acceptor {
    ledger: LedgerWriter,
    state: Arc<Mutex<LedgerState>>,
    /// Target account -> its clients.
    targets: HashMap<String, AccountClients>,
    options: AcceptOptions,
    max_attempts: u32,
}

impl Acceptor {
    /// A worker for the target accounts of `targets`, writing to `ledger` (whose `state` it
    /// reads to know what is left to accept).
    pub fn new(
        ledger: LedgerWriter,
        state: Arc<Mutex<LedgerState>>,
        targets: Vec<AccountClients>,
        options: AcceptOptions,
        max_attempts: u32,
    ) -> Self {
        Acceptor {
            ledger,
            state,
            targets: targets
                .into_iter()
                .map(|c| (c.account().to_string(), c))
                .collect(),
            options,
            max_attempts,
        }
    }

    /// The accounts this acceptor holds credentials of.
    pub fn accounts(&self) -> Vec<String> {
        self.targets.keys().cloned().collect()
    }

    /// Whether an item of a transfer run is the acceptor's alone: its transfer is recorded
    /// (only the accept is left) or an accept intent is open.
    pub fn takes_over(&self, work: &Work) -> bool {
        if !self.targets.contains_key(&work.row.target_account) {
            return false;
        }
        match &work.open {
            Some(open) => open.stage == Stage::Accept,
            None => {
                let state = self.state.lock().expect("ledger state");
                state.get(&work.row.certificate_id).map(|r| r.state) == Some(ItemState::Transferred)
            }
        }
    }

    /// Accepts the row's pending transfer, then attaches the target-side policies. Rows for
    /// a target without credentials are left as they are.
    pub async fn accept(&self, work: &Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let Some(clients) = self.targets.get(&row.target_account) else {
            return Ok(ItemEnd::Done);
        };
        let iot = clients.for_row(row);
        let item = Item::new(&self.ledger, row, Side::Target, self.max_attempts);
        let mut via = Via::Call;
        if let Some(open) = &work.open {
            let settled = item.settle(iot, open).await?;
            match (settled, open.action) {
                (Settled::InDoubt, _) => return Ok(ItemEnd::InDoubt),
                (Settled::TookEffect, Action::Reject) => return Ok(ItemEnd::Done),
                // A policy attachment comes after the accept: the accept is done.
                (Settled::TookEffect, Action::Accept) | (_, Action::AttachPolicy) => {
                    via = Via::Reconciled
                }
                _ if work.mandate == Mandate::SettleOnly => {
                    return Ok(ItemEnd::Failed(FailedOn::Refusal))
                }
                _ => {}
            }
        }
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        if via == Via::Call {
            let accept = Change::Accept {
                set_as_active: self.options.set_as_active,
            };
            match item.step(iot, &accept, &arn).await? {
                StepEnd::Done => {}
                // Accepted by an earlier run whose record was lost, or by hand.
                StepEnd::Refused(f) if f.code() == Some(ALREADY_COMPLETED) => {
                    via = Via::AlreadyAccepted
                }
                StepEnd::Refused(f) => return item.fail_call(Stage::Accept, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        for p in &self.options.attach_policies {
            match item
                .step(iot, &Change::AttachPolicy(p.clone()), &arn)
                .await?
            {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return item.fail_call(Stage::Accept, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        item.terminal(Stage::Accept, Outcome::Accepted, via, Some(arn))
            .await?;
        Ok(ItemEnd::Done)
    }
}

/// Rejects pending transfers with target-account credentials, write-ahead.
pub struct Rejecter {
    ledger: LedgerWriter,
    clients: AccountClients,
    reason: String,
    max_attempts: u32,
}

impl Rejecter {
    /// A worker rejecting with `reason` in `clients`' account.
    pub fn new(
        ledger: LedgerWriter,
        clients: AccountClients,
        reason: String,
        max_attempts: u32,
    ) -> Self {
        Rejecter {
            ledger,
            clients,
            reason,
            max_attempts,
        }
    }

    /// Rejects the row's pending transfer.
    pub async fn reject(&self, work: &Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let iot: &Iot = self.clients.for_row(row);
        let item = Item::new(&self.ledger, row, Side::Target, self.max_attempts);
        if let Some(open) = &work.open {
            let settled = item.settle(iot, open).await?;
            match (settled, open.action) {
                (Settled::InDoubt, _) => return Ok(ItemEnd::InDoubt),
                (Settled::TookEffect, Action::Reject) => return Ok(ItemEnd::Done),
                // An interrupted accept went through: there is nothing left to reject.
                (Settled::TookEffect, Action::Accept | Action::AttachPolicy) => {
                    item.terminal(Stage::Accept, Outcome::Accepted, Via::Reconciled, None)
                        .await?;
                    return Ok(ItemEnd::Done);
                }
                _ if work.mandate == Mandate::SettleOnly => {
                    return Ok(ItemEnd::Failed(FailedOn::Refusal))
                }
                _ => {}
            }
        }
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        let reject = Change::Reject {
            reason: self.reason.clone(),
        };
        match item.step(iot, &reject, &arn).await? {
            StepEnd::Done => {
                item.terminal(Stage::Reject, Outcome::Rejected, Via::Call, None)
                    .await?;
                Ok(ItemEnd::Done)
            }
            StepEnd::Refused(f) if f.code() == Some(ALREADY_COMPLETED) => {
                item.fail(
                    Stage::Reject,
                    ALREADY_COMPLETED,
                    format!("this account ({}) already accepted the certificate: it can no longer be rejected", scope.account),
                )
                .await
            }
            StepEnd::Refused(f) => item.fail_call(Stage::Reject, &f).await,
            StepEnd::InDoubt => Ok(ItemEnd::InDoubt),
        }
    }
}
