//! What `status` shows of a ledger: the counts per state, the failures, and the items in
//! doubt (with `--reconcile`, what AWS says of each).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ledger::{Failure, Header, ItemState, LedgerState, Stage};
use crate::manifest::Manifest;
use crate::output::Render;

use super::Counts;

/// Lines listed per section in the text output (the JSON output has them all).
const TEXT_LIST_LIMIT: usize = 50;

/// The status of one ledger.
#[derive(Serialize)]
pub struct StatusReport {
    /// The ledger read.
    pub ledger: PathBuf,
    /// The manifest counted against, when there is one.
    pub manifest: Option<PathBuf>,
    /// Runs recorded.
    pub runs: u32,
    /// Certificates per state.
    pub counts: Counts,
    /// The failed certificates, by id.
    pub failures: Vec<FailureLine>,
    /// The certificates in doubt, by id.
    pub in_doubt: Vec<DoubtLine>,
}

/// A failed certificate.
#[derive(Serialize)]
pub struct FailureLine {
    /// Certificate id.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: Option<String>,
    /// Where it failed.
    pub stage: Stage,
    /// AWS's error code or the tool's.
    pub error_code: String,
    /// Why.
    pub message: String,
}

/// An item with an intent left open, and (with `--reconcile`) what AWS says about it.
#[derive(Serialize)]
pub struct DoubtLine {
    /// Certificate id.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: Option<String>,
    /// Region of the certificate, when the ledger names one.
    #[serde(skip)]
    pub region: Option<String>,
    /// Stage of the open intent.
    pub stage: Stage,
    /// The call whose outcome is unknown.
    pub action: crate::ledger::Action,
    /// The policy or thing it named.
    #[serde(skip)]
    pub subject: Option<String>,
    /// The thing group it named (carry).
    #[serde(skip)]
    pub group: Option<String>,
    /// What AWS shows now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_says: Option<String>,
    /// Whether the call took effect, when AWS can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_effect: Option<bool>,
    /// What the next run will record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

/// True when the file's first line is a ledger header.
pub fn is_ledger(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    if std::io::BufReader::new(f).read_line(&mut first).is_err() {
        return false;
    }
    serde_json::from_str::<Header>(first.trim_end()).is_ok()
}

impl StatusReport {
    /// The status of `state` (read from `ledger`), counted against `manifest` when there is
    /// one (pending certificates can only be counted with it).
    pub fn new(
        ledger: PathBuf,
        manifest: Option<(PathBuf, &Manifest)>,
        state: &LedgerState,
    ) -> StatusReport {
        let in_manifest = |id: &str| manifest.as_ref().is_none_or(|(_, m)| m.contains(id));
        let counts = match &manifest {
            Some((_, m)) => Counts::from_ledger(m, state),
            None => Counts::from_ledger_only(state),
        };
        // Failures and open intents are details: only the few records with some are read.
        let mut failures: Vec<FailureLine> = state
            .with_details()
            .filter(|(id, r)| r.state == ItemState::Failed && in_manifest(id))
            .map(|(id, r)| {
                let f = r.failure.cloned().unwrap_or(Failure {
                    stage: Stage::Transfer,
                    error_code: String::new(),
                    http_status: None,
                    message: String::new(),
                    attempts: 0,
                    retryable: false,
                    rolled_back: None,
                });
                FailureLine {
                    certificate_id: id.to_string(),
                    target_account: r.target.map(str::to_owned),
                    stage: f.stage,
                    error_code: f.error_code,
                    message: f.message,
                }
            })
            .collect();
        failures.sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
        let mut in_doubt: Vec<DoubtLine> = state
            .with_details()
            .filter(|(id, _)| in_manifest(id))
            .filter_map(|(id, r)| {
                let open = r.open_intent?;
                Some(DoubtLine {
                    certificate_id: id.to_string(),
                    target_account: r.target.map(str::to_owned),
                    region: r.region.map(str::to_owned),
                    stage: open.stage,
                    action: open.action,
                    subject: open.subject.clone(),
                    group: open.group.clone(),
                    aws_says: None,
                    took_effect: None,
                    next_run: None,
                })
            })
            .collect();
        in_doubt.sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
        StatusReport {
            ledger,
            manifest: manifest.map(|(p, _)| p),
            runs: state.runs,
            counts,
            failures,
            in_doubt,
        }
    }
}

impl Render for StatusReport {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let c = &self.counts;
        writeln!(
            out,
            "ledger {} ({})",
            self.ledger.display(),
            crate::output::count(self.runs, "run")
        )?;
        if self.manifest.is_none() {
            writeln!(
                out,
                "  (manifest not found: pending items cannot be counted)"
            )?;
        }
        writeln!(
            out,
            "  transferred {}  failed {}  pending {}  in doubt {}  accepted {}  rejected {}  cancelled {}  restored {}",
            c.transferred, c.failed, c.pending, c.in_doubt, c.accepted, c.rejected, c.cancelled, c.restored
        )?;
        if !self.failures.is_empty() {
            writeln!(out, "  failures:")?;
            for f in self.failures.iter().take(TEXT_LIST_LIMIT) {
                writeln!(
                    out,
                    "    {} -> {}: {} {}: {}",
                    f.certificate_id,
                    f.target_account.as_deref().unwrap_or("?"),
                    f.stage,
                    f.error_code,
                    f.message
                )?;
            }
            if self.failures.len() > TEXT_LIST_LIMIT {
                writeln!(
                    out,
                    "    ... and {} more (see the failure report)",
                    self.failures.len() - TEXT_LIST_LIMIT
                )?;
            }
        }
        if !self.in_doubt.is_empty() {
            writeln!(
                out,
                "  in doubt (a call whose outcome is unknown; the next run asks AWS first):"
            )?;
            for d in self.in_doubt.iter().take(TEXT_LIST_LIMIT) {
                let target = d.target_account.as_deref().unwrap_or("?");
                match (&d.aws_says, &d.next_run) {
                    (Some(says), Some(next)) => writeln!(
                        out,
                        "    {} -> {target}: {} {} — AWS says {says}; {next}",
                        d.certificate_id, d.stage, d.action
                    )?,
                    _ => writeln!(
                        out,
                        "    {} -> {target}: {} {} (status --reconcile asks AWS)",
                        d.certificate_id, d.stage, d.action
                    )?,
                }
            }
            if self.in_doubt.len() > TEXT_LIST_LIMIT {
                writeln!(
                    out,
                    "    ... and {} more",
                    self.in_doubt.len() - TEXT_LIST_LIMIT
                )?;
            }
        }
        Ok(())
    }
}
