//! The one place an intent an earlier run left open is settled, for every workflow: before
//! a certificate reaches its workflow, the run asks AWS whether the open call took effect
//! (with the credentials of the side that made it), records the answer, and decides afresh
//! from the ledger as it now stands; only then does the workflow see the certificate, told
//! where to start.

use std::sync::Mutex;

use crate::ledger::{LedgerError, LedgerState, LedgerWriter, Via};
use crate::lifecycle::{AfterSettle, Resume, Settled, Work, Workflow};
use crate::pipeline::ItemEnd;
use crate::stop::Gate;

use super::selection::{Queued, Selection};

/// What a run lends each certificate it hands over: the ledger writer, its state, and the
/// most times a call with an unknown outcome is sent.
#[derive(Clone, Copy)]
pub struct Lent<'a> {
    /// The run's one ledger writer.
    pub ledger: &'a LedgerWriter,
    /// The state the writer keeps current.
    pub state: &'a Mutex<LedgerState>,
    /// Attempts of a call whose outcome stays unknown.
    pub max_attempts: u32,
}

/// Settles what an earlier run left open on `queued`, then hands the certificate to
/// `workflow` (unless nothing is left for it to do); its changes pass `gate`.
pub async fn hand_over<W: Workflow>(
    workflow: &W,
    selection: &Selection<'_, W>,
    queued: Queued,
    lent: Lent<'_>,
    gate: Gate,
) -> Result<ItemEnd, LedgerError> {
    let Queued { row, open } = queued;
    let work = |resume| {
        Work::new(
            &row,
            resume,
            lent.ledger,
            lent.state,
            lent.max_attempts,
            gate.clone(),
        )
    };
    let Some(open) = open else {
        return workflow.process(work(Resume::Start)).await;
    };
    let Some((iot, side)) = workflow.settler(&row, &open) else {
        tracing::warn!(certificate = %row.certificate_id, "in doubt after an interrupted {}: run that command again", open.stage);
        return Ok(ItemEnd::InDoubt);
    };
    let started = work(Resume::Start);
    let item = started.item(side);
    let took_effect = match item.settle(iot, &open).await? {
        Settled::InDoubt => return Ok(ItemEnd::InDoubt),
        Settled::TookEffect => true,
        Settled::NotDone => false,
    };
    // Decide afresh from the ledger as it now stands: a transfer found done is recorded as
    // transferred, a failure still waits for --retry-failed.
    let (picked, failed) = started.record(|rec| {
        let failed = rec.is_some_and(|r| r.state == crate::ledger::ItemState::Failed);
        (selection.picks(rec, &row), failed)
    });
    if !picked {
        return Ok(if failed {
            ItemEnd::Settled
        } else {
            ItemEnd::Done
        });
    }
    match workflow.after_settle(&row, &open, took_effect) {
        AfterSettle::Ends { stage, outcome } => {
            item.terminal(stage, outcome, Via::Reconciled, None).await?;
            Ok(ItemEnd::Done)
        }
        AfterSettle::Continue(resume) => workflow.process(work(resume)).await,
    }
}
