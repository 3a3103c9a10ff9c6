//! Shared harness of the black-box tests: a simulator started in-process on 127.0.0.1:0, a
//! fresh temporary directory per test, and the real `iot-cert-migrate` binary run in it
//! with hermetic AWS settings (no profile files, no instance metadata).

mod fleet;
mod kill;
mod pty;
mod tools;

pub use fleet::*;
pub use kill::*;
pub use pty::*;
pub use tools::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use iot_sim::{
    SeedAccount, SeedCertificate, SeedPolicy, SimConfig, SimHandle, Simulator, StateDump,
};
use serde_json::Value;

/// The source account of every test (the simulator's default account).
pub const SOURCE: &str = "111111111111";
/// A target account.
pub const TARGET: &str = "222222222222";
/// A second target account.
pub const TARGET2: &str = "333333333333";
/// The default region.
pub const REGION: &str = "us-east-1";

/// A deterministic certificate id (64 lowercase hex) for test number `n`.
pub fn cert_id(n: u64) -> String {
    // Spread n over the id so ids sort in a different order than n (exercises ordering).
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{a:016x}{n:016x}{:016x}{:016x}", a.rotate_left(17), !n)
}

/// One certificate to seed.
pub fn cert(id: &str, status: &str, policies: &[&str], things: &[&str]) -> SeedCertificate {
    SeedCertificate {
        id: id.to_string(),
        status: status.to_string(),
        policies: policies.iter().map(|s| s.to_string()).collect(),
        things: things.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A simulator plus a scratch directory for one test.
pub struct Env {
    /// The running simulator.
    pub sim: SimHandle,
    /// The test's directory (removed at drop).
    pub dir: tempfile::TempDir,
}

impl Env {
    /// Starts a simulator with `config`.
    pub fn new(config: SimConfig) -> Env {
        Env {
            sim: Simulator::spawn(config).expect("simulator starts"),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Starts a simulator without quotas, latency or faults.
    pub fn unlimited() -> Env {
        Env::new(SimConfig::unlimited())
    }

    /// Seeds certificates owned by `account` in `region`.
    pub fn seed(&self, account: &str, region: &str, certs: Vec<SeedCertificate>) {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            account.to_string(),
            SeedAccount {
                certificates: certs,
                ..Default::default()
            },
        );
        self.sim
            .seed(iot_sim::Seed {
                region: region.to_string(),
                accounts,
            })
            .expect("seed accepted");
    }

    /// Creates policies (default document) in `account`'s registry in `region`: AWS
    /// attaches only policies that exist.
    pub fn seed_policies(&self, account: &str, region: &str, names: &[&str]) {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            account.to_string(),
            SeedAccount {
                policies: names
                    .iter()
                    .map(|n| SeedPolicy {
                        name: n.to_string(),
                        document: None,
                    })
                    .collect(),
                ..Default::default()
            },
        );
        self.sim
            .seed(iot_sim::Seed {
                region: region.to_string(),
                accounts,
            })
            .expect("seed accepted");
    }

    /// Seeds certificates `numbers` (ids from [`cert_id`]) in the source account with this
    /// status, policies and things, and writes manifest `name` sending them all to TARGET.
    pub fn fleet(
        &self,
        name: &str,
        numbers: std::ops::Range<u64>,
        status: &str,
        policies: &[&str],
        things: &[&str],
    ) -> Vec<String> {
        let ids: Vec<String> = numbers.map(cert_id).collect();
        self.seed(
            SOURCE,
            REGION,
            ids.iter()
                .map(|id| cert(id, status, policies, things))
                .collect(),
        );
        let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
        self.manifest(name, &rows);
        ids
    }

    /// A path inside the test directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` with `text` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// Writes a manifest of (id, target) rows.
    pub fn manifest(&self, name: &str, rows: &[(String, &str)]) -> PathBuf {
        let mut text = String::from("certificate_id,target_account\n");
        for (id, target) in rows {
            text.push_str(&format!("{id},{target}\n"));
        }
        self.write(name, &text)
    }

    /// The binary, run in the test directory as `account`, pointed at the simulator.
    pub fn cmd_as(&self, account: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_iot-cert-migrate"));
        c.args(args).current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("IOT_CERT_MIGRATE_") {
                c.env_remove(k);
            }
        }
        c.env("AWS_ACCESS_KEY_ID", account)
            .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", self.sim.url())
            .env("AWS_CONFIG_FILE", self.path("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // The default: without a terminal, no bar and no progress lines.
            .env("IOT_CERT_MIGRATE_PROGRESS", "auto");
        c
    }

    /// The binary as the source account.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_as(SOURCE, args)
    }

    /// Runs the binary as the source account and returns its output.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("binary runs"))
    }

    /// Runs the binary as `account`.
    pub fn run_as(&self, account: &str, args: &[&str]) -> Run {
        Run::from(self.cmd_as(account, args).output().expect("binary runs"))
    }

    /// The simulator's state.
    pub fn state(&self) -> StateDump {
        self.sim.state()
    }

    /// Status and owner of a certificate in the simulator.
    pub fn cert_state(&self, id: &str) -> Option<iot_sim::CertState> {
        self.sim.state().find(id).map(|(_, c)| c.clone())
    }
}

/// What a run of the binary produced.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The JSON summary on stdout (run with `--output json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// `counts.<name>` of the JSON summary.
    pub fn count(&self, name: &str) -> u64 {
        self.json()["counts"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counts.{name} in {}", self.stdout))
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Every line of a JSON Lines file.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read ledger")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad ledger line {l}: {e}")))
        .collect()
}

/// The ledger's events (lines with an `id`).
pub fn ledger_events(path: &Path) -> Vec<Value> {
    read_jsonl(path)
        .into_iter()
        .filter(|v| v.get("id").is_some())
        .collect()
}

/// The rows of a CSV file (header excluded), as maps.
pub fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("open csv");
    r.deserialize().map(|row| row.expect("csv row")).collect()
}
