//! The ledger's checkpoint (issue 15) survives what happens to files in real life: a run
//! killed while it writes the checkpoint (tests/suite/durability.rs), a checkpoint older than
//! its ledger, a ledger truncated below what its checkpoint covers, a checkpoint of another
//! ledger. In every case
//! the rerun resumes correctly (each certificate transferred exactly once) and says what it
//! did with the checkpoint: used it, or ignored it with the documented warning.

use std::path::{Path, PathBuf};

use crate::harness::*;
use iot_sim::SimConfig;

/// Logs the ledger's notes ("state read from its checkpoint ..."), which are debug lines.
pub const NOTES: (&str, &str) = ("IOT_CERT_MIGRATE_LOG", "debug");

/// The note of a run that started from its checkpoint.
pub const FROM_CHECKPOINT: &str = "state read from its checkpoint";

/// The start of every warning about a checkpoint that was not used.
pub const NOT_USED: &str = "not used:";

fn checkpoint(ledger: &Path) -> PathBuf {
    PathBuf::from(format!("{}.checkpoint", ledger.display()))
}

/// Runs `--max-items N` and checks that it stopped there after transferring N.
fn slice(fleet: &ActiveFleet, n: u64) -> Run {
    let run = fleet.run_with_env(&["--max-items", &n.to_string()], &[NOTES]);
    run.expect_code(4);
    assert_eq!(run.json()["processed_this_run"], n, "{}", run.stderr);
    run
}

/// The events of certificates whose `transferred` outcome says `via`.
fn transferred_via(ledger: &Path, via: &str) -> Vec<String> {
    ledger_events(ledger)
        .iter()
        .filter(|e| e["outcome"] == "transferred" && e["details"]["via"] == via)
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// A checkpoint older than the ledger (it covers the first run; a second run added lines and
/// was stopped before it wrote a new one): it is used, the lines after it are replayed, and
/// nothing that the second run did is redone.
#[test]
fn a_checkpoint_older_than_the_ledger_is_used_and_only_the_rest_is_done() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 300);
    slice(&fleet, 100);
    let old = fleet.env.path("old.checkpoint");
    std::fs::copy(checkpoint(&fleet.ledger), &old).expect("copy the checkpoint");
    let lines_after_first = fleet.ledger_lines();
    slice(&fleet, 100);
    std::fs::copy(&old, checkpoint(&fleet.ledger)).expect("put the old checkpoint back");
    let tail = fleet.ledger_lines() - lines_after_first;

    let last = fleet.run_with_env(&[], &[NOTES]);
    last.expect_code(0);
    assert!(!last.stderr.contains(NOT_USED), "{}", last.stderr);
    assert!(
        last.stderr.contains(FROM_CHECKPOINT)
            && last.stderr.contains(&format!("the {tail} lines after it")),
        "the old checkpoint was not used with the {tail} lines after it:\n{}",
        last.stderr
    );
    assert_eq!(last.json()["processed_this_run"], 100, "{}", last.stdout);
    assert_eq!(fleet.env.sim.stats().calls_of("TransferCertificate"), 300);
    fleet.assert_all_transferred_once();
}

/// The ledger truncated below what the checkpoint covers (restored from an older copy, say):
/// the checkpoint is ignored with a warning and the whole ledger read. The certificates whose
/// lines were lost are found pending transfer at the source and recorded as such, not sent
/// again; and the next run starts from the new checkpoint.
#[test]
fn a_ledger_truncated_below_its_checkpoint_is_read_whole_with_a_warning() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 300);
    slice(&fleet, 100);
    let older_len = std::fs::metadata(&fleet.ledger).unwrap().len();
    slice(&fleet, 100);
    let covered_len = std::fs::metadata(&fleet.ledger).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fleet.ledger)
        .and_then(|f| f.set_len(older_len))
        .expect("truncate the ledger");

    let last = fleet.run_with_env(&[], &[NOTES]);
    last.expect_code(0);
    let warning = format!(
        "not used: it covers {covered_len} bytes but the ledger has only {older_len}: the ledger was truncated or replaced"
    );
    assert!(last.stderr.contains(&warning), "{}", last.stderr);
    assert!(!last.stderr.contains(FROM_CHECKPOINT), "{}", last.stderr);
    // The second slice's certificates: their records were lost, the source says pending.
    assert_eq!(
        transferred_via(&fleet.ledger, "already_pending").len(),
        100,
        "{}",
        last.stdout
    );
    let stats = fleet.env.sim.stats();
    assert_eq!(stats.calls_of("TransferCertificate"), 300);
    assert_eq!(stats.max_transfers_per_certificate, 1);
    assert_eq!(stats.transfers_effective, 300);
    let counts = fleet.status_counts();
    assert_eq!(counts["transferred"], 300, "{counts}");

    let again = fleet.run_with_env(&[], &[NOTES]);
    again.expect_code(0);
    assert!(again.stderr.contains(FROM_CHECKPOINT), "{}", again.stderr);
    assert!(!again.stderr.contains(NOT_USED), "{}", again.stderr);
    assert_eq!(again.json()["processed_this_run"], 0, "{}", again.stdout);
}

/// A checkpoint copied from another ledger (another manifest's run): ignored with a warning,
/// the ledger read whole; the run does exactly what this ledger leaves to do.
#[test]
fn a_checkpoint_of_another_ledger_is_ignored_with_a_warning() {
    let other = ActiveFleet::new(SimConfig::unlimited(), 200);
    slice(&other, 50);
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 300);
    slice(&fleet, 100);
    std::fs::copy(checkpoint(&other.ledger), checkpoint(&fleet.ledger))
        .expect("copy the other checkpoint");

    let last = fleet.run_with_env(&[], &[NOTES]);
    last.expect_code(0);
    assert!(
        last.stderr
            .contains("not used: it belongs to another ledger (the ledger's header differs)"),
        "{}",
        last.stderr
    );
    assert!(!last.stderr.contains(FROM_CHECKPOINT), "{}", last.stderr);
    assert_eq!(last.json()["processed_this_run"], 200, "{}", last.stdout);
    assert_eq!(fleet.env.sim.stats().calls_of("TransferCertificate"), 300);
    fleet.assert_all_transferred_once();

    let again = fleet.run_with_env(&[], &[NOTES]);
    again.expect_code(0);
    assert!(again.stderr.contains(FROM_CHECKPOINT), "{}", again.stderr);
    assert_eq!(again.json()["processed_this_run"], 0, "{}", again.stdout);
}
