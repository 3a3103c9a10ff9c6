//! One module per command, and the run machinery they share: open the manifest and the
//! ledger, build the AWS clients, run the items, write the failure report and the summary.

pub mod accept;
pub mod cancel;
pub mod plan;
pub mod reconcile;
pub mod status;
pub mod transfer;
pub mod validate;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;

use crate::aws::{self, AwsOptions};
use crate::cli::{GlobalArgs, OutputFiles, OutputFormat, PacingArgs, ProgressMode, RunLimitArgs};
use crate::error::{Error, ExitCode};
use crate::iot::{self, CallContext, CallFailure, Iot};
use crate::ledger::{
    Details, ItemRecord, Ledger, LedgerKind, LedgerState, LedgerWriter, OpenIntent,
    OpenOptionsLedger,
};
use crate::manifest::{Manifest, ManifestRow};
use crate::pacer::{Pacer, RateSettings, Scope};
use crate::pipeline::{self, ItemEnd};
use crate::progress::Progress;
use crate::report::{self, Counts, Summary};
use crate::retry::RetryPolicy;
use crate::stop::Stop;

/// `MANIFEST` with its extension replaced by `suffix` (`certs.csv` -> `certs.ledger.jsonl`).
pub fn default_path(manifest: &Path, suffix: &str) -> PathBuf {
    manifest.with_extension(suffix)
}

/// The AWS options of the global flags.
pub fn aws_options(global: &GlobalArgs) -> Result<AwsOptions, Error> {
    let secs = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(std::time::Duration::from_secs_f64(v))
        } else {
            Err(Error::Usage(format!(
                "--{name} must be a positive number of seconds, got {v}"
            )))
        }
    };
    Ok(AwsOptions {
        profile: global.profile.clone(),
        region: global.region.clone(),
        endpoint_url: global.endpoint_url.clone(),
        connect_timeout: secs("connect-timeout", global.connect_timeout)?,
        read_timeout: secs("read-timeout", global.read_timeout)?,
    })
}

/// The pacer's settings from `--rate` and `--rate-scale`.
pub fn rate_settings(pacing: &PacingArgs) -> Result<RateSettings, Error> {
    if !(pacing.rate_scale.is_finite() && pacing.rate_scale > 0.0) {
        return Err(Error::Usage(format!(
            "--rate-scale must be positive, got {}",
            pacing.rate_scale
        )));
    }
    let mut settings = RateSettings {
        scale: pacing.rate_scale,
        ..Default::default()
    };
    for r in &pacing.rates {
        let (op, tps) = RateSettings::parse_override(r)
            .map_err(|e| Error::Usage(format!("--rate {r}: {e}")))?;
        settings.overrides.insert(op, tps);
    }
    settings
        .validate()
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(settings)
}

/// The retry policy from `--max-attempts` and `--max-throttle-wait`.
pub fn retry_policy(pacing: &PacingArgs) -> RetryPolicy {
    RetryPolicy {
        max_attempts: pacing.max_attempts.max(1),
        max_throttle_wait: pacing.max_throttle_wait,
        ..Default::default()
    }
}

/// The error code a failure is reported under: AWS's, or a name for what happened.
pub fn error_code(f: &CallFailure) -> String {
    use crate::retry::FailureKind;
    match (&f.error.code, f.error.kind) {
        (Some(c), _) => c.clone(),
        (None, FailureKind::Timeout) => "Timeout".into(),
        (None, FailureKind::Dispatch) => "ConnectionError".into(),
        (None, _) => match f.error.http_status {
            Some(s) => format!("HTTP{s}"),
            None => "Error".into(),
        },
    }
}

/// `details` plus the facts of a failed call.
pub fn error_details(details: &Details, f: &CallFailure) -> Details {
    let mut d = details.clone();
    d.error_code = Some(error_code(f));
    d.http_status = f.error.http_status;
    d.message = Some(f.error.message.clone());
    d.attempts = Some(f.attempts);
    // Transient errors and throttling that outlasted the retry budget may go away by
    // themselves: the next run tries again without being told to.
    d.retryable = Some(f.error.class() != crate::retry::ErrorClass::Permanent);
    d
}

/// A failure that only `--retry-failed` retries (a retryable one is retried by any rerun).
fn is_final_failure(rec: &ItemRecord) -> bool {
    rec.state == crate::ledger::ItemState::Failed
        && !rec.failure.as_deref().is_some_and(|f| f.retryable)
}

/// Whether a run should handle a certificate, given what the ledger says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Nothing to do (finished, or failed without `--retry-failed`).
    Skip,
    /// Work on it.
    Process,
}

/// One certificate handed to a command's item function.
pub struct Work {
    /// The manifest row.
    pub row: ManifestRow,
    /// An intent an earlier run left open: reconcile it first.
    pub open: Option<OpenIntent>,
    /// False when the item only needs reconciling (a failed item without --retry-failed).
    pub may_proceed: bool,
}

/// The shared state of one run of a ledger-keeping command.
pub struct Run {
    /// The command's name, for the summary.
    pub command: &'static str,
    /// The validated manifest.
    pub manifest: Manifest,
    /// The ledger's path.
    pub ledger_path: PathBuf,
    /// The failure report's path.
    pub failures_path: PathBuf,
    /// Appends events.
    pub writer: LedgerWriter,
    writer_task: tokio::task::JoinHandle<Result<(), crate::ledger::LedgerError>>,
    /// The ledger's state, kept current by the writer.
    pub state: Arc<Mutex<LedgerState>>,
    /// AWS configuration of the run's credentials.
    pub conf: SdkConfig,
    /// Options the configuration was built from (for other profiles).
    pub aws: AwsOptions,
    /// Pacer, retry policy and counters.
    pub ctx: Arc<CallContext>,
    output: OutputFormat,
    progress: ProgressMode,
    progress_interval: std::time::Duration,
    quiet: bool,
    started: std::time::Instant,
    in_scope: Option<RowFilter>,
}

/// Decides whether a manifest row concerns a run at all (see [`Run::restrict_to`]).
pub type RowFilter = Box<dyn Fn(Option<&ItemRecord>, &ManifestRow) -> bool + Send + Sync>;

impl Run {
    /// Validates the manifest (nothing else happens if it is invalid), opens and locks the
    /// ledger, loads the AWS configuration.
    pub async fn open(
        global: &GlobalArgs,
        manifest_path: &Path,
        files: &OutputFiles,
        kind: LedgerKind,
        keep_undo: bool,
        pacing: &PacingArgs,
    ) -> Result<Run, Error> {
        let started = std::time::Instant::now();
        let (ledger_suffix, failures_suffix, command) = match kind {
            LedgerKind::Transfer => ("ledger.jsonl", "failures.csv", "transfer"),
            LedgerKind::Accept => ("accept-ledger.jsonl", "accept-failures.csv", "accept"),
        };
        let settings = rate_settings(pacing)?;
        let aws = aws_options(global)?;
        if pacing.concurrency == 0 {
            return Err(Error::Usage("--concurrency must be at least 1".into()));
        }
        let manifest = Manifest::load(manifest_path)?;
        for w in manifest.warnings() {
            tracing::warn!("{}:{w}", manifest_path.display());
        }
        let ledger_path = files
            .ledger
            .clone()
            .unwrap_or_else(|| default_path(manifest_path, ledger_suffix));
        let failures_path = files
            .failures
            .clone()
            .unwrap_or_else(|| default_path(manifest_path, failures_suffix));
        let ledger = Ledger::open(
            &ledger_path,
            OpenOptionsLedger {
                kind,
                manifest_path,
                manifest_sha256: manifest.sha256(),
                keep_undo,
            },
        )?;
        for w in ledger.warnings() {
            tracing::warn!("{w}");
        }
        let conf = aws::load(&aws, None).await?;
        let ctx = CallContext::new(Arc::new(Pacer::new(settings)), retry_policy(pacing));
        let state = ledger.shared_state();
        let (writer, writer_task) = ledger.into_writer();
        Ok(Run {
            command,
            manifest,
            ledger_path,
            failures_path,
            writer,
            writer_task,
            state,
            conf,
            aws,
            ctx,
            output: global.output,
            progress: global.progress,
            progress_interval: std::time::Duration::from_secs_f64(
                global.progress_interval.max(0.1),
            ),
            quiet: global.quiet > 0,
            started,
            in_scope: None,
        })
    }

    /// Restricts the run to the rows `filter` accepts: the others are neither processed nor
    /// counted (e.g. `accept` ignores rows addressed to other target accounts).
    pub fn restrict_to(&mut self, filter: RowFilter) {
        self.in_scope = Some(filter);
    }

    /// The account of the run's credentials (STS GetCallerIdentity); a failure here is fatal
    /// (exit 1) and happens before any certificate is touched.
    pub async fn caller_account(&self) -> Result<String, Error> {
        let sts = aws::sts_client(&self.conf);
        iot::caller_account(&sts, &aws::region_of(&self.conf), &self.ctx)
            .await
            .map_err(|f| Error::Aws(format!("cannot identify the AWS account of the credentials (STS GetCallerIdentity): {f}")))
    }

    /// One IoT client per region the manifest names (`None` = the default region), each paced
    /// in its own (account, region) scope.
    pub async fn source_clients(&self) -> Result<HashMap<Option<String>, Iot>, Error> {
        let account = self.caller_account().await?;
        Ok(clients_for(&self.conf, &self.manifest, &account, &self.ctx))
    }

    /// Runs `process` over the manifest rows that `pick` selects, in-doubt items first, then
    /// writes the failure report and prints the summary. Returns the exit code.
    ///
    /// The ledger closes when the last [`LedgerWriter`] is dropped, and `pick` lives until the
    /// final count: `pick` must not hold a writer (directly or through an `Arc`), or the run
    /// waits for the ledger forever. Item futures made by `process` may hold writers.
    pub async fn execute<F, Fut>(
        mut self,
        concurrency: usize,
        limits: &RunLimitArgs,
        verb: &'static str,
        retry_failed: bool,
        pick: impl Fn(Option<&ItemRecord>, &ManifestRow) -> Pick,
        process: F,
    ) -> Result<ExitCode, Error>
    where
        F: Fn(Work) -> Fut,
        Fut: Future<Output = Result<ItemEnd, crate::ledger::LedgerError>>,
    {
        let in_scope = self.in_scope.take();
        let in_scope = |rec: Option<&ItemRecord>, row: &ManifestRow| {
            in_scope.as_ref().is_none_or(|f| f(rec, row))
        };
        let pick = |rec: Option<&ItemRecord>, row: &ManifestRow| match rec {
            _ if !in_scope(rec, row) => Pick::Skip,
            Some(r) if is_final_failure(r) && !retry_failed => Pick::Skip,
            _ => pick(rec, row),
        };
        // Count the work first: the progress bar gets a total and in-doubt items go first.
        let (in_doubt, total) = {
            let state = self.state.lock().expect("ledger state");
            let mut in_doubt: HashSet<String> = transfer::in_doubt_ids(&state, &self.manifest);
            let mut total = 0u64;
            for row in self.manifest.rows()?.flatten() {
                let rec = state.get(&row.certificate_id);
                if in_doubt.contains(&row.certificate_id) {
                    if in_scope(rec, &row) {
                        total += 1;
                    } else {
                        in_doubt.remove(&row.certificate_id);
                    }
                } else if pick(rec, &row) == Pick::Process {
                    total += 1;
                }
            }
            (in_doubt, total)
        };
        if !in_doubt.is_empty() {
            tracing::info!(
                "{} certificates are in doubt from an earlier run: reconciling them first",
                in_doubt.len()
            );
        }
        let stop = Stop::new(limits.max_items, limits.grace);
        let watcher = stop.watch(limits.max_duration);
        let progress = Progress::start(
            self.progress,
            self.progress_interval,
            total,
            verb,
            self.quiet,
        );
        let tally = progress.tally();

        // One lane per region, each with its own in-flight window: AWS paces every region
        // separately, and a manifest sorted by region must not keep all but one idle.
        let state = self.state.clone();
        let mut lanes = Vec::new();
        for region in self.manifest.regions() {
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
                    let (state, in_doubt, region) = (state.clone(), &in_doubt, region.clone());
                    move |row| {
                        if row.region != region || !in_doubt.contains(&row.certificate_id) {
                            return None;
                        }
                        let st = state.lock().expect("ledger state");
                        let rec = st.get(&row.certificate_id);
                        let open = rec.and_then(|r| r.open_intent.clone());
                        let may_proceed = pick(rec, &row) == Pick::Process;
                        Some(Work {
                            row,
                            open,
                            may_proceed,
                        })
                    }
                });
            let fresh_rows = self.manifest.rows()?.filter_map(row_or_log).filter_map({
                let (state, in_doubt, region) = (state.clone(), &in_doubt, region.clone());
                move |row| {
                    if row.region != region || in_doubt.contains(&row.certificate_id) {
                        return None;
                    }
                    let st = state.lock().expect("ledger state");
                    (pick(st.get(&row.certificate_id), &row) == Pick::Process).then_some(Work {
                        row,
                        open: None,
                        may_proceed: true,
                    })
                }
            });
            lanes.push(doubt_rows.chain(fresh_rows));
        }
        let result = futures::future::try_join_all(
            lanes
                .into_iter()
                .map(|work| pipeline::run(work, concurrency, &stop, &tally, &process)),
        )
        .await
        .map(|ended| ended.into_iter().sum::<u64>());
        // The item function holds ledger writers: the ledger closes only once it is gone.
        drop(process);
        progress.finish();
        watcher.abort();
        let Run {
            command,
            manifest,
            ledger_path,
            failures_path,
            writer,
            writer_task,
            state,
            ctx,
            output,
            started,
            ..
        } = self;
        drop(writer);
        let processed = match result {
            Ok(n) => n,
            Err(e) => {
                // Every acknowledged event is on disk; the rest is reconciled next time.
                return Err(e.into());
            }
        };
        // The item futures (and their writer clones) are gone: the writer drains and ends.
        match writer_task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => return Err(Error::Aws(format!("ledger writer panicked: {e}"))),
        }

        let state = state.lock().expect("ledger state");
        let mut counts = Counts::default();
        let mut remaining = 0u64;
        for row in manifest.rows()?.flatten() {
            let rec = state.get(&row.certificate_id);
            if !in_scope(rec, &row) {
                continue;
            }
            counts.add_record(rec);
            if rec.map(|r| r.open_intent.is_none()).unwrap_or(true)
                && pick(rec, &row) == Pick::Process
            {
                if rec.is_some_and(is_final_failure) {
                    continue;
                }
                remaining += 1;
            }
        }
        let failures = report::write_failure_report(&failures_path, &manifest, &state)?;
        let stopped = stop.reason();
        let exit = if stopped.is_some() || counts.in_doubt > 0 || remaining > 0 {
            ExitCode::Stopped
        } else if counts.failed > 0 {
            ExitCode::ItemsFailed
        } else {
            ExitCode::Success
        };
        let elapsed = started.elapsed().as_secs_f64();
        let summary = Summary {
            command: command.to_string(),
            counts,
            processed_this_run: processed,
            elapsed_s: elapsed,
            items_per_s: if elapsed > 0.0 {
                processed as f64 / elapsed
            } else {
                0.0
            },
            stopped: stopped.map(|s| s.describe().to_string()),
            calls: Summary::calls_from(ctx.counts()),
            ledger: ledger_path,
            failure_report: Some(failures_path).filter(|_| failures > 0 || counts.failed > 0),
            exit_code: exit.code(),
        };
        summary.print(output);
        Ok(exit)
    }
}

fn row_or_log(r: Result<ManifestRow, crate::manifest::ManifestError>) -> Option<ManifestRow> {
    match r {
        Ok(row) => Some(row),
        Err(e) => {
            tracing::error!("manifest changed while running: {e}");
            None
        }
    }
}

/// The value for a row's region in a per-region map (`None` = the run's default region, used
/// for rows without a region and as the fallback).
pub fn for_region<'a, T>(map: &'a HashMap<Option<String>, T>, row: &ManifestRow) -> Option<&'a T> {
    map.get(&row.region).or_else(|| map.get(&None))
}

/// IoT clients for every region of the manifest, in `account`'s scopes.
pub fn clients_for(
    conf: &SdkConfig,
    manifest: &Manifest,
    account: &str,
    ctx: &Arc<CallContext>,
) -> HashMap<Option<String>, Iot> {
    let default_region = aws::region_of(conf);
    let mut clients = HashMap::new();
    for region in manifest.regions().into_iter().chain(std::iter::once(None)) {
        let r = region.clone().unwrap_or_else(|| default_region.clone());
        let client = aws::iot_client(conf, Some(&r));
        let scope = Scope {
            account: account.to_string(),
            region: r,
        };
        clients.insert(region, Iot::new(client, scope, ctx.clone()));
    }
    clients
}
