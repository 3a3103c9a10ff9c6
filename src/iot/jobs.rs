//! AWS IoT Jobs and device connectivity (what `handoff` and the `--require-connected` /
//! `--require-handoff` gates call): creating, reading, cancelling and deleting a job aimed at
//! a static thing group, a thing's executions, and GetThingConnectivityData.

use aws_sdk_iot::types::{
    AbortAction, AbortConfig, AbortCriteria, JobExecutionFailureType, JobExecutionsRolloutConfig,
    TargetSelection, TimeoutConfig,
};

use super::{all_pages, CallFailure, Iot};
use crate::pacer::Operation;

/// What `handoff` asks of a job besides its document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSettings {
    /// `jobExecutionsRolloutConfig.maximumPerMinute` (1-1000).
    pub per_minute: i32,
    /// Cancel the job once this share of executed things failed (`ALL` failure types).
    pub abort_failed_percent: Option<u8>,
    /// `timeoutConfig.inProgressTimeoutInMinutes`.
    pub timeout_minutes: Option<i64>,
}

/// Fewest executed things before an abort criterion is judged (AWS's minimum is 1; a handful
/// keeps one early failure from cancelling a whole wave).
const ABORT_MIN_EXECUTED: i32 = 10;

/// What DescribeJob says of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// `IN_PROGRESS`, `CANCELED`, `COMPLETED`, `DELETION_IN_PROGRESS`, ...
    pub status: String,
    /// Its targets (ARNs).
    pub targets: Vec<String>,
}

/// What GetThingConnectivityData says of a thing's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connectivity {
    /// Connected now.
    pub connected: bool,
    /// The last connect or disconnect, epoch milliseconds (absent if never seen).
    pub since_ms: Option<i64>,
}

impl Iot {
    /// CreateJob (CONTINUOUS: a thing that joins the group later still gets its execution).
    pub async fn create_job(
        &self,
        id: &str,
        group_arn: &str,
        document: &str,
        settings: &JobSettings,
    ) -> Result<(), CallFailure> {
        let rollout = JobExecutionsRolloutConfig::builder()
            .maximum_per_minute(settings.per_minute)
            .build();
        let abort = match settings.abort_failed_percent {
            Some(p) => Some(
                AbortConfig::builder()
                    .criteria_list(
                        AbortCriteria::builder()
                            .failure_type(JobExecutionFailureType::All)
                            .action(AbortAction::Cancel)
                            .threshold_percentage(f64::from(p))
                            .min_number_of_executed_things(ABORT_MIN_EXECUTED)
                            .build()
                            .map_err(|e| CallFailure::local("InvalidAbortConfig", e.to_string()))?,
                    )
                    .build()
                    .map_err(|e| CallFailure::local("InvalidAbortConfig", e.to_string()))?,
            ),
            None => None,
        };
        let timeout = settings.timeout_minutes.map(|m| {
            TimeoutConfig::builder()
                .in_progress_timeout_in_minutes(m)
                .build()
        });
        self.ctx
            .call(&self.scope, Operation::CreateJob, || {
                self.client
                    .create_job()
                    .job_id(id)
                    .targets(group_arn)
                    .document(document)
                    .target_selection(TargetSelection::Continuous)
                    .job_executions_rollout_config(rollout.clone())
                    .set_abort_config(abort.clone())
                    .set_timeout_config(timeout.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// DescribeJob: `None` if there is no such job.
    pub async fn describe_job(&self, id: &str) -> Result<Option<JobInfo>, CallFailure> {
        self.ctx
            .look_up(
                &self.scope,
                Operation::DescribeJob,
                || self.client.describe_job().job_id(id).send(),
                |out| {
                    let job = out.job?;
                    Some(JobInfo {
                        status: job.status?.as_str().to_string(),
                        targets: job.targets.unwrap_or_default(),
                    })
                },
            )
            .await
    }

    /// ListJobExecutionsForJob: how many executions are still QUEUED or IN_PROGRESS.
    pub async fn pending_executions(&self, id: &str) -> Result<usize, CallFailure> {
        let statuses = all_pages(|token| async move {
            let out = self
                .ctx
                .call(&self.scope, Operation::ListJobExecutionsForJob, || {
                    self.client
                        .list_job_executions_for_job()
                        .job_id(id)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            let statuses = out
                .execution_summaries
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.job_execution_summary?.status)
                .map(|s| s.as_str().to_string());
            Ok((statuses.collect(), out.next_token))
        })
        .await?;
        Ok(statuses
            .iter()
            .filter(|s| *s == "QUEUED" || *s == "IN_PROGRESS")
            .count())
    }

    /// ListJobExecutionsForThing: the status of the thing's execution of each job whose id
    /// starts with `prefix` (job id, status), all pages.
    pub async fn executions_of_thing(
        &self,
        thing: &str,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, CallFailure> {
        all_pages(|token| async move {
            let out = self
                .ctx
                .call(&self.scope, Operation::ListJobExecutionsForThing, || {
                    self.client
                        .list_job_executions_for_thing()
                        .thing_name(thing)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            let found = out
                .execution_summaries
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    let job = e.job_id?;
                    let status = e.job_execution_summary?.status?.as_str().to_string();
                    job.starts_with(prefix).then_some((job, status))
                });
            Ok((found.collect(), out.next_token))
        })
        .await
    }

    /// CancelJob (its queued executions are canceled; those in progress go on).
    pub async fn cancel_job(&self, id: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::CancelJob, || {
                self.client.cancel_job().job_id(id).send()
            })
            .await
            .map(|_| ())
    }

    /// DeleteJob (not forced: AWS refuses to delete a job still in progress).
    pub async fn delete_job(&self, id: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::DeleteJob, || {
                self.client.delete_job().job_id(id).force(false).send()
            })
            .await
            .map(|_| ())
    }

    /// DeleteThingGroup (AWS answers success for a group that does not exist).
    pub async fn delete_thing_group(&self, name: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::DeleteThingGroup, || {
                self.client
                    .delete_thing_group()
                    .thing_group_name(name)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// GetThingConnectivityData: whether the device of `thing` is connected to this account,
    /// `None` if there is no such thing here.
    pub async fn connectivity(&self, thing: &str) -> Result<Option<Connectivity>, CallFailure> {
        self.ctx
            .look_up(
                &self.scope,
                Operation::GetThingConnectivityData,
                || {
                    self.client
                        .get_thing_connectivity_data()
                        .thing_name(thing)
                        .send()
                },
                |out| {
                    Some(Connectivity {
                        connected: out.connected.unwrap_or(false),
                        since_ms: out.timestamp.and_then(|t| t.to_millis().ok()),
                    })
                },
            )
            .await
    }
}
