//! Stopping a run cleanly: signals, time boxes and item limits.
//!
//! A stop request (first SIGINT/SIGTERM, `--max-duration`, `--max-items`, the circuit
//! breaker tripping) stops new items from starting. Stop means stop: after any request but
//! `--max-items` (whose items are all within the limit), no certificate receives its first
//! change. Each item passes a [`Gate`] before its first mutating call; an item that has not
//! passed it when the stop comes (still reading, or waiting for a pacer slot) is dropped
//! untouched, with nothing recorded: it stays pending. Items already changed get `--grace`
//! to finish, after which they are abandoned (their open intents are reconciled by the next
//! run). A second signal exits at once: every ledger line already acknowledged is on disk,
//! so the ledger stays consistent.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// The first certificates were all refused for the same reason before any change.
    Refused,
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
            StopReason::Refused => "stopped: the first certificates all wait for the same fix",
        }
    }

    /// Whether the items admitted before the stop may still make their first change: only
    /// those of `--max-items`, which are within the limit.
    fn lets_admitted_start(self) -> bool {
        self == StopReason::MaxItems
    }

    /// The reason a breaker trip stops a run for.
    pub fn of_trip(trip: &Trip) -> StopReason {
        match trip {
            Trip::Credentials { .. } => StopReason::Credentials,
            Trip::Refused { .. } => StopReason::Refused,
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
    /// Cancelled when no item may make its first change any more.
    hold: CancellationToken,
    /// Set by the signal handler itself, the moment a signal arrives: the gate reads it
    /// before the watcher has even been woken.
    signalled: Arc<AtomicBool>,
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
            hold: CancellationToken::new(),
            signalled: Arc::new(AtomicBool::new(false)),
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

    /// Asks the run to stop; the first reason given is kept. Starts the grace timer. Unless
    /// the reason is `--max-items`, no item makes its first change from now on (a signal
    /// after `--max-items` still holds them).
    pub fn request(&self, reason: StopReason) {
        if !reason.lets_admitted_start() {
            self.hold.cancel();
        }
        {
            let mut r = self.reason.lock().expect("stop lock");
            if r.is_some() {
                return;
            }
            *r = Some(reason);
        }
        if reason == StopReason::Refused {
            // The run ends with one message naming the fix: this line would only repeat it.
            tracing::debug!("{}: no new items start", reason.describe());
        } else {
            tracing::warn!(
                "{}: no new items start; in-flight items have {:?} to finish",
                reason.describe(),
                self.grace
            );
        }
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

    /// Whether items may no longer make their first change.
    pub fn holds(&self) -> bool {
        self.hold.is_cancelled() || self.signalled.load(Ordering::SeqCst)
    }

    /// The gate of a new item (see [`Gate`]).
    pub fn gate(&self) -> Gate {
        Gate {
            stop: Some(self.clone()),
            touched: Arc::new(AtomicBool::new(false)),
        }
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
        let mut signals = Signals::install(&self.signalled);
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

/// One item's way past a stop: it passes the gate before each mutating call, and the first
/// pass is the moment it becomes *touched*. Until then the pipeline may drop it when the run
/// stops (see [`Gate::dropped`]); after it, it finishes (or is rolled back) within the grace
/// period. The first change's pacer slot is taken at the gate, before its intent is
/// recorded: an item waiting for a slot when the stop comes has recorded nothing.
#[derive(Clone)]
pub struct Gate {
    /// `None`: never held (unit tests, a workflow driven outside a run).
    stop: Option<Stop>,
    touched: Arc<AtomicBool>,
}

impl Gate {
    /// A gate that never holds.
    pub fn open() -> Gate {
        Gate {
            stop: None,
            touched: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the item has passed the gate (it made, or is making, a change).
    pub fn touched(&self) -> bool {
        self.touched.load(Ordering::SeqCst)
    }

    /// Lets the item go on to a mutating call. Before its first one, `slot` (the wait for
    /// that call's pacer slot) is awaited here and its result returned; once the run holds
    /// first changes this never returns, and the pipeline drops the item. After the first
    /// pass it returns `None` at once.
    pub async fn pass<T>(&self, slot: impl Future<Output = T>) -> Option<T> {
        if self.touched() {
            return None;
        }
        let Some(stop) = &self.stop else {
            self.touched.store(true, Ordering::SeqCst);
            return Some(slot.await);
        };
        if stop.holds() {
            return std::future::pending().await;
        }
        let slot = tokio::select! {
            s = slot => s,
            _ = stop.hold.cancelled() => return std::future::pending().await,
        };
        // The signal may have come while the item waited for its slot.
        if stop.holds() {
            return std::future::pending().await;
        }
        self.touched.store(true, Ordering::SeqCst);
        Some(slot)
    }

    /// Completes when the run holds first changes and this item has made none: the item
    /// may be dropped, untouched. Pending for ever otherwise.
    pub async fn dropped(&self) {
        let Some(stop) = &self.stop else {
            return std::future::pending().await;
        };
        stop.hold.cancelled().await;
        // Once held, an untouched item can never become touched (`pass` checks first).
        if self.touched() {
            std::future::pending::<()>().await;
        }
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
    /// Installs the handlers; `signalled` is set by the handler itself when a signal comes.
    fn install(signalled: &Arc<AtomicBool>) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = Signals {
                int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
                term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            };
            for sig in [libc::SIGINT, libc::SIGTERM] {
                let flag = signalled.clone();
                // SAFETY: the action only stores to an atomic, which is async-signal-safe;
                // it is registered beside tokio's own handler (signal-hook-registry calls
                // both) and never unregistered.
                let registered = unsafe {
                    signal_hook_registry::register(sig, move || flag.store(true, Ordering::SeqCst))
                };
                registered.expect("signal flag");
            }
            signals
        }
        #[cfg(not(unix))]
        {
            let _ = signalled;
            Signals {}
        }
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
