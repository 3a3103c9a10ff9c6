//! Carry (issue 12): `transfer --carry` records what each certificate carries before changing
//! it; `accept --carry` rebuilds it in the target — thing types, nested groups with their
//! policies, policies with their ARNs rewritten, things — and attaches it as it was.
//! Reruns make no mutating call; conflicts fail or are reused; lost replies and SIGKILL
//! never create an object twice.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;
use iot_sim::{
    FaultKind, Seed, SeedAccount, SeedPolicy, SeedThing, SeedThingGroup, SeedThingType, SimConfig,
    StateDump,
};
use serde_json::Value;

const RUN_LIMIT: Duration = Duration::from_secs(90);

fn doc(account: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:{REGION}:{account}:{resource}"}}]}}"#
    )
}

fn seed(env: &Env, account: &str, data: SeedAccount) {
    let mut accounts = BTreeMap::new();
    accounts.insert(account.to_string(), data);
    env.sim
        .seed(Seed {
            region: REGION.to_string(),
            accounts,
        })
        .expect("seed accepted");
}

/// `n` ACTIVE certificates in the source, each with policy `direct` and its own thing
/// `thing-i` (type `sensor`, attribute `serial`), the things in group `floor` whose parent
/// is `site`; `site` has policy `site-policy`, `floor` has `floor-policy`. Every document
/// names source-account ARNs. Returns the ids; the manifest is `m.csv` (all to TARGET).
pub(crate) fn carried_fleet(env: &Env, n: u64) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(cert_id).collect();
    seed(
        env,
        SOURCE,
        SeedAccount {
            policies: vec![
                SeedPolicy {
                    name: "direct".into(),
                    document: Some(doc(
                        SOURCE,
                        "topic/device/${iot:Connection.Thing.ThingName}",
                    )),
                },
                SeedPolicy {
                    name: "site-policy".into(),
                    document: Some(doc(SOURCE, "topic/site")),
                },
                SeedPolicy {
                    name: "floor-policy".into(),
                    document: Some(doc(SOURCE, "topic/floor")),
                },
            ],
            thing_types: vec![SeedThingType {
                name: "sensor".into(),
                description: Some("temperature sensor".into()),
                searchable_attributes: vec!["serial".into()],
                ..Default::default()
            }],
            thing_groups: vec![
                SeedThingGroup {
                    name: "site".into(),
                    description: Some("the site".into()),
                    attributes: BTreeMap::from([("city".into(), "Lyon".into())]),
                    policies: vec!["site-policy".into()],
                    ..Default::default()
                },
                SeedThingGroup {
                    name: "floor".into(),
                    parent: Some("site".into()),
                    policies: vec!["floor-policy".into()],
                    ..Default::default()
                },
            ],
            things: (0..n)
                .map(|i| SeedThing {
                    name: format!("thing-{i}"),
                    thing_type: Some("sensor".into()),
                    attributes: BTreeMap::from([("serial".into(), format!("s{i}"))]),
                    groups: vec!["floor".into()],
                })
                .collect(),
            certificates: ids
                .iter()
                .enumerate()
                .map(|(i, id)| cert(id, "ACTIVE", &["direct"], &[&format!("thing-{i}")]))
                .collect(),
            ..Default::default()
        },
    );
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    ids
}

fn account<'a>(dump: &'a StateDump, account: &str) -> &'a iot_sim::AccountState {
    dump.accounts
        .iter()
        .find(|a| a.account == account && a.region == REGION)
        .unwrap_or_else(|| panic!("no account {account} in the simulator"))
}

/// The target holds what the source held, account ids rewritten, attached the same way.
fn assert_rebuilt(env: &Env, ids: &[String]) {
    let dump = env.state();
    let source = account(&dump, SOURCE);
    let target = account(&dump, TARGET);
    for p in &source.policies {
        let got = target
            .policies
            .iter()
            .find(|t| t.name == p.name)
            .unwrap_or_else(|| panic!("policy {} not created in the target", p.name));
        assert_eq!(
            got.document,
            p.document.replace(SOURCE, TARGET),
            "policy {}: its ARNs name the target account",
            p.name
        );
    }
    assert_eq!(target.thing_types.len(), 1);
    assert_eq!(target.thing_types[0].name, "sensor");
    assert_eq!(
        target.thing_types[0].description.as_deref(),
        Some("temperature sensor")
    );
    assert_eq!(target.thing_types[0].searchable_attributes, ["serial"]);
    let groups: BTreeMap<&str, &iot_sim::ThingGroupState> = target
        .thing_groups
        .iter()
        .map(|g| (g.name.as_str(), g))
        .collect();
    assert_eq!(groups["site"].parent, None);
    assert_eq!(groups["site"].description.as_deref(), Some("the site"));
    assert_eq!(groups["site"].attributes["city"], "Lyon");
    assert_eq!(groups["site"].policies, ["site-policy"]);
    assert_eq!(groups["floor"].parent.as_deref(), Some("site"));
    assert_eq!(groups["floor"].policies, ["floor-policy"]);
    for (i, id) in ids.iter().enumerate() {
        let c = target
            .certificates
            .iter()
            .find(|c| &c.id == id)
            .unwrap_or_else(|| panic!("{id} not owned by the target"));
        assert_eq!(c.status, "ACTIVE", "{id}");
        assert_eq!(c.policies, ["direct"], "{id}");
        let name = format!("thing-{i}");
        assert_eq!(c.things, std::slice::from_ref(&name), "{id}");
        let t = target
            .things
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("thing {name} not created"));
        assert_eq!(t.thing_type.as_deref(), Some("sensor"));
        assert_eq!(t.attributes["serial"], format!("s{i}"));
        assert_eq!(t.groups, ["floor"]);
        assert_eq!(t.principals, std::slice::from_ref(&c.arn));
    }
}

/// Each create or attach of the accept ledger took effect once: never two `done` for the
/// same action and object.
fn assert_each_carry_change_done_once(env: &Env) -> usize {
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    for ev in ledger_events(&env.path("m.accept-ledger.jsonl")) {
        if ev["stage"] != "carry" || ev["outcome"] != "done" {
            continue;
        }
        let d = &ev["details"];
        let key = format!(
            "{} {} {} {} {} {}",
            d["action"], ev["id"], d["policy"], d["thing"], d["thing_type"], d["group"]
        );
        // Shared objects are created by one certificate's item: key them without the id.
        let shared = matches!(
            d["action"].as_str(),
            Some(
                "create_policy"
                    | "create_thing_type"
                    | "create_thing_group"
                    | "attach_group_policy"
            )
        );
        let key = if shared {
            format!(
                "{} {} {} {}",
                d["action"], d["policy"], d["thing_type"], d["group"]
            )
        } else {
            key
        };
        *done.entry(key).or_default() += 1;
    }
    for (k, n) in &done {
        assert_eq!(*n, 1, "{k} recorded done {n} times");
    }
    done.len()
}

/// The ledger tells exactly what the target holds: each object of the target's registry was
/// created by one `done` carry step of the accept ledger, and nothing else was.
fn assert_ledger_names_every_created_object(env: &Env) {
    let mut created: Vec<String> = ledger_events(&env.path("m.accept-ledger.jsonl"))
        .into_iter()
        .filter(|e| e["stage"] == "carry" && e["outcome"] == "done")
        .filter_map(|e| {
            let d = &e["details"];
            let name = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            Some(match d["action"].as_str()? {
                "create_policy" => format!("policy {}", name("policy")),
                "create_thing_type" => format!("thing type {}", name("thing_type")),
                "create_thing_group" => format!("group {}", name("group")),
                "create_thing" => format!("thing {}", name("thing")),
                _ => return None,
            })
        })
        .collect();
    created.sort();
    let dump = env.state();
    let target = account(&dump, TARGET);
    let mut held: Vec<String> = target
        .policies
        .iter()
        .map(|p| format!("policy {}", p.name))
        .chain(
            target
                .thing_types
                .iter()
                .map(|t| format!("thing type {}", t.name)),
        )
        .chain(
            target
                .thing_groups
                .iter()
                .map(|g| format!("group {}", g.name)),
        )
        .chain(target.things.iter().map(|t| format!("thing {}", t.name)))
        .collect();
    held.sort();
    assert_eq!(
        created, held,
        "the accept ledger and the target's registry disagree"
    );
}

fn snapshots(env: &Env) -> Vec<Value> {
    ledger_events(&env.path("m.ledger.jsonl"))
        .into_iter()
        .filter(|e| e["outcome"] == "snapshot")
        .collect()
}

#[test]
fn a_fleet_moved_with_carry_works_in_the_target_and_reruns_change_nothing() {
    let env = Env::unlimited();
    let ids = carried_fleet(&env, 5);
    let mut args = vec!["--output", "json", "transfer", "m.csv", "--carry"];
    args.extend(PREPARE);
    let before = env.sim.stats();
    env.run(&args).expect_code(0);
    let after = env.sim.stats();
    // Shared objects are read once per run, not once per certificate.
    assert_eq!(
        after.calls_of("GetPolicy") - before.calls_of("GetPolicy"),
        3
    );
    assert_eq!(
        after.calls_of("DescribeThingGroup") - before.calls_of("DescribeThingGroup"),
        2
    );
    assert_eq!(
        after.calls_of("DescribeThingType") - before.calls_of("DescribeThingType"),
        1
    );

    // One snapshot per certificate, written before its first change.
    let snaps = snapshots(&env);
    assert_eq!(snaps.len(), ids.len());
    let events = ledger_events(&env.path("m.ledger.jsonl"));
    for id in &ids {
        let first_change = events
            .iter()
            .position(|e| e["id"] == id.as_str() && e["outcome"] == "intent")
            .expect("an intent");
        let snap = events
            .iter()
            .position(|e| e["id"] == id.as_str() && e["outcome"] == "snapshot")
            .expect("a snapshot");
        assert!(snap < first_change, "{id}: snapshot after the first change");
    }
    let s = &snaps[0]["details"]["snapshot"];
    assert_eq!(s["source_account"], SOURCE);
    assert_eq!(s["attached_policies"], serde_json::json!(["direct"]));
    let groups: Vec<&str> = s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["site", "floor"], "parents before children");

    let accept = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--carry",
            "--set-as-active",
        ],
    );
    accept.expect_code(0);
    assert_eq!(accept.count("accepted"), 5);
    let endpoints = &accept.json()["device_endpoints"];
    let endpoint = endpoints[format!("{TARGET} ({REGION})")]
        .as_str()
        .unwrap_or_else(|| panic!("no device endpoint in {endpoints}"));
    assert!(endpoint.contains("-ats.iot."), "{endpoint}");
    assert_rebuilt(&env, &ids);
    assert!(assert_each_carry_change_done_once(&env) > 0);
    env.write(
        "aws-config",
        &format!("[profile t]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    );
    let verify = Run::from(
        env.cmd(&[
            "--output",
            "json",
            "verify",
            "m.csv",
            "--target-profile",
            "t",
        ])
        .env("AWS_CONFIG_FILE", env.path("aws-config"))
        .output()
        .unwrap(),
    );
    verify.expect_code(0);
    assert_eq!(verify.json()["counts"]["ok"], 5, "{}", verify.stdout);
    assert_eq!(verify.json()["without_snapshot"], 0);

    // Reruns of both commands make zero mutating calls.
    let calls = env.sim.stats().mutating_calls();
    env.run(&args).expect_code(0);
    env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--carry",
            "--set-as-active",
        ],
    )
    .expect_code(0);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        calls,
        "a rerun changed something"
    );
}

#[test]
fn transfer_with_accept_profile_and_carry_does_both_sides_in_one_command() {
    let env = Env::unlimited();
    let ids = carried_fleet(&env, 3);
    let config = env.write(
        "aws-config",
        &format!("[profile target]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    );
    let mut args = vec![
        "--output",
        "json",
        "transfer",
        "m.csv",
        "--carry",
        "--accept-profile",
        "target",
        "--set-as-active",
    ];
    args.extend(PREPARE);
    let run = Run::from(
        env.cmd(&args)
            .env("AWS_CONFIG_FILE", &config)
            .output()
            .expect("binary runs"),
    );
    run.expect_code(0);
    assert_eq!(run.count("accepted"), 3);
    assert_rebuilt(&env, &ids);
}

#[test]
fn conflicting_objects_fail_with_a_row_naming_them_and_reuse_attaches_them() {
    let env = Env::unlimited();
    let ids = carried_fleet(&env, 2);
    // The target already has a policy `direct` with another document, and `thing-1` with
    // other attributes.
    seed(
        &env,
        TARGET,
        SeedAccount {
            policies: vec![SeedPolicy {
                name: "direct".into(),
                document: Some(doc(TARGET, "topic/other")),
            }],
            things: vec![SeedThing {
                name: "thing-1".into(),
                attributes: BTreeMap::from([("serial".into(), "mine".into())]),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let mut args = vec!["transfer", "m.csv", "--carry"];
    args.extend(PREPARE);
    env.run(&args).expect_code(0);
    let accept = env.run_as(TARGET, &["--output", "json", "accept", "m.csv", "--carry"]);
    accept.expect_code(3);
    assert_eq!(accept.count("failed"), 2);
    let rows = read_csv(&env.path("m.accept-failures.csv"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["error_code"], "CarryConflict", "{r:?}");
        assert!(r["message"].contains("policy `direct`"), "{r:?}");
        assert!(
            r["message"].contains("topic/other"),
            "names the difference: {r:?}"
        );
        assert!(r["message"].contains("--on-conflict reuse"), "{r:?}");
    }
    // Nothing of the conflicting policy was replaced.
    let dump = env.state();
    let direct = account(&dump, TARGET)
        .policies
        .iter()
        .find(|p| p.name == "direct")
        .unwrap();
    assert_eq!(direct.document, doc(TARGET, "topic/other"));

    let reuse = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--carry",
            "--on-conflict",
            "reuse",
            "--retry-failed",
        ],
    );
    reuse.expect_code(0);
    assert_eq!(reuse.count("accepted"), 2);
    assert!(reuse.stderr.contains("reused"), "says so: {}", reuse.stderr);
    let dump = env.state();
    let target = account(&dump, TARGET);
    for id in &ids {
        let c = target.certificates.iter().find(|c| &c.id == id).unwrap();
        assert_eq!(c.policies, ["direct"], "the existing policy is attached");
    }
    let t1 = target.things.iter().find(|t| t.name == "thing-1").unwrap();
    assert_eq!(
        t1.attributes["serial"], "mine",
        "the existing thing is kept as it is"
    );
    assert_eq!(t1.groups, ["floor"]);
    let accepted: Vec<Value> = ledger_events(&env.path("m.accept-ledger.jsonl"))
        .into_iter()
        .filter(|e| e["outcome"] == "accepted")
        .collect();
    assert!(accepted.iter().any(|e| e["details"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("thing `thing-1`")));
}

#[test]
fn accept_carry_without_a_snapshot_accepts_nothing_and_says_why() {
    let env = Env::unlimited();
    carried_fleet(&env, 2);
    let mut args = vec!["transfer", "m.csv"];
    args.extend(PREPARE);
    env.run(&args).expect_code(0);
    let before = env.sim.stats().mutating_calls();
    let accept = env.run_as(TARGET, &["--output", "json", "accept", "m.csv", "--carry"]);
    // Every certificate refused for the same reason, nothing changed: exit 2, one message.
    accept.expect_code(2);
    assert!(accept.stderr.contains("--from-ledger"), "{}", accept.stderr);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        before,
        "nothing was accepted"
    );
    let rows = read_csv(&env.path("m.accept-failures.csv"));
    assert!(
        rows.iter()
            .all(|r| r["error_code"] == "NoSnapshot" && r["waiting_for"] == "snapshot"),
        "{rows:?}"
    );

    // A ledger that does not exist is refused before any AWS call.
    let missing = env.run_as(
        TARGET,
        &[
            "accept",
            "m.csv",
            "--carry",
            "--from-ledger",
            "nowhere.jsonl",
        ],
    );
    missing.expect_code(1);
    assert!(
        missing.stderr.contains("nowhere.jsonl"),
        "{}",
        missing.stderr
    );
}

#[test]
fn lost_replies_during_carry_create_every_object_once() {
    let env = Env::unlimited();
    let ids = carried_fleet(&env, 6);
    let mut args = vec!["transfer", "m.csv", "--carry"];
    args.extend(PREPARE);
    env.run(&args).expect_code(0);
    env.sim.set_faults(vec![
        (FaultKind::LostReply, 0.3),
        (FaultKind::Duplicate, 0.1),
    ]);
    let accept = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--carry",
            "--set-as-active",
        ],
    );
    env.sim.set_faults(vec![]);
    // Items the reconciliation could not settle are in doubt: a plain rerun finishes them.
    if accept.code != 0 {
        accept.expect_code(4);
        env.run_as(TARGET, &["accept", "m.csv", "--carry", "--set-as-active"])
            .expect_code(0);
    }
    assert_rebuilt(&env, &ids);
    assert_each_carry_change_done_once(&env);
    assert_ledger_names_every_created_object(&env);
    let reconciled = ledger_events(&env.path("m.accept-ledger.jsonl"))
        .into_iter()
        .filter(|e| e["stage"] == "carry" && e["outcome"] == "unknown")
        .count();
    assert!(
        reconciled > 0,
        "no lost reply hit a carry step: the test proves nothing"
    );
}

#[test]
fn sigkill_during_carry_then_rerun_creates_every_object_once() {
    let env = Env::new(SimConfig {
        latency: Duration::from_millis(3),
        latency_jitter: Duration::from_millis(3),
        ..SimConfig::unlimited()
    });
    let ids = carried_fleet(&env, 12);
    let mut args = vec!["transfer", "m.csv", "--carry"];
    args.extend(PREPARE);
    env.run(&args).expect_code(0);
    let ledger = env.path("m.accept-ledger.jsonl");
    let accept = [
        "accept",
        "m.csv",
        "--carry",
        "--set-as-active",
        "--concurrency",
        "4",
    ];
    let mut rng = rng("carry-sigkill");
    let kills = kill_as_the_ledger_grows(
        &env,
        || env.cmd_as(TARGET, &accept),
        &ledger,
        4,
        2..=25,
        &mut rng,
        RUN_LIMIT,
    );
    assert!(kills >= 2, "only {kills} runs were killed mid-way");
    env.run_as(TARGET, &accept).expect_code(0);
    assert_rebuilt(&env, &ids);
    assert_each_carry_change_done_once(&env);
    assert_ledger_names_every_created_object(&env);
    let calls = env.sim.stats().mutating_calls();
    env.run_as(TARGET, &accept).expect_code(0);
    assert_eq!(env.sim.stats().mutating_calls(), calls);
}

#[test]
fn accept_carry_after_a_plain_accept_rebuilds_without_accepting_again() {
    let env = Env::unlimited();
    let ids = carried_fleet(&env, 3);
    let mut args = vec!["transfer", "m.csv", "--carry"];
    args.extend(PREPARE);
    env.run(&args).expect_code(0);
    env.run_as(TARGET, &["accept", "m.csv", "--set-as-active"])
        .expect_code(0);
    let accepts = env.sim.stats().calls_of("AcceptCertificateTransfer");
    let carry = env.run_as(TARGET, &["--output", "json", "accept", "m.csv", "--carry"]);
    carry.expect_code(0);
    assert_eq!(carry.count("accepted"), 3);
    assert_eq!(
        env.sim.stats().calls_of("AcceptCertificateTransfer"),
        accepts,
        "the ledger knew they were accepted: no accept was sent again"
    );
    assert_rebuilt(&env, &ids);
    let calls = env.sim.stats().mutating_calls();
    env.run_as(TARGET, &["accept", "m.csv", "--carry"])
        .expect_code(0);
    assert_eq!(env.sim.stats().mutating_calls(), calls);
}

#[test]
fn plan_carry_lists_what_would_be_created_and_flags_conflicts_read_only() {
    let env = Env::unlimited();
    let mut ids = carried_fleet(&env, 2);
    // A third certificate with no policy of its own: its device is allowed only through
    // its thing's group.
    let lone = cert_id(99);
    seed(
        &env,
        SOURCE,
        SeedAccount {
            things: vec![SeedThing {
                name: "lone".into(),
                groups: vec!["floor".into()],
                ..Default::default()
            }],
            certificates: vec![cert(&lone, "ACTIVE", &[], &["lone"])],
            ..Default::default()
        },
    );
    ids.push(lone);
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    seed(
        &env,
        TARGET,
        SeedAccount {
            policies: vec![SeedPolicy {
                name: "direct".into(),
                document: Some(doc(TARGET, "topic/other")),
            }],
            ..Default::default()
        },
    );
    env.write(
        "aws-config",
        &format!("[profile t]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    );
    let before = env.sim.stats().mutating_calls();
    let out = Run::from(
        env.cmd(&[
            "--output",
            "json",
            "plan",
            "m.csv",
            "--carry",
            "--target-profile",
            "t",
        ])
        .env("AWS_CONFIG_FILE", env.path("aws-config"))
        .output()
        .unwrap(),
    );
    out.expect_code(0);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        before,
        "plan changed something"
    );
    let carry = &out.json()["carry"];
    let t = &carry["targets"][TARGET];
    assert_eq!(t["counts"]["policy"]["conflict"], 1, "{carry}");
    assert_eq!(t["counts"]["policy"]["create"], 2, "{carry}");
    assert_eq!(t["counts"]["thing"]["create"], 3, "{carry}");
    assert_eq!(t["counts"]["thing group"]["create"], 2, "{carry}");
    assert_eq!(t["counts"]["thing type"]["create"], 1, "{carry}");
    let conflict = &t["conflicts"][0];
    assert_eq!(conflict["name"], "direct");
    assert!(conflict["difference"]
        .as_str()
        .unwrap()
        .contains("topic/other"));
    assert_eq!(carry["only_through_groups"], 1, "{carry}");
    assert!(carry["warnings"][0].as_str().unwrap().contains("client id"));

    // Without target credentials: what would be created, not checked against a target.
    let blind = env.run(&["--output", "json", "plan", "m.csv", "--carry"]);
    blind.expect_code(0);
    let t = &blind.json()["carry"]["targets"][TARGET];
    assert_eq!(t["counts"]["policy"]["not_checked"], 3, "{t}");
}
