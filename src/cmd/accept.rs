//! `accept` (target side): accept the pending transfers addressed to the caller's account,
//! optionally activate them, attach policies and rebuild what they carried (`--carry`).
//! Rows addressed to other accounts are left to them: neither processed nor counted; with
//! `--target-role-template` (or `--target-profile-template`) every target account's rows are
//! accepted, each with its own credentials. The events go to the accept ledger.

use crate::cli::{AcceptArgs, GlobalArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::{AcceptOptions, Acceptor, CarryFrom};
use crate::run::{self, default_ledger, FailedItems};

/// Runs `accept`.
pub async fn run(global: &GlobalArgs, args: AcceptArgs) -> Result<ExitCode, Error> {
    let carry = args.carry.then(|| CarryFrom {
        ledger: args
            .from_ledger
            .clone()
            .unwrap_or_else(|| default_ledger(&args.manifest, LedgerKind::Transfer)),
        on_conflict: args.on_conflict,
    });
    let options = super::run_options(
        global,
        &args.manifest,
        &args.files,
        &args.pacing,
        &args.limits,
        // The circuit breaker still stops a run whose calls all fail the same way.
        0,
        FailedItems::retry_if(args.retry_failed),
    );
    let accept = AcceptOptions {
        set_as_active: args.set_as_active,
        attach_policies: args.attach_policies,
        carry,
        targets: super::other_targets(&args.targets),
    };
    run::run::<Acceptor>(options, accept).await
}
