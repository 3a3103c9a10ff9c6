//! Which certificates a run hands to its worker.

use crate::ledger::{ItemRecord, ItemState};

/// What happens to items that failed in an earlier run for a reason a person must fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedItems {
    /// Left alone until the operator says otherwise (`--retry-failed`).
    Skip,
    /// Tried again.
    Retry,
}

impl FailedItems {
    /// `--retry-failed` given or not.
    pub fn retry_if(retry: bool) -> FailedItems {
        if retry {
            FailedItems::Retry
        } else {
            FailedItems::Skip
        }
    }
}

/// A failure that only `--retry-failed` retries (a retryable one is retried by any rerun).
pub fn is_final_failure(rec: &ItemRecord) -> bool {
    rec.state == ItemState::Failed && !rec.failure.is_some_and(|f| f.retryable)
}
