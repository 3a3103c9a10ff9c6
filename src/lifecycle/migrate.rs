//! The migrate worker: prepare -> transfer for one certificate.
//!
//! Settle an intent left open by an earlier run; observe (DescribeCertificate,
//! ListAttachedPolicies, ListPrincipalThings); refuse anything the operator did not allow
//! before changing anything; deactivate and detach (each a write-ahead step);
//! TransferCertificate.

use std::time::Duration;

use super::work::{Mandate, Work};
use crate::certificate::CertStatus;
use crate::iot::{AccountClients, Iot};
use crate::ledger::{Action, Details, LedgerError, LedgerWriter, Outcome, Stage, Via};
use crate::pipeline::ItemEnd;

use super::change::{prepare_changes, Change};
use super::check::{self, Finding, Side};
use super::item::{Item, Settled, StepEnd};
use super::observe::{observe, Observed};

/// The destructive steps of prepare the operator allowed (`--deactivate`,
/// `--detach-policies`, `--detach-things`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed {
    /// Deactivate ACTIVE certificates.
    pub deactivate: bool,
    /// Detach attached policies.
    pub detach_policies: bool,
    /// Detach attached things.
    pub detach_things: bool,
}

/// How long to wait before sending a TransferCertificate again that was refused because a
/// thing we just detached still shows as attached (DetachThingPrincipal propagates
/// asynchronously); the n-th wait is n times this.
const THING_PROPAGATION_WAIT: Duration = Duration::from_secs(2);

/// Conflicts waited out after detaching things before the item fails.
const MAX_PROPAGATION_WAITS: u32 = 3;

/// Prepares and transfers certificates with the source account's credentials.
pub struct Migrator {
    ledger: LedgerWriter,
    clients: AccountClients,
    allowed: Allowed,
    max_attempts: u32,
}

impl Migrator {
    /// A worker writing to `ledger`, acting through `clients` (the source account's).
    pub fn new(
        ledger: LedgerWriter,
        clients: AccountClients,
        allowed: Allowed,
        max_attempts: u32,
    ) -> Self {
        Migrator {
            ledger,
            clients,
            allowed,
            max_attempts,
        }
    }

    /// Migrates one certificate.
    pub async fn migrate(&self, work: &Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let item = Item::new(&self.ledger, row, Side::Source, self.max_attempts);
        let iot = self.clients.for_row(row);
        if let Some(open) = &work.open {
            if !matches!(open.stage, Stage::Prepare | Stage::Transfer) {
                // A cancel, restore or accept intent: only that command can settle it.
                tracing::warn!(certificate = %row.certificate_id, "in doubt after an interrupted {}: run that command again", open.stage);
                return Ok(ItemEnd::InDoubt);
            }
            match item.settle(iot, open).await? {
                Settled::InDoubt => return Ok(ItemEnd::InDoubt),
                Settled::TookEffect if open.action == Action::Transfer => return Ok(ItemEnd::Done),
                Settled::TookEffect | Settled::NotDone => {}
            }
            if work.mandate == Mandate::SettleOnly {
                return Ok(ItemEnd::Failed);
            }
        }

        // Observe before changing anything.
        let (info, policies, things) = match observe(iot, row).await {
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

        // Refuse what the operator did not allow, before touching anything.
        let active = info.status == CertStatus::Active;
        let refusals = self.refusals(active, &policies, &things);
        if !refusals.is_empty() {
            return item
                .fail(Stage::Prepare, "NotAllowed", refusals.join("; "))
                .await;
        }

        for change in prepare_changes(active, &policies, &things) {
            match item.step(iot, &change, &info.arn).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return item.fail_call(Stage::Prepare, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        self.transfer(&item, iot, &info.arn, !things.is_empty())
            .await
    }

    /// Why prepare may not go on without another flag (empty: it may).
    fn refusals(&self, active: bool, policies: &[String], things: &[String]) -> Vec<String> {
        let mut refusals = Vec::new();
        if active && !self.allowed.deactivate {
            refusals.push("certificate is ACTIVE: pass --deactivate to deactivate it (devices using it will disconnect)".to_string());
        }
        if !policies.is_empty() && !self.allowed.detach_policies {
            refusals.push(format!(
                "policies attached ({}): pass --detach-policies",
                policies.join(", ")
            ));
        }
        if !things.is_empty() && !self.allowed.detach_things {
            refusals.push(format!(
                "things attached ({}): pass --detach-things",
                things.join(", ")
            ));
        }
        refusals
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
        )
        .await;
        match finding {
            Ok(Finding {
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

    /// TransferCertificate, write-ahead. A conflict right after detaching things is waited
    /// out: the detachment may not have propagated yet.
    async fn transfer(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        arn: &str,
        detached_things: bool,
    ) -> Result<ItemEnd, LedgerError> {
        let mut waits = 0;
        loop {
            match item.step(iot, &Change::Transfer, arn).await? {
                StepEnd::Done => return Ok(ItemEnd::Done),
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
                StepEnd::Refused(f)
                    if detached_things
                        && f.code() == Some("TransferConflictException")
                        && waits < MAX_PROPAGATION_WAITS =>
                {
                    waits += 1;
                    tokio::time::sleep(THING_PROPAGATION_WAIT * waits).await;
                }
                StepEnd::Refused(f) => return item.fail_call(Stage::Transfer, &f).await,
            }
        }
    }
}
