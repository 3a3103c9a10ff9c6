//! The verdict engine behind the read-only commands (`plan`, `plan --mode register`, `plan
//! --carry`, `verify`): Ctrl-C stops them cleanly (exit 4, the report says how far they got,
//! the CSV is the old one or the new one whole) and they show progress.

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;

/// Longest a run of these tests may take.
const LIMIT: Duration = Duration::from_secs(120);

/// Certificates in the fleets: at the rates below, a run takes about 10 s, and the signal
/// lands after about one.
const FLEET: u64 = 200;

/// Slow enough that the signal lands mid-run; four rows in flight finish at once after it.
const PACE: [&str; 10] = [
    "--rate",
    "DescribeCertificate=20",
    "--rate",
    "ListAttachedPolicies=20",
    "--rate",
    "ListPrincipalThings=20",
    "--concurrency",
    "4",
    "--progress-interval",
    "0.1",
];

/// A profile `t` holding the target account's credentials.
fn target_profile(env: &Env) {
    env.write(
        "aws-config",
        &format!("[profile t]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    );
}

/// Starts the binary with `args` and the pace above; stdout and stderr go to files.
fn spawn(env: &Env, name: &str, args: &[&str]) -> Spawned {
    let out = env.path(&format!("{name}.out"));
    let err = env.path(&format!("{name}.err"));
    let child = env
        .cmd(args)
        .args(PACE)
        .env("AWS_CONFIG_FILE", env.path("aws-config"))
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .spawn()
        .expect("binary starts");
    Spawned { child, out, err }
}

/// Waits until the simulator has answered `calls` DescribeCertificate calls: the run is
/// under way, far from its end.
fn wait_for_describes(env: &Env, run: &mut Spawned, calls: u64) {
    wait_until("the run to be under way", LIMIT, || {
        env.sim.stats().calls_of("DescribeCertificate") >= calls || run.exited()
    });
    assert!(
        !run.exited(),
        "the run ended before the signal: {}",
        run.stderr()
    );
}

/// The certificate ids of a CSV, in its order.
fn csv_ids(path: &std::path::Path) -> Vec<String> {
    read_csv(path)
        .into_iter()
        .map(|r| r["certificate_id"].clone())
        .collect()
}

#[test]
fn sigint_during_plan_finishes_the_certificates_in_flight_says_how_far_it_got_and_exits_4() {
    let env = Env::unlimited();
    target_profile(&env);
    let ids = env.fleet("m.csv", 0..FLEET, "INACTIVE", &[], &[]);
    std::fs::write(env.path("plan.csv"), "an older plan\n").unwrap();
    let mut run = spawn(&env, "plan", &["plan", "m.csv", "--plan-out", "plan.csv"]);
    wait_for_describes(&env, &mut run, 20);
    run.signal("INT");
    let run = run.finish(LIMIT);
    run.expect_code(4);

    // The text report says how far it got, and counts that many.
    let stopped = run
        .stdout
        .lines()
        .find(|l| l.starts_with("stopped by signal after "))
        .unwrap_or_else(|| panic!("no stop line:\n{}", run.stdout));
    let words: Vec<&str> = stopped.split_whitespace().collect();
    let after: usize = words[4].parse().expect("a count");
    assert_eq!(words[5..8], ["of", "200", "certificates:"], "{stopped}");
    assert!(
        (20..FLEET as usize).contains(&after),
        "stopped after {after}: {stopped}"
    );
    assert!(
        run.stdout
            .starts_with(&format!("plan for m.csv: {after} certificates")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() > 2 && words[0] == "ready" && words[1] == after.to_string()
        }),
        "{}",
        run.stdout
    );
    // Rows in flight finished and no other started: one DescribeCertificate per row judged.
    assert_eq!(
        env.sim.stats().calls_of("DescribeCertificate"),
        after as u64
    );
    // The new CSV, whole: the first certificates of the manifest, in order.
    assert_eq!(csv_ids(&env.path("plan.csv")), ids[..after]);
    let hidden: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "left beside the CSV: {hidden:?}");
}

#[test]
fn sigint_during_verify_exits_4_with_the_counts_so_far_and_a_kill_leaves_the_old_csv() {
    let env = Env::unlimited();
    target_profile(&env);
    let ids = env.fleet("m.csv", 0..FLEET, "ACTIVE", &[], &[]);
    std::fs::write(env.path("verify.csv"), "an older verdict\n").unwrap();
    let verify = [
        "--output",
        "json",
        "verify",
        "m.csv",
        "--target-profile",
        "t",
        "--out",
        "verify.csv",
    ];

    // Killed mid-run: the old CSV is still there, whole.
    let mut killed = spawn(&env, "killed", &verify);
    wait_for_describes(&env, &mut killed, 20);
    let _ = killed.child.kill();
    killed.wait(LIMIT);
    assert_eq!(
        std::fs::read_to_string(env.path("verify.csv")).unwrap(),
        "an older verdict\n"
    );

    env.sim.reset_stats();
    let mut run = spawn(&env, "int", &verify);
    wait_for_describes(&env, &mut run, 20);
    run.signal("INT");
    let run = run.finish(LIMIT);
    // Stopped wins over "some certificates are not ok" (3).
    run.expect_code(4);
    let json = run.json();
    let stopped = &json["stopped"];
    assert_eq!(stopped["reason"], "stopped by signal", "{json}");
    assert_eq!(stopped["of"], FLEET, "{json}");
    let after = stopped["after"].as_u64().unwrap();
    assert!((10..FLEET).contains(&after), "{json}");
    assert_eq!(json["certificates"], after, "{json}");
    // Never transferred: each is still the source's.
    assert_eq!(json["counts"]["not_transferred"], after, "{json}");
    assert!(
        run.stderr.contains("stopped by signal"),
        "the stop is logged: {}",
        run.stderr
    );
    // The new CSV, whole: every not-ok certificate judged, in manifest order.
    assert_eq!(csv_ids(&env.path("verify.csv")), ids[..after as usize]);
}

#[test]
fn plan_mode_register_shows_progress_lines_without_a_terminal() {
    let env = Env::unlimited();
    target_profile(&env);
    env.fleet("m.csv", 0..30, "ACTIVE", &[], &[]);
    let run = spawn(
        &env,
        "register",
        &[
            "plan",
            "m.csv",
            "--mode",
            "register",
            "--target-profile",
            "t",
            "--progress",
            "never",
        ],
    )
    .finish(LIMIT);
    run.expect_code(0);
    assert!(run.stdout.contains("registrable"), "{}", run.stdout);
    // Two DescribeCertificate per certificate at 20/s per account: over a second, ten
    // lines or so, counting up to the 30.
    let done: Vec<u64> = run
        .stderr
        .lines()
        .filter_map(|l| l.split("progress: planning ").nth(1))
        .map(|rest| rest.split('/').next().unwrap().parse().unwrap())
        .collect();
    assert!(done.len() >= 2, "progress lines: {}", run.stderr);
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    assert!(done.iter().all(|n| *n <= 30), "{done:?}");
    assert!(run.stderr.contains("/30 "), "{}", run.stderr);
}
