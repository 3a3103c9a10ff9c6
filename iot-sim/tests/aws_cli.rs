//! An independent client agrees: the AWS CLI (v1, botocore) against the
//! simulator, for every operation and every error.
//!
//! The CLI is `$IOT_SIM_AWS_CLI`; with `CI=true`, else `aws` on PATH, and
//! without any CLI the tests fail there. Outside CI, without `IOT_SIM_AWS_CLI`,
//! each test is skipped: hundreds of CLI start-ups take minutes, more than the
//! rest of `cargo test` (run them with `IOT_SIM_AWS_CLI=aws cargo test`).
//!
//! Every CLI call is a named [`Case`]: what it runs and what its answer must
//! be. The cases of one step are independent and run concurrently; a failed
//! expectation names its case.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use common::*;
use iot_sim::{FaultKind, SeedCertificate, SimConfig, SimHandle, Simulator};
use serde_json::Value;

#[derive(Clone)]
struct Cli {
    bin: PathBuf,
}

#[derive(Debug)]
struct Out {
    ok: bool,
    json: Value,
    stderr: String,
}

impl Out {
    /// The error code in "An error occurred (Code) when calling ...".
    fn code(&self) -> Option<&str> {
        let start = self.stderr.find("An error occurred (")? + "An error occurred (".len();
        let end = self.stderr[start..].find(')')?;
        Some(&self.stderr[start..start + end])
    }

    fn expect_ok(&self, what: &str) -> &Value {
        assert!(self.ok, "{what}: CLI failed: {}", self.stderr);
        &self.json
    }

    fn expect_err(&self, what: &str, code: &str) {
        assert!(
            !self.ok,
            "{what}: expected {code} but it succeeded: {}",
            self.json
        );
        assert_eq!(self.code(), Some(code), "{what}: stderr {}", self.stderr);
    }
}

/// How many CLI processes run at once, over all tests of this file: more only
/// makes the python start-ups fight for 2 cores.
const MAX_PARALLEL: usize = 6;

/// A counting semaphore shared by the tests of this file (they run in parallel).
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots {
    free: Mutex::new(MAX_PARALLEL),
    freed: Condvar::new(),
};

impl Slots {
    fn take(&self) {
        let mut free = self.free.lock().unwrap();
        while *free == 0 {
            free = self.freed.wait(free).unwrap();
        }
        *free -= 1;
    }

    fn try_take(&self) -> bool {
        let mut free = self.free.lock().unwrap();
        let got = *free > 0;
        if got {
            *free -= 1;
        }
        got
    }

    fn give(&self) {
        *self.free.lock().unwrap() += 1;
        self.freed.notify_one();
    }
}

/// Where `aws` is a pyenv shim, the real script (skips ~0.2 s of shim per call).
fn pyenv_aws() -> Option<PathBuf> {
    let out = Command::new("pyenv")
        .args(["which", "aws"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// What a case's answer must be.
enum Expect {
    /// Success; the closure checks the JSON output.
    Ok(Box<dyn Fn(&Value)>),
    /// Failure with this error code.
    Err(&'static str),
    /// Failure without an error code; the closure checks stderr.
    Transport(Box<dyn Fn(&str)>),
}

/// One named CLI call: access key, arguments after `--endpoint-url URL --output json`,
/// and its expected answer.
struct Case {
    name: &'static str,
    key: String,
    args: Vec<String>,
    expect: Expect,
}

fn args_of(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A case that must succeed; `check` looks at the output.
fn ok(name: &'static str, key: &str, args: &[&str], check: impl Fn(&Value) + 'static) -> Case {
    Case {
        name,
        key: key.to_string(),
        args: args_of(args),
        expect: Expect::Ok(Box::new(check)),
    }
}

/// A case that must succeed; only success is checked (its effect is checked later).
fn done(name: &'static str, key: &str, args: &[&str]) -> Case {
    ok(name, key, args, |_| {})
}

/// A case that must fail with `code`.
fn err(name: &'static str, key: &str, args: &[&str], code: &'static str) -> Case {
    Case {
        name,
        key: key.to_string(),
        args: args_of(args),
        expect: Expect::Err(code),
    }
}

/// A case that must fail below HTTP (no error code); `check` looks at stderr.
fn transport(name: &'static str, key: &str, args: &[&str], check: impl Fn(&str) + 'static) -> Case {
    Case {
        name,
        key: key.to_string(),
        args: args_of(args),
        expect: Expect::Transport(Box::new(check)),
    }
}

impl Cli {
    /// The CLI, or `None` (test skipped) outside CI when none is named.
    fn find_or_skip(test: &str) -> Option<Cli> {
        let in_ci = std::env::var("CI").as_deref() == Ok("true");
        let bin = match std::env::var_os("IOT_SIM_AWS_CLI") {
            Some(path) => PathBuf::from(path),
            None if in_ci => pyenv_aws().unwrap_or_else(|| PathBuf::from("aws")),
            None => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "{test} skipped: set IOT_SIM_AWS_CLI (e.g. to `aws`) to cross-check with the AWS CLI"
                );
                return None;
            }
        };
        let ok = Command::new(&bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Some(Cli { bin });
        }
        if in_ci {
            panic!("the AWS CLI is required in CI: set IOT_SIM_AWS_CLI or put `aws` on PATH");
        }
        // Straight to the process's stderr: eprintln! is captured by the test runner, and a
        // passing test's captured output is never shown, so the skip would go unseen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "{test} skipped: no AWS CLI (set IOT_SIM_AWS_CLI)"
        );
        None
    }

    fn spawn(&self, url: &str, key: &str, args: &[String]) -> Child {
        let mut cmd = Command::new(&self.bin);
        for var in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_IOT",
            "AWS_ENDPOINT_URL_STS",
            "AWS_CA_BUNDLE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_CONFIG_FILE", "/nonexistent/iot-sim-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/iot-sim-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PAGER", "")
            .args(["--endpoint-url", url, "--output", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("CLI starts")
    }

    fn collect(c: Child) -> Out {
        let out = c.wait_with_output().expect("CLI runs");
        SLOTS.give();
        let stdout = String::from_utf8_lossy(&out.stdout);
        Out {
            ok: out.status.success(),
            json: if stdout.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&stdout)
                    .unwrap_or_else(|e| panic!("bad CLI JSON ({e}): {stdout}"))
            },
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    /// Runs one call now with a role session's credentials (key, secret, session token).
    fn run_as_session(&self, url: &str, session: (&str, &str, &str), args: &[&str]) -> Out {
        SLOTS.take();
        let (key, secret, token) = session;
        let mut cmd = Command::new(&self.bin);
        for var in [
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_IOT",
            "AWS_ENDPOINT_URL_STS",
            "AWS_CA_BUNDLE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_CONFIG_FILE", "/nonexistent/iot-sim-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/iot-sim-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_PAGER", "")
            .args(["--endpoint-url", url, "--output", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self::collect(cmd.spawn().expect("CLI starts"))
    }

    /// Runs one call now.
    fn run(&self, url: &str, key: &str, args: &[&str]) -> Out {
        SLOTS.take();
        Self::collect(self.spawn(url, key, &args_of(args)))
    }

    /// Runs the (independent) cases concurrently, then checks each against its
    /// expectation. Returns the outputs by case name for follow-up checks.
    fn run_cases(&self, url: &str, cases: Vec<Case>) -> BTreeMap<&'static str, Out> {
        // A test waits for a slot only while it runs no CLI of its own, so
        // the tests of this file cannot deadlock on the slots.
        let mut outs: Vec<Option<Out>> = cases.iter().map(|_| None).collect();
        let mut running: VecDeque<(usize, Child)> = VecDeque::new();
        for (i, c) in cases.iter().enumerate() {
            while !SLOTS.try_take() {
                match running.pop_front() {
                    Some((j, child)) => outs[j] = Some(Self::collect(child)),
                    None => {
                        SLOTS.take();
                        break;
                    }
                }
            }
            running.push_back((i, self.spawn(url, &c.key, &c.args)));
        }
        for (j, child) in running {
            outs[j] = Some(Self::collect(child));
        }
        let mut by_name = BTreeMap::new();
        for (case, out) in cases.into_iter().zip(outs) {
            let out = out.expect("every case ran");
            match &case.expect {
                Expect::Ok(check) => check(out.expect_ok(case.name)),
                Expect::Err(code) => out.expect_err(case.name, code),
                Expect::Transport(check) => {
                    assert!(!out.ok, "{}: succeeded: {}", case.name, out.json);
                    assert_eq!(out.code(), None, "{}: {}", case.name, out.stderr);
                    check(&out.stderr);
                }
            }
            assert!(
                by_name.insert(case.name, out).is_none(),
                "two cases are named {}",
                case.name
            );
        }
        by_name
    }
}

fn with(n: u32, status: &str, policies: &[&str], things: &[&str]) -> SeedCertificate {
    let mut c = cert(n, status);
    c.policies = policies.iter().map(|s| s.to_string()).collect();
    c.things = things.iter().map(|s| s.to_string()).collect();
    c
}

fn status(sim: &SimHandle, n: u32) -> String {
    sim.state().find(&cert_id(n)).unwrap().1.status.clone()
}

fn describe(id: &str) -> Vec<String> {
    args_of(&["iot", "describe-certificate", "--certificate-id", id])
}

fn update(id: &str, status: &str) -> Vec<String> {
    args_of(&[
        "iot",
        "update-certificate",
        "--certificate-id",
        id,
        "--new-status",
        status,
    ])
}

fn transfer(id: &str, target: &str) -> Vec<String> {
    args_of(&[
        "iot",
        "transfer-certificate",
        "--certificate-id",
        id,
        "--target-aws-account",
        target,
    ])
}

/// `args` plus more.
fn plus(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(args_of(more));
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The simulator of the read and transfer tests: seven certificates with
/// distinct refusals, and 30 plain ones for pagination.
fn main_sim() -> SimHandle {
    let mut certs = vec![
        with(1, "ACTIVE", &["p1"], &["t1"]),
        cert(2, "INACTIVE"),
        cert(3, "INACTIVE"),
        cert(4, "INACTIVE"),
        cert(5, "REVOKED"),
        with(6, "INACTIVE", &["pp"], &[]),
        with(7, "INACTIVE", &[], &["tt"]),
    ];
    certs.extend((100..130).map(|n| cert(n, "INACTIVE")));
    let mut config = SimConfig::unlimited();
    // p2 and t2 exist but are attached to nothing yet
    config.seeds.push(with_registry(
        seed_of(vec![(A, certs)]),
        A,
        &["p2"],
        &["t2"],
    ));
    Simulator::spawn(config).unwrap()
}

#[test]
fn cli_reads_and_refusals() {
    let Some(cli) = Cli::find_or_skip("cli_reads_and_refusals") else {
        return;
    };
    let sim = main_sim();
    let url = sim.url();
    let id = cert_id;
    let (id1, id2, id5, id6, id7) = (id(1), id(2), id(5), id(6), id(7));
    let arn1 = arn(A, &id1);
    let arn_missing = arn(A, &id(99));
    let nothex = "z".repeat(64);
    let long_msg = "m".repeat(129);

    let cases = vec![
        ok("describe", A, &strs(&describe(&id1)), {
            let (arn1, id1) = (arn1.clone(), id1.clone());
            move |v| {
                let d = &v["certificateDescription"];
                assert_eq!(d["certificateArn"], arn1);
                assert_eq!(d["certificateId"], id1);
                assert_eq!(d["status"], "ACTIVE");
                assert_eq!(d["ownedBy"], A);
                assert!(!d["creationDate"].is_null());
                assert!(d["certificatePem"]
                    .as_str()
                    .unwrap()
                    .contains("BEGIN CERTIFICATE"));
            }
        }),
        err(
            "describe unknown",
            A,
            &strs(&describe(&id(99))),
            "ResourceNotFoundException",
        ),
        err(
            "describe bad id",
            A,
            &strs(&describe(&nothex)),
            "InvalidRequestException",
        ),
        // 37 certificates at the default page size 25: the CLI followed nextMarker
        ok("list all", A, &["iot", "list-certificates"], |v| {
            assert_eq!(v["certificates"].as_array().unwrap().len(), 37)
        }),
        // (`--page-size` is the operation's own pageSize here, which turns the
        // CLI's auto-pagination off: one page and a nextMarker)
        ok(
            "one page",
            A,
            &[
                "iot",
                "list-certificates",
                "--page-size",
                "7",
                "--no-paginate",
            ],
            |v| {
                assert_eq!(v["certificates"].as_array().unwrap().len(), 7);
                assert!(v["nextMarker"].is_string());
            },
        ),
        err(
            "page size 251",
            A,
            &[
                "iot",
                "list-certificates",
                "--page-size",
                "251",
                "--no-paginate",
            ],
            "InvalidRequestException",
        ),
        err(
            "update to PENDING_TRANSFER",
            A,
            &strs(&update(&id1, "PENDING_TRANSFER")),
            "InvalidRequestException",
        ),
        err(
            "update unknown",
            A,
            &strs(&update(&id(99), "ACTIVE")),
            "ResourceNotFoundException",
        ),
        err(
            "update revoked",
            A,
            &strs(&update(&id5, "ACTIVE")),
            "CertificateStateException",
        ),
        err(
            "transfer active",
            A,
            &strs(&transfer(&id1, B)),
            "CertificateStateException",
        ),
        err(
            "transfer revoked",
            A,
            &strs(&transfer(&id5, B)),
            "CertificateStateException",
        ),
        err(
            "transfer with policy",
            A,
            &strs(&transfer(&id6, B)),
            "TransferConflictException",
        ),
        err(
            "transfer with thing",
            A,
            &strs(&transfer(&id7, B)),
            "TransferConflictException",
        ),
        err(
            "transfer unknown",
            A,
            &strs(&transfer(&id(99), B)),
            "ResourceNotFoundException",
        ),
        err(
            "transfer to owner",
            A,
            &strs(&transfer(&id2, A)),
            "InvalidRequestException",
        ),
        err(
            "transfer bad account",
            A,
            &strs(&transfer(&id2, "12345678901x")),
            "InvalidRequestException",
        ),
        err(
            "transfer long message",
            A,
            &strs(&plus(transfer(&id2, B), &["--transfer-message", &long_msg])),
            "InvalidRequestException",
        ),
        err(
            "transfer bad id",
            A,
            &strs(&transfer(&nothex, B)),
            "InvalidRequestException",
        ),
        ok(
            "list attached",
            A,
            &["iot", "list-attached-policies", "--target", &arn1],
            |v| {
                assert_eq!(v["policies"][0]["policyName"], "p1");
                assert_eq!(
                    v["policies"][0]["policyArn"],
                    format!("arn:aws:iot:{REGION}:{A}:policy/p1")
                );
            },
        ),
        ok(
            "list principal policies",
            A,
            &["iot", "list-principal-policies", "--principal", &arn1],
            |v| assert_eq!(v["policies"][0]["policyName"], "p1"),
        ),
        ok(
            "list things",
            A,
            &["iot", "list-principal-things", "--principal", &arn1],
            |v| assert_eq!(v["things"], serde_json::json!(["t1"])),
        ),
        err(
            "list attached unknown",
            A,
            &["iot", "list-attached-policies", "--target", &arn_missing],
            "ResourceNotFoundException",
        ),
        ok("sts", A, &["sts", "get-caller-identity"], |v| {
            assert_eq!(v["Account"], A);
            assert_eq!(v["Arn"], format!("arn:aws:iam::{A}:user/iot-sim"));
        }),
        ok(
            "sts default",
            "AKIDEXAMPLE",
            &["sts", "get-caller-identity"],
            |v| assert_eq!(v["Account"], A),
        ),
        ok(
            "max items",
            A,
            &["iot", "list-certificates", "--max-items", "5"],
            |v| {
                assert_eq!(v["certificates"].as_array().unwrap().len(), 5);
                assert!(v["NextToken"].is_string());
            },
        ),
    ];
    let r = cli.run_cases(&url, cases);

    // page two from the marker of "one page": the CLI sends the marker back
    let page = &r["one page"].json;
    let marker = page["nextMarker"].as_str().unwrap().to_string();
    let next = cli.run(
        &url,
        A,
        &[
            "iot",
            "list-certificates",
            "--page-size",
            "30",
            "--marker",
            &marker,
        ],
    );
    let next = next.expect_ok("page two")["certificates"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(next.len(), 30);
    let all = r["list all"].json["certificates"].as_array().unwrap();
    assert!(next
        .iter()
        .chain(page["certificates"].as_array().unwrap())
        .all(|c| all.contains(c)));
    assert_eq!(sim.stats().calls_of("GetCallerIdentity"), 2);
    // nothing above changed anything
    assert_eq!(sim.stats().transfers_effective, 0);
    assert_eq!(status(&sim, 1), "ACTIVE");
}

#[test]
fn cli_throttling() {
    let Some(cli) = Cli::find_or_skip("cli_throttling") else {
        return;
    };
    // the second DescribeCertificate within 20 s is throttled
    let mut config = SimConfig::unlimited();
    config.quotas.insert("DescribeCertificate".into(), 0.05);
    config
        .seeds
        .push(seed_of(vec![(A, vec![cert(1, "ACTIVE")])]));
    let sim = Simulator::spawn(config).unwrap();
    let id1 = cert_id(1);
    cli.run_cases(
        &sim.url(),
        vec![done(
            "first describe under quota",
            A,
            &strs(&describe(&id1)),
        )],
    );
    let r = cli.run_cases(
        &sim.url(),
        vec![err(
            "second describe under quota",
            A,
            &strs(&describe(&id1)),
            "ThrottlingException",
        )],
    );
    let stderr = &r["second describe under quota"].stderr;
    assert!(stderr.contains("Rate exceeded"), "{stderr}");
    assert_eq!(sim.stats().throttled_of("DescribeCertificate"), 1);
}

fn closed(stderr: &str) -> bool {
    stderr.contains("Connection was closed") || stderr.contains("onnection reset")
}

#[test]
fn cli_faults() {
    let Some(cli) = Cli::find_or_skip("cli_faults") else {
        return;
    };
    let id1 = cert_id(1);
    let deactivate = update(&id1, "INACTIVE");
    // one simulator per kind, each answering every request with its fault
    let kinds = [
        FaultKind::Http500,
        FaultKind::Http503,
        FaultKind::Reset,
        FaultKind::Timeout,
        FaultKind::LostReply,
    ];
    let sims: Vec<(FaultKind, SimHandle)> = kinds
        .into_iter()
        .map(|kind| {
            let mut c = SimConfig::unlimited();
            c.faults = vec![(kind, 1.0)];
            c.timeout_hold = Duration::from_secs(4);
            c.seeds.push(seed_of(vec![(A, vec![cert(1, "ACTIVE")])]));
            (kind, Simulator::spawn(c).unwrap())
        })
        .collect();
    // the cases run against different simulators: one thread each
    std::thread::scope(|s| {
        for (kind, sim) in &sims {
            let (cli, args) = (cli.clone(), deactivate.clone());
            s.spawn(move || {
                let args = strs(&args);
                let lost = *kind == FaultKind::LostReply;
                if lost {
                    // a 500 or a closed connection, 50/50: the CLI fails either way
                    let out = cli.run(&sim.url(), A, &args);
                    assert!(!out.ok, "lost-reply: succeeded");
                    assert!(
                        out.code() == Some("InternalFailureException") || closed(&out.stderr),
                        "lost-reply: {}",
                        out.stderr
                    );
                } else {
                    let case = match kind {
                        FaultKind::Http500 => err("500", A, &args, "InternalFailureException"),
                        FaultKind::Http503 => err("503", A, &args, "ServiceUnavailableException"),
                        FaultKind::Reset => {
                            transport("reset", A, &args, |e| assert!(closed(e), "{e}"))
                        }
                        FaultKind::Timeout => transport(
                            "timeout",
                            A,
                            &strs(&plus(args_of(&args), &["--cli-read-timeout", "1"])),
                            |e| assert!(e.contains("Read timeout"), "{e}"),
                        ),
                        other => unreachable!("{other}"),
                    };
                    cli.run_cases(&sim.url(), vec![case]);
                }
                // only lost-reply takes effect
                let expected = if lost { "INACTIVE" } else { "ACTIVE" };
                assert_eq!(status(sim, 1), expected, "{kind}");
                assert_eq!(sim.stats().faults[kind.as_str()], 1, "{kind}");
            });
        }
    });
}

#[test]
fn cli_transfer_lifecycle() {
    let Some(cli) = Cli::find_or_skip("cli_transfer_lifecycle") else {
        return;
    };
    let sim = main_sim();
    let url = sim.url();
    let id = cert_id;
    let (id1, id2, id3, id4) = (id(1), id(2), id(3), id(4));
    let arn1 = arn(A, &id1);
    let arn_missing = arn(A, &id(99));
    let long_msg = "m".repeat(129);

    // step 1: mutations on different certificates
    let r = cli.run_cases(
        &url,
        vec![
            done(
                "attach policy",
                A,
                &[
                    "iot",
                    "attach-policy",
                    "--policy-name",
                    "p2",
                    "--target",
                    &arn1,
                ],
            ),
            done(
                "attach thing",
                A,
                &[
                    "iot",
                    "attach-thing-principal",
                    "--thing-name",
                    "t2",
                    "--principal",
                    &arn1,
                ],
            ),
            done("deactivate", A, &strs(&update(&id1, "INACTIVE"))),
            ok(
                "transfer with message",
                A,
                &strs(&plus(transfer(&id2, B), &["--transfer-message", "for B"])),
                {
                    let want = arn(B, &id2);
                    move |v| assert_eq!(v["transferredCertificateArn"], want)
                },
            ),
            done("transfer 3", A, &strs(&transfer(&id3, B))),
            done("transfer 4", A, &strs(&transfer(&id4, B))),
        ],
    );
    drop(r);
    assert_eq!(status(&sim, 1), "INACTIVE");

    // step 2: what the pending transfers look like, and what they refuse
    let r = cli.run_cases(
        &url,
        vec![
            ok(
                "things paged",
                A,
                &[
                    "iot",
                    "list-principal-things",
                    "--principal",
                    &arn1,
                    "--page-size",
                    "1",
                ],
                |v| assert_eq!(v["things"], serde_json::json!(["t1", "t2"])),
            ),
            ok(
                "policies paged",
                A,
                &[
                    "iot",
                    "list-attached-policies",
                    "--target",
                    &arn1,
                    "--page-size",
                    "1",
                ],
                |v| {
                    assert_eq!(v["policies"].as_array().unwrap().len(), 1);
                    assert_eq!(v["policies"][0]["policyName"], "p1");
                    assert!(v["nextMarker"].is_string());
                },
            ),
            ok("B lists", B, &["iot", "list-certificates"], |v| {
                let incoming = v["certificates"].as_array().unwrap();
                assert_eq!(incoming.len(), 3);
                assert!(incoming.iter().all(|c| c["status"] == "PENDING_TRANSFER"));
            }),
            ok("B describes", B, &strs(&describe(&id2)), |v| {
                assert_eq!(v["certificateDescription"]["status"], "PENDING_TRANSFER")
            }),
            ok("outgoing", A, &["iot", "list-outgoing-certificates"], |v| {
                let out = v["outgoingCertificates"].as_array().unwrap();
                assert_eq!(out.len(), 3);
                assert!(out.iter().all(|c| c["transferredTo"] == B));
                assert!(out.iter().any(|c| c["transferMessage"] == "for B"));
            }),
            err(
                "update pending",
                A,
                &strs(&update(&id2, "ACTIVE")),
                "CertificateStateException",
            ),
            err(
                "transfer pending",
                A,
                &strs(&transfer(&id2, B)),
                "TransferConflictException",
            ),
            err(
                "accept by a stranger",
                C,
                &[
                    "iot",
                    "accept-certificate-transfer",
                    "--certificate-id",
                    &id2,
                ],
                "ResourceNotFoundException",
            ),
            err(
                "cancel not pending",
                A,
                &[
                    "iot",
                    "cancel-certificate-transfer",
                    "--certificate-id",
                    &id1,
                ],
                "InvalidRequestException",
            ),
            err(
                "reject reason too long",
                B,
                &[
                    "iot",
                    "reject-certificate-transfer",
                    "--certificate-id",
                    &id3,
                    "--reject-reason",
                    &long_msg,
                ],
                "InvalidRequestException",
            ),
        ],
    );
    let marker = r["policies paged"].json["nextMarker"]
        .as_str()
        .unwrap()
        .to_string();
    cli.run_cases(
        &url,
        vec![ok(
            "policies page 2",
            A,
            &[
                "iot",
                "list-attached-policies",
                "--target",
                &arn1,
                "--marker",
                &marker,
            ],
            |v| {
                assert_eq!(v["policies"][0]["policyName"], "p2");
                assert!(v["nextMarker"].is_null());
            },
        )],
    );

    // step 3: accept, reject, cancel, detach
    cli.run_cases(
        &url,
        vec![
            done(
                "accept",
                B,
                &[
                    "iot",
                    "accept-certificate-transfer",
                    "--certificate-id",
                    &id2,
                    "--set-as-active",
                ],
            ),
            done(
                "reject",
                B,
                &[
                    "iot",
                    "reject-certificate-transfer",
                    "--certificate-id",
                    &id3,
                    "--reject-reason",
                    "no thanks",
                ],
            ),
            done(
                "cancel",
                A,
                &[
                    "iot",
                    "cancel-certificate-transfer",
                    "--certificate-id",
                    &id4,
                ],
            ),
            done(
                "detach policy",
                A,
                &[
                    "iot",
                    "detach-policy",
                    "--policy-name",
                    "p1",
                    "--target",
                    &arn1,
                ],
            ),
            done(
                "detach principal policy",
                A,
                &[
                    "iot",
                    "detach-principal-policy",
                    "--policy-name",
                    "p2",
                    "--principal",
                    &arn1,
                ],
            ),
            done(
                "detach thing t1",
                A,
                &[
                    "iot",
                    "detach-thing-principal",
                    "--thing-name",
                    "t1",
                    "--principal",
                    &arn1,
                ],
            ),
            done(
                "detach thing t2",
                A,
                &[
                    "iot",
                    "detach-thing-principal",
                    "--thing-name",
                    "t2",
                    "--principal",
                    &arn1,
                ],
            ),
        ],
    );

    // step 4: the results
    cli.run_cases(
        &url,
        vec![
            ok("B describes accepted", B, &strs(&describe(&id2)), {
                let want = arn(B, &id2);
                move |v| {
                    let d = &v["certificateDescription"];
                    assert_eq!(d["status"], "ACTIVE");
                    assert_eq!(d["ownedBy"], B);
                    assert_eq!(d["previousOwnedBy"], A);
                    assert_eq!(d["certificateArn"], want);
                    assert!(!d["transferData"]["acceptDate"].is_null());
                }
            }),
            err(
                "source describes accepted",
                A,
                &strs(&describe(&id2)),
                "ResourceNotFoundException",
            ),
            err(
                "cancel after accept",
                A,
                &[
                    "iot",
                    "cancel-certificate-transfer",
                    "--certificate-id",
                    &id2,
                ],
                "TransferAlreadyCompletedException",
            ),
            err(
                "second accept",
                B,
                &[
                    "iot",
                    "accept-certificate-transfer",
                    "--certificate-id",
                    &id2,
                ],
                "TransferAlreadyCompletedException",
            ),
            ok("rejected", A, &strs(&describe(&id3)), |v| {
                let d = &v["certificateDescription"];
                assert_eq!(d["status"], "INACTIVE");
                assert_eq!(d["transferData"]["rejectReason"], "no thanks");
            }),
            err(
                "detach unknown thing",
                A,
                &[
                    "iot",
                    "detach-thing-principal",
                    "--thing-name",
                    "never",
                    "--principal",
                    &arn1,
                ],
                "ResourceNotFoundException",
            ),
            err(
                "attach to unknown cert",
                A,
                &[
                    "iot",
                    "attach-policy",
                    "--policy-name",
                    "p1",
                    "--target",
                    &arn_missing,
                ],
                "ResourceNotFoundException",
            ),
        ],
    );

    let state = sim.state();
    let (_, c1) = state.find(&id1).unwrap();
    assert!(c1.policies.is_empty() && c1.things.is_empty());
    assert_eq!(status(&sim, 4), "INACTIVE");
    assert_eq!(state.find(&id2).unwrap().0.account, B);
    let stats = sim.stats();
    assert_eq!(stats.transfers_effective, 3);
    assert_eq!(stats.max_transfers_per_certificate, 1);
}

#[test]
fn cli_refusals_of_credentials_deny_and_duplicate() {
    let Some(cli) = Cli::find_or_skip("cli_refusals_of_credentials_deny_and_duplicate") else {
        return;
    };
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed_of(vec![(
        A,
        vec![cert(1, "INACTIVE"), cert(2, "INACTIVE")],
    )]));
    config.deny.push(iot_sim::DenyRule {
        account: A.into(),
        operation: "TransferCertificate".into(),
        resource: Some(format!("arn:aws:iot:*:{A}:cert/{}", cert_id(1))),
    });
    config.faults = vec![(FaultKind::Duplicate, 1.0)];
    let sim = Simulator::spawn(config).unwrap();
    sim.set_credentials(B, iot_sim::CredentialState::Expired, None);
    sim.set_credentials(C, iot_sim::CredentialState::Revoked, None);
    let (id1, id2) = (cert_id(1), cert_id(2));
    let r = cli.run_cases(
        &sim.url(),
        vec![
            err(
                "expired iot",
                B,
                &["iot", "list-certificates"],
                "ExpiredTokenException",
            ),
            err(
                "expired sts",
                B,
                &["sts", "get-caller-identity"],
                "ExpiredToken",
            ),
            err(
                "revoked iot",
                C,
                &["iot", "list-certificates"],
                "UnrecognizedClientException",
            ),
            err(
                "revoked sts",
                C,
                &["sts", "get-caller-identity"],
                "InvalidClientTokenId",
            ),
            err(
                "denied",
                A,
                &strs(&transfer(&id1, B)),
                "AccessDeniedException",
            ),
            err(
                "duplicate transfer",
                A,
                &strs(&transfer(&id2, B)),
                "TransferConflictException",
            ),
        ],
    );
    assert!(
        r["expired iot"]
            .stderr
            .contains("The security token included in the request is expired"),
        "{}",
        r["expired iot"].stderr
    );
    assert!(
        r["revoked sts"]
            .stderr
            .contains("The security token included in the request is invalid."),
        "{}",
        r["revoked sts"].stderr
    );
    let denied = &r["denied"].stderr;
    assert!(
        denied.contains(&format!(
            "User: arn:aws:iam::{A}:user/iot-sim is not authorized to perform: iot:TransferCertificate on resource: {}",
            arn(A, &id1)
        )),
        "{denied}"
    );
    assert_eq!(status(&sim, 1), "INACTIVE");
    assert_eq!(status(&sim, 2), "PENDING_TRANSFER");
    let stats = sim.stats();
    assert_eq!(stats.refused_of(iot_sim::Refusal::Expired), 2);
    assert_eq!(stats.refused_of(iot_sim::Refusal::Revoked), 2);
    assert_eq!(stats.refused_of(iot_sim::Refusal::Denied), 1);
    assert_eq!(stats.transfers_effective, 1);

    // an outage: the CLI sees a closed connection; the control endpoints still answer
    sim.set_outage(iot_sim::OutageMode::Reset);
    cli.run_cases(
        &sim.url(),
        vec![transport("outage", A, &["iot", "list-certificates"], |e| {
            assert!(closed(e), "{e}")
        })],
    );
    assert_eq!(sim.stats().refused_of(iot_sim::Refusal::Outage), 1);
}

#[test]
fn cli_registry() {
    let Some(cli) = Cli::find_or_skip("cli_registry") else {
        return;
    };
    let ca = "c".repeat(64);
    let mut signed = cert(1, "INACTIVE");
    signed.ca_certificate_id = Some(ca.clone());
    signed.things = vec!["seeded-thing".into()];
    let mut full = cert(2, "INACTIVE");
    full.policies = (0..10).map(|n| format!("p{n}")).collect();
    let mut seed = seed_of(vec![(A, vec![signed, full])]);
    seed.accounts.get_mut(A).unwrap().ca_certificates = vec![iot_sim::SeedCaCertificate {
        id: ca.clone(),
        ..Default::default()
    }];
    let mut config = SimConfig::unlimited();
    config
        .seeds
        .push(with_registry(seed, A, &["eleventh"], &[]));
    let sim = Simulator::spawn(config).unwrap();
    let url = sim.url();
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
    let (arn1, arn2) = (arn(A, &cert_id(1)), arn(A, &cert_id(2)));
    let group_arn = |g: &str| format!("arn:aws:iot:{REGION}:{A}:thinggroup/{g}");

    // step 1: independent creations and refusals
    cli.run_cases(
        &url,
        vec![
            ok(
                "create policy",
                A,
                &[
                    "iot",
                    "create-policy",
                    "--policy-name",
                    "device",
                    "--policy-document",
                    doc,
                ],
                |v| {
                    assert_eq!(v["policyName"], "device");
                    assert_eq!(v["policyVersionId"], "1");
                    assert_eq!(
                        v["policyArn"],
                        format!("arn:aws:iot:{REGION}:{A}:policy/device")
                    );
                },
            ),
            err(
                "malformed policy",
                A,
                &[
                    "iot",
                    "create-policy",
                    "--policy-name",
                    "bad",
                    "--policy-document",
                    "nope",
                ],
                "MalformedPolicyException",
            ),
            ok(
                "create thing type",
                A,
                &[
                    "iot",
                    "create-thing-type",
                    "--thing-type-name",
                    "sensor",
                    "--thing-type-properties",
                    "thingTypeDescription=a sensor",
                ],
                |v| {
                    assert_eq!(v["thingTypeName"], "sensor");
                    assert!(v["thingTypeId"].is_string());
                },
            ),
            ok(
                "create root group",
                A,
                &["iot", "create-thing-group", "--thing-group-name", "root"],
                {
                    let want = group_arn("root");
                    move |v| assert_eq!(v["thingGroupArn"], want)
                },
            ),
            err(
                "attach unknown policy",
                A,
                &[
                    "iot",
                    "attach-policy",
                    "--policy-name",
                    "ghost",
                    "--target",
                    &arn1,
                ],
                "ResourceNotFoundException",
            ),
            err(
                "attach unknown thing",
                A,
                &[
                    "iot",
                    "attach-thing-principal",
                    "--thing-name",
                    "ghost",
                    "--principal",
                    &arn1,
                ],
                "ResourceNotFoundException",
            ),
            err(
                "eleventh policy",
                A,
                &[
                    "iot",
                    "attach-policy",
                    "--policy-name",
                    "eleventh",
                    "--target",
                    &arn2,
                ],
                "LimitExceededException",
            ),
            ok(
                "list by CA",
                A,
                &["iot", "list-certificates-by-ca", "--ca-certificate-id", &ca],
                {
                    let id1 = cert_id(1);
                    move |v| {
                        let certs = v["certificates"].as_array().unwrap();
                        assert_eq!(certs.len(), 1);
                        assert_eq!(certs[0]["certificateId"], id1);
                        assert_eq!(certs[0]["certificateMode"], "DEFAULT");
                        assert!(certs[0]["creationDate"].is_number());
                    }
                },
            ),
            ok(
                "endpoint",
                A,
                &[
                    "iot",
                    "describe-endpoint",
                    "--endpoint-type",
                    "iot:Data-ATS",
                ],
                |v| {
                    let address = v["endpointAddress"].as_str().unwrap();
                    assert!(
                        address.ends_with("-ats.iot.us-east-1.amazonaws.com"),
                        "{address}"
                    );
                },
            ),
            ok(
                "thing principals",
                A,
                &[
                    "iot",
                    "list-thing-principals",
                    "--thing-name",
                    "seeded-thing",
                ],
                {
                    let want = arn1.clone();
                    move |v| assert_eq!(v["principals"], serde_json::json!([want]))
                },
            ),
        ],
    );

    // step 2: what depends on step 1
    cli.run_cases(
        &url,
        vec![
            err(
                "create policy again",
                A,
                &[
                    "iot",
                    "create-policy",
                    "--policy-name",
                    "device",
                    "--policy-document",
                    doc,
                ],
                "ResourceAlreadyExistsException",
            ),
            ok(
                "get policy",
                A,
                &["iot", "get-policy", "--policy-name", "device"],
                move |v| {
                    assert_eq!(v["policyDocument"], doc);
                    assert_eq!(v["defaultVersionId"], "1");
                },
            ),
            ok("list policies", A, &["iot", "list-policies"], |v| {
                let names: Vec<&str> = v["policies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["policyName"].as_str().unwrap())
                    .collect();
                assert_eq!(names.len(), 12);
                assert!(names.contains(&"device"));
            }),
            ok(
                "create thing",
                A,
                &[
                    "iot",
                    "create-thing",
                    "--thing-name",
                    "dev-1",
                    "--thing-type-name",
                    "sensor",
                    "--attribute-payload",
                    r#"{"attributes":{"site":"north"}}"#,
                ],
                |v| assert_eq!(v["thingName"], "dev-1"),
            ),
            ok(
                "describe thing type",
                A,
                &["iot", "describe-thing-type", "--thing-type-name", "sensor"],
                |v| {
                    assert_eq!(v["thingTypeProperties"]["thingTypeDescription"], "a sensor");
                    assert_eq!(v["thingTypeMetadata"]["deprecated"], false);
                },
            ),
            ok(
                "create child group",
                A,
                &[
                    "iot",
                    "create-thing-group",
                    "--thing-group-name",
                    "child",
                    "--parent-group-name",
                    "root",
                ],
                |v| assert_eq!(v["thingGroupName"], "child"),
            ),
            err(
                "group of a missing parent",
                A,
                &[
                    "iot",
                    "create-thing-group",
                    "--thing-group-name",
                    "orphan",
                    "--parent-group-name",
                    "ghost",
                ],
                "ResourceNotFoundException",
            ),
            done(
                "attach policy to group",
                A,
                &[
                    "iot",
                    "attach-policy",
                    "--policy-name",
                    "device",
                    "--target",
                    &group_arn("root"),
                ],
            ),
        ],
    );

    // step 3
    cli.run_cases(
        &url,
        vec![
            err(
                "create thing differently",
                A,
                &["iot", "create-thing", "--thing-name", "dev-1"],
                "ResourceAlreadyExistsException",
            ),
            done(
                "create thing again",
                A,
                &[
                    "iot",
                    "create-thing",
                    "--thing-name",
                    "dev-1",
                    "--thing-type-name",
                    "sensor",
                    "--attribute-payload",
                    r#"{"attributes":{"site":"north"}}"#,
                ],
            ),
            ok(
                "describe thing",
                A,
                &["iot", "describe-thing", "--thing-name", "dev-1"],
                |v| {
                    assert_eq!(v["thingTypeName"], "sensor");
                    assert_eq!(v["attributes"]["site"], "north");
                    assert_eq!(v["defaultClientId"], "dev-1");
                },
            ),
            ok(
                "list things filtered",
                A,
                &[
                    "iot",
                    "list-things",
                    "--attribute-name",
                    "site",
                    "--attribute-value",
                    "north",
                ],
                // `site` is not among the searchable attributes of dev-1's type
                |v| assert_eq!(v["things"], serde_json::json!([])),
            ),
            ok(
                "list things of a type",
                A,
                &["iot", "list-things", "--thing-type-name", "sensor"],
                |v| assert_eq!(v["things"].as_array().unwrap().len(), 1),
            ),
            done(
                "add thing to group",
                A,
                &[
                    "iot",
                    "add-thing-to-thing-group",
                    "--thing-group-name",
                    "child",
                    "--thing-name",
                    "dev-1",
                ],
            ),
            ok(
                "describe child group",
                A,
                &["iot", "describe-thing-group", "--thing-group-name", "child"],
                {
                    let root = group_arn("root");
                    move |v| {
                        let meta = &v["thingGroupMetadata"];
                        assert_eq!(meta["parentGroupName"], "root");
                        assert_eq!(meta["rootToParentThingGroups"][0]["groupName"], "root");
                        assert_eq!(meta["rootToParentThingGroups"][0]["groupArn"], root);
                    }
                },
            ),
            ok(
                "group policies recursive",
                A,
                &[
                    "iot",
                    "list-attached-policies",
                    "--target",
                    &group_arn("child"),
                    "--recursive",
                ],
                |v| assert_eq!(v["policies"][0]["policyName"], "device"),
            ),
        ],
    );

    // step 4
    cli.run_cases(
        &url,
        vec![
            ok(
                "groups for thing",
                A,
                &[
                    "iot",
                    "list-thing-groups-for-thing",
                    "--thing-name",
                    "dev-1",
                ],
                // with its parent
                |v| {
                    let names: Vec<&str> = v["thingGroups"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|g| g["groupName"].as_str().unwrap())
                        .collect();
                    assert_eq!(names, ["child", "root"]);
                },
            ),
            ok(
                "things in group recursive",
                A,
                &[
                    "iot",
                    "list-things-in-thing-group",
                    "--thing-group-name",
                    "root",
                    "--recursive",
                ],
                |v| assert_eq!(v["things"], serde_json::json!(["dev-1"])),
            ),
            ok(
                "things in group direct",
                A,
                &[
                    "iot",
                    "list-things-in-thing-group",
                    "--thing-group-name",
                    "root",
                ],
                |v| assert_eq!(v["things"], serde_json::json!([])),
            ),
        ],
    );
    let state = sim.state();
    let acct = state.account(A, REGION).unwrap();
    assert_eq!(acct.thing_groups.len(), 2);
    assert_eq!(
        acct.things
            .iter()
            .find(|t| t.name == "dev-1")
            .unwrap()
            .groups,
        vec!["child"]
    );
}

#[test]
fn cli_switched_answers() {
    let Some(cli) = Cli::find_or_skip("cli_switched_answers") else {
        return;
    };
    let sims: Vec<SimHandle> = [
        iot_sim::SourceAfterAccept::AccessDenied,
        iot_sim::SourceAfterAccept::Unauthorized,
    ]
    .into_iter()
    .map(|answer| {
        let mut config = SimConfig::unlimited();
        config.source_after_accept = answer;
        config.error_type_suffix = true;
        config.completed_transfer_answer = iot_sim::CompletedTransferAnswer::InvalidRequest;
        config.pending_transfer_answer = iot_sim::PendingTransferAnswer::CertificateState;
        config.seeds.push(seed_of(vec![(
            A,
            vec![cert(1, "INACTIVE"), cert(2, "INACTIVE")],
        )]));
        Simulator::spawn(config).unwrap()
    })
    .collect();
    let (id1, id2) = (cert_id(1), cert_id(2));
    for sim in &sims {
        cli.run_cases(
            &sim.url(),
            vec![
                done("transfer", A, &strs(&transfer(&id1, B))),
                done("transfer 2", A, &strs(&transfer(&id2, B))),
            ],
        );
        cli.run_cases(
            &sim.url(),
            vec![
                done(
                    "accept",
                    B,
                    &[
                        "iot",
                        "accept-certificate-transfer",
                        "--certificate-id",
                        &id1,
                    ],
                ),
                // the suffixed error type still reads as the plain code
                err(
                    "transfer pending",
                    A,
                    &strs(&transfer(&id2, C)),
                    "CertificateStateException",
                ),
            ],
        );
    }
    for (sim, code) in sims
        .iter()
        .zip(["AccessDeniedException", "UnauthorizedException"])
    {
        cli.run_cases(
            &sim.url(),
            vec![
                err("source describes accepted", A, &strs(&describe(&id1)), code),
                err(
                    "accept again",
                    B,
                    &[
                        "iot",
                        "accept-certificate-transfer",
                        "--certificate-id",
                        &id1,
                    ],
                    "InvalidRequestException",
                ),
            ],
        );
    }
}

#[test]
fn cli_registration_without_ca() {
    let Some(cli) = Cli::find_or_skip("cli_registration_without_ca") else {
        return;
    };
    let sim = Simulator::spawn(SimConfig::unlimited()).unwrap();
    let url = sim.url();
    let (id, pem) = iot_sim::fake_certificate(9);
    // `--opt=value`: the PEM starts with dashes
    let pem_arg = format!("--certificate-pem={pem}");
    let cases = |status: &'static str| {
        vec![
            ok(
                "register in A",
                A,
                &["iot", "register-certificate-without-ca", &pem_arg],
                {
                    let (id, want) = (id.clone(), arn(A, &id));
                    move |v| {
                        assert_eq!(v["certificateId"], id);
                        assert_eq!(v["certificateArn"], want);
                    }
                },
            ),
            ok(
                "register in B",
                B,
                &[
                    "iot",
                    "register-certificate-without-ca",
                    &pem_arg,
                    "--status",
                    status,
                ],
                {
                    let want = arn(B, &id);
                    move |v| assert_eq!(v["certificateArn"], want)
                },
            ),
            err(
                "malformed PEM",
                A,
                &[
                    "iot",
                    "register-certificate-without-ca",
                    "--certificate-pem=-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----",
                ],
                "CertificateValidationException",
            ),
        ]
    };
    cli.run_cases(&url, cases("INACTIVE"));
    cli.run_cases(
        &url,
        vec![
            err(
                "register again",
                A,
                &["iot", "register-certificate-without-ca", &pem_arg],
                "ResourceAlreadyExistsException",
            ),
            ok("describe in A", A, &strs(&describe(&id)), {
                let pem = pem.clone();
                move |v| {
                    let d = &v["certificateDescription"];
                    assert_eq!(d["certificatePem"], pem);
                    assert_eq!(d["certificateMode"], "SNI_ONLY");
                    assert_eq!(d["status"], "ACTIVE");
                    assert_eq!(d["ownedBy"], A);
                }
            }),
            ok("describe in B", B, &strs(&describe(&id)), |v| {
                let d = &v["certificateDescription"];
                assert_eq!(d["status"], "INACTIVE");
                assert_eq!(d["ownedBy"], B);
            }),
        ],
    );
    assert_eq!(sim.state().find_all(&id).len(), 2);
}

#[test]
fn cli_assume_role() {
    let Some(cli) = Cli::find_or_skip("cli_assume_role") else {
        return;
    };
    let mut config = SimConfig::unlimited();
    config
        .seeds
        .push(seed_of(vec![(B, vec![cert(2, "ACTIVE")])]));
    config.roles = vec![
        iot_sim::SeedRole::new(B, "migrate", &[A]),
        iot_sim::SeedRole::new(C, "guarded", &[A]).with_external_id("ext-77"),
    ];
    let sim = Simulator::spawn(config).unwrap();
    let url = sim.url();
    let role_b = format!("arn:aws:iam::{B}:role/migrate");
    let role_c = format!("arn:aws:iam::{C}:role/guarded");
    let assume = |role: &str| -> Vec<String> {
        args_of(&[
            "sts",
            "assume-role",
            "--role-arn",
            role,
            "--role-session-name",
            "cli-check",
        ])
    };
    let expected_arn = format!("arn:aws:sts::{B}:assumed-role/migrate/cli-check");
    let r = cli.run_cases(
        &url,
        vec![
            ok("assumed", A, &strs(&assume(&role_b)), {
                let expected_arn = expected_arn.clone();
                move |v| {
                    assert_eq!(v["AssumedRoleUser"]["Arn"], expected_arn.as_str(), "{v}");
                    let c = &v["Credentials"];
                    assert!(
                        c["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
                        "{v}"
                    );
                    assert!(c["SessionToken"].as_str().is_some_and(|t| !t.is_empty()));
                    // botocore parsed the expiration as a timestamp and printed it back.
                    assert!(
                        c["Expiration"]
                            .as_str()
                            .is_some_and(|e| e.starts_with("20")),
                        "{v}"
                    );
                }
            }),
            err("untrusted", C, &strs(&assume(&role_b)), "AccessDenied"),
            err("no external id", A, &strs(&assume(&role_c)), "AccessDenied"),
            ok(
                "external id",
                A,
                &strs(&plus(assume(&role_c), &["--external-id", "ext-77"])),
                |_| {},
            ),
            // Longer than the role's maximum (1 hour): botocore checks only 900..43200.
            err(
                "too long",
                A,
                &strs(&plus(assume(&role_b), &["--duration-seconds", "7200"])),
                "ValidationError",
            ),
        ],
    );
    // The session's credentials act as B, and say so.
    let c = &r["assumed"].json["Credentials"];
    let session = (
        c["AccessKeyId"].as_str().unwrap(),
        c["SecretAccessKey"].as_str().unwrap(),
        c["SessionToken"].as_str().unwrap(),
    );
    let who = cli.run_as_session(&url, session, &["sts", "get-caller-identity"]);
    let who = who.expect_ok("caller identity");
    assert_eq!(who["Account"], B, "{who}");
    assert_eq!(who["Arn"], expected_arn.as_str(), "{who}");
    let described = cli.run_as_session(&url, session, &strs(&describe(&cert_id(2))));
    described.expect_ok("B's certificate with the session");
    // The same key with another token is not recognised.
    let forged = cli.run_as_session(
        &url,
        (session.0, session.1, "forged"),
        &strs(&describe(&cert_id(2))),
    );
    forged.expect_err("forged token", "UnrecognizedClientException");
    assert_eq!(sim.stats().calls_of("AssumeRole"), 5);
}

#[test]
fn cli_fleet_index() {
    let Some(cli) = Cli::find_or_skip("cli_fleet_index") else {
        return;
    };
    let mut seed = seed_of(vec![(A, vec![])]);
    {
        let a = seed.accounts.get_mut(A).unwrap();
        a.thing_types = vec![iot_sim::SeedThingType {
            name: "sensor".into(),
            ..Default::default()
        }];
        a.things = (0..5)
            .map(|i| iot_sim::SeedThing {
                name: format!("dev-{i}"),
                thing_type: (i % 2 == 0).then(|| "sensor".to_string()),
                attributes: BTreeMap::from([("fw".to_string(), format!("2.{i}"))]),
                ..Default::default()
            })
            .collect();
    }
    let mut building = seed.clone();
    building.accounts.get_mut(A).unwrap().indexing = Some(iot_sim::SeedIndexing {
        thing_indexing_mode: Some("REGISTRY".into()),
        index_status: Some("BUILDING".into()),
        ..Default::default()
    });
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed);
    let sim = Simulator::spawn(config).unwrap();
    let mut config = SimConfig::unlimited();
    config.seeds.push(building);
    let building = Simulator::spawn(config).unwrap();
    let url = sim.url();
    let search = |query: &str, more: &[&str]| -> Vec<String> {
        plus(
            args_of(&[
                "iot",
                "search-index",
                "--index-name",
                "AWS_Things",
                "--query-string",
                query,
            ]),
            more,
        )
    };
    let thing_names = |v: &Value| -> Vec<String> {
        v["things"]
            .as_array()
            .expect("things listed")
            .iter()
            .map(|t| t["thingName"].as_str().unwrap().to_string())
            .collect()
    };

    // step 1: off as AWS starts
    cli.run_cases(
        &url,
        vec![
            ok(
                "configuration off",
                A,
                &["iot", "get-indexing-configuration"],
                |v| {
                    assert_eq!(v["thingIndexingConfiguration"]["thingIndexingMode"], "OFF");
                    assert_eq!(
                        v["thingGroupIndexingConfiguration"]["thingGroupIndexingMode"],
                        "OFF"
                    );
                },
            ),
            err(
                "search while off",
                A,
                &strs(&search("thingName:*", &[])),
                "ResourceNotFoundException",
            ),
            err(
                "connectivity without thing indexing",
                A,
                &[
                    "iot",
                    "update-indexing-configuration",
                    "--thing-indexing-configuration",
                    "thingIndexingMode=OFF,thingConnectivityIndexingMode=STATUS",
                ],
                "InvalidRequestException",
            ),
        ],
    );
    // step 2: turn it on
    cli.run_cases(
        &url,
        vec![done(
            "turn on",
            A,
            &[
                "iot",
                "update-indexing-configuration",
                "--thing-indexing-configuration",
                "thingIndexingMode=REGISTRY,thingConnectivityIndexingMode=STATUS,customFields=[{name=attributes.fw,type=String}]",
            ],
        )],
    );
    sim.set_connectivity(&iot_sim::ConnectivityChange {
        account: A.into(),
        region: REGION.into(),
        thing: "dev-1".into(),
        connected: true,
        timestamp: Some(1_700_000_000_000),
        disconnect_reason: None,
    })
    .unwrap();
    // step 3: what it answers
    let outs = cli.run_cases(
        &url,
        vec![
            ok(
                "configuration on",
                A,
                &["iot", "get-indexing-configuration"],
                |v| {
                    let t = &v["thingIndexingConfiguration"];
                    assert_eq!(t["thingIndexingMode"], "REGISTRY");
                    assert_eq!(t["thingConnectivityIndexingMode"], "STATUS");
                    assert_eq!(t["customFields"][0]["name"], "attributes.fw");
                    assert_eq!(t["customFields"][0]["type"], "String");
                    assert!(t["managedFields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["name"] == "thingName"));
                },
            ),
            ok(
                "first page",
                A,
                &strs(&search("thingTypeName:sensor", &["--max-results", "2"])),
                move |v| {
                    assert_eq!(thing_names(v), ["dev-0", "dev-2"]);
                    assert!(v["nextToken"].is_string(), "{v}");
                },
            ),
            ok(
                "documents",
                A,
                &strs(&search("thingName:dev-1 OR thingName:DEV-2", &[])),
                move |v| {
                    assert_eq!(thing_names(v), ["dev-1", "dev-2"]);
                    let t = &v["things"];
                    assert_eq!(t[0]["connectivity"]["connected"], true);
                    assert_eq!(t[0]["connectivity"]["timestamp"], 1_700_000_000_000_i64);
                    assert_eq!(t[0]["attributes"]["fw"], "2.1");
                    assert!(t[0]["thingId"].is_string());
                    assert_eq!(t[1]["connectivity"]["connected"], false);
                    assert_eq!(t[1]["thingTypeName"], "sensor");
                    assert!(v.get("nextToken").is_none(), "{v}");
                },
            ),
            ok(
                "disconnected with a firmware",
                A,
                &strs(&search(
                    "attributes.fw:2.* AND NOT connectivity.connected:true",
                    &[],
                )),
                move |v| assert_eq!(thing_names(v), ["dev-0", "dev-2", "dev-3", "dev-4"]),
            ),
            err(
                "not in the subset",
                A,
                &strs(&search("shadow.reported.battery:50", &[])),
                "InvalidQueryException",
            ),
            err(
                "syntax error",
                A,
                &strs(&search("(thingName:dev-1", &[])),
                "InvalidQueryException",
            ),
            err(
                "page too large",
                A,
                &strs(&search("*", &["--max-results", "101"])),
                "InvalidRequestException",
            ),
        ],
    );
    let token = outs["first page"].json["nextToken"]
        .as_str()
        .unwrap()
        .to_string();
    cli.run_cases(
        &url,
        vec![ok(
            "second page",
            A,
            &strs(&search(
                "thingTypeName:sensor",
                &["--max-results", "2", "--next-token", &token],
            )),
            move |v| {
                assert_eq!(thing_names(v), ["dev-4"]);
                assert!(v.get("nextToken").is_none(), "{v}");
            },
        )],
    );
    cli.run_cases(
        &building.url(),
        vec![err(
            "index building",
            A,
            &strs(&search("*", &[])),
            "IndexNotReadyException",
        )],
    );
}

/// The registry as the developer guide and the botocore model have it (issue 25): group
/// hierarchies, searchable attributes, thing types (idempotent, deprecated), dynamic groups
/// in the 10-group count, exclusive attachments and their V2 listings, CA certificates,
/// role aliases, ARNs by partition, the allow-list IAM mode; and, with their switches, the
/// policies-per-group limit and the multi-account registration refusals.
#[test]
fn cli_registry_as_aws_has_it() {
    use iot_sim::{
        SeedAccount, SeedCaCertificate, SeedPolicy, SeedThing, SeedThingGroup, SeedThingType,
    };
    let Some(cli) = Cli::find_or_skip("cli_registry_as_aws_has_it") else {
        return;
    };
    let group = |name: &str, parent: Option<&str>| SeedThingGroup {
        name: name.into(),
        parent: parent.map(str::to_string),
        ..Default::default()
    };
    let dynamic = |name: &str| SeedThingGroup {
        name: name.into(),
        query: Some("attributes.crowd:yes".into()),
        ..Default::default()
    };
    let thing = |name: &str, ty: Option<&str>, attrs: &[(&str, &str)], groups: &[&str]| SeedThing {
        name: name.into(),
        thing_type: ty.map(str::to_string),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let (ca_default, ca_sni) = ("d".repeat(64), "e".repeat(64));
    let (reg_aws, pem_aws) = iot_sim::fake_certificate(21);
    let (reg_ca, pem_ca) = iot_sim::fake_certificate(22);
    let (reg_sni, pem_sni) = iot_sim::fake_certificate(23);
    let mut certificates = vec![with(1, "ACTIVE", &[], &["solo"]), cert(2, "ACTIVE")];
    certificates[0].exclusive = true;
    for (id, pem, ca) in [
        (&reg_aws, &pem_aws, None),
        (&reg_ca, &pem_ca, Some(ca_default.clone())),
        (&reg_sni, &pem_sni, Some(ca_sni.clone())),
    ] {
        certificates.push(SeedCertificate {
            id: id.clone(),
            status: "ACTIVE".into(),
            pem: Some(pem.clone()),
            ca_certificate_id: ca,
            ..Default::default()
        });
    }
    let mut groups = vec![
        group("root1", None),
        group("mid1", Some("root1")),
        group("leaf1", Some("mid1")),
        group("root2", None),
        group("g", None),
        dynamic("dyn-a"),
        dynamic("dyn-b"),
    ];
    groups.extend((1..=9).map(|i| group(&format!("s{i}"), None)));
    let mut crowded: Vec<String> = (1..=8).map(|i| format!("s{i}")).collect();
    crowded.extend(["dyn-a".to_string(), "dyn-b".to_string()]);
    let crowded: Vec<&str> = crowded.iter().map(String::as_str).collect();
    let account = SeedAccount {
        certificates,
        policies: ["p1", "p2", "p3"]
            .iter()
            .map(|p| SeedPolicy {
                name: p.to_string(),
                document: None,
            })
            .collect(),
        thing_types: vec![
            SeedThingType {
                name: "sensor".into(),
                searchable_attributes: vec!["site".into()],
                ..Default::default()
            },
            SeedThingType {
                name: "gateway".into(),
                ..Default::default()
            },
            SeedThingType {
                name: "old".into(),
                deprecated: true,
                ..Default::default()
            },
        ],
        thing_groups: groups,
        things: vec![
            thing("t-typed-s", Some("sensor"), &[("site", "north")], &[]),
            thing("t-typed-g", Some("gateway"), &[("site", "north")], &[]),
            thing("t-plain", None, &[("site", "north")], &[]),
            thing("nested", None, &[], &["leaf1"]),
            thing("crowded", None, &[], &crowded),
            thing("solo", None, &[], &[]),
            thing("free", None, &[], &[]),
        ],
        ca_certificates: vec![
            SeedCaCertificate {
                id: ca_default.clone(),
                ..Default::default()
            },
            SeedCaCertificate {
                id: ca_sni.clone(),
                certificate_mode: Some("SNI_ONLY".into()),
                ..Default::default()
            },
        ],
        role_aliases: vec!["fleet-creds".into()],
        indexing: None,
        devices: None,
    };
    let seed = |region: &str, account: SeedAccount| iot_sim::Seed {
        region: region.into(),
        accounts: BTreeMap::from([(A.to_string(), account)]),
    };
    let cn_seed = seed(
        "cn-north-1",
        SeedAccount {
            certificates: vec![cert(5, "ACTIVE")],
            ..Default::default()
        },
    );
    let allow_c = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["iot:ListThings"],"Resource":"*"},
        {"Effect":"Allow","Action":["iot:DescribeThing"],"Resource":"arn:aws:iot:*:333333333333:thing/*"},
        {"Effect":"Allow","Action":["iot:ListAttachedPolicies"],"Resource":"arn:aws:iot:*:333333333333:cert/*"}]}"#;
    let mut config = SimConfig::unlimited();
    config.seeds = vec![seed(REGION, account.clone()), cn_seed];
    config
        .iam_policies
        .insert(C.to_string(), iot_sim::IamPolicy::parse(allow_c).unwrap());
    let sim = Simulator::spawn(config).unwrap();
    let url = sim.url();
    let mut switched = SimConfig::unlimited();
    switched.seeds = vec![seed(REGION, account)];
    switched.policies_per_group = 2;
    switched.register_refuses_default_ca = true;
    switched.register_refuses_aws_issued = true;
    let sim2 = Simulator::spawn(switched).unwrap();
    let (arn1, arn2) = (arn(A, &cert_id(1)), arn(A, &cert_id(2)));
    let names = |v: &Value, list: &str, field: &str| -> Vec<String> {
        v[list]
            .as_array()
            .unwrap_or_else(|| panic!("no {list} in {v}"))
            .iter()
            .map(|x| x[field].as_str().unwrap().to_string())
            .collect()
    };
    let groups_of = |thing: &'static str| {
        vec![
            "iot".to_string(),
            "list-thing-groups-for-thing".into(),
            "--thing-name".into(),
            thing.into(),
        ]
    };
    let add = |thing: &str, group: &str| -> Vec<String> {
        args_of(&[
            "iot",
            "add-thing-to-thing-group",
            "--thing-name",
            thing,
            "--thing-group-name",
            group,
        ])
    };
    let register = |pem: &str| -> Vec<String> {
        args_of(&[
            "iot",
            "register-certificate-without-ca",
            &format!("--certificate-pem={pem}"),
        ])
    };
    let cn_arn = format!("arn:aws-cn:iot:cn-north-1:{A}:cert/{}", cert_id(5));
    let cn_wrong = format!("arn:aws:iot:cn-north-1:{A}:cert/{}", cert_id(5));

    // step 1: reads, and changes that do not touch each other
    cli.run_cases(
        &url,
        vec![
            ok("groups with parents", A, &strs(&groups_of("nested")), move |v| {
                assert_eq!(names(v, "thingGroups", "groupName"), ["leaf1", "mid1", "root1"])
            }),
            ok(
                "searchable only",
                A,
                &[
                    "iot",
                    "list-things",
                    "--attribute-name",
                    "site",
                    "--attribute-value",
                    "north",
                ],
                move |v| assert_eq!(names(v, "things", "thingName"), ["t-plain", "t-typed-s"]),
            ),
            ok(
                "searchable only, by prefix",
                A,
                &[
                    "iot",
                    "list-things",
                    "--attribute-name",
                    "site",
                    "--attribute-value",
                    "nor",
                    "--use-prefix-attribute-value",
                ],
                move |v| assert_eq!(names(v, "things", "thingName"), ["t-plain", "t-typed-s"]),
            ),
            ok(
                "every attribute is listed",
                A,
                &["iot", "list-things", "--thing-type-name", "gateway"],
                |v| assert_eq!(v["things"][0]["attributes"]["site"], "north"),
            ),
            done(
                "create thing type again, same definition",
                A,
                &[
                    "iot",
                    "create-thing-type",
                    "--thing-type-name",
                    "sensor",
                    "--thing-type-properties",
                    r#"{"searchableAttributes":["site"]}"#,
                ],
            ),
            err(
                "create thing type again, other definition",
                A,
                &[
                    "iot",
                    "create-thing-type",
                    "--thing-type-name",
                    "sensor",
                    "--thing-type-properties",
                    r#"{"thingTypeDescription":"other"}"#,
                ],
                "ResourceAlreadyExistsException",
            ),
            ok(
                "create thing type with MQTT 5 attributes",
                A,
                &[
                    "iot",
                    "create-thing-type",
                    "--thing-type-name",
                    "m5",
                    "--thing-type-properties",
                    r#"{"mqtt5Configuration":{"propagatingAttributes":[{"userPropertyKey":"site","thingAttribute":"site"},{"userPropertyKey":"ip","connectionAttribute":"iot:ClientId"}]}}"#,
                ],
                |v| assert_eq!(v["thingTypeName"], "m5"),
            ),
            err(
                "no new thing of a deprecated type",
                A,
                &[
                    "iot",
                    "create-thing",
                    "--thing-name",
                    "newcomer",
                    "--thing-type-name",
                    "old",
                ],
                "InvalidRequestException",
            ),
            ok(
                "describe a deprecated type",
                A,
                &["iot", "describe-thing-type", "--thing-type-name", "old"],
                |v| {
                    assert_eq!(v["thingTypeMetadata"]["deprecated"], true);
                    assert!(v["thingTypeMetadata"]["deprecationDate"].is_number());
                },
            ),
            done(
                "deprecate a type",
                A,
                &["iot", "deprecate-thing-type", "--thing-type-name", "gateway"],
            ),
            err(
                "deprecate an unknown type",
                A,
                &["iot", "deprecate-thing-type", "--thing-type-name", "ghost"],
                "ResourceNotFoundException",
            ),
            ok(
                "exclusive, by principal",
                A,
                &["iot", "list-principal-things-v2", "--principal", &arn1],
                |v| {
                    assert_eq!(
                        v["principalThingObjects"],
                        serde_json::json!([{"thingName": "solo", "thingPrincipalType": "EXCLUSIVE_THING"}])
                    )
                },
            ),
            ok(
                "exclusive, by thing",
                A,
                &["iot", "list-thing-principals-v2", "--thing-name", "solo"],
                {
                    let want = arn1.clone();
                    move |v| {
                        assert_eq!(v["thingPrincipalObjects"][0]["principal"], want);
                        assert_eq!(
                            v["thingPrincipalObjects"][0]["thingPrincipalType"],
                            "EXCLUSIVE_THING"
                        );
                    }
                },
            ),
            ok(
                "non-exclusive filter",
                A,
                &[
                    "iot",
                    "list-thing-principals-v2",
                    "--thing-name",
                    "solo",
                    "--thing-principal-type",
                    "NON_EXCLUSIVE_THING",
                ],
                |v| assert_eq!(v["thingPrincipalObjects"], serde_json::json!([])),
            ),
            err(
                "no second thing on an exclusive principal",
                A,
                &[
                    "iot",
                    "attach-thing-principal",
                    "--thing-name",
                    "t-plain",
                    "--principal",
                    &arn1,
                ],
                "InvalidRequestException",
            ),
            done(
                "attach exclusively",
                A,
                &[
                    "iot",
                    "attach-thing-principal",
                    "--thing-name",
                    "free",
                    "--principal",
                    &arn2,
                    "--thing-principal-type",
                    "EXCLUSIVE_THING",
                ],
            ),
            ok(
                "describe a CA certificate",
                A,
                &["iot", "describe-ca-certificate", "--certificate-id", &ca_sni],
                |v| {
                    let d = &v["certificateDescription"];
                    assert_eq!(d["certificateMode"], "SNI_ONLY");
                    assert_eq!(d["ownedBy"], A);
                },
            ),
            err(
                "describe an unknown CA certificate",
                A,
                &["iot", "describe-ca-certificate", "--certificate-id", &"f".repeat(64)],
                "ResourceNotFoundException",
            ),
            ok("role aliases", A, &["iot", "list-role-aliases"], |v| {
                assert_eq!(v["roleAliases"], serde_json::json!(["fleet-creds"]))
            }),
            err(
                "a thing is in 10 groups at most, dynamic ones too",
                A,
                &strs(&add("crowded", "s9")),
                "InvalidRequestException",
            ),
            ok(
                "a dynamic group",
                A,
                &["iot", "describe-thing-group", "--thing-group-name", "dyn-a"],
                |v| {
                    assert_eq!(v["queryString"], "attributes.crowd:yes");
                    assert_eq!(v["indexName"], "AWS_Things");
                },
            ),
            err(
                "no thing is added to a dynamic group",
                A,
                &strs(&add("t-plain", "dyn-a")),
                "InvalidRequestException",
            ),
            ok(
                "ARNs in the China partition",
                A,
                &[
                    "--region",
                    "cn-north-1",
                    "iot",
                    "describe-certificate",
                    "--certificate-id",
                    &cert_id(5),
                ],
                {
                    let want = cn_arn.clone();
                    move |v| assert_eq!(v["certificateDescription"]["certificateArn"], want)
                },
            ),
            done(
                "an ARN of the region's partition",
                A,
                &[
                    "--region",
                    "cn-north-1",
                    "iot",
                    "list-attached-policies",
                    "--target",
                    &cn_arn,
                ],
            ),
            err(
                "an ARN of another partition",
                A,
                &[
                    "--region",
                    "cn-north-1",
                    "iot",
                    "list-attached-policies",
                    "--target",
                    &cn_wrong,
                ],
                "InvalidRequestException",
            ),
            ok(
                "ARNs in GovCloud",
                A,
                &["--region", "us-gov-west-1", "iot", "create-thing", "--thing-name", "g1"],
                |v| {
                    assert_eq!(
                        v["thingArn"],
                        format!("arn:aws-us-gov:iot:us-gov-west-1:{A}:thing/g1")
                    )
                },
            ),
            done(
                "registration allowed by default: AWS-issued",
                B,
                &strs(&register(&pem_aws)),
            ),
            done(
                "registration allowed by default: CA in DEFAULT mode",
                B,
                &strs(&register(&pem_ca)),
            ),
            ok("allow-list: allowed", C, &["iot", "list-things"], |v| {
                assert_eq!(v["things"], serde_json::json!([]))
            }),
            err(
                "allow-list: allowed, then the call's own answer",
                C,
                &["iot", "describe-thing", "--thing-name", "nobody"],
                "ResourceNotFoundException",
            ),
            err(
                "allow-list: an action not listed",
                C,
                &strs(&describe(&cert_id(1))),
                "AccessDeniedException",
            ),
            err(
                "allow-list: an action without a resource type needs *",
                C,
                &[
                    "iot",
                    "list-attached-policies",
                    "--target",
                    &arn(C, &cert_id(1)),
                ],
                "AccessDeniedException",
            ),
        ],
    );
    // step 2: what depends on step 1
    cli.run_cases(
        &url,
        vec![
            err(
                "one group per hierarchy",
                A,
                &strs(&add("nested", "mid1")),
                "InvalidRequestException",
            ),
            done("another hierarchy", A, &strs(&add("nested", "root2"))),
            done(
                "make room by leaving a dynamic group",
                A,
                &strs(&plus(add("crowded", "s9"), &["--override-dynamic-groups"])),
            ),
            err(
                "exclusive now",
                A,
                &[
                    "iot",
                    "attach-thing-principal",
                    "--thing-name",
                    "t-plain",
                    "--principal",
                    &arn2,
                ],
                "InvalidRequestException",
            ),
            err(
                "deprecated now",
                A,
                &[
                    "iot",
                    "create-thing",
                    "--thing-name",
                    "gw-new",
                    "--thing-type-name",
                    "gateway",
                ],
                "InvalidRequestException",
            ),
            ok(
                "MQTT 5 attributes",
                A,
                &["iot", "describe-thing-type", "--thing-type-name", "m5"],
                |v| {
                    let p =
                        &v["thingTypeProperties"]["mqtt5Configuration"]["propagatingAttributes"];
                    assert_eq!(p[0]["userPropertyKey"], "site");
                    assert_eq!(p[1]["connectionAttribute"], "iot:ClientId");
                },
            ),
        ],
    );
    // step 3
    cli.run_cases(
        &url,
        vec![
            ok(
                "groups of crowded",
                A,
                &strs(&groups_of("crowded")),
                move |v| {
                    let got = names(v, "thingGroups", "groupName");
                    assert!(got.contains(&"s9".to_string()), "{got:?}");
                    assert!(!got.contains(&"dyn-b".to_string()), "{got:?}");
                    assert!(got.contains(&"dyn-a".to_string()), "{got:?}");
                },
            ),
            ok(
                "groups of nested",
                A,
                &strs(&groups_of("nested")),
                move |v| {
                    assert_eq!(
                        names(v, "thingGroups", "groupName"),
                        ["leaf1", "mid1", "root1", "root2"]
                    )
                },
            ),
            done(
                "undo a deprecation",
                A,
                &[
                    "iot",
                    "deprecate-thing-type",
                    "--thing-type-name",
                    "gateway",
                    "--undo-deprecate",
                ],
            ),
        ],
    );
    cli.run_cases(
        &url,
        vec![done(
            "a type takes things again",
            A,
            &[
                "iot",
                "create-thing",
                "--thing-name",
                "gw-new",
                "--thing-type-name",
                "gateway",
            ],
        )],
    );
    let state = sim.state();
    let a = state.account(A, REGION).unwrap();
    let crowded = a.things.iter().find(|t| t.name == "crowded").unwrap();
    assert_eq!(crowded.groups.len(), 10);
    let nested = a.things.iter().find(|t| t.name == "nested").unwrap();
    assert_eq!(nested.groups, ["leaf1", "root2"], "direct memberships only");
    let c2 = state.find_in(A, REGION, &cert_id(2)).unwrap();
    assert_eq!(c2.exclusive_thing.as_deref(), Some("free"));

    // the switches: 2 policies per thing group; registrations refused
    let g = format!("arn:aws:iot:{REGION}:{A}:thinggroup/g");
    let attach = |p: &str, target: &str| -> Vec<String> {
        args_of(&[
            "iot",
            "attach-policy",
            "--policy-name",
            p,
            "--target",
            target,
        ])
    };
    let url2 = sim2.url();
    cli.run_cases(
        &url2,
        vec![
            done("first group policy", A, &strs(&attach("p1", &g))),
            done("second group policy", A, &strs(&attach("p2", &g))),
            err(
                "AWS-issued: refused",
                B,
                &strs(&register(&pem_aws)),
                "InvalidRequestException",
            ),
            err(
                "CA in DEFAULT mode: refused",
                B,
                &strs(&register(&pem_ca)),
                "InvalidRequestException",
            ),
            done(
                "CA in SNI_ONLY mode: registered",
                B,
                &strs(&register(&pem_sni)),
            ),
        ],
    );
    cli.run_cases(
        &url2,
        vec![
            err(
                "third group policy",
                A,
                &strs(&attach("p3", &g)),
                "LimitExceededException",
            ),
            done("a certificate takes 10", A, &strs(&attach("p3", &arn1))),
        ],
    );
    let state2 = sim2.state();
    assert!(state2.find_in(B, REGION, &reg_aws).is_none());
    assert!(state2.find_in(B, REGION, &reg_ca).is_none());
    assert!(state2.find_in(B, REGION, &reg_sni).is_some());
}

#[test]
fn cli_jobs_groups_and_connectivity() {
    let Some(cli) = Cli::find_or_skip("cli_jobs_groups_and_connectivity") else {
        return;
    };
    let mut seed = seed_of(vec![(A, vec![]), (B, vec![])]);
    {
        let a = seed.accounts.get_mut(A).unwrap();
        a.thing_groups = vec![iot_sim::SeedThingGroup {
            name: "wave".into(),
            ..Default::default()
        }];
        a.things = (0..3)
            .map(|i| iot_sim::SeedThing {
                name: format!("dev-{i}"),
                groups: if i < 2 { vec!["wave".into()] } else { vec![] },
                ..Default::default()
            })
            .collect();
        a.certificates = vec![with(1, "ACTIVE", &["p1"], &["dev-0"])];
        a.indexing = Some(iot_sim::SeedIndexing {
            thing_indexing_mode: Some("REGISTRY".into()),
            thing_connectivity_indexing_mode: Some("STATUS".into()),
            ..Default::default()
        });
        a.devices = Some(iot_sim::SeedDevices {
            things: BTreeMap::from([(
                "dev-0".to_string(),
                iot_sim::DeviceSetting::of(iot_sim::DeviceBehaviour::Ignore),
            )]),
            ..Default::default()
        });
        let b = seed.accounts.get_mut(B).unwrap();
        b.things = vec![iot_sim::SeedThing {
            name: "dev-0".into(),
            ..Default::default()
        }];
    }
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed);
    let sim = Simulator::spawn(config).unwrap();
    let url = sim.url();
    let wave = format!("arn:aws:iot:{REGION}:{A}:thinggroup/wave");
    let create = |id: &str, selection: &str| -> Vec<String> {
        args_of(&[
            "iot",
            "create-job",
            "--job-id",
            id,
            "--targets",
            &wave,
            "--document",
            r#"{"endpoint":"x"}"#,
            "--target-selection",
            selection,
            "--job-executions-rollout-config",
            "maximumPerMinute=500",
            "--abort-config",
            "criteriaList=[{failureType=ALL,action=CANCEL,thresholdPercentage=50,minNumberOfExecutedThings=10}]",
            "--timeout-config",
            "inProgressTimeoutInMinutes=30",
        ])
    };

    // step 1: create
    cli.run_cases(
        &url,
        vec![
            ok("create", A, &strs(&create("w1", "CONTINUOUS")), |v| {
                assert_eq!(v["jobId"], "w1");
                assert_eq!(
                    v["jobArn"],
                    format!("arn:aws:iot:{REGION}:{A}:job/w1").as_str()
                );
            }),
            err(
                "document not JSON",
                A,
                &[
                    "iot",
                    "create-job",
                    "--job-id",
                    "bad",
                    "--targets",
                    &wave,
                    "--document",
                    "not json",
                ],
                "InvalidRequestException",
            ),
            ok(
                "connectivity: connected",
                A,
                &[
                    "iot",
                    "get-thing-connectivity-data",
                    "--thing-name",
                    "dev-0",
                ],
                |v| {
                    assert_eq!(v["thingName"], "dev-0");
                    assert_eq!(v["connected"], true);
                    assert!(
                        v["timestamp"].is_number() || v["timestamp"].is_string(),
                        "{v}"
                    );
                },
            ),
            ok(
                "connectivity: never connected",
                A,
                &[
                    "iot",
                    "get-thing-connectivity-data",
                    "--thing-name",
                    "dev-1",
                ],
                |v| {
                    assert_eq!(v["connected"], false);
                    assert!(v.get("timestamp").is_none(), "{v}");
                },
            ),
            err(
                "connectivity: no such thing",
                A,
                &["iot", "get-thing-connectivity-data", "--thing-name", "nope"],
                "ResourceNotFoundException",
            ),
            err(
                "connectivity: not indexed",
                B,
                &[
                    "iot",
                    "get-thing-connectivity-data",
                    "--thing-name",
                    "dev-0",
                ],
                "InvalidRequestException",
            ),
        ],
    );
    // step 2: read it
    cli.run_cases(
        &url,
        vec![
            err(
                "create again",
                A,
                &strs(&create("w1", "SNAPSHOT")),
                "ResourceAlreadyExistsException",
            ),
            ok(
                "describe",
                A,
                &["iot", "describe-job", "--job-id", "w1"],
                |v| {
                    let job = &v["job"];
                    assert_eq!(job["status"], "IN_PROGRESS");
                    assert_eq!(job["targetSelection"], "CONTINUOUS");
                    assert_eq!(
                        job["targets"][0],
                        format!("arn:aws:iot:{REGION}:{A}:thinggroup/wave").as_str()
                    );
                    assert_eq!(job["jobProcessDetails"]["numberOfQueuedThings"], 2);
                    assert_eq!(job["jobExecutionsRolloutConfig"]["maximumPerMinute"], 500);
                    assert_eq!(job["abortConfig"]["criteriaList"][0]["failureType"], "ALL");
                    assert_eq!(job["timeoutConfig"]["inProgressTimeoutInMinutes"], 30);
                },
            ),
            ok(
                "document",
                A,
                &["iot", "get-job-document", "--job-id", "w1"],
                |v| assert_eq!(v["document"], r#"{"endpoint":"x"}"#),
            ),
            ok(
                "executions of the job",
                A,
                &[
                    "iot",
                    "list-job-executions-for-job",
                    "--job-id",
                    "w1",
                    "--max-results",
                    "1",
                ],
                |v| {
                    let s = &v["executionSummaries"];
                    assert_eq!(s.as_array().unwrap().len(), 1, "{v}");
                    assert_eq!(
                        s[0]["thingArn"],
                        format!("arn:aws:iot:{REGION}:{A}:thing/dev-0").as_str()
                    );
                    assert_eq!(s[0]["jobExecutionSummary"]["status"], "QUEUED");
                    assert_eq!(s[0]["jobExecutionSummary"]["executionNumber"], 1);
                    assert!(v["nextToken"].is_string(), "{v}");
                },
            ),
            ok(
                "executions of a thing",
                A,
                &[
                    "iot",
                    "list-job-executions-for-thing",
                    "--thing-name",
                    "dev-1",
                    "--status",
                    "QUEUED",
                ],
                |v| {
                    let s = &v["executionSummaries"];
                    assert_eq!(s[0]["jobId"], "w1");
                    assert_eq!(s[0]["jobExecutionSummary"]["status"], "QUEUED");
                },
            ),
            ok(
                "one execution",
                A,
                &[
                    "iot",
                    "describe-job-execution",
                    "--job-id",
                    "w1",
                    "--thing-name",
                    "dev-1",
                ],
                |v| {
                    let e = &v["execution"];
                    assert_eq!(e["jobId"], "w1");
                    assert_eq!(e["status"], "QUEUED");
                    assert_eq!(e["versionNumber"], 1);
                },
            ),
            err(
                "no execution",
                A,
                &[
                    "iot",
                    "describe-job-execution",
                    "--job-id",
                    "w1",
                    "--thing-name",
                    "dev-2",
                ],
                "ResourceNotFoundException",
            ),
            err(
                "no job",
                A,
                &["iot", "describe-job", "--job-id", "nope"],
                "ResourceNotFoundException",
            ),
            err(
                "delete while in progress",
                A,
                &["iot", "delete-job", "--job-id", "w1"],
                "InvalidStateTransitionException",
            ),
        ],
    );
    // step 3: groups change
    cli.run_cases(
        &url,
        vec![
            done(
                "remove a member",
                A,
                &[
                    "iot",
                    "remove-thing-from-thing-group",
                    "--thing-group-name",
                    "wave",
                    "--thing-name",
                    "dev-1",
                ],
            ),
            done(
                "add a member",
                A,
                &[
                    "iot",
                    "add-thing-to-thing-group",
                    "--thing-group-name",
                    "wave",
                    "--thing-name",
                    "dev-2",
                ],
            ),
        ],
    );
    // step 4: what the continuous job made of it, then cancel
    cli.run_cases(
        &url,
        vec![ok(
            "removed and added",
            A,
            &["iot", "list-job-executions-for-job", "--job-id", "w1"],
            |v| {
                let by_thing: BTreeMap<String, String> = v["executionSummaries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        let thing = s["thingArn"].as_str().unwrap().rsplit('/').next().unwrap();
                        let status = s["jobExecutionSummary"]["status"].as_str().unwrap();
                        (thing.to_string(), status.to_string())
                    })
                    .collect();
                assert_eq!(by_thing["dev-1"], "REMOVED");
                assert_eq!(by_thing["dev-2"], "QUEUED");
            },
        )],
    );
    cli.run_cases(
        &url,
        vec![ok(
            "cancel",
            A,
            &[
                "iot",
                "cancel-job",
                "--job-id",
                "w1",
                "--reason-code",
                "MIGRATION_DONE",
                "--comment",
                "done",
            ],
            |v| assert_eq!(v["jobId"], "w1"),
        )],
    );
    cli.run_cases(
        &url,
        vec![
            done("delete", A, &["iot", "delete-job", "--job-id", "w1"]),
            done(
                "delete the group",
                A,
                &["iot", "delete-thing-group", "--thing-group-name", "wave"],
            ),
        ],
    );
    cli.run_cases(
        &url,
        vec![
            err(
                "deleted job",
                A,
                &["iot", "describe-job", "--job-id", "w1"],
                "ResourceNotFoundException",
            ),
            done(
                "deleting a group that is gone",
                A,
                &["iot", "delete-thing-group", "--thing-group-name", "wave"],
            ),
        ],
    );
    let dump = sim.state();
    assert!(dump.account(A, REGION).unwrap().thing_groups.is_empty());
}
