//! One run of a ledger-keeping command (`transfer`, `cancel`, `accept`, `reject`,
//! `register`, `retire`): the manifest, the ledger and its single writer, the session, and
//! [`Run::execute`], which drives one [`Workflow`] over the manifest: it selects the rows
//! ([`selection`]: scope, what the workflow still wants, failures to skip), settles every
//! intent an earlier run left open before the workflow sees its certificate (`resume`),
//! hands the work out in lanes (items in doubt first, one lane per region), closes the
//! ledger, then writes the failure report and prints the summary.

mod resume;
pub mod selection;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

pub use selection::{is_final_failure, FailedItems};

use crate::breaker::Trip;
use crate::error::{Error, ExitCode};
use crate::files::{check_writable, Writing};
use crate::ledger::{
    Identity, ItemState, Ledger, LedgerError, LedgerKind, LedgerState, LedgerWriter,
    OpenOptionsLedger,
};
use crate::lifecycle::{Acting, LedgerSpec, Setup, Workflow};
use crate::manifest::Manifest;
use crate::metrics::{MetricsFile, Reading};
use crate::output::{self, OutputFormat};
use crate::pipeline::{self, Ended, Window};
use crate::progress::{Progress, ProgressSettings};
use crate::report::{self, AfterStop, Counts, Summary, WaitingFor};
use crate::session::{Session, Settings};
use crate::stop::{RunLimits, Stop, StopReason};

use resume::{hand_over, Lent};
use selection::{walk_with_records, Counted, Queued, Selection};

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
        LedgerKind::Handoff => default_path(manifest, "handoff-ledger.jsonl"),
    }
}

/// The default failure report of a manifest for a ledger kind.
pub fn default_failures(manifest: &Path, kind: LedgerKind) -> PathBuf {
    match kind {
        LedgerKind::Transfer => default_path(manifest, "failures.csv"),
        LedgerKind::Accept => default_path(manifest, "accept-failures.csv"),
        LedgerKind::Register => default_path(manifest, "register-failures.csv"),
        LedgerKind::Retire => default_path(manifest, "retire-failures.csv"),
        LedgerKind::Handoff => default_path(manifest, "handoff-failures.csv"),
    }
}

/// The failure report beside a ledger named with `--ledger`: its name with `ledger.jsonl`
/// (or `.jsonl`) replaced by `failures.csv` (`x.accept-ledger.jsonl` ->
/// `x.accept-failures.csv`, `x.jsonl` -> `x.failures.csv`), else `LEDGER.failures.csv`.
/// A run with its own ledger never writes over another ledger's report.
pub fn failures_beside(ledger: &Path) -> PathBuf {
    let name = ledger
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = if let Some(stem) = name.strip_suffix("ledger.jsonl") {
        format!("{stem}failures.csv")
    } else if let Some(stem) = name.strip_suffix(".jsonl") {
        format!("{stem}.failures.csv")
    } else {
        format!("{name}.failures.csv")
    };
    ledger.with_file_name(report)
}

/// Where a run keeps its ledger, failure report and metrics (`None`: the default beside the
/// manifest, or no metrics file).
#[derive(Debug, Clone, Default)]
pub struct RunFiles {
    /// `--ledger`.
    pub ledger: Option<PathBuf>,
    /// `--failures`.
    pub failures: Option<PathBuf>,
    /// `--metrics-file`.
    pub metrics: Option<PathBuf>,
}

/// How a ledger-keeping run is set up: what the command line said, checked.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The manifest.
    pub manifest: PathBuf,
    /// The ledger, failure report and metrics paths.
    pub files: RunFiles,
    /// AWS connection, pacing, retries, circuit breaker.
    pub settings: Settings,
    /// What the summary on stdout looks like.
    pub output: OutputFormat,
    /// How progress shows on stderr.
    pub progress: ProgressSettings,
    /// Time box, item limit, grace period.
    pub limits: RunLimits,
    /// Certificates in flight at once, per region.
    pub concurrency: usize,
    /// Certificates each region starts with, alone, before the rest (0: none): see
    /// [`Window::canary`].
    pub canary: usize,
    /// Items a person must fix first: skipped, or tried again.
    pub failed: FailedItems,
}

/// Runs workflow `W` with `options` over the manifest: opens the run (the ledger is locked
/// and read before any AWS call), lets the workflow find its clients, executes it.
pub async fn run<W: Workflow>(
    options: RunOptions,
    workflow: W::Options,
) -> Result<ExitCode, Error> {
    let mut run = Run::open(options, W::COMMAND, W::ledger(&workflow)).await?;
    let workflow = W::connect(&mut run.setup(), workflow).await?;
    run.execute(workflow).await
}

/// The shared state of one run of a ledger-keeping command.
pub struct Run {
    command: &'static str,
    options: RunOptions,
    manifest: Manifest,
    session: Session,
    ledger_path: PathBuf,
    failures_path: PathBuf,
    /// The ledger as opened, until the run starts (its run line written, its writer started).
    opened: Option<Ledger>,
    /// Whose credentials the run acts with, once the workflow found its clients.
    acting: Option<Acting>,
    /// `None` before the run starts and once it closed the ledger.
    writer: Option<LedgerWriter>,
    writer_task: Option<tokio::task::JoinHandle<Result<(), LedgerError>>>,
    state: Arc<Mutex<LedgerState>>,
    started: Instant,
    metrics: Option<MetricsFile>,
    /// `account (region)` -> the address its devices connect to, for the summary.
    device_endpoints: BTreeMap<String, String>,
}

impl Run {
    /// Validates the manifest (nothing else happens if it is invalid), checks the outputs,
    /// opens and locks the ledger `ledger`, loads the AWS configuration. Nothing is sent to
    /// AWS.
    pub async fn open(
        options: RunOptions,
        command: &'static str,
        ledger: LedgerSpec,
    ) -> Result<Run, Error> {
        let (started, started_at) = (Instant::now(), SystemTime::now());
        let manifest = Manifest::load(&options.manifest)?;
        for w in manifest.warnings() {
            tracing::warn!("{}:{w}", options.manifest.display());
        }
        let ledger_path = options
            .files
            .ledger
            .clone()
            .unwrap_or_else(|| default_ledger(&options.manifest, ledger.kind));
        // Outputs follow the ledger: another ledger's run never writes over this one's report.
        let failures_path = match (&options.files.failures, &options.files.ledger) {
            (Some(given), _) => given.clone(),
            (None, Some(ledger)) => failures_beside(ledger),
            (None, None) => default_failures(&options.manifest, ledger.kind),
        };
        // Known before the work, not after it: nothing is created, nothing is sent.
        check_writable(&failures_path, "failure report", Writing::Replace)?;
        let opened = Ledger::open(
            &ledger_path,
            OpenOptionsLedger {
                kind: ledger.kind,
                manifest_path: &options.manifest,
                manifest_sha256: manifest.sha256(),
                undo: ledger.undo,
            },
        )?;
        for w in opened.warnings() {
            tracing::warn!("{w}");
        }
        // Whether the resume started from a checkpoint: a debug line (`-v`), since at the
        // default level stderr is kept for what the operator must act on.
        for note in opened.notes() {
            tracing::debug!("{note}");
        }
        // Only now that the ledger is ours: the file is the run's that holds the ledger.
        let metrics = match &options.files.metrics {
            Some(path) => {
                let m = MetricsFile::new(path, command, &options.manifest, started_at);
                let counts = Counts::from_ledger(&manifest, &opened.state());
                m.write_running(&Reading {
                    counts,
                    ..Reading::default()
                })?;
                Some(m)
            }
            None => None,
        };
        let session = Session::connect(options.settings.clone()).await?;
        let state = opened.shared_state();
        Ok(Run {
            command,
            options,
            manifest,
            session,
            ledger_path,
            failures_path,
            opened: Some(opened),
            acting: None,
            writer: None,
            writer_task: None,
            state,
            started,
            metrics,
            device_endpoints: BTreeMap::new(),
        })
    }

    /// What a workflow finds its clients with.
    pub fn setup(&mut self) -> Setup<'_> {
        Setup {
            session: &self.session,
            manifest: &self.manifest,
            ledger_path: &self.ledger_path,
            device_endpoints: &mut self.device_endpoints,
            acting: &mut self.acting,
        }
    }

    /// Starts the run proper, once the workflow found its clients: checks that a source
    /// side's credentials belong with the ledger and the manifest (refused before any change
    /// otherwise), records the run line with the account and region, starts the writer.
    fn begin(&mut self) -> Result<(), Error> {
        let Some(mut ledger) = self.opened.take() else {
            return Ok(());
        };
        let identity = match &self.acting {
            Some(Acting::Source(me)) => {
                self.check_source(me)?;
                Some(me.clone())
            }
            Some(Acting::Target(me)) => Some(me.clone()),
            None => None,
        };
        ledger.start_run(identity)?;
        let (writer, task) = ledger.into_writer();
        self.writer = Some(writer);
        self.writer_task = Some(task);
        Ok(())
    }

    /// Refuses source credentials that are a row's target account's, or another account's
    /// (or another default region's) than the ledger's earlier runs used.
    fn check_source(&self, me: &Identity) -> Result<(), Error> {
        let whose = self.session.whose();
        let addressed: usize = self
            .manifest
            .targets()
            .iter()
            .filter(|t| t.account == me.account)
            .map(|t| t.certificates)
            .sum();
        if addressed > 0 {
            return Err(Error::Refused(format!(
                "the credentials of {whose} belong to account {}, the target account of {addressed} manifest rows; `{}` acts in the source account: run it with the source account's credentials (--profile; AWS_ACCESS_KEY_ID in the environment takes precedence over a profile), or, if these are the source's, fix the manifest (a certificate cannot move to its own account). Nothing was changed",
                me.account, self.command
            )));
        }
        let state = self.state.lock().expect("ledger state");
        let Some(before) = &state.identity else {
            return Ok(());
        };
        if before.account != me.account {
            return Err(Error::Refused(format!(
                "ledger {} belongs to account {}: its runs used that account's credentials, and these ({whose}) belong to account {}. Run with account {}'s credentials, or give account {}'s certificates a ledger of their own (--ledger). Nothing was changed",
                self.ledger_path.display(),
                before.account,
                me.account,
                before.account,
                me.account
            )));
        }
        let regionless = self.manifest.regions().iter().any(Option::is_none);
        if regionless && before.region != me.region {
            return Err(Error::Refused(format!(
                "ledger {} was run in region {} (the manifest rows without a region), and this run's region is {}: pass --region {} (or name the region in the manifest). Nothing was changed",
                self.ledger_path.display(),
                before.region,
                me.region,
                before.region
            )));
        }
        Ok(())
    }

    /// Runs `workflow` over the rows it selects, in-doubt items first, closes the ledger,
    /// then writes the failure report and prints the summary. Returns the exit code.
    pub async fn execute<W: Workflow>(mut self, workflow: W) -> Result<ExitCode, Error> {
        self.begin()?;
        let selection = Selection::new(&workflow, self.options.failed);
        // Count the work first: the progress bar gets a total and in-doubt items go first.
        let Counted {
            in_doubt,
            total,
            kept,
        } = {
            let state = self.state.lock().expect("ledger state");
            selection.count(&self.manifest, &state)?
        };
        if !in_doubt.is_empty() {
            tracing::info!(
                "{} in doubt from an earlier run: reconciling first",
                crate::output::count(in_doubt.len(), "certificate")
            );
        }
        let breaker = self.session.ctx.breaker().clone();
        let limits = self.options.limits;
        let stop = Stop::new(limits.max_items, limits.grace).with_breaker(breaker.clone());
        let window = Window {
            canary: self.options.canary,
            concurrency: self.options.concurrency,
        };
        let watcher = stop.watch(limits.max_duration);
        let progress = Progress::start(&self.options.progress, total, workflow.verb());
        let tally = progress.tally();

        let result = {
            let lent = Lent {
                ledger: self
                    .writer
                    .as_ref()
                    .expect("the ledger is open until the run ends"),
                state: &self.state,
                max_attempts: self.options.settings.retry.max_attempts,
            };
            // One lane per region, each with its own in-flight window: AWS paces every
            // region separately, and a manifest sorted by region must not keep all but one
            // idle.
            let mut lanes: Vec<Box<dyn Iterator<Item = Queued> + '_>> = Vec::new();
            match kept {
                Some(kept) => {
                    for region in self.manifest.regions() {
                        let mine: Vec<Queued> = kept
                            .iter()
                            .filter(|q| q.row.region == region)
                            .cloned()
                            .collect();
                        lanes.push(Box::new(mine.into_iter()));
                    }
                }
                None => {
                    for region in self.manifest.regions() {
                        let lane =
                            selection.lane(&self.manifest, &self.state, region, &in_doubt)?;
                        lanes.push(Box::new(lane));
                    }
                }
            }
            let process =
                |queued: Queued, gate| hand_over(&workflow, &selection, queued, lent, gate);
            let work = futures::future::try_join_all(
                lanes
                    .into_iter()
                    .map(|lane| pipeline::run(lane, window, &stop, &tally, &breaker, &process)),
            );
            let ended = match &self.metrics {
                Some(m) => {
                    let reading = || {
                        let state = self.state.lock().expect("ledger state");
                        self.reading(&state, tally.finished())
                    };
                    m.refresh_during(work, self.options.progress.interval, reading)
                        .await
                }
                None => work.await,
            };
            ended.map(|ended| ended.into_iter().sum::<Ended>())
        };
        progress.finish();
        watcher.abort();
        let ended = self.close_ledger(result).await?;
        self.conclude(&selection, &stop, ended)
    }

    /// Closes the ledger: the run's writer is the only one, so dropping it lets the writer
    /// task drain and end. A write error is reported with its real cause (the writer's, if
    /// the items only saw that it had stopped).
    async fn close_ledger(&mut self, result: Result<Ended, LedgerError>) -> Result<Ended, Error> {
        drop(self.writer.take());
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
    fn conclude<W: Workflow>(
        &self,
        selection: &Selection<'_, W>,
        stop: &Stop,
        ended: Ended,
    ) -> Result<ExitCode, Error> {
        let processed = ended.finished;
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
            // Waiting ones need an option first: they are not left to a plain rerun.
            let waiting = rec.is_some_and(|r| r.state == ItemState::Waiting);
            if settled
                && !waiting
                && selection.picks(rec, row)
                && !rec.is_some_and(is_final_failure)
            {
                remaining += 1;
            }
        })?;
        let failures = report::write_failure_report(&self.failures_path, &self.manifest, &state)?;
        let breaker = self.session.ctx.breaker();
        if stop.reason().is_none() {
            // A run that refused every certificate it judged, for one reason, says so once.
            breaker.close_opening();
        }
        let stopped = stop
            .reason()
            .or(breaker.trip().map(|t| StopReason::of_trip(&t)));
        let trip = breaker.trip();
        let left = remaining + counts.in_doubt;
        let exit = if let Some(t) = &trip {
            t.exit_code()
        } else if left > 0 {
            ExitCode::Stopped
        } else if counts.failed > 0 || counts.waiting > 0 {
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
            // A refused opening stopped nothing in flight: the message says it all.
            after_stop: stopped
                .filter(|s| *s != StopReason::Refused)
                .map(|_| AfterStop {
                    finished: ended.finished,
                    rolled_back: ended.rolled_back,
                    untouched: ended.untouched,
                    abandoned: ended.abandoned + ended.interrupted,
                }),
            left,
            waiting_for: ended
                .waiting
                .iter()
                .map(|(wait, (n, needs))| {
                    let needs: Vec<String> = needs.iter().cloned().collect();
                    let fix = wait.fix(&needs);
                    (
                        *wait,
                        WaitingFor {
                            certificates: *n,
                            needs,
                            fix,
                        },
                    )
                })
                .collect(),
            calls: Summary::calls_from(self.session.ctx.counts()),
            ledger: self.ledger_path.clone(),
            failure_report: Some(self.failures_path.clone())
                .filter(|_| failures > 0 || counts.failed > 0),
            exit_code: exit.code(),
            device_endpoints: self.device_endpoints.clone(),
        };
        if let Some(m) = &self.metrics {
            if let Err(e) = m.write_finished(&self.reading(&state, processed), exit) {
                tracing::warn!("metrics file not written: {e}");
            }
        }
        output::emit(self.options.output, &summary);
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
                ". {} left deactivated or detached (their devices may be offline): {how} to finish them, or `iot-cert-migrate cancel {} --restore` to bring them back",
                crate::output::count(left_changed, "certificate"),
                self.manifest.path().display()
            ));
        }
        message
    }

    /// The run now, for the metrics file: the counts as `status` makes them, the calls.
    fn reading(&self, state: &LedgerState, processed: u64) -> Reading {
        Reading {
            counts: Counts::from_ledger(&self.manifest, state),
            calls: self.session.ctx.counts_by_scope(),
            processed,
            elapsed_s: self.started.elapsed().as_secs_f64(),
        }
    }
}
