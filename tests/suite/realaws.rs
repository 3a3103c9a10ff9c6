//! Black-box tests of the tool against the simulator behaving as real AWS does, not as an
//! earlier simulator guessed: resource limits (410 `LimitExceededException`) are not
//! throttling, detaches propagate asynchronously, nothing is created implicitly on attach,
//! and every UNCONFIRMED answer (a simulator switch) leads to the same lifecycle.

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;
use iot_sim::{
    CompletedTransferAnswer, FaultKind, OutgoingArnAccount, PendingTransferAnswer, SeedCertificate,
    SimConfig, SourceAfterAccept,
};

/// Runs the binary as `account`, failing the test if it has not ended within `limit`.
fn run_within(env: &Env, account: &str, args: &[&str], limit: Duration) -> Run {
    let out = env.path("run.out");
    let err = env.path("run.err");
    let child = env
        .cmd_as(account, args)
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .expect("binary starts");
    Spawned { child, out, err }.finish(limit)
}

fn pending(id: &str, to: &str) -> SeedCertificate {
    SeedCertificate {
        pending_target: Some(to.to_string()),
        ..cert(id, "PENDING_TRANSFER", &[], &[])
    }
}

/// The failure report's row of `id`.
fn failure_row(env: &Env, report: &str, id: &str) -> std::collections::BTreeMap<String, String> {
    read_csv(&env.path(report))
        .into_iter()
        .find(|r| r["certificate_id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {report}"))
}

#[test]
fn accept_attach_policy_at_the_policy_limit_fails_that_item_at_once_naming_the_limit() {
    // Real quotas: a resource limit taken for throttling would slow AttachPolicy down for
    // every item and retry for ten minutes.
    let env = Env::new(SimConfig::default());
    let ids = env.fleet("m.csv", 300..306, "INACTIVE", &[], &[]);
    let full = &ids[0];
    let ten: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let mut policies: Vec<&str> = ten.iter().map(String::as_str).collect();
    policies.push("fleet-policy");
    env.seed_policies(TARGET, REGION, &policies);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    // One certificate gets ten policies in the target: AWS IoT's limit.
    env.manifest("full.csv", &[(full.clone(), TARGET)]);
    let mut args = vec!["accept", "full.csv"];
    for p in &ten {
        args.extend(["--attach-policy", p.as_str()]);
    }
    env.run_as(TARGET, &args).expect_code(0);
    assert_eq!(env.cert_state(full).unwrap().policies.len(), 10);

    env.sim.reset_stats();
    let accept = run_within(
        &env,
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--attach-policy",
            "fleet-policy",
        ],
        Duration::from_secs(60),
    );
    accept.expect_code(3);
    assert_eq!(accept.count("accepted"), 5);
    assert_eq!(accept.count("failed"), 1);
    let row = failure_row(&env, "m.accept-failures.csv", full);
    assert_eq!(row["error_code"], "LimitExceededException");
    assert_eq!(row["http_status"], "410");
    assert_eq!(row["attempts"], "1", "a resource limit is not retried");
    assert!(
        row["message"].contains("fleet-policy")
            && row["message"].contains("limit of 10 policies per certificate"),
        "{}",
        row["message"]
    );
    // Not throttling: the pacer was never slowed, and the call was sent once.
    let calls = &accept.json()["calls"]["AttachPolicy"];
    assert_eq!(calls["throttled"], 0, "{calls}");
    assert_eq!(calls["errors"], 1, "{calls}");
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("AttachPolicy"), 6, "one per certificate");
    assert_eq!(stats.throttled_of("AttachPolicy"), 0);
    for id in &ids[1..] {
        let c = env.cert_state(id).unwrap();
        assert_eq!(c.owner, TARGET, "{id}");
        assert_eq!(c.policies, vec!["fleet-policy"], "{id}");
    }
    assert_eq!(env.cert_state(full).unwrap().policies.len(), 10);
}

#[test]
fn detaches_that_propagate_for_3s_are_waited_out_and_every_certificate_moves_once() {
    let config = SimConfig {
        propagation_delay: Duration::from_secs(3),
        ..SimConfig::unlimited()
    };
    let fleet = ActiveFleet::new(config, 12);
    // Some with policies only, some with things only, too.
    let only_policy = cert_id(10_100);
    let only_thing = cert_id(10_101);
    fleet.env.seed(
        SOURCE,
        REGION,
        vec![
            cert(&only_policy, "INACTIVE", &[POLICY, "second"], &[]),
            cert(&only_thing, "INACTIVE", &[], &["lonely-thing"]),
        ],
    );
    fleet.env.manifest(
        "more.csv",
        &[(only_policy.clone(), TARGET), (only_thing.clone(), TARGET)],
    );

    let run = run_within(
        &fleet.env,
        SOURCE,
        &fleet.args(&[]),
        Duration::from_secs(120),
    );
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 12);
    assert_eq!(run.count("failed"), 0);
    let state = fleet.env.state();
    for id in &fleet.ids {
        let (_, c) = state.find(id).unwrap();
        assert_eq!(c.pending_target.as_deref(), Some(TARGET), "{id}");
        assert!(c.policies.is_empty() && c.things.is_empty(), "{c:?}");
    }
    let stats = fleet.env.sim.stats();
    assert_eq!(stats.max_transfers_per_certificate, 1);
    assert_eq!(stats.transfers_effective, 12);
    let counts = fleet.status_counts();
    assert_eq!(counts["transferred"], 12, "{counts}");
    assert_eq!(counts["failed"], 0, "{counts}");
    // Each TransferCertificate sent during the window was refused and sent again later.
    assert!(
        fleet.env.sim.stats().calls_of("TransferCertificate") > 12,
        "the 3 s window was never hit: the test proves nothing"
    );

    let more = run_within(
        &fleet.env,
        SOURCE,
        &[
            "--output",
            "json",
            "transfer",
            "more.csv",
            "--detach-policies",
            "--detach-things",
        ],
        Duration::from_secs(120),
    );
    more.expect_code(0);
    assert_eq!(more.count("transferred"), 2);
    assert_eq!(more.count("failed"), 0);
    for id in [&only_policy, &only_thing] {
        let c = fleet.env.cert_state(id).unwrap();
        assert_eq!(c.pending_target.as_deref(), Some(TARGET), "{id}");
    }
    assert_eq!(fleet.env.sim.stats().max_transfers_per_certificate, 1);
}

#[test]
fn a_conflict_that_outlasts_the_propagation_wait_fails_the_item_saying_what_is_attached() {
    let config = SimConfig {
        propagation_delay: Duration::from_secs(600),
        ..SimConfig::unlimited()
    };
    let env = Env::new(config);
    let ids = env.fleet("m.csv", 320..322, "INACTIVE", &["stuck-policy"], &[]);
    let run = run_within(
        &env,
        SOURCE,
        &[
            "--output",
            "json",
            "transfer",
            "m.csv",
            "--detach-policies",
            "--propagation-wait",
            "2s",
        ],
        Duration::from_secs(60),
    );
    run.expect_code(3);
    assert_eq!(run.count("failed"), 2);
    for id in &ids {
        let row = failure_row(&env, "m.failures.csv", id);
        assert_eq!(row["error_code"], "TransferConflictException");
        assert!(
            row["message"].contains("stuck-policy") && row["message"].contains("2s"),
            "{}",
            row["message"]
        );
        assert_eq!(env.cert_state(id).unwrap().status, "INACTIVE");
    }
    assert_eq!(env.sim.stats().transfers_effective, 0);
}

#[test]
fn accept_with_a_policy_missing_in_the_target_accepts_nothing_and_each_item_waits_for_it() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 330..333, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);

    env.sim.reset_stats();
    let accept = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--attach-policy",
            "fleet-policy",
        ],
    );
    // Every certificate refused for the same reason before any change: exit 2.
    accept.expect_code(2);
    assert_eq!(accept.count("waiting"), 3);
    assert_eq!(accept.count("failed"), 0);
    for id in &ids {
        let row = failure_row(&env, "m.accept-failures.csv", id);
        assert_eq!(row["error_code"], "ResourceNotFoundException");
        let message = &row["message"];
        assert!(
            message.contains(&format!(
                "policy `fleet-policy` does not exist in account {TARGET}"
            )) && message.contains("nothing was changed"),
            "{message}"
        );
        // Left as it was: still pending to the target.
        let c = env.cert_state(id).unwrap();
        assert_eq!(c.pending_target.as_deref(), Some(TARGET), "{id}");
    }
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("AcceptCertificateTransfer"), 0);
    assert_eq!(stats.calls_of("GetPolicy"), 1, "asked once per account");

    // Created in the target, the same command (no --retry-failed) accepts and attaches.
    env.seed_policies(TARGET, REGION, &["fleet-policy"]);
    let again = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--attach-policy",
            "fleet-policy",
        ],
    );
    again.expect_code(0);
    assert_eq!(again.count("accepted"), 3);
    for id in &ids {
        assert_eq!(env.cert_state(id).unwrap().policies, vec!["fleet-policy"]);
    }
}

#[test]
fn without_get_policy_the_attach_404_is_reported_and_with_it_the_missing_policy_is_named() {
    // Without iot:GetPolicy the tool cannot check first: it accepts, and AttachPolicy's 404
    // is reported as AWS gave it. Allowed again, the rerun names the policy and the account.
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 340..342, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    env.sim
        .add_deny(iot_sim::DenyRule {
            account: TARGET.into(),
            operation: "GetPolicy".into(),
            resource: None,
        })
        .unwrap();
    env.manifest("one.csv", &[(ids[0].clone(), TARGET)]);
    let run = env.run_as(TARGET, &["accept", "one.csv", "--attach-policy", "nowhere"]);
    run.expect_code(3);
    let row = failure_row(&env, "one.accept-failures.csv", &ids[0]);
    assert_eq!(row["error_code"], "ResourceNotFoundException");
    assert_eq!(row["http_status"], "404");
    assert_eq!(env.cert_state(&ids[0]).unwrap().owner, TARGET);

    env.sim.remove_deny(&iot_sim::DenyRule {
        account: TARGET.into(),
        operation: "GetPolicy".into(),
        resource: None,
    });
    let run = env.run_as(
        TARGET,
        &[
            "accept",
            "one.csv",
            "--attach-policy",
            "nowhere",
            "--retry-failed",
        ],
    );
    // Checked first this time: it waits for the policy (exit 2: all refused, one message).
    run.expect_code(2);
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);
    let row = failure_row(&env, "one.accept-failures.csv", &ids[0]);
    assert_eq!(row["waiting_for"], "target_policy");
    assert!(
        row["message"].contains(&format!(
            "policy `nowhere` does not exist in account {TARGET}"
        )),
        "{}",
        row["message"]
    );
}

/// Every variant of every UNCONFIRMED answer the simulator can give.
fn variants() -> Vec<(String, SimConfig)> {
    let base = SimConfig::unlimited;
    let mut v = vec![("defaults".to_string(), base())];
    for answer in [
        SourceAfterAccept::NotFound,
        SourceAfterAccept::AccessDenied,
        SourceAfterAccept::Unauthorized,
        SourceAfterAccept::Visible,
    ] {
        v.push((
            format!("source_after_accept={answer:?}"),
            SimConfig {
                source_after_accept: answer,
                ..base()
            },
        ));
    }
    v.push((
        "source_after_accept=Visible for 300ms".into(),
        SimConfig {
            source_after_accept: SourceAfterAccept::Visible,
            source_visible_for: Some(Duration::from_millis(300)),
            ..base()
        },
    ));
    for answer in [
        CompletedTransferAnswer::TransferAlreadyCompleted,
        CompletedTransferAnswer::TransferConflict,
        CompletedTransferAnswer::InvalidRequest,
        CompletedTransferAnswer::NotFound,
    ] {
        v.push((
            format!("completed_transfer_answer={answer:?}"),
            SimConfig {
                completed_transfer_answer: answer,
                ..base()
            },
        ));
    }
    for answer in [
        PendingTransferAnswer::TransferConflict,
        PendingTransferAnswer::CertificateState,
    ] {
        v.push((
            format!("pending_transfer_answer={answer:?}"),
            SimConfig {
                pending_transfer_answer: answer,
                ..base()
            },
        ));
    }
    for account in [OutgoingArnAccount::Target, OutgoingArnAccount::Source] {
        v.push((
            format!("outgoing_arn_account={account:?}"),
            SimConfig {
                outgoing_arn_account: account,
                ..base()
            },
        ));
    }
    v.push((
        "error_type_suffix".into(),
        SimConfig {
            error_type_suffix: true,
            ..base()
        },
    ));
    v.push((
        "things_block_transfer=false".into(),
        SimConfig {
            things_block_transfer: false,
            ..base()
        },
    ));
    v
}

#[test]
fn every_unconfirmed_answer_leads_to_the_same_lifecycle() {
    for (name, config) in variants() {
        eprintln!("variant {name}");
        lifecycle_under(&name, config);
    }
}

/// transfer (with an already pending certificate, one pending elsewhere, and a duplicated
/// request) → accept → reject → reject of an accepted certificate → accept without its
/// ledger → status --reconcile → cancel → transfer rerun; the same outcome under `config`.
fn lifecycle_under(name: &str, config: SimConfig) {
    let env = Env::new(config);
    let ids: Vec<String> = (400..407).map(cert_id).collect();
    let [a, b, c, d, e, f, g] = [0, 1, 2, 3, 4, 5, 6].map(|i| ids[i].clone());
    env.seed(
        SOURCE,
        REGION,
        vec![
            cert(&a, "ACTIVE", &["src-policy"], &["thing-a"]),
            cert(&b, "INACTIVE", &["src-policy"], &[]),
            cert(&c, "INACTIVE", &[], &["thing-c"]),
            cert(&d, "INACTIVE", &[], &[]),
            pending(&e, TARGET),
            pending(&f, TARGET2),
            cert(&g, "INACTIVE", &[], &[]),
        ],
    );
    env.seed_policies(TARGET, REGION, &["fleet-policy"]);
    let rows = |ids: &[&String]| -> Vec<(String, &str)> {
        ids.iter().map(|id| ((*id).clone(), TARGET)).collect()
    };
    env.manifest("m.csv", &rows(&[&a, &b, &c, &d, &e, &f]));
    let ctx = |step: &str| format!("variant {name}, {step}");

    // transfer: e is already pending to the target, f to another account.
    let transfer = env.run(&[
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
    ]);
    assert_eq!(transfer.code, 3, "{}: {}", ctx("transfer"), transfer.stderr);
    assert_eq!(transfer.count("transferred"), 5, "{}", ctx("transfer"));
    assert_eq!(transfer.count("failed"), 1, "{}", ctx("transfer"));
    let row = failure_row(&env, "m.failures.csv", &f);
    assert_eq!(row["error_code"], "PendingToAnotherAccount", "{}", ctx("f"));
    assert!(row["message"].contains(TARGET2), "{}: {row:?}", ctx("f"));

    // A duplicated TransferCertificate: its answer is the refusal of a pending certificate.
    env.manifest("dup.csv", &rows(&[&g]));
    env.sim.set_faults(vec![(FaultKind::Duplicate, 1.0)]);
    let dup = env.run(&["--output", "json", "transfer", "dup.csv"]);
    env.sim.set_faults(vec![]);
    assert_eq!(dup.code, 0, "{}: {}", ctx("duplicate"), dup.stderr);
    assert_eq!(dup.count("transferred"), 1, "{}", ctx("duplicate"));
    let gs = env.cert_state(&g).unwrap();
    assert_eq!(gs.pending_target.as_deref(), Some(TARGET), "{}", ctx("g"));

    // accept a, b, e; reject d.
    env.manifest("acc.csv", &rows(&[&a, &b, &e]));
    let accept_args = [
        "--output",
        "json",
        "accept",
        "acc.csv",
        "--set-as-active",
        "--attach-policy",
        "fleet-policy",
    ];
    let accept = env.run_as(TARGET, &accept_args);
    assert_eq!(accept.code, 0, "{}: {}", ctx("accept"), accept.stderr);
    assert_eq!(accept.count("accepted"), 3, "{}", ctx("accept"));
    env.manifest("rej.csv", &rows(&[&d]));
    let reject = env.run_as(
        TARGET,
        &["--output", "json", "reject", "rej.csv", "--reason", "no"],
    );
    assert_eq!(reject.code, 0, "{}: {}", ctx("reject"), reject.stderr);
    assert_eq!(reject.count("rejected"), 1, "{}", ctx("reject"));

    // Rejecting an accepted certificate: recorded as accepted, not as a failure.
    env.manifest("late.csv", &rows(&[&a]));
    let late = env.run_as(
        TARGET,
        &["--output", "json", "reject", "late.csv", "--reason", "late"],
    );
    assert_eq!(late.code, 0, "{}: {}", ctx("late reject"), late.stderr);
    assert_eq!(late.count("accepted"), 1, "{}", ctx("late reject"));
    assert_eq!(late.count("failed"), 0, "{}", ctx("late reject"));
    let last = ledger_events(&env.path("late.accept-ledger.jsonl"))
        .pop()
        .unwrap();
    assert_eq!(
        last["outcome"],
        "already_accepted",
        "{}",
        ctx("late reject")
    );
    let a_now = env.cert_state(&a).unwrap();
    assert_eq!(
        (a_now.owner.as_str(), a_now.status.as_str()),
        (TARGET, "ACTIVE")
    );

    // Accept again without its ledger: each one is found accepted already.
    std::fs::remove_file(env.path("acc.accept-ledger.jsonl")).unwrap();
    let again = env.run_as(TARGET, &accept_args);
    assert_eq!(again.code, 0, "{}: {}", ctx("accept again"), again.stderr);
    assert_eq!(again.count("accepted"), 3, "{}", ctx("accept again"));
    assert_eq!(again.count("failed"), 0, "{}", ctx("accept again"));

    // The source's view of an accepted certificate, whatever AWS answers it.
    append_transfer_intent(&env, &a);
    let status = env.run(&["--output", "json", "status", "m.csv", "--reconcile"]);
    assert_eq!(status.code, 0, "{}: {}", ctx("status"), status.stderr);
    let doubt = &status.json()["in_doubt"][0];
    assert_eq!(doubt["certificate_id"], a.as_str(), "{}", ctx("status"));
    assert_eq!(doubt["took_effect"], true, "{}: {doubt}", ctx("status"));

    let cancel = env.run(&["--output", "json", "cancel", "m.csv"]);
    assert_eq!(cancel.code, 0, "{}: {}", ctx("cancel"), cancel.stderr);
    assert_eq!(cancel.count("accepted"), 3, "{}", ctx("cancel"));
    assert_eq!(cancel.count("cancelled"), 2, "{}", ctx("cancel"));
    assert_eq!(cancel.count("failed"), 0, "{}", ctx("cancel"));
    assert_eq!(cancel.count("in_doubt"), 0, "{}", ctx("cancel"));

    // A rerun of the transfer sends nothing again.
    env.sim.reset_stats();
    let rerun = env.run(&["transfer", "m.csv"]);
    assert_eq!(rerun.code, 3, "{}: {}", ctx("rerun"), rerun.stderr);
    assert_eq!(
        env.sim.stats().calls_of("TransferCertificate"),
        0,
        "{}",
        ctx("rerun")
    );

    let state = env.state();
    for id in [&a, &b, &e] {
        let (acct, c) = state.find(id).unwrap();
        assert_eq!(acct.account, TARGET, "{}: {id}", ctx("end"));
        assert_eq!(c.policies, vec!["fleet-policy"], "{}: {id}", ctx("end"));
    }
    for id in [&c, &d] {
        let (acct, cs) = state.find(id).unwrap();
        assert_eq!(
            (
                acct.account.as_str(),
                cs.status.as_str(),
                cs.pending_target.as_deref()
            ),
            (SOURCE, "INACTIVE", None),
            "{}: {id}",
            ctx("end")
        );
    }
}

/// Appends a transfer intent without outcome, as a crash right after sending leaves it.
fn append_transfer_intent(env: &Env, id: &str) {
    use std::io::Write;
    let line = serde_json::json!({
        "ts": "2026-01-01T00:00:00.000Z",
        "id": id,
        "target": TARGET,
        "stage": "transfer",
        "outcome": "intent",
        "details": {"action": "transfer"},
    });
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.path("m.ledger.jsonl"))
        .unwrap();
    writeln!(f, "{line}").unwrap();
}
