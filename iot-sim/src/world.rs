//! The simulated IoT data (certificates, policy and thing attachments, pending
//! transfers) of every (account, region), and the semantics of each operation.
//!
//! Input formats are checked by [`crate::routes`] before a [`Call`] reaches the
//! world; the world checks everything that depends on state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::config::{Seed, SeedCertificate};
use crate::errors::ApiError;
use crate::state::{AccountState, CertState, StateDump};
use crate::validate;

/// Most policies AWS IoT lets one certificate have attached.
pub const MAX_POLICIES_PER_CERT: usize = 10;

/// Who is calling: from the SigV4 credential scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// 12-digit account id.
    pub account: String,
    /// Region of the credential scope.
    pub region: String,
}

/// A validated request of one IoT operation (fields as in the API inputs).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// DescribeCertificate.
    Describe { id: String },
    /// UpdateCertificate.
    Update { id: String, new_status: String },
    /// ListCertificates.
    ListCertificates { page: Page },
    /// ListOutgoingCertificates.
    ListOutgoing { page: Page },
    /// ListAttachedPolicies.
    ListAttachedPolicies { target: String, page: Page },
    /// AttachPolicy.
    AttachPolicy { policy: String, target: String },
    /// DetachPolicy / DetachPrincipalPolicy.
    DetachPolicy { policy: String, target: String },
    /// ListPrincipalPolicies.
    ListPrincipalPolicies { principal: String, page: Page },
    /// ListPrincipalThings.
    ListPrincipalThings { principal: String, page: Page },
    /// AttachThingPrincipal.
    AttachThing { thing: String, principal: String },
    /// DetachThingPrincipal.
    DetachThing { thing: String, principal: String },
    /// TransferCertificate.
    Transfer {
        id: String,
        target: String,
        message: Option<String>,
    },
    /// AcceptCertificateTransfer.
    Accept { id: String, set_as_active: bool },
    /// RejectCertificateTransfer.
    Reject { id: String, reason: Option<String> },
    /// CancelCertificateTransfer.
    Cancel { id: String },
}

impl Call {
    /// The resource an IAM policy would name for this call: the certificate,
    /// thing or policy target's ARN, or `*` for the list calls without one.
    pub fn resource_arn(&self, caller: &Caller) -> String {
        let cert = |id: &str| cert_arn(&caller.region, &caller.account, id);
        match self {
            Call::Describe { id }
            | Call::Update { id, .. }
            | Call::Transfer { id, .. }
            | Call::Accept { id, .. }
            | Call::Reject { id, .. }
            | Call::Cancel { id } => cert(id),
            Call::ListAttachedPolicies { target, .. }
            | Call::AttachPolicy { target, .. }
            | Call::DetachPolicy { target, .. } => target.clone(),
            Call::ListPrincipalPolicies { principal, .. }
            | Call::ListPrincipalThings { principal, .. } => principal.clone(),
            Call::AttachThing { thing, .. } | Call::DetachThing { thing, .. } => {
                thing_arn(&caller.region, &caller.account, thing)
            }
            Call::ListCertificates { .. } | Call::ListOutgoing { .. } => "*".to_string(),
        }
    }
}

/// Pagination input of a list call.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Page size (already checked to be 1..=250).
    pub size: usize,
    /// Marker / nextToken from the previous page.
    pub marker: Option<String>,
    /// Ascending order (only where the API has `isAscendingOrder`).
    pub ascending: bool,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with an empty body.
    Empty,
}

/// What a call did.
#[derive(Debug)]
pub struct Outcome {
    /// The answer.
    pub reply: Result<Reply, ApiError>,
    /// Id of the certificate whose TransferCertificate took effect.
    pub transferred: Option<String>,
}

#[derive(Clone, Debug)]
struct Cert {
    id: String,
    owner: String,
    region: String,
    status: String,
    seq: u64,
    creation: f64,
    last_modified: f64,
    customer_version: u64,
    generation_id: String,
    previous_owner: Option<String>,
    pending_target: Option<String>,
    transfer_message: Option<String>,
    transfer_date: Option<f64>,
    accept_date: Option<f64>,
    reject_date: Option<f64>,
    reject_reason: Option<String>,
    policies: BTreeSet<String>,
    things: BTreeSet<String>,
}

impl Cert {
    fn arn(&self) -> String {
        cert_arn(&self.region, &self.owner, &self.id)
    }

    /// Key that orders certificates by creation, unique per listing.
    fn list_key(&self) -> String {
        format!("{:016x}{}", self.seq, self.id)
    }

    fn touch(&mut self, now: f64) {
        self.last_modified = now;
        self.customer_version += 1;
    }

    fn accepted_here(&self) -> bool {
        self.pending_target.is_none() && self.accept_date.is_some() && self.previous_owner.is_some()
    }

    fn description(&self) -> Value {
        let mut transfer = Map::new();
        if let Some(m) = &self.transfer_message {
            transfer.insert("transferMessage".into(), json!(m));
        }
        if let Some(r) = &self.reject_reason {
            transfer.insert("rejectReason".into(), json!(r));
        }
        if let Some(d) = self.transfer_date {
            transfer.insert("transferDate".into(), json!(d));
        }
        if let Some(d) = self.accept_date {
            transfer.insert("acceptDate".into(), json!(d));
        }
        if let Some(d) = self.reject_date {
            transfer.insert("rejectDate".into(), json!(d));
        }
        let mut d = Map::new();
        d.insert("certificateArn".into(), json!(self.arn()));
        d.insert("certificateId".into(), json!(self.id));
        d.insert("status".into(), json!(self.status));
        d.insert("certificatePem".into(), json!(fake_pem(&self.id)));
        d.insert("ownedBy".into(), json!(self.owner));
        if let Some(p) = &self.previous_owner {
            d.insert("previousOwnedBy".into(), json!(p));
        }
        d.insert("creationDate".into(), json!(self.creation));
        d.insert("lastModifiedDate".into(), json!(self.last_modified));
        d.insert("customerVersion".into(), json!(self.customer_version));
        d.insert("transferData".into(), Value::Object(transfer));
        d.insert("generationId".into(), json!(self.generation_id));
        d.insert(
            "validity".into(),
            json!({
                "notBefore": self.creation - 86_400.0,
                "notAfter": self.creation + 10.0 * 365.0 * 86_400.0,
            }),
        );
        d.insert("certificateMode".into(), json!("DEFAULT"));
        json!({ "certificateDescription": Value::Object(d) })
    }

    fn summary(&self) -> Value {
        json!({
            "certificateArn": self.arn(),
            "certificateId": self.id,
            "status": self.status,
            "certificateMode": "DEFAULT",
            "creationDate": self.creation,
        })
    }

    fn outgoing(&self) -> Value {
        let mut m = Map::new();
        m.insert("certificateArn".into(), json!(self.arn()));
        m.insert("certificateId".into(), json!(self.id));
        if let Some(t) = &self.pending_target {
            m.insert("transferredTo".into(), json!(t));
        }
        if let Some(d) = self.transfer_date {
            m.insert("transferDate".into(), json!(d));
        }
        if let Some(msg) = &self.transfer_message {
            m.insert("transferMessage".into(), json!(msg));
        }
        m.insert("creationDate".into(), json!(self.creation));
        Value::Object(m)
    }

    fn dump(&self) -> CertState {
        CertState {
            id: self.id.clone(),
            arn: self.arn(),
            status: self.status.clone(),
            owner: self.owner.clone(),
            previous_owner: self.previous_owner.clone(),
            pending_target: self.pending_target.clone(),
            transfer_message: self.transfer_message.clone(),
            reject_reason: self.reject_reason.clone(),
            policies: self.policies.iter().cloned().collect(),
            things: self.things.iter().cloned().collect(),
        }
    }
}

#[derive(Default, Debug)]
struct AccountData {
    /// Owned certificates by id.
    certs: BTreeMap<String, Cert>,
    /// Incoming pending transfers: certificate id -> source account.
    incoming: BTreeMap<String, String>,
    /// Certificates this account transferred away and that were accepted:
    /// id -> account that accepted.
    tombstones: HashMap<String, String>,
    /// Policies known in this account (they spring into existence when attached).
    policies: BTreeSet<String>,
    /// Things known in this account (they spring into existence when attached).
    things: BTreeSet<String>,
}

/// All simulated data. Keys are (region, account).
#[derive(Default, Debug)]
pub struct World {
    accounts: BTreeMap<(String, String), AccountData>,
    next_seq: u64,
}

/// `arn:aws:iot:REGION:ACCOUNT:cert/ID`.
pub fn cert_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:cert/{id}")
}

/// `arn:aws:iot:REGION:ACCOUNT:thing/NAME`.
pub fn thing_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:thing/{name}")
}

fn policy_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:policy/{name}")
}

fn fake_pem(id: &str) -> String {
    format!(
        "-----BEGIN CERTIFICATE-----\nSU9ULVNJTS1GQUtFLUNFUlQ=\n{}\n{}\n-----END CERTIFICATE-----\n",
        &id[..id.len() / 2],
        &id[id.len() / 2..]
    )
}

/// Current time as epoch seconds with millisecond precision.
pub fn now_epoch() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

fn hex_key(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Sorts `items` by key (descending unless `ascending`), starts at `marker`
/// (the key of the first item of the page, inclusive), and returns the page and
/// the marker of the next page.
fn paginate<T>(
    mut items: Vec<(String, T)>,
    ascending: bool,
    marker: Option<&str>,
    size: usize,
) -> (Vec<T>, Option<String>) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if !ascending {
        items.reverse();
    }
    let start = match marker {
        None => 0,
        Some(m) => items
            .iter()
            .position(|(k, _)| {
                if ascending {
                    k.as_str() >= m
                } else {
                    k.as_str() <= m
                }
            })
            .unwrap_or(items.len()),
    };
    let next = items.get(start + size).map(|(k, _)| k.clone());
    let page = items.into_iter().skip(start).take(size).map(|(_, v)| v);
    (page.collect(), next)
}

fn with_marker(mut body: Value, field: &str, next: Option<String>) -> Value {
    if let (Some(n), Some(obj)) = (next, body.as_object_mut()) {
        obj.insert(field.to_string(), json!(n));
    }
    body
}

fn random_uuid() -> String {
    let v: u128 = rand::random();
    let s = format!("{v:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &s[0..8],
        &s[8..12],
        &s[13..16],
        &s[17..20],
        &s[20..32]
    )
}

/// A request id in UUID form.
pub fn request_id() -> String {
    random_uuid()
}

impl World {
    /// An empty world.
    pub fn new() -> Self {
        World::default()
    }

    fn key(region: &str, account: &str) -> (String, String) {
        (region.to_string(), account.to_string())
    }

    fn data(&self, region: &str, account: &str) -> Option<&AccountData> {
        self.accounts.get(&Self::key(region, account))
    }

    fn data_mut(&mut self, region: &str, account: &str) -> Option<&mut AccountData> {
        self.accounts.get_mut(&Self::key(region, account))
    }

    fn data_entry(&mut self, region: &str, account: &str) -> &mut AccountData {
        self.accounts.entry(Self::key(region, account)).or_default()
    }

    /// The source's certificate pending transfer to `caller`, if the caller
    /// has such an incoming transfer.
    fn incoming_cert(&self, caller: &Caller, id: &str) -> Option<&Cert> {
        let source = self
            .data(&caller.region, &caller.account)?
            .incoming
            .get(id)?;
        let cert = self.data(&caller.region, source)?.certs.get(id)?;
        (cert.pending_target.as_deref() == Some(caller.account.as_str())).then_some(cert)
    }

    /// Runs one validated call for `caller`.
    pub fn execute(&mut self, caller: &Caller, call: Call, things_block_transfer: bool) -> Outcome {
        let now = now_epoch();
        let mut transferred = None;
        let reply = match call {
            Call::Describe { id } => self.describe(caller, &id),
            Call::Update { id, new_status } => self.update(caller, &id, &new_status, now),
            Call::ListCertificates { page } => self.list_certificates(caller, &page),
            Call::ListOutgoing { page } => self.list_outgoing(caller, &page),
            Call::ListAttachedPolicies { target, page } => {
                self.list_policies(caller, &target, &page)
            }
            Call::ListPrincipalPolicies { principal, page } => {
                self.list_policies(caller, &principal, &page)
            }
            Call::AttachPolicy { policy, target } => self.attach_policy(caller, &policy, &target),
            Call::DetachPolicy { policy, target } => self.detach_policy(caller, &policy, &target),
            Call::ListPrincipalThings { principal, page } => {
                self.list_things(caller, &principal, &page)
            }
            Call::AttachThing { thing, principal } => self.attach_thing(caller, &thing, &principal),
            Call::DetachThing { thing, principal } => self.detach_thing(caller, &thing, &principal),
            Call::Transfer {
                id,
                target,
                message,
            } => {
                let r = self.transfer(caller, &id, &target, message, things_block_transfer, now);
                if r.is_ok() {
                    transferred = Some(id);
                }
                r
            }
            Call::Accept { id, set_as_active } => self.accept(caller, &id, set_as_active, now),
            Call::Reject { id, reason } => self.reject(caller, &id, reason, now),
            Call::Cancel { id } => self.cancel(caller, &id, now),
        };
        Outcome { reply, transferred }
    }

    fn describe(&self, caller: &Caller, id: &str) -> Result<Reply, ApiError> {
        if let Some(cert) = self
            .data(&caller.region, &caller.account)
            .and_then(|d| d.certs.get(id))
        {
            return Ok(Reply::Json(cert.description()));
        }
        if let Some(cert) = self.incoming_cert(caller, id) {
            return Ok(Reply::Json(cert.description()));
        }
        Err(ApiError::not_found(format!(
            "The certificate {id} does not exist"
        )))
    }

    fn update(
        &mut self,
        caller: &Caller,
        id: &str,
        new_status: &str,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let pending_incoming = self.incoming_cert(caller, id).is_some();
        let owned = self
            .data_mut(&caller.region, &caller.account)
            .and_then(|d| d.certs.get_mut(id));
        match owned {
            Some(cert) => {
                if cert.status == "PENDING_TRANSFER" {
                    return Err(ApiError::certificate_state(
                        "Certificate is pending transfer and cannot be updated",
                    ));
                }
                if cert.status == "REVOKED" && new_status != "REVOKED" {
                    return Err(ApiError::certificate_state(
                        "A revoked certificate cannot change status",
                    ));
                }
                if cert.status != new_status {
                    cert.status = new_status.to_string();
                    cert.touch(now);
                }
                Ok(Reply::Empty)
            }
            None if pending_incoming => Err(ApiError::certificate_state(
                "Certificate is pending transfer and cannot be updated",
            )),
            None => Err(ApiError::not_found(format!(
                "The certificate {id} does not exist"
            ))),
        }
    }

    fn list_certificates(&self, caller: &Caller, page: &Page) -> Result<Reply, ApiError> {
        let mut items: Vec<(String, Value)> = Vec::new();
        if let Some(d) = self.data(&caller.region, &caller.account) {
            for cert in d.certs.values() {
                items.push((cert.list_key(), cert.summary()));
            }
            for id in d.incoming.keys() {
                if let Some(cert) = self.incoming_cert(caller, id) {
                    if !d.certs.contains_key(id) {
                        items.push((cert.list_key(), cert.summary()));
                    }
                }
            }
        }
        let (certs, next) = paginate(items, page.ascending, page.marker.as_deref(), page.size);
        Ok(Reply::Json(with_marker(
            json!({ "certificates": certs }),
            "nextMarker",
            next,
        )))
    }

    fn list_outgoing(&self, caller: &Caller, page: &Page) -> Result<Reply, ApiError> {
        let items: Vec<(String, Value)> = self
            .data(&caller.region, &caller.account)
            .map(|d| {
                d.certs
                    .values()
                    .filter(|c| c.pending_target.is_some())
                    .map(|c| (c.list_key(), c.outgoing()))
                    .collect()
            })
            .unwrap_or_default();
        let (certs, next) = paginate(items, page.ascending, page.marker.as_deref(), page.size);
        Ok(Reply::Json(with_marker(
            json!({ "outgoingCertificates": certs }),
            "nextMarker",
            next,
        )))
    }

    /// Resolves a certificate ARN given as principal / policy target to the
    /// caller's own certificate.
    fn principal_mut(&mut self, caller: &Caller, principal: &str) -> Result<&mut Cert, ApiError> {
        let (region, account, id) = validate::parse_cert_arn(principal).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "Invalid principal {principal:?}: expected a certificate ARN"
            ))
        })?;
        let not_found = || {
            ApiError::not_found(format!(
                "The certificate given in the principal does not exist: {principal}"
            ))
        };
        if region != caller.region || account != caller.account {
            return Err(not_found());
        }
        self.data_mut(&caller.region, &caller.account)
            .and_then(|d| d.certs.get_mut(&id))
            .ok_or_else(not_found)
    }

    fn principal(&mut self, caller: &Caller, principal: &str) -> Result<&Cert, ApiError> {
        self.principal_mut(caller, principal).map(|c| &*c)
    }

    fn list_policies(
        &mut self,
        caller: &Caller,
        target: &str,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let cert = self.principal(caller, target)?;
        let items: Vec<(String, Value)> = cert
            .policies
            .iter()
            .map(|p| {
                (
                    hex_key(p),
                    json!({ "policyName": p, "policyArn": policy_arn(&caller.region, &caller.account, p) }),
                )
            })
            .collect();
        let (policies, next) = paginate(items, page.ascending, page.marker.as_deref(), page.size);
        Ok(Reply::Json(with_marker(
            json!({ "policies": policies }),
            "nextMarker",
            next,
        )))
    }

    fn attach_policy(
        &mut self,
        caller: &Caller,
        policy: &str,
        target: &str,
    ) -> Result<Reply, ApiError> {
        let cert = self.principal_mut(caller, target)?;
        if !cert.policies.contains(policy) {
            if cert.policies.len() >= MAX_POLICIES_PER_CERT {
                return Err(ApiError::limit_exceeded(format!(
                    "A certificate can have at most {MAX_POLICIES_PER_CERT} policies attached"
                )));
            }
            cert.policies.insert(policy.to_string());
        }
        self.data_entry(&caller.region, &caller.account)
            .policies
            .insert(policy.to_string());
        Ok(Reply::Empty)
    }

    fn detach_policy(
        &mut self,
        caller: &Caller,
        policy: &str,
        target: &str,
    ) -> Result<Reply, ApiError> {
        let known = self
            .data(&caller.region, &caller.account)
            .is_some_and(|d| d.policies.contains(policy));
        let cert = self.principal_mut(caller, target)?;
        if !known && !cert.policies.contains(policy) {
            return Err(ApiError::not_found(format!(
                "The policy {policy} does not exist"
            )));
        }
        cert.policies.remove(policy);
        Ok(Reply::Empty)
    }

    fn list_things(
        &mut self,
        caller: &Caller,
        principal: &str,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let cert = self.principal(caller, principal)?;
        let items: Vec<(String, Value)> =
            cert.things.iter().map(|t| (hex_key(t), json!(t))).collect();
        let (things, next) = paginate(items, true, page.marker.as_deref(), page.size);
        Ok(Reply::Json(with_marker(
            json!({ "things": things }),
            "nextToken",
            next,
        )))
    }

    fn attach_thing(
        &mut self,
        caller: &Caller,
        thing: &str,
        principal: &str,
    ) -> Result<Reply, ApiError> {
        let cert = self.principal_mut(caller, principal)?;
        cert.things.insert(thing.to_string());
        self.data_entry(&caller.region, &caller.account)
            .things
            .insert(thing.to_string());
        Ok(Reply::Json(json!({})))
    }

    fn detach_thing(
        &mut self,
        caller: &Caller,
        thing: &str,
        principal: &str,
    ) -> Result<Reply, ApiError> {
        let known = self
            .data(&caller.region, &caller.account)
            .is_some_and(|d| d.things.contains(thing));
        let cert = self.principal_mut(caller, principal)?;
        if !known && !cert.things.contains(thing) {
            return Err(ApiError::not_found(format!(
                "The thing {thing} does not exist"
            )));
        }
        cert.things.remove(thing);
        Ok(Reply::Json(json!({})))
    }

    fn transfer(
        &mut self,
        caller: &Caller,
        id: &str,
        target: &str,
        message: Option<String>,
        things_block_transfer: bool,
        now: f64,
    ) -> Result<Reply, ApiError> {
        if target == caller.account {
            return Err(ApiError::invalid_request(
                "The target account is the owner of the certificate",
            ));
        }
        let target_owns = self
            .data(&caller.region, target)
            .is_some_and(|d| d.certs.contains_key(id));
        let cert = self
            .data_mut(&caller.region, &caller.account)
            .and_then(|d| d.certs.get_mut(id))
            .ok_or_else(|| ApiError::not_found(format!("The certificate {id} does not exist")))?;
        match cert.status.as_str() {
            "PENDING_TRANSFER" => {
                return Err(ApiError::transfer_conflict(
                    "The certificate is already pending transfer",
                ))
            }
            "INACTIVE" => {}
            "ACTIVE" => {
                return Err(ApiError::certificate_state(
                    "The certificate is active: deactivate it before transferring it",
                ))
            }
            other => {
                return Err(ApiError::certificate_state(format!(
                    "A certificate in status {other} cannot be transferred"
                )))
            }
        }
        if !cert.policies.is_empty() {
            return Err(ApiError::transfer_conflict(
                "The certificate cannot be transferred: authorization policies are still attached",
            ));
        }
        if things_block_transfer && !cert.things.is_empty() {
            return Err(ApiError::transfer_conflict(
                "The certificate cannot be transferred: things are still attached",
            ));
        }
        if target_owns {
            return Err(ApiError::transfer_conflict(
                "The target account already has this certificate",
            ));
        }
        cert.status = "PENDING_TRANSFER".to_string();
        cert.pending_target = Some(target.to_string());
        cert.transfer_message = message;
        cert.transfer_date = Some(now);
        cert.accept_date = None;
        cert.reject_date = None;
        cert.reject_reason = None;
        cert.touch(now);
        self.data_entry(&caller.region, target)
            .incoming
            .insert(id.to_string(), caller.account.clone());
        Ok(Reply::Json(json!({
            "transferredCertificateArn": cert_arn(&caller.region, target, id),
        })))
    }

    /// The checks shared by accept and reject. Returns the source account.
    fn pending_for_target(&self, caller: &Caller, id: &str) -> Result<String, ApiError> {
        if let Some(cert) = self.incoming_cert(caller, id) {
            return Ok(cert.owner.clone());
        }
        if let Some(cert) = self
            .data(&caller.region, &caller.account)
            .and_then(|d| d.certs.get(id))
        {
            if cert.accepted_here() {
                return Err(ApiError::transfer_already_completed(
                    "The certificate transfer was already accepted",
                ));
            }
        }
        Err(ApiError::not_found(format!(
            "No pending transfer of certificate {id} to this account"
        )))
    }

    fn accept(
        &mut self,
        caller: &Caller,
        id: &str,
        set_as_active: bool,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let source = self.pending_for_target(caller, id)?;
        let src = self
            .data_mut(&caller.region, &source)
            .expect("source account exists");
        let mut cert = src.certs.remove(id).expect("pending certificate exists");
        src.tombstones
            .insert(id.to_string(), caller.account.clone());
        cert.owner = caller.account.clone();
        cert.previous_owner = Some(source);
        cert.pending_target = None;
        cert.status = if set_as_active { "ACTIVE" } else { "INACTIVE" }.to_string();
        cert.accept_date = Some(now);
        cert.policies.clear();
        cert.things.clear();
        cert.touch(now);
        let dst = self.data_entry(&caller.region, &caller.account);
        dst.incoming.remove(id);
        dst.tombstones.remove(id);
        dst.certs.insert(id.to_string(), cert);
        Ok(Reply::Empty)
    }

    fn reject(
        &mut self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let source = self.pending_for_target(caller, id)?;
        let cert = self
            .data_mut(&caller.region, &source)
            .and_then(|d| d.certs.get_mut(id))
            .expect("pending certificate exists");
        cert.status = "INACTIVE".to_string();
        cert.pending_target = None;
        cert.reject_reason = reason;
        cert.reject_date = Some(now);
        cert.touch(now);
        if let Some(d) = self.data_mut(&caller.region, &caller.account) {
            d.incoming.remove(id);
        }
        Ok(Reply::Empty)
    }

    fn cancel(&mut self, caller: &Caller, id: &str, now: f64) -> Result<Reply, ApiError> {
        let Some(data) = self.data_mut(&caller.region, &caller.account) else {
            return Err(ApiError::not_found(format!(
                "The certificate {id} does not exist"
            )));
        };
        if let Some(cert) = data.certs.get_mut(id) {
            let Some(target) = cert.pending_target.take() else {
                return Err(ApiError::invalid_request(
                    "The certificate is not pending transfer",
                ));
            };
            cert.status = "INACTIVE".to_string();
            cert.touch(now);
            if let Some(t) = self.data_mut(&caller.region, &target) {
                t.incoming.remove(id);
            }
            return Ok(Reply::Empty);
        }
        if data.tombstones.contains_key(id) {
            return Err(ApiError::transfer_already_completed(
                "The certificate transfer was already accepted",
            ));
        }
        Err(ApiError::not_found(format!(
            "The certificate {id} does not exist"
        )))
    }

    /// Removes every trace of `id` in (region, account) before a seed replaces it.
    fn forget(&mut self, region: &str, account: &str, id: &str) {
        let Some(data) = self.data_mut(region, account) else {
            return;
        };
        let old = data.certs.remove(id);
        data.tombstones.remove(id);
        let incoming_from = data.incoming.remove(id);
        if let Some(target) = old.and_then(|c| c.pending_target) {
            if let Some(t) = self.data_mut(region, &target) {
                t.incoming.remove(id);
            }
        }
        if let Some(source) = incoming_from {
            if let Some(cert) = self
                .data_mut(region, &source)
                .and_then(|d| d.certs.get_mut(id))
            {
                if cert.pending_target.as_deref() == Some(account) {
                    cert.pending_target = None;
                    cert.status = "INACTIVE".to_string();
                }
            }
        }
    }

    /// Loads seed data; the whole seed is checked before anything changes.
    pub fn seed(&mut self, seed: &Seed) -> Result<(), String> {
        validate::check_region(&seed.region)?;
        for (account, data) in &seed.accounts {
            if !validate::is_account_id(account) {
                return Err(format!(
                    "invalid account id {account:?}: expected 12 digits"
                ));
            }
            for c in &data.certificates {
                check_seed_cert(account, c)?;
            }
        }
        let now = now_epoch();
        for (account, data) in &seed.accounts {
            for c in &data.certificates {
                self.forget(&seed.region, account, &c.id);
                if let Some(target) = &c.pending_target {
                    if self
                        .data(&seed.region, target)
                        .is_some_and(|d| d.certs.contains_key(&c.id))
                    {
                        return Err(format!(
                            "certificate {} is seeded as pending transfer to {target}, which already owns it",
                            c.id
                        ));
                    }
                }
                self.next_seq += 1;
                let cert = Cert {
                    id: c.id.clone(),
                    owner: account.clone(),
                    region: seed.region.clone(),
                    status: c.status.clone(),
                    seq: self.next_seq,
                    creation: now,
                    last_modified: now,
                    customer_version: 1,
                    generation_id: random_uuid(),
                    previous_owner: None,
                    pending_target: c.pending_target.clone(),
                    transfer_message: c.transfer_message.clone(),
                    transfer_date: c.pending_target.as_ref().map(|_| now),
                    accept_date: None,
                    reject_date: None,
                    reject_reason: None,
                    policies: c.policies.iter().cloned().collect(),
                    things: c.things.iter().cloned().collect(),
                };
                let d = self.data_entry(&seed.region, account);
                d.policies.extend(c.policies.iter().cloned());
                d.things.extend(c.things.iter().cloned());
                d.certs.insert(c.id.clone(), cert);
                if let Some(target) = &c.pending_target {
                    self.data_entry(&seed.region, target)
                        .incoming
                        .insert(c.id.clone(), account.clone());
                }
            }
        }
        Ok(())
    }

    /// Snapshot of everything, sorted by region, account, certificate id.
    pub fn dump(&self) -> StateDump {
        StateDump {
            accounts: self
                .accounts
                .iter()
                .map(|((region, account), d)| AccountState {
                    account: account.clone(),
                    region: region.clone(),
                    certificates: d.certs.values().map(Cert::dump).collect(),
                })
                .collect(),
        }
    }
}

fn check_seed_cert(account: &str, c: &SeedCertificate) -> Result<(), String> {
    if !validate::is_certificate_id(&c.id) {
        return Err(format!(
            "invalid certificate id {:?}: expected 64 characters (0x)?[a-fA-F0-9]+",
            c.id
        ));
    }
    if !validate::is_status(&c.status) {
        return Err(format!("invalid status {:?} of {}", c.status, c.id));
    }
    match (&c.pending_target, c.status.as_str()) {
        (Some(t), "PENDING_TRANSFER") => {
            if !validate::is_account_id(t) || t == account {
                return Err(format!(
                    "invalid pending_target {t:?} of {}: expected another 12-digit account",
                    c.id
                ));
            }
        }
        (Some(_), _) => {
            return Err(format!(
                "certificate {} has pending_target but status {} (expected PENDING_TRANSFER)",
                c.id, c.status
            ))
        }
        (None, "PENDING_TRANSFER") => {
            return Err(format!(
                "certificate {} has status PENDING_TRANSFER but no pending_target",
                c.id
            ))
        }
        (None, _) => {}
    }
    if let Some(m) = &c.transfer_message {
        if m.chars().count() > validate::MAX_MESSAGE_LEN {
            return Err(format!(
                "transfer_message of {} is over 128 characters",
                c.id
            ));
        }
    }
    for p in &c.policies {
        if !validate::is_policy_name(p) {
            return Err(format!("invalid policy name {p:?}"));
        }
    }
    for t in &c.things {
        if !validate::is_thing_name(t) {
            return Err(format!("invalid thing name {t:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SeedAccount;

    const A: &str = "111111111111";
    const B: &str = "222222222222";

    fn id(n: u32) -> String {
        format!("{n:064x}")
    }

    fn caller(a: &str) -> Caller {
        Caller {
            account: a.into(),
            region: "us-east-1".into(),
        }
    }

    fn seeded(certs: Vec<SeedCertificate>) -> World {
        let mut w = World::new();
        let mut accounts = BTreeMap::new();
        accounts.insert(
            A.to_string(),
            SeedAccount {
                certificates: certs,
            },
        );
        w.seed(&Seed {
            region: "us-east-1".into(),
            accounts,
        })
        .unwrap();
        w
    }

    fn cert(n: u32, status: &str) -> SeedCertificate {
        SeedCertificate {
            id: id(n),
            status: status.into(),
            ..Default::default()
        }
    }

    fn run(w: &mut World, who: &str, call: Call) -> Result<Reply, ApiError> {
        w.execute(&caller(who), call, true).reply
    }

    #[test]
    fn paginate_both_orders() {
        let items: Vec<(String, u32)> = (0..7).map(|i| (format!("{i:02}"), i)).collect();
        let (p, n) = paginate(items.clone(), true, None, 3);
        assert_eq!(p, vec![0, 1, 2]);
        let (p, n) = paginate(items.clone(), true, n.as_deref(), 3);
        assert_eq!(p, vec![3, 4, 5]);
        let (p, n) = paginate(items.clone(), true, n.as_deref(), 3);
        assert_eq!((p, n), (vec![6], None));
        let (p, n) = paginate(items.clone(), false, None, 4);
        assert_eq!(p, vec![6, 5, 4, 3]);
        let (p, n) = paginate(items, false, n.as_deref(), 4);
        assert_eq!((p, n), (vec![2, 1, 0], None));
    }

    #[test]
    fn transfer_accept_lifecycle() {
        let mut w = seeded(vec![cert(1, "INACTIVE")]);
        let r = run(
            &mut w,
            A,
            Call::Transfer {
                id: id(1),
                target: B.into(),
                message: Some("hi".into()),
            },
        )
        .unwrap();
        assert_eq!(
            r,
            Reply::Json(json!({"transferredCertificateArn": cert_arn("us-east-1", B, &id(1))}))
        );
        // B sees it
        assert!(run(&mut w, B, Call::Describe { id: id(1) }).is_ok());
        // second transfer: conflict
        let e = run(
            &mut w,
            A,
            Call::Transfer {
                id: id(1),
                target: B.into(),
                message: None,
            },
        )
        .unwrap_err();
        assert_eq!(e.status, 409);
        // A cannot accept
        let e = run(
            &mut w,
            A,
            Call::Accept {
                id: id(1),
                set_as_active: false,
            },
        )
        .unwrap_err();
        assert_eq!(e.status, 404);
        run(
            &mut w,
            B,
            Call::Accept {
                id: id(1),
                set_as_active: true,
            },
        )
        .unwrap();
        let dump = w.dump();
        let (acct, c) = dump.find(&id(1)).unwrap();
        assert_eq!(acct.account, B);
        assert_eq!(c.status, "ACTIVE");
        assert_eq!(c.previous_owner.as_deref(), Some(A));
        assert_eq!(
            run(&mut w, A, Call::Describe { id: id(1) })
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            run(&mut w, A, Call::Cancel { id: id(1) })
                .unwrap_err()
                .status,
            410
        );
        let e = run(
            &mut w,
            B,
            Call::Accept {
                id: id(1),
                set_as_active: false,
            },
        )
        .unwrap_err();
        assert_eq!(e.status, 410);
    }

    #[test]
    fn seed_pending_and_reject() {
        let mut c = cert(2, "PENDING_TRANSFER");
        c.pending_target = Some(B.into());
        let mut w = seeded(vec![c]);
        run(
            &mut w,
            B,
            Call::Reject {
                id: id(2),
                reason: Some("no".into()),
            },
        )
        .unwrap();
        let dump = w.dump();
        let (_, c) = dump.find(&id(2)).unwrap();
        assert_eq!(c.status, "INACTIVE");
        assert_eq!(c.reject_reason.as_deref(), Some("no"));
        assert_eq!(c.pending_target, None);
        assert_eq!(
            run(&mut w, A, Call::Cancel { id: id(2) })
                .unwrap_err()
                .status,
            400
        );
    }
}
