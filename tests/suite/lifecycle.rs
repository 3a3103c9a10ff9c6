//! Black-box tests of the rest of the lifecycle: `plan` (and `transfer --dry-run`), `cancel`
//! (and `--restore`), `accept`, `reject`, the one-command mode `transfer --accept-profile…`,
//! and `status --reconcile`: the real binary against the simulator.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::harness::*;
use iot_sim::{FaultKind, SeedCertificate, StateDump};
use serde_json::Value;

fn pending(id: &str, to: &str) -> SeedCertificate {
    SeedCertificate {
        pending_target: Some(to.to_string()),
        ..cert(id, "PENDING_TRANSFER", &[], &[])
    }
}

/// Runs `args` as `account` with these AWS profiles (config file text) available.
fn run_with_profiles(env: &Env, account: &str, profiles: &str, args: &[&str]) -> Run {
    let config = env.write("aws-config", profiles);
    let out = env
        .cmd_as(account, args)
        .env("AWS_CONFIG_FILE", config)
        .output()
        .expect("binary runs");
    Run::from(out)
}

/// An AWS config file with one `migrate-ACCOUNT` profile per account, keys in the profile.
fn profiles(accounts: &[&str]) -> String {
    accounts
        .iter()
        .map(|a| format!("[profile migrate-{a}]\naws_access_key_id = {a}\naws_secret_access_key = x\nregion = {REGION}\n\n"))
        .collect()
}

/// The ids listed under `categories.<name>` of a JSON plan.
fn plan_ids(plan: &Value, category: &str) -> Vec<String> {
    let mut ids: Vec<String> = plan["categories"][category]["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("no category {category} in {plan}"))
        .iter()
        .map(|c| c["certificate_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn assert_no_mutating_call(env: &Env, what: &str) {
    let sent = env.sim.stats().mutating_calls();
    assert!(sent.is_empty(), "{what} sent {sent:?}");
}

/// What a certificate is, as far as the migration goes.
#[derive(Debug, PartialEq)]
struct Essentials {
    owner: String,
    status: String,
    pending_target: Option<String>,
    policies: Vec<String>,
    things: Vec<String>,
}

/// The essentials of every certificate, by id.
fn essentials(dump: &StateDump) -> BTreeMap<String, Essentials> {
    dump.accounts
        .iter()
        .flat_map(|a| a.certificates.iter())
        .map(|c| {
            let e = Essentials {
                owner: c.owner.clone(),
                status: c.status.clone(),
                pending_target: c.pending_target.clone(),
                policies: c.policies.clone(),
                things: c.things.clone(),
            };
            (c.id.clone(), e)
        })
        .collect()
}

#[test]
fn plan_puts_every_certificate_in_its_categories_and_changes_nothing() {
    let env = Env::unlimited();
    let ready = cert_id(1);
    let active = cert_id(2);
    let with_policies = cert_id(3);
    let with_things = cert_id(4);
    let everything = cert_id(5);
    let pending_to_target = cert_id(6);
    let pending_to_other = cert_id(7);
    let revoked = cert_id(8);
    let missing = cert_id(9);
    let owned_by_target = cert_id(10);
    let same_account = cert_id(11);
    env.seed(
        SOURCE,
        REGION,
        vec![
            cert(&ready, "INACTIVE", &[], &[]),
            cert(&active, "ACTIVE", &[], &[]),
            cert(&with_policies, "INACTIVE", &["=p0"], &[]),
            cert(&with_things, "INACTIVE", &[], &["thing-4"]),
            cert(&everything, "ACTIVE", &["p1"], &["thing-5a", "thing-5b"]),
            pending(&pending_to_target, TARGET),
            pending(&pending_to_other, TARGET2),
            cert(&revoked, "REVOKED", &[], &[]),
            cert(&same_account, "INACTIVE", &[], &[]),
        ],
    );
    env.seed(
        TARGET,
        REGION,
        vec![cert(&owned_by_target, "ACTIVE", &[], &[])],
    );
    let rows: Vec<(String, &str)> = [
        &ready,
        &active,
        &with_policies,
        &with_things,
        &everything,
        &pending_to_target,
        &pending_to_other,
        &revoked,
        &missing,
    ]
    .into_iter()
    .map(|id| (id.clone(), TARGET))
    .chain([
        (owned_by_target.clone(), TARGET),
        (same_account.clone(), SOURCE),
    ])
    .collect();
    env.manifest("fleet.csv", &rows);

    let run = env.run(&[
        "--output",
        "json",
        "plan",
        "fleet.csv",
        "--plan-out",
        "plan.csv",
    ]);
    run.expect_code(0);
    let plan = run.json();
    assert_eq!(plan["certificates"], 11);
    assert_eq!(plan_ids(&plan, "ready"), sorted(&[&ready]));
    assert_eq!(
        plan_ids(&plan, "needs_deactivation"),
        sorted(&[&active, &everything])
    );
    assert_eq!(
        plan_ids(&plan, "has_policies"),
        sorted(&[&with_policies, &everything])
    );
    assert_eq!(
        plan_ids(&plan, "has_things"),
        sorted(&[&with_things, &everything])
    );
    assert_eq!(
        plan_ids(&plan, "already_pending"),
        sorted(&[&pending_to_target])
    );
    assert_eq!(
        plan_ids(&plan, "pending_to_other"),
        sorted(&[&pending_to_other])
    );
    assert_eq!(plan_ids(&plan, "not_transferable"), sorted(&[&revoked]));
    // The target's certificate is invisible to the source: not found there.
    assert_eq!(
        plan_ids(&plan, "not_found"),
        sorted(&[&missing, &owned_by_target])
    );
    assert_eq!(plan_ids(&plan, "same_account"), sorted(&[&same_account]));
    assert_eq!(plan_ids(&plan, "unknown"), Vec::<String>::new());
    let other = &plan["categories"]["pending_to_other"]["certificates"][0];
    assert_eq!(other["pending_to"], TARGET2);
    assert_no_mutating_call(&env, "plan");
    assert!(
        !env.path("fleet.ledger.jsonl").exists(),
        "plan writes no ledger"
    );
    assert!(
        !env.path("fleet.ledger.jsonl.lock").exists(),
        "plan takes no lock"
    );

    // The estimate: DescribeCertificate is needed by all 11 at 10/s and binds (1.1 s).
    let estimate = &plan["estimate"];
    let scope = &estimate["scopes"][0];
    assert_eq!(scope["account"], SOURCE);
    assert_eq!(scope["calls"]["DescribeCertificate"], 11);
    assert_eq!(scope["calls"]["TransferCertificate"], 5);
    assert_eq!(scope["calls"]["UpdateCertificate"], 2);
    assert_eq!(scope["calls"]["DetachThingPrincipal"], 3);
    assert_eq!(scope["binding_operation"], "DescribeCertificate");
    assert!(
        (estimate["seconds"].as_f64().unwrap() - 1.1).abs() < 1e-9,
        "{estimate}"
    );

    // One CSV row per certificate, in manifest order, formula cells neutralised.
    let csv = read_csv(&env.path("plan.csv"));
    assert_eq!(csv.len(), 11);
    let order: Vec<&str> = csv.iter().map(|r| r["certificate_id"].as_str()).collect();
    let manifest_order: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(order, manifest_order);
    let row = |id: &String| csv.iter().find(|r| &r["certificate_id"] == id).unwrap();
    let e = row(&everything);
    assert_eq!(e["category"], "needs_deactivation;has_policies;has_things");
    assert_eq!(e["status"], "ACTIVE");
    assert_eq!(e["policies"], "p1");
    assert_eq!(e["things"], "thing-5a;thing-5b");
    assert_eq!(e["target_account"], TARGET);
    assert_eq!(e["region"], REGION);
    // Describe, 2 lists, deactivate, 1 policy, 2 things, transfer.
    assert_eq!(e["calls_needed"], "8");
    assert_eq!(row(&ready)["category"], "ready");
    assert_eq!(row(&ready)["calls_needed"], "4");
    assert_eq!(
        row(&with_policies)["policies"],
        "'=p0",
        "formula cell neutralised"
    );
    assert_eq!(row(&pending_to_other)["pending_to"], TARGET2);
    assert_eq!(row(&pending_to_other)["category"], "pending_to_other");
    assert_eq!(row(&revoked)["status"], "REVOKED");
    assert_eq!(row(&missing)["category"], "not_found");

    // transfer --dry-run is the same plan, and changes nothing either.
    env.sim.reset_stats();
    let dry = env.run(&["--output", "json", "transfer", "fleet.csv", "--dry-run"]);
    dry.expect_code(0);
    let dry = dry.json();
    for c in [
        "ready",
        "needs_deactivation",
        "has_policies",
        "has_things",
        "already_pending",
        "pending_to_other",
        "not_transferable",
        "not_found",
        "same_account",
    ] {
        assert_eq!(plan_ids(&dry, c), plan_ids(&plan, c), "{c}");
    }
    assert_no_mutating_call(&env, "transfer --dry-run");
    assert!(!env.path("fleet.ledger.jsonl").exists());

    // The text form names the categories.
    let text = env.run(&["plan", "fleet.csv"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("needs_deactivation"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!("pending to {TARGET2}")),
        "{}",
        text.stdout
    );
}

#[test]
fn plan_of_an_invalid_manifest_exits_2_and_calls_nothing() {
    let env = Env::unlimited();
    env.write(
        "bad.csv",
        &format!("certificate_id,target_account\nabc,{TARGET}\n"),
    );
    let run = env.run(&["plan", "bad.csv", "--plan-out", "plan.csv"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("bad.csv:2"), "{}", run.stderr);
    assert_eq!(env.sim.stats().total_calls(), 0);
    assert!(!env.path("plan.csv").exists());
}

/// A fleet with every kind of prepare to undo, plus one certificate the transfer refuses.
fn restorable_fleet(env: &Env) -> Vec<String> {
    let ids: Vec<String> = (20..26).map(cert_id).collect();
    env.seed(
        SOURCE,
        REGION,
        vec![
            cert(&ids[0], "ACTIVE", &["p1", "p2"], &["thing-a"]),
            cert(&ids[1], "INACTIVE", &[], &[]),
            cert(&ids[2], "INACTIVE", &["p3"], &[]),
            cert(&ids[3], "ACTIVE", &[], &["thing-b", "thing-c"]),
            cert(&ids[4], "ACTIVE", &["p1"], &[]),
            cert(&ids[5], "REVOKED", &["p1"], &[]),
        ],
    );
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    ids
}

#[test]
fn transfer_then_cancel_restore_puts_the_simulator_back_as_it_was() {
    let env = Env::unlimited();
    let ids = restorable_fleet(&env);
    let before = essentials(&env.state());

    let transfer = env.run(&[&["--output", "json", "transfer", "m.csv"][..], &PREPARE].concat());
    transfer.expect_code(3);
    assert_eq!(transfer.count("transferred"), 5);
    for id in &ids[..5] {
        assert_eq!(env.cert_state(id).unwrap().status, "PENDING_TRANSFER");
    }

    env.sim.reset_stats();
    let cancel = env.run(&["--output", "json", "cancel", "m.csv", "--restore"]);
    cancel.expect_code(0);
    assert_eq!(cancel.json()["command"], "cancel");
    assert_eq!(cancel.count("restored"), 5);
    // The revoked certificate the transfer refused untouched is none of cancel's business.
    assert_eq!(cancel.count("failed"), 0);
    assert_eq!(cancel.count("pending"), 0);
    assert_eq!(
        essentials(&env.state()),
        before,
        "the state after cancel --restore equals the state before the transfer"
    );
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("CancelCertificateTransfer"), 5);
    assert_eq!(stats.calls_of("AttachPolicy"), 4);
    assert_eq!(stats.calls_of("AttachThingPrincipal"), 3);
    assert_eq!(stats.calls_of("UpdateCertificate"), 3);

    // The events are in the transfer's ledger, write-ahead.
    let events = ledger_events(&env.path("m.ledger.jsonl"));
    let of = |stage: &str, outcome: &str| {
        events
            .iter()
            .filter(|e| e["stage"] == stage && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(of("cancel", "intent"), 5);
    assert_eq!(of("cancel", "cancelled"), 5);
    assert_eq!(of("restore", "intent"), 10);
    assert_eq!(of("restore", "done"), 10);
    assert_eq!(of("restore", "restored"), 5);

    // Nothing is left to do: a rerun makes no call but STS, and transfer does not resend.
    env.sim.reset_stats();
    env.run(&["cancel", "m.csv", "--restore"]).expect_code(0);
    assert_eq!(env.sim.stats().total_calls(), 1, "only GetCallerIdentity");
    env.run(&[&["transfer", "m.csv"][..], &PREPARE].concat())
        .expect_code(3);
    assert_eq!(
        env.sim.stats().calls_of("TransferCertificate"),
        0,
        "restored items are never re-sent"
    );
}

#[test]
fn cancel_then_cancel_restore_restores_the_already_cancelled() {
    let env = Env::unlimited();
    let ids = restorable_fleet(&env);
    let before = essentials(&env.state());
    env.run(&[&["transfer", "m.csv"][..], &PREPARE].concat())
        .expect_code(3);

    let cancel = env.run(&["--output", "json", "cancel", "m.csv"]);
    cancel.expect_code(0);
    assert_eq!(cancel.count("cancelled"), 5);
    let c = env.cert_state(&ids[0]).unwrap();
    assert_eq!(
        (c.status.as_str(), c.policies.len(), c.pending_target),
        ("INACTIVE", 0, None)
    );

    env.sim.reset_stats();
    let restore = env.run(&["--output", "json", "cancel", "m.csv", "--restore"]);
    restore.expect_code(0);
    assert_eq!(restore.count("restored"), 5);
    assert_eq!(
        env.sim.stats().calls_of("CancelCertificateTransfer"),
        0,
        "already cancelled"
    );
    assert_eq!(essentials(&env.state()), before);
}

#[test]
fn lost_replies_during_cancel_restore_are_reconciled_and_no_call_is_sent_twice() {
    let env = Env::unlimited();
    let ids = restorable_fleet(&env);
    let before = essentials(&env.state());
    env.run(&[&["transfer", "m.csv"][..], &PREPARE].concat())
        .expect_code(3);

    // Every mutating call now takes effect but its reply is lost (500 or reset).
    env.sim.set_faults(vec![(FaultKind::LostReply, 1.0)]);
    env.sim.reset_stats();
    let cancel = env.run(&["--output", "json", "cancel", "m.csv", "--restore"]);
    cancel.expect_code(0);
    assert_eq!(cancel.count("restored"), 5);
    let stats = env.sim.stats();
    assert!(stats.faults_of(FaultKind::LostReply) >= 15, "{stats:?}");
    assert_eq!(
        stats.calls_of("CancelCertificateTransfer"),
        5,
        "each cancel sent once"
    );
    assert_eq!(stats.calls_of("AttachPolicy"), 4);
    assert_eq!(stats.calls_of("AttachThingPrincipal"), 3);
    assert_eq!(stats.calls_of("UpdateCertificate"), 3);
    assert_eq!(essentials(&env.state()), before);
    let events = ledger_events(&env.path("m.ledger.jsonl"));
    assert!(events
        .iter()
        .any(|e| e["outcome"] == "unknown" && e["stage"] == "cancel"));
    assert!(events
        .iter()
        .any(|e| e["details"]["via"] == "reconciled" && e["stage"] == "restore"));
    let _ = ids;
}

#[test]
fn accept_with_set_as_active_moves_every_certificate_and_a_rerun_does_nothing() {
    let env = Env::unlimited();
    let ids: Vec<String> = (40..46).map(cert_id).collect();
    let elsewhere = cert_id(46);
    let mut seeded: Vec<SeedCertificate> = ids
        .iter()
        .map(|id| cert(id, "ACTIVE", &["src-policy"], &["thing"]))
        .collect();
    seeded.push(cert(&elsewhere, "INACTIVE", &[], &[]));
    env.seed(SOURCE, REGION, seeded);
    let mut rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    rows.push((elsewhere.clone(), TARGET2));
    env.manifest("m.csv", &rows);
    env.run(&[&["transfer", "m.csv"][..], &PREPARE].concat())
        .expect_code(0);
    // The policy to attach exists in the target (AWS creates nothing on attach).
    env.seed_policies(TARGET, REGION, &["fleet-policy"]);

    env.sim.reset_stats();
    let accept = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--set-as-active",
            "--attach-policy",
            "fleet-policy",
        ],
    );
    accept.expect_code(0);
    assert_eq!(accept.json()["command"], "accept");
    assert_eq!(accept.count("accepted"), 6);
    // The row for the other target account is out of scope: not pending, not counted.
    assert_eq!(accept.count("pending"), 0);
    assert_eq!(accept.count("failed"), 0);
    let state = env.state();
    for id in &ids {
        let (acct, c) = state.find(id).unwrap();
        assert_eq!(acct.account, TARGET, "{id}");
        assert_eq!(c.owner, TARGET);
        assert_eq!(c.status, "ACTIVE");
        assert_eq!(c.previous_owner.as_deref(), Some(SOURCE));
        assert_eq!(c.policies, vec!["fleet-policy"]);
    }
    let source = state.account(SOURCE, REGION).unwrap();
    assert!(
        ids.iter()
            .all(|id| source.certificates.iter().all(|c| &c.id != id)),
        "gone from the source"
    );
    assert_eq!(
        env.cert_state(&elsewhere)
            .unwrap()
            .pending_target
            .as_deref(),
        Some(TARGET2),
        "left to its own target"
    );
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("AcceptCertificateTransfer"), 6);
    assert_eq!(stats.calls_of("AttachPolicy"), 6);
    assert!(env.path("m.accept-ledger.jsonl").exists());

    env.sim.reset_stats();
    let again = env.run_as(
        TARGET,
        &["--output", "json", "accept", "m.csv", "--set-as-active"],
    );
    again.expect_code(0);
    assert_eq!(again.count("accepted"), 6);
    assert_eq!(again.json()["processed_this_run"], 0);
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("AcceptCertificateTransfer"), 0);
    assert_eq!(stats.total_calls(), 1, "only GetCallerIdentity");
}

#[test]
fn accept_after_a_lost_ledger_counts_already_accepted_certificates_as_accepted() {
    let env = Env::unlimited();
    env.fleet("m.csv", 50..53, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    env.run_as(TARGET, &["accept", "m.csv"]).expect_code(0);
    std::fs::remove_file(env.path("m.accept-ledger.jsonl")).unwrap();

    // Without its ledger, accept asks again: AWS answers 410, which means accepted.
    let again = env.run_as(TARGET, &["--output", "json", "accept", "m.csv"]);
    again.expect_code(0);
    assert_eq!(again.count("accepted"), 3);
    assert_eq!(again.count("failed"), 0);
}

#[test]
fn lost_accept_replies_are_reconciled_as_the_target() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 55..59, "INACTIVE", &[], &[]);
    env.seed_policies(TARGET, REGION, &["p"]);
    env.run(&["transfer", "m.csv"]).expect_code(0);

    env.sim.set_faults(vec![(FaultKind::LostReply, 1.0)]);
    env.sim.reset_stats();
    let accept = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--attach-policy",
            "p",
        ],
    );
    accept.expect_code(0);
    assert_eq!(accept.count("accepted"), 4);
    let stats = env.sim.stats();
    assert_eq!(
        stats.calls_of("AcceptCertificateTransfer"),
        4,
        "never re-sent after a lost reply"
    );
    assert_eq!(stats.calls_of("AttachPolicy"), 4);
    for id in &ids {
        let c = env.cert_state(id).unwrap();
        assert_eq!((c.owner.as_str(), c.status.as_str()), (TARGET, "INACTIVE"));
        assert_eq!(c.policies, vec!["p"]);
    }
}

#[test]
fn reject_sends_certificates_back_inactive_with_the_reason() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 60..64, "ACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv", "--deactivate"])
        .expect_code(0);

    // A reason AWS would refuse is refused before any call.
    env.sim.reset_stats();
    let long = "x".repeat(129);
    let run = env.run_as(TARGET, &["reject", "m.csv", "--reason", &long]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("128"), "{}", run.stderr);
    assert_eq!(env.sim.stats().total_calls(), 0);
    assert!(!env.path("m.accept-ledger.jsonl").exists());

    let reject = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "reject",
            "m.csv",
            "--reason",
            "wrong fleet",
        ],
    );
    reject.expect_code(0);
    assert_eq!(reject.json()["command"], "reject");
    assert_eq!(reject.count("rejected"), 4);
    for id in &ids {
        let (acct, c) = env
            .state()
            .find(id)
            .map(|(a, c)| (a.account.clone(), c.clone()))
            .unwrap();
        assert_eq!(acct, SOURCE);
        assert_eq!(c.status, "INACTIVE");
        assert_eq!(c.pending_target, None);
        assert_eq!(c.reject_reason.as_deref(), Some("wrong fleet"));
    }
    assert_eq!(env.sim.stats().calls_of("RejectCertificateTransfer"), 4);

    // Rejected is final: neither reject nor accept sends anything for them again.
    env.sim.reset_stats();
    env.run_as(TARGET, &["reject", "m.csv", "--reason", "wrong fleet"])
        .expect_code(0);
    env.run_as(TARGET, &["accept", "m.csv"]).expect_code(0);
    let stats = env.sim.stats();
    assert_eq!(
        stats.calls_of("RejectCertificateTransfer") + stats.calls_of("AcceptCertificateTransfer"),
        0
    );
}

#[test]
fn accept_as_an_account_no_row_targets_is_refused() {
    let env = Env::unlimited();
    env.manifest("m.csv", &[(cert_id(70), TARGET)]);
    let run = env.run_as(TARGET2, &["accept", "m.csv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(TARGET2), "{}", run.stderr);
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("AcceptCertificateTransfer"), 0);
}

#[test]
fn one_command_mode_transfers_and_accepts_for_two_target_accounts() {
    let env = Env::unlimited();
    let ids: Vec<String> = (80..90).map(cert_id).collect();
    env.seed(
        SOURCE,
        REGION,
        ids.iter()
            .map(|id| cert(id, "ACTIVE", &["p"], &["t"]))
            .collect(),
    );
    let rows: Vec<(String, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), if i % 2 == 0 { TARGET } else { TARGET2 }))
        .collect();
    env.manifest("m.csv", &rows);
    let config = profiles(&[TARGET, TARGET2]);
    // The source's keys stay in the environment: each profile must still use its own keys.
    let args = [
        &["--output", "json", "transfer", "m.csv"][..],
        &PREPARE,
        &[
            "--accept-profile-template",
            "migrate-{account}",
            "--set-as-active",
        ],
    ]
    .concat();
    let run = run_with_profiles(&env, SOURCE, &config, &args);
    run.expect_code(0);
    assert_eq!(run.count("accepted"), 10);
    assert_eq!(run.count("transferred"), 0);
    for (id, target) in &rows {
        let c = env.cert_state(id).unwrap();
        assert_eq!(&c.owner, target, "{id}");
        assert_eq!(c.status, "ACTIVE");
        assert_eq!(c.previous_owner.as_deref(), Some(SOURCE));
    }
    let events = ledger_events(&env.path("m.ledger.jsonl"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["stage"] == "accept" && e["outcome"] == "intent")
            .count(),
        10
    );

    // A rerun has nothing left to do.
    env.sim.reset_stats();
    let again = run_with_profiles(&env, SOURCE, &config, &args);
    again.expect_code(0);
    let stats = env.sim.stats();
    assert_eq!(
        stats.calls_of("TransferCertificate") + stats.calls_of("AcceptCertificateTransfer"),
        0
    );
    let status = env.run(&["--output", "json", "status", "m.csv"]);
    assert_eq!(status.json()["counts"]["accepted"], 10);
}

#[test]
fn a_rerun_with_an_accept_profile_accepts_what_an_earlier_run_only_transferred() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 90..94, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);

    env.sim.reset_stats();
    let config = profiles(&[TARGET]);
    let run = run_with_profiles(
        &env,
        SOURCE,
        &config,
        &[
            "--output",
            "json",
            "transfer",
            "m.csv",
            "--accept-profile",
            &format!("migrate-{TARGET}"),
        ],
    );
    run.expect_code(0);
    assert_eq!(run.count("accepted"), 4);
    let stats = env.sim.stats();
    assert_eq!(
        stats.calls_of("TransferCertificate"),
        0,
        "already transferred"
    );
    assert_eq!(stats.calls_of("AcceptCertificateTransfer"), 4);
    for id in &ids {
        let c = env.cert_state(id).unwrap();
        assert_eq!((c.owner.as_str(), c.status.as_str()), (TARGET, "INACTIVE"));
    }
}

#[test]
fn an_accept_profile_with_the_wrong_account_stops_before_anything_is_done() {
    let env = Env::unlimited();
    let id = cert_id(95);
    env.seed(SOURCE, REGION, vec![cert(&id, "INACTIVE", &[], &[])]);
    env.manifest("m.csv", &[(id.clone(), TARGET)]);
    // The profile named for 222… holds the keys of 333….
    let config = format!(
        "[profile migrate-{TARGET}]\naws_access_key_id = {TARGET2}\naws_secret_access_key = x\n"
    );
    let run = run_with_profiles(
        &env,
        SOURCE,
        &config,
        &[
            "transfer",
            "m.csv",
            "--accept-profile-template",
            "migrate-{account}",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(TARGET2), "{}", run.stderr);
    assert_eq!(env.sim.stats().calls_of("TransferCertificate"), 0);
    assert_eq!(env.cert_state(&id).unwrap().status, "INACTIVE");
}

#[test]
fn cancel_of_an_accepted_certificate_reports_it_as_accepted() {
    let env = Env::unlimited();
    let accepted = cert_id(100);
    let still_pending = cert_id(101);
    env.seed(
        SOURCE,
        REGION,
        vec![
            cert(&accepted, "INACTIVE", &[], &[]),
            cert(&still_pending, "INACTIVE", &[], &[]),
        ],
    );
    env.manifest(
        "m.csv",
        &[(accepted.clone(), TARGET), (still_pending.clone(), TARGET)],
    );
    env.manifest("one.csv", &[(accepted.clone(), TARGET)]);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    env.run_as(TARGET, &["accept", "one.csv"]).expect_code(0);

    let cancel = env.run(&["--output", "json", "cancel", "m.csv"]);
    cancel.expect_code(0);
    assert_eq!(cancel.count("accepted"), 1);
    assert_eq!(cancel.count("cancelled"), 1);
    assert_eq!(cancel.count("failed"), 0);
    assert_eq!(env.cert_state(&accepted).unwrap().owner, TARGET);
    let c = env.cert_state(&still_pending).unwrap();
    assert_eq!(
        (c.owner.as_str(), c.status.as_str(), c.pending_target),
        (SOURCE, "INACTIVE", None)
    );
    let events = ledger_events(&env.path("m.ledger.jsonl"));
    let outcome = events
        .iter()
        .rev()
        .find(|e| e["id"] == accepted.as_str())
        .unwrap();
    assert_eq!(outcome["outcome"], "already_accepted");
}

/// Appends an intent without outcome to a ledger, as a crash right after it would leave.
fn append_intent(ledger: &PathBuf, id: &str, stage: &str, action: &str) {
    use std::io::Write;
    let line = serde_json::json!({
        "ts": "2026-01-01T00:00:00.000Z",
        "id": id,
        "target": TARGET,
        "stage": stage,
        "outcome": "intent",
        "details": {"action": action},
    });
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(ledger)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

#[test]
fn status_reconcile_says_what_aws_knows_of_items_in_doubt_without_writing() {
    let env = Env::unlimited();
    let transferred = cert_id(110);
    let cancelled = cert_id(111);
    let sent = cert_id(112);
    env.seed(
        SOURCE,
        REGION,
        [&transferred, &cancelled, &sent]
            .iter()
            .map(|id| cert(id, "INACTIVE", &[], &[]))
            .collect(),
    );
    env.manifest(
        "m.csv",
        &[
            (transferred.clone(), TARGET),
            (cancelled.clone(), TARGET),
            (sent.clone(), TARGET),
        ],
    );
    env.manifest(
        "first.csv",
        &[(transferred.clone(), TARGET), (cancelled.clone(), TARGET)],
    );
    env.run(&["transfer", "first.csv", "--ledger", "m.ledger.jsonl"])
        .expect_code(0);
    // As if a run crashed right after sending: a transfer that went through, a cancel that
    // did not.
    env.seed(SOURCE, REGION, vec![pending(&sent, TARGET)]);
    let ledger = env.path("m.ledger.jsonl");
    append_intent(&ledger, &sent, "transfer", "transfer");
    append_intent(&ledger, &cancelled, "cancel", "cancel");
    let before = std::fs::read(&ledger).unwrap();

    env.sim.reset_stats();
    let status = env.run(&["--output", "json", "status", "m.csv", "--reconcile"]);
    status.expect_code(0);
    let report = status.json();
    assert_eq!(report["counts"]["in_doubt"], 2);
    let doubt = report["in_doubt"].as_array().unwrap();
    let line = |id: &String| {
        doubt
            .iter()
            .find(|d| d["certificate_id"] == id.as_str())
            .unwrap()
            .clone()
    };
    let s = line(&sent);
    assert_eq!(s["aws_says"], format!("PENDING_TRANSFER to {TARGET}"));
    assert_eq!(s["took_effect"], true);
    assert!(s["next_run"].as_str().unwrap().contains("transferred"));
    let c = line(&cancelled);
    assert_eq!(c["took_effect"], false, "{c}");
    assert_no_mutating_call(&env, "status --reconcile");
    assert_eq!(
        std::fs::read(&ledger).unwrap(),
        before,
        "status never writes the ledger"
    );
    let text = env.run(&["status", "m.csv", "--reconcile"]);
    assert!(
        text.stdout
            .contains("AWS says PENDING_TRANSFER to 222222222222"),
        "{}",
        text.stdout
    );

    // cancel settles both: the cancel that did not happen is sent, the transfer found done
    // is cancelled too.
    let cancel = env.run(&["--output", "json", "cancel", "m.csv"]);
    cancel.expect_code(0);
    assert_eq!(cancel.count("cancelled"), 3);
    assert_eq!(cancel.count("in_doubt"), 0);
    for id in [&transferred, &cancelled, &sent] {
        assert_eq!(env.cert_state(id).unwrap().status, "INACTIVE", "{id}");
    }
}

#[test]
fn an_explicit_profile_wins_over_keys_in_the_environment() {
    // As in the AWS CLI: `--profile` must not be overridden by AWS_ACCESS_KEY_ID, or the
    // source's keys would silently stand in for the target's.
    let env = Env::unlimited();
    let id = cert_id(90);
    env.seed(SOURCE, REGION, vec![pending(&id, TARGET)]);
    env.manifest("m.csv", &[(id.clone(), TARGET)]);
    let run = run_with_profiles(
        &env,
        SOURCE,
        &profiles(&[TARGET]),
        &[
            "--output",
            "json",
            "--profile",
            &format!("migrate-{TARGET}"),
            "accept",
            "m.csv",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.count("accepted"), 1);
    let (acct, c) = env
        .state()
        .find(&id)
        .map(|(a, c)| (a.clone(), c.clone()))
        .unwrap();
    assert_eq!(acct.account, TARGET, "accepted as the profile's account");
    assert_eq!(c.owner, TARGET);
}
