//! The README's tables that the code defines, checked against the code: the ledger's
//! vocabulary (kinds, stages, outcomes, actions, `via`, the `details` fields), the exit
//! codes, the rate of every operation, the formats. A value added to the code and not to
//! the README (or the other way round) fails here.

use std::collections::BTreeSet;

use crate::certificate::CertStatus;
use crate::error::ExitCode;
use crate::ledger::{Action, Details, LedgerKind, Outcome, Stage, Via, Wait, FORMAT_VERSION};
use crate::pacer::Operation;

const README: &str = include_str!("../README.md");

/// The text under `heading` (a whole line), up to the next heading of its level or above.
fn section(heading: &str) -> &'static str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = README
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        + heading.len()
        + 2;
    let rest = &README[start..];
    let end = rest
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

/// The cells of every table row of `text` (header and separator rows left out).
fn rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut header = true;
    for line in text.lines() {
        let Some(inner) = line.trim().strip_prefix('|') else {
            header = true;
            continue;
        };
        let cells: Vec<String> = inner
            .replace("\\|", "\u{0}")
            .trim_end_matches('|')
            .split('|')
            .map(|c| c.replace('\u{0}', "|").trim().to_string())
            .collect();
        if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
            continue;
        }
        if header {
            header = false;
            continue;
        }
        rows.push(cells);
    }
    rows
}

/// Every `code` span of `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The code spans of the second cell of the row whose first cell is `first`.
fn listed(table: &[Vec<String>], first: &str) -> BTreeSet<String> {
    let row = table
        .iter()
        .find(|r| r[0] == first)
        .unwrap_or_else(|| panic!("README's ledger table has no row {first}"));
    code_spans(&row[1])
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> BTreeSet<String> {
    all.iter().map(|v| name(*v).to_string()).collect()
}

#[test]
fn the_ledger_table_lists_every_value_of_every_closed_set() {
    let table = rows(section("### Ledger (`MANIFEST.ledger.jsonl`)"));
    let check = |row: &str, code: BTreeSet<String>| {
        assert_eq!(
            listed(&table, row),
            code,
            "README.md, the ledger table's {row} row (left) against the code (right)"
        );
    };
    check(
        "`kind` (header)",
        names(LedgerKind::ALL, LedgerKind::as_str),
    );
    check("`stage`", names(Stage::ALL, Stage::as_str));
    check("`outcome`", names(Outcome::ALL, Outcome::as_str));
    check("`details.action`", names(Action::ALL, Action::as_str));
    check("`details.via`", names(Via::ALL, Via::as_str));
}

#[test]
fn the_ledger_table_names_every_details_field_and_no_other() {
    // Every field set (a new field is a compile error here until it is added).
    let full = Details {
        action: Some(Action::Transfer),
        policy: Some(String::new()),
        thing: Some(String::new()),
        thing_type: Some(String::new()),
        group: Some(String::new()),
        previous_status: Some(CertStatus::Active),
        arn: Some(String::new()),
        via: Some(Via::Call),
        error_code: Some(String::new()),
        http_status: Some(0),
        message: Some(String::new()),
        attempts: Some(0),
        retryable: Some(true),
        failed_stage: Some(Stage::Prepare),
        rolled_back: Some(true),
        carried: Some(true),
        snapshot: Some(Box::default()),
        waiting_for: Some(Wait::Flags),
        needs: vec![String::new()],
    };
    let json = serde_json::to_value(&full).expect("details serialise");
    let fields: BTreeSet<String> = json
        .as_object()
        .expect("an object")
        .keys()
        .map(|k| format!("details.{k}"))
        .collect();
    let table = rows(section("### Ledger (`MANIFEST.ledger.jsonl`)"));
    let documented: BTreeSet<String> = table
        .iter()
        .flat_map(|r| code_spans(&r[0]))
        .filter(|s| s.starts_with("details."))
        .map(str::to_string)
        .collect();
    assert_eq!(
        documented, fields,
        "README.md, the ledger table's details fields (left) against the code (right)"
    );
}

#[test]
fn the_ledger_and_checkpoint_formats_are_the_code_s() {
    let ledger = section("### Ledger (`MANIFEST.ledger.jsonl`)");
    assert!(
        ledger.contains(&format!("{{\"format\":{FORMAT_VERSION},")),
        "the header example"
    );
    let checkpoint = section("### Checkpoint (`LEDGER.checkpoint`)");
    let format = crate::ledger::checkpoint::FORMAT;
    assert!(
        checkpoint.contains(&format!("(`ICMCKPT` magic, format {format})")),
        "the checkpoint's format"
    );
}

/// The codes of the first column of `text`'s tables.
fn codes_of(text: &str) -> Vec<i32> {
    rows(text)
        .iter()
        .map(|r| r[0].parse().unwrap_or_else(|_| panic!("not a code: {r:?}")))
        .collect()
}

#[test]
fn the_exit_code_tables_list_every_code_once() {
    let all: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(codes_of(section("## Exit codes")), all);
    let unattended = section("## Running unattended (cron, systemd)");
    let table = &unattended[unattended.find("| exit |").expect("the nightly table")..];
    let table = &table[..table.find("\n\n").unwrap_or(table.len())];
    let mut nightly = codes_of(table);
    nightly.sort();
    assert_eq!(nightly, all);
}

#[test]
fn the_rate_table_gives_every_operation_once_at_the_code_s_rate() {
    let table = rows(section("### Rates and quotas"));
    let mut seen = BTreeSet::new();
    for row in &table {
        let tps: f64 = row[1].parse().expect("a rate");
        let documented = row[2].contains("API TPS");
        for name in code_spans(&row[0]) {
            let op: Operation = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(op.name(), name, "spelt as AWS spells it");
            assert!(seen.insert(op), "{name} twice");
            assert_eq!(op.default_tps(), tps, "{name}");
            assert_eq!(op.quota_documented(), documented, "{name}: {}", row[2]);
        }
    }
    let missing: Vec<&str> = Operation::ALL
        .iter()
        .filter(|op| !seen.contains(op))
        .map(|op| op.name())
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}
