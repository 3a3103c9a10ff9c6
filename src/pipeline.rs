//! Runs items concurrently: at most `concurrency` in flight, no new item after a stop
//! request, in-flight items abandoned when the grace period ends. Every AWS call inside an
//! item goes through the shared pacer; every outcome goes through the single ledger writer.

use std::future::Future;
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};

use crate::ledger::LedgerError;
use crate::progress::Tally;
use crate::stop::Stop;

/// How one item ended this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemEnd {
    /// Reached the goal (transferred, cancelled, accepted, ...).
    Done,
    /// Failed; the ledger holds the failure.
    Failed,
    /// An outcome could not be established; the next run reconciles.
    InDoubt,
    /// Dropped at the end of the grace period.
    Abandoned,
}

/// Runs `process` on every item of `work` with the run's limits. Returns the number of items
/// that ended (any way but abandoned). A ledger error stops everything at once.
pub async fn run<W, F, Fut>(
    work: impl Iterator<Item = W>,
    concurrency: usize,
    stop: &Stop,
    tally: &Tally,
    process: F,
) -> Result<u64, LedgerError>
where
    F: Fn(W) -> Fut,
    Fut: Future<Output = Result<ItemEnd, LedgerError>>,
{
    let abandon = stop.abandon.clone();
    let admitted = futures::stream::iter(work).take_while(|_| futures::future::ready(stop.admit()));
    let mut ended = 0u64;
    admitted
        .map(|w| {
            let fut = process(w);
            let abandon = abandon.clone();
            async move {
                tokio::select! {
                    r = fut => r,
                    _ = abandon.cancelled() => Ok(ItemEnd::Abandoned),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|end| {
            let counter = match end {
                ItemEnd::Done => Some(&tally.done),
                ItemEnd::Failed => Some(&tally.failed),
                ItemEnd::InDoubt => Some(&tally.in_doubt),
                ItemEnd::Abandoned => None,
            };
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
                ended += 1;
            }
            futures::future::ready(Ok(()))
        })
        .await?;
    Ok(ended)
}
