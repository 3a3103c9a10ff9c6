//! `reject` (target side): reject the pending transfers addressed to the caller's account;
//! the certificates go back to the source, INACTIVE; with `--target-role-template` (or
//! `--target-profile-template`) in every target account. The events go to the accept ledger.

use crate::cli::{GlobalArgs, RejectArgs};
use crate::error::{Error, ExitCode};
use crate::lifecycle::{RejectOptions, Rejecter};
use crate::run::{self, FailedItems};

/// Runs `reject`.
pub async fn run(global: &GlobalArgs, args: RejectArgs) -> Result<ExitCode, Error> {
    let options = super::run_options(
        global,
        &args.manifest,
        &args.files,
        &args.pacing,
        &args.limits,
        // The circuit breaker still stops a run whose calls all fail the same way.
        0,
        FailedItems::Skip,
    );
    let reject = RejectOptions {
        reason: args.reason,
        targets: super::other_targets(&args.targets),
    };
    run::run::<Rejecter>(options, reject).await
}
