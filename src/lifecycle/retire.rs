//! The zero-downtime workflow, second half: [`Retirer`] retires the source's copy of a
//! certificate `register` copied, only once the target holds it ACTIVE and only as far as
//! the flags say; [`UndoRetire`] puts back what a retire changed, from its ledger.

use std::collections::{HashMap, HashSet};

use super::change::{prepare_changes, PrepareSteps};
use super::check::Side;
use super::item::{Refusal, StepEnd};
use super::migrate::not_in_source;
use super::observe::{observe, Observed};
use super::workflow::{accounts_of, AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};
use crate::certificate::{cert_arn, CertStatus};
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure, Iot};
use crate::ledger::{
    ItemRecord, ItemState, LedgerError, LedgerKind, OpenIntent, Outcome, Stage, UndoHistory, Via,
    Wait,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;
use crate::session::TargetCredentials;

/// What `retire` still has to do with a certificate: retired ones are finished (a ledger
/// records one retirement; more steps later go to another `--ledger`).
pub fn unretired(rec: Option<&ItemRecord>) -> bool {
    rec.map(|r| r.state) != Some(ItemState::Retired)
}

/// The ledger `retire` (and its undo) writes: what retire changed is kept, for undo.
pub const RETIRE_LEDGER: LedgerSpec = LedgerSpec {
    kind: LedgerKind::Retire,
    undo: UndoHistory::Keep,
};

/// What `retire` tells the retirer.
#[derive(Debug, Clone)]
pub struct RetireOptions {
    /// The target accounts' credentials (read only).
    pub targets: TargetCredentials,
    /// The steps to take on the source's copy (each only if its flag was given).
    pub steps: PrepareSteps,
    /// Retire only certificates whose device is connected in the target
    /// (`--require-connected`).
    pub require_connected: bool,
}

/// Retires source copies once their target holds the certificate ACTIVE.
pub struct Retirer {
    source: AccountClients,
    targets: HashMap<String, AccountClients>,
    accounts: HashSet<String>,
    steps: PrepareSteps,
    require_connected: bool,
}

/// The error code of a row whose target does not hold the certificate ACTIVE.
pub const NOT_IN_TARGET: &str = "NotActiveInTarget";

/// The error code of a certificate without a thing, under `--require-connected`.
pub const NO_THING: &str = "NoThing";

/// The things whose device is not connected to `target` (GetThingConnectivityData), each
/// with since when it is not, if known.
pub async fn waiting_for(target: &Iot, things: &[String]) -> Result<Vec<String>, CallFailure> {
    let mut waiting = Vec::new();
    for thing in things {
        match target.connectivity(thing).await? {
            Some(c) if c.connected => {}
            Some(c) => waiting.push(match c.since_ms {
                Some(ms) => format!("{thing} (disconnected since {})", rfc3339_ms(ms)),
                None => format!("{thing} (never connected)"),
            }),
            None => waiting.push(format!("{thing} (no such thing in the target)")),
        }
    }
    Ok(waiting)
}

/// Epoch milliseconds as RFC 3339.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Refuses (exit 2) a run that would need connectivity the targets do not index: every
/// target region must have `thingConnectivityIndexingMode` STATUS (checked before any
/// change, and before `verify`, `status --devices` or `report --devices` read any
/// certificate). `flag` names what asked for connectivity (`--require-connected`).
pub async fn require_connectivity_indexing(
    targets: &[AccountClients],
    flag: &str,
) -> Result<(), Error> {
    for t in targets {
        for iot in t.all() {
            let modes = iot.indexing_modes().await.map_err(|f| {
                Error::Aws(format!(
                    "cannot read the indexing configuration of {} ({}): {f}",
                    t.account(),
                    iot.scope().region
                ))
            })?;
            if !modes.connectivity_on() {
                return Err(Error::Refused(format!(
                    "{flag}: fleet indexing does not index connectivity in target account {} ({}): \
                     thingConnectivityIndexingMode is {}; set it to STATUS there (aws iot update-indexing-configuration \
                     --thing-indexing-configuration thingIndexingMode=REGISTRY,thingConnectivityIndexingMode=STATUS); nothing was changed",
                    t.account(),
                    iot.scope().region,
                    modes.connectivity
                )));
            }
        }
    }
    Ok(())
}

impl Retirer {
    /// Confirms that the target holds the certificate ACTIVE (or INACTIVE, as the source's
    /// copy is: `register` keeps a disabled certificate disabled), then takes the steps
    /// asked for, write-ahead (what they changed is recorded, for undo).
    pub async fn retire(&self, work: &Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let Some(target) = self.targets.get(&row.target_account) else {
            return Ok(ItemEnd::Done);
        };
        let iot = self.source.for_row(row);
        let item = work.item(Side::Source);
        let id = &row.certificate_id;
        let there = target.for_row(row);
        let held = match there.describe(id).await {
            Ok(found) => {
                found.filter(|info| info.owner.as_deref() == Some(there.scope().account.as_str()))
            }
            Err(f) => return item.fail_call(Stage::Retire, &f).await,
        };
        let (info, policies, things) = match observe(iot, row).await {
            Ok(Observed::Transferable {
                info,
                policies,
                things,
            }) => (info, policies, things),
            Ok(Observed::NotFound) => {
                return item.wait(Stage::Retire, not_in_source(iot)).await;
            }
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
        let ready = held.as_ref().is_some_and(|copy| {
            copy.status == CertStatus::Active
                || (copy.status == CertStatus::Inactive && info.status == CertStatus::Inactive)
        });
        if !ready {
            let seen = match &held {
                Some(copy) => format!("{} there, {} here", copy.status, info.status),
                None => "not there".to_string(),
            };
            let message = format!(
                "target account {} does not hold the certificate ACTIVE ({seen}): \
                 register it first; nothing was changed in the source",
                row.target_account
            );
            let refusal = Refusal {
                wait: Wait::Registration,
                needs: vec![format!(
                    "its registration in account {}",
                    row.target_account
                )],
                code: NOT_IN_TARGET,
                message,
            };
            return item.wait(Stage::Retire, refusal).await;
        }
        if self.require_connected {
            if things.is_empty() {
                let message = "the certificate has no thing, so no device of it can be seen \
                               connected in the target; left to the operator"
                    .to_string();
                return item.fail(Stage::Retire, NO_THING, message).await;
            }
            match waiting_for(there, &things).await {
                Ok(waiting) if waiting.is_empty() => {}
                // Untouched, still wanted: the next run looks again.
                Ok(waiting) => {
                    tracing::warn!(
                        certificate = %id,
                        "waiting for its device: not connected in target account {}: {}",
                        row.target_account,
                        waiting.join(", ")
                    );
                    return Ok(ItemEnd::Settled);
                }
                Err(f) => return item.fail_call(Stage::Retire, &f).await,
            }
        }
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
}

/// What `retire --undo` has to do with a certificate: undo what retire changed and has not
/// been undone yet.
pub fn to_undo(rec: Option<&ItemRecord>) -> bool {
    rec.and_then(|r| r.undo).is_some_and(|u| !u.is_empty())
}

impl Workflow for Retirer {
    type Options = RetireOptions;
    const COMMAND: &'static str = "retire";

    fn ledger(_: &RetireOptions) -> LedgerSpec {
        RETIRE_LEDGER
    }

    async fn connect(setup: &mut Setup<'_>, options: RetireOptions) -> Result<Self, Error> {
        let source = setup.own_clients().await?;
        let targets = setup
            .session
            .target_clients(setup.manifest, &options.targets, "--target-profile")
            .await?;
        if options.require_connected {
            require_connectivity_indexing(&targets, "--require-connected").await?;
        }
        Ok(Retirer {
            source,
            accounts: accounts_of(&targets),
            targets: AccountClients::by_account(targets),
            steps: options.steps,
            require_connected: options.require_connected,
        })
    }

    fn verb(&self) -> &'static str {
        "retiring"
    }

    /// Rows of target accounts without credentials here are left to another run.
    fn in_scope(&self, _rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        self.accounts.contains(&row.target_account)
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        unretired(rec)
    }

    fn settler(&self, row: &ManifestRow, _open: &OpenIntent) -> Option<(&Iot, Side)> {
        Some((self.source.for_row(row), Side::Source))
    }

    /// Retire looks at the source afresh whatever an earlier run left.
    fn after_settle(&self, _row: &ManifestRow, _open: &OpenIntent, _took: bool) -> AfterSettle {
        AfterSettle::Continue(Resume::Start)
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.retire(&work).await
    }
}

/// `retire --undo`: puts back what a retire ledger says retire changed (re-attach,
/// re-activate), with the source's credentials alone: no target credentials are needed to
/// bring the devices back.
pub struct UndoRetire {
    source: AccountClients,
}

impl Workflow for UndoRetire {
    type Options = ();
    const COMMAND: &'static str = "retire";

    fn ledger(_: &()) -> LedgerSpec {
        RETIRE_LEDGER
    }

    async fn connect(setup: &mut Setup<'_>, _: ()) -> Result<Self, Error> {
        Ok(UndoRetire {
            source: setup.own_clients().await?,
        })
    }

    fn verb(&self) -> &'static str {
        "undoing retire"
    }

    /// Only what this ledger says retire changed (or undo already put back) is this run's
    /// business: a refused retirement changed nothing and has nothing to undo.
    fn in_scope(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        rec.is_some_and(|r| r.state == ItemState::Restored || r.undo.is_some_and(|u| !u.is_empty()))
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        to_undo(rec)
    }

    fn settler(&self, row: &ManifestRow, _open: &OpenIntent) -> Option<(&Iot, Side)> {
        Some((self.source.for_row(row), Side::Source))
    }

    fn after_settle(&self, _row: &ManifestRow, _open: &OpenIntent, _took: bool) -> AfterSettle {
        AfterSettle::Continue(Resume::Start)
    }

    /// Re-attaches what retire detached and re-activates what it deactivated, from the
    /// ledger, with the write-ahead steps of `cancel --restore`.
    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let iot = self.source.for_row(row);
        let item = work.item(Side::Source);
        let undo = work
            .record(|rec| rec.and_then(|r| r.undo.cloned()))
            .unwrap_or_default();
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        item.restore(iot, &undo, &arn).await
    }
}
