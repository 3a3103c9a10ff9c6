//! Seeing the devices arrive from `status --devices` and `report --devices` (issue 26):
//! after `handoff`, each certificate's thing with its handoff execution in the source and
//! its device's connection in the target, the same lookup `verify` makes; nothing asked of
//! AWS without `--devices`; a target without connectivity indexing refused in one line
//! before any certificate is read.

use std::collections::{BTreeMap, BTreeSet};

use crate::handoff::{
    behaviour_of, executions, fleet, run, target_of, verify_csv, with_targets, LIMIT,
};
use crate::harness::*;
use iot_sim::{DeviceBehaviour, SimConfig};

/// Waits until every device that answers jobs has answered, and every follower is connected
/// in its target.
fn settled(env: &Env, n: usize) {
    wait_until("every device that answers has answered", LIMIT, || {
        let (by_thing, _) = executions(env);
        let answered = (0..n).all(|i| {
            let has = |status: &str| {
                by_thing
                    .get(&format!("dev-{i}"))
                    .is_some_and(|e| e.iter().any(|(_, s)| s == status))
            };
            match behaviour_of(i) {
                DeviceBehaviour::Follow => has("SUCCEEDED"),
                DeviceBehaviour::Reject => has("REJECTED"),
                _ => true,
            }
        });
        let devices = env.sim.devices();
        answered
            && (0..n)
                .filter(|i| behaviour_of(*i) == DeviceBehaviour::Follow)
                .all(|i| {
                    devices.iter().any(|d| {
                        d.thing == format!("dev-{i}")
                            && d.connected_to.as_deref() == Some(target_of(i))
                    })
                })
    });
}

/// What the device of `dev-i` shows once settled: its execution and whether it is connected.
fn expected(i: usize) -> (&'static str, bool) {
    match behaviour_of(i) {
        DeviceBehaviour::Follow => ("SUCCEEDED", true),
        DeviceBehaviour::Reject => ("REJECTED", false),
        // Ignore never reads its job; offline never gets it.
        _ => ("QUEUED", false),
    }
}

/// The `devices` object of a JSON output, checked record by record against what each
/// device did; returns the ids whose devices have not arrived.
fn check_records(devices: &serde_json::Value, ids: &[String]) -> BTreeSet<String> {
    let records = devices["records"].as_array().expect("records");
    assert_eq!(records.len(), ids.len(), "{devices}");
    assert_eq!(devices["records_truncated"], false);
    let mut not_arrived = BTreeSet::new();
    for (i, (id, r)) in ids.iter().zip(records).enumerate() {
        assert_eq!(r["certificate_id"], id.as_str(), "manifest order");
        assert_eq!(r["target_account"], target_of(i));
        let (execution, connected) = expected(i);
        let d = &r["devices"].as_array().expect("devices")[..];
        assert_eq!(d.len(), 1, "dev-{i}: {r}");
        assert_eq!(d[0]["thing"], format!("dev-{i}"));
        assert_eq!(d[0]["handoff_execution"], execution, "dev-{i}: {r}");
        assert_eq!(d[0]["connected"], connected, "dev-{i}: {r}");
        if connected {
            assert_eq!(r["category"], "connected", "dev-{i}: {r}");
            let since = d[0]["connected_since"].as_str().expect("since when");
            assert!(humantime::parse_rfc3339(since).is_ok(), "dev-{i}: {since}");
        } else {
            assert_eq!(r["category"], "not_connected", "dev-{i}: {r}");
            not_arrived.insert(id.clone());
        }
    }
    not_arrived
}

#[test]
fn status_and_report_devices_show_each_devices_execution_and_connection_as_verify_does() {
    let env = Env::new(SimConfig::unlimited());
    let n = 12;
    let ids = fleet(&env, n, true);
    run(&env, &with_targets(&["register", "m.csv", "--carry"])).expect_code(0);
    let followers = (0..n)
        .filter(|i| behaviour_of(*i) == DeviceBehaviour::Follow)
        .count() as u64;

    // Before the handoff: no execution is asked about (said so), no device in its target.
    let before = run(
        &env,
        &with_targets(&["--output", "json", "status", "m.csv", "--devices"]),
    );
    before.expect_code(0);
    let devices = &before.json()["devices"];
    assert_eq!(devices["handoff"], serde_json::Value::Null, "{devices}");
    assert_eq!(devices["counts"]["not_connected"], n as u64, "{devices}");
    assert!(devices["records"][0]["devices"][0]
        .get("handoff_execution")
        .is_none());
    let text = run(&env, &with_targets(&["status", "m.csv", "--devices"]));
    text.expect_code(0);
    assert!(text.stdout.contains("handoff: not run"), "{}", text.stdout);

    run(
        &env,
        &with_targets(&["handoff", "m.csv", "--document", "doc.json"]),
    )
    .expect_code(0);
    settled(&env, n);

    // Without --devices: nothing is asked of AWS, and nothing about devices is said.
    let calls = env.sim.stats().total_calls();
    let offline = run(&env, &["--output", "json", "status", "m.csv"]);
    offline.expect_code(0);
    assert!(
        offline.json().get("devices").is_none(),
        "{}",
        offline.stdout
    );
    run(&env, &["report", "m.csv", "--html", "plain.html"]).expect_code(0);
    let report_json = run(&env, &["--output", "json", "report", "m.csv"]);
    report_json.expect_code(0);
    assert!(report_json.json().get("devices").is_none());
    assert!(!std::fs::read_to_string(env.path("plain.html"))
        .unwrap()
        .contains("id=\"devices\""));
    assert_eq!(
        env.sim.stats().total_calls(),
        calls,
        "status or report called AWS without --devices"
    );

    // status --devices, JSON: every certificate with its device's execution and connection.
    let status = run(
        &env,
        &with_targets(&["--output", "json", "status", "m.csv", "--devices"]),
    );
    status.expect_code(0);
    let devices = &status.json()["devices"];
    assert_eq!(devices["certificates"], n as u64);
    let counts = &devices["counts"];
    assert_eq!(counts["connected"], followers, "{devices}");
    assert_eq!(counts["not_connected"], n as u64 - followers, "{devices}");
    assert_eq!(
        (counts["no_thing"].as_u64(), counts["unknown"].as_u64()),
        (Some(0), Some(0))
    );
    let mut by_execution: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..n {
        *by_execution.entry(expected(i).0.to_string()).or_default() += 1;
    }
    let executions: BTreeMap<String, u64> =
        serde_json::from_value(devices["handoff"]["executions"].clone()).unwrap();
    assert_eq!(executions, by_execution, "{devices}");
    let not_arrived = check_records(devices, &ids);
    // The ledgers' counts are still there, unchanged by --devices.
    assert_eq!(status.json()["counts"], offline.json()["counts"]);

    // The same certificates verify --require-connected reports as not connected.
    run(
        &env,
        &with_targets(&["verify", "m.csv", "--require-connected", "--out", "v.csv"]),
    )
    .expect_code(3);
    let verify_not_connected: BTreeSet<String> = verify_csv(&env, "v.csv")
        .into_iter()
        .filter(|(_, row)| row[0] == "not_connected")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(not_arrived, verify_not_connected);

    // status --devices, text: the counts, and the certificates not arrived, each with its
    // device; the followers are not listed.
    let text = run(
        &env,
        &with_targets(&["status", "m.csv", "--devices", "--devices-out", "d.csv"]),
    );
    text.expect_code(0);
    // --devices-out: every certificate, in manifest order, its device's columns as verify's.
    let rows = read_csv(&env.path("d.csv"));
    assert_eq!(rows.len(), n);
    for (i, (id, row)) in ids.iter().zip(&rows).enumerate() {
        let (execution, connected) = expected(i);
        assert_eq!(row["certificate_id"], *id);
        assert_eq!(row["things"], format!("dev-{i}"));
        assert_eq!(row["handoff_execution"], execution, "dev-{i}");
        assert_eq!(row["connected"], connected.to_string(), "dev-{i}");
        assert_eq!(row["category"] != "connected", not_arrived.contains(id));
    }
    assert!(
        text.stdout.contains(&format!(
            "connected {followers}  not connected {}  no thing 0  unknown 0",
            n as u64 - followers
        )),
        "{}",
        text.stdout
    );
    for (status, count) in &by_execution {
        assert!(
            text.stdout.contains(&format!("{status} {count}")),
            "{status}: {}",
            text.stdout
        );
    }
    let listing = &text.stdout[text.stdout.find("not arrived:").expect("a listing")..];
    for (i, id) in ids.iter().enumerate() {
        if not_arrived.contains(id) {
            let line = listing
                .lines()
                .skip_while(|l| !l.contains(id.as_str()))
                .nth(1)
                .unwrap_or_else(|| panic!("dev-{i} not listed: {listing}"));
            assert!(
                line.contains(&format!(
                    "device dev-{i}: handoff execution {} in the source",
                    expected(i).0
                )) && line.contains("connected in the target"),
                "dev-{i}: {line}"
            );
        } else {
            assert!(!text.stdout.contains(id.as_str()), "dev-{i} listed");
        }
    }

    // report --devices: the same devices, as JSON and on the page.
    let report = run(
        &env,
        &with_targets(&[
            "--output",
            "json",
            "report",
            "m.csv",
            "--devices",
            "--html",
            "r.html",
        ]),
    );
    report.expect_code(0);
    let reported = &report.json()["devices"];
    assert_eq!(reported["counts"], devices["counts"]);
    assert_eq!(
        reported["handoff"]["executions"],
        devices["handoff"]["executions"]
    );
    assert_eq!(check_records(reported, &ids), not_arrived);
    let page = std::fs::read_to_string(env.path("r.html")).unwrap();
    assert!(
        page.contains("<h2 id=\"devices\">Devices</h2>"),
        "no devices section"
    );
    assert!(
        page.contains(&format!(
            "data-ledger=\"devices\" data-state=\"connected\">{followers}</td>"
        )),
        "{page}"
    );
    for (status, count) in &by_execution {
        assert!(
            page.contains(&format!(
                "data-ledger=\"handoff\" data-state=\"{status}\">{count}</td>"
            )),
            "{status}"
        );
    }
    let table = &page[page
        .find("id=\"devices-not-arrived\"")
        .expect("the not-arrived table")..];
    let table = &table[..table.find("</table>").unwrap()];
    for id in &ids {
        assert_eq!(
            table.contains(&format!("data-certificate=\"{id}\"")),
            not_arrived.contains(id),
            "{id} on the page"
        );
    }
    let text = run(&env, &with_targets(&["report", "m.csv", "--devices"]));
    text.expect_code(0);
    assert!(text.stdout.contains("not arrived:"), "{}", text.stdout);
}

#[test]
fn status_and_report_devices_refuse_in_one_line_before_any_read_without_connectivity_indexing() {
    let env = Env::new(SimConfig::unlimited());
    fleet(&env, 4, false);
    run(&env, &with_targets(&["register", "m.csv"])).expect_code(0);
    let reads = || {
        let stats = env.sim.stats();
        [
            "DescribeCertificate",
            "ListPrincipalThings",
            "ListJobExecutionsForThing",
            "GetThingConnectivityData",
        ]
        .map(|op| stats.calls_of(op))
    };
    let before = reads();
    for command in ["status", "report"] {
        let out = run(&env, &with_targets(&[command, "m.csv", "--devices"]));
        out.expect_code(2);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{command}: {}", out.stderr);
        assert!(
            lines[0].contains("--devices")
                && lines[0].contains("thingConnectivityIndexingMode=STATUS")
                && lines[0].contains(TARGET),
            "{command}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{command}: {}", out.stdout);
        assert_eq!(reads(), before, "{command} read a certificate");
    }
    // Without --devices both run as before, offline.
    let calls = env.sim.stats().total_calls();
    run(&env, &["status", "m.csv"]).expect_code(0);
    run(&env, &["report", "m.csv"]).expect_code(0);
    assert_eq!(env.sim.stats().total_calls(), calls);

    // --devices needs the targets' credentials, and they mean nothing without it: both
    // refused by the command line, before any call.
    for command in ["status", "report"] {
        let alone = run(&env, &[command, "m.csv", "--devices"]);
        alone.expect_code(2);
        assert!(
            alone.stderr.contains("--target-profile"),
            "{}",
            alone.stderr
        );
        let targets_only = run(&env, &with_targets(&[command, "m.csv"]));
        targets_only.expect_code(2);
        assert!(
            targets_only.stderr.contains("--devices"),
            "{}",
            targets_only.stderr
        );
    }
    assert_eq!(env.sim.stats().total_calls(), calls);
}
