//! Stopping a run cleanly: signals, time boxes and item limits.
//!
//! A stop request (first SIGINT/SIGTERM, `--max-duration`, `--max-items`, the circuit
//! breaker tripping) stops new items from starting; in-flight items get `--grace` to finish, after which they are abandoned
//! (their open intents are reconciled by the next run). A second signal exits at once: every
//! ledger line already acknowledged is on disk, so the ledger stays consistent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::breaker::{Breaker, Trip};
use crate::error::ExitCode;

/// Limits that end a run early but cleanly (exit 4; run again to continue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Stop starting new items after this long.
    pub max_duration: Option<Duration>,
    /// Stop after starting this many items.
    pub max_items: Option<u64>,
    /// After a stop request, how long in-flight items may finish before being abandoned.
    pub grace: Duration,
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--max-duration` reached.
    MaxDuration,
    /// `--max-items` reached.
    MaxItems,
    /// A fatal error (ledger unwritable).
    Fatal,
    /// AWS refused the credentials.
    Credentials,
    /// The circuit breaker tripped (systemic failures, AWS unreachable, the canary failed).
    Breaker,
}

impl StopReason {
    /// Words for the summary.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Signal => "stopped by signal",
            StopReason::MaxDuration => "stopped at --max-duration",
            StopReason::MaxItems => "stopped at --max-items",
            StopReason::Fatal => "stopped by a fatal error",
            StopReason::Credentials => "stopped: AWS refused the credentials",
            StopReason::Breaker => "stopped by the circuit breaker",
        }
    }

    /// The reason a breaker trip stops a run for.
    pub fn of_trip(trip: &Trip) -> StopReason {
        match trip {
            Trip::Credentials { .. } => StopReason::Credentials,
            _ => StopReason::Breaker,
        }
    }
}

/// The stop state shared by a run's tasks.
#[derive(Clone)]
pub struct Stop {
    /// Cancelled when no new item may start.
    pub no_new_work: CancellationToken,
    /// Cancelled when in-flight items must be abandoned (grace period over).
    pub abandon: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
    started: Arc<AtomicU64>,
    max_items: Option<u64>,
    grace: Duration,
    breaker: Option<Arc<Breaker>>,
}

impl Stop {
    /// A stop state for a run with these limits.
    pub fn new(max_items: Option<u64>, grace: Duration) -> Self {
        Stop {
            no_new_work: CancellationToken::new(),
            abandon: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
            started: Arc::new(AtomicU64::new(0)),
            max_items,
            grace,
            breaker: None,
        }
    }

    /// The same, also stopped when `breaker` trips (at once: no item is admitted after).
    pub fn with_breaker(mut self, breaker: Arc<Breaker>) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Requests the stop if the breaker tripped; true if it did.
    fn breaker_tripped(&self) -> bool {
        let Some(trip) = self.breaker.as_ref().and_then(|b| b.trip()) else {
            return false;
        };
        self.request(StopReason::of_trip(&trip));
        true
    }

    /// Asks the run to stop; the first reason given is kept. Starts the grace timer.
    pub fn request(&self, reason: StopReason) {
        {
            let mut r = self.reason.lock().expect("stop lock");
            if r.is_some() {
                return;
            }
            *r = Some(reason);
        }
        tracing::warn!(
            "{}: no new items start; in-flight items have {:?} to finish",
            reason.describe(),
            self.grace
        );
        self.no_new_work.cancel();
        let abandon = self.abandon.clone();
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            abandon.cancel();
        });
    }

    /// The reason the run stopped early, if it did.
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().expect("stop lock")
    }

    /// Whether new items may still start (claims nothing).
    pub fn is_open(&self) -> bool {
        !(self.no_new_work.is_cancelled() || self.breaker_tripped())
    }

    /// Claims a slot for a new item; false when the run must not start more.
    pub fn admit(&self) -> bool {
        if self.no_new_work.is_cancelled() || self.breaker_tripped() {
            return false;
        }
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        if let Some(max) = self.max_items {
            if n >= max {
                self.request(StopReason::MaxItems);
                return false;
            }
        }
        true
    }

    /// Watches SIGINT/SIGTERM and the time box until the run ends. The signal handlers are
    /// installed before this returns, and stay installed: a signal that arrives once the
    /// run has started is never lost, and a second one that arrives while the first is
    /// being handled still counts as the second.
    pub fn watch(&self, max_duration: Option<Duration>) -> tokio::task::JoinHandle<()> {
        let stop = self.clone();
        let mut signals = Signals::install();
        let tripped = self.breaker.as_ref().map(|b| b.tripped());
        tokio::spawn(async move {
            let deadline = async {
                match max_duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            let trip = async {
                match &tripped {
                    Some(t) => t.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = signals.next() => stop.request(StopReason::Signal),
                _ = deadline => stop.request(StopReason::MaxDuration),
                // The grace period starts when the breaker trips, not when the next item asks.
                _ = trip => { stop.breaker_tripped(); }
                _ = stop.no_new_work.cancelled() => {}
            }
            // From here on, a signal means "now".
            signals.next().await;
            // A log event, not a bare line: with --log-format json stderr stays JSON lines.
            tracing::warn!("second interrupt: exiting now; the ledger holds every acknowledged event, run again to resume");
            std::process::exit(ExitCode::Stopped.code());
        })
    }
}

/// SIGINT and SIGTERM, listened to from the moment of [`Signals::install`].
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
                term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal received since the previous call (or since install).
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
