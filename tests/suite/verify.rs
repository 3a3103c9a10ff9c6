//! `verify` (issue 12): read-only on both sides, one verdict per certificate, the first that
//! applies; exit 0 when every certificate works in its target, 3 otherwise.

use std::collections::BTreeMap;

use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};

use crate::carry::carried_fleet;
use crate::harness::*;

/// An AWS SDK client for `account` on the simulator: the test's own hand in the target, to
/// break what the tool built.
fn sdk(env: &Env, account: &str) -> aws_sdk_iot::Client {
    let conf = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(account, "x", None, None, "test"))
        .endpoint_url(env.sim.url())
        .build();
    aws_sdk_iot::Client::from_conf(conf)
}

fn profiles(env: &Env) {
    env.write(
        "aws-config",
        &format!("[profile migrate-{TARGET}]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    );
}

fn run(env: &Env, args: &[&str]) -> Run {
    Run::from(
        env.cmd(args)
            .env("AWS_CONFIG_FILE", env.path("aws-config"))
            .output()
            .expect("binary runs"),
    )
}

fn verdicts(path: &std::path::Path) -> BTreeMap<String, (String, String)> {
    read_csv(path)
        .into_iter()
        .map(|r| {
            (
                r["certificate_id"].clone(),
                (r["category"].clone(), r["detail"].clone()),
            )
        })
        .collect()
}

#[test]
fn verify_flags_each_broken_certificate_with_its_category_and_exits_3() {
    let env = Env::unlimited();
    profiles(&env);
    let ids = carried_fleet(&env, 6);
    // Transfer all but the last; accept the first four.
    let rows = |r: std::ops::Range<usize>| -> Vec<(String, &str)> {
        ids[r].iter().map(|id| (id.clone(), TARGET)).collect()
    };
    env.manifest("t.csv", &rows(0..5));
    env.manifest("a.csv", &rows(0..4));
    let mut transfer = vec!["transfer", "t.csv", "--carry"];
    transfer.extend(PREPARE);
    run(&env, &transfer).expect_code(0);
    env.run_as(
        TARGET,
        &[
            "accept",
            "a.csv",
            "--carry",
            "--set-as-active",
            "--from-ledger",
            "t.ledger.jsonl",
        ],
    )
    .expect_code(0);

    // Break what was built: a policy detached, a thing detached, a certificate deactivated.
    let arn = |id: &str| format!("arn:aws:iot:{REGION}:{TARGET}:cert/{id}");
    let iot = sdk(&env, TARGET);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        iot.detach_policy()
            .policy_name("direct")
            .target(arn(&ids[1]))
            .send()
            .await
            .unwrap();
        iot.detach_thing_principal()
            .thing_name("thing-2")
            .principal(arn(&ids[2]))
            .send()
            .await
            .unwrap();
        iot.update_certificate()
            .certificate_id(&ids[3])
            .new_status(aws_sdk_iot::types::CertificateStatus::Inactive)
            .send()
            .await
            .unwrap();
    });
    let before = env.sim.stats();
    let out = run(
        &env,
        &[
            "--output",
            "json",
            "verify",
            "m.csv",
            "--target-profile-template",
            "migrate-{account}",
            "--from-ledger",
            "t.ledger.jsonl",
            "--out",
            "verify.csv",
        ],
    );
    out.expect_code(3);
    let after = env.sim.stats();
    for op in [
        "AttachPolicy",
        "AttachThingPrincipal",
        "UpdateCertificate",
        "CreatePolicy",
    ] {
        assert_eq!(after.calls_of(op), before.calls_of(op), "verify sent {op}");
    }
    let json = out.json();
    let counts = &json["counts"];
    assert_eq!(counts["ok"], 1, "{json}");
    assert_eq!(counts["missing_policy"], 1, "{json}");
    assert_eq!(counts["missing_thing"], 1, "{json}");
    assert_eq!(counts["inactive"], 1, "{json}");
    assert_eq!(counts["pending"], 1, "{json}");
    assert_eq!(counts["not_transferred"], 1, "{json}");
    let v = verdicts(&env.path("verify.csv"));
    assert_eq!(v.len(), 5, "only the not-ok rows: {v:?}");
    assert!(!v.contains_key(&ids[0]));
    assert_eq!(v[&ids[1]].0, "missing_policy");
    assert!(
        v[&ids[1]].1.contains("policy direct not attached"),
        "{:?}",
        v[&ids[1]]
    );
    assert_eq!(v[&ids[2]].0, "missing_thing");
    assert!(v[&ids[2]].1.contains("thing thing-2 not attached"));
    assert_eq!(v[&ids[3]].0, "inactive");
    assert_eq!(v[&ids[4]].0, "pending");
    assert_eq!(v[&ids[5]].0, "not_transferred");

    // Repaired, the accepted ones verify ok: exit 0.
    rt.block_on(async {
        iot.attach_policy()
            .policy_name("direct")
            .target(arn(&ids[1]))
            .send()
            .await
            .unwrap();
        iot.attach_thing_principal()
            .thing_name("thing-2")
            .principal(arn(&ids[2]))
            .send()
            .await
            .unwrap();
        iot.update_certificate()
            .certificate_id(&ids[3])
            .new_status(aws_sdk_iot::types::CertificateStatus::Active)
            .send()
            .await
            .unwrap();
    });
    let ok = run(
        &env,
        &[
            "--output",
            "json",
            "verify",
            "a.csv",
            "--target-profile",
            &format!("migrate-{TARGET}"),
            "--from-ledger",
            "t.ledger.jsonl",
        ],
    );
    ok.expect_code(0);
    assert_eq!(ok.json()["counts"]["ok"], 4);
}
