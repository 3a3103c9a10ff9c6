//! Property tests of every parser the tool trusts with a file or an answer: the manifest,
//! ledger replay, the checkpoint, the rewriting of account ids in policy documents, and the
//! classification of failed calls.
//!
//! Each runs a few hundred generated cases in `cargo test` (a few seconds); the long run
//! sets `PROPTEST_CASES`, e.g. `PROPTEST_CASES=20000 cargo test --lib properties`. A
//! failing case is shrunk and printed; proptest then keeps its seed in
//! `proptest-regressions/` beside this file, to be committed with the fix.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::ledger::{
    checkpoint_path, Action, Details, Event, Ledger, LedgerKind, LedgerState, OpenOptionsLedger,
    Outcome, Stage, UndoHistory,
};
use crate::manifest::{Manifest, ManifestError};

/// The configuration of every property: `default` cases, or `PROPTEST_CASES`.
fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // No regression files are read or written for the cases proptest generates in a
        // scratch directory: a failure prints its minimal case.
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// The manifest

/// Bytes that look like a manifest more often than not: the characters its syntax turns
/// on, hex digits, digits, and anything else now and then.
fn manifest_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => prop::sample::select(b"0123456789abcdefABCDEFx".to_vec()),
        4 => prop::sample::select(b",\"\n\r# \t".to_vec()),
        1 => any::<u8>(),
    ];
    let header = prop::sample::select(vec![
        "certificate_id,target_account\n",
        "certificate_id,target_account,transfer_message,region\n",
        "region,transfer_message,target_account,certificate_id\r\n",
        "\u{feff}certificateId,targetAwsAccount,transferMessage\n",
        "certificate_id,target_account,colour\n",
        "",
    ]);
    (header, prop::collection::vec(byte, 0..600)).prop_map(|(h, body)| {
        let mut v = h.as_bytes().to_vec();
        v.extend(body);
        v
    })
}

/// Physical lines of a file, as an editor numbers them (at least 1).
fn physical_lines(bytes: &[u8]) -> u64 {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    let tail = !bytes.is_empty() && bytes.last() != Some(&b'\n');
    (newlines + u64::from(tail)).max(1)
}

/// Commas on line `line` (1-based) and every line after it: no cell of a row starting
/// there lies further right than one more than that.
fn commas_from(bytes: &[u8], line: u64) -> usize {
    let start = bytes
        .split(|&b| b == b'\n')
        .take((line - 1) as usize)
        .map(|l| l.len() + 1)
        .sum::<usize>()
        .min(bytes.len());
    bytes[start..].iter().filter(|&&b| b == b',').count()
}

/// One valid row, as the properties write it and expect it back.
#[derive(Debug, Clone)]
struct ValidRow {
    id: String,
    account: String,
    message: Option<String>,
    region: Option<String>,
}

fn valid_row() -> impl Strategy<Value = ValidRow> {
    let id = prop_oneof!["[0-9a-fA-F]{64}", "0x[0-9a-fA-F]{62}",];
    // Commas, quotes, line breaks, non-ASCII: all of it is a message's. A leading `#` (or
    // blank then `#`) would make the row a comment when the message comes first.
    let message = prop::option::of("[^#\\s\r\u{0}-\u{8}][^\r\u{0}-\u{8}]{0,127}");
    let region = prop::option::of(prop::sample::select(vec![
        "us-east-1",
        "eu-west-1",
        "ap-southeast-2",
        "us-gov-west-1",
        "cn-north-1",
    ]));
    ("[0-9]{12}", id, message, region).prop_map(|(account, id, message, region)| ValidRow {
        id,
        account,
        message: message.filter(|m| !m.is_empty()),
        region: region.map(str::to_string),
    })
}

/// How a valid manifest is written: column order, quoting, line ends, padding, comments.
#[derive(Debug, Clone)]
struct Layout {
    order: Vec<usize>,
    api_names: bool,
    crlf: bool,
    bom: bool,
    pad: bool,
    quote_all: bool,
    comments: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
        any::<(bool, bool, bool, bool, bool, bool)>(),
    )
        .prop_map(
            |(order, (api_names, crlf, bom, pad, quote_all, comments))| Layout {
                order,
                api_names,
                crlf,
                bom,
                pad,
                quote_all,
                comments,
            },
        )
}

/// A CSV cell: quoted when it must be (or always), quotes doubled.
fn cell(value: &str, quote: bool) -> String {
    if quote || value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn write_valid(rows: &[ValidRow], l: &Layout) -> Vec<u8> {
    let names = if l.api_names {
        [
            "certificateId",
            "targetAwsAccount",
            "transferMessage",
            "region",
        ]
    } else {
        [
            "certificate_id",
            "target_account",
            "transfer_message",
            "region",
        ]
    };
    let end = if l.crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if l.bom {
        out.push('\u{feff}');
    }
    let header: Vec<&str> = l.order.iter().map(|&c| names[c]).collect();
    out.push_str(&header.join(","));
    out.push_str(end);
    for (i, r) in rows.iter().enumerate() {
        if l.comments && i % 3 == 0 {
            out.push_str("# a comment, with \"quotes\"");
            out.push_str(end);
            out.push_str(end);
        }
        let pad = |v: &str| {
            if l.pad {
                format!("  {v} ")
            } else {
                v.to_string()
            }
        };
        let cells: Vec<String> = l
            .order
            .iter()
            .map(|&c| match c {
                // Padding is ignored around these, but only outside quotes.
                0 if !l.quote_all => pad(&r.id),
                1 if !l.quote_all => pad(&r.account),
                3 if !l.quote_all => pad(r.region.as_deref().unwrap_or("")),
                0 => cell(&r.id, true),
                1 => cell(&r.account, true),
                2 => cell(r.message.as_deref().unwrap_or(""), l.quote_all),
                _ => cell(r.region.as_deref().unwrap_or(""), true),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str(end);
    }
    out.into_bytes()
}

fn load(dir: &Path, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let path = dir.join("m.csv");
    std::fs::write(&path, bytes).unwrap();
    Manifest::load(&path)
}

proptest! {
    #![proptest_config(cases(400))]

    /// Whatever the file holds, loading it never panics; an invalid one lists at least one
    /// problem, and every problem points inside the file: a line it has, a column no
    /// further right than the cells from that line on.
    #[test]
    fn a_manifest_never_panics_and_every_error_points_inside_the_file(bytes in manifest_bytes()) {
        let dir = tempfile::tempdir().unwrap();
        match load(dir.path(), &bytes) {
            Ok(m) => {
                // A manifest that loads hands out its rows, each with a line of the file.
                let lines = physical_lines(&bytes);
                for row in m.rows().unwrap() {
                    let row = row.unwrap();
                    prop_assert!(row.line >= 2 && row.line <= lines, "row line {} of {lines}", row.line);
                }
            }
            Err(ManifestError::Invalid { problems, total, .. }) => {
                prop_assert!(!problems.is_empty() && total >= problems.len());
                let lines = physical_lines(&bytes);
                for p in &problems {
                    prop_assert!(p.line >= 1 && p.line <= lines, "{p} (file of {lines} lines)");
                    if let Some(c) = p.column {
                        let most = commas_from(&bytes, p.line) + 1;
                        prop_assert!(c >= 1 && c <= most, "{p}: column past {most} cells");
                    }
                }
            }
            Err(e) => prop_assert!(false, "not an invalid-content error: {e}"),
        }
    }

    /// Valid rows, written any way the format allows (column order, API names, quoting,
    /// padding, CRLF, BOM, comments and blank lines), come back as they were: in order,
    /// ids in lowercase, messages verbatim.
    #[test]
    fn valid_rows_round_trip(
        rows in prop::collection::vec(valid_row(), 1..40),
        layout in layout(),
    ) {
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<ValidRow> = rows
            .into_iter()
            .filter(|r| seen.insert(r.id.to_ascii_lowercase()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_valid(&rows, &layout);
        let m = match load(dir.path(), &bytes) {
            Ok(m) => m,
            Err(e) => {
                let text = String::from_utf8_lossy(&bytes);
                return Err(TestCaseError::fail(format!("{e}\n{text}")));
            }
        };
        prop_assert_eq!(m.len(), rows.len());
        let back: Vec<_> = m.rows().unwrap().map(Result::unwrap).collect();
        prop_assert_eq!(back.len(), rows.len());
        for (want, got) in rows.iter().zip(&back) {
            prop_assert_eq!(&got.certificate_id, &want.id.to_ascii_lowercase());
            prop_assert_eq!(&got.target_account, &want.account);
            prop_assert_eq!(&got.transfer_message, &want.message);
            prop_assert_eq!(&got.region, &want.region);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Ledger replay and the checkpoint

const TARGETS: [&str; 2] = ["222222222222", "333333333333"];

fn numbered_id(n: u64) -> String {
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{a:016x}{n:016x}{:016x}{:016x}", a.rotate_left(17), !n)
}

/// One event of a generated ledger: which certificate, what happened.
fn event() -> impl Strategy<Value = (u64, usize)> {
    (0u64..12, 0usize..10)
}

fn event_of(n: u64, kind: usize) -> Event {
    let id = numbered_id(n);
    let target = TARGETS[(n % 2) as usize];
    let region = n.is_multiple_of(3).then_some("eu-west-1");
    let ev = |stage, outcome, details| {
        Event::new(&id, Some(target), region, stage, outcome).with(details)
    };
    let step = |action, policy: Option<&str>| Details {
        action: Some(action),
        policy: policy.map(str::to_string),
        ..Default::default()
    };
    match kind {
        0 => ev(
            Stage::Prepare,
            Outcome::Intent,
            step(Action::Deactivate, None),
        ),
        1 => ev(
            Stage::Prepare,
            Outcome::Done,
            step(Action::Deactivate, None),
        ),
        2 => ev(
            Stage::Prepare,
            Outcome::Intent,
            step(Action::DetachPolicy, Some("p")),
        ),
        3 => ev(
            Stage::Prepare,
            Outcome::Done,
            step(Action::DetachPolicy, Some("p")),
        ),
        4 => ev(
            Stage::Transfer,
            Outcome::Intent,
            step(Action::Transfer, None),
        ),
        5 => ev(
            Stage::Transfer,
            Outcome::Unknown,
            step(Action::Transfer, None),
        ),
        6 => ev(Stage::Transfer, Outcome::Transferred, Details::default()),
        7 => ev(
            Stage::Transfer,
            Outcome::Failed,
            Details {
                error_code: Some("TransferConflictException".into()),
                http_status: Some(409),
                message: Some("policies attached: \"p\", \u{e9}\n".into()),
                attempts: Some(1),
                retryable: Some(false),
                ..Default::default()
            },
        ),
        8 => ev(
            Stage::Restore,
            Outcome::Intent,
            step(Action::ReattachPolicy, Some("p")),
        ),
        _ => ev(
            Stage::Restore,
            Outcome::Done,
            step(Action::ReattachPolicy, Some("p")),
        ),
    }
}

fn ledger_options(undo: UndoHistory) -> OpenOptionsLedger<'static> {
    OpenOptionsLedger {
        kind: LedgerKind::Transfer,
        manifest_path: Path::new("m.csv"),
        manifest_sha256: "abc",
        undo,
    }
}

/// Writes a ledger through the tool's own writer (header, run line, `events`), as a run
/// does; it leaves a checkpoint beside it.
fn write_ledger(path: &Path, events: &[(u64, usize)]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ledger = Ledger::open(path, ledger_options(UndoHistory::Keep)).unwrap();
        let (w, h) = ledger.into_writer();
        for &(n, kind) in events {
            w.record(event_of(n, kind)).await.unwrap();
        }
        drop(w);
        h.await.unwrap().unwrap();
    });
}

/// Every record of a state, as text, by id: two states compare equal when they hold the same.
fn snapshot(state: &LedgerState) -> std::collections::BTreeMap<String, String> {
    state
        .iter()
        .map(|(id, rec)| (id.to_string(), format!("{rec:?}")))
        .collect()
}

/// The state of `bytes` read as a ledger file (no checkpoint beside it), with the warnings.
fn read_bytes(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(std::collections::BTreeMap<String, String>, Vec<String>), crate::ledger::LedgerError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    Ledger::read_only(&path, UndoHistory::Keep)
        .map(|(_, state, warnings)| (snapshot(&state), warnings))
}

/// A generated ledger's bytes (without its checkpoint), and where its header line ends.
fn ledger_bytes(dir: &Path, events: &[(u64, usize)]) -> (Vec<u8>, usize) {
    let path = dir.join("l.jsonl");
    write_ledger(&path, events);
    let bytes = std::fs::read(&path).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    (bytes, header_end)
}

proptest! {
    #![proptest_config(cases(150))]

    /// A ledger cut anywhere after its header reads as the ledger of its complete lines (a
    /// line whose newline alone is missing is complete): never a panic, never an error, and
    /// a warning exactly when a torn line was set aside.
    #[test]
    fn a_truncated_ledger_reads_as_its_last_complete_line(
        events in prop::collection::vec(event(), 0..40),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, header_end) = ledger_bytes(dir.path(), &events);
        let k = header_end + cut.index(bytes.len() - header_end + 1);
        let cut_bytes = &bytes[..k];
        // The last complete line: up to the last newline, or the whole of a line that
        // lacks only its newline.
        let whole = k == bytes.len() || bytes[k] == b'\n';
        let keep = if whole {
            k
        } else {
            cut_bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
        };
        let (got, warnings) = read_bytes(dir.path(), "cut.jsonl", cut_bytes)
            .map_err(|e| TestCaseError::fail(format!("cut at {k}: {e}")))?;
        let (want, _) = read_bytes(dir.path(), "kept.jsonl", &bytes[..keep]).unwrap();
        prop_assert_eq!(got, want, "cut at {} of {}", k, bytes.len());
        prop_assert_eq!(warnings.len(), usize::from(keep < k), "{:?}", warnings);
    }

    /// Garbage after the last line (a torn write of anything, or bytes that were never a
    /// ledger's) never panics: a tail that is not a whole line of its own is set aside with a
    /// warning and the state is the last complete line's; anything else is refused as
    /// damage on a line after the good ones, never read as events.
    #[test]
    fn a_garbage_tail_never_panics_and_never_changes_the_state(
        events in prop::collection::vec(event(), 0..30),
        garbage in prop::collection::vec(any::<u8>(), 1..200),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, _) = ledger_bytes(dir.path(), &events);
        let (want, _) = read_bytes(dir.path(), "good.jsonl", &bytes).unwrap();
        let good_lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        bytes.extend(&garbage);
        match read_bytes(dir.path(), "tail.jsonl", &bytes) {
            Ok((got, warnings)) => {
                // Garbage may hold lines the reader skips (blank ones) or, rarely, lines that
                // parse as a run line: the events are the good ones either way.
                prop_assert_eq!(got, want);
                prop_assert!(warnings.len() <= 1, "{:?}", warnings);
            }
            Err(crate::ledger::LedgerError::Damaged { line, .. }) => {
                prop_assert!(line > good_lines, "damage reported on good line {line}");
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    /// A checkpoint spoiled any way (bytes flipped, cut short, replaced by garbage) is
    /// ignored with one warning naming it, and the ledger is read whole: the state is the
    /// one every line gives.
    #[test]
    fn a_corrupt_checkpoint_is_ignored_with_a_warning_and_the_ledger_read_whole(
        events in prop::collection::vec(event(), 1..40),
        how in 0usize..3,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        garbage in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        write_ledger(&path, &events);
        let cp = checkpoint_path(&path);
        let mut bytes = std::fs::read(&cp).unwrap();
        let i = at.index(bytes.len());
        match how {
            0 => bytes[i] ^= flip,
            1 => bytes.truncate(i),
            _ => {
                if garbage == bytes {
                    return Ok(());
                }
                bytes = garbage;
            }
        }
        std::fs::write(&cp, &bytes).unwrap();
        let (want, _) = read_bytes(dir.path(), "copy.jsonl", &std::fs::read(&path).unwrap()).unwrap();
        let (_, state, warnings) = Ledger::read_only(&path, UndoHistory::Keep)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(snapshot(&state), want);
        prop_assert_eq!(warnings.len(), 1, "{:?}", warnings);
        prop_assert!(warnings[0].contains("l.jsonl.checkpoint"), "{}", warnings[0]);
    }
}

// ---------------------------------------------------------------------------------------
// Policy documents

const SOURCE: &str = "111122223333";
const TARGET: &str = "444455556666";

/// A piece of a string in a policy document: text, or an ARN with some account.
#[derive(Debug, Clone)]
enum Fragment {
    Text(String),
    Arn {
        head: String,
        region: String,
        account: String,
        resource: String,
    },
}

fn piece() -> impl Strategy<Value = Fragment> {
    // Text and resources never hold an `n`: `arn:` then starts nowhere but at an ARN, even
    // where pieces meet. Text may hold the source's digits.
    let text = prop_oneof![
        "[a-mo-z0-9 /*${}.:_-]{0,20}",
        Just(SOURCE.to_string()),
        Just(format!("topic/{SOURCE}/x")),
    ];
    let account = prop_oneof![
        3 => Just(SOURCE.to_string()),
        1 => Just(TARGET.to_string()),
        1 => Just("999999999999".to_string()),
        1 => Just(String::new()),
        1 => Just(format!("{SOURCE}0")),
    ];
    let arn = (
        prop::sample::select(vec!["aws:iot", "aws:iam", "aws-cn:iot", "aws-us-gov:s3"]),
        prop::sample::select(vec!["eu-west-1", "*", "", "us-east-1"]),
        account,
        "[a-mo-zA-Z0-9/*${}.:_-]{0,24}",
    )
        .prop_map(|(head, region, account, resource)| Fragment::Arn {
            head: head.to_string(),
            region: region.to_string(),
            account,
            resource,
        });
    prop_oneof![2 => text.prop_map(Fragment::Text), 3 => arn]
}

/// The text of `pieces`; with `rewrite`, the source account in ARNs is the target's.
fn spell(pieces: &[Fragment], rewrite: bool) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Fragment::Text(t) => t.clone(),
            Fragment::Arn {
                head,
                region,
                account,
                resource,
            } => {
                let account = if rewrite && account == SOURCE {
                    TARGET
                } else {
                    account
                };
                format!("arn:{head}:{region}:{account}:{resource}")
            }
        })
        .collect()
}

/// A policy document with strings made of pieces, in values, lists and keys.
fn document() -> impl Strategy<Value = Vec<Vec<Fragment>>> {
    prop::collection::vec(prop::collection::vec(piece(), 1..4), 1..8)
}

fn build(strings: &[Vec<Fragment>], rewrite: bool) -> serde_json::Value {
    let s: Vec<String> = strings.iter().map(|p| spell(p, rewrite)).collect();
    let mut condition = serde_json::Map::new();
    condition.insert(
        s[0].clone(),
        serde_json::Value::from(s.last().unwrap().clone()),
    );
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["iot:Connect", "iot:Publish"],
            "Resource": s,
            "Condition": {"StringEquals": condition},
            "Sid": SOURCE,
            "Count": 111122223333u64
        }]
    })
}

proptest! {
    #![proptest_config(cases(400))]

    /// Only the account field of ARNs changes: the rewritten document parses, and equals the
    /// same document built with the target account in those ARNs, whatever the layout
    /// (compact or pretty), the other accounts, and the source's digits elsewhere.
    #[test]
    fn only_account_ids_inside_arns_change(strings in document(), pretty in any::<bool>()) {
        let source_doc = build(&strings, false);
        let text = if pretty {
            serde_json::to_string_pretty(&source_doc).unwrap()
        } else {
            source_doc.to_string()
        };
        let out = crate::carry::rewrite::rewrite_account(&text, SOURCE, TARGET);
        let parsed: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| TestCaseError::fail(format!("{e}: {out}")))?;
        prop_assert_eq!(parsed, build(&strings, true));
        // Nothing to do when both accounts are the same.
        prop_assert_eq!(crate::carry::rewrite::rewrite_account(&text, SOURCE, SOURCE), text);
    }
}

// ---------------------------------------------------------------------------------------
// Retry classification

mod classification {
    use super::*;
    use crate::retry::{
        classify, normalize_code, CallError, ErrorClass, FailureKind, CREDENTIAL_CODES,
        THROTTLING_CODES, TRANSIENT_CODES, TRANSIENT_STATUSES,
    };

    fn kind() -> impl Strategy<Value = FailureKind> {
        prop::sample::select(vec![
            FailureKind::Service,
            FailureKind::Timeout,
            FailureKind::Dispatch,
            FailureKind::Construction,
            FailureKind::Credentials,
            FailureKind::Garbled,
        ])
    }

    /// A code: one the tool knows, dressed as AWS may send it, or anything.
    fn code() -> impl Strategy<Value = Option<String>> {
        let known: Vec<&str> = THROTTLING_CODES
            .iter()
            .chain(TRANSIENT_CODES)
            .chain(CREDENTIAL_CODES)
            .copied()
            .chain([
                "AccessDeniedException",
                "ResourceNotFoundException",
                "LimitExceededException",
                "TransferConflictException",
            ])
            .collect();
        let dressed = (
            prop::sample::select(known),
            prop::sample::select(vec!["", "com.amazonaws.iot#", "aws#"]),
            prop::sample::select(vec!["", ":http://internal.amazon.com/coral/x/", ": x"]),
        )
            .prop_map(|(c, ns, suffix)| format!("{ns}{c}{suffix}"));
        prop::option::of(prop_oneof![dressed, ".{0,30}"])
    }

    fn status() -> impl Strategy<Value = Option<u16>> {
        prop::option::of(prop_oneof![
            prop::sample::select(vec![
                200u16, 400, 401, 403, 404, 406, 409, 410, 429, 500, 501, 502, 503, 504
            ]),
            any::<u16>(),
        ])
    }

    /// The classes whose rule matches, in the order the rules are documented to apply
    /// (`retry::classify`): the first one is the class.
    fn rules(code: Option<&str>, status: Option<u16>, kind: FailureKind) -> Vec<ErrorClass> {
        let bare = code.map(normalize_code).filter(|c| !c.is_empty());
        let mut matched = Vec::new();
        // What the request's fate says comes first: never built, never signed, or answered
        // with a 2xx that could not be read.
        match kind {
            FailureKind::Construction => matched.push(ErrorClass::Permanent),
            FailureKind::Credentials => matched.push(ErrorClass::Credentials),
            FailureKind::Garbled => matched.push(ErrorClass::Transient),
            FailureKind::Service | FailureKind::Timeout | FailureKind::Dispatch => {}
        }
        if bare.is_some_and(|c| CREDENTIAL_CODES.contains(&c)) {
            matched.push(ErrorClass::Credentials);
        }
        if bare.is_some_and(|c| THROTTLING_CODES.contains(&c)) || status == Some(429) {
            matched.push(ErrorClass::Throttle);
        }
        if matches!(kind, FailureKind::Timeout | FailureKind::Dispatch)
            || bare.is_some_and(|c| TRANSIENT_CODES.contains(&c))
            || status.is_some_and(|s| TRANSIENT_STATUSES.contains(&s))
        {
            matched.push(ErrorClass::Transient);
        }
        matched.push(ErrorClass::Permanent);
        matched
    }

    proptest! {
        #![proptest_config(cases(2000))]

        /// Every (code, status, kind) gets exactly one class: the first rule that matches,
        /// the same whatever namespace or suffix dresses the code; throttles and refused
        /// credentials never leave an outcome unknown.
        #[test]
        fn every_status_and_code_gets_exactly_one_class(
            code in code(),
            status in status(),
            kind in kind(),
        ) {
            let class = classify(code.as_deref(), status, kind);
            let matched = rules(code.as_deref(), status, kind);
            prop_assert_eq!(class, matched[0], "{:?} {:?} {:?}: rules {:?}", code, status, kind, matched);
            if let Some(c) = code.as_deref() {
                let bare = normalize_code(c);
                prop_assert_eq!(classify(Some(bare), status, kind), class);
                let dressed = format!("com.amazonaws.iot#{bare}:http://x/");
                prop_assert_eq!(classify(Some(&dressed), status, kind), class, "{}", dressed);
            }
            let error = CallError {
                code: code.clone(),
                http_status: status,
                message: String::new(),
                kind,
                request_id: None,
            };
            prop_assert_eq!(error.class(), class);
            if matches!(class, ErrorClass::Throttle | ErrorClass::Credentials) && kind == FailureKind::Service {
                prop_assert!(
                    !error.outcome_unknown() || status.is_none_or(|s| s >= 500),
                    "a refusal before acting has a known outcome"
                );
            }
        }
    }
}
