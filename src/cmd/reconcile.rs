//! What `cancel`, `accept` and `reject` share: one certificate's events, the write-ahead step
//! (intent, call, outcome; an unknown outcome is checked against AWS before the call is ever
//! sent again), and the read-only checks that tell whether a call took effect. `status
//! --reconcile` asks the same checks.

use std::future::Future;

use tokio::time::Instant;

use crate::cmd;
use crate::iot::{CallFailure, Iot, OutgoingIndex};
use crate::ledger::{
    Action, Details, Event, LedgerError, LedgerWriter, OpenIntent, Outcome, Stage,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;

/// The error code AWS answers when a transfer was already accepted (HTTP 410).
pub const ALREADY_COMPLETED: &str = "TransferAlreadyCompletedException";

/// What AWS says about whether a mutating call took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `Some(true)`: it did; `Some(false)`: it did not; `None`: AWS cannot tell yet.
    pub took_effect: Option<bool>,
    /// What AWS showed, for people (`PENDING_TRANSFER to 222222222222`).
    pub seen: String,
}

impl Finding {
    fn new(took_effect: Option<bool>, seen: impl Into<String>) -> Self {
        Finding {
            took_effect,
            seen: seen.into(),
        }
    }
}

/// How a write-ahead step ended.
#[derive(Debug)]
pub enum StepEnd {
    /// The change is in place (the call succeeded, or AWS shows it took effect).
    Done,
    /// AWS refused the call (the `not_done` event is recorded); the caller decides what the
    /// refusal means (a 410 on accept means "already accepted", say).
    Refused(CallFailure),
    /// The outcome cannot be established: the item stays in doubt for the next run.
    InDoubt,
}

/// The events of one certificate.
pub struct Item<'a> {
    ledger: &'a LedgerWriter,
    row: &'a ManifestRow,
    max_attempts: u32,
}

impl<'a> Item<'a> {
    /// Events of `row`, appended through `ledger`; unknown outcomes are re-sent at most
    /// `max_attempts` times in all.
    pub fn new(ledger: &'a LedgerWriter, row: &'a ManifestRow, max_attempts: u32) -> Self {
        Item {
            ledger,
            row,
            max_attempts: max_attempts.max(1),
        }
    }

    /// Appends one event and waits until it is durable.
    pub async fn record(
        &self,
        stage: Stage,
        outcome: Outcome,
        details: Details,
    ) -> Result<(), LedgerError> {
        let ev = Event::new(
            &self.row.certificate_id,
            Some(&self.row.target_account),
            self.row.region.as_deref(),
            stage,
            outcome,
        );
        self.ledger.record(ev.with(details)).await
    }

    /// Records a failure of the tool's own making and ends the item.
    pub async fn fail(
        &self,
        stage: Stage,
        code: &str,
        message: String,
    ) -> Result<ItemEnd, LedgerError> {
        tracing::warn!(certificate = %self.row.certificate_id, stage = ?stage, code, "{message}");
        let details = Details {
            error_code: Some(code.to_string()),
            message: Some(message),
            attempts: Some(1),
            ..Default::default()
        };
        self.record(stage, Outcome::Failed, details).await?;
        Ok(ItemEnd::Failed)
    }

    /// Records a failed call and ends the item.
    pub async fn fail_call(&self, stage: Stage, f: &CallFailure) -> Result<ItemEnd, LedgerError> {
        tracing::warn!(certificate = %self.row.certificate_id, stage = ?stage, "{f}");
        let details = cmd::error_details(&Details::default(), f);
        self.record(stage, Outcome::Failed, details).await?;
        Ok(ItemEnd::Failed)
    }

    /// Closes an intent an earlier run left open, as AWS says it ended.
    pub async fn settle(&self, open: &OpenIntent, took_effect: bool) -> Result<(), LedgerError> {
        let mut details = intent_details(open);
        details.via = Some("reconciled".into());
        let outcome = if took_effect {
            Outcome::Done
        } else {
            Outcome::NotDone
        };
        self.record(open.stage, outcome, details).await
    }

    /// One write-ahead step: `intent`, `call`, outcome. After an unknown outcome `check` asks
    /// AWS whether the call took effect; the call is re-sent only when it did not.
    pub async fn step<C, CF, T, K, KF>(
        &self,
        stage: Stage,
        details: Details,
        call: C,
        check: K,
    ) -> Result<StepEnd, LedgerError>
    where
        C: Fn() -> CF,
        CF: Future<Output = Result<T, CallFailure>>,
        K: Fn() -> KF,
        KF: Future<Output = Result<Finding, CallFailure>>,
    {
        for attempt in 1..=self.max_attempts {
            self.record(stage, Outcome::Intent, details.clone()).await?;
            let f = match call().await {
                Ok(_) => {
                    self.record(stage, Outcome::Done, details.clone()).await?;
                    return Ok(StepEnd::Done);
                }
                Err(f) => f,
            };
            if !f.outcome_unknown {
                self.record(stage, Outcome::NotDone, cmd::error_details(&details, &f))
                    .await?;
                return Ok(StepEnd::Refused(f));
            }
            self.record(stage, Outcome::Unknown, cmd::error_details(&details, &f))
                .await?;
            match check().await {
                Ok(Finding {
                    took_effect: Some(true),
                    ..
                }) => {
                    let mut d = details.clone();
                    d.via = Some("reconciled".into());
                    self.record(stage, Outcome::Done, d).await?;
                    return Ok(StepEnd::Done);
                }
                Ok(Finding {
                    took_effect: Some(false),
                    ..
                }) => {
                    self.record(stage, Outcome::NotDone, details.clone())
                        .await?;
                    if attempt == self.max_attempts {
                        return Ok(StepEnd::Refused(f));
                    }
                }
                Ok(Finding {
                    took_effect: None, ..
                }) => return Ok(StepEnd::InDoubt),
                Err(e) => {
                    tracing::warn!(certificate = %self.row.certificate_id, "in doubt: cannot reconcile: {e}");
                    return Ok(StepEnd::InDoubt);
                }
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// The details of an open intent, as they were recorded (so that closing it keeps what
/// `cancel --restore` needs to know).
pub fn intent_details(open: &OpenIntent) -> Details {
    let (policy, thing) = match open.action {
        Action::DetachPolicy | Action::ReattachPolicy | Action::AttachPolicy => {
            (open.subject.clone(), None)
        }
        Action::DetachThing | Action::ReattachThing => (None, open.subject.clone()),
        _ => (None, None),
    };
    Details {
        action: Some(open.action),
        policy,
        thing,
        previous_status: open.previous_status.clone(),
        ..Default::default()
    }
}

/// The name of an action as the ledger spells it.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Deactivate => "deactivate",
        Action::DetachPolicy => "detach_policy",
        Action::DetachThing => "detach_thing",
        Action::Transfer => "transfer",
        Action::Cancel => "cancel",
        Action::ReattachPolicy => "reattach_policy",
        Action::ReattachThing => "reattach_thing",
        Action::Reactivate => "reactivate",
        Action::Accept => "accept",
        Action::Reject => "reject",
        Action::AttachPolicy => "attach_policy",
    }
}

/// Whether `action` took effect, asked with the source account's credentials (read-only:
/// DescribeCertificate, and ListAttachedPolicies, ListPrincipalThings or
/// ListOutgoingCertificates as the action needs). `target` is the row's target account.
pub async fn source_check(
    iot: &Iot,
    outgoing: &OutgoingIndex,
    id: &str,
    target: &str,
    action: Action,
    subject: Option<&str>,
) -> Result<Finding, CallFailure> {
    let Some(info) = iot.describe(id).await? else {
        // Gone from the source account: only an accept takes a certificate away.
        let gone = format!(
            "not in account {} any more (the target accepted it)",
            iot.scope().account
        );
        return Ok(Finding::new(
            Some(matches!(action, Action::Transfer | Action::Accept)),
            gone,
        ));
    };
    // The answer shows the certificate as it is now. An outgoing listing compared with it must
    // be at least as recent: one started while a transfer was still on its way would not show
    // it, and "pending but not listed" would leave the item in doubt for nothing.
    let described_at = Instant::now();
    let status = info.status.clone();
    let listed = |what: &str, names: &[String]| {
        if names.is_empty() {
            format!("{status}, no {what} attached")
        } else {
            format!("{status}, {what} attached: {}", names.join(", "))
        }
    };
    let has = |names: &[String]| names.iter().any(|n| Some(n.as_str()) == subject);
    Ok(match action {
        Action::Deactivate => Finding::new(Some(status != "ACTIVE"), status.clone()),
        Action::Reactivate => Finding::new(Some(status == "ACTIVE"), status.clone()),
        Action::DetachPolicy | Action::ReattachPolicy => {
            let names = iot.attached_policies(&info.arn).await?;
            let attached = has(&names);
            Finding::new(
                Some(attached == (action == Action::ReattachPolicy)),
                listed("policies", &names),
            )
        }
        Action::DetachThing | Action::ReattachThing => {
            let names = iot.principal_things(&info.arn).await?;
            let attached = has(&names);
            Finding::new(
                Some(attached == (action == Action::ReattachThing)),
                listed("things", &names),
            )
        }
        Action::Transfer | Action::Cancel | Action::Accept if status == "PENDING_TRANSFER" => {
            match outgoing.target_of(id, described_at).await? {
                Some(to) => {
                    let seen = format!("PENDING_TRANSFER to {to}");
                    let effect = match action {
                        Action::Transfer => to == target,
                        _ => false,
                    };
                    Finding::new(Some(effect), seen)
                }
                // Listed shortly after the call, a new transfer may not show yet.
                None => Finding::new(
                    (action != Action::Transfer).then_some(false),
                    "PENDING_TRANSFER, not listed by ListOutgoingCertificates yet",
                ),
            }
        }
        // Not pending: a transfer did not happen, a cancel did (or the target rejected).
        Action::Transfer | Action::Accept => Finding::new(Some(false), status.clone()),
        Action::Cancel => Finding::new(Some(true), status.clone()),
        Action::Reject | Action::AttachPolicy => Finding::new(
            None,
            format!("{status} (a target-side call: ask with the target's credentials)"),
        ),
    })
}

/// Whether `action` took effect, asked with the target account's credentials (read-only:
/// DescribeCertificate, and ListAttachedPolicies for a policy attachment).
pub async fn target_check(
    iot: &Iot,
    id: &str,
    action: Action,
    subject: Option<&str>,
) -> Result<Finding, CallFailure> {
    let me = iot.scope().account.clone();
    let Some(info) = iot.describe(id).await? else {
        // Neither owned by nor pending to this account: rejected (or cancelled by the source).
        let seen = format!("not in account {me} and not pending to it");
        return Ok(Finding::new(Some(action == Action::Reject), seen));
    };
    let owned = info.owner.as_deref() == Some(me.as_str()) && info.status != "PENDING_TRANSFER";
    if !owned {
        let seen = format!(
            "{} (owned by {})",
            info.status,
            info.owner.as_deref().unwrap_or("?")
        );
        return Ok(Finding::new(Some(false), seen));
    }
    let seen = format!("{}, owned by {me}", info.status);
    Ok(match action {
        Action::Accept => Finding::new(Some(true), seen),
        Action::AttachPolicy => {
            let names = iot.attached_policies(&info.arn).await?;
            let attached = names.iter().any(|n| Some(n.as_str()) == subject);
            Finding::new(
                Some(attached),
                format!("{seen}, policies attached: {}", names.join(", ")),
            )
        }
        // Owned by the target: a reject did not happen.
        _ => Finding::new(Some(false), seen),
    })
}

/// What the next run will write for an open intent, given what AWS said.
pub fn next_run(action: Action, took_effect: Option<bool>) -> String {
    match took_effect {
        Some(true) => match action {
            Action::Transfer => "the next run will record it as transferred".into(),
            Action::Cancel => "the next run will record it as cancelled".into(),
            Action::Accept => "the next run will record it as accepted".into(),
            Action::Reject => "the next run will record it as rejected".into(),
            other => format!(
                "the next run will record the {} as done and go on",
                action_name(other)
            ),
        },
        Some(false) => format!(
            "the {} did not take effect; the next run will record that and go on",
            action_name(action)
        ),
        None => "AWS cannot tell yet; the next run will ask again".into(),
    }
}
