//! `iot-sim` binary: runs the simulator until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use iot_sim::{
    parse_deny_spec, parse_fault_spec, parse_quota_spec, parse_role_spec, CredentialChange,
    DenyRule, FaultKind, IamPolicy, OutageMode, Seed, SeedRole, SimConfig, Simulator,
};
use iot_sim::{
    CompletedTransferAnswer, OutgoingArnAccount, PendingTransferAnswer, SourceAfterAccept,
};

/// Default listen address of the binary (the library's default is port 0).
const DEFAULT_LISTEN: &str = "127.0.0.1:5599";

/// Local AWS IoT control-plane simulator (certificate transfer operations + STS GetCallerIdentity
/// and AssumeRole).
#[derive(Parser, Debug)]
#[command(name = "iot-sim", version)]
struct Args {
    /// Address to listen on (port 0 = any free port; the first stdout line tells which).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Account of callers whose access key id is not exactly 12 digits.
    #[arg(long, default_value = iot_sim::DEFAULT_ACCOUNT)]
    default_account: String,

    /// Seed file (JSON); repeatable, applied in order.
    #[arg(long = "seed", value_name = "FILE")]
    seeds: Vec<PathBuf>,

    /// Multiplier of every documented TPS quota (0 = unlimited).
    #[arg(long, default_value_t = 1.0)]
    quota_scale: f64,

    /// Absolute TPS of one operation, e.g. TransferCertificate=5 (0 = unlimited); repeatable.
    #[arg(long = "quota", value_name = "OP=TPS", value_parser = parse_quota_spec)]
    quotas: Vec<(String, f64)>,

    /// How much of a quota a caller may spend at once, as a time (humantime): a token
    /// bucket holds this long's worth of calls (at least one).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    quota_burst: Duration,

    /// Latency added to every operation response (humantime, e.g. 30ms).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    latency: Duration,

    /// Uniform random extra latency in [0, JITTER] (humantime).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    latency_jitter: Duration,

    /// Fault injection KIND=P with KIND one of 500, 503, reset, timeout, lost-reply,
    /// truncated, empty, duplicate; repeatable.
    #[arg(long = "fault", value_name = "KIND=P", value_parser = parse_fault_spec)]
    faults: Vec<(FaultKind, f64)>,

    /// How long a `timeout` fault holds a request before closing the connection.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    timeout_hold: Duration,

    /// Whether attached things make TransferCertificate fail with 409 (true|false).
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    things_block_transfer: bool,

    /// IAM-like deny rule ACCOUNT:OPERATION[:RESOURCE_ARN_PATTERN] (`*` = any text); repeatable.
    #[arg(long = "deny", value_name = "ACCOUNT:OPERATION[:RESOURCE]", value_parser = parse_deny_spec)]
    deny: Vec<DenyRule>,

    /// An access key that starts expired or revoked: KEY=expired|revoked; repeatable.
    #[arg(long = "credentials", value_name = "KEY=STATE", value_parser = parse_credentials_spec)]
    credentials: Vec<CredentialChange>,

    /// Start in an outage: reset (connections closed), blackhole (requests held) or down
    /// (nothing listens: connecting is refused).
    #[arg(long, value_name = "MODE", default_value = "off")]
    outage: OutageMode,

    /// For this long after DetachPolicy / DetachThingPrincipal the item still counts as attached.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    propagation_delay: Duration,

    /// Source's DescribeCertificate after the accept: not-found, access-denied, unauthorized, visible.
    #[arg(long, value_name = "ANSWER", default_value = "not-found")]
    source_describe_after_accept: SourceAfterAccept,

    /// With visible: for how long after the accept (default: always).
    #[arg(long, value_parser = humantime::parse_duration)]
    source_visible_for: Option<Duration>,

    /// Accept/Reject of an accepted certificate: transfer-already-completed,
    /// transfer-conflict, invalid-request, not-found.
    #[arg(
        long,
        value_name = "ANSWER",
        default_value = "transfer-already-completed"
    )]
    accept_completed_answer: CompletedTransferAnswer,

    /// TransferCertificate of a PENDING_TRANSFER certificate: transfer-conflict, certificate-state.
    #[arg(long, value_name = "ANSWER", default_value = "transfer-conflict")]
    transfer_pending_answer: PendingTransferAnswer,

    /// Send X-Amzn-ErrorType as CODE:namespace (true|false).
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    error_type_suffix: bool,

    /// Account in ListOutgoingCertificates' certificateArn: target or source.
    #[arg(long, value_name = "ACCOUNT", default_value = "target")]
    outgoing_arn_account: OutgoingArnAccount,

    /// A role STS AssumeRole grants, and to whom, e.g.
    /// `arn:aws:iam::222222222222:role/migrate,trust=111111111111[,external-id=ID][,max-session=2h]`;
    /// repeatable.
    #[arg(long = "role", value_name = "ARN,trust=ACCOUNT", value_parser = parse_role_spec)]
    roles: Vec<SeedRole>,

    /// Every role session lasts this long, whatever was asked (shorter than AWS's 15 minutes
    /// allowed: to watch credentials expire and be refreshed), e.g. 2s.
    #[arg(long, value_parser = humantime::parse_duration)]
    session_lifetime: Option<Duration>,
    /// Most policies attached to one thing group (UNCONFIRMED: 10, or 2 as in the 2021 guide).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    policies_per_group: u16,

    /// RegisterCertificateWithoutCA refuses a certificate whose CA is registered in DEFAULT
    /// mode in the Region (UNCONFIRMED; true|false).
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    register_refuses_default_ca: bool,

    /// RegisterCertificateWithoutCA refuses a certificate issued by AWS IoT (UNCONFIRMED;
    /// true|false).
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    register_refuses_aws_issued: bool,

    /// Allow-list mode for one account: ACCOUNT=FILE, FILE an IAM policy (JSON); every call
    /// it does not allow is refused 403 AccessDeniedException; repeatable.
    #[arg(long = "iam-policy", value_name = "ACCOUNT=FILE", value_parser = parse_iam_spec)]
    iam_policies: Vec<(String, IamPolicy)>,
}

fn parse_iam_spec(s: &str) -> Result<(String, IamPolicy), String> {
    let (account, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ACCOUNT=FILE, got {s:?}"))?;
    if !iot_sim::validate::is_account_id(account) {
        return Err(format!("account {account:?} is not 12 digits"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let policy = IamPolicy::parse(&text).map_err(|e| format!("{path}: {e}"))?;
    Ok((account.to_string(), policy))
}

fn parse_credentials_spec(s: &str) -> Result<CredentialChange, String> {
    let (key, state) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=STATE, got {s:?}"))?;
    Ok(CredentialChange {
        access_key_id: key.to_string(),
        state: state.parse()?,
        after_requests: None,
    })
}

fn main() {
    let args = Args::parse();
    if !(args.quota_scale >= 0.0 && args.quota_scale.is_finite()) {
        eprintln!("iot-sim: --quota-scale must be >= 0");
        std::process::exit(2);
    }
    let mut seeds: Vec<Seed> = Vec::new();
    for path in &args.seeds {
        match Seed::from_file(path) {
            Ok(s) => seeds.push(s),
            Err(e) => {
                eprintln!("iot-sim: {e}");
                std::process::exit(2);
            }
        }
    }
    let config = SimConfig {
        listen: args.listen,
        default_account: args.default_account,
        quota_scale: args.quota_scale,
        quota_burst: args.quota_burst,
        quotas: args.quotas.into_iter().collect::<HashMap<_, _>>(),
        latency: args.latency,
        latency_jitter: args.latency_jitter,
        faults: args.faults,
        timeout_hold: args.timeout_hold,
        things_block_transfer: args.things_block_transfer,
        seeds,
        credentials: args.credentials,
        deny: args.deny,
        outage: args.outage,
        propagation_delay: args.propagation_delay,
        source_after_accept: args.source_describe_after_accept,
        source_visible_for: args.source_visible_for,
        completed_transfer_answer: args.accept_completed_answer,
        pending_transfer_answer: args.transfer_pending_answer,
        error_type_suffix: args.error_type_suffix,
        outgoing_arn_account: args.outgoing_arn_account,
        roles: args.roles,
        session_lifetime: args.session_lifetime,
        policies_per_group: usize::from(args.policies_per_group),
        register_refuses_default_ca: args.register_refuses_default_ca,
        register_refuses_aws_issued: args.register_refuses_aws_issued,
        iam_policies: args.iam_policies.into_iter().collect(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iot-sim: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async move {
        let sim = match Simulator::start(config).await {
            Ok(sim) => sim,
            Err(e) => {
                eprintln!("iot-sim: cannot start: {e}");
                return 1;
            }
        };
        // The handlers before the address: whoever reads it may stop us at once.
        let stop = Stop::install();
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {}", sim.url());
            let _ = out.flush();
        }
        stop.wait().await;
        eprintln!("iot-sim: shutting down");
        sim.shutdown();
        0
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

/// SIGINT and SIGTERM, caught from the moment [`Stop::install`] returns.
struct Stop {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    /// Installs the handlers (inside the runtime).
    fn install() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Stop { signals }
        }
        #[cfg(not(unix))]
        Stop {}
    }

    /// Until the first of them arrives.
    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
