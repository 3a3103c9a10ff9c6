//! One AWS call, paced and retried: the shared call context (pacer, retry policy, counters,
//! circuit breaker) and what a failed call leaves for the ledger.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_iot::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iot::operation::RequestId;
use serde::Serialize;
use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::pacer::{Operation, Pacer, Scope};
use crate::retry::{AwsCode, CallError, ErrorClass, FailureKind, RetryPolicy, RetryState};

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
    /// The operation, when AWS was (or was to be) called; `None` for the tool's own failures.
    pub op: Option<Operation>,
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
            op: None,
        }
    }

    /// The AWS error code, if any.
    pub fn code(&self) -> Option<&str> {
        self.error.code.as_deref()
    }

    /// Whether AWS answered with `code`.
    pub fn is(&self, code: super::AwsCode) -> bool {
        self.error.is(code)
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

tokio::task_local! {
    /// A pacer slot taken before the call it is for (see [`CallContext::reserve`]): the
    /// first call of its operation in its scope made inside [`CallContext::spend`] uses it
    /// instead of waiting for another.
    static PAID: std::cell::RefCell<Option<Slot>>;
}

/// A pacer slot of one operation in one scope, taken ahead of its call: a change's first call
/// waits for its slot before its intent is recorded, so that a run that stops meanwhile has
/// recorded nothing for it.
#[derive(Debug)]
pub struct Slot {
    scope: Scope,
    op: Operation,
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

/// Shared by every client of a run: the pacer, the retry policy, the counters and the
/// circuit breaker.
pub struct CallContext {
    pacer: Arc<Pacer>,
    policy: RetryPolicy,
    /// Per operation, then per account and region (for the metrics file).
    counts: Mutex<BTreeMap<Operation, BTreeMap<Scope, OpCounts>>>,
    breaker: Arc<Breaker>,
}

impl CallContext {
    /// A context that paces with `pacer`, retries per `policy` and reports to `breaker`.
    pub fn new(pacer: Arc<Pacer>, policy: RetryPolicy, breaker: Arc<Breaker>) -> Arc<Self> {
        Arc::new(CallContext {
            pacer,
            policy,
            counts: Mutex::new(BTreeMap::new()),
            breaker,
        })
    }

    /// The run's circuit breaker.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
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

    /// Waits for the next pacer slot of `op` in `scope` and takes it, for a call that
    /// [`CallContext::spend`] will make.
    pub async fn reserve(&self, scope: &Scope, op: Operation) -> Slot {
        self.pacer.acquire(scope, op).await;
        Slot {
            scope: scope.clone(),
            op,
        }
    }

    /// Runs `calls`, whose first call of the slot's operation and scope uses `slot` instead
    /// of waiting for one.
    pub async fn spend<F: Future>(slot: Slot, calls: F) -> F::Output {
        PAID.scope(std::cell::RefCell::new(Some(slot)), calls).await
    }

    /// Whether a slot for `op` in `scope` was paid ahead (and takes it).
    fn paid(scope: &Scope, op: Operation) -> bool {
        PAID.try_with(|paid| {
            let mut paid = paid.borrow_mut();
            let mine = paid
                .as_ref()
                .is_some_and(|s| s.op == op && s.scope == *scope);
            if mine {
                *paid = None;
            }
            mine
        })
        .unwrap_or(false)
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
        send: F,
    ) -> Result<T, CallFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call_and_read(scope, op, send, Some).await
    }

    /// [`CallContext::call`], with `read` taking what the caller needs out of the answer:
    /// `None` means the 2xx reply lacks what every real answer has (an empty body reads as
    /// an output without any field), and is handled like a reply that could not be parsed:
    /// a read is retried, a mutating call's outcome is unknown.
    ///
    /// Credentials that AWS refused stop every later call with them before it is sent; AWS's
    /// silence and the credentials' refusal are reported to the breaker.
    pub async fn call_and_read<T, U, E, F, Fut>(
        &self,
        scope: &Scope,
        op: Operation,
        send: F,
        read: impl Fn(T) -> Option<U>,
    ) -> Result<U, CallFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match self.attempt(scope, op, send, read, false).await? {
            Some(u) => Ok(u),
            // Only an existence check takes a 404 for an answer.
            None => unreachable!("a 404 is an error outside look_up"),
        }
    }

    /// An existence check: [`CallContext::call_and_read`], except that AWS's "no such
    /// resource" (`ResourceNotFoundException`, 404) is the answer `None`, counted as a call
    /// and not as an error (in the summary and the metrics). The breaker still sees no
    /// success of `op` in it: a run of such answers (a wrong region) is for it to judge.
    pub async fn look_up<T, U, E, F, Fut>(
        &self,
        scope: &Scope,
        op: Operation,
        send: F,
        read: impl Fn(T) -> Option<U>,
    ) -> Result<Option<U>, CallFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.attempt(scope, op, send, read, true).await
    }

    /// The loop of every call: `None` only when `absent_is_answer` and AWS said 404.
    async fn attempt<T, U, E, F, Fut>(
        &self,
        scope: &Scope,
        op: Operation,
        mut send: F,
        read: impl Fn(T) -> Option<U>,
        absent_is_answer: bool,
    ) -> Result<Option<U>, CallFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut retry = RetryState::new(&self.policy);
        let mut sent = 0u32;
        let failure = |error: CallError, attempts: u32, outcome_unknown: bool| CallFailure {
            error,
            attempts,
            outcome_unknown,
            op: Some(op),
        };
        loop {
            if let Some(e) = self.breaker.refuses(scope) {
                return Err(failure(e, sent, false));
            }
            if !Self::paid(scope, op) {
                self.pacer.acquire(scope, op).await;
            }
            // The pacer may have held the call while the credentials were refused.
            if let Some(e) = self.breaker.refuses(scope) {
                return Err(failure(e, sent, false));
            }
            self.count(scope, op, |c| c.calls += 1);
            sent += 1;
            let sent_at = Instant::now();
            let err = match send().await {
                Ok(v) => {
                    self.breaker.answered();
                    match read(v) {
                        Some(u) => {
                            self.breaker.succeeded(op);
                            return Ok(Some(u));
                        }
                        None => CallError {
                            code: None,
                            http_status: Some(200),
                            message: format!(
                                "the reply to {op} lacks its content (empty or incomplete body)"
                            ),
                            kind: FailureKind::Garbled,
                            request_id: None,
                        },
                    }
                }
                Err(e) => call_error(e),
            };
            if absent_is_answer && err.is(AwsCode::ResourceNotFound) {
                self.breaker.answered();
                return Ok(None);
            }
            match err.kind {
                FailureKind::Service | FailureKind::Garbled => self.breaker.answered(),
                FailureKind::Timeout | FailureKind::Dispatch => {
                    self.breaker.unanswered(sent_at, &err)
                }
                FailureKind::Construction | FailureKind::Credentials => {}
            }
            let class = err.class();
            if class == ErrorClass::Throttle {
                self.count(scope, op, |c| c.throttled += 1);
                self.pacer.on_throttle(scope, op);
            } else {
                self.count(scope, op, |c| c.errors += 1);
            }
            if class == ErrorClass::Credentials {
                // Not this call's fault, and no other call with them can succeed.
                self.breaker.credentials_refused(scope, op, &err);
                return Err(failure(err, sent, false));
            }
            let unknown = op.is_mutating() && err.outcome_unknown();
            // Once the breaker says AWS as a whole is failing, grinding on helps no one.
            let give_up =
                unknown || (class == ErrorClass::Transient && self.breaker.retries_useless());
            let delay = if give_up {
                None
            } else {
                retry.next_delay(&err)
            };
            match delay {
                Some(d) => {
                    tracing::debug!(op = op.name(), error = %err, delay_ms = d.as_millis() as u64, "retrying");
                    tokio::time::sleep(d).await;
                }
                None => return Err(failure(err, sent, unknown)),
            }
        }
    }
}

/// Converts an SDK error into what the retry loop and the ledger need.
///
/// Two cases the SDK does not tell apart by variant: credentials that could not be loaded
/// (an expired SSO session, a failing `credential_process`) come as a dispatch failure whose
/// source is the provider's [`CredentialsError`] (the request was never sent), and a 2xx
/// reply whose body does not parse comes as a service error without a code.
pub fn call_error<E>(err: SdkError<E>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    let status = err.raw_response().map(|r| r.status().as_u16());
    let answered_2xx = status.is_some_and(|s| (200..300).contains(&s));
    match &err {
        _ if credentials_error(&err).is_some() => CallError {
            code: None,
            http_status: None,
            message: crate::error::one_line(credentials_error(&err).expect("checked")),
            kind: FailureKind::Credentials,
            request_id,
        },
        SdkError::ConstructionFailure(_) => CallError {
            code: None,
            http_status: None,
            message: crate::error::one_line(&err),
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
            // The causes only, once each: the kind already says "dispatch failure", and the
            // SDK's error context repeats it with a Debug dump.
            message: std::error::Error::source(&err)
                .map_or_else(|| err.to_string(), crate::error::one_line),
            kind: if d.is_timeout() {
                FailureKind::Timeout
            } else {
                FailureKind::Dispatch
            },
            request_id,
        },
        SdkError::ResponseError(_) | SdkError::ServiceError(_) if answered_2xx => CallError {
            code: None,
            http_status: status,
            message: format!(
                "the reply could not be read ({})",
                crate::error::one_line(&err)
            ),
            kind: FailureKind::Garbled,
            request_id,
        },
        SdkError::ResponseError(_) => CallError {
            code: None,
            http_status: status,
            message: "unreadable response".into(),
            kind: FailureKind::Dispatch,
            request_id,
        },
        _ => {
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

/// The credential provider's error among `err`'s sources, if loading credentials failed.
fn credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<CredentialsError>() {
            return Some(e);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::{future, ProvideCredentials};

    /// A provider that fails as an expired SSO session does.
    #[derive(Debug)]
    struct Expired;

    impl ProvideCredentials for Expired {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::provider_error(
                "the SSO session associated with this profile has expired",
            )))
        }
    }

    /// What aws-sdk-rust makes of a credential provider's failure: a dispatch failure, no
    /// request sent. It must read as refused credentials, not as a lost connection.
    #[tokio::test]
    async fn a_failing_credential_provider_is_a_credentials_error_not_a_dispatch_failure() {
        let conf = aws_sdk_iot::Config::builder()
            .behavior_version(aws_sdk_iot::config::BehaviorVersion::latest())
            .region(aws_sdk_iot::config::Region::new("us-east-1"))
            // Nothing listens there: if a request were sent it would fail differently.
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(Expired)
            .retry_config(aws_sdk_iot::config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_iot::Client::from_conf(conf);
        let err = client
            .describe_certificate()
            .certificate_id("a".repeat(64))
            .send()
            .await
            .expect_err("no credentials");
        assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
        let e = call_error(err);
        assert_eq!(e.kind, FailureKind::Credentials, "{e:?}");
        assert_eq!(e.class(), ErrorClass::Credentials);
        assert!(!e.outcome_unknown());
        assert!(e.message.contains("SSO session"), "{}", e.message);
    }
}
