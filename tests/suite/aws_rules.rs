//! Behave as AWS does, round two (issue 25), the simulator in its AWS-like setting: nested
//! groups carried as direct memberships, `select --attribute` on attributes AWS's filter
//! cannot see, who may register a certificate in another account, ARNs in the China
//! partition, exclusive attachments, MQTT 5 attributes, deprecated types, and the limit of
//! policies per thing group.

use std::collections::BTreeMap;

use crate::harness::*;
use iot_sim::{
    fake_certificate, PropagatingAttribute, Seed, SeedAccount, SeedCaCertificate, SeedCertificate,
    SeedPolicy, SeedThing, SeedThingGroup, SeedThingType, SimConfig, StateDump,
};

fn seed(env: &Env, region: &str, account: &str, data: SeedAccount) {
    env.sim
        .seed(Seed {
            region: region.to_string(),
            accounts: BTreeMap::from([(account.to_string(), data)]),
        })
        .expect("seed accepted");
}

/// Profiles `migrate-ACCOUNT` for the targets, in `region`.
fn profiles(env: &Env, region: &str) {
    env.write(
        "aws-config",
        &[TARGET, TARGET2]
            .iter()
            .map(|a| {
                format!(
                    "[profile migrate-{a}]\naws_access_key_id = {a}\naws_secret_access_key = x\nregion = {region}\n\n"
                )
            })
            .collect::<String>(),
    );
}

/// The binary as `account`, with the targets' profiles.
fn run_as(env: &Env, account: &str, args: &[&str]) -> Run {
    Run::from(
        env.cmd_as(account, args)
            .env("AWS_CONFIG_FILE", env.path("aws-config"))
            .output()
            .expect("binary runs"),
    )
}

fn run(env: &Env, args: &[&str]) -> Run {
    run_as(env, SOURCE, args)
}

fn account<'a>(dump: &'a StateDump, account: &str, region: &str) -> &'a iot_sim::AccountState {
    dump.account(account, region)
        .unwrap_or_else(|| panic!("no account {account} in {region}"))
}

fn group(name: &str, parent: Option<&str>, policy: &str) -> SeedThingGroup {
    SeedThingGroup {
        name: name.into(),
        parent: parent.map(str::to_string),
        policies: vec![policy.into()],
        ..Default::default()
    }
}

/// Two hierarchies three levels deep, a policy on every group; things directly in groups
/// at every level of both; one certificate per thing.
fn nested_fleet(env: &Env, n: u64) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let ids: Vec<String> = (0..n).map(|i| cert_id(300 + i)).collect();
    let direct: BTreeMap<String, Vec<String>> = (0..n)
        .map(|i| {
            let groups = match i % 4 {
                0 => vec!["a3", "b2"],
                1 => vec!["a2", "b3"],
                2 => vec!["a1"],
                _ => vec!["b3"],
            };
            (
                format!("t-{i}"),
                groups.into_iter().map(str::to_string).collect(),
            )
        })
        .collect();
    let names = ["pa1", "pa2", "pa3", "pb1", "pb2", "pb3", "direct"];
    seed(
        env,
        REGION,
        SOURCE,
        SeedAccount {
            policies: names
                .iter()
                .map(|p| SeedPolicy {
                    name: p.to_string(),
                    document: None,
                })
                .collect(),
            thing_groups: vec![
                group("a1", None, "pa1"),
                group("a2", Some("a1"), "pa2"),
                group("a3", Some("a2"), "pa3"),
                group("b1", None, "pb1"),
                group("b2", Some("b1"), "pb2"),
                group("b3", Some("b2"), "pb3"),
            ],
            things: direct
                .iter()
                .map(|(name, groups)| SeedThing {
                    name: name.clone(),
                    groups: groups.clone(),
                    ..Default::default()
                })
                .collect(),
            certificates: ids
                .iter()
                .enumerate()
                .map(|(i, id)| cert(id, "ACTIVE", &["direct"], &[&format!("t-{i}")]))
                .collect(),
            ..Default::default()
        },
    );
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    (ids, direct)
}

#[test]
fn nested_groups_move_as_direct_memberships_verify_says_ok_and_reruns_change_nothing() {
    let env = Env::new(SimConfig::unlimited());
    profiles(&env, REGION);
    let (ids, direct) = nested_fleet(&env, 8);
    let mut transfer = vec!["transfer", "m.csv", "--carry"];
    transfer.extend(PREPARE);
    let accept = [
        "accept",
        "m.csv",
        "--carry",
        "--set-as-active",
        "--from-ledger",
        "m.ledger.jsonl",
    ];
    run(&env, &transfer).expect_code(0);
    // What was recorded: the direct memberships, not the parents AWS lists with them.
    for e in ledger_events(&env.path("m.ledger.jsonl")) {
        if e["outcome"] != "snapshot" {
            continue;
        }
        for t in e["details"]["snapshot"]["things"].as_array().unwrap() {
            let recorded: Vec<&str> = t["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap())
                .collect();
            assert_eq!(recorded, direct[t["name"].as_str().unwrap()], "{t}");
        }
    }
    run_as(&env, TARGET, &accept).expect_code(0);

    let dump = env.state();
    let target = account(&dump, TARGET, REGION);
    for t in &target.things {
        assert_eq!(t.groups, direct[&t.name], "thing {}", t.name);
    }
    assert_eq!(target.things.len(), ids.len());
    let groups: BTreeMap<&str, &iot_sim::ThingGroupState> = target
        .thing_groups
        .iter()
        .map(|g| (g.name.as_str(), g))
        .collect();
    for (g, parent, policy) in [
        ("a1", None, "pa1"),
        ("a2", Some("a1"), "pa2"),
        ("a3", Some("a2"), "pa3"),
        ("b1", None, "pb1"),
        ("b2", Some("b1"), "pb2"),
        ("b3", Some("b2"), "pb3"),
    ] {
        assert_eq!(groups[g].parent.as_deref(), parent, "{g}");
        assert_eq!(groups[g].policies, [policy], "{g}");
    }

    let verify = run(
        &env,
        &[
            "--output",
            "json",
            "verify",
            "m.csv",
            "--target-profile-template",
            "migrate-{account}",
        ],
    );
    verify.expect_code(0);
    assert_eq!(verify.json()["counts"]["ok"], ids.len() as u64);

    // Reruns: no mutating call.
    let before = env.sim.stats().mutating_calls();
    run(&env, &transfer).expect_code(0);
    run_as(&env, TARGET, &accept).expect_code(0);
    assert_eq!(
        env.sim.stats().mutating_calls(),
        before,
        "a rerun changed something"
    );
}

#[test]
fn select_attribute_finds_things_whose_type_does_not_search_it_across_pages() {
    let env = Env::unlimited();
    const N: u64 = 900;
    let base: i64 = 1_700_000_000;
    // Every third thing untyped (all attributes searchable), then `meter` (none
    // searchable) and `sensor` (site searchable), alternately.
    let kind = |i: u64| match i % 3 {
        0 => None,
        1 => Some("meter"),
        _ => Some("sensor"),
    };
    let site = |i: u64| {
        if i.is_multiple_of(4) {
            "north"
        } else {
            "south"
        }
    };
    let ids: Vec<String> = (0..N).map(|i| cert_id(2_000 + i)).collect();
    seed(
        &env,
        REGION,
        SOURCE,
        SeedAccount {
            thing_types: vec![
                SeedThingType {
                    name: "meter".into(),
                    ..Default::default()
                },
                SeedThingType {
                    name: "sensor".into(),
                    searchable_attributes: vec!["site".into()],
                    ..Default::default()
                },
            ],
            things: (0..N)
                .map(|i| SeedThing {
                    name: format!("dev-{i:04}"),
                    thing_type: kind(i).map(str::to_string),
                    attributes: BTreeMap::from([("site".into(), site(i).into())]),
                    ..Default::default()
                })
                .collect(),
            certificates: (0..N)
                .map(|i| SeedCertificate {
                    creation_date: Some((base + i as i64 * 60) as f64),
                    ..cert(&ids[i as usize], "ACTIVE", &[], &[&format!("dev-{i:04}")])
                })
                .collect(),
            ..Default::default()
        },
    );
    let expect = |keep: &dyn Fn(u64) -> bool| -> Vec<String> {
        let mut v: Vec<String> = (0..N)
            .filter(|i| keep(*i))
            .map(|i| ids[i as usize].clone())
            .collect();
        v.sort();
        v
    };
    let middle = "2023-11-14T23:53:20Z"; // base + 100 minutes
                                         // (name, flags, expected, ListThings calls: every page of what is listed)
    type Keep<'a> = Box<dyn Fn(u64) -> bool + 'a>;
    let cases: Vec<(&str, Vec<&str>, Keep, u64)> = vec![
        (
            "attribute alone",
            vec!["--attribute", "site=north"],
            Box::new(|i| site(i) == "north"),
            4,
        ),
        (
            "a type that does not search it",
            vec!["--thing-type", "meter", "--attribute", "site=north"],
            Box::new(|i| kind(i) == Some("meter") && site(i) == "north"),
            2,
        ),
        // AWS's filter cannot miss one here: it filters, one page
        (
            "a type that searches it",
            vec!["--thing-type", "sensor", "--attribute", "site=north"],
            Box::new(|i| kind(i) == Some("sensor") && site(i) == "north"),
            1,
        ),
        (
            "with a date",
            vec!["--attribute", "site=north", "--created-after", middle],
            Box::new(|i| site(i) == "north" && i >= 100),
            4,
        ),
    ];
    for (name, args, keep, pages) in cases {
        env.sim.reset_stats();
        let mut all = vec![
            "--output",
            "json",
            "select",
            "--target-account",
            TARGET,
            "--rate-scale",
            "100",
            "--out",
            "sel.csv",
            "--force",
        ];
        all.extend(&args);
        run(&env, &all).expect_code(0);
        let got: Vec<String> = read_csv(&env.path("sel.csv"))
            .into_iter()
            .map(|r| r["certificate_id"].clone())
            .collect();
        let want = expect(keep.as_ref());
        assert!(!want.is_empty(), "{name}");
        assert_eq!(got, want, "{name}");
        // Every page of the listing was read (250 things a page).
        assert_eq!(env.sim.stats().calls_of("ListThings"), pages, "{name}");
    }
    // A mistyped type is said, not taken for an empty selection.
    let typo = run(
        &env,
        &[
            "select",
            "--target-account",
            TARGET,
            "--thing-type",
            "sensr",
            "--attribute",
            "site=north",
            "--out",
            "typo.csv",
        ],
    );
    typo.expect_code(2);
    assert!(
        typo.stderr
            .contains("--thing-type sensr: no such thing type"),
        "{}",
        typo.stderr
    );
    assert!(!env.path("typo.csv").exists());
}

/// A certificate for registration: its PEM (id = SHA-256 of the DER), `ca` and `mode`.
fn registrable(n: u64, ca: Option<&str>, mode: &str) -> SeedCertificate {
    let (id, pem) = fake_certificate(n);
    SeedCertificate {
        id,
        status: "ACTIVE".into(),
        pem: Some(pem),
        ca_certificate_id: ca.map(str::to_string),
        certificate_mode: Some(mode.into()),
        ..Default::default()
    }
}

#[test]
fn each_registration_switch_position_is_planned_and_answered_per_certificate() {
    let ca_default = "d".repeat(64);
    let ca_sni = "e".repeat(64);
    // The canary first: registrable under every switch position.
    let certs = vec![
        registrable(70, Some(&ca_sni), "DEFAULT"),
        registrable(71, None, "SNI_ONLY"),
        registrable(72, Some(&ca_default), "DEFAULT"),
        registrable(73, None, "DEFAULT"),
    ];
    let ids: Vec<String> = certs.iter().map(|c| c.id.clone()).collect();
    let (ca_id, aws_id) = (ids[2].clone(), ids[3].clone());
    for (refuse_ca, refuse_aws) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut config = SimConfig::unlimited();
        config.register_refuses_default_ca = refuse_ca;
        config.register_refuses_aws_issued = refuse_aws;
        let env = Env::new(config);
        profiles(&env, REGION);
        seed(
            &env,
            REGION,
            SOURCE,
            SeedAccount {
                certificates: certs.clone(),
                ca_certificates: vec![
                    SeedCaCertificate {
                        id: ca_default.clone(),
                        ..Default::default()
                    },
                    SeedCaCertificate {
                        id: ca_sni.clone(),
                        certificate_mode: Some("SNI_ONLY".into()),
                        ..Default::default()
                    },
                ],
                role_aliases: vec!["fleet-credentials".into()],
                ..Default::default()
            },
        );
        let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
        env.manifest("m.csv", &rows);
        let position = format!("refuse CA in DEFAULT mode {refuse_ca}, AWS-issued {refuse_aws}");

        // The plan does not depend on the switches: it says what AWS may refuse.
        let plan = run(
            &env,
            &[
                "--output",
                "json",
                "plan",
                "m.csv",
                "--mode",
                "register",
                "--target-profile-template",
                "migrate-{account}",
                "--plan-out",
                "plan.csv",
            ],
        );
        plan.expect_code(0);
        let categories: BTreeMap<String, String> = read_csv(&env.path("plan.csv"))
            .into_iter()
            .map(|r| (r["certificate_id"].clone(), r["category"].clone()))
            .collect();
        assert_eq!(categories[&ids[0]], "registrable", "{position}");
        assert_eq!(categories[&ids[1]], "registrable", "{position}");
        assert_eq!(categories[&ca_id], "ca_in_default_mode", "{position}");
        assert_eq!(categories[&aws_id], "issued_by_aws_iot", "{position}");
        let json = plan.json();
        let warnings = json["warnings"].to_string();
        assert!(warnings.contains("fleet-credentials"), "{json}");
        assert!(warnings.contains("role aliases"), "{json}");

        // register: AWS's answer per certificate.
        let register = [
            "--output",
            "json",
            "register",
            "m.csv",
            "--target-profile-template",
            "migrate-{account}",
        ];
        let refused: Vec<&String> = [(refuse_ca, &ca_id), (refuse_aws, &aws_id)]
            .into_iter()
            .filter_map(|(on, id)| on.then_some(id))
            .collect();
        let r = run(&env, &register);
        r.expect_code(if refused.is_empty() { 0 } else { 3 });
        let failures: BTreeMap<String, BTreeMap<String, String>> = if refused.is_empty() {
            BTreeMap::new()
        } else {
            read_csv(&env.path("m.register-failures.csv"))
                .into_iter()
                .map(|r| (r["certificate_id"].clone(), r))
                .collect()
        };
        assert_eq!(failures.len(), refused.len(), "{position}: {failures:?}");
        for id in &refused {
            let row = &failures[*id];
            assert_eq!(row["error_code"], "InvalidRequestException", "{position}");
            assert!(
                row["message"].contains("cannot be registered in another account"),
                "{position}: {row:?}"
            );
        }
        let dump = env.state();
        for id in &ids {
            let there = dump.find_in(TARGET, REGION, id).is_some();
            assert_eq!(there, !refused.contains(&id), "{position}: {id}");
        }
        // A rerun registers nothing twice (and tries the refused ones only when asked).
        env.sim.reset_stats();
        run(&env, &register).expect_code(if refused.is_empty() { 0 } else { 3 });
        assert_eq!(
            env.sim.stats().calls_of("RegisterCertificateWithoutCA"),
            0,
            "{position}"
        );
    }
}

#[test]
fn a_china_region_run_carries_and_registers_with_aws_cn_arns() {
    const CN: &str = "cn-north-1";
    let env = Env::unlimited();
    profiles(&env, CN);
    let (id, pem) = fake_certificate(90);
    let (moved, _) = fake_certificate(91);
    seed(
        &env,
        CN,
        SOURCE,
        SeedAccount {
            policies: vec![SeedPolicy {
                name: "device".into(),
                document: Some(format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws-cn:iot:{CN}:{SOURCE}:client/*"}}]}}"#
                )),
            }],
            thing_groups: vec![group("zone", None, "device")],
            things: ["meter-r", "meter-t"]
                .iter()
                .map(|t| SeedThing {
                    name: t.to_string(),
                    groups: vec!["zone".into()],
                    ..Default::default()
                })
                .collect(),
            certificates: vec![
                SeedCertificate {
                    pem: Some(pem),
                    certificate_mode: Some("SNI_ONLY".into()),
                    ..cert(&id, "ACTIVE", &["device"], &["meter-r"])
                },
                cert(&moved, "ACTIVE", &["device"], &["meter-t"]),
            ],
            ..Default::default()
        },
    );
    env.manifest("r.csv", &[(id.clone(), TARGET)]);
    env.manifest("t.csv", &[(moved.clone(), TARGET)]);
    let with_region = |args: &[&str]| -> Vec<String> {
        ["--region", CN]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    };
    let register = with_region(&[
        "register",
        "r.csv",
        "--carry",
        "--target-profile-template",
        "migrate-{account}",
    ]);
    let refs: Vec<&str> = register.iter().map(String::as_str).collect();
    run(&env, &refs).expect_code(0);
    let mut transfer = with_region(&[
        "transfer",
        "t.csv",
        "--carry",
        "--accept-profile-template",
        "migrate-{account}",
        "--set-as-active",
    ]);
    transfer.extend(PREPARE.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = transfer.iter().map(String::as_str).collect();
    run(&env, &refs).expect_code(0);

    let dump = env.state();
    let target = account(&dump, TARGET, CN);
    for cid in [&id, &moved] {
        let c = target
            .certificates
            .iter()
            .find(|c| &c.id == cid)
            .unwrap_or_else(|| panic!("{cid} not in the target"));
        assert!(c.arn.starts_with("arn:aws-cn:iot:cn-north-1:"), "{}", c.arn);
        assert_eq!(c.policies, ["device"]);
        assert_eq!(c.things.len(), 1);
    }
    let zone = target
        .thing_groups
        .iter()
        .find(|g| g.name == "zone")
        .unwrap();
    assert_eq!(
        zone.policies,
        ["device"],
        "the group's policy attached by its aws-cn ARN"
    );
    let policy = &target.policies[0];
    assert!(
        policy
            .document
            .contains(&format!("arn:aws-cn:iot:{CN}:{TARGET}:client/*")),
        "{}",
        policy.document
    );
    // the ledgers name the ARNs the target holds
    for (ledger, outcome) in [
        ("r.register-ledger.jsonl", "registered"),
        ("t.ledger.jsonl", "transferred"),
    ] {
        let arn = ledger_events(&env.path(ledger))
            .into_iter()
            .find(|e| e["outcome"] == outcome)
            .map(|e| e["details"]["arn"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {outcome} in {ledger}"));
        assert!(arn.starts_with("arn:aws-cn:"), "{ledger}: {arn}");
    }
}

#[test]
fn exclusive_attachments_mqtt5_attributes_and_deprecated_types_are_carried_as_they_are() {
    let env = Env::unlimited();
    profiles(&env, REGION);
    let ids: Vec<String> = (0..2).map(|i| cert_id(500 + i)).collect();
    let mqtt5 = vec![
        PropagatingAttribute {
            user_property_key: Some("site".into()),
            thing_attribute: Some("site".into()),
            connection_attribute: None,
        },
        PropagatingAttribute {
            user_property_key: Some("client".into()),
            thing_attribute: None,
            connection_attribute: Some("iot:ClientId".into()),
        },
    ];
    let mut exclusive = cert(&ids[0], "ACTIVE", &[], &["solo"]);
    exclusive.exclusive = true;
    seed(
        &env,
        REGION,
        SOURCE,
        SeedAccount {
            thing_types: vec![
                SeedThingType {
                    name: "m5".into(),
                    mqtt5_propagating_attributes: mqtt5.clone(),
                    ..Default::default()
                },
                SeedThingType {
                    name: "legacy".into(),
                    ..Default::default()
                },
            ],
            things: vec![
                SeedThing {
                    name: "solo".into(),
                    thing_type: Some("m5".into()),
                    ..Default::default()
                },
                SeedThing {
                    name: "old-1".into(),
                    thing_type: Some("legacy".into()),
                    ..Default::default()
                },
            ],
            certificates: vec![exclusive, cert(&ids[1], "ACTIVE", &[], &["old-1"])],
            ..Default::default()
        },
    );
    // In the target, `legacy` exists deprecated: it takes no new things.
    seed(
        &env,
        REGION,
        TARGET,
        SeedAccount {
            thing_types: vec![SeedThingType {
                name: "legacy".into(),
                deprecated: true,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    env.manifest("m.csv", &rows);
    let mut transfer = vec!["transfer", "m.csv", "--carry", "--canary", "0"];
    transfer.extend(PREPARE);
    run(&env, &transfer).expect_code(0);
    let accept = run_as(
        &env,
        TARGET,
        &["accept", "m.csv", "--carry", "--set-as-active"],
    );
    accept.expect_code(3);

    let dump = env.state();
    let target = account(&dump, TARGET, REGION);
    let c = target.certificates.iter().find(|c| c.id == ids[0]).unwrap();
    assert_eq!(
        c.exclusive_thing.as_deref(),
        Some("solo"),
        "still exclusive"
    );
    let m5 = target.thing_types.iter().find(|t| t.name == "m5").unwrap();
    assert_eq!(m5.mqtt5_propagating_attributes, mqtt5);

    // The deprecated type is a conflict naming it; nothing was created with it.
    let failures = read_csv(&env.path("m.accept-failures.csv"));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["certificate_id"], ids[1]);
    assert_eq!(failures[0]["error_code"], "CarryConflict");
    assert!(
        failures[0]["message"].contains("thing type `legacy`")
            && failures[0]["message"].contains("deprecated"),
        "{:?}",
        failures[0]
    );
    assert!(target.things.iter().all(|t| t.name != "old-1"));
    assert_eq!(env.sim.stats().calls_of("CreateThing"), 1, "only `solo`");
}

#[test]
fn the_limit_message_names_the_limit_of_a_thing_group() {
    let mut config = SimConfig::unlimited();
    config.policies_per_group = 2;
    let env = Env::new(config);
    profiles(&env, REGION);
    let id = cert_id(600);
    seed(
        &env,
        REGION,
        SOURCE,
        SeedAccount {
            policies: ["p1", "p2", "p3"]
                .iter()
                .map(|p| SeedPolicy {
                    name: p.to_string(),
                    document: None,
                })
                .collect(),
            thing_groups: vec![SeedThingGroup {
                name: "zone".into(),
                policies: vec!["p1".into(), "p2".into()],
                ..Default::default()
            }],
            things: vec![SeedThing {
                name: "t".into(),
                groups: vec!["zone".into()],
                ..Default::default()
            }],
            certificates: vec![cert(&id, "ACTIVE", &[], &["t"])],
            ..Default::default()
        },
    );
    // The target's `zone` holds two other policies already: the third is one too many.
    seed(
        &env,
        REGION,
        TARGET,
        SeedAccount {
            policies: ["q1", "q2"]
                .iter()
                .map(|p| SeedPolicy {
                    name: p.to_string(),
                    document: None,
                })
                .collect(),
            thing_groups: vec![SeedThingGroup {
                name: "zone".into(),
                policies: vec!["q1".into(), "q2".into()],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    env.manifest("m.csv", &[(id.clone(), TARGET)]);
    let mut transfer = vec!["transfer", "m.csv", "--carry"];
    transfer.extend(PREPARE);
    run(&env, &transfer).expect_code(0);
    let accept = run_as(&env, TARGET, &["accept", "m.csv", "--carry"]);
    accept.expect_code(3);
    let failures = read_csv(&env.path("m.accept-failures.csv"));
    assert_eq!(failures[0]["error_code"], "LimitExceededException");
    let message = &failures[0]["message"];
    assert!(
        message.contains("thing group `zone`") && message.contains("policies per thing group"),
        "{message}"
    );
    assert!(!message.contains("per certificate"), "{message}");
}

#[test]
fn verify_compares_direct_memberships_not_the_parents_aws_lists() {
    let env = Env::unlimited();
    profiles(&env, REGION);
    let id = cert_id(700);
    let groups = || {
        vec![
            SeedThingGroup {
                name: "site".into(),
                ..Default::default()
            },
            SeedThingGroup {
                name: "floor".into(),
                parent: Some("site".into()),
                ..Default::default()
            },
        ]
    };
    let thing = |group: &str| SeedThing {
        name: "t".into(),
        groups: vec![group.into()],
        ..Default::default()
    };
    // In the source the thing is in `site` itself; in the target it exists already, one
    // level down, in `floor`: AWS lists `site` for it there too.
    seed(
        &env,
        REGION,
        SOURCE,
        SeedAccount {
            thing_groups: groups(),
            things: vec![thing("site")],
            certificates: vec![cert(&id, "ACTIVE", &[], &["t"])],
            ..Default::default()
        },
    );
    seed(
        &env,
        REGION,
        TARGET,
        SeedAccount {
            thing_groups: groups(),
            things: vec![thing("floor")],
            ..Default::default()
        },
    );
    env.manifest("m.csv", &[(id.clone(), TARGET)]);
    let mut transfer = vec!["transfer", "m.csv", "--carry"];
    transfer.extend(PREPARE);
    run(&env, &transfer).expect_code(0);
    run_as(
        &env,
        TARGET,
        &["accept", "m.csv", "--carry", "--set-as-active"],
    )
    .expect_code(0);
    let verify = run(
        &env,
        &[
            "--output",
            "json",
            "verify",
            "m.csv",
            "--target-profile-template",
            "migrate-{account}",
        ],
    );
    verify.expect_code(3);
    let json = verify.json();
    let row = &json["not_ok"][0];
    assert_eq!(row["category"], "missing_group", "{json}");
    assert_eq!(
        row["detail"], "thing t is in a group below site, not directly in site",
        "{json}"
    );
}
