//! Runs items concurrently: a canary first, then at most `concurrency` in flight, no new item
//! after a stop request, in-flight items abandoned when the grace period ends. Every AWS call
//! inside an item goes through the shared pacer; every outcome goes through the single ledger
//! writer; every item that failed on a call is counted by the circuit breaker.

use std::future::Future;
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};

use crate::breaker::{Breaker, FailedCall};
use crate::ledger::LedgerError;
use crate::progress::Tally;
use crate::stop::Stop;

/// What an item failed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedOn {
    /// The tool refused it (a flag is missing, the certificate is REVOKED, pending to another
    /// account, ...): no call failed.
    Refusal,
    /// An AWS call.
    Call(Box<FailedCall>),
}

/// How one item ended this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemEnd {
    /// Reached the goal (transferred, cancelled, accepted, ...).
    Done,
    /// Failed; the ledger holds the failure.
    Failed(FailedOn),
    /// An outcome could not be established; the next run reconciles.
    InDoubt,
    /// An intent an earlier run left open was settled, and the certificate needs nothing
    /// more from this run (a failure that waits for `--retry-failed`).
    Settled,
    /// Stopped by the circuit breaker before it could end (its credentials were refused,
    /// or the breaker tripped before its next change): nothing records an end, it stays
    /// pending for the next run.
    Interrupted,
    /// Dropped at the end of the grace period.
    Abandoned,
    /// A call failed for a reason that is not the certificate's (AWS out of reach, failing
    /// or throttling beyond the budget): nothing records an end, it stays pending for the
    /// next run; the breaker counts the call as it counts failures.
    Postponed(Box<FailedCall>),
}

/// How many items a lane runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The lane's first items run this many at a time, each batch to its end, until one of
    /// them reaches its goal; only then does the full window open (0: no canary). A canary
    /// that fails on a mutating call trips the breaker at once.
    pub canary: usize,
    /// Items in flight at once.
    pub concurrency: usize,
}

/// Runs `process` on every item of `work` with the run's limits. Returns the number of items
/// that ended (any way but interrupted or abandoned). A ledger error stops everything at once.
pub async fn run<W, F, Fut>(
    work: impl Iterator<Item = W>,
    window: Window,
    stop: &Stop,
    tally: &Tally,
    breaker: &Breaker,
    process: F,
) -> Result<u64, LedgerError>
where
    F: Fn(W) -> Fut,
    Fut: Future<Output = Result<ItemEnd, LedgerError>>,
{
    let abandon = stop.abandon.clone();
    let guarded = |w: W| {
        let fut = process(w);
        let abandon = abandon.clone();
        async move {
            tokio::select! {
                r = fut => r,
                _ = abandon.cancelled() => Ok(ItemEnd::Abandoned),
            }
        }
    };
    let mut ended = 0u64;
    let mut count = |end: &ItemEnd| {
        let counter = match end {
            ItemEnd::Done => Some(&tally.done),
            ItemEnd::Failed(_) => Some(&tally.failed),
            ItemEnd::InDoubt => Some(&tally.in_doubt),
            ItemEnd::Settled => Some(&tally.settled),
            ItemEnd::Interrupted | ItemEnd::Abandoned | ItemEnd::Postponed(_) => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
            ended += 1;
        }
    };
    let mut work = work.fuse();

    // The canary: a missing permission or a wrong flag costs one device, not a fleet.
    if window.canary > 0 {
        loop {
            let batch: Vec<W> = work
                .by_ref()
                .take(window.canary)
                .take_while(|_| stop.admit())
                .collect();
            if batch.is_empty() {
                return Ok(ended);
            }
            let ends: Vec<ItemEnd> = futures::stream::iter(batch)
                .map(&guarded)
                .buffer_unordered(window.canary)
                .try_collect()
                .await?;
            let mut proven = false;
            for end in &ends {
                count(end);
                match end {
                    ItemEnd::Done => proven = true,
                    ItemEnd::Failed(FailedOn::Call(call)) if call.op.is_mutating() => {
                        breaker.canary_failed(call)
                    }
                    ItemEnd::Failed(FailedOn::Call(call)) | ItemEnd::Postponed(call) => {
                        breaker.item_failed(call)
                    }
                    _ => {}
                }
            }
            // Refusals before any change prove nothing: the next certificate is the canary.
            if proven || !stop.is_open() {
                break;
            }
        }
    }

    futures::stream::iter(work)
        .take_while(|_| futures::future::ready(stop.admit()))
        .map(&guarded)
        .buffer_unordered(window.concurrency.max(1))
        .try_for_each(|end| {
            count(&end);
            if let ItemEnd::Failed(FailedOn::Call(call)) | ItemEnd::Postponed(call) = &end {
                breaker.item_failed(call);
            }
            futures::future::ready(Ok(()))
        })
        .await?;
    Ok(ended)
}
