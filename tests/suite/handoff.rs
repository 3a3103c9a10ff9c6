//! Moving the devices (issue 26): `handoff` sends each certificate's things a job with their
//! target's endpoint, the simulated devices answer as their behaviour says, and
//! `retire --require-connected` retires only what arrived.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;
use iot_sim::{
    fake_certificate, DeviceBehaviour, DeviceControl, DeviceSetting, Seed, SeedAccount,
    SeedCertificate, SeedDevices, SeedIndexing, SeedPolicy, SeedThing, SimConfig,
};

pub(crate) const LIMIT: Duration = Duration::from_secs(60);

pub(crate) const DOCUMENT: &str = r#"{"operation":"iot-cert-migrate-handoff","endpoint":"{endpoint}","account":"{account}","region":"{region}"}"#;

/// What the device of thing `i` does (mixed: 1 in 6 each ignores, rejects, is offline).
pub(crate) fn behaviour_of(i: usize) -> DeviceBehaviour {
    match i % 6 {
        1 => DeviceBehaviour::Ignore,
        2 => DeviceBehaviour::Reject,
        3 => DeviceBehaviour::Offline,
        _ => DeviceBehaviour::Follow,
    }
}

pub(crate) fn target_of(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        TARGET
    } else {
        TARGET2
    }
}

/// `n` ACTIVE certificates, each with policy `device` (iot:Connect) and its own thing
/// `dev-i`, whose simulated device behaves as [`behaviour_of`] says; two things outside the
/// manifest (`bystander-*`) with devices too; connectivity indexing on in both targets.
/// Rows alternate between TARGET and TARGET2. Returns the ids.
pub(crate) fn fleet(env: &Env, n: usize, indexing_in_targets: bool) -> Vec<String> {
    let certs: Vec<(String, String)> = (0..n as u64 + 2).map(fake_certificate).collect();
    let name = |i: usize| {
        if i < n {
            format!("dev-{i}")
        } else {
            format!("bystander-{i}")
        }
    };
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
            things: (0..n + 2)
                .map(|i| SeedThing {
                    name: name(i),
                    ..Default::default()
                })
                .collect(),
            certificates: certs
                .iter()
                .enumerate()
                .map(|(i, (id, pem))| SeedCertificate {
                    pem: Some(pem.clone()),
                    ..cert(id, "ACTIVE", &["device"], &[&name(i)])
                })
                .collect(),
            devices: Some(SeedDevices {
                default: Some(DeviceSetting {
                    delay_ms: Some(20),
                    ..DeviceSetting::of(DeviceBehaviour::Follow)
                }),
                things: (0..n)
                    .filter(|i| behaviour_of(*i) != DeviceBehaviour::Follow)
                    .map(|i| (name(i), DeviceSetting::of(behaviour_of(i))))
                    .collect(),
            }),
            ..Default::default()
        },
    );
    for t in [TARGET, TARGET2] {
        accounts.insert(
            t.to_string(),
            SeedAccount {
                indexing: Some(SeedIndexing {
                    thing_indexing_mode: Some("REGISTRY".into()),
                    thing_connectivity_indexing_mode: Some(
                        if indexing_in_targets { "STATUS" } else { "OFF" }.into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
    }
    env.sim
        .seed(Seed {
            region: REGION.to_string(),
            accounts,
        })
        .expect("seed accepted");
    let ids: Vec<String> = certs.into_iter().take(n).map(|(id, _)| id).collect();
    let rows: Vec<(String, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), target_of(i)))
        .collect();
    env.manifest("m.csv", &rows);
    env.write("doc.json", DOCUMENT);
    env.write(
        "aws-config",
        &[TARGET, TARGET2]
            .iter()
            .map(|a| format!("[profile migrate-{a}]\naws_access_key_id = {a}\naws_secret_access_key = x\nregion = {REGION}\n\n"))
            .collect::<String>(),
    );
    ids
}

/// The binary as the source, with the targets' profiles available.
pub(crate) fn run(env: &Env, args: &[&str]) -> Run {
    Run::from(
        env.cmd(args)
            .env("AWS_CONFIG_FILE", env.path("aws-config"))
            .output()
            .expect("binary runs"),
    )
}

pub(crate) fn with_targets<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut a = args.to_vec();
    a.extend(["--target-profile-template", "migrate-{account}"]);
    a
}

/// Every execution of the source's jobs: thing -> (job document, status), each thing's
/// executions counted.
pub(crate) fn executions(env: &Env) -> (BTreeMap<String, Vec<(String, String)>>, usize) {
    let state = env.state();
    let source = state
        .accounts
        .iter()
        .find(|a| a.account == SOURCE && a.region == REGION)
        .expect("the source account");
    let mut by_thing: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for job in &source.jobs {
        for (thing, e) in &job.executions {
            by_thing
                .entry(thing.clone())
                .or_default()
                .push((job.document.clone(), e.status.clone()));
        }
    }
    (by_thing, source.jobs.len())
}

fn endpoint_of(account: &str) -> String {
    iot_sim::world::data_endpoint(account, REGION, "iot:Data-ATS").unwrap()
}

#[test]
fn handoff_reaches_exactly_the_manifest_things_and_retire_waits_for_each_device() {
    let env = Env::new(SimConfig::unlimited());
    let n = 60;
    let ids = fleet(&env, n, true);
    run(&env, &with_targets(&["register", "m.csv", "--carry"])).expect_code(0);

    // A document with an unknown placeholder: exit 2 before any AWS call.
    env.write("bad.json", r#"{"endpoint":"{endpiont}"}"#);
    let before = env.sim.stats().total_calls();
    let bad = run(
        &env,
        &with_targets(&["handoff", "m.csv", "--document", "bad.json"]),
    );
    bad.expect_code(2);
    assert!(bad.stderr.contains("endpiont"), "{}", bad.stderr);
    assert_eq!(env.sim.stats().total_calls(), before, "a call was made");

    let args = with_targets(&[
        "--output",
        "json",
        "handoff",
        "m.csv",
        "--document",
        "doc.json",
        "--wave-size",
        "8",
    ]);
    let first = run(&env, &args);
    first.expect_code(0);
    assert_eq!(
        first.json()["counts"]["handed_off"],
        n as u64,
        "{}",
        first.stdout
    );
    // status and report read the handoff ledger beside the register ledger: its own line
    // counts every certificate handed off, and the whole stays registered.
    let status = run(&env, &["--output", "json", "status", "m.csv"]);
    status.expect_code(0);
    let ledgers = status.json()["ledgers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let handoff = ledgers
        .iter()
        .find(|l| l["kind"] == "handoff")
        .unwrap_or_else(|| panic!("no handoff ledger in status: {}", status.stdout));
    assert_eq!(
        handoff["counts"]["handed_off"], n as u64,
        "{}",
        status.stdout
    );
    assert_eq!(
        status.json()["counts"]["registered"],
        n as u64,
        "{}",
        status.stdout
    );
    let report = run(&env, &["--output", "json", "report", "m.csv"]);
    report.expect_code(0);
    assert!(
        report.stdout.contains("\"handoff\""),
        "report does not name the handoff ledger: {}",
        report.stdout
    );

    // 30 rows per target in waves of 8: 4 jobs each.
    let (by_thing, jobs) = executions(&env);
    assert_eq!(jobs, 8);
    for i in 0..n {
        let thing = format!("dev-{i}");
        let execs = by_thing
            .get(&thing)
            .unwrap_or_else(|| panic!("{thing} has no execution"));
        assert_eq!(execs.len(), 1, "{thing}: {execs:?}");
        let doc: serde_json::Value = serde_json::from_str(&execs[0].0).unwrap();
        assert_eq!(
            doc["endpoint"],
            endpoint_of(target_of(i)).as_str(),
            "{thing}"
        );
        assert_eq!(doc["account"], target_of(i));
    }
    assert!(
        by_thing.keys().all(|t| t.starts_with("dev-")),
        "a thing outside the manifest got an execution: {:?}",
        by_thing.keys().collect::<Vec<_>>()
    );
    // A rerun sends nothing again.
    let create_jobs = env.sim.stats().calls_of("CreateJob");
    run(&env, &args).expect_code(0);
    assert_eq!(env.sim.stats().calls_of("CreateJob"), create_jobs);

    // The followers arrive in their targets.
    let followers: Vec<usize> = (0..n)
        .filter(|i| behaviour_of(*i) == DeviceBehaviour::Follow)
        .collect();
    wait_until("every follower connected in its target", LIMIT, || {
        let devices = env.sim.devices();
        followers.iter().all(|i| {
            devices.iter().any(|d| {
                d.thing == format!("dev-{i}") && d.connected_to.as_deref() == Some(target_of(*i))
            })
        })
    });

    let retire = with_targets(&["retire", "m.csv", "--deactivate", "--require-connected"]);
    let waiting = run(&env, &retire);
    waiting.expect_code(4);
    let source_status = |id: &str| {
        env.state()
            .find_in(SOURCE, REGION, id)
            .map(|c| c.status.clone())
    };
    for (i, id) in ids.iter().enumerate() {
        let want = if behaviour_of(i) == DeviceBehaviour::Follow {
            "INACTIVE"
        } else {
            "ACTIVE"
        };
        assert_eq!(source_status(id).as_deref(), Some(want), "dev-{i}");
        if want == "ACTIVE" {
            assert!(
                waiting.stderr.contains(&format!("dev-{i} ")),
                "dev-{i} not named as waiting: {}",
                waiting.stderr
            );
        }
    }
    // Moved without a moment offline.
    for d in env.sim.devices() {
        let i: usize = match d.thing.strip_prefix("dev-") {
            Some(i) => i.parse().unwrap(),
            None => continue,
        };
        if behaviour_of(i) == DeviceBehaviour::Follow {
            assert_eq!(d.seconds_offline, 0.0, "{}", d.thing);
        }
    }

    // An offline device comes online: it learns its job, follows, and the next retire takes
    // its certificate (and only that one).
    let late = (0..n)
        .find(|i| behaviour_of(*i) == DeviceBehaviour::Offline)
        .unwrap();
    env.sim
        .set_devices(&DeviceControl {
            account: SOURCE.into(),
            region: REGION.into(),
            default: None,
            things: BTreeMap::from([(
                format!("dev-{late}"),
                DeviceSetting {
                    delay_ms: Some(20),
                    ..DeviceSetting::of(DeviceBehaviour::Follow)
                },
            )]),
        })
        .unwrap();
    wait_until("the late device connected in its target", LIMIT, || {
        env.sim.devices().iter().any(|d| {
            d.thing == format!("dev-{late}") && d.connected_to.as_deref() == Some(target_of(late))
        })
    });
    run(&env, &retire).expect_code(4);
    for (i, id) in ids.iter().enumerate() {
        let retired = behaviour_of(i) == DeviceBehaviour::Follow || i == late;
        assert_eq!(
            source_status(id).as_deref(),
            Some(if retired { "INACTIVE" } else { "ACTIVE" }),
            "dev-{i}"
        );
    }

    // Cleanup keeps the waves whose devices have not answered, removes the others.
    let cleanup = run(
        &env,
        &with_targets(&["handoff", "m.csv", "--cleanup", "--wave-size", "8"]),
    );
    cleanup.expect_code(4);
    assert!(cleanup.stdout.contains("kept"), "{}", cleanup.stdout);
}

#[test]
fn lost_replies_and_sigkill_during_handoff_never_send_a_second_job() {
    use iot_sim::FaultKind;
    let env = Env::new(SimConfig {
        latency: Duration::from_millis(3),
        latency_jitter: Duration::from_millis(3),
        ..SimConfig::unlimited()
    });
    let n = 24;
    fleet(&env, n, true);
    let ledger = env.path("m.handoff-ledger.jsonl");
    let args = with_targets(&[
        "handoff",
        "m.csv",
        "--document",
        "doc.json",
        "--wave-size",
        "4",
        "--concurrency",
        "4",
    ]);
    env.sim.set_faults(vec![
        (FaultKind::LostReply, 0.25),
        (FaultKind::Duplicate, 0.1),
    ]);
    let mut rng = rng("handoff-sigkill");
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
        LIMIT,
    );
    assert!(kills >= 2, "only {kills} runs were killed mid-way");
    let mut last = run(&env, &args);
    for _ in 0..3 {
        if last.code != 4 {
            break;
        }
        last = run(&env, &args);
    }
    env.sim.set_faults(vec![]);
    if last.code == 4 {
        last = run(&env, &args);
    }
    last.expect_code(0);
    let (by_thing, jobs) = executions(&env);
    // 12 rows per target in waves of 4: 3 jobs each, however often CreateJob was sent.
    assert_eq!(jobs, 6);
    for i in 0..n {
        assert_eq!(
            by_thing.get(&format!("dev-{i}")).map(Vec::len),
            Some(1),
            "dev-{i}"
        );
    }
    let unknown = ledger_events(&ledger)
        .into_iter()
        .filter(|e| e["outcome"] == "unknown")
        .count();
    assert!(
        unknown > 0,
        "no lost reply hit a mutating call: the test proves nothing"
    );
}

#[test]
fn retire_require_connected_refuses_before_any_change_without_connectivity_indexing() {
    let env = Env::new(SimConfig::unlimited());
    let ids = fleet(&env, 4, false);
    run(&env, &with_targets(&["register", "m.csv"])).expect_code(0);
    let out = run(
        &env,
        &with_targets(&["retire", "m.csv", "--deactivate", "--require-connected"]),
    );
    out.expect_code(2);
    assert!(
        out.stderr.contains("thingConnectivityIndexingMode"),
        "{}",
        out.stderr
    );
    assert_eq!(env.sim.stats().calls_of("UpdateCertificate"), 0);
    for id in &ids {
        assert_eq!(
            env.state()
                .find_in(SOURCE, REGION, id)
                .map(|c| c.status.clone())
                .as_deref(),
            Some("ACTIVE")
        );
    }
}

#[test]
fn transfer_require_handoff_transfers_only_the_acknowledged_certificates() {
    let env = Env::new(SimConfig::unlimited());
    let n = 12;
    let ids = fleet(&env, n, true);
    run(
        &env,
        &with_targets(&["handoff", "m.csv", "--document", "doc.json"]),
    )
    .expect_code(0);
    // Followers acknowledge; the others never do.
    let followers: Vec<usize> = (0..n)
        .filter(|i| behaviour_of(*i) == DeviceBehaviour::Follow)
        .collect();
    wait_until("every follower's execution SUCCEEDED", LIMIT, || {
        let (by_thing, _) = executions(&env);
        followers.iter().all(|i| {
            by_thing
                .get(&format!("dev-{i}"))
                .is_some_and(|e| e.iter().any(|(_, s)| s == "SUCCEEDED"))
        })
    });
    let out = run(
        &env,
        &[
            "transfer",
            "m.csv",
            "--require-handoff",
            "--deactivate",
            "--detach-policies",
            "--detach-things",
        ],
    );
    out.expect_code(4);
    for (i, id) in ids.iter().enumerate() {
        let status = env
            .state()
            .find_in(SOURCE, REGION, id)
            .map(|c| c.status.clone());
        if behaviour_of(i) == DeviceBehaviour::Follow {
            assert_eq!(status.as_deref(), Some("PENDING_TRANSFER"), "dev-{i}");
        } else {
            assert_eq!(status.as_deref(), Some("ACTIVE"), "dev-{i}");
            assert!(out.stderr.contains(&format!("dev-{i} ")), "{}", out.stderr);
        }
    }
}

/// The verify CSV's rows by certificate id: (category, things, handoff_execution, connected,
/// connected_since).
pub(crate) fn verify_csv(env: &Env, file: &str) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(env.path(file)).expect("verify wrote its CSV");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("certificate_id,target_account,category,detail,things,handoff_execution,connected,connected_since")
    );
    let body = lines.collect::<Vec<_>>().join("\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes());
    let mut rows = BTreeMap::new();
    for r in reader.records() {
        let r = r.expect("a CSV row");
        rows.insert(
            r[0].to_string(),
            [2, 4, 5, 6, 7].iter().map(|i| r[*i].to_string()).collect(),
        );
    }
    rows
}

#[test]
fn verify_require_connected_is_ok_only_once_every_device_arrived() {
    let env = Env::new(SimConfig::unlimited());
    let n = 12;
    let ids = fleet(&env, n, true);
    run(&env, &with_targets(&["register", "m.csv", "--carry"])).expect_code(0);
    let verify = |out: &str| {
        run(
            &env,
            &with_targets(&[
                "--output",
                "json",
                "verify",
                "m.csv",
                "--require-connected",
                "--out",
                out,
            ]),
        )
    };

    // Registered, devices still on the source: not connected in the target, decided before
    // still_in_source; no handoff ledger yet, so no execution column.
    let before = verify("before.csv");
    before.expect_code(3);
    assert_eq!(
        before.json()["counts"]["not_connected"],
        n as u64,
        "{}",
        before.stdout
    );
    let rows = verify_csv(&env, "before.csv");
    for (i, id) in ids.iter().enumerate() {
        let row = &rows[id];
        assert_eq!(row[0], "not_connected", "dev-{i}");
        assert_eq!(row[1], format!("dev-{i}"));
        assert_eq!(row[2], "", "dev-{i}: no handoff was asked about");
        assert_eq!(row[3], "false", "dev-{i}");
    }

    run(
        &env,
        &with_targets(&["handoff", "m.csv", "--document", "doc.json"]),
    )
    .expect_code(0);
    wait_until("every device that answers has answered", LIMIT, || {
        let (by_thing, _) = executions(&env);
        (0..n).all(|i| match behaviour_of(i) {
            DeviceBehaviour::Follow => by_thing[&format!("dev-{i}")]
                .iter()
                .any(|(_, s)| s == "SUCCEEDED"),
            DeviceBehaviour::Reject => by_thing[&format!("dev-{i}")]
                .iter()
                .any(|(_, s)| s == "REJECTED"),
            _ => true,
        }) && {
            let devices = env.sim.devices();
            (0..n)
                .filter(|i| behaviour_of(*i) == DeviceBehaviour::Follow)
                .all(|i| {
                    devices.iter().any(|d| {
                        d.thing == format!("dev-{i}")
                            && d.connected_to.as_deref() == Some(target_of(i))
                    })
                })
        }
    });

    // Followers connected in the target, the source's copy still ACTIVE: still_in_source,
    // with their execution and since when they are connected; the others not_connected.
    let handed = verify("handed.csv");
    handed.expect_code(3);
    let rows = verify_csv(&env, "handed.csv");
    for (i, id) in ids.iter().enumerate() {
        let row = &rows[id];
        let (category, execution, connected) = match behaviour_of(i) {
            DeviceBehaviour::Follow => ("still_in_source", "SUCCEEDED", "true"),
            DeviceBehaviour::Reject => ("not_connected", "REJECTED", "false"),
            _ => ("not_connected", "QUEUED", "false"),
        };
        assert_eq!(
            (row[0].as_str(), row[2].as_str(), row[3].as_str()),
            (category, execution, connected),
            "dev-{i}: {row:?}"
        );
        if connected == "true" {
            assert!(
                humantime::parse_rfc3339(&row[4]).is_ok(),
                "dev-{i}: connected since {:?}",
                row[4]
            );
        }
    }
    let listed = &handed.json()["not_ok"];
    let follower = ids[0].as_str();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["certificate_id"] == follower)
        .expect("dev-0 listed");
    assert_eq!(entry["devices"][0]["handoff_execution"], "SUCCEEDED");
    assert_eq!(entry["devices"][0]["connected"], true);

    // Retire what arrived: those are ok; the rest stays not_connected, exit 3.
    run(
        &env,
        &with_targets(&["retire", "m.csv", "--deactivate", "--require-connected"]),
    )
    .expect_code(4);
    let retired = verify("retired.csv");
    retired.expect_code(3);
    let followers = (0..n)
        .filter(|i| behaviour_of(*i) == DeviceBehaviour::Follow)
        .count() as u64;
    assert_eq!(
        retired.json()["counts"]["ok"],
        followers,
        "{}",
        retired.stdout
    );
    assert_eq!(
        retired.json()["counts"]["not_connected"],
        n as u64 - followers,
        "{}",
        retired.stdout
    );

    // The offline devices come online and follow: once retired they are ok too.
    let offline: Vec<usize> = (0..n)
        .filter(|i| behaviour_of(*i) == DeviceBehaviour::Offline)
        .collect();
    env.sim
        .set_devices(&DeviceControl {
            account: SOURCE.into(),
            region: REGION.into(),
            default: None,
            things: offline
                .iter()
                .map(|i| {
                    (
                        format!("dev-{i}"),
                        DeviceSetting {
                            delay_ms: Some(20),
                            ..DeviceSetting::of(DeviceBehaviour::Follow)
                        },
                    )
                })
                .collect(),
        })
        .unwrap();
    wait_until("the late devices connected in their targets", LIMIT, || {
        let devices = env.sim.devices();
        offline.iter().all(|i| {
            devices.iter().any(|d| {
                d.thing == format!("dev-{i}") && d.connected_to.as_deref() == Some(target_of(*i))
            })
        })
    });
    run(
        &env,
        &with_targets(&["retire", "m.csv", "--deactivate", "--require-connected"]),
    )
    .expect_code(4);
    let later = verify("later.csv");
    later.expect_code(3);
    let arrived = followers + offline.len() as u64;
    assert_eq!(later.json()["counts"]["ok"], arrived, "{}", later.stdout);

    // Exit 0 once every certificate is ok: the manifest of the devices that arrived.
    let rows: Vec<(String, &str)> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            matches!(
                behaviour_of(*i),
                DeviceBehaviour::Follow | DeviceBehaviour::Offline
            )
        })
        .map(|(i, id)| (id.clone(), target_of(i)))
        .collect();
    env.manifest("arrived.csv", &rows);
    let all = run(
        &env,
        &with_targets(&[
            "--output",
            "json",
            "verify",
            "arrived.csv",
            "--require-connected",
            "--from-ledger",
            "m.register-ledger.jsonl",
        ]),
    );
    all.expect_code(0);
    assert_eq!(all.json()["counts"]["ok"], arrived, "{}", all.stdout);
}

#[test]
fn verify_require_connected_refuses_in_one_line_before_anything_without_connectivity_indexing() {
    let env = Env::new(SimConfig::unlimited());
    fleet(&env, 4, false);
    run(&env, &with_targets(&["register", "m.csv"])).expect_code(0);
    let describes = env.sim.stats().calls_of("DescribeCertificate");
    let out = run(
        &env,
        &with_targets(&["verify", "m.csv", "--require-connected"]),
    );
    out.expect_code(2);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("thingConnectivityIndexingMode=STATUS") && lines[0].contains(TARGET),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.sim.stats().calls_of("DescribeCertificate"),
        describes,
        "verify judged a certificate"
    );
    assert_eq!(env.sim.stats().calls_of("GetThingConnectivityData"), 0);
    // Without the flag, verify runs as before.
    run(&env, &with_targets(&["verify", "m.csv"])).expect_code(3);
}
