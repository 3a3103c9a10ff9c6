//! `transfer`: prepare -> transfer -> record for every certificate of the manifest.
//!
//! Per certificate: reconcile an intent left open by an earlier run; observe
//! (DescribeCertificate, ListAttachedPolicies, ListPrincipalThings); refuse anything the
//! operator did not allow before changing anything; deactivate and detach (each write-ahead
//! in the ledger); TransferCertificate. A call whose outcome is unknown is checked against
//! AWS before it is ever sent again.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cli::{GlobalArgs, TransferArgs};
use crate::cmd::accept::Acceptor;
use crate::cmd::{self, Pick, Run};
use crate::error::{Error, ExitCode};
use crate::iot::{CallFailure, Iot, OutgoingIndex};
use crate::ledger::{
    Action, Details, Event, ItemState, LedgerKind, LedgerWriter, OpenIntent, Outcome, Stage,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;

/// Runs `transfer`.
pub async fn run(global: &GlobalArgs, args: TransferArgs) -> Result<ExitCode, Error> {
    if args.dry_run {
        return cmd::plan::run(
            global,
            crate::cli::PlanArgs {
                manifest: args.manifest,
                plan_out: None,
                pacing: args.pacing,
            },
        )
        .await;
    }
    let run = Run::open(
        global,
        &args.manifest,
        &args.files,
        LedgerKind::Transfer,
        false,
        &args.pacing,
    )
    .await?;
    let clients = run.source_clients().await?;
    let outgoing = clients
        .iter()
        .map(|(region, iot)| (region.clone(), Arc::new(OutgoingIndex::new(iot.clone()))))
        .collect();
    let migrator = Arc::new(Migrator {
        ledger: run.writer.clone(),
        clients,
        outgoing,
        deactivate: args.deactivate,
        detach_policies: args.detach_policies,
        detach_things: args.detach_things,
        max_attempts: args.pacing.max_attempts.max(1),
    });
    // End-to-end mode: each transfer is accepted right away with the target's credentials.
    let acceptor = match (&args.accept_profile, &args.accept_profile_template) {
        (None, None) => None,
        (profile, template) => Some(Arc::new(
            Acceptor::for_transfer(
                &run,
                profile.as_deref(),
                template.as_deref(),
                args.set_as_active,
                args.pacing.max_attempts,
            )
            .await?,
        )),
    };
    // Target accounts to accept for (not the acceptor itself: `pick` outlives the items,
    // and the acceptor's ledger handle must be gone before the ledger can close).
    let accepting: HashSet<String> = acceptor.iter().flat_map(|a| a.accounts()).collect();
    let retry_failed = args.retry_failed;
    run.execute(
        args.pacing.concurrency,
        &args.limits,
        "transferring",
        retry_failed,
        move |rec, row| match rec.map(|r| r.state) {
            None | Some(ItemState::Started) | Some(ItemState::Failed) => Pick::Process,
            // Transferred by an earlier run, still to be accepted.
            Some(ItemState::Transferred) if accepting.contains(&row.target_account) => {
                Pick::Process
            }
            // Cancelled, restored, accepted or rejected certificates are never re-sent by a
            // rerun (a nightly cron job must not undo an operator's cancel).
            Some(_) => Pick::Skip,
        },
        move |work| {
            let m = migrator.clone();
            let acceptor = acceptor.clone();
            async move {
                let Some(a) = acceptor else {
                    return m.migrate(work.row, work.open, work.may_proceed).await;
                };
                if a.takes_over(&work) {
                    return a
                        .accept(&work.row, work.open.as_ref(), work.may_proceed)
                        .await;
                }
                let row = work.row.clone();
                match m.migrate(work.row, work.open, work.may_proceed).await? {
                    ItemEnd::Done => a.accept(&row, None, true).await,
                    end => Ok(end),
                }
            }
        },
    )
    .await
}

/// Everything one certificate's migration needs.
struct Migrator {
    ledger: LedgerWriter,
    /// IoT client per region (`None` = the run's default region).
    clients: HashMap<Option<String>, Iot>,
    outgoing: HashMap<Option<String>, Arc<OutgoingIndex>>,
    deactivate: bool,
    detach_policies: bool,
    detach_things: bool,
    max_attempts: u32,
}

/// Result of a write-ahead step.
enum Step {
    /// The change is in place.
    Done,
    /// The item ended (failed or in doubt).
    Ended(ItemEnd),
}

/// How long to wait before re-sending a TransferCertificate refused because a thing we just
/// detached still shows as attached (DetachThingPrincipal propagates asynchronously).
const THING_PROPAGATION_WAIT: Duration = Duration::from_secs(2);

impl Migrator {
    fn iot(&self, row: &ManifestRow) -> &Iot {
        self.clients
            .get(&row.region)
            .or_else(|| self.clients.get(&None))
            .expect("a client for every manifest region")
    }

    fn event(&self, row: &ManifestRow, stage: Stage, outcome: Outcome) -> Event {
        Event::new(
            &row.certificate_id,
            Some(&row.target_account),
            row.region.as_deref(),
            stage,
            outcome,
        )
    }

    async fn record(&self, ev: Event) -> Result<(), crate::ledger::LedgerError> {
        self.ledger.record(ev).await
    }

    async fn fail(
        &self,
        row: &ManifestRow,
        stage: Stage,
        code: &str,
        http_status: Option<u16>,
        message: String,
        attempts: u32,
    ) -> Result<ItemEnd, crate::ledger::LedgerError> {
        tracing::warn!(certificate = %row.certificate_id, stage = ?stage, code, "{message}");
        let ev = self.event(row, stage, Outcome::Failed).with(Details {
            error_code: Some(code.to_string()),
            http_status,
            message: Some(message),
            attempts: Some(attempts),
            ..Default::default()
        });
        self.record(ev).await?;
        Ok(ItemEnd::Failed)
    }

    async fn fail_call(
        &self,
        row: &ManifestRow,
        stage: Stage,
        f: &CallFailure,
    ) -> Result<ItemEnd, crate::ledger::LedgerError> {
        let details = cmd::error_details(&Details::default(), f);
        tracing::warn!(certificate = %row.certificate_id, stage = ?stage, code = details.error_code.as_deref(), "{}", f.error.message);
        self.record(self.event(row, stage, Outcome::Failed).with(details))
            .await?;
        Ok(ItemEnd::Failed)
    }

    /// Migrates one certificate. `open` is an intent an earlier run left without outcome;
    /// `may_proceed` is false for failed items reconciled without `--retry-failed`.
    async fn migrate(
        &self,
        row: ManifestRow,
        open: Option<OpenIntent>,
        may_proceed: bool,
    ) -> Result<ItemEnd, crate::ledger::LedgerError> {
        let iot = self.iot(&row);
        if let Some(open) = open {
            let ev = |outcome| {
                self.event(&row, open.stage, outcome).with(Details {
                    action: Some(open.action),
                    policy: (open.action == Action::DetachPolicy)
                        .then(|| open.subject.clone())
                        .flatten(),
                    thing: (open.action == Action::DetachThing)
                        .then(|| open.subject.clone())
                        .flatten(),
                    previous_status: open.previous_status.clone(),
                    via: Some("reconciled".into()),
                    ..Default::default()
                })
            };
            match self
                .took_effect(iot, &row, open.action, open.subject.as_deref())
                .await
            {
                Ok(Some(true)) if open.action == Action::Transfer => {
                    self.record(
                        self.event(&row, Stage::Transfer, Outcome::Transferred)
                            .with(Details {
                                via: Some("reconciled".into()),
                                ..Default::default()
                            }),
                    )
                    .await?;
                    return Ok(ItemEnd::Done);
                }
                Ok(Some(true)) => self.record(ev(Outcome::Done)).await?,
                Ok(Some(false)) => self.record(ev(Outcome::NotDone)).await?,
                Ok(None) => return Ok(ItemEnd::InDoubt),
                Err(f) => {
                    tracing::warn!(certificate = %row.certificate_id, "still in doubt: cannot reconcile: {f}");
                    return Ok(ItemEnd::InDoubt);
                }
            }
            if !may_proceed {
                return Ok(ItemEnd::Failed);
            }
        }

        // Observe before changing anything.
        let described_at = Instant::now();
        let info = match iot.describe(&row.certificate_id).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                return self
                    .fail(
                        &row,
                        Stage::Prepare,
                        "ResourceNotFoundException",
                        Some(404),
                        format!(
                            "certificate not found in the source account ({})",
                            iot.scope().region
                        ),
                        1,
                    )
                    .await
            }
            Err(f) => return self.fail_call(&row, Stage::Prepare, &f).await,
        };
        if info.owner.as_deref() == Some(row.target_account.as_str()) {
            return self
                .fail(
                    &row,
                    Stage::Prepare,
                    "SameAccount",
                    None,
                    format!(
                        "certificate already belongs to target account {}",
                        row.target_account
                    ),
                    1,
                )
                .await;
        }
        match info.status.as_str() {
            "ACTIVE" | "INACTIVE" => {}
            "PENDING_TRANSFER" => return self.already_pending(&row, &info.arn, described_at).await,
            other => {
                return self
                    .fail(
                        &row,
                        Stage::Prepare,
                        "CertificateStateException",
                        None,
                        format!("certificate is {other}; only ACTIVE or INACTIVE certificates can be transferred"),
                        1,
                    )
                    .await
            }
        }
        let policies = match iot.attached_policies(&info.arn).await {
            Ok(p) => p,
            Err(f) => return self.fail_call(&row, Stage::Prepare, &f).await,
        };
        let things = match iot.principal_things(&info.arn).await {
            Ok(t) => t,
            Err(f) => return self.fail_call(&row, Stage::Prepare, &f).await,
        };

        // Refuse what the operator did not allow, before touching anything.
        let active = info.status == "ACTIVE";
        let mut refusals = Vec::new();
        if active && !self.deactivate {
            refusals.push("certificate is ACTIVE: pass --deactivate to deactivate it (devices using it will disconnect)".to_string());
        }
        if !policies.is_empty() && !self.detach_policies {
            refusals.push(format!(
                "policies attached ({}): pass --detach-policies",
                policies.join(", ")
            ));
        }
        if !things.is_empty() && !self.detach_things {
            refusals.push(format!(
                "things attached ({}): pass --detach-things",
                things.join(", ")
            ));
        }
        if !refusals.is_empty() {
            return self
                .fail(
                    &row,
                    Stage::Prepare,
                    "NotAllowed",
                    None,
                    refusals.join("; "),
                    1,
                )
                .await;
        }

        if active {
            let details = Details {
                action: Some(Action::Deactivate),
                previous_status: Some("ACTIVE".into()),
                ..Default::default()
            };
            if let Step::Ended(end) = self
                .perform(iot, &row, details, || {
                    iot.update_status(&row.certificate_id, "INACTIVE")
                })
                .await?
            {
                return Ok(end);
            }
        }
        for p in &policies {
            let details = Details {
                action: Some(Action::DetachPolicy),
                policy: Some(p.clone()),
                ..Default::default()
            };
            if let Step::Ended(end) = self
                .perform(iot, &row, details, || iot.detach_policy(p, &info.arn))
                .await?
            {
                return Ok(end);
            }
        }
        for t in &things {
            let details = Details {
                action: Some(Action::DetachThing),
                thing: Some(t.clone()),
                ..Default::default()
            };
            if let Step::Ended(end) = self
                .perform(iot, &row, details, || iot.detach_thing(t, &info.arn))
                .await?
            {
                return Ok(end);
            }
        }
        self.transfer(iot, &row, !things.is_empty()).await
    }

    /// The certificate is already PENDING_TRANSFER: success if to our target, else a failure.
    async fn already_pending(
        &self,
        row: &ManifestRow,
        arn: &str,
        described_at: Instant,
    ) -> Result<ItemEnd, crate::ledger::LedgerError> {
        let index = self.outgoing_index(row);
        match index.target_of(&row.certificate_id, described_at).await {
            Ok(Some(t)) if t == row.target_account => {
                self.record(self.event(row, Stage::Transfer, Outcome::Transferred).with(Details {
                    arn: Some(arn.to_string()),
                    via: Some("already_pending".into()),
                    ..Default::default()
                }))
                .await?;
                Ok(ItemEnd::Done)
            }
            Ok(Some(other)) => {
                self.fail(
                    row,
                    Stage::Prepare,
                    "PendingToAnotherAccount",
                    None,
                    format!("certificate is already pending transfer to account {other}; cancel that transfer first"),
                    1,
                )
                .await
            }
            Ok(None) => {
                self.fail(
                    row,
                    Stage::Prepare,
                    "PendingTransferNotListed",
                    None,
                    "certificate is PENDING_TRANSFER but ListOutgoingCertificates does not list it".into(),
                    1,
                )
                .await
            }
            Err(f) => self.fail_call(row, Stage::Prepare, &f).await,
        }
    }

    fn outgoing_index(&self, row: &ManifestRow) -> &OutgoingIndex {
        self.outgoing
            .get(&row.region)
            .or_else(|| self.outgoing.get(&None))
            .expect("an outgoing index for every manifest region")
    }

    /// One write-ahead prepare step: intent, call, outcome; an unknown outcome is checked
    /// against AWS and the call re-sent only if it did not take effect.
    async fn perform<F, Fut>(
        &self,
        iot: &Iot,
        row: &ManifestRow,
        details: Details,
        call: F,
    ) -> Result<Step, crate::ledger::LedgerError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), CallFailure>>,
    {
        let action = details.action.expect("prepare steps name their action");
        let subject = details.policy.clone().or_else(|| details.thing.clone());
        for attempt in 1..=self.max_attempts {
            self.record(
                self.event(row, Stage::Prepare, Outcome::Intent)
                    .with(details.clone()),
            )
            .await?;
            match call().await {
                Ok(()) => {
                    self.record(
                        self.event(row, Stage::Prepare, Outcome::Done)
                            .with(details.clone()),
                    )
                    .await?;
                    return Ok(Step::Done);
                }
                Err(f) if f.outcome_unknown => {
                    self.record(
                        self.event(row, Stage::Prepare, Outcome::Unknown)
                            .with(cmd::error_details(&details, &f)),
                    )
                    .await?;
                    match self.took_effect(iot, row, action, subject.as_deref()).await {
                        Ok(Some(true)) => {
                            let mut d = details.clone();
                            d.via = Some("reconciled".into());
                            self.record(self.event(row, Stage::Prepare, Outcome::Done).with(d))
                                .await?;
                            return Ok(Step::Done);
                        }
                        Ok(Some(false)) => {
                            self.record(
                                self.event(row, Stage::Prepare, Outcome::NotDone)
                                    .with(details.clone()),
                            )
                            .await?;
                            if attempt == self.max_attempts {
                                return Ok(Step::Ended(
                                    self.fail_call(row, Stage::Prepare, &f).await?,
                                ));
                            }
                        }
                        Ok(None) | Err(_) => return Ok(Step::Ended(ItemEnd::InDoubt)),
                    }
                }
                Err(f) => {
                    self.record(
                        self.event(row, Stage::Prepare, Outcome::NotDone)
                            .with(cmd::error_details(&details, &f)),
                    )
                    .await?;
                    return Ok(Step::Ended(self.fail_call(row, Stage::Prepare, &f).await?));
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// TransferCertificate, write-ahead, never re-sent blindly after an unknown outcome.
    async fn transfer(
        &self,
        iot: &Iot,
        row: &ManifestRow,
        detached_things: bool,
    ) -> Result<ItemEnd, crate::ledger::LedgerError> {
        let intent = Details {
            action: Some(Action::Transfer),
            ..Default::default()
        };
        let mut conflicts = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.record(
                self.event(row, Stage::Transfer, Outcome::Intent)
                    .with(intent.clone()),
            )
            .await?;
            let res = iot
                .transfer(
                    &row.certificate_id,
                    &row.target_account,
                    row.transfer_message.as_deref(),
                )
                .await;
            let f = match res {
                Ok(arn) => {
                    self.record(self.event(row, Stage::Transfer, Outcome::Transferred).with(
                        Details {
                            arn: Some(arn),
                            via: Some("call".into()),
                            ..Default::default()
                        },
                    ))
                    .await?;
                    return Ok(ItemEnd::Done);
                }
                Err(f) => f,
            };
            if f.outcome_unknown {
                self.record(
                    self.event(row, Stage::Transfer, Outcome::Unknown)
                        .with(cmd::error_details(&intent, &f)),
                )
                .await?;
                match self.took_effect(iot, row, Action::Transfer, None).await {
                    Ok(Some(true)) => {
                        self.record(self.event(row, Stage::Transfer, Outcome::Transferred).with(
                            Details {
                                via: Some("reconciled".into()),
                                ..Default::default()
                            },
                        ))
                        .await?;
                        return Ok(ItemEnd::Done);
                    }
                    Ok(Some(false)) => {
                        self.record(
                            self.event(row, Stage::Transfer, Outcome::NotDone)
                                .with(intent.clone()),
                        )
                        .await?;
                        if attempt >= self.max_attempts {
                            return self.fail_call(row, Stage::Transfer, &f).await;
                        }
                        continue;
                    }
                    Ok(None) | Err(_) => return Ok(ItemEnd::InDoubt),
                }
            }
            self.record(
                self.event(row, Stage::Transfer, Outcome::NotDone)
                    .with(cmd::error_details(&intent, &f)),
            )
            .await?;
            if detached_things && f.code() == Some("TransferConflictException") && conflicts < 3 {
                // The things we detached may not have propagated yet.
                conflicts += 1;
                tokio::time::sleep(THING_PROPAGATION_WAIT * conflicts).await;
                continue;
            }
            return self.fail_call(row, Stage::Transfer, &f).await;
        }
    }

    /// Whether a mutating call took effect, asked of AWS: `Some(bool)` when AWS tells,
    /// `None` when it cannot be told yet.
    async fn took_effect(
        &self,
        iot: &Iot,
        row: &ManifestRow,
        action: Action,
        subject: Option<&str>,
    ) -> Result<Option<bool>, CallFailure> {
        let Some(info) = iot.describe(&row.certificate_id).await? else {
            // Gone from the source account: after a transfer intent that means the target
            // accepted it; for a prepare step there is nothing left to change.
            return Ok(Some(action == Action::Transfer));
        };
        // The answer shows the certificate as it is now. A listing compared with it must be
        // at least as recent: one started while a transfer was still on its way (after it
        // was sent, before it took effect) would not show it, and "pending but not listed"
        // would leave the item in doubt for nothing.
        let described_at = Instant::now();
        match action {
            Action::Deactivate => Ok(Some(info.status != "ACTIVE")),
            Action::DetachPolicy => {
                let attached = iot.attached_policies(&info.arn).await?;
                Ok(Some(!attached.iter().any(|p| Some(p.as_str()) == subject)))
            }
            Action::DetachThing => {
                let attached = iot.principal_things(&info.arn).await?;
                Ok(Some(!attached.iter().any(|t| Some(t.as_str()) == subject)))
            }
            Action::Transfer => {
                if info.status != "PENDING_TRANSFER" {
                    return Ok(Some(false));
                }
                match self
                    .outgoing_index(row)
                    .target_of(&row.certificate_id, described_at)
                    .await?
                {
                    Some(t) => Ok(Some(t == row.target_account)),
                    None => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }
}

/// Ids the run must handle first: those with an intent left open by an earlier run.
pub(crate) fn in_doubt_ids(
    state: &crate::ledger::LedgerState,
    manifest: &crate::manifest::Manifest,
) -> HashSet<String> {
    state
        .iter()
        .filter(|(id, rec)| rec.open_intent.is_some() && manifest.contains(id))
        .map(|(id, _)| id.to_string())
        .collect()
}
