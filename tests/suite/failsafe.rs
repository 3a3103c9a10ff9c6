//! Fail-safe tests (issue 10): how a run fails when the world breaks — credentials that
//! expire, a missing permission, an endpoint that goes away, garbled replies, a full disk,
//! unwritable outputs and hostile files. Each drives the real binary against the simulator
//! and checks the exit code, the message, the ledger, the failure report and the
//! simulator's state against each other.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;
use iot_sim::{CredentialState, DenyRule, FaultKind, OutageMode, Refusal, SimConfig};

const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Certificates in the source account that are deactivated but not pending transfer: the
/// devices waiting offline.
fn waiting_offline(fleet: &ActiveFleet) -> usize {
    let state = fleet.env.state();
    fleet
        .ids
        .iter()
        .filter(|id| {
            let (_, c) = state.find(id).expect("certificate");
            c.status == "INACTIVE" && c.pending_target.is_none()
        })
        .count()
}

/// Data rows of a failure report (0 when there is none).
fn failure_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    if path.exists() {
        read_csv(path)
    } else {
        Vec::new()
    }
}

/// Credentials expire mid-run: the run stops within a few requests, exits 1 with one
/// message naming the cause, whose credentials and what to do, records no failure, leaves
/// deactivated only certificates that were in flight (and says how many); a plain rerun
/// with valid credentials finishes every certificate exactly once.
#[test]
fn credentials_that_expire_mid_run_stop_it_and_a_plain_rerun_finishes() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 60);
    let concurrency = 8;
    fleet
        .env
        .sim
        .set_credentials(SOURCE, CredentialState::Expired, Some(120));
    let c = concurrency.to_string();
    let run = fleet.run(&["--concurrency", &c]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("refused the credentials")
            && run.stderr.contains("AWS_ACCESS_KEY_ID")
            && run.stderr.contains("refresh the credentials")
            && run.stderr.contains("run the same command again"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("not-a-secret"),
        "the secret key was printed"
    );
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one message: {}", run.stderr);
    // Each item in flight learns it once; nothing new starts after that.
    let refused = fleet.env.sim.stats().refused_of(Refusal::Expired);
    assert!(
        refused >= 1 && refused <= concurrency as u64 + 2,
        "{refused} requests sent with expired credentials"
    );
    assert!(
        failure_rows(&fleet.env.path("m.failures.csv")).is_empty(),
        "refused credentials are not the certificates' failures"
    );
    let counts = fleet.status_counts();
    assert_eq!(counts["failed"], 0, "{counts}");
    let transferred = counts["transferred"].as_u64().unwrap();
    assert!(
        transferred > 0 && transferred < 60,
        "{transferred} transferred before the credentials expired"
    );
    let offline = waiting_offline(&fleet);
    assert!(
        offline <= concurrency,
        "{offline} certificates left offline"
    );
    if offline > 0 {
        assert!(
            run.stderr.contains(&format!(
                "{offline} certificate{} left deactivated",
                if offline == 1 { "" } else { "s" }
            )) && run.stderr.contains("cancel m.csv --restore"),
            "{}",
            run.stderr
        );
    }

    fleet
        .env
        .sim
        .set_credentials(SOURCE, CredentialState::Valid, None);
    let rerun = fleet.run(&[]);
    rerun.expect_code(0);
    fleet.assert_all_transferred_once();
    fleet.assert_ledger_tells_each_change_once();
}

/// The permission to detach things is missing: the canary certificate alone is touched, it
/// is rolled back to its exact prior state, and the run exits 1 naming the call, the error
/// and the permission; the failure is recorded so that the next run starts with the next
/// certificate.
#[test]
fn a_missing_permission_costs_the_canary_only_and_it_is_rolled_back() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 30);
    fleet
        .env
        .sim
        .add_deny(DenyRule {
            account: SOURCE.into(),
            operation: "DetachThingPrincipal".into(),
            resource: None,
        })
        .unwrap();
    let before = fleet.env.state();
    let run = fleet.run(&[]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("AccessDeniedException on DetachThingPrincipal for the canary")
            && run
                .stderr
                .contains("the IAM policy probably lacks iot:DetachThingPrincipal")
            && run.stderr.contains("rolled back"),
        "{}",
        run.stderr
    );
    let stats = fleet.env.sim.stats();
    assert_eq!(stats.calls_of("DetachThingPrincipal"), 1, "{stats:?}");
    assert_eq!(stats.calls_of("DetachPolicy"), 1, "{stats:?}");
    assert_eq!(stats.calls_of("TransferCertificate"), 0, "{stats:?}");
    assert_eq!(
        fleet.env.state(),
        before,
        "every certificate is as before the run"
    );
    let rows = failure_rows(&fleet.env.path("m.failures.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["error_code"], "AccessDeniedException");
    assert_eq!(rows[0]["rolled_back"], "yes");

    // Without the canary, the breaker stops the run after 10 certificates in a row, each
    // rolled back; the certificates never started stay pending (no rows).
    let run = fleet.run(&["--canary", "0", "--concurrency", "1"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(
            "AccessDeniedException on DetachThingPrincipal for 10 certificates in a row: the IAM policy probably lacks iot:DetachThingPrincipal"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(fleet.env.state(), before);
    let rows = failure_rows(&fleet.env.path("m.failures.csv"));
    assert_eq!(rows.len(), 11, "the canary and ten in a row: {rows:?}");
    assert!(rows.iter().all(|r| r["rolled_back"] == "yes"), "{rows:?}");
    let counts = fleet.status_counts();
    assert_eq!(counts["pending"], 19, "{counts}");
}

/// `--no-rollback` keeps the certificate as prepare left it.
#[test]
fn no_rollback_leaves_the_failed_certificate_as_prepare_left_it() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 3);
    fleet
        .env
        .sim
        .add_deny(DenyRule {
            account: SOURCE.into(),
            operation: "TransferCertificate".into(),
            resource: None,
        })
        .unwrap();
    let run = fleet.run(&["--no-rollback"]);
    run.expect_code(1);
    assert!(run.stderr.contains("NOT rolled back"), "{}", run.stderr);
    assert_eq!(waiting_offline(&fleet), 1);
    let rows = failure_rows(&fleet.env.path("m.failures.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["rolled_back"], "no");
}

/// The endpoint goes away mid-run (`mode`) with a full window of 64 certificates in flight,
/// at every stage of their work: the run stops with exit 4 once AWS has answered nothing for
/// `--max-unreachable`, and records no failure at all (none of this is a certificate's
/// failure: the items stay pending, or in doubt for the next run to reconcile); a plain
/// rerun once it is back converges with every certificate transferred exactly once and
/// every change recorded exactly once.
fn an_endpoint_gone_mid_run(mode: OutageMode) {
    let mut fleet = ActiveFleet::new(
        SimConfig {
            latency: Duration::from_millis(5),
            timeout_hold: Duration::from_secs(30),
            ..SimConfig::unlimited()
        },
        300,
    );
    // At the documented quotas (10 transfers a second), so that the window stays full.
    fleet.rate_scale = "1";
    let mut run = fleet.spawn(
        mode.as_str(),
        &[
            "--concurrency",
            "64",
            "--max-unreachable",
            "5s",
            "--grace",
            "5s",
            "--connect-timeout",
            "1",
            "--read-timeout",
            "2",
        ],
    );
    wait_until("some certificates to be transferred", RUN_LIMIT, || {
        fleet.env.sim.stats().transfers_effective >= 10 || run.exited()
    });
    fleet.env.sim.set_outage(mode);
    let gone = Instant::now();
    let status = run.wait(RUN_LIMIT);
    let took = gone.elapsed();
    let stderr = run.stderr();
    assert_eq!(status.code(), Some(4), "{mode}: {stderr}");
    assert!(
        took < Duration::from_secs(40),
        "{mode}: took {took:?} to stop"
    );
    assert!(
        stderr.contains("unreachable") || stderr.contains("in a row"),
        "{mode}: {stderr}"
    );
    let rows = failure_rows(&fleet.env.path("m.failures.csv"));
    assert!(
        rows.is_empty(),
        "{mode}: failure rows for an outage: {rows:?}"
    );
    let counts = fleet.status_counts();
    assert_eq!(counts["failed"], 0, "{mode}: {counts}");
    let transferred = counts["transferred"].as_u64().unwrap();
    assert!(
        transferred < 300,
        "{mode}: the outage came too late: {counts}"
    );

    fleet.env.sim.set_outage(OutageMode::Off);
    fleet.rate_scale = "100";
    let rerun = fleet.run(&[]);
    rerun.expect_code(0);
    fleet.assert_all_transferred_once();
}

#[test]
fn an_endpoint_killed_mid_run_records_no_failure_and_a_plain_rerun_converges() {
    an_endpoint_gone_mid_run(OutageMode::Down);
}

#[test]
fn an_endpoint_blackholed_mid_run_records_no_failure_and_a_plain_rerun_converges() {
    an_endpoint_gone_mid_run(OutageMode::Blackhole);
}

#[test]
fn connections_reset_mid_run_record_no_failure_and_a_plain_rerun_converges() {
    an_endpoint_gone_mid_run(OutageMode::Reset);
}

/// Garbled 2xx replies (cut short, empty) and duplicate deliveries of mutating calls:
/// nothing is recorded as failed, every certificate is transferred exactly once, the ledger
/// equals the simulator's state, and a plain rerun (no `--retry-failed`) has nothing to do.
#[test]
fn garbled_replies_and_duplicate_deliveries_are_reconciled_not_refused() {
    let fleet = ActiveFleet::new(
        SimConfig {
            faults: vec![
                (FaultKind::Truncated, 0.1),
                (FaultKind::Empty, 0.1),
                (FaultKind::Duplicate, 0.2),
            ],
            ..SimConfig::unlimited()
        },
        100,
    );
    let run = fleet.run(&["--max-attempts", "10"]);
    run.expect_code(0);
    let stats = fleet.env.sim.stats();
    for kind in [FaultKind::Truncated, FaultKind::Empty, FaultKind::Duplicate] {
        assert!(stats.faults_of(kind) > 0, "no {kind} fault: {stats:?}");
    }
    fleet.assert_all_transferred_once();
    fleet.assert_ledger_tells_each_change_once();
    fleet.assert_ledger_matches_sim();
    fleet.env.sim.set_faults(vec![]);
    fleet.env.sim.reset_stats();
    let rerun = fleet.run(&[]);
    rerun.expect_code(0);
    assert_eq!(
        fleet.env.sim.stats().calls_of("TransferCertificate"),
        0,
        "a plain rerun has nothing left to do"
    );
}

/// An unwritable failure-report location is found before the first AWS call.
#[test]
fn an_unwritable_failure_report_path_is_refused_before_any_call() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 5);
    let run = fleet.run(&["--failures", "no/such/dir/f.csv"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("failure report") && run.stderr.contains("no/such/dir/f.csv"),
        "{}",
        run.stderr
    );
    assert_eq!(fleet.env.sim.stats().total_calls(), 0);
    assert!(!fleet.ledger.exists(), "nothing was created");
}

/// A FIFO manifest without a writer is refused at once (never opened), naming the path;
/// a ledger path that is a directory too, once each cause, and with no stray lock file.
#[test]
fn a_fifo_manifest_and_a_directory_ledger_are_refused_without_blocking() {
    let env = Env::unlimited();
    let fifo = env.path("fifo.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    for args in [
        vec!["validate", "fifo.csv"],
        vec!["transfer", "fifo.csv", "--deactivate"],
    ] {
        let mut child = env
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the run on a FIFO to end", Duration::from_secs(20), || {
            child.try_wait().unwrap().is_some()
        });
        let run = Run::from(child.wait_with_output().unwrap());
        // Exit 1: a file that cannot be read as a manifest, not an invalid one.
        run.expect_code(1);
        assert!(
            run.stderr.contains("fifo.csv") && run.stderr.contains("FIFO"),
            "{}",
            run.stderr
        );
        assert_eq!(
            run.stderr.matches("not a regular file").count(),
            1,
            "{}",
            run.stderr
        );
    }

    env.fleet("m.csv", 0..3, "INACTIVE", &[], &[]);
    std::fs::create_dir(env.path("dir.ledger")).unwrap();
    let run = env.run(&["transfer", "m.csv", "--ledger", "dir.ledger"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("dir.ledger") && run.stderr.contains("is a directory"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("is a directory").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        !env.path("dir.ledger.lock").exists(),
        "a stray lock was left"
    );
    assert_eq!(env.sim.stats().total_calls(), 0);
}

/// A 200 MB manifest without a line end: refused at once as a row over 1 MiB, with a peak
/// RSS under 100 MB, and no AWS call. (A sparse file: it takes no disk space.)
#[test]
fn a_200_mb_single_line_manifest_is_refused_in_bounded_memory() {
    let env = Env::unlimited();
    let path = env.path("huge.csv");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"certificate_id,target_account\n").unwrap();
        f.set_len(200 << 20).unwrap();
    }
    let (code, max_rss_kb, stderr) =
        peak_rss_of(env.cmd(&["transfer", "huge.csv", "--deactivate"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("huge.csv:2") && stderr.contains("longer than 1,048,576 bytes"),
        "{stderr}"
    );
    println!(
        "peak RSS of a 200 MB single-line manifest: {} MB",
        max_rss_kb / 1024
    );
    assert!(max_rss_kb < 100 * 1024, "peak RSS {max_rss_kb} KiB");
    assert_eq!(env.sim.stats().total_calls(), 0);
}

/// Runs `cmd` under a small measuring parent: its exit code, peak RSS (KiB) and stderr.
fn peak_rss_of(cmd: std::process::Command) -> (i32, i64, String) {
    // Measured by a small parent: a child forked from this test process starts with the
    // test process's resident-set high-water mark (kept across exec), so wait4 here would
    // report the whole test suite's size, not the tool's.
    const MEASURE: &str = "import resource, subprocess, sys\n\
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n\
sys.stderr.buffer.write(p.stderr)\n\
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let python = python_with("resource").expect("a Python to measure with");
    let mut measured = std::process::Command::new(python);
    measured
        .arg("-c")
        .arg(MEASURE)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => measured.env(k, v),
            None => measured.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        measured.current_dir(dir);
    }
    let out = measured.output().expect("run the measuring Python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut fields = stdout
        .split_whitespace()
        .map(|f| f.parse::<i64>().expect("a number"));
    let (code, rss) = (
        fields.next().expect("exit code"),
        fields.next().expect("peak RSS"),
    );
    (
        code as i32,
        rss,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A ledger whose only line is a newer format's header, without a newline, is refused
/// (exit 2), not taken for a torn line: nothing is moved or rewritten, nothing is sent.
#[test]
fn a_future_format_header_without_a_newline_is_refused_untouched() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..3, "INACTIVE", &[], &[]);
    let header = r#"{"format":2,"kind":"transfer","tool":"iot-cert-migrate","tool_version":"9.0.0","manifest":"m.csv","manifest_sha256":"00","started_at":"2030-01-01T00:00:00.000Z"}"#;
    let ledger = env.write("m.ledger.jsonl", header);
    let run = env.run(&["transfer", "m.csv"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("m.ledger.jsonl") && run.stderr.contains("newer"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&ledger).unwrap(), header);
    assert!(!env.path("m.ledger.jsonl.torn").exists());
    assert_eq!(env.sim.stats().total_calls(), 0);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The disk holding the ledger fills up: exit 1, a message with the real cause and the
/// ledger's path; once there is room again, the same command finishes the job with every
/// certificate transferred exactly once.
#[test]
fn a_full_disk_names_its_cause_and_the_ledger_and_a_rerun_finishes() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 60);
    let mnt = fleet.env.path("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount");
    if !mounted.success() {
        println!("skipped: mount -t tmpfs failed ({mounted})");
        return;
    }
    let _guard = Tmpfs(mnt.clone());
    // Leave room for a few dozen certificates' events.
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 200 << 10]).unwrap();
    let ledger = mnt.join("m.ledger.jsonl");
    let l = ledger.to_str().unwrap();
    let run = fleet.run(&["--ledger", l]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("No space left on device") && run.stderr.contains(l),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("writer has stopped"), "{}", run.stderr);

    std::fs::remove_file(&filler).unwrap();
    let rerun = fleet.run(&["--ledger", l]);
    rerun.expect_code(0);
    let stats = fleet.env.sim.stats();
    assert_eq!(stats.max_transfers_per_certificate, 1);
    assert_eq!(stats.transfers_effective, 60);
}
