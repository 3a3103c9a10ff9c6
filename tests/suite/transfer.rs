//! Black-box tests of `transfer`, `validate` and `status`: the real binary against the
//! simulator, through the real aws-sdk-iot client.

use crate::harness::*;
use iot_sim::{SeedCertificate, SimConfig};

/// One certificate in each state the pipeline must tell apart.
struct Fleet {
    active_full: String,
    inactive_clean: String,
    with_policies: String,
    with_things: String,
    pending_to_target: String,
    pending_to_other: String,
    revoked: String,
    missing: String,
    target_is_owner: String,
}

fn fleet(env: &Env) -> Fleet {
    let f = Fleet {
        active_full: cert_id(1),
        inactive_clean: cert_id(2),
        with_policies: cert_id(3),
        with_things: cert_id(4),
        pending_to_target: cert_id(5),
        pending_to_other: cert_id(6),
        revoked: cert_id(7),
        missing: cert_id(8),
        target_is_owner: cert_id(9),
    };
    let pending = |id: &str, to: &str| SeedCertificate {
        pending_target: Some(to.to_string()),
        ..cert(id, "PENDING_TRANSFER", &[], &[])
    };
    env.seed(
        SOURCE,
        REGION,
        vec![
            cert(&f.active_full, "ACTIVE", &["p1", "p2"], &["thing-1"]),
            cert(&f.inactive_clean, "INACTIVE", &[], &[]),
            cert(&f.with_policies, "INACTIVE", &["p1"], &[]),
            cert(&f.with_things, "INACTIVE", &[], &["thing-4"]),
            pending(&f.pending_to_target, TARGET),
            pending(&f.pending_to_other, TARGET2),
            cert(&f.revoked, "REVOKED", &[], &[]),
            cert(&f.target_is_owner, "INACTIVE", &[], &[]),
        ],
    );
    f
}

fn fleet_manifest(env: &Env, f: &Fleet) -> std::path::PathBuf {
    env.manifest(
        "fleet.csv",
        &[
            (f.active_full.clone(), TARGET),
            (f.inactive_clean.clone(), TARGET),
            (f.with_policies.clone(), TARGET),
            (f.with_things.clone(), TARGET),
            (f.pending_to_target.clone(), TARGET),
            (f.pending_to_other.clone(), TARGET),
            (f.revoked.clone(), TARGET),
            (f.missing.clone(), TARGET),
        ],
    )
}

fn failure_codes(env: &Env) -> std::collections::BTreeMap<String, String> {
    read_csv(&env.path("fleet.failures.csv"))
        .into_iter()
        .map(|r| (r["certificate_id"].clone(), r["error_code"].clone()))
        .collect()
}

#[test]
fn without_flags_nothing_destructive_happens_and_each_state_ends_as_documented() {
    let env = Env::unlimited();
    let f = fleet(&env);
    fleet_manifest(&env, &f);
    let run = env.run(&["--output", "json", "transfer", "fleet.csv"]);
    run.expect_code(3);
    assert_eq!(
        run.count("transferred"),
        2,
        "inactive_clean and pending_to_target"
    );
    // Refused for want of a flag (or of the certificate in this account): waiting, not
    // failed; what no option fixes is failed.
    assert_eq!(run.count("waiting"), 4);
    assert_eq!(run.count("failed"), 2);
    assert_eq!(run.count("pending"), 0);
    assert_eq!(run.count("in_doubt"), 0);

    // Nothing destructive without the flags.
    let stats = env.sim.stats();
    for op in ["UpdateCertificate", "DetachPolicy", "DetachThingPrincipal"] {
        assert_eq!(stats.calls_of(op), 0, "{op} called without its flag");
    }
    let active = env.cert_state(&f.active_full).unwrap();
    assert_eq!(active.status, "ACTIVE");
    assert_eq!(active.policies, vec!["p1", "p2"]);
    assert_eq!(active.things, vec!["thing-1"]);

    let codes = failure_codes(&env);
    assert_eq!(codes[&f.active_full], "NotAllowed");
    assert_eq!(codes[&f.with_policies], "NotAllowed");
    assert_eq!(codes[&f.with_things], "NotAllowed");
    assert_eq!(codes[&f.pending_to_other], "PendingToAnotherAccount");
    assert_eq!(codes[&f.revoked], "CertificateStateException");
    assert_eq!(codes[&f.missing], "ResourceNotFoundException");
    let report = read_csv(&env.path("fleet.failures.csv"));
    let waiting_for = |id: &str| {
        report
            .iter()
            .find(|r| r["certificate_id"] == id)
            .map(|r| r["waiting_for"].clone())
            .unwrap()
    };
    assert_eq!(waiting_for(&f.active_full), "flags");
    assert_eq!(waiting_for(&f.with_things), "flags");
    assert_eq!(waiting_for(&f.missing), "source_account");
    assert_eq!(waiting_for(&f.revoked), "");
    assert_eq!(waiting_for(&f.pending_to_other), "");
    let active_row = report
        .iter()
        .find(|r| r["certificate_id"] == f.active_full)
        .unwrap();
    assert!(
        active_row["message"].contains("--deactivate"),
        "{}",
        active_row["message"]
    );
    assert!(active_row["message"].contains("--detach-policies"));
    assert!(active_row["message"].contains("--detach-things"));
    assert_eq!(active_row["stage"], "prepare");

    // The pending one was recognised, not transferred again.
    assert_eq!(stats.calls_of("TransferCertificate"), 1);
    assert_eq!(
        env.cert_state(&f.pending_to_target)
            .unwrap()
            .pending_target
            .as_deref(),
        Some(TARGET)
    );
}

#[test]
fn with_flags_prepare_runs_and_the_report_matches_the_simulator() {
    let env = Env::unlimited();
    let f = fleet(&env);
    fleet_manifest(&env, &f);
    let run = env.run(&[
        "--output",
        "json",
        "transfer",
        "fleet.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
    ]);
    run.expect_code(3);
    assert_eq!(run.count("transferred"), 5);
    assert_eq!(run.count("failed"), 2);
    assert_eq!(run.count("waiting"), 1, "missing");

    let state = env.state();
    for id in [
        &f.active_full,
        &f.inactive_clean,
        &f.with_policies,
        &f.with_things,
        &f.pending_to_target,
    ] {
        let (acct, c) = state.find(id).unwrap();
        assert_eq!(acct.account, SOURCE);
        assert_eq!(c.status, "PENDING_TRANSFER", "{id}");
        assert_eq!(c.pending_target.as_deref(), Some(TARGET));
        assert!(c.policies.is_empty() && c.things.is_empty());
    }
    // The failure report lists exactly the certificates the simulator did not move.
    let codes = failure_codes(&env);
    let not_moved: Vec<&String> = [&f.pending_to_other, &f.revoked, &f.missing]
        .into_iter()
        .collect();
    assert_eq!(codes.len(), not_moved.len());
    for id in not_moved {
        assert!(codes.contains_key(id), "{id} missing from the report");
        let pending_to_target =
            env.cert_state(id).and_then(|c| c.pending_target).as_deref() == Some(TARGET);
        assert!(
            !pending_to_target,
            "{id} is reported failed but the simulator moved it"
        );
    }
    // The ledger kept what prepare changed, for restore.
    let events = ledger_events(&env.path("fleet.ledger.jsonl"));
    let done_for = |action: &str| {
        events
            .iter()
            .filter(|e| {
                e["id"] == f.active_full.as_str()
                    && e["outcome"] == "done"
                    && e["details"]["action"] == action
            })
            .count()
    };
    assert_eq!(done_for("deactivate"), 1);
    assert_eq!(done_for("detach_policy"), 2);
    assert_eq!(done_for("detach_thing"), 1);
    let deactivate = events
        .iter()
        .find(|e| e["details"]["action"] == "deactivate" && e["outcome"] == "done")
        .unwrap();
    assert_eq!(deactivate["details"]["previous_status"], "ACTIVE");
}

#[test]
fn second_run_makes_no_transfer_call_and_exits_zero() {
    let env = Env::unlimited();
    env.fleet("m.csv", 100..140, "ACTIVE", &["p"], &["t"]);
    let args = [
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
    ];
    let first = env.run(&args);
    first.expect_code(0);
    assert_eq!(first.count("transferred"), 40);
    assert_eq!(env.sim.stats().calls_of("TransferCertificate"), 40);

    env.sim.reset_stats();
    let second = env.run(&args);
    second.expect_code(0);
    assert_eq!(second.count("transferred"), 40);
    assert_eq!(second.json()["processed_this_run"], 0);
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("TransferCertificate"), 0);
    assert_eq!(stats.calls_of("DescribeCertificate"), 0);

    // status reads the same counts from the ledger alone.
    let status = env.run(&["--output", "json", "status", "m.csv"]);
    status.expect_code(0);
    assert_eq!(status.json()["counts"], second.json()["counts"]);
    let status_by_ledger = env.run(&["--output", "json", "status", "m.ledger.jsonl"]);
    assert_eq!(status_by_ledger.json()["counts"]["transferred"], 40);
}

#[test]
fn bad_manifests_exit_2_name_the_line_and_call_nothing() {
    let env = Env::unlimited();
    let good = cert_id(1);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "short id",
            format!("certificate_id,target_account\n{good},{TARGET}\nabc,{TARGET}\n"),
            ":3:",
        ),
        (
            "bad account",
            format!("certificate_id,target_account\n{good},12345\n"),
            ":2:",
        ),
        (
            "long message",
            format!(
                "certificate_id,target_account,transfer_message\n{good},{TARGET},{}\n",
                "x".repeat(129)
            ),
            ":2:",
        ),
        (
            "two targets",
            format!("certificate_id,target_account\n{good},{TARGET}\n{good},{TARGET2}\n"),
            ":3:",
        ),
        (
            "unknown column",
            format!("certificate_id,target_acount\n{good},{TARGET}\n"),
            ":1:",
        ),
        (
            "field count",
            format!("certificate_id,target_account\n{good},{TARGET},extra\n"),
            ":2:",
        ),
    ];
    for (what, text, line) in cases {
        env.write("bad.csv", &text);
        for cmd in ["transfer", "validate"] {
            let run = env.run(&[cmd, "bad.csv"]);
            assert_eq!(run.code, 2, "{what} ({cmd}): stderr {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("bad.csv{line}")),
                "{what} ({cmd}) must name the line {line}: {}",
                run.stderr
            );
        }
        assert_eq!(env.sim.stats().total_calls(), 0, "{what}: AWS was called");
    }
    assert!(
        !env.path("bad.ledger.jsonl").exists(),
        "an invalid manifest starts no ledger"
    );
}

#[test]
fn throttling_at_the_simulator_loses_no_item() {
    // Quotas at 2x the documented ones while the tool believes 8x: the tool overshoots,
    // gets throttled, slows down, and still finishes everything.
    let env = Env::new(SimConfig {
        quota_scale: 2.0,
        ..SimConfig::default()
    });
    let ids = env.fleet("m.csv", 200..260, "INACTIVE", &[], &[]);
    let run = env.run(&["--output", "json", "transfer", "m.csv", "--rate-scale", "8"]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 60);
    let stats = env.sim.stats();
    let throttled: u64 = stats.throttled.values().sum();
    assert!(
        throttled > 0,
        "the test must actually provoke throttling: {stats:?}"
    );
    assert_eq!(stats.max_transfers_per_certificate, 1);
    let summary = run.json();
    let tool_throttles: u64 = summary["calls"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["throttled"].as_u64().unwrap())
        .sum();
    assert_eq!(
        tool_throttles, throttled,
        "the summary counts the throttles the simulator sent"
    );
    for id in &ids {
        assert_eq!(env.cert_state(id).unwrap().status, "PENDING_TRANSFER");
    }
}

#[test]
fn duplicate_rows_count_once_with_a_warning() {
    let env = Env::unlimited();
    let id = cert_id(300);
    env.seed(SOURCE, REGION, vec![cert(&id, "INACTIVE", &[], &[])]);
    env.write(
        "m.csv",
        &format!(
            "certificate_id,target_account\n{id},{TARGET}\n{},{TARGET}\n",
            id.to_uppercase()
        ),
    );
    let run = env.run(&["--output", "json", "transfer", "m.csv"]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 1);
    assert!(
        run.stderr.contains("m.csv:3"),
        "warning names the duplicate line: {}",
        run.stderr
    );
    assert_eq!(env.sim.stats().calls_of("TransferCertificate"), 1);
}

#[test]
fn failed_items_are_skipped_until_retry_failed() {
    let env = Env::unlimited();
    let id = cert_id(400);
    // Pending to another account: a person must cancel that transfer first.
    let pending = iot_sim::SeedCertificate {
        pending_target: Some(TARGET2.to_string()),
        ..cert(&id, "PENDING_TRANSFER", &[], &[])
    };
    env.seed(SOURCE, REGION, vec![pending]);
    env.manifest("m.csv", &[(id.clone(), TARGET)]);
    env.run(&["transfer", "m.csv"]).expect_code(3);
    env.sim.reset_stats();
    // Without --retry-failed the failure stands and AWS is not asked again.
    env.run(&["transfer", "m.csv"]).expect_code(3);
    assert_eq!(env.sim.stats().total_calls(), 1, "only GetCallerIdentity");
    // Someone cancelled that transfer: --retry-failed takes it.
    env.seed(SOURCE, REGION, vec![cert(&id, "INACTIVE", &[], &[])]);
    env.run(&["transfer", "m.csv", "--retry-failed"])
        .expect_code(0);
    assert_eq!(env.cert_state(&id).unwrap().status, "PENDING_TRANSFER");
    // The failure report of the last run is empty again.
    assert!(read_csv(&env.path("m.failures.csv")).is_empty());
}

/// A row addressed to the source account itself: the credentials are the source's, but the
/// tool cannot tell them from a target's: the run is refused before anything, naming the
/// account and both causes.
#[test]
fn a_row_addressed_to_the_caller_s_own_account_refuses_the_run_up_front() {
    let env = Env::unlimited();
    let f = fleet(&env);
    env.manifest(
        "m.csv",
        &[
            (f.inactive_clean.clone(), TARGET),
            (f.target_is_owner.clone(), SOURCE),
        ],
    );
    let run = env.run(&["transfer", "m.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains(SOURCE), "{}", run.stderr);
    assert!(run.stderr.contains("fix the manifest"), "{}", run.stderr);
    let stats = env.sim.stats();
    assert_eq!(stats.total_calls(), stats.calls_of("GetCallerIdentity"));
}

#[test]
fn wrong_flags_exit_2() {
    let env = Env::unlimited();
    env.manifest("m.csv", &[(cert_id(1), TARGET)]);
    assert_eq!(env.run(&["transfer", "m.csv", "--no-such-flag"]).code, 2);
    assert_eq!(
        env.run(&["transfer", "m.csv", "--rate", "NoSuchOp=3"]).code,
        2
    );
    assert_eq!(
        env.run(&["transfer", "m.csv", "--concurrency", "0"]).code,
        2
    );
    assert_eq!(env.sim.stats().total_calls(), 0);
}

#[test]
fn items_stopped_by_transient_errors_stay_pending_and_a_plain_rerun_takes_them() {
    let env = Env::unlimited();
    env.fleet("m.csv", 500..510, "INACTIVE", &[], &[]);
    // An outage: every IoT call answers 503 until the retry budget is spent.
    env.sim.set_faults(vec![(iot_sim::FaultKind::Http503, 1.0)]);
    let run = env.run(&[
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--max-attempts",
        "2",
    ]);
    // Not finished: the outage is not the certificates' failure; they stay pending and the
    // run asks to be run again (exit 4).
    run.expect_code(4);
    assert_eq!(run.count("failed"), 0);
    assert_eq!(run.count("pending"), 10);
    let report = read_csv(&env.path("m.failures.csv"));
    assert!(report.is_empty(), "failure rows for an outage: {report:?}");

    // The outage is over: the same command, without --retry-failed, finishes the job.
    env.sim.set_faults(vec![]);
    let rerun = env.run(&[
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--max-attempts",
        "2",
    ]);
    rerun.expect_code(0);
    assert_eq!(rerun.count("transferred"), 10);
    assert_eq!(env.sim.stats().max_transfers_per_certificate, 1);
}

#[test]
fn each_region_has_its_own_lane_even_when_the_manifest_is_sorted_by_region() {
    // AWS paces each region separately: with one shared window in file order, a manifest
    // sorted by region would keep all but one region idle.
    let env = Env::new(SimConfig {
        latency: std::time::Duration::from_millis(30),
        ..SimConfig::unlimited()
    });
    let east: Vec<String> = (600..606).map(cert_id).collect();
    let west: Vec<String> = (700..706).map(cert_id).collect();
    env.seed(
        SOURCE,
        REGION,
        east.iter()
            .map(|id| cert(id, "INACTIVE", &[], &[]))
            .collect(),
    );
    env.seed(
        SOURCE,
        "eu-west-1",
        west.iter()
            .map(|id| cert(id, "INACTIVE", &[], &[]))
            .collect(),
    );
    let mut text = String::from("certificate_id,target_account,region\n");
    for id in &east {
        text.push_str(&format!("{id},{TARGET},{REGION}\n"));
    }
    for id in &west {
        text.push_str(&format!("{id},{TARGET},eu-west-1\n"));
    }
    env.write("m.csv", &text);
    let run = env.run(&[
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--concurrency",
        "1",
    ]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 12);
    assert!(
        env.sim.stats().peak_in_flight >= 2,
        "both regions must be worked on at once: {:?}",
        env.sim.stats()
    );
    let state = env.state();
    for (ids, region) in [(&east, REGION), (&west, "eu-west-1")] {
        let acct = state
            .account(SOURCE, region)
            .expect("source account in region");
        for id in ids {
            let c = acct
                .certificates
                .iter()
                .find(|c| &c.id == id)
                .expect("cert in its region");
            assert_eq!(c.status, "PENDING_TRANSFER");
        }
    }
}
