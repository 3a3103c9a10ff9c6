//! The mistakes operators really make (issue 24), each against the real binary and the
//! simulator: a refusal the tool decides itself (a forgotten flag, a missing target policy,
//! the wrong account) changes nothing, says in one message what fixes it, and does not
//! poison the rerun: the same command corrected takes every certificate, without
//! `--retry-failed`, exactly once. The wrong account is refused before anything happens.

use std::collections::BTreeMap;

use crate::harness::*;
use iot_sim::SimConfig;

/// The outcomes of a ledger's events, in order.
fn outcomes(env: &Env, ledger: &str) -> Vec<String> {
    ledger_events(&env.path(ledger))
        .iter()
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect()
}

/// The error lines of a run's stderr (the log's own lines aside, there should be few).
fn lines(run: &Run) -> usize {
    run.stderr.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Forgotten prepare flags: the first ten certificates are refused, nothing is changed, one
/// message names every flag the fleet needs, exit 2; they are recorded as waiting, not
/// failed, so the same command with the flags takes the whole fleet, each once.
#[test]
fn forgotten_flags_change_nothing_name_the_flags_and_the_corrected_command_takes_all() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 0..30, "ACTIVE", &["p1"], &["thing-1"]);
    let run = env.run(&["--output", "json", "transfer", "m.csv"]);
    run.expect_code(2);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        BTreeMap::new(),
        "AWS was changed"
    );
    for id in &ids {
        let c = env.cert_state(id).unwrap();
        assert_eq!(
            (c.status.as_str(), c.policies.len(), c.things.len()),
            ("ACTIVE", 1, 1)
        );
    }
    assert!(
        lines(&run) <= 2,
        "a few lines, not one per certificate:\n{}",
        run.stderr
    );
    for flag in ["--deactivate", "--detach-policies", "--detach-things"] {
        assert!(run.stderr.contains(flag), "{flag}: {}", run.stderr);
    }
    assert!(
        run.stderr.contains("first 10 certificates"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("without --retry-failed"),
        "{}",
        run.stderr
    );
    let summary = run.json();
    assert_eq!(summary["counts"]["waiting"], 10, "{summary}");
    assert_eq!(summary["counts"]["failed"], 0, "{summary}");
    assert_eq!(summary["counts"]["pending"], 20, "{summary}");
    assert_eq!(summary["exit_code"], 2);
    // The ledger holds the refusals, nothing else: no intent, no failure.
    let recorded = outcomes(&env, "m.ledger.jsonl");
    assert_eq!(recorded.len(), 10, "{recorded:?}");
    assert!(recorded.iter().all(|o| o == "waiting"), "{recorded:?}");
    let report = read_csv(&env.path("m.failures.csv"));
    assert_eq!(report.len(), 10);
    assert!(
        report.iter().all(|r| r["waiting_for"] == "flags"),
        "{report:?}"
    );

    // The same command with the flags, no --retry-failed: everything, once.
    let run = env.run(&[
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
    ]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 30);
    assert_eq!(run.count("waiting"), 0);
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("TransferCertificate"), 30);
    assert_eq!(stats.calls_of("UpdateCertificate"), 30);
    assert_eq!(stats.max_transfers_per_certificate, 1);
    assert!(read_csv(&env.path("m.failures.csv")).is_empty());
}

/// A mixed fleet: INACTIVE certificates without attachments move; ACTIVE ones wait for
/// `--deactivate`, listed with what they need; exit 3. Then `--deactivate` takes them.
#[test]
fn a_mixed_fleet_moves_what_the_flags_allow_and_lists_the_rest_with_what_it_needs() {
    let env = Env::unlimited();
    let inactive: Vec<String> = (0..6).map(cert_id).collect();
    let active: Vec<String> = (6..10).map(cert_id).collect();
    let mut certs: Vec<_> = inactive
        .iter()
        .map(|id| cert(id, "INACTIVE", &[], &[]))
        .collect();
    certs.extend(active.iter().map(|id| cert(id, "ACTIVE", &[], &[])));
    env.seed(SOURCE, REGION, certs);
    // Interleaved, an INACTIVE one first: it is the canary and moves.
    let mut rows = Vec::new();
    for (i, id) in inactive.iter().enumerate() {
        rows.push((id.clone(), TARGET));
        if let Some(a) = active.get(i) {
            rows.push((a.clone(), TARGET));
        }
    }
    env.manifest("m.csv", &rows);
    let run = env.run(&["--output", "json", "transfer", "m.csv"]);
    run.expect_code(3);
    let summary = run.json();
    assert_eq!(summary["counts"]["transferred"], 6, "{summary}");
    assert_eq!(summary["counts"]["waiting"], 4, "{summary}");
    assert_eq!(summary["counts"]["failed"], 0, "{summary}");
    assert_eq!(summary["left"], 0, "{summary}");
    let flags = &summary["waiting_for"]["flags"];
    assert_eq!(flags["certificates"], 4, "{summary}");
    assert_eq!(
        flags["needs"],
        serde_json::json!(["--deactivate"]),
        "{summary}"
    );
    for id in &active {
        assert_eq!(env.cert_state(id).unwrap().status, "ACTIVE");
    }
    let report = read_csv(&env.path("m.failures.csv"));
    let listed: Vec<&String> = report.iter().map(|r| &r["certificate_id"]).collect();
    assert_eq!(listed.len(), 4);
    assert!(active.iter().all(|id| listed.contains(&id)), "{report:?}");
    assert!(report.iter().all(|r| r["message"].contains("--deactivate")));
    // The same command again: only the refused ones are left, and they are refused again
    // (reads only), with one message; the text summary counts them.
    let text = env.run(&["transfer", "m.csv"]);
    text.expect_code(2);
    assert!(text.stderr.contains("--deactivate"), "{}", text.stderr);
    assert!(text.stdout.contains("waiting 4"), "{}", text.stdout);
    assert_eq!(env.sim.stats().calls_of("TransferCertificate"), 6);

    let run = env.run(&["--output", "json", "transfer", "m.csv", "--deactivate"]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 10);
    assert_eq!(env.sim.stats().calls_of("TransferCertificate"), 10);
    assert_eq!(env.sim.stats().max_transfers_per_certificate, 1);
}

/// `accept --attach-policy` naming a policy the target does not have: nothing is accepted,
/// one message names the policy and the account, exit 2; once the policy exists, the same
/// command accepts every certificate, each once.
#[test]
fn a_missing_target_policy_accepts_nothing_and_the_same_command_takes_all_once_it_exists() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..12, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    let before = env.sim.stats().mutating_calls();
    let accept = [
        "--output",
        "json",
        "accept",
        "m.csv",
        "--attach-policy",
        "fleet-policy",
    ];
    let run = env.run_as(TARGET, &accept);
    run.expect_code(2);
    assert_eq!(env.sim.stats().mutating_calls(), before, "AWS was changed");
    assert!(lines(&run) <= 2, "{}", run.stderr);
    assert!(run.stderr.contains("fleet-policy"), "{}", run.stderr);
    assert!(run.stderr.contains(TARGET), "{}", run.stderr);
    // accept has no canary: items already in flight when the tenth was refused end too.
    let counts = &run.json()["counts"];
    assert!(counts["waiting"].as_u64().unwrap() >= 10, "{counts}");
    assert_eq!(counts["accepted"], 0, "{counts}");

    env.seed_policies(TARGET, REGION, &["fleet-policy"]);
    let run = env.run_as(TARGET, &accept);
    run.expect_code(0);
    assert_eq!(run.count("accepted"), 12);
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("AcceptCertificateTransfer"), 12);
    assert_eq!(stats.calls_of("AttachPolicy"), 12);
}

/// `transfer` with the target account's credentials: refused before anything, naming the
/// account; nothing recorded for any certificate; the source's credentials then move all.
#[test]
fn the_target_s_credentials_used_as_the_source_are_refused_up_front() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..5, "INACTIVE", &[], &[]);
    let run = env.run_as(TARGET, &["transfer", "m.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains(TARGET), "{}", run.stderr);
    assert!(run.stderr.contains("target account"), "{}", run.stderr);
    assert!(lines(&run) <= 2, "{}", run.stderr);
    let stats = env.sim.stats();
    assert_eq!(stats.total_calls(), stats.calls_of("GetCallerIdentity"));
    assert!(outcomes(&env, "m.ledger.jsonl").is_empty());

    let run = env.run(&["--output", "json", "transfer", "m.csv"]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 5);
}

/// A third account's credentials on a new ledger: the certificates are not there; the first
/// ten wait for the source's credentials, one message names the account, exit 2, nothing
/// changed; the right credentials then take them all without --retry-failed.
#[test]
fn another_account_s_credentials_find_nothing_and_the_right_ones_take_all() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..15, "INACTIVE", &[], &[]);
    let run = env.run_as(TARGET2, &["transfer", "m.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains(TARGET2), "{}", run.stderr);
    assert!(run.stderr.contains("--profile"), "{}", run.stderr);
    assert!(lines(&run) <= 2, "{}", run.stderr);
    assert_eq!(env.sim.stats().mutating_calls(), BTreeMap::new());
    // An account that found none of the certificates does not claim the ledger: the same
    // command with the source's credentials takes them all, each once.
    let run = env.run(&["--output", "json", "transfer", "m.csv"]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 15);
    assert_eq!(env.sim.stats().calls_of("TransferCertificate"), 15);
}

/// The ledger records its account and region; a ledger started by account A is refused to
/// account C's credentials (exit 2, both named, nothing sent but STS, nothing recorded), and
/// to another default region when rows rely on it.
#[test]
fn a_ledger_of_account_a_is_refused_to_account_c() {
    let env = Env::new(SimConfig::unlimited());
    env.fleet("m.csv", 0..6, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv", "--max-items", "2"])
        .expect_code(4);
    let runs: Vec<serde_json::Value> = read_jsonl(&env.path("m.ledger.jsonl"))
        .into_iter()
        .filter(|l| l.get("run").is_some())
        .collect();
    assert_eq!(runs[0]["account"], SOURCE);
    assert_eq!(runs[0]["region"], REGION);
    let lines_before = read_jsonl(&env.path("m.ledger.jsonl")).len();
    let calls_before = env.sim.stats().total_calls();

    let run = env.run_as(TARGET2, &["transfer", "m.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains(SOURCE), "{}", run.stderr);
    assert!(run.stderr.contains(TARGET2), "{}", run.stderr);
    assert!(run.stderr.contains("--ledger"), "{}", run.stderr);
    assert_eq!(
        env.sim.stats().total_calls() - calls_before,
        1,
        "only GetCallerIdentity"
    );
    assert_eq!(read_jsonl(&env.path("m.ledger.jsonl")).len(), lines_before);

    let run = env.run(&["--region", "eu-west-1", "transfer", "m.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--region us-east-1"), "{}", run.stderr);

    env.run(&["transfer", "m.csv"]).expect_code(0);
}

/// Outputs follow the ledger: a run with `--ledger elsewhere/x.jsonl` writes its failure
/// report beside that ledger, and leaves the manifest's own report as it was.
#[test]
fn a_ledger_elsewhere_keeps_its_failure_report_beside_it() {
    let env = Env::unlimited();
    let revoked = cert_id(1);
    env.seed(SOURCE, REGION, vec![cert(&revoked, "REVOKED", &[], &[])]);
    env.manifest("m.csv", &[(revoked.clone(), TARGET)]);
    env.run(&["transfer", "m.csv"]).expect_code(3);
    let ours = std::fs::read(env.path("m.failures.csv")).unwrap();
    assert_eq!(read_csv(&env.path("m.failures.csv")).len(), 1);

    std::fs::create_dir(env.path("elsewhere")).unwrap();
    let run = env.run(&[
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--ledger",
        "elsewhere/x.jsonl",
    ]);
    run.expect_code(3);
    assert_eq!(run.json()["failure_report"], "elsewhere/x.failures.csv");
    assert_eq!(read_csv(&env.path("elsewhere/x.failures.csv")).len(), 1);
    assert_eq!(
        std::fs::read(env.path("m.failures.csv")).unwrap(),
        ours,
        "the manifest's report was rewritten"
    );
}

/// `status` of the manifest after `accept` counts the certificates accepted (it reads the
/// accept ledger too), text and JSON.
#[test]
fn status_after_accept_counts_accepted() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..5, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    env.run_as(TARGET, &["accept", "m.csv"]).expect_code(0);
    let status = env.run(&["--output", "json", "status", "m.csv"]);
    status.expect_code(0);
    let json = status.json();
    assert_eq!(json["counts"]["accepted"], 5, "{json}");
    assert_eq!(json["counts"]["transferred"], 0, "{json}");
    let kinds: Vec<&str> = json["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["transfer", "accept"]);
    let text = env.run(&["status", "m.csv"]);
    assert!(text.stdout.contains("accepted 5"), "{}", text.stdout);
}

/// A stopped run's text summary says what it finished and what is left, in numbers.
#[test]
fn a_stopped_run_s_summary_says_what_is_left() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..5, "INACTIVE", &[], &[]);
    let run = env.run(&["transfer", "m.csv", "--max-items", "2"]);
    run.expect_code(4);
    assert!(
        run.stdout
            .contains("stopped at --max-items: 2 finished (0 rolled back)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("not finished: 3 certificates left (pending 3, in doubt 0)"),
        "{}",
        run.stdout
    );
    // The same command finishes: nothing is left, and the summary says nothing is.
    let run = env.run(&["transfer", "m.csv"]);
    run.expect_code(0);
    assert!(!run.stdout.contains("not finished"), "{}", run.stdout);
}

/// A command that acts in the target accounts, run without saying how to reach them: one
/// message naming the three ways, exit 2, no call; `retire --undo` needs none of them.
#[test]
fn forgotten_target_credentials_name_the_three_ways_to_give_them() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..2, "ACTIVE", &[], &[]);
    env.write("doc.json", r#"{"endpoint":"{endpoint}"}"#);
    let before = env.sim.stats().total_calls();
    for args in [
        &["register", "m.csv"][..],
        &["verify", "m.csv"],
        &["retire", "m.csv", "--deactivate"],
        &["handoff", "m.csv", "--document", "doc.json"],
    ] {
        let run = env.run(args);
        run.expect_code(2);
        for flag in [
            "--target-profile ",
            "--target-profile-template",
            "--target-role-template",
        ] {
            assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
        }
        assert!(run.stderr.contains(args[0]), "{args:?}: {}", run.stderr);
    }
    assert_eq!(env.sim.stats().total_calls(), before, "a call was made");
    // --undo puts the source back: no target is asked, so none is needed.
    let undo = env.run(&["retire", "m.csv", "--undo"]);
    assert!(
        !undo.stderr.contains("--target-role-template"),
        "{}",
        undo.stderr
    );
}
