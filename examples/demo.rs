//! A complete migration against the local simulator, no AWS account needed:
//!
//! ```text
//! cargo run --example demo
//! cargo run --example demo -- report.html   # and keep the report page there
//! ```
//!
//! Starts the IoT simulator on 127.0.0.1 with the documented AWS quotas and 20 ms latency,
//! seeds account 111111111111 with the certificates of `sample-manifests/` (ACTIVE, with
//! policies and things, as a real fleet would be), then runs the tool itself, step by step:
//! validate, plan, transfer with `--carry` (with the progress bar), a rerun that has nothing
//! left to do, accept with `--carry` in each target account (policies, things, their type and
//! groups rebuilt there), status, `verify` (every certificate ok in its target), and the
//! migration report. Then the zero-downtime path with the devices themselves, on a second
//! fleet whose simulated devices follow a job: `register --carry`, `handoff` (a job telling
//! each device its target's endpoint), the devices move, `status --devices` (each device's
//! job execution and connection), `verify --require-connected` (every
//! device connected in its target), `retire --require-connected`, and the simulator's count
//! of seconds each device spent offline (0 for every one). Files go to a temporary
//! directory; the report page is kept where the first argument says, if one is given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use iot_cert_migrate::cli::Cli;
use iot_cert_migrate::manifest::Manifest;
use iot_sim::{
    fake_certificate, DeviceBehaviour, DeviceSetting, Seed, SeedAccount, SeedCertificate,
    SeedDevices, SeedIndexing, SeedPolicy, SeedThing, SeedThingGroup, SeedThingType, SimConfig,
    SimHandle, Simulator,
};

const SOURCE: &str = "111111111111";

/// A policy document allowing `iot:*` on one resource of the source account.
fn policy(resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:*","Resource":"arn:aws:iot:us-east-1:{SOURCE}:{resource}"}}]}}"#
    )
}

fn main() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifests = [
        repo.join("sample-manifests/multi-target.csv"),
        repo.join("sample-manifests/small.csv"),
    ];
    // Where to keep the report page: checked first, so that a typo fails before the demo.
    let keep_page = std::env::args_os().nth(1).map(PathBuf::from);
    if let Some(p) = &keep_page {
        std::fs::write(p, "")?;
    }
    let work = tempfile::tempdir()?;

    // One manifest for the demo: both samples, concatenated (a header once).
    let manifest = work.path().join("fleet.csv");
    let mut text = String::from("certificate_id,target_account,transfer_message\n");
    let mut seeded = Vec::new();
    let mut things = Vec::new();
    for path in &manifests {
        let m = Manifest::load(path)?;
        for row in m.rows()? {
            let row = row?;
            text.push_str(&format!(
                "{},{},\"{}\"\n",
                row.certificate_id,
                row.target_account,
                row.transfer_message
                    .clone()
                    .unwrap_or_default()
                    .replace('"', "\"\"")
            ));
            let n = seeded.len();
            things.push(SeedThing {
                name: format!("device-{n:03}"),
                thing_type: Some("sensor".into()),
                attributes: BTreeMap::from([("serial".into(), format!("SN{n:05}"))]),
                groups: vec![if n % 2 == 0 { "floor-1" } else { "floor-2" }.into()],
            });
            seeded.push(SeedCertificate {
                id: row.certificate_id.clone(),
                // A realistic fleet: most devices online, each with its policy and thing.
                status: if n % 4 == 3 { "INACTIVE" } else { "ACTIVE" }.into(),
                policies: vec!["fleet-device-policy".into()],
                things: vec![format!("device-{n:03}")],
                ..Default::default()
            });
        }
    }
    std::fs::write(&manifest, text)?;
    let count = seeded.len();

    let sim = Simulator::spawn(SimConfig {
        latency: Duration::from_millis(20),
        latency_jitter: Duration::from_millis(10),
        seeds: vec![Seed {
            region: "us-east-1".into(),
            accounts: BTreeMap::from([(
                SOURCE.to_string(),
                SeedAccount {
                    certificates: seeded,
                    // What the devices need to work, and what --carry takes along: the
                    // policy documents name the source account in their ARNs.
                    policies: vec![
                        SeedPolicy {
                            name: "fleet-device-policy".into(),
                            document: Some(policy("client/${iot:Connection.Thing.ThingName}")),
                        },
                        SeedPolicy {
                            name: "site-telemetry".into(),
                            document: Some(policy("topic/site/*")),
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
                            name: "site-lyon".into(),
                            policies: vec!["site-telemetry".into()],
                            ..Default::default()
                        },
                        SeedThingGroup {
                            name: "floor-1".into(),
                            parent: Some("site-lyon".into()),
                            ..Default::default()
                        },
                        SeedThingGroup {
                            name: "floor-2".into(),
                            parent: Some("site-lyon".into()),
                            ..Default::default()
                        },
                    ],
                    things,
                    ..Default::default()
                },
            )]),
        }],
        ..SimConfig::default()
    })?;
    println!(
        "simulator listening on {} with {count} certificates in account {SOURCE}\n",
        sim.url()
    );

    // Profiles for the target accounts (the simulator takes the account from the key id).
    let aws_config = work.path().join("aws-config");
    std::fs::write(
        &aws_config,
        "[profile migrate-222222222222]\naws_access_key_id = 222222222222\naws_secret_access_key = demo\nregion = us-east-1\n\n\
         [profile migrate-333333333333]\naws_access_key_id = 333333333333\naws_secret_access_key = demo\nregion = us-east-1\n",
    )?;
    // An empty credentials file, so that none of yours is read (and aws-config has no
    // missing file to warn about at -v).
    let no_credentials = work.path().join("no-credentials");
    std::fs::write(&no_credentials, "")?;
    // SAFETY of set_var: nothing else runs yet in this process that reads the environment.
    std::env::set_var("AWS_ENDPOINT_URL", sim.url());
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", SOURCE);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "demo");
    std::env::set_var("AWS_CONFIG_FILE", &aws_config);
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &no_credentials);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    // The ledgers and the failure report land beside the manifest, in the temporary directory.
    let m = manifest.display().to_string();
    let prepare = [
        "--deactivate",
        "--detach-policies",
        "--detach-things",
        "--carry",
    ];

    step("1. validate the manifest (offline)", &["validate", &m])?;
    step(
        "2. plan: read-only look at every certificate",
        &["plan", &m],
    )?;
    step(
        "3. transfer, pacing every operation at the documented quotas, recording what each certificate carries",
        &[&["transfer", m.as_str()][..], &prepare].concat(),
    )?;
    step(
        "4. the same command again: the ledger says everything is done, no AWS call is repeated",
        &[&["transfer", m.as_str()][..], &prepare].concat(),
    )?;
    for target in ["222222222222", "333333333333"] {
        let profile = format!("migrate-{target}");
        step(
            &format!(
                "5. accept in account {target} (its own credentials), activating the certificates and rebuilding their policies, things, type and groups"
            ),
            &["--profile", &profile, "accept", &m, "--set-as-active", "--carry"],
        )?;
    }
    let transfer_ledger = work.path().join("fleet.ledger.jsonl").display().to_string();
    let accept_ledger = work
        .path()
        .join("fleet.accept-ledger.jsonl")
        .display()
        .to_string();
    step(
        "6. status of the source side",
        &["status", &transfer_ledger],
    )?;
    step("7. status of the target side", &["status", &accept_ledger])?;
    let verified = step(
        "8. verify, read-only on both sides: every certificate owned by its target, ACTIVE, its policies, thing, type and groups in place",
        &[
            "verify",
            &m,
            "--target-profile-template",
            "migrate-{account}",
        ],
    )?;
    anyhow::ensure!(
        verified == 0,
        "verify did not find every certificate ok (exit {verified})"
    );
    let page = work.path().join("report.html");
    let page_arg = page.display().to_string();
    step(
        "9. the migration report: both ledgers, per target, failures, certificates per minute",
        &["report", &m, "--html", &page_arg],
    )?;
    if let Some(p) = &keep_page {
        std::fs::copy(&page, p)?;
        println!("report page kept in {}", p.display());
    }

    zero_downtime(&sim, work.path())?;

    let state = sim.state();
    println!("\nsimulator state afterwards:");
    for acct in &state.accounts {
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &acct.certificates {
            *by_status.entry(c.status.as_str()).or_default() += 1;
        }
        let attached = acct
            .certificates
            .iter()
            .filter(|c| !c.policies.is_empty() && !c.things.is_empty())
            .count();
        println!(
            "  account {} ({}): {:?}, {attached} with policy and thing attached; {} policies, {} things, {} thing groups",
            acct.account,
            acct.region,
            by_status,
            acct.policies.len(),
            acct.things.len(),
            acct.thing_groups.len()
        );
    }
    println!(
        "\nledger and failure report were in {} (removed now)",
        work.path().display()
    );
    Ok(())
}

/// Devices in the zero-downtime part.
const DEVICES: u64 = 12;

/// The zero-downtime path on a second fleet (`gateway-NN`, devices that follow their job):
/// register --carry, handoff, the devices move, verify --require-connected, retire
/// --require-connected; every device 0 seconds offline.
fn zero_downtime(sim: &SimHandle, dir: &Path) -> anyhow::Result<()> {
    let certs: Vec<(String, String)> = (0..DEVICES).map(|i| fake_certificate(9000 + i)).collect();
    let thing = |i: usize| format!("gateway-{i:02}");
    let target = |i: usize| {
        if i.is_multiple_of(2) {
            "222222222222"
        } else {
            "333333333333"
        }
    };
    let mut accounts = BTreeMap::from([(
        SOURCE.to_string(),
        SeedAccount {
            policies: vec![SeedPolicy {
                name: "gateway-policy".into(),
                document: Some(policy("client/*")),
            }],
            things: (0..certs.len())
                .map(|i| SeedThing {
                    name: thing(i),
                    ..Default::default()
                })
                .collect(),
            certificates: certs
                .iter()
                .enumerate()
                .map(|(i, (id, pem))| SeedCertificate {
                    id: id.clone(),
                    pem: Some(pem.clone()),
                    status: "ACTIVE".into(),
                    policies: vec!["gateway-policy".into()],
                    things: vec![thing(i)],
                    ..Default::default()
                })
                .collect(),
            // Each device reads its job, reports SUCCEEDED and moves 200 ms later.
            devices: Some(SeedDevices {
                default: None,
                things: (0..certs.len())
                    .map(|i| {
                        (
                            thing(i),
                            DeviceSetting {
                                delay_ms: Some(200),
                                ..DeviceSetting::of(DeviceBehaviour::Follow)
                            },
                        )
                    })
                    .collect(),
            }),
            ..Default::default()
        },
    )]);
    // Seeing a device arrive needs fleet indexing with connectivity in the targets.
    for t in ["222222222222", "333333333333"] {
        accounts.insert(
            t.to_string(),
            SeedAccount {
                indexing: Some(SeedIndexing {
                    thing_indexing_mode: Some("REGISTRY".into()),
                    thing_connectivity_indexing_mode: Some("STATUS".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
    }
    sim.seed(Seed {
        region: "us-east-1".into(),
        accounts,
    })
    .map_err(anyhow::Error::msg)?;
    let manifest = dir.join("gateways.csv");
    let mut text = String::from("certificate_id,target_account\n");
    for (i, (id, _)) in certs.iter().enumerate() {
        text.push_str(&format!("{id},{}\n", target(i)));
    }
    std::fs::write(&manifest, text)?;
    let document = dir.join("handoff.json");
    std::fs::write(
        &document,
        r#"{"operation": "move-endpoint", "endpoint": "{endpoint}", "account": "{account}", "region": "{region}"}"#,
    )?;
    let m = manifest.display().to_string();
    let d = document.display().to_string();
    let targets = ["--target-profile-template", "migrate-{account}"];
    println!("\n\n##### The zero-downtime path: {DEVICES} gateways whose devices follow their job");
    step(
        "10. register a copy of each certificate in its target, carrying policy and thing (the devices keep working on the source)",
        &[&["register", m.as_str(), "--carry"][..], &targets].concat(),
    )?;
    step(
        "11. handoff: one job per target, aimed at a thing group in the source, telling each device its target's endpoint",
        &[&["handoff", m.as_str(), "--document", d.as_str()][..], &targets].concat(),
    )?;
    // The devices answer their job and reconnect to their target (polled, not slept).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let arrived = sim
            .devices()
            .iter()
            .filter(|dev| {
                dev.thing.starts_with("gateway-")
                    && dev.connected_to.as_deref().is_some_and(|a| a != SOURCE)
            })
            .count() as u64;
        if arrived == DEVICES {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "only {arrived} of {DEVICES} devices moved within a minute"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    step(
        "12. status --devices: each certificate's handoff execution in the source and its device's connection in the target (read-only)",
        &[&["status", m.as_str(), "--devices"][..], &targets].concat(),
    )?;
    let verified = step(
        "13. verify --require-connected: every certificate ok in its target, its device connected there (the source still holds its copies)",
        &[&["verify", m.as_str(), "--require-connected"][..], &targets].concat(),
    )?;
    anyhow::ensure!(
        verified == 3,
        "verify should count the source's ACTIVE copies as still_in_source (exit {verified})"
    );
    step(
        "14. retire --require-connected: deactivate the source's copies of exactly the certificates whose device is connected in its target",
        &[
            &["retire", m.as_str(), "--deactivate", "--require-connected"][..],
            &targets,
        ]
        .concat(),
    )?;
    let verified = step(
        "15. verify --require-connected again: every certificate ok",
        &[&["verify", m.as_str(), "--require-connected"][..], &targets].concat(),
    )?;
    anyhow::ensure!(
        verified == 0,
        "verify found a certificate not ok (exit {verified})"
    );
    step(
        "16. handoff --cleanup: every device answered, so the jobs and the wave groups go",
        &[&["handoff", m.as_str(), "--cleanup"][..], &targets].concat(),
    )?;
    println!("\nthe devices, as the simulator saw them:");
    let mut worst: f64 = 0.0;
    for dev in sim
        .devices()
        .iter()
        .filter(|d| d.thing.starts_with("gateway-"))
    {
        println!(
            "  {}  connected to {}  seconds offline: {}",
            dev.thing,
            dev.connected_to.as_deref().unwrap_or("nothing"),
            dev.seconds_offline
        );
        worst = worst.max(dev.seconds_offline);
    }
    anyhow::ensure!(worst == 0.0, "a device was offline for {worst} s");
    println!("every device moved to its target account with 0 seconds offline");
    Ok(())
}

/// Runs one command line of the tool in-process, as the binary would; returns its exit code.
fn step(title: &str, args: &[&str]) -> anyhow::Result<i32> {
    println!("\n=== {title}\n$ iot-cert-migrate {}", args.join(" "));
    let argv: Vec<PathBuf> = std::iter::once("iot-cert-migrate")
        .chain(args.iter().copied())
        .map(PathBuf::from)
        .collect();
    let cli = Cli::try_parse_from(argv)?;
    iot_cert_migrate::init_logging(&cli.global);
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(iot_cert_migrate::run(cli))?;
    println!("(exit code {})", code.code());
    Ok(code.code())
}
