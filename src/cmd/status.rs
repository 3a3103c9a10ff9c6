//! `status`: what the ledger says, without calling AWS; with `--reconcile`, also what AWS
//! says (read-only) about the items in doubt. It never takes the ledger's lock and never
//! writes it: the next run of the command records what AWS says.

use std::path::PathBuf;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::error::{Error, ExitCode};
use crate::ledger::{Ledger, LedgerKind, UndoHistory};
use crate::lifecycle::check::{self, Side};
use crate::manifest::Manifest;
use crate::output;
use crate::report::status::{is_ledger, DoubtLine, StatusReport};
use crate::run::default_ledger;
use crate::session::Session;

/// Runs `status`: counts per state from the ledger (and the manifest, for pending items).
pub async fn run(global: &GlobalArgs, args: StatusArgs) -> Result<ExitCode, Error> {
    let (ledger_path, manifest_path) = if is_ledger(&args.path) {
        (args.path.clone(), None)
    } else {
        let ledger = args
            .ledger
            .clone()
            .unwrap_or_else(|| default_ledger(&args.path, LedgerKind::Transfer));
        (ledger, Some(args.path.clone()))
    };
    let (header, state, warnings) = Ledger::read_only(&ledger_path, UndoHistory::Drop)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    // Without a manifest on the command line, use the one the ledger was started with.
    let manifest_path = manifest_path.or_else(|| {
        let p = PathBuf::from(&header.manifest);
        p.exists().then_some(p)
    });
    let manifest = match &manifest_path {
        Some(p) => Some((p.clone(), Manifest::load(p)?)),
        None => None,
    };
    let mut report = StatusReport::new(
        ledger_path,
        manifest.as_ref().map(|(p, m)| (p.clone(), m)),
        &state,
    );
    if args.reconcile && !report.in_doubt.is_empty() {
        ask_aws(global, header.kind, &mut report.in_doubt).await?;
    }
    output::emit(global.output, &report);
    Ok(ExitCode::Success)
}

/// Asks AWS, read-only, whether each open intent took effect: with the source account's
/// credentials for a transfer ledger, the target's for an accept ledger (those of this run).
async fn ask_aws(
    global: &GlobalArgs,
    kind: LedgerKind,
    lines: &mut [DoubtLine],
) -> Result<(), Error> {
    let session = Session::connect(super::default_settings(global)).await?;
    let regions: Vec<Option<String>> = lines.iter().map(|l| l.region.clone()).collect();
    let clients = session.own_clients(regions).await?;
    let side = match kind {
        LedgerKind::Transfer | LedgerKind::Retire | LedgerKind::Handoff => Side::Source,
        LedgerKind::Accept | LedgerKind::Register => Side::Target,
    };
    for line in lines.iter_mut() {
        let iot = clients.for_region(line.region.as_deref());
        let target = line.target_account.clone().unwrap_or_default();
        let finding = check::took_effect(
            side,
            iot,
            &line.certificate_id,
            &target,
            line.action,
            line.subject.as_deref(),
            line.group.as_deref(),
        )
        .await;
        match finding {
            Ok(f) => {
                line.next_run = Some(check::next_run(line.action, f.took_effect));
                line.took_effect = f.took_effect;
                line.aws_says = Some(f.seen);
            }
            Err(e) => {
                line.aws_says = Some(format!("nothing: {e}"));
                line.next_run = Some("the next run will ask again".into());
            }
        }
    }
    Ok(())
}
