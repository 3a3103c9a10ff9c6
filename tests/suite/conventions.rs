//! Conventions (issue 24): what the tool writes, and where. On a terminal: short log lines,
//! their details from `-v`, and not one escape sequence under `NO_COLOR`; without a
//! terminal, a clean run says nothing on stderr. Existence checks that AWS answers with 404
//! are calls, not errors. `plan` names each certificate once, with what it needs, and the
//! flags of the whole manifest. No lock file outlives a run. A spreadsheet's extra column is
//! a warning, not a reason to refuse the manifest. Counts are spelt in the right number.

use std::process::Command;
use std::time::Duration;

use crate::carry::carried_fleet;
use crate::harness::*;

const LIMIT: Duration = Duration::from_secs(120);

/// The binary as `account`, with the progress display left to the tool.
fn auto(env: &Env, account: &str, args: &[&str]) -> Command {
    let mut c = env.cmd_as(account, args);
    c.env_remove("IOT_CERT_MIGRATE_PROGRESS");
    c
}

/// Runs `cmd` with stdout and stderr piped.
fn piped(mut cmd: Command) -> Run {
    Run::from(cmd.output().expect("binary runs"))
}

/// Seeds `numbers` INACTIVE and bare (nothing to prepare) and writes manifest `name` with a
/// `notes` column the tool does not read.
fn fleet_with_notes(env: &Env, name: &str, numbers: std::ops::Range<u64>) -> Vec<String> {
    let ids = env.fleet(name, numbers, "INACTIVE", &[], &[]);
    let mut text = String::from("certificate_id,target_account,notes\n");
    for id in &ids {
        text.push_str(&format!("{id},{TARGET},hall 3\n"));
    }
    env.write(name, &text);
    ids
}

#[test]
fn no_color_on_a_terminal_means_not_one_escape_sequence() {
    let env = Env::unlimited();
    // 30 certificates at 10 calls per second: about 3 s, long enough for the bar to show.
    // The extra column makes a warning: a log line on the terminal too.
    fleet_with_notes(&env, "m.csv", 0..30);
    let mut cmd = auto(&env, SOURCE, &["transfer", "m.csv"]);
    cmd.env("NO_COLOR", "1");
    let run = run_on_terminal(cmd, LIMIT);
    assert_eq!(run.code, 0, "{}", run.screen);
    assert!(
        run.screen.contains("WARN") && run.screen.contains("ignoring column \"notes\""),
        "no warning line:\n{}",
        run.screen
    );
    assert!(
        run.screen.contains("transferring ["),
        "no progress bar:\n{}",
        run.screen
    );
    assert!(run.screen.contains("transfer summary"), "{}", run.screen);
    assert!(
        !run.has_escapes(),
        "escapes under NO_COLOR:\n{:?}",
        run.screen
    );

    // clap's help and errors follow NO_COLOR too.
    let mut help = auto(&env, SOURCE, &["transfer", "--help"]);
    help.env("NO_COLOR", "1");
    let help = run_on_terminal(help, LIMIT);
    assert_eq!(help.code, 0, "{}", help.screen);
    assert!(!help.has_escapes(), "{:?}", help.screen);
    let mut wrong = auto(&env, SOURCE, &["transfer", "--no-such-flag"]);
    wrong.env("NO_COLOR", "1");
    let wrong = run_on_terminal(wrong, LIMIT);
    assert_eq!(wrong.code, 2, "{}", wrong.screen);
    assert!(!wrong.has_escapes(), "{:?}", wrong.screen);

    // The same run without NO_COLOR does write escapes (colour, the bar's redraws): the
    // check above can see them.
    fleet_with_notes(&env, "m2.csv", 30..60);
    let coloured = run_on_terminal(auto(&env, SOURCE, &["transfer", "m2.csv"]), LIMIT);
    assert_eq!(coloured.code, 0, "{}", coloured.screen);
    assert!(coloured.has_escapes(), "{:?}", coloured.screen);
}

/// What a screen shows of `line`: the text after its last carriage return (the progress
/// bar is rubbed out with one before a log line is written).
fn visible(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    line.rsplit('\r').next().unwrap_or(line)
}

/// Whether `line` shows a time to the second and then `level`.
fn short_line(line: &str, level: &str) -> bool {
    let line = visible(line);
    let Some((time, rest)) = line.split_once(' ') else {
        return false;
    };
    // 2026-11-22T01:14:17Z: 20 characters, no fraction of a second.
    time.len() == 20
        && time.ends_with('Z')
        && !time.contains('.')
        && humantime::parse_rfc3339(time).is_ok()
        && rest.trim_start().starts_with(level)
}

#[test]
fn on_a_terminal_log_lines_are_short_and_their_details_come_with_v() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    env.run(&["transfer", "m.csv"]).expect_code(0);
    env.run_as(TARGET, &["accept", "m.csv"]).expect_code(0);
    // Rejecting what this account accepted already: a warning per certificate, with the
    // certificate as a key=value detail. (Each reject keeps its own ledger, so that the
    // second one asks AWS again.)
    let reject = |ledger: &str, verbose: bool| {
        let mut args = vec![
            "reject",
            "m.csv",
            "--reason",
            "wrong fleet",
            "--ledger",
            ledger,
        ];
        if verbose {
            args.push("-v");
        }
        let mut cmd = auto(&env, TARGET, &args);
        cmd.env("NO_COLOR", "1");
        run_on_terminal(cmd, LIMIT)
    };
    let plain = reject("r1.jsonl", false);
    assert_eq!(plain.code, 0, "{}", plain.screen);
    let warnings: Vec<&str> = plain
        .screen
        .lines()
        .filter(|l| l.contains("had already accepted"))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", plain.screen);
    for w in &warnings {
        assert!(short_line(w, "WARN"), "not short: {w:?}");
        assert!(!w.contains("certificate="), "a detail without -v: {w:?}");
        assert!(!ids.iter().any(|id| w.contains(id.as_str())), "{w:?}");
    }

    let verbose = reject("r2.jsonl", true);
    assert_eq!(verbose.code, 0, "{}", verbose.screen);
    let warnings: Vec<&str> = verbose
        .screen
        .lines()
        .filter(|l| l.contains("had already accepted"))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", verbose.screen);
    for w in &warnings {
        assert!(short_line(w, "WARN"), "not short: {w:?}");
        assert!(
            ids.iter()
                .any(|id| w.contains(&format!("certificate={id}"))),
            "no detail with -v: {w:?}"
        );
    }
}

#[test]
fn without_a_terminal_a_clean_run_writes_nothing_on_stderr() {
    let env = Env::unlimited();
    carried_fleet(&env, 3);
    let mut args = vec!["transfer", "m.csv", "--carry"];
    args.extend(PREPARE);
    let transfer = piped(auto(&env, SOURCE, &args));
    transfer.expect_code(0);
    assert_eq!(transfer.stderr, "", "a clean transfer wrote on stderr");
    assert!(
        transfer.stdout.contains("transfer summary"),
        "{}",
        transfer.stdout
    );

    let accept = piped(auto(&env, TARGET, &["accept", "m.csv", "--carry"]));
    accept.expect_code(0);
    assert_eq!(accept.stderr, "", "a clean accept --carry wrote on stderr");

    // Lines that are asked for still come: --progress-interval without a terminal.
    let plan = piped(auto(
        &env,
        SOURCE,
        &[
            "plan",
            "m.csv",
            "--progress-interval",
            "0.1",
            "--rate-scale",
            "0.3",
        ],
    ));
    plan.expect_code(0);
    assert!(
        plan.stderr.contains("progress: planning "),
        "{}",
        plan.stderr
    );
}

#[test]
fn existence_checks_answered_with_404_are_calls_not_errors() {
    let env = Env::unlimited();
    carried_fleet(&env, 3);
    let mut args = vec!["transfer", "m.csv", "--carry"];
    args.extend(PREPARE);
    env.run(&args).expect_code(0);
    // In the empty target every object carry rebuilds is looked up first, and missing.
    let accept = env.run_as(
        TARGET,
        &[
            "--output",
            "json",
            "accept",
            "m.csv",
            "--carry",
            "--metrics-file",
            "m.prom",
        ],
    );
    accept.expect_code(0);
    let calls = &accept.json()["calls"];
    for op in [
        "DescribeThing",
        "DescribeThingType",
        "DescribeThingGroup",
        "GetPolicy",
    ] {
        assert!(
            calls[op]["calls"].as_u64().unwrap_or(0) > 0,
            "{op} was not asked: {calls}"
        );
        assert_eq!(calls[op]["errors"], 0, "{op}: {calls}");
    }
    let created = env.sim.stats().calls_of("CreateThing");
    assert_eq!(
        created, 3,
        "the lookups answered 404: each thing was created"
    );
    let prom = std::fs::read_to_string(env.path("m.prom")).unwrap();
    let errors: Vec<&str> = prom
        .lines()
        .filter(|l| l.starts_with("iot_cert_migrate_errors_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(errors.is_empty(), "errors in the metrics: {errors:?}");
}

#[test]
fn plan_names_each_certificate_once_with_what_it_needs_and_the_flags_of_the_manifest() {
    let env = Env::unlimited();
    let everything = cert_id(1);
    let ready = cert_id(2);
    let with_policy = cert_id(3);
    let missing = cert_id(4);
    env.seed(
        SOURCE,
        REGION,
        vec![
            cert(&everything, "ACTIVE", &["p1"], &["thing-1"]),
            cert(&ready, "INACTIVE", &[], &[]),
            cert(&with_policy, "INACTIVE", &["p2"], &[]),
        ],
    );
    let ids = [&everything, &ready, &with_policy, &missing];
    let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.to_string(), TARGET)).collect();
    env.manifest("m.csv", &rows);

    let text = env.run(&["plan", "m.csv"]);
    text.expect_code(0);
    let out = &text.stdout;
    for id in ids {
        assert_eq!(out.matches(id.as_str()).count(), 1, "{id} not once:\n{out}");
    }
    let line = |id: &str| out.lines().find(|l| l.contains(id)).unwrap().to_string();
    assert!(
        line(&everything).ends_with(
            "needs --deactivate (ACTIVE) --detach-policies (p1) --detach-things (thing-1)"
        ),
        "{out}"
    );
    assert!(line(&ready).ends_with("  ready"), "{out}");
    assert!(
        line(&with_policy).ends_with("needs --detach-policies (p2)"),
        "{out}"
    );
    assert!(
        line(&missing).ends_with("not found in the source account"),
        "{out}"
    );
    assert!(
        out.contains("\ntransfer needs: --deactivate --detach-policies --detach-things\n"),
        "{out}"
    );
    assert!(
        out.contains("\nno flag moves 1 certificate (not_found 1)\n"),
        "{out}"
    );
    assert!(
        out.starts_with("plan for m.csv: 4 certificates in source account"),
        "{out}"
    );

    // The JSON keeps its categories, and says the flags in one field.
    let json = env.run(&["--output", "json", "plan", "m.csv"]);
    json.expect_code(0);
    let j = json.json();
    assert_eq!(
        j["flags_needed"],
        serde_json::json!(["--deactivate", "--detach-policies", "--detach-things"])
    );
    assert_eq!(j["categories"]["has_policies"]["count"], 2);
    assert_eq!(j["categories"]["ready"]["count"], 1);

    // One certificate, in the singular; nothing to ask for.
    env.manifest("one.csv", &[(ready.clone(), TARGET)]);
    let one = env.run(&["plan", "one.csv"]);
    one.expect_code(0);
    assert!(
        one.stdout
            .starts_with("plan for one.csv: 1 certificate in source account"),
        "{}",
        one.stdout
    );
    assert!(
        one.stdout.contains("\ntransfer needs no flag\n"),
        "{}",
        one.stdout
    );
    let j = env.run(&["--output", "json", "plan", "one.csv"]).json();
    assert_eq!(j["flags_needed"], serde_json::json!([]));
}

#[test]
fn plan_mode_register_with_carry_shows_the_carry_section() {
    let env = Env::unlimited();
    carried_fleet(&env, 2);
    env.write(
        "aws-config",
        &format!("[profile t]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    );
    let plan = |output: &str| {
        Run::from(
            env.cmd(&[
                "--output",
                output,
                "plan",
                "m.csv",
                "--mode",
                "register",
                "--carry",
                "--target-profile",
                "t",
            ])
            .env("AWS_CONFIG_FILE", env.path("aws-config"))
            .output()
            .expect("binary runs"),
        )
    };
    let text = plan("text");
    text.expect_code(0);
    assert!(
        text.stdout
            .starts_with("register plan for m.csv: 2 certificates"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("carry (what `--carry` would create in each target):"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!("target {TARGET}: ")),
        "{}",
        text.stdout
    );
    let json = plan("json");
    json.expect_code(0);
    let j = json.json();
    assert_eq!(j["mode"], "register");
    let counts = &j["carry"]["targets"][TARGET]["counts"];
    assert_eq!(counts["thing"]["create"], 2, "{j}");
    assert_eq!(counts["policy"]["create"], 3, "{j}");
}

#[test]
fn no_lock_file_outlives_a_run_and_a_stale_one_is_taken_over() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    let lock = env.path("m.ledger.jsonl.lock");
    env.run(&["transfer", "m.csv"]).expect_code(0);
    assert!(!lock.exists(), "a clean exit left the lock file");

    // A run that stops before any change (exit 2: the one new row is not in the caller's
    // account) leaves none either.
    let mut rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
    rows.push((cert_id(99), TARGET));
    env.manifest("m.csv", &rows);
    env.run(&["transfer", "m.csv"]).expect_code(2);
    assert!(!lock.exists(), "exit 2 left the lock file");

    // A killed run's lock file (no one holds it) does not stop the next run.
    std::fs::write(&lock, "4194303\n").unwrap();
    let again = env.run(&["--output", "json", "transfer", "m.csv"]);
    again.expect_code(2);
    assert!(!lock.exists(), "the stale lock file was left");
}

#[test]
fn an_extra_manifest_column_is_one_warning_then_ignored() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    let mut text = String::from("certificate_id,notes,target_account,owner\n");
    for id in &ids {
        text.push_str(&format!("{id},\"hall 3, rack 2\",{TARGET},ops\n"));
    }
    env.write("m.csv", &text);
    let validate = env.run(&["validate", "m.csv"]);
    validate.expect_code(0);
    assert_eq!(
        validate.stdout.trim(),
        "m.csv: valid, 2 certificates, 1 warning",
        "{}",
        validate.stdout
    );
    assert_eq!(validate.stderr.lines().count(), 1, "{}", validate.stderr);
    assert!(
        validate
            .stderr
            .contains("m.csv:1: ignoring columns \"notes\", \"owner\""),
        "{}",
        validate.stderr
    );
    let transfer = env.run(&["--output", "json", "transfer", "m.csv"]);
    transfer.expect_code(0);
    assert_eq!(transfer.count("transferred"), 2);

    // A misspelt column is still refused: it is most likely a mistake.
    env.write(
        "typo.csv",
        &format!(
            "certificate_id,target_account,regoin\n{},{TARGET},eu-west-1\n",
            ids[0]
        ),
    );
    let typo = env.run(&["validate", "typo.csv"]);
    typo.expect_code(2);
    assert!(
        typo.stderr
            .contains("unknown column \"regoin\" (did you mean \"region\"?)"),
        "{}",
        typo.stderr
    );
}
