//! `verify`: read-only on both sides, one verdict per certificate; exit 0 when every
//! certificate works in its target, 3 otherwise, 4 when a signal stopped it.

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::devices::{self, Lookup};
use crate::error::{Error, ExitCode};
use crate::iot::AccountClients;
use crate::lifecycle::retire::require_connectivity_indexing;
use crate::manifest::Manifest;
use crate::output;
use crate::session::Session;
use crate::stop::Stop;
use crate::verdict::{self, Sweep, VerdictCsv};
use crate::verify::{verify, Sides};

/// Runs `verify`.
pub async fn run(global: &GlobalArgs, args: VerifyArgs) -> Result<ExitCode, Error> {
    let settings = super::settings(global, &args.pacing);
    let manifest = Manifest::load(&args.manifest)?;
    let targets = super::target_credentials(&args.targets)
        .expect("Cli::parse_checked requires target credentials");
    for w in manifest.warnings() {
        tracing::warn!("{}:{w}", args.manifest.display());
    }
    // Credentials first (the profile, then every target's role): a mistake there is the one
    // line the operator sees.
    let session = Session::connect(settings).await?;
    let source = session.own_clients(manifest.regions()).await?;
    let targets = session
        .target_clients(&manifest, &targets, "--target-profile")
        .await?;
    // Then, before anything is judged: connectivity the targets do not index is never
    // guessed.
    if args.require_connected {
        require_connectivity_indexing(&targets, "--require-connected").await?;
    }
    let out = match &args.out {
        Some(p) => Some(VerdictCsv::create(p, "verify CSV")?),
        None => None,
    };
    // What the certificates carried: from the transfer ledger, or register's.
    let given = args.from_ledger.as_deref();
    let snapshots = devices::snapshots(&args.manifest, &manifest, given)?.unwrap_or_else(|| {
        tracing::warn!(
            "no ledger at {}: checking ownership and status only (what the certificates carried is not known)",
            devices::snapshot_ledger(&args.manifest, given).display()
        );
        Default::default()
    });
    // A handed-off manifest: each thing's execution of its handoff job is shown.
    let sides = Sides {
        source: &source,
        targets: AccountClients::by_account(targets),
        snapshots,
        lookup: Lookup {
            handoff: devices::handoff_of(&args.manifest, &manifest),
            connectivity: args.require_connected,
        },
    };
    let sweep = Sweep::start(
        args.pacing.concurrency,
        super::progress(global),
        Stop::new(None, verdict::GRACE),
    );
    let report = verify(&args.manifest, &manifest, &sides, &sweep, out).await?;
    output::emit(global.output, &report);
    Ok(if report.stopped.is_some() {
        ExitCode::Stopped
    } else if report.all_ok() {
        ExitCode::Success
    } else {
        ExitCode::ItemsFailed
    })
}
