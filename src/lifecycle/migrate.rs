//! The migrate workflow (`transfer`): prepare -> transfer for one certificate.
//!
//! Observe (DescribeCertificate, ListAttachedPolicies, ListPrincipalThings); refuse anything
//! the operator did not allow before changing anything; deactivate and detach (each a
//! write-ahead step); TransferCertificate. An intent an earlier run left open was settled by
//! the run before: a transfer that took effect is recorded, and the certificate observed
//! afresh otherwise.
//!
//! A certificate that fails after prepare changed it is rolled back (by default): the same
//! write-ahead steps as `cancel --restore` re-attach its policies and things and re-activate
//! it, from what the ledger recorded, so its devices come back instead of waiting offline.
//! When the circuit breaker trips, an item in flight stops before its next change and is
//! rolled back the same way (unless AWS refused the credentials or is out of reach).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::carry::read::SnapshotReader;
use crate::carry::store::SnapshotStore;
use crate::certificate::{cert_arn, CertStatus};
use crate::error::Error;
use crate::iot::{AccountClients, AwsCode, CallFailure, Iot};
use crate::ledger::{
    Action, Details, ItemRecord, ItemState, LedgerError, LedgerKind, OpenIntent, Outcome, Stage,
    Undo, UndoHistory, Via, Wait,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;
use crate::retry::Backoff;

use super::change::{prepare_changes, restore_changes, Change, PrepareSteps};
use super::check::{self, Effect, Side};
use super::item::{error_details, refusal_details, Item, Refusal, StepEnd};
use super::observe::{observe, Observed};
use super::workflow::{AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};

/// How long a TransferCertificate refused with 409 right after the tool's own detaches is
/// waited out, by default (`--propagation-wait`): AWS applies detaches asynchronously
/// ("several seconds" for DetachThingPrincipal).
pub const DEFAULT_PROPAGATION_WAIT: Duration = Duration::from_secs(30);
/// What happens to a certificate that fails after prepare changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollback {
    /// Undo the changes (the default).
    OnFailure,
    /// Leave them (`--no-rollback`): the next run, or `cancel --restore`, takes it from there.
    Never,
}

/// How a rollback went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RolledBack {
    /// Nothing was left to undo.
    Nothing,
    /// Every change was undone.
    Done,
    /// `--no-rollback`.
    NotAsked,
    /// Calls cannot succeed now (credentials refused, AWS out of reach).
    Impossible(String),
    /// A step failed or its outcome is unknown.
    Incomplete(String),
}

impl RolledBack {
    /// The failure event's `rolled_back`, and what the failure message adds.
    fn note(&self) -> (Option<bool>, String) {
        let left = "it stays deactivated or detached: the next run that transfers it, or `cancel --restore`, ends that";
        match self {
            RolledBack::Nothing => (None, String::new()),
            RolledBack::Done => (
                Some(true),
                "; rolled back: its policies, things and status are as before the run".into(),
            ),
            RolledBack::NotAsked => (
                Some(false),
                format!("; not rolled back (--no-rollback): {left}"),
            ),
            RolledBack::Impossible(why) | RolledBack::Incomplete(why) => {
                (Some(false), format!("; not rolled back ({why}): {left}"))
            }
        }
    }
}

/// Why an item fails, before the failure is recorded.
enum Failing {
    /// The tool's own refusal, for good.
    Refusal { code: &'static str, message: String },
    /// The tool's own refusal, which an option fixes: the item waits for it (unless changes
    /// of an earlier run cannot be undone first: then it fails).
    Waits(Refusal),
    /// A call AWS refused (or that failed for good).
    Call(CallFailure),
}

/// The waits between those transfers: 0.5 s, doubling, at most 5 s each.
const PROPAGATION_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(500),
    cap: Duration::from_secs(5),
};

/// What `transfer` tells the migrate workflow.
#[derive(Debug, Clone, Copy)]
pub struct MigrateOptions {
    /// The destructive steps of prepare the operator allowed.
    pub steps: PrepareSteps,
    /// What happens to a certificate that fails after prepare changed it.
    pub rollback: Rollback,
    /// How long a transfer refused right after the tool's own detaches is waited out.
    pub propagation_wait: Duration,
    /// Record what each certificate carries before its first change (`--carry`).
    pub carry: bool,
    /// Transfer only certificates whose things' handoff executions SUCCEEDED
    /// (`--require-handoff`).
    pub require_handoff: bool,
}

/// Prepares and transfers certificates with the source account's credentials.
pub struct Migrator {
    clients: AccountClients,
    steps: PrepareSteps,
    rollback: Rollback,
    propagation_wait: Duration,
    carry: Option<Carry>,
    /// `--require-handoff`: the prefix of this manifest's handoff jobs (set by connect).
    handoff: Option<String>,
    require_handoff: bool,
}

/// What `--carry` adds to a migration: the snapshot before the first change.
struct Carry {
    reader: SnapshotReader,
    /// Where the snapshots go besides the ledger: the accept of the same run takes them.
    handover: Option<Arc<SnapshotStore>>,
}

impl Migrator {
    /// A worker acting through `clients` (the source account's); with carry, `handover`
    /// also gets each snapshot (for the accept of the same run).
    pub fn new(
        clients: AccountClients,
        options: MigrateOptions,
        handover: Option<Arc<SnapshotStore>>,
    ) -> Self {
        Migrator {
            clients,
            steps: options.steps,
            rollback: options.rollback,
            propagation_wait: options.propagation_wait,
            carry: options.carry.then(|| Carry {
                reader: SnapshotReader::new(),
                handover,
            }),
            handoff: None,
            require_handoff: options.require_handoff,
        }
    }

    /// With `--require-handoff`, the prefix of the manifest's handoff jobs (from its
    /// digest, as `handoff` named them).
    pub fn with_manifest_digest(mut self, sha256: &str) -> Self {
        if self.require_handoff {
            self.handoff = Some(super::handoff::handoff_prefix(sha256));
        }
        self
    }

    /// The source account's clients.
    pub fn clients(&self) -> &AccountClients {
        &self.clients
    }

    /// Migrates one certificate: observe, refuse what was not allowed, snapshot, prepare,
    /// transfer.
    pub async fn migrate(&self, work: &Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let item = work.item(Side::Source);
        let iot = self.clients.for_row(row);

        // Observe before changing anything.
        let (info, policies, things) = match observe(iot, row).await {
            Ok(Observed::Transferable {
                info,
                policies,
                things,
            }) => (info, policies, things),
            Ok(Observed::NotFound) => {
                // Nothing changed, and the right credentials or region take it: a whole
                // manifest "not found" is a wrong account or region, not missing certificates.
                let refusal = not_in_source(iot);
                let arn = cert_arn(
                    &iot.scope().region,
                    &iot.scope().account,
                    &row.certificate_id,
                );
                return self
                    .fail(
                        work,
                        &item,
                        iot,
                        &arn,
                        Stage::Prepare,
                        Failing::Waits(refusal),
                    )
                    .await;
            }
            Ok(Observed::SameAccount(_)) => {
                let message = format!(
                    "certificate already belongs to target account {}",
                    row.target_account
                );
                return item.fail(Stage::Prepare, "SameAccount", message).await;
            }
            Ok(Observed::Pending(info)) => return self.already_pending(&item, iot, info.arn).await,
            Ok(Observed::NotTransferable(info)) => {
                let message = format!(
                    "certificate is {}; only ACTIVE or INACTIVE certificates can be transferred",
                    info.status
                );
                return item
                    .fail(Stage::Prepare, "CertificateStateException", message)
                    .await;
            }
            Err(f) => return item.fail_call(Stage::Prepare, &f).await,
        };

        // The device's own evidence: its handoff execution SUCCEEDED (it has the new
        // endpoint). Otherwise untouched, and still wanted: the next run looks again.
        if let Some(prefix) = &self.handoff {
            if things.is_empty() {
                let message = "the certificate has no thing, so no handoff job reached a device \
                               of it; left to the operator"
                    .to_string();
                return item.fail(Stage::Prepare, "NoThing", message).await;
            }
            let mut waiting = Vec::new();
            for thing in &things {
                match iot.executions_of_thing(thing, prefix).await {
                    Ok(found) if found.iter().any(|(_, s)| s == "SUCCEEDED") => {}
                    Ok(found) => waiting.push(match found.first() {
                        Some((_, status)) => format!("{thing} ({status})"),
                        None => format!("{thing} (no handoff execution)"),
                    }),
                    Err(f) => return item.fail_call(Stage::Prepare, &f).await,
                }
            }
            if !waiting.is_empty() {
                tracing::warn!(
                    certificate = %row.certificate_id,
                    "waiting for its device to acknowledge the handoff: {}",
                    waiting.join(", ")
                );
                return Ok(ItemEnd::Settled);
            }
        }

        // Refuse what the operator did not allow, before touching anything.
        let arn = info.arn.as_str();
        let active = info.status == CertStatus::Active;
        let (refusals, needs) = self.refusals(active, &policies, &things);
        if !refusals.is_empty() {
            let refusal = Failing::Waits(Refusal {
                wait: Wait::Flags,
                needs,
                code: "NotAllowed",
                message: refusals.join("; "),
            });
            return self
                .fail(work, &item, iot, arn, Stage::Prepare, refusal)
                .await;
        }

        if let Some(carry) = &self.carry {
            if let Some(end) = self
                .snapshot(carry, work, &item, iot, arn, &policies, &things)
                .await?
            {
                return Ok(end);
            }
        }
        for change in prepare_changes(active, &policies, &things) {
            if let Some(end) = self.interrupted(work, &item, iot, arn).await? {
                return Ok(end);
            }
            match item.step(iot, &change, arn).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => {
                    return self
                        .fail(work, &item, iot, arn, Stage::Prepare, Failing::Call(f))
                        .await
                }
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        if let Some(end) = self.interrupted(work, &item, iot, arn).await? {
            return Ok(end);
        }
        let detached = !policies.is_empty() || !things.is_empty();
        self.transfer(work, &item, iot, arn, detached).await
    }

    /// Records what the certificate carries before prepare changes it: what is attached now
    /// and what an earlier run of this migration detached (the source still has those
    /// objects). `Some`: the item ended (the source refused a read).
    #[allow(clippy::too_many_arguments)]
    async fn snapshot(
        &self,
        carry: &Carry,
        work: &Work<'_>,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        policies: &[String],
        things: &[String],
    ) -> Result<Option<ItemEnd>, LedgerError> {
        let (mut policies, mut things) = (policies.to_vec(), things.to_vec());
        let undo = undo_of(work);
        if let Some(undo) = undo {
            for p in undo.policies {
                if !policies.contains(&p) {
                    policies.push(p);
                }
            }
            for t in undo.things {
                if !things.contains(&t) {
                    things.push(t);
                }
            }
        }
        let snapshot = match carry.reader.snapshot(iot, arn, &policies, &things).await {
            Ok(s) => s,
            Err(f) => {
                let end = self
                    .fail(work, item, iot, arn, Stage::Prepare, Failing::Call(f))
                    .await?;
                return Ok(Some(end));
            }
        };
        if let Some(store) = &carry.handover {
            store.insert(&item.row().certificate_id, snapshot.clone());
        }
        let details = Details {
            snapshot: Some(Box::new(snapshot)),
            ..Default::default()
        };
        item.record(Stage::Prepare, Outcome::Snapshot, details)
            .await?;
        Ok(None)
    }

    /// Ends an item that failed: rolls back what prepare changed (unless told not to), then
    /// records the failure, saying whether it was rolled back.
    async fn fail(
        &self,
        work: &Work<'_>,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        stage: Stage,
        failing: Failing,
    ) -> Result<ItemEnd, LedgerError> {
        let (mut details, call) = match failing {
            Failing::Refusal { code, message } => (refusal_details(code, message), None),
            Failing::Waits(mut refusal) => {
                // Waiting means as before the run: what an earlier run changed is undone first.
                return match self.roll_back(work, item, iot, arn).await? {
                    RolledBack::Nothing => item.wait(stage, refusal).await,
                    RolledBack::Done => {
                        refusal
                            .message
                            .push_str("; what an earlier run changed was rolled back");
                        item.wait(stage, refusal).await
                    }
                    left => {
                        let mut details = refusal_details(refusal.code, refusal.message);
                        let (rolled_back, note) = left.note();
                        details.rolled_back = rolled_back;
                        if let Some(m) = details.message.as_mut() {
                            m.push_str(&note);
                        }
                        item.fail_with(stage, details, None).await
                    }
                };
            }
            // Not the certificate's fault, and nothing can be undone without credentials.
            Failing::Call(f) if f.error.class() == crate::retry::ErrorClass::Credentials => {
                return Ok(item.interrupted(&f))
            }
            Failing::Call(f) => (error_details(&Details::default(), &f), Some(f)),
        };
        let (rolled_back, note) = self.roll_back(work, item, iot, arn).await?.note();
        details.rolled_back = rolled_back;
        if let Some(m) = details.message.as_mut() {
            m.push_str(&note);
        }
        item.fail_with(stage, details, call.as_ref()).await
    }

    /// After the breaker tripped, an item in flight goes no further: what prepare changed
    /// is undone where calls still work, and the item stays pending (no failure: it did not
    /// fail). `None`: go on.
    async fn interrupted(
        &self,
        work: &Work<'_>,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
    ) -> Result<Option<ItemEnd>, LedgerError> {
        if !iot.breaker().is_tripped() {
            return Ok(None);
        }
        let rolled = self.roll_back(work, item, iot, arn).await?;
        tracing::info!(certificate = %item.row().certificate_id, "stopped by the circuit breaker before its next change ({rolled:?})");
        Ok(Some(ItemEnd::Interrupted))
    }

    /// Undoes what prepare changed on the certificate (in this run and earlier ones, as the
    /// ledger recorded it), with the write-ahead steps of `cancel --restore`.
    async fn roll_back(
        &self,
        work: &Work<'_>,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
    ) -> Result<RolledBack, LedgerError> {
        let undo = undo_of(work);
        let Some(undo) = undo.filter(|u| !u.is_empty()) else {
            return Ok(RolledBack::Nothing);
        };
        if self.rollback == Rollback::Never {
            return Ok(RolledBack::NotAsked);
        }
        if let Some(trip) = iot.breaker().trip().filter(|t| !t.allows_calls()) {
            let why = match trip {
                crate::breaker::Trip::Credentials { .. } => "AWS refused the credentials",
                _ => "AWS is out of reach",
            };
            return Ok(RolledBack::Impossible(why.into()));
        }
        for change in restore_changes(&undo) {
            match item.step(iot, &change, arn).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => {
                    return Ok(RolledBack::Incomplete(format!("{}: {f}", change.action())))
                }
                StepEnd::InDoubt => {
                    return Ok(RolledBack::Incomplete(format!(
                        "the outcome of {} is unknown",
                        change.action()
                    )))
                }
            }
        }
        Ok(RolledBack::Done)
    }

    /// Why prepare may not go on without another flag, and the flags (empty: it may).
    fn refusals(
        &self,
        active: bool,
        policies: &[String],
        things: &[String],
    ) -> (Vec<String>, Vec<String>) {
        let (mut refusals, mut flags) = (Vec::new(), Vec::new());
        if active && !self.steps.deactivate {
            refusals.push("certificate is ACTIVE: pass --deactivate to deactivate it (devices using it will disconnect)".to_string());
            flags.push("--deactivate".to_string());
        }
        if !policies.is_empty() && !self.steps.detach_policies {
            refusals.push(format!(
                "policies attached ({}): pass --detach-policies",
                policies.join(", ")
            ));
            flags.push("--detach-policies".to_string());
        }
        if !things.is_empty() && !self.steps.detach_things {
            refusals.push(format!(
                "things attached ({}): pass --detach-things",
                things.join(", ")
            ));
            flags.push("--detach-things".to_string());
        }
        (refusals, flags)
    }

    /// The certificate is already PENDING_TRANSFER: success if to our target, else a failure.
    async fn already_pending(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: String,
    ) -> Result<ItemEnd, LedgerError> {
        let row = item.row();
        let finding = check::took_effect(
            Side::Source,
            iot,
            &row.certificate_id,
            &row.target_account,
            Action::Transfer,
            None,
            None,
        )
        .await;
        match finding {
            Ok(Effect {
                took_effect: Some(true),
                ..
            }) => {
                item.terminal(
                    Stage::Transfer,
                    Outcome::Transferred,
                    Via::AlreadyPending,
                    Some(arn),
                )
                .await?;
                Ok(ItemEnd::Done)
            }
            Ok(Effect {
                took_effect: Some(false),
                seen,
            }) => {
                let message = format!("certificate is already {seen}; cancel that transfer first");
                item.fail(Stage::Prepare, "PendingToAnotherAccount", message)
                    .await
            }
            Ok(Effect {
                took_effect: None,
                seen,
            }) => {
                item.fail(
                    Stage::Prepare,
                    "PendingTransferNotListed",
                    format!("certificate is {seen}"),
                )
                .await
            }
            Err(f) => item.fail_call(Stage::Prepare, &f).await,
        }
    }

    /// TransferCertificate, write-ahead. A refusal another answer would have made a success
    /// is confirmed with a read: the certificate may be pending to its target already (a
    /// duplicated request, another run). A conflict after the tool's own detaches is waited
    /// out (they propagate asynchronously), then what is attached is observed again.
    async fn transfer(
        &self,
        work: &Work<'_>,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        detached: bool,
    ) -> Result<ItemEnd, LedgerError> {
        let started = Instant::now();
        let mut waits = 0;
        loop {
            let f = match item.step(iot, &Change::Transfer, arn).await? {
                StepEnd::Done => return Ok(ItemEnd::Done),
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
                StepEnd::Refused(f) => f,
            };
            let conflict = f.is(AwsCode::TransferConflict);
            let left = self.propagation_wait.saturating_sub(started.elapsed());
            let wait = detached && conflict && !left.is_zero();
            // Confirmed once before waiting and once after: nothing else makes it pending.
            if (conflict || f.is(AwsCode::CertificateState)) && (waits == 0 || !wait) {
                if let Some(end) = self.pending_to_target(item, iot).await? {
                    return Ok(end);
                }
            }
            if wait {
                let delay = PROPAGATION_BACKOFF.bound(waits).min(left);
                waits += 1;
                tracing::debug!(certificate = %item.row().certificate_id, delay_ms = delay.as_millis() as u64, "transfer refused right after detaching: waiting for the detaches to propagate");
                tokio::time::sleep(delay).await;
                continue;
            }
            if detached && conflict {
                return self.conflict_after_wait(work, item, iot, arn, &f).await;
            }
            return self
                .fail(work, item, iot, arn, Stage::Transfer, Failing::Call(f))
                .await;
        }
    }

    /// Records the item as transferred if AWS shows it pending to its target (`None`: it is
    /// not, or AWS cannot say).
    async fn pending_to_target(
        &self,
        item: &Item<'_>,
        iot: &Iot,
    ) -> Result<Option<ItemEnd>, LedgerError> {
        let row = item.row();
        let finding = check::took_effect(
            Side::Source,
            iot,
            &row.certificate_id,
            &row.target_account,
            Action::Transfer,
            None,
            None,
        )
        .await;
        let Ok(Effect {
            took_effect: Some(true),
            ..
        }) = finding
        else {
            return Ok(None);
        };
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &row.target_account, &row.certificate_id);
        item.terminal(
            Stage::Transfer,
            Outcome::Transferred,
            Via::Reconciled,
            Some(arn),
        )
        .await?;
        Ok(Some(ItemEnd::Done))
    }

    /// The transfer is still refused after `--propagation-wait`: observe again. A policy or
    /// thing attached now was attached by someone else after the detach.
    async fn conflict_after_wait(
        &self,
        work: &Work<'_>,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        f: &CallFailure,
    ) -> Result<ItemEnd, LedgerError> {
        let waited = humantime::format_duration(self.propagation_wait);
        let (policies, things) = match (
            iot.attached_policies(arn).await,
            iot.principal_things(arn).await,
        ) {
            (Ok(p), Ok(t)) => (p, t),
            (Err(e), _) | (_, Err(e)) => {
                return self
                    .fail(work, item, iot, arn, Stage::Transfer, Failing::Call(e))
                    .await
            }
        };
        let mut attached = Vec::new();
        if !policies.is_empty() {
            attached.push(format!("policies {}", policies.join(", ")));
        }
        if !things.is_empty() {
            attached.push(format!("things {}", things.join(", ")));
        }
        let message = if attached.is_empty() {
            format!(
                "TransferCertificate still refused {waited} after the detaches, with nothing \
                 attached any more ({f}); pass a longer --propagation-wait, then run again \
                 with --retry-failed"
            )
        } else {
            format!(
                "{} still attached {waited} after the detaches (attached again by someone else, \
                 or AWS has not applied the detaches yet): TransferCertificate refused ({f}); \
                 run again with --retry-failed (with a longer --propagation-wait if AWS is slow)",
                attached.join(" and ")
            )
        };
        let refusal = Failing::Refusal {
            code: AwsCode::TransferConflict.as_str(),
            message,
        };
        self.fail(work, item, iot, arn, Stage::Transfer, refusal)
            .await
    }
}

/// The refusal of a certificate that is not in `iot`'s (the caller's) account and region:
/// the source account's credentials, or the right region, take it.
pub fn not_in_source(iot: &Iot) -> Refusal {
    let scope = iot.scope();
    Refusal {
        wait: Wait::SourceAccount,
        needs: vec![format!("account {} ({})", scope.account, scope.region)],
        code: "ResourceNotFoundException",
        message: format!(
            "certificate not found in account {} ({}): not the source account's credentials, or not its region",
            scope.account, scope.region
        ),
    }
}

/// What prepare changed on the certificate and nothing has undone yet, as the ledger says.
fn undo_of(work: &Work<'_>) -> Option<Undo> {
    work.record(|rec| rec.and_then(|r| r.undo.cloned()))
}

/// Whether `transfer` still has to work on a certificate: never touched, started, waiting for
/// an option, or failed (the run skips failures a person must fix). Transferred, cancelled, restored, accepted
/// or rejected certificates are never sent again by a rerun (a nightly cron job must not
/// undo an operator's cancel).
pub fn untransferred(rec: Option<&ItemRecord>) -> bool {
    matches!(
        rec.map(|r| r.state),
        None | Some(ItemState::Started | ItemState::Waiting | ItemState::Failed)
    )
}

/// The intents `transfer` settles: its own (prepare, transfer) and a rollback's (restore:
/// the ledger's undo history takes it from there). A cancel's or accept's is left to that
/// command.
pub fn settles(open: &OpenIntent) -> bool {
    matches!(
        open.stage,
        Stage::Prepare | Stage::Transfer | Stage::Restore
    )
}

/// The ledger `transfer` writes: what prepare changed is kept until the certificate is
/// transferred (a certificate that fails is rolled back from it).
pub const TRANSFER_LEDGER: LedgerSpec = LedgerSpec {
    kind: LedgerKind::Transfer,
    undo: UndoHistory::UntilTransferred,
};

impl Workflow for Migrator {
    type Options = MigrateOptions;
    const COMMAND: &'static str = "transfer";

    fn ledger(_: &MigrateOptions) -> LedgerSpec {
        TRANSFER_LEDGER
    }

    async fn connect(setup: &mut Setup<'_>, options: MigrateOptions) -> Result<Self, Error> {
        Ok(Migrator::new(setup.own_clients().await?, options, None)
            .with_manifest_digest(setup.manifest.sha256()))
    }

    fn verb(&self) -> &'static str {
        "transferring"
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        untransferred(rec)
    }

    fn settler(&self, row: &ManifestRow, open: &OpenIntent) -> Option<(&Iot, Side)> {
        settles(open).then(|| (self.clients.for_row(row), Side::Source))
    }

    /// A transfer that took effect is recorded as transferred (and no longer wanted);
    /// anything else is observed afresh.
    fn after_settle(&self, _row: &ManifestRow, _open: &OpenIntent, _took: bool) -> AfterSettle {
        AfterSettle::Continue(Resume::Start)
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.migrate(&work).await
    }
}
