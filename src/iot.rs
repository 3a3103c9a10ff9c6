//! The AWS IoT calls the tool makes, each paced per (account, region, operation) and retried
//! by one loop that knows throttling from transient from permanent errors.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_iot::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iot::operation::RequestId;
use aws_sdk_iot::types::CertificateStatus;
use serde::Serialize;
use tokio::time::Instant;

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
    counts: Mutex<BTreeMap<Operation, OpCounts>>,
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
        self.counts.lock().expect("counts lock").clone()
    }

    /// The shared pacer.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    fn count(&self, op: Operation, f: impl FnOnce(&mut OpCounts)) {
        f(self
            .counts
            .lock()
            .expect("counts lock")
            .entry(op)
            .or_default());
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
            self.count(op, |c| c.calls += 1);
            let err = match send().await {
                Ok(v) => return Ok(v),
                Err(e) => call_error(e),
            };
            let class = err.class();
            if class == ErrorClass::Throttle {
                self.count(op, |c| c.throttled += 1);
                self.pacer.on_throttle(scope, op);
            } else {
                self.count(op, |c| c.errors += 1);
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
            message: aws_sdk_iot::error::DisplayErrorContext(&err).to_string(),
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
            message: aws_sdk_iot::error::DisplayErrorContext(&err).to_string(),
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

/// What DescribeCertificate tells about a certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// Certificate ARN (its account is the owner).
    pub arn: String,
    /// Status as AWS spells it (`ACTIVE`, `PENDING_TRANSFER`, ...).
    pub status: String,
    /// Owning account.
    pub owner: Option<String>,
}

/// One account in one region: an IoT client and the pacing scope it counts against.
#[derive(Clone)]
pub struct Iot {
    client: aws_sdk_iot::Client,
    scope: Scope,
    ctx: Arc<CallContext>,
}

impl Iot {
    /// A client for `scope` (account and region) sharing `ctx`.
    pub fn new(client: aws_sdk_iot::Client, scope: Scope, ctx: Arc<CallContext>) -> Self {
        Iot { client, scope, ctx }
    }

    /// The account and region this client acts in.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// DescribeCertificate; `None` when AWS does not know the certificate here (404).
    pub async fn describe(&self, id: &str) -> Result<Option<CertificateInfo>, CallFailure> {
        let res = self
            .ctx
            .call(&self.scope, Operation::DescribeCertificate, || {
                self.client.describe_certificate().certificate_id(id).send()
            })
            .await;
        match res {
            Ok(out) => {
                let d = out.certificate_description.ok_or_else(|| {
                    CallFailure::local(
                        "MalformedResponse",
                        "DescribeCertificate returned no description",
                    )
                })?;
                Ok(Some(CertificateInfo {
                    arn: d.certificate_arn.unwrap_or_default(),
                    status: d.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
                    owner: d.owned_by,
                }))
            }
            Err(f) if f.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// UpdateCertificate to `status` (`INACTIVE` or `ACTIVE`).
    pub async fn update_status(&self, id: &str, status: &str) -> Result<(), CallFailure> {
        let status = CertificateStatus::from(status);
        self.ctx
            .call(&self.scope, Operation::UpdateCertificate, || {
                self.client
                    .update_certificate()
                    .certificate_id(id)
                    .new_status(status.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// Every policy attached to the certificate (all pages).
    pub async fn attached_policies(&self, arn: &str) -> Result<Vec<String>, CallFailure> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .ctx
                .call(&self.scope, Operation::ListAttachedPolicies, || {
                    self.client
                        .list_attached_policies()
                        .target(arn)
                        .page_size(250)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            names.extend(
                out.policies
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.policy_name),
            );
            match out.next_marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => return Ok(names),
            }
        }
    }

    /// Every thing attached to the certificate (all pages).
    pub async fn principal_things(&self, arn: &str) -> Result<Vec<String>, CallFailure> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .ctx
                .call(&self.scope, Operation::ListPrincipalThings, || {
                    self.client
                        .list_principal_things()
                        .principal(arn)
                        .max_results(250)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            names.extend(out.things.unwrap_or_default());
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(names),
            }
        }
    }

    /// DetachPolicy.
    pub async fn detach_policy(&self, policy: &str, arn: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::DetachPolicy, || {
                self.client
                    .detach_policy()
                    .policy_name(policy)
                    .target(arn)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// AttachPolicy.
    pub async fn attach_policy(&self, policy: &str, arn: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::AttachPolicy, || {
                self.client
                    .attach_policy()
                    .policy_name(policy)
                    .target(arn)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// DetachThingPrincipal.
    pub async fn detach_thing(&self, thing: &str, arn: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::DetachThingPrincipal, || {
                self.client
                    .detach_thing_principal()
                    .thing_name(thing)
                    .principal(arn)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// AttachThingPrincipal.
    pub async fn attach_thing(&self, thing: &str, arn: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::AttachThingPrincipal, || {
                self.client
                    .attach_thing_principal()
                    .thing_name(thing)
                    .principal(arn)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// TransferCertificate; returns `transferredCertificateArn`.
    pub async fn transfer(
        &self,
        id: &str,
        target: &str,
        message: Option<&str>,
    ) -> Result<String, CallFailure> {
        self.ctx
            .call(&self.scope, Operation::TransferCertificate, || {
                self.client
                    .transfer_certificate()
                    .certificate_id(id)
                    .target_aws_account(target)
                    .set_transfer_message(message.map(str::to_string))
                    .send()
            })
            .await
            .map(|o| o.transferred_certificate_arn.unwrap_or_default())
    }

    /// CancelCertificateTransfer.
    pub async fn cancel(&self, id: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::CancelCertificateTransfer, || {
                self.client
                    .cancel_certificate_transfer()
                    .certificate_id(id)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// AcceptCertificateTransfer (target side).
    pub async fn accept(&self, id: &str, set_as_active: bool) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::AcceptCertificateTransfer, || {
                self.client
                    .accept_certificate_transfer()
                    .certificate_id(id)
                    .set_as_active(set_as_active)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// RejectCertificateTransfer (target side).
    pub async fn reject(&self, id: &str, reason: Option<&str>) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::RejectCertificateTransfer, || {
                self.client
                    .reject_certificate_transfer()
                    .certificate_id(id)
                    .set_reject_reason(reason.map(str::to_string))
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// Every outgoing (started, not accepted) transfer: certificate id -> target account.
    pub async fn outgoing_transfers(&self) -> Result<HashMap<String, String>, CallFailure> {
        let mut map = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .ctx
                .call(&self.scope, Operation::ListOutgoingCertificates, || {
                    self.client
                        .list_outgoing_certificates()
                        .page_size(250)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            for c in out.outgoing_certificates.unwrap_or_default() {
                if let (Some(id), Some(to)) = (c.certificate_id, c.transferred_to) {
                    map.insert(id.to_ascii_lowercase(), to);
                }
            }
            match out.next_marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => return Ok(map),
            }
        }
    }
}

/// Which account each pending outgoing transfer goes to, from ListOutgoingCertificates.
///
/// One listing serves every certificate that asks: a new listing is made only when a
/// certificate is missing from a listing taken before the moment it needs to be seen from.
pub struct OutgoingIndex {
    iot: Iot,
    snapshot: tokio::sync::Mutex<Option<(Instant, HashMap<String, String>)>>,
}

impl OutgoingIndex {
    /// An empty index over `iot`'s account and region.
    pub fn new(iot: Iot) -> Self {
        OutgoingIndex {
            iot,
            snapshot: tokio::sync::Mutex::new(None),
        }
    }

    /// The target of `id`'s pending transfer, as seen by a listing taken no earlier than
    /// `not_before` if the certificate is missing from an older one.
    pub async fn target_of(
        &self,
        id: &str,
        not_before: Instant,
    ) -> Result<Option<String>, CallFailure> {
        let mut snap = self.snapshot.lock().await;
        if let Some((taken, map)) = snap.as_ref() {
            if let Some(t) = map.get(id) {
                return Ok(Some(t.clone()));
            }
            if *taken >= not_before {
                return Ok(None);
            }
        }
        let taken = Instant::now();
        let map = self.iot.outgoing_transfers().await?;
        let found = map.get(id).cloned();
        *snap = Some((taken, map));
        Ok(found)
    }
}

/// The account the credentials belong to (STS GetCallerIdentity), paced and retried like
/// every other call.
pub async fn caller_account(
    sts: &aws_sdk_sts::Client,
    region: &str,
    ctx: &CallContext,
) -> Result<String, CallFailure> {
    let scope = Scope {
        account: "sts".into(),
        region: region.to_string(),
    };
    let out = ctx
        .call(&scope, Operation::GetCallerIdentity, || {
            sts.get_caller_identity().send()
        })
        .await?;
    out.account.ok_or_else(|| {
        CallFailure::local("MalformedResponse", "GetCallerIdentity returned no account")
    })
}
