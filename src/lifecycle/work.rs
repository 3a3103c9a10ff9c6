//! What a run hands to a worker with each certificate, and the rule a run picks certificates
//! by.

use crate::ledger::OpenIntent;
use crate::manifest::ManifestRow;

/// Whether a run should handle a certificate, given what the ledger says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Nothing to do (finished, or failed without `--retry-failed`).
    Skip,
    /// Work on it.
    Process,
}

/// How far a worker may go with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mandate {
    /// Settle what an earlier run left open, then do the work.
    Proceed,
    /// Only settle what an earlier run left open (a failed item without `--retry-failed`).
    SettleOnly,
}

/// One certificate handed to a worker.
#[derive(Debug, Clone)]
pub struct Work {
    /// The manifest row.
    pub row: ManifestRow,
    /// An intent an earlier run left without outcome: the worker settles it first.
    pub open: Option<OpenIntent>,
    /// How far the worker may go.
    pub mandate: Mandate,
}
