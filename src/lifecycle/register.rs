//! The zero-downtime workflow: [`Registrar`] registers the source's certificate in the target
//! (RegisterCertificateWithoutCA with the PEM DescribeCertificate returns) and, with
//! `--carry`, rebuilds what it carries there; nothing changes in the source. [`Retirer`]
//! retires the source's copy afterwards, only once the target holds it ACTIVE, and only as
//! far as the flags say.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::carry::{Carried, Carrier};
use super::change::{prepare_changes, Change};
use super::check::Side;
use super::item::{Item, Settled, StepEnd};
use super::observe::{observe, Observed};
use super::work::{Mandate, Pick, Work};
use crate::carry::read::SnapshotReader;
use crate::carry::store::SnapshotStore;
use crate::certificate::{cert_arn, CertStatus};
use crate::iot::{AccountClients, Iot};
use crate::ledger::{
    Details, ItemRecord, ItemState, LedgerError, LedgerState, LedgerWriter, Outcome, Stage, Via,
};
use crate::pipeline::{FailedOn, ItemEnd};

/// What `register` still has to do with a certificate: registered ones are finished.
pub fn unregistered(rec: Option<&ItemRecord>) -> Pick {
    match rec.map(|r| r.state) {
        Some(ItemState::Registered) => Pick::Skip,
        _ => Pick::Process,
    }
}

/// What `register --carry` adds: the snapshot, read in the source, and the rebuild.
pub struct RegisterCarry {
    reader: SnapshotReader,
    store: Arc<SnapshotStore>,
    carrier: Carrier,
}

impl RegisterCarry {
    /// Rebuilds with `on_conflict` for objects that differ.
    pub fn new(on_conflict: crate::carry::OnConflict) -> Self {
        let store = Arc::new(SnapshotStore::new());
        RegisterCarry {
            reader: SnapshotReader::new(),
            carrier: Carrier::new(store.clone(), on_conflict),
            store,
        }
    }
}

/// Registers certificates of the source account in their target accounts.
pub struct Registrar {
    ledger: LedgerWriter,
    source: AccountClients,
    /// Target account -> its clients.
    targets: HashMap<String, AccountClients>,
    status: CertStatus,
    carry: Option<RegisterCarry>,
    max_attempts: u32,
}

impl Registrar {
    /// A worker reading the source through `source`, registering with `status` through
    /// `targets`.
    pub fn new(
        ledger: LedgerWriter,
        source: AccountClients,
        targets: Vec<AccountClients>,
        status: CertStatus,
        carry: Option<RegisterCarry>,
        max_attempts: u32,
    ) -> Self {
        Registrar {
            ledger,
            source,
            targets: AccountClients::by_account(targets),
            status,
            carry,
            max_attempts,
        }
    }

    /// Registers the row's certificate in its target (once: a copy the target holds already
    /// is found, not registered again), then rebuilds what it carries.
    pub async fn register(&self, work: &Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let Some(target) = self.targets.get(&row.target_account) else {
            return Ok(ItemEnd::Done);
        };
        let iot = target.for_row(row);
        let source = self.source.for_row(row);
        let item = Item::new(&self.ledger, row, Side::Target, self.max_attempts);
        let mut registered = false;
        if let Some(open) = &work.open {
            match item.settle(iot, open).await? {
                Settled::InDoubt => return Ok(ItemEnd::InDoubt),
                // A carry step comes after the registration.
                Settled::TookEffect => registered = true,
                _ if open.stage == Stage::Carry => registered = true,
                _ if work.mandate == Mandate::SettleOnly => {
                    return Ok(ItemEnd::Failed(FailedOn::Refusal))
                }
                Settled::NotDone => {}
            }
        }
        let id = &row.certificate_id;
        let (info, pem) = match source.describe_with_pem(id).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                let message = format!(
                    "certificate not found in the source account ({})",
                    source.scope().region
                );
                return item
                    .fail(Stage::Register, "ResourceNotFoundException", message)
                    .await;
            }
            Err(f) => return item.fail_call(Stage::Register, &f).await,
        };
        if !matches!(info.status, CertStatus::Active | CertStatus::Inactive) {
            let message = format!(
                "certificate is {} in the source; only ACTIVE or INACTIVE certificates are registered",
                info.status
            );
            return item
                .fail(Stage::Register, "CertificateStateException", message)
                .await;
        }
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, id);
        if let Some(carry) = &self.carry {
            if let Some(end) = self.snapshot(carry, &item, source, &info.arn).await? {
                return Ok(end);
            }
        }
        let mut via = Via::Call;
        if registered {
            via = Via::Reconciled;
        } else if let Some(held) = self.held(&item, iot).await? {
            via = held;
        } else {
            let change = Change::Register {
                pem,
                status: self.status.clone(),
            };
            match item.step(iot, &change, &arn).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return item.fail_call(Stage::Register, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        let mut message = None;
        if let Some(carry) = &self.carry {
            match carry.carrier.carry(&item, iot, &arn).await? {
                Carried::Done { reused } if reused.is_empty() => {}
                Carried::Done { reused } => {
                    message = Some(format!(
                        "reused (--on-conflict reuse): {}",
                        reused.join("; ")
                    ));
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
        item.record(Stage::Register, Outcome::Registered, details)
            .await?;
        Ok(ItemEnd::Done)
    }

    /// Whether the target holds a copy already (registered by an earlier run whose record
    /// was lost, or by hand): `Some(via)`, and nothing is registered again. A copy pending
    /// transfer there, or another status than asked, is the operator's to sort out: left as
    /// it is.
    async fn held(&self, item: &Item<'_>, iot: &Iot) -> Result<Option<Via>, LedgerError> {
        match iot.describe(&item.row().certificate_id).await {
            Ok(Some(info)) if info.owner.as_deref() == Some(iot.scope().account.as_str()) => {
                Ok(Some(Via::Reconciled))
            }
            _ => Ok(None),
        }
    }

    /// Reads and records what the certificate carries (the source is not changed, so any
    /// time before the rebuild will do). `Some`: the item ended.
    async fn snapshot(
        &self,
        carry: &RegisterCarry,
        item: &Item<'_>,
        source: &Iot,
        source_arn: &str,
    ) -> Result<Option<ItemEnd>, LedgerError> {
        let read = async {
            let policies = source.attached_policies(source_arn).await?;
            let things = source.principal_things(source_arn).await?;
            carry.reader.snapshot(source, &policies, &things).await
        };
        let snapshot = match read.await {
            Ok(s) => s,
            Err(f) => return Ok(Some(item.fail_call(Stage::Register, &f).await?)),
        };
        carry
            .store
            .insert(&item.row().certificate_id, snapshot.clone());
        let details = Details {
            snapshot: Some(Box::new(snapshot)),
            ..Default::default()
        };
        item.record(Stage::Register, Outcome::Snapshot, details)
            .await?;
        Ok(None)
    }
}

/// What `retire` still has to do with a certificate: retired ones are finished (a ledger
/// records one retirement; more steps later go to another `--ledger`).
pub fn unretired(rec: Option<&ItemRecord>) -> Pick {
    match rec.map(|r| r.state) {
        Some(ItemState::Retired) => Pick::Skip,
        _ => Pick::Process,
    }
}

/// The destructive steps `retire` may take on the source's copy (each only if its flag
/// was given).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetireSteps {
    /// `--deactivate`.
    pub deactivate: bool,
    /// `--detach-policies`.
    pub detach_policies: bool,
    /// `--detach-things`.
    pub detach_things: bool,
}

/// Retires source copies once their target holds the certificate ACTIVE.
pub struct Retirer {
    ledger: LedgerWriter,
    state: Arc<Mutex<LedgerState>>,
    source: AccountClients,
    targets: HashMap<String, AccountClients>,
    steps: RetireSteps,
    max_attempts: u32,
}

/// The error code of a row whose target does not hold the certificate ACTIVE.
pub const NOT_IN_TARGET: &str = "NotActiveInTarget";

impl Retirer {
    /// A worker changing the source through `source`, reading the targets through `targets`,
    /// keeping what it changed in the ledger's `state`.
    pub fn new(
        ledger: LedgerWriter,
        state: Arc<Mutex<LedgerState>>,
        source: AccountClients,
        targets: Vec<AccountClients>,
        steps: RetireSteps,
        max_attempts: u32,
    ) -> Self {
        Retirer {
            ledger,
            state,
            source,
            targets: AccountClients::by_account(targets),
            steps,
            max_attempts,
        }
    }

    /// Confirms that the target holds the certificate ACTIVE, then takes the steps asked
    /// for, write-ahead (what they changed is recorded, for undo).
    pub async fn retire(&self, work: &Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let Some(target) = self.targets.get(&row.target_account) else {
            return Ok(ItemEnd::Done);
        };
        let iot = self.source.for_row(row);
        let item = Item::new(&self.ledger, row, Side::Source, self.max_attempts);
        if let Some(open) = &work.open {
            match item.settle(iot, open).await? {
                Settled::InDoubt => return Ok(ItemEnd::InDoubt),
                _ if work.mandate == Mandate::SettleOnly => {
                    return Ok(ItemEnd::Failed(FailedOn::Refusal))
                }
                _ => {}
            }
        }
        let id = &row.certificate_id;
        let there = target.for_row(row);
        match there.describe(id).await {
            Ok(Some(info))
                if info.owner.as_deref() == Some(there.scope().account.as_str())
                    && info.status == CertStatus::Active => {}
            Ok(found) => {
                let seen = match found {
                    Some(info) => format!("{} there", info.status),
                    None => "not there".to_string(),
                };
                let message = format!(
                    "target account {} does not hold the certificate ACTIVE ({seen}): \
                     register it first; nothing was changed in the source",
                    row.target_account
                );
                return item.fail(Stage::Retire, NOT_IN_TARGET, message).await;
            }
            Err(f) => return item.fail_call(Stage::Retire, &f).await,
        }
        let (info, policies, things) = match observe(iot, row).await {
            Ok(Observed::Transferable {
                info,
                policies,
                things,
            }) => (info, policies, things),
            Ok(other) => {
                let seen = match other {
                    Observed::NotFound => "not found in the source account".to_string(),
                    Observed::SameAccount(_) => "owned by the target account".to_string(),
                    Observed::Pending(_) => "PENDING_TRANSFER".to_string(),
                    Observed::NotTransferable(info) | Observed::Transferable { info, .. } => {
                        info.status.to_string()
                    }
                };
                let message = format!("the source's copy cannot be retired: it is {seen}");
                return item
                    .fail(Stage::Retire, "CertificateStateException", message)
                    .await;
            }
            Err(f) => return item.fail_call(Stage::Retire, &f).await,
        };
        let s = self.steps;
        let policies = if s.detach_policies {
            policies
        } else {
            Vec::new()
        };
        let things = if s.detach_things { things } else { Vec::new() };
        let active = s.deactivate && info.status == CertStatus::Active;
        for change in prepare_changes(active, &policies, &things) {
            match item.step(iot, &change, &info.arn).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return item.fail_call(Stage::Retire, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        item.terminal(Stage::Retire, Outcome::Retired, Via::Call, None)
            .await?;
        Ok(ItemEnd::Done)
    }

    /// `retire --undo`: re-attaches what retire detached and re-activates what it
    /// deactivated, from the ledger, with the write-ahead steps of `cancel --restore`.
    pub async fn undo(&self, work: &Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let iot = self.source.for_row(row);
        let item = Item::new(&self.ledger, row, Side::Source, self.max_attempts);
        if let Some(open) = &work.open {
            if item.settle(iot, open).await? == Settled::InDoubt {
                return Ok(ItemEnd::InDoubt);
            }
        }
        let undo = {
            let state = self.state.lock().expect("ledger state");
            state
                .get(&row.certificate_id)
                .and_then(|r| r.undo.cloned())
                .unwrap_or_default()
        };
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        item.restore(iot, &undo, &arn).await
    }
}

/// What `retire --undo` has to do with a certificate: undo what retire changed and has not
/// been undone yet.
pub fn to_undo(rec: Option<&ItemRecord>) -> Pick {
    match rec.and_then(|r| r.undo) {
        Some(u) if !u.is_empty() => Pick::Process,
        _ => Pick::Skip,
    }
}
