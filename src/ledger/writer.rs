//! The single writer task: appends events, makes them durable in groups (one `fdatasync` for
//! everything that queued up meanwhile), applies them to the shared state, and writes the
//! checkpoint every so many events and when it ends.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::checkpoint;
use super::event::Event;
use super::{Ledger, LedgerError};

/// Events a group commit takes at most.
const MAX_BATCH: usize = 4096;

/// A checkpoint is written once this many lines are not covered by one, or a quarter of the
/// certificates the ledger holds if that is more: writing one costs about 40 bytes per
/// certificate, so this keeps its cost below a few bytes per event, and a resume after a crash
/// replays at most that many lines.
const CHECKPOINT_MIN_EVENTS: u64 = 1 << 16;
/// Overrides the interval (a number of lines), for tests and for operators who want
/// checkpoints more (or less) often.
pub const CHECKPOINT_EVERY_ENV: &str = "IOT_CERT_MIGRATE_CHECKPOINT_EVERY";

fn checkpoint_interval(certificates: usize) -> u64 {
    if let Some(every) = std::env::var(CHECKPOINT_EVERY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return every.max(1);
    }
    CHECKPOINT_MIN_EVENTS.max(certificates as u64 / 4)
}

/// What a waiting caller is told when its event could not be made durable: the kind and text
/// of the real I/O error (an `io::Error` cannot be cloned for every waiter of the group).
type Ack = oneshot::Sender<Result<(), (io::ErrorKind, String)>>;

/// Sends events to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::Sender<(Event, Ack)>,
    path: Arc<Path>,
}

impl LedgerWriter {
    /// Appends one event and waits until it is durable on disk. A write that failed returns
    /// the real cause (`No space left on device`, say) with the ledger's path.
    pub async fn record(&self, event: Event) -> Result<(), LedgerError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        self.tx
            .send((event, ack_tx))
            .await
            .map_err(|_| LedgerError::WriterGone)?;
        match ack_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => {
                Err(LedgerError::io(&self.path, io::Error::new(kind, message)))
            }
            Err(_) => Err(LedgerError::WriterGone),
        }
    }

    /// The ledger this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Starts the writer task of an open ledger; it ends when every [`LedgerWriter`] is dropped.
pub(super) fn start(
    ledger: Ledger,
) -> (
    LedgerWriter,
    tokio::task::JoinHandle<Result<(), LedgerError>>,
) {
    let (tx, rx) = mpsc::channel::<(Event, Ack)>(1024);
    let path: Arc<Path> = Arc::from(ledger.path.as_path());
    let handle = tokio::task::spawn_blocking(move || writer_loop(ledger, rx));
    (LedgerWriter { tx, path }, handle)
}

fn writer_loop(
    mut ledger: Ledger,
    mut rx: mpsc::Receiver<(Event, Ack)>,
) -> Result<(), LedgerError> {
    let mut batch = Vec::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    // A long replay at open (no usable checkpoint) is not repeated by the next run.
    checkpoint_if_due(&mut ledger, Due::AtInterval);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        // Group commit: everything that queued up while we were syncing goes in one fsync.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        buf.clear();
        for (ev, _) in &batch {
            serde_json::to_writer(&mut buf, ev).expect("events serialise");
            buf.push(b'\n');
        }
        let res = ledger
            .file
            .write_all(&buf)
            .and_then(|_| ledger.file.sync_data());
        match res {
            Ok(()) => {
                ledger.end.len += buf.len() as u64;
                ledger.end.lines += batch.len() as u64;
                ledger.uncovered += batch.len() as u64;
                {
                    let mut state = ledger.state.lock().expect("ledger state lock");
                    for (ev, ack) in batch.drain(..) {
                        state.apply(&ev);
                        let _ = ack.send(Ok(()));
                    }
                }
                checkpoint_if_due(&mut ledger, Due::AtInterval);
            }
            Err(e) => {
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(Err((e.kind(), e.to_string())));
                }
                return Err(LedgerError::io(&ledger.path, e));
            }
        }
    }
    checkpoint_if_due(&mut ledger, Due::Now);
    Ok(())
}

/// When [`checkpoint_if_due`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Once the lines not covered reach the interval.
    AtInterval,
    /// Whenever some line is not covered (the end of a run).
    Now,
}

/// Writes the checkpoint if it is due. Only lines already durable in the ledger are covered.
/// A failure costs only speed (the next resume replays more), so it is a warning.
fn checkpoint_if_due(ledger: &mut Ledger, due: Due) {
    if ledger.uncovered == 0 {
        return;
    }
    let mut state = ledger.state.lock().expect("ledger state lock");
    if due == Due::AtInterval && ledger.uncovered < checkpoint_interval(state.len()) {
        return;
    }
    match checkpoint::write(&ledger.path, &mut ledger.file, &mut state, ledger.end) {
        Ok(()) => ledger.uncovered = 0,
        Err(e) => tracing::warn!(
            "checkpoint {}: not written ({e}); the next run replays more of the ledger",
            checkpoint::checkpoint_path(&ledger.path).display()
        ),
    }
}
