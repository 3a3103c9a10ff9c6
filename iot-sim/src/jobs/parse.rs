//! The inputs of the job operations, checked as the API model and the API reference
//! constrain them; what the simulator does not simulate (job templates, documents in S3,
//! scheduling, exponential rollouts, retries) is refused by name rather than ignored.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{AbortCriteria, FailureType, NewJob, Selection, EXECUTION_STATUSES};
use crate::errors::ApiError;
use crate::ops::Operation;
use crate::routes::DEFAULT_MAX_RESULTS;
use crate::world::{Call, Page};

/// Largest job document (`JobDocument`: max 32768).
pub const MAX_DOCUMENT: usize = 32_768;
/// Largest `maxResults` of the execution listings (`LaserMaxResults`).
pub const MAX_RESULTS: usize = 250;
/// `maximumPerMinute` of a rollout: 1..1000 (API reference, JobExecutionsRolloutConfig).
pub const MAX_PER_MINUTE: u32 = 1000;
/// `inProgressTimeoutInMinutes`: 1..10080 (seven days; API reference, TimeoutConfig).
pub const MAX_TIMEOUT_MINUTES: i64 = 10_080;

fn validation(value: &str, member: &str, constraint: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

/// `jobId`: 1..64 of `[a-zA-Z0-9_-]`.
pub fn is_job_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn job_id(labels: &[String], i: usize) -> Result<String, ApiError> {
    let id = labels.get(i).map(String::as_str).unwrap_or("");
    if is_job_id(id) {
        Ok(id.to_string())
    } else {
        Err(validation(
            id,
            "jobId",
            "Member must have length between 1 and 64 and match pattern [a-zA-Z0-9_-]+",
        ))
    }
}

fn thing_name(labels: &[String], i: usize) -> Result<String, ApiError> {
    let name = labels.get(i).map(String::as_str).unwrap_or("");
    if crate::validate::is_thing_name(name) {
        Ok(name.to_string())
    } else {
        Err(validation(
            name,
            "thingName",
            "Member must match pattern [a-zA-Z0-9:_-]+ with length 1..128",
        ))
    }
}

fn bool_param(query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::invalid_request(format!(
            "Invalid value '{other}' for {name}: expected true or false"
        ))),
    }
}

fn status_param(query: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match query.get("status") {
        None => Ok(None),
        Some(s) if EXECUTION_STATUSES.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(s) => Err(validation(
            s,
            "status",
            &format!(
                "Member must satisfy enum value set: [{}]",
                EXECUTION_STATUSES.join(", ")
            ),
        )),
    }
}

fn page(query: &HashMap<String, String>) -> Result<Page, ApiError> {
    let size = match query.get("maxResults") {
        None => DEFAULT_MAX_RESULTS,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return Err(validation(
                    v,
                    "maxResults",
                    &format!("Member must have value between 1 and {MAX_RESULTS}"),
                ))
            }
        },
    };
    Ok(Page {
        size,
        marker: query.get("nextToken").filter(|t| !t.is_empty()).cloned(),
        ascending: true,
    })
}

fn body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid_request(
            "Request body is not a JSON object",
        )),
    }
}

fn string(obj: &Map<String, Value>, member: &str) -> Result<Option<String>, ApiError> {
    match obj.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_request(format!(
            "Member '{member}' must be a string"
        ))),
    }
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    member: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match obj.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ApiError::invalid_request(format!(
            "Member '{member}' must be an object"
        ))),
    }
}

fn integer(obj: &Map<String, Value>, member: &str) -> Result<Option<i64>, ApiError> {
    match obj.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            ApiError::invalid_request(format!("Member '{member}' must be an integer"))
        }),
    }
}

/// `[^\p{C}]+` up to `max` characters (descriptions, comments).
fn text(value: Option<String>, member: &str, max: usize) -> Result<Option<String>, ApiError> {
    if let Some(v) = &value {
        if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(validation(
                v,
                member,
                &format!("Member must have length less than or equal to {max} and match pattern [^\\p{{C}}]+"),
            ));
        }
    }
    Ok(value)
}

/// What the simulator refuses by name: members it does not simulate.
const NOT_SIMULATED: [&str; 7] = [
    "documentSource",
    "presignedUrlConfig",
    "jobTemplateArn",
    "documentParameters",
    "schedulingConfig",
    "destinationPackageVersions",
    "jobExecutionsRetryConfig",
];

fn new_job(id: String, obj: &Map<String, Value>) -> Result<NewJob, ApiError> {
    for member in NOT_SIMULATED {
        if obj.get(member).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid_request(format!(
                "iot-sim does not simulate {member} of CreateJob"
            )));
        }
    }
    if string(obj, "namespaceId")?.is_some() {
        return Err(ApiError::invalid_request(
            "iot-sim does not simulate job namespaces (namespaceId)",
        ));
    }
    let targets = match obj.get("targets") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|t| t.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| ApiError::invalid_request("targets must be a list of ARNs"))?,
        _ => {
            return Err(ApiError::invalid_request(
                "1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ))
        }
    };
    let document = string(obj, "document")?.ok_or_else(|| {
        ApiError::invalid_request("A job document or a job document source is required")
    })?;
    if document.len() > MAX_DOCUMENT {
        return Err(ApiError::invalid_request(format!(
            "1 validation error detected: Value at 'document' failed to satisfy constraint: Member must have length less than or equal to {MAX_DOCUMENT}"
        )));
    }
    if serde_json::from_str::<Value>(&document).is_err() {
        return Err(ApiError::invalid_request(
            "The job document is not a valid JSON document",
        ));
    }
    let selection = match string(obj, "targetSelection")?.as_deref() {
        None | Some("SNAPSHOT") => Selection::Snapshot,
        Some("CONTINUOUS") => Selection::Continuous,
        Some(other) => {
            return Err(validation(
                other,
                "targetSelection",
                "Member must satisfy enum value set: [CONTINUOUS, SNAPSHOT]",
            ))
        }
    };
    let mut per_minute = MAX_PER_MINUTE;
    if let Some(rollout) = object(obj, "jobExecutionsRolloutConfig")? {
        if rollout.get("exponentialRate").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid_request(
                "iot-sim does not simulate exponentialRate rollouts",
            ));
        }
        if let Some(n) = integer(rollout, "maximumPerMinute")? {
            if !(1..=i64::from(MAX_PER_MINUTE)).contains(&n) {
                return Err(validation(
                    &n.to_string(),
                    "jobExecutionsRolloutConfig.maximumPerMinute",
                    &format!("Member must have value between 1 and {MAX_PER_MINUTE}"),
                ));
            }
            per_minute = n as u32;
        }
    }
    let mut abort = Vec::new();
    if let Some(config) = object(obj, "abortConfig")? {
        let Some(Value::Array(list)) = config.get("criteriaList") else {
            return Err(ApiError::invalid_request(
                "abortConfig.criteriaList must be a non-empty list",
            ));
        };
        if list.is_empty() {
            return Err(ApiError::invalid_request(
                "abortConfig.criteriaList must be a non-empty list",
            ));
        }
        for c in list {
            let Value::Object(c) = c else {
                return Err(ApiError::invalid_request(
                    "an abort criteria must be an object",
                ));
            };
            let failure =
                match string(c, "failureType")?.as_deref() {
                    Some("FAILED") => FailureType::Failed,
                    Some("REJECTED") => FailureType::Rejected,
                    Some("TIMED_OUT") => FailureType::TimedOut,
                    Some("ALL") => FailureType::All,
                    other => return Err(validation(
                        other.unwrap_or("null"),
                        "abortConfig.criteriaList.member.failureType",
                        "Member must satisfy enum value set: [FAILED, REJECTED, TIMED_OUT, ALL]",
                    )),
                };
            if string(c, "action")?.as_deref() != Some("CANCEL") {
                return Err(ApiError::invalid_request(
                    "abortConfig.criteriaList.member.action must be CANCEL",
                ));
            }
            let threshold = c
                .get("thresholdPercentage")
                .and_then(Value::as_f64)
                .filter(|t| (0.0..=100.0).contains(t))
                .ok_or_else(|| {
                    ApiError::invalid_request(
                        "abortConfig.criteriaList.member.thresholdPercentage must be a number up to 100",
                    )
                })?;
            let min = integer(c, "minNumberOfExecutedThings")?
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ApiError::invalid_request(
                        "abortConfig.criteriaList.member.minNumberOfExecutedThings must be at least 1",
                    )
                })?;
            abort.push(AbortCriteria {
                failure,
                threshold,
                min_executed: min as u64,
            });
        }
    }
    let mut timeout_minutes = None;
    if let Some(config) = object(obj, "timeoutConfig")? {
        if let Some(m) = integer(config, "inProgressTimeoutInMinutes")? {
            if !(1..=MAX_TIMEOUT_MINUTES).contains(&m) {
                return Err(validation(
                    &m.to_string(),
                    "timeoutConfig.inProgressTimeoutInMinutes",
                    &format!("Member must have value between 1 and {MAX_TIMEOUT_MINUTES}"),
                ));
            }
            timeout_minutes = Some(m);
        }
    }
    Ok(NewJob {
        id,
        targets,
        document,
        description: text(string(obj, "description")?, "description", 2028)?,
        selection,
        per_minute,
        abort,
        timeout_minutes,
    })
}

/// Validates the input of a job operation (or one on jobs of a thing) and turns it into a
/// [`Call`].
pub fn parse_call(
    op: Operation,
    labels: &[String],
    query: &HashMap<String, String>,
    bytes: &[u8],
) -> Result<Call, ApiError> {
    Ok(match op {
        Operation::CreateJob => {
            let id = job_id(labels, 0)?;
            Call::CreateJob(Box::new(new_job(id, &body(bytes)?)?))
        }
        Operation::DescribeJob => Call::DescribeJob {
            id: job_id(labels, 0)?,
        },
        Operation::GetJobDocument => Call::GetJobDocument {
            id: job_id(labels, 0)?,
        },
        Operation::ListJobExecutionsForJob => Call::ListJobExecutionsForJob {
            id: job_id(labels, 0)?,
            status: status_param(query)?,
            page: page(query)?,
        },
        Operation::ListJobExecutionsForThing => {
            let job =
                match query.get("jobId") {
                    None => None,
                    Some(j) if is_job_id(j) => Some(j.clone()),
                    Some(j) => return Err(validation(
                        j,
                        "jobId",
                        "Member must have length between 1 and 64 and match pattern [a-zA-Z0-9_-]+",
                    )),
                };
            if query.contains_key("namespaceId") {
                return Err(ApiError::invalid_request(
                    "iot-sim does not simulate job namespaces (namespaceId)",
                ));
            }
            Call::ListJobExecutionsForThing {
                thing: thing_name(labels, 0)?,
                status: status_param(query)?,
                job,
                page: page(query)?,
            }
        }
        Operation::DescribeJobExecution => {
            let execution_number = match query.get("executionNumber") {
                None => None,
                Some(n) => Some(
                    n.parse::<i64>()
                        .map_err(|_| validation(n, "executionNumber", "Member must be a number"))?,
                ),
            };
            Call::DescribeJobExecution {
                thing: thing_name(labels, 0)?,
                id: job_id(labels, 1)?,
                execution_number,
            }
        }
        Operation::CancelJob => {
            let obj = body(bytes)?;
            let reason_code = string(&obj, "reasonCode")?;
            if let Some(r) = &reason_code {
                let ok = !r.is_empty()
                    && r.len() <= 128
                    && r.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    return Err(validation(
                        r,
                        "reasonCode",
                        "Member must have length less than or equal to 128 and match pattern [\\p{Upper}\\p{Digit}_]+",
                    ));
                }
            }
            Call::CancelJob {
                id: job_id(labels, 0)?,
                force: bool_param(query, "force")?,
                reason_code,
                comment: text(string(&obj, "comment")?, "comment", 2028)?,
            }
        }
        Operation::DeleteJob => {
            if query.contains_key("namespaceId") {
                return Err(ApiError::invalid_request(
                    "iot-sim does not simulate job namespaces (namespaceId)",
                ));
            }
            Call::DeleteJob {
                id: job_id(labels, 0)?,
                force: bool_param(query, "force")?,
            }
        }
        other => {
            return Err(ApiError::invalid_request(format!(
                "not a job operation: {}",
                other.name()
            )))
        }
    })
}
