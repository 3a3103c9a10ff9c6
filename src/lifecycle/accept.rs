//! The target-side workers: [`Acceptor`] (AcceptCertificateTransfer, then the policies the
//! operator asked for) and [`Rejecter`] (RejectCertificateTransfer). `transfer
//! --accept-profile(-template)` uses the acceptor to accept each certificate right after its
//! transfer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::work::{Mandate, Pick, Work};
use crate::certificate::cert_arn;
use crate::iot::NOT_FOUND;
use crate::iot::{AccountClients, Iot};
use crate::ledger::{
    Action, Details, ItemRecord, ItemState, LedgerError, LedgerState, LedgerWriter, Outcome, Stage,
    Via,
};
use crate::pacer::Scope;
use crate::pipeline::{FailedOn, ItemEnd};

use super::carry::{no_snapshot, Carried, Carrier, NO_SNAPSHOT};
use super::change::Change;
use super::check::{self, Finding, Side};
use super::item::{Item, Settled, StepEnd, ALREADY_COMPLETED};

/// What the target side still has to do with a certificate: accepted and rejected ones are
/// finished, except that `carry` still has to rebuild what a certificate accepted without it
/// carried; everything else is (still) to do.
pub fn unfinished(rec: Option<&ItemRecord>, carry: bool) -> Pick {
    match rec.map(|r| r.state) {
        Some(ItemState::Accepted) if carry => Pick::Process,
        Some(ItemState::Accepted | ItemState::Carried | ItemState::Rejected) => Pick::Skip,
        _ => Pick::Process,
    }
}

/// What accept does besides accepting.
#[derive(Clone, Default)]
pub struct AcceptOptions {
    /// Activate certificates on accept.
    pub set_as_active: bool,
    /// Policies to attach after accept.
    pub attach_policies: Vec<String>,
    /// Rebuild what each certificate carried (`--carry`).
    pub carry: Option<Arc<Carrier>>,
}

/// Accepts pending transfers with target-account credentials, write-ahead.
pub struct Acceptor {
    ledger: LedgerWriter,
    state: Arc<Mutex<LedgerState>>,
    /// Target account -> its clients.
    targets: HashMap<String, AccountClients>,
    options: AcceptOptions,
    max_attempts: u32,
    /// Whether each policy to attach exists, per account and region (GetPolicy's answers).
    policies_known: tokio::sync::Mutex<HashMap<(Scope, String), bool>>,
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
            targets: AccountClients::by_account(targets),
            options,
            max_attempts,
            policies_known: tokio::sync::Mutex::new(HashMap::new()),
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
                // A policy attachment or a carry step comes after the accept: the accept
                // is done.
                (Settled::TookEffect, Action::Accept) | (_, Action::AttachPolicy) => {
                    via = Via::Reconciled
                }
                _ if open.stage == Stage::Carry => via = Via::Reconciled,
                _ if work.mandate == Mandate::SettleOnly => {
                    return Ok(ItemEnd::Failed(FailedOn::Refusal))
                }
                _ => {}
            }
        }
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        // Accepted by an earlier accept without --carry: only the rebuild is left.
        if self.options.carry.is_some() && via == Via::Call && self.accepted_before(row) {
            via = Via::AlreadyAccepted;
        }
        if via == Via::Call {
            let accept = Change::Accept {
                set_as_active: self.options.set_as_active,
            };
            if let Some(missing) = self.missing_policy(iot).await {
                let message =
                    format!("{missing}; nothing was changed, run again with --retry-failed");
                return item.fail(Stage::Accept, NOT_FOUND, message).await;
            }
            // Nothing to rebuild from: better left pending than accepted without its policies.
            if let Some(c) = &self.options.carry {
                if !c.has_snapshot(&row.certificate_id) {
                    return item.fail(Stage::Carry, NO_SNAPSHOT, no_snapshot()).await;
                }
            }
            match item.step(iot, &accept, &arn).await? {
                StepEnd::Done => {}
                // Accepted by an earlier run whose record was lost, or by hand. AWS answers
                // 410, or (undocumented) another refusal: a read confirms.
                StepEnd::Refused(f)
                    if f.code() == Some(ALREADY_COMPLETED) || accepted_here(&item, iot).await =>
                {
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
        let mut message = None;
        if let Some(c) = &self.options.carry {
            match c.carry(&item, iot, &arn).await? {
                Carried::Done { reused } if reused.is_empty() => {}
                Carried::Done { reused } => {
                    let reused = format!("reused (--on-conflict reuse): {}", reused.join("; "));
                    tracing::warn!(certificate = %row.certificate_id, "{reused}");
                    message = Some(reused);
                }
                Carried::Ended(end) => return Ok(end),
            }
        }
        let details = Details {
            arn: Some(arn),
            via: Some(via),
            message,
            carried: self.options.carry.is_some().then_some(true),
            ..Default::default()
        };
        item.record(Stage::Accept, Outcome::Accepted, details)
            .await?;
        Ok(ItemEnd::Done)
    }

    /// Whether this ledger records the certificate as accepted already.
    fn accepted_before(&self, row: &crate::manifest::ManifestRow) -> bool {
        let state = self.state.lock().expect("ledger state");
        state.get(&row.certificate_id).map(|r| r.state) == Some(ItemState::Accepted)
    }

    /// The first policy to attach that does not exist in `iot`'s account and region, as a
    /// message (GetPolicy, asked once per account, region and policy). AWS creates nothing
    /// on attach: better to leave the transfer pending than to accept a certificate its
    /// devices cannot use. A GetPolicy that fails otherwise (not allowed, say) decides
    /// nothing (and is not asked again): AttachPolicy will tell.
    async fn missing_policy(&self, iot: &Iot) -> Option<String> {
        let mut known = self.policies_known.lock().await;
        for p in &self.options.attach_policies {
            let key = (iot.scope().clone(), p.clone());
            let exists = match known.get(&key) {
                Some(exists) => *exists,
                None => {
                    let exists = iot.policy_exists(p).await.unwrap_or_else(|f| {
                        tracing::debug!(policy = %p, "cannot check that the policy exists: {f}");
                        true
                    });
                    *known.entry(key).or_insert(exists)
                }
            };
            if !exists {
                return Some(iot.missing("policy", p, "CreatePolicy"));
            }
        }
        None
    }
}

/// Whether `iot`'s (target) account owns the item's certificate, accepted: the read that
/// confirms an accept or reject refused because the transfer was already accepted.
async fn accepted_here(item: &Item<'_>, iot: &Iot) -> bool {
    let row = item.row();
    let finding = check::took_effect(
        Side::Target,
        iot,
        &row.certificate_id,
        &row.target_account,
        Action::Accept,
        None,
        None,
    )
    .await;
    matches!(
        finding,
        Ok(Finding {
            took_effect: Some(true),
            ..
        })
    )
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
            // Already accepted (AWS answers 410, or another refusal: a read confirms): that
            // is the item's state, not a failure.
            StepEnd::Refused(f) if accepted_here(&item, iot).await => {
                let message = format!(
                    "this account ({}) had already accepted the certificate: it can no longer \
                     be rejected ({f})",
                    scope.account
                );
                tracing::warn!(certificate = %row.certificate_id, "{message}");
                let details = Details {
                    message: Some(message),
                    via: Some(Via::AlreadyAccepted),
                    ..Default::default()
                };
                item.record(Stage::Reject, Outcome::AlreadyAccepted, details)
                    .await?;
                Ok(ItemEnd::Done)
            }
            StepEnd::Refused(f) => item.fail_call(Stage::Reject, &f).await,
            StepEnd::InDoubt => Ok(ItemEnd::InDoubt),
        }
    }
}
