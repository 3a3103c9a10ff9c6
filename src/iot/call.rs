//! One AWS call, paced and retried: the shared call context (pacer, retry policy, counters)
//! and what a failed call leaves for the ledger.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_iot::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iot::operation::RequestId;
use serde::Serialize;

use crate::pacer::{Operation, Pacer, Scope};
use crate::retry::{CallError, ErrorClass, FailureKind, RetryPolicy, RetryState};

/// A call that did not succeed.
#[derive(Debug, Clone)]
pub struct CallFailure {
    /// The last error.
    pub error: CallError,
    /// Attempts made.
    pub attempts: u32,
    /// A mutating call whose outcome is unknown (it may have taken effect): reconcile before
    /// sending it again.
    pub outcome_unknown: bool,
}

impl CallFailure {
    /// A failure of the tool's own making (no AWS answer), e.g. a missing field.
    pub fn local(code: &str, message: impl Into<String>) -> Self {
        CallFailure {
            error: CallError {
                code: Some(code.to_string()),
                http_status: None,
                message: message.into(),
                kind: FailureKind::Construction,
                request_id: None,
            },
            attempts: 0,
            outcome_unknown: false,
        }
    }

    /// The AWS error code, if any.
    pub fn code(&self) -> Option<&str> {
        self.error.code.as_deref()
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

/// Calls and throttles per operation, for the summary.
#[derive(Debug, Default, Clone, Serialize)]
pub struct OpCounts {
    /// Requests sent.
    pub calls: u64,
    /// Requests answered with throttling.
    pub throttled: u64,
    /// Requests that failed otherwise (transient or permanent).
    pub errors: u64,
}

/// Shared by every client of a run: the pacer, the retry policy and the counters.
pub struct CallContext {
    pacer: Arc<Pacer>,
    policy: RetryPolicy,
    /// Per operation, then per account and region (for the metrics file).
    counts: Mutex<BTreeMap<Operation, BTreeMap<Scope, OpCounts>>>,
}

impl CallContext {
    /// A context that paces with `pacer` and retries per `policy`.
    pub fn new(pacer: Arc<Pacer>, policy: RetryPolicy) -> Arc<Self> {
        Arc::new(CallContext {
            pacer,
            policy,
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// Calls and throttles per operation so far.
    pub fn counts(&self) -> BTreeMap<Operation, OpCounts> {
        let counts = self.counts.lock().expect("counts lock");
        counts
            .iter()
            .map(|(op, by_scope)| {
                let mut total = OpCounts::default();
                for c in by_scope.values() {
                    total.calls += c.calls;
                    total.throttled += c.throttled;
                    total.errors += c.errors;
                }
                (*op, total)
            })
            .collect()
    }

    /// Calls and throttles per operation and per account and region so far.
    pub fn counts_by_scope(&self) -> BTreeMap<Operation, BTreeMap<Scope, OpCounts>> {
        self.counts.lock().expect("counts lock").clone()
    }

    /// The shared pacer.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    fn count(&self, scope: &Scope, op: Operation, f: impl FnOnce(&mut OpCounts)) {
        let mut counts = self.counts.lock().expect("counts lock");
        let by_scope = counts.entry(op).or_default();
        // The scope is cloned only the first time it is seen.
        match by_scope.get_mut(scope) {
            Some(c) => f(c),
            None => f(by_scope.entry(scope.clone()).or_default()),
        }
    }

    /// Runs one AWS call with pacing and retries. Mutating calls are never re-sent after an
    /// error that leaves their outcome unknown: the caller reconciles first.
    pub async fn call<T, E, F, Fut>(
        &self,
        scope: &Scope,
        op: Operation,
        mut send: F,
    ) -> Result<T, CallFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut retry = RetryState::new(&self.policy);
        loop {
            self.pacer.acquire(scope, op).await;
            self.count(scope, op, |c| c.calls += 1);
            let err = match send().await {
                Ok(v) => return Ok(v),
                Err(e) => call_error(e),
            };
            let class = err.class();
            if class == ErrorClass::Throttle {
                self.count(scope, op, |c| c.throttled += 1);
                self.pacer.on_throttle(scope, op);
            } else {
                self.count(scope, op, |c| c.errors += 1);
            }
            let unknown = op.is_mutating() && err.outcome_unknown();
            let delay = if unknown {
                None
            } else {
                retry.next_delay(&err)
            };
            match delay {
                Some(d) => {
                    tracing::debug!(op = op.name(), error = %err, delay_ms = d.as_millis() as u64, "retrying");
                    tokio::time::sleep(d).await;
                }
                None => {
                    return Err(CallFailure {
                        error: err,
                        attempts: retry.attempts(),
                        outcome_unknown: unknown,
                    })
                }
            }
        }
    }
}

/// Converts an SDK error into what the retry loop and the ledger need.
pub fn call_error<E>(err: SdkError<E>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    match &err {
        SdkError::ConstructionFailure(_) => CallError {
            code: None,
            http_status: None,
            message: crate::aws::one_line(&err),
            kind: FailureKind::Construction,
            request_id,
        },
        SdkError::TimeoutError(_) => CallError {
            code: None,
            http_status: None,
            message: "request timed out".into(),
            kind: FailureKind::Timeout,
            request_id,
        },
        SdkError::DispatchFailure(d) => CallError {
            code: None,
            http_status: None,
            message: crate::aws::one_line(&err),
            kind: if d.is_timeout() {
                FailureKind::Timeout
            } else {
                FailureKind::Dispatch
            },
            request_id,
        },
        SdkError::ResponseError(r) => CallError {
            code: None,
            http_status: Some(r.raw().status().as_u16()),
            message: "unreadable response".into(),
            kind: FailureKind::Dispatch,
            request_id,
        },
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code().map(str::to_string);
            let message = err.message().unwrap_or("").to_string();
            CallError {
                code,
                http_status: status,
                message,
                kind: FailureKind::Service,
                request_id,
            }
        }
    }
}
