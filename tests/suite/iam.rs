//! `iam-policy` (issue 25): every command, with each flag that adds calls, runs under the
//! simulator's allow-list of exactly the policy `iam-policy` prints for it, and is refused
//! nothing (AccessDenied counted by the simulator: none). Reconciliation after lost replies
//! and the default rollback run under it too. The README's policies are that output.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;
use iot_sim::{
    fake_certificate, FaultKind, Refusal, Seed, SeedAccount, SeedCertificate, SeedPolicy,
    SeedThing, SeedThingGroup, SeedThingType, SimConfig,
};

/// A fleet that touches every kind of object: ACTIVE certificates with real-shaped PEMs, a
/// policy each, a typed thing each (an attribute, a searchable one) in a nested group whose
/// groups have policies. `n` certificates, manifests `NAME.csv` made by the caller.
fn fleet(env: &Env, n: u64) -> Vec<String> {
    let certs: Vec<(String, String)> = (0..n).map(|i| fake_certificate(800 + i)).collect();
    let policy = |name: &str| SeedPolicy {
        name: name.into(),
        document: Some(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:{REGION}:{SOURCE}:client/*"}}]}}"#
        )),
    };
    env.sim
        .seed(Seed {
            region: REGION.into(),
            accounts: BTreeMap::from([
                (
                    SOURCE.to_string(),
                    SeedAccount {
                        policies: vec![policy("device"), policy("site-p"), policy("floor-p")],
                        thing_types: vec![SeedThingType {
                            name: "sensor".into(),
                            searchable_attributes: vec!["serial".into()],
                            ..Default::default()
                        }],
                        thing_groups: vec![
                            SeedThingGroup {
                                name: "site".into(),
                                policies: vec!["site-p".into()],
                                ..Default::default()
                            },
                            SeedThingGroup {
                                name: "floor".into(),
                                parent: Some("site".into()),
                                policies: vec!["floor-p".into()],
                                ..Default::default()
                            },
                        ],
                        things: (0..n)
                            .map(|i| SeedThing {
                                name: format!("thing-{i}"),
                                thing_type: Some("sensor".into()),
                                attributes: BTreeMap::from([
                                    ("serial".into(), format!("s{i}")),
                                    ("site".into(), "lyon".into()),
                                ]),
                                groups: vec!["floor".into()],
                            })
                            .collect(),
                        certificates: certs
                            .iter()
                            .enumerate()
                            .map(|(i, (id, pem))| SeedCertificate {
                                pem: Some(pem.clone()),
                                ..cert(id, "ACTIVE", &["device"], &[&format!("thing-{i}")])
                            })
                            .collect(),
                        ..Default::default()
                    },
                ),
                (
                    TARGET.to_string(),
                    SeedAccount {
                        policies: vec![SeedPolicy {
                            name: "extra".into(),
                            document: None,
                        }],
                        ..Default::default()
                    },
                ),
            ]),
        })
        .expect("seed accepted");
    env.write(
        "aws-config",
        &format!(
            "[profile migrate-{TARGET}]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"
        ),
    );
    certs.into_iter().map(|(id, _)| id).collect()
}

fn run_as(env: &Env, account: &str, args: &[&str]) -> Run {
    Run::from(
        env.cmd_as(account, args)
            .env("AWS_CONFIG_FILE", env.path("aws-config"))
            .output()
            .expect("binary runs"),
    )
}

/// `iam-policy POLICY_ARGS --side SIDE` for the test's accounts; `None` when the commands
/// call nothing on that side.
fn printed(env: &Env, policy_args: &[&str], side: &str) -> Option<String> {
    let mut args = vec!["iam-policy"];
    args.extend(policy_args);
    args.extend([
        "--side",
        side,
        "--source-account",
        SOURCE,
        "--target-account",
        TARGET,
    ]);
    let out = env.run(&args);
    match out.code {
        0 => Some(out.stdout),
        2 if out.stderr.contains("call nothing") => None,
        _ => panic!("iam-policy {policy_args:?}: {}", out.stderr),
    }
}

/// Both accounts in the allow-list mode with what `iam-policy POLICY_ARGS` prints for them
/// (a side it prints nothing for may make no call at all).
fn allow_only(env: &Env, policy_args: &[&str]) {
    const NOTHING: &str = r#"{"Version":"2012-10-17","Statement":[]}"#;
    for (account, side) in [(SOURCE, "source"), (TARGET, "target")] {
        let policy = printed(env, policy_args, side);
        env.sim
            .set_iam_policy(account, Some(policy.as_deref().unwrap_or(NOTHING)))
            .expect("a policy the simulator reads");
    }
}

fn denied(env: &Env) -> u64 {
    env.sim.stats().refused_of(Refusal::Denied)
}

/// Runs `args` as `account` under exactly the policy of `policy_args`; nothing may be
/// refused, and the run ends with `code`.
fn passes(env: &Env, policy_args: &[&str], account: &str, args: &[&str], code: i32) -> Run {
    allow_only(env, policy_args);
    let before = denied(env);
    let run = run_as(env, account, args);
    assert_eq!(
        denied(env) - before,
        0,
        "{args:?} under `iam-policy {}` was refused something\nstderr:\n{}",
        policy_args.join(" "),
        run.stderr
    );
    run.expect_code(code);
    run
}

const TEMPLATE: &str = "migrate-{account}";

#[test]
fn every_transfer_path_command_passes_under_exactly_its_printed_policy() {
    let env = Env::unlimited();
    let ids = fleet(&env, 7);
    let rows = |r: std::ops::Range<usize>| -> Vec<(String, &str)> {
        ids[r].iter().map(|id| (id.clone(), TARGET)).collect()
    };
    env.manifest("m.csv", &rows(0..2));
    env.manifest("c.csv", &rows(2..4));
    env.manifest("r.csv", &rows(4..6));
    env.manifest("n.csv", &rows(6..7));
    let prepare = ["--deactivate", "--detach-policies", "--detach-things"];

    // The allow-list bites: plan's policy does not let transfer change anything.
    allow_only(&env, &["plan"]);
    let mut refused = vec!["transfer", "n.csv"];
    refused.extend(prepare);
    let run = run_as(&env, SOURCE, &refused);
    assert!(denied(&env) > 0, "{}", run.stderr);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("AccessDenied"), "{}", run.stderr);
    let untouched = env
        .state()
        .find_in(SOURCE, REGION, &ids[6])
        .cloned()
        .unwrap();
    assert_eq!(untouched.status, "ACTIVE");

    passes(
        &env,
        &["select", "--thing-group", "--thing-type", "--attribute"],
        SOURCE,
        &[
            "select",
            "--target-account",
            TARGET,
            "--thing-group",
            "site",
            "--thing-type",
            "sensor",
            "--attribute",
            "site=lyon",
            "--out",
            "sel.csv",
        ],
        0,
    );
    passes(
        &env,
        &["select", "--ca-certificate-id"],
        SOURCE,
        &[
            "select",
            "--target-account",
            TARGET,
            "--ca-certificate-id",
            &"c".repeat(64),
            "--out",
            "sel-ca.csv",
        ],
        0,
    );
    passes(&env, &["plan"], SOURCE, &["plan", "m.csv"], 0);
    passes(
        &env,
        &["plan", "--carry", "--target-profile"],
        SOURCE,
        &[
            "plan",
            "m.csv",
            "--carry",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );

    let mut transfer = vec!["transfer", "m.csv", "--carry"];
    transfer.extend(prepare);
    let mut policy = vec!["transfer", "--carry"];
    policy.extend(prepare);
    passes(&env, &policy, SOURCE, &transfer, 0);
    passes(
        &env,
        &["accept", "--carry", "--attach-policy"],
        TARGET,
        &[
            "accept",
            "m.csv",
            "--carry",
            "--set-as-active",
            "--attach-policy",
            "extra",
        ],
        0,
    );
    let verify = passes(
        &env,
        &["verify"],
        SOURCE,
        &[
            "--output",
            "json",
            "verify",
            "m.csv",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );
    assert_eq!(verify.json()["counts"]["ok"], 2, "{}", verify.stdout);
    passes(
        &env,
        &["status", "--reconcile"],
        SOURCE,
        &["status", "m.csv", "--reconcile"],
        0,
    );

    // cancel --restore: transferred, then cancelled and put back as it was.
    let mut transfer_c = vec!["transfer", "c.csv"];
    transfer_c.extend(prepare);
    let mut policy_c = vec!["transfer"];
    policy_c.extend(prepare);
    passes(&env, &policy_c, SOURCE, &transfer_c, 0);
    passes(
        &env,
        &["cancel", "--restore"],
        SOURCE,
        &["cancel", "c.csv", "--restore"],
        0,
    );
    for id in &ids[2..4] {
        let c = env.state().find_in(SOURCE, REGION, id).cloned().unwrap();
        assert_eq!(c.status, "ACTIVE", "{id} restored");
        assert_eq!(c.policies, ["device"], "{id} restored");
    }

    // reject
    let mut transfer_r = vec!["transfer", "r.csv"];
    transfer_r.extend(prepare);
    passes(&env, &policy_c, SOURCE, &transfer_r, 0);
    passes(
        &env,
        &["reject"],
        TARGET,
        &["reject", "r.csv", "--reason", "not ours"],
        0,
    );
}

#[test]
fn every_zero_downtime_command_passes_under_exactly_its_printed_policy() {
    let env = Env::unlimited();
    let ids = fleet(&env, 3);
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    passes(
        &env,
        &["plan", "--mode", "register"],
        SOURCE,
        &[
            "plan",
            "m.csv",
            "--mode",
            "register",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );
    passes(
        &env,
        &["register", "--carry"],
        SOURCE,
        &[
            "register",
            "m.csv",
            "--carry",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );
    passes(
        &env,
        &["verify"],
        SOURCE,
        &[
            "verify",
            "m.csv",
            "--target-profile-template",
            TEMPLATE,
            "--from-ledger",
            "m.register-ledger.jsonl",
        ],
        // the source still holds its ACTIVE copies: still_in_source
        3,
    );
    passes(
        &env,
        &[
            "retire",
            "--deactivate",
            "--detach-policies",
            "--detach-things",
        ],
        SOURCE,
        &[
            "retire",
            "m.csv",
            "--target-profile-template",
            TEMPLATE,
            "--deactivate",
            "--detach-policies",
            "--detach-things",
        ],
        0,
    );
    passes(
        &env,
        &["retire", "--undo"],
        SOURCE,
        &["retire", "m.csv", "--undo"],
        0,
    );
    for id in &ids {
        let c = env.state().find_in(SOURCE, REGION, id).cloned().unwrap();
        assert_eq!(c.status, "ACTIVE", "{id} undone");
        assert_eq!(c.things.len(), 1, "{id} undone");
    }
}

#[test]
fn transfer_and_accept_in_one_command_pass_under_their_printed_policy() {
    let env = Env::unlimited();
    let ids = fleet(&env, 3);
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    passes(
        &env,
        &[
            "transfer",
            "--carry",
            "--accept-profile",
            "--deactivate",
            "--detach-policies",
            "--detach-things",
        ],
        SOURCE,
        &[
            "transfer",
            "m.csv",
            "--carry",
            "--accept-profile-template",
            TEMPLATE,
            "--set-as-active",
            "--deactivate",
            "--detach-policies",
            "--detach-things",
        ],
        0,
    );
    for id in &ids {
        let c = env.state().find_in(TARGET, REGION, id).cloned().unwrap();
        assert_eq!(c.status, "ACTIVE", "{id}");
    }
}

#[test]
fn the_rollback_and_reconciliation_pass_under_the_printed_policy() {
    // Detaches that never propagate: every transfer is refused after prepare changed the
    // certificate, which is rolled back (re-attach, re-activate).
    let env = Env::new(SimConfig {
        propagation_delay: Duration::from_secs(600),
        ..SimConfig::unlimited()
    });
    let ids = fleet(&env, 2);
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    let policy = [
        "transfer",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
    ];
    allow_only(&env, &policy);
    let run = run_as(
        &env,
        SOURCE,
        &[
            "transfer",
            "m.csv",
            "--deactivate",
            "--detach-policies",
            "--detach-things",
            "--propagation-wait",
            "1s",
            "--canary",
            "0",
        ],
    );
    assert_eq!(denied(&env), 0, "{}", run.stderr);
    run.expect_code(3);
    for id in &ids {
        let c = env.state().find_in(SOURCE, REGION, id).cloned().unwrap();
        assert_eq!(c.status, "ACTIVE", "{id} rolled back");
        assert_eq!(c.policies, ["device"], "{id} rolled back");
        assert_eq!(c.things.len(), 1, "{id} rolled back");
    }

    // Replies lost on every kind of change: each outcome is checked against AWS (the
    // reconciliation reads) under the same policies, until every certificate is through.
    let env = Env::unlimited();
    let ids = fleet(&env, 6);
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    env.sim.set_faults(vec![(FaultKind::LostReply, 0.3)]);
    let steps: [(&[&str], &str, &[&str]); 2] = [
        (
            &[
                "transfer",
                "--carry",
                "--deactivate",
                "--detach-policies",
                "--detach-things",
            ],
            SOURCE,
            &[
                "transfer",
                "m.csv",
                "--carry",
                "--deactivate",
                "--detach-policies",
                "--detach-things",
            ],
        ),
        (
            &["accept", "--carry"],
            TARGET,
            &["accept", "m.csv", "--carry", "--set-as-active"],
        ),
    ];
    for (policy, account, args) in steps {
        allow_only(&env, policy);
        let mut code = -1;
        for _ in 0..8 {
            let run = run_as(&env, account, args);
            assert_eq!(denied(&env), 0, "{args:?}\n{}", run.stderr);
            code = run.code;
            if code == 0 {
                break;
            }
            assert!(
                matches!(code, 3 | 4),
                "{args:?}: exit {code}\n{}",
                run.stderr
            );
            if code == 3 {
                // a failure the faults made (a refused retry): try it again
                let mut again = args.to_vec();
                again.push("--retry-failed");
                let run = run_as(&env, account, &again);
                assert_eq!(denied(&env), 0, "{again:?}\n{}", run.stderr);
                code = run.code;
                if code == 0 {
                    break;
                }
            }
        }
        assert_eq!(code, 0, "{args:?} never finished");
    }
    assert!(
        env.sim.stats().faults_of(FaultKind::LostReply) > 0,
        "no reply was lost: the reconciliation was not exercised"
    );
    for id in &ids {
        let c = env.state().find_in(TARGET, REGION, id).cloned().unwrap();
        assert_eq!(c.status, "ACTIVE", "{id}");
    }
}

/// The README's IAM policies: each fenced JSON block after a `<!-- iam-policy ARGS -->`
/// line is what `iam-policy ARGS` prints.
#[test]
fn the_readme_policies_are_what_iam_policy_prints() {
    let env = Env::unlimited();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut found = 0;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(args) = line
            .trim()
            .strip_prefix("<!-- iam-policy ")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let args: Vec<&str> = args.split_whitespace().collect();
        assert_eq!(lines.next(), Some("```json"), "after {line}");
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let mut all = vec!["iam-policy"];
        all.extend(&args);
        let out = env.run(&all);
        out.expect_code(0);
        assert_eq!(
            block.join("\n"),
            out.stdout.trim_end(),
            "README's policy for `iam-policy {}` is not what the tool prints",
            args.join(" ")
        );
        found += 1;
    }
    assert!(found >= 4, "only {found} policies found in the README");
}

#[test]
fn every_command_without_flags_passes_under_its_printed_policy() {
    let env = Env::unlimited();
    // INACTIVE, nothing attached: no flag is needed to move them.
    let certs: Vec<(String, String)> = (0..4).map(|i| fake_certificate(900 + i)).collect();
    env.sim
        .seed(Seed {
            region: REGION.into(),
            accounts: BTreeMap::from([(
                SOURCE.to_string(),
                SeedAccount {
                    certificates: certs
                        .iter()
                        .map(|(id, pem)| SeedCertificate {
                            pem: Some(pem.clone()),
                            ..cert(id, "INACTIVE", &[], &[])
                        })
                        .collect(),
                    ..Default::default()
                },
            )]),
        })
        .expect("seed accepted");
    env.write(
        "aws-config",
        &format!(
            "[profile migrate-{TARGET}]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"
        ),
    );
    let ids: Vec<String> = certs.into_iter().map(|(id, _)| id).collect();
    env.manifest(
        "m.csv",
        &[(ids[0].clone(), TARGET), (ids[1].clone(), TARGET)],
    );
    env.manifest(
        "r.csv",
        &[(ids[2].clone(), TARGET), (ids[3].clone(), TARGET)],
    );

    passes(
        &env,
        &["select"],
        SOURCE,
        &["select", "--target-account", TARGET, "--out", "all.csv"],
        0,
    );
    passes(&env, &["transfer"], SOURCE, &["transfer", "m.csv"], 0);
    passes(&env, &["cancel"], SOURCE, &["cancel", "m.csv"], 0);
    // cancelled certificates are not transferred again by the same ledger
    passes(
        &env,
        &["transfer"],
        SOURCE,
        &["transfer", "m.csv", "--ledger", "again.ledger.jsonl"],
        0,
    );
    passes(&env, &["accept"], TARGET, &["accept", "m.csv"], 0);
    passes(
        &env,
        &["register"],
        SOURCE,
        &["register", "r.csv", "--target-profile-template", TEMPLATE],
        0,
    );
    for id in &ids {
        assert!(
            env.state().find_in(TARGET, REGION, id).is_some(),
            "{id} in the target"
        );
    }
}

#[test]
fn the_device_handoff_passes_under_exactly_its_printed_policies() {
    use iot_sim::{DeviceBehaviour, DeviceSetting, SeedDevices, SeedIndexing};
    let env = Env::unlimited();
    let ids = fleet(&env, 3);
    // Devices that follow, and connectivity indexed in the target.
    env.sim
        .seed(Seed {
            region: REGION.into(),
            accounts: BTreeMap::from([
                (
                    SOURCE.to_string(),
                    SeedAccount {
                        devices: Some(SeedDevices {
                            default: Some(DeviceSetting {
                                delay_ms: Some(20),
                                ..DeviceSetting::of(DeviceBehaviour::Follow)
                            }),
                            things: BTreeMap::new(),
                        }),
                        ..Default::default()
                    },
                ),
                (
                    TARGET.to_string(),
                    SeedAccount {
                        indexing: Some(SeedIndexing {
                            thing_indexing_mode: Some("REGISTRY".into()),
                            thing_connectivity_indexing_mode: Some("STATUS".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ),
            ]),
        })
        .expect("seed accepted");
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    env.write(
        "doc.json",
        r#"{"operation":"move","endpoint":"{endpoint}","account":"{account}","region":"{region}"}"#,
    );
    passes(
        &env,
        &["register", "--carry"],
        SOURCE,
        &[
            "register",
            "m.csv",
            "--carry",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );
    passes(
        &env,
        &["handoff"],
        SOURCE,
        &[
            "handoff",
            "m.csv",
            "--document",
            "doc.json",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );
    wait_until(
        "every device connected in the target",
        Duration::from_secs(60),
        || {
            let devices = env.sim.devices();
            (0..3).all(|i| {
                devices.iter().any(|d| {
                    d.thing == format!("thing-{i}") && d.connected_to.as_deref() == Some(TARGET)
                })
            })
        },
    );
    let verify = [
        "--output",
        "json",
        "verify",
        "m.csv",
        "--require-connected",
        "--target-profile-template",
        TEMPLATE,
        "--from-ledger",
        "m.register-ledger.jsonl",
    ];
    // Connected, the source's copies still ACTIVE: still_in_source.
    let before = passes(&env, &["verify", "--require-connected"], SOURCE, &verify, 3);
    assert_eq!(
        before.json()["counts"]["still_in_source"],
        3,
        "{}",
        before.stdout
    );
    // The devices seen from status and report, under their own printed policies.
    for command in ["status", "report"] {
        let seen = passes(
            &env,
            &[command, "--devices"],
            SOURCE,
            &[
                "--output",
                "json",
                command,
                "m.csv",
                "--devices",
                "--target-profile-template",
                TEMPLATE,
            ],
            0,
        );
        assert_eq!(
            seen.json()["devices"]["counts"]["connected"],
            3,
            "{command}: {}",
            seen.stdout
        );
        assert_eq!(
            seen.json()["devices"]["handoff"]["executions"]["SUCCEEDED"],
            3,
            "{command}: {}",
            seen.stdout
        );
    }
    passes(
        &env,
        &["retire", "--deactivate", "--require-connected"],
        SOURCE,
        &[
            "retire",
            "m.csv",
            "--deactivate",
            "--require-connected",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );
    let after = passes(&env, &["verify", "--require-connected"], SOURCE, &verify, 0);
    assert_eq!(after.json()["counts"]["ok"], 3, "{}", after.stdout);
    passes(
        &env,
        &["handoff", "--cleanup"],
        SOURCE,
        &[
            "handoff",
            "m.csv",
            "--cleanup",
            "--target-profile-template",
            TEMPLATE,
        ],
        0,
    );
    assert!(
        env.state()
            .accounts
            .iter()
            .filter(|a| a.account == SOURCE)
            .all(|a| a.jobs.is_empty()),
        "cleanup left a job"
    );
}
