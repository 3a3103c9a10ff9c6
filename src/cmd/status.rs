//! `status`: what the ledger says, without calling AWS.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::cmd::default_path;
use crate::error::{Error, ExitCode};
use crate::ledger::{Failure, ItemState, Ledger};
use crate::manifest::Manifest;
use crate::report::{stage_name, Counts};

#[derive(Serialize)]
struct StatusReport {
    ledger: PathBuf,
    manifest: Option<PathBuf>,
    runs: u32,
    counts: Counts,
    failures: Vec<FailureLine>,
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
pub fn run(global: &GlobalArgs, args: StatusArgs) -> Result<ExitCode, Error> {
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
    let report = StatusReport {
        ledger: ledger_path,
        manifest: manifest_path,
        runs: state.runs,
        counts,
        failures,
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
}
