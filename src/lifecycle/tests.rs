//! The branch tables of the lifecycle, against the in-memory AWS IoT of [`crate::iot::fake`]:
//! the real SDK client, the real [`crate::iot::Iot`] (pacing, retries, error parsing) and the
//! real ledger; only the network is replaced.
//!
//! - [`Item::step`]: each change x each answer AWS may give -> how the step ends, the events
//!   the ledger file holds afterwards, and how often the call was sent;
//! - [`Item::settle`]: each open intent x what AWS shows -> what is settled and recorded;
//! - [`check::took_effect`]: each side's view of each change.
//!
//! One row a line: the tables are kept out of rustfmt's way.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tempfile::TempDir;
use tokio::task::JoinHandle;

use super::change::Change;
use super::check::{self, Side};
use super::item::{Item, Settled, StepEnd};
use crate::certificate::cert_arn;
use crate::iot::fake::{AfterAccept, Answer, Cert, FakeIot, Loss, REGION};
use crate::iot::Iot;
use crate::ledger::{
    Event, Ledger, LedgerError, LedgerKind, LedgerState, LedgerWriter, OpenOptionsLedger, Outcome,
    UndoHistory, Via,
};
use crate::manifest::ManifestRow;
use crate::pacer::Operation;

const ID: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const OTHER: &str = "333333333333";
const POLICY: &str = "device-policy";
const THING: &str = "device-1";
/// A call whose outcome stays unknown is sent at most this often in all.
const MAX_ATTEMPTS: u32 = 2;

/// The changes of the tables (a [`Change`] holds strings: a row must be a constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deactivate,
    DetachPolicy,
    DetachThing,
    Transfer,
    Cancel,
    ReattachPolicy,
    ReattachThing,
    Reactivate,
    Accept,
    Reject,
    AttachPolicy,
    /// A carried thing attached in the target (carry): settled like the others.
    AttachThing,
}

use Kind::*;

impl Kind {
    fn change(self) -> Change {
        match self {
            Deactivate => Change::Deactivate,
            DetachPolicy => Change::DetachPolicy(POLICY.into()),
            DetachThing => Change::DetachThing(THING.into()),
            Transfer => Change::Transfer,
            Cancel => Change::Cancel,
            ReattachPolicy => Change::ReattachPolicy(POLICY.into()),
            ReattachThing => Change::ReattachThing(THING.into()),
            Reactivate => Change::Reactivate,
            Accept => Change::Accept {
                set_as_active: false,
            },
            Reject => Change::Reject {
                reason: "not expected".into(),
            },
            AttachPolicy => Change::AttachPolicy(POLICY.into()),
            AttachThing => Change::AttachThing(THING.into()),
        }
    }

    /// Whose credentials make the change.
    fn side(self) -> Side {
        match self {
            Accept | Reject | AttachPolicy | AttachThing => Side::Target,
            _ => Side::Source,
        }
    }

    /// The call that makes it.
    fn op(self) -> Operation {
        match self {
            Deactivate | Reactivate => Operation::UpdateCertificate,
            DetachPolicy => Operation::DetachPolicy,
            ReattachPolicy | AttachPolicy => Operation::AttachPolicy,
            DetachThing => Operation::DetachThingPrincipal,
            ReattachThing | AttachThing => Operation::AttachThingPrincipal,
            Transfer => Operation::TransferCertificate,
            Cancel => Operation::CancelCertificateTransfer,
            Accept => Operation::AcceptCertificateTransfer,
            Reject => Operation::RejectCertificateTransfer,
        }
    }

    /// The certificate as the change finds it.
    fn start(self) -> Cert {
        let prepared = Cert::new(SOURCE, "INACTIVE");
        match self {
            Deactivate => Cert::new(SOURCE, "ACTIVE")
                .with_policy(POLICY)
                .with_thing(THING),
            DetachPolicy => prepared.with_policy(POLICY).with_thing(THING),
            DetachThing => prepared.with_thing(THING),
            Transfer | ReattachPolicy | ReattachThing | Reactivate => prepared,
            Cancel | Accept | Reject => prepared.pending_to(TARGET),
            AttachPolicy | AttachThing => prepared.pending_to(TARGET).accepted_by(TARGET),
        }
    }
}

fn account(side: Side) -> &'static str {
    match side {
        Side::Source => SOURCE,
        Side::Target => TARGET,
    }
}

fn manifest_row() -> ManifestRow {
    ManifestRow {
        line: 2,
        certificate_id: ID.into(),
        target_account: TARGET.into(),
        transfer_message: None,
        region: None,
    }
}

/// A ledger in a temporary directory, its writer running.
struct Book {
    writer: LedgerWriter,
    handle: JoinHandle<Result<(), LedgerError>>,
    state: Arc<Mutex<LedgerState>>,
    path: PathBuf,
    _dir: TempDir,
}

impl Book {
    fn open(side: Side) -> Book {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("ledger.jsonl");
        let kind = match side {
            Side::Source => LedgerKind::Transfer,
            Side::Target => LedgerKind::Accept,
        };
        let opts = OpenOptionsLedger {
            kind,
            manifest_path: std::path::Path::new("manifest.csv"),
            manifest_sha256: "0",
            undo: UndoHistory::Keep,
        };
        let mut ledger = Ledger::open(&path, opts).expect("ledger opens");
        ledger.start_run(None).expect("run line");
        let state = ledger.shared_state();
        let (writer, handle) = ledger.into_writer();
        Book {
            writer,
            handle,
            state,
            path,
            _dir: dir,
        }
    }

    /// Stops the writer; the events the file holds (after its header and run line), and
    /// whether the certificate has an intent without an outcome.
    async fn close(self) -> (Vec<Event>, bool) {
        drop(self.writer);
        self.handle.await.expect("writer task").expect("writer");
        let open = self
            .state
            .lock()
            .expect("ledger state")
            .get(ID)
            .is_some_and(|r| r.open_intent.is_some());
        let text = std::fs::read_to_string(&self.path).expect("ledger readable");
        let events = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
            .filter(|v| v.get("outcome").is_some())
            .map(|v| serde_json::from_value::<Event>(v).expect("an event"))
            .collect();
        (events, open)
    }
}

/// `outcome[ error_code][ via VIA]`, comma separated: what the tables expect.
fn render(events: &[Event]) -> String {
    let one = |e: &Event| {
        let mut s = e.outcome.as_str().to_string();
        if let Some(code) = &e.details.error_code {
            s = format!("{s} {code}");
        }
        if let Some(via) = e.details.via {
            s = format!("{s} via {via}");
        }
        s
    };
    events.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// What every event of `change` must carry, whatever the row: the certificate, the row's
/// target, the change's stage; on an intent and its outcomes, the change's action and what
/// `cancel --restore` needs to undo it; on a transfer, the ARN only when the call said it.
fn check_events(change: &Change, events: &[Event]) -> Result<(), String> {
    let want = change.details();
    for e in events {
        let what = format!("event {} {}", e.stage, e.outcome);
        if e.id != ID || e.target.as_deref() != Some(TARGET) || e.stage != change.stage() {
            return Err(format!("{what}: id, target or stage wrong: {e:?}"));
        }
        let d = &e.details;
        match e.outcome {
            Outcome::Intent | Outcome::Done | Outcome::NotDone | Outcome::Unknown => {
                let carried = (&d.action, &d.policy, &d.thing, &d.previous_status);
                let wanted = (
                    &want.action,
                    &want.policy,
                    &want.thing,
                    &want.previous_status,
                );
                if carried != wanted {
                    return Err(format!("{what} carries {carried:?}, not {wanted:?}"));
                }
            }
            Outcome::Transferred => {
                let arn = (d.via == Some(Via::Call)).then(|| cert_arn(REGION, TARGET, ID));
                if d.arn != arn {
                    return Err(format!("{what} via {:?}: arn {:?}", d.via, d.arn));
                }
            }
            _ => {}
        }
        if d.error_code.is_some() && d.attempts.is_none_or(|a| a == 0) {
            return Err(format!("{what}: an error without its attempts"));
        }
    }
    Ok(())
}

/// Runs every row (all at once: each has its own fake and ledger, and the ledgers' fsyncs
/// are most of the time); the failures, each named by its row.
async fn failures<R: Copy, F: std::future::Future<Output = Result<(), String>>>(
    rows: &[R],
    run: impl Fn(R) -> F,
    name: impl Fn(&R) -> String,
) -> Vec<String> {
    let results = futures::future::join_all(rows.iter().map(|r| run(*r))).await;
    rows.iter()
        .zip(results)
        .filter_map(|(r, res)| res.err().map(|e| format!("{}: {e}", name(r))))
        .collect()
}

/// Mutating calls sent other than `op`: a check or a settle only reads.
fn other_changes(fake: &FakeIot, op: Option<Operation>) -> Vec<(Operation, u32)> {
    fake.sent_all()
        .into_iter()
        .filter(|(o, n)| o.is_mutating() && Some(*o) != op && *n > 0)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Item::step

/// What AWS is like, besides the answers scripted for the change's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AwsLike {
    /// Every read answers.
    Plain,
    /// ListOutgoingCertificates does not show a new transfer yet.
    Lags,
    /// Every DescribeCertificate fails (500, retried until the budget is spent).
    ReadsFail,
    /// The target accepted the certificate before the call.
    Accepted,
}

/// How a step ends, as [`StepEnd`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Done,
    Refused,
    InDoubt,
}

/// Applied and answered.
const OK: Answer = Answer::Apply;
/// A 4xx refusal that no earlier delivery explains.
const REFUSED: Answer = Answer::Refuse(400, "InvalidRequestException");
/// Applied, the reply lost: it took effect.
const LOST: Answer = Answer::ApplyThenLose(Loss::Timeout);
/// Applied, the 200 cut short: it took effect.
const GARBLED: Answer = Answer::ApplyThenLose(Loss::Garbled);
/// A 500 before it was applied: it did not take effect.
const FAILED: Answer = Answer::Lose(Loss::ServerError);
/// No reply, not applied: it did not take effect.
const TIMEOUT: Answer = Answer::Lose(Loss::Timeout);
/// Applied by a first delivery; the second copy gets a 409 or a 410.
const DUP_409: Answer = Answer::ApplyThenRefuse(409, "TransferConflictException");
const DUP_410: Answer = Answer::ApplyThenRefuse(410, "TransferAlreadyCompletedException");
/// A real 409 or 410, nothing applied.
const REAL_409: Answer = Answer::Refuse(409, "TransferConflictException");
const REAL_410: Answer = Answer::Refuse(410, "TransferAlreadyCompletedException");
const LIMIT_410: Answer = Answer::Refuse(410, "LimitExceededException");
/// The credentials refused (before anything was applied).
const EXPIRED: Answer = Answer::Refuse(403, "ExpiredTokenException");
/// 400 ThrottlingException, then (unscripted) applied.
const THROTTLED: Answer = Answer::Throttle;

/// A step: the change, what its calls are answered, what AWS is like -> how the step ends,
/// the events the ledger holds, how often the call was sent.
#[derive(Debug, Clone, Copy)]
struct Step(Kind, &'static [Answer], AwsLike, End, &'static str, u32);

#[rustfmt::skip]
const STEPS: &[Step] = &[
    Step(Deactivate, &[OK],              AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(Deactivate, &[REFUSED],         AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(Deactivate, &[LOST],            AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(Deactivate, &[FAILED],          AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(Deactivate, &[FAILED, TIMEOUT], AwsLike::Plain,     End::Refused, "intent, unknown InternalFailureException, not_done, intent, unknown Timeout, not_done", 2),
    Step(Deactivate, &[DUP_409],         AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, done via reconciled", 1),
    Step(Deactivate, &[REAL_409],        AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(Deactivate, &[LOST],            AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),
    Step(Deactivate, &[THROTTLED],       AwsLike::Plain,     End::Done,    "intent, done", 2),
    Step(Deactivate, &[EXPIRED],         AwsLike::Plain,     End::Refused, "intent, not_done ExpiredTokenException", 1),
    // A cut-short 200 to a call without output is still a 200: it took effect.
    Step(Deactivate, &[GARBLED],         AwsLike::Plain,     End::Done,    "intent, done", 1),

    Step(DetachPolicy, &[OK],       AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(DetachPolicy, &[REFUSED],  AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(DetachPolicy, &[LOST],     AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(DetachPolicy, &[FAILED],   AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(DetachPolicy, &[DUP_409],  AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, done via reconciled", 1),
    Step(DetachPolicy, &[REAL_409], AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(DetachPolicy, &[LOST],     AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),

    Step(DetachThing, &[OK],       AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(DetachThing, &[REFUSED],  AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(DetachThing, &[LOST],     AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(DetachThing, &[FAILED],   AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(DetachThing, &[DUP_409],  AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, done via reconciled", 1),
    Step(DetachThing, &[REAL_409], AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(DetachThing, &[LOST],     AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),

    Step(Transfer, &[OK],             AwsLike::Plain,     End::Done,    "intent, transferred via call", 1),
    Step(Transfer, &[REFUSED],        AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(Transfer, &[LOST],           AwsLike::Plain,     End::Done,    "intent, unknown Timeout, transferred via reconciled", 1),
    Step(Transfer, &[GARBLED],        AwsLike::Plain,     End::Done,    "intent, unknown MalformedResponse, transferred via reconciled", 1),
    Step(Transfer, &[FAILED],         AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, transferred via call", 2),
    Step(Transfer, &[TIMEOUT, FAILED], AwsLike::Plain,    End::Refused, "intent, unknown Timeout, not_done, intent, unknown InternalFailureException, not_done", 2),
    Step(Transfer, &[DUP_409],        AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, transferred via reconciled", 1),
    Step(Transfer, &[REAL_409],       AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(Transfer, &[LOST],           AwsLike::Lags,      End::InDoubt, "intent, unknown Timeout", 1),
    Step(Transfer, &[DUP_409],        AwsLike::Lags,      End::InDoubt, "intent, unknown TransferConflictException", 1),
    Step(Transfer, &[LOST],           AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),
    Step(Transfer, &[OK],             AwsLike::Lags,      End::Done,    "intent, transferred via call", 1),
    Step(Transfer, &[THROTTLED],      AwsLike::Plain,     End::Done,    "intent, transferred via call", 2),

    Step(Cancel, &[OK],       AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(Cancel, &[REFUSED],  AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(Cancel, &[LOST],     AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(Cancel, &[FAILED],   AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(Cancel, &[DUP_410],  AwsLike::Plain,     End::Done,    "intent, unknown TransferAlreadyCompletedException, done via reconciled", 1),
    Step(Cancel, &[REAL_410], AwsLike::Plain,     End::Refused, "intent, unknown TransferAlreadyCompletedException, not_done TransferAlreadyCompletedException via reconciled", 1),
    Step(Cancel, &[OK],       AwsLike::Accepted,  End::Refused, "intent, unknown TransferAlreadyCompletedException, not_done TransferAlreadyCompletedException via reconciled", 1),
    Step(Cancel, &[LOST],     AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),

    Step(ReattachPolicy, &[OK],       AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(ReattachPolicy, &[REFUSED],  AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(ReattachPolicy, &[LOST],     AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(ReattachPolicy, &[FAILED],   AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(ReattachPolicy, &[DUP_409],  AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, done via reconciled", 1),
    Step(ReattachPolicy, &[REAL_409], AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(ReattachPolicy, &[LOST],     AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),

    Step(ReattachThing, &[OK],       AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(ReattachThing, &[REFUSED],  AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(ReattachThing, &[LOST],     AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(ReattachThing, &[FAILED],   AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(ReattachThing, &[DUP_409],  AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, done via reconciled", 1),
    Step(ReattachThing, &[REAL_409], AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(ReattachThing, &[LOST],     AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),

    Step(Reactivate, &[OK],       AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(Reactivate, &[REFUSED],  AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(Reactivate, &[LOST],     AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(Reactivate, &[FAILED],   AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(Reactivate, &[DUP_409],  AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, done via reconciled", 1),
    Step(Reactivate, &[REAL_409], AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(Reactivate, &[LOST],     AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),

    Step(Accept, &[OK],        AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(Accept, &[REFUSED],   AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(Accept, &[LOST],      AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(Accept, &[FAILED],    AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(Accept, &[DUP_410],   AwsLike::Plain,     End::Done,    "intent, unknown TransferAlreadyCompletedException, done via reconciled", 1),
    Step(Accept, &[REAL_410],  AwsLike::Plain,     End::Refused, "intent, unknown TransferAlreadyCompletedException, not_done TransferAlreadyCompletedException via reconciled", 1),
    Step(Accept, &[OK],        AwsLike::Accepted,  End::Done,    "intent, unknown TransferAlreadyCompletedException, done via reconciled", 1),
    Step(Accept, &[LOST],      AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),
    Step(Accept, &[THROTTLED], AwsLike::Plain,     End::Done,    "intent, done", 2),

    Step(Reject, &[OK],       AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(Reject, &[REFUSED],  AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(Reject, &[LOST],     AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(Reject, &[FAILED],   AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(Reject, &[DUP_410],  AwsLike::Plain,     End::Done,    "intent, unknown TransferAlreadyCompletedException, done via reconciled", 1),
    Step(Reject, &[REAL_410], AwsLike::Plain,     End::Refused, "intent, unknown TransferAlreadyCompletedException, not_done TransferAlreadyCompletedException via reconciled", 1),
    Step(Reject, &[OK],       AwsLike::Accepted,  End::Refused, "intent, unknown TransferAlreadyCompletedException, not_done TransferAlreadyCompletedException via reconciled", 1),
    Step(Reject, &[LOST],     AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),

    Step(AttachPolicy, &[OK],        AwsLike::Plain,     End::Done,    "intent, done", 1),
    Step(AttachPolicy, &[REFUSED],   AwsLike::Plain,     End::Refused, "intent, not_done InvalidRequestException", 1),
    Step(AttachPolicy, &[LOST],      AwsLike::Plain,     End::Done,    "intent, unknown Timeout, done via reconciled", 1),
    Step(AttachPolicy, &[FAILED],    AwsLike::Plain,     End::Done,    "intent, unknown InternalFailureException, not_done, intent, done", 2),
    Step(AttachPolicy, &[DUP_409],   AwsLike::Plain,     End::Done,    "intent, unknown TransferConflictException, done via reconciled", 1),
    Step(AttachPolicy, &[REAL_409],  AwsLike::Plain,     End::Refused, "intent, unknown TransferConflictException, not_done TransferConflictException via reconciled", 1),
    Step(AttachPolicy, &[LIMIT_410], AwsLike::Plain,     End::Refused, "intent, unknown LimitExceededException, not_done LimitExceededException via reconciled", 1),
    Step(AttachPolicy, &[LOST],      AwsLike::ReadsFail, End::InDoubt, "intent, unknown Timeout", 1),
];

/// A fake holding the certificate as `kind` finds it, AWS being like `aws`.
fn world(kind: Kind, aws: AwsLike) -> FakeIot {
    let fake = FakeIot::new();
    let cert = match aws {
        AwsLike::Accepted => kind.start().accepted_by(TARGET),
        _ => kind.start(),
    };
    fake.put(ID, cert);
    match aws {
        AwsLike::Lags => fake.outgoing_lags(true),
        AwsLike::ReadsFail => fake.always(Operation::DescribeCertificate, FAILED),
        AwsLike::Plain | AwsLike::Accepted => {}
    }
    fake
}

/// The certificate once `kind` took effect once (the registry's own answer to one call).
async fn applied_once(kind: Kind, aws: AwsLike) -> Option<Cert> {
    let fake = world(kind, aws);
    let iot = fake.iot(account(kind.side()));
    let _ = kind
        .change()
        .send(&iot, &manifest_row(), &arn(kind.side()))
        .await;
    fake.cert(ID)
}

/// The certificate's ARN as `side` names it.
fn arn(side: Side) -> String {
    cert_arn(REGION, account(side), ID)
}

async fn step_row(row: Step) -> Result<(), String> {
    let Step(kind, answers, aws, end, want, sends) = row;
    let fake = world(kind, aws);
    let before = fake.cert(ID);
    fake.next(kind.op(), answers.iter().copied());
    let iot = fake.iot(account(kind.side()));
    let book = Book::open(kind.side());
    let manifest_row = manifest_row();
    let change = kind.change();
    let item = Item::new(&book.writer, &manifest_row, kind.side(), MAX_ATTEMPTS);
    let got = item.step(&iot, &change, &arn(kind.side())).await;
    let got = match got.map_err(|e| e.to_string())? {
        StepEnd::Done => End::Done,
        StepEnd::Refused(_) => End::Refused,
        StepEnd::InDoubt => End::InDoubt,
    };
    let (events, open) = book.close().await;
    let mut wrong = Vec::new();
    if got != end {
        wrong.push(format!("ended {got:?}, not {end:?}"));
    }
    if render(&events) != want {
        wrong.push(format!("ledger has `{}`, not `{want}`", render(&events)));
    }
    if let Err(e) = check_events(&change, &events) {
        wrong.push(e);
    }
    if open != (end == End::InDoubt) {
        wrong.push(format!("the ledger's intent is open: {open}"));
    }
    if fake.sent(kind.op()) != sends {
        wrong.push(format!(
            "{} sent {} times, not {sends}",
            kind.op(),
            fake.sent(kind.op())
        ));
    }
    let others = other_changes(&fake, Some(kind.op()));
    if !others.is_empty() {
        wrong.push(format!("other changes sent: {others:?}"));
    }
    // Done: AWS has the change, once; refused: AWS has nothing of it.
    let want_cert = match end {
        End::Done => Some(applied_once(kind, aws).await),
        End::Refused => Some(before),
        End::InDoubt => None,
    };
    if let Some(w) = want_cert.filter(|w| *w != fake.cert(ID)) {
        wrong.push(format!("AWS holds {:?}, not {w:?}", fake.cert(ID)));
    }
    match wrong.is_empty() {
        true => Ok(()),
        false => Err(wrong.join("; ")),
    }
}

#[tokio::test]
async fn a_step_ends_as_aws_shows_it_and_is_never_sent_again_once_it_took_effect() {
    let failed = failures(STEPS, step_row, |r| {
        format!("{:?} {:?} {:?}", r.0, r.1, r.2)
    })
    .await;
    assert!(
        failed.is_empty(),
        "{} of {} rows:\n{}",
        failed.len(),
        STEPS.len(),
        failed.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Item::settle

/// What AWS shows of an intent an earlier run left open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shows {
    /// The call took effect.
    Took,
    /// It did not.
    NotTook,
    /// It did, but AWS cannot tell yet (a transfer not listed as outgoing yet).
    CannotTell,
    /// DescribeCertificate fails.
    ReadFails,
    /// The target has accepted the certificate since.
    Accepted,
}

/// An open intent of `kind`, what AWS shows -> what is settled, the events recorded.
#[derive(Debug, Clone, Copy)]
struct Settle(Kind, Shows, Settled, &'static str);

use Settled as S;

#[rustfmt::skip]
const SETTLES: &[Settle] = &[
    Settle(Deactivate, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(Deactivate, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(Deactivate, Shows::ReadFails, S::InDoubt,    ""),

    Settle(DetachPolicy, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(DetachPolicy, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(DetachPolicy, Shows::ReadFails, S::InDoubt,    ""),

    Settle(DetachThing, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(DetachThing, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(DetachThing, Shows::ReadFails, S::InDoubt,    ""),

    Settle(Transfer, Shows::Took,       S::TookEffect, "transferred via reconciled"),
    Settle(Transfer, Shows::NotTook,    S::NotDone,    "not_done via reconciled"),
    Settle(Transfer, Shows::CannotTell, S::InDoubt,    ""),
    Settle(Transfer, Shows::ReadFails,  S::InDoubt,    ""),
    Settle(Transfer, Shows::Accepted,   S::TookEffect, "transferred via reconciled"),

    Settle(Cancel, Shows::Took,      S::TookEffect, "cancelled via reconciled"),
    Settle(Cancel, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(Cancel, Shows::ReadFails, S::InDoubt,    ""),
    Settle(Cancel, Shows::Accepted,  S::NotDone,    "not_done via reconciled"),

    Settle(ReattachPolicy, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(ReattachPolicy, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(ReattachPolicy, Shows::ReadFails, S::InDoubt,    ""),

    Settle(ReattachThing, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(ReattachThing, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(ReattachThing, Shows::ReadFails, S::InDoubt,    ""),

    Settle(Reactivate, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(Reactivate, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(Reactivate, Shows::ReadFails, S::InDoubt,    ""),

    Settle(Accept, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(Accept, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(Accept, Shows::ReadFails, S::InDoubt,    ""),

    Settle(Reject, Shows::Took,      S::TookEffect, "rejected via reconciled"),
    Settle(Reject, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(Reject, Shows::ReadFails, S::InDoubt,    ""),
    Settle(Reject, Shows::Accepted,  S::NotDone,    "not_done via reconciled"),

    Settle(AttachPolicy, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(AttachPolicy, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(AttachPolicy, Shows::ReadFails, S::InDoubt,    ""),

    Settle(AttachThing, Shows::Took,      S::TookEffect, "done via reconciled"),
    Settle(AttachThing, Shows::NotTook,   S::NotDone,    "not_done via reconciled"),
    Settle(AttachThing, Shows::ReadFails, S::InDoubt,    ""),
];

async fn settle_row(row: Settle) -> Result<(), String> {
    let Settle(kind, found, settled, want) = row;
    let fake = FakeIot::new();
    let side = kind.side();
    let iot = fake.iot(account(side));
    let manifest_row = manifest_row();
    let change = kind.change();
    match found {
        Shows::Accepted => fake.put(ID, kind.start().pending_to(TARGET).accepted_by(TARGET)),
        _ => fake.put(ID, kind.start()),
    }
    fake.outgoing_lags(found == Shows::CannotTell);
    if matches!(found, Shows::Took | Shows::CannotTell) {
        let sent = change.send(&iot, &manifest_row, &arn(side)).await;
        sent.map_err(|f| format!("setting up: {f}"))?;
    }
    if found == Shows::ReadFails {
        fake.always(Operation::DescribeCertificate, FAILED);
    }
    // The earlier run's intent, read back from the ledger as a resume finds it.
    let book = Book::open(side);
    let item = Item::new(&book.writer, &manifest_row, side, MAX_ATTEMPTS);
    let recorded = item.record(change.stage(), Outcome::Intent, change.details());
    recorded.await.map_err(|e| e.to_string())?;
    let open = {
        let state = book.state.lock().expect("ledger state");
        state.get(ID).and_then(|r| r.open_intent.cloned())
    };
    let open = open.ok_or("the intent is not open")?;
    fake.reset_sent();
    // A fresh client: the setup's calls leave nothing behind in it.
    let iot: Iot = fake.iot(account(side));
    let got = item.settle(&iot, &open).await.map_err(|e| e.to_string())?;
    let (events, still_open) = book.close().await;
    let events = &events[1..];
    let mut wrong = Vec::new();
    if got != settled {
        wrong.push(format!("settled {got:?}, not {settled:?}"));
    }
    if render(events) != want {
        wrong.push(format!("ledger has `{}`, not `{want}`", render(events)));
    }
    if let Err(e) = check_events(&change, events) {
        wrong.push(e);
    }
    if still_open != (settled == S::InDoubt) {
        wrong.push(format!("the ledger's intent is open: {still_open}"));
    }
    let changes = other_changes(&fake, None);
    if !changes.is_empty() {
        wrong.push(format!("settling sent changes: {changes:?}"));
    }
    match wrong.is_empty() {
        true => Ok(()),
        false => Err(wrong.join("; ")),
    }
}

#[tokio::test]
async fn an_open_intent_is_settled_as_aws_shows_it_and_only_read() {
    let failed = failures(SETTLES, settle_row, |r| format!("{:?} {:?}", r.0, r.1)).await;
    assert!(
        failed.is_empty(),
        "{} of {} rows:\n{}",
        failed.len(),
        SETTLES.len(),
        failed.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// check::took_effect

/// The certificate as the check finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The source's, ACTIVE, the policy and the thing attached.
    Active,
    /// The source's, INACTIVE, nothing attached (prepared, cancelled, or rejected).
    Bare,
    /// Pending transfer to the row's target, listed as outgoing.
    Pending,
    /// Pending transfer to the row's target, not listed as outgoing yet.
    Unlisted,
    /// Pending transfer to another account.
    PendingElsewhere,
    /// Accepted by the target; the source's DescribeCertificate answers so.
    Accepted(AfterAccept),
    /// Accepted by the target, the policy attached there.
    AcceptedWithPolicy,
    /// Accepted by the target, the thing attached there.
    AcceptedWithThing,
    /// In no account.
    Missing,
}

impl Shape {
    fn cert(self) -> Option<Cert> {
        let bare = Cert::new(SOURCE, "INACTIVE");
        let accepted = bare.clone().pending_to(TARGET).accepted_by(TARGET);
        Some(match self {
            Shape::Active => Cert::new(SOURCE, "ACTIVE")
                .with_policy(POLICY)
                .with_thing(THING),
            Shape::Bare => bare,
            Shape::Pending => bare.pending_to(TARGET),
            Shape::Unlisted => Cert {
                listed: false,
                ..bare.pending_to(TARGET)
            },
            Shape::PendingElsewhere => bare.pending_to(OTHER),
            Shape::Accepted(_) => accepted,
            Shape::AcceptedWithPolicy => accepted.with_policy(POLICY),
            Shape::AcceptedWithThing => accepted.with_thing(THING),
            Shape::Missing => return None,
        })
    }
}

/// What the check must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Took,
    NotTook,
    CannotTell,
    /// The check fails with this error code.
    Fails(&'static str),
}

/// DescribeCertificate refused as for a missing permission, or as after an accept.
const DENIED: Answer = Answer::Refuse(403, "AccessDeniedException");
const UNAUTHORIZED: Answer = Answer::Refuse(401, "UnauthorizedException");

/// Asked with `side`'s credentials whether `kind` took effect on a certificate of this
/// shape (DescribeCertificate answering as scripted, if it is) -> what the check says.
#[derive(Debug, Clone, Copy)]
struct Check(Side, Kind, Shape, Option<Answer>, Expect);

use AfterAccept as After;
use Expect::{CannotTell, Fails, NotTook, Took};

#[rustfmt::skip]
const CHECKS: &[Check] = &[
    Check(Side::Source, Deactivate,     Shape::Active, None, NotTook),
    Check(Side::Source, Deactivate,     Shape::Bare,   None, Took),
    Check(Side::Source, Deactivate,     Shape::Accepted(After::NotFound), None, NotTook),
    Check(Side::Source, Deactivate,     Shape::Active, Some(FAILED), Fails("InternalFailureException")),
    Check(Side::Source, Reactivate,     Shape::Bare,   None, NotTook),
    Check(Side::Source, Reactivate,     Shape::Active, None, Took),
    Check(Side::Source, DetachPolicy,   Shape::Active, None, NotTook),
    Check(Side::Source, DetachPolicy,   Shape::Bare,   None, Took),
    Check(Side::Source, ReattachPolicy, Shape::Bare,   None, NotTook),
    Check(Side::Source, ReattachPolicy, Shape::Active, None, Took),
    Check(Side::Source, DetachThing,    Shape::Active, None, NotTook),
    Check(Side::Source, DetachThing,    Shape::Bare,   None, Took),
    Check(Side::Source, ReattachThing,  Shape::Bare,   None, NotTook),
    Check(Side::Source, ReattachThing,  Shape::Active, None, Took),

    Check(Side::Source, Transfer, Shape::Pending,          None, Took),
    Check(Side::Source, Transfer, Shape::Unlisted,         None, CannotTell),
    Check(Side::Source, Transfer, Shape::PendingElsewhere, None, NotTook),
    Check(Side::Source, Transfer, Shape::Bare,             None, NotTook),
    Check(Side::Source, Transfer, Shape::Active,           None, NotTook),
    // The target accepted: whatever the source's DescribeCertificate answers means the same.
    Check(Side::Source, Transfer, Shape::Accepted(After::NotFound),     None, Took),
    Check(Side::Source, Transfer, Shape::Accepted(After::AccessDenied), None, Took),
    Check(Side::Source, Transfer, Shape::Accepted(After::Unauthorized), None, Took),
    Check(Side::Source, Transfer, Shape::Accepted(After::Visible),      None, Took),
    Check(Side::Source, Transfer, Shape::Missing,                       None, Took),
    // A 403/401 while the transfer is still listed as outgoing is a real refusal.
    Check(Side::Source, Transfer, Shape::Pending, Some(DENIED),       Fails("AccessDeniedException")),
    Check(Side::Source, Transfer, Shape::Pending, Some(UNAUTHORIZED), Fails("UnauthorizedException")),
    // Documented reading (README): a 403 that the outgoing listing does not contradict means
    // "accepted", even for a certificate never transferred (a permission missing reads so).
    Check(Side::Source, Transfer, Shape::Bare,    Some(DENIED),       Took),
    Check(Side::Source, Transfer, Shape::Pending, Some(FAILED),       Fails("InternalFailureException")),

    Check(Side::Source, Cancel, Shape::Pending,                       None, NotTook),
    Check(Side::Source, Cancel, Shape::Unlisted,                      None, NotTook),
    Check(Side::Source, Cancel, Shape::Bare,                          None, Took),
    Check(Side::Source, Cancel, Shape::Accepted(After::NotFound),     None, NotTook),
    Check(Side::Source, Cancel, Shape::Accepted(After::AccessDenied), None, NotTook),
    Check(Side::Source, Cancel, Shape::Accepted(After::Unauthorized), None, NotTook),
    Check(Side::Source, Cancel, Shape::Accepted(After::Visible),      None, NotTook),

    // Target-side calls asked with the source's credentials.
    Check(Side::Source, Accept,       Shape::Pending,                       None, NotTook),
    Check(Side::Source, Accept,       Shape::Unlisted,                      None, NotTook),
    Check(Side::Source, Accept,       Shape::Bare,                          None, NotTook),
    Check(Side::Source, Accept,       Shape::Accepted(After::AccessDenied), None, Took),
    Check(Side::Source, Accept,       Shape::Accepted(After::Visible),      None, Took),
    Check(Side::Source, Reject,       Shape::Bare,                          None, CannotTell),
    Check(Side::Source, AttachPolicy, Shape::Pending,                       None, CannotTell),

    Check(Side::Target, Accept,       Shape::Pending,                   None, NotTook),
    Check(Side::Target, Accept,       Shape::Accepted(After::NotFound), None, Took),
    Check(Side::Target, Accept,       Shape::Bare,                      None, NotTook),
    Check(Side::Target, Accept,       Shape::PendingElsewhere,          None, NotTook),
    Check(Side::Target, Accept,       Shape::Pending,                   Some(FAILED), Fails("InternalFailureException")),
    Check(Side::Target, Accept,       Shape::Pending,                   Some(DENIED), Fails("AccessDeniedException")),
    Check(Side::Target, Reject,       Shape::Bare,                      None, Took),
    Check(Side::Target, Reject,       Shape::Missing,                   None, Took),
    Check(Side::Target, Reject,       Shape::Pending,                   None, NotTook),
    Check(Side::Target, Reject,       Shape::Accepted(After::NotFound), None, NotTook),
    Check(Side::Target, AttachPolicy, Shape::AcceptedWithPolicy,        None, Took),
    Check(Side::Target, AttachPolicy, Shape::Accepted(After::NotFound), None, NotTook),
    Check(Side::Target, AttachPolicy, Shape::Pending,                   None, NotTook),
    Check(Side::Target, AttachThing,  Shape::AcceptedWithThing,         None, Took),
    Check(Side::Target, AttachThing,  Shape::Accepted(After::NotFound), None, NotTook),
];

async fn check_row(row: Check) -> Result<(), String> {
    let Check(side, kind, shape, describe, expect) = row;
    let fake = FakeIot::new();
    if let Some(cert) = shape.cert() {
        fake.put(ID, cert);
    }
    if let Shape::Accepted(after) = shape {
        fake.after_accept(after);
    }
    if let Some(answer) = describe {
        fake.always(Operation::DescribeCertificate, answer);
    }
    let iot = fake.iot(account(side));
    let change = kind.change();
    let action = change.action();
    let found = check::took_effect(side, &iot, ID, TARGET, action, change.subject(), None).await;
    let got = match &found {
        Ok(f) if f.seen.is_empty() => return Err("nothing said of what AWS shows".into()),
        Ok(f) => match f.took_effect {
            Some(true) => Took,
            Some(false) => NotTook,
            None => CannotTell,
        },
        Err(f) => match expect {
            Fails(want) if f.code() == Some(want) => expect,
            _ => return Err(format!("failed: {f}")),
        },
    };
    if got != expect {
        return Err(format!("says {got:?}, not {expect:?} ({found:?})"));
    }
    let changes = other_changes(&fake, None);
    if !changes.is_empty() {
        return Err(format!("checking sent changes: {changes:?}"));
    }
    Ok(())
}

#[tokio::test]
async fn took_effect_reads_each_sides_view_and_every_answer_of_the_source_after_accept_alike() {
    let name = |r: &Check| format!("{:?} {:?} {:?} {:?}", r.0, r.1, r.2, r.3);
    let failed = failures(CHECKS, check_row, name).await;
    assert!(
        failed.is_empty(),
        "{} of {} rows:\n{}",
        failed.len(),
        CHECKS.len(),
        failed.join("\n")
    );
}
