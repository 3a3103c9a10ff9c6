//! AWS IoT Jobs (control plane): jobs aimed at things and static thing groups, their
//! executions, rollout, abort and timeout, and the operations CreateJob, DescribeJob,
//! GetJobDocument, ListJobExecutionsForJob, ListJobExecutionsForThing,
//! DescribeJobExecution, CancelJob and DeleteJob.
//!
//! A job gets one execution per thing it targets: the things named, and the members of
//! the groups named (their subgroups' too). A SNAPSHOT job's targets are fixed when it is
//! created, and it is COMPLETED once every execution has ended; a CONTINUOUS job also
//! reaches things that join a targeted group later, loses (REMOVED) the queued executions
//! of things that leave it, and stays IN_PROGRESS until it is cancelled. Executions are
//! rolled out at `maximumPerMinute` (default 1000): the device connected with the thing's
//! name as client id learns of an execution when it is rolled out (see [`crate::devices`],
//! which also moves executions on). An execution IN_PROGRESS longer than
//! `inProgressTimeoutInMinutes` is TIMED_OUT; a job whose failed share of executed things
//! reaches an abort criterion is CANCELED with its pending executions.

pub mod parse;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::world::{ancestry, descendants};
use crate::world::{hex_key, thing_arn, Call, Caller, Page, Reply, Timer, World};

/// `JobExecutionStatus` values, in the API model's order.
pub const EXECUTION_STATUSES: [&str; 8] = [
    "QUEUED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "REJECTED",
    "REMOVED",
    "CANCELED",
];

/// `targetSelection`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The targets as they are when the job is created.
    Snapshot,
    /// Also things that join a targeted group later.
    Continuous,
}

impl Selection {
    fn as_str(self) -> &'static str {
        match self {
            Selection::Snapshot => "SNAPSHOT",
            Selection::Continuous => "CONTINUOUS",
        }
    }
}

/// `failureType` of an abort criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureType {
    /// FAILED executions.
    Failed,
    /// REJECTED executions.
    Rejected,
    /// TIMED_OUT executions.
    TimedOut,
    /// All three.
    All,
}

impl FailureType {
    fn as_str(self) -> &'static str {
        match self {
            FailureType::Failed => "FAILED",
            FailureType::Rejected => "REJECTED",
            FailureType::TimedOut => "TIMED_OUT",
            FailureType::All => "ALL",
        }
    }

    fn counts(self, status: ExecStatus) -> bool {
        match self {
            FailureType::Failed => status == ExecStatus::Failed,
            FailureType::Rejected => status == ExecStatus::Rejected,
            FailureType::TimedOut => status == ExecStatus::TimedOut,
            FailureType::All => matches!(
                status,
                ExecStatus::Failed | ExecStatus::Rejected | ExecStatus::TimedOut
            ),
        }
    }
}

/// One abort criterion (action CANCEL).
#[derive(Clone, Debug, PartialEq)]
pub struct AbortCriteria {
    /// Which executions count as failed.
    pub failure: FailureType,
    /// Percentage of executed things that trips it.
    pub threshold: f64,
    /// Executed things before it is considered.
    pub min_executed: u64,
}

/// A CreateJob request, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// `jobId`.
    pub id: String,
    /// Thing and thing group ARNs.
    pub targets: Vec<String>,
    /// The job document.
    pub document: String,
    /// `description`.
    pub description: Option<String>,
    /// `targetSelection`.
    pub selection: Selection,
    /// `jobExecutionsRolloutConfig.maximumPerMinute`.
    pub per_minute: u32,
    /// `abortConfig.criteriaList`.
    pub abort: Vec<AbortCriteria>,
    /// `timeoutConfig.inProgressTimeoutInMinutes`.
    pub timeout_minutes: Option<i64>,
}

/// The status of one job execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecStatus {
    /// Waiting for the device.
    Queued,
    /// The device started it.
    InProgress,
    /// The device reported success.
    Succeeded,
    /// The device reported failure.
    Failed,
    /// IN_PROGRESS for longer than the job's timeout.
    TimedOut,
    /// The device refused it.
    Rejected,
    /// Its thing left a continuous job's group.
    Removed,
    /// The job was cancelled (or aborted).
    Canceled,
}

impl ExecStatus {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        EXECUTION_STATUSES[self as usize]
    }

    /// Whether the execution has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecStatus::Queued | ExecStatus::InProgress)
    }
}

/// `JobStatus` (DELETION_IN_PROGRESS and SCHEDULED are not simulated: a deletion is at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobStatus {
    InProgress,
    Canceled,
    Completed,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "IN_PROGRESS",
            JobStatus::Canceled => "CANCELED",
            JobStatus::Completed => "COMPLETED",
        }
    }
}

/// One thing's execution of a job.
#[derive(Clone, Debug)]
pub(crate) struct Execution {
    pub(crate) status: ExecStatus,
    queued_at: f64,
    started_at: Option<f64>,
    last_updated_at: f64,
    pub(crate) number: i64,
    version: i64,
    /// When the rollout makes it known to the device (milliseconds since the epoch).
    pub(crate) released_ms: i64,
    details: BTreeMap<String, String>,
    force_canceled: bool,
}

/// A job.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub(crate) spec: NewJob,
    arn: String,
    pub(crate) status: JobStatus,
    force_canceled: bool,
    reason_code: Option<String>,
    comment: Option<String>,
    created_at: f64,
    last_updated_at: f64,
    completed_at: Option<f64>,
    /// The earliest moment the rollout releases the next execution.
    next_release_ms: i64,
    /// By thing name (one per thing: a newer one replaces a REMOVED one).
    pub(crate) executions: BTreeMap<String, Execution>,
}

/// What one account's job looks like in the state dump.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct JobState {
    /// `jobId`.
    pub id: String,
    /// `IN_PROGRESS`, `CANCELED` or `COMPLETED`.
    pub status: String,
    /// `SNAPSHOT` or `CONTINUOUS`.
    pub target_selection: String,
    /// Target ARNs.
    pub targets: Vec<String>,
    /// The job document.
    pub document: String,
    /// Executions by thing name: status and execution number.
    pub executions: BTreeMap<String, ExecutionState>,
}

/// One execution in the state dump.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ExecutionState {
    /// `QUEUED`, `IN_PROGRESS`, `SUCCEEDED`, ...
    pub status: String,
    /// `executionNumber`.
    pub number: i64,
}

impl Job {
    pub(crate) fn dump(&self) -> JobState {
        JobState {
            id: self.spec.id.clone(),
            status: self.status.as_str().to_string(),
            target_selection: self.spec.selection.as_str().to_string(),
            targets: self.spec.targets.clone(),
            document: self.spec.document.clone(),
            executions: self
                .executions
                .iter()
                .map(|(t, e)| {
                    let state = ExecutionState {
                        status: e.status.as_str().to_string(),
                        number: e.number,
                    };
                    (t.clone(), state)
                })
                .collect(),
        }
    }

    /// The thing group names among the targets.
    fn target_groups(&self) -> BTreeSet<String> {
        self.spec
            .targets
            .iter()
            .filter_map(|t| t.split_once(":thinggroup/").map(|(_, n)| n.to_string()))
            .collect()
    }
}

/// `arn:aws:iot:REGION:ACCOUNT:job/ID`.
pub fn job_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:job/{id}")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobIdentity<'a> {
    job_arn: &'a str,
    job_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessDetails {
    number_of_canceled_things: u64,
    number_of_succeeded_things: u64,
    number_of_failed_things: u64,
    number_of_rejected_things: u64,
    number_of_queued_things: u64,
    number_of_in_progress_things: u64,
    number_of_removed_things: u64,
    number_of_timed_out_things: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RolloutOut {
    maximum_per_minute: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CriteriaOut {
    failure_type: &'static str,
    action: &'static str,
    threshold_percentage: f64,
    min_number_of_executed_things: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AbortOut {
    criteria_list: Vec<CriteriaOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimeoutOut {
    in_progress_timeout_in_minutes: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobOut<'a> {
    job_arn: &'a str,
    job_id: &'a str,
    target_selection: &'static str,
    status: &'static str,
    force_canceled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    targets: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    created_at: f64,
    last_updated_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<f64>,
    job_process_details: ProcessDetails,
    job_executions_rollout_config: RolloutOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    abort_config: Option<AbortOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_config: Option<TimeoutOut>,
    is_concurrent: bool,
}

#[derive(Serialize)]
struct DescribeJobResponse<'a> {
    job: JobOut<'a>,
}

#[derive(Serialize)]
struct GetJobDocumentResponse<'a> {
    document: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionSummary {
    status: &'static str,
    queued_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<f64>,
    last_updated_at: f64,
    execution_number: i64,
    retry_attempt: i64,
}

impl Execution {
    fn summary(&self) -> ExecutionSummary {
        ExecutionSummary {
            status: self.status.as_str(),
            queued_at: self.queued_at,
            started_at: self.started_at,
            last_updated_at: self.last_updated_at,
            execution_number: self.number,
            retry_attempt: 0,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ForJob {
    thing_arn: String,
    job_execution_summary: ExecutionSummary,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListForJobResponse {
    execution_summaries: Vec<ForJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ForThing<'a> {
    job_id: &'a str,
    job_execution_summary: ExecutionSummary,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListForThingResponse<'a> {
    execution_summaries: Vec<ForThing<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusDetails<'a> {
    details_map: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionOut<'a> {
    job_id: &'a str,
    status: &'static str,
    force_canceled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_details: Option<StatusDetails<'a>>,
    thing_arn: String,
    queued_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<f64>,
    last_updated_at: f64,
    execution_number: i64,
    version_number: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate_seconds_before_timed_out: Option<i64>,
}

#[derive(Serialize)]
struct DescribeExecutionResponse<'a> {
    execution: ExecutionOut<'a>,
}

fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Job {id} does not exist"))
}

/// Milliseconds between two releases at `per_minute`.
fn release_gap_ms(per_minute: u32) -> i64 {
    (60_000 + i64::from(per_minute) - 1) / i64::from(per_minute.max(1))
}

fn ms_to_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl World {
    /// Runs one job operation.
    pub(crate) fn job_call(
        &mut self,
        caller: &Caller,
        call: Call,
        now_ms: i64,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        match call {
            Call::CreateJob(spec) => self.create_job(r, a, *spec, now_ms),
            Call::DescribeJob { id } => {
                let job = self.job(r, a, &id)?;
                Ok(Reply::of(&DescribeJobResponse { job: describe(job) }))
            }
            Call::GetJobDocument { id } => {
                let job = self.job(r, a, &id)?;
                Ok(Reply::of(&GetJobDocumentResponse {
                    document: &job.spec.document,
                }))
            }
            Call::ListJobExecutionsForJob { id, status, page } => {
                let job = self.job(r, a, &id)?;
                let items = job
                    .executions
                    .iter()
                    .filter(|(_, e)| status.as_deref().is_none_or(|s| s == e.status.as_str()))
                    .map(|(thing, e)| {
                        let item = ForJob {
                            thing_arn: thing_arn(r, a, thing),
                            job_execution_summary: e.summary(),
                        };
                        (hex_key(thing), item)
                    })
                    .collect();
                let (execution_summaries, next_token) = page.ascending_of(items);
                Ok(Reply::of(&ListForJobResponse {
                    execution_summaries,
                    next_token,
                }))
            }
            Call::ListJobExecutionsForThing {
                thing,
                status,
                job,
                page,
            } => self.list_for_thing(r, a, &thing, status, job, &page),
            Call::DescribeJobExecution {
                id,
                thing,
                execution_number,
            } => {
                let job = self.job(r, a, &id)?;
                let e = job
                    .executions
                    .get(&thing)
                    .filter(|e| execution_number.is_none_or(|n| n == e.number))
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "Job execution of job {id} for thing {thing} does not exist"
                        ))
                    })?;
                let timeout_left = match (e.status, e.started_at, job.spec.timeout_minutes) {
                    (ExecStatus::InProgress, Some(started), Some(minutes)) => {
                        let end = started + (minutes * 60) as f64;
                        Some(((end - ms_to_s(now_ms)).max(0.0)) as i64)
                    }
                    _ => None,
                };
                Ok(Reply::of(&DescribeExecutionResponse {
                    execution: ExecutionOut {
                        job_id: &job.spec.id,
                        status: e.status.as_str(),
                        force_canceled: e.force_canceled,
                        status_details: (!e.details.is_empty()).then_some(StatusDetails {
                            details_map: &e.details,
                        }),
                        thing_arn: thing_arn(r, a, &thing),
                        queued_at: e.queued_at,
                        started_at: e.started_at,
                        last_updated_at: e.last_updated_at,
                        execution_number: e.number,
                        version_number: e.version,
                        approximate_seconds_before_timed_out: timeout_left,
                    },
                }))
            }
            Call::CancelJob {
                id,
                force,
                reason_code,
                comment,
            } => self.cancel_job(r, a, &id, force, reason_code, comment, now_ms),
            Call::DeleteJob { id, force } => {
                let job = self.job(r, a, &id)?;
                let running = job
                    .executions
                    .values()
                    .any(|e| e.status == ExecStatus::InProgress);
                if !force && (job.status == JobStatus::InProgress || running) {
                    return Err(ApiError::invalid_state_transition(format!(
                        "Job {id} is {} (or has executions in progress): cancel it first, or delete it with force",
                        job.status.as_str()
                    )));
                }
                if let Some(d) = self.data_mut(r, a) {
                    d.jobs.remove(&id);
                }
                Ok(Reply::Empty)
            }
            other => Err(ApiError::invalid_request(format!(
                "not a job call: {other:?}"
            ))),
        }
    }

    fn job(&self, r: &str, a: &str, id: &str) -> Result<&Job, ApiError> {
        self.data(r, a)
            .and_then(|d| d.jobs.get(id))
            .ok_or_else(|| job_not_found(id))
    }

    fn create_job(
        &mut self,
        r: &str,
        a: &str,
        spec: NewJob,
        now_ms: i64,
    ) -> Result<Reply, ApiError> {
        let d = self.data_entry(r, a);
        if d.jobs.contains_key(&spec.id) {
            return Err(ApiError::already_exists(format!(
                "Job with id {} already exists",
                spec.id
            )));
        }
        let mut things = BTreeSet::new();
        for target in &spec.targets {
            let prefix = format!("arn:aws:iot:{r}:{a}:");
            let Some(rest) = target.strip_prefix(&prefix) else {
                return Err(ApiError::invalid_request(format!(
                    "Invalid target {target}: expected the ARN of a thing or thing group of account {a} in {r}"
                )));
            };
            if let Some(name) = rest.strip_prefix("thing/") {
                if !d.things.contains_key(name) {
                    return Err(ApiError::not_found(format!("Thing {name} does not exist")));
                }
                things.insert(name.to_string());
            } else if let Some(name) = rest.strip_prefix("thinggroup/") {
                if !d.groups.contains_key(name) {
                    return Err(ApiError::not_found(format!(
                        "Thing group {name} does not exist"
                    )));
                }
                let groups = descendants(d, name);
                things.extend(
                    d.things
                        .iter()
                        .filter(|(_, t)| t.groups.iter().any(|g| groups.contains(g)))
                        .map(|(n, _)| n.clone()),
                );
            } else {
                return Err(ApiError::invalid_request(format!(
                    "Invalid target {target}: expected the ARN of a thing or thing group"
                )));
            }
        }
        let now = ms_to_s(now_ms);
        let arn = job_arn(r, a, &spec.id);
        let id = spec.id.clone();
        let job = Job {
            spec,
            arn,
            status: JobStatus::InProgress,
            force_canceled: false,
            reason_code: None,
            comment: None,
            created_at: now,
            last_updated_at: now,
            completed_at: None,
            next_release_ms: now_ms,
            executions: BTreeMap::new(),
        };
        d.jobs.insert(id.clone(), job);
        for thing in &things {
            self.add_execution(r, a, &id, thing, now_ms);
        }
        self.job_settled(r, a, &id, now_ms);
        let job = self.job(r, a, &id).expect("just created");
        Ok(Reply::of(&JobIdentity {
            job_arn: &job.arn,
            job_id: &job.spec.id,
            description: job.spec.description.as_deref(),
        }))
    }

    /// Queues an execution of job `id` for `thing` (a new one, numbered after any earlier
    /// one) and schedules its release.
    fn add_execution(&mut self, r: &str, a: &str, id: &str, thing: &str, now_ms: i64) {
        let Some(job) = self.data_mut(r, a).and_then(|d| d.jobs.get_mut(id)) else {
            return;
        };
        let number = job.executions.get(thing).map_or(1, |e| e.number + 1);
        let released_ms = job.next_release_ms.max(now_ms);
        job.next_release_ms = released_ms + release_gap_ms(job.spec.per_minute);
        let now = ms_to_s(now_ms);
        job.executions.insert(
            thing.to_string(),
            Execution {
                status: ExecStatus::Queued,
                queued_at: now,
                started_at: None,
                last_updated_at: now,
                number,
                version: 1,
                released_ms,
                details: BTreeMap::new(),
                force_canceled: false,
            },
        );
        job.last_updated_at = now;
        self.timers.push(
            released_ms,
            Timer::Release {
                region: r.to_string(),
                account: a.to_string(),
                job: id.to_string(),
                thing: thing.to_string(),
                number,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn cancel_job(
        &mut self,
        r: &str,
        a: &str,
        id: &str,
        force: bool,
        reason_code: Option<String>,
        comment: Option<String>,
        now_ms: i64,
    ) -> Result<Reply, ApiError> {
        let job = self
            .data_mut(r, a)
            .and_then(|d| d.jobs.get_mut(id))
            .ok_or_else(|| job_not_found(id))?;
        if job.status == JobStatus::Completed {
            return Err(ApiError::invalid_request(format!(
                "Job {id} is COMPLETED: it cannot be canceled"
            )));
        }
        let now = ms_to_s(now_ms);
        job.status = JobStatus::Canceled;
        job.force_canceled |= force;
        job.reason_code = reason_code.or(job.reason_code.take());
        job.comment = comment.or(job.comment.take());
        job.last_updated_at = now;
        for e in job.executions.values_mut() {
            let cancel =
                e.status == ExecStatus::Queued || (force && e.status == ExecStatus::InProgress);
            if cancel {
                e.force_canceled = e.status == ExecStatus::InProgress;
                e.status = ExecStatus::Canceled;
                e.last_updated_at = now;
                e.version += 1;
            }
        }
        let job = self.job(r, a, id).expect("exists");
        Ok(Reply::of(&JobIdentity {
            job_arn: &job.arn,
            job_id: &job.spec.id,
            description: job.spec.description.as_deref(),
        }))
    }

    fn list_for_thing(
        &self,
        r: &str,
        a: &str,
        thing: &str,
        status: Option<String>,
        only: Option<String>,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        // UNCONFIRMED: what AWS answers for a thing that does not exist; executions are
        // kept by thing name, so the listing is simply empty.
        let items: Vec<(String, ForThing<'_>)> = self
            .data(r, a)
            .map(|d| {
                d.jobs
                    .values()
                    .filter(|j| only.as_deref().is_none_or(|o| o == j.spec.id))
                    .filter_map(|j| {
                        let e = j.executions.get(thing)?;
                        if status.as_deref().is_some_and(|s| s != e.status.as_str()) {
                            return None;
                        }
                        let item = ForThing {
                            job_id: &j.spec.id,
                            job_execution_summary: e.summary(),
                        };
                        Some((hex_key(&j.spec.id), item))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (execution_summaries, next_token) = page.ascending_of(items);
        Ok(Reply::of(&ListForThingResponse {
            execution_summaries,
            next_token,
        }))
    }

    /// Moves the execution `number` of job `id` for `thing` to `status` (only from QUEUED
    /// or IN_PROGRESS); then the job's timeout, abort criteria and completion apply.
    /// Returns whether it moved.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_execution(
        &mut self,
        r: &str,
        a: &str,
        id: &str,
        thing: &str,
        number: i64,
        status: ExecStatus,
        details: BTreeMap<String, String>,
        at_ms: i64,
    ) -> bool {
        let Some(job) = self.data_mut(r, a).and_then(|d| d.jobs.get_mut(id)) else {
            return false;
        };
        let Some(e) = job
            .executions
            .get_mut(thing)
            .filter(|e| e.number == number && !e.status.is_terminal())
        else {
            return false;
        };
        let at = ms_to_s(at_ms);
        if status == ExecStatus::InProgress && e.status == ExecStatus::InProgress {
            return false;
        }
        e.status = status;
        e.last_updated_at = at;
        e.version += 1;
        e.details.extend(details);
        job.last_updated_at = at;
        if status == ExecStatus::InProgress {
            e.started_at = Some(at);
            if let Some(minutes) = job.spec.timeout_minutes {
                self.timers.push(
                    at_ms + minutes * 60_000,
                    Timer::Timeout {
                        region: r.to_string(),
                        account: a.to_string(),
                        job: id.to_string(),
                        thing: thing.to_string(),
                        number,
                    },
                );
            }
        } else {
            self.job_settled(r, a, id, at_ms);
        }
        true
    }

    /// After an execution ended: the abort criteria, then a snapshot job's completion.
    fn job_settled(&mut self, r: &str, a: &str, id: &str, at_ms: i64) {
        let Some(job) = self.data_mut(r, a).and_then(|d| d.jobs.get_mut(id)) else {
            return;
        };
        if job.status != JobStatus::InProgress {
            return;
        }
        let at = ms_to_s(at_ms);
        let executed: Vec<ExecStatus> = job
            .executions
            .values()
            .map(|e| e.status)
            .filter(|s| {
                matches!(
                    s,
                    ExecStatus::Succeeded
                        | ExecStatus::Failed
                        | ExecStatus::Rejected
                        | ExecStatus::TimedOut
                )
            })
            .collect();
        let aborted = job.spec.abort.iter().any(|c| {
            let n = executed.len() as u64;
            let failed = executed.iter().filter(|s| c.failure.counts(**s)).count() as f64;
            n >= c.min_executed && n > 0 && failed * 100.0 / n as f64 >= c.threshold
        });
        if aborted {
            job.status = JobStatus::Canceled;
            job.comment = Some("canceled by the job's abortConfig".to_string());
            job.last_updated_at = at;
            for e in job.executions.values_mut() {
                if !e.status.is_terminal() {
                    e.status = ExecStatus::Canceled;
                    e.last_updated_at = at;
                    e.version += 1;
                }
            }
            return;
        }
        let all_ended = job.executions.values().all(|e| e.status.is_terminal());
        if job.spec.selection == Selection::Snapshot && all_ended {
            job.status = JobStatus::Completed;
            job.completed_at = Some(at);
            job.last_updated_at = at;
        }
    }

    /// `thing` may have joined a group (or a group may have got a new member below it):
    /// every continuous job in progress that now targets it and has no live execution for
    /// it queues one.
    pub(crate) fn jobs_on_join(&mut self, r: &str, a: &str, thing: &str, at_ms: i64) {
        let Some(d) = self.data(r, a) else { return };
        let targeted = targeted_groups(d, thing);
        let ids: Vec<String> = d
            .jobs
            .values()
            .filter(|j| j.spec.selection == Selection::Continuous)
            .filter(|j| j.status == JobStatus::InProgress)
            .filter(|j| !j.target_groups().is_disjoint(&targeted))
            .filter(|j| {
                j.executions
                    .get(thing)
                    .is_none_or(|e| e.status == ExecStatus::Removed)
            })
            .map(|j| j.spec.id.clone())
            .collect();
        for id in ids {
            self.add_execution(r, a, &id, thing, at_ms);
        }
    }

    /// `thing` may have left a group: the pending executions of continuous jobs that no
    /// longer target it are REMOVED.
    pub(crate) fn jobs_on_leave(&mut self, r: &str, a: &str, thing: &str, at_ms: i64) {
        let Some(d) = self.data(r, a) else { return };
        let targeted = targeted_groups(d, thing);
        let gone: Vec<(String, i64)> = d
            .jobs
            .values()
            .filter(|j| j.spec.selection == Selection::Continuous)
            .filter(|j| j.target_groups().is_disjoint(&targeted))
            .filter(|j| {
                !j.spec
                    .targets
                    .iter()
                    .any(|t| t.ends_with(&format!(":thing/{thing}")))
            })
            .filter_map(|j| {
                let e = j.executions.get(thing)?;
                (!e.status.is_terminal()).then(|| (j.spec.id.clone(), e.number))
            })
            .collect();
        for (id, number) in gone {
            self.set_execution(
                r,
                a,
                &id,
                thing,
                number,
                ExecStatus::Removed,
                BTreeMap::new(),
                at_ms,
            );
        }
    }

    /// An IN_PROGRESS execution reached its job's timeout.
    pub(crate) fn execution_timed_out(
        &mut self,
        r: &str,
        a: &str,
        id: &str,
        thing: &str,
        number: i64,
        at_ms: i64,
    ) {
        let running = self
            .data(r, a)
            .and_then(|d| d.jobs.get(id))
            .and_then(|j| j.executions.get(thing))
            .is_some_and(|e| e.number == number && e.status == ExecStatus::InProgress);
        if running {
            self.set_execution(
                r,
                a,
                id,
                thing,
                number,
                ExecStatus::TimedOut,
                BTreeMap::new(),
                at_ms,
            );
        }
    }
}

/// The groups whose continuous jobs reach `thing`: its groups and their ancestors.
fn targeted_groups(d: &crate::world::AccountData, thing: &str) -> BTreeSet<String> {
    d.things
        .get(thing)
        .map(|t| t.groups.iter().flat_map(|g| ancestry(d, g, true)).collect())
        .unwrap_or_default()
}

fn describe(job: &Job) -> JobOut<'_> {
    let mut p = ProcessDetails {
        number_of_canceled_things: 0,
        number_of_succeeded_things: 0,
        number_of_failed_things: 0,
        number_of_rejected_things: 0,
        number_of_queued_things: 0,
        number_of_in_progress_things: 0,
        number_of_removed_things: 0,
        number_of_timed_out_things: 0,
    };
    for e in job.executions.values() {
        let n = match e.status {
            ExecStatus::Queued => &mut p.number_of_queued_things,
            ExecStatus::InProgress => &mut p.number_of_in_progress_things,
            ExecStatus::Succeeded => &mut p.number_of_succeeded_things,
            ExecStatus::Failed => &mut p.number_of_failed_things,
            ExecStatus::TimedOut => &mut p.number_of_timed_out_things,
            ExecStatus::Rejected => &mut p.number_of_rejected_things,
            ExecStatus::Removed => &mut p.number_of_removed_things,
            ExecStatus::Canceled => &mut p.number_of_canceled_things,
        };
        *n += 1;
    }
    JobOut {
        job_arn: &job.arn,
        job_id: &job.spec.id,
        target_selection: job.spec.selection.as_str(),
        status: job.status.as_str(),
        force_canceled: job.force_canceled,
        reason_code: job.reason_code.as_deref(),
        comment: job.comment.as_deref(),
        targets: &job.spec.targets,
        description: job.spec.description.as_deref(),
        created_at: job.created_at,
        last_updated_at: job.last_updated_at,
        completed_at: job.completed_at,
        job_process_details: p,
        job_executions_rollout_config: RolloutOut {
            maximum_per_minute: job.spec.per_minute,
        },
        abort_config: (!job.spec.abort.is_empty()).then(|| AbortOut {
            criteria_list: job
                .spec
                .abort
                .iter()
                .map(|c| CriteriaOut {
                    failure_type: c.failure.as_str(),
                    action: "CANCEL",
                    threshold_percentage: c.threshold,
                    min_number_of_executed_things: c.min_executed,
                })
                .collect(),
        }),
        timeout_config: job.spec.timeout_minutes.map(|m| TimeoutOut {
            in_progress_timeout_in_minutes: m,
        }),
        // A job is concurrent only while it rolls out; the simulator rolls out at once.
        is_concurrent: false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{Seed, SeedAccount, SeedThing};
    use crate::world::now_millis;

    const R: &str = "us-east-1";
    const A: &str = "111111111111";

    fn world_with_job(timeout_minutes: Option<i64>) -> World {
        let mut world = World::new();
        let account = SeedAccount {
            things: vec![SeedThing {
                name: "t".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        world
            .seed(&Seed {
                region: R.into(),
                accounts: BTreeMap::from([(A.to_string(), account)]),
            })
            .unwrap();
        let caller = Caller {
            account: A.into(),
            region: R.into(),
        };
        let spec = NewJob {
            id: "j".into(),
            targets: vec![format!("arn:aws:iot:{R}:{A}:thing/t")],
            document: "{}".into(),
            description: None,
            selection: Selection::Snapshot,
            per_minute: 1000,
            abort: Vec::new(),
            timeout_minutes,
        };
        let out = world.execute(
            &caller,
            Call::CreateJob(Box::new(spec)),
            &crate::behaviour::Behaviour::default(),
        );
        out.reply.unwrap();
        world
    }

    fn status(world: &World) -> (ExecStatus, JobStatus) {
        let job = &world.data(R, A).unwrap().jobs["j"];
        (job.executions["t"].status, job.status)
    }

    #[test]
    fn an_execution_in_progress_for_longer_than_the_timeout_times_out() {
        let mut world = world_with_job(Some(1));
        let start = now_millis();
        let started = world.set_execution(
            R,
            A,
            "j",
            "t",
            1,
            ExecStatus::InProgress,
            BTreeMap::new(),
            start,
        );
        assert!(started);
        world.advance(start + 59_999);
        assert_eq!(
            status(&world),
            (ExecStatus::InProgress, JobStatus::InProgress)
        );
        world.advance(start + 60_000);
        assert_eq!(status(&world), (ExecStatus::TimedOut, JobStatus::Completed));
    }

    #[test]
    fn without_a_timeout_it_stays_in_progress() {
        let mut world = world_with_job(None);
        let start = now_millis();
        world.set_execution(
            R,
            A,
            "j",
            "t",
            1,
            ExecStatus::InProgress,
            BTreeMap::new(),
            start,
        );
        world.advance(start + 7 * 24 * 3_600_000);
        assert_eq!(
            status(&world),
            (ExecStatus::InProgress, JobStatus::InProgress)
        );
    }

    #[test]
    fn an_ended_execution_does_not_move_again() {
        let mut world = world_with_job(None);
        let now = now_millis();
        let done = BTreeMap::new();
        assert!(world.set_execution(R, A, "j", "t", 1, ExecStatus::Succeeded, done.clone(), now));
        assert!(!world.set_execution(R, A, "j", "t", 1, ExecStatus::Failed, done, now));
        assert_eq!(
            status(&world),
            (ExecStatus::Succeeded, JobStatus::Completed)
        );
    }

    #[test]
    fn the_rollout_releases_executions_at_its_rate() {
        assert_eq!(release_gap_ms(1000), 60);
        assert_eq!(release_gap_ms(1), 60_000);
        assert_eq!(release_gap_ms(7), 8572);
    }
}
