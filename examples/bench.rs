//! Benchmark of `iot-cert-migrate` against the simulator (see BENCHMARKS.md).
//!
//! ```text
//! cargo run --release --example bench -- [OPTIONS] [SCENARIO...]
//! ```
//!
//! Scenarios: `1` (10x quotas, 30 ms latency), `2` (the tool believes quotas twice the real
//! ones), `3` (two regions, rows alternating), `3-sorted` (two regions, rows sorted by
//! region), `4` (no quotas, no latency), `validate` (1M-row manifest), `resume` (ledger of
//! 1M finished items), `5` (= validate + resume), `realistic` (resumes and `status` from a
//! realistic ledger of 1M fully prepared certificates, 8 events each; with `--ten-million`
//! also of 10M, whose ledger needs about 19 GB of disk), `validate-10m` (10M-row manifest),
//! `6` (= realistic + validate-10m), `faults` (certificates per second with and without
//! every fault kind, at 10,000 and 100,000 certificates), `soak` (100,000 certificates,
//! every fault, quotas overestimated twice, six `kill -9`, reruns until exit 0), `7` (=
//! faults + soak), `concurrency` (a sweep of --concurrency, not part of `all`), `handoff`
//! (10,000 certificates handed off in 10 waves, not part of `all`), `all` (the default: 1 2 3
//! 3-sorted 4 5 6 7).
//!
//! Each scenario starts the simulator in this process (`iot_sim::Simulator::spawn`, its own
//! runtime and threads) and runs the real release binary `target/release/iot-cert-migrate`
//! as a child process pointed at it, exactly as a user would; the bench first runs
//! `cargo build --release --bin iot-cert-migrate` so the binary matches the sources
//! (`--no-build` skips that). Tool CPU and peak RSS are the child's own (wait4); simulator
//! CPU is this process's CPU during the run (the bench thread itself only sleeps).
//! Generated files live in `target/bench-data/` and are removed at the end (`--keep` keeps
//! them).

#[path = "bench/data.rs"]
mod data;
#[path = "bench/handoff.rs"]
mod handoff;
#[path = "bench/realistic.rs"]
mod realistic;
#[path = "bench/soak.rs"]
mod soak;
#[path = "bench/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::Parser;
use iot_sim::{SimConfig, SimHandle, Simulator};
use serde_json::Value;

use data::{cert_id, LedgerTimes, REGION};
use support::Exit;

/// Benchmark of iot-cert-migrate against the in-process simulator.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    /// Scenarios to run: 1 2 3 3-sorted 4 5 6 7 validate resume realistic validate-10m
    /// faults soak concurrency handoff all (default: all = 1 2 3 3-sorted 4 5 6 7).
    scenarios: Vec<String>,
    /// Certificates of `soak` and of the larger run of `faults`.
    #[arg(long, default_value_t = 100_000)]
    soak_certs: usize,
    /// Quotas of the simulator in `soak` and `faults`, times the documented ones.
    #[arg(long, default_value_t = 50.0)]
    soak_quota_scale: f64,
    /// Probability of each of the simulator's eight fault kinds in `soak` and `faults`.
    #[arg(long, default_value_t = 0.001)]
    fault_rate: f64,
    /// Certificates of scenarios 1-3 (and of each step of `concurrency`, halved).
    #[arg(long, default_value_t = 3000)]
    certs: usize,
    /// Certificates of scenario 4 (no quotas, no latency).
    #[arg(long, default_value_t = 10_000)]
    unlimited_certs: usize,
    /// Rows of the manifest (and finished ledger items) of `validate` and `resume`.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Certificates of `handoff` (in 10 waves).
    #[arg(long, default_value_t = 10_000)]
    handoff_certs: usize,
    /// Certificates of the realistic ledger of `realistic`.
    #[arg(long, default_value_t = 1_000_000)]
    realistic_certs: usize,
    /// `realistic` also resumes from a realistic ledger of 10M certificates (about 19 GB of
    /// disk: check `df -h` first; it is removed afterwards unless --keep).
    #[arg(long)]
    ten_million: bool,
    /// --concurrency given to the tool (default: the tool's own default).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Where generated files go (default: target/bench-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the generated files.
    #[arg(long)]
    keep: bool,
    /// Use target/release/iot-cert-migrate as it is, without `cargo build --release`.
    #[arg(long)]
    no_build: bool,
    /// Benchmark this iot-cert-migrate binary instead (e.g. another build, to compare);
    /// implies --no-build.
    #[arg(long, value_name = "PATH")]
    tool: Option<PathBuf>,
}

/// The seven calls a certificate costs (ACTIVE, one policy, one thing), once each.
const PIPELINE: [&str; 7] = [
    "DescribeCertificate",
    "ListAttachedPolicies",
    "ListPrincipalThings",
    "UpdateCertificate",
    "DetachPolicy",
    "DetachThingPrincipal",
    "TransferCertificate",
];

/// One row of the results table.
struct Verdict {
    id: String,
    scenario: String,
    target: String,
    result: String,
    verdict: &'static str,
}

struct Ctx {
    args: Args,
    bin: PathBuf,
    root: PathBuf,
    table: Vec<Verdict>,
    /// Whole-run rate of scenario 1, for scenario 3's comparison.
    one_region_rate: Option<f64>,
    /// The tool's default --concurrency (read from its --help).
    default_concurrency: Option<usize>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = real_main(args) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn real_main(args: Args) -> io::Result<()> {
    let mut wanted: Vec<String> = Vec::new();
    let list = if args.scenarios.is_empty() {
        vec!["all".to_string()]
    } else {
        args.scenarios.clone()
    };
    const KNOWN: [&str; 13] = [
        "handoff",
        "1",
        "2",
        "3",
        "3-sorted",
        "4",
        "validate",
        "resume",
        "realistic",
        "validate-10m",
        "faults",
        "soak",
        "concurrency",
    ];
    for s in &list {
        let expanded: Vec<&str> = match s.as_str() {
            "all" => vec![
                "1",
                "2",
                "3",
                "3-sorted",
                "4",
                "validate",
                "resume",
                "realistic",
                "validate-10m",
                "faults",
                "soak",
            ],
            "5" => vec!["validate", "resume"],
            "6" => vec!["realistic", "validate-10m"],
            "7" => vec!["faults", "soak"],
            one if KNOWN.contains(&one) => vec![one],
            other => {
                return Err(io::Error::other(format!(
                    "unknown scenario {other:?}; expected 1 2 3 3-sorted 4 5 6 7 validate resume realistic validate-10m faults soak concurrency handoff all"
                )))
            }
        };
        for e in expanded {
            if !wanted.iter().any(|w| w == e) {
                wanted.push(e.to_string());
            }
        }
    }

    let exe = std::env::current_exe()?;
    // target/release/examples/bench -> target/release
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| io::Error::other("cannot locate the target directory"))?
        .to_path_buf();
    let bin = args
        .tool
        .clone()
        .unwrap_or_else(|| profile_dir.join("iot-cert-migrate"));
    if !args.no_build && args.tool.is_none() {
        build_binary()?;
    }
    if !bin.is_file() {
        return Err(io::Error::other(format!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        )));
    }
    let target_dir = profile_dir.parent().unwrap_or(&profile_dir).to_path_buf();
    let data_root = args
        .data_dir
        .clone()
        .unwrap_or_else(|| target_dir.join("bench-data"));
    let root = data_root.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;

    println!("# iot-cert-migrate benchmark");
    println!();
    for (k, v) in support::machine() {
        println!("- {k}: {v}");
    }
    println!(
        "- data directory: {} ({})",
        root.display(),
        support::filesystem_of(&root)
    );
    println!(
        "- tool binary: {} (source: {})",
        bin.display(),
        source_version()
    );
    println!("- scenarios: {}", wanted.join(" "));
    println!();

    let mut ctx = Ctx {
        args,
        bin,
        root,
        table: Vec::new(),
        one_region_rate: None,
        default_concurrency: None,
    };
    ctx.default_concurrency = default_concurrency(&ctx.bin);
    let mut result = Ok(());
    for s in &wanted {
        let r = match s.as_str() {
            "1" => scenario_1(&mut ctx),
            "2" => scenario_2(&mut ctx),
            "3" => scenario_3(&mut ctx, false),
            "3-sorted" => scenario_3(&mut ctx, true),
            "4" => scenario_4(&mut ctx),
            "validate" => {
                let rows = ctx.args.rows;
                let goal = ValidateGoal {
                    id: "5a",
                    max_wall_s: 3.0,
                    max_rss: 64_000_000,
                    inclusive: false,
                    target: "< 3 s, peak RSS < 64 MB",
                };
                scenario_validate(&mut ctx, rows, goal)
            }
            "resume" => scenario_resume(&mut ctx),
            "realistic" => {
                let certs = ctx.args.realistic_certs;
                realistic::scenario(&mut ctx, certs, "6a").and_then(|()| {
                    if ctx.args.ten_million {
                        realistic::scenario(&mut ctx, 10_000_000, "6c")
                    } else {
                        Ok(())
                    }
                })
            }
            "validate-10m" => {
                let goal = ValidateGoal {
                    id: "6b",
                    max_wall_s: 10.0,
                    max_rss: 256_000_000,
                    inclusive: true,
                    target: "<= 10 s, peak RSS <= 256 MB",
                };
                scenario_validate(&mut ctx, 10_000_000, goal)
            }
            "faults" => scenario_faults(&mut ctx),
            "soak" => scenario_soak(&mut ctx),
            "concurrency" => scenario_concurrency(&mut ctx),
            "handoff" => {
                let certs = ctx.args.handoff_certs;
                handoff::scenario(&mut ctx, certs)
            }
            _ => unreachable!("checked above"),
        };
        if let Err(e) = r {
            result = Err(io::Error::other(format!("scenario {s}: {e}")));
            break;
        }
    }

    if !ctx.table.is_empty() {
        println!("## Results");
        println!();
        println!("| # | Scenario | Target | Measured | Verdict |");
        println!("|---|---|---|---|---|");
        for v in &ctx.table {
            println!(
                "| {} | {} | {} | {} | {} |",
                v.id, v.scenario, v.target, v.result, v.verdict
            );
        }
        println!();
    }
    if ctx.args.keep {
        println!("generated files kept in {}", ctx.root.display());
    } else {
        let _ = std::fs::remove_dir_all(&ctx.root);
    }
    result
}

/// The default of `transfer --concurrency`, as the tool's help states it.
fn default_concurrency(bin: &Path) -> Option<usize> {
    let out = Command::new(bin)
        .args(["transfer", "--help"])
        .output()
        .ok()?;
    let help = String::from_utf8_lossy(&out.stdout);
    let after = &help[help.find("--concurrency")?..];
    let value = &after[after.find("[default: ")? + "[default: ".len()..];
    value[..value.find(']')?].trim().parse().ok()
}

/// The commit the sources are at, and whether the work tree differs from it.
fn source_version() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(head) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!(
                "commit {head}{}",
                if dirty { " + uncommitted changes" } else { "" }
            )
        }
        None => "not a git checkout".into(),
    }
}

/// `cargo build --release --bin iot-cert-migrate`: examples do not build the binary.
fn build_binary() -> io::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    eprintln!("bench: cargo build --release --bin iot-cert-migrate");
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "iot-cert-migrate"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()?;
    if !status.success() {
        return Err(io::Error::other("building the release binary failed"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Running the tool
// ---------------------------------------------------------------------------

/// The tool, run in `dir` as the source account against `sim`, with hermetic AWS settings
/// (as the black-box tests do). Output goes to `dir/stdout.txt` and `dir/stderr.txt`.
fn tool(ctx: &Ctx, dir: &Path, sim: Option<&SimHandle>, args: &[String]) -> io::Result<Command> {
    // BENCH_TOOL_WRAPPER="perf record -g -o /tmp/perf.data --" runs the tool under a
    // profiler (the CPU and RSS figures then include the wrapper).
    let wrapper = std::env::var("BENCH_TOOL_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut c = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(&ctx.bin);
            c
        }
        None => Command::new(&ctx.bin),
    };
    c.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("IOT_CERT_MIGRATE_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", data::SOURCE)
        .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("IOT_CERT_MIGRATE_PROGRESS", "auto");
    if let Some(sim) = sim {
        c.env("AWS_ENDPOINT_URL", sim.url());
    }
    c.stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.txt"))?)
        .stderr(std::fs::File::create(dir.join("stderr.txt"))?);
    Ok(c)
}

fn read_output(dir: &Path) -> (String, String) {
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
    (read("stdout.txt"), read("stderr.txt"))
}

/// A fresh directory for one run.
fn run_dir(ctx: &Ctx, name: &str) -> io::Result<PathBuf> {
    let dir = ctx.root.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One transfer run: simulator settings, regions (the first is the default region),
/// certificates (alternating across regions, or sorted by region) and the tool's pacing
/// flags.
struct Spec {
    name: String,
    sim: SimConfig,
    regions: Vec<&'static str>,
    certs: usize,
    rate_scale: Option<f64>,
    concurrency: Option<usize>,
    /// Rows sorted by region instead of alternating.
    blocked: bool,
}

/// What one transfer run measured.
struct Measured {
    certs: usize,
    regions: usize,
    exit: Exit,
    sim_cpu_s: Option<f64>,
    summary: Value,
    stats: iot_sim::Stats,
    ledger: LedgerTimes,
    /// Certificates PENDING_TRANSFER to the target in the simulator at the end.
    pending_in_sim: usize,
    /// The binding quota in certificates per second (all regions), if quotas are on.
    binding: Option<f64>,
    concurrency: usize,
    /// When the first IoT call reached the simulator (10 ms resolution).
    first_call: Option<Duration>,
    /// When the last IoT call reached the simulator.
    last_call: Option<Duration>,
    /// CPU seconds other processes used meanwhile, and that as a share of the machine.
    others: Option<(f64, f64)>,
}

impl Measured {
    fn count(&self, name: &str) -> u64 {
        self.summary["counts"][name].as_u64().unwrap_or(0)
    }

    /// Certificates per second over the whole run: process start to exit.
    fn whole_rate(&self) -> f64 {
        self.count("transferred") as f64 / self.exit.wall.as_secs_f64()
    }

    /// Throttled responses and calls, at the simulator (every operation, STS included).
    fn throttles(&self) -> (u64, u64) {
        (
            self.stats.throttled.values().sum(),
            self.stats.total_calls(),
        )
    }

    fn not_done(&self) -> u64 {
        self.count("failed") + self.count("in_doubt") + self.count("pending")
    }
}

fn transfer(ctx: &Ctx, spec: Spec) -> io::Result<Measured> {
    let dir = run_dir(ctx, &spec.name)?;
    let quota_scale = spec.sim.quota_scale;
    let sim = Simulator::spawn(spec.sim)?;
    let mut per_region: Vec<Vec<String>> = vec![Vec::new(); spec.regions.len()];
    let mut rows = Vec::with_capacity(spec.certs);
    for i in 0..spec.certs {
        let r = if spec.blocked {
            i * spec.regions.len() / spec.certs
        } else {
            i % spec.regions.len()
        };
        let id = cert_id(i as u64);
        per_region[r].push(id.clone());
        rows.push((id, (spec.regions.len() > 1).then_some(spec.regions[r])));
    }
    for (region, ids) in spec.regions.iter().zip(&per_region) {
        data::seed_active(&sim, region, ids);
    }
    let manifest = dir.join("certs.csv");
    data::write_manifest(&manifest, spec.regions.len() > 1, rows.into_iter())?;

    let mut args: Vec<String> = [
        "transfer",
        "certs.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
        "--output",
        "json",
    ]
    .map(String::from)
    .to_vec();
    if let Some(s) = spec.rate_scale {
        args.extend(["--rate-scale".into(), s.to_string()]);
    }
    let concurrency = spec.concurrency.or(ctx.args.concurrency);
    if let Some(c) = concurrency {
        args.extend(["--concurrency".into(), c.to_string()]);
    }
    let cmd = tool(ctx, &dir, Some(&sim), &args)?;
    eprintln!("bench: {}: iot-cert-migrate {}", spec.name, args.join(" "));
    sim.reset_stats();
    let cpu_before = support::self_cpu_s();
    let watch = support::Contention::start();
    // Phases seen from the simulator: the first IoT call and the last change of the count.
    let (mut first_call, mut last_call, mut seen) = (None, None, 0);
    let exit = support::run_child(cmd, Duration::from_millis(10), |elapsed| {
        let s = sim.stats();
        let iot = s.total_calls() - s.calls_of("GetCallerIdentity");
        if iot > seen {
            seen = iot;
            first_call.get_or_insert(elapsed);
            last_call = Some(elapsed);
        }
    })?;
    let cpu_after = support::self_cpu_s();
    let others = watch.others(exit.cpu_s, exit.wall);
    let stats = sim.stats();
    let state = sim.state();
    drop(sim);
    let (stdout, stderr) = read_output(&dir);
    let summary: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        io::Error::other(format!(
            "the tool's stdout is not a JSON summary ({e}); exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            exit.code,
            tail(&stderr, 40)
        ))
    })?;
    let pending_in_sim = state
        .accounts
        .iter()
        .flat_map(|a| &a.certificates)
        .filter(|c| {
            c.status == "PENDING_TRANSFER" && c.pending_target.as_deref() == Some(data::TARGET)
        })
        .count();
    let ledger = LedgerTimes::read(&dir.join("certs.ledger.jsonl"))?;
    let binding = (quota_scale > 0.0).then(|| {
        let per_region = PIPELINE
            .iter()
            .filter_map(|op| iot_sim::Operation::from_name(op).and_then(|o| o.documented_tps()))
            .fold(f64::INFINITY, f64::min);
        per_region * quota_scale * spec.regions.len() as f64
    });
    Ok(Measured {
        certs: spec.certs,
        regions: spec.regions.len(),
        exit,
        sim_cpu_s: cpu_before.zip(cpu_after).map(|(a, b)| b - a),
        summary,
        stats,
        ledger,
        pending_in_sim,
        binding,
        concurrency: concurrency.or(ctx.default_concurrency).unwrap_or(0),
        first_call,
        last_call,
        others,
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(s: Option<f64>) -> String {
    s.map(|s| format!("{:.0} ms", s * 1000.0))
        .unwrap_or_else(|| "n/a".into())
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map(|v| format!("{v:.digits$}{unit}"))
        .unwrap_or_else(|| "n/a".into())
}

/// Prints the details of a transfer run.
fn report(m: &Measured) {
    let wall = m.exit.wall.as_secs_f64();
    println!(
        "- certificates: {} in the manifest ({} region(s)); tool exit code {:?}; counts: {} transferred, {} failed, {} in doubt, {} pending; simulator: {} PENDING_TRANSFER to {}",
        m.certs,
        m.regions,
        m.exit.code,
        m.count("transferred"),
        m.count("failed"),
        m.count("in_doubt"),
        m.count("pending"),
        m.pending_in_sim,
        data::TARGET
    );
    let frac = |rate: f64| {
        m.binding
            .map(|b| {
                format!(
                    " = {:.1}% of the binding quota ({b:.0} certs/s)",
                    100.0 * rate / b
                )
            })
            .unwrap_or_default()
    };
    println!(
        "- throughput, whole run (process start to exit, {wall:.2} s): {:.1} certs/s{}",
        m.whole_rate(),
        frac(m.whole_rate())
    );
    if let (Some(a), Some(b)) = (m.first_call, m.last_call) {
        let calls = (b - a).as_secs_f64();
        println!(
            "- phases: start (spawn to the first IoT call at the simulator) {:.2} s; calls {calls:.2} s ({:.1} certs/s); last call to exit {:.2} s",
            a.as_secs_f64(),
            m.count("transferred") as f64 / calls.max(1e-3),
            (m.exit.wall - b).as_secs_f64()
        );
    }
    if let Some(s) = m.ledger.steady_rate() {
        println!("- throughput, steady state (10th to 90th percentile of completions, from the ledger): {s:.1} certs/s{}", frac(s));
    }
    println!(
        "- per-certificate latency (ledger: first event to terminal event; {} terminal, {} of them failed): p50 {}, p99 {}, max {}",
        m.ledger.ends.len(),
        m.ledger.failed,
        ms(m.ledger.latency(0.5)),
        ms(m.ledger.latency(0.99)),
        ms(m.ledger.latency(1.0))
    );
    let (thr, calls) = m.throttles();
    println!(
        "- throttled responses: {thr} of {calls} calls ({:.2}%); simulator peak in-flight requests: {} (tool --concurrency {})",
        100.0 * thr as f64 / calls.max(1) as f64,
        m.stats.peak_in_flight,
        m.concurrency
    );
    let n = m.count("transferred").max(1) as f64 / 1000.0;
    println!(
        "- CPU: tool {} (of which system {}; {} per 1,000 certs); simulator {} ({} per 1,000 certs); tool peak RSS {}",
        opt(m.exit.cpu_s, 2, " s"),
        opt(m.exit.sys_s, 2, " s"),
        opt(m.exit.cpu_s.map(|c| c / n), 3, " s"),
        opt(m.sim_cpu_s, 2, " s"),
        opt(m.sim_cpu_s.map(|c| c / n), 3, " s"),
        opt(m.exit.max_rss.map(mib), 1, " MiB")
    );
    println!("- {}", contention(m.others));
    println!();
    println!("| operation | calls (simulator) | throttled (simulator) | calls (tool) | throttled (tool) |");
    println!("|---|---:|---:|---:|---:|");
    let mut ops: BTreeMap<&str, ()> = BTreeMap::new();
    for k in m.stats.calls.keys() {
        ops.insert(k, ());
    }
    let tool_calls = m.summary["calls"].as_object().cloned().unwrap_or_default();
    for k in tool_calls.keys() {
        ops.insert(k, ());
    }
    for op in ops.keys() {
        let t = &tool_calls.get(*op).cloned().unwrap_or(Value::Null);
        println!(
            "| {op} | {} | {} | {} | {} |",
            m.stats.calls_of(op),
            m.stats.throttled_of(op),
            t["calls"].as_u64().unwrap_or(0),
            t["throttled"].as_u64().unwrap_or(0)
        );
    }
    println!();
}

/// A line about the other processes' load during a measurement.
fn contention(others: Option<(f64, f64)>) -> String {
    match others {
        Some((s, share)) => {
            format!(
            "other processes on the machine used {s:.2} CPU-s meanwhile ({:.0}% of its capacity){}",
            100.0 * share,
            if share > 0.05 { ": figures may be pessimistic" } else { "" }
        )
        }
        None => "load of other processes: unknown".into(),
    }
}

/// A remark for the results table when other processes loaded the machine.
fn load_note(others: Option<(f64, f64)>) -> String {
    match others {
        Some((_, share)) if share > 0.05 => format!(
            " [other processes used {:.0}% of the machine]",
            100.0 * share
        ),
        _ => String::new(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

fn quota_sim(scale: f64) -> SimConfig {
    SimConfig {
        quota_scale: scale,
        latency: Duration::from_millis(30),
        ..SimConfig::default()
    }
}

fn scenario_1(ctx: &mut Ctx) -> io::Result<()> {
    println!(
        "## 1. Quotas 10x, 30 ms latency, {} certificates, --rate-scale 10",
        ctx.args.certs
    );
    println!();
    let m = transfer(
        ctx,
        Spec {
            name: "1-quota".into(),
            sim: quota_sim(10.0),
            regions: vec![REGION],
            certs: ctx.args.certs,
            rate_scale: Some(10.0),
            concurrency: None,
            blocked: false,
        },
    )?;
    report(&m);
    let binding = m.binding.unwrap_or(1.0);
    let rate = m.whole_rate();
    let (thr, calls) = m.throttles();
    let thr_pct = 100.0 * thr as f64 / calls.max(1) as f64;
    let ok = rate >= 0.95 * binding && thr_pct <= 1.0 && m.not_done() == 0;
    ctx.one_region_rate = Some(rate);
    ctx.table.push(Verdict {
        id: "1".into(),
        scenario: format!("10x quotas, 30 ms, {} certs, --rate-scale 10, concurrency {}", m.certs, m.concurrency),
        target: "≥ 95% of 100 certs/s, ≤ 1% throttled, 0 failed".into(),
        result: format!(
            "{rate:.1} certs/s whole run = {:.1}% (steady {}), {thr_pct:.2}% throttled, {} failed/unfinished; p50/p99 {}/{}",
            100.0 * rate / binding,
            opt(m.ledger.steady_rate().map(|s| 100.0 * s / binding), 1, "%"),
            m.not_done(),
            ms(m.ledger.latency(0.5)),
            ms(m.ledger.latency(0.99))
        ) + &load_note(m.others),
        verdict: verdict(ok),
    });
    Ok(())
}

fn scenario_2(ctx: &mut Ctx) -> io::Result<()> {
    println!(
        "## 2. Quotas 10x, 30 ms latency, {} certificates, the tool believes twice the quotas (--rate-scale 20)",
        ctx.args.certs
    );
    println!();
    let m = transfer(
        ctx,
        Spec {
            name: "2-overestimate".into(),
            sim: quota_sim(10.0),
            regions: vec![REGION],
            certs: ctx.args.certs,
            rate_scale: Some(20.0),
            concurrency: None,
            blocked: false,
        },
    )?;
    report(&m);
    let binding = m.binding.unwrap_or(1.0);
    let rate = m.whole_rate();
    let (thr, calls) = m.throttles();
    let ok = rate >= 0.80 * binding && m.not_done() == 0;
    ctx.table.push(Verdict {
        id: "2".into(),
        scenario: format!("as 1, but --rate-scale 20 (tool believes 2x the real quotas), concurrency {}", m.concurrency),
        target: "0 failed, ≥ 80% of 100 certs/s".into(),
        result: format!(
            "{rate:.1} certs/s whole run = {:.1}% (steady {}), {} failed/unfinished, {:.2}% throttled",
            100.0 * rate / binding,
            opt(m.ledger.steady_rate().map(|s| 100.0 * s / binding), 1, "%"),
            m.not_done(),
            100.0 * thr as f64 / calls.max(1) as f64
        ) + &load_note(m.others),
        verdict: verdict(ok),
    });
    Ok(())
}

/// Scenario 3; `blocked`: the manifest sorted by region (all us-east-1 rows, then all
/// eu-west-1 rows) instead of alternating rows.
fn scenario_3(ctx: &mut Ctx, blocked: bool) -> io::Result<()> {
    let layout = if blocked {
        "rows sorted by region"
    } else {
        "rows alternating"
    };
    println!(
        "## 3. Two regions (us-east-1, eu-west-1, {layout}), quotas 10x, 30 ms latency, {} certificates, --rate-scale 10",
        ctx.args.certs
    );
    println!();
    let m = transfer(
        ctx,
        Spec {
            name: if blocked {
                "3-regions-sorted"
            } else {
                "3-regions"
            }
            .into(),
            sim: quota_sim(10.0),
            regions: vec![REGION, "eu-west-1"],
            certs: ctx.args.certs,
            rate_scale: Some(10.0),
            concurrency: None,
            blocked,
        },
    )?;
    report(&m);
    let rate = m.whole_rate();
    let one = ctx.one_region_rate;
    let (base, base_name) = match one {
        Some(r) => (r, "scenario 1 measured"),
        None => (
            m.binding.unwrap_or(2.0) / 2.0,
            "one region's binding quota (scenario 1 not run)",
        ),
    };
    let ratio = rate / base;
    println!("- ratio to one region ({base_name}, {base:.1} certs/s): {ratio:.2}x");
    println!();
    let ok = ratio >= 1.8 && m.not_done() == 0;
    ctx.table.push(Verdict {
        id: if blocked { "3-sorted" } else { "3" }.into(),
        scenario: format!(
            "two regions in one manifest ({layout}), 10x quotas, 30 ms, concurrency {}",
            m.concurrency
        ),
        target: "about 2x one region (≥ 1.8x), 0 failed".into(),
        result: format!(
            "{rate:.1} certs/s whole run = {ratio:.2}x {base_name} ({:.1}% of 200 certs/s; steady {}), {} failed/unfinished",
            100.0 * rate / m.binding.unwrap_or(1.0),
            opt(m.ledger.steady_rate(), 1, " certs/s"),
            m.not_done()
        ) + &load_note(m.others),
        verdict: verdict(ok),
    });
    Ok(())
}

/// Runs of scenario 4: CPU per certificate at full speed is noisy on a small machine (the
/// tool and the simulator saturate it together), so it runs several times.
const UNLIMITED_RUNS: usize = 3;

fn scenario_4(ctx: &mut Ctx) -> io::Result<()> {
    println!(
        "## 4. No quotas, no latency (SimConfig::unlimited), {} certificates, {UNLIMITED_RUNS} runs",
        ctx.args.unlimited_certs
    );
    println!();
    let mut runs = Vec::new();
    for i in 0..UNLIMITED_RUNS {
        println!("### Run {}", i + 1);
        println!();
        let m = transfer(
            ctx,
            Spec {
                name: format!("4-unlimited-{}", i + 1),
                sim: SimConfig::unlimited(),
                regions: vec![REGION],
                certs: ctx.args.unlimited_certs,
                // The tool's pacer still applies its ceilings; lift them as a user would
                // for an account with very high quotas.
                rate_scale: Some(1000.0),
                concurrency: None,
                blocked: false,
            },
        )?;
        report(&m);
        runs.push(m);
    }
    let per_k = |m: &Measured, cpu: Option<f64>| {
        cpu.map(|c| c / (m.count("transferred").max(1) as f64 / 1000.0))
    };
    runs.sort_by(|a, b| a.whole_rate().total_cmp(&b.whole_rate()));
    let m = &runs[runs.len() / 2];
    let range = |f: &dyn Fn(&Measured) -> Option<f64>, digits: usize| {
        let v: Vec<f64> = runs.iter().filter_map(f).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.digits$}-{hi:.digits$}")
    };
    let tool = per_k(m, m.exit.cpu_s);
    let sim = per_k(m, m.sim_cpu_s);
    let failed: u64 = runs.iter().map(Measured::not_done).sum();
    let worst_load = runs
        .iter()
        .filter_map(|m| m.others)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    println!(
        "- median run by throughput: {:.0} certs/s; over the {UNLIMITED_RUNS} runs {} certs/s, tool CPU {} s and simulator CPU {} s per 1,000 certs",
        m.whole_rate(),
        range(&|m| Some(m.whole_rate()), 0),
        range(&|m| per_k(m, m.exit.cpu_s), 2),
        range(&|m| per_k(m, m.sim_cpu_s), 2),
    );
    println!();
    ctx.table.push(Verdict {
        id: "4".into(),
        scenario: format!(
            "no quotas, no latency, {} certs, --rate-scale 1000, concurrency {} (median of {UNLIMITED_RUNS} runs)",
            m.certs, m.concurrency
        ),
        target: "report certs/s and CPU s per 1,000 certs; tool overhead small next to the simulator's".into(),
        result: format!(
            "{:.0} certs/s whole run (range {}); CPU per 1,000 certs: tool {} (range {}), simulator {} (range {}); tool peak RSS {}; {failed} failed/unfinished",
            m.whole_rate(),
            range(&|m| Some(m.whole_rate()), 0),
            opt(tool, 2, " s"),
            range(&|m| per_k(m, m.exit.cpu_s), 2),
            opt(sim, 2, " s"),
            range(&|m| per_k(m, m.sim_cpu_s), 2),
            opt(m.exit.max_rss.map(mib), 1, " MiB"),
        ) + &load_note(worst_load),
        verdict: match tool.zip(sim) {
            Some((t, s)) if t <= s => "met",
            Some(_) => "MISSED (tool CPU > simulator's)",
            None => "reported",
        },
    });
    Ok(())
}

fn scenario_concurrency(ctx: &mut Ctx) -> io::Result<()> {
    let certs = (ctx.args.certs / 2).max(200);
    println!(
        "## Concurrency sweep: quotas 10x, 30 ms latency, {certs} certificates, --rate-scale 10"
    );
    println!();
    let mut lines = Vec::new();
    for (regions, levels) in [
        (vec![REGION], vec![16, 24, 32, 48, 64, 128]),
        (vec![REGION, "eu-west-1"], vec![32, 64, 96, 128]),
    ] {
        for c in levels {
            let m = transfer(
                ctx,
                Spec {
                    name: format!("sweep-{}r-{c}", regions.len()),
                    sim: quota_sim(10.0),
                    regions: regions.clone(),
                    certs,
                    rate_scale: Some(10.0),
                    concurrency: Some(c),
                    blocked: false,
                },
            )?;
            let (thr, calls) = m.throttles();
            let binding = m.binding.unwrap_or(1.0);
            lines.push(format!(
                "| {} | {c} | {:.1} ({:.1}%) | {} | {} / {} | {:.2}% | {} | {} | {} |",
                m.regions,
                m.whole_rate(),
                100.0 * m.whole_rate() / binding,
                opt(m.ledger.steady_rate().map(|s| 100.0 * s / binding), 1, "%"),
                ms(m.ledger.latency(0.5)),
                ms(m.ledger.latency(0.99)),
                100.0 * thr as f64 / calls.max(1) as f64,
                m.not_done(),
                m.stats.peak_in_flight,
                opt(m.others.map(|(_, share)| 100.0 * share), 0, "%")
            ));
        }
    }
    println!("| regions | --concurrency | certs/s whole run (% of binding) | steady state % of binding | latency p50 / p99 | throttled | failed/unfinished | peak requests in flight at the simulator | other processes' load |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in lines {
        println!("{l}");
    }
    println!();
    Ok(())
}

/// Writes a manifest of `rows` rows (single region) into `dir`; returns its path.
fn big_manifest(dir: &Path, rows: usize, extra: &[String]) -> io::Result<PathBuf> {
    let path = dir.join("big.csv");
    let t = std::time::Instant::now();
    let ids = (0..rows as u64)
        .map(|n| (cert_id(n), None))
        .chain(extra.iter().map(|id| (id.clone(), None)));
    data::write_manifest(&path, false, ids)?;
    eprintln!(
        "bench: wrote {} ({} rows, {:.1} MiB) in {:.1} s",
        path.display(),
        rows + extra.len(),
        mib(std::fs::metadata(&path)?.len()),
        t.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// What a `validate` scenario must stay under: wall-clock seconds and peak RSS in bytes
/// (the issue that set them words them in MB, 10^6 bytes).
struct ValidateGoal {
    id: &'static str,
    max_wall_s: f64,
    max_rss: u64,
    /// Whether a figure equal to a bound meets it (`<=`) or not (`<`), as the goal was set.
    inclusive: bool,
    target: &'static str,
}

impl ValidateGoal {
    fn met(&self, wall_s: f64, rss: u64) -> bool {
        if self.inclusive {
            wall_s <= self.max_wall_s && rss <= self.max_rss
        } else {
            wall_s < self.max_wall_s && rss < self.max_rss
        }
    }
}

/// `validate` of a generated `rows`-row manifest, three times; the verdict is on the median
/// wall time and the largest peak RSS. The directory (a 10M-row manifest is 780 MB) is
/// removed afterwards.
fn scenario_validate(ctx: &mut Ctx, rows: usize, goal: ValidateGoal) -> io::Result<()> {
    let id = goal.id;
    println!("## {id}. `validate` of a {rows}-row manifest");
    println!();
    let dir = run_dir(ctx, &format!("{id}-validate-{rows}"))?;
    let manifest = big_manifest(&dir, rows, &[])?;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let cmd = tool(ctx, &dir, None, &["validate".into(), "big.csv".into()])?;
        let watch = support::Contention::start();
        let exit = support::run_child(cmd, Duration::from_millis(20), |_| {})?;
        let others = watch.others(exit.cpu_s, exit.wall);
        let (stdout, stderr) = read_output(&dir);
        if exit.code != Some(0) {
            return Err(io::Error::other(format!(
                "validate failed ({:?}):\n{stdout}\n{}",
                exit.code,
                tail(&stderr, 20)
            )));
        }
        println!(
            "- run {}: {:.2} s wall, {} CPU, peak RSS {} — {}; {}",
            runs.len() + 1,
            exit.wall.as_secs_f64(),
            opt(exit.cpu_s, 2, " s"),
            opt(exit.max_rss.map(mib), 1, " MiB"),
            stdout.trim(),
            contention(others)
        );
        runs.push((exit, others));
    }
    let mut by_wall: Vec<&(Exit, Option<(f64, f64)>)> = runs.iter().collect();
    by_wall.sort_by_key(|r| r.0.wall);
    let (median_run, median_others) = by_wall[by_wall.len() / 2];
    let median = median_run.wall.as_secs_f64();
    let rss = runs.iter().filter_map(|(e, _)| e.max_rss).max();
    println!(
        "- manifest {:.1} MiB; median wall {median:.2} s (process start to exit, file in the page cache); max peak RSS {}",
        mib(std::fs::metadata(&manifest)?.len()),
        opt(rss.map(mib), 1, " MiB")
    );
    println!();
    let ok = rss.is_some_and(|r| goal.met(median, r));
    ctx.table.push(Verdict {
        id: id.into(),
        scenario: format!("`validate`, {rows}-row manifest (median of 3)"),
        target: goal.target.into(),
        result: format!(
            "{median:.2} s, peak RSS {} ({:.1} MB)",
            opt(rss.map(mib), 1, " MiB"),
            rss.unwrap_or(0) as f64 / 1e6
        ) + &load_note(*median_others),
        verdict: verdict(ok),
    });
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn scenario_resume(ctx: &mut Ctx) -> io::Result<()> {
    const UNFINISHED: usize = 5;
    let rows = ctx.args.rows;
    println!("## 5b. `transfer` resume: ledger with {rows} finished items, {UNFINISHED} unfinished certificates at the end of the manifest");
    println!();
    let dir = run_dir(ctx, "5-resume")?;
    let extra: Vec<String> = (0..UNFINISHED as u64)
        .map(|n| cert_id(u64::MAX - n))
        .collect();
    let manifest = big_manifest(&dir, rows, &extra)?;
    let t = std::time::Instant::now();
    let sha = data::sha256_hex(&manifest)?;
    let ledger = dir.join("big.ledger.jsonl");
    let n = data::write_finished_ledger(
        &ledger,
        Path::new("big.csv"),
        &sha,
        (0..rows as u64).map(cert_id),
    )?;
    let ledger_len = std::fs::metadata(&ledger)?.len();
    eprintln!(
        "bench: wrote {} ({n} finished items, {:.1} MiB) in {:.1} s",
        ledger.display(),
        mib(ledger_len),
        t.elapsed().as_secs_f64()
    );

    let sim = Simulator::spawn(SimConfig::unlimited())?;
    data::seed_active(&sim, REGION, &extra);
    let args: Vec<String> = [
        "transfer",
        "big.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
        "--output",
        "json",
    ]
    .map(String::from)
    .to_vec();
    let cmd = tool(ctx, &dir, Some(&sim), &args)?;
    eprintln!("bench: resume: iot-cert-migrate {}", args.join(" "));
    let mut first_sts = None;
    let mut first_iot = None;
    let mut first_transfer = None;
    let mut first_event = None;
    let mut tail_buf = Vec::new();
    let watch = support::Contention::start();
    let exit = support::run_child(cmd, Duration::from_millis(1), |elapsed| {
        if first_transfer.is_none() {
            let s = sim.stats();
            if first_sts.is_none() && s.calls_of("GetCallerIdentity") > 0 {
                first_sts = Some(elapsed);
            }
            if first_iot.is_none() && s.total_calls() > s.calls_of("GetCallerIdentity") {
                first_iot = Some(elapsed);
            }
            if s.calls_of("TransferCertificate") > 0 {
                first_transfer = Some(elapsed);
            }
        }
        if first_event.is_none() {
            // The run appends a run line, then item events (lines with an "id").
            if let Ok(mut f) = std::fs::File::open(&ledger) {
                use std::io::{Read, Seek, SeekFrom};
                if f.seek(SeekFrom::Start(ledger_len)).is_ok() {
                    tail_buf.clear();
                    if f.read_to_end(&mut tail_buf).is_ok()
                        && tail_buf.windows(6).any(|w| w == b"\"id\":\"")
                    {
                        first_event = Some(elapsed);
                    }
                }
            }
        }
    })?;
    // The bench's own polling CPU is left out of "others" too.
    let others = watch.others(exit.cpu_s, exit.wall);
    let stats = sim.stats();
    drop(sim);
    let (stdout, stderr) = read_output(&dir);
    let summary: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        io::Error::other(format!(
            "no JSON summary ({e}); exit {:?}\n{stdout}\n{}",
            exit.code,
            tail(&stderr, 20)
        ))
    })?;
    let s = |d: Option<Duration>| {
        d.map(|d| format!("{:.2} s", d.as_secs_f64()))
            .unwrap_or_else(|| "never".into())
    };
    println!(
        "- since process start: STS GetCallerIdentity at the simulator {}; first IoT call {}; first TransferCertificate {}; first item event in the ledger {}; exit after {:.2} s (code {:?})",
        s(first_sts),
        s(first_iot),
        s(first_transfer),
        s(first_event),
        exit.wall.as_secs_f64(),
        exit.code
    );
    println!(
        "- counts after the run: {} transferred, {} failed, {} pending, {} in doubt; TransferCertificate calls {}",
        summary["counts"]["transferred"],
        summary["counts"]["failed"],
        summary["counts"]["pending"],
        summary["counts"]["in_doubt"],
        stats.calls_of("TransferCertificate")
    );
    println!(
        "- tool CPU {}, peak RSS {}; ledger {:.1} MiB, manifest {:.1} MiB (both in the page cache)",
        opt(exit.cpu_s, 2, " s"),
        opt(exit.max_rss.map(mib), 1, " MiB"),
        mib(ledger_len),
        mib(std::fs::metadata(&manifest)?.len())
    );
    println!("- {}", contention(others));
    println!();
    let started = first_transfer.map(|d| d.as_secs_f64());
    let ok = started.is_some_and(|t| t < 5.0)
        && summary["counts"]["transferred"].as_u64() == Some((rows + UNFINISHED) as u64);
    ctx.table.push(Verdict {
        id: "5b".into(),
        scenario: format!("`transfer` resume, ledger of {rows} finished items, {UNFINISHED} unfinished at the end"),
        target: "first TransferCertificate < 5 s after start".into(),
        result: format!(
            "first TransferCertificate {} (STS {}, first IoT call {}, first ledger event {}); exit {:.2} s; peak RSS {}",
            s(first_transfer),
            s(first_sts),
            s(first_iot),
            s(first_event),
            exit.wall.as_secs_f64(),
            opt(exit.max_rss.map(mib), 0, " MiB")
        ) + &load_note(others),
        verdict: verdict(ok),
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// Faults and the soak (issue 27)
// ---------------------------------------------------------------------------

/// The soak's settings at `certs` certificates, with or without faults and kills.
fn soak_spec(ctx: &Ctx, certs: usize, faults: bool, kills: usize) -> soak::Soak {
    soak::Soak {
        certs,
        attachments: true,
        quota_scale: ctx.args.soak_quota_scale,
        quota_burst: Duration::from_secs(1),
        overestimate: if faults { 2.0 } else { 1.0 },
        fault_rate: if faults { ctx.args.fault_rate } else { 0.0 },
        kills,
        max_reruns: 10,
        concurrency: ctx.args.concurrency.unwrap_or(64),
        latency: Duration::from_millis(5),
        seed: 27,
    }
}

fn soak_run(ctx: &Ctx, name: &str, spec: &soak::Soak) -> io::Result<soak::Report> {
    let dir = run_dir(ctx, name)?;
    eprintln!(
        "bench: {name}: {} certificates, quotas x{}, --rate-scale {}, faults {} each, {} kills",
        spec.certs,
        spec.quota_scale,
        spec.quota_scale * spec.overestimate,
        spec.fault_rate,
        spec.kills
    );
    let watch = support::Contention::start();
    let cpu_before = support::self_cpu_s();
    let r = soak::run(&ctx.bin, &dir, spec)?;
    let cpu = support::self_cpu_s().zip(cpu_before).map(|(b, a)| b - a);
    let tool_cpu: f64 = r.runs.iter().filter_map(|r| r.cpu_s).sum();
    println!("### {name}");
    println!();
    println!("{}", soak::markdown(spec, &r));
    println!(
        "- simulator (bench process) CPU {}; {}",
        opt(cpu, 1, " s"),
        contention(watch.others(Some(tool_cpu), r.wall))
    );
    println!();
    println!("| operation | calls | throttled |");
    println!("|---|---:|---:|");
    for (op, n) in &r.stats.calls {
        println!("| {op} | {n} | {} |", r.stats.throttled_of(op));
    }
    println!();
    Ok(r)
}

/// Certificates per second with and without every fault kind (and the 2x overestimated
/// quotas), at 10,000 and at `--soak-certs`: faults may cost at most half the throughput.
fn scenario_faults(ctx: &mut Ctx) -> io::Result<()> {
    println!(
        "## 7a. Throughput with and without faults (quotas x{}, every fault kind at {} each, the tool told twice the quotas)",
        ctx.args.soak_quota_scale, ctx.args.fault_rate
    );
    println!();
    for certs in [10_000, ctx.args.soak_certs] {
        let clean = soak_run(
            ctx,
            &format!("faults-{certs}-none"),
            &soak_spec(ctx, certs, false, 0),
        )?;
        let faulty = soak_run(
            ctx,
            &format!("faults-{certs}-all"),
            &soak_spec(ctx, certs, true, 0),
        )?;
        let (a, b) = (clean.rate(certs), faulty.rate(certs));
        let listings = faulty.stats.calls_of("ListOutgoingCertificates");
        let ok = clean.problems.is_empty() && faulty.problems.is_empty() && b * 2.0 >= a;
        ctx.table.push(Verdict {
            id: "7a".into(),
            scenario: format!("{certs} certificates, quotas x{}: no faults vs every fault at {} each + --rate-scale x2", ctx.args.soak_quota_scale, ctx.args.fault_rate),
            target: "with faults ≥ half the certs/s without; exactly once, no failure row".into(),
            result: format!(
                "{a:.1} certs/s without, {b:.1} with ({:.0}%); {} faults, {} throttled, {listings} ListOutgoingCertificates calls ({:.3} per certificate); {}",
                100.0 * b / a,
                faulty.faults(),
                faulty.calls().1,
                listings as f64 / certs as f64,
                problems_note(&[&clean, &faulty])
            ),
            verdict: verdict(ok),
        });
    }
    Ok(())
}

/// The soak: `--soak-certs` certificates, every fault, 2x quotas, six kill -9, reruns.
fn scenario_soak(ctx: &mut Ctx) -> io::Result<()> {
    let certs = ctx.args.soak_certs;
    println!(
        "## 7b. Soak: {certs} certificates, every fault kind at {} each, the tool told twice the quotas, six kill -9, plain reruns until exit 0",
        ctx.args.fault_rate
    );
    println!();
    let spec = soak_spec(ctx, certs, true, 6);
    let r = soak_run(ctx, "soak", &spec)?;
    let rss: Vec<String> = r
        .runs
        .iter()
        .filter_map(|x| x.max_rss.map(|b| format!("{:.0}", mib(b))))
        .collect();
    ctx.table.push(Verdict {
        id: "7b".into(),
        scenario: format!("soak: {certs} certs, every fault at {} each, --rate-scale x2, 6 kill -9, reruns", ctx.args.fault_rate),
        target: "exactly once, no failure row, every ledger line parses, peak RSS bounded and not growing".into(),
        result: format!(
            "{} runs, {:.0} s in all ({:.1} certs/s); {} faults, {} throttled; ledger {:.0} MiB; peak RSS per run {} MiB; {}",
            r.runs.len(),
            r.wall.as_secs_f64(),
            r.rate(certs),
            r.faults(),
            r.calls().1,
            mib(r.ledger_bytes),
            rss.join(" / "),
            problems_note(&[&r])
        ),
        verdict: verdict(r.problems.is_empty()),
    });
    Ok(())
}

fn problems_note(reports: &[&soak::Report]) -> String {
    let problems: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.problems.iter().map(String::as_str))
        .collect();
    if problems.is_empty() {
        "all checks passed".into()
    } else {
        format!("FAILED: {}", problems.join("; "))
    }
}
