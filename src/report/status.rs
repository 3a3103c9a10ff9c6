//! What `status` shows: the counts per state of a manifest's ledgers (each certificate once,
//! in its furthest ledger's state, and each ledger's own counts), the failures, the
//! certificates waiting for an option, and the items in doubt (with `--reconcile`, what AWS
//! says of each); with `--devices`, whether each certificate's devices arrived.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::devices::DevicesReport;
use crate::error::Error;
use crate::ledger::{Header, ItemRecord, ItemState, LedgerKind, Stage, Wait};
use crate::manifest::Manifest;
use crate::output::Render;

use super::ledgers::{furthest, ReadLedger};
use super::migration::{runs, LedgerCounts};
use super::Counts;

/// Lines listed per section in the text output (the JSON output has them all).
const TEXT_LIST_LIMIT: usize = 50;

/// The status of a manifest's ledgers (or of one ledger).
#[derive(Serialize)]
pub struct StatusReport {
    /// The first ledger read (the only one, when one was named).
    pub ledger: PathBuf,
    /// The manifest counted against, when there is one.
    pub manifest: Option<PathBuf>,
    /// Runs recorded in that first ledger.
    pub runs: u32,
    /// Certificates per state: each once, in the state of the ledger that says most of it.
    pub counts: Counts,
    /// Each ledger read, with its own counts.
    pub ledgers: Vec<LedgerCounts>,
    /// The failed certificates, by id.
    pub failures: Vec<FailureLine>,
    /// The certificates waiting for an option, by id.
    pub waiting: Vec<FailureLine>,
    /// The certificates in doubt, by id.
    pub in_doubt: Vec<DoubtLine>,
    /// With `--devices`: whether each certificate's devices arrived (AWS, read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<DevicesReport>,
}

/// A failed (or waiting) certificate.
#[derive(Serialize)]
pub struct FailureLine {
    /// Certificate id.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: Option<String>,
    /// The ledger that says so.
    pub ledger: LedgerKind,
    /// Where it failed.
    pub stage: Stage,
    /// AWS's error code or the tool's.
    pub error_code: String,
    /// What it waits for (waiting ones only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<Wait>,
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
    /// The ledger with the open intent (whose side `--reconcile` asks with).
    pub ledger: LedgerKind,
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
    /// The status of `ledgers` (at least one), counted against `manifest` when there is one
    /// (pending certificates can only be counted with it; without it, the one ledger alone).
    pub fn new(
        ledgers: &[ReadLedger],
        manifest: Option<(PathBuf, &Manifest)>,
    ) -> Result<StatusReport, Error> {
        let first = &ledgers[0];
        let mut report = StatusReport {
            ledger: first.path.clone(),
            manifest: manifest.as_ref().map(|(p, _)| p.clone()),
            runs: first.state.runs,
            counts: Counts::default(),
            ledgers: Vec::new(),
            failures: Vec::new(),
            waiting: Vec::new(),
            in_doubt: Vec::new(),
            devices: None,
        };
        match &manifest {
            Some((_, m)) => {
                for l in ledgers {
                    report.ledgers.push(LedgerCounts {
                        kind: l.kind,
                        path: l.path.clone(),
                        runs: l.state.runs,
                        counts: Counts::from_ledger(m, &l.state),
                    });
                }
                // Each certificate once, from the ledger that says most of it; failures and
                // open intents are details, so only the few records with some are looked at.
                for row in m.rows()? {
                    let row = row?;
                    let records: Vec<(LedgerKind, Option<ItemRecord>)> = ledgers
                        .iter()
                        .map(|l| (l.kind, l.state.get(&row.certificate_id)))
                        .collect();
                    let found = furthest(&records);
                    report.counts.add_record(found.as_ref().map(|(_, r)| r));
                    if let Some((kind, rec)) = found {
                        report.note(kind, &row.certificate_id, rec);
                    }
                }
            }
            None => {
                report.counts = Counts::from_ledger_only(&first.state);
                report.ledgers.push(LedgerCounts {
                    kind: first.kind,
                    path: first.path.clone(),
                    runs: first.state.runs,
                    counts: report.counts,
                });
                for (id, rec) in first.state.with_details() {
                    report.note(first.kind, &id, rec);
                }
            }
        }
        report
            .failures
            .sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
        report
            .waiting
            .sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
        report
            .in_doubt
            .sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
        Ok(report)
    }

    /// Lists a certificate that failed, waits, or is in doubt, as `kind`'s ledger says.
    fn note(&mut self, kind: LedgerKind, id: &str, r: ItemRecord) {
        if let Some(open) = r.open_intent {
            self.in_doubt.push(DoubtLine {
                certificate_id: id.to_string(),
                target_account: r.target.map(str::to_owned),
                ledger: kind,
                region: r.region.map(str::to_owned),
                stage: open.stage,
                action: open.action,
                subject: open.subject.clone(),
                group: open.group.clone(),
                aws_says: None,
                took_effect: None,
                next_run: None,
            });
            return;
        }
        if !matches!(r.state, ItemState::Failed | ItemState::Waiting) {
            return;
        }
        let line = FailureLine {
            certificate_id: id.to_string(),
            target_account: r.target.map(str::to_owned),
            ledger: kind,
            stage: r.failure.map_or(Stage::Transfer, |f| f.stage),
            error_code: r.failure.map(|f| f.error_code.clone()).unwrap_or_default(),
            waiting_for: r.failure.and_then(|f| f.waiting),
            message: r.failure.map(|f| f.message.clone()).unwrap_or_default(),
        };
        if r.state == ItemState::Waiting {
            self.waiting.push(line);
        } else {
            self.failures.push(line);
        }
    }
}

impl Render for StatusReport {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match &self.manifest {
            Some(m) if self.ledgers.len() > 1 => {
                writeln!(out, "{} ({} ledgers)", m.display(), self.ledgers.len())?;
                writeln!(out, "  {}", line_of(&self.counts))?;
                for l in &self.ledgers {
                    writeln!(
                        out,
                        "  {} ledger {} ({}): {}",
                        l.kind,
                        l.path.display(),
                        runs(l.runs),
                        line_of(&l.counts)
                    )?;
                }
            }
            _ => {
                writeln!(
                    out,
                    "ledger {} ({})",
                    self.ledger.display(),
                    runs(self.runs)
                )?;
                if self.manifest.is_none() {
                    writeln!(
                        out,
                        "  (manifest not found: pending items cannot be counted)"
                    )?;
                }
                writeln!(out, "  {}", line_of(&self.counts))?;
            }
        }
        if !self.waiting.is_empty() {
            writeln!(
                out,
                "  waiting for an option (nothing was changed; the same command with it takes them):"
            )?;
            for f in self.waiting.iter().take(TEXT_LIST_LIMIT) {
                writeln!(
                    out,
                    "    {} -> {}: {} {}: {}",
                    f.certificate_id,
                    f.target_account.as_deref().unwrap_or("?"),
                    f.stage,
                    f.waiting_for.map_or("", |w| w.as_str()),
                    f.message
                )?;
            }
            if self.waiting.len() > TEXT_LIST_LIMIT {
                writeln!(
                    out,
                    "    ... and {} more (see the failure report)",
                    self.waiting.len() - TEXT_LIST_LIMIT
                )?;
            }
        }
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
        if let Some(d) = &self.devices {
            d.write_text(out)?;
        }
        Ok(())
    }
}

/// The core states always, the others when some certificate is in them:
/// `transferred 3  failed 0  pending 1  in doubt 0  accepted 2`.
fn line_of(c: &Counts) -> String {
    let mut line = format!(
        "transferred {}  failed {}  pending {}  in doubt {}",
        c.transferred, c.failed, c.pending, c.in_doubt
    );
    for (name, n) in [
        ("waiting", c.waiting),
        ("accepted", c.accepted),
        ("rejected", c.rejected),
        ("cancelled", c.cancelled),
        ("restored", c.restored),
        ("registered", c.registered),
        ("retired", c.retired),
        ("handed off", c.handed_off),
    ] {
        if n > 0 {
            line.push_str(&format!("  {name} {n}"));
        }
    }
    line
}
