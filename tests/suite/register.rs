//! Zero-downtime mode (issue 14): `register` puts a copy of each certificate in its target
//! account (RegisterCertificateWithoutCA with the source's PEM) and with `--carry` rebuilds
//! what it carries there, the source untouched; `retire` then retires the source's copies
//! the target holds ACTIVE, only as far as the flags say.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;
use iot_sim::{
    fake_certificate, FaultKind, Seed, SeedAccount, SeedCertificate, SeedPolicy, SeedThing,
    SeedThingGroup, SeedThingType, SimConfig,
};

const RUN_LIMIT: Duration = Duration::from_secs(90);

/// `n` ACTIVE certificates with real-shaped PEMs (id = SHA-256 of the DER), each with policy
/// `device` (naming the source account) and its own thing of type `meter` in group `zone`.
/// Rows alternate between TARGET and TARGET2. Returns the ids.
fn fleet(env: &Env, n: u64) -> Vec<String> {
    let certs: Vec<(String, String)> = (0..n).map(fake_certificate).collect();
    let mut accounts = BTreeMap::new();
    accounts.insert(
        SOURCE.to_string(),
        SeedAccount {
            policies: vec![SeedPolicy {
                name: "device".into(),
                document: Some(format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:{REGION}:{SOURCE}:client/*"}}]}}"#
                )),
            }],
            thing_types: vec![SeedThingType {
                name: "meter".into(),
                ..Default::default()
            }],
            thing_groups: vec![SeedThingGroup {
                name: "zone".into(),
                ..Default::default()
            }],
            things: (0..n)
                .map(|i| SeedThing {
                    name: format!("meter-{i}"),
                    thing_type: Some("meter".into()),
                    attributes: BTreeMap::from([("n".into(), i.to_string())]),
                    groups: vec!["zone".into()],
                })
                .collect(),
            certificates: certs
                .iter()
                .enumerate()
                .map(|(i, (id, pem))| SeedCertificate {
                    pem: Some(pem.clone()),
                    ..cert(id, "ACTIVE", &["device"], &[&format!("meter-{i}")])
                })
                .collect(),
            ..Default::default()
        },
    );
    env.sim
        .seed(Seed {
            region: REGION.to_string(),
            accounts,
        })
        .expect("seed accepted");
    let ids: Vec<String> = certs.into_iter().map(|(id, _)| id).collect();
    let rows: Vec<(String, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), if i % 2 == 0 { TARGET } else { TARGET2 }))
        .collect();
    env.manifest("m.csv", &rows);
    env.write(
        "aws-config",
        &[TARGET, TARGET2]
            .iter()
            .map(|a| format!("[profile migrate-{a}]\naws_access_key_id = {a}\naws_secret_access_key = x\nregion = {REGION}\n\n"))
            .collect::<String>(),
    );
    ids
}

fn target_of(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        TARGET
    } else {
        TARGET2
    }
}

/// The binary as the source, with the targets' profiles available.
fn run(env: &Env, args: &[&str]) -> Run {
    Run::from(
        env.cmd(args)
            .env("AWS_CONFIG_FILE", env.path("aws-config"))
            .output()
            .expect("binary runs"),
    )
}

const TEMPLATE: [&str; 2] = ["--target-profile-template", "migrate-{account}"];

fn register_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--output", "json", "register", "m.csv"];
    a.extend(TEMPLATE);
    a.extend(extra);
    a
}

/// Every certificate is still ACTIVE with its policy and thing in the source, and ACTIVE in
/// its target with the carried policy (ARNs rewritten) and thing.
fn assert_registered_and_carried(env: &Env, ids: &[String]) {
    let dump = env.state();
    for (i, id) in ids.iter().enumerate() {
        let src = dump
            .find_in(SOURCE, REGION, id)
            .expect("still in the source");
        assert_eq!(src.status, "ACTIVE", "{id}: the source copy is untouched");
        assert_eq!(src.policies, ["device"]);
        assert_eq!(src.things, [format!("meter-{i}")]);
        let target = target_of(i);
        let there = dump
            .find_in(target, REGION, id)
            .unwrap_or_else(|| panic!("{id} not registered in {target}"));
        assert_eq!(there.status, "ACTIVE");
        assert_eq!(there.certificate_mode, "SNI_ONLY");
        assert_eq!(there.policies, ["device"], "{id} in {target}");
        assert_eq!(there.things, [format!("meter-{i}")]);
        let account = dump.account(target, REGION).unwrap();
        let policy = account
            .policies
            .iter()
            .find(|p| p.name == "device")
            .unwrap();
        assert!(policy.document.contains(&format!(":{target}:client/*")));
        let thing = account
            .things
            .iter()
            .find(|t| t.name == format!("meter-{i}"))
            .unwrap();
        assert_eq!(thing.thing_type.as_deref(), Some("meter"));
        assert_eq!(thing.groups, ["zone"]);
    }
}

/// At most one `done` registration per certificate in the register ledger.
fn assert_registered_once(env: &Env, ids: &[String]) {
    let events = ledger_events(&env.path("m.register-ledger.jsonl"));
    for id in ids {
        let done = events
            .iter()
            .filter(|e| {
                e["id"] == id.as_str()
                    && e["details"]["action"] == "register"
                    && e["outcome"] == "done"
            })
            .count();
        assert!(done <= 1, "{id} registered {done} times");
        let terminal = events
            .iter()
            .filter(|e| e["id"] == id.as_str() && e["outcome"] == "registered")
            .count();
        assert!(terminal >= 1, "{id} never recorded as registered");
    }
}

#[test]
fn register_with_carry_into_two_targets_keeps_the_source_and_a_rerun_changes_nothing() {
    let env = Env::unlimited();
    let ids = fleet(&env, 6);
    let out = run(&env, &register_args(&["--carry"]));
    out.expect_code(0);
    assert_eq!(out.count("registered"), 6);
    let endpoints = &out.json()["device_endpoints"];
    assert!(
        endpoints[format!("{TARGET} ({REGION})")].is_string(),
        "{endpoints}"
    );
    assert!(
        endpoints[format!("{TARGET2} ({REGION})")].is_string(),
        "{endpoints}"
    );
    assert_registered_and_carried(&env, &ids);
    assert_eq!(
        env.sim.stats().calls_of("RegisterCertificateWithoutCA"),
        6,
        "one registration per certificate"
    );
    let calls = env.sim.stats().mutating_calls();
    run(&env, &register_args(&["--carry"])).expect_code(0);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        calls,
        "a rerun changed something"
    );

    // verify understands register mode: everything in place in the targets, but the source
    // still holds ACTIVE copies until retire.
    let mut verify = vec!["--output", "json", "verify", "m.csv"];
    verify.extend(TEMPLATE);
    let before = run(&env, &verify);
    before.expect_code(3);
    assert_eq!(
        before.json()["counts"]["still_in_source"],
        6,
        "{}",
        before.stdout
    );
    assert_eq!(
        before.json()["without_snapshot"],
        0,
        "snapshots read from the register ledger"
    );
    let mut retire = vec!["retire", "m.csv", "--deactivate"];
    retire.extend(TEMPLATE);
    run(&env, &retire).expect_code(0);
    let after = run(&env, &verify);
    after.expect_code(0);
    assert_eq!(after.json()["counts"]["ok"], 6);
}

#[test]
fn lost_replies_and_sigkill_during_register_converge_to_one_registration_each() {
    let env = Env::new(SimConfig {
        latency: Duration::from_millis(3),
        latency_jitter: Duration::from_millis(3),
        ..SimConfig::unlimited()
    });
    let ids = fleet(&env, 12);
    let ledger = env.path("m.register-ledger.jsonl");
    let args = register_args(&["--carry", "--concurrency", "4"]);
    let mut rng = rng("register-sigkill");
    env.sim.set_faults(vec![
        (FaultKind::LostReply, 0.2),
        (FaultKind::Duplicate, 0.1),
    ]);
    let kills = kill_as_the_ledger_grows(
        &env,
        || {
            let mut c = env.cmd(&args);
            c.env("AWS_CONFIG_FILE", env.path("aws-config"));
            c
        },
        &ledger,
        4,
        2..=20,
        &mut rng,
        RUN_LIMIT,
    );
    assert!(kills >= 2, "only {kills} runs were killed mid-way");
    let mut last = run(&env, &args);
    if last.code == 4 {
        // Items left in doubt by the faults: the next plain run settles them.
        env.sim.set_faults(vec![]);
        last = run(&env, &args);
    }
    env.sim.set_faults(vec![]);
    last.expect_code(0);
    assert_registered_and_carried(&env, &ids);
    assert_registered_once(&env, &ids);
    let unknown = ledger_events(&ledger)
        .into_iter()
        .filter(|e| e["outcome"] == "unknown")
        .count();
    assert!(
        unknown > 0,
        "no lost reply hit a mutating call: the test proves nothing"
    );
    let calls = env.sim.stats().mutating_calls();
    run(&env, &args).expect_code(0);
    assert_eq!(env.sim.stats().mutating_calls(), calls);
}

#[test]
fn retire_refuses_what_the_target_does_not_hold_active_and_changes_only_what_is_asked() {
    let env = Env::unlimited();
    let ids = fleet(&env, 4);
    // Register only the first two certificates.
    let first: Vec<(String, &str)> = ids[..2]
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), target_of(i)))
        .collect();
    env.manifest("first.csv", &first);
    let mut reg = vec!["register", "first.csv"];
    reg.extend(TEMPLATE);
    run(&env, &reg).expect_code(0);

    // No step asked: refused before anything (exit 2).
    let mut none = vec!["retire", "m.csv"];
    none.extend(TEMPLATE);
    let refused = run(&env, &none);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("--deactivate"),
        "{}",
        refused.stderr
    );

    let before = env.sim.stats().mutating_calls();
    let mut detach = vec!["--output", "json", "retire", "m.csv", "--detach-policies"];
    detach.extend(TEMPLATE);
    let out = run(&env, &detach);
    out.expect_code(3);
    assert_eq!(out.count("retired"), 2);
    // Not registered yet: they wait for it (not failed), listed with what they need.
    assert_eq!(out.count("waiting"), 2);
    assert_eq!(out.count("failed"), 0);
    let rows = read_csv(&env.path("m.retire-failures.csv"));
    let mut refused_ids: Vec<&str> = rows.iter().map(|r| r["certificate_id"].as_str()).collect();
    refused_ids.sort();
    let mut expected: Vec<&str> = ids[2..].iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(refused_ids, expected);
    assert!(rows
        .iter()
        .all(|r| r["error_code"] == "NotActiveInTarget" && r["waiting_for"] == "registration"));
    let dump = env.state();
    for (i, id) in ids.iter().enumerate() {
        let src = dump.find_in(SOURCE, REGION, id).unwrap();
        assert_eq!(src.status, "ACTIVE", "not deactivated without --deactivate");
        if i < 2 {
            assert!(src.policies.is_empty(), "{id}: policies detached");
            assert_eq!(
                src.things.len(),
                1,
                "{id}: things kept without --detach-things"
            );
        } else {
            assert_eq!(src.policies, ["device"], "{id}: refused, untouched");
        }
    }
    assert_eq!(
        env.sim.stats().mutating_calls().get("UpdateCertificate"),
        before.get("UpdateCertificate"),
        "deactivated without --deactivate"
    );

    // A rerun of the same retire changes nothing: only the unregistered ones are left, all
    // refused again for the same reason (exit 2, one message: register them first).
    let calls = env.sim.stats().mutating_calls();
    let again = run(&env, &detach);
    again.expect_code(2);
    assert!(again.stderr.contains("register"), "{}", again.stderr);
    assert_eq!(env.sim.stats().mutating_calls(), calls);

    // Now --deactivate (a second retirement, in its own ledger): the two registered ones
    // are deactivated, nothing else changes.
    let mut deactivate = vec![
        "retire",
        "m.csv",
        "--deactivate",
        "--ledger",
        "m.retire2-ledger.jsonl",
    ];
    deactivate.extend(TEMPLATE);
    run(&env, &deactivate).expect_code(3);
    let dump = env.state();
    for (i, id) in ids.iter().enumerate() {
        let src = dump.find_in(SOURCE, REGION, id).unwrap();
        let want = if i < 2 { "INACTIVE" } else { "ACTIVE" };
        assert_eq!(src.status, want, "{id}");
    }
    // What retire changed is in its ledger, for undo.
    let events = ledger_events(&env.path("m.retire2-ledger.jsonl"));
    assert!(events.iter().any(|e| e["details"]["action"] == "deactivate"
        && e["details"]["previous_status"] == "ACTIVE"
        && e["outcome"] == "done"));

    // retire --undo puts back what each retirement changed, from its ledger, with the
    // source's credentials alone; the refused rows are not its business (exit 0).
    for ledger in ["m.retire2-ledger.jsonl", "m.retire-ledger.jsonl"] {
        let out = run(
            &env,
            &[
                "--output", "json", "retire", "m.csv", "--undo", "--ledger", ledger,
            ],
        );
        out.expect_code(0);
        assert_eq!(out.count("restored"), 2, "{ledger}");
    }
    let dump = env.state();
    for (i, id) in ids.iter().enumerate() {
        let src = dump.find_in(SOURCE, REGION, id).unwrap();
        assert_eq!(src.status, "ACTIVE", "{id} re-activated");
        assert_eq!(src.policies, ["device"], "{id} policy re-attached");
        assert_eq!(src.things, [format!("meter-{i}")]);
    }
    let calls = env.sim.stats().mutating_calls();
    run(&env, &["retire", "m.csv", "--undo"]).expect_code(0);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        calls,
        "a second undo changed something"
    );
}

#[test]
fn plan_mode_register_puts_each_certificate_in_its_category_and_changes_nothing() {
    let env = Env::unlimited();
    let ids = fleet(&env, 4);
    // ids[0] is registered in its target already; ids[3] is revoked; one id is unknown.
    let first = vec![(ids[0].clone(), TARGET)];
    env.manifest("first.csv", &first);
    let mut reg = vec!["register", "first.csv"];
    reg.extend(TEMPLATE);
    run(&env, &reg).expect_code(0);
    let (revoked, revoked_pem) = fake_certificate(100);
    let mut accounts = BTreeMap::new();
    accounts.insert(
        SOURCE.to_string(),
        SeedAccount {
            certificates: vec![SeedCertificate {
                pem: Some(revoked_pem),
                ..cert(&revoked, "REVOKED", &[], &[])
            }],
            ..Default::default()
        },
    );
    env.sim
        .seed(Seed {
            region: REGION.to_string(),
            accounts,
        })
        .unwrap();
    let unknown = fake_certificate(200).0;
    let rows: Vec<(String, &str)> = vec![
        (ids[0].clone(), TARGET),
        (ids[1].clone(), TARGET2),
        (ids[2].clone(), TARGET),
        (revoked.clone(), TARGET),
        (unknown.clone(), TARGET2),
    ];
    env.manifest("plan.csv", &rows);

    let no_targets = run(&env, &["plan", "plan.csv", "--mode", "register"]);
    no_targets.expect_code(2);
    assert!(
        no_targets.stderr.contains("--target-profile"),
        "{}",
        no_targets.stderr
    );

    let before = env.sim.stats().mutating_calls();
    let mut args = vec![
        "--output",
        "json",
        "plan",
        "plan.csv",
        "--mode",
        "register",
        "--plan-out",
        "out.csv",
    ];
    args.extend(TEMPLATE);
    let out = run(&env, &args);
    out.expect_code(0);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        before,
        "plan changed something"
    );
    let json = out.json();
    let counts = &json["counts"];
    // The fleet's certificates have no CA and DEFAULT mode: issued by AWS IoT, which AWS
    // may refuse to register elsewhere (a category of their own).
    assert_eq!(counts["issued_by_aws_iot"], 2, "{json}");
    assert_eq!(counts["registrable"], 0, "{json}");
    assert_eq!(counts["already_registered"], 1);
    assert_eq!(counts["not_registrable_status"], 1);
    assert_eq!(counts["other_region"], 1);
    assert!(
        json["warnings"][0]
            .as_str()
            .unwrap()
            .contains("may be refused"),
        "{json}"
    );
    let csv: BTreeMap<String, String> = read_csv(&env.path("out.csv"))
        .into_iter()
        .map(|r| (r["certificate_id"].clone(), r["category"].clone()))
        .collect();
    assert_eq!(csv[&ids[0]], "already_registered");
    assert_eq!(csv[&ids[1]], "issued_by_aws_iot");
    assert_eq!(csv[&revoked], "not_registrable_status");
    assert_eq!(csv[&unknown], "other_region");
}

/// `register` keeps the source's status (issue 24): INACTIVE certificates stay INACTIVE in
/// the target (`plan --mode register` counts them first); `status` and `report` of the
/// manifest see the register and retire ledgers (registered, then retired), text and JSON;
/// `retire` takes a pair that is INACTIVE on both sides.
#[test]
fn register_keeps_inactive_certificates_inactive_and_status_and_report_see_the_register_path() {
    let env = Env::unlimited();
    let ids = fleet(&env, 4);
    // ids[1] and ids[3] are disabled in the source.
    let mut accounts = BTreeMap::new();
    accounts.insert(
        SOURCE.to_string(),
        SeedAccount {
            certificates: [1usize, 3]
                .iter()
                .map(|&i| SeedCertificate {
                    pem: Some(fake_certificate(i as u64).1),
                    ..cert(&ids[i], "INACTIVE", &["device"], &[&format!("meter-{i}")])
                })
                .collect(),
            ..Default::default()
        },
    );
    env.sim
        .seed(Seed {
            region: REGION.to_string(),
            accounts,
        })
        .unwrap();

    let mut plan = vec!["--output", "json", "plan", "m.csv", "--mode", "register"];
    plan.extend(TEMPLATE);
    let planned = run(&env, &plan);
    planned.expect_code(0);
    assert_eq!(
        planned.json()["inactive_in_source"],
        2,
        "{}",
        planned.stdout
    );
    let mut text_plan = vec!["plan", "m.csv", "--mode", "register"];
    text_plan.extend(TEMPLATE);
    let text = run(&env, &text_plan);
    assert!(
        text.stdout.contains("2 INACTIVE in the source"),
        "{}",
        text.stdout
    );

    let out = run(&env, &register_args(&[]));
    out.expect_code(0);
    assert_eq!(out.count("registered"), 4);
    let dump = env.state();
    for (i, id) in ids.iter().enumerate() {
        let there = dump.find_in(target_of(i), REGION, id).unwrap();
        let want = if i % 2 == 1 { "INACTIVE" } else { "ACTIVE" };
        assert_eq!(
            there.status, want,
            "{id}: the target copy keeps the source's status"
        );
    }

    // status and report of the manifest: the register ledger, text and JSON.
    let status = env.run(&["--output", "json", "status", "m.csv"]);
    status.expect_code(0);
    assert_eq!(
        status.json()["counts"]["registered"],
        4,
        "{}",
        status.stdout
    );
    let text = env.run(&["status", "m.csv"]);
    text.expect_code(0);
    assert!(text.stdout.contains("registered 4"), "{}", text.stdout);
    let report = env.run(&["--output", "json", "report", "m.csv"]);
    report.expect_code(0);
    assert_eq!(
        report.json()["counts"]["registered"],
        4,
        "{}",
        report.stdout
    );
    let text = env.run(&["report", "m.csv"]);
    text.expect_code(0);
    assert!(text.stdout.contains("registered 4"), "{}", text.stdout);

    // retire: the ACTIVE pairs and the INACTIVE ones alike.
    let mut retire = vec!["--output", "json", "retire", "m.csv", "--detach-policies"];
    retire.extend(TEMPLATE);
    let retired = run(&env, &retire);
    retired.expect_code(0);
    assert_eq!(retired.count("retired"), 4);
    let status = env.run(&["--output", "json", "status", "m.csv"]);
    let json = status.json();
    assert_eq!(json["counts"]["retired"], 4, "{json}");
    assert_eq!(json["ledgers"].as_array().unwrap().len(), 2, "{json}");
    let text = env.run(&["status", "m.csv"]);
    assert!(text.stdout.contains("retired 4"), "{}", text.stdout);
    assert!(text.stdout.contains("register ledger"), "{}", text.stdout);
    let report = env.run(&["--output", "json", "report", "m.csv"]);
    assert_eq!(report.json()["counts"]["retired"], 4, "{}", report.stdout);
}
