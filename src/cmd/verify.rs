//! `verify`: read-only on both sides, one verdict per certificate; exit 0 when every
//! certificate works in its target, 3 otherwise.

use std::collections::HashMap;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::error::{Error, ExitCode};
use crate::files::{check_writable, Writing};
use crate::iot::AccountClients;
use crate::ledger::{read_snapshots, LedgerKind};
use crate::manifest::Manifest;
use crate::output;
use crate::progress::Progress;
use crate::run::default_ledger;
use crate::session::Session;
use crate::verify::{verify, Sides};

/// Runs `verify`.
pub async fn run(global: &GlobalArgs, args: VerifyArgs) -> Result<ExitCode, Error> {
    let settings = super::settings(global, &args.pacing);
    let manifest = Manifest::load(&args.manifest)?;
    let profiles = super::target_profiles(&args.targets).expect("clap requires target credentials");
    if let Some(p) = &args.out {
        check_writable(p, "verify CSV", Writing::Replace)?;
    }
    // What the certificates carried: from the transfer ledger, or register's.
    let ledger = args.from_ledger.clone().unwrap_or_else(|| {
        let transfer = default_ledger(&args.manifest, LedgerKind::Transfer);
        let register = default_ledger(&args.manifest, LedgerKind::Register);
        if !transfer.exists() && register.exists() {
            register
        } else {
            transfer
        }
    });
    let snapshots = if ledger.exists() || args.from_ledger.is_some() {
        read_snapshots(&ledger, |id| manifest.contains(id))?
    } else {
        tracing::warn!(
            "no ledger at {}: checking ownership and status only (what the certificates carried is not known)",
            ledger.display()
        );
        HashMap::new()
    };
    let session = Session::connect(settings).await?;
    let source = session.own_clients(manifest.regions()).await?;
    let targets = session
        .target_clients(&manifest, &profiles, "--target-profile")
        .await?;
    let sides = Sides {
        source: &source,
        targets: AccountClients::by_account(targets),
        snapshots,
    };
    let progress = Progress::start(&super::progress(global), manifest.len() as u64, "verifying");
    let report = verify(
        &args.manifest,
        &manifest,
        &sides,
        args.pacing.concurrency,
        args.out.as_deref(),
        &progress.tally(),
    )
    .await;
    progress.finish();
    let report = report?;
    output::emit(global.output, &report);
    Ok(if report.all_ok() {
        ExitCode::Success
    } else {
        ExitCode::ItemsFailed
    })
}
