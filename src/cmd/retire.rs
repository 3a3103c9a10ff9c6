//! `retire`: after `register`, the source's copies are retired, each only once its target
//! holds the certificate ACTIVE, and only as far as the flags say; `--undo` puts back what a
//! retire changed. The events (with what was changed) go to the retire ledger.

use crate::cli::{GlobalArgs, RetireArgs};
use crate::error::{Error, ExitCode};
use crate::lifecycle::{PrepareSteps, RetireOptions, Retirer, UndoRetire};
use crate::run::{self, FailedItems};

/// Runs `retire`.
pub async fn run(global: &GlobalArgs, args: RetireArgs) -> Result<ExitCode, Error> {
    let options = super::run_options(
        global,
        &args.manifest,
        &args.files,
        &args.pacing,
        &args.limits,
        0,
        // A retirement that failed half-way is exactly what undo is for.
        FailedItems::retry_if(args.retry_failed || args.undo),
    );
    if args.undo {
        return run::run::<UndoRetire>(options, ()).await;
    }
    let retire = RetireOptions {
        targets: super::target_credentials(&args.targets)
            .expect("Cli::parse_checked requires target credentials"),
        steps: PrepareSteps {
            deactivate: args.deactivate,
            detach_policies: args.detach_policies,
            detach_things: args.detach_things,
        },
        require_connected: args.require_connected,
    };
    run::run::<Retirer>(options, retire).await
}
