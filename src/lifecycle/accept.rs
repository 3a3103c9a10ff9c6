//! The target-side workflows: [`Acceptor`] (AcceptCertificateTransfer, then the policies the
//! operator asked for and, with `--carry`, the rebuild of what the certificate carried) and
//! [`Rejecter`] (RejectCertificateTransfer). `transfer --accept-profile(-template)` composes
//! the acceptor with the migrate workflow (see `transfer_accept`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::carry::store::SnapshotStore;
use crate::carry::OnConflict;
use crate::certificate::cert_arn;
use crate::error::Error;
use crate::iot::{AccountClients, AwsCode, Iot};
use crate::ledger::{
    Action, Details, ItemRecord, ItemState, LedgerError, LedgerKind, OpenIntent, Outcome, Stage,
    UndoHistory, Via, Wait,
};
use crate::manifest::ManifestRow;
use crate::pacer::Scope;
use crate::pipeline::ItemEnd;
use crate::session::TargetCredentials;

use super::carry::{no_snapshot, Carried, Carrier, NO_SNAPSHOT};
use super::change::Change;
use super::check::{self, Effect, Side};
use super::item::{Item, Refusal, StepEnd};
use super::workflow::{AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};

/// What the target side still has to do with a certificate: accepted and rejected ones are
/// finished, except that `carry` still has to rebuild what a certificate accepted without it
/// carried; everything else is (still) to do.
pub fn unfinished(rec: Option<&ItemRecord>, carry: bool) -> bool {
    match rec.map(|r| r.state) {
        Some(ItemState::Accepted) => carry,
        Some(ItemState::Carried | ItemState::Rejected) => false,
        _ => true,
    }
}

/// The intents the target side settles (with the target's credentials): an accept's, its
/// rebuild's, a reject's. A source-side intent in the same ledger is left to its command.
pub fn settles(open: &OpenIntent) -> bool {
    matches!(open.stage, Stage::Accept | Stage::Carry | Stage::Reject)
}

/// The ledger `accept` and `reject` write.
pub const ACCEPT_LEDGER: LedgerSpec = LedgerSpec {
    kind: LedgerKind::Accept,
    undo: UndoHistory::Drop,
};

/// `--carry` on the target side: the rebuild from the snapshots a transfer recorded.
#[derive(Debug, Clone)]
pub struct CarryFrom {
    /// The transfer ledger with the snapshots.
    pub ledger: PathBuf,
    /// What to do with an object that exists in the target with another definition.
    pub on_conflict: OnConflict,
}

/// What `accept` tells the acceptor.
#[derive(Debug, Clone, Default)]
pub struct AcceptOptions {
    /// Activate certificates on accept.
    pub set_as_active: bool,
    /// Policies to attach after accept.
    pub attach_policies: Vec<String>,
    /// Rebuild what each certificate carried (`--carry`).
    pub carry: Option<CarryFrom>,
    /// Accept in every target account with these credentials (`None`: in the caller's).
    pub targets: Option<TargetCredentials>,
}

/// Accepts pending transfers with target-account credentials, write-ahead.
pub struct Acceptor {
    /// Target account -> its clients.
    targets: HashMap<String, AccountClients>,
    set_as_active: bool,
    attach_policies: Vec<String>,
    carry: Option<Carrier>,
    /// Whether each policy to attach exists, per account and region (GetPolicy's answers).
    policies_known: tokio::sync::Mutex<HashMap<(Scope, String), bool>>,
}

impl Acceptor {
    /// An acceptor for the target accounts of `targets`; `carry` rebuilds from its store.
    pub fn new(
        targets: Vec<AccountClients>,
        set_as_active: bool,
        attach_policies: Vec<String>,
        carry: Option<Carrier>,
    ) -> Self {
        Acceptor {
            targets: AccountClients::by_account(targets),
            set_as_active,
            attach_policies,
            carry,
            policies_known: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Whether the acceptor holds credentials of the row's target account.
    pub fn serves(&self, row: &ManifestRow) -> bool {
        self.targets.contains_key(&row.target_account)
    }

    /// The client for the row's target account, if the acceptor holds its credentials.
    fn client(&self, row: &ManifestRow) -> Option<&Iot> {
        self.targets
            .get(&row.target_account)
            .map(|c| c.for_row(row))
    }

    /// The target accounts the acceptor holds credentials of.
    pub fn accounts(&self) -> HashSet<String> {
        self.targets.keys().cloned().collect()
    }

    /// Accepts the row's pending transfer (unless an earlier run did: `work.resume`), then
    /// attaches the target-side policies and rebuilds what it carried. Rows for a target
    /// without credentials are left as they are.
    pub async fn accept(&self, work: &Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let Some(iot) = self.client(row) else {
            return Ok(ItemEnd::Done);
        };
        let item = work.item(Side::Target);
        let mut via = match work.resume {
            Resume::Start => Via::Call,
            Resume::AfterMainCall => Via::Reconciled,
        };
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        // Accepted by an earlier accept without --carry: only the rebuild is left.
        let accepted_before = work.record(|r| r.map(|r| r.state)) == Some(ItemState::Accepted);
        if self.carry.is_some() && via == Via::Call && accepted_before {
            via = Via::AlreadyAccepted;
        }
        if via == Via::Call {
            let accept = Change::Accept {
                set_as_active: self.set_as_active,
            };
            if let Some(refusal) = self.missing_policy(iot).await {
                return item.wait(Stage::Accept, refusal).await;
            }
            // Nothing to rebuild from: better left pending than accepted without its policies.
            if let Some(c) = &self.carry {
                if !c.has_snapshot(&row.certificate_id) {
                    let refusal = Refusal {
                        wait: Wait::Snapshot,
                        needs: vec!["no snapshot in the transfer ledger".into()],
                        code: NO_SNAPSHOT,
                        message: no_snapshot(),
                    };
                    return item.wait(Stage::Carry, refusal).await;
                }
            }
            match item.step(iot, &accept, &arn).await? {
                StepEnd::Done => {}
                // Accepted by an earlier run whose record was lost, or by hand. AWS answers
                // 410, or (undocumented) another refusal: a read confirms.
                StepEnd::Refused(f)
                    if f.is(AwsCode::TransferAlreadyCompleted)
                        || accepted_here(&item, iot).await =>
                {
                    via = Via::AlreadyAccepted
                }
                StepEnd::Refused(f) => return item.fail_call(Stage::Accept, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        for p in &self.attach_policies {
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
        if let Some(c) = &self.carry {
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
            carried: self.carry.is_some().then_some(true),
            ..Default::default()
        };
        item.record(Stage::Accept, Outcome::Accepted, details)
            .await?;
        Ok(ItemEnd::Done)
    }

    /// The first policy to attach that does not exist in `iot`'s account and region, as a
    /// refusal (GetPolicy, asked once per account, region and policy). AWS creates nothing
    /// on attach: better to leave the transfer pending than to accept a certificate its
    /// devices cannot use. A GetPolicy that fails otherwise (not allowed, say) decides
    /// nothing (and is not asked again): AttachPolicy will tell.
    async fn missing_policy(&self, iot: &Iot) -> Option<Refusal> {
        let mut known = self.policies_known.lock().await;
        for p in &self.attach_policies {
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
                let scope = iot.scope();
                return Some(Refusal {
                    wait: Wait::TargetPolicy,
                    needs: vec![format!(
                        "policy `{p}` in account {} ({})",
                        scope.account, scope.region
                    )],
                    code: AwsCode::ResourceNotFound.as_str(),
                    message: format!(
                        "{}; nothing was changed",
                        iot.missing("policy", p, "CreatePolicy")
                    ),
                });
            }
        }
        None
    }
}

/// Where accept goes on after an earlier run's intent was settled: once the accept took
/// effect (or a step after it was open: a policy attachment, a rebuild step), only what
/// comes after it is left.
pub fn accept_after_settle(open: &OpenIntent, took_effect: bool) -> AfterSettle {
    let accepted = (open.action == Action::Accept && took_effect)
        || open.action == Action::AttachPolicy
        || open.stage == Stage::Carry;
    AfterSettle::Continue(if accepted {
        Resume::AfterMainCall
    } else {
        Resume::Start
    })
}

impl Workflow for Acceptor {
    type Options = AcceptOptions;
    const COMMAND: &'static str = "accept";

    fn ledger(_: &AcceptOptions) -> LedgerSpec {
        ACCEPT_LEDGER
    }

    async fn connect(setup: &mut Setup<'_>, options: AcceptOptions) -> Result<Self, Error> {
        // Read before any AWS call: a missing or damaged transfer ledger stops nothing midway.
        let carry = match &options.carry {
            None => None,
            Some(from) => {
                let store = SnapshotStore::load(&from.ledger, |_| true).map_err(|e| {
                    Error::Config(format!(
                        "--carry rebuilds what `transfer --carry` recorded in its ledger, and that \
                         ledger cannot be read: {e}; name it with --from-ledger"
                    ))
                })?;
                // Detail: a clean run is silent on stderr (-v shows it).
                tracing::debug!(
                    "snapshots of {} read from {}",
                    crate::output::count(store.len(), "certificate"),
                    from.ledger.display()
                );
                Some(Carrier::new(Arc::new(store), from.on_conflict))
            }
        };
        let targets = setup.targets(options.targets.as_ref()).await?;
        if carry.is_some() {
            for clients in &targets {
                setup.add_device_endpoints(clients).await;
            }
        }
        Ok(Acceptor::new(
            targets,
            options.set_as_active,
            options.attach_policies,
            carry,
        ))
    }

    fn verb(&self) -> &'static str {
        "accepting"
    }

    fn in_scope(&self, _rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        self.serves(row)
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        unfinished(rec, self.carry.is_some())
    }

    fn settler(&self, row: &ManifestRow, open: &OpenIntent) -> Option<(&Iot, Side)> {
        settles(open)
            .then(|| self.client(row))
            .flatten()
            .map(|iot| (iot, Side::Target))
    }

    fn after_settle(&self, _row: &ManifestRow, open: &OpenIntent, took: bool) -> AfterSettle {
        accept_after_settle(open, took)
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.accept(&work).await
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
        Ok(Effect {
            took_effect: Some(true),
            ..
        })
    )
}

/// What `reject` tells the rejecter.
#[derive(Debug, Clone)]
pub struct RejectOptions {
    /// Why; the source account sees it.
    pub reason: String,
    /// Reject in every target account with these credentials (`None`: in the caller's).
    pub targets: Option<TargetCredentials>,
}

/// Rejects pending transfers with target-account credentials, write-ahead.
pub struct Rejecter {
    /// Target account -> its clients.
    targets: HashMap<String, AccountClients>,
    reason: String,
}

impl Rejecter {
    /// The client for the row's target account, if the rejecter holds its credentials.
    fn client(&self, row: &ManifestRow) -> Option<&Iot> {
        self.targets
            .get(&row.target_account)
            .map(|c| c.for_row(row))
    }

    /// Rejects the row's pending transfer.
    pub async fn reject(&self, work: &Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let Some(iot) = self.client(row) else {
            return Ok(ItemEnd::Done);
        };
        let item = work.item(Side::Target);
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

/// Where reject goes on after an earlier run's intent was settled: an accept that went
/// through (or a step after it) leaves nothing to reject, and the certificate is recorded
/// accepted; anything else is rejected now.
pub fn reject_after_settle(open: &OpenIntent, took_effect: bool) -> AfterSettle {
    if took_effect && matches!(open.action, Action::Accept | Action::AttachPolicy) {
        return AfterSettle::Ends {
            stage: Stage::Accept,
            outcome: Outcome::Accepted,
        };
    }
    AfterSettle::Continue(Resume::Start)
}

impl Workflow for Rejecter {
    type Options = RejectOptions;
    const COMMAND: &'static str = "reject";

    fn ledger(_: &RejectOptions) -> LedgerSpec {
        ACCEPT_LEDGER
    }

    async fn connect(setup: &mut Setup<'_>, options: RejectOptions) -> Result<Self, Error> {
        Ok(Rejecter {
            targets: AccountClients::by_account(setup.targets(options.targets.as_ref()).await?),
            reason: options.reason,
        })
    }

    fn verb(&self) -> &'static str {
        "rejecting"
    }

    fn in_scope(&self, _rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        self.targets.contains_key(&row.target_account)
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        unfinished(rec, false)
    }

    fn settler(&self, row: &ManifestRow, open: &OpenIntent) -> Option<(&Iot, Side)> {
        let iot = self.client(row)?;
        settles(open).then_some((iot, Side::Target))
    }

    fn after_settle(&self, _row: &ManifestRow, open: &OpenIntent, took: bool) -> AfterSettle {
        reject_after_settle(open, took)
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.reject(&work).await
    }
}
