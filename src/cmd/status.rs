//! `status`: what the ledger says, without calling AWS; with `--reconcile`, also what AWS
//! says (read-only) about the items in doubt. It never takes the ledger's lock and never
//! writes it: the next run of the command records what AWS says.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use std::collections::HashMap;
use std::sync::Arc;

use crate::aws;
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::cmd::reconcile::{self, action_name};
use crate::cmd::{aws_options, default_path};
use crate::error::{Error, ExitCode};
use crate::iot::{self, CallContext, Iot, OutgoingIndex};
use crate::ledger::{Failure, ItemState, Ledger, LedgerKind, LedgerState};
use crate::manifest::Manifest;
use crate::pacer::{Pacer, RateSettings, Scope};
use crate::report::{stage_name, Counts};
use crate::retry::RetryPolicy;

#[derive(Serialize)]
struct StatusReport {
    ledger: PathBuf,
    manifest: Option<PathBuf>,
    runs: u32,
    counts: Counts,
    failures: Vec<FailureLine>,
    in_doubt: Vec<DoubtLine>,
}

/// An item with an intent left open, and (with `--reconcile`) what AWS says about it.
#[derive(Serialize)]
struct DoubtLine {
    certificate_id: String,
    target_account: Option<String>,
    stage: &'static str,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws_says: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    took_effect: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run: Option<String>,
}

#[derive(Serialize)]
struct FailureLine {
    certificate_id: String,
    target_account: Option<String>,
    stage: &'static str,
    error_code: String,
    message: String,
}

/// True when the file's first line is a ledger header.
fn is_ledger(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    if std::io::BufReader::new(f).read_line(&mut first).is_err() {
        return false;
    }
    serde_json::from_str::<crate::ledger::Header>(first.trim_end()).is_ok()
}

/// Runs `status`: counts per state from the ledger (and the manifest, for pending items).
pub async fn run(global: &GlobalArgs, args: StatusArgs) -> Result<ExitCode, Error> {
    let (ledger_path, manifest_path) = if is_ledger(&args.path) {
        (args.path.clone(), None)
    } else {
        let ledger = args
            .ledger
            .clone()
            .unwrap_or_else(|| default_path(&args.path, "ledger.jsonl"));
        (ledger, Some(args.path.clone()))
    };
    let (header, state, warnings) = Ledger::read_only(&ledger_path, false)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    // Without a manifest on the command line, use the one the ledger was started with.
    let manifest_path = manifest_path.or_else(|| {
        let p = PathBuf::from(&header.manifest);
        p.exists().then_some(p)
    });
    let manifest = match &manifest_path {
        Some(p) => Some(Manifest::load(p)?),
        None => None,
    };
    let counts = match &manifest {
        Some(m) => Counts::from_ledger(m, &state),
        None => Counts::from_ledger_only(&state),
    };
    let mut failures: Vec<FailureLine> = state
        .iter()
        .filter(|(id, r)| {
            r.state == ItemState::Failed
                && manifest.as_ref().map(|m| m.contains(id)).unwrap_or(true)
        })
        .map(|(id, r)| {
            let f = r.failure.as_deref().cloned().unwrap_or(Failure {
                stage: crate::ledger::Stage::Transfer,
                error_code: String::new(),
                http_status: None,
                message: String::new(),
                attempts: 0,
                retryable: false,
            });
            FailureLine {
                certificate_id: id.to_string(),
                target_account: r.target.clone(),
                stage: stage_name(f.stage),
                error_code: f.error_code,
                message: f.message,
            }
        })
        .collect();
    failures.sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
    let mut in_doubt: Vec<DoubtLine> = state
        .iter()
        .filter(|(id, _)| manifest.as_ref().map(|m| m.contains(id)).unwrap_or(true))
        .filter_map(|(id, r)| {
            let open = r.open_intent.as_ref()?;
            Some(DoubtLine {
                certificate_id: id.to_string(),
                target_account: r.target.clone(),
                stage: stage_name(open.stage),
                action: action_name(open.action),
                aws_says: None,
                took_effect: None,
                next_run: None,
            })
        })
        .collect();
    in_doubt.sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
    if args.reconcile && !in_doubt.is_empty() {
        ask_aws(global, header.kind, &state, &mut in_doubt).await?;
    }
    let report = StatusReport {
        ledger: ledger_path,
        manifest: manifest_path,
        runs: state.runs,
        counts,
        failures,
        in_doubt,
    };
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string(&report).expect("status serialises")
        ),
        OutputFormat::Text => print_text(&report),
    }
    Ok(ExitCode::Success)
}

fn print_text(r: &StatusReport) {
    let c = &r.counts;
    println!("ledger {} ({} runs)", r.ledger.display(), r.runs);
    if r.manifest.is_none() {
        println!("  (manifest not found: pending items cannot be counted)");
    }
    println!(
        "  transferred {}  failed {}  pending {}  in doubt {}  accepted {}  rejected {}  cancelled {}  restored {}",
        c.transferred, c.failed, c.pending, c.in_doubt, c.accepted, c.rejected, c.cancelled, c.restored
    );
    if !r.failures.is_empty() {
        println!("  failures:");
        for f in r.failures.iter().take(50) {
            println!(
                "    {} -> {}: {} {}: {}",
                f.certificate_id,
                f.target_account.as_deref().unwrap_or("?"),
                f.stage,
                f.error_code,
                f.message
            );
        }
        if r.failures.len() > 50 {
            println!(
                "    ... and {} more (see the failure report)",
                r.failures.len() - 50
            );
        }
    }
    if !r.in_doubt.is_empty() {
        println!("  in doubt (a call whose outcome is unknown; the next run asks AWS first):");
        for d in r.in_doubt.iter().take(50) {
            let target = d.target_account.as_deref().unwrap_or("?");
            match (&d.aws_says, &d.next_run) {
                (Some(says), Some(next)) => {
                    println!(
                        "    {} -> {target}: {} {} — AWS says {says}; {next}",
                        d.certificate_id, d.stage, d.action
                    )
                }
                _ => println!(
                    "    {} -> {target}: {} {} (status --reconcile asks AWS)",
                    d.certificate_id, d.stage, d.action
                ),
            }
        }
        if r.in_doubt.len() > 50 {
            println!("    ... and {} more", r.in_doubt.len() - 50);
        }
    }
}

/// Asks AWS, read-only, whether each open intent took effect: with the source account's
/// credentials for a transfer ledger, the target's for an accept ledger (those of this run).
async fn ask_aws(
    global: &GlobalArgs,
    kind: LedgerKind,
    state: &LedgerState,
    lines: &mut [DoubtLine],
) -> Result<(), Error> {
    let conf = aws::load(&aws_options(global)?, None).await?;
    let ctx = CallContext::new(
        Arc::new(Pacer::new(RateSettings::default())),
        RetryPolicy::default(),
    );
    let account = iot::caller_account(&aws::sts_client(&conf), &aws::region_of(&conf), &ctx)
        .await
        .map_err(|f| {
            Error::Aws(format!(
                "cannot identify the AWS account of the credentials (STS GetCallerIdentity): {f}"
            ))
        })?;
    let default_region = aws::region_of(&conf);
    let mut clients: HashMap<String, (Iot, OutgoingIndex)> = HashMap::new();
    for line in lines.iter_mut() {
        let Some(rec) = state.get(&line.certificate_id) else {
            continue;
        };
        let Some(open) = rec.open_intent.as_ref() else {
            continue;
        };
        let region = rec.region.clone().unwrap_or_else(|| default_region.clone());
        let (iot, outgoing) = clients.entry(region.clone()).or_insert_with(|| {
            let iot = Iot::new(
                aws::iot_client(&conf, Some(&region)),
                Scope::new(account.clone(), region.clone()),
                ctx.clone(),
            );
            let outgoing = OutgoingIndex::new(iot.clone());
            (iot, outgoing)
        });
        let target = rec.target.clone().unwrap_or_default();
        let subject = open.subject.as_deref();
        let finding = match kind {
            LedgerKind::Transfer => {
                reconcile::source_check(
                    iot,
                    outgoing,
                    &line.certificate_id,
                    &target,
                    open.action,
                    subject,
                )
                .await
            }
            LedgerKind::Accept => {
                reconcile::target_check(iot, &line.certificate_id, open.action, subject).await
            }
        };
        match finding {
            Ok(f) => {
                line.next_run = Some(reconcile::next_run(open.action, f.took_effect));
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
