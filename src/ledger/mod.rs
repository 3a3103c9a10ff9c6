//! The results ledger: an append-only JSON Lines file that makes a migration resumable.
//!
//! Line 1 is a [`Header`]. Every run appends a [`RunStart`] line (with the account and region
//! it acts in), then one [`Event`] per line. Before each mutating AWS call the ledger holds an `intent`; after it, an outcome. The
//! single [`LedgerWriter`] appends events in groups, each group made durable with one
//! `fdatasync` before any of its callers goes on, so a crash leaves at worst a torn last line,
//! which [`Ledger::open`] sets aside with a warning.
//!
//! One run at a time: [`Ledger::open`] takes an exclusive lock on `LEDGER.lock`, which also
//! holds the process id of the run that owns it.
//!
//! A resume does not read the whole ledger: beside it, `LEDGER.checkpoint` holds the compact
//! state as of a ledger offset (written at the end of a run and every so many events), and
//! only the lines after that offset are replayed. A checkpoint that does not verify against
//! the ledger is ignored with a warning; see [`checkpoint`].
//!
//! The parts: [`event`] (the lines and their closed sets), [`state`] (what the events fold
//! into), the writer, the replay of a file, the checkpoint, the lock, and the reading back
//! of the snapshots carry records.

pub mod checkpoint;
pub mod event;
mod lock;
mod replay;
mod snapshots;
pub mod state;
mod writer;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

pub use checkpoint::checkpoint_path;
pub use event::{
    now_rfc3339, Action, Details, Event, Header, Identity, LedgerKind, Outcome, RunStart, Stage,
    Via, Wait,
};
pub use snapshots::read_snapshots;
pub use state::{
    CertId, Failure, ItemRecord, ItemState, LedgerState, OpenIntent, Undo, UndoHistory,
};
pub use writer::LedgerWriter;

use checkpoint::{Covered, Rejected};
use lock::LedgerLock;
use replay::{replay, set_aside_torn_tail};

/// Version of the ledger format written in the header; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// Errors opening, reading or writing a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger or its lock file could not be read or written.
    #[error("ledger {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process holds the ledger's lock.
    #[error("another run (pid {pid}) holds ledger {path}; wait for it to finish or stop it")]
    Locked {
        /// The ledger.
        path: PathBuf,
        /// The holder's process id as written in the lock file ("unknown" if unreadable).
        pid: String,
    },
    /// A line other than the last one cannot be parsed: the file was damaged or edited.
    #[error("ledger {path}:{line}: damaged line ({reason}); nothing was changed. Restore the file from a backup or move it aside")]
    Damaged {
        /// The ledger.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Why it could not be read.
        reason: String,
    },
    /// The ledger belongs to another command (an accept ledger given to transfer, say).
    #[error("ledger {path} was written by `{found}`, not `{expected}`: use another --ledger path")]
    WrongKind {
        /// The ledger.
        path: PathBuf,
        /// Kind found in the header.
        found: String,
        /// Kind this command writes.
        expected: String,
    },
    /// The ledger was written by a newer version of the tool.
    #[error("ledger {path} was written by a newer iot-cert-migrate (ledger format {format}; this one reads format {FORMAT_VERSION}): upgrade iot-cert-migrate; nothing was changed")]
    NewerFormat {
        /// The ledger.
        path: PathBuf,
        /// The format its header names.
        format: u32,
    },
    /// The writer task has stopped (after an earlier write error).
    #[error("the ledger writer has stopped")]
    WriterGone,
}

impl LedgerError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        LedgerError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An open ledger: locked, replayed, positioned for appending.
pub struct Ledger {
    path: PathBuf,
    file: File,
    header: Header,
    state: Arc<Mutex<LedgerState>>,
    warnings: Vec<String>,
    notes: Vec<String>,
    /// Length and lines of the file (everything in it is durable).
    end: Covered,
    /// Lines the state holds that no checkpoint covers yet.
    uncovered: u64,
    /// The manifest's SHA-256, for the run line.
    manifest_sha256: String,
    _lock: LedgerLock,
}

/// How an open ledger's state was read.
struct Read {
    state: LedgerState,
    header: Option<Header>,
    replayed: replay::Replayed,
    /// Lines after the checkpoint (all of them without one).
    uncovered: u64,
}

/// Reads the state of `file`: from its checkpoint and the lines after it when the
/// checkpoint verifies, from every line otherwise (saying why in `warnings`).
fn read_state(
    file: &mut File,
    path: &Path,
    len: u64,
    undo: UndoHistory,
    warnings: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<Read, LedgerError> {
    let mut state = LedgerState::new(undo);
    let mut from = None;
    match checkpoint::load(path, file, len, undo) {
        Ok(Some(loaded)) => {
            state = loaded.state;
            from = Some(loaded.covered);
        }
        Ok(None) => {}
        Err(Rejected::NoUndo) => notes.push(format!(
            "checkpoint {}: {}: reading the whole ledger",
            checkpoint_path(path).display(),
            Rejected::NoUndo
        )),
        Err(why) => warnings.push(format!(
            "checkpoint {} not used: {why}; reading the whole ledger instead (nothing is lost: the ledger is the record, and a new checkpoint is written)",
            checkpoint_path(path).display()
        )),
    }
    let replayed = replay(file, path, &mut state, warnings, from)?;
    if let Some(covered) = from {
        notes.push(format!(
            "ledger {}: state read from its checkpoint ({}, {}) and the {} after it",
            path.display(),
            crate::output::count(state.len(), "certificate"),
            crate::output::count(covered.lines, "line"),
            crate::output::count(replayed.replayed, "line")
        ));
    }
    Ok(Read {
        uncovered: replayed.replayed,
        header: replayed.header.clone(),
        replayed,
        state,
    })
}

/// What [`Ledger::open`] needs to know about the run.
pub struct OpenOptionsLedger<'a> {
    /// Which command writes.
    pub kind: LedgerKind,
    /// Manifest path (recorded in a new header).
    pub manifest_path: &'a Path,
    /// Manifest SHA-256.
    pub manifest_sha256: &'a str,
    /// Whether the state keeps what prepare changed (cancel --restore, rollback).
    pub undo: UndoHistory,
}

impl Ledger {
    /// Locks, reads and replays the ledger at `path` (from its checkpoint when that verifies),
    /// creating it if missing. A torn last line is set aside in `PATH.torn` with a warning.
    /// The run's own line is written by [`Ledger::start_run`], once the run knows whose
    /// credentials it holds.
    pub fn open(path: &Path, opts: OpenOptionsLedger<'_>) -> Result<Ledger, LedgerError> {
        let lock = LedgerLock::acquire(path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| LedgerError::io(path, e))?;
        let mut warnings = Vec::new();
        let mut notes = Vec::new();
        // We hold the lock: a checkpoint being written is this run's, none is another's.
        for tmp in crate::durable::left_behind(&checkpoint_path(path)) {
            warnings.push(format!(
                "{}: a checkpoint write was interrupted (the run was killed or the machine stopped); ignoring and removing it",
                tmp.display()
            ));
            std::fs::remove_file(&tmp).map_err(|e| LedgerError::io(&tmp, e))?;
        }
        let mut state = LedgerState::new(opts.undo);
        let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
        let mut header = None;
        let mut end = Covered { len: 0, lines: 0 };
        let mut uncovered = 0;
        if len > 0 {
            let read = read_state(&mut file, path, len, opts.undo, &mut warnings, &mut notes)?;
            state = read.state;
            uncovered = read.uncovered;
            let replayed = read.replayed;
            end = Covered {
                len: replayed.good_len,
                lines: replayed.lines,
            };
            if replayed.good_len < len {
                set_aside_torn_tail(&mut file, path, replayed.good_len)?;
            } else if replayed.missing_newline {
                // A whole, valid last line that only lost its newline: keep it, add the newline.
                file.write_all(b"\n")
                    .and_then(|_| file.sync_data())
                    .map_err(|e| LedgerError::io(path, e))?;
                end.len += 1;
            }
            if let Some(h) = read.header {
                if h.kind != opts.kind {
                    return Err(LedgerError::WrongKind {
                        path: path.to_path_buf(),
                        found: h.kind.as_str().into(),
                        expected: opts.kind.as_str().into(),
                    });
                }
                if h.manifest_sha256 != opts.manifest_sha256 {
                    warnings.push(format!(
                        "manifest {} changed since ledger {} was started; the ledger is keyed by certificate id, so finished certificates stay finished",
                        opts.manifest_path.display(),
                        path.display()
                    ));
                }
                header = Some(h);
            }
        }
        // A new ledger, or one whose creation was cut short in its header (set aside above):
        // nothing can have been recorded after a torn header, so it starts afresh.
        let header = match header {
            Some(h) => h,
            None => {
                let header = Header {
                    format: FORMAT_VERSION,
                    kind: opts.kind,
                    tool: "iot-cert-migrate".into(),
                    tool_version: env!("CARGO_PKG_VERSION").into(),
                    manifest: opts.manifest_path.display().to_string(),
                    manifest_sha256: opts.manifest_sha256.to_string(),
                    started_at: now_rfc3339(),
                };
                end = Covered {
                    len: write_line(&mut file, path, &header)?,
                    lines: 1,
                };
                crate::durable::sync_dir_of(path).map_err(|e| LedgerError::io(path, e))?;
                header
            }
        };
        Ok(Ledger {
            path: path.to_path_buf(),
            file,
            header,
            state: Arc::new(Mutex::new(state)),
            warnings,
            notes,
            end,
            uncovered,
            manifest_sha256: opts.manifest_sha256.to_string(),
            _lock: lock,
        })
    }

    /// Records the start of a run acting as `identity` (the account and default region of
    /// its credentials, when known): its run line, before any event.
    pub fn start_run(&mut self, identity: Option<Identity>) -> Result<(), LedgerError> {
        let mut state = self.state.lock().expect("ledger state lock");
        let number = state.runs + 1;
        let run = RunStart {
            run: number,
            ts: now_rfc3339(),
            pid: std::process::id(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            manifest_sha256: self.manifest_sha256.clone(),
            account: identity.as_ref().map(|i| i.account.clone()),
            region: identity.as_ref().map(|i| i.region.clone()),
        };
        state.start_run(number, identity);
        self.end.len += write_line(&mut self.file, &self.path, &run)?;
        self.end.lines += 1;
        self.uncovered += 1;
        Ok(())
    }

    /// Reads a ledger (from its checkpoint when that verifies) without locking or changing it
    /// (for `status`). A torn last line is reported as a warning; a damaged middle line is an
    /// error.
    pub fn read_only(
        path: &Path,
        undo: UndoHistory,
    ) -> Result<(Header, LedgerState, Vec<String>), LedgerError> {
        let mut file = File::open(path).map_err(|e| LedgerError::io(path, e))?;
        let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
        let mut warnings = Vec::new();
        let mut notes = Vec::new();
        let read = read_state(&mut file, path, len, undo, &mut warnings, &mut notes)?;
        for note in notes {
            tracing::debug!("{note}");
        }
        let state = read.state;
        let header = read.header.ok_or_else(|| LedgerError::Damaged {
            path: path.to_path_buf(),
            line: 1,
            reason: "incomplete header: the ledger's creation was interrupted; the next run starts it afresh".into(),
        })?;
        Ok((header, state, warnings))
    }

    /// The ledger's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The state: replayed at open, then updated by the writer as events become durable.
    pub fn state(&self) -> MutexGuard<'_, LedgerState> {
        self.state.lock().expect("ledger state lock")
    }

    /// A handle on the state that outlives the ledger (it moves into the writer).
    pub fn shared_state(&self) -> Arc<Mutex<LedgerState>> {
        self.state.clone()
    }

    /// Warnings found while opening (torn line, changed manifest, a checkpoint not used).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What opening did that is worth an info line (the checkpoint it started from).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Starts the single writer task: it appends events, syncs them in groups and applies them
    /// to the shared state; it ends when every [`LedgerWriter`] is dropped.
    pub fn into_writer(
        self,
    ) -> (
        LedgerWriter,
        tokio::task::JoinHandle<Result<(), LedgerError>>,
    ) {
        writer::start(self)
    }
}

/// Appends one line, synced; returns its length.
fn write_line<T: Serialize>(file: &mut File, path: &Path, value: &T) -> Result<u64, LedgerError> {
    let mut line = serde_json::to_vec(value).expect("ledger lines serialise");
    line.push(b'\n');
    file.write_all(&line)
        .and_then(|_| file.sync_data())
        .map_err(|e| LedgerError::io(path, e))?;
    Ok(line.len() as u64)
}

#[cfg(test)]
mod tests;
