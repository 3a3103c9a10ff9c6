//! An independent client agrees: the AWS CLI (v1, botocore) against the
//! simulator, for every operation and every error.
//!
//! The CLI is `$IOT_SIM_AWS_CLI` if set, else `aws` on PATH. Without a CLI
//! the test is skipped, except when `CI=true`, where it fails.
//! Independent commands run concurrently to keep the test short.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use iot_sim::{FaultKind, SeedCertificate, SimConfig, SimHandle, Simulator};
use serde_json::Value;

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

/// How many CLI processes run at once.
const MAX_PARALLEL: usize = 6;

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

/// One CLI invocation: (access key, arguments after `--endpoint-url URL --output json`).
type Job = (String, Vec<String>);

fn job(key: &str, args: &[&str]) -> Job {
    (
        key.to_string(),
        args.iter().map(|s| s.to_string()).collect(),
    )
}

impl Cli {
    fn find() -> Option<Cli> {
        let bin = match std::env::var_os("IOT_SIM_AWS_CLI") {
            Some(path) => PathBuf::from(path),
            None => pyenv_aws().unwrap_or_else(|| PathBuf::from("aws")),
        };
        let ok = Command::new(&bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Cli { bin })
    }

    fn spawn(&self, url: &str, (key, args): &Job) -> Child {
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

    /// Runs all jobs concurrently; answers in the same order.
    fn run_all(&self, url: &str, jobs: &[Job]) -> Vec<Out> {
        let mut outs = Vec::new();
        // a few at a time: more only makes the python start-ups fight for 2 cores
        for chunk in jobs.chunks(MAX_PARALLEL) {
            let children: Vec<Child> = chunk.iter().map(|j| self.spawn(url, j)).collect();
            outs.extend(children.into_iter().map(Self::collect));
        }
        outs
    }

    fn collect(c: Child) -> Out {
        let out = c.wait_with_output().expect("CLI runs");
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

#[test]
fn aws_cli_agrees() {
    let Some(cli) = Cli::find() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the AWS CLI is required in CI: set IOT_SIM_AWS_CLI or put `aws` on PATH");
        }
        // Straight to the process's stderr: eprintln! would be captured, and a passing test's
        // captured output is never shown, so the skip would go unseen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "aws_cli_agrees skipped: no AWS CLI (set IOT_SIM_AWS_CLI)"
        );
        return;
    };

    // --- the main simulator: no quotas, no faults
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
    config.seeds.push(seed_of(vec![(A, certs)]));
    let sim = Simulator::spawn(config).unwrap();

    // --- small simulators for quotas and faults, driven in parallel with phase 1
    let mut throttled_cfg = SimConfig::unlimited();
    throttled_cfg
        .quotas
        .insert("DescribeCertificate".into(), 0.05);
    let fault_sims: Vec<(FaultKind, SimHandle)> = [
        FaultKind::Http500,
        FaultKind::Http503,
        FaultKind::Reset,
        FaultKind::Timeout,
        FaultKind::LostReply,
    ]
    .into_iter()
    .map(|kind| {
        let mut c = SimConfig::unlimited();
        c.faults = vec![(kind, 1.0)];
        c.timeout_hold = Duration::from_secs(4);
        c.seeds.push(seed_of(vec![(A, vec![cert(1, "ACTIVE")])]));
        (kind, Simulator::spawn(c).unwrap())
    })
    .collect();
    throttled_cfg
        .seeds
        .push(seed_of(vec![(A, vec![cert(1, "ACTIVE")])]));
    let throttled_sim = Simulator::spawn(throttled_cfg).unwrap();

    let id = |n: u32| cert_id(n);
    let arn_a = |n: u32| arn(A, &cert_id(n));
    let (id1, id2, id3, id4, id5, id6, id7) = (id(1), id(2), id(3), id(4), id(5), id(6), id(7));
    let (arn1, arn_missing) = (arn_a(1), arn_a(99));
    let nothex = "z".repeat(64);
    let long_msg = "m".repeat(129);

    // ===== phase 1: reads and refusals (independent)
    let phase1: Vec<Job> = vec![
        job(
            A,
            &["iot", "describe-certificate", "--certificate-id", &id1],
        ), // 0
        job(
            A,
            &["iot", "describe-certificate", "--certificate-id", &id(99)],
        ), // 1
        job(
            A,
            &["iot", "describe-certificate", "--certificate-id", &nothex],
        ), // 2
        job(A, &["iot", "list-certificates"]), // 3
        job(
            A,
            &[
                "iot",
                "list-certificates",
                "--page-size",
                "7",
                "--no-paginate",
            ],
        ), // 4
        job(
            A,
            &[
                "iot",
                "list-certificates",
                "--page-size",
                "251",
                "--no-paginate",
            ],
        ), // 5
        job(
            A,
            &[
                "iot",
                "update-certificate",
                "--certificate-id",
                &id1,
                "--new-status",
                "PENDING_TRANSFER",
            ],
        ), // 6
        job(
            A,
            &[
                "iot",
                "update-certificate",
                "--certificate-id",
                &id(99),
                "--new-status",
                "ACTIVE",
            ],
        ), // 7
        job(
            A,
            &[
                "iot",
                "update-certificate",
                "--certificate-id",
                &id5,
                "--new-status",
                "ACTIVE",
            ],
        ), // 8
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id1,
                "--target-aws-account",
                B,
            ],
        ), // 9
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id5,
                "--target-aws-account",
                B,
            ],
        ), // 10
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id6,
                "--target-aws-account",
                B,
            ],
        ), // 11
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id7,
                "--target-aws-account",
                B,
            ],
        ), // 12
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id(99),
                "--target-aws-account",
                B,
            ],
        ), // 13
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id2,
                "--target-aws-account",
                A,
            ],
        ), // 14
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id2,
                "--target-aws-account",
                "12345678901x",
            ],
        ), // 15
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id2,
                "--target-aws-account",
                B,
                "--transfer-message",
                &long_msg,
            ],
        ), // 16
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &nothex,
                "--target-aws-account",
                B,
            ],
        ), // 17
        job(A, &["iot", "list-attached-policies", "--target", &arn1]), // 18
        job(A, &["iot", "list-principal-policies", "--principal", &arn1]), // 19
        job(A, &["iot", "list-principal-things", "--principal", &arn1]), // 20
        job(
            A,
            &["iot", "list-attached-policies", "--target", &arn_missing],
        ), // 21
        job(A, &["sts", "get-caller-identity"]), // 22
        job("AKIDEXAMPLE", &["sts", "get-caller-identity"]), // 23
        job(A, &["iot", "list-certificates", "--max-items", "5"]), // 24
    ];
    // quota: the second DescribeCertificate within 20 s is throttled
    let throttle_jobs = vec![job(
        A,
        &["iot", "describe-certificate", "--certificate-id", &id1],
    )];
    let first = cli.run_all(&throttled_sim.url(), &throttle_jobs);
    let fault_children: Vec<(FaultKind, Vec<Child>)> = fault_sims
        .iter()
        .map(|(kind, s)| {
            let mut args = vec![
                "iot",
                "update-certificate",
                "--certificate-id",
                &id1,
                "--new-status",
                "INACTIVE",
            ];
            if *kind == FaultKind::Timeout {
                args.extend(["--cli-read-timeout", "1"]);
            }
            (*kind, vec![cli.spawn(&s.url(), &job(A, &args))])
        })
        .collect();
    let second = cli.run_all(&throttled_sim.url(), &throttle_jobs);
    let r = cli.run_all(&sim.url(), &phase1);

    first[0].expect_ok("first describe under quota");
    second[0].expect_err("second describe under quota", "ThrottlingException");
    assert!(
        second[0].stderr.contains("Rate exceeded"),
        "{}",
        second[0].stderr
    );
    assert_eq!(throttled_sim.stats().throttled_of("DescribeCertificate"), 1);

    for (kind, children) in fault_children {
        for c in children {
            let out = c.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(!out.status.success(), "{kind}: succeeded");
            let sim_k = &fault_sims.iter().find(|(k, _)| *k == kind).unwrap().1;
            match kind {
                FaultKind::Http500 => {
                    assert!(stderr.contains("(InternalFailureException)"), "{stderr}")
                }
                FaultKind::Http503 => {
                    assert!(stderr.contains("(ServiceUnavailableException)"), "{stderr}")
                }
                FaultKind::Reset => assert!(
                    stderr.contains("Connection was closed") || stderr.contains("onnection reset"),
                    "{stderr}"
                ),
                FaultKind::Timeout => assert!(stderr.contains("Read timeout"), "{stderr}"),
                FaultKind::LostReply => assert!(
                    stderr.contains("(InternalFailureException)")
                        || stderr.contains("Connection was closed")
                        || stderr.contains("onnection reset"),
                    "{stderr}"
                ),
            }
            // only lost-reply takes effect
            let expected = if kind == FaultKind::LostReply {
                "INACTIVE"
            } else {
                "ACTIVE"
            };
            assert_eq!(status(sim_k, 1), expected, "{kind}");
            assert_eq!(sim_k.stats().faults[kind.as_str()], 1, "{kind}");
        }
    }
    drop(fault_sims);

    let d = &r[0].expect_ok("describe")["certificateDescription"];
    assert_eq!(d["certificateArn"], arn1);
    assert_eq!(d["certificateId"], id1);
    assert_eq!(d["status"], "ACTIVE");
    assert_eq!(d["ownedBy"], A);
    assert!(!d["creationDate"].is_null());
    assert!(d["certificatePem"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    r[1].expect_err("describe unknown", "ResourceNotFoundException");
    r[2].expect_err("describe bad id", "InvalidRequestException");
    let all = r[3].expect_ok("list all")["certificates"]
        .as_array()
        .unwrap()
        .clone();
    // 37 certificates at the default page size 25: the CLI followed nextMarker
    assert_eq!(all.len(), 37);
    // (`--page-size` is the operation's own pageSize here, which turns the
    // CLI's auto-pagination off: one page and a nextMarker)
    let page = r[4].expect_ok("one page");
    assert_eq!(page["certificates"].as_array().unwrap().len(), 7);
    let marker = page["nextMarker"].as_str().unwrap().to_string();
    let next = cli.run_all(
        &sim.url(),
        &[job(
            A,
            &[
                "iot",
                "list-certificates",
                "--page-size",
                "30",
                "--marker",
                &marker,
            ],
        )],
    );
    let next = next[0].expect_ok("page two")["certificates"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(next.len(), 30);
    assert!(next
        .iter()
        .chain(page["certificates"].as_array().unwrap())
        .all(|c| all.contains(c)));
    r[5].expect_err("page size 251", "InvalidRequestException");
    r[6].expect_err("update to PENDING_TRANSFER", "InvalidRequestException");
    r[7].expect_err("update unknown", "ResourceNotFoundException");
    r[8].expect_err("update revoked", "CertificateStateException");
    r[9].expect_err("transfer active", "CertificateStateException");
    r[10].expect_err("transfer revoked", "CertificateStateException");
    r[11].expect_err("transfer with policy", "TransferConflictException");
    r[12].expect_err("transfer with thing", "TransferConflictException");
    r[13].expect_err("transfer unknown", "ResourceNotFoundException");
    r[14].expect_err("transfer to owner", "InvalidRequestException");
    r[15].expect_err("transfer bad account", "InvalidRequestException");
    r[16].expect_err("transfer long message", "InvalidRequestException");
    r[17].expect_err("transfer bad id", "InvalidRequestException");
    let p = r[18].expect_ok("list attached");
    assert_eq!(p["policies"][0]["policyName"], "p1");
    assert_eq!(
        p["policies"][0]["policyArn"],
        format!("arn:aws:iot:{REGION}:{A}:policy/p1")
    );
    assert_eq!(
        r[19].expect_ok("list principal policies")["policies"][0]["policyName"],
        "p1"
    );
    assert_eq!(
        r[20].expect_ok("list things")["things"],
        serde_json::json!(["t1"])
    );
    r[21].expect_err("list attached unknown", "ResourceNotFoundException");
    let who = r[22].expect_ok("sts");
    assert_eq!(who["Account"], A);
    assert_eq!(who["Arn"], format!("arn:aws:iam::{A}:user/iot-sim"));
    assert_eq!(r[23].expect_ok("sts default")["Account"], A);
    let five = r[24].expect_ok("max items");
    assert_eq!(five["certificates"].as_array().unwrap().len(), 5);
    assert!(five["NextToken"].is_string());

    // ===== phase 2: mutations on different certificates
    let phase2 = vec![
        job(
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
        job(
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
        job(
            A,
            &[
                "iot",
                "update-certificate",
                "--certificate-id",
                &id1,
                "--new-status",
                "INACTIVE",
            ],
        ),
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id2,
                "--target-aws-account",
                B,
                "--transfer-message",
                "for B",
            ],
        ),
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id3,
                "--target-aws-account",
                B,
            ],
        ),
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id4,
                "--target-aws-account",
                B,
            ],
        ),
    ];
    let r = cli.run_all(&sim.url(), &phase2);
    for (i, o) in r.iter().enumerate() {
        o.expect_ok(&format!("phase 2 #{i}"));
    }
    assert_eq!(r[3].json["transferredCertificateArn"], arn(B, &id2));
    assert_eq!(status(&sim, 1), "INACTIVE");

    // ===== phase 3
    let phase3 = vec![
        job(
            A,
            &[
                "iot",
                "list-principal-things",
                "--principal",
                &arn1,
                "--page-size",
                "1",
            ],
        ), // 0
        job(
            A,
            &[
                "iot",
                "list-attached-policies",
                "--target",
                &arn1,
                "--page-size",
                "1",
            ],
        ), // 1
        job(B, &["iot", "list-certificates"]), // 2
        job(
            B,
            &["iot", "describe-certificate", "--certificate-id", &id2],
        ), // 3
        job(A, &["iot", "list-outgoing-certificates"]), // 4
        job(
            A,
            &[
                "iot",
                "update-certificate",
                "--certificate-id",
                &id2,
                "--new-status",
                "ACTIVE",
            ],
        ), // 5
        job(
            A,
            &[
                "iot",
                "transfer-certificate",
                "--certificate-id",
                &id2,
                "--target-aws-account",
                B,
            ],
        ), // 6
        job(
            C,
            &[
                "iot",
                "accept-certificate-transfer",
                "--certificate-id",
                &id2,
            ],
        ), // 7
        job(
            A,
            &[
                "iot",
                "cancel-certificate-transfer",
                "--certificate-id",
                &id1,
            ],
        ), // 8
        job(
            B,
            &[
                "iot",
                "reject-certificate-transfer",
                "--certificate-id",
                &id3,
                "--reject-reason",
                &long_msg,
            ],
        ), // 9
    ];
    let r = cli.run_all(&sim.url(), &phase3);
    assert_eq!(
        r[0].expect_ok("things paged")["things"],
        serde_json::json!(["t1", "t2"])
    );
    let first = r[1].expect_ok("policies paged");
    assert_eq!(first["policies"].as_array().unwrap().len(), 1);
    assert_eq!(first["policies"][0]["policyName"], "p1");
    let marker = first["nextMarker"].as_str().unwrap().to_string();
    let second = cli.run_all(
        &sim.url(),
        &[job(
            A,
            &[
                "iot",
                "list-attached-policies",
                "--target",
                &arn1,
                "--marker",
                &marker,
            ],
        )],
    );
    let second = second[0].expect_ok("policies page 2");
    assert_eq!(second["policies"][0]["policyName"], "p2");
    assert!(second["nextMarker"].is_null());
    let incoming = r[2].expect_ok("B lists")["certificates"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(incoming.len(), 3);
    assert!(incoming.iter().all(|c| c["status"] == "PENDING_TRANSFER"));
    assert_eq!(
        r[3].expect_ok("B describes")["certificateDescription"]["status"],
        "PENDING_TRANSFER"
    );
    let out = r[4].expect_ok("outgoing")["outgoingCertificates"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|c| c["transferredTo"] == B));
    assert!(out.iter().any(|c| c["transferMessage"] == "for B"));
    r[5].expect_err("update pending", "CertificateStateException");
    r[6].expect_err("transfer pending", "TransferConflictException");
    r[7].expect_err("accept by a stranger", "ResourceNotFoundException");
    r[8].expect_err("cancel not pending", "InvalidRequestException");
    r[9].expect_err("reject reason too long", "InvalidRequestException");

    // ===== phase 4
    let phase4 = vec![
        job(
            B,
            &[
                "iot",
                "accept-certificate-transfer",
                "--certificate-id",
                &id2,
                "--set-as-active",
            ],
        ),
        job(
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
        job(
            A,
            &[
                "iot",
                "cancel-certificate-transfer",
                "--certificate-id",
                &id4,
            ],
        ),
        job(
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
        job(
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
        job(
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
        job(
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
    ];
    let r = cli.run_all(&sim.url(), &phase4);
    for (i, o) in r.iter().enumerate() {
        o.expect_ok(&format!("phase 4 #{i}"));
    }

    // ===== phase 5: the results
    let phase5 = vec![
        job(
            B,
            &["iot", "describe-certificate", "--certificate-id", &id2],
        ), // 0
        job(
            A,
            &["iot", "describe-certificate", "--certificate-id", &id2],
        ), // 1
        job(
            A,
            &[
                "iot",
                "cancel-certificate-transfer",
                "--certificate-id",
                &id2,
            ],
        ), // 2
        job(
            B,
            &[
                "iot",
                "accept-certificate-transfer",
                "--certificate-id",
                &id2,
            ],
        ), // 3
        job(
            A,
            &["iot", "describe-certificate", "--certificate-id", &id3],
        ), // 4
        job(
            A,
            &[
                "iot",
                "detach-thing-principal",
                "--thing-name",
                "never",
                "--principal",
                &arn1,
            ],
        ), // 5
        job(
            A,
            &[
                "iot",
                "attach-policy",
                "--policy-name",
                "p1",
                "--target",
                &arn_missing,
            ],
        ), // 6
    ];
    let r = cli.run_all(&sim.url(), &phase5);
    let d = &r[0].expect_ok("B describes accepted")["certificateDescription"];
    assert_eq!(d["status"], "ACTIVE");
    assert_eq!(d["ownedBy"], B);
    assert_eq!(d["previousOwnedBy"], A);
    assert_eq!(d["certificateArn"], arn(B, &id2));
    assert!(!d["transferData"]["acceptDate"].is_null());
    r[1].expect_err("source describes accepted", "ResourceNotFoundException");
    r[2].expect_err("cancel after accept", "TransferAlreadyCompletedException");
    r[3].expect_err("second accept", "TransferAlreadyCompletedException");
    let d = &r[4].expect_ok("rejected")["certificateDescription"];
    assert_eq!(d["status"], "INACTIVE");
    assert_eq!(d["transferData"]["rejectReason"], "no thanks");
    r[5].expect_err("detach unknown thing", "ResourceNotFoundException");
    r[6].expect_err("attach to unknown cert", "ResourceNotFoundException");

    let state = sim.state();
    let (_, c1) = state.find(&id1).unwrap();
    assert!(c1.policies.is_empty() && c1.things.is_empty());
    assert_eq!(status(&sim, 4), "INACTIVE");
    assert_eq!(state.find(&id2).unwrap().0.account, B);
    let stats = sim.stats();
    assert_eq!(stats.transfers_effective, 3);
    assert_eq!(stats.max_transfers_per_certificate, 1);
    assert_eq!(stats.calls_of("GetCallerIdentity"), 2);
}
