//! The run's one resume preamble ([`hand_over`]) as a table: an intent an earlier run left
//! open x what AWS shows x what the ledger says of the certificate x the run's rule for
//! failures -> how the item ends, what the ledger holds, and whether (and where) the workflow
//! was handed the certificate. AWS is the in-memory one of [`crate::iot::fake`] (the real
//! client, the real `Iot`); the ledger is real.
//!
//! And the rules each workflow gives the preamble ([`Workflow::after_settle`], `wants`), as
//! tables of pure functions.

use std::sync::Mutex;

use super::resume::{hand_over, Lent};
use super::selection::{FailedItems, Queued, Selection};
use crate::certificate::CertStatus;
use crate::error::Error;
use crate::iot::fake::{Answer, Cert, FakeIot, Loss};
use crate::iot::Iot;
use crate::ledger::{
    Action, Details, Event, ItemRecord, ItemState, Ledger, LedgerError, LedgerKind,
    OpenOptionsLedger, Outcome, Stage, UndoHistory, Via,
};
use crate::lifecycle::{AfterSettle, LedgerSpec, Resume, Setup, Side, Work, Workflow};
use crate::manifest::ManifestRow;
use crate::pacer::Operation;
use crate::pipeline::ItemEnd;

const ID: &str = "beef0000beef0000beef0000beef0000beef0000beef0000beef0000beef0000";
const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";

/// A workflow that only says what the preamble asks and notes where it was handed a
/// certificate: it settles every intent but a cancel's, wants what is neither transferred
/// nor retired, and makes a reject that took effect end the certificate as accepted.
struct Probe {
    iot: Iot,
    handed: Mutex<Vec<Resume>>,
}

impl Workflow for Probe {
    type Options = ();
    const COMMAND: &'static str = "probe";

    fn ledger(_: &()) -> LedgerSpec {
        LedgerSpec {
            kind: LedgerKind::Transfer,
            undo: UndoHistory::Drop,
        }
    }

    async fn connect(_: &mut Setup<'_>, _: ()) -> Result<Self, Error> {
        unreachable!("the table builds its probe")
    }

    fn verb(&self) -> &'static str {
        "probing"
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        !rec.is_some_and(|r| matches!(r.state, ItemState::Transferred | ItemState::Retired))
    }

    fn settler(
        &self,
        _row: &ManifestRow,
        open: &crate::ledger::OpenIntent,
    ) -> Option<(&Iot, Side)> {
        (open.stage != Stage::Cancel).then_some((&self.iot, Side::Source))
    }

    fn after_settle(
        &self,
        _row: &ManifestRow,
        open: &crate::ledger::OpenIntent,
        took: bool,
    ) -> AfterSettle {
        match (open.action, took) {
            (Action::Reactivate, true) => AfterSettle::Ends {
                stage: Stage::Restore,
                outcome: Outcome::Restored,
            },
            (_, true) => AfterSettle::Continue(Resume::AfterMainCall),
            (_, false) => AfterSettle::Continue(Resume::Start),
        }
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.handed.lock().unwrap().push(work.resume);
        Ok(ItemEnd::Done)
    }
}

/// What the certificate looks like in AWS, and how AWS answers the read that settles.
#[derive(Clone, Copy, Debug)]
enum InAws {
    /// ACTIVE in the source.
    Active,
    /// INACTIVE in the source.
    Inactive,
    /// Pending transfer to the target, listed.
    Pending,
    /// Every DescribeCertificate fails.
    Unreadable,
}

/// What the ledger says of the certificate besides its open intent.
#[derive(Clone, Copy, Debug)]
enum Before {
    /// Nothing else.
    Started,
    /// A failure a person must fix.
    Failed,
}

/// How the preamble ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// The workflow was handed the certificate at this resume point.
    Handed(Resume),
    /// It was not; the item ended so.
    Ended(&'static str),
}

/// One row: the open intent, AWS, the ledger, the run's failure rule -> the end, the
/// outcome the settle recorded (`None`: nothing).
struct Row(
    Stage,
    Action,
    InAws,
    Before,
    FailedItems,
    Then,
    Option<Outcome>,
);

use Action::{Deactivate, Reactivate, Transfer};
use Before::{Failed, Started};
use FailedItems::{Retry, Skip};
use InAws::{Active, Inactive, Pending, Unreadable};
use Then::{Ended, Handed};

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // took effect: the workflow goes on after it
    Row(Stage::Prepare, Deactivate, Inactive,   Started, Skip,  Handed(Resume::AfterMainCall), Some(Outcome::Done)),
    // did not: from the start
    Row(Stage::Prepare, Deactivate, Active,     Started, Skip,  Handed(Resume::Start),         Some(Outcome::NotDone)),
    // AWS cannot be asked: left in doubt, the workflow never sees it
    Row(Stage::Prepare, Deactivate, Unreadable, Started, Skip,  Ended("in_doubt"),             None),
    // a failure waiting for --retry-failed is only settled, not a new failure
    Row(Stage::Prepare, Deactivate, Inactive,   Failed,  Skip,  Ended("settled"),              Some(Outcome::Done)),
    Row(Stage::Prepare, Deactivate, Active,     Failed,  Skip,  Ended("settled"),              Some(Outcome::NotDone)),
    // ... and handed over with --retry-failed
    Row(Stage::Prepare, Deactivate, Inactive,   Failed,  Retry, Handed(Resume::AfterMainCall), Some(Outcome::Done)),
    // a terminal outcome the settle recorded leaves nothing the workflow wants
    Row(Stage::Transfer, Transfer,  Pending,    Started, Skip,  Ended("done"),                 Some(Outcome::Transferred)),
    Row(Stage::Transfer, Transfer,  Inactive,   Started, Skip,  Handed(Resume::Start),         Some(Outcome::NotDone)),
    // the workflow says the story ends: the run records it
    Row(Stage::Restore, Reactivate, Active,     Started, Skip,  Ended("done"),                 Some(Outcome::Done)),
    // another command's intent: left in doubt without asking AWS
    Row(Stage::Cancel, Action::Cancel, Pending, Started, Skip,  Ended("in_doubt"),             None),
];

fn end_name(end: &ItemEnd) -> &'static str {
    match end {
        ItemEnd::Done => "done",
        ItemEnd::Failed(_) => "failed",
        ItemEnd::Waiting(_) => "waiting",
        ItemEnd::InDoubt => "in_doubt",
        ItemEnd::Interrupted => "interrupted",
        ItemEnd::Abandoned => "abandoned",
        ItemEnd::Postponed(_) => "postponed",
        ItemEnd::Settled => "settled",
        ItemEnd::Untouched => "untouched",
    }
}

async fn play(row: &Row) -> Result<(), String> {
    let Row(stage, action, aws, before, failed, then, recorded) = *row;
    let fake = FakeIot::new();
    match aws {
        Active => fake.put(ID, Cert::new(SOURCE, "ACTIVE")),
        Inactive => fake.put(ID, Cert::new(SOURCE, "INACTIVE")),
        Pending => fake.put(ID, Cert::new(SOURCE, "ACTIVE").pending_to(TARGET)),
        Unreadable => {
            fake.put(ID, Cert::new(SOURCE, "INACTIVE"));
            fake.always(
                Operation::DescribeCertificate,
                Answer::Lose(Loss::ServerError),
            );
        }
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ledger.jsonl");
    let ledger = Ledger::open(
        &path,
        OpenOptionsLedger {
            kind: LedgerKind::Transfer,
            manifest_path: std::path::Path::new("m.csv"),
            manifest_sha256: "0",
            undo: UndoHistory::Drop,
        },
    )
    .map_err(|e| e.to_string())?;
    let mut ledger = ledger;
    ledger.start_run(None).map_err(|e| e.to_string())?;
    let state = ledger.shared_state();
    let (writer, task) = ledger.into_writer();
    let event = |stage, outcome| Event::new(ID, Some(TARGET), None, stage, outcome);
    if let Before::Failed = before {
        let failure = Details {
            error_code: Some("NotAllowed".into()),
            message: Some("a flag is missing".into()),
            ..Default::default()
        };
        writer
            .record(event(Stage::Prepare, Outcome::Failed).with(failure))
            .await
            .map_err(|e| e.to_string())?;
    }
    let intent = Details {
        action: Some(action),
        previous_status: Some(CertStatus::Active),
        ..Default::default()
    };
    writer
        .record(event(stage, Outcome::Intent).with(intent))
        .await
        .map_err(|e| e.to_string())?;
    let open = state
        .lock()
        .unwrap()
        .get(ID)
        .and_then(|r| r.open_intent.cloned());
    let probe = Probe {
        iot: fake.iot(SOURCE),
        handed: Mutex::new(Vec::new()),
    };
    let selection = Selection::new(&probe, failed);
    let queued = Queued {
        row: ManifestRow {
            certificate_id: ID.into(),
            target_account: TARGET.into(),
            ..Default::default()
        },
        open,
    };
    let lent = Lent {
        ledger: &writer,
        state: &state,
        max_attempts: 2,
    };
    let end = hand_over(&probe, &selection, queued, lent, crate::stop::Gate::open())
        .await
        .map_err(|e| e.to_string())?;
    drop(writer);
    task.await
        .expect("writer task")
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let settled: Vec<Event> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .filter(|e| !matches!(e.outcome, Outcome::Intent | Outcome::Failed))
        .collect();

    let handed = probe.handed.into_inner().unwrap();
    let got = match handed.as_slice() {
        [] => Ended(end_name(&end)),
        [resume] if end == ItemEnd::Done => Handed(*resume),
        more => return Err(format!("handed {more:?}, ended {end:?}")),
    };
    if got != then {
        return Err(format!("ended {got:?}, expected {then:?}"));
    }
    let first = settled.first().map(|e| e.outcome);
    if first != recorded {
        return Err(format!(
            "the settle recorded {first:?}, expected {recorded:?}"
        ));
    }
    if let Some(e) = settled.first() {
        if e.details.via != Some(Via::Reconciled) {
            return Err(format!("{e:?} is not via reconciled"));
        }
    }
    if action == Reactivate && recorded.is_some() {
        let last = settled.last().map(|e| e.outcome);
        if last != Some(Outcome::Restored) {
            return Err(format!("the workflow's end was not recorded: {last:?}"));
        }
    }
    let asked = fake.sent_all();
    if then == Ended("in_doubt") && matches!(aws, Pending) && !asked.is_empty() {
        return Err(format!(
            "asked AWS about another command's intent: {asked:?}"
        ));
    }
    if let Some(op) = asked.keys().find(|op| op.is_mutating()) {
        return Err(format!("settling sent {op}"));
    }
    Ok(())
}

#[tokio::test]
async fn an_open_intent_is_settled_once_by_the_run_and_the_workflow_told_where_to_start() {
    let mut failures = Vec::new();
    for (i, row) in ROWS.iter().enumerate() {
        if let Err(why) = play(row).await {
            failures.push(format!(
                "row {i} ({:?} {:?} {:?} {:?}): {why}",
                row.0, row.1, row.2, row.3
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The rules each workflow gives the preamble: where it goes on after an earlier run's
/// intent was settled.
#[test]
fn each_workflow_goes_on_after_a_settled_intent_as_its_story_says() {
    use crate::lifecycle::accept::{accept_after_settle, reject_after_settle};
    use crate::lifecycle::register::register_after_settle;
    use AfterSettle::{Continue, Ends};
    use Resume::{AfterMainCall, Start};
    let open = |stage, action| crate::ledger::OpenIntent {
        stage,
        action,
        subject: None,
        group: None,
        previous_status: None,
    };
    let accepted = Ends {
        stage: Stage::Accept,
        outcome: Outcome::Accepted,
    };
    type Rule = fn(&crate::ledger::OpenIntent, bool) -> AfterSettle;
    #[rustfmt::skip]
    let rows: &[(&str, Rule, Stage, Action, bool, AfterSettle)] = &[
        ("accept", accept_after_settle, Stage::Accept, Action::Accept, true, Continue(AfterMainCall)),
        ("accept", accept_after_settle, Stage::Accept, Action::Accept, false, Continue(Start)),
        ("accept", accept_after_settle, Stage::Accept, Action::AttachPolicy, false, Continue(AfterMainCall)),
        ("accept", accept_after_settle, Stage::Carry, Action::CreatePolicy, false, Continue(AfterMainCall)),
        ("accept", accept_after_settle, Stage::Reject, Action::Reject, false, Continue(Start)),
        ("reject", reject_after_settle, Stage::Accept, Action::Accept, true, accepted),
        ("reject", reject_after_settle, Stage::Accept, Action::AttachPolicy, true, accepted),
        ("reject", reject_after_settle, Stage::Accept, Action::Accept, false, Continue(Start)),
        ("reject", reject_after_settle, Stage::Reject, Action::Reject, false, Continue(Start)),
        ("register", register_after_settle, Stage::Register, Action::Register, true, Continue(AfterMainCall)),
        ("register", register_after_settle, Stage::Register, Action::Register, false, Continue(Start)),
        ("register", register_after_settle, Stage::Carry, Action::CreateThing, false, Continue(AfterMainCall)),
    ];
    for (name, rule, stage, action, took, expected) in rows {
        let got = rule(&open(*stage, *action), *took);
        assert_eq!(got, *expected, "{name}: {stage} {action} took={took}");
    }
}

/// What each workflow still wants of a certificate, by what the ledger says of it: a rerun
/// does nothing twice.
#[test]
fn each_workflow_wants_only_what_is_left_to_do() {
    use crate::lifecycle::accept::unfinished;
    use crate::lifecycle::cancel::{wanted, Restore};
    use crate::lifecycle::migrate::untransferred;
    use crate::lifecycle::register::unregistered;
    use crate::lifecycle::retire::unretired;
    use ItemState::*;
    let rec = |state| ItemRecord {
        state,
        target: None,
        region: None,
        open_intent: None,
        failure: None,
        undo: None,
    };
    // state, then: transfer, accept, accept --carry, cancel, cancel --restore, register, retire
    #[rustfmt::skip]
    let rows: &[(ItemState, [bool; 7])] = &[
        (Started,     [true,  true,  true,  false, false, true,  true ]),
        (Transferred, [false, true,  true,  true,  true,  true,  true ]),
        (Failed,      [true,  true,  true,  false, false, true,  true ]),
        (Cancelled,   [false, true,  true,  false, true,  true,  true ]),
        (Restored,    [false, true,  true,  false, false, true,  true ]),
        (Accepted,    [false, false, true,  false, false, true,  true ]),
        (Carried,     [false, false, false, false, false, true,  true ]),
        (Rejected,    [false, false, false, false, false, true,  true ]),
        (Registered,  [false, true,  true,  false, false, false, true ]),
        (Retired,     [false, true,  true,  false, false, true,  false]),
    ];
    for (state, expected) in rows {
        let r = rec(*state);
        let got = [
            untransferred(Some(&r)),
            unfinished(Some(&r), false),
            unfinished(Some(&r), true),
            wanted(Some(&r), Restore::No),
            wanted(Some(&r), Restore::Yes),
            unregistered(Some(&r)),
            unretired(Some(&r)),
        ];
        assert_eq!(&got, expected, "{state:?}");
    }
    // A certificate the ledger never saw: every workflow but cancel wants it.
    assert!(untransferred(None) && unfinished(None, false) && unregistered(None));
    assert!(!wanted(None, Restore::Yes));
}

#[test]
fn a_ledger_named_with_ledger_keeps_its_failure_report_beside_it() {
    use super::failures_beside;
    use std::path::Path;
    let cases = [
        ("elsewhere/m.ledger.jsonl", "elsewhere/m.failures.csv"),
        ("x/m.accept-ledger.jsonl", "x/m.accept-failures.csv"),
        ("wave2.jsonl", "wave2.failures.csv"),
        ("/var/lib/run/ledger", "/var/lib/run/ledger.failures.csv"),
    ];
    for (ledger, report) in cases {
        assert_eq!(
            failures_beside(Path::new(ledger)),
            Path::new(report),
            "{ledger}"
        );
    }
}
