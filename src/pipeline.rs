//! Runs items concurrently: a canary first, then at most `concurrency` in flight, no new item
//! after a stop request, items that made no change yet dropped at once (each passes its
//! [`Gate`] before its first change), the others abandoned when the grace period ends. Every
//! AWS call inside an item goes through the shared pacer; every outcome goes through the
//! single ledger writer; every item that failed on a call is counted by the circuit breaker.

use std::future::Future;
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};

use std::collections::{BTreeMap, BTreeSet};

use crate::breaker::{Breaker, FailedCall};
use crate::ledger::{LedgerError, Wait};
use crate::progress::Tally;
use crate::stop::{Gate, Stop};

/// What an item failed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailedOn {
    /// The tool refused it (the certificate is REVOKED, pending to another account, ...): no
    /// call failed. `rolled_back` as [`FailedCall::rolled_back`].
    Refusal {
        /// What became of the changes made before the refusal, if any.
        rolled_back: Option<bool>,
    },
    /// An AWS call.
    Call(Box<FailedCall>),
}

/// What a certificate the tool refused before changing anything waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waited {
    /// Which kind of fix.
    pub wait: Wait,
    /// What exactly (the flags, the policy, the account and region).
    pub needs: Vec<String>,
}

/// How one item ended this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemEnd {
    /// Reached the goal (transferred, cancelled, accepted, ...).
    Done,
    /// Failed; the ledger holds the failure.
    Failed(FailedOn),
    /// Refused before any change, waiting for an option; the ledger holds what for.
    Waiting(Waited),
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
    /// Dropped when the run stopped, before its first change: nothing records an end, it
    /// stays as it was.
    Untouched,
}

impl ItemEnd {
    /// Whether the item's changes were undone on the way to this end.
    fn rolled_back(&self) -> bool {
        match self {
            ItemEnd::Failed(FailedOn::Call(call)) => call.rolled_back == Some(true),
            ItemEnd::Failed(FailedOn::Refusal { rolled_back }) => *rolled_back == Some(true),
            _ => false,
        }
    }
}

/// How the items of a run (or of one lane) ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// Items that reached an end this run (done, failed, waiting, in doubt, settled).
    pub finished: u64,
    /// The waiting ones, by what they wait for: how many, and what they need (merged).
    pub waiting: BTreeMap<Wait, (u64, BTreeSet<String>)>,
    /// Of those, failed items whose changes were rolled back.
    pub rolled_back: u64,
    /// Dropped before their first change when the run stopped.
    pub untouched: u64,
    /// Dropped at the end of the grace period (in doubt until the next run).
    pub abandoned: u64,
    /// Stopped by the circuit breaker before they could end.
    pub interrupted: u64,
}

impl std::ops::Add for Ended {
    type Output = Ended;
    fn add(self, o: Ended) -> Ended {
        let mut waiting = self.waiting;
        for (wait, (n, needs)) in o.waiting {
            let mine = waiting.entry(wait).or_default();
            mine.0 += n;
            mine.1.extend(needs);
        }
        Ended {
            finished: self.finished + o.finished,
            waiting,
            rolled_back: self.rolled_back + o.rolled_back,
            untouched: self.untouched + o.untouched,
            abandoned: self.abandoned + o.abandoned,
            interrupted: self.interrupted + o.interrupted,
        }
    }
}

impl std::iter::Sum for Ended {
    fn sum<I: Iterator<Item = Ended>>(iter: I) -> Ended {
        iter.fold(Ended::default(), |a, b| a + b)
    }
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

/// Tells the breaker how an item ended, for the rule of the run's opening: the first
/// certificates all refused for the same reason stop the run before anything changes.
fn opening(breaker: &Breaker, end: &ItemEnd) {
    match end {
        ItemEnd::Waiting(w) => breaker.item_waited(w.wait, &w.needs),
        ItemEnd::Done | ItemEnd::Failed(_) | ItemEnd::InDoubt => breaker.item_went_on(),
        // Nothing new was judged of these.
        ItemEnd::Settled
        | ItemEnd::Interrupted
        | ItemEnd::Abandoned
        | ItemEnd::Untouched
        | ItemEnd::Postponed(_) => {}
    }
}

/// Runs `process` on every item of `work` with the run's limits, each with its [`Gate`].
/// Returns how the items ended. A ledger error stops everything at once.
pub async fn run<W, F, Fut>(
    work: impl Iterator<Item = W>,
    window: Window,
    stop: &Stop,
    tally: &Tally,
    breaker: &Breaker,
    process: F,
) -> Result<Ended, LedgerError>
where
    F: Fn(W, Gate) -> Fut,
    Fut: Future<Output = Result<ItemEnd, LedgerError>>,
{
    let abandon = stop.abandon.clone();
    let guarded = |w: W| {
        let gate = stop.gate();
        let fut = process(w, gate.clone());
        let abandon = abandon.clone();
        async move {
            tokio::select! {
                r = fut => r,
                _ = gate.dropped() => Ok(ItemEnd::Untouched),
                _ = abandon.cancelled() => Ok(ItemEnd::Abandoned),
            }
        }
    };
    let mut ended = Ended::default();
    let mut count = |end: &ItemEnd| {
        let counter = match end {
            ItemEnd::Done => Some(&tally.done),
            // The display's "failed" is what needs the operator: waiting ones too.
            ItemEnd::Failed(_) => Some(&tally.failed),
            ItemEnd::Waiting(w) => {
                let mine = ended.waiting.entry(w.wait).or_default();
                mine.0 += 1;
                mine.1.extend(w.needs.iter().cloned());
                Some(&tally.failed)
            }
            ItemEnd::InDoubt => Some(&tally.in_doubt),
            ItemEnd::Settled => Some(&tally.settled),
            // Left pending by a failure that was not the certificate's: stopped before it
            // could end, as the breaker's are.
            ItemEnd::Interrupted | ItemEnd::Postponed(_) => {
                ended.interrupted += 1;
                None
            }
            ItemEnd::Abandoned => {
                ended.abandoned += 1;
                None
            }
            ItemEnd::Untouched => {
                ended.untouched += 1;
                None
            }
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
            ended.finished += 1;
            ended.rolled_back += u64::from(end.rolled_back());
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
                break;
            }
            let ends: Vec<ItemEnd> = futures::stream::iter(batch)
                .map(&guarded)
                .buffer_unordered(window.canary)
                .try_collect()
                .await?;
            let mut proven = false;
            for end in &ends {
                count(end);
                opening(breaker, end);
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
            opening(breaker, &end);
            if let ItemEnd::Failed(FailedOn::Call(call)) | ItemEnd::Postponed(call) = &end {
                breaker.item_failed(call);
            }
            futures::future::ready(Ok(()))
        })
        .await?;
    Ok(ended)
}
