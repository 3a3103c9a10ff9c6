//! Credentials as organizations have them (issue 28): a role assumed in each target account
//! from one base profile (`--target-role-template`), renewed as its sessions expire; a role
//! for the source (`--source-role`); profiles as the AWS CLI has them (`credential_process`,
//! `role_arn` + `source_profile`, SSO); and a mistyped profile named at once (issue 24).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::harness::*;
use iot_sim::{fake_certificate, Refusal, Seed, SeedAccount, SeedCertificate, SeedRole, SimConfig};

/// A third target account.
const TARGET3: &str = "444444444444";
/// The targets of the three-account tests.
const TARGETS: [&str; 3] = [TARGET, TARGET2, TARGET3];
/// The role every target account has for the migration.
const ROLE_TEMPLATE: &str = "arn:aws:iam::{account}:role/migrate";

fn role_of(account: &str) -> String {
    ROLE_TEMPLATE.replace("{account}", account)
}

/// A simulator where `with_role` target accounts have a `migrate` role the source trusts.
fn sim_with_roles(with_role: &[&str], configure: impl FnOnce(&mut SimConfig)) -> Env {
    let mut config = SimConfig::unlimited();
    config.roles = with_role
        .iter()
        .map(|a| SeedRole::new(a, "migrate", &[SOURCE]))
        .collect();
    configure(&mut config);
    Env::new(config)
}

/// `n` ACTIVE certificates with real-shaped PEMs in the source, rows spread over `targets`
/// in turn, in manifest `m.csv`. Returns (id, target) per row.
fn fleet(env: &Env, n: u64, targets: &[&'static str]) -> Vec<(String, &'static str)> {
    let certs: Vec<(String, String)> = (0..n).map(fake_certificate).collect();
    let mut accounts = BTreeMap::new();
    accounts.insert(
        SOURCE.to_string(),
        SeedAccount {
            certificates: certs
                .iter()
                .map(|(id, pem)| SeedCertificate {
                    pem: Some(pem.clone()),
                    ..cert(id, "ACTIVE", &[], &[])
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
    let rows: Vec<(String, &'static str)> = certs
        .into_iter()
        .enumerate()
        .map(|(i, (id, _))| (id, targets[i % targets.len()]))
        .collect();
    let manifest: Vec<(String, &str)> = rows.iter().map(|(id, t)| (id.clone(), *t)).collect();
    env.manifest("m.csv", &manifest);
    rows
}

/// Four INACTIVE certificates without attachments, to [`TARGET`] and [`TARGET2`] in turn, in
/// manifest `m.csv`. Returns (id, target) per row.
fn inactive_fleet_in_two_targets(env: &Env) -> Vec<(String, &'static str)> {
    let ids: Vec<String> = (0..4).map(cert_id).collect();
    env.seed(
        SOURCE,
        REGION,
        ids.iter()
            .map(|id| cert(id, "INACTIVE", &[], &[]))
            .collect(),
    );
    let rows: Vec<(String, &'static str)> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, if i % 2 == 0 { TARGET } else { TARGET2 }))
        .collect();
    env.manifest("m.csv", &rows);
    rows
}

/// A profile with the keys of `account` (the simulator's account rule).
fn keys_profile(name: &str, account: &str) -> String {
    format!(
        "[profile {name}]\naws_access_key_id = {account}\naws_secret_access_key = x\nregion = {REGION}\n\n"
    )
}

/// The binary with only these profiles (AWS config file text) as credentials: no keys in
/// the environment.
fn run_with_config(env: &Env, config: &str, args: &[&str]) -> Run {
    let path = env.write("aws-config", config);
    Run::from(
        env.cmd(args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", path)
            .output()
            .expect("binary runs"),
    )
}

#[test]
fn register_and_verify_into_three_accounts_with_one_base_profile_outlive_expiring_sessions() {
    // Sessions of 2 s; the runs, one certificate at a time and paced to one source read a
    // second, last 8 s or more each.
    let lifetime = Duration::from_secs(2);
    let env = sim_with_roles(&TARGETS, |c| {
        c.session_lifetime = Some(lifetime);
    });
    let rows = fleet(&env, 9, &TARGETS);
    let config = keys_profile("base", SOURCE);
    let one_at_a_time = ["--concurrency", "1", "--rate", "DescribeCertificate=1"];

    let started = Instant::now();
    let mut args = vec!["--profile", "base", "--output", "json", "register", "m.csv"];
    args.extend(["--target-role-template", ROLE_TEMPLATE]);
    args.extend(one_at_a_time);
    let run = run_with_config(&env, &config, &args);
    let took = started.elapsed();
    run.expect_code(0);
    assert_eq!(run.count("registered"), 9, "{}", run.stdout);
    assert!(
        took > 3 * lifetime,
        "the run must outlive several sessions, took {took:?}"
    );
    let dump = env.state();
    for (id, target) in &rows {
        let there = dump
            .find_in(target, REGION, id)
            .unwrap_or_else(|| panic!("{id} not registered in {target}"));
        assert_eq!(there.status, "ACTIVE");
    }
    let stats = env.sim.stats();
    assert_eq!(
        stats.refused_of(Refusal::Expired),
        0,
        "no call was made with an expired session"
    );
    let sessions = stats.calls_of("AssumeRole");
    // At least one new session per lifetime: renewed as they expired.
    assert!(
        sessions as u128 >= took.as_millis() / lifetime.as_millis(),
        "{sessions} sessions in {took:?}"
    );

    // The zero-downtime path goes on with the same flags: retire the source's copies, then
    // verify each certificate works in its target.
    let mut args = vec!["--profile", "base", "--output", "json", "retire", "m.csv"];
    args.extend(["--target-role-template", ROLE_TEMPLATE, "--deactivate"]);
    let run = run_with_config(&env, &config, &args);
    run.expect_code(0);
    let started = Instant::now();
    let mut args = vec!["--profile", "base", "--output", "json", "verify", "m.csv"];
    args.extend(["--target-role-template", ROLE_TEMPLATE]);
    args.extend(one_at_a_time);
    let run = run_with_config(&env, &config, &args);
    let took = started.elapsed();
    run.expect_code(0);
    assert!(took > 3 * lifetime, "verify took {took:?}");
    assert_eq!(run.json()["counts"]["ok"], 9, "{}", run.stdout);
    assert_eq!(env.sim.stats().refused_of(Refusal::Expired), 0);
}

#[test]
fn a_role_that_cannot_be_assumed_is_refused_before_any_change_naming_it() {
    // TARGET3 has no role the source may assume.
    let env = sim_with_roles(&[TARGET, TARGET2], |_| {});
    fleet(&env, 6, &TARGETS);
    let config = keys_profile("base", SOURCE);
    // verify too: its missing ledger would be worth a warning, after the credentials.
    for command in ["register", "verify"] {
        let args = [
            "--profile",
            "base",
            command,
            "m.csv",
            "--target-role-template",
            ROLE_TEMPLATE,
        ];
        let run = run_with_config(&env, &config, &args);
        run.expect_code(1);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{command}: one line:\n{}", run.stderr);
        let line = lines[0];
        for part in [
            format!("target account {TARGET3}"),
            format!("cannot assume role {}", role_of(TARGET3)),
            "profile base".to_string(),
            "AccessDenied".to_string(),
        ] {
            assert!(
                line.contains(&part),
                "{command}: {part:?} missing from: {line}"
            );
        }
    }
    let stats = env.sim.stats();
    assert_eq!(stats.calls_of("RegisterCertificateWithoutCA"), 0);
    assert_eq!(stats.calls_of("DescribeCertificate"), 0, "not even a read");
    assert!(
        !env.path("m.register-ledger.jsonl").exists() || {
            ledger_events(&env.path("m.register-ledger.jsonl")).is_empty()
        }
    );
}

#[test]
fn an_external_id_the_role_asks_for_is_needed_and_enough() {
    let env = sim_with_roles(&[], |c| {
        c.roles = vec![SeedRole::new(TARGET, "migrate", &[SOURCE]).with_external_id("org-7")];
    });
    fleet(&env, 2, &[TARGET]);
    let config = keys_profile("base", SOURCE);
    let mut args = vec!["--profile", "base", "--output", "json", "register", "m.csv"];
    args.extend(["--target-role-template", ROLE_TEMPLATE]);
    let run = run_with_config(&env, &config, &args);
    run.expect_code(1);
    assert!(
        run.stderr.contains("AccessDenied")
            && run.stderr.contains(&role_of(TARGET))
            && run.stderr.contains("pass --external-id"),
        "{}",
        run.stderr
    );
    args.extend(["--external-id", "org-7", "--role-session-name", "wave-1"]);
    let run = run_with_config(&env, &config, &args);
    run.expect_code(0);
    assert_eq!(run.count("registered"), 2);
}

#[test]
fn role_flags_without_a_role_are_refused_by_the_command_line() {
    let env = Env::unlimited();
    fleet(&env, 1, &[TARGET]);
    let run = env.run(&["--external-id", "org-7", "plan", "m.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--external-id"), "{}", run.stderr);
    let run = env.run(&[
        "register",
        "m.csv",
        "--target-role-template",
        "arn:aws:iam::222222222222:role/migrate",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("{account}"), "{}", run.stderr);
    let run = env.run(&[
        "--role-duration",
        "5m",
        "register",
        "m.csv",
        "--target-role-template",
        ROLE_TEMPLATE,
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("15m to 12h"), "{}", run.stderr);
}

#[test]
fn a_source_role_acts_as_the_source_account() {
    // An operations account's keys, and a role in the source account that trusts it.
    const OPS: &str = "999999999999";
    let env = sim_with_roles(&[], |c| {
        c.roles = vec![SeedRole::new(SOURCE, "migrate", &[OPS])];
    });
    env.fleet("m.csv", 0..3, "INACTIVE", &[], &[]);
    let config = keys_profile("ops", OPS);
    let role = role_of(SOURCE);
    let run = run_with_config(
        &env,
        &config,
        &[
            "--profile",
            "ops",
            "--source-role",
            &role,
            "--output",
            "json",
            "transfer",
            "m.csv",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 3);
    assert_eq!(env.sim.stats().transfers_effective, 3);
    // The role is checked once on its own, then one session serves every call.
    let sessions = env.sim.stats().calls_of("AssumeRole");
    assert!(sessions <= 2, "{sessions} sessions: kept, not one per call");
}

#[test]
fn accept_and_reject_act_in_every_target_account_with_a_role_template() {
    let env = sim_with_roles(&[TARGET, TARGET2], |_| {});
    let rows = inactive_fleet_in_two_targets(&env);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    let config = keys_profile("base", SOURCE);
    let run = run_with_config(
        &env,
        &config,
        &[
            "--profile",
            "base",
            "--output",
            "json",
            "accept",
            "m.csv",
            "--target-role-template",
            ROLE_TEMPLATE,
        ],
    );
    run.expect_code(0);
    assert_eq!(run.count("accepted"), 4, "{}", run.stdout);
    for (id, target) in &rows {
        let c = env.cert_state(id).expect("exists");
        assert_eq!(&c.owner, *target, "{id}");
    }

    // Reject, in both accounts at once, a second wave.
    let more: Vec<String> = (10..12).map(cert_id).collect();
    env.seed(
        SOURCE,
        REGION,
        more.iter()
            .map(|id| cert(id, "INACTIVE", &[], &[]))
            .collect(),
    );
    let rows: Vec<(String, &str)> = vec![(more[0].clone(), TARGET), (more[1].clone(), TARGET2)];
    env.manifest("w2.csv", &rows);
    env.run(&["transfer", "w2.csv"]).expect_code(0);
    let run = run_with_config(
        &env,
        &config,
        &[
            "--profile",
            "base",
            "--output",
            "json",
            "reject",
            "w2.csv",
            "--reason",
            "wrong wave",
            "--target-role-template",
            ROLE_TEMPLATE,
        ],
    );
    run.expect_code(0);
    assert_eq!(run.count("rejected"), 2, "{}", run.stdout);
    for id in &more {
        assert_eq!(env.cert_state(id).expect("exists").owner, SOURCE);
    }
}

#[test]
fn transfer_accepts_in_each_target_through_its_role() {
    let env = sim_with_roles(&[TARGET, TARGET2], |_| {});
    let rows = inactive_fleet_in_two_targets(&env);
    let config = keys_profile("base", SOURCE);
    let run = run_with_config(
        &env,
        &config,
        &[
            "--profile",
            "base",
            "--output",
            "json",
            "transfer",
            "m.csv",
            // The name beside --accept-profile.
            "--accept-role-template",
            ROLE_TEMPLATE,
            "--set-as-active",
        ],
    );
    run.expect_code(0);
    for (id, target) in &rows {
        let c = env.cert_state(id).expect("exists");
        assert_eq!(
            (c.owner.as_str(), c.status.as_str()),
            (*target, "ACTIVE"),
            "{id}"
        );
    }
}

#[test]
fn a_credential_process_profile_works() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    // The process prints the source's keys, as a vault helper would; it counts its runs.
    let script = env.write(
        "creds.sh",
        &format!(
            "#!/bin/sh\necho run >> \"$(dirname \"$0\")/creds.runs\"\n\
             echo '{{\"Version\": 1, \"AccessKeyId\": \"{SOURCE}\", \"SecretAccessKey\": \"x\"}}'\n"
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = format!(
        "[profile vault]\ncredential_process = {}\nregion = {REGION}\n",
        script.display()
    );
    let run = run_with_config(
        &env,
        &config,
        &[
            "--profile",
            "vault",
            "--output",
            "json",
            "transfer",
            "m.csv",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 2);
    let runs = std::fs::read_to_string(env.path("creds.runs")).expect("the process ran");
    assert!(!runs.is_empty());
}

#[test]
fn an_assume_role_profile_works() {
    // As the AWS CLI has it: role_arn + source_profile (+ external_id), aws-config assumes it.
    let env = sim_with_roles(&[], |c| {
        c.roles = vec![SeedRole::new(TARGET, "migrate", &[SOURCE]).with_external_id("org-7")];
    });
    env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    let config = format!(
        "{}[profile target]\nrole_arn = {}\nsource_profile = base\nexternal_id = org-7\nregion = {REGION}\n",
        keys_profile("base", SOURCE),
        role_of(TARGET)
    );
    let run = run_with_config(
        &env,
        &config,
        &["--profile", "target", "--output", "json", "accept", "m.csv"],
    );
    run.expect_code(0);
    assert_eq!(run.count("accepted"), 2, "{}", run.stdout);
    assert_eq!(env.sim.stats().calls_of("AssumeRole"), 1);
}

#[test]
fn an_sso_profile_without_a_login_says_to_log_in() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..1, "INACTIVE", &[], &[]);
    let config = format!(
        "[profile corp]\nsso_session = corp\nsso_account_id = {SOURCE}\nsso_role_name = Migrate\nregion = {REGION}\n\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = {REGION}\n"
    );
    let path = env.write("aws-config", &config);
    // No token cache: a HOME of its own.
    let run = Run::from(
        env.cmd(&["--profile", "corp", "transfer", "m.csv"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", path)
            .env("HOME", env.path(""))
            .output()
            .expect("binary runs"),
    );
    run.expect_code(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{}", run.stderr);
    assert!(
        lines[0].contains("profile corp") && lines[0].contains("sso login"),
        "{}",
        lines[0]
    );
    assert_eq!(env.sim.stats().transfers_effective, 0);
}

/// An address that records whether anyone connected: instance metadata, here.
fn metadata_listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

#[test]
fn a_mistyped_profile_is_one_line_naming_it_and_the_files_before_instance_metadata() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..1, "INACTIVE", &[], &[]);
    let config = env.write(
        "aws-config",
        &format!(
            "{}{}",
            keys_profile("source", SOURCE),
            keys_profile("target", TARGET)
        ),
    );
    let credentials = env.path("no-aws-credentials");
    for (how, mut cmd) in [
        (
            "--profile",
            env.cmd(&["--profile", "sourec", "transfer", "m.csv"]),
        ),
        ("AWS_PROFILE", {
            let mut c = env.cmd(&["transfer", "m.csv"]);
            c.env("AWS_PROFILE", "sourec");
            c
        }),
        // A command with roles, and a missing ledger it would warn about later.
        ("AWS_PROFILE", {
            let mut c = env.cmd(&[
                "verify",
                "m.csv",
                "--target-role-template",
                "arn:aws:iam::{account}:role/migrate",
            ]);
            c.env("AWS_PROFILE", "sourec");
            c
        }),
    ] {
        let (imds, url) = metadata_listener();
        let out = cmd
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_REGION")
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)
            .env("AWS_CONFIG_FILE", &config)
            .output()
            .expect("binary runs");
        let run = Run::from(out);
        run.expect_code(1);
        assert_eq!(
            run.stderr.lines().collect::<Vec<_>>(),
            [format!(
                "error: profile sourec ({how}) is not defined in {} or {}; profiles there: source, target (did you mean source?)",
                config.display(),
                credentials.display()
            )],
            "{how}"
        );
        assert!(imds.accept().is_err(), "{how}: instance metadata was asked");
    }
}
