//! `cancel`: CancelCertificateTransfer for every certificate the transfer ledger records as
//! transferred; with `--restore`, also the undo of what prepare changed.

use crate::cli::{CancelArgs, GlobalArgs};
use crate::error::{Error, ExitCode};
use crate::lifecycle::{Canceller, Restore};
use crate::run::{self, FailedItems};

/// Runs `cancel`.
pub async fn run(global: &GlobalArgs, args: CancelArgs) -> Result<ExitCode, Error> {
    let restore = if args.restore {
        Restore::Yes
    } else {
        Restore::No
    };
    let options = super::run_options(
        global,
        &args.manifest,
        &args.files,
        &args.pacing,
        &args.limits,
        // The circuit breaker still stops a run whose calls all fail the same way.
        0,
        // Cancel's own failures are tried again on every run: there is nothing to fix by
        // hand first, unlike a transfer refused for a missing flag.
        FailedItems::Retry,
    );
    run::run::<Canceller>(options, restore).await
}
