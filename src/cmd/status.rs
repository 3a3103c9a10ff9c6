//! `status`: what the ledgers say, without calling AWS; with `--reconcile`, also what AWS
//! says (read-only) about the items in doubt. It never takes a ledger's lock and never
//! writes one: the next run of the command records what AWS says.
//!
//! Given a manifest, it reads every ledger of it (transfer, accept, register, retire, handoff: those
//! that exist beside it) and counts each certificate once, in the state of the ledger that
//! says most of it; given a ledger (or `--ledger`), that ledger alone.
//!
//! With `--devices`, it also asks AWS, read-only, whether each certificate's devices arrived
//! in their target (see [`crate::devices`]).

use std::path::PathBuf;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::devices;
use crate::error::{Error, ExitCode};
use crate::ledger::LedgerKind;
use crate::lifecycle::check::{self, Side};
use crate::manifest::Manifest;
use crate::output;
use crate::report::ledgers;
use crate::report::status::{is_ledger, DoubtLine, StatusReport};
use crate::session::Session;

/// Runs `status`: counts per state from the ledgers (and the manifest, for pending items).
pub async fn run(global: &GlobalArgs, args: StatusArgs) -> Result<ExitCode, Error> {
    let (read, manifest_path) = if is_ledger(&args.path) {
        (vec![ledgers::read_one(args.path.clone(), None)?], None)
    } else if let Some(ledger) = &args.ledger {
        let one = ledgers::read_one(ledger.clone(), None)?;
        (vec![one], Some(args.path.clone()))
    } else {
        // A manifest, then: one that cannot be read is said so before its ledgers are looked for.
        if !args.path.exists() {
            Manifest::load(&args.path)?;
        }
        let (read, missing) = ledgers::read(&args.path, &[])?;
        if read.is_empty() {
            let looked_for: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::Usage(format!(
                "no ledger of {} yet: {} not found (run transfer or register first, or pass --ledger)",
                args.path.display(),
                looked_for.join(", ")
            )));
        }
        (read, Some(args.path.clone()))
    };
    // Without a manifest on the command line, use the one the ledger was started with.
    let manifest_path = manifest_path.or_else(|| {
        let p = PathBuf::from(&read[0].header.manifest);
        p.exists().then_some(p)
    });
    let manifest = match &manifest_path {
        Some(p) => Some((p.clone(), Manifest::load(p)?)),
        None => None,
    };
    let mut report = StatusReport::new(&read, manifest.as_ref().map(|(p, m)| (p.clone(), m)))?;
    if args.reconcile && !report.in_doubt.is_empty() {
        ask_aws(global, &mut report.in_doubt).await?;
    }
    if let Some(options) = super::look_options(global, &args.devices) {
        let Some((path, manifest)) = &manifest else {
            return Err(Error::Usage(format!(
                "--devices needs the manifest: {} was started with {}, which is not there (name the manifest, and the ledger with --ledger)",
                report.ledger.display(),
                read[0].header.manifest
            )));
        };
        report.devices = Some(devices::look(path, manifest, options).await?);
    }
    output::emit(global.output, &report);
    Ok(super::exit_after_devices(report.devices.as_ref()))
}

/// Asks AWS, read-only, whether each open intent took effect, with the credentials of this
/// run: the source account's for a transfer or retire ledger's intents, a target's for an
/// accept or register ledger's.
async fn ask_aws(global: &GlobalArgs, lines: &mut [DoubtLine]) -> Result<(), Error> {
    let session = Session::connect(super::default_settings(global)).await?;
    let regions: Vec<Option<String>> = lines.iter().map(|l| l.region.clone()).collect();
    let clients = session.own_clients(regions).await?;
    for line in lines.iter_mut() {
        let side = match line.ledger {
            LedgerKind::Transfer | LedgerKind::Retire | LedgerKind::Handoff => Side::Source,
            LedgerKind::Accept | LedgerKind::Register => Side::Target,
        };
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
