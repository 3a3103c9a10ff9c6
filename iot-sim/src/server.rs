//! The HTTP server: connection handling, the per-request pipeline (latency,
//! quota, faults, operation) and the `/_sim/*` control endpoints.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::access::{CredentialChange, CredentialState, Credentials, DenyRule, OutageMode};
use crate::auth;
use crate::behaviour::Behaviour;
use crate::config::{parse_fault_spec, FaultKind, Seed, SimConfig};
use crate::errors::ApiError;
use crate::faults;
use crate::iam::IamPolicy;
use crate::ops::Operation;
use crate::quota::Quotas;
use crate::routes::{self, Input, Route};
use crate::state::StateDump;
use crate::stats::{Refusal, Stats, StatsCollector};
use crate::sts;
use crate::world::{request_id, Caller, Reply, World};

/// Largest request body accepted.
const MAX_BODY: usize = 4 << 20;

type Body = Full<Bytes>;

/// State shared by every connection of one simulator.
pub(crate) struct Shared {
    default_account: String,
    latency: Duration,
    latency_jitter: Duration,
    timeout_hold: Duration,
    behaviour: Behaviour,
    error_type_suffix: bool,
    world: Mutex<World>,
    stats: StatsCollector,
    quotas: Quotas,
    faults: RwLock<Arc<Vec<(FaultKind, f64)>>>,
    credentials: Mutex<Credentials>,
    sts: Mutex<sts::Sts>,
    deny: RwLock<Vec<DenyRule>>,
    /// The allow-list mode: accounts with an IAM policy, and it.
    iam: RwLock<BTreeMap<String, IamPolicy>>,
    outage: AtomicU8,
    /// Whether the outage is `down` (nothing listens, connections are reset).
    down: watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn new(config: &SimConfig, shutdown: watch::Receiver<bool>) -> io::Result<Shared> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if !crate::validate::is_account_id(&config.default_account) {
            return Err(invalid(format!(
                "default account {:?} is not 12 digits",
                config.default_account
            )));
        }
        if !(config.quota_scale >= 0.0 && config.quota_scale.is_finite()) {
            return Err(invalid(format!(
                "quota scale {} must be >= 0",
                config.quota_scale
            )));
        }
        for (op, tps) in &config.quotas {
            if Operation::from_name(op).is_none() {
                return Err(invalid(format!("unknown operation {op:?} in quotas")));
            }
            if !(*tps >= 0.0 && tps.is_finite()) {
                return Err(invalid(format!("quota of {op} must be >= 0, got {tps}")));
            }
        }
        for (_, p) in &config.faults {
            if !(0.0..=1.0).contains(p) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("fault probability {p} is not in [0, 1]"),
                ));
            }
        }
        for r in &config.deny {
            r.check().map_err(invalid)?;
        }
        let mut credentials = Credentials::default();
        for c in &config.credentials {
            credentials.change(c);
        }
        let sts = sts::Sts::new(&config.roles, config.session_lifetime).map_err(invalid)?;
        let mut world = World::new();
        for seed in &config.seeds {
            world
                .seed(seed)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        Ok(Shared {
            default_account: config.default_account.clone(),
            latency: config.latency,
            latency_jitter: config.latency_jitter,
            timeout_hold: config.timeout_hold,
            behaviour: config.behaviour(),
            error_type_suffix: config.error_type_suffix,
            world: Mutex::new(world),
            stats: StatsCollector::default(),
            quotas: Quotas::new(config.quota_scale, &config.quotas, config.quota_burst),
            faults: RwLock::new(Arc::new(config.faults.clone())),
            credentials: Mutex::new(credentials),
            sts: Mutex::new(sts),
            deny: RwLock::new(config.deny.clone()),
            iam: RwLock::new(config.iam_policies.clone()),
            outage: AtomicU8::new(outage_code(config.outage)),
            down: watch::Sender::new(config.outage == OutageMode::Down),
            shutdown,
        })
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state dump, after what was due has happened.
    fn state(&self) -> StateDump {
        let mut world = self.world();
        world.advance(crate::world::now_millis());
        world.dump()
    }

    fn set_faults(&self, faults: Vec<(FaultKind, f64)>) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(faults);
    }

    fn credentials(&self) -> std::sync::MutexGuard<'_, Credentials> {
        self.credentials.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sts(&self) -> std::sync::MutexGuard<'_, sts::Sts> {
        self.sts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deny_rules(&self) -> Vec<DenyRule> {
        self.deny.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn edit_deny(&self, f: impl FnOnce(&mut Vec<DenyRule>)) {
        f(&mut self.deny.write().unwrap_or_else(|e| e.into_inner()));
    }

    fn denied(&self, account: &str, op: Operation, resource: &str) -> bool {
        let rules = self.deny.read().unwrap_or_else(|e| e.into_inner());
        // the common case, no rules, costs one read lock
        !rules.is_empty() && rules.iter().any(|r| r.matches(account, op, resource))
    }

    /// Under the allow-list mode, the resource `account`'s policy does not allow `call` on.
    fn not_allowed(
        &self,
        caller: &Caller,
        op: Operation,
        call: Option<&crate::world::Call>,
    ) -> Option<String> {
        let policies = self.iam.read().unwrap_or_else(|e| e.into_inner());
        let policy = policies.get(&caller.account)?;
        let resources = match call {
            Some(c) => c.authorized_resources(caller),
            None => vec!["*".to_string()],
        };
        policy
            .refused(&format!("iot:{}", op.name()), &resources)
            .map(str::to_string)
    }

    /// Under the allow-list mode, whether `account`'s policy refuses `action` on `resource`
    /// (an action outside IoT, such as `sts:AssumeRole`).
    fn identity_refuses(&self, account: &str, action: &str, resource: &str) -> bool {
        let policies = self.iam.read().unwrap_or_else(|e| e.into_inner());
        policies
            .get(account)
            .is_some_and(|p| p.refused(action, &[resource.to_string()]).is_some())
    }

    fn set_iam_policy(&self, account: &str, policy: Option<IamPolicy>) {
        let mut policies = self.iam.write().unwrap_or_else(|e| e.into_inner());
        match policy {
            Some(p) => policies.insert(account.to_string(), p),
            None => policies.remove(account),
        };
    }

    fn iam_policies(&self) -> BTreeMap<String, IamPolicy> {
        self.iam.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn outage(&self) -> OutageMode {
        match self.outage.load(Ordering::Relaxed) {
            1 => OutageMode::Reset,
            2 => OutageMode::Blackhole,
            3 => OutageMode::Down,
            _ => OutageMode::Off,
        }
    }

    fn set_outage(&self, mode: OutageMode) {
        self.outage.store(outage_code(mode), Ordering::Relaxed);
        self.down.send_replace(mode == OutageMode::Down);
    }

    fn faults(&self) -> Arc<Vec<(FaultKind, f64)>> {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn outage_code(mode: OutageMode) -> u8 {
    match mode {
        OutageMode::Off => 0,
        OutageMode::Reset => 1,
        OutageMode::Blackhole => 2,
        OutageMode::Down => 3,
    }
}

/// Returned by the service to make hyper drop the connection without answering.
#[derive(Debug)]
struct Dropped(&'static str);

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection dropped on purpose ({})", self.0)
    }
}

impl std::error::Error for Dropped {}

/// A TCP stream that is closed with a RST (SO_LINGER 0) instead of a FIN
/// when its connection asked for a reset.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reset.load(Ordering::SeqCst) {
            // No FIN: the drop below sends a RST.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

fn response(status: u16, rid: &str, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-amzn-RequestId", v);
    }
    resp
}

fn json_response(status: u16, rid: &str, body: String) -> Response<Body> {
    response(status, rid, "application/json", body)
}

fn error_response(err: &ApiError, rid: &str) -> Response<Body> {
    let mut resp = json_response(err.status, rid, err.body());
    resp.headers_mut()
        .insert("X-Amzn-ErrorType", HeaderValue::from_static(err.code));
    resp
}

async fn read_body(body: Incoming) -> Result<Bytes, Dropped> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| Dropped("unreadable body"))
}

/// Holds a request unanswered for `timeout_hold` (or until shutdown).
async fn hold(shared: &Shared) {
    let mut shutdown = shared.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(shared.timeout_hold) => {}
        _ = stopped(&mut shutdown) => {}
    }
}

/// An STS (awsQuery) error document as a response.
fn sts_error(status: u16, code: &str, message: &str, rid: &str) -> Response<Body> {
    response(status, rid, "text/xml", sts::error_xml(code, message, rid))
}

/// The answer of one IoT call before it goes on the wire (so that faults can
/// garble it).
struct Answer {
    status: u16,
    body: String,
    error: Option<ApiError>,
}

impl Answer {
    fn of(reply: Result<Reply, ApiError>) -> Answer {
        match reply {
            Ok(Reply::Json(v)) => Answer {
                status: 200,
                body: v.to_string(),
                error: None,
            },
            Ok(Reply::Empty) => Answer {
                status: 200,
                body: String::new(),
                error: None,
            },
            Err(e) => Answer {
                status: e.status,
                body: e.body(),
                error: Some(e),
            },
        }
    }

    fn into_response(self, rid: &str) -> Response<Body> {
        match &self.error {
            Some(e) => error_response(e, rid),
            None => json_response(self.status, rid, self.body),
        }
    }
}

/// Cuts a JSON body short: half of it, at least one byte less. An empty body
/// (an operation without output) becomes `{`, a cut-short `{}`.
fn truncate_body(body: &str) -> String {
    if body.is_empty() {
        return "{".to_string();
    }
    let mut cut = (body.len() / 2).min(body.len() - 1);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    body[..cut].to_string()
}

/// The namespace some AWS front ends append to `X-Amzn-ErrorType` after a `:`.
fn error_type_namespace(code: &str) -> &'static str {
    match code {
        "ThrottlingException" | "ServiceUnavailableException" => {
            "http://internal.amazon.com/coral/com.amazon.coral.availability/"
        }
        _ => "http://internal.amazon.com/coral/com.amazonaws.iot/",
    }
}

async fn handle(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let suffix = shared.error_type_suffix;
    let mut resp = handle_request(shared, reset, req).await?;
    if suffix {
        if let Some(code) = resp
            .headers()
            .get("X-Amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
        {
            let full = format!("{code}:{}", error_type_namespace(&code));
            if let Ok(v) = HeaderValue::from_str(&full) {
                resp.headers_mut().insert("X-Amzn-ErrorType", v);
            }
        }
    }
    Ok(resp)
}

async fn handle_request(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let (op, labels) = match routes::route(&parts.method, parts.uri.path()) {
        Route::Sim(method, name) => {
            let body = read_body(body).await?;
            return Ok(sim_endpoint(&shared, &method, &name, &body, &rid));
        }
        Route::Unknown => return Ok(error_response(&ApiError::unknown_operation(), &rid)),
        Route::Sts => (Operation::GetCallerIdentity, Vec::new()),
        Route::Op(op, labels) => (op, labels),
    };
    let body = read_body(body).await?;
    // STS names its operation in the body.
    let op = match op {
        Operation::GetCallerIdentity
            if sts::action(&body, parts.uri.query()).as_deref() == Some("AssumeRole") =>
        {
            Operation::AssumeRole
        }
        op => op,
    };

    // 1. count the call
    shared.stats.call(op);
    let _in_flight = shared.stats.enter();
    let auth_header = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (mut caller, scope) = auth::caller_from(auth_header, &shared.default_account);
    // A role session's key acts as the role's account (or is refused at step 4).
    let identity = match &scope {
        Some(scope) => auth::identify(&shared.sts(), &mut caller, scope, &parts.headers),
        None => Ok(auth::anonymous(&caller)),
    };

    // 2. outage: nothing is answered
    match shared.outage() {
        OutageMode::Off => {}
        // a request that raced the switch: as if the connection died under it
        OutageMode::Reset | OutageMode::Down => {
            shared.stats.refused(Refusal::Outage);
            reset.store(true, Ordering::SeqCst);
            return Err(Dropped("outage reset"));
        }
        OutageMode::Blackhole => {
            shared.stats.refused(Refusal::Outage);
            hold(&shared).await;
            return Err(Dropped("outage blackhole"));
        }
    }

    // 3. latency
    let mut delay = shared.latency;
    if !shared.latency_jitter.is_zero() {
        let max = shared.latency_jitter.as_nanos() as u64;
        delay += Duration::from_nanos(rand::rng().random_range(0..=max));
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    // 4. credentials
    if let Some(scope) = &scope {
        let state = match &identity {
            Ok(_) => shared.credentials().admit(&scope.access_key),
            Err(state) => *state,
        };
        let refusal = match state {
            CredentialState::Valid => None,
            CredentialState::Expired => Some(Refusal::Expired),
            CredentialState::Revoked => Some(Refusal::Revoked),
        };
        if let Some(why) = refusal {
            shared.stats.refused(why);
            if !op.is_iot() {
                let (code, message) = state.sts_error().expect("not valid");
                return Ok(sts_error(403, code, message, &rid));
            }
            return Ok(error_response(&state.iot_error().expect("not valid"), &rid));
        }
    }
    let identity = identity.expect("refused above");

    if !op.is_iot() {
        return Ok(sts_call(&shared, &body, &parts, &caller, &identity, &rid));
    }

    // 5. input (checked now, answered after quota and faults) and deny rules
    let query = routes::parse_query(parts.uri.query());
    let input = Input {
        labels: &labels,
        query: &query,
        headers: &parts.headers,
        body: &body,
    };
    let parsed = routes::parse_call(op, &input);
    let resource = match &parsed {
        Ok(call) => call.resource_arn(&caller),
        Err(_) => "*".to_string(),
    };
    if shared.denied(&caller.account, op, &resource) {
        shared.stats.refused(Refusal::Denied);
        let e = ApiError::access_denied(&caller.region, &caller.account, op.name(), &resource);
        return Ok(error_response(&e, &rid));
    }
    if let Some(resource) = shared.not_allowed(&caller, op, parsed.as_ref().ok()) {
        shared.stats.refused(Refusal::Denied);
        let e = ApiError::access_denied(&caller.region, &caller.account, op.name(), &resource);
        return Ok(error_response(&e, &rid));
    }

    // 6. quota
    if !shared.quotas.admit(&caller.account, &caller.region, op) {
        shared.stats.throttled(op);
        return Ok(error_response(&ApiError::throttling(), &rid));
    }

    // 7. faults
    let fault = faults::roll(&shared.faults(), op.is_mutating());
    if let Some(kind) = fault {
        shared.stats.fault(kind);
        match kind {
            FaultKind::Http500 => return Ok(error_response(&ApiError::internal_failure(), &rid)),
            FaultKind::Http503 => {
                return Ok(error_response(&ApiError::service_unavailable(), &rid))
            }
            FaultKind::Reset => {
                reset.store(true, Ordering::SeqCst);
                return Err(Dropped("reset"));
            }
            FaultKind::Timeout => {
                hold(&shared).await;
                return Err(Dropped("timeout"));
            }
            FaultKind::LostReply
            | FaultKind::Truncated
            | FaultKind::Empty
            | FaultKind::Duplicate => {}
        }
    }

    // 8. the operation
    let mut answer = match parsed {
        Err(e) => Answer::of(Err(e)),
        Ok(call) => {
            let mut world = shared.world();
            let again = (fault == Some(FaultKind::Duplicate)).then(|| call.clone());
            let outcome = world.execute(&caller, call, &shared.behaviour);
            if let Some(id) = &outcome.transferred {
                shared.stats.transfer(id);
            }
            match again {
                // the second delivery of the same request: its answer is the one sent
                Some(call) => {
                    let second = world.execute(&caller, call, &shared.behaviour);
                    if let Some(id) = &second.transferred {
                        shared.stats.transfer(id);
                    }
                    Answer::of(second.reply)
                }
                None => Answer::of(outcome.reply),
            }
        }
    };

    // 9. faults that spoil the answer after the effect
    match fault {
        Some(FaultKind::LostReply) => {
            if faults::lost_reply_resets() {
                reset.store(true, Ordering::SeqCst);
                return Err(Dropped("lost-reply"));
            }
            return Ok(error_response(&ApiError::internal_failure(), &rid));
        }
        // only a success is garbled; an error answer goes out as it is
        Some(FaultKind::Truncated) if answer.error.is_none() => {
            answer.body = truncate_body(&answer.body)
        }
        Some(FaultKind::Empty) if answer.error.is_none() => answer.body.clear(),
        _ => {}
    }
    Ok(answer.into_response(&rid))
}

fn sts_call(
    shared: &Shared,
    body: &[u8],
    parts: &hyper::http::request::Parts,
    caller: &Caller,
    who: &sts::Principal,
    rid: &str,
) -> Response<Body> {
    let op = Operation::GetCallerIdentity;
    if !shared.quotas.admit(&caller.account, &caller.region, op) {
        shared.stats.throttled(op);
        return sts_error(400, "Throttling", "Rate exceeded", rid);
    }
    match sts::action(body, parts.uri.query()).as_deref() {
        Some("GetCallerIdentity") => {
            response(200, rid, "text/xml", sts::caller_identity_xml(who, rid))
        }
        Some("AssumeRole") => {
            let params = sts::params(body, parts.uri.query());
            // Under the allow-list mode the caller's own policy must allow sts:AssumeRole on
            // the role too: a trust policy naming an account delegates to its IAM policies.
            if let Some(role) = params.get("RoleArn") {
                if shared.identity_refuses(&who.account, "sts:AssumeRole", role) {
                    let e = sts::StsError::not_authorized(who, role);
                    return sts_error(e.status, e.code, &e.message, rid);
                }
            }
            let now = std::time::SystemTime::now();
            match shared.sts().assume_role(who, &params, now, rid) {
                Ok(xml) => response(200, rid, "text/xml", xml),
                Err(e) => sts_error(e.status, e.code, &e.message, rid),
            }
        }
        other => sts_error(
            400,
            "InvalidAction",
            &format!(
                "Could not find operation {} for version 2011-06-15",
                other.unwrap_or("")
            ),
            rid,
        ),
    }
}

/// `{"ok":true}`.
fn ok_json(rid: &str) -> Response<Body> {
    json_response(200, rid, "{\"ok\":true}".into())
}

fn bad_control(message: String, rid: &str) -> Response<Body> {
    error_response(&ApiError::invalid_request(message), rid)
}

/// Body of `POST /_sim/deny`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyEdit {
    #[serde(default)]
    clear: bool,
    #[serde(default)]
    add: Vec<DenyRule>,
    #[serde(default)]
    remove: Vec<DenyRule>,
}

/// Body of `POST /_sim/iam`: an account's policy, or `null` to lift the allow-list mode.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IamSwitch {
    account: String,
    policy: Option<IamPolicy>,
}

/// Body of `POST /_sim/outage`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutageSwitch {
    mode: OutageMode,
}

fn sim_endpoint(
    shared: &Shared,
    method: &Method,
    name: &str,
    body: &[u8],
    rid: &str,
) -> Response<Body> {
    fn to_json<T: serde::Serialize>(v: &T, rid: &str) -> Response<Body> {
        json_response(200, rid, serde_json::to_string(v).unwrap_or_default())
    }
    match (method.clone(), name) {
        (Method::GET, "stats") => to_json(&shared.stats.snapshot(), rid),
        (Method::GET, "state") => to_json(&shared.state(), rid),
        (Method::GET, "devices") => to_json(&shared.world().device_states(), rid),
        (Method::POST, "devices") => {
            match serde_json::from_slice::<crate::devices::DeviceControl>(body) {
                Ok(control) => match shared.world().set_devices(&control) {
                    Ok(()) => ok_json(rid),
                    Err(e) => bad_control(e, rid),
                },
                Err(e) => bad_control(
                    format!(
                        "expected {{\"account\": \"..\", \"region\": \"..\", \"default\": {{\"behaviour\": \"follow|ignore|reject|offline\", \"delay_ms\": N}}, \"things\": {{\"NAME\": {{..}}}}}}: {e}"
                    ),
                    rid,
                ),
            }
        }
        (Method::GET, "health") => json_response(200, rid, "{\"ok\":true}".into()),
        (Method::POST, "reset-stats") => {
            shared.stats.reset();
            json_response(200, rid, "{\"ok\":true}".into())
        }
        (Method::POST, "seed") => match serde_json::from_slice::<Seed>(body) {
            Err(e) => error_response(
                &ApiError::invalid_request(format!("invalid seed: {e}")),
                rid,
            ),
            Ok(seed) => match shared.world().seed(&seed) {
                Ok(()) => json_response(200, rid, "{\"ok\":true}".into()),
                Err(e) => error_response(&ApiError::invalid_request(e), rid),
            },
        },
        (Method::GET, "faults") => {
            let list: Vec<String> = shared
                .faults()
                .iter()
                .map(|(k, p)| format!("{k}={p}"))
                .collect();
            to_json(&list, rid)
        }
        (Method::POST, "faults") => {
            let parsed = serde_json::from_slice::<Vec<String>>(body)
                .map_err(|e| e.to_string())
                .and_then(|specs| specs.iter().map(|s| parse_fault_spec(s)).collect());
            match parsed {
                Ok(list) => {
                    shared.set_faults(list);
                    json_response(200, rid, "{\"ok\":true}".into())
                }
                Err(e) => error_response(
                    &ApiError::invalid_request(format!(
                        "expected a JSON array like [\"500=0.1\", \"reset=0.05\"]: {e}"
                    )),
                    rid,
                ),
            }
        }
        (Method::GET, "credentials") => to_json(&shared.credentials().list(), rid),
        (Method::POST, "credentials") => match serde_json::from_slice::<CredentialChange>(body) {
            Ok(change) => {
                shared.credentials().change(&change);
                ok_json(rid)
            }
            Err(e) => bad_control(
                format!(
                    "expected {{\"access_key_id\": \"..\", \"state\": \"expired|revoked|valid\", \"after_requests\": N}}: {e}"
                ),
                rid,
            ),
        },
        (Method::GET, "deny") => to_json(&shared.deny_rules(), rid),
        (Method::POST, "deny") => {
            let edit = match serde_json::from_slice::<DenyEdit>(body) {
                Ok(edit) => edit,
                Err(e) => {
                    return bad_control(
                        format!("expected {{\"add\": [rules], \"remove\": [rules], \"clear\": bool}}: {e}"),
                        rid,
                    )
                }
            };
            if let Some(e) = edit.add.iter().find_map(|r| r.check().err()) {
                return bad_control(e, rid);
            }
            shared.edit_deny(|rules| {
                if edit.clear {
                    rules.clear();
                }
                rules.retain(|r| !edit.remove.contains(r));
                for r in edit.add {
                    if !rules.contains(&r) {
                        rules.push(r);
                    }
                }
            });
            to_json(&shared.deny_rules(), rid)
        }
        (Method::POST, "connectivity") => {
            match serde_json::from_slice::<crate::fleet_index::ConnectivityChange>(body) {
                Ok(change) => match shared.world().set_connectivity(&change) {
                    Ok(()) => ok_json(rid),
                    Err(e) => bad_control(e, rid),
                },
                Err(e) => bad_control(
                    format!(
                        "expected {{\"account\": \"..\", \"region\": \"..\", \"thing\": \"..\", \"connected\": bool, \"timestamp\": MS, \"disconnect_reason\": \"..\"}}: {e}"
                    ),
                    rid,
                ),
            }
        }
        (Method::GET, "iam") => to_json(&shared.iam_policies(), rid),
        (Method::POST, "iam") => match serde_json::from_slice::<IamSwitch>(body) {
            Ok(switch) if crate::validate::is_account_id(&switch.account) => {
                shared.set_iam_policy(&switch.account, switch.policy);
                ok_json(rid)
            }
            Ok(switch) => bad_control(
                format!("account {:?} is not 12 digits", switch.account),
                rid,
            ),
            Err(e) => bad_control(
                format!("expected {{\"account\": \"..\", \"policy\": {{IAM policy}} | null}}: {e}"),
                rid,
            ),
        },
        (Method::GET, "outage") => to_json(&serde_json::json!({"mode": shared.outage()}), rid),
        (Method::POST, "outage") => match serde_json::from_slice::<OutageSwitch>(body) {
            Ok(o) => {
                shared.set_outage(o.mode);
                ok_json(rid)
            }
            Err(e) => bad_control(
                format!("expected {{\"mode\": \"reset|blackhole|down|off\"}}: {e}"),
                rid,
            ),
        },
        _ => error_response(&ApiError::unknown_operation(), rid),
    }
}

/// Resolves once shutdown was requested (or the handle is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(ResettableStream {
        inner: stream,
        reset: reset.clone(),
    });
    let mut shutdown = shared.shutdown.clone();
    let mut down = shared.down.subscribe();
    let svc_shared = shared.clone();
    let svc_reset = reset.clone();
    let service = service_fn(move |req| handle(svc_shared.clone(), svc_reset.clone(), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = stopped(&mut shutdown) => {}
        // A killed server's connections die with a RST, whatever they were doing.
        _ = down.wait_for(|d| *d) => reset.store(true, Ordering::SeqCst),
    }
}

/// Accepts connections until shutdown. While the outage is `down` the listener is closed
/// (connecting is refused, as with a killed server); afterwards the same address is bound
/// again.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut down = shared.down.subscribe();
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    loop {
        if *down.borrow_and_update() {
            listener = None;
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    // the port is not free yet: try again shortly
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            }
        }
        let accept = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            _ = down.changed() => {}
            accepted = accept => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, shared.clone()));
                }
                Err(_) => {
                    // e.g. too many open files: back off a little.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
        }
    }
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds `config.listen` and serves on the caller's tokio runtime.
    pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(&config, rx)?);
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(SimHandle {
            addr,
            shared,
            shutdown: tx,
            thread: None,
        })
    }

    /// Binds `config.listen` and serves from its own thread running a
    /// multi-thread tokio runtime with 2 workers (for sync code).
    pub fn spawn(config: SimConfig) -> io::Result<SimHandle> {
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(&config, rx)?);
        let std_listener = std::net::TcpListener::bind(config.listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("iot-sim-worker")
            .enable_all()
            .build()?;
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("iot-sim".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => accept_loop(listener, thread_shared).await,
                        Err(e) => eprintln!("iot-sim: cannot listen: {e}"),
                    }
                });
                // Dropping the runtime cancels every connection task.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(SimHandle {
            addr,
            shared,
            shutdown: tx,
            thread: Some(thread),
        })
    }
}

/// A running simulator. Dropping it shuts it down.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters (same as `GET /_sim/stats`).
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// A snapshot of all data (same as `GET /_sim/state`).
    pub fn state(&self) -> StateDump {
        self.shared.state()
    }

    /// Sets behaviours of one account's devices (same as `POST /_sim/devices`).
    pub fn set_devices(&self, control: &crate::devices::DeviceControl) -> Result<(), String> {
        self.shared.world().set_devices(control)
    }

    /// Every simulated device: where it is connected, its seconds offline (same as
    /// `GET /_sim/devices`).
    pub fn devices(&self) -> Vec<crate::devices::DeviceState> {
        self.shared.world().device_states()
    }

    /// Loads seed data (same as `POST /_sim/seed`).
    pub fn seed(&self, seed: Seed) -> Result<(), String> {
        self.shared.world().seed(&seed)
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Vec<(FaultKind, f64)>) {
        self.shared.set_faults(faults);
    }

    /// Changes the state of an access key, at once or after `after_requests`
    /// more API requests with it (same as `POST /_sim/credentials`).
    pub fn set_credentials(
        &self,
        access_key_id: &str,
        state: CredentialState,
        after_requests: Option<u64>,
    ) {
        self.shared.credentials().change(&CredentialChange {
            access_key_id: access_key_id.to_string(),
            state,
            after_requests,
        });
    }

    /// Adds a deny rule (a rule already present is not added twice).
    pub fn add_deny(&self, rule: DenyRule) -> Result<(), String> {
        rule.check()?;
        self.shared.edit_deny(|rules| {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        });
        Ok(())
    }

    /// Removes a deny rule; returns whether it was there.
    pub fn remove_deny(&self, rule: &DenyRule) -> bool {
        let mut found = false;
        self.shared.edit_deny(|rules| {
            let before = rules.len();
            rules.retain(|r| r != rule);
            found = rules.len() != before;
        });
        found
    }

    /// The deny rules in force (same as `GET /_sim/deny`).
    pub fn deny_rules(&self) -> Vec<DenyRule> {
        self.shared.deny_rules()
    }

    /// Puts `account` in the allow-list mode with `policy` (an IAM policy document), or takes
    /// it out with `None` (same as `POST /_sim/iam`).
    pub fn set_iam_policy(&self, account: &str, policy: Option<&str>) -> Result<(), String> {
        if !crate::validate::is_account_id(account) {
            return Err(format!("account {account:?} is not 12 digits"));
        }
        let parsed = policy.map(IamPolicy::parse).transpose()?;
        self.shared.set_iam_policy(account, parsed);
        Ok(())
    }

    /// Switches the outage on (`Reset`, `Blackhole`, `Down`) or off (same as `POST
    /// /_sim/outage`).
    pub fn set_outage(&self, mode: OutageMode) {
        self.shared.set_outage(mode);
    }

    /// Records that a device connected or disconnected (same as `POST /_sim/connectivity`):
    /// what fleet indexing's connectivity shows.
    pub fn set_connectivity(
        &self,
        change: &crate::fleet_index::ConnectivityChange,
    ) -> Result<(), String> {
        self.shared.world().set_connectivity(change)
    }

    /// Zeroes the counters (same as `POST /_sim/reset-stats`).
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// Stops serving and closes every connection, including held ones.
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
