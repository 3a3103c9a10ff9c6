//! `register`: the zero-downtime move. Each certificate is registered in its target account
//! too (RegisterCertificateWithoutCA with its PEM), and with `--carry` what it carries is
//! rebuilt there; the source is not changed. The events go to the register ledger.

use crate::cli::{GlobalArgs, RegisterArgs};
use crate::error::{Error, ExitCode};
use crate::lifecycle::{RegisterOptions, Registrar};
use crate::run::{self, FailedItems};

/// Runs `register`.
pub async fn run(global: &GlobalArgs, args: RegisterArgs) -> Result<ExitCode, Error> {
    let options = super::run_options(
        global,
        &args.manifest,
        &args.files,
        &args.pacing,
        &args.limits,
        args.canary,
        FailedItems::retry_if(args.retry_failed),
    );
    let register = RegisterOptions {
        targets: super::target_credentials(&args.targets)
            .expect("Cli::parse_checked requires target credentials"),
        status: args.status,
        carry: args.carry.then_some(args.on_conflict),
    };
    run::run::<Registrar>(options, register).await
}
