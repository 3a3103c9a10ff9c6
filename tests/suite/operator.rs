//! The operator's view: quiet logs by default and one clear line for a missing region or
//! missing credentials; grouped help with examples; shell completions and man pages; the
//! metrics file for cron; the migration report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// The binary with the harness's hermetic settings, but with instance metadata "available"
/// at the simulator's address, which answers no metadata request: what a laptop outside
/// EC2 sees, where aws-config's region and credentials chains end in a failed lookup.
fn without_instance_metadata(env: &Env, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", env.sim.url());
    c
}

/// Lines that only the SDK or aws-config write (their log lines and debug dumps).
fn sdk_noise(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains(" WARN ")
                || l.contains(" DEBUG ")
                || l.contains("IMDS")
                || l.contains("FailedToLoadToken")
                || l.contains("Response {")
        })
        .collect()
}

#[test]
fn a_missing_region_is_one_error_line_and_exit_1() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..1, "INACTIVE", &[], &[]);
    let out = without_instance_metadata(&env, &["transfer", "m.csv"])
        .env_remove("AWS_REGION")
        .output()
        .expect("binary runs");
    let run = Run::from(out);
    run.expect_code(1);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        ["error: no AWS region: pass --region, set AWS_REGION, or set region in the profile"],
        "stderr:\n{}",
        run.stderr
    );
    // Nothing was sent: no certificate moved.
    assert_eq!(env.sim.stats().transfers_effective, 0);
}

#[test]
fn missing_credentials_are_one_error_line_and_exit_1() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..1, "INACTIVE", &[], &[]);
    let out = without_instance_metadata(&env, &["transfer", "m.csv", "--max-attempts", "1"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("binary runs");
    let run = Run::from(out);
    run.expect_code(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got:\n{}", run.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("AWS credentials"),
        "{}",
        lines[0]
    );
    assert!(lines[0].len() < 300, "not a dump: {}", lines[0]);
    assert!(!lines[0].contains(" { "), "no debug dump: {}", lines[0]);

    // The same with a named profile that does not exist: the profile is named.
    let out = without_instance_metadata(&env, &["--profile", "nope", "transfer", "m.csv"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("binary runs");
    let run = Run::from(out);
    run.expect_code(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got:\n{}", run.stderr);
    assert!(lines[0].contains("profile nope"), "{}", lines[0]);
}

#[test]
fn by_default_a_clean_run_writes_nothing_on_stderr_and_sdk_warnings_need_v() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..3, "ACTIVE", &["p"], &["t"]);
    // The harness points AWS_CONFIG_FILE at a file that does not exist: aws-config warns.
    let mut args = vec!["transfer", "m.csv"];
    args.extend(PREPARE);
    let run = env.run(&args);
    run.expect_code(0);
    assert_eq!(run.stderr, "", "a clean run is silent on stderr");

    // Read-only, and the SDK loads the configuration again: its warnings show from -v on.
    let run = env.run(&["-v", "plan", "m.csv"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("WARN") && run.stderr.contains("AWS_CONFIG_FILE"),
        "-v shows the SDK's warnings:\n{}",
        run.stderr
    );
    let run = env.run(&["plan", "m.csv"]);
    run.expect_code(0);
    assert_eq!(run.stderr, "", "without -v they are not shown");
}

#[test]
fn vv_adds_one_line_per_sdk_request_and_stays_well_under_a_megabyte() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..28, "ACTIVE", &["p"], &["t"]);
    let mut args = vec!["-vv", "transfer", "m.csv"];
    args.extend(PREPARE);
    let run = env.run(&args);
    run.expect_code(0);
    let bytes = run.stderr.len();
    // 7 requests per certificate, 197 in all: about 200 bytes each.
    assert!(
        bytes < 128 * 1024,
        "-vv wrote {bytes} bytes of stderr for 28 certificates"
    );
    let summaries = run
        .stderr
        .lines()
        .filter(|l| l.contains("IoT.TransferCertificate") && l.contains("request_id"))
        .count();
    assert_eq!(summaries, 28, "one summary per TransferCertificate request");
    // Wire level (signing, headers) is for -vvv only.
    for wire in ["canonical_request", "x-amz-date", "aws_smithy"] {
        assert!(!run.stderr.contains(wire), "-vv shows {wire}");
    }
}

#[test]
fn vvv_shows_the_wire_level() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..1, "INACTIVE", &[], &[]);
    let run = env.run(&["-vvv", "transfer", "m.csv"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("x-amz-date"),
        "-vvv shows the signed headers"
    );
}

/// An example binary (`target/debug/examples/NAME`, beside the test binary's directory),
/// if it is at least as new as its source and the library: `cargo test` builds the
/// examples, `cargo test --test suite` does not.
fn fresh_example(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let bin = target.join("examples").join(name);
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .map_err(|_| format!("{} is not built (cargo test builds it)", bin.display()))?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let libraries = std::fs::read_dir(target.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libiot_cert_migrate-") && n.ends_with(".rlib"))
        });
    let source = repo.join("examples").join(format!("{name}.rs"));
    for input in std::iter::once(source).chain(libraries) {
        let changed = std::fs::metadata(&input).and_then(|m| m.modified());
        if changed.is_ok_and(|t| t > built) {
            return Err(format!(
                "{} is older than {} (cargo test rebuilds it)",
                bin.display(),
                input.display()
            ));
        }
    }
    Ok(bin)
}

#[test]
fn the_demo_prints_no_warning() {
    let demo = match fresh_example("demo") {
        Ok(bin) => bin,
        Err(why) => return skip_or_fail(&why),
    };
    let mut c = Command::new(&demo);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("IOT_CERT_MIGRATE_") {
            c.env_remove(k);
        }
    }
    let out = c.output().expect("demo runs");
    let run = Run::from(out);
    run.expect_code(0);
    assert!(
        run.stdout.contains("7. status of the target side"),
        "{}",
        run.stdout
    );
    assert_eq!(sdk_noise(&run.stderr), Vec::<&str>::new(), "{}", run.stderr);
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
}

/// The sections of a `--help` text: heading, then the long option names under it.
fn help_sections(help: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            sections.push((line.trim_end_matches(':').to_string(), Vec::new()));
            continue;
        }
        let Some((heading, options)) = sections.last_mut() else {
            continue;
        };
        // Option lines: "  -v, --verbose..." or "      --ledger <LEDGER>"; deeper lines are
        // descriptions, and the examples are command lines.
        let long = line
            .strip_prefix("      --")
            .or_else(|| line.strip_prefix("  -")?.split_once(", --").map(|(_, l)| l));
        if let Some(t) = long.filter(|_| heading != "Examples") {
            let name = t.split([' ', '.', '=']).next().unwrap_or("");
            options.push(name.to_string());
        }
    }
    sections
}

#[test]
fn help_groups_options_under_headings_shows_each_once_and_has_examples() {
    let env = Env::unlimited();
    let own: [(&str, &[&str]); 4] = [
        (
            "transfer",
            &["deactivate", "detach-policies", "dry-run", "accept-profile"],
        ),
        ("cancel", &["restore"]),
        ("accept", &["set-as-active", "attach-policy"]),
        ("reject", &["reason"]),
    ];
    for (command, changes) in own {
        let run = env.run(&[command, "--help"]);
        run.expect_code(0);
        let sections = help_sections(&run.stdout);
        let headings: Vec<&str> = sections.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(
            headings,
            [
                "Arguments",
                "Options",
                "What to change",
                "Pacing",
                "Run limits",
                "Files and output",
                "AWS connection",
                "Examples"
            ],
            "{command} --help:\n{}",
            run.stdout
        );
        let under = |heading: &str| -> &Vec<String> {
            &sections.iter().find(|(h, _)| h == heading).unwrap().1
        };
        for o in changes {
            assert!(
                under("What to change").contains(&o.to_string()),
                "{command}: --{o}"
            );
        }
        for o in ["rate", "rate-scale", "max-attempts", "concurrency"] {
            assert!(under("Pacing").contains(&o.to_string()), "{command}: --{o}");
        }
        for o in ["max-duration", "max-items", "grace"] {
            assert!(
                under("Run limits").contains(&o.to_string()),
                "{command}: --{o}"
            );
        }
        for o in [
            "ledger",
            "failures",
            "output",
            "progress",
            "log-format",
            "verbose",
            "quiet",
        ] {
            assert!(
                under("Files and output").contains(&o.to_string()),
                "{command}: --{o}"
            );
        }
        for o in [
            "profile",
            "region",
            "endpoint-url",
            "connect-timeout",
            "read-timeout",
        ] {
            assert!(
                under("AWS connection").contains(&o.to_string()),
                "{command}: --{o}"
            );
        }
        // Every option once, global ones included.
        let mut all: Vec<&String> = sections.iter().flat_map(|(_, o)| o).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an option is listed twice:\n{}", run.stdout);
        assert!(
            run.stdout.contains(&format!("iot-cert-migrate {command}")),
            "examples of {command}"
        );
        // -h stays short: no examples.
        let short = env.run(&[command, "-h"]);
        assert!(!short.stdout.contains("Examples:"), "{}", short.stdout);
    }
    let top = env.run(&["--help"]);
    assert!(top.stdout.contains("Examples:") && top.stdout.contains("Exit codes:"));
}

#[test]
fn bash_completions_load_in_bash_and_complete_commands_and_flags() {
    let Some(bash) = on_path("bash") else {
        return skip_or_fail("no bash on PATH");
    };
    let env = Env::unlimited();
    let script = env.run(&["completions", "bash"]);
    script.expect_code(0);
    let file = env.write("iot-cert-migrate.bash", &script.stdout);
    // Source the script, show what it registered, then ask it as bash would on <TAB>.
    let probe = r#"
        source "$1" || exit 10
        complete -p iot-cert-migrate || exit 11
        f=$(complete -p iot-cert-migrate | sed -E 's/.* -F ([^ ]+) .*/\1/')
        ask() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
                COMPREPLY=(); "$f" iot-cert-migrate "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                echo "$* => ${COMPREPLY[*]}"; }
        ask iot-cert-migrate tra
        ask iot-cert-migrate transfer --dea
        ask iot-cert-migrate completions ''
    "#;
    let out = Command::new(bash)
        .args(["--norc", "--noprofile", "-c", probe, "probe"])
        .arg(&file)
        .output()
        .expect("bash runs");
    let run = Run::from(out);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("complete ") && lines[0].ends_with(" iot-cert-migrate"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("iot-cert-migrate tra => transfer"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("transfer --dea => --deactivate"),
        "{}",
        run.stdout
    );
    let shells = lines.last().unwrap();
    for sh in ["bash", "zsh", "fish", "powershell", "elvish"] {
        assert!(shells.contains(sh), "completions offers {sh}: {shells}");
    }
}

#[test]
fn completions_for_every_shell_name_the_commands() {
    let env = Env::unlimited();
    for sh in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = env.run(&["completions", sh]);
        run.expect_code(0);
        for word in ["transfer", "accept", "deactivate", "max-duration"] {
            assert!(run.stdout.contains(word), "{sh} completions lack {word}");
        }
    }
    let run = env.run(&["completions", "tcsh"]);
    run.expect_code(2);
}

#[test]
fn man_pages_render_with_man() {
    let env = Env::unlimited();
    let run = env.run(&["man", "--out", "man1"]);
    run.expect_code(0);
    let pages: Vec<&str> = run.stdout.lines().collect();
    assert!(pages.len() >= 10, "a page per command: {pages:?}");
    // Without --out: the main page on stdout, the same as the file.
    let main = env.run(&["man"]);
    main.expect_code(0);
    let file = std::fs::read_to_string(env.path("man1/iot-cert-migrate.1")).unwrap();
    assert_eq!(main.stdout, file);
    assert!(file.starts_with(".ie") && file.contains(".TH iot-cert-migrate 1"));

    let Some(man) = on_path("man") else {
        return skip_or_fail("no man on PATH (apt-get install man-db)");
    };
    for (page, expect) in [
        (
            "iot-cert-migrate.1",
            &["NAME", "SYNOPSIS", "SUBCOMMANDS", "EXIT STATUS"][..],
        ),
        (
            "iot-cert-migrate-transfer.1",
            &[
                "WHAT TO CHANGE",
                "--deactivate",
                "PACING",
                "EXAMPLES",
                "EXIT STATUS",
            ][..],
        ),
    ] {
        let out = Command::new(&man)
            .args(["--warnings", "-l"])
            .arg(env.path(&format!("man1/{page}")))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man runs");
        let r = Run::from(out);
        r.expect_code(0);
        assert_eq!(r.stderr, "", "{page}: groff warnings");
        for e in expect {
            assert!(
                r.stdout.contains(e),
                "{page} rendered without {e}:\n{}",
                r.stdout
            );
        }
    }
}

/// One sample of a metrics file as prometheus_client's parser reads it.
#[derive(Debug, serde::Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    /// The family's type (counter, gauge).
    kind: String,
}

/// Parses a metrics file with the Prometheus client library's own parser (an independent
/// reading of the text format): its samples, or why it could not.
fn parse_metrics(python: &Path, file: &Path) -> Vec<Sample> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
out = []
for family in text_string_to_metric_families(text):
    if not family.documentation:
        sys.exit("no HELP for " + family.name)
    for s in family.samples:
        out.append({"name": s.name, "labels": s.labels, "value": s.value, "kind": family.type})
print(json.dumps(out))
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python runs");
    let run = Run::from(out);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).expect("parser output")
}

/// The value of the one sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
    found[0].value
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn the_metrics_file_parses_with_prometheus_client_and_matches_the_simulator() {
    let python = match python_with("prometheus_client") {
        Ok(p) => p,
        Err(why) => return skip_or_fail(&why),
    };
    // Documented quotas, and rates 5 times higher: throttling happens and is counted.
    let env = Env::new(iot_sim::SimConfig::default());
    let ids = env.fleet("m.csv", 0..24, "ACTIVE", &["p"], &["t"]);
    let missing: Vec<String> = (100..104).map(cert_id).collect();
    let rows: Vec<(String, &str)> = ids
        .iter()
        .chain(&missing)
        .map(|id| (id.clone(), TARGET))
        .collect();
    env.manifest("m.csv", &rows);
    let before = unix_now();
    let mut args = vec![
        "transfer",
        "m.csv",
        "--rate-scale",
        "5",
        "--metrics-file",
        "m.prom",
    ];
    args.extend(PREPARE);
    let run = env.run(&args);
    let after = unix_now();
    run.expect_code(3);

    let samples = parse_metrics(&python, &env.path("m.prom"));
    let common = [("command", "transfer"), ("manifest", "m.csv")];
    for s in &samples {
        assert!(s.name.starts_with("iot_cert_migrate_"), "{}", s.name);
        assert_eq!(
            s.labels.get("command").map(String::as_str),
            Some("transfer")
        );
        assert_eq!(
            s.kind == "counter",
            s.name.ends_with("_total"),
            "{}",
            s.name
        );
    }
    let state = |st: &str| {
        value(
            &samples,
            "iot_cert_migrate_items",
            &[common[0], ("state", st)],
        )
    };
    // The simulator's view: who is pending transfer, who never existed.
    let sim = env.state();
    let pending_in_sim = ids
        .iter()
        .filter(|id| {
            sim.find(id)
                .is_some_and(|(_, c)| c.status == "PENDING_TRANSFER")
        })
        .count() as f64;
    assert_eq!(pending_in_sim, 24.0);
    assert_eq!(state("transferred"), pending_in_sim);
    // Not in the source account: they wait for the right credentials (or region).
    assert_eq!(state("waiting"), missing.len() as f64);
    assert_eq!(state("failed"), 0.0);
    for st in ["pending", "in_doubt", "accepted", "cancelled"] {
        assert_eq!(state(st), 0.0, "{st}");
    }
    // The same numbers as `status`.
    let status = env.run(&["--output", "json", "status", "m.csv"]);
    for (st, n) in status.json()["counts"].as_object().unwrap() {
        assert_eq!(state(st), n.as_f64().unwrap(), "{st}");
    }

    // Calls and throttles per operation: what the simulator received and refused.
    let stats = env.sim.stats();
    let mut throttled = 0.0;
    for op in [
        "DescribeCertificate",
        "UpdateCertificate",
        "ListAttachedPolicies",
        "DetachPolicy",
        "ListPrincipalThings",
        "DetachThingPrincipal",
        "TransferCertificate",
        "GetCallerIdentity",
    ] {
        let mut labels = vec![("operation", op), ("region", REGION)];
        if op != "GetCallerIdentity" {
            labels.push(("account", SOURCE));
        }
        let calls = value(&samples, "iot_cert_migrate_calls_total", &labels);
        assert_eq!(calls, stats.calls_of(op) as f64, "{op} calls");
        let t = value(&samples, "iot_cert_migrate_throttled_total", &labels);
        assert_eq!(t, stats.throttled_of(op) as f64, "{op} throttled");
        throttled += t;
    }
    assert!(throttled > 0.0, "5 times the quota is throttled");
    // AWS's 404 to DescribeCertificate of the certificates that do not exist is an answer
    // ("no such certificate": the item fails), a call and not an error.
    let describe = [("operation", "DescribeCertificate")];
    let errors = value(&samples, "iot_cert_migrate_errors_total", &describe);
    assert_eq!(errors, 0.0, "the calls counted above include them");

    let start = value(
        &samples,
        "iot_cert_migrate_run_start_timestamp_seconds",
        &common,
    );
    let end = value(
        &samples,
        "iot_cert_migrate_run_end_timestamp_seconds",
        &common,
    );
    assert!(
        before <= start && start <= end && end <= after,
        "{before} {start} {end} {after}"
    );
    assert_eq!(
        value(&samples, "iot_cert_migrate_last_exit_code", &common),
        3.0
    );
    assert_eq!(value(&samples, "iot_cert_migrate_running", &common), 0.0);
    let processed = value(&samples, "iot_cert_migrate_items_processed_total", &common);
    assert_eq!(processed, 28.0);
    let rate = value(&samples, "iot_cert_migrate_items_per_second", &common);
    let expected = processed / (end - start);
    assert!(
        (rate - expected).abs() / expected < 0.1,
        "{rate} vs {expected}"
    );
}

#[test]
fn the_metrics_file_is_rewritten_whole_at_every_interval_while_the_run_goes_on() {
    let python = python_with("prometheus_client");
    let config = iot_sim::SimConfig {
        latency: std::time::Duration::from_millis(25),
        ..iot_sim::SimConfig::unlimited()
    };
    let fleet = ActiveFleet::new(config, 28);
    let file = fleet.env.path("m.prom");
    let extra = [
        "--metrics-file",
        "m.prom",
        "--progress-interval",
        "0.1",
        "--concurrency",
        "2",
    ];
    let mut spawned = fleet.spawn("t", &extra);
    // Every read sees a whole file (the last family is always there), and some read sees
    // the run half done.
    let mut seen_midway = None;
    wait_until(
        "a snapshot of the run half done",
        std::time::Duration::from_secs(60),
        || {
            if let Ok(text) = std::fs::read_to_string(&file) {
                assert!(
                    text.ends_with('\n')
                        && text.contains("iot_cert_migrate_run_start_timestamp_seconds{"),
                    "a torn metrics file:\n{text}"
                );
                let processed = text
                    .lines()
                    .find(|l| l.starts_with("iot_cert_migrate_items_processed_total{"))
                    .and_then(|l| l.rsplit_once(' '))
                    .and_then(|(_, v)| v.parse::<f64>().ok())
                    .unwrap();
                let running = text.contains(
                    "iot_cert_migrate_running{command=\"transfer\",manifest=\"m.csv\"} 1",
                );
                if running && processed > 0.0 && processed < 28.0 {
                    seen_midway = Some(text);
                }
            }
            seen_midway.is_some() || spawned.exited()
        },
    );
    let midway = seen_midway.expect("the file was refreshed while the run went on");
    assert!(
        !midway.contains("last_exit_code"),
        "no run had ended yet:\n{midway}"
    );
    let run = spawned.finish(std::time::Duration::from_secs(60));
    run.expect_code(0);
    match python {
        Ok(python) => {
            let samples = parse_metrics(&python, &file);
            let common = [("command", "transfer")];
            assert_eq!(
                value(&samples, "iot_cert_migrate_last_exit_code", &common),
                0.0
            );
            let done = [("command", "transfer"), ("state", "transferred")];
            assert_eq!(value(&samples, "iot_cert_migrate_items", &done), 28.0);
        }
        Err(why) => skip_or_fail(&why),
    }
}

#[test]
fn a_run_that_fails_early_still_records_its_exit_code_and_a_locked_one_does_not() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    let run = env.run(&["transfer", "m.csv", "--metrics-file", "m.prom"]);
    run.expect_code(0);
    // No region: the run ends before it reads the manifest's state. The counts of the last
    // run stay; the exit code and end time are this run's.
    let out = env
        .cmd(&["transfer", "m.csv", "--metrics-file", "m.prom"])
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    Run::from(out).expect_code(1);
    let text = std::fs::read_to_string(env.path("m.prom")).unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_string()
    };
    assert!(
        line("iot_cert_migrate_last_exit_code{").ends_with(" 1"),
        "{text}"
    );
    assert!(line("iot_cert_migrate_running{").ends_with(" 0"), "{text}");
    assert!(
        text.contains("iot_cert_migrate_items{command=\"transfer\",manifest=\"m.csv\",state=\"transferred\"} 2"),
        "{text}"
    );
    // A second run while another holds the ledger leaves the file to that run.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.path("m.ledger.jsonl.lock"))
        .unwrap();
    lock.try_lock().expect("the test holds the ledger's lock");
    let before = std::fs::read_to_string(env.path("m.prom")).unwrap();
    env.run(&["transfer", "m.csv", "--metrics-file", "m.prom"])
        .expect_code(5);
    assert_eq!(std::fs::read_to_string(env.path("m.prom")).unwrap(), before);
}
