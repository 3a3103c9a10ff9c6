//! An in-memory AWS IoT for unit tests, at the HTTP layer: the real aws-sdk-iot client builds,
//! signs and parses every request, and the real [`Iot`] paces, retries and classifies; only
//! the network is replaced, by a registry of certificates that answers with AWS IoT's
//! REST-JSON shapes (paths and replies as iot-sim's routes and world have them).
//!
//! What the next call of an operation does can be scripted ([`FakeIot::next`]): apply and
//! answer, refuse without applying, apply and lose the reply, apply and answer a duplicate's
//! 409/410, throttle. Unscripted calls are applied and answered as the registry does.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_iot::config::retry::RetryConfig;
use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use serde_json::{json, Map, Value};

use super::{CallContext, Iot};
use crate::breaker::{Breaker, BreakerSettings};
use crate::certificate::{arn_account_and_id, cert_arn};
use crate::pacer::{Operation, Pacer, RateSettings, Scope};
use crate::retry::{Backoff, RetryPolicy};

/// The one region of the fake.
pub const REGION: &str = "us-east-1";

/// AWS IoT's limit of policies on one certificate.
const MAX_POLICIES: usize = 10;

/// What the next call of an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Apply it and answer as the registry does (200, or the registry's own refusal).
    Apply,
    /// Answer this error (HTTP status, AWS error code) without applying.
    Refuse(u16, &'static str),
    /// Apply, then lose the reply: the caller cannot know that it took effect.
    ApplyThenLose(Loss),
    /// Lose the request before it is applied: the caller cannot know that it did not.
    Lose(Loss),
    /// Apply, then answer this error: what the second copy of a request delivered twice
    /// gets (409, 410).
    ApplyThenRefuse(u16, &'static str),
    /// 400 ThrottlingException, not applied.
    Throttle,
}

/// How a reply is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// No reply in time.
    Timeout,
    /// 500 InternalFailureException.
    ServerError,
    /// A 200 whose body is cut short (an operation without output may not notice).
    Garbled,
}

/// What the source's DescribeCertificate answers once the target accepted (AWS does not
/// document it; iot-sim has the same switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterAccept {
    /// 404 ResourceNotFoundException.
    #[default]
    NotFound,
    /// 403 AccessDeniedException.
    AccessDenied,
    /// 401 UnauthorizedException.
    Unauthorized,
    /// The certificate as the target has it (owned by the target).
    Visible,
}

/// One certificate of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    /// The owning account.
    pub owner: String,
    /// `ACTIVE`, `INACTIVE`, `PENDING_TRANSFER`, ...
    pub status: String,
    /// Attached policies.
    pub policies: BTreeSet<String>,
    /// Attached things.
    pub things: BTreeSet<String>,
    /// The account a pending transfer goes to.
    pub pending_to: Option<String>,
    /// Whether ListOutgoingCertificates shows the pending transfer yet.
    pub listed: bool,
    /// The account that gave it away, once accepted.
    pub previous_owner: Option<String>,
}

impl Cert {
    /// A certificate of `owner` in `status`, nothing attached.
    pub fn new(owner: &str, status: &str) -> Cert {
        Cert {
            owner: owner.to_string(),
            status: status.to_string(),
            policies: BTreeSet::new(),
            things: BTreeSet::new(),
            pending_to: None,
            listed: true,
            previous_owner: None,
        }
    }

    /// With `policy` attached.
    pub fn with_policy(mut self, policy: &str) -> Cert {
        self.policies.insert(policy.to_string());
        self
    }

    /// With `thing` attached.
    pub fn with_thing(mut self, thing: &str) -> Cert {
        self.things.insert(thing.to_string());
        self
    }

    /// Pending transfer to `target`.
    pub fn pending_to(mut self, target: &str) -> Cert {
        self.status = "PENDING_TRANSFER".into();
        self.pending_to = Some(target.to_string());
        self
    }

    /// Accepted by `target` from its owner.
    pub fn accepted_by(mut self, target: &str) -> Cert {
        self.previous_owner = Some(std::mem::replace(&mut self.owner, target.to_string()));
        self.status = "INACTIVE".into();
        self.pending_to = None;
        self.policies.clear();
        self.things.clear();
        self
    }
}

/// An error answer: HTTP status, `X-Amzn-ErrorType`, body `{"message": ...}`.
struct Refused {
    status: u16,
    code: &'static str,
    message: String,
}

fn refusal(status: u16, code: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        status,
        code,
        message: message.into(),
    }
}

fn not_found(id: &str) -> Refused {
    refusal(
        404,
        "ResourceNotFoundException",
        format!("The certificate {id} does not exist"),
    )
}

/// What an operation answers: a JSON body (`None`: an empty 200), or a refusal.
type Reply = Result<Option<Value>, Refused>;

/// One request, decoded.
struct Incoming {
    op: Operation,
    /// The path's labels, percent-decoded.
    labels: Vec<String>,
    query: HashMap<String, String>,
    /// `x-amzn-principal`.
    principal: Option<String>,
    body: Map<String, Value>,
}

impl Incoming {
    fn label(&self) -> &str {
        self.labels.first().map(String::as_str).unwrap_or("")
    }

    fn body_str(&self, member: &str) -> Option<&str> {
        self.body.get(member).and_then(Value::as_str)
    }
}

/// The registry, the scripts and what was sent.
#[derive(Default)]
struct World {
    certs: BTreeMap<String, Cert>,
    after_accept: AfterAccept,
    /// New transfers are not listed as outgoing yet (ListOutgoingCertificates lags).
    outgoing_lags: bool,
    script: HashMap<Operation, VecDeque<Answer>>,
    always: HashMap<Operation, Answer>,
    sent: BTreeMap<Operation, u32>,
}

impl World {
    fn answer(
        &mut self,
        caller: &str,
        mut request: HttpRequest,
    ) -> Result<HttpResponse, ConnectorError> {
        let Some(req) = decode(&mut request) else {
            let what = format!("{} {}", request.method(), request.uri());
            return Ok(error(&refusal(404, "UnknownOperationException", what)));
        };
        *self.sent.entry(req.op).or_default() += 1;
        let answer = self
            .script
            .get_mut(&req.op)
            .and_then(VecDeque::pop_front)
            .or_else(|| self.always.get(&req.op).copied())
            .unwrap_or(Answer::Apply);
        match answer {
            Answer::Apply => Ok(respond(self.serve(caller, &req))),
            Answer::Refuse(status, code) => Ok(error(&refusal(status, code, "scripted"))),
            Answer::ApplyThenLose(loss) => {
                let reply = self.serve(caller, &req);
                lose(loss, reply)
            }
            Answer::Lose(loss) => lose(loss, Ok(None)),
            Answer::ApplyThenRefuse(status, code) => {
                let _ = self.serve(caller, &req);
                Ok(error(&refusal(status, code, "already done")))
            }
            Answer::Throttle => Ok(error(&refusal(400, "ThrottlingException", "Rate exceeded"))),
        }
    }

    /// The registry's answer to `req` from account `caller`.
    fn serve(&mut self, caller: &str, req: &Incoming) -> Reply {
        let id = req.label().to_string();
        match req.op {
            Operation::DescribeCertificate => self.describe(caller, &id),
            Operation::UpdateCertificate => {
                let status = req.query.get("newStatus").cloned().unwrap_or_default();
                let cert = self.owned(caller, &id)?;
                if cert.status == "PENDING_TRANSFER" {
                    return Err(refusal(
                        406,
                        "CertificateStateException",
                        "Certificate is pending transfer and cannot be updated",
                    ));
                }
                cert.status = status;
                Ok(None)
            }
            Operation::ListAttachedPolicies => {
                let cert = self.principal(caller, req.label())?;
                let policies: Vec<Value> = cert
                    .policies
                    .iter()
                    .map(|p| {
                        let arn = format!("arn:aws:iot:{REGION}:{caller}:policy/{p}");
                        json!({ "policyName": p, "policyArn": arn })
                    })
                    .collect();
                Ok(Some(json!({ "policies": policies })))
            }
            Operation::AttachPolicy | Operation::DetachPolicy => {
                let target = req.body_str("target").unwrap_or_default().to_string();
                let cert = self.principal(caller, &target)?;
                if req.op == Operation::DetachPolicy {
                    cert.policies.remove(req.label());
                } else if !cert.policies.contains(req.label()) {
                    if cert.policies.len() >= MAX_POLICIES {
                        return Err(refusal(
                            410,
                            "LimitExceededException",
                            "A limit has been exceeded",
                        ));
                    }
                    cert.policies.insert(req.label().to_string());
                }
                Ok(None)
            }
            Operation::ListPrincipalThings => {
                let principal = req.principal.clone().unwrap_or_default();
                let cert = self.principal(caller, &principal)?;
                Ok(Some(json!({ "things": cert.things })))
            }
            Operation::AttachThingPrincipal | Operation::DetachThingPrincipal => {
                let principal = req.principal.clone().unwrap_or_default();
                let cert = self.principal(caller, &principal)?;
                if req.op == Operation::DetachThingPrincipal {
                    cert.things.remove(req.label());
                } else {
                    cert.things.insert(req.label().to_string());
                }
                Ok(Some(json!({})))
            }
            Operation::TransferCertificate => {
                let target = req
                    .query
                    .get("targetAwsAccount")
                    .cloned()
                    .unwrap_or_default();
                let lags = self.outgoing_lags;
                let cert = self.owned(caller, &id)?;
                let conflict = |m: &str| refusal(409, "TransferConflictException", m);
                match cert.status.as_str() {
                    "INACTIVE" => {}
                    "PENDING_TRANSFER" => {
                        return Err(conflict("The certificate is already pending transfer"))
                    }
                    other => {
                        return Err(refusal(
                            406,
                            "CertificateStateException",
                            format!("A certificate in status {other} cannot be transferred"),
                        ))
                    }
                }
                if !cert.policies.is_empty() || !cert.things.is_empty() {
                    return Err(conflict("policies or things are still attached"));
                }
                cert.status = "PENDING_TRANSFER".into();
                cert.pending_to = Some(target.clone());
                cert.listed = !lags;
                let arn = cert_arn(REGION, &target, &id);
                Ok(Some(json!({ "transferredCertificateArn": arn })))
            }
            Operation::ListOutgoingCertificates => {
                let outgoing: Vec<Value> = self
                    .certs
                    .iter()
                    .filter(|(_, c)| c.owner == caller && c.listed)
                    .filter_map(|(id, c)| {
                        let to = c.pending_to.as_deref()?;
                        Some(json!({
                            "certificateArn": cert_arn(REGION, to, id),
                            "certificateId": id,
                            "transferredTo": to,
                        }))
                    })
                    .collect();
                Ok(Some(json!({ "outgoingCertificates": outgoing })))
            }
            Operation::AcceptCertificateTransfer => {
                let active = req.query.get("setAsActive").map(String::as_str) == Some("true");
                let cert = self.incoming(caller, &id)?;
                *cert = cert.clone().accepted_by(caller);
                if active {
                    cert.status = "ACTIVE".into();
                }
                Ok(None)
            }
            Operation::RejectCertificateTransfer => {
                let cert = self.incoming(caller, &id)?;
                cert.status = "INACTIVE".into();
                cert.pending_to = None;
                Ok(None)
            }
            Operation::CancelCertificateTransfer => {
                let accepted = self.certs.get(&id).is_some_and(|c| {
                    c.previous_owner.as_deref() == Some(caller) && c.owner != caller
                });
                if accepted {
                    return Err(refusal(
                        410,
                        "TransferAlreadyCompletedException",
                        "The certificate transfer was already accepted",
                    ));
                }
                let cert = self.owned(caller, &id)?;
                if cert.pending_to.take().is_none() {
                    return Err(refusal(
                        400,
                        "InvalidRequestException",
                        "The certificate is not pending transfer",
                    ));
                }
                cert.status = "INACTIVE".into();
                Ok(None)
            }
            other => Err(refusal(
                404,
                "UnknownOperationException",
                format!("the fake does not serve {other}"),
            )),
        }
    }

    fn describe(&self, caller: &str, id: &str) -> Reply {
        let Some(cert) = self.certs.get(id) else {
            return Err(not_found(id));
        };
        let incoming = cert.pending_to.as_deref() == Some(caller);
        if cert.owner == caller || incoming {
            return Ok(Some(description(id, cert)));
        }
        if cert.previous_owner.as_deref() != Some(caller) {
            return Err(not_found(id));
        }
        let arn = cert_arn(REGION, caller, id);
        match self.after_accept {
            AfterAccept::NotFound => Err(not_found(id)),
            AfterAccept::AccessDenied => Err(refusal(
                403,
                "AccessDeniedException",
                format!(
                    "User is not authorized to perform: iot:DescribeCertificate on resource: {arn}"
                ),
            )),
            AfterAccept::Unauthorized => Err(refusal(
                401,
                "UnauthorizedException",
                format!("The certificate {id} is owned by another account"),
            )),
            AfterAccept::Visible => Ok(Some(description(id, cert))),
        }
    }

    /// `caller`'s own certificate.
    fn owned(&mut self, caller: &str, id: &str) -> Result<&mut Cert, Refused> {
        self.certs
            .get_mut(id)
            .filter(|c| c.owner == caller)
            .ok_or_else(|| not_found(id))
    }

    /// `caller`'s own certificate, named by its ARN in `caller`'s account.
    fn principal(&mut self, caller: &str, arn: &str) -> Result<&mut Cert, Refused> {
        let missing = || {
            refusal(
                404,
                "ResourceNotFoundException",
                format!("The certificate given in the principal does not exist: {arn}"),
            )
        };
        let (account, id) = arn_account_and_id(arn).ok_or_else(missing)?;
        if account != caller {
            return Err(missing());
        }
        self.owned(caller, id).map_err(|_| missing())
    }

    /// A certificate pending transfer to `caller`.
    fn incoming(&mut self, caller: &str, id: &str) -> Result<&mut Cert, Refused> {
        let cert = self.certs.get_mut(id).ok_or_else(|| not_found(id))?;
        if cert.pending_to.as_deref() == Some(caller) {
            return Ok(cert);
        }
        if cert.owner == caller && cert.previous_owner.is_some() {
            return Err(refusal(
                410,
                "TransferAlreadyCompletedException",
                "The certificate transfer was already accepted",
            ));
        }
        Err(refusal(
            404,
            "ResourceNotFoundException",
            format!("No pending transfer of certificate {id} to this account"),
        ))
    }
}

/// DescribeCertificate's reply.
fn description(id: &str, cert: &Cert) -> Value {
    let mut d = json!({
        "certificateArn": cert_arn(REGION, &cert.owner, id),
        "certificateId": id,
        "status": cert.status,
        "ownedBy": cert.owner,
        "certificateMode": "DEFAULT",
        "certificatePem": "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n",
    });
    if let Some(p) = &cert.previous_owner {
        d["previousOwnedBy"] = json!(p);
    }
    json!({ "certificateDescription": d })
}

/// The operation and labels of a request, as AWS IoT's REST paths name them.
fn route(method: &str, path: &str) -> Option<(Operation, Vec<String>)> {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let one = |op: Operation, label: &str| Some((op, vec![label.to_string()]));
    match (method, s.as_slice()) {
        ("GET", ["certificates", id]) => one(Operation::DescribeCertificate, id),
        ("PUT", ["certificates", id]) => one(Operation::UpdateCertificate, id),
        ("GET", ["certificates-out-going"]) => Some((Operation::ListOutgoingCertificates, vec![])),
        ("POST", ["attached-policies", target]) => one(Operation::ListAttachedPolicies, target),
        ("PUT", ["target-policies", name]) => one(Operation::AttachPolicy, name),
        ("POST", ["target-policies", name]) => one(Operation::DetachPolicy, name),
        ("GET", ["principals", "things"]) => Some((Operation::ListPrincipalThings, vec![])),
        ("PUT", ["things", name, "principals"]) => one(Operation::AttachThingPrincipal, name),
        ("DELETE", ["things", name, "principals"]) => one(Operation::DetachThingPrincipal, name),
        ("PATCH", ["transfer-certificate", id]) => one(Operation::TransferCertificate, id),
        ("PATCH", ["accept-certificate-transfer", id]) => {
            one(Operation::AcceptCertificateTransfer, id)
        }
        ("PATCH", ["reject-certificate-transfer", id]) => {
            one(Operation::RejectCertificateTransfer, id)
        }
        ("PATCH", ["cancel-certificate-transfer", id]) => {
            one(Operation::CancelCertificateTransfer, id)
        }
        _ => None,
    }
}

fn decode(request: &mut HttpRequest) -> Option<Incoming> {
    let method = request.method().to_string();
    let principal = request
        .headers()
        .get("x-amzn-principal")
        .map(str::to_string);
    let body = match request.body().bytes() {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => {
            serde_json::from_slice(b).unwrap_or_default()
        }
        _ => Map::new(),
    };
    let uri = request.uri_mut();
    let (op, labels) = route(&method, uri.path())?;
    let query = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Some(Incoming {
        op,
        labels,
        query,
        principal,
        body,
    })
}

/// `%3A` -> `:` (the SDK percent-encodes labels such as ARNs).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn http(status: u16, body: String, code: Option<&'static str>) -> HttpResponse {
    let status = StatusCode::try_from(status).expect("a valid HTTP status");
    let mut resp = HttpResponse::new(status, body.into());
    let h = resp.headers_mut();
    h.insert("content-type", "application/json");
    h.insert("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000");
    if let Some(code) = code {
        h.insert("X-Amzn-ErrorType", code);
    }
    resp
}

fn error(r: &Refused) -> HttpResponse {
    http(
        r.status,
        json!({ "message": r.message }).to_string(),
        Some(r.code),
    )
}

fn respond(reply: Reply) -> HttpResponse {
    match reply {
        Ok(body) => http(200, body.map(|b| b.to_string()).unwrap_or_default(), None),
        Err(r) => error(&r),
    }
}

/// The reply to a call whose answer is lost `how` (`reply`: what the registry answered).
fn lose(how: Loss, reply: Reply) -> Result<HttpResponse, ConnectorError> {
    match how {
        Loss::Timeout => Err(ConnectorError::timeout("read timed out (fake)".into())),
        Loss::ServerError => Ok(error(&refusal(
            500,
            "InternalFailureException",
            "Internal failure",
        ))),
        Loss::Garbled => match reply {
            Ok(body) => {
                let body = body.map(|b| b.to_string()).unwrap_or_default();
                let cut = if body.is_empty() {
                    "{".to_string()
                } else {
                    body[..body.len() / 2].to_string()
                };
                Ok(http(200, cut, None))
            }
            Err(r) => Ok(error(&r)),
        },
    }
}

/// The HTTP client of one account: every request goes to the shared world.
#[derive(Clone)]
struct Connector {
    world: Arc<Mutex<World>>,
    account: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fake AWS IoT for account {}", self.account)
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut world = self.world.lock().expect("fake world");
        HttpConnectorFuture::ready(world.answer(&self.account, request))
    }
}

impl HttpClient for Connector {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// An in-memory AWS IoT in [`REGION`], shared by the [`Iot`]s of every account it makes.
#[derive(Clone, Default)]
pub struct FakeIot {
    world: Arc<Mutex<World>>,
}

impl FakeIot {
    /// An empty registry.
    pub fn new() -> FakeIot {
        FakeIot::default()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("fake world")
    }

    /// An [`Iot`] acting as `account`, with its own call context: static credentials, the
    /// SDK's retries off (as the tool runs it), a fast pacer and small backoffs.
    pub fn iot(&self, account: &str) -> Iot {
        let conf = aws_sdk_iot::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("AKIDFAKE", "fake", None, None, "fake"))
            .retry_config(RetryConfig::disabled())
            .http_client(Connector {
                world: self.world.clone(),
                account: account.to_string(),
            })
            .build();
        let quick = Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
        };
        let policy = RetryPolicy {
            max_attempts: 3,
            max_throttle_wait: Duration::from_secs(1),
            transient: quick.clone(),
            throttle: quick,
        };
        // The real pacer, its ceilings high enough that no test waits for it.
        let rates = RateSettings {
            scale: 1000.0,
            ..RateSettings::default()
        };
        let ctx = CallContext::new(
            Arc::new(Pacer::new(rates)),
            policy,
            Arc::new(Breaker::new(BreakerSettings::default())),
        );
        Iot::new(
            aws_sdk_iot::Client::from_conf(conf),
            Scope::new(account, REGION),
            ctx,
        )
    }

    /// Puts `cert` in the registry under `id`.
    pub fn put(&self, id: &str, cert: Cert) {
        self.world().certs.insert(id.to_string(), cert);
    }

    /// The certificate `id` as the registry holds it.
    pub fn cert(&self, id: &str) -> Option<Cert> {
        self.world().certs.get(id).cloned()
    }

    /// What the next calls of `op` do, in order (after them: [`FakeIot::always`], else
    /// [`Answer::Apply`]).
    pub fn next(&self, op: Operation, answers: impl IntoIterator<Item = Answer>) {
        self.world().script.entry(op).or_default().extend(answers);
    }

    /// What every call of `op` does once its script is used up.
    pub fn always(&self, op: Operation, answer: Answer) {
        self.world().always.insert(op, answer);
    }

    /// What the source's DescribeCertificate answers once the target accepted.
    pub fn after_accept(&self, answer: AfterAccept) {
        self.world().after_accept = answer;
    }

    /// Whether new transfers are missing from ListOutgoingCertificates (AWS's listing lags).
    pub fn outgoing_lags(&self, lags: bool) {
        self.world().outgoing_lags = lags;
    }

    /// Requests of `op` received (answered, refused or lost).
    pub fn sent(&self, op: Operation) -> u32 {
        self.world().sent.get(&op).copied().unwrap_or(0)
    }

    /// Requests received, per operation.
    pub fn sent_all(&self) -> BTreeMap<Operation, u32> {
        self.world().sent.clone()
    }

    /// Forgets the requests received so far.
    pub fn reset_sent(&self) {
        self.world().sent.clear();
    }
}
