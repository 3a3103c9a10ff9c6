//! `transfer`: prepare -> transfer -> record for every certificate of the manifest, and with
//! `--accept-profile(-template)` or `--accept-role-template` the accept in the target account right after.

use crate::cli::{GlobalArgs, TransferArgs};
use crate::error::{Error, ExitCode};
use crate::lifecycle::{
    MigrateOptions, Migrator, PrepareSteps, Rollback, TransferAccept, TransferAcceptOptions,
};
use crate::run::{self, FailedItems};
use crate::session::TargetCredentials;

/// Runs `transfer` (`--dry-run` is dispatched to `plan` before this).
pub async fn run(global: &GlobalArgs, args: TransferArgs) -> Result<ExitCode, Error> {
    let options = super::run_options(
        global,
        &args.manifest,
        &args.files,
        &args.pacing,
        &args.limits,
        args.canary,
        FailedItems::retry_if(args.retry_failed),
    );
    let migrate = MigrateOptions {
        steps: PrepareSteps {
            deactivate: args.deactivate,
            detach_policies: args.detach_policies,
            detach_things: args.detach_things,
        },
        rollback: if args.no_rollback {
            Rollback::Never
        } else {
            Rollback::OnFailure
        },
        propagation_wait: args.propagation_wait,
        carry: args.carry,
        require_handoff: args.require_handoff,
    };
    // End-to-end mode: each transfer is accepted right away with the target's credentials.
    let targets = TargetCredentials::from_flags(
        args.accept_profile.as_deref(),
        args.accept_profile_template.as_deref(),
        args.accept_role_template.as_deref(),
    );
    match targets {
        None => run::run::<Migrator>(options, migrate).await,
        Some(targets) => {
            let both = TransferAcceptOptions {
                migrate,
                targets,
                set_as_active: args.set_as_active,
                on_conflict: args.on_conflict,
            };
            run::run::<TransferAccept>(options, both).await
        }
    }
}
