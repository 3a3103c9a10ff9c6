//! The ledger's checkpoint (issue 15) survives what happens to files in real life: a run
//! killed while it writes the checkpoint, a checkpoint older than its ledger, a ledger
//! truncated below what its checkpoint covers, a checkpoint of another ledger. In every case
//! the rerun resumes correctly (each certificate transferred exactly once) and says what it
//! did with the checkpoint: used it, or ignored it with the documented warning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;
use iot_sim::SimConfig;
use rand::Rng;

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Logs the ledger's notes ("state read from its checkpoint ..."), which are debug lines.
const NOTES: (&str, &str) = ("IOT_CERT_MIGRATE_LOG", "debug");

/// The note of a run that started from its checkpoint.
const FROM_CHECKPOINT: &str = "state read from its checkpoint";

/// The start of every warning about a checkpoint that was not used.
const NOT_USED: &str = "not used:";

fn checkpoint(ledger: &Path) -> PathBuf {
    PathBuf::from(format!("{}.checkpoint", ledger.display()))
}

/// The temporary file run `pid` writes the checkpoint to (`.NAME.PID.tmp` beside it).
fn checkpoint_tmp(ledger: &Path, pid: u32) -> PathBuf {
    let name = ledger.file_name().unwrap().to_string_lossy();
    ledger.with_file_name(format!(".{name}.checkpoint.{pid}.tmp"))
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

/// SIGKILL while the checkpoint is being written (its temporary file exists when the kill
/// lands), several times: each next run warns that the write was interrupted and removes
/// the temporary file, and the job ends with every certificate transferred exactly once.
#[test]
fn sigkill_while_the_checkpoint_is_written_then_reruns_finish_exactly_once() {
    use std::os::unix::process::ExitStatusExt;
    /// Kills that must land during a checkpoint write.
    const KILLS_DURING_WRITE: usize = 3;
    let fleet = ActiveFleet::new(
        SimConfig {
            latency: Duration::from_millis(2),
            latency_jitter: Duration::from_millis(3),
            ..SimConfig::unlimited()
        },
        400,
    );
    // A checkpoint after every group commit: most of a run is spent next to one.
    let vars = [NOTES, ("IOT_CERT_MIGRATE_CHECKPOINT_EVERY", "1")];
    let mut left: Option<PathBuf> = None;
    let mut rng = rng("checkpoint-kill");
    let (mut runs, mut during_write, mut warned) = (0, 0, 0);
    let mut interrupted_before = false;
    while during_write < KILLS_DURING_WRITE {
        runs += 1;
        assert!(
            runs <= 40,
            "{during_write} kills during a write in {runs} runs"
        );
        let before = fleet.ledger_lines();
        let mut run = fleet.spawn_with_env(&format!("run-{runs}"), &[], &vars);
        let tmp = checkpoint_tmp(&fleet.ledger, run.child.id());
        let grow = rng.random_range(1..=150);
        wait_until("the ledger to grow", RUN_LIMIT, || {
            fleet.ledger_lines() >= before + 1 + grow || run.exited()
        });
        wait_until("a checkpoint write", RUN_LIMIT, || {
            tmp.exists() || run.exited()
        });
        let _ = run.child.kill();
        let status = run.wait(RUN_LIMIT);
        assert_eq!(
            status.signal(),
            Some(9),
            "run {runs} ended by itself ({status}): the fleet is too small\n{}",
            run.stderr()
        );
        let stderr = run.stderr();
        if interrupted_before {
            assert!(
                stderr.contains("a checkpoint write was interrupted"),
                "run {runs} after a kill during a checkpoint write did not say so:\n{stderr}"
            );
            warned += 1;
        }
        assert!(!stderr.contains(NOT_USED), "run {runs}:\n{stderr}");
        if let Some(earlier) = left.take() {
            assert!(!earlier.exists(), "{earlier:?} was not removed");
        }
        // The temporary file outlived the process: the kill cut the write short.
        interrupted_before = tmp.exists();
        during_write += usize::from(interrupted_before);
        left = interrupted_before.then_some(tmp);
    }
    let last = fleet
        .spawn_with_env("final", &[], &[NOTES])
        .finish(RUN_LIMIT);
    last.expect_code(0);
    assert!(
        last.stderr.contains("a checkpoint write was interrupted"),
        "{}",
        last.stderr
    );
    assert!(
        last.stderr.contains(FROM_CHECKPOINT),
        "the checkpoint kept by the rename was not used:\n{}",
        last.stderr
    );
    assert!(!last.stderr.contains(NOT_USED), "{}", last.stderr);
    assert!(
        left.is_none_or(|tmp| !tmp.exists()),
        "the interrupted write was not removed"
    );
    eprintln!("checkpoint kill: {during_write} kills during a write ({warned} warned mid-run) in {runs} runs");
    fleet.assert_all_transferred_once();
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
