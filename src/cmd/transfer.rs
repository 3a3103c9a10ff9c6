//! `transfer`: prepare -> transfer -> record for every certificate of the manifest.
//!
//! Per certificate: reconcile an intent left open by an earlier run; observe
//! (DescribeCertificate, ListAttachedPolicies, ListPrincipalThings); refuse anything the
//! operator did not allow before changing anything; deactivate and detach (each write-ahead
//! in the ledger); TransferCertificate. A call whose outcome is unknown is checked against
//! AWS before it is ever sent again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{GlobalArgs, TransferArgs};
use crate::cmd::accept::Acceptor;
use crate::cmd::reconcile::{self, Finding, Item, StepEnd};
use crate::cmd::{self, Pick, Run};
use crate::error::{Error, ExitCode};
use crate::iot::{CallFailure, CertificateInfo, Iot, OutgoingIndex};
use crate::ledger::{
    Action, Details, ItemState, LedgerError, LedgerKind, LedgerWriter, OpenIntent, Outcome, Stage,
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

/// How long to wait before re-sending a TransferCertificate refused because a thing we just
/// detached still shows as attached (DetachThingPrincipal propagates asynchronously).
const THING_PROPAGATION_WAIT: Duration = Duration::from_secs(2);

impl Migrator {
    fn iot(&self, row: &ManifestRow) -> &Iot {
        cmd::for_region(&self.clients, row).expect("a client for every manifest region")
    }

    fn outgoing_index(&self, row: &ManifestRow) -> &OutgoingIndex {
        cmd::for_region(&self.outgoing, row).expect("an outgoing index for every manifest region")
    }

    /// Asks AWS whether `action` on this row's certificate took effect.
    async fn check(
        &self,
        row: &ManifestRow,
        action: Action,
        subject: Option<&str>,
    ) -> Result<Finding, CallFailure> {
        reconcile::source_check(
            self.iot(row),
            self.outgoing_index(row),
            &row.certificate_id,
            &row.target_account,
            action,
            subject,
        )
        .await
    }

    /// Migrates one certificate. `open` is an intent an earlier run left without outcome;
    /// `may_proceed` is false for failed items reconciled without `--retry-failed`.
    async fn migrate(
        &self,
        row: ManifestRow,
        open: Option<OpenIntent>,
        may_proceed: bool,
    ) -> Result<ItemEnd, LedgerError> {
        let item = Item::new(&self.ledger, &row, self.max_attempts);
        let iot = self.iot(&row);
        if let Some(open) = open {
            if !matches!(open.stage, Stage::Prepare | Stage::Transfer) {
                // A cancel, restore or accept intent: only that command can settle it.
                tracing::warn!(certificate = %row.certificate_id, "in doubt after an interrupted {:?}: run that command again", open.stage);
                return Ok(ItemEnd::InDoubt);
            }
            match self.check(&row, open.action, open.subject.as_deref()).await {
                Ok(Finding {
                    took_effect: Some(true),
                    ..
                }) if open.action == Action::Transfer => {
                    item.record(Stage::Transfer, Outcome::Transferred, via("reconciled"))
                        .await?;
                    return Ok(ItemEnd::Done);
                }
                Ok(Finding {
                    took_effect: Some(took),
                    ..
                }) => item.settle(&open, took).await?,
                Ok(Finding {
                    took_effect: None,
                    seen,
                }) => {
                    tracing::warn!(certificate = %row.certificate_id, "still in doubt: AWS shows {seen}");
                    return Ok(ItemEnd::InDoubt);
                }
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
        let (info, policies, things) = match observe(iot, &row).await {
            Ok(Observed::Transferable {
                info,
                policies,
                things,
            }) => (info, policies, things),
            Ok(Observed::NotFound) => {
                let details = Details {
                    error_code: Some("ResourceNotFoundException".into()),
                    http_status: Some(404),
                    message: Some(format!(
                        "certificate not found in the source account ({})",
                        iot.scope().region
                    )),
                    attempts: Some(1),
                    ..Default::default()
                };
                item.record(Stage::Prepare, Outcome::Failed, details)
                    .await?;
                return Ok(ItemEnd::Failed);
            }
            Ok(Observed::SameAccount(_)) => {
                let message = format!(
                    "certificate already belongs to target account {}",
                    row.target_account
                );
                return item.fail(Stage::Prepare, "SameAccount", message).await;
            }
            Ok(Observed::Pending(info)) => {
                return self.already_pending(&item, &row, &info.arn).await
            }
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
            return item
                .fail(Stage::Prepare, "NotAllowed", refusals.join("; "))
                .await;
        }

        // Each change is a write-ahead step; an unknown outcome is checked before a re-send.
        let mut steps: Vec<(Details, Option<String>)> = Vec::new();
        if active {
            let d = Details {
                action: Some(Action::Deactivate),
                previous_status: Some("ACTIVE".into()),
                ..Default::default()
            };
            steps.push((d, None));
        }
        for p in &policies {
            let d = Details {
                action: Some(Action::DetachPolicy),
                policy: Some(p.clone()),
                ..Default::default()
            };
            steps.push((d, Some(p.clone())));
        }
        for t in &things {
            let d = Details {
                action: Some(Action::DetachThing),
                thing: Some(t.clone()),
                ..Default::default()
            };
            steps.push((d, Some(t.clone())));
        }
        for (details, subject) in steps {
            let action = details.action.expect("prepare steps name their action");
            let call = || async {
                match action {
                    Action::Deactivate => iot.update_status(&row.certificate_id, "INACTIVE").await,
                    Action::DetachPolicy => {
                        iot.detach_policy(subject.as_deref().unwrap_or_default(), &info.arn)
                            .await
                    }
                    _ => {
                        iot.detach_thing(subject.as_deref().unwrap_or_default(), &info.arn)
                            .await
                    }
                }
            };
            let check = || self.check(&row, action, subject.as_deref());
            match item
                .step(Stage::Prepare, details.clone(), call, check)
                .await?
            {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return item.fail_call(Stage::Prepare, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        self.transfer(&item, &row, !things.is_empty()).await
    }

    /// The certificate is already PENDING_TRANSFER: success if to our target, else a failure.
    async fn already_pending(
        &self,
        item: &Item<'_>,
        row: &ManifestRow,
        arn: &str,
    ) -> Result<ItemEnd, LedgerError> {
        match self.check(row, Action::Transfer, None).await {
            Ok(Finding {
                took_effect: Some(true),
                ..
            }) => {
                let mut d = via("already_pending");
                d.arn = Some(arn.to_string());
                item.record(Stage::Transfer, Outcome::Transferred, d)
                    .await?;
                Ok(ItemEnd::Done)
            }
            Ok(Finding {
                took_effect: Some(false),
                seen,
            }) => {
                let message = format!("certificate is already {seen}; cancel that transfer first");
                item.fail(Stage::Prepare, "PendingToAnotherAccount", message)
                    .await
            }
            Ok(Finding {
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

    /// TransferCertificate, write-ahead, never re-sent blindly after an unknown outcome. Its
    /// own loop rather than [`Item::step`]: success is the terminal `transferred` event with
    /// the ARN, and a conflict right after detaching things is waited out.
    async fn transfer(
        &self,
        item: &Item<'_>,
        row: &ManifestRow,
        detached_things: bool,
    ) -> Result<ItemEnd, LedgerError> {
        let intent = Details {
            action: Some(Action::Transfer),
            ..Default::default()
        };
        let iot = self.iot(row);
        let mut conflicts = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            item.record(Stage::Transfer, Outcome::Intent, intent.clone())
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
                    let mut d = via("call");
                    d.arn = Some(arn);
                    item.record(Stage::Transfer, Outcome::Transferred, d)
                        .await?;
                    return Ok(ItemEnd::Done);
                }
                Err(f) => f,
            };
            if f.outcome_unknown {
                item.record(
                    Stage::Transfer,
                    Outcome::Unknown,
                    cmd::error_details(&intent, &f),
                )
                .await?;
                match self.check(row, Action::Transfer, None).await {
                    Ok(Finding {
                        took_effect: Some(true),
                        ..
                    }) => {
                        item.record(Stage::Transfer, Outcome::Transferred, via("reconciled"))
                            .await?;
                        return Ok(ItemEnd::Done);
                    }
                    Ok(Finding {
                        took_effect: Some(false),
                        ..
                    }) => {
                        item.record(Stage::Transfer, Outcome::NotDone, intent.clone())
                            .await?;
                        if attempt >= self.max_attempts {
                            return item.fail_call(Stage::Transfer, &f).await;
                        }
                        continue;
                    }
                    Ok(_) | Err(_) => return Ok(ItemEnd::InDoubt),
                }
            }
            item.record(
                Stage::Transfer,
                Outcome::NotDone,
                cmd::error_details(&intent, &f),
            )
            .await?;
            if detached_things && f.code() == Some("TransferConflictException") && conflicts < 3 {
                // The things we detached may not have propagated yet.
                conflicts += 1;
                tokio::time::sleep(THING_PROPAGATION_WAIT * conflicts).await;
                continue;
            }
            return item.fail_call(Stage::Transfer, &f).await;
        }
    }
}

/// What prepare sees of a certificate before it changes anything. `plan` shows the same, so
/// that its categories are exactly what `transfer` will act on.
pub(crate) enum Observed {
    /// AWS does not know the certificate in this account and region.
    NotFound,
    /// The certificate already belongs to the row's target account.
    SameAccount(CertificateInfo),
    /// PENDING_TRANSFER (to whom is for the caller to find out).
    Pending(CertificateInfo),
    /// REVOKED or another status that cannot be transferred.
    NotTransferable(CertificateInfo),
    /// ACTIVE or INACTIVE, with what is attached to it.
    Transferable {
        /// DescribeCertificate's answer.
        info: CertificateInfo,
        /// Attached policies (all pages).
        policies: Vec<String>,
        /// Attached things (all pages).
        things: Vec<String>,
    },
}

/// Read-only look at a row's certificate: DescribeCertificate, then ListAttachedPolicies and
/// ListPrincipalThings for a certificate that can be transferred.
pub(crate) async fn observe(iot: &Iot, row: &ManifestRow) -> Result<Observed, CallFailure> {
    let Some(info) = iot.describe(&row.certificate_id).await? else {
        return Ok(Observed::NotFound);
    };
    if info.owner.as_deref() == Some(row.target_account.as_str()) {
        return Ok(Observed::SameAccount(info));
    }
    match info.status.as_str() {
        "ACTIVE" | "INACTIVE" => {}
        "PENDING_TRANSFER" => return Ok(Observed::Pending(info)),
        _ => return Ok(Observed::NotTransferable(info)),
    }
    let policies = iot.attached_policies(&info.arn).await?;
    let things = iot.principal_things(&info.arn).await?;
    Ok(Observed::Transferable {
        info,
        policies,
        things,
    })
}

/// Details saying how a transfer was established.
fn via(how: &str) -> Details {
    Details {
        via: Some(how.into()),
        ..Default::default()
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
