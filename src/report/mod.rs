//! What a run tells afterwards: the counts per state, the summary on stdout, the failure
//! report ([`failures`]), a manifest's ledgers read together ([`ledgers`]), what `status`
//! shows of them ([`status`]), and the migration report of all ledgers, as text and as a
//! page ([`migration`], [`html`]).

pub mod failures;
pub mod html;
pub mod ledgers;
pub mod migration;
pub mod status;

pub use failures::{neutralise, write_failure_report, FAILURE_REPORT_HEADER};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::ExitCode;
use crate::iot::OpCounts;
use crate::ledger::{ItemRecord, ItemState, LedgerState, Wait};
use crate::manifest::Manifest;
use crate::output::Render;
use crate::pacer::Operation;

/// Number of certificates in each state. Every manifest certificate is in exactly one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Pending transfer to its target (or found already pending to it).
    pub transferred: u64,
    /// Failed; listed in the failure report.
    pub failed: u64,
    /// Refused before any change, waiting for an option (a flag, a policy in the target,
    /// the right account); listed in the failure report with what each needs.
    pub waiting: u64,
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
    /// Registered in the target (`register`).
    pub registered: u64,
    /// The source's copy retired (`retire`).
    pub retired: u64,
    /// Its devices were sent their target's endpoint (`handoff`).
    pub handed_off: u64,
}

impl Counts {
    /// Counts every manifest certificate by what the ledger says of it.
    pub fn from_ledger(manifest: &Manifest, state: &LedgerState) -> Counts {
        let mut c = Counts::default();
        let mut seen = 0u64;
        for (id, rec) in state.iter() {
            if !manifest.contains(&id) {
                continue;
            }
            seen += 1;
            c.add_record(Some(&rec));
        }
        c.pending += manifest.len() as u64 - seen;
        c
    }

    /// Counts every certificate the ledger mentions (when the manifest is not at hand).
    pub fn from_ledger_only(state: &LedgerState) -> Counts {
        let mut c = Counts::default();
        for (_, rec) in state.iter() {
            c.add_record(Some(&rec));
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
            ItemState::Waiting => self.waiting += 1,
            ItemState::Cancelled => self.cancelled += 1,
            ItemState::Restored => self.restored += 1,
            ItemState::Accepted | ItemState::Carried => self.accepted += 1,
            ItemState::Rejected => self.rejected += 1,
            ItemState::Registered => self.registered += 1,
            ItemState::Retired => self.retired += 1,
            ItemState::HandedOff => self.handed_off += 1,
        }
    }
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
    /// When the run stopped early: what became of the items it had started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_stop: Option<AfterStop>,
    /// Certificates the same command still has to work on (pending, in doubt, failures it
    /// retries by itself); 0 when the run finished.
    pub left: u64,
    /// The certificates this run refused before any change, by what they wait for.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub waiting_for: BTreeMap<Wait, WaitingFor>,
    /// Calls per operation.
    pub calls: BTreeMap<String, OpCounts>,
    /// The ledger.
    pub ledger: PathBuf,
    /// The failure report, when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_report: Option<PathBuf>,
    /// The exit code the process ends with.
    pub exit_code: i32,
    /// `account (region)` -> the device endpoint (DescribeEndpoint `iot:Data-ATS`) devices
    /// moved there must connect to (accept and transfer with --carry).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub device_endpoints: BTreeMap<String, String>,
}

/// The certificates a run refused before any change for one kind of reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingFor {
    /// How many.
    pub certificates: u64,
    /// What they need, merged (the flags, the policies, the accounts).
    pub needs: Vec<String>,
    /// What to do, for people.
    pub fix: String,
}

/// What became of the items a stopped run had started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AfterStop {
    /// Items that reached an end (done, failed, in doubt, settled).
    pub finished: u64,
    /// Of those, failed items whose changes were undone.
    pub rolled_back: u64,
    /// Items dropped before their first change: left as they were, still to do.
    pub untouched: u64,
    /// Items cut off after a change (the grace period ended, or the breaker stopped them):
    /// the next run checks them first.
    pub abandoned: u64,
}

impl Summary {
    /// Turns the call counters into the summary's shape.
    pub fn calls_from(counts: BTreeMap<Operation, OpCounts>) -> BTreeMap<String, OpCounts> {
        counts
            .into_iter()
            .map(|(op, c)| (op.name().to_string(), c))
            .collect()
    }
}

impl Render for Summary {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let c = &self.counts;
        let stopped = self
            .stopped
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        writeln!(out, "{} summary{stopped}", self.command)?;
        let mut line = format!(
            "  transferred {}  failed {}  pending {}  in doubt {}",
            c.transferred, c.failed, c.pending, c.in_doubt
        );
        if c.waiting > 0 {
            line.push_str(&format!("  waiting {}", c.waiting));
        }
        for (name, n) in [
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
        writeln!(out, "{line}")?;
        writeln!(
            out,
            "  this run: {} in {:.1}s ({:.1}/s)",
            crate::output::count(self.processed_this_run, "item"),
            self.elapsed_s,
            self.items_per_s
        )?;
        if let (Some(why), Some(a)) = (&self.stopped, &self.after_stop) {
            let mut line = format!(
                "  {why}: {} finished ({} rolled back), {} left untouched (stopped before their first change)",
                a.finished, a.rolled_back, a.untouched
            );
            if a.abandoned > 0 {
                line.push_str(&format!(
                    ", {} cut off after a change (checked first by the next run)",
                    a.abandoned
                ));
            }
            writeln!(out, "{line}")?;
        }
        if !self.calls.is_empty() {
            writeln!(
                out,
                "  {:<28} {:>8} {:>10} {:>8}",
                "operation", "calls", "throttled", "errors"
            )?;
            for (op, s) in &self.calls {
                writeln!(
                    out,
                    "  {:<28} {:>8} {:>10} {:>8}",
                    op, s.calls, s.throttled, s.errors
                )?;
            }
        }
        writeln!(out, "  ledger: {}", self.ledger.display())?;
        for (wait, w) in &self.waiting_for {
            writeln!(
                out,
                "  waiting ({wait}): this run refused {} certificates before any change: {}",
                w.certificates, w.fix
            )?;
        }
        if let Some(p) = &self.failure_report {
            writeln!(out, "  failure report: {}", p.display())?;
        }
        for (account, address) in &self.device_endpoints {
            writeln!(
                out,
                "  device endpoint of {account}: {address} (devices moved there must connect to it, or to a custom domain pointed at it)"
            )?;
        }
        let hint = match self.exit_code {
            x if x == ExitCode::ItemsFailed.code() && self.counts.failed == 0 => Some(
                "some certificates wait for an option (see above and the failure report): the same command with it takes them, no --retry-failed needed",
            ),
            x if x == ExitCode::ItemsFailed.code() => Some(
                "some items failed: see the failure report; fix them and run again with --retry-failed",
            ),
            x if x == ExitCode::Stopped.code() && self.left > 0 => {
                writeln!(
                    out,
                    "  not finished: {} certificates left (pending {}, in doubt {}); run the same command again to resume",
                    self.left, c.pending, c.in_doubt
                )?;
                None
            }
            x if x == ExitCode::Stopped.code() => {
                Some("not finished: run the same command again to resume")
            }
            _ => None,
        };
        if let Some(h) = hint {
            writeln!(out, "  {h}")?;
        }
        Ok(())
    }
}
