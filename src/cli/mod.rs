//! The command line, defined once: help text and validation come from these types. The
//! value parsers ([`values`]) turn each flag into the domain type the library takes, and
//! [`Cli::parse_checked`] refuses what no single value shows (two flags that cannot hold
//! together), so that everything the command line can get wrong is refused by clap, in its
//! style, with exit 2. Only the commands (`cmd/`) see these types.

pub mod values;

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::carry::OnConflict;
use crate::certificate::CertStatus;
use crate::error::EXIT_CODES_HELP;
use crate::help;
use crate::iam;
use crate::ledger::LedgerKind;
use crate::pacer::Operation;
use crate::select::DateBound;
use values::{at_least_one, closed};

pub use crate::logging::LogFormat;
pub use crate::output::OutputFormat;
pub use crate::progress::ProgressMode;

/// Help heading of the options that say how to reach AWS.
pub const AWS_CONNECTION: &str = "AWS connection";
/// Help heading of the options that allow a command to change certificates.
pub const WHAT_TO_CHANGE: &str = "What to change";
/// Help heading of the pacing and retry options.
pub const PACING: &str = "Pacing";
/// Help heading of the options that end a run early.
pub const RUN_LIMITS: &str = "Run limits";
/// Help heading of the files a command writes and of what it prints.
pub const FILES_AND_OUTPUT: &str = "Files and output";

/// Move AWS IoT device certificates from one AWS account to others: rate-limited,
/// resumable, with a durable ledger and a failure report.
#[derive(Debug, Parser)]
#[command(name = "iot-cert-migrate", version, after_long_help = help::main(), after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command. AWS options behave as in the AWS CLI; when absent,
/// the usual `AWS_*` variables and profiles apply (`AWS_PROFILE`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_IOT`, ...).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// AWS profile of the source account (transfer, cancel) or target account (accept, reject).
    #[arg(long, global = true, help_heading = AWS_CONNECTION)]
    pub profile: Option<String>,
    /// Default AWS region (rows may name their own in a `region` column). `select` takes
    /// it several times, to select in several regions.
    #[arg(long, global = true, value_name = "REGION", help_heading = AWS_CONNECTION)]
    pub region: Vec<String>,
    /// Send every AWS request (IoT and STS) to this endpoint, e.g. the local simulator.
    #[arg(long, global = true, value_name = "URL", help_heading = AWS_CONNECTION)]
    pub endpoint_url: Option<String>,
    /// Act as this IAM role in the command's own account (the source side; for accept and
    /// reject, the account they run in): it is assumed with the base credentials
    /// (`--profile` or the environment) and renewed before it expires.
    #[arg(long, global = true, value_name = "ARN", value_parser = values::role_arn, help_heading = AWS_CONNECTION)]
    pub source_role: Option<String>,
    /// The name of each role session (`--source-role`, `--target-role-template`), seen in
    /// CloudTrail [default: iot-cert-migrate-UNIXTIME].
    #[arg(long, global = true, value_name = "NAME", value_parser = values::role_session_name, help_heading = AWS_CONNECTION)]
    pub role_session_name: Option<String>,
    /// The external id the roles' trust policies ask for (`sts:ExternalId`).
    #[arg(long, global = true, value_name = "ID", value_parser = values::external_id, help_heading = AWS_CONNECTION)]
    pub external_id: Option<String>,
    /// How long each role session lasts, 15m to 12h (at most the role's maximum session
    /// duration); sessions are renewed before they end, whatever the run's length.
    #[arg(long, global = true, value_name = "DUR", default_value = "1h", value_parser = values::role_duration, help_heading = AWS_CONNECTION)]
    pub role_duration: Duration,
    /// TCP connect timeout in seconds.
    #[arg(long, global = true, value_name = "SECS", default_value = "3.1", value_parser = values::seconds, help_heading = AWS_CONNECTION)]
    pub connect_timeout: Duration,
    /// Read timeout in seconds for each AWS response.
    #[arg(long, global = true, value_name = "SECS", default_value = "20", value_parser = values::seconds, help_heading = AWS_CONNECTION)]
    pub read_timeout: Duration,
    /// Summary format on stdout.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "IOT_CERT_MIGRATE_OUTPUT",
        help_heading = FILES_AND_OUTPUT
    )]
    pub output: OutputFormat,
    /// Progress display on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "IOT_CERT_MIGRATE_PROGRESS",
        help_heading = FILES_AND_OUTPUT
    )]
    pub progress: ProgressMode,
    /// Seconds between summary lines on stderr where no progress bar is drawn [default: 30].
    /// Giving it asks for those lines without a terminal too (as --progress never does).
    #[arg(long, global = true, value_name = "SECS", value_parser = values::seconds, help_heading = FILES_AND_OUTPUT)]
    pub progress_interval: Option<Duration>,
    /// Log line format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "IOT_CERT_MIGRATE_LOG_FORMAT",
        help_heading = FILES_AND_OUTPUT
    )]
    pub log_format: LogFormat,
    /// More log detail: -v the tool's debug and the SDK's warnings, -vv also one line per
    /// AWS request, -vvv everything (wire level).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = FILES_AND_OUTPUT)]
    pub verbose: u8,
    /// Less output (-q: warnings and errors only, -qq: errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = FILES_AND_OUTPUT)]
    pub quiet: u8,
}

impl Cli {
    /// Parses the process's arguments, and refuses as clap does (its style, exit 2) what no
    /// single value shows: flags that cannot hold together.
    pub fn parse_checked() -> Result<Cli, clap::Error> {
        let cli = Cli::try_parse()?;
        if let Err((kind, message)) = cli.check() {
            let mut command = Cli::command();
            let name = cli.command_name();
            let sub = command.find_subcommand_mut(name).cloned();
            return Err(match sub {
                Some(mut sub) => sub.error(kind, message),
                None => command.error(kind, message),
            });
        }
        Ok(cli)
    }

    /// Whether the command line assumes a role anywhere (`--source-role`, a role template).
    fn assumes_a_role(&self) -> bool {
        let target = match &self.command {
            Command::Transfer(t) => t.accept_role_template.is_some(),
            Command::Plan(p) => p.target_role_template.is_some(),
            Command::Accept(a) => a.targets.target_role_template.is_some(),
            Command::Reject(r) => r.targets.target_role_template.is_some(),
            Command::Register(r) => r.targets.target_role_template.is_some(),
            Command::Retire(r) => r.targets.target_role_template.is_some(),
            Command::Verify(v) => v.targets.target_role_template.is_some(),
            Command::Handoff(h) => h.targets.target_role_template.is_some(),
            Command::Status(s) => s.devices.targets.target_role_template.is_some(),
            Command::Report(r) => r.devices.targets.target_role_template.is_some(),
            _ => false,
        };
        target || self.global.source_role.is_some()
    }

    /// The subcommand's name, as typed.
    fn command_name(&self) -> &'static str {
        match &self.command {
            Command::Transfer(_) => "transfer",
            Command::Validate(_) => "validate",
            Command::Status(_) => "status",
            Command::Plan(_) => "plan",
            Command::Cancel(_) => "cancel",
            Command::Accept(_) => "accept",
            Command::Reject(_) => "reject",
            Command::Register(_) => "register",
            Command::Retire(_) => "retire",
            Command::Handoff(_) => "handoff",
            Command::Verify(_) => "verify",
            Command::Select(_) => "select",
            Command::Report(_) => "report",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
            Command::IamPolicy(_) => "iam-policy",
        }
    }

    /// What the flags of this command line say together.
    fn check(&self) -> Result<(), (clap::error::ErrorKind, String)> {
        use clap::error::ErrorKind;
        let regions = self.global.region.len();
        if regions > 1 && !matches!(self.command, Command::Select(_)) {
            return Err((
                ErrorKind::ArgumentConflict,
                format!("--region was given {regions} times; only select works in several regions"),
            ));
        }
        if !self.assumes_a_role() {
            let g = &self.global;
            let role_flag = [
                (g.role_session_name.is_some(), "--role-session-name"),
                (g.external_id.is_some(), "--external-id"),
                (
                    g.role_duration != crate::role::DEFAULT_DURATION,
                    "--role-duration",
                ),
            ]
            .into_iter()
            .find_map(|(given, flag)| given.then_some(flag));
            if let Some(flag) = role_flag {
                return Err((
                    ErrorKind::ArgumentConflict,
                    format!(
                        "{flag} applies to an assumed role: give --source-role or \
                         --target-role-template too (a profile's role takes its own from the \
                         profile: role_session_name, external_id, duration_seconds)"
                    ),
                ));
            }
        }
        // One of the three ways to reach the targets, named all three when none is given
        // (clap's own message would name --target-profile alone). `retire --undo` acts on
        // the source alone.
        let targets = match &self.command {
            Command::Verify(a) => Some(&a.targets),
            Command::Register(a) => Some(&a.targets),
            Command::Retire(a) if !a.undo => Some(&a.targets),
            Command::Handoff(a) => Some(&a.targets),
            _ => None,
        };
        if targets.is_some_and(|t| !t.given()) {
            return Err((
                ErrorKind::MissingRequiredArgument,
                format!(
                    "{} acts in the target accounts too: give --target-profile PROFILE, \
                     --target-profile-template TEMPLATE or --target-role-template TEMPLATE",
                    self.command_name()
                ),
            ));
        }
        match &self.command {
            Command::Plan(p)
                if p.mode == PlanMode::Register
                    && p.target_profile.is_none()
                    && p.target_profile_template.is_none()
                    && p.target_role_template.is_none() =>
            {
                Err((
                    ErrorKind::MissingRequiredArgument,
                    "plan --mode register reads the targets too: give --target-profile, \
                     --target-profile-template or --target-role-template"
                        .into(),
                ))
            }
            Command::Select(s) => s.check(),
            Command::IamPolicy(p) => p.check(),
            _ => Ok(()),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare and transfer every certificate of the manifest (resumable).
    #[command(after_long_help = help::TRANSFER)]
    Transfer(TransferArgs),
    /// Check a manifest offline; calls nothing.
    #[command(after_long_help = help::VALIDATE)]
    Validate(ValidateArgs),
    /// Show what the ledger says (from the manifest's default ledger, or a ledger path).
    #[command(after_long_help = help::STATUS)]
    Status(StatusArgs),
    /// Read-only: put each certificate in a category and estimate the duration.
    #[command(after_long_help = help::PLAN)]
    Plan(PlanArgs),
    /// Cancel transfers the ledger records as pending; --restore undoes prepare.
    #[command(after_long_help = help::CANCEL)]
    Cancel(CancelArgs),
    /// Target side: accept the pending transfers addressed to the caller's account.
    #[command(after_long_help = help::ACCEPT)]
    Accept(AcceptArgs),
    /// Target side: reject the pending transfers addressed to the caller's account.
    #[command(after_long_help = help::REJECT)]
    Reject(RejectArgs),
    /// Zero downtime: register each certificate in its target account too (the source keeps
    /// it ACTIVE); --carry rebuilds its policies, things and groups there.
    #[command(after_long_help = help::REGISTER)]
    Register(RegisterArgs),
    /// After register: retire the source's copies the target holds ACTIVE (only the steps
    /// asked for: --deactivate, --detach-policies, --detach-things).
    #[command(after_long_help = help::RETIRE)]
    Retire(RetireArgs),
    /// Tell each certificate's devices their target's endpoint through an AWS IoT Job sent
    /// from the source (one job per target and wave); --cleanup removes the wave groups and
    /// the finished jobs.
    Handoff(HandoffArgs),
    /// Read-only, both sides: does each certificate work in its target (owned, ACTIVE,
    /// everything it carried in place)? Exit 0 when all do, 3 otherwise.
    #[command(after_long_help = help::VERIFY)]
    Verify(VerifyArgs),
    /// Read-only: write a manifest of the certificates that match filters (thing group,
    /// thing type, attributes, a fleet indexing query, connectivity, CA, status, creation
    /// date).
    Select(SelectArgs),
    /// How far the migration is, what failed, how fast: from the ledgers, as text and as a
    /// self-contained HTML page.
    #[command(after_long_help = help::REPORT)]
    Report(ReportArgs),
    /// Print a shell completion script on stdout.
    #[command(after_long_help = help::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Write the man pages: the main page on stdout, or one page per command into --out.
    #[command(after_long_help = help::MAN)]
    Man(ManArgs),
    /// Print the least-privilege IAM policy of each account for these commands with these
    /// flags (calls nothing).
    #[command(after_long_help = help::IAM_POLICY)]
    IamPolicy(IamPolicyArgs),
}

/// `iam-policy`: the flags that change what a command calls, spelled as the commands spell
/// them (without their values).
#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The commands the policy is for (one or more).
    #[arg(value_name = "COMMAND", required = true, value_parser = closed::<iam::AwsCommand>())]
    pub commands: Vec<iam::AwsCommand>,
    /// transfer, retire: --deactivate.
    #[arg(long)]
    pub deactivate: bool,
    /// transfer, retire: --detach-policies.
    #[arg(long)]
    pub detach_policies: bool,
    /// transfer, retire: --detach-things.
    #[arg(long)]
    pub detach_things: bool,
    /// transfer: --no-rollback (the rollback's calls are left out).
    #[arg(long)]
    pub no_rollback: bool,
    /// transfer, plan, accept, register: --carry.
    #[arg(long)]
    pub carry: bool,
    /// transfer: --accept-profile or --accept-profile-template (the target's policy too).
    #[arg(long)]
    pub accept_profile: bool,
    /// plan --carry: --target-profile or --target-profile-template (what exists in the
    /// targets is read too).
    #[arg(long)]
    pub target_profile: bool,
    /// plan: --mode register.
    #[arg(long, value_enum)]
    pub mode: Option<PlanMode>,
    /// cancel: --restore.
    #[arg(long)]
    pub restore: bool,
    /// accept: --attach-policy.
    #[arg(long)]
    pub attach_policy: bool,
    /// retire: --undo.
    #[arg(long)]
    pub undo: bool,
    /// select: --thing-group.
    #[arg(long)]
    pub thing_group: bool,
    /// select: --thing-type.
    #[arg(long)]
    pub thing_type: bool,
    /// select: --attribute.
    #[arg(long)]
    pub attribute: bool,
    /// select: --ca-certificate-id.
    #[arg(long)]
    pub ca_certificate_id: bool,
    /// select: --query, --connected or --disconnected.
    #[arg(long)]
    pub query: bool,
    /// status: --reconcile.
    #[arg(long)]
    pub reconcile: bool,
    /// handoff: --cleanup.
    #[arg(long)]
    pub cleanup: bool,
    /// retire, verify: --require-connected.
    #[arg(long)]
    pub require_connected: bool,
    /// transfer: --require-handoff.
    #[arg(long)]
    pub require_handoff: bool,
    /// status, report: --devices.
    #[arg(long)]
    pub devices: bool,
    /// The source account's id in the ARNs (default `*`: the account of the credentials
    /// the policy is attached to).
    #[arg(long, value_name = "ACCOUNT", value_parser = values::account)]
    pub source_account: Option<String>,
    /// The target account's id in the ARNs (default `*`).
    #[arg(long, value_name = "ACCOUNT", value_parser = values::account)]
    pub target_account: Option<String>,
    /// Print only this side's policy, as plain JSON (for `aws iam put-role-policy
    /// --policy-document file://...`).
    #[arg(long, value_enum)]
    pub side: Option<IamSide>,
}

/// One side of a migration, for `iam-policy --side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IamSide {
    /// The source account (`--profile` of transfer, plan, cancel, select, register, retire,
    /// verify).
    Source,
    /// The target accounts (accept, reject, and the target profiles).
    Target,
}

impl IamPolicyArgs {
    /// The flags asked, as the policy table names them.
    pub fn flags(&self) -> std::collections::BTreeSet<iam::Flag> {
        use iam::Flag as F;
        [
            (self.cleanup, F::Cleanup),
            (self.require_connected, F::RequireConnected),
            (self.require_handoff, F::RequireHandoff),
            (self.deactivate, F::Deactivate),
            (self.detach_policies, F::DetachPolicies),
            (self.detach_things, F::DetachThings),
            (self.no_rollback, F::NoRollback),
            (self.carry, F::Carry),
            (self.accept_profile, F::AcceptProfile),
            (self.target_profile, F::TargetProfile),
            (self.mode == Some(PlanMode::Register), F::ModeRegister),
            (self.restore, F::Restore),
            (self.attach_policy, F::AttachPolicy),
            (self.undo, F::Undo),
            (self.thing_group, F::ThingGroup),
            (self.thing_type, F::ThingType),
            (self.attribute, F::Attribute),
            (self.ca_certificate_id, F::CaCertificateId),
            (self.query, F::Query),
            (self.reconcile, F::Reconcile),
            (self.devices, F::Devices),
        ]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect()
    }

    /// A flag none of the commands takes is a mistake, not a no-op.
    fn check(&self) -> Result<(), (clap::error::ErrorKind, String)> {
        for f in self.flags() {
            if !self.commands.iter().any(|c| c.flags().contains(&f)) {
                let takers: Vec<&str> = iam::AwsCommand::ALL
                    .iter()
                    .filter(|c| c.flags().contains(&f))
                    .map(|c| c.as_str())
                    .collect();
                let flag = match f {
                    iam::Flag::ModeRegister => "--mode register".to_string(),
                    other => format!("--{other}"),
                };
                return Err((
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "{flag} is a flag of {}, not of the commands given",
                        takers.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `report`.
#[derive(Debug, Args)]
#[command(mut_args(optional_targets))]
pub struct ReportArgs {
    /// The manifest the migration runs with.
    pub manifest: PathBuf,
    /// Write the report as one self-contained HTML page here (no script, no external file).
    #[arg(long, value_name = "PATH", help_heading = FILES_AND_OUTPUT)]
    pub html: Option<PathBuf>,
    /// Transfer ledger (default: MANIFEST.ledger.jsonl).
    #[arg(long, value_name = "PATH", help_heading = FILES_AND_OUTPUT)]
    pub ledger: Option<PathBuf>,
    /// Accept ledger (default: MANIFEST.accept-ledger.jsonl).
    #[arg(long, value_name = "PATH", help_heading = FILES_AND_OUTPUT)]
    pub accept_ledger: Option<PathBuf>,
    /// Also ask AWS, read-only, whether each certificate's devices arrived.
    #[command(flatten)]
    pub devices: DevicesArgs,
}

/// `--devices` of `status` and `report`: read-only calls on both sides, so opt-in.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Ask AWS (read-only, both sides) how each certificate's devices are doing: each
    /// thing's handoff job execution in the source (with --profile) and whether its device
    /// is connected in the target, since when (with --target-profile, --target-profile-template
    /// or --target-role-template; needs connectivity indexing there).
    #[arg(long = "devices", requires = "target_credentials")]
    pub on: bool,
    /// With --devices: write every certificate looked at here (CSV: certificate_id,
    /// target_account, category, detail, things, handoff_execution, connected,
    /// connected_since).
    #[arg(long, value_name = "PATH", requires = "on", help_heading = FILES_AND_OUTPUT)]
    pub devices_out: Option<PathBuf>,
    /// The target accounts' credentials (read only; only with --devices).
    #[command(flatten)]
    pub targets: TargetProfileArgs,
}

/// The target credentials of `status --devices` and `report --devices`: needed by
/// `--devices` only, and nothing without it (other arguments pass unchanged).
fn optional_targets(a: clap::Arg) -> clap::Arg {
    const TARGETS: [&str; 3] = [
        "target_profile",
        "target_profile_template",
        "target_role_template",
    ];
    if !TARGETS.contains(&a.get_id().as_str()) {
        return a;
    }
    a.requires("on")
        .group("target_credentials")
        .help_heading(AWS_CONNECTION)
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write iot-cert-migrate.1 and one iot-cert-migrate-COMMAND.1 per command into this
    /// directory (created if need be).
    #[arg(long, value_name = "DIR", help_heading = FILES_AND_OUTPUT)]
    pub out: Option<PathBuf>,
}

/// `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest CSV.
    pub manifest: PathBuf,
}

/// `status`.
#[derive(Debug, Args)]
#[command(mut_args(optional_targets))]
pub struct StatusArgs {
    /// A manifest (its default ledger is read) or a ledger file.
    pub path: PathBuf,
    /// Ledger path, when it is not the manifest's default.
    #[arg(long, help_heading = FILES_AND_OUTPUT)]
    pub ledger: Option<PathBuf>,
    /// Ask AWS about in-doubt items (read-only calls).
    #[arg(long)]
    pub reconcile: bool,
    /// Also ask AWS, read-only, whether each certificate's devices arrived.
    #[command(flatten)]
    pub devices: DevicesArgs,
}

/// Certificates in flight at once when `--concurrency` is not given (and for the commands
/// that do not take it: `status --devices`, `report --devices`).
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Pacing and retry options shared by every command that calls AWS.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = PACING)]
pub struct PacingArgs {
    /// Requests per second for one operation, per account and region (repeatable), e.g.
    /// `--rate TransferCertificate=20`. Defaults are the documented quotas (see README).
    #[arg(long = "rate", value_name = "OP=TPS", value_parser = values::rate)]
    pub rates: Vec<(Operation, f64)>,
    /// Multiplies every operation's rate (for accounts with raised quotas).
    #[arg(
        long,
        value_name = "F",
        default_value = "1",
        value_parser = values::rate_scale,
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
        default_value_t = DEFAULT_CONCURRENCY,
        env = "IOT_CERT_MIGRATE_CONCURRENCY",
        value_parser = at_least_one::<usize>
    )]
    pub concurrency: usize,
}

/// Limits that end a run early but cleanly (exit 4; run again to continue).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = RUN_LIMITS)]
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

/// Where a command keeps its ledger, failure report and metrics. Each command names its own
/// defaults ([`ledger_help`], [`failures_help`]).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = FILES_AND_OUTPUT)]
pub struct OutputFiles {
    /// The ledger.
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Failure report CSV (default: beside the ledger: MANIFEST.failures.csv,
    /// MANIFEST.accept-failures.csv, ...; with --ledger X.jsonl, X.failures.csv).
    #[arg(long)]
    pub failures: Option<PathBuf>,
    /// Write metrics here in the Prometheus text format (e.g. for node_exporter's textfile
    /// collector: a *.prom file), atomically, every --progress-interval and at the end.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// The help of `--ledger` for a command that keeps a ledger of `kind`: its default, as
/// the run names it.
pub fn ledger_help(kind: LedgerKind) -> String {
    let manifest = std::path::Path::new("MANIFEST.csv");
    format!(
        "The ledger (default: {}, beside the manifest)",
        crate::run::default_ledger(manifest, kind).display()
    )
}

/// The help of `--failures` for a command that keeps a ledger of `kind`.
pub fn failures_help(kind: LedgerKind) -> String {
    let manifest = std::path::Path::new("MANIFEST.csv");
    format!(
        "The failure report, CSV (default: {}, beside the manifest)",
        crate::run::default_failures(manifest, kind).display()
    )
}

/// `transfer`.
#[derive(Debug, Args)]
#[command(mut_arg("ledger", |a| a.help(ledger_help(LedgerKind::Transfer))))]
#[command(mut_arg("failures", |a| a.help(failures_help(LedgerKind::Transfer))))]
pub struct TransferArgs {
    /// The manifest CSV: certificate_id,target_account[,transfer_message][,region].
    pub manifest: PathBuf,
    /// Transfer only certificates whose devices acknowledged this manifest's handoff job
    /// (execution SUCCEEDED); the others are left untouched and the run exits 4.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub require_handoff: bool,
    /// Deactivate ACTIVE certificates first. This disconnects the devices that use them.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub deactivate: bool,
    /// Detach every policy attached to a certificate (recorded for `cancel --restore`).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub detach_policies: bool,
    /// Detach every thing attached to a certificate (recorded for `cancel --restore`).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub detach_things: bool,
    /// After detaching, how long a TransferCertificate still refused with a conflict is
    /// retried while the detaches propagate in AWS (e.g. 30s, 2m).
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration, default_value = "30s", help_heading = WHAT_TO_CHANGE)]
    pub propagation_wait: Duration,
    /// Try failed items again (they are skipped by default).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub retry_failed: bool,
    /// Do nothing; show the plan instead (same as `plan`).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub dry_run: bool,
    /// After each transfer, accept it with this profile's (target) credentials.
    #[arg(
        long,
        value_name = "PROFILE",
        conflicts_with_all = ["accept_profile_template", "accept_role_template"],
        help_heading = WHAT_TO_CHANGE
    )]
    pub accept_profile: Option<String>,
    /// Like --accept-profile, one profile per target account: `{account}` is replaced,
    /// e.g. 'migrate-{account}'.
    #[arg(long, value_name = "TEMPLATE", value_parser = values::profile_template, conflicts_with = "accept_role_template", help_heading = WHAT_TO_CHANGE)]
    pub accept_profile_template: Option<String>,
    /// Like --accept-profile, in a role of each target account assumed with the base
    /// credentials: `{account}` is replaced, e.g.
    /// 'arn:aws:iam::{account}:role/OrganizationAccountAccessRole'.
    #[arg(long = "target-role-template", visible_alias = "accept-role-template", value_name = "TEMPLATE", value_parser = values::role_template, help_heading = WHAT_TO_CHANGE)]
    pub accept_role_template: Option<String>,
    /// With --accept-profile(-template) or --accept-role-template: activate certificates on
    /// accept.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub set_as_active: bool,
    /// Record what each certificate carries (policies with their documents, things with
    /// type and attributes, static thing groups and their policies) before changing it, for
    /// `accept --carry`; with --accept-profile(-template), rebuild it in the target too.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub carry: bool,
    /// With --carry and --accept-profile(-template): what to do with an object that exists
    /// in the target with another definition (fail the certificate, or reuse the object).
    #[arg(long, value_name = "WHAT", requires = "carry", default_value = "fail", value_parser = closed::<OnConflict>(), help_heading = WHAT_TO_CHANGE)]
    pub on_conflict: OnConflict,
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
    /// Ledger and failure report paths.
    #[command(flatten)]
    pub files: OutputFiles,
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest CSV.
    pub manifest: PathBuf,
    /// Pacing and retries (the estimate uses these rates).
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Write one CSV row per certificate here.
    #[arg(long, value_name = "PATH", help_heading = FILES_AND_OUTPUT)]
    pub plan_out: Option<PathBuf>,
    /// What to plan: a transfer, or a zero-downtime `register` (needs --target-profile or
    /// --target-profile-template: the target side is read too).
    #[arg(long, value_enum, default_value_t = PlanMode::Transfer)]
    pub mode: PlanMode,
    /// Also list what `--carry` would create in each target (policies, things, their type
    /// and groups); with --target-profile(-template), what exists there already (reused or
    /// conflicting).
    #[arg(long)]
    pub carry: bool,
    /// With --mode register or --carry: the target account's profile (read only).
    #[arg(
        long,
        value_name = "PROFILE",
        conflicts_with_all = ["target_profile_template", "target_role_template"]
    )]
    pub target_profile: Option<String>,
    /// With --mode register or --carry: one profile per target account, `{account}` replaced.
    #[arg(long, value_name = "TEMPLATE", value_parser = values::profile_template, conflicts_with = "target_role_template")]
    pub target_profile_template: Option<String>,
    /// With --mode register or --carry: a role in each target account, `{account}`
    /// replaced, assumed with the base credentials.
    #[arg(long, value_name = "TEMPLATE", value_parser = values::role_template)]
    pub target_role_template: Option<String>,
}

/// What `plan` plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanMode {
    /// `transfer`.
    #[default]
    Transfer,
    /// `register` (the zero-downtime move).
    Register,
}

/// `cancel`.
#[derive(Debug, Args)]
#[command(mut_arg("ledger", |a| a.help(ledger_help(LedgerKind::Transfer))))]
#[command(mut_arg("failures", |a| a.help(failures_help(LedgerKind::Transfer))))]
pub struct CancelArgs {
    /// The manifest the transfer ran with.
    pub manifest: PathBuf,
    /// Also undo prepare: re-attach policies and things, re-activate certificates.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub restore: bool,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
    /// Ledger and failure report paths (the transfer's ledger).
    #[command(flatten)]
    pub files: OutputFiles,
}

/// `accept`.
#[derive(Debug, Args)]
#[command(mut_arg("ledger", |a| a.help(ledger_help(LedgerKind::Accept))))]
#[command(mut_arg("failures", |a| a.help(failures_help(LedgerKind::Accept))))]
pub struct AcceptArgs {
    /// The manifest the transfer ran with.
    pub manifest: PathBuf,
    /// Activate certificates on accept.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub set_as_active: bool,
    /// Attach this policy after accept (repeatable). It must exist in the target account.
    #[arg(long = "attach-policy", value_name = "NAME", help_heading = WHAT_TO_CHANGE)]
    pub attach_policies: Vec<String>,
    /// Rebuild what each certificate carried (recorded by `transfer --carry`) in this
    /// account: thing types, thing groups and their policies, policies (ARNs rewritten to
    /// this account), things; then attach them as they were.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub carry: bool,
    /// With --carry: the transfer ledger to read the snapshots from (default: the transfer
    /// ledger beside the manifest, MANIFEST.ledger.jsonl).
    #[arg(long, value_name = "PATH", requires = "carry", help_heading = WHAT_TO_CHANGE)]
    pub from_ledger: Option<PathBuf>,
    /// With --carry: what to do with an object that exists in this account with another
    /// definition: fail the certificate (a report row names the object and the difference),
    /// or reuse the existing object and say so.
    #[arg(long, value_name = "WHAT", requires = "carry", default_value = "fail", value_parser = closed::<OnConflict>(), help_heading = WHAT_TO_CHANGE)]
    pub on_conflict: OnConflict,
    /// Try failed items again (they are skipped by default).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub retry_failed: bool,
    /// Every target account's credentials (default: the caller's account only).
    #[command(flatten)]
    pub targets: OtherTargetsArgs,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
    /// Ledger and failure report paths.
    #[command(flatten)]
    pub files: OutputFiles,
}

/// Credentials of the target accounts, for commands that act on both sides.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = WHAT_TO_CHANGE)]
pub struct TargetProfileArgs {
    /// Profile holding the target account's credentials. The targets are reached with this,
    /// --target-profile-template or --target-role-template: one of the three.
    #[arg(
        long,
        value_name = "PROFILE",
        conflicts_with_all = ["target_profile_template", "target_role_template"]
    )]
    pub target_profile: Option<String>,
    /// One profile per target account: `{account}` is replaced by each target account id,
    /// e.g. 'migrate-{account}'.
    #[arg(long, value_name = "TEMPLATE", value_parser = values::profile_template, conflicts_with = "target_role_template")]
    pub target_profile_template: Option<String>,
    /// A role in each target account, assumed with the base credentials (`--profile` or
    /// the environment): `{account}` is replaced by each target account id, e.g.
    /// 'arn:aws:iam::{account}:role/OrganizationAccountAccessRole'.
    #[arg(long, value_name = "TEMPLATE", value_parser = values::role_template)]
    pub target_role_template: Option<String>,
}

impl TargetProfileArgs {
    /// Whether one of the three was given.
    pub fn given(&self) -> bool {
        self.target_profile.is_some()
            || self.target_profile_template.is_some()
            || self.target_role_template.is_some()
    }
}

/// For accept and reject: act in every target account of the manifest, with a profile or
/// a role per account, instead of in the account of the credentials only.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = WHAT_TO_CHANGE)]
pub struct OtherTargetsArgs {
    /// One profile per target account: `{account}` is replaced by each target account id,
    /// e.g. 'migrate-{account}'.
    #[arg(long, value_name = "TEMPLATE", value_parser = values::profile_template, conflicts_with = "target_role_template")]
    pub target_profile_template: Option<String>,
    /// A role in each target account, assumed with the base credentials (`--profile` or
    /// the environment): `{account}` is replaced by each target account id, e.g.
    /// 'arn:aws:iam::{account}:role/OrganizationAccountAccessRole'.
    #[arg(long, value_name = "TEMPLATE", value_parser = values::role_template)]
    pub target_role_template: Option<String>,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The manifest of the migration.
    pub manifest: PathBuf,
    /// The target accounts' credentials (read only).
    #[command(flatten)]
    pub targets: TargetProfileArgs,
    /// The transfer ledger with what each certificate carried (default: the one beside the
    /// manifest; for register mode, MANIFEST.register-ledger.jsonl).
    #[arg(long, value_name = "PATH", help_heading = FILES_AND_OUTPUT)]
    pub from_ledger: Option<PathBuf>,
    /// Write the certificates that are not ok here (CSV: certificate_id, target_account,
    /// category, detail, things, handoff_execution, connected, connected_since).
    #[arg(long, value_name = "PATH", help_heading = FILES_AND_OUTPUT)]
    pub out: Option<PathBuf>,
    /// A certificate is ok only when the device of each of its things (client id = thing
    /// name) is connected in the target (GetThingConnectivityData: needs connectivity
    /// indexing there); the others are `not_connected`.
    #[arg(long)]
    pub require_connected: bool,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
}

/// `register`.
#[derive(Debug, Args)]
#[command(mut_arg("ledger", |a| a.help(ledger_help(LedgerKind::Register))))]
#[command(mut_arg("failures", |a| a.help(failures_help(LedgerKind::Register))))]
pub struct RegisterArgs {
    /// The manifest CSV: certificate_id,target_account[,...][,region].
    pub manifest: PathBuf,
    /// The target accounts' credentials.
    #[command(flatten)]
    pub targets: TargetProfileArgs,
    /// Status of the registered copy in the target [default: the source's: ACTIVE stays
    /// ACTIVE, INACTIVE stays INACTIVE].
    #[arg(long, value_name = "STATUS", value_parser = values::movable_status, help_heading = WHAT_TO_CHANGE)]
    pub status: Option<CertStatus>,
    /// Also rebuild in the target what each certificate carries (policies, things, their type
    /// and static groups), as `accept --carry` does.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub carry: bool,
    /// With --carry: what to do with an object that exists in the target with another
    /// definition (fail the certificate, or reuse the object).
    #[arg(long, value_name = "WHAT", requires = "carry", default_value = "fail", value_parser = closed::<OnConflict>(), help_heading = WHAT_TO_CHANGE)]
    pub on_conflict: OnConflict,
    /// Try failed items again (they are skipped by default).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub retry_failed: bool,
    /// Certificates each region starts with, alone, before the others (0 = no canary).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub canary: usize,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
    /// Ledger, failure report and metrics paths.
    #[command(flatten)]
    pub files: OutputFiles,
}

/// `retire`.
#[derive(Debug, Args)]
// Retire changes only what it is told to.
#[command(group(ArgGroup::new("steps").multiple(true).required(true).args(["deactivate", "detach_policies", "detach_things", "undo"])))]
#[command(mut_arg("ledger", |a| a.help(ledger_help(LedgerKind::Retire))))]
#[command(mut_arg("failures", |a| a.help(failures_help(LedgerKind::Retire))))]
pub struct RetireArgs {
    /// The manifest `register` ran with.
    pub manifest: PathBuf,
    /// The target accounts' credentials (read only: to confirm each holds its copy ACTIVE).
    #[command(flatten)]
    pub targets: TargetProfileArgs,
    /// Deactivate the source's copy. Devices still connected to the source disconnect.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub deactivate: bool,
    /// Detach every policy from the source's copy.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub detach_policies: bool,
    /// Detach every thing from the source's copy.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub detach_things: bool,
    /// Undo what retire changed (re-attach, re-activate), from its ledger.
    #[arg(long, conflicts_with_all = ["deactivate", "detach_policies", "detach_things", "require_connected"], help_heading = WHAT_TO_CHANGE)]
    pub undo: bool,
    /// Retire only certificates whose device (client id = thing name) is connected in the
    /// target (GetThingConnectivityData: needs connectivity indexing there); the others are
    /// left untouched, named as waiting for their device, and the run exits 4.
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub require_connected: bool,
    /// Try failed items again (they are skipped by default).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub retry_failed: bool,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
    /// Ledger, failure report and metrics paths.
    #[command(flatten)]
    pub files: OutputFiles,
}

/// `handoff`.
#[derive(Debug, Args)]
#[command(mut_arg("ledger", |a| a.help(ledger_help(LedgerKind::Handoff))))]
#[command(mut_arg("failures", |a| a.help(failures_help(LedgerKind::Handoff))))]
pub struct HandoffArgs {
    /// The manifest of the certificates whose devices move.
    pub manifest: PathBuf,
    /// The job document (JSON): `{endpoint}`, `{account}` and `{region}` are filled in
    /// with each target's device endpoint, account and region.
    #[arg(long, value_name = "FILE", required_unless_present = "cleanup")]
    pub document: Option<PathBuf>,
    /// The target accounts' credentials (read only: DescribeEndpoint).
    #[command(flatten)]
    pub targets: TargetProfileArgs,
    /// Certificates per wave (one job and one thing group per target account, region and
    /// wave); `--cleanup` needs the same value the handoff ran with.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..), help_heading = WHAT_TO_CHANGE)]
    pub wave_size: u32,
    /// Job executions rolled out per minute, per job (1-1000).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=1000), help_heading = WHAT_TO_CHANGE)]
    pub rollout_per_minute: i32,
    /// Cancel a wave's job once this percentage of its executed things failed, rejected or
    /// timed out (after at least 10).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100), help_heading = WHAT_TO_CHANGE)]
    pub abort_failed_percent: Option<u8>,
    /// Minutes a device may keep its execution IN_PROGRESS before it is TIMED_OUT.
    #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(i64).range(1..=10080), help_heading = WHAT_TO_CHANGE)]
    pub job_timeout: Option<i64>,
    /// Delete the wave groups and jobs whose executions have all ended (instead of handing
    /// off); waves with executions still pending are kept, and the run exits 4.
    #[arg(long, conflicts_with_all = ["document", "rollout_per_minute", "abort_failed_percent", "job_timeout"], help_heading = WHAT_TO_CHANGE)]
    pub cleanup: bool,
    /// Try failed items again (they are skipped by default).
    #[arg(long, help_heading = WHAT_TO_CHANGE)]
    pub retry_failed: bool,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
    /// Ledger, failure report and metrics paths.
    #[command(flatten)]
    pub files: OutputFiles,
}

/// `reject`.
#[derive(Debug, Args)]
#[command(mut_arg("ledger", |a| a.help(ledger_help(LedgerKind::Accept))))]
#[command(mut_arg("failures", |a| a.help(failures_help(LedgerKind::Accept))))]
pub struct RejectArgs {
    /// The manifest the transfer ran with.
    pub manifest: PathBuf,
    /// Why (at most 128 characters); the source account sees it.
    #[arg(long, value_parser = values::reject_reason, help_heading = WHAT_TO_CHANGE)]
    pub reason: String,
    /// Every target account's credentials (default: the caller's account only).
    #[command(flatten)]
    pub targets: OtherTargetsArgs,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Time box and item limit.
    #[command(flatten)]
    pub limits: RunLimitArgs,
    /// Ledger and failure report paths.
    #[command(flatten)]
    pub files: OutputFiles,
}

impl SelectArgs {
    /// Filters that no certificate can match together.
    fn check(&self) -> Result<(), (clap::error::ErrorKind, String)> {
        use clap::error::ErrorKind;
        if let (Some(a), Some(b)) = (&self.created_after, &self.created_before) {
            if a.at >= b.at {
                return Err((
                    ErrorKind::ArgumentConflict,
                    format!(
                        "--created-after {} is not before --created-before {}: nothing can match",
                        a.text, b.text
                    ),
                ));
            }
        }
        for (i, (name, value)) in self.attributes.iter().enumerate() {
            if let Some((_, other)) = self.attributes[..i]
                .iter()
                .find(|(n, v)| n == name && v != value)
            {
                return Err((
                    ErrorKind::ArgumentConflict,
                    format!(
                        "--attribute {name}={value}: attribute {name} is also required to be \
                         {other:?}: no thing can match both"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `select`.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// The account the selected certificates are to move to (12 digits).
    #[arg(long, value_name = "ACCOUNT", value_parser = values::account)]
    pub target_account: String,
    /// Where to write the manifest; `-` is stdout.
    #[arg(long, value_name = "PATH|-", default_value = "-")]
    pub out: PathBuf,
    /// Replace --out when it exists already.
    #[arg(long)]
    pub force: bool,
    /// Keep certificates with this status (repeatable): ACTIVE or INACTIVE [default: both].
    #[arg(long = "status", value_name = "STATUS", value_parser = values::movable_status)]
    pub statuses: Vec<CertStatus>,
    /// Only certificates issued by this CA certificate (64 hex; ListCertificatesByCA).
    #[arg(long, value_name = "ID", value_parser = values::ca_certificate_id)]
    pub ca_certificate_id: Option<String>,
    /// Only certificates of things in this static thing group or the groups below it.
    #[arg(long, value_name = "NAME", value_parser = values::registry_name)]
    pub thing_group: Option<String>,
    /// With --thing-group: its direct members only, not those of its child groups.
    #[arg(long, requires = "thing_group")]
    pub no_recursive: bool,
    /// Only certificates of things of this thing type.
    #[arg(long, value_name = "NAME", value_parser = values::registry_name)]
    pub thing_type: Option<String>,
    /// Only certificates of things with this attribute value (repeatable: all must match).
    #[arg(long = "attribute", value_name = "NAME=VALUE", value_parser = values::attribute)]
    pub attributes: Vec<(String, String)>,
    /// Only certificates of things that match this fleet indexing query (SearchIndex on
    /// AWS_Things), e.g. 'thingName:sensor-* AND attributes.fw:2.*'. Needs fleet indexing
    /// on in the source account; every page of 100 things is a billed query.
    #[arg(long, value_name = "QUERY", value_parser = values::fleet_query, allow_hyphen_values = true)]
    pub query: Option<String>,
    /// Only things whose device is connected now (connectivity.connected:true; needs
    /// connectivity indexing).
    #[arg(long, conflicts_with = "disconnected")]
    pub connected: bool,
    /// Only things whose device is not connected now (connectivity.connected:false; needs
    /// connectivity indexing, which sees only devices whose client id is their thing's
    /// name: any other device reads as disconnected).
    #[arg(long)]
    pub disconnected: bool,
    /// Only certificates created at or after this time (RFC 3339, or YYYY-MM-DD for
    /// midnight UTC).
    #[arg(long, value_name = "DATE", value_parser = values::date)]
    pub created_after: Option<DateBound>,
    /// Only certificates created before this time (RFC 3339, or YYYY-MM-DD for midnight
    /// UTC).
    #[arg(long, value_name = "DATE", value_parser = values::date)]
    pub created_before: Option<DateBound>,
    /// Leave out the certificates listed in this manifest, e.g. an earlier wave
    /// (repeatable).
    #[arg(long = "exclude-manifest", value_name = "PATH")]
    pub exclude_manifests: Vec<PathBuf>,
    /// At most this many certificates (the first by id): one wave.
    #[arg(long, value_name = "N", value_parser = at_least_one::<usize>)]
    pub limit: Option<usize>,
    /// The transfer_message of every row (at most 128 characters).
    #[arg(long, value_name = "TEXT", value_parser = values::transfer_message)]
    pub transfer_message: Option<String>,
    /// Pacing and retries.
    #[command(flatten)]
    pub pacing: PacingArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{default_failures, default_ledger};

    /// The help of argument `id` of command `name`.
    fn help_of(name: &str, id: &str) -> String {
        let mut cli = Cli::command();
        cli.build();
        let sub = cli.find_subcommand(name).expect("command");
        let help = sub
            .get_arguments()
            .find(|a| a.get_id() == id)
            .and_then(|a| a.get_help())
            .map(|h| h.to_string());
        help.unwrap_or_else(|| panic!("{name} --{id} has no help"))
    }

    #[test]
    fn each_command_names_its_own_default_ledger_and_failure_report() {
        let manifest = std::path::Path::new("MANIFEST.csv");
        for (name, kind) in [
            ("transfer", LedgerKind::Transfer),
            ("cancel", LedgerKind::Transfer),
            ("accept", LedgerKind::Accept),
            ("reject", LedgerKind::Accept),
            ("register", LedgerKind::Register),
            ("retire", LedgerKind::Retire),
            ("handoff", LedgerKind::Handoff),
        ] {
            let ledger = help_of(name, "ledger");
            let failures = help_of(name, "failures");
            for other in LedgerKind::ALL {
                let named = default_ledger(manifest, *other).display().to_string();
                assert_eq!(ledger.contains(&named), *other == kind, "{name}: {ledger}");
                let named = default_failures(manifest, *other).display().to_string();
                assert_eq!(
                    failures.contains(&named),
                    *other == kind,
                    "{name}: {failures}"
                );
            }
        }
    }
}
