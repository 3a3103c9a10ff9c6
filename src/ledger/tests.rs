use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::replay::torn_path;
use super::*;
use crate::certificate::CertStatus;

const ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn opts(sha: &str) -> OpenOptionsLedger<'_> {
    OpenOptionsLedger {
        kind: LedgerKind::Transfer,
        manifest_path: Path::new("m.csv"),
        manifest_sha256: sha,
        undo: UndoHistory::Keep,
    }
}

fn intent(action: Action) -> Event {
    Event::new(
        ID,
        Some("222222222222"),
        None,
        Stage::Transfer,
        Outcome::Intent,
    )
    .with(Details {
        action: Some(action),
        ..Default::default()
    })
}

#[tokio::test]
async fn events_survive_reopen_and_runs_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    let ledger = Ledger::open(&path, opts("abc")).unwrap();
    let state = ledger.shared_state();
    let (w, h) = ledger.into_writer();
    w.record(intent(Action::Transfer)).await.unwrap();
    drop(w);
    h.await.unwrap().unwrap();
    assert!(state.lock().unwrap().get(ID).unwrap().open_intent.is_some());

    let ledger = Ledger::open(&path, opts("abc")).unwrap();
    assert_eq!(ledger.state().runs, 2);
    let state = ledger.state();
    let rec = state.get(ID).unwrap();
    assert_eq!(rec.open_intent.as_ref().unwrap().action, Action::Transfer);
    assert!(ledger.warnings().is_empty());
}

#[test]
fn second_open_is_locked_and_names_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    let _first = Ledger::open(&path, opts("abc")).unwrap();
    match Ledger::open(&path, opts("abc")) {
        Err(LedgerError::Locked { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, got a second open ledger"),
    }
}

#[test]
fn torn_last_line_is_set_aside_and_middle_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    drop(Ledger::open(&path, opts("abc")).unwrap());
    let good = serde_json::to_string(&intent(Action::Transfer)).unwrap();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    write!(f, "{good}\n{{\"ts\":\"2026").unwrap();
    drop(f);
    let ledger = Ledger::open(&path, opts("abc")).unwrap();
    assert_eq!(ledger.warnings().len(), 1, "{:?}", ledger.warnings());
    assert!(
        ledger.warnings()[0].contains(":4:"),
        "{}",
        ledger.warnings()[0]
    );
    assert!(ledger.state().get(ID).is_some());
    let torn = std::fs::read_to_string(torn_path(&path)).unwrap();
    assert!(torn.starts_with("{\"ts\":\"2026"));
    drop(ledger);

    // Now damage a middle line: the header is line 1, run lines follow.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{garbage";
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let before = std::fs::read(&path).unwrap();
    match Ledger::open(&path, opts("abc")) {
        Err(LedgerError::Damaged { line, .. }) => assert_eq!(line, 3),
        Err(e) => panic!("expected Damaged, got {e}"),
        Ok(_) => panic!("expected Damaged"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a damaged ledger is left untouched"
    );
}

#[test]
fn changed_manifest_is_a_warning_and_wrong_kind_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    drop(Ledger::open(&path, opts("abc")).unwrap());
    let l = Ledger::open(&path, opts("def")).unwrap();
    assert!(l.warnings()[0].contains("changed"));
    drop(l);
    let mut o = opts("abc");
    o.kind = LedgerKind::Accept;
    assert!(matches!(
        Ledger::open(&path, o),
        Err(LedgerError::WrongKind { .. })
    ));
}

#[test]
fn undo_tracks_detach_and_reattach() {
    let mut s = LedgerState::new(UndoHistory::Keep);
    let done = |action, policy: Option<&str>, prev: Option<&str>| {
        Event::new(ID, None, None, Stage::Prepare, Outcome::Done).with(Details {
            action: Some(action),
            policy: policy.map(Into::into),
            previous_status: prev.map(CertStatus::parse),
            ..Default::default()
        })
    };
    s.apply(&done(Action::Deactivate, None, Some("ACTIVE")));
    s.apply(&done(Action::DetachPolicy, Some("p1"), None));
    s.apply(&done(Action::DetachPolicy, Some("p2"), None));
    s.apply(&done(Action::ReattachPolicy, Some("p1"), None));
    let undo = s.get(ID).unwrap().undo.as_deref().unwrap().clone();
    assert_eq!(undo.previous_status, Some(CertStatus::Active));
    assert_eq!(undo.policies, vec!["p2".to_string()]);
}

#[test]
fn failure_keeps_an_unknown_intent_open() {
    let mut s = LedgerState::new(UndoHistory::Drop);
    s.apply(&intent(Action::Transfer));
    s.apply(
        &Event::new(ID, None, None, Stage::Transfer, Outcome::Failed).with(Details {
            error_code: Some("InternalFailureException".into()),
            ..Default::default()
        }),
    );
    let rec = s.get(ID).unwrap();
    assert_eq!(rec.state, ItemState::Failed);
    assert!(rec.open_intent.is_some());
    s.apply(&Event::new(
        ID,
        None,
        None,
        Stage::Transfer,
        Outcome::Transferred,
    ));
    assert_eq!(s.get(ID).unwrap().state, ItemState::Transferred);
    assert!(s.get(ID).unwrap().failure.is_none());
}
