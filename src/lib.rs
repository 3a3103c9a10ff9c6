//! iot-cert-migrate: move AWS IoT device certificates from one AWS account to others,
//! rate-limited at the AWS quotas, resumable after any interruption, with a durable ledger
//! and an actionable failure report.
//!
//! The binary is a thin wrapper around [`run`]. The layers, from the top:
//! - [`cli`] (the command line, with [`help`] and [`manual`]) and [`cmd`] (one thin module
//!   per command): the only code that sees clap's types; commands turn their arguments into
//!   the library's option structs;
//! - [`run`] (drives any [`lifecycle::Workflow`] over a manifest: selection, the settling of
//!   open intents, lanes, the ledger's one writer, failure report, summary), [`verdict`]
//!   (the one engine of the read-only verdicts: [`plan`], [`registration`], [`verify`],
//!   and [`devices`], whose lookup `verify`, `status --devices` and `report --devices` share),
//!   [`select`] (the manifest from the source account's registry), [`report`] (counts,
//!   summary, failure report, status, the migration report), [`output`];
//! - [`lifecycle`]: the workflows (migrate, cancel, accept, reject, register, retire) and the
//!   per-certificate machinery they share (observe, change, check, item);
//! - [`session`] (credentials and the shared call context), [`iot`] (the AWS calls),
//!   [`pipeline`], [`stop`], [`breaker`], [`progress`], [`metrics`], [`logging`],
//!   [`terminal`];
//! - the concepts underneath: [`manifest`], [`ledger`], [`carry`], [`pacer`], [`retry`],
//!   [`certificate`], [`aws`], [`role`], [`error`], [`files`], [`durable`] (the one writer of output
//!   files), [`closed_set`].
#![warn(missing_docs)]

#[macro_use]
pub mod closed_set;

pub mod aws;
pub mod breaker;
pub mod carry;
pub mod certificate;
pub mod cli;
pub mod cmd;
pub mod devices;
pub mod durable;
pub mod error;
pub mod files;
pub mod help;
pub mod iam;
pub mod iot;
pub mod job_document;
pub mod ledger;
pub mod lifecycle;
pub mod logging;
pub mod manifest;
pub mod manual;
pub mod metrics;
pub mod output;
pub mod pacer;
pub mod pipeline;
pub mod plan;
pub mod progress;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod readme;
pub mod registration;
pub mod report;
pub mod retry;
pub mod role;
pub mod run;
pub mod select;
pub mod session;
pub mod stop;
pub mod terminal;
pub mod verdict;
pub mod verify;

pub use error::{Error, ExitCode};

use cli::{Cli, Command, PlanArgs};

/// Sets up logging on stderr as the global options ask.
pub fn init_logging(global: &cli::GlobalArgs) {
    logging::init(logging::LogSettings {
        verbose: global.verbose,
        quiet: global.quiet,
        format: global.log_format,
        progress_lines: cmd::progress(global).shows_lines(),
    })
}

/// The metrics file a command line asks for; `None` for commands that run no items, or
/// without the flag.
fn metrics_request(command: &Command) -> Option<metrics::Request> {
    let (files, name, manifest) = match command {
        Command::Transfer(a) if !a.dry_run => (&a.files, "transfer", &a.manifest),
        Command::Cancel(a) => (&a.files, "cancel", &a.manifest),
        Command::Accept(a) => (&a.files, "accept", &a.manifest),
        Command::Reject(a) => (&a.files, "reject", &a.manifest),
        Command::Register(a) => (&a.files, "register", &a.manifest),
        Command::Retire(a) => (&a.files, "retire", &a.manifest),
        Command::Handoff(a) => (&a.files, "handoff", &a.manifest),
        _ => return None,
    };
    let path = files.metrics_file.clone()?;
    Some(metrics::Request::new(path, name, manifest.clone()))
}

/// Runs one command line to completion and returns the exit code.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let started = std::time::SystemTime::now();
    let metrics = metrics_request(&cli.command);
    let result = dispatch(cli).await;
    if let (Some(m), Err(e)) = (&metrics, &result) {
        // A cron job's metrics must show the run that failed, however early it failed.
        m.record_failure(started, e);
    }
    result
}

async fn dispatch(cli: Cli) -> Result<ExitCode, Error> {
    let global = cli.global;
    match cli.command {
        Command::Transfer(args) if args.dry_run => {
            let plan = PlanArgs {
                manifest: args.manifest,
                plan_out: None,
                pacing: args.pacing,
                mode: cli::PlanMode::Transfer,
                carry: args.carry,
                // What carry would meet in the targets, with the accept's credentials.
                target_profile: args.accept_profile,
                target_profile_template: args.accept_profile_template,
                target_role_template: args.accept_role_template,
            };
            cmd::plan::run(&global, plan).await
        }
        Command::Transfer(args) => cmd::transfer::run(&global, args).await,
        Command::Validate(args) => cmd::validate::run(&global, args),
        Command::Status(args) => cmd::status::run(&global, args).await,
        Command::Plan(args) => cmd::plan::run(&global, args).await,
        Command::Cancel(args) => cmd::cancel::run(&global, args).await,
        Command::Accept(args) => cmd::accept::run(&global, args).await,
        Command::Reject(args) => cmd::reject::run(&global, args).await,
        Command::Report(args) => cmd::report::run(&global, args).await,
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man(args) => cmd::man::run(&global, args),
        Command::Select(args) => cmd::select::run(&global, args).await,
        Command::Register(args) => cmd::register::run(&global, args).await,
        Command::Verify(args) => cmd::verify::run(&global, args).await,
        Command::Retire(args) => cmd::retire::run(&global, args).await,
        Command::Handoff(args) => cmd::handoff::run(&global, args).await,
        Command::IamPolicy(args) => cmd::iam_policy::run(&global, args),
    }
}
