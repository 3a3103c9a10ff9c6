//! The single writer task: appends events, makes them durable in groups (one `fdatasync` for
//! everything that queued up meanwhile) and applies them to the shared state.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::event::Event;
use super::{Ledger, LedgerError};

/// Events a group commit takes at most.
const MAX_BATCH: usize = 4096;

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
                let mut state = ledger.state.lock().expect("ledger state lock");
                for (ev, ack) in batch.drain(..) {
                    state.apply(&ev);
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(Err((e.kind(), e.to_string())));
                }
                return Err(LedgerError::io(&ledger.path, e));
            }
        }
    }
    Ok(())
}
