//! What a run tells afterwards: the failure report (CSV, written atomically) and the summary
//! (text or one JSON object on stdout).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::error::{Error, ExitCode};
use crate::iot::OpCounts;
use crate::ledger::{ItemRecord, ItemState, LedgerState, Stage};
use crate::manifest::Manifest;
use crate::pacer::Operation;

/// Number of certificates in each state. Every manifest certificate is in exactly one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Pending transfer to its target (or found already pending to it).
    pub transferred: u64,
    /// Failed; listed in the failure report.
    pub failed: u64,
    /// Not reached yet.
    pub pending: u64,
    /// A mutating call whose outcome is unknown: the next run asks AWS first.
    pub in_doubt: u64,
    /// Accepted by the target.
    pub accepted: u64,
    /// Rejected by the target.
    pub rejected: u64,
    /// Transfer cancelled.
    pub cancelled: u64,
    /// Transfer cancelled and prepare undone.
    pub restored: u64,
}

impl Counts {
    /// Counts every manifest certificate by what the ledger says of it.
    pub fn from_ledger(manifest: &Manifest, state: &LedgerState) -> Counts {
        let mut c = Counts::default();
        let mut seen = 0u64;
        for (id, rec) in state.iter() {
            if !manifest.contains(id) {
                continue;
            }
            seen += 1;
            c.add_record(Some(rec));
        }
        c.pending += manifest.len() as u64 - seen;
        c
    }

    /// Counts every certificate the ledger mentions (when the manifest is not at hand).
    pub fn from_ledger_only(state: &LedgerState) -> Counts {
        let mut c = Counts::default();
        for (_, rec) in state.iter() {
            c.add_record(Some(rec));
        }
        c
    }

    /// Counts one certificate; `None` (the ledger does not mention it) is pending.
    pub fn add_record(&mut self, rec: Option<&ItemRecord>) {
        let Some(rec) = rec else {
            self.pending += 1;
            return;
        };
        if rec.open_intent.is_some() {
            self.in_doubt += 1;
            return;
        }
        match rec.state {
            ItemState::Started => self.pending += 1,
            ItemState::Transferred => self.transferred += 1,
            ItemState::Failed => self.failed += 1,
            ItemState::Cancelled => self.cancelled += 1,
            ItemState::Restored => self.restored += 1,
            ItemState::Accepted => self.accepted += 1,
            ItemState::Rejected => self.rejected += 1,
        }
    }
}

/// Calls and throttles of one operation, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    /// Requests sent.
    pub calls: u64,
    /// Throttled responses.
    pub throttled: u64,
    /// Other errors.
    pub errors: u64,
}

/// The end-of-run summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The command that ran.
    pub command: String,
    /// Every manifest certificate by state, after this run.
    pub counts: Counts,
    /// Items this run finished (any terminal state).
    pub processed_this_run: u64,
    /// Wall time of the run.
    pub elapsed_s: f64,
    /// processed_this_run / elapsed_s.
    pub items_per_s: f64,
    /// Set when the run stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Calls per operation.
    pub calls: BTreeMap<String, OpSummary>,
    /// The ledger.
    pub ledger: PathBuf,
    /// The failure report, when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_report: Option<PathBuf>,
    /// The exit code the process ends with.
    pub exit_code: i32,
}

impl Summary {
    /// Turns the call counters into the summary's shape.
    pub fn calls_from(counts: BTreeMap<Operation, OpCounts>) -> BTreeMap<String, OpSummary> {
        counts
            .into_iter()
            .map(|(op, c)| {
                (
                    op.name().to_string(),
                    OpSummary {
                        calls: c.calls,
                        throttled: c.throttled,
                        errors: c.errors,
                    },
                )
            })
            .collect()
    }

    /// Prints the summary on stdout in the chosen format.
    pub fn print(&self, format: OutputFormat) {
        let mut out = std::io::stdout().lock();
        match format {
            OutputFormat::Json => {
                let _ = serde_json::to_writer(&mut out, self);
                let _ = writeln!(out);
            }
            OutputFormat::Text => {
                let c = &self.counts;
                let _ = writeln!(
                    out,
                    "{} summary{}",
                    self.command,
                    self.stopped
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                );
                let mut line = format!(
                    "  transferred {}  failed {}  pending {}  in doubt {}",
                    c.transferred, c.failed, c.pending, c.in_doubt
                );
                for (name, n) in [
                    ("accepted", c.accepted),
                    ("rejected", c.rejected),
                    ("cancelled", c.cancelled),
                    ("restored", c.restored),
                ] {
                    if n > 0 {
                        line.push_str(&format!("  {name} {n}"));
                    }
                }
                let _ = writeln!(out, "{line}");
                let _ = writeln!(
                    out,
                    "  this run: {} items in {:.1}s ({:.1}/s)",
                    self.processed_this_run, self.elapsed_s, self.items_per_s
                );
                if !self.calls.is_empty() {
                    let _ = writeln!(
                        out,
                        "  {:<28} {:>8} {:>10} {:>8}",
                        "operation", "calls", "throttled", "errors"
                    );
                    for (op, s) in &self.calls {
                        let _ = writeln!(
                            out,
                            "  {:<28} {:>8} {:>10} {:>8}",
                            op, s.calls, s.throttled, s.errors
                        );
                    }
                }
                let _ = writeln!(out, "  ledger: {}", self.ledger.display());
                if let Some(p) = &self.failure_report {
                    let _ = writeln!(out, "  failure report: {}", p.display());
                }
                let hint = match self.exit_code {
                    x if x == ExitCode::ItemsFailed.code() => Some("some items failed: see the failure report; fix them and run again with --retry-failed"),
                    x if x == ExitCode::Stopped.code() => Some("not finished: run the same command again to resume"),
                    _ => None,
                };
                if let Some(h) = hint {
                    let _ = writeln!(out, "  {h}");
                }
            }
        }
    }
}

/// Header of the failure report.
pub const FAILURE_REPORT_HEADER: [&str; 7] = [
    "certificate_id",
    "target_account",
    "stage",
    "error_code",
    "http_status",
    "message",
    "attempts",
];

/// Writes the failure report of every failed manifest certificate (sorted by id) atomically:
/// to a temporary file in the same directory, synced, then renamed over `path`.
/// Returns the number of rows.
pub fn write_failure_report(
    path: &Path,
    manifest: &Manifest,
    state: &LedgerState,
) -> Result<usize, Error> {
    let mut rows: Vec<(&str, &ItemRecord)> = state
        .iter()
        .filter(|(id, rec)| {
            rec.state == ItemState::Failed && rec.open_intent.is_none() && manifest.contains(id)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir, path).map_err(io)?;
    {
        let mut w = csv::Writer::from_writer(&mut tmp.1);
        w.write_record(FAILURE_REPORT_HEADER)
            .map_err(|e| io(e.into()))?;
        for (id, rec) in &rows {
            let f = rec.failure.as_deref();
            let stage = f.map(|f| stage_name(f.stage)).unwrap_or("");
            let status = f
                .and_then(|f| f.http_status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let attempts = f.map(|f| f.attempts.to_string()).unwrap_or_default();
            w.write_record([
                neutralise(id).as_ref(),
                neutralise(rec.target.as_deref().unwrap_or("")).as_ref(),
                stage,
                neutralise(f.map(|f| f.error_code.as_str()).unwrap_or("")).as_ref(),
                status.as_str(),
                neutralise(f.map(|f| f.message.as_str()).unwrap_or("")).as_ref(),
                attempts.as_str(),
            ])
            .map_err(|e| io(e.into()))?;
        }
        w.flush().map_err(io)?;
    }
    tmp.1.sync_all().map_err(io)?;
    std::fs::rename(&tmp.0, path).map_err(io)?;
    Ok(rows.len())
}

fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let f = std::fs::File::create(&tmp)?;
    Ok((tmp, f))
}

/// The stage as the report spells it.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Prepare => "prepare",
        Stage::Transfer => "transfer",
        Stage::Cancel => "cancel",
        Stage::Restore => "restore",
        Stage::Accept => "accept",
        Stage::Reject => "reject",
    }
}

/// Makes a cell safe to open in a spreadsheet: a leading `=`, `+`, `-`, `@`, tab or CR would
/// be run as a formula, so such cells get a leading apostrophe.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("+1"), "'+1");
        assert_eq!(neutralise("-2"), "'-2");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("plain text"), "plain text");
        assert_eq!(neutralise(""), "");
    }
}
