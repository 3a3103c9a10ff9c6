//! The state a ledger's events fold into: one record per certificate.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::event::{Action, Details, Event, Outcome, Stage};
use crate::certificate::CertStatus;

/// Whether a ledger's state keeps what prepare changed. Only undo needs it; without it a
/// large ledger's state stays small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UndoHistory {
    /// Keep it (`cancel --restore`).
    Keep,
    /// Keep it until the certificate is transferred (`transfer`, which undoes prepare only
    /// for certificates that failed): a finished certificate costs nothing more.
    UntilTransferred,
    /// Leave it out.
    #[default]
    Drop,
}

/// The state of one certificate as the ledger tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Events exist but nothing terminal yet (e.g. prepare done, transfer not sent).
    Started,
    /// Pending transfer to its target.
    Transferred,
    /// Failed; see the failure.
    Failed,
    /// Transfer cancelled.
    Cancelled,
    /// Transfer cancelled and prepare undone.
    Restored,
    /// The target accepted (seen by cancel, or done by accept).
    Accepted,
    /// The target rejected.
    Rejected,
}

/// Why an item failed, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stage that failed.
    pub stage: Stage,
    /// AWS error code, or the tool's own reason code.
    pub error_code: String,
    /// HTTP status, if AWS answered.
    pub http_status: Option<u16>,
    /// Message for a person.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// The cause may go away by itself: a plain rerun tries the item again.
    pub retryable: bool,
    /// What prepare changed was undone (`Some(true)`) or is left (`Some(false)`); `None`:
    /// nothing had been changed.
    pub rolled_back: Option<bool>,
}

/// What prepare changed, so that `cancel --restore` can undo it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undo {
    /// Status before deactivation (`ACTIVE`), if prepare deactivated.
    pub previous_status: Option<CertStatus>,
    /// Policies prepare detached and restore has not re-attached yet.
    pub policies: Vec<String>,
    /// Things prepare detached and restore has not re-attached yet.
    pub things: Vec<String>,
}

impl Undo {
    /// True when nothing is left to undo.
    pub fn is_empty(&self) -> bool {
        self.previous_status.is_none() && self.policies.is_empty() && self.things.is_empty()
    }
}

/// Everything the ledger knows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    /// Latest state.
    pub state: ItemState,
    /// Target account of the latest event that named one.
    pub target: Option<String>,
    /// Region of the latest event that named one.
    pub region: Option<String>,
    /// An intent without an outcome: the item is in doubt until reconciled.
    pub open_intent: Option<OpenIntent>,
    /// Set while state is `Failed`.
    pub failure: Option<Box<Failure>>,
    /// ARN recorded at transfer.
    pub arn: Option<String>,
    /// What prepare changed (kept only when the ledger was opened with an undo history).
    pub undo: Option<Box<Undo>>,
}

/// An intent recorded without an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIntent {
    /// Stage of the intent.
    pub stage: Stage,
    /// The call.
    pub action: Action,
    /// Policy or thing named by the intent.
    pub subject: Option<String>,
    /// Status before the call (deactivate / reactivate).
    pub previous_status: Option<CertStatus>,
}

impl ItemRecord {
    fn new() -> Self {
        ItemRecord {
            state: ItemState::Started,
            target: None,
            region: None,
            open_intent: None,
            failure: None,
            arn: None,
            undo: None,
        }
    }
}

/// The replayed content of a ledger: one record per certificate id.
#[derive(Debug, Default)]
pub struct LedgerState {
    items: HashMap<Box<str>, ItemRecord>,
    undo: UndoHistory,
    /// Number of runs recorded (RunStart lines).
    pub runs: u32,
}

impl LedgerState {
    /// An empty state that keeps what prepare changed as `undo` says.
    pub fn new(undo: UndoHistory) -> Self {
        LedgerState {
            items: HashMap::new(),
            undo,
            runs: 0,
        }
    }

    /// The record of a certificate, if the ledger mentions it.
    pub fn get(&self, id: &str) -> Option<&ItemRecord> {
        self.items.get(id)
    }

    /// Every record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ItemRecord)> {
        self.items.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Number of certificates the ledger mentions.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the ledger mentions no certificate.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, ev: &Event) {
        let keep_undo = self.undo != UndoHistory::Drop;
        let rec = match self.items.get_mut(ev.id.as_str()) {
            Some(r) => r,
            None => self
                .items
                .entry(ev.id.clone().into_boxed_str())
                .or_insert_with(ItemRecord::new),
        };
        if ev.target.is_some() && rec.target.as_deref() != ev.target.as_deref() {
            rec.target = ev.target.clone();
        }
        if ev.region.is_some() && rec.region.as_deref() != ev.region.as_deref() {
            rec.region = ev.region.clone();
        }
        let d = &ev.details;
        match ev.outcome {
            Outcome::Intent => {
                rec.open_intent = d.action.map(|action| OpenIntent {
                    stage: ev.stage,
                    action,
                    subject: d.policy.clone().or_else(|| d.thing.clone()),
                    previous_status: d.previous_status.clone(),
                });
            }
            Outcome::Unknown => {
                // The intent stays open: only reconciliation closes it.
            }
            Outcome::Done => {
                rec.open_intent = None;
                if keep_undo {
                    record_undo(rec, d);
                }
            }
            Outcome::NotDone => rec.open_intent = None,
            Outcome::Transferred => {
                rec.open_intent = None;
                rec.state = ItemState::Transferred;
                rec.failure = None;
                if self.undo == UndoHistory::UntilTransferred {
                    rec.undo = None;
                }
                if d.arn.is_some() {
                    rec.arn = d.arn.clone();
                }
            }
            Outcome::Failed => {
                // A failure does not close an open intent: its outcome may still be unknown.
                rec.state = ItemState::Failed;
                rec.failure = Some(Box::new(Failure {
                    stage: d.failed_stage.unwrap_or(ev.stage),
                    error_code: d.error_code.clone().unwrap_or_default(),
                    http_status: d.http_status,
                    message: d.message.clone().unwrap_or_default(),
                    attempts: d.attempts.unwrap_or(0),
                    retryable: d.retryable.unwrap_or(false),
                    rolled_back: d.rolled_back,
                }));
            }
            Outcome::Cancelled => terminal(rec, ItemState::Cancelled),
            Outcome::Restored => terminal(rec, ItemState::Restored),
            Outcome::AlreadyAccepted | Outcome::Accepted => terminal(rec, ItemState::Accepted),
            Outcome::Rejected => terminal(rec, ItemState::Rejected),
        }
    }
}

fn terminal(rec: &mut ItemRecord, state: ItemState) {
    rec.open_intent = None;
    rec.state = state;
    rec.failure = None;
}

/// Keeps track of what prepare changed and restore undid.
fn record_undo(rec: &mut ItemRecord, d: &Details) {
    let Some(action) = d.action else { return };
    let undo = rec.undo.get_or_insert_with(Default::default);
    match action {
        Action::Deactivate => undo.previous_status = d.previous_status.clone(),
        Action::DetachPolicy => push_unique(&mut undo.policies, d.policy.as_deref()),
        Action::DetachThing => push_unique(&mut undo.things, d.thing.as_deref()),
        Action::Reactivate => undo.previous_status = None,
        Action::ReattachPolicy => undo
            .policies
            .retain(|p| Some(p.as_str()) != d.policy.as_deref()),
        Action::ReattachThing => undo
            .things
            .retain(|t| Some(t.as_str()) != d.thing.as_deref()),
        _ => {}
    }
}

fn push_unique(list: &mut Vec<String>, name: Option<&str>) {
    if let Some(name) = name {
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
    }
}
