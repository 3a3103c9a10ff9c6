//! Black-box tests of `select`: a seeded registry (nested thing groups, thing types,
//! attributes, two CAs, every status, spread creation dates), each filter and combinations
//! against the set computed here from the seed, paging past 250 items, waves, outputs,
//! and bad flags.

use std::collections::{BTreeMap, BTreeSet};

use iot_sim::{
    FaultKind, Seed, SeedAccount, SeedCaCertificate, SeedCertificate, SeedThing, SeedThingGroup,
    SeedThingType, SimConfig,
};

use crate::harness::*;

/// Certificates in the big fleet (four pages of 250 and more).
const CERTS: u64 = 1_000;
/// Things in the big fleet: the last 100 have no certificate.
const THINGS: u64 = 1_100;
/// Creation date of certificate 0; each next one is an hour younger.
const BASE_DATE: i64 = 1_700_000_000;
const CA_A: u64 = 900_001;
const CA_B: u64 = 900_002;

/// The registry of one certificate or thing, as seeded: the model the expected sets are
/// computed from.
struct Model {
    certs: Vec<CertModel>,
    things: Vec<ThingModel>,
}

struct CertModel {
    id: String,
    status: &'static str,
    ca: Option<String>,
    created: i64,
    things: Vec<String>,
}

struct ThingModel {
    name: String,
    thing_type: Option<&'static str>,
    attributes: BTreeMap<String, String>,
    /// The group it is in directly.
    group: Option<&'static str>,
}

/// The groups: fleet > site-a > {floor-1, floor-2}; fleet > site-b.
const GROUPS: [(&str, Option<&str>); 5] = [
    ("fleet", None),
    ("site-a", Some("fleet")),
    ("site-b", Some("fleet")),
    ("floor-1", Some("site-a")),
    ("floor-2", Some("site-a")),
];

fn ancestors_and_self(group: &str) -> Vec<&'static str> {
    let mut chain = Vec::new();
    let mut at = GROUPS.iter().find(|(g, _)| *g == group);
    while let Some((g, parent)) = at {
        chain.push(*g);
        at = parent.and_then(|p| GROUPS.iter().find(|(g, _)| *g == p));
    }
    chain
}

impl Model {
    fn new() -> Model {
        let things = (0..THINGS)
            .map(|n| ThingModel {
                name: format!("thing-{n}"),
                thing_type: match n % 10 {
                    9 => None,
                    k if k % 2 == 0 => Some("sensor"),
                    _ => Some("gateway"),
                },
                attributes: BTreeMap::from([
                    (
                        "site".to_string(),
                        ["a", "b", "c"][(n % 3) as usize].to_string(),
                    ),
                    ("floor".to_string(), (n % 5).to_string()),
                ]),
                group: match n % 8 {
                    0 | 4 => Some("floor-1"),
                    1 | 5 => Some("floor-2"),
                    3 => Some("site-a"),
                    2 | 6 => Some("site-b"),
                    _ => None,
                },
            })
            .collect();
        let certs = (0..CERTS)
            .map(|n| {
                let mut attached = vec![format!("thing-{n}")];
                // Every 50th certificate is shared with the next thing too.
                if n % 50 == 0 {
                    attached.push(format!("thing-{}", n + 1));
                }
                CertModel {
                    id: cert_id(50_000 + n),
                    status: match n % 20 {
                        7 => "PENDING_TRANSFER",
                        13 => "REVOKED",
                        k if k % 4 == 0 => "INACTIVE",
                        _ => "ACTIVE",
                    },
                    ca: match n % 3 {
                        1 => Some(cert_id(CA_A)),
                        2 => Some(cert_id(CA_B)),
                        _ => None,
                    },
                    created: BASE_DATE + n as i64 * 3600,
                    things: attached,
                }
            })
            .collect();
        Model { certs, things }
    }

    fn seed(&self) -> Seed {
        let account = SeedAccount {
            thing_types: ["sensor", "gateway"]
                .iter()
                .map(|t| SeedThingType {
                    name: t.to_string(),
                    ..Default::default()
                })
                .collect(),
            thing_groups: GROUPS
                .iter()
                .map(|(g, p)| SeedThingGroup {
                    name: g.to_string(),
                    parent: p.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
            things: self
                .things
                .iter()
                .map(|t| SeedThing {
                    name: t.name.clone(),
                    thing_type: t.thing_type.map(str::to_string),
                    attributes: t.attributes.clone(),
                    groups: t.group.iter().map(|g| g.to_string()).collect(),
                })
                .collect(),
            ca_certificates: [CA_A, CA_B]
                .iter()
                .map(|n| SeedCaCertificate {
                    id: cert_id(*n),
                    status: Some("ACTIVE".into()),
                    ..Default::default()
                })
                .collect(),
            certificates: self
                .certs
                .iter()
                .map(|c| SeedCertificate {
                    id: c.id.clone(),
                    status: c.status.to_string(),
                    things: c.things.clone(),
                    creation_date: Some(c.created as f64),
                    ca_certificate_id: c.ca.clone(),
                    pending_target: (c.status == "PENDING_TRANSFER").then(|| TARGET2.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        Seed {
            region: REGION.to_string(),
            accounts: BTreeMap::from([(SOURCE.to_string(), account)]),
        }
    }

    fn thing(&self, name: &str) -> &ThingModel {
        self.things
            .iter()
            .find(|t| t.name == name)
            .expect("a thing of the model")
    }

    /// The ids of the certificates `keep` says yes to, sorted.
    fn expect(&self, keep: impl Fn(&CertModel) -> bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .certs
            .iter()
            .filter(|c| keep(c))
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Whether one of the certificate's things passes `keep`.
    fn any_thing(&self, c: &CertModel, keep: impl Fn(&ThingModel) -> bool) -> bool {
        c.things.iter().any(|t| keep(self.thing(t)))
    }
}

fn transferable(c: &CertModel) -> bool {
    matches!(c.status, "ACTIVE" | "INACTIVE")
}

fn in_group(t: &ThingModel, group: &str, recursive: bool) -> bool {
    match t.group {
        None => false,
        Some(g) if recursive => ancestors_and_self(g).contains(&group),
        Some(g) => g == group,
    }
}

/// A simulator seeded with the model's registry.
fn big_fleet() -> (Env, Model) {
    let env = Env::unlimited();
    let model = Model::new();
    env.sim.seed(model.seed()).expect("seed accepted");
    (env, model)
}

/// Runs `select --target-account TARGET --out NAME ARGS` (fast rates) and returns the ids
/// of the manifest written, checking they are sorted and distinct.
fn select_ids(env: &Env, name: &str, args: &[&str]) -> (Run, Vec<String>) {
    let mut all = vec![
        "--output",
        "json",
        "select",
        "--target-account",
        TARGET,
        "--rate-scale",
        "100",
        "--out",
        name,
    ];
    all.extend(args);
    let run = env.run(&all);
    run.expect_code(0);
    let ids: Vec<String> = read_csv(&env.path(name))
        .into_iter()
        .map(|r| {
            assert_eq!(r["target_account"], TARGET);
            r["certificate_id"].clone()
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "{name}: rows not sorted by id or repeated");
    (run, ids)
}

#[test]
fn each_filter_and_several_combinations_select_exactly_the_expected_set() {
    let (env, m) = big_fleet();
    let ca_a = cert_id(CA_A);
    let date = |n: i64| BASE_DATE + n * 3600;
    // Exactly the creation of certificate 276 (kept: "after" is inclusive) and of
    // certificate 700 (left out: "before" is exclusive), the latter with an offset.
    let after = "2023-11-26T10:13:20Z";
    let before = "2023-12-14T04:13:20+02:00";
    let (after_at, before_at) = (date(276), date(700));

    type Keep<'a> = Box<dyn Fn(&CertModel) -> bool + 'a>;
    let cases: Vec<(&str, Vec<&str>, Keep)> = vec![
        ("default", vec![], Box::new(transferable)),
        (
            "active",
            vec!["--status", "ACTIVE"],
            Box::new(|c| c.status == "ACTIVE"),
        ),
        (
            "both statuses",
            vec!["--status", "inactive", "--status", "ACTIVE"],
            Box::new(transferable),
        ),
        (
            "ca a",
            vec!["--ca-certificate-id", &ca_a],
            Box::new(|c| transferable(c) && c.ca.as_deref() == Some(ca_a.as_str())),
        ),
        (
            "group recursive",
            vec!["--thing-group", "site-a"],
            Box::new(|c| transferable(c) && m.any_thing(c, |t| in_group(t, "site-a", true))),
        ),
        (
            "group direct",
            vec!["--thing-group", "site-a", "--no-recursive"],
            Box::new(|c| transferable(c) && m.any_thing(c, |t| in_group(t, "site-a", false))),
        ),
        (
            "root group",
            vec!["--thing-group", "fleet"],
            Box::new(|c| transferable(c) && m.any_thing(c, |t| in_group(t, "fleet", true))),
        ),
        (
            "thing type",
            vec!["--thing-type", "sensor"],
            Box::new(|c| transferable(c) && m.any_thing(c, |t| t.thing_type == Some("sensor"))),
        ),
        (
            "one attribute",
            vec!["--attribute", "site=b"],
            Box::new(|c| transferable(c) && m.any_thing(c, |t| t.attributes["site"] == "b")),
        ),
        (
            "two attributes",
            vec!["--attribute", "site=a", "--attribute", "floor=2"],
            Box::new(|c| {
                transferable(c)
                    && m.any_thing(c, |t| {
                        t.attributes["site"] == "a" && t.attributes["floor"] == "2"
                    })
            }),
        ),
        (
            "dates",
            vec!["--created-after", after, "--created-before", before],
            Box::new(|c| transferable(c) && c.created >= after_at && c.created < before_at),
        ),
        (
            "bare date",
            vec!["--created-before", "2023-12-01"],
            Box::new(|c| transferable(c) && c.created < 1_701_388_800),
        ),
        (
            "group, type, attribute, status, CA and date together",
            vec![
                "--thing-group",
                "fleet",
                "--thing-type",
                "gateway",
                "--attribute",
                "site=b",
                "--status",
                "ACTIVE",
                "--ca-certificate-id",
                &ca_a,
                "--created-after",
                "2023-11-20",
            ],
            Box::new(|c| {
                c.status == "ACTIVE"
                    && c.ca.as_deref() == Some(ca_a.as_str())
                    && c.created >= 1_700_438_400
                    && m.any_thing(c, |t| {
                        in_group(t, "fleet", true)
                            && t.thing_type == Some("gateway")
                            && t.attributes["site"] == "b"
                    })
            }),
        ),
        (
            "group and type",
            vec![
                "--thing-group",
                "site-b",
                "--thing-type",
                "sensor",
                "--status",
                "ACTIVE",
            ],
            Box::new(|c| {
                c.status == "ACTIVE"
                    && m.any_thing(c, |t| {
                        in_group(t, "site-b", true) && t.thing_type == Some("sensor")
                    })
            }),
        ),
    ];
    for (i, (what, args, keep)) in cases.iter().enumerate() {
        let (run, ids) = select_ids(&env, &format!("case-{i}.csv"), args);
        let expected = m.expect(keep);
        assert!(!expected.is_empty(), "{what}: the case selects nothing");
        assert_eq!(ids.len(), expected.len(), "{what}: {}", run.stdout);
        assert_eq!(ids, expected, "{what}");
        assert_eq!(run.json()["selected"], expected.len() as u64, "{what}");
    }
    // The default selection read every page: 1,000 certificates are four pages of 250.
    assert!(env.sim.stats().calls_of("ListCertificates") >= 4);
}

#[test]
fn summary_counts_filters_left_out_statuses_and_warnings() {
    let (env, m) = big_fleet();
    // Paced to take seconds, so that the progress lines show.
    let (run, ids) = select_ids(
        &env,
        "a.csv",
        &[
            "--thing-group",
            "site-a",
            "--rate",
            "ListThingPrincipals=300",
            "--progress-interval",
            "0.2",
        ],
    );
    let j = run.json();
    assert!(
        run.stderr.contains("reading the certificates of"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("calls so far"), "{}", run.stderr);
    let recursive = |t: &ThingModel| in_group(t, "site-a", true);
    let group_things: Vec<&ThingModel> = m.things.iter().filter(|t| recursive(t)).collect();
    let filters = j["filters"].as_array().unwrap();
    assert_eq!(filters[0]["filter"], "listed (ListCertificates)");
    assert_eq!(filters[0]["certificates"], CERTS);
    assert_eq!(filters[1]["filter"], "--thing-group site-a");
    assert_eq!(filters[1]["things"], group_things.len() as u64);
    let of_things = m.expect(|c| m.any_thing(c, recursive));
    assert_eq!(filters[2]["certificates"], of_things.len() as u64);
    assert_eq!(filters[3]["filter"], "--status ACTIVE,INACTIVE (default)");
    assert_eq!(filters[3]["certificates"], ids.len() as u64);

    // PENDING_TRANSFER and REVOKED certificates of the group's things: left out, counted.
    let left = |status: &str| {
        m.certs
            .iter()
            .filter(|c| c.status == status && m.any_thing(c, recursive))
            .count() as u64
    };
    assert!(left("PENDING_TRANSFER") > 0 && left("REVOKED") > 0);
    assert_eq!(
        j["left_out"]["status"]["PENDING_TRANSFER"],
        left("PENDING_TRANSFER")
    );
    assert_eq!(j["left_out"]["status"]["REVOKED"], left("REVOKED"));

    // Shared: selected certificates with a thing outside site-a.
    let shared = m.expect(|c| {
        transferable(c)
            && m.any_thing(c, recursive)
            && !c.things.iter().all(|t| recursive(m.thing(t)))
    });
    assert!(
        !shared.is_empty(),
        "the model has certificates shared across the group's edge"
    );
    assert_eq!(j["warnings"]["shared_certificates"], shared.len() as u64);
    let listed: Vec<&str> = j["warnings"]["shared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["certificate_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        shared.iter().map(String::as_str).collect::<Vec<_>>()
    );

    // Things without a certificate: those of the group numbered 1,000 and up.
    let bare = group_things
        .iter()
        .filter(|t| !m.certs.iter().any(|c| c.things.contains(&t.name)))
        .count();
    assert!(bare > 0);
    assert_eq!(j["warnings"]["things_without_certificate"], bare as u64);
    // Every list was followed past its first page (250 items).
    let calls = |op: &str| j["calls"][op]["calls"].as_u64().unwrap_or(0);
    assert!(group_things.len() > 500);
    assert!(calls("ListThingsInThingGroup") >= group_things.len().div_ceil(250) as u64);
    assert!(calls("ListCertificates") >= 4);
    assert!(calls("ListThingPrincipals") >= group_things.len() as u64);
}

#[test]
fn waves_from_limit_and_exclude_manifest_are_disjoint_and_cover_the_selection() {
    let (env, m) = big_fleet();
    let all = m.expect(transferable);
    let mut waves: Vec<Vec<String>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    loop {
        let name = format!("wave-{}.csv", waves.len() + 1);
        let mut args = vec!["--limit", "300"];
        for n in &names {
            args.extend(["--exclude-manifest", n.as_str()]);
        }
        let (run, ids) = select_ids(&env, &name, &args);
        let j = run.json();
        let excluded: usize = waves.iter().map(Vec::len).sum();
        assert_eq!(j["left_out"]["excluded"], excluded as u64, "{name}");
        assert_eq!(
            j["left_out"]["over_limit"],
            (all.len() - excluded).saturating_sub(300) as u64,
            "{name}"
        );
        if ids.is_empty() {
            break;
        }
        assert!(ids.len() <= 300);
        names.push(name);
        waves.push(ids);
        assert!(waves.len() < 10, "the waves never end");
    }
    assert_eq!(waves.len(), all.len().div_ceil(300));
    let mut seen = BTreeSet::new();
    for w in &waves {
        for id in w {
            assert!(seen.insert(id.clone()), "{id} is in two waves");
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), all);
}

/// A small fleet of clean INACTIVE certificates, some in a thing group.
fn small_fleet(env: &Env) -> Vec<String> {
    let ids: Vec<String> = (0..30).map(|n| cert_id(70_000 + n)).collect();
    let account = SeedAccount {
        thing_groups: vec![SeedThingGroup {
            name: "wave".into(),
            ..Default::default()
        }],
        things: (0..30)
            .map(|n| SeedThing {
                name: format!("dev-{n}"),
                groups: if n < 20 { vec!["wave".into()] } else { vec![] },
                ..Default::default()
            })
            .collect(),
        certificates: ids
            .iter()
            .enumerate()
            .map(|(n, id)| cert(id, "INACTIVE", &[], &[&format!("dev-{n}")]))
            .collect(),
        ..Default::default()
    };
    env.sim
        .seed(Seed {
            region: REGION.into(),
            accounts: BTreeMap::from([(SOURCE.to_string(), account)]),
        })
        .expect("seed accepted");
    ids
}

#[test]
fn select_output_validates_and_drives_plan_and_transfer_unchanged() {
    let env = Env::unlimited();
    let ids = small_fleet(&env);
    let run = env.run(&[
        "select",
        "--target-account",
        TARGET,
        "--thing-group",
        "wave",
        "--transfer-message",
        "wave 1, hall 3",
        "--out",
        "wave1.csv",
    ]);
    run.expect_code(0);
    // With the manifest in a file, the summary is the command's output (stdout), and a
    // clean run without a terminal writes nothing on stderr.
    assert!(
        run.stdout.contains("select: 20 certificates"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr, "", "a clean select is silent on stderr");
    let rows = read_csv(&env.path("wave1.csv"));
    assert_eq!(rows.len(), 20);
    assert!(rows
        .iter()
        .all(|r| r["transfer_message"] == "wave 1, hall 3"));

    let v = env.run(&["--output", "json", "validate", "wave1.csv"]);
    v.expect_code(0);
    assert_eq!(v.json()["certificates"], 20);
    env.run(&["plan", "wave1.csv"]).expect_code(0);
    let t = env.run(&[
        "--output",
        "json",
        "transfer",
        "wave1.csv",
        "--detach-things",
        "--rate-scale",
        "100",
    ]);
    t.expect_code(0);
    assert_eq!(t.count("transferred"), 20);
    let state = env.state();
    for (n, id) in ids.iter().enumerate() {
        let (_, c) = state.find(id).unwrap();
        let pending = c.pending_target.as_deref() == Some(TARGET);
        assert_eq!(pending, n < 20, "{id} (dev-{n})");
        if pending {
            assert_eq!(c.transfer_message.as_deref(), Some("wave 1, hall 3"));
        }
    }
    // A second select now leaves the pending ones out and says so.
    let again = env.run(&[
        "--output",
        "json",
        "select",
        "--target-account",
        TARGET,
        "--out",
        "rest.csv",
    ]);
    again.expect_code(0);
    assert_eq!(again.json()["selected"], 10);
    assert_eq!(again.json()["left_out"]["status"]["PENDING_TRANSFER"], 20);
}

#[test]
fn out_dash_writes_the_manifest_to_stdout_and_the_summary_to_stderr() {
    let env = Env::unlimited();
    let ids = small_fleet(&env);
    let run = env.run(&["select", "--target-account", TARGET, "--out", "-"]);
    run.expect_code(0);
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("certificate_id,target_account,transfer_message")
    );
    let got: Vec<String> = lines
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(got, expected);
    assert!(
        run.stderr.contains("select: 30 certificates"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("written to stdout"), "{}", run.stderr);

    // --output json with the manifest on stdout: the summary is one JSON line on stderr.
    let j = env.run(&["--output", "json", "select", "--target-account", TARGET]);
    j.expect_code(0);
    assert!(j.stdout.starts_with("certificate_id,"));
    let summary: serde_json::Value = serde_json::from_str(j.stderr.trim().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", j.stderr));
    assert_eq!(summary["selected"], 30);
    assert_eq!(summary["manifest"], "-");
    // No stray temporary file is left beside the manifest or elsewhere in the directory.
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn several_regions_give_a_region_column_and_a_valid_manifest() {
    let env = Env::unlimited();
    let east: Vec<String> = (0..3).map(|n| cert_id(80_000 + n)).collect();
    let west: Vec<String> = (0..2).map(|n| cert_id(81_000 + n)).collect();
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
        west.iter().map(|id| cert(id, "ACTIVE", &[], &[])).collect(),
    );
    let run = env.run(&[
        "--region",
        REGION,
        "--region",
        "eu-west-1",
        "select",
        "--target-account",
        TARGET,
        "--out",
        "both.csv",
    ]);
    run.expect_code(0);
    let rows = read_csv(&env.path("both.csv"));
    let by_id: BTreeMap<&str, &str> = rows
        .iter()
        .map(|r| (r["certificate_id"].as_str(), r["region"].as_str()))
        .collect();
    assert_eq!(by_id.len(), 5);
    for id in &east {
        assert_eq!(by_id[id.as_str()], REGION);
    }
    for id in &west {
        assert_eq!(by_id[id.as_str()], "eu-west-1");
    }
    env.run(&["validate", "both.csv"]).expect_code(0);
    // One region: no region column.
    env.run(&["select", "--target-account", TARGET, "--out", "east.csv"])
        .expect_code(0);
    let text = std::fs::read_to_string(env.path("east.csv")).unwrap();
    assert!(
        text.starts_with("certificate_id,target_account,transfer_message\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4);
    // Other commands take one region.
    let plan = env.run(&[
        "--region",
        REGION,
        "--region",
        "eu-west-1",
        "plan",
        "both.csv",
    ]);
    plan.expect_code(2);
    assert!(plan.stderr.contains("--region"), "{}", plan.stderr);
}

#[test]
fn bad_flags_exit_2_naming_the_flag_before_any_aws_call() {
    let env = Env::unlimited();
    small_fleet(&env);
    env.write("exists.csv", "certificate_id,target_account\n");
    env.write(
        "invalid.csv",
        "certificate_id,target_account\nnot-an-id,12\n",
    );
    std::fs::create_dir(env.path("a-dir")).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--created-after", "2024-13-01"], "--created-after"),
        (&["--created-before", "yesterday"], "--created-before"),
        (
            &["--created-after", "2024-05-01T12:00:00"],
            "--created-after",
        ),
        (
            &[
                "--created-after",
                "2024-06-01",
                "--created-before",
                "2024-05-01",
            ],
            "--created-after",
        ),
        (&["--attribute", "site"], "--attribute"),
        (&["--attribute", "=a"], "--attribute"),
        (&["--status", "BOGUS"], "--status"),
        (&["--status", "REVOKED"], "--status"),
        (&["--ca-certificate-id", "xyz"], "--ca-certificate-id"),
        (&["--thing-group", "bad name"], "--thing-group"),
        (&["--limit", "0"], "--limit"),
        (&["--no-recursive"], "--thing-group"),
        (&["--exclude-manifest", "invalid.csv"], "invalid.csv"),
        (&["--exclude-manifest", "missing.csv"], "missing.csv"),
        (&["--out", "exists.csv"], "--force"),
        (&["--out", "a-dir"], "--out"),
        (
            &["--transfer-message", &"x".repeat(129)],
            "--transfer-message",
        ),
    ];
    for (extra, flag) in cases {
        let mut args = vec!["select", "--target-account", TARGET];
        args.extend(*extra);
        let run = env.run(&args);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(flag),
            "{extra:?}: no {flag} in {}",
            run.stderr
        );
    }
    for account in ["12345", "22222222222a"] {
        let run = env.run(&["select", "--target-account", account]);
        assert_eq!(run.code, 2, "{account}: {}", run.stderr);
        assert!(run.stderr.contains("--target-account"), "{}", run.stderr);
    }
    let stats = env.sim.stats();
    assert_eq!(
        stats.calls.values().sum::<u64>(),
        0,
        "AWS was called: {:?}",
        stats.calls
    );
    assert_eq!(
        std::fs::read_to_string(env.path("exists.csv")).unwrap(),
        "certificate_id,target_account\n"
    );

    // Known only after STS: the target is the caller's own account.
    let run = env.run(&["select", "--target-account", SOURCE, "--out", "own.csv"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--target-account"), "{}", run.stderr);
    assert_eq!(env.sim.stats().calls_of("ListCertificates"), 0);
    assert!(!env.path("own.csv").exists());
}

#[test]
fn a_missing_permission_or_dead_credentials_end_it_with_one_message_and_no_manifest() {
    let env = Env::unlimited();
    small_fleet(&env);
    env.sim
        .add_deny(iot_sim::DenyRule {
            account: SOURCE.into(),
            operation: "ListThingPrincipals".into(),
            resource: None,
        })
        .unwrap();
    let run = env.run(&[
        "select",
        "--target-account",
        TARGET,
        "--thing-group",
        "wave",
        "--out",
        "w.csv",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("iot:ListThingPrincipals"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("error:").count(), 1, "{}", run.stderr);
    assert!(!env.path("w.csv").exists());
    // One refused call per thing in flight at most, not retried: the run stops.
    assert!(env.sim.stats().calls_of("ListThingPrincipals") <= 20);

    env.sim
        .set_credentials(SOURCE, iot_sim::CredentialState::Expired, Some(1));
    let run = env.run(&["select", "--target-account", TARGET, "--out", "w.csv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("refresh the credentials"),
        "{}",
        run.stderr
    );
    assert!(!env.path("w.csv").exists());
}

#[test]
fn garbled_and_failed_pages_are_asked_again_and_nothing_is_lost() {
    let env = Env::new(SimConfig {
        faults: vec![
            (FaultKind::Http503, 0.05),
            (FaultKind::Truncated, 0.05),
            (FaultKind::Empty, 0.05),
        ],
        ..SimConfig::unlimited()
    });
    let model = Model::new();
    env.sim.seed(model.seed()).expect("seed accepted");
    let (run, ids) = select_ids(
        &env,
        "faulty.csv",
        &["--thing-group", "site-a", "--max-attempts", "10"],
    );
    let expected =
        model.expect(|c| transferable(c) && model.any_thing(c, |t| in_group(t, "site-a", true)));
    assert_eq!(ids, expected);
    let faults = env.sim.stats().faults;
    assert!(
        faults.values().sum::<u64>() > 0,
        "no fault was injected: {}",
        run.stdout
    );
}
