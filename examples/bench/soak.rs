//! The soak: a large fleet, every fault kind of the simulator at once at a low rate, quotas
//! the tool is told are twice the real ones (so AWS throttles it too), `kill -9` at random
//! moments, then plain reruns of the same command until one exits 0. Then the checks: every
//! certificate transferred exactly once (the simulator's counts), no failure row left, every
//! complete ledger line parses, and each run's peak RSS bounded and not growing from run to
//! run.
//!
//! Shared by the benchmark (`bench -- soak`: 100,000 certificates, the release binary) and
//! the black-box suite (`soak::` tests: 10,000 certificates, the test build of the binary).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iot_sim::{FaultKind, SimConfig, SimHandle, Simulator, Stats};
use rand::{Rng, SeedableRng};

use super::data::{self, cert_id, REGION, SOURCE, TARGET};
use super::support;

/// What to soak.
#[derive(Debug, Clone)]
pub struct Soak {
    /// Certificates (ACTIVE).
    pub certs: usize,
    /// Each certificate with one policy and one thing to detach (seven calls), or bare
    /// (five: deactivated and transferred).
    pub attachments: bool,
    /// The simulator's quotas, times the documented ones.
    pub quota_scale: f64,
    /// How much of a quota the simulator lets a caller spend at once (its burst).
    pub quota_burst: Duration,
    /// How much the tool overestimates them (`--rate-scale` = `quota_scale` times this).
    pub overestimate: f64,
    /// Probability of each of the simulator's eight fault kinds, per request.
    pub fault_rate: f64,
    /// `kill -9` this many runs at random moments before the plain reruns.
    pub kills: usize,
    /// Plain reruns allowed after the kills (each until it ends by itself).
    pub max_reruns: usize,
    /// `--concurrency`.
    pub concurrency: usize,
    /// The simulator's latency per call.
    pub latency: Duration,
    /// Seed of the kill moments.
    pub seed: u64,
}

impl Soak {
    /// The faults: every kind, each at `fault_rate`.
    pub fn faults(&self) -> Vec<(FaultKind, f64)> {
        if self.fault_rate <= 0.0 {
            return Vec::new();
        }
        FaultKind::ALL
            .iter()
            .map(|&k| (k, self.fault_rate))
            .collect()
    }

    /// A bound on every run's peak RSS: what a run needs whatever the fleet, plus what each
    /// certificate's state may take. A run above it is growing without bound.
    pub fn rss_bound(&self) -> u64 {
        (96 << 20) + 1024 * self.certs as u64
    }
}

/// What one run of the tool cost and how it ended.
#[derive(Debug, Clone)]
pub struct RunFigures {
    /// `kill 1`, `rerun 2`, ...
    pub name: String,
    /// The exit code, when it exited by itself.
    pub code: Option<i32>,
    /// Whether this run was killed.
    pub killed: bool,
    /// Spawn to reaped.
    pub wall: Duration,
    /// CPU seconds (user + system).
    pub cpu_s: Option<f64>,
    /// Peak RSS, bytes.
    pub max_rss: Option<u64>,
    /// Certificates transferred by the end of the run (the simulator's count).
    pub transferred: u64,
    /// The ledger's size after the run.
    pub ledger_bytes: u64,
}

/// What the soak measured, and what it found wrong.
#[derive(Debug)]
pub struct Report {
    /// Each run in order.
    pub runs: Vec<RunFigures>,
    /// First spawn to the end of the last run.
    pub wall: Duration,
    /// The simulator's counters over all runs.
    pub stats: Stats,
    /// The ledger at the end: bytes, lines, and lines set aside as torn by the reruns.
    pub ledger_bytes: u64,
    /// Lines of the ledger.
    pub ledger_lines: u64,
    /// Torn lines the reruns set aside (`.torn`).
    pub torn_lines: u64,
    /// Rows of the failure report at the end.
    pub failure_rows: usize,
    /// Every check that failed, in words (empty: all passed).
    pub problems: Vec<String>,
}

impl Report {
    /// Certificates per second over all runs (first spawn to last exit).
    pub fn rate(&self, certs: usize) -> f64 {
        certs as f64 / self.wall.as_secs_f64()
    }

    /// Calls and throttled calls at the simulator, every operation.
    pub fn calls(&self) -> (u64, u64) {
        (
            self.stats.total_calls(),
            self.stats.throttled.values().sum(),
        )
    }

    /// Faults the simulator injected, every kind.
    pub fn faults(&self) -> u64 {
        self.stats.faults.values().sum()
    }
}

/// The tool, run in `dir` as the source account against `sim` with hermetic AWS settings
/// (no profile files, no instance metadata), as a user would run it.
fn command(
    bin: &Path,
    dir: &Path,
    sim: &SimHandle,
    soak: &Soak,
    name: &str,
) -> io::Result<Command> {
    let rate_scale = soak.quota_scale * soak.overestimate;
    let mut c = Command::new(bin);
    c.args([
        "--output",
        "json",
        "--read-timeout",
        "1",
        "--connect-timeout",
        "1",
        "transfer",
        "certs.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
        "--rate-scale",
        &rate_scale.to_string(),
        "--concurrency",
        &soak.concurrency.to_string(),
    ])
    .current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("IOT_CERT_MIGRATE_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", SOURCE)
        .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", sim.url())
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("IOT_CERT_MIGRATE_PROGRESS", "never")
        .stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("{name}.out")))?)
        .stderr(File::create(dir.join(format!("{name}.err")))?);
    Ok(c)
}

/// Runs the soak with the binary `bin` in the empty directory `dir`.
pub fn run(bin: &Path, dir: &Path, soak: &Soak) -> io::Result<Report> {
    let sim = Simulator::spawn(SimConfig {
        quota_scale: soak.quota_scale,
        quota_burst: soak.quota_burst,
        latency: soak.latency,
        faults: soak.faults(),
        // Longer than the tool's read timeout: a held request is a timeout, as with AWS.
        timeout_hold: Duration::from_secs(3),
        ..SimConfig::default()
    })?;
    let ids: Vec<String> = (0..soak.certs as u64).map(cert_id).collect();
    data::seed_active_with(&sim, REGION, &ids, soak.attachments);
    data::write_manifest(
        &dir.join("certs.csv"),
        false,
        ids.iter().map(|id| (id.clone(), None)),
    )?;
    let ledger = dir.join("certs.ledger.jsonl");

    // The kills land at random points of the work (so that each interrupts a run that is
    // transferring), each a random fraction of a second after its point.
    let mut rng = rand::rngs::StdRng::seed_from_u64(soak.seed);
    let mut points: Vec<u64> = (0..soak.kills)
        .map(|_| rng.random_range(1..soak.certs.max(2) as u64))
        .collect();
    points.sort_unstable();

    let started = Instant::now();
    let mut runs = Vec::new();
    let mut done = false;
    for (i, point) in points.iter().enumerate() {
        let name = format!("kill-{}", i + 1);
        let extra = Duration::from_millis(rng.random_range(0..300));
        let mut reached: Option<Instant> = None;
        let cmd = command(bin, dir, &sim, soak, &name)?;
        let (exit, killed) = support::run_child_killing(cmd, Duration::from_millis(20), |_| {
            let now = Instant::now();
            if reached.is_none() && sim.stats().transfers_effective >= *point {
                reached = Some(now);
            }
            reached.is_some_and(|r| now >= r + extra)
        })?;
        runs.push(figures(&name, &exit, killed, &sim, &ledger));
        if !killed && exit.code == Some(0) {
            done = true;
            break;
        }
    }
    let mut rerun = 0;
    while !done && rerun < soak.max_reruns {
        rerun += 1;
        let name = if soak.kills == 0 {
            format!("run-{rerun}")
        } else {
            format!("rerun-{rerun}")
        };
        let cmd = command(bin, dir, &sim, soak, &name)?;
        let exit = support::run_child(cmd, Duration::from_millis(20), |_| {})?;
        runs.push(figures(&name, &exit, false, &sim, &ledger));
        done = exit.code == Some(0);
    }
    let wall = started.elapsed();

    let mut problems = Vec::new();
    if !done {
        problems.push(format!(
            "no run exited 0 after {} kills and {rerun} reruns (exit codes: {:?})",
            soak.kills,
            runs.iter().map(|r| r.code).collect::<Vec<_>>()
        ));
    }
    let stats = sim.stats();
    exactly_once(&sim, &ids, &stats, &mut problems);
    let (ledger_lines, ledger_bytes) = ledger_parses(&ledger, &ids, &mut problems)?;
    let torn_lines = count_lines(&torn_path(&ledger));
    let failure_rows = count_lines(&dir.join("certs.failures.csv")).saturating_sub(1) as usize;
    if failure_rows > 0 {
        problems.push(format!("{failure_rows} failure rows left"));
    }
    rss_bounded(soak, &runs, &mut problems);
    Ok(Report {
        runs,
        wall,
        stats,
        ledger_bytes,
        ledger_lines,
        torn_lines,
        failure_rows,
        problems,
    })
}

fn figures(
    name: &str,
    exit: &support::Exit,
    killed: bool,
    sim: &SimHandle,
    ledger: &Path,
) -> RunFigures {
    RunFigures {
        name: name.to_string(),
        code: exit.code,
        killed,
        wall: exit.wall,
        cpu_s: exit.cpu_s,
        max_rss: exit.max_rss,
        transferred: sim.stats().transfers_effective,
        ledger_bytes: std::fs::metadata(ledger).map(|m| m.len()).unwrap_or(0),
    }
}

/// Every certificate pending transfer to the target, stripped of its policy and thing,
/// transferred exactly once.
fn exactly_once(sim: &SimHandle, ids: &[String], stats: &Stats, problems: &mut Vec<String>) {
    if stats.max_transfers_per_certificate > 1 {
        problems.push(format!(
            "a certificate was transferred {} times",
            stats.max_transfers_per_certificate
        ));
    }
    if stats.transfers_effective != ids.len() as u64 {
        problems.push(format!(
            "{} effective transfers for {} certificates",
            stats.transfers_effective,
            ids.len()
        ));
    }
    // The simulator's full state dump costs time in the square of the fleet (each thing's
    // principals are found by scanning every certificate): beyond this size the counts
    // above and the ledger's story (`ledger_parses`) stand for it.
    if ids.len() > 20_000 {
        return;
    }
    let state = sim.state();
    let mut pending = 0usize;
    let mut bare = 0usize;
    for c in state
        .accounts
        .iter()
        .filter(|a| a.account == SOURCE)
        .flat_map(|a| &a.certificates)
    {
        if c.status == "PENDING_TRANSFER" && c.pending_target.as_deref() == Some(TARGET) {
            pending += 1;
            bare += usize::from(c.policies.is_empty() && c.things.is_empty());
        }
    }
    if pending != ids.len() || bare != ids.len() {
        problems.push(format!(
            "{pending} of {} certificates pending transfer to {TARGET}, {bare} of them without policy or thing",
            ids.len()
        ));
    }
}

/// Every complete line of the ledger is JSON, and every event has its id, stage and
/// outcome; every certificate of the fleet has exactly one `transferred` event and none a
/// `failed` one. Returns the lines and the bytes.
fn ledger_parses(
    ledger: &Path,
    ids: &[String],
    problems: &mut Vec<String>,
) -> io::Result<(u64, u64)> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(ledger)?);
    let (mut lines, mut bytes, mut bad) = (0u64, 0u64, 0u64);
    let mut transferred: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut failed = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if line.last() != Some(&b'\n') {
            // A last line without its newline would be a torn write: the run that exits 0
            // leaves none.
            problems.push("the ledger ends with an incomplete line".into());
            break;
        }
        lines += 1;
        let parsed = serde_json::from_slice::<serde_json::Value>(&line).ok();
        let ok = parsed.as_ref().is_some_and(|v| {
            v.get("id").is_none()
                || (v["stage"].is_string() && v["outcome"].is_string() && v["ts"].is_string())
        });
        if let Some(v) = parsed.filter(|_| ok) {
            match v["outcome"].as_str() {
                Some("transferred") => {
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    *transferred.entry(id).or_default() += 1;
                }
                Some("failed") => failed += 1,
                _ => {}
            }
        }
        if !ok {
            bad += 1;
            if bad <= 3 {
                problems.push(format!(
                    "ledger line {lines} does not parse: {}",
                    String::from_utf8_lossy(&line).trim_end()
                ));
            }
        }
    }
    if bad > 3 {
        problems.push(format!("{bad} ledger lines do not parse in all"));
    }
    if failed > 0 {
        problems.push(format!("{failed} failure events in the ledger"));
    }
    let once = ids
        .iter()
        .filter(|id| transferred.get(id.as_str()) == Some(&1))
        .count();
    if once != ids.len() || transferred.len() != ids.len() {
        problems.push(format!(
            "the ledger records {once} of {} certificates transferred exactly once ({} with a `transferred` event)",
            ids.len(),
            transferred.len()
        ));
    }
    Ok((lines, bytes))
}

/// Every run's peak RSS within the bound, and the last run's not above the first's by more
/// than the state the fleet adds.
fn rss_bounded(soak: &Soak, runs: &[RunFigures], problems: &mut Vec<String>) {
    let bound = soak.rss_bound();
    for r in runs {
        if let Some(rss) = r.max_rss.filter(|&rss| rss > bound) {
            problems.push(format!(
                "{}: peak RSS {} MiB above the bound of {} MiB",
                r.name,
                rss >> 20,
                bound >> 20
            ));
        }
    }
    let rss: Vec<u64> = runs.iter().filter_map(|r| r.max_rss).collect();
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        let allowed = first + first / 2 + (16 << 20);
        if *last > allowed {
            problems.push(format!(
                "peak RSS grew from run to run: {} MiB first, {} MiB last",
                first >> 20,
                last >> 20
            ));
        }
    }
}

fn torn_path(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".torn");
    PathBuf::from(p)
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

/// The report as Markdown: one line per run, then the totals.
pub fn markdown(soak: &Soak, r: &Report) -> String {
    let mut out = String::new();
    let mib = |b: Option<u64>| {
        b.map(|b| format!("{:.1}", b as f64 / 1048576.0))
            .unwrap_or_else(|| "n/a".into())
    };
    out.push_str(
        "| run | ended | wall, s | CPU, s | peak RSS, MiB | transferred so far | ledger, MiB |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for run in &r.runs {
        let ended = match (run.killed, run.code) {
            (true, _) => "kill -9".to_string(),
            (false, Some(c)) => format!("exit {c}"),
            (false, None) => "signal".into(),
        };
        out.push_str(&format!(
            "| {} | {ended} | {:.1} | {} | {} | {} | {:.1} |\n",
            run.name,
            run.wall.as_secs_f64(),
            run.cpu_s
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "n/a".into()),
            mib(run.max_rss),
            run.transferred,
            run.ledger_bytes as f64 / 1048576.0
        ));
    }
    let (calls, throttled) = r.calls();
    out.push_str(&format!(
        "\n{} certificates in {:.1} s ({:.1} certs/s over all runs); {calls} calls at the simulator, {throttled} throttled, {} faults injected ({}); ledger {:.1} MiB in {} lines, {} torn lines set aside; {} failure rows; checks: {}\n",
        soak.certs,
        r.wall.as_secs_f64(),
        r.rate(soak.certs),
        r.faults(),
        r.stats
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.ledger_bytes as f64 / 1048576.0,
        r.ledger_lines,
        r.torn_lines,
        r.failure_rows,
        if r.problems.is_empty() {
            "all passed".to_string()
        } else {
            r.problems.join("; ")
        }
    ));
    out
}
