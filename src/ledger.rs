//! The results ledger: an append-only JSON Lines file that makes a migration resumable.
//!
//! Line 1 is a [`Header`]. Every later run appends a [`RunStart`] line, then one [`Event`] per
//! line. Before each mutating AWS call the ledger holds an `intent`; after it, an outcome. Each
//! line is written with one `write` and made durable (`fsync`) before the caller goes on, so a
//! crash leaves at worst a torn last line, which [`Ledger::open`] sets aside with a warning.
//!
//! One run at a time: [`Ledger::open`] takes an exclusive lock on `LEDGER.lock`, which also
//! holds the process id of the run that owns it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

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

/// Which command a ledger belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// `transfer` and `cancel` (source account side).
    Transfer,
    /// `accept` and `reject` (target account side).
    Accept,
}

impl LedgerKind {
    fn name(self) -> &'static str {
        match self {
            LedgerKind::Transfer => "transfer",
            LedgerKind::Accept => "accept",
        }
    }
}

/// First line of every ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// Which command writes this ledger.
    pub kind: LedgerKind,
    /// Always `iot-cert-migrate`.
    pub tool: String,
    /// Version of the tool that created the ledger.
    pub tool_version: String,
    /// Path of the manifest as given when the ledger was created.
    pub manifest: String,
    /// SHA-256 of the manifest's bytes when the ledger was created.
    pub manifest_sha256: String,
    /// RFC 3339 time of creation.
    pub started_at: String,
}

/// A line written at the start of every run (the first run too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStart {
    /// Run number, 1 for the run that created the ledger.
    pub run: u32,
    /// RFC 3339 time.
    pub ts: String,
    /// Process id of the run.
    pub pid: u32,
    /// Tool version of this run.
    pub tool_version: String,
    /// SHA-256 of the manifest this run read.
    pub manifest_sha256: String,
}

/// The stage of the lifecycle an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Deactivate and detach before the transfer.
    Prepare,
    /// TransferCertificate.
    Transfer,
    /// CancelCertificateTransfer.
    Cancel,
    /// Undo of prepare after a cancel.
    Restore,
    /// AcceptCertificateTransfer (and target-side policy attachment).
    Accept,
    /// RejectCertificateTransfer.
    Reject,
}

/// A mutating AWS call; intents and their outcomes name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// UpdateCertificate INACTIVE.
    Deactivate,
    /// DetachPolicy.
    DetachPolicy,
    /// DetachThingPrincipal.
    DetachThing,
    /// TransferCertificate.
    Transfer,
    /// CancelCertificateTransfer.
    Cancel,
    /// AttachPolicy of a policy that prepare detached.
    ReattachPolicy,
    /// AttachThingPrincipal of a thing that prepare detached.
    ReattachThing,
    /// UpdateCertificate ACTIVE of a certificate that prepare deactivated.
    Reactivate,
    /// AcceptCertificateTransfer.
    Accept,
    /// RejectCertificateTransfer.
    Reject,
    /// AttachPolicy on the target side after accept.
    AttachPolicy,
}

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A mutating call is about to be sent.
    Intent,
    /// The call took effect (answered, or found so by reconciliation).
    Done,
    /// The call did not take effect (refused, or found so by reconciliation).
    NotDone,
    /// The call's outcome is unknown (timeout, reset, 5xx); reconciliation follows.
    Unknown,
    /// Terminal: the certificate is pending transfer to its target.
    Transferred,
    /// Terminal: the item failed; details say where and why.
    Failed,
    /// Terminal (cancel): the transfer was cancelled; the certificate is back, INACTIVE.
    Cancelled,
    /// Terminal (cancel --restore): prepare was undone.
    Restored,
    /// Terminal (cancel): the target had already accepted; nothing to cancel.
    AlreadyAccepted,
    /// Terminal (accept): the target owns the certificate.
    Accepted,
    /// Terminal (reject): the certificate went back to the source.
    Rejected,
}

/// Optional facts attached to an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// Intent: the action about to be taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Policy concerned (detach / attach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Thing concerned (detach / attach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing: Option<String>,
    /// Status before prepare changed it (for restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<String>,
    /// ARN returned by TransferCertificate, or of the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// How a terminal outcome was established: `call`, `already_pending`, `reconciled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// AWS error code of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// HTTP status of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Attempts made for the failing call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// A failure that may go away by itself (timeouts, 5xx, throttling beyond
    /// --max-throttle-wait): the next run tries the item again without --retry-failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// The stage a failure happened in (on `failed` events of other stages' items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<Stage>,
}

impl Details {
    fn is_empty(&self) -> bool {
        *self == Details::default()
    }
}

/// One line of the ledger after the header: something that happened to one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 time, milliseconds.
    pub ts: String,
    /// Certificate id (64 hex, lowercase).
    pub id: String,
    /// Target account of the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Region, when the manifest names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Lifecycle stage.
    pub stage: Stage,
    /// What happened.
    pub outcome: Outcome,
    /// Facts that go with it.
    #[serde(default, skip_serializing_if = "Details::is_empty")]
    pub details: Details,
}

impl Event {
    /// A new event stamped with the current time.
    pub fn new(
        id: &str,
        target: Option<&str>,
        region: Option<&str>,
        stage: Stage,
        outcome: Outcome,
    ) -> Self {
        Event {
            ts: now_rfc3339(),
            id: id.to_string(),
            target: target.map(str::to_string),
            region: region.map(str::to_string),
            stage,
            outcome,
            details: Details::default(),
        }
    }

    /// The same event with these details.
    pub fn with(mut self, details: Details) -> Self {
        self.details = details;
        self
    }
}

/// Current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The state of one certificate as the ledger tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Events exist but nothing terminal yet (e.g. prepare done, transfer not sent).
    Started,
    /// Pending transfer to its target.
    Transferred,
    /// Failed; see the failure.
    Failed,
    /// Transfer cancelled.
    Cancelled,
    /// Transfer cancelled and prepare undone.
    Restored,
    /// The target accepted (seen by cancel, or done by accept).
    Accepted,
    /// The target rejected.
    Rejected,
}

/// Why an item failed, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stage that failed.
    pub stage: Stage,
    /// AWS error code, or the tool's own reason code.
    pub error_code: String,
    /// HTTP status, if AWS answered.
    pub http_status: Option<u16>,
    /// Message for a person.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// The cause may go away by itself: a plain rerun tries the item again.
    pub retryable: bool,
}

/// What prepare changed, so that `cancel --restore` can undo it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undo {
    /// Status before deactivation (`ACTIVE`), if prepare deactivated.
    pub previous_status: Option<String>,
    /// Policies prepare detached and restore has not re-attached yet.
    pub policies: Vec<String>,
    /// Things prepare detached and restore has not re-attached yet.
    pub things: Vec<String>,
}

impl Undo {
    /// True when nothing is left to undo.
    pub fn is_empty(&self) -> bool {
        self.previous_status.is_none() && self.policies.is_empty() && self.things.is_empty()
    }
}

/// Everything the ledger knows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    /// Latest state.
    pub state: ItemState,
    /// Target account of the latest event that named one.
    pub target: Option<String>,
    /// Region of the latest event that named one.
    pub region: Option<String>,
    /// An intent without an outcome: the item is in doubt until reconciled.
    pub open_intent: Option<OpenIntent>,
    /// Set while state is `Failed`.
    pub failure: Option<Box<Failure>>,
    /// ARN recorded at transfer.
    pub arn: Option<String>,
    /// What prepare changed (kept only when the ledger was opened with `keep_undo`).
    pub undo: Option<Box<Undo>>,
}

/// An intent recorded without an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIntent {
    /// Stage of the intent.
    pub stage: Stage,
    /// The call.
    pub action: Action,
    /// Policy or thing named by the intent.
    pub subject: Option<String>,
    /// Status before the call (deactivate / reactivate).
    pub previous_status: Option<String>,
}

impl ItemRecord {
    fn new() -> Self {
        ItemRecord {
            state: ItemState::Started,
            target: None,
            region: None,
            open_intent: None,
            failure: None,
            arn: None,
            undo: None,
        }
    }
}

/// The replayed content of a ledger: one record per certificate id.
#[derive(Debug, Default)]
pub struct LedgerState {
    items: HashMap<Box<str>, ItemRecord>,
    keep_undo: bool,
    /// Number of runs recorded (RunStart lines).
    pub runs: u32,
}

impl LedgerState {
    /// An empty state; `keep_undo` keeps what prepare changed (only `cancel --restore` needs it).
    pub fn new(keep_undo: bool) -> Self {
        LedgerState {
            items: HashMap::new(),
            keep_undo,
            runs: 0,
        }
    }

    /// The record of a certificate, if the ledger mentions it.
    pub fn get(&self, id: &str) -> Option<&ItemRecord> {
        self.items.get(id)
    }

    /// Every record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ItemRecord)> {
        self.items.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Number of certificates the ledger mentions.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the ledger mentions no certificate.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, ev: &Event) {
        let keep_undo = self.keep_undo;
        let rec = match self.items.get_mut(ev.id.as_str()) {
            Some(r) => r,
            None => self
                .items
                .entry(ev.id.clone().into_boxed_str())
                .or_insert_with(ItemRecord::new),
        };
        if ev.target.is_some() && rec.target.as_deref() != ev.target.as_deref() {
            rec.target = ev.target.clone();
        }
        if ev.region.is_some() && rec.region.as_deref() != ev.region.as_deref() {
            rec.region = ev.region.clone();
        }
        let d = &ev.details;
        match ev.outcome {
            Outcome::Intent => {
                rec.open_intent = d.action.map(|action| OpenIntent {
                    stage: ev.stage,
                    action,
                    subject: d.policy.clone().or_else(|| d.thing.clone()),
                    previous_status: d.previous_status.clone(),
                });
            }
            Outcome::Unknown => {
                // The intent stays open: only reconciliation closes it.
            }
            Outcome::Done => {
                rec.open_intent = None;
                if keep_undo {
                    record_undo(rec, d);
                }
            }
            Outcome::NotDone => rec.open_intent = None,
            Outcome::Transferred => {
                rec.open_intent = None;
                rec.state = ItemState::Transferred;
                rec.failure = None;
                if d.arn.is_some() {
                    rec.arn = d.arn.clone();
                }
            }
            Outcome::Failed => {
                // A failure does not close an open intent: its outcome may still be unknown.
                rec.state = ItemState::Failed;
                rec.failure = Some(Box::new(Failure {
                    stage: d.failed_stage.unwrap_or(ev.stage),
                    error_code: d.error_code.clone().unwrap_or_default(),
                    http_status: d.http_status,
                    message: d.message.clone().unwrap_or_default(),
                    attempts: d.attempts.unwrap_or(0),
                    retryable: d.retryable.unwrap_or(false),
                }));
            }
            Outcome::Cancelled => terminal(rec, ItemState::Cancelled),
            Outcome::Restored => terminal(rec, ItemState::Restored),
            Outcome::AlreadyAccepted | Outcome::Accepted => terminal(rec, ItemState::Accepted),
            Outcome::Rejected => terminal(rec, ItemState::Rejected),
        }
    }
}

fn terminal(rec: &mut ItemRecord, state: ItemState) {
    rec.open_intent = None;
    rec.state = state;
    rec.failure = None;
}

/// Keeps track of what prepare changed and restore undid.
fn record_undo(rec: &mut ItemRecord, d: &Details) {
    let Some(action) = d.action else { return };
    let undo = rec.undo.get_or_insert_with(Default::default);
    match action {
        Action::Deactivate => undo.previous_status = d.previous_status.clone(),
        Action::DetachPolicy => push_unique(&mut undo.policies, d.policy.as_deref()),
        Action::DetachThing => push_unique(&mut undo.things, d.thing.as_deref()),
        Action::Reactivate => undo.previous_status = None,
        Action::ReattachPolicy => undo
            .policies
            .retain(|p| Some(p.as_str()) != d.policy.as_deref()),
        Action::ReattachThing => undo
            .things
            .retain(|t| Some(t.as_str()) != d.thing.as_deref()),
        _ => {}
    }
}

fn push_unique(list: &mut Vec<String>, name: Option<&str>) {
    if let Some(name) = name {
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
    }
}

/// Any line of a ledger file, parsed leniently so the three shapes share one pass.
#[derive(Deserialize)]
struct AnyLine {
    #[serde(default)]
    format: Option<u32>,
    #[serde(default)]
    run: Option<u32>,
}

/// An open ledger: locked, replayed, positioned for appending.
pub struct Ledger {
    path: PathBuf,
    file: File,
    header: Header,
    state: Arc<Mutex<LedgerState>>,
    warnings: Vec<String>,
    _lock: LedgerLock,
}

/// What [`Ledger::open`] needs to know about the run.
pub struct OpenOptionsLedger<'a> {
    /// Which command writes.
    pub kind: LedgerKind,
    /// Manifest path (recorded in a new header).
    pub manifest_path: &'a Path,
    /// Manifest SHA-256.
    pub manifest_sha256: &'a str,
    /// Keep what prepare changed (cancel --restore).
    pub keep_undo: bool,
}

impl Ledger {
    /// Locks, reads and replays the ledger at `path`, creating it if missing, and records the
    /// start of a run. A torn last line is set aside in `PATH.torn` with a warning.
    pub fn open(path: &Path, opts: OpenOptionsLedger<'_>) -> Result<Ledger, LedgerError> {
        let lock = LedgerLock::acquire(path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| LedgerError::io(path, e))?;
        let mut warnings = Vec::new();
        let mut state = LedgerState::new(opts.keep_undo);
        let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
        let mut header = None;
        if len > 0 {
            let read = replay(&mut file, path, &mut state, &mut warnings)?;
            if read.good_len < len {
                set_aside_torn_tail(&mut file, path, read.good_len)?;
            } else if read.missing_newline {
                // A whole, valid last line that only lost its newline: keep it, add the newline.
                file.write_all(b"\n")
                    .and_then(|_| file.sync_data())
                    .map_err(|e| LedgerError::io(path, e))?;
            }
            if let Some(h) = read.header {
                if h.kind != opts.kind {
                    return Err(LedgerError::WrongKind {
                        path: path.to_path_buf(),
                        found: h.kind.name().into(),
                        expected: opts.kind.name().into(),
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
                write_line(&mut file, path, &header)?;
                sync_parent_dir(path);
                header
            }
        };
        state.runs += 1;
        let run = RunStart {
            run: state.runs,
            ts: now_rfc3339(),
            pid: std::process::id(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            manifest_sha256: opts.manifest_sha256.to_string(),
        };
        write_line(&mut file, path, &run)?;
        Ok(Ledger {
            path: path.to_path_buf(),
            file,
            header,
            state: Arc::new(Mutex::new(state)),
            warnings,
            _lock: lock,
        })
    }

    /// Reads a ledger without locking or changing it (for `status`). A torn last line is
    /// reported as a warning; a damaged middle line is an error.
    pub fn read_only(
        path: &Path,
        keep_undo: bool,
    ) -> Result<(Header, LedgerState, Vec<String>), LedgerError> {
        let mut file = File::open(path).map_err(|e| LedgerError::io(path, e))?;
        let mut state = LedgerState::new(keep_undo);
        let mut warnings = Vec::new();
        let read = replay(&mut file, path, &mut state, &mut warnings)?;
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

    /// Warnings found while opening (torn line, changed manifest).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Starts the single writer task: it appends events, syncs them in groups and applies them
    /// to the shared state; it ends when every [`LedgerWriter`] is dropped.
    pub fn into_writer(
        self,
    ) -> (
        LedgerWriter,
        tokio::task::JoinHandle<Result<(), LedgerError>>,
    ) {
        let (tx, rx) = mpsc::channel::<(Event, oneshot::Sender<Result<(), String>>)>(1024);
        let handle = tokio::task::spawn_blocking(move || writer_loop(self, rx));
        (LedgerWriter { tx }, handle)
    }
}

/// Sends events to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::Sender<(Event, oneshot::Sender<Result<(), String>>)>,
}

impl LedgerWriter {
    /// Appends one event and waits until it is durable on disk.
    pub async fn record(&self, event: Event) -> Result<(), LedgerError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        self.tx
            .send((event, ack_tx))
            .await
            .map_err(|_| LedgerError::WriterGone)?;
        match ack_rx.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(LedgerError::WriterGone),
        }
    }
}

fn writer_loop(
    mut ledger: Ledger,
    mut rx: mpsc::Receiver<(Event, oneshot::Sender<Result<(), String>>)>,
) -> Result<(), LedgerError> {
    let mut batch = Vec::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        // Group commit: everything that queued up while we were syncing goes in one fsync.
        while batch.len() < 4096 {
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
                let msg = e.to_string();
                for (_, ack) in batch.drain(..) {
                    let _ = ack.send(Err(msg.clone()));
                }
                return Err(LedgerError::io(&ledger.path, e));
            }
        }
    }
    Ok(())
}

fn write_line<T: Serialize>(file: &mut File, path: &Path, value: &T) -> Result<(), LedgerError> {
    let mut line = serde_json::to_vec(value).expect("ledger lines serialise");
    line.push(b'\n');
    file.write_all(&line)
        .and_then(|_| file.sync_data())
        .map_err(|e| LedgerError::io(path, e))
}

/// What a replay found besides the events.
struct Replayed {
    /// `None` only when the file holds nothing but a torn first line.
    header: Option<Header>,
    /// Length of the well-formed prefix; anything after it is a torn last line.
    good_len: u64,
    /// The last line is valid but lacks its newline.
    missing_newline: bool,
}

/// Reads every line into `state`.
fn replay(
    file: &mut File,
    path: &Path,
    state: &mut LedgerState,
    warnings: &mut Vec<String>,
) -> Result<Replayed, LedgerError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| LedgerError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, &mut *file);
    let mut line = Vec::with_capacity(512);
    let mut header: Option<Header> = None;
    let mut good_len = 0u64;
    let mut lineno = 0u64;
    let mut missing_newline = false;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| LedgerError::io(path, e))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let complete = line.last() == Some(&b'\n');
        let parsed = parse_line(&line, lineno, header.is_none(), state);
        match parsed {
            Ok(Some(h)) => header = Some(h),
            Ok(None) => {}
            Err(reason) => {
                // Only a last line that lacks its newline can be a torn write (the header
                // too, when the run that created the ledger died writing it).
                let at_end = reader.fill_buf().map(|b| b.is_empty()).unwrap_or(false);
                if !complete && at_end && (header.is_some() || lineno == 1) {
                    warnings.push(format!(
                        "ledger {}:{}: ignoring an incomplete last line (a write was interrupted); it is kept in {}",
                        path.display(),
                        lineno,
                        torn_path(path).display()
                    ));
                    break;
                }
                return Err(LedgerError::Damaged {
                    path: path.to_path_buf(),
                    line: lineno,
                    reason,
                });
            }
        }
        good_len += n as u64;
        missing_newline = !complete;
    }
    Ok(Replayed {
        header,
        good_len,
        missing_newline,
    })
}

fn parse_line(
    line: &[u8],
    lineno: u64,
    want_header: bool,
    state: &mut LedgerState,
) -> Result<Option<Header>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let text = text.trim_end_matches(['\n', '\r']);
    if want_header {
        if lineno != 1 {
            return Err("header must be the first line".into());
        }
        let h: Header =
            serde_json::from_str(text).map_err(|e| format!("not a ledger header: {e}"))?;
        if h.format > FORMAT_VERSION {
            return Err(format!(
                "ledger format {} is newer than this tool understands ({FORMAT_VERSION}); upgrade iot-cert-migrate",
                h.format
            ));
        }
        return Ok(Some(h));
    }
    if text.is_empty() {
        return Ok(None);
    }
    // Events are by far the most common line: try them first.
    match serde_json::from_str::<Event>(text) {
        Ok(ev) => {
            state.apply(&ev);
            Ok(None)
        }
        Err(e) => {
            let any: AnyLine = serde_json::from_str(text).map_err(|_| e.to_string())?;
            if any.run.is_some() {
                let r: RunStart = serde_json::from_str(text).map_err(|e| e.to_string())?;
                state.runs = state.runs.max(r.run);
                Ok(None)
            } else if any.format.is_some() {
                Err("a second header line".into())
            } else {
                Err(e.to_string())
            }
        }
    }
}

fn torn_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".torn");
    PathBuf::from(p)
}

/// Moves the bytes after the last good line into `PATH.torn`, then truncates.
fn set_aside_torn_tail(file: &mut File, path: &Path, good_len: u64) -> Result<(), LedgerError> {
    let io = |e| LedgerError::io(path, e);
    file.seek(SeekFrom::Start(good_len)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    let torn = torn_path(path);
    let mut side = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&torn)
        .map_err(|e| LedgerError::io(&torn, e))?;
    tail.push(b'\n');
    side.write_all(&tail)
        .and_then(|_| side.sync_all())
        .map_err(|e| LedgerError::io(&torn, e))?;
    file.set_len(good_len).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

fn sync_parent_dir(path: &Path) {
    // Makes the new file's directory entry durable; best effort on platforms that refuse.
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The exclusive lock of one ledger: `LEDGER.lock`, holding the owner's pid.
struct LedgerLock {
    _file: File,
}

impl LedgerLock {
    fn acquire(ledger: &Path) -> Result<LedgerLock, LedgerError> {
        let mut p = ledger.as_os_str().to_owned();
        p.push(".lock");
        let lock_path = PathBuf::from(p);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| LedgerError::io(&lock_path, e))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
                    .and_then(|_| file.flush())
                    .map_err(|e| LedgerError::io(&lock_path, e))?;
                Ok(LedgerLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let pid = s.trim();
                Err(LedgerError::Locked {
                    path: ledger.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(LedgerError::io(&lock_path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn opts(sha: &str) -> OpenOptionsLedger<'_> {
        OpenOptionsLedger {
            kind: LedgerKind::Transfer,
            manifest_path: Path::new("m.csv"),
            manifest_sha256: sha,
            keep_undo: true,
        }
    }

    fn intent(action: Action) -> Event {
        Event::new(
            ID,
            Some("222222222222"),
            None,
            Stage::Transfer,
            Outcome::Intent,
        )
        .with(Details {
            action: Some(action),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn events_survive_reopen_and_runs_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        let ledger = Ledger::open(&path, opts("abc")).unwrap();
        let state = ledger.shared_state();
        let (w, h) = ledger.into_writer();
        w.record(intent(Action::Transfer)).await.unwrap();
        drop(w);
        h.await.unwrap().unwrap();
        assert!(state.lock().unwrap().get(ID).unwrap().open_intent.is_some());

        let ledger = Ledger::open(&path, opts("abc")).unwrap();
        assert_eq!(ledger.state().runs, 2);
        let state = ledger.state();
        let rec = state.get(ID).unwrap();
        assert_eq!(rec.open_intent.as_ref().unwrap().action, Action::Transfer);
        assert!(ledger.warnings().is_empty());
    }

    #[test]
    fn second_open_is_locked_and_names_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        let _first = Ledger::open(&path, opts("abc")).unwrap();
        match Ledger::open(&path, opts("abc")) {
            Err(LedgerError::Locked { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("expected Locked, got a second open ledger"),
        }
    }

    #[test]
    fn torn_last_line_is_set_aside_and_middle_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        drop(Ledger::open(&path, opts("abc")).unwrap());
        let good = serde_json::to_string(&intent(Action::Transfer)).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, "{good}\n{{\"ts\":\"2026").unwrap();
        drop(f);
        let ledger = Ledger::open(&path, opts("abc")).unwrap();
        assert_eq!(ledger.warnings().len(), 1, "{:?}", ledger.warnings());
        assert!(
            ledger.warnings()[0].contains(":4:"),
            "{}",
            ledger.warnings()[0]
        );
        assert!(ledger.state().get(ID).is_some());
        let torn = std::fs::read_to_string(torn_path(&path)).unwrap();
        assert!(torn.starts_with("{\"ts\":\"2026"));
        drop(ledger);

        // Now damage a middle line: the header is line 1, run lines follow.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{garbage";
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let before = std::fs::read(&path).unwrap();
        match Ledger::open(&path, opts("abc")) {
            Err(LedgerError::Damaged { line, .. }) => assert_eq!(line, 3),
            Err(e) => panic!("expected Damaged, got {e}"),
            Ok(_) => panic!("expected Damaged"),
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "a damaged ledger is left untouched"
        );
    }

    #[test]
    fn changed_manifest_is_a_warning_and_wrong_kind_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        drop(Ledger::open(&path, opts("abc")).unwrap());
        let l = Ledger::open(&path, opts("def")).unwrap();
        assert!(l.warnings()[0].contains("changed"));
        drop(l);
        let mut o = opts("abc");
        o.kind = LedgerKind::Accept;
        assert!(matches!(
            Ledger::open(&path, o),
            Err(LedgerError::WrongKind { .. })
        ));
    }

    #[test]
    fn undo_tracks_detach_and_reattach() {
        let mut s = LedgerState::new(true);
        let done = |action, policy: Option<&str>, prev: Option<&str>| {
            Event::new(ID, None, None, Stage::Prepare, Outcome::Done).with(Details {
                action: Some(action),
                policy: policy.map(Into::into),
                previous_status: prev.map(Into::into),
                ..Default::default()
            })
        };
        s.apply(&done(Action::Deactivate, None, Some("ACTIVE")));
        s.apply(&done(Action::DetachPolicy, Some("p1"), None));
        s.apply(&done(Action::DetachPolicy, Some("p2"), None));
        s.apply(&done(Action::ReattachPolicy, Some("p1"), None));
        let undo = s.get(ID).unwrap().undo.as_deref().unwrap().clone();
        assert_eq!(undo.previous_status.as_deref(), Some("ACTIVE"));
        assert_eq!(undo.policies, vec!["p2".to_string()]);
    }

    #[test]
    fn failure_keeps_an_unknown_intent_open() {
        let mut s = LedgerState::new(false);
        s.apply(&intent(Action::Transfer));
        s.apply(
            &Event::new(ID, None, None, Stage::Transfer, Outcome::Failed).with(Details {
                error_code: Some("InternalFailureException".into()),
                ..Default::default()
            }),
        );
        let rec = s.get(ID).unwrap();
        assert_eq!(rec.state, ItemState::Failed);
        assert!(rec.open_intent.is_some());
        s.apply(&Event::new(
            ID,
            None,
            None,
            Stage::Transfer,
            Outcome::Transferred,
        ));
        assert_eq!(s.get(ID).unwrap().state, ItemState::Transferred);
        assert!(s.get(ID).unwrap().failure.is_none());
    }
}
