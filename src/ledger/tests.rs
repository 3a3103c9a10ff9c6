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
    let mut ledger = Ledger::open(&path, opts("abc")).unwrap();
    ledger.start_run(None).unwrap();
    let state = ledger.shared_state();
    let (w, h) = ledger.into_writer();
    w.record(intent(Action::Transfer)).await.unwrap();
    drop(w);
    h.await.unwrap().unwrap();
    assert!(state.lock().unwrap().get(ID).unwrap().open_intent.is_some());

    let mut ledger = Ledger::open(&path, opts("abc")).unwrap();
    assert_eq!(ledger.state().runs, 1);
    ledger.start_run(None).unwrap();
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
    Ledger::open(&path, opts("abc"))
        .unwrap()
        .start_run(None)
        .unwrap();
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
    let undo = s.get(ID).unwrap().undo.unwrap().clone();
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

/// Every record of a state, as text, by id: two states compare equal when they hold the same.
fn snapshot(state: &LedgerState) -> std::collections::BTreeMap<String, String> {
    state
        .iter()
        .map(|(id, rec)| (id.to_string(), format!("{rec:?}")))
        .collect()
}

/// The account and region of [`varied_ledger`]'s run.
static RUN_IDENTITY: std::sync::LazyLock<Identity> = std::sync::LazyLock::new(|| Identity {
    account: "111111111111".into(),
    region: "eu-west-1".into(),
});

fn numbered_id(n: u64) -> String {
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{a:016x}{n:016x}{:016x}{:016x}", a.rotate_left(17), !n)
}

/// A ledger with finished, failed, waiting, in-doubt and half-prepared certificates, two
/// targets, a region, an id that is not lowercase hex and the account of its run:
/// everything a checkpoint has to carry.
async fn varied_ledger(path: &Path, undo: UndoHistory) {
    let mut ledger = Ledger::open(
        path,
        OpenOptionsLedger {
            undo,
            ..opts("abc")
        },
    )
    .unwrap();
    ledger.start_run(Some(RUN_IDENTITY.clone())).unwrap();
    let (w, h) = ledger.into_writer();
    for n in 0..300u64 {
        let id = numbered_id(n);
        let target = if n % 2 == 0 {
            "222222222222"
        } else {
            "333333333333"
        };
        let region = (n % 3 == 0).then_some("eu-west-1");
        let ev = |stage, outcome, details| {
            Event::new(&id, Some(target), region, stage, outcome).with(details)
        };
        let detach = Details {
            action: Some(Action::DetachPolicy),
            policy: Some(format!("policy-{n}")),
            ..Default::default()
        };
        if n % 14 == 0 {
            // In doubt on a carry step that names a group as well as a policy.
            let attach = Details {
                action: Some(Action::AttachGroupPolicy),
                policy: Some(format!("policy-{n}")),
                group: Some(format!("group-{n}")),
                ..Default::default()
            };
            w.record(ev(Stage::Carry, Outcome::Intent, attach))
                .await
                .unwrap();
            continue;
        }
        w.record(ev(Stage::Prepare, Outcome::Intent, detach.clone()))
            .await
            .unwrap();
        if n % 7 == 0 {
            continue; // in doubt
        }
        w.record(ev(Stage::Prepare, Outcome::Done, detach))
            .await
            .unwrap();
        match n % 5 {
            0 => {
                let failed = Details {
                    error_code: Some("Boom".into()),
                    http_status: Some(503),
                    message: Some(format!("failure {n}")),
                    attempts: Some(5),
                    retryable: Some(true),
                    rolled_back: (n % 10 == 0).then_some(n % 20 == 0),
                    ..Default::default()
                };
                w.record(ev(Stage::Transfer, Outcome::Failed, failed))
                    .await
                    .unwrap()
            }
            1 if n % 10 == 1 => {
                let carried = Details {
                    carried: Some(true),
                    ..Default::default()
                };
                w.record(ev(Stage::Accept, Outcome::Accepted, carried))
                    .await
                    .unwrap()
            }
            1 => {}
            3 if n % 10 == 3 => {
                let waiting = Details {
                    error_code: Some("NotAllowed".into()),
                    message: Some(format!("pass --deactivate ({n})")),
                    waiting_for: Some(Wait::Flags),
                    needs: vec!["--deactivate".into()],
                    ..Default::default()
                };
                w.record(ev(Stage::Prepare, Outcome::Waiting, waiting))
                    .await
                    .unwrap()
            }
            _ => w
                .record(ev(
                    Stage::Transfer,
                    Outcome::Transferred,
                    Details::default(),
                ))
                .await
                .unwrap(),
        }
    }
    let odd = "0x".to_string() + &"AB".repeat(31);
    w.record(Event::new(
        &odd,
        Some("222222222222"),
        None,
        Stage::Transfer,
        Outcome::Transferred,
    ))
    .await
    .unwrap();
    drop(w);
    h.await.unwrap().unwrap();
}

/// The state of a ledger read line by line, without its checkpoint.
fn full_replay(path: &Path, undo: UndoHistory) -> LedgerState {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.jsonl");
    std::fs::copy(path, &copy).unwrap();
    let (_, state, warnings) = Ledger::read_only(&copy, undo).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    state
}

#[tokio::test]
async fn a_checkpoint_gives_the_same_state_as_reading_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    for undo in [
        UndoHistory::Drop,
        UndoHistory::UntilTransferred,
        UndoHistory::Keep,
    ] {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(checkpoint_path(&path));
        varied_ledger(&path, undo).await;
        assert!(
            checkpoint_path(&path).exists(),
            "written at the end of the run"
        );
        let expected = full_replay(&path, undo);
        let (_, state, warnings) = Ledger::read_only(&path, undo).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(snapshot(&state), snapshot(&expected), "{undo:?}");
        // What carry adds is among what the checkpoint carried.
        assert!(state.iter().any(|(_, r)| r
            .open_intent
            .is_some_and(|i| i.group.as_deref() == Some("group-14"))));
        assert!(state.iter().any(|(_, r)| r.state == ItemState::Carried));
        assert!(state.iter().any(|(_, r)| r.state == ItemState::Waiting
            && r.failure.is_some_and(|f| f.waiting == Some(Wait::Flags))));
        assert_eq!(state.len(), 301);
        assert_eq!(state.runs, 1);
        assert_eq!(state.identity.as_ref(), Some(&*RUN_IDENTITY));
        let ledger = Ledger::open(
            &path,
            OpenOptionsLedger {
                undo,
                ..opts("abc")
            },
        )
        .unwrap();
        assert!(
            ledger
                .notes()
                .iter()
                .any(|n| n.contains("from its checkpoint")),
            "{:?}",
            ledger.notes()
        );
        assert_eq!(snapshot(&ledger.state()), snapshot(&expected));
    }
}

#[tokio::test]
async fn checkpoint_then_more_events_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    varied_ledger(&path, UndoHistory::Drop).await;
    // A second run adds events and is killed before its own checkpoint: simulated by
    // appending its lines by hand.
    let later = Event::new(
        &numbered_id(1),
        Some("222222222222"),
        None,
        Stage::Transfer,
        Outcome::Transferred,
    );
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(f, "{}", serde_json::to_string(&later).unwrap()).unwrap();
    drop(f);
    let (_, state, warnings) = Ledger::read_only(&path, UndoHistory::Drop).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        snapshot(&state),
        snapshot(&full_replay(&path, UndoHistory::Drop))
    );
    assert_eq!(
        state.get(&numbered_id(1)).unwrap().state,
        ItemState::Transferred
    );
}

/// Each way a checkpoint can disagree with its ledger is detected, named in a warning, and
/// the whole ledger is read instead: the state is the ledger's, never the checkpoint's.
#[tokio::test]
async fn a_checkpoint_that_does_not_match_is_ignored_with_a_warning() {
    type Spoil = fn(&Path);
    let cases: [(&str, Spoil, &str); 5] = [
        (
            "torn",
            |p| {
                let cp = checkpoint_path(p);
                let bytes = std::fs::read(&cp).unwrap();
                std::fs::write(&cp, &bytes[..bytes.len() / 2]).unwrap();
            },
            "is damaged",
        ),
        (
            "a flipped byte",
            |p| {
                let cp = checkpoint_path(p);
                let mut bytes = std::fs::read(&cp).unwrap();
                // A digit of a target account: still a well-formed checkpoint, only the
                // checksum can tell (a flag byte flipped would read as other damage).
                let i = bytes
                    .windows(12)
                    .position(|w| w == b"222222222222")
                    .unwrap();
                bytes[i] ^= 1;
                std::fs::write(&cp, &bytes).unwrap();
            },
            "checksum mismatch",
        ),
        (
            "truncated ledger",
            |p| {
                let text = std::fs::read_to_string(p).unwrap();
                let keep: Vec<&str> = text.lines().take(20).collect();
                std::fs::write(p, keep.join("\n") + "\n").unwrap();
            },
            "was truncated or replaced",
        ),
        (
            "edited ledger, same length",
            |p| {
                let text = std::fs::read_to_string(p).unwrap();
                let edited = text.replacen("\"transferred\"", "\"cancelled\"  ", 1);
                assert_eq!(edited.len(), text.len());
                std::fs::write(p, edited).unwrap();
            },
            "was edited or replaced",
        ),
        (
            "another ledger's checkpoint",
            |p| {
                let text = std::fs::read_to_string(p).unwrap();
                let other = text.replacen("\"started_at\":\"", "\"started_at\":\"1", 1);
                std::fs::write(p, other).unwrap();
            },
            "belongs to another ledger",
        ),
    ];
    for (what, spoil, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        varied_ledger(&path, UndoHistory::Drop).await;
        spoil(&path);
        let truth = full_replay(&path, UndoHistory::Drop);
        let (_, state, warnings) = Ledger::read_only(&path, UndoHistory::Drop).unwrap();
        assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
        assert!(warnings[0].contains(expected), "{what}: {}", warnings[0]);
        assert!(
            warnings[0].contains("l.jsonl.checkpoint"),
            "{what}: {}",
            warnings[0]
        );
        assert_eq!(snapshot(&state), snapshot(&truth), "{what}");
        // The run that opens it replaces the checkpoint with a good one.
        let mut ledger = Ledger::open(&path, opts_drop()).unwrap();
        assert_eq!(ledger.warnings().len(), 1, "{what}");
        ledger.start_run(None).unwrap();
        let (w, h) = ledger.into_writer();
        drop(w);
        h.await.unwrap().unwrap();
        let (_, _, warnings) = Ledger::read_only(&path, UndoHistory::Drop).unwrap();
        assert!(warnings.is_empty(), "{what}, after a run: {warnings:?}");
    }
}

fn opts_drop() -> OpenOptionsLedger<'static> {
    OpenOptionsLedger {
        kind: LedgerKind::Transfer,
        manifest_path: Path::new("m.csv"),
        manifest_sha256: "abc",
        undo: UndoHistory::Drop,
    }
}

#[tokio::test]
async fn restore_does_not_start_from_a_checkpoint_without_the_undo_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    varied_ledger(&path, UndoHistory::Drop).await;
    let (_, state, warnings) = Ledger::read_only(&path, UndoHistory::Keep).unwrap();
    assert!(warnings.is_empty(), "not a warning: {warnings:?}");
    let rec = state.get(&numbered_id(2)).unwrap();
    assert_eq!(rec.undo.unwrap().policies, vec!["policy-2".to_string()]);
    assert_eq!(
        snapshot(&state),
        snapshot(&full_replay(&path, UndoHistory::Keep))
    );
}

#[tokio::test]
async fn a_checkpoint_that_kept_more_serves_a_run_that_keeps_less() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    varied_ledger(&path, UndoHistory::Keep).await;
    for undo in [UndoHistory::UntilTransferred, UndoHistory::Drop] {
        let (_, state, warnings) = Ledger::read_only(&path, undo).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            snapshot(&state),
            snapshot(&full_replay(&path, undo)),
            "{undo:?}"
        );
    }
    // Certificate 2 was transferred after its detach, 1 was not (n % 5 == 1).
    let (_, state, _) = Ledger::read_only(&path, UndoHistory::UntilTransferred).unwrap();
    assert!(state.get(&numbered_id(2)).unwrap().undo.is_none());
    assert!(state.get(&numbered_id(1)).unwrap().undo.is_some());
    // Kept until transferred is not enough for `cancel --restore`: the whole ledger is read.
    let other = dir.path().join("m.jsonl");
    varied_ledger(&other, UndoHistory::UntilTransferred).await;
    let (_, state, _) = Ledger::read_only(&other, UndoHistory::Keep).unwrap();
    assert!(state.get(&numbered_id(2)).unwrap().undo.is_some());
}

#[test]
fn many_new_certificates_are_merged_into_the_sorted_records_without_losing_one() {
    let mut s = LedgerState::new(UndoHistory::Drop);
    let n = 150_000u64;
    for i in 0..n {
        let outcome = if i % 3 == 0 {
            Outcome::Transferred
        } else {
            Outcome::Intent
        };
        s.apply(
            &Event::new(
                &numbered_id(i),
                Some("222222222222"),
                None,
                Stage::Transfer,
                outcome,
            )
            .with(Details {
                action: Some(Action::Transfer),
                ..Default::default()
            }),
        );
    }
    assert_eq!(s.len() as u64, n);
    for i in (0..n).step_by(997) {
        let rec = s.get(&numbered_id(i)).unwrap();
        assert_eq!(rec.state == ItemState::Transferred, i % 3 == 0, "{i}");
        assert_eq!(rec.open_intent.is_some(), i % 3 != 0, "{i}");
        assert_eq!(rec.target, Some("222222222222"));
    }
    assert!(s.get(&numbered_id(n)).is_none());
    assert_eq!(s.with_details().count() as u64, n - n.div_ceil(3));
}

#[test]
fn a_batch_lookup_answers_as_one_lookup_per_id() {
    let mut s = LedgerState::new(UndoHistory::Drop);
    let transferred = |id: &str| {
        Event::new(
            id,
            Some("222222222222"),
            None,
            Stage::Transfer,
            Outcome::Transferred,
        )
    };
    // Enough to be merged into the sorted records, then a few that stay recent.
    for i in 0..100_000u64 {
        s.apply(&transferred(&numbered_id(i)));
    }
    assert!(!s.sorted.is_empty(), "the test needs sorted records");
    // Ids that share their first 8 bytes (and so their prefix), sorted and recent.
    let shared = |n: u64| format!("{}{n:016x}", "0".repeat(48));
    for n in [1, 3, 5] {
        s.apply(&transferred(&shared(n)));
    }
    s.merge_recent();
    for i in 100_000..100_010u64 {
        s.apply(&transferred(&numbered_id(i)));
    }
    s.apply(&transferred(&shared(7)));
    s.apply(&transferred("not-a-hex-id"));

    let mut asked: Vec<String> = (0..100_020u64).step_by(7).map(numbered_id).collect();
    asked.extend((100_000..100_020u64).map(numbered_id));
    asked.extend((0..9).map(shared));
    asked.push("not-a-hex-id".into());
    asked.push("another-one".into());
    asked.push(numbered_id(5).to_ascii_uppercase());
    for size in [1, 63, 64, 1000] {
        for ids in asked.chunks(size) {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let many = s.get_many(&ids);
            assert_eq!(many.len(), ids.len());
            for (id, got) in ids.iter().zip(many) {
                assert_eq!(format!("{got:?}"), format!("{:?}", s.get(id)), "{id}");
            }
        }
    }
    // The answers themselves, not only their agreement.
    let found = |id: &str| s.get_many(&[id])[0].is_some();
    assert!(found(&numbered_id(0)) && found(&numbered_id(100_009)));
    assert!(found(&shared(5)) && found(&shared(7)) && found("not-a-hex-id"));
    assert!(!found(&shared(4)) && !found(&numbered_id(100_010)) && !found("another-one"));
    assert!(!found(&numbered_id(5).to_ascii_uppercase()));
}

#[test]
fn only_lowercase_hex_ids_are_decoded() {
    let id = numbered_id(42);
    let bytes = super::state::decode_hex_id(&id).expect("hex");
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(text, id);
    for bad in [
        id.to_ascii_uppercase(),
        format!("{}g", &id[..63]),
        format!("{}/", &id[..63]),
        id[..62].to_string(),
        format!("{id}0"),
    ] {
        assert!(super::state::decode_hex_id(&bad).is_none(), "{bad}");
    }
}

/// A ledger belongs to the account of the latest run that recorded something of its
/// certificates: a run line without an account (an earlier version) claims nothing, nor does
/// a run that found none of them in its account; the claim survives a reopen, from the
/// ledger and from its checkpoint alike.
#[tokio::test]
async fn a_ledger_belongs_to_the_account_of_the_run_that_recorded_something() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    let account = |a: &str| Identity {
        account: a.into(),
        region: "us-east-1".into(),
    };
    let run = |who: Option<Identity>, event: Event| {
        let path = path.clone();
        async move {
            let mut ledger = Ledger::open(&path, opts("abc")).unwrap();
            ledger.start_run(who).unwrap();
            let state = ledger.shared_state();
            let (w, h) = ledger.into_writer();
            w.record(event).await.unwrap();
            drop(w);
            h.await.unwrap().unwrap();
            let identity = state.lock().unwrap().identity.clone();
            identity
        }
    };
    let not_found = Event::new(ID, None, None, Stage::Prepare, Outcome::Waiting).with(Details {
        waiting_for: Some(Wait::SourceAccount),
        ..Default::default()
    });
    assert_eq!(
        run(None, intent(Action::Deactivate)).await,
        None,
        "an old run"
    );
    assert_eq!(run(Some(account("333333333333")), not_found).await, None);
    let claimed = run(Some(account("111111111111")), intent(Action::Transfer)).await;
    assert_eq!(claimed, Some(account("111111111111")));
    let (_, state, _) = Ledger::read_only(&path, UndoHistory::Keep).unwrap();
    assert_eq!(state.identity, claimed, "from the checkpoint");
    std::fs::remove_file(checkpoint_path(&path)).unwrap();
    let (_, state, _) = Ledger::read_only(&path, UndoHistory::Keep).unwrap();
    assert_eq!(state.identity, claimed, "from the ledger");
}
