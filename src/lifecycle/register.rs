//! The zero-downtime workflow, first half: [`Registrar`] registers the source's certificate
//! in the target (RegisterCertificateWithoutCA with the PEM DescribeCertificate returns)
//! and, with `--carry`, rebuilds what it carries there; nothing changes in the source. The
//! second half, retiring the source's copy, is `retire`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::carry::{Carried, Carrier};
use super::change::Change;
use super::check::Side;
use super::item::{Item, StepEnd};
use super::migrate::not_in_source;
use super::workflow::{accounts_of, AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};
use crate::carry::read::SnapshotReader;
use crate::carry::store::SnapshotStore;
use crate::carry::OnConflict;
use crate::certificate::{cert_arn, CertStatus};
use crate::error::Error;
use crate::iot::{AccountClients, Iot};
use crate::ledger::{
    Details, ItemRecord, ItemState, LedgerError, LedgerKind, OpenIntent, Outcome, Stage,
    UndoHistory, Via,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;
use crate::session::TargetCredentials;

/// What `register` still has to do with a certificate: registered ones are finished.
pub fn unregistered(rec: Option<&ItemRecord>) -> bool {
    rec.map(|r| r.state) != Some(ItemState::Registered)
}

/// What `register` tells the registrar.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// The target accounts' credentials.
    pub targets: TargetCredentials,
    /// Status of the registered copy in the target; `None`: the source's (ACTIVE stays
    /// ACTIVE, INACTIVE stays INACTIVE).
    pub status: Option<CertStatus>,
    /// `--carry`, with what to do with an object that exists in the target with another
    /// definition.
    pub carry: Option<OnConflict>,
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
    source: AccountClients,
    /// Target account -> its clients.
    targets: HashMap<String, AccountClients>,
    accounts: HashSet<String>,
    status: Option<CertStatus>,
    carry: Option<RegisterCarry>,
}

impl Registrar {
    /// Registers the row's certificate in its target (once: a copy the target holds already
    /// is found, not registered again), then rebuilds what it carries.
    pub async fn register(&self, work: &Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let Some(target) = self.targets.get(&row.target_account) else {
            return Ok(ItemEnd::Done);
        };
        let iot = target.for_row(row);
        let source = self.source.for_row(row);
        let item = work.item(Side::Target);
        let registered = work.resume == Resume::AfterMainCall;
        let id = &row.certificate_id;
        let (info, pem) = match source.describe_with_pem(id).await {
            Ok(Some(found)) => found,
            Ok(None) => return item.wait(Stage::Register, not_in_source(source)).await,
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
            // A certificate disabled in the source is not brought back to life by its move.
            let status = self.status.clone().unwrap_or_else(|| info.status.clone());
            let change = Change::Register { pem, status };
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
            carry
                .reader
                .snapshot(source, source_arn, &policies, &things)
                .await
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

/// Where register goes on after an earlier run's intent was settled: a registration that
/// took effect, or any step of the rebuild (which comes after it), leaves only the rebuild.
pub fn register_after_settle(open: &OpenIntent, took_effect: bool) -> AfterSettle {
    AfterSettle::Continue(if took_effect || open.stage == Stage::Carry {
        Resume::AfterMainCall
    } else {
        Resume::Start
    })
}

impl Workflow for Registrar {
    type Options = RegisterOptions;
    const COMMAND: &'static str = "register";

    fn ledger(_: &RegisterOptions) -> LedgerSpec {
        LedgerSpec {
            kind: LedgerKind::Register,
            undo: UndoHistory::Drop,
        }
    }

    async fn connect(setup: &mut Setup<'_>, options: RegisterOptions) -> Result<Self, Error> {
        let source = setup.own_clients().await?;
        let targets = setup
            .session
            .target_clients(setup.manifest, &options.targets, "--target-profile")
            .await?;
        if options.carry.is_some() {
            for t in &targets {
                setup.add_device_endpoints(t).await;
            }
        }
        Ok(Registrar {
            source,
            accounts: accounts_of(&targets),
            targets: AccountClients::by_account(targets),
            status: options.status,
            carry: options.carry.map(RegisterCarry::new),
        })
    }

    fn verb(&self) -> &'static str {
        "registering"
    }

    /// Rows of target accounts without credentials here are left to another run.
    fn in_scope(&self, _rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        self.accounts.contains(&row.target_account)
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        unregistered(rec)
    }

    fn settler(&self, row: &ManifestRow, _open: &OpenIntent) -> Option<(&Iot, Side)> {
        let target = self.targets.get(&row.target_account)?;
        Some((target.for_row(row), Side::Target))
    }

    fn after_settle(&self, _row: &ManifestRow, open: &OpenIntent, took: bool) -> AfterSettle {
        register_after_settle(open, took)
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.register(&work).await
    }
}
