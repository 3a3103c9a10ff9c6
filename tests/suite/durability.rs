//! Every output file survives a SIGKILL at any moment of its write: the old file or the new
//! one is there, whole (README, "How outputs are written"). One test per output, each driving
//! the real binary through the harness's kill loop ([`kill_during_writes`]), which kills runs
//! at random moments until several kills have landed mid-write, and reads the output after
//! every one of them completely.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use iot_sim::SimConfig;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::checkpoint::{FROM_CHECKPOINT, NOTES, NOT_USED};
use crate::harness::*;

/// Certificates of the failure report and the HTML page: a report of 1.7 MB, a page of 1.6 MB
/// (a row per target account), whose writes last milliseconds to tens of them.
const FAILED: u64 = 10_000;

/// Certificates `select` lists into its manifest (430 kB). More would cost more time listing
/// than writing: the simulator builds every page from the whole account.
const LISTED: u64 = 5_000;

/// The failure report's header (README, "Failure report").
const FAILURE_REPORT_HEADER: [&str; 9] = [
    "certificate_id",
    "target_account",
    "stage",
    "error_code",
    "http_status",
    "message",
    "attempts",
    "rolled_back",
    "waiting_for",
];

/// A manifest of certificates that do not exist in the source account, each to a target
/// account of its own (`m.csv`: id to target), and a transfer ledger in which every one has
/// failed.
struct FailedFleet {
    env: Env,
    targets: BTreeMap<String, String>,
}

impl FailedFleet {
    fn new(n: u64) -> FailedFleet {
        let env = Env::unlimited();
        let targets: BTreeMap<String, String> = (0..n)
            .map(|i| (cert_id(i), format!("{}", 200_000_000_000 + i)))
            .collect();
        let rows: Vec<(String, &str)> = targets
            .iter()
            .map(|(id, target)| (id.clone(), target.as_str()))
            .collect();
        env.manifest("m.csv", &rows);
        // A real run refuses the first few (DescribeCertificate: not found, they wait for the
        // source account's credentials) and writes the ledger's header and run line ...
        env.run(&["transfer", "m.csv"]).expect_code(2);
        // ... and the ledger records a failure for every one (as if the credentials had been
        // right and AWS had then lost them): tens of thousands of calls would take a debug
        // build a minute, and a failure, unlike a refusal, is not tried again.
        let ledger = env.path("m.ledger.jsonl");
        let template = serde_json::json!({
            "ts": "2026-11-22T00:00:00.000Z",
            "stage": "prepare",
            "outcome": "failed",
            "details": {
                "error_code": "ResourceNotFoundException",
                "http_status": 404,
                "message": "certificate not found in the source account (us-east-1)",
                "attempts": 1,
                "retryable": false
            }
        });
        let mut lines = String::new();
        for (id, target) in &targets {
            let mut event = template.clone();
            event["id"] = Value::from(id.as_str());
            event["target"] = Value::from(target.as_str());
            lines.push_str(&format!("{event}\n"));
        }
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&ledger)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .expect("append to the ledger");
        FailedFleet { env, targets }
    }
}

/// `transfer m.csv` finds every certificate failed, nothing to do, and writes the failure
/// report of all of them: the same rows every run, so old and new are the same bytes after
/// the first (what a kill must not leave is a report cut short).
#[test]
fn a_kill_while_the_failure_report_is_written_leaves_the_old_report_or_the_new_one_whole() {
    let fleet = FailedFleet::new(FAILED);
    let report = fleet.env.path("m.failures.csv");
    let kills = kill_during_writes(
        "failure-report",
        || fleet.env.cmd(&["transfer", "m.csv"]),
        &report,
        |bytes| failure_report_whole(bytes, &fleet.targets),
    );
    kills.last.expect_code(3);
}

/// Every row of the report, in order, and nothing else.
fn failure_report_whole(bytes: &[u8], targets: &BTreeMap<String, String>) -> Result<(), String> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().map_err(|e| e.to_string())?;
    if header.iter().ne(FAILURE_REPORT_HEADER) {
        return Err(format!("header {header:?}"));
    }
    let mut expected = targets.iter();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", i + 1))?;
        let Some((id, target)) = expected.next() else {
            return Err(format!("row {}: one row too many", i + 1));
        };
        let row: Vec<&str> = record.iter().collect();
        let want = [
            id.as_str(),
            target,
            "prepare",
            "ResourceNotFoundException",
            "404",
        ];
        if row.len() != FAILURE_REPORT_HEADER.len() || row[..5] != want || row[6] != "1" {
            return Err(format!("row {}: {row:?}", i + 1));
        }
    }
    match expected.len() {
        0 => Ok(()),
        missing => Err(format!("{missing} rows missing")),
    }
}

/// `report m.csv --html r.html`: a page with a row per target account. Every other run names
/// the manifest `./m.csv`, which the page shows: old and new pages differ.
#[test]
fn a_kill_while_the_html_report_is_written_leaves_the_old_page_or_the_new_one_whole() {
    let fleet = FailedFleet::new(FAILED);
    let page = fleet.env.path("r.html");
    let runs = Cell::new(0);
    let kills = kill_during_writes(
        "html-report",
        || {
            runs.set(runs.get() + 1);
            let manifest = ["m.csv", "./m.csv"][runs.get() % 2];
            fleet.env.cmd(&["report", manifest, "--html", "r.html"])
        },
        &page,
        |bytes| page_whole(bytes, &fleet.targets),
    );
    kills.last.expect_code(0);
}

/// The page from its doctype to `</html>`: every target account's row, and the 100 rows
/// listed of the one failure group.
fn page_whole(bytes: &[u8], targets: &BTreeMap<String, String>) -> Result<(), String> {
    let page = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    if !page.starts_with("<!DOCTYPE html>\n") || !page.ends_with("</body>\n</html>\n") {
        return Err("it does not run from <!DOCTYPE html> to </html>".into());
    }
    let mut rows: BTreeSet<&str> = BTreeSet::new();
    for piece in page.split("<tr data-target=\"").skip(1) {
        let key = piece.split('"').next().unwrap_or("");
        let account = key.strip_suffix('/').ok_or(format!("target {key}"))?;
        if !rows.insert(account) {
            return Err(format!("target {account} twice"));
        }
    }
    let expected: BTreeSet<&str> = targets.values().map(String::as_str).collect();
    if rows != expected {
        return Err(format!("{} target rows of {}", rows.len(), expected.len()));
    }
    let listed = page.matches("<td class=\"id\">").count();
    if listed != 100 {
        return Err(format!("{listed} failed certificates listed, not 100"));
    }
    Ok(())
}

/// `transfer --metrics-file` rewrites the file at the start, every `--progress-interval`
/// (0.1 s) and at the end; each run stops after a second (`--max-duration`).
#[test]
fn a_kill_while_the_metrics_file_is_written_leaves_the_old_file_or_the_new_one_whole() {
    const CERTIFICATES: u64 = 1_000;
    let env = Env::new(SimConfig {
        latency: Duration::from_millis(20),
        ..SimConfig::unlimited()
    });
    env.fleet("m.csv", 0..CERTIFICATES, "INACTIVE", &[], &[]);
    let args = [
        "transfer",
        "m.csv",
        "--metrics-file",
        "m.prom",
        "--progress-interval",
        "0.1",
        "--concurrency",
        "2",
        "--rate-scale",
        "100",
    ];
    // A run that ends first: from then on every file carries its end and exit code, so that
    // the last line of a whole file is known.
    env.run(&[&args[..], &["--max-items", "4"]].concat())
        .expect_code(4);
    let kills = kill_during_writes(
        "metrics",
        || env.cmd(&[&args[..], &["--max-duration", "1s"]].concat()),
        &env.path("m.prom"),
        |bytes| metrics_whole(bytes, CERTIFICATES),
    );
    kills.last.expect_code(4);
}

/// The families the file holds, in order, once a run has ended.
const METRICS_FAMILIES: [&str; 10] = [
    "running",
    "items",
    "items_processed_total",
    "items_per_second",
    "calls_total",
    "throttled_total",
    "errors_total",
    "run_start_timestamp_seconds",
    "run_end_timestamp_seconds",
    "last_exit_code",
];

/// Every line of the exposition format checked: each family's HELP and TYPE, then its samples
/// with the common labels and a number; every family there, in order, the last one last; and
/// the certificates per state add up to the manifest.
fn metrics_whole(bytes: &[u8], certificates: u64) -> Result<(), String> {
    const PREFIX: &str = "iot_cert_migrate_";
    const COMMON: &str = "command=\"transfer\",manifest=\"m.csv\"";
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    if !text.ends_with('\n') {
        return Err("the last line has no newline".into());
    }
    let mut families: Vec<&str> = Vec::new();
    let mut helped: Option<&str> = None;
    let mut items = 0.0;
    let mut last = "";
    for (i, line) in text.lines().enumerate() {
        let bad = || format!("line {}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').ok_or_else(bad)?;
            if helped.is_some() || help.is_empty() {
                return Err(bad());
            }
            helped = Some(name.strip_prefix(PREFIX).ok_or_else(bad)?);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(bad)?;
            let name = name.strip_prefix(PREFIX).ok_or_else(bad)?;
            if helped.take() != Some(name) || !matches!(kind, "gauge" | "counter") {
                return Err(bad());
            }
            families.push(name);
        } else {
            let (series, value) = line.rsplit_once(' ').ok_or_else(bad)?;
            let value: f64 = value.parse().map_err(|_| bad())?;
            let (name, labels) = series.split_once('{').ok_or_else(bad)?;
            let labels = labels.strip_suffix('}').ok_or_else(bad)?;
            let name = name.strip_prefix(PREFIX).ok_or_else(bad)?;
            if helped.is_some() || families.last() != Some(&name) {
                return Err(bad());
            }
            let rest = labels.strip_prefix(COMMON).ok_or_else(bad)?;
            if !rest.is_empty() {
                labels_well_formed(rest.strip_prefix(',').ok_or_else(bad)?).ok_or_else(bad)?;
            }
            if name == "items" {
                items += value;
            }
            last = name;
        }
    }
    if families != METRICS_FAMILIES || last != "last_exit_code" {
        return Err(format!("families {families:?}, last sample of {last}"));
    }
    if items != certificates as f64 {
        return Err(format!(
            "{items} certificates per state, not {certificates}"
        ));
    }
    Ok(())
}

/// `a="x",b="y"`: names, quoted values with their escapes.
fn labels_well_formed(mut labels: &str) -> Option<()> {
    loop {
        let (name, rest) = labels.split_once("=\"")?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => {
                    chars.next()?;
                }
                (at, '"') => break at,
                _ => {}
            }
        };
        labels = &rest[end + 1..];
        if labels.is_empty() {
            return Some(());
        }
        labels = labels.strip_prefix(',')?;
    }
}

/// `select --out sel.csv --force`: the source account's certificates, listed again by every
/// run, with another transfer message each time (so that old and new differ).
#[test]
fn a_kill_while_select_writes_its_manifest_leaves_the_old_manifest_or_the_new_one_whole() {
    let env = Env::unlimited();
    let ids: BTreeSet<String> = (0..LISTED).map(cert_id).collect();
    env.seed(
        SOURCE,
        REGION,
        ids.iter()
            .map(|id| cert(id, "INACTIVE", &[], &[]))
            .collect(),
    );
    let runs = Cell::new(0);
    let select = || {
        runs.set(runs.get() + 1);
        env.cmd(&[
            "select",
            "--target-account",
            TARGET,
            "--out",
            "sel.csv",
            "--force",
            "--rate-scale",
            "100",
            "--transfer-message",
            &format!("run {}", runs.get()),
        ])
    };
    // The manifest every killed run replaces.
    Run::from(select().output().expect("binary runs")).expect_code(0);
    let kills = kill_during_writes("select", select, &env.path("sel.csv"), |bytes| {
        manifest_whole(bytes, &ids)
    });
    kills.last.expect_code(0);
}

/// The header, then every listed certificate once, to the target, with one run's message.
fn manifest_whole(bytes: &[u8], ids: &BTreeSet<String>) -> Result<(), String> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().map_err(|e| e.to_string())?;
    if header
        .iter()
        .ne(["certificate_id", "target_account", "transfer_message"])
    {
        return Err(format!("header {header:?}"));
    }
    let mut seen = BTreeSet::new();
    let mut message = None;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", i + 1))?;
        let row: Vec<&str> = record.iter().collect();
        let bad = || format!("row {}: {row:?}", i + 1);
        let [id, target, text] = row[..] else {
            return Err(bad());
        };
        let same = message.get_or_insert_with(|| text.to_string()) == text;
        if !ids.contains(id) || !seen.insert(id.to_string()) || target != TARGET || !same {
            return Err(bad());
        }
    }
    if seen.len() != ids.len() {
        return Err(format!("{} rows of {}", seen.len(), ids.len()));
    }
    match message {
        Some(m) if m.starts_with("run ") => Ok(()),
        other => Err(format!("message {other:?}")),
    }
}

/// The ledger's checkpoint, written after every group commit: whole after every kill (its
/// own digest verifies); the run that next opens the ledger after a kill mid-write says so,
/// once, and removes the temporary file; no checkpoint is ever refused; and the job ends with
/// every certificate transferred exactly once, the last run starting from a checkpoint.
#[test]
fn a_kill_while_the_checkpoint_is_written_leaves_it_old_or_new_and_the_job_ends_exactly_once() {
    let fleet = ActiveFleet::new(
        SimConfig {
            latency: Duration::from_millis(2),
            latency_jitter: Duration::from_millis(3),
            ..SimConfig::unlimited()
        },
        150,
    );
    let checkpoint = fleet.env.path("m.ledger.jsonl.checkpoint");
    let kills = kill_during_writes(
        "checkpoint",
        || {
            let mut c = fleet.env.cmd(&fleet.args(&[]));
            c.envs([NOTES, ("IOT_CERT_MIGRATE_CHECKPOINT_EVERY", "1")]);
            c
        },
        &checkpoint,
        checkpoint_whole,
    );
    kills.last.expect_code(0);
    let stderrs: Vec<&str> = kills
        .attempts
        .iter()
        .map(|a| a.stderr.as_str())
        .chain([kills.last.stderr.as_str()])
        .collect();
    for stderr in &stderrs {
        assert!(!stderr.contains(NOT_USED), "{stderr}");
    }
    // Each write cut short is reported by the run that next opens the ledger, once.
    let interrupted: Vec<&str> = stderrs
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| l.contains("a checkpoint write was interrupted"))
        .collect();
    for a in kills.mid_write() {
        let tmp = temporary_of(&checkpoint, a.pid);
        let tmp = tmp.file_name().unwrap().to_string_lossy();
        let said = interrupted.iter().filter(|l| l.contains(&*tmp)).count();
        assert_eq!(said, 1, "{tmp}: {interrupted:?}");
    }
    assert!(
        kills.last.stderr.contains(FROM_CHECKPOINT),
        "the checkpoint kept by the rename was not used:\n{}",
        kills.last.stderr
    );
    fleet.assert_all_transferred_once();
}

/// The checkpoint's magic, and its last 32 bytes the SHA-256 of everything before them (the
/// format: src/ledger/checkpoint.rs).
fn checkpoint_whole(bytes: &[u8]) -> Result<(), String> {
    let Some((body, digest)) = bytes.split_last_chunk::<32>() else {
        return Err("shorter than its digest".into());
    };
    if !body.starts_with(b"ICMCKPT\n") {
        return Err("no magic".into());
    }
    if Sha256::digest(body).as_slice() != digest {
        return Err("its digest does not match".into());
    }
    Ok(())
}

/// Certificates `plan` and `verify` judge into their CSVs (at rates the simulator allows): the
/// CSV fills while they run and is put in place at the end, so most kills land mid-write.
const JUDGED: u64 = 1_000;

/// `plan --plan-out plan.csv`: one row per certificate, in manifest order.
#[test]
fn a_kill_while_the_plan_csv_is_written_leaves_the_old_csv_or_the_new_one_whole() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 0..JUDGED, "INACTIVE", &[], &[]);
    let csv = env.path("plan.csv");
    let kills = kill_during_writes(
        "plan-csv",
        || {
            env.cmd(&[
                "plan",
                "m.csv",
                "--plan-out",
                "plan.csv",
                "--rate-scale",
                "1000",
            ])
        },
        &csv,
        |bytes| verdict_csv_whole(bytes, "category", &ids, "ready"),
    );
    kills.last.expect_code(0);
}

/// `verify --out verify.csv`: one row per certificate that is not ok (none was transferred:
/// every one), in manifest order.
#[test]
fn a_kill_while_the_verify_csv_is_written_leaves_the_old_csv_or_the_new_one_whole() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 0..JUDGED, "INACTIVE", &[], &[]);
    env.write(
        "aws-config",
        &format!("[profile migrate-{TARGET}]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    );
    let csv = env.path("verify.csv");
    let args = [
        "verify",
        "m.csv",
        "--target-profile-template",
        "migrate-{account}",
        "--out",
        "verify.csv",
        "--rate-scale",
        "1000",
    ];
    let kills = kill_during_writes(
        "verify-csv",
        || {
            let mut c = env.cmd(&args);
            c.env("AWS_CONFIG_FILE", env.path("aws-config"));
            c
        },
        &csv,
        |bytes| verdict_csv_whole(bytes, "category", &ids, "not_transferred"),
    );
    kills.last.expect_code(3);
}

/// A verdict CSV with a row for each of `ids`, in that order, each in `category` (the column
/// named `column`).
fn verdict_csv_whole(
    bytes: &[u8],
    column: &str,
    ids: &[String],
    category: &str,
) -> Result<(), String> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(format!("no {name} column in {header:?}"))
    };
    let (id_at, category_at) = (at("certificate_id")?, at(column)?);
    let mut expected = ids.iter();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", i + 1))?;
        let Some(id) = expected.next() else {
            return Err(format!("row {}: one row too many", i + 1));
        };
        if record.get(id_at) != Some(id.as_str()) || record.get(category_at) != Some(category) {
            return Err(format!("row {}: {record:?}", i + 1));
        }
    }
    match expected.len() {
        0 => Ok(()),
        missing => Err(format!("{missing} rows missing")),
    }
}
