//! Which certificates a run handles, in one vocabulary: the workflow's **scope** (rows out of
//! it are neither processed nor counted), what it still **wants** (a rerun does nothing
//! twice), and the run's rule for **failed** items a person must fix (skipped unless
//! `--retry-failed`). Certificates with an intent an earlier run left open are in doubt:
//! the run settles them first, whatever the rest says.
//!
//! The counting pass walks the manifest once, looking rows up in the ledger's state a batch
//! at a time; the lanes then hand the work out, one per region.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::ledger::{ItemRecord, ItemState, LedgerState, OpenIntent};
use crate::lifecycle::Workflow;
use crate::manifest::{Manifest, ManifestError, ManifestRow};

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

/// The rows a run of `workflow` handles.
pub struct Selection<'w, W> {
    workflow: &'w W,
    failed: FailedItems,
}

impl<'w, W: Workflow> Selection<'w, W> {
    /// The selection of `workflow`, with `failed` for failures a person must fix.
    pub fn new(workflow: &'w W, failed: FailedItems) -> Self {
        Selection { workflow, failed }
    }

    /// Whether the row concerns the run at all.
    pub fn in_scope(&self, rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        self.workflow.in_scope(rec, row)
    }

    /// Whether the run works on the row now (an intent left open aside: see
    /// [`Selection::in_doubt`]).
    pub fn picks(&self, rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        if !self.in_scope(rec, row) {
            return false;
        }
        if rec.is_some_and(is_final_failure) && self.failed == FailedItems::Skip {
            return false;
        }
        self.workflow.wants(rec, row)
    }

    /// Counts the work of `manifest`: the rows in doubt among those in scope (handed out
    /// first), how many rows the run will handle, and those rows themselves when there are
    /// few.
    pub fn count(
        &self,
        manifest: &Manifest,
        state: &LedgerState,
    ) -> Result<Counted, ManifestError> {
        let mut in_doubt = in_doubt_ids(state, manifest);
        let mut total = 0u64;
        let (mut doubtful, mut fresh) = (Vec::new(), Vec::new());
        let mut keep = true;
        walk_with_records(manifest, state, |row, rec| {
            // Hashing every id costs more than the lookup itself: most runs have none in doubt.
            let doubt = !in_doubt.is_empty() && in_doubt.contains(&row.certificate_id);
            if doubt && !self.in_scope(rec, row) {
                in_doubt.remove(&row.certificate_id);
                return;
            }
            if !doubt && !self.picks(rec, row) {
                return;
            }
            total += 1;
            if keep && total > KEPT_ROWS {
                // Too many to keep: the lanes will stream the manifest instead.
                keep = false;
                (doubtful, fresh) = (Vec::new(), Vec::new());
            }
            if keep {
                let queue = if doubt { &mut doubtful } else { &mut fresh };
                queue.push(Queued {
                    row: row.clone(),
                    open: rec.and_then(|r| r.open_intent.cloned()),
                });
            }
        })?;
        let kept = keep.then(|| {
            doubtful.append(&mut fresh);
            doubtful
        });
        Ok(Counted {
            in_doubt,
            total,
            kept,
        })
    }

    /// The work of one region's lane, streamed from the manifest: its rows in doubt first,
    /// then the fresh ones.
    pub fn lane<'s>(
        &'s self,
        manifest: &Manifest,
        state: &Arc<Mutex<LedgerState>>,
        region: Option<String>,
        in_doubt: &'s HashSet<String>,
    ) -> Result<impl Iterator<Item = Queued> + 's, ManifestError> {
        // No item in doubt: don't read the whole manifest once more to find none (on a
        // resumed 1M-row manifest that pass took about 0.5 s before the first call).
        let doubt_source = if in_doubt.is_empty() {
            None
        } else {
            Some(manifest.rows()?)
        };
        let doubt_rows = doubt_source
            .into_iter()
            .flatten()
            .filter_map(row_or_log)
            .filter_map({
                let (state, region) = (state.clone(), region.clone());
                move |row| {
                    if row.region != region || !in_doubt.contains(&row.certificate_id) {
                        return None;
                    }
                    let st = state.lock().expect("ledger state");
                    let open = st
                        .get(&row.certificate_id)
                        .and_then(|r| r.open_intent.cloned());
                    Some(Queued { row, open })
                }
            });
        let fresh_rows = manifest.rows()?.filter_map(row_or_log).filter_map({
            let state = state.clone();
            move |row| {
                if row.region != region || in_doubt.contains(&row.certificate_id) {
                    return None;
                }
                let st = state.lock().expect("ledger state");
                self.picks(st.get(&row.certificate_id).as_ref(), &row)
                    .then_some(Queued { row, open: None })
            }
        });
        Ok(doubt_rows.chain(fresh_rows))
    }
}

/// One certificate waiting for its lane.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The manifest row.
    pub row: ManifestRow,
    /// An intent an earlier run left without outcome: the run settles it first.
    pub open: Option<OpenIntent>,
}

/// What the counting pass found.
pub struct Counted {
    /// Ids in doubt among the rows in scope.
    pub in_doubt: HashSet<String>,
    /// Items the run will handle.
    pub total: u64,
    /// Those items, in doubt first, when there are at most [`KEPT_ROWS`].
    pub kept: Option<Vec<Queued>>,
}

/// Ids the run must handle first: those with an intent left open by an earlier run (few:
/// only the records with details are looked at).
fn in_doubt_ids(state: &LedgerState, manifest: &Manifest) -> HashSet<String> {
    state
        .with_details()
        .filter(|(id, rec)| rec.open_intent.is_some() && manifest.contains(id))
        .map(|(id, _)| id.to_string())
        .collect()
}

/// Items a run keeps from its counting pass, at most: with no more than this many left (a
/// resumed run near its end), the lanes hand them out without reading the manifest again.
const KEPT_ROWS: u64 = 1 << 16;

/// Rows the counting pass looks up in the ledger state at once (see
/// [`LedgerState::get_many`]).
const LOOKUP_BATCH: usize = 64;

/// Calls `f` with every manifest row and its record in the ledger state, in manifest order.
/// Rows are read into the same buffers again and again (a ten-million-row pass must not
/// allocate per row) and looked up a batch at a time (`LedgerState::get_many`).
pub fn walk_with_records(
    manifest: &Manifest,
    state: &LedgerState,
    mut f: impl FnMut(&ManifestRow, Option<&ItemRecord>),
) -> Result<(), ManifestError> {
    let mut rows = manifest.rows()?;
    let mut batch: Vec<ManifestRow> = vec![ManifestRow::default(); LOOKUP_BATCH];
    loop {
        let mut filled = 0;
        while filled < LOOKUP_BATCH {
            if !rows.read_into(&mut batch[filled])? {
                break;
            }
            filled += 1;
        }
        if filled == 0 {
            return Ok(());
        }
        let ids: Vec<&str> = batch[..filled]
            .iter()
            .map(|r| r.certificate_id.as_str())
            .collect();
        for (row, rec) in batch[..filled].iter().zip(state.get_many(&ids)) {
            f(row, rec.as_ref());
        }
    }
}

fn row_or_log(r: Result<ManifestRow, ManifestError>) -> Option<ManifestRow> {
    match r {
        Ok(row) => Some(row),
        Err(e) => {
            tracing::error!("manifest changed while running: {e}");
            None
        }
    }
}
