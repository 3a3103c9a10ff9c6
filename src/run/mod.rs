//! One run of a ledger-keeping command (`transfer`, `cancel`, `accept`, `reject`): the
//! manifest, the ledger and its single writer, the session, and [`Run::execute`], which hands
//! every selected certificate to the command's worker (items in doubt first, one lane per
//! region), then writes the failure report and prints the summary.

mod work;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

pub use work::{is_final_failure, FailedItems};

use crate::lifecycle::{Mandate, Pick, Work};

use crate::breaker::Trip;
use crate::cli::{GlobalArgs, OutputFiles, OutputFormat, PacingArgs, RunLimitArgs};
use crate::error::{Error, ExitCode};
use crate::files::{check_writable, Writing};
use crate::iot::AccountClients;
use crate::ledger::{
    ItemRecord, ItemState, Ledger, LedgerError, LedgerKind, LedgerState, LedgerWriter,
    OpenOptionsLedger,
};
use crate::manifest::{Manifest, ManifestError, ManifestRow};
use crate::metrics::{MetricsFile, Snapshot};
use crate::output;
use crate::pipeline::{self, ItemEnd, Window};
use crate::progress::{Progress, ProgressSettings};
use crate::report::{self, Counts, Summary};
use crate::session::{Session, Settings, TargetProfiles};
use crate::stop::Stop;

pub use crate::ledger::UndoHistory;

/// `MANIFEST` with its extension replaced by `suffix` (`certs.csv` -> `certs.ledger.jsonl`).
pub fn default_path(manifest: &Path, suffix: &str) -> PathBuf {
    manifest.with_extension(suffix)
}

/// The default ledger of a manifest for a ledger kind.
pub fn default_ledger(manifest: &Path, kind: LedgerKind) -> PathBuf {
    match kind {
        LedgerKind::Transfer => default_path(manifest, "ledger.jsonl"),
        LedgerKind::Accept => default_path(manifest, "accept-ledger.jsonl"),
        LedgerKind::Register => default_path(manifest, "register-ledger.jsonl"),
        LedgerKind::Retire => default_path(manifest, "retire-ledger.jsonl"),
    }
}

/// The default failure report of a manifest for a ledger kind.
pub fn default_failures(manifest: &Path, kind: LedgerKind) -> PathBuf {
    match kind {
        LedgerKind::Transfer => default_path(manifest, "failures.csv"),
        LedgerKind::Accept => default_path(manifest, "accept-failures.csv"),
        LedgerKind::Register => default_path(manifest, "register-failures.csv"),
        LedgerKind::Retire => default_path(manifest, "retire-failures.csv"),
    }
}

/// What a command opens a run with.
pub struct RunSpec<'a> {
    /// The command's name, for the summary.
    pub command: &'static str,
    /// The manifest path.
    pub manifest: &'a Path,
    /// `--ledger`, `--failures`.
    pub files: &'a OutputFiles,
    /// Which ledger the command writes.
    pub kind: LedgerKind,
    /// Whether the state keeps the undo history.
    pub undo: UndoHistory,
    /// Pacing and retries.
    pub pacing: &'a PacingArgs,
}

/// How the run's items are handed out.
pub struct Execution<'a> {
    /// Certificates in flight at once, per region.
    pub concurrency: usize,
    /// Certificates each region starts with, alone, before the rest (0: none): see
    /// [`Window::canary`].
    pub canary: usize,
    /// Time box, item limit, grace period.
    pub limits: &'a RunLimitArgs,
    /// What the progress display calls the work (`transferring`).
    pub verb: &'static str,
    /// Items a person must fix first: skipped, or tried again.
    pub failed: FailedItems,
}

/// Decides whether a manifest row concerns a run at all (see [`Run::restrict_to`]).
pub type RowFilter = Box<dyn Fn(Option<&ItemRecord>, &ManifestRow) -> bool + Send + Sync>;

/// How the run shows itself on stdout and stderr.
struct View {
    output: OutputFormat,
    progress: ProgressSettings,
}

/// The shared state of one run of a ledger-keeping command.
pub struct Run {
    /// The command's name, for the summary.
    pub command: &'static str,
    /// The validated manifest.
    pub manifest: Manifest,
    /// The credentials and the call context of the run.
    pub session: Session,
    ledger_path: PathBuf,
    failures_path: PathBuf,
    /// `None` once the run closed the ledger.
    writer: Option<LedgerWriter>,
    writer_task: Option<tokio::task::JoinHandle<Result<(), LedgerError>>>,
    state: Arc<Mutex<LedgerState>>,
    view: View,
    started: Instant,
    in_scope: Option<RowFilter>,
    metrics: Option<MetricsFile>,
    /// `account (region)` -> the address its devices connect to, for the summary.
    device_endpoints: BTreeMap<String, String>,
}

impl Run {
    /// Checks the options, validates the manifest (nothing else happens if it is invalid),
    /// opens and locks the ledger, loads the AWS configuration. Nothing is sent to AWS.
    pub async fn open(global: &GlobalArgs, spec: RunSpec<'_>) -> Result<Run, Error> {
        let (started, started_at) = (Instant::now(), SystemTime::now());
        let settings = Settings::from_args(global, spec.pacing)?;
        let manifest = Manifest::load(spec.manifest)?;
        for w in manifest.warnings() {
            tracing::warn!("{}:{w}", spec.manifest.display());
        }
        let ledger_path = spec
            .files
            .ledger
            .clone()
            .unwrap_or_else(|| default_ledger(spec.manifest, spec.kind));
        let failures_path = spec
            .files
            .failures
            .clone()
            .unwrap_or_else(|| default_failures(spec.manifest, spec.kind));
        // Known before the work, not after it: nothing is created, nothing is sent.
        check_writable(&failures_path, "failure report", Writing::Replace)?;
        let ledger = Ledger::open(
            &ledger_path,
            OpenOptionsLedger {
                kind: spec.kind,
                manifest_path: spec.manifest,
                manifest_sha256: manifest.sha256(),
                undo: spec.undo,
            },
        )?;
        for w in ledger.warnings() {
            tracing::warn!("{w}");
        }
        // Whether the resume started from a checkpoint: a debug line (`-v`), since at the
        // default level stderr is kept for what the operator must act on.
        for note in ledger.notes() {
            tracing::debug!("{note}");
        }
        // Only now that the ledger is ours: the file is the run's that holds the ledger.
        let metrics = match &spec.files.metrics_file {
            Some(path) => {
                let m = MetricsFile::new(path, spec.command, spec.manifest, started_at);
                let counts = Counts::from_ledger(&manifest, &ledger.state());
                m.write_running(&Snapshot {
                    counts,
                    ..Snapshot::default()
                })?;
                Some(m)
            }
            None => None,
        };
        let session = Session::connect(settings).await?;
        let state = ledger.shared_state();
        let (writer, writer_task) = ledger.into_writer();
        Ok(Run {
            command: spec.command,
            manifest,
            session,
            ledger_path,
            failures_path,
            writer: Some(writer),
            writer_task: Some(writer_task),
            state,
            view: View {
                output: global.output,
                progress: ProgressSettings::from_global(global),
            },
            started,
            in_scope: None,
            metrics,
            device_endpoints: BTreeMap::new(),
        })
    }

    /// Restricts the run to the rows `filter` accepts: the others are neither processed nor
    /// counted (e.g. `accept` ignores rows addressed to other target accounts).
    pub fn restrict_to(&mut self, filter: RowFilter) {
        self.in_scope = Some(filter);
    }

    /// The ledger's path.
    pub fn ledger_path(&self) -> &Path {
        &self.ledger_path
    }

    /// Asks each region of `clients`' account for its device endpoint (DescribeEndpoint
    /// `iot:Data-ATS`), for the summary: devices must be reconfigured to it. A refusal is a
    /// warning, not a failure of the run.
    pub async fn add_device_endpoints(&mut self, clients: &AccountClients) {
        for region in self.manifest.regions() {
            let iot = clients.for_region(region.as_deref());
            let key = format!("{} ({})", clients.account(), iot.scope().region);
            if self.device_endpoints.contains_key(&key) {
                continue;
            }
            match iot.device_endpoint().await {
                Ok(address) => {
                    self.device_endpoints.insert(key, address);
                }
                Err(f) => tracing::warn!("cannot read the device endpoint of {key}: {f}"),
            }
        }
    }

    /// A handle on the ledger writer, for the run's worker.
    pub fn writer(&self) -> LedgerWriter {
        self.writer
            .clone()
            .expect("the ledger is open until the run ends")
    }

    /// The ledger's state, kept current by the writer.
    pub fn state(&self) -> Arc<Mutex<LedgerState>> {
        self.state.clone()
    }

    /// The caller's own clients, one per region of the manifest (STS first).
    pub async fn own_clients(&self) -> Result<AccountClients, Error> {
        self.session.own_clients(self.manifest.regions()).await
    }

    /// The clients of the target accounts that `profiles` holds credentials of (each
    /// checked with STS first), for a run that acts on both sides. Restricts the run to the
    /// rows addressed to those accounts: with one profile, the others are left to another run.
    pub async fn targets(
        &mut self,
        profiles: &TargetProfiles,
        flag: &str,
    ) -> Result<Vec<AccountClients>, Error> {
        let targets = self
            .session
            .target_clients(&self.manifest, profiles, flag)
            .await?;
        let accounts: HashSet<String> = targets.iter().map(|t| t.account().to_string()).collect();
        self.restrict_to(Box::new(move |_rec, row| {
            accounts.contains(&row.target_account)
        }));
        Ok(targets)
    }

    /// The run acts for the target account: its own clients, once it is clear that some
    /// manifest row is addressed to the caller's account. Restricts the run to those rows;
    /// the others belong to other target accounts.
    pub async fn as_target(&mut self) -> Result<AccountClients, Error> {
        let account = self.session.caller_account().await?;
        let in_scope = self
            .manifest
            .targets()
            .iter()
            .filter(|t| t.account == account)
            .map(|t| t.certificates)
            .sum::<usize>();
        if in_scope == 0 {
            return Err(Error::Config(format!(
                "the credentials belong to account {account}, and no manifest row is addressed to it \
                 (targets: {}); check --profile (AWS_ACCESS_KEY_ID in the environment takes precedence over a profile)",
                self.manifest.target_accounts().join(", ")
            )));
        }
        let out_of_scope = self.manifest.len() - in_scope;
        if out_of_scope > 0 {
            tracing::info!("{out_of_scope} manifest rows are addressed to other accounts than {account}: left to them");
        }
        let clients =
            self.session
                .clients(&account, self.manifest.regions(), &self.session.region());
        self.restrict_to(Box::new(move |_rec, row| row.target_account == account));
        Ok(clients)
    }

    /// Runs `process` over the manifest rows that `pick` selects, in-doubt items first, then
    /// writes the failure report and prints the summary. Returns the exit code.
    ///
    /// The ledger closes when the last [`LedgerWriter`] is dropped, and `pick` lives until the
    /// final count: `pick` must not hold a writer (directly or through an `Arc`), or the run
    /// waits for the ledger forever. Item futures made by `process` may hold writers.
    pub async fn execute<F, Fut>(
        mut self,
        how: Execution<'_>,
        pick: impl Fn(Option<&ItemRecord>, &ManifestRow) -> Pick,
        process: F,
    ) -> Result<ExitCode, Error>
    where
        F: Fn(Work) -> Fut,
        Fut: Future<Output = Result<ItemEnd, LedgerError>>,
    {
        let selection = Selection {
            in_scope: self.in_scope.take(),
            failed: how.failed,
            pick,
        };
        // Count the work first: the progress bar gets a total and in-doubt items go first.
        let Planned {
            in_doubt,
            total,
            kept,
        } = self.count_work(&selection)?;
        if !in_doubt.is_empty() {
            tracing::info!(
                "{} certificates are in doubt from an earlier run: reconciling them first",
                in_doubt.len()
            );
        }
        let breaker = self.session.ctx.breaker().clone();
        let stop = Stop::new(how.limits.max_items, how.limits.grace).with_breaker(breaker.clone());
        let window = Window {
            canary: how.canary,
            concurrency: how.concurrency,
        };
        let watcher = stop.watch(how.limits.max_duration);
        let progress = Progress::start(&self.view.progress, total, how.verb);
        let tally = progress.tally();

        // One lane per region, each with its own in-flight window: AWS paces every region
        // separately, and a manifest sorted by region must not keep all but one idle.
        let mut lanes: Vec<Box<dyn Iterator<Item = Work> + '_>> = Vec::new();
        match kept {
            Some(kept) => {
                for region in self.manifest.regions() {
                    let mine: Vec<Work> = kept
                        .iter()
                        .filter(|w| w.row.region == region)
                        .cloned()
                        .collect();
                    lanes.push(Box::new(mine.into_iter()));
                }
            }
            None => {
                for region in self.manifest.regions() {
                    lanes.push(Box::new(self.lane(region, &in_doubt, &selection)?));
                }
            }
        }
        let work = futures::future::try_join_all(
            lanes
                .into_iter()
                .map(|work| pipeline::run(work, window, &stop, &tally, &breaker, &process)),
        );
        let ended = match &self.metrics {
            Some(m) => {
                let snapshot = || {
                    let state = self.state.lock().expect("ledger state");
                    self.snapshot(&state, tally.finished())
                };
                m.refresh_during(work, self.view.progress.interval, snapshot)
                    .await
            }
            None => work.await,
        };
        let result = ended.map(|ended| ended.into_iter().sum::<u64>());
        // The item function holds ledger writers: the ledger closes only once it is gone.
        drop(process);
        progress.finish();
        watcher.abort();
        let processed = self.close_ledger(result).await?;
        self.conclude(&selection, &stop, processed)
    }

    /// The ids in doubt (an intent left open) among the rows in scope, how many items the
    /// run will handle, and those items themselves when there are few.
    fn count_work<P>(&self, selection: &Selection<P>) -> Result<Planned, Error>
    where
        P: Fn(Option<&ItemRecord>, &ManifestRow) -> Pick,
    {
        let state = self.state.lock().expect("ledger state");
        let mut in_doubt = in_doubt_ids(&state, &self.manifest);
        let mut total = 0u64;
        let (mut doubtful, mut fresh) = (Vec::new(), Vec::new());
        let mut keep = true;
        walk_with_records(&self.manifest, &state, |row, rec| {
            // Hashing every id costs more than the lookup itself: most runs have none in doubt.
            let doubt = !in_doubt.is_empty() && in_doubt.contains(&row.certificate_id);
            let work = if doubt {
                if selection.in_scope(rec, row) {
                    let mandate = match selection.pick(rec, row) {
                        Pick::Process => Mandate::Proceed,
                        Pick::Skip => Mandate::SettleOnly,
                    };
                    let open = rec.and_then(|r| r.open_intent.cloned());
                    Some((Queue::InDoubt, open, mandate))
                } else {
                    in_doubt.remove(&row.certificate_id);
                    None
                }
            } else if selection.pick(rec, row) == Pick::Process {
                Some((Queue::Fresh, None, Mandate::Proceed))
            } else {
                None
            };
            let Some((queue, open, mandate)) = work else {
                return;
            };
            total += 1;
            if keep && total > KEPT_ROWS {
                // Too many to keep: the lanes will stream the manifest instead.
                keep = false;
                (doubtful, fresh) = (Vec::new(), Vec::new());
            }
            if keep {
                let list = match queue {
                    Queue::InDoubt => &mut doubtful,
                    Queue::Fresh => &mut fresh,
                };
                list.push(Work {
                    row: row.clone(),
                    open,
                    mandate,
                });
            }
        })?;
        let kept = keep.then(|| {
            doubtful.append(&mut fresh);
            doubtful
        });
        Ok(Planned {
            in_doubt,
            total,
            kept,
        })
    }

    /// The work of one region's lane: its rows in doubt first, then the fresh ones.
    fn lane<'s, P>(
        &self,
        region: Option<String>,
        in_doubt: &'s HashSet<String>,
        selection: &'s Selection<P>,
    ) -> Result<impl Iterator<Item = Work> + 's, ManifestError>
    where
        P: Fn(Option<&ItemRecord>, &ManifestRow) -> Pick,
    {
        // No item in doubt: don't read the whole manifest once more to find none (on a
        // resumed 1M-row manifest that pass took about 0.5 s before the first call).
        let doubt_source = if in_doubt.is_empty() {
            None
        } else {
            Some(self.manifest.rows()?)
        };
        let doubt_rows = doubt_source
            .into_iter()
            .flatten()
            .filter_map(row_or_log)
            .filter_map({
                let (state, region) = (self.state.clone(), region.clone());
                move |row| {
                    if row.region != region || !in_doubt.contains(&row.certificate_id) {
                        return None;
                    }
                    let st = state.lock().expect("ledger state");
                    let rec = st.get(&row.certificate_id);
                    let rec = rec.as_ref();
                    let open = rec.and_then(|r| r.open_intent.cloned());
                    let mandate = match selection.pick(rec, &row) {
                        Pick::Process => Mandate::Proceed,
                        Pick::Skip => Mandate::SettleOnly,
                    };
                    Some(Work { row, open, mandate })
                }
            });
        let fresh_rows = self.manifest.rows()?.filter_map(row_or_log).filter_map({
            let state = self.state.clone();
            move |row| {
                if row.region != region || in_doubt.contains(&row.certificate_id) {
                    return None;
                }
                let st = state.lock().expect("ledger state");
                (selection.pick(st.get(&row.certificate_id).as_ref(), &row) == Pick::Process)
                    .then_some(Work {
                        row,
                        open: None,
                        mandate: Mandate::Proceed,
                    })
            }
        });
        Ok(doubt_rows.chain(fresh_rows))
    }

    /// Lets the writer drain and end. A write error is reported with its real cause (the
    /// writer's, if the items only saw that it had stopped).
    async fn close_ledger(&mut self, result: Result<u64, LedgerError>) -> Result<u64, Error> {
        // Dropping our handle (the items' are gone) lets the writer drain and end.
        self.writer = None;
        let task = self.writer_task.take().expect("closed once");
        let written = match task.await {
            Ok(r) => r,
            Err(e) => return Err(Error::Aws(format!("ledger writer panicked: {e}"))),
        };
        match (result, written) {
            (Ok(n), Ok(())) => Ok(n),
            // Every acknowledged event is on disk; the rest is reconciled next time.
            (Err(LedgerError::WriterGone), Err(e)) | (Ok(_), Err(e)) => Err(e.into()),
            (Err(e), _) => Err(e.into()),
        }
    }

    /// Counts every certificate in scope, writes the failure report, prints the summary.
    fn conclude<P>(
        &self,
        selection: &Selection<P>,
        stop: &Stop,
        processed: u64,
    ) -> Result<ExitCode, Error>
    where
        P: Fn(Option<&ItemRecord>, &ManifestRow) -> Pick,
    {
        let state = self.state.lock().expect("ledger state");
        let mut counts = Counts::default();
        let mut remaining = 0u64;
        // Certificates prepare changed that are neither transferred nor rolled back.
        let mut left_changed = 0u64;
        walk_with_records(&self.manifest, &state, |row, rec| {
            if !selection.in_scope(rec, row) {
                return;
            }
            counts.add_record(rec);
            if rec.is_some_and(|r| {
                r.state != ItemState::Transferred && r.undo.as_ref().is_some_and(|u| !u.is_empty())
            }) {
                left_changed += 1;
            }
            let settled = rec.is_none_or(|r| r.open_intent.is_none());
            if settled
                && selection.pick(rec, row) == Pick::Process
                && !rec.is_some_and(|r| is_final_failure(r))
            {
                remaining += 1;
            }
        })?;
        let failures = report::write_failure_report(&self.failures_path, &self.manifest, &state)?;
        let stopped = stop.reason();
        let trip = self.session.ctx.breaker().trip();
        let exit = if let Some(t) = &trip {
            t.exit_code()
        } else if stopped.is_some() || counts.in_doubt > 0 || remaining > 0 {
            ExitCode::Stopped
        } else if counts.failed > 0 {
            ExitCode::ItemsFailed
        } else {
            ExitCode::Success
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        let summary = Summary {
            command: self.command.to_string(),
            counts,
            processed_this_run: processed,
            elapsed_s: elapsed,
            items_per_s: if elapsed > 0.0 {
                processed as f64 / elapsed
            } else {
                0.0
            },
            stopped: stopped.map(|s| s.describe().to_string()),
            calls: Summary::calls_from(self.session.ctx.counts()),
            ledger: self.ledger_path.clone(),
            failure_report: Some(self.failures_path.clone())
                .filter(|_| failures > 0 || counts.failed > 0),
            exit_code: exit.code(),
            device_endpoints: self.device_endpoints.clone(),
        };
        if let Some(m) = &self.metrics {
            if let Err(e) = m.write_finished(&self.snapshot(&state, processed), exit) {
                tracing::warn!("metrics file not written: {e}");
            }
        }
        output::emit(self.view.output, &summary);
        match trip {
            Some(t) => Err(Error::Halted {
                message: self.halt_message(&t, left_changed),
                code: exit,
            }),
            None => Ok(exit),
        }
    }

    /// The one message a run stopped by the breaker ends with: why, and what became of the
    /// certificates it had changed.
    fn halt_message(&self, trip: &Trip, left_changed: u64) -> String {
        let mut message = trip.describe();
        if left_changed > 0 {
            let how = match trip {
                Trip::Credentials { .. } => "run the same command again with fresh credentials",
                _ => "run the same command again once the cause is fixed",
            };
            message.push_str(&format!(
                ". {left_changed} certificates are left deactivated or detached (their devices may be offline): {how} to finish them, or `iot-cert-migrate cancel {} --restore` to bring them back",
                self.manifest.path().display()
            ));
        }
        message
    }

    /// The run now, for the metrics file: the counts as `status` makes them, the calls.
    fn snapshot(&self, state: &LedgerState, processed: u64) -> Snapshot {
        Snapshot {
            counts: Counts::from_ledger(&self.manifest, state),
            calls: self.session.ctx.counts_by_scope(),
            processed,
            elapsed_s: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// Which rows a run handles: those in scope, minus failures a person must fix first (unless
/// told to retry them), as the command's own rule picks.
struct Selection<P> {
    in_scope: Option<RowFilter>,
    failed: FailedItems,
    pick: P,
}

impl<P: Fn(Option<&ItemRecord>, &ManifestRow) -> Pick> Selection<P> {
    fn in_scope(&self, rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        self.in_scope.as_ref().is_none_or(|f| f(rec, row))
    }

    fn pick(&self, rec: Option<&ItemRecord>, row: &ManifestRow) -> Pick {
        if !self.in_scope(rec, row) {
            return Pick::Skip;
        }
        match rec {
            Some(r) if is_final_failure(r) && self.failed == FailedItems::Skip => Pick::Skip,
            _ => (self.pick)(rec, row),
        }
    }
}

/// Ids the run must handle first: those with an intent left open by an earlier run (few:
/// only the records with details are looked at).
fn in_doubt_ids(state: &LedgerState, manifest: &Manifest) -> HashSet<String> {
    state
        .with_details()
        .filter(|(id, rec)| rec.open_intent.is_some() && manifest.contains(id))
        .map(|(id, _)| id.to_string())
        .collect()
}

/// Items a run keeps from its counting pass, at most: with no more than this many left (a
/// resumed run near its end), the lanes hand them out without reading the manifest again.
const KEPT_ROWS: u64 = 1 << 16;

/// Rows the counting pass looks up in the ledger state at once (see
/// [`LedgerState::get_many`]).
const LOOKUP_BATCH: usize = 64;

/// Calls `f` with every manifest row and its record in the ledger state, in manifest order.
/// Rows are read into the same buffers again and again (a ten-million-row pass must not
/// allocate per row) and looked up a batch at a time (`LedgerState::get_many`).
fn walk_with_records(
    manifest: &Manifest,
    state: &LedgerState,
    mut f: impl FnMut(&ManifestRow, Option<&ItemRecord>),
) -> Result<(), ManifestError> {
    let mut rows = manifest.rows()?;
    let mut batch: Vec<ManifestRow> = vec![ManifestRow::default(); LOOKUP_BATCH];
    loop {
        let mut filled = 0;
        while filled < LOOKUP_BATCH {
            if !rows.read_into(&mut batch[filled])? {
                break;
            }
            filled += 1;
        }
        if filled == 0 {
            return Ok(());
        }
        let ids: Vec<&str> = batch[..filled]
            .iter()
            .map(|r| r.certificate_id.as_str())
            .collect();
        for (row, rec) in batch[..filled].iter().zip(state.get_many(&ids)) {
            f(row, rec.as_ref());
        }
    }
}

/// Where the counting pass puts an item: items in doubt are handed out first.
enum Queue {
    InDoubt,
    Fresh,
}

/// What the counting pass found.
struct Planned {
    /// Ids in doubt among the rows in scope.
    in_doubt: HashSet<String>,
    /// Items the run will handle.
    total: u64,
    /// Those items, in doubt first, when there are at most [`KEPT_ROWS`].
    kept: Option<Vec<Work>>,
}

fn row_or_log(r: Result<ManifestRow, ManifestError>) -> Option<ManifestRow> {
    match r {
        Ok(row) => Some(row),
        Err(e) => {
            tracing::error!("manifest changed while running: {e}");
            None
        }
    }
}
