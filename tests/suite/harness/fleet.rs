//! The harness of the survival tests: a fleet of ACTIVE certificates that each need every
//! prepare step, a spawned run that can be signalled and killed, and polling helpers.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use iot_sim::SimConfig;
use rand::SeedableRng;
use serde_json::Value;

use super::*;

/// The flags every certificate of these fleets needs (ACTIVE, one policy, one thing).
pub const PREPARE: [&str; 3] = ["--deactivate", "--detach-policies", "--detach-things"];

/// The policy attached to every certificate of a fleet.
pub const POLICY: &str = "fleet-policy";

/// A fleet of `n` ACTIVE certificates, each with one policy and one thing, seeded in the
/// simulator and listed in `m.csv`, all to [`TARGET`].
pub struct ActiveFleet {
    pub env: Env,
    pub ids: Vec<String>,
    pub ledger: PathBuf,
    /// `--rate-scale` of every run: high by default, so that the simulator's latency and
    /// faults set the pace.
    pub rate_scale: &'static str,
}

impl ActiveFleet {
    pub fn new(config: SimConfig, n: u64) -> ActiveFleet {
        let env = Env::new(config);
        let ids: Vec<String> = (0..n).map(|i| cert_id(10_000 + i)).collect();
        let certs = ids
            .iter()
            .enumerate()
            .map(|(i, id)| cert(id, "ACTIVE", &[POLICY], &[&format!("thing-{i}")]))
            .collect();
        env.seed(SOURCE, REGION, certs);
        let rows: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), TARGET)).collect();
        env.manifest("m.csv", &rows);
        let ledger = env.path("m.ledger.jsonl");
        ActiveFleet {
            env,
            ids,
            ledger,
            rate_scale: "100",
        }
    }

    /// `transfer m.csv` with the prepare flags, the fleet's rate scale and `extra`.
    pub fn args<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "--output",
            "json",
            "transfer",
            "m.csv",
            "--rate-scale",
            self.rate_scale,
        ];
        a.extend(PREPARE);
        a.extend(extra);
        a
    }

    /// Starts the binary; stdout and stderr go to `NAME.out` and `NAME.err` in the test
    /// directory (files, not pipes: nobody has to drain them while the run goes on).
    pub fn spawn(&self, name: &str, extra: &[&str]) -> Spawned {
        self.spawn_with_env(name, extra, &[])
    }

    /// [`ActiveFleet::spawn`] with environment variables `vars` set for the binary.
    pub fn spawn_with_env(&self, name: &str, extra: &[&str], vars: &[(&str, &str)]) -> Spawned {
        let out = self.env.path(&format!("{name}.out"));
        let err = self.env.path(&format!("{name}.err"));
        let child = self
            .env
            .cmd(&self.args(extra))
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .expect("binary starts");
        Spawned { child, out, err }
    }

    /// Runs the binary to the end.
    pub fn run(&self, extra: &[&str]) -> Run {
        self.env.run(&self.args(extra))
    }

    /// [`ActiveFleet::run`] with environment variables `vars` set for the binary.
    pub fn run_with_env(&self, extra: &[&str], vars: &[(&str, &str)]) -> Run {
        let output = self
            .env
            .cmd(&self.args(extra))
            .envs(vars.iter().copied())
            .output()
            .expect("binary runs");
        Run::from(output)
    }

    /// Lines in the ledger (0 before it exists).
    pub fn ledger_lines(&self) -> usize {
        count_lines(&self.ledger)
    }

    /// `status --output json` of the manifest: the ledger's view.
    pub fn status_counts(&self) -> Value {
        let status = self.env.run(&["--output", "json", "status", "m.csv"]);
        status.expect_code(0);
        status.json()["counts"].clone()
    }

    /// The simulator's view: every certificate is pending transfer to its target, stripped
    /// of its policy and thing, transferred exactly once; and the ledger agrees.
    pub fn assert_all_transferred_once(&self) {
        let state = self.env.state();
        for id in &self.ids {
            let (account, c) = state.find(id).unwrap_or_else(|| panic!("{id} vanished"));
            assert_eq!(account.account, SOURCE, "{id}");
            assert_eq!(c.status, "PENDING_TRANSFER", "{id}");
            assert_eq!(c.pending_target.as_deref(), Some(TARGET), "{id}");
            assert!(c.policies.is_empty(), "{id} still has {:?}", c.policies);
            assert!(c.things.is_empty(), "{id} still has {:?}", c.things);
        }
        let stats = self.env.sim.stats();
        assert_eq!(
            stats.max_transfers_per_certificate, 1,
            "a certificate was transferred twice"
        );
        assert_eq!(stats.transfers_effective, self.ids.len() as u64);

        let counts = self.status_counts();
        assert_eq!(counts["transferred"], self.ids.len() as u64, "{counts}");
        for state in ["failed", "pending", "in_doubt"] {
            assert_eq!(counts[state], 0, "{state}: {counts}");
        }
        self.assert_ledger_tells_each_change_once();
    }

    /// With nothing in doubt, the ledger and the simulator tell the same story of every
    /// certificate: what prepare changed and whether it is pending transfer; and `status`
    /// counts what both say. Returns the number transferred.
    pub fn assert_ledger_matches_sim(&self) -> u64 {
        let events = ledger_events(&self.ledger);
        let mut by_id: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for e in &events {
            by_id.entry(e["id"].as_str().unwrap()).or_default().push(e);
        }
        let state = self.env.state();
        let mut transferred = 0;
        for id in &self.ids {
            let mine = by_id.get(id.as_str()).cloned().unwrap_or_default();
            let done = |action: &str| {
                mine.iter()
                    .any(|e| e["outcome"] == "done" && e["details"]["action"] == action)
            };
            let is_transferred = mine.iter().any(|e| e["outcome"] == "transferred");
            let (_, c) = state.find(id).unwrap_or_else(|| panic!("{id} vanished"));
            let status = if is_transferred {
                "PENDING_TRANSFER"
            } else if done("deactivate") {
                "INACTIVE"
            } else {
                "ACTIVE"
            };
            let story = || format!("{id}: simulator {c:?}, ledger {mine:?}");
            assert_eq!(c.status, status, "{}", story());
            assert_eq!(c.policies.is_empty(), done("detach_policy"), "{}", story());
            assert_eq!(c.things.is_empty(), done("detach_thing"), "{}", story());
            transferred += u64::from(is_transferred);
        }
        let counts = self.status_counts();
        assert_eq!(counts["in_doubt"], 0, "{counts}");
        assert_eq!(counts["failed"], 0, "{counts}");
        assert_eq!(counts["transferred"], transferred, "{counts}");
        assert_eq!(
            counts["pending"],
            self.ids.len() as u64 - transferred,
            "{counts}"
        );
        transferred
    }

    /// No outcome lost, nothing done twice: for every certificate the ledger holds exactly
    /// one `done` per prepare change (however it was established: by the call's answer or
    /// by reconciliation) and exactly one `transferred`; no failure; no call sent again
    /// while the outcome of its previous delivery was still unknown (a blind re-send); and
    /// never a TransferCertificate refused because the certificate was already pending
    /// (which is what a blind re-send would get; a 409 that is the answer to a duplicate
    /// delivery of the tool's own request shows as an `unknown` outcome, checked against
    /// AWS, not as a refusal).
    pub fn assert_ledger_tells_each_change_once(&self) {
        let events = ledger_events(&self.ledger);
        let mut tally: BTreeMap<(String, String), u32> = BTreeMap::new();
        let mut open: BTreeMap<String, &Value> = BTreeMap::new();
        for e in &events {
            let id = e["id"].as_str().unwrap().to_string();
            let outcome = e["outcome"].as_str().unwrap();
            match outcome {
                "intent" => {
                    if let Some(before) = open.insert(id.clone(), e) {
                        panic!("sent again before the outcome of {before} was known: {e}");
                    }
                }
                "unknown" => {}
                _ => {
                    open.remove(&id);
                }
            }
            assert!(
                !(e["details"]["error_code"] == "TransferConflictException"
                    && outcome != "unknown"),
                "a transfer was sent again for a pending certificate: {e}"
            );
            let what = match (outcome, e["details"]["action"].as_str()) {
                ("done", Some(action)) => action.to_string(),
                ("transferred", _) => "transferred".to_string(),
                ("failed", _) => panic!("a failure was recorded: {e}"),
                _ => continue,
            };
            *tally.entry((id, what)).or_default() += 1;
        }
        for (i, id) in self.ids.iter().enumerate() {
            for what in ["deactivate", "detach_policy", "detach_thing", "transferred"] {
                let n = tally
                    .get(&(id.clone(), what.to_string()))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(
                    n, 1,
                    "certificate #{i} {id}: {n} `{what}` outcomes in the ledger"
                );
            }
        }
    }
}

/// A running binary with its output files.
pub struct Spawned {
    pub child: Child,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits for the process to end (at most `limit`; then it is killed and the test fails).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the run did not end within {limit:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the end and returns what the run produced.
    pub fn finish(mut self, limit: Duration) -> Run {
        let status = self.wait(limit);
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Sends `signal` (`libc::SIGINT`, ...) with kill(2) and returns the time just after:
    /// the signal was delivered by then, so nothing the run did because of it is older.
    pub fn signal_at(&self, signal: i32) -> std::time::SystemTime {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let r = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(r, 0, "kill({}, {signal})", self.child.id());
        std::time::SystemTime::now()
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1): no extra crate for one call.
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .expect("kill(1) runs")
            .success();
        assert!(ok, "kill -{name} {} failed", self.pid());
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A failing assertion must not leave a run behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Polls `cond` until it holds; fails the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `command` (a new process each round) `rounds` times, each SIGKILLed once `ledger`
/// grew by a random number of lines in `grow` (a run that ends first is left to end), its
/// stderr in `kill-ROUND.err` beside the env's files. Returns how many runs the kill ended.
pub fn kill_as_the_ledger_grows(
    env: &Env,
    mut command: impl FnMut() -> std::process::Command,
    ledger: &Path,
    rounds: usize,
    grow: std::ops::RangeInclusive<usize>,
    rng: &mut impl rand::Rng,
    limit: Duration,
) -> usize {
    use std::os::unix::process::ExitStatusExt;
    let mut kills = 0;
    for round in 0..rounds {
        let before = count_lines(ledger);
        let mut child = command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(env.path(&format!("kill-{round}.err"))).unwrap())
            .spawn()
            .expect("binary starts");
        let grow = rng.random_range(grow.clone());
        wait_until(&format!("{} to grow", ledger.display()), limit, || {
            count_lines(ledger) >= before + grow || child.try_wait().unwrap().is_some()
        });
        let _ = child.kill();
        if child.wait().unwrap().signal() == Some(9) {
            kills += 1;
        }
    }
    kills
}

/// A random generator whose seed is printed (and can be forced with SURVIVAL_SEED), so a
/// failure can be replayed.
pub fn rng(test: &str) -> rand::rngs::StdRng {
    let seed = std::env::var("SURVIVAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("{test}: SURVIVAL_SEED={seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}
