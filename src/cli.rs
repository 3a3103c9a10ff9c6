//! The command line, defined once: help text and validation come from these types.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::EXIT_CODES_HELP;

/// Move AWS IoT device certificates from one AWS account to others: rate-limited,
/// resumable, with a durable ledger and a failure report.
#[derive(Debug, Parser)]
#[command(name = "iot-cert-migrate", version, after_long_help = EXIT_CODES_HELP, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of the summary on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object, for monitoring.
    Json,
}

/// When to show a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, else a summary line every --progress-interval.
    #[default]
    Auto,
    /// Always a bar.
    Always,
    /// No bar; summary lines every --progress-interval.
    Never,
}

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Options shared by every command. AWS options behave as in the AWS CLI; when absent,
/// the usual `AWS_*` variables and profiles apply (`AWS_PROFILE`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_IOT`, ...).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// AWS profile of the source account (transfer, cancel) or target account (accept, reject).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Default AWS region (rows may name their own in a `region` column).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Send every AWS request (IoT and STS) to this endpoint, e.g. the local simulator.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// TCP connect timeout in seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 3.1)]
    pub connect_timeout: f64,
    /// Read timeout in seconds for each AWS response.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 20.0)]
    pub read_timeout: f64,
    /// Summary format on stdout.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "IOT_CERT_MIGRATE_OUTPUT"
    )]
    pub output: OutputFormat,
    /// Progress display on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "IOT_CERT_MIGRATE_PROGRESS"
    )]
    pub progress: ProgressMode,
    /// Seconds between summary lines when no progress bar is shown.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30.0)]
    pub progress_interval: f64,
    /// Log line format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "IOT_CERT_MIGRATE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// More log detail (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output (-q: warnings and errors only, -qq: errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare and transfer every certificate of the manifest (resumable).
    Transfer(TransferArgs),
    /// Check a manifest offline; calls nothing.
    Validate(ValidateArgs),
    /// Show what the ledger says (from the manifest's default ledger, or a ledger path).
    Status(StatusArgs),
    /// Read-only: put each certificate in a category and estimate the duration.
    Plan(PlanArgs),
    /// Cancel transfers the ledger records as pending; --restore undoes prepare.
    Cancel(CancelArgs),
    /// Target side: accept the pending transfers addressed to the caller's account.
    Accept(AcceptArgs),
    /// Target side: reject the pending transfers addressed to the caller's account.
    Reject(RejectArgs),
}

/// A whole number of at least 1 (a count of attempts or of certificates in flight).
fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    match s.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}

/// `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest CSV.
    pub manifest: PathBuf,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A manifest (its default ledger is read) or a ledger file.
    pub path: PathBuf,
    /// Ledger path, when it is not the manifest's default.
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Ask AWS about in-doubt items (read-only calls).
    #[arg(long)]
    pub reconcile: bool,
}

/// Pacing and retry options shared by every command that calls AWS.
#[derive(Debug, Args, Clone)]
pub struct PacingArgs {
    /// Requests per second for one operation, per account and region (repeatable), e.g.
    /// `--rate TransferCertificate=20`. Defaults are the documented quotas (see README).
    #[arg(long = "rate", value_name = "OP=TPS")]
    pub rates: Vec<String>,
    /// Multiplies every operation's rate (for accounts with raised quotas).
    #[arg(
        long,
        value_name = "F",
        default_value_t = 1.0,
        env = "IOT_CERT_MIGRATE_RATE_SCALE"
    )]
    pub rate_scale: f64,
    /// Attempts per call for transient errors (5xx, timeouts, resets).
    #[arg(long, default_value_t = 5, value_parser = at_least_one::<u32>)]
    pub max_attempts: u32,
    /// Longest time one item may spend waiting on throttling before it fails.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub max_throttle_wait: Duration,
    /// Circuit breaker: stop the run when this many certificates in a row fail on the same
    /// call with the same error code (a missing permission, a wrong region); 0 = never.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub trip_after: u32,
    /// Circuit breaker: stop the run (exit 4) when AWS has answered nothing for this long;
    /// 0 = never.
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration, default_value = "60s")]
    pub max_unreachable: Duration,
    /// Certificates in flight at once, per region of the manifest.
    #[arg(
        long,
        default_value_t = 64,
        env = "IOT_CERT_MIGRATE_CONCURRENCY",
        value_parser = at_least_one::<usize>
    )]
    pub concurrency: usize,
}

/// Limits that end a run early but cleanly (exit 4; run again to continue).
#[derive(Debug, Args, Clone)]
pub struct RunLimitArgs {
    /// Stop starting new items after this long (e.g. 45m), finish cleanly, exit 4.
    #[arg(long, value_parser = humantime::parse_duration, env = "IOT_CERT_MIGRATE_MAX_DURATION")]
    pub max_duration: Option<Duration>,
    /// Stop after starting this many items, finish cleanly, exit 4.
    #[arg(long)]
    pub max_items: Option<u64>,
    /// After a stop request, how long in-flight calls may finish before being abandoned
    /// (they are then reconciled on the next run).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub grace: Duration,
}

/// Where a command keeps its ledger and failure report.
#[derive(Debug, Args, Clone)]
pub struct OutputFiles {
    /// Results ledger (default: MANIFEST.ledger.jsonl, or MANIFEST.accept-ledger.jsonl).
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Failure report CSV (default: MANIFEST.failures.csv, or MANIFEST.accept-failures.csv).
    #[arg(long)]
    pub failures: Option<PathBuf>,
}

/// `transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The manifest CSV: certificate_id,target_account[,transfer_message][,region].
    pub manifest: PathBuf,
    /// Ledger and failure report paths.
    #[command(flatten)]
    pub files: OutputFiles,
    /// Deactivate ACTIVE certificates first. This disconnects the devices that use them.
    #[arg(long)]
    pub deactivate: bool,
    /// Detach every policy attached to a certificate (recorded for `cancel --restore`).
    #[arg(long)]
    pub detach_policies: bool,
    /// Detach every thing attached to a certificate (recorded for `cancel --restore`).
    #[arg(long)]
    pub detach_things: bool,
    /// Try failed items again (they are skipped by default).
    #[arg(long)]
    pub retry_failed: bool,
    /// Do nothing; show the plan instead (same as `plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// After each transfer, accept it with this profile's (target) credentials.
    #[arg(
        long,
        value_name = "PROFILE",
        conflicts_with = "accept_profile_template"
    )]
    pub accept_profile: Option<String>,
    /// Like --accept-profile, one profile per target account: `{account}` is replaced,
    /// e.g. 'migrate-{account}'.
    #[arg(long, value_name = "TEMPLATE")]
    pub accept_profile_template: Option<String>,
    /// With --accept-profile(-template): activate certificates on accept.
    #[arg(long)]
    pub set_as_active: bool,
    /// Certificates each region starts with, alone, before the others: until one of them is
    /// transferred, a failed change stops the run at once (0 = no canary).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub canary: usize,
    /// Leave a certificate that failed after prepare changed it as it is (deactivated,
    /// detached) instead of undoing the changes.
    #[arg(long)]
    pub no_rollback: bool,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest CSV.
    pub manifest: PathBuf,
    /// Write one CSV row per certificate here.
    #[arg(long, value_name = "PATH")]
    pub plan_out: Option<PathBuf>,
    /// Pacing and retries (the estimate uses these rates).
    #[command(flatten)]
    pub pacing: PacingArgs,
}

/// `cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The manifest the transfer ran with.
    pub manifest: PathBuf,
    /// Ledger and failure report paths (the transfer's ledger).
    #[command(flatten)]
    pub files: OutputFiles,
    /// Also undo prepare: re-attach policies and things, re-activate certificates.
    #[arg(long)]
    pub restore: bool,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
}

/// `accept`.
#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The manifest the transfer ran with.
    pub manifest: PathBuf,
    /// Ledger and failure report paths.
    #[command(flatten)]
    pub files: OutputFiles,
    /// Activate certificates on accept.
    #[arg(long)]
    pub set_as_active: bool,
    /// Attach this policy after accept (repeatable).
    #[arg(long = "attach-policy", value_name = "NAME")]
    pub attach_policies: Vec<String>,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
}

/// `reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The manifest the transfer ran with.
    pub manifest: PathBuf,
    /// Ledger and failure report paths.
    #[command(flatten)]
    pub files: OutputFiles,
    /// Why (at most 128 characters); the source account sees it.
    #[arg(long)]
    pub reason: String,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
}
