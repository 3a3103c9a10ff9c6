//! One module per command, each the same shape: its arguments in, turned into the library's
//! option types, one call into the library (`run`, `plan`, `verify`, `report`, `select`),
//! the exit code out. Commands never call each other. The conversions every command shares
//! are here, so that no clap type reaches below this layer.

pub mod accept;
pub mod cancel;
pub mod completions;
pub mod handoff;
pub mod iam_policy;
pub mod man;
pub mod plan;
pub mod register;
pub mod reject;
pub mod report;
pub mod retire;
pub mod select;
pub mod status;
pub mod transfer;
pub mod validate;
pub mod verify;

use std::path::Path;

use crate::aws::AwsOptions;
use crate::breaker::BreakerSettings;
use crate::cli::{
    DevicesArgs, GlobalArgs, OtherTargetsArgs, OutputFiles, PacingArgs, RunLimitArgs,
    TargetProfileArgs, DEFAULT_CONCURRENCY,
};
use crate::devices::{DevicesReport, LookOptions};
use crate::error::ExitCode;
use crate::pacer::RateSettings;
use crate::progress::ProgressSettings;
use crate::retry::RetryPolicy;
use crate::role::RoleOptions;
use crate::run::{FailedItems, RunFiles, RunOptions};
use crate::session::{Settings, TargetCredentials};
use crate::stop::RunLimits;

/// The AWS, pacing and retry settings of a command line, in its one default region (clap
/// has checked every value).
pub fn settings(global: &GlobalArgs, pacing: &PacingArgs) -> Settings {
    settings_in(global, pacing, global.region.first().cloned())
}

/// The same in default region `region`.
pub fn settings_in(global: &GlobalArgs, pacing: &PacingArgs, region: Option<String>) -> Settings {
    Settings {
        aws: aws_options(global, region),
        rates: RateSettings {
            scale: pacing.rate_scale,
            overrides: pacing.rates.iter().copied().collect(),
        },
        retry: RetryPolicy {
            max_attempts: pacing.max_attempts,
            max_throttle_wait: pacing.max_throttle_wait,
            ..Default::default()
        },
        breaker: BreakerSettings {
            threshold: pacing.trip_after,
            max_unreachable: pacing.max_unreachable,
        },
    }
}

/// The AWS options of the global flags with the default pacing (for read-only commands that
/// take no pacing flags).
pub fn default_settings(global: &GlobalArgs) -> Settings {
    Settings {
        aws: aws_options(global, global.region.first().cloned()),
        rates: RateSettings::default(),
        retry: RetryPolicy::default(),
        breaker: BreakerSettings::default(),
    }
}

fn aws_options(global: &GlobalArgs, region: Option<String>) -> AwsOptions {
    AwsOptions {
        profile: global.profile.clone(),
        region,
        endpoint_url: global.endpoint_url.clone(),
        connect_timeout: global.connect_timeout,
        read_timeout: global.read_timeout,
        source_role: global.source_role.clone(),
        role: RoleOptions::new(
            global.role_session_name.clone(),
            global.external_id.clone(),
            global.role_duration,
        ),
    }
}

/// Between progress lines (and metrics file refreshes) when `--progress-interval` is not given.
pub const DEFAULT_PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// How progress shows on stderr.
pub fn progress(global: &GlobalArgs) -> ProgressSettings {
    ProgressSettings {
        mode: global.progress,
        interval: global
            .progress_interval
            .unwrap_or(DEFAULT_PROGRESS_INTERVAL)
            .max(std::time::Duration::from_millis(100)),
        interval_given: global.progress_interval.is_some(),
        quiet: global.quiet > 0,
    }
}

/// The options of a ledger-keeping run.
pub fn run_options(
    global: &GlobalArgs,
    manifest: &Path,
    files: &OutputFiles,
    pacing: &PacingArgs,
    limits: &RunLimitArgs,
    canary: usize,
    failed: FailedItems,
) -> RunOptions {
    RunOptions {
        manifest: manifest.to_path_buf(),
        files: RunFiles {
            ledger: files.ledger.clone(),
            failures: files.failures.clone(),
            metrics: files.metrics_file.clone(),
        },
        settings: settings(global, pacing),
        output: global.output,
        progress: progress(global),
        limits: RunLimits {
            max_duration: limits.max_duration,
            max_items: limits.max_items,
            grace: limits.grace,
        },
        concurrency: pacing.concurrency,
        canary,
        failed,
    }
}

/// How `status` and `report` end: stopped (exit 4) when a signal cut their `--devices`
/// lookup short, else success.
fn exit_after_devices(devices: Option<&DevicesReport>) -> ExitCode {
    if devices.is_some_and(|d| d.stopped.is_some()) {
        ExitCode::Stopped
    } else {
        ExitCode::Success
    }
}

/// The target accounts' credentials the flags name (the command line requires one of the
/// flags wherever they are needed: `Cli::parse_checked`, or clap for `--devices`).
pub fn target_credentials(args: &TargetProfileArgs) -> Option<TargetCredentials> {
    TargetCredentials::from_flags(
        args.target_profile.as_deref(),
        args.target_profile_template.as_deref(),
        args.target_role_template.as_deref(),
    )
}

/// How `status --devices` and `report --devices` look at the devices (`None`: without
/// `--devices`, they call nothing).
pub fn look_options(global: &GlobalArgs, args: &DevicesArgs) -> Option<LookOptions> {
    args.on.then(|| LookOptions {
        settings: default_settings(global),
        targets: target_credentials(&args.targets)
            .expect("clap requires target credentials with --devices"),
        progress: progress(global),
        concurrency: DEFAULT_CONCURRENCY,
        out: args.devices_out.clone(),
    })
}

/// For accept and reject: the credentials of every target account, when the flags ask to
/// act in all of them (`None`: in the caller's account only).
pub fn other_targets(args: &OtherTargetsArgs) -> Option<TargetCredentials> {
    TargetCredentials::from_flags(
        None,
        args.target_profile_template.as_deref(),
        args.target_role_template.as_deref(),
    )
}
