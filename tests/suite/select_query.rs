//! Black-box tests of `select --query`, `--connected` and `--disconnected`: a 1,000-certificate
//! fleet with fleet indexing (registry and connectivity) on, each query form alone and
//! combined with the registry filters against the set computed here from the seed, across
//! SearchIndex pages of 100; waves; paced and garbled pages; and the refusals (indexing
//! off, connectivity not indexed, a query AWS refuses, an index being built, missing
//! permissions), each one line and no manifest.

use std::collections::{BTreeMap, BTreeSet};

use iot_sim::{
    Connectivity, FaultKind, Seed, SeedAccount, SeedCaCertificate, SeedCertificate, SeedIndexing,
    SeedThing, SeedThingGroup, SeedThingType, SimConfig,
};

use crate::harness::*;

/// Certificates of the fleet: ten pages of 100 things and more.
const CERTS: u64 = 1_000;
/// Things: the last 100 have no certificate.
const THINGS: u64 = 1_100;
/// Creation date of certificate 0; each next one is an hour younger.
const BASE_DATE: i64 = 1_700_000_000;
const CA: u64 = 910_001;

/// The groups: fleet > site-a > {floor-1, floor-2}; fleet > site-b.
const GROUPS: [(&str, Option<&str>); 5] = [
    ("fleet", None),
    ("site-a", Some("fleet")),
    ("site-b", Some("fleet")),
    ("floor-1", Some("site-a")),
    ("floor-2", Some("site-a")),
];

/// How a device was last seen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seen {
    Connected,
    Disconnected,
    Never,
}

struct Thing {
    name: String,
    thing_type: Option<&'static str>,
    fw: String,
    site: &'static str,
    group: Option<&'static str>,
    seen: Seen,
}

struct Cert {
    id: String,
    status: &'static str,
    ca: bool,
    created: i64,
    things: Vec<String>,
}

/// The seeded fleet, from which each case's expected set is computed.
struct Model {
    things: Vec<Thing>,
    certs: Vec<Cert>,
}

fn thing_name(n: u64) -> String {
    // Names and types disagree on purpose: a query on one is not a query on the other.
    if n.is_multiple_of(4) {
        format!("gateway-{n:04}")
    } else {
        format!("sensor-{n:04}")
    }
}

impl Model {
    fn new() -> Model {
        let things = (0..THINGS)
            .map(|n| Thing {
                name: thing_name(n),
                thing_type: match n % 10 {
                    9 => None,
                    k if k % 2 == 0 => Some("sensor"),
                    _ => Some("gateway"),
                },
                fw: format!("{}.{}", if n % 5 == 4 { 1 } else { 2 }, n % 3),
                site: if n % 7 < 3 { "a" } else { "b" },
                group: match n % 8 {
                    0 | 4 => Some("floor-1"),
                    1 => Some("floor-2"),
                    3 => Some("site-a"),
                    2 | 6 => Some("site-b"),
                    _ => None,
                },
                seen: match n % 3 {
                    0 => Seen::Connected,
                    1 => Seen::Disconnected,
                    _ => Seen::Never,
                },
            })
            .collect();
        let certs = (0..CERTS)
            .map(|n| {
                let mut attached = vec![thing_name(n)];
                // Every 50th certificate is shared with the next thing too.
                if n % 50 == 0 {
                    attached.push(thing_name(n + 1));
                }
                Cert {
                    id: cert_id(60_000 + n),
                    status: match n % 20 {
                        7 => "PENDING_TRANSFER",
                        13 => "REVOKED",
                        k if k % 4 == 0 => "INACTIVE",
                        _ => "ACTIVE",
                    },
                    ca: n % 3 == 1,
                    created: BASE_DATE + n as i64 * 3600,
                    things: attached,
                }
            })
            .collect();
        Model { things, certs }
    }

    /// The seed, with fleet indexing as `indexing` says.
    fn seed(&self, indexing: Option<SeedIndexing>) -> Seed {
        let mut connectivity = BTreeMap::new();
        for t in &self.things {
            let record = match t.seen {
                Seen::Connected => Connectivity {
                    connected: true,
                    timestamp: Some(BASE_DATE * 1000),
                    disconnect_reason: None,
                },
                Seen::Disconnected => Connectivity {
                    connected: false,
                    timestamp: Some(BASE_DATE * 1000),
                    disconnect_reason: Some("CONNECTION_LOST".into()),
                },
                Seen::Never => continue,
            };
            connectivity.insert(t.name.clone(), record);
        }
        let indexing = indexing.map(|i| SeedIndexing { connectivity, ..i });
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
                    attributes: BTreeMap::from([
                        ("fw".to_string(), t.fw.clone()),
                        ("site".to_string(), t.site.to_string()),
                    ]),
                    groups: t.group.iter().map(|g| g.to_string()).collect(),
                })
                .collect(),
            ca_certificates: vec![SeedCaCertificate {
                id: cert_id(CA),
                status: Some("ACTIVE".into()),
                ..Default::default()
            }],
            certificates: self
                .certs
                .iter()
                .map(|c| SeedCertificate {
                    id: c.id.clone(),
                    status: c.status.to_string(),
                    things: c.things.clone(),
                    creation_date: Some(c.created as f64),
                    ca_certificate_id: c.ca.then(|| cert_id(CA)),
                    pending_target: (c.status == "PENDING_TRANSFER").then(|| TARGET2.to_string()),
                    ..Default::default()
                })
                .collect(),
            indexing,
            ..Default::default()
        };
        Seed {
            region: REGION.to_string(),
            accounts: BTreeMap::from([(SOURCE.to_string(), account)]),
        }
    }

    fn thing(&self, name: &str) -> &Thing {
        self.things
            .iter()
            .find(|t| t.name == name)
            .expect("a thing of the model")
    }

    /// The things `keep` says yes to.
    fn things_where(&self, keep: impl Fn(&Thing) -> bool) -> usize {
        self.things.iter().filter(|t| keep(t)).count()
    }

    /// The transferable certificates with a thing `keep` says yes to (and that `cert`
    /// keeps), sorted.
    fn expect(&self, keep: impl Fn(&Thing) -> bool, cert: impl Fn(&Cert) -> bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .certs
            .iter()
            .filter(|c| matches!(c.status, "ACTIVE" | "INACTIVE") && cert(c))
            .filter(|c| c.things.iter().any(|t| keep(self.thing(t))))
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

fn in_group(t: &Thing, group: &str) -> bool {
    let mut at = t.group;
    while let Some(g) = at {
        if g == group {
            return true;
        }
        at = GROUPS.iter().find(|(n, _)| *n == g).and_then(|(_, p)| *p);
    }
    false
}

fn indexing(connectivity: bool) -> SeedIndexing {
    SeedIndexing {
        thing_indexing_mode: Some("REGISTRY".into()),
        thing_connectivity_indexing_mode: connectivity.then(|| "STATUS".to_string()),
        ..Default::default()
    }
}

/// A simulator (without quotas unless `config` has some) seeded with the model's fleet.
fn fleet(config: SimConfig, indexing: Option<SeedIndexing>) -> (Env, Model) {
    let env = Env::new(config);
    let model = Model::new();
    env.sim.seed(model.seed(indexing)).expect("seed accepted");
    (env, model)
}

/// `select --target-account TARGET --out NAME ARGS` (fast rates), exit 0; the summary and
/// the ids of the manifest (checked sorted and distinct).
fn select_ids(env: &Env, name: &str, args: &[&str]) -> (serde_json::Value, Vec<String>) {
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
        .map(|r| r["certificate_id"].clone())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "{name}: rows not sorted by id or repeated");
    (run.json(), ids)
}

/// Calls of `op` in a summary.
fn calls(summary: &serde_json::Value, op: &str) -> u64 {
    summary["calls"][op]["calls"].as_u64().unwrap_or(0)
}

type ThingKeep<'a> = Box<dyn Fn(&Thing) -> bool + 'a>;
type CertKeep<'a> = Box<dyn Fn(&Cert) -> bool + 'a>;

#[test]
fn each_query_form_alone_and_with_the_registry_filters_selects_exactly_the_expected_set() {
    let (env, m) = fleet(SimConfig::unlimited(), Some(indexing(true)));
    let ca = cert_id(CA);
    let any_cert = || -> CertKeep { Box::new(|_| true) };
    // (flags, which things the query matches, which of those the other thing filters
    // keep, which certificates the certificate filters keep)
    let cases: Vec<(Vec<&str>, ThingKeep, ThingKeep, CertKeep)> = vec![
        (
            vec!["--query", "thingName:sensor-*"],
            Box::new(|t| t.name.starts_with("sensor-")),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec!["--query", "attributes.fw:2.*"],
            Box::new(|t| t.fw.starts_with("2.")),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec!["--query", "thingTypeName:gateway AND attributes.site:B"],
            Box::new(|t| t.thing_type == Some("gateway") && t.site == "b"),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec![
                "--query",
                "thingGroupNames:floor-1 OR thingGroupNames:site-b",
            ],
            Box::new(|t| matches!(t.group, Some("floor-1" | "site-b"))),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec!["--query", "NOT thingTypeName:*"],
            Box::new(|t| t.thing_type.is_none()),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec![
                "--query",
                "(thingName:gateway-* thingTypeName:sensor) OR attributes.fw:1.0",
            ],
            Box::new(|t| {
                (t.name.starts_with("gateway-") && t.thing_type == Some("sensor")) || t.fw == "1.0"
            }),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            // A query may start with `-` (NOT).
            vec!["--query", "-thingTypeName:* OR thingName:gateway-00*"],
            Box::new(|t| t.thing_type.is_none() || t.name.starts_with("gateway-00")),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec!["--disconnected"],
            Box::new(|t| t.seen != Seen::Connected),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec!["--connected"],
            Box::new(|t| t.seen == Seen::Connected),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec!["--query", "attributes.fw:1.*", "--disconnected"],
            Box::new(|t| t.fw.starts_with("1.") && t.seen != Seen::Connected),
            Box::new(|_| true),
            any_cert(),
        ),
        (
            vec!["--query", "thingName:sensor-*", "--thing-group", "site-a"],
            Box::new(|t| t.name.starts_with("sensor-")),
            Box::new(|t| in_group(t, "site-a")),
            any_cert(),
        ),
        (
            vec![
                "--query",
                "attributes.fw:2.*",
                "--thing-type",
                "sensor",
                "--status",
                "ACTIVE",
                "--ca-certificate-id",
                &ca,
                "--created-after",
                "2023-11-20",
            ],
            Box::new(|t| t.fw.starts_with("2.")),
            Box::new(|t| t.thing_type == Some("sensor")),
            Box::new(|c| c.status == "ACTIVE" && c.ca && c.created >= 1_700_438_400),
        ),
        (
            vec![
                "--connected",
                "--attribute",
                "site=a",
                "--created-before",
                "2023-12-01",
            ],
            Box::new(|t| t.seen == Seen::Connected),
            Box::new(|t| t.site == "a"),
            Box::new(|c| c.created < 1_701_388_800),
        ),
    ];
    for (i, (args, query, others, cert)) in cases.iter().enumerate() {
        let what = args.join(" ");
        let before = env.sim.stats().calls_of("SearchIndex");
        let (summary, ids) = select_ids(&env, &format!("q-{i}.csv"), args);
        let expected = m.expect(|t| query(t) && others(t), cert);
        assert!(!expected.is_empty(), "{what}: the case selects nothing");
        assert_eq!(ids, expected, "{what}");
        // Every page of 100 matches was read, and no more.
        let matched = m.things_where(query);
        assert_eq!(
            env.sim.stats().calls_of("SearchIndex") - before,
            matched.div_ceil(100) as u64,
            "{what}: {matched} things matched"
        );
        if i == 0 {
            assert!(matched > 100, "the first case spans pages");
        }
        assert_eq!(calls(&summary, "SearchIndex"), matched.div_ceil(100) as u64);
        assert_eq!(calls(&summary, "GetIndexingConfiguration"), 1);
        // The summary names the step and what it kept: the other thing filters' things
        // that the query matched too.
        let flag = match args.first() {
            Some(&"--query") => format!("--query '{}'", args[1]),
            Some(other) => other.to_string(),
            None => unreachable!(),
        };
        let step = summary["filters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["filter"].as_str().unwrap().starts_with(&flag))
            .unwrap_or_else(|| panic!("{what}: no step {flag} in {summary}"));
        assert_eq!(
            step["things"],
            m.things_where(|t| query(t) && others(t)) as u64,
            "{what}"
        );
        assert_eq!(summary["selected"], expected.len() as u64);
    }
}

#[test]
fn query_waves_are_disjoint_cover_the_selection_and_warn_about_shared_certificates() {
    let (env, m) = fleet(SimConfig::unlimited(), Some(indexing(true)));
    let query = |t: &Thing| t.name.starts_with("sensor-") && t.seen != Seen::Connected;
    let all = m.expect(query, |_| true);
    let mut names: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    loop {
        let name = format!("wave-{}.csv", names.len() + 1);
        let mut args = vec![
            "--query",
            "thingName:sensor-*",
            "--disconnected",
            "--limit",
            "200",
        ];
        for n in &names {
            args.extend(["--exclude-manifest", n.as_str()]);
        }
        let (summary, ids) = select_ids(&env, &name, &args);
        assert_eq!(summary["left_out"]["excluded"], seen.len() as u64, "{name}");
        if ids.is_empty() {
            break;
        }
        assert!(ids.len() <= 200);
        for id in ids {
            assert!(seen.insert(id.clone()), "{id} is in two waves");
        }
        names.push(name);
        assert!(names.len() < 10, "the waves never end");
    }
    assert_eq!(names.len(), all.len().div_ceil(200));
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), all);

    // The first wave's warnings: a shared certificate whose other thing is outside.
    let (summary, ids) = select_ids(
        &env,
        "shared.csv",
        &["--query", "thingName:gateway-*", "--connected"],
    );
    let shared: Vec<&str> = summary["warnings"]["shared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["certificate_id"].as_str().unwrap())
        .collect();
    let inside = |t: &Thing| t.name.starts_with("gateway-") && t.seen == Seen::Connected;
    let expected: Vec<String> = m
        .expect(inside, |c| c.things.iter().any(|t| !inside(m.thing(t))))
        .into_iter()
        .filter(|id| ids.contains(id))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        shared,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn search_pages_are_paced_and_garbled_ones_are_asked_again() {
    // The simulator admits 5 SearchIndex a second (burst 5); the tool is told 5 too, with
    // every other operation fast: no page may be throttled.
    let (env, m) = fleet(
        SimConfig {
            quotas: [("SearchIndex".to_string(), 5.0)].into(),
            ..SimConfig::unlimited()
        },
        Some(indexing(false)),
    );
    let (summary, ids) = select_ids(
        &env,
        "paced.csv",
        &["--query", "thingName:*", "--rate", "SearchIndex=5"],
    );
    assert_eq!(ids, m.expect(|_| true, |_| true));
    assert_eq!(calls(&summary, "SearchIndex"), 11);
    assert_eq!(env.sim.stats().throttled_of("SearchIndex"), 0);

    let (env, m) = fleet(
        SimConfig {
            faults: vec![
                (FaultKind::Http503, 0.1),
                (FaultKind::Truncated, 0.1),
                (FaultKind::Empty, 0.1),
            ],
            ..SimConfig::unlimited()
        },
        Some(indexing(false)),
    );
    let (_, ids) = select_ids(
        &env,
        "faulty.csv",
        &["--query", "attributes.site:a", "--max-attempts", "10"],
    );
    assert_eq!(ids, m.expect(|t| t.site == "a", |_| true));
    assert!(env.sim.stats().faults.values().sum::<u64>() > 0);
}

/// Asserts a refused select: exit `code`, one line on stderr that contains each of `says`,
/// no manifest.
fn refused(env: &Env, args: &[&str], code: i32, says: &[&str]) {
    let mut all = vec!["select", "--target-account", TARGET, "--out", "r.csv"];
    all.extend(args);
    let run = env.run(&all);
    assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {}", run.stderr);
    for s in says {
        assert!(lines[0].contains(s), "{args:?}: no {s:?} in {}", lines[0]);
    }
    assert!(
        !env.path("r.csv").exists(),
        "{args:?}: a manifest was written"
    );
}

#[test]
fn indexing_off_or_a_refused_query_is_one_line_exit_2_and_no_manifest() {
    // Fleet indexing off (as AWS starts): found before any query or listing.
    let (env, _) = fleet(SimConfig::unlimited(), None);
    refused(
        &env,
        &["--query", "thingName:sensor-*"],
        2,
        &[
            "fleet indexing is off in us-east-1",
            "thingIndexingMode OFF",
        ],
    );
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("GetIndexingConfiguration"), 1);
    assert_eq!(stats.calls_of("SearchIndex"), 0);
    assert_eq!(stats.calls_of("ListCertificates"), 0);

    // Registry indexed, connectivity not: the connectivity shortcuts and terms are refused.
    let (env, _) = fleet(SimConfig::unlimited(), Some(indexing(false)));
    refused(
        &env,
        &["--disconnected"],
        2,
        &["--disconnected", "thingConnectivityIndexingMode OFF"],
    );
    refused(
        &env,
        &[
            "--query",
            "thingName:a* AND NOT connectivity.connected:true",
        ],
        2,
        &["--query", "connectivity is not indexed"],
    );
    assert_eq!(env.sim.stats().calls_of("SearchIndex"), 0);

    // A query AWS refuses: its reason, before any listing.
    for (query, reason) in [
        ("thingName:(a OR b)", "field grouping"),
        ("shadow.reported.battery:50", "shadow.reported.battery"),
        ("thingName:sensor-* AND", "ends where a clause is expected"),
    ] {
        refused(
            &env,
            &["--query", query],
            2,
            &[
                "AWS refused the query in us-east-1",
                "InvalidQueryException",
                reason,
            ],
        );
    }
    assert_eq!(env.sim.stats().calls_of("ListCertificates"), 0);

    // An index still being built.
    let (env, _) = fleet(
        SimConfig::unlimited(),
        Some(SeedIndexing {
            index_status: Some("BUILDING".into()),
            ..indexing(true)
        }),
    );
    refused(
        &env,
        &["--query", "thingName:*"],
        2,
        &["still being built", "IndexNotReadyException"],
    );

    // Flags refused before any AWS call.
    let (env, _) = fleet(SimConfig::unlimited(), Some(indexing(true)));
    for (args, flag) in [
        (&["--connected", "--disconnected"][..], "--disconnected"),
        (&["--query", "  "][..], "--query"),
    ] {
        let mut all = vec!["select", "--target-account", TARGET, "--out", "r.csv"];
        all.extend(args);
        let run = env.run(&all);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
    }
    assert_eq!(env.sim.stats().calls.values().sum::<u64>(), 0);
}

#[test]
fn every_region_is_checked_before_the_first_query() {
    let (env, m) = fleet(SimConfig::unlimited(), Some(indexing(true)));
    // eu-west-1 has a fleet too, without fleet indexing.
    let west = Seed {
        region: "eu-west-1".into(),
        ..m.seed(None)
    };
    env.sim.seed(west).expect("seed accepted");
    for regions in [[REGION, "eu-west-1"], ["eu-west-1", REGION]] {
        let run = env.run(&[
            "--region",
            regions[0],
            "--region",
            regions[1],
            "select",
            "--target-account",
            TARGET,
            "--query",
            "thingName:*",
            "--out",
            "r.csv",
        ]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("fleet indexing is off in eu-west-1"),
            "{}",
            run.stderr
        );
        assert!(!env.path("r.csv").exists());
    }
    // Not one query was sent (each is billed), nor any listing.
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("SearchIndex"), 0);
    assert_eq!(stats.calls_of("ListCertificates"), 0);
}

#[test]
fn missing_permissions_name_the_action() {
    let (env, m) = fleet(SimConfig::unlimited(), Some(indexing(true)));
    let deny = |op: &str| iot_sim::DenyRule {
        account: SOURCE.into(),
        operation: op.into(),
        resource: None,
    };
    // Without iot:GetIndexingConfiguration a plain query goes on (SearchIndex tells
    // whether the index exists), with a warning...
    env.sim.add_deny(deny("GetIndexingConfiguration")).unwrap();
    let run = env.run(&[
        "--output",
        "json",
        "select",
        "--target-account",
        TARGET,
        "--rate-scale",
        "100",
        "--query",
        "attributes.fw:1.*",
        "--out",
        "w.csv",
    ]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("cannot read the fleet indexing configuration"),
        "{}",
        run.stderr
    );
    let ids: Vec<String> = read_csv(&env.path("w.csv"))
        .into_iter()
        .map(|r| r["certificate_id"].clone())
        .collect();
    assert_eq!(ids, m.expect(|t| t.fw.starts_with("1."), |_| true));
    // ...but connectivity must be known to be indexed.
    refused(&env, &["--connected"], 1, &["iot:GetIndexingConfiguration"]);
    env.sim.remove_deny(&deny("GetIndexingConfiguration"));
    env.sim.add_deny(deny("SearchIndex")).unwrap();
    refused(&env, &["--query", "thingName:*"], 1, &["iot:SearchIndex"]);
}
