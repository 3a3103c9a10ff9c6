//! The events of one certificate: the write-ahead step (intent, call, outcome; an unknown
//! outcome is checked against AWS before the call is ever sent again), the settling of an
//! intent an earlier run left open, and the failures.

use crate::breaker::FailedCall;
use crate::iot::{CallFailure, Iot};
use crate::ledger::{
    Action, Details, Event, LedgerError, LedgerWriter, OpenIntent, Outcome, Stage, Undo, Via, Wait,
};
use crate::manifest::ManifestRow;
use crate::pipeline::{FailedOn, ItemEnd, Waited};
use crate::retry::ErrorClass;
use crate::stop::Gate;

use super::change::{restore_changes, Change};
use super::check::{self, Effect, Side};

/// A refusal of the tool's own, before any change, that an option fixes (see [`Item::wait`]).
#[derive(Debug, Clone)]
pub struct Refusal {
    /// What kind of fix.
    pub wait: Wait,
    /// What exactly (the flags, the policy, the account and region).
    pub needs: Vec<String>,
    /// The error code it is reported under (`NotAllowed`, `ResourceNotFoundException`, ...).
    pub code: &'static str,
    /// Why, for people.
    pub message: String,
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

/// What settling an intent an earlier run left open found (and recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The call took effect.
    TookEffect,
    /// It did not.
    NotDone,
    /// AWS cannot tell (or could not be asked): the item stays in doubt.
    InDoubt,
}

/// The events of one certificate, written by a worker that holds `side`'s credentials.
pub struct Item<'a> {
    ledger: &'a LedgerWriter,
    row: &'a ManifestRow,
    side: Side,
    max_attempts: u32,
    gate: Gate,
}

impl<'a> Item<'a> {
    /// Events of `row`, appended through `ledger`; a call whose outcome stays unknown is
    /// sent at most `max_attempts` times in all.
    pub fn new(
        ledger: &'a LedgerWriter,
        row: &'a ManifestRow,
        side: Side,
        max_attempts: u32,
    ) -> Self {
        Item::gated(ledger, row, side, max_attempts, Gate::open())
    }

    /// [`Item::new`], whose changes pass `gate` first (a run's item: see [`Gate`]).
    pub fn gated(
        ledger: &'a LedgerWriter,
        row: &'a ManifestRow,
        side: Side,
        max_attempts: u32,
        gate: Gate,
    ) -> Self {
        Item {
            ledger,
            row,
            side,
            max_attempts: max_attempts.max(1),
            gate,
        }
    }

    /// The manifest row.
    pub fn row(&self) -> &ManifestRow {
        self.row
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

    /// Records a terminal outcome established `via` some way.
    pub async fn terminal(
        &self,
        stage: Stage,
        outcome: Outcome,
        via: Via,
        arn: Option<String>,
    ) -> Result<(), LedgerError> {
        let details = Details {
            arn,
            via: Some(via),
            ..Default::default()
        };
        self.record(stage, outcome, details).await
    }

    /// Records a failure of the tool's own making and ends the item.
    pub async fn fail(
        &self,
        stage: Stage,
        code: &str,
        message: String,
    ) -> Result<ItemEnd, LedgerError> {
        self.fail_with(stage, refusal_details(code, message), None)
            .await
    }

    /// Records that the tool refused the certificate before changing anything, for a reason
    /// an option fixes (`wait`: a flag, a policy in the target, the account), and ends the
    /// item: it is not failed, and the same command with that option takes it. `needs` says
    /// exactly what (`--deactivate`, the policy, the account), `message` why.
    pub async fn wait(&self, stage: Stage, refusal: Refusal) -> Result<ItemEnd, LedgerError> {
        let Refusal {
            wait,
            needs,
            code,
            message,
        } = refusal;
        // One line per certificate only with -v: the run says once what they wait for.
        tracing::debug!(certificate = %self.row.certificate_id, stage = %stage, code, "waiting: {message}");
        let details = Details {
            error_code: Some(code.to_string()),
            message: Some(message),
            waiting_for: Some(wait),
            needs: needs.clone(),
            ..Default::default()
        };
        self.record(stage, Outcome::Waiting, details).await?;
        Ok(ItemEnd::Waiting(Waited { wait, needs }))
    }

    /// Records a failed call and ends the item, if the failure is the certificate's (see
    /// [`is_certificate_failure`]); any other failure ends it without a record: it stays
    /// pending for the next run.
    pub async fn fail_call(&self, stage: Stage, f: &CallFailure) -> Result<ItemEnd, LedgerError> {
        self.fail_with(stage, error_details(&Details::default(), f), Some(f))
            .await
    }

    /// The end of an item whose credentials were refused: nothing is recorded.
    pub fn interrupted(&self, f: &CallFailure) -> ItemEnd {
        tracing::debug!(certificate = %self.row.certificate_id, "stopped: {f}");
        ItemEnd::Interrupted
    }

    /// The end of an item stopped by a failure that is not its own (AWS out of reach,
    /// failing or throttling): nothing is recorded, it stays pending for the next run, and
    /// the breaker still counts the call (a streak of them is AWS failing).
    fn postponed(&self, f: &CallFailure) -> ItemEnd {
        let Some(op) = f.op.filter(|_| f.error.class() != ErrorClass::Credentials) else {
            return self.interrupted(f);
        };
        // One line per item in flight during an outage would bury the one message that
        // matters (the breaker's, or the summary's "not finished"): details with -v.
        tracing::debug!(certificate = %self.row.certificate_id, "left pending for the next run: {op}: {f}");
        ItemEnd::Postponed(Box::new(FailedCall {
            certificate_id: self.row.certificate_id.clone(),
            op,
            error: f.error.clone(),
            rolled_back: None,
        }))
    }

    /// Records a failure with `details` (which say whether it was rolled back) and ends the
    /// item; `call` is the failed call, if one was the cause. A call that failed for a
    /// reason that is not the certificate's records nothing: the item stays pending.
    pub async fn fail_with(
        &self,
        stage: Stage,
        details: Details,
        call: Option<&CallFailure>,
    ) -> Result<ItemEnd, LedgerError> {
        if let Some(f) = call.filter(|f| !is_certificate_failure(f)) {
            return Ok(self.postponed(f));
        }
        let code = details.error_code.as_deref().unwrap_or("");
        let message = details.message.as_deref().unwrap_or("");
        tracing::warn!(certificate = %self.row.certificate_id, stage = %stage, code, "{message}");
        let rolled_back = details.rolled_back;
        self.record(stage, Outcome::Failed, details).await?;
        let on = match call.and_then(|f| Some((f.op?, f))) {
            Some((op, f)) => FailedOn::Call(Box::new(FailedCall {
                certificate_id: self.row.certificate_id.clone(),
                op,
                error: f.error.clone(),
                rolled_back,
            })),
            None => FailedOn::Refusal { rolled_back },
        };
        Ok(ItemEnd::Failed(on))
    }

    /// The one way every workflow settles an intent an earlier run left open: ask AWS
    /// whether it took effect, and record what AWS says. A transfer, cancel or reject that
    /// took effect is recorded as its terminal outcome; any other call as `done` or
    /// `not_done`, with the intent's details (what `cancel --restore` needs).
    pub async fn settle(&self, iot: &Iot, open: &OpenIntent) -> Result<Settled, LedgerError> {
        let id = &self.row.certificate_id;
        let subject = open.subject.as_deref();
        let finding = check::took_effect(
            self.side,
            iot,
            id,
            &self.row.target_account,
            open.action,
            subject,
            open.group.as_deref(),
        )
        .await;
        let took = match finding {
            Ok(Effect {
                took_effect: Some(took),
                ..
            }) => took,
            Ok(Effect {
                took_effect: None,
                seen,
            }) => {
                tracing::warn!(certificate = %id, "still in doubt: AWS shows {seen}");
                return Ok(Settled::InDoubt);
            }
            Err(e) => {
                tracing::warn!(certificate = %id, "still in doubt: cannot reconcile: {e}");
                return Ok(Settled::InDoubt);
            }
        };
        let terminal = match open.action {
            Action::Transfer => Some((Stage::Transfer, Outcome::Transferred)),
            Action::Cancel => Some((Stage::Cancel, Outcome::Cancelled)),
            Action::Reject => Some((Stage::Reject, Outcome::Rejected)),
            _ => None,
        };
        match terminal {
            Some((stage, outcome)) if took => {
                self.terminal(stage, outcome, Via::Reconciled, None).await?
            }
            _ => {
                let mut details = Change::of_intent(open).details();
                details.previous_status = open.previous_status.clone();
                details.message = None;
                details.via = Some(Via::Reconciled);
                let outcome = if took {
                    Outcome::Done
                } else {
                    Outcome::NotDone
                };
                self.record(open.stage, outcome, details).await?
            }
        }
        Ok(if took {
            Settled::TookEffect
        } else {
            Settled::NotDone
        })
    }

    /// Puts back what `undo` says was changed (re-attaches, then re-activates), one
    /// write-ahead step each, and records the certificate `restored`.
    pub async fn restore(&self, iot: &Iot, undo: &Undo, arn: &str) -> Result<ItemEnd, LedgerError> {
        for change in restore_changes(undo) {
            match self.step(iot, &change, arn).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return self.fail_call(Stage::Restore, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        self.record(Stage::Restore, Outcome::Restored, Details::default())
            .await?;
        Ok(ItemEnd::Done)
    }

    /// One write-ahead step: intent, call, outcome. After an unknown outcome AWS is asked
    /// whether the call took effect; the call is sent again only when it did not. A refusal
    /// that the tool's own delivery could explain (409/410: a duplicate delivery of this very
    /// request took effect, and this is the answer to the second copy) is checked the same
    /// way before it counts as a refusal. A transfer's success is its terminal `transferred`
    /// event (with the ARN); any other change's is `done`.
    ///
    /// The item's first change passes the run's gate first, with its pacer slot: once the run
    /// stopped, an item that changed nothing yet records nothing more and is dropped.
    pub async fn step(
        &self,
        iot: &Iot,
        change: &Change,
        arn: &str,
    ) -> Result<StepEnd, LedgerError> {
        let stage = change.stage();
        let details = change.details();
        let mut slot = self.gate.pass(iot.reserve(change.operation())).await;
        for attempt in 1..=self.max_attempts {
            self.record(stage, Outcome::Intent, details.clone()).await?;
            let sent = change.send(iot, self.row, arn);
            let sent = match slot.take() {
                Some(slot) => iot.spend(slot, sent).await,
                None => sent.await,
            };
            let f = match sent {
                Ok(new_arn) => {
                    self.succeeded(change, Via::Call, new_arn).await?;
                    return Ok(StepEnd::Done);
                }
                Err(f) => f,
            };
            if !f.outcome_unknown && !own_delivery_could_explain(&f) {
                self.record(stage, Outcome::NotDone, error_details(&details, &f))
                    .await?;
                return Ok(StepEnd::Refused(f));
            }
            self.record(stage, Outcome::Unknown, error_details(&details, &f))
                .await?;
            let finding = check::took_effect(
                self.side,
                iot,
                &self.row.certificate_id,
                &self.row.target_account,
                change.action(),
                change.subject(),
                change.group(),
            )
            .await;
            match finding {
                Ok(Effect {
                    took_effect: Some(true),
                    ..
                }) => {
                    self.succeeded(change, Via::Reconciled, None).await?;
                    return Ok(StepEnd::Done);
                }
                // A real refusal: AWS shows the call did not take effect.
                Ok(Effect {
                    took_effect: Some(false),
                    ..
                }) if !f.outcome_unknown => {
                    let mut d = error_details(&details, &f);
                    d.via = Some(Via::Reconciled);
                    self.record(stage, Outcome::NotDone, d).await?;
                    return Ok(StepEnd::Refused(f));
                }
                Ok(Effect {
                    took_effect: Some(false),
                    ..
                }) => {
                    self.record(stage, Outcome::NotDone, details.clone())
                        .await?;
                    if attempt == self.max_attempts {
                        return Ok(StepEnd::Refused(f));
                    }
                }
                Ok(Effect {
                    took_effect: None,
                    seen,
                }) => {
                    tracing::warn!(certificate = %self.row.certificate_id, "in doubt: AWS shows {seen}");
                    return Ok(StepEnd::InDoubt);
                }
                Err(e) => {
                    tracing::warn!(certificate = %self.row.certificate_id, "in doubt: cannot reconcile: {e}");
                    return Ok(StepEnd::InDoubt);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn succeeded(
        &self,
        change: &Change,
        via: Via,
        arn: Option<String>,
    ) -> Result<(), LedgerError> {
        if *change == Change::Transfer {
            return self
                .terminal(Stage::Transfer, Outcome::Transferred, via, arn)
                .await;
        }
        let mut details = change.details();
        if via != Via::Call {
            details.via = Some(via);
        }
        self.record(change.stage(), Outcome::Done, details).await
    }
}

/// Whether a failed call is a failure of the certificate: an answer AWS gave about it (a
/// refusal: 4xx other than throttling), or the tool's own finding. A call that got no
/// answer (connection refused or reset, a timeout, an endpoint gone), a server error
/// (5xx), an unreadable reply, throttling beyond the budget or refused credentials say
/// nothing about the certificate: it stays pending (or in doubt, reconciled by the next
/// run), and the failure report keeps to what a person must look at.
pub fn is_certificate_failure(f: &CallFailure) -> bool {
    f.error.class() == ErrorClass::Permanent
}

/// Whether a refusal of a mutating call could be the answer to a second delivery of the
/// tool's own request (a 409 "already pending", a 410 "already done"): then the first
/// delivery may have taken effect, and AWS is asked before the refusal is believed.
fn own_delivery_could_explain(f: &CallFailure) -> bool {
    f.op.is_some_and(|op| op.is_mutating()) && matches!(f.error.http_status, Some(409 | 410))
}

/// The error code a failure is reported under: AWS's, or a name for what happened.
pub fn error_code(f: &CallFailure) -> String {
    f.error.code_name()
}

/// The details of a failure of the tool's own making.
pub fn refusal_details(code: &str, message: String) -> Details {
    Details {
        error_code: Some(code.to_string()),
        message: Some(message),
        attempts: Some(1),
        ..Default::default()
    }
}

/// `details` plus the facts of a failed call.
pub fn error_details(details: &Details, f: &CallFailure) -> Details {
    let mut d = details.clone();
    d.error_code = Some(error_code(f));
    d.http_status = f.error.http_status;
    d.message = Some(f.error.message.clone());
    d.attempts = Some(f.attempts);
    // Transient errors and throttling that outlasted the retry budget may go away by
    // themselves: the next run tries again without being told to.
    d.retryable = Some(f.error.class() != ErrorClass::Permanent);
    d
}
