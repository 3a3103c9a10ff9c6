//! Jobs, thing group removal, connectivity data and the device model, through the real
//! `aws-sdk-iot` client: executions per targeted thing (snapshot and continuous),
//! cancel and delete, rollout, abort; GetThingConnectivityData; devices that follow,
//! ignore, reject or stay offline, and move between accounts as their certificate and
//! policies allow.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_iot::types::{
    AbortAction, AbortConfig, AbortCriteria, JobExecutionFailureType, JobExecutionStatus,
    JobExecutionsRolloutConfig, JobStatus, TargetSelection,
};
use common::*;
use iot_sim::{
    DeviceBehaviour, DeviceControl, DeviceSetting, DeviceState, Seed, SeedIndexing, SeedPolicy,
    SeedThing, SeedThingGroup, SimConfig, SimHandle, Simulator,
};

const LIMIT: Duration = Duration::from_secs(20);

fn code<E>(e: &aws_sdk_iot::error::SdkError<E, aws_sdk_iot::config::http::HttpResponse>) -> String
where
    E: aws_sdk_iot::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    err_info(e).0
}

fn group_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iot:{REGION}:{account}:thinggroup/{name}")
}

fn thing_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iot:{REGION}:{account}:thing/{name}")
}

fn policy(account: &str) -> SeedPolicy {
    SeedPolicy {
        name: "device".into(),
        document: Some(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:{REGION}:{account}:client/${{iot:Connection.Thing.ThingName}}"}}]}}"#
        )),
    }
}

fn indexing_on() -> SeedIndexing {
    SeedIndexing {
        thing_indexing_mode: Some("REGISTRY".into()),
        thing_connectivity_indexing_mode: Some("STATUS".into()),
        ..Default::default()
    }
}

/// Account A: things `dev-0` .. `dev-{n-1}`, each with its own ACTIVE certificate (number
/// = index) with policy `device`, in group `wave` (the odd ones in `wave`'s child `sub`);
/// account B: the same certificates registered ACTIVE with B's policy `device` and the
/// same things attached. Indexing with connectivity on in both.
fn two_accounts(n: u32) -> Seed {
    let mut seed = seed_of(vec![(A, vec![]), (B, vec![])]);
    for account in [A, B] {
        let acc = seed.accounts.get_mut(account).unwrap();
        acc.policies = vec![policy(account)];
        acc.indexing = Some(indexing_on());
        acc.things = (0..n)
            .map(|i| SeedThing {
                name: format!("dev-{i}"),
                groups: match (account, i % 2) {
                    (B, _) => vec![],
                    (_, 0) => vec!["wave".into()],
                    _ => vec!["sub".into()],
                },
                ..Default::default()
            })
            .collect();
        if account == A {
            acc.thing_groups = vec![
                SeedThingGroup {
                    name: "wave".into(),
                    ..Default::default()
                },
                SeedThingGroup {
                    name: "sub".into(),
                    parent: Some("wave".into()),
                    ..Default::default()
                },
            ];
        }
        acc.certificates = (0..n)
            .map(|i| {
                let mut c = cert(i, "ACTIVE");
                c.policies = vec!["device".into()];
                c.things = vec![format!("dev-{i}")];
                c
            })
            .collect();
    }
    seed
}

fn spawn(seed: Seed) -> SimHandle {
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed);
    Simulator::spawn(config).unwrap()
}

fn b_endpoint() -> String {
    iot_sim::world::data_endpoint(B, REGION, "iot:Data-ATS").unwrap()
}

fn document() -> String {
    format!(r#"{{"operation":"move","endpoint":"{}"}}"#, b_endpoint())
}

async fn create(
    client: &aws_sdk_iot::Client,
    id: &str,
    target: &str,
    selection: TargetSelection,
    doc: &str,
) -> Result<(), String> {
    client
        .create_job()
        .job_id(id)
        .targets(target)
        .document(doc)
        .target_selection(selection)
        .job_executions_rollout_config(
            JobExecutionsRolloutConfig::builder()
                .maximum_per_minute(1000)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code(&e))
}

/// Thing name -> execution status of `job`.
async fn executions(client: &aws_sdk_iot::Client, job: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = client
            .list_job_executions_for_job()
            .job_id(job)
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        for s in page.execution_summaries() {
            let thing = s.thing_arn().unwrap().rsplit('/').next().unwrap();
            let status = s.job_execution_summary().unwrap().status().unwrap();
            out.insert(thing.to_string(), status.as_str().to_string());
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < LIMIT, "{what}: not within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn device<'a>(devices: &'a [DeviceState], thing: &str) -> &'a DeviceState {
    devices
        .iter()
        .find(|d| d.thing == thing && d.account == A)
        .unwrap_or_else(|| panic!("no device {thing}"))
}

#[tokio::test]
async fn a_snapshot_job_has_one_execution_per_member_of_its_group_and_its_subgroups() {
    let sim = spawn(two_accounts(5));
    let a = iot(&sim.url(), A);
    create(
        &a,
        "w1",
        &group_arn(A, "wave"),
        TargetSelection::Snapshot,
        "{}",
    )
    .await
    .unwrap();
    let all = executions(&a, "w1").await;
    let things: Vec<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(things, ["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"]);
    assert!(all.values().all(|s| s == "QUEUED"), "{all:?}");
    let job = a.describe_job().job_id("w1").send().await.unwrap();
    let job = job.job().unwrap();
    assert_eq!(job.status(), Some(&JobStatus::InProgress));
    assert_eq!(job.target_selection(), Some(&TargetSelection::Snapshot));
    assert_eq!(
        job.job_process_details().unwrap().number_of_queued_things(),
        Some(5)
    );
    let doc = a.get_job_document().job_id("w1").send().await.unwrap();
    assert_eq!(doc.document(), Some("{}"));
    let e = a
        .describe_job_execution()
        .job_id("w1")
        .thing_name("dev-3")
        .send()
        .await
        .unwrap();
    let e = e.execution().unwrap();
    assert_eq!(e.status(), Some(&JobExecutionStatus::Queued));
    assert_eq!(e.execution_number(), Some(1));
    assert_eq!(e.thing_arn(), Some(thing_arn(A, "dev-3").as_str()));
    let for_thing = a
        .list_job_executions_for_thing()
        .thing_name("dev-3")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = for_thing
        .execution_summaries()
        .iter()
        .map(|s| s.job_id().unwrap())
        .collect();
    assert_eq!(ids, ["w1"]);
    // A job id is unique in its account: the second create is refused, and changes nothing.
    let again = create(
        &a,
        "w1",
        &thing_arn(A, "dev-0"),
        TargetSelection::Snapshot,
        "{}",
    )
    .await;
    assert_eq!(again, Err("ResourceAlreadyExistsException".into()));
    assert_eq!(executions(&a, "w1").await.len(), 5);
    // ... in its account only.
    let b = iot(&sim.url(), B);
    create(
        &b,
        "w1",
        &thing_arn(B, "dev-0"),
        TargetSelection::Snapshot,
        "{}",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn create_job_refusals() {
    let sim = spawn(two_accounts(1));
    let a = iot(&sim.url(), A);
    let wave = group_arn(A, "wave");
    let cases: Vec<(&str, Result<(), String>)> = vec![
        (
            "not JSON",
            create(&a, "j1", &wave, TargetSelection::Snapshot, "not json").await,
        ),
        (
            "missing group",
            create(
                &a,
                "j2",
                &group_arn(A, "nope"),
                TargetSelection::Snapshot,
                "{}",
            )
            .await,
        ),
        (
            "other account's group",
            create(
                &a,
                "j3",
                &group_arn(B, "wave"),
                TargetSelection::Snapshot,
                "{}",
            )
            .await,
        ),
        (
            "bad id",
            create(&a, "no spaces", &wave, TargetSelection::Snapshot, "{}").await,
        ),
    ];
    let codes: Vec<(&str, String)> = cases
        .into_iter()
        .map(|(what, r)| (what, r.unwrap_err()))
        .collect();
    assert_eq!(
        codes,
        [
            ("not JSON", "InvalidRequestException".to_string()),
            ("missing group", "ResourceNotFoundException".to_string()),
            (
                "other account's group",
                "InvalidRequestException".to_string()
            ),
            ("bad id", "InvalidRequestException".to_string()),
        ]
    );
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(32_768));
    assert_eq!(
        create(&a, "j4", &wave, TargetSelection::Snapshot, &big).await,
        Err("InvalidRequestException".into())
    );
    let too_fast = a
        .create_job()
        .job_id("j5")
        .targets(&wave)
        .document("{}")
        .job_executions_rollout_config(
            JobExecutionsRolloutConfig::builder()
                .maximum_per_minute(1001)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&too_fast), "InvalidRequestException");
    let missing = a.describe_job().job_id("j1").send().await.unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFoundException");
}

#[tokio::test]
async fn a_continuous_job_reaches_things_that_join_later_and_removes_those_that_leave() {
    let sim = spawn(two_accounts(4));
    let a = iot(&sim.url(), A);
    a.create_thing_group()
        .thing_group_name("late")
        .send()
        .await
        .unwrap();
    create(
        &a,
        "c1",
        &group_arn(A, "late"),
        TargetSelection::Continuous,
        "{}",
    )
    .await
    .unwrap();
    assert!(executions(&a, "c1").await.is_empty());
    for thing in ["dev-0", "dev-1"] {
        a.add_thing_to_thing_group()
            .thing_group_name("late")
            .thing_name(thing)
            .send()
            .await
            .unwrap();
    }
    // Adding again is a no-op: no second execution.
    a.add_thing_to_thing_group()
        .thing_group_name("late")
        .thing_name("dev-0")
        .send()
        .await
        .unwrap();
    let all = executions(&a, "c1").await;
    assert_eq!(all.len(), 2, "{all:?}");
    a.remove_thing_from_thing_group()
        .thing_group_name("late")
        .thing_name("dev-1")
        .send()
        .await
        .unwrap();
    // Removing what is not there succeeds (idempotent).
    a.remove_thing_from_thing_group()
        .thing_group_name("late")
        .thing_name("dev-1")
        .send()
        .await
        .unwrap();
    let all = executions(&a, "c1").await;
    assert_eq!(all["dev-0"], "QUEUED");
    assert_eq!(all["dev-1"], "REMOVED");
    let job = a.describe_job().job_id("c1").send().await.unwrap();
    assert_eq!(job.job().unwrap().status(), Some(&JobStatus::InProgress));

    // Cancel: the queued execution is cancelled; delete needs no force then.
    let refused = a.delete_job().job_id("c1").send().await.unwrap_err();
    assert_eq!(code(&refused), "InvalidStateTransitionException");
    a.cancel_job().job_id("c1").send().await.unwrap();
    assert_eq!(executions(&a, "c1").await["dev-0"], "CANCELED");
    a.delete_job().job_id("c1").send().await.unwrap();
    let gone = a.describe_job().job_id("c1").send().await.unwrap_err();
    assert_eq!(code(&gone), "ResourceNotFoundException");

    // Groups: deleting one with a child is refused, one that does not exist is not.
    let refused = a
        .delete_thing_group()
        .thing_group_name("wave")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "InvalidRequestException");
    a.delete_thing_group()
        .thing_group_name("late")
        .send()
        .await
        .unwrap();
    a.delete_thing_group()
        .thing_group_name("never-was")
        .send()
        .await
        .unwrap();
    let dump = sim.state();
    let things = &dump.account(A, REGION).unwrap().things;
    assert!(things
        .iter()
        .all(|t| !t.groups.contains(&"late".to_string())));
}

#[tokio::test]
async fn connectivity_data_needs_connectivity_indexing_and_an_existing_thing() {
    let mut seed = two_accounts(2);
    seed.accounts.get_mut(B).unwrap().indexing = None;
    let sim = spawn(seed);
    let (a, b) = (iot(&sim.url(), A), iot(&sim.url(), B));
    let off = b
        .get_thing_connectivity_data()
        .thing_name("dev-0")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&off), "InvalidRequestException");
    let missing = a
        .get_thing_connectivity_data()
        .thing_name("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFoundException");
    let never = a
        .get_thing_connectivity_data()
        .thing_name("dev-0")
        .send()
        .await
        .unwrap();
    assert_eq!(never.connected(), Some(false));
    assert!(never.timestamp().is_none());
    sim.set_connectivity(&iot_sim::ConnectivityChange {
        account: A.into(),
        region: REGION.into(),
        thing: "dev-1".into(),
        connected: true,
        timestamp: Some(1_700_000_000_000),
        disconnect_reason: None,
    })
    .unwrap();
    let on = a
        .get_thing_connectivity_data()
        .thing_name("dev-1")
        .send()
        .await
        .unwrap();
    assert_eq!(on.connected(), Some(true));
    assert_eq!(on.timestamp().unwrap().secs(), 1_700_000_000);
}

fn behaviours(things: &[(&str, DeviceBehaviour)]) -> DeviceControl {
    DeviceControl {
        account: A.into(),
        region: REGION.into(),
        default: Some(DeviceSetting {
            behaviour: DeviceBehaviour::Follow,
            delay_ms: Some(20),
        }),
        things: things
            .iter()
            .map(|(t, b)| {
                let s = DeviceSetting {
                    behaviour: *b,
                    delay_ms: Some(20),
                };
                (t.to_string(), s)
            })
            .collect(),
    }
}

#[tokio::test]
async fn devices_answer_their_job_as_their_behaviour_says_and_followers_move() {
    let sim = spawn(two_accounts(4));
    sim.set_devices(&behaviours(&[
        ("dev-1", DeviceBehaviour::Ignore),
        ("dev-2", DeviceBehaviour::Reject),
        ("dev-3", DeviceBehaviour::Offline),
    ]))
    .unwrap();
    let devices = sim.devices();
    assert_eq!(devices.len(), 4, "{devices:?}");
    for thing in ["dev-0", "dev-1", "dev-2"] {
        assert_eq!(device(&devices, thing).connected_to.as_deref(), Some(A));
    }
    assert_eq!(device(&devices, "dev-3").connected_to, None);
    let a = iot(&sim.url(), A);
    create(
        &a,
        "move",
        &group_arn(A, "wave"),
        TargetSelection::Snapshot,
        &document(),
    )
    .await
    .unwrap();
    let all = wait_for("the follower and the rejecter answer", async || {
        let all = executions(&a, "move").await;
        (all["dev-0"] == "SUCCEEDED" && all["dev-2"] == "REJECTED").then_some(all)
    })
    .await;
    assert_eq!(all["dev-1"], "QUEUED", "ignore leaves it queued");
    assert_eq!(all["dev-3"], "QUEUED", "offline never hears of it");
    let devices = sim.devices();
    let follower = device(&devices, "dev-0");
    assert_eq!(follower.connected_to.as_deref(), Some(B));
    assert_eq!(follower.endpoint_account, B);
    assert_eq!(follower.seconds_offline, 0.0, "it moved without a gap");
    for thing in ["dev-1", "dev-2"] {
        assert_eq!(device(&devices, thing).connected_to.as_deref(), Some(A));
    }
    assert!(device(&devices, "dev-3").seconds_offline > 0.0);
    // What fleet indexing says on each side.
    let b = iot(&sim.url(), B);
    let there = b
        .get_thing_connectivity_data()
        .thing_name("dev-0")
        .send()
        .await
        .unwrap();
    assert_eq!(there.connected(), Some(true));
    let here = a
        .get_thing_connectivity_data()
        .thing_name("dev-0")
        .send()
        .await
        .unwrap();
    assert_eq!(here.connected(), Some(false));
    assert_eq!(
        here.disconnect_reason().map(|r| r.as_str()),
        Some("CLIENT_INITIATED_DISCONNECT")
    );
    let e = a
        .describe_job_execution()
        .job_id("move")
        .thing_name("dev-0")
        .send()
        .await
        .unwrap();
    let details = e.execution().unwrap().status_details().unwrap();
    assert_eq!(
        details.details_map().unwrap()["endpoint"],
        b_endpoint(),
        "the device says where it went"
    );
}

#[tokio::test]
async fn a_follower_stays_connected_until_the_target_takes_it_and_counts_only_the_real_gap() {
    // A real-shaped certificate (its id is the SHA-256 of its DER), so that B's
    // registration of its PEM is the same certificate. B holds no copy yet: the follower
    // acknowledges, keeps its session in A, loses it when A deactivates its certificate,
    // and connects to B once B registers it with its policy and thing.
    let (id, pem) = iot_sim::fake_certificate(7);
    let mut seed = two_accounts(0);
    for account in [A, B] {
        seed.accounts.get_mut(account).unwrap().things = vec![SeedThing {
            name: "dev-0".into(),
            ..Default::default()
        }];
    }
    seed.accounts.get_mut(A).unwrap().certificates = vec![iot_sim::SeedCertificate {
        pem: Some(pem.clone()),
        policies: vec!["device".into()],
        things: vec!["dev-0".into()],
        ..iot_sim::SeedCertificate {
            id: id.clone(),
            status: "ACTIVE".into(),
            ..Default::default()
        }
    }];
    let sim = spawn(seed);
    sim.set_devices(&behaviours(&[])).unwrap();
    let a = iot(&sim.url(), A);
    create(
        &a,
        "move",
        &thing_arn(A, "dev-0"),
        TargetSelection::Snapshot,
        &document(),
    )
    .await
    .unwrap();
    wait_for("acknowledged", async || {
        (executions(&a, "move").await["dev-0"] == "SUCCEEDED").then_some(())
    })
    .await;
    let d = sim.devices();
    let dev = device(&d, "dev-0");
    assert_eq!(dev.endpoint_account, B);
    assert_eq!(dev.connected_to.as_deref(), Some(A), "B cannot take it yet");
    assert_eq!(dev.seconds_offline, 0.0);
    a.update_certificate()
        .certificate_id(&id)
        .new_status(aws_sdk_iot::types::CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    let offline_from = Instant::now();
    assert_eq!(device(&sim.devices(), "dev-0").connected_to, None);
    let why = a
        .get_thing_connectivity_data()
        .thing_name("dev-0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        why.disconnect_reason().map(|r| r.as_str()),
        Some("AUTH_ERROR")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = iot(&sim.url(), B);
    let registered = b
        .register_certificate_without_ca()
        .certificate_pem(pem)
        .status(aws_sdk_iot::types::CertificateStatus::Active)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.certificate_id(), Some(id.as_str()));
    let arn = format!("arn:aws:iot:{REGION}:{B}:cert/{id}");
    b.attach_policy()
        .policy_name("device")
        .target(&arn)
        .send()
        .await
        .unwrap();
    // The policy names the thing: not yet attached to the copy, it does not let it in.
    assert_eq!(device(&sim.devices(), "dev-0").connected_to, None);
    b.attach_thing_principal()
        .thing_name("dev-0")
        .principal(&arn)
        .send()
        .await
        .unwrap();
    let gap_bound = offline_from.elapsed().as_secs_f64();
    let d = sim.devices();
    let dev = device(&d, "dev-0");
    assert_eq!(dev.connected_to.as_deref(), Some(B));
    assert!(
        dev.seconds_offline >= 0.3 && dev.seconds_offline <= gap_bound + 0.01,
        "offline {} s, the gap was at most {gap_bound} s",
        dev.seconds_offline
    );
}

#[tokio::test]
async fn an_abort_criterion_cancels_the_job_and_its_pending_executions() {
    let sim = spawn(two_accounts(4));
    sim.set_devices(&DeviceControl {
        account: A.into(),
        region: REGION.into(),
        default: Some(DeviceSetting {
            behaviour: DeviceBehaviour::Reject,
            delay_ms: Some(10),
        }),
        things: BTreeMap::from([(
            "dev-3".to_string(),
            DeviceSetting::of(DeviceBehaviour::Ignore),
        )]),
    })
    .unwrap();
    let a = iot(&sim.url(), A);
    a.create_job()
        .job_id("doomed")
        .targets(group_arn(A, "wave"))
        .document(document())
        .abort_config(
            AbortConfig::builder()
                .criteria_list(
                    AbortCriteria::builder()
                        .failure_type(JobExecutionFailureType::All)
                        .action(AbortAction::Cancel)
                        .threshold_percentage(50.0)
                        .min_number_of_executed_things(2)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    wait_for("aborted", async || {
        let job = a.describe_job().job_id("doomed").send().await.unwrap();
        (job.job().unwrap().status() == Some(&JobStatus::Canceled)).then_some(())
    })
    .await;
    let all = executions(&a, "doomed").await;
    assert_eq!(all["dev-3"], "CANCELED", "{all:?}");
    assert!(
        all.values().filter(|s| *s == "REJECTED").count() >= 2,
        "{all:?}"
    );
}

#[tokio::test]
async fn a_detached_policy_disconnects_and_a_group_policy_connects() {
    let sim = spawn(two_accounts(1));
    sim.set_devices(&behaviours(&[])).unwrap();
    let a = iot(&sim.url(), A);
    let arn = format!("arn:aws:iot:{REGION}:{A}:cert/{}", cert_id(0));
    a.detach_policy()
        .policy_name("device")
        .target(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(device(&sim.devices(), "dev-0").connected_to, None);
    let why = a
        .get_thing_connectivity_data()
        .thing_name("dev-0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        why.disconnect_reason().map(|r| r.as_str()),
        Some("FORBIDDEN_ACCESS")
    );
    // The same policy on the thing's group lets it back in.
    a.attach_policy()
        .policy_name("device")
        .target(group_arn(A, "wave"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        device(&sim.devices(), "dev-0").connected_to.as_deref(),
        Some(A)
    );
}
