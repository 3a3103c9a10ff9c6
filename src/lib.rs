//! iot-cert-migrate: move AWS IoT device certificates from one AWS account to others,
//! rate-limited at the AWS quotas, resumable after any interruption, with a durable ledger
//! and an actionable failure report.
//!
//! The binary is a thin wrapper around [`run`]; every concept has its own module.

pub mod aws;
pub mod cli;
pub mod cmd;
pub mod error;
pub mod iot;
pub mod ledger;
pub mod manifest;
pub mod pacer;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod retry;
pub mod stop;

pub use error::{Error, ExitCode};

use cli::{Cli, Command, LogFormat};

/// Sets up logging on stderr as the global options ask.
pub fn init_logging(global: &cli::GlobalArgs) {
    let level = match (global.verbose as i32) - (global.quiet as i32) {
        i32::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // Our crate at the chosen level; the SDK's own chatter only from -vv on.
    let filter = tracing_subscriber::EnvFilter::try_from_env("IOT_CERT_MIGRATE_LOG")
        .unwrap_or_else(|_| {
            let sdk = if global.verbose >= 2 { level } else { "warn" };
            tracing_subscriber::EnvFilter::new(format!("warn,iot_cert_migrate={level},aws={sdk}"))
        });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Runs one command line to completion and returns the exit code.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let global = cli.global;
    match cli.command {
        Command::Transfer(args) => cmd::transfer::run(&global, args).await,
        Command::Validate(args) => cmd::validate::run(&global, args),
        Command::Status(args) => cmd::status::run(&global, args).await,
        Command::Plan(args) => cmd::plan::run(&global, args).await,
        Command::Cancel(args) => cmd::cancel::run(&global, args).await,
        Command::Accept(args) => cmd::accept::run(&global, args).await,
        Command::Reject(args) => cmd::accept::run_reject(&global, args).await,
    }
}
