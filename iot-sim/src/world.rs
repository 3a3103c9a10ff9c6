//! The simulated IoT data (certificates, policy and thing attachments, pending
//! transfers) of every (account, region), and the semantics of each operation.
//!
//! Input formats are checked by [`crate::routes`] before a [`Call`] reaches the
//! world; the world checks everything that depends on state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::behaviour::{Behaviour, OutgoingArnAccount, SourceAfterAccept};
use crate::config::{Seed, SeedCertificate};
use crate::errors::ApiError;
use crate::registry::{CaCert, Group, Policy, Thing, ThingType};
use crate::state::{CertState, StateDump};
use crate::validate;

/// Most policies AWS IoT lets one target (certificate or thing group) have
/// attached ("Maximum number of policies attached to a certificate or thing group").
pub const MAX_POLICIES_PER_TARGET: usize = 10;

/// A resolved policy target of the caller's account.
enum Target {
    Cert(String),
    Group(String),
}

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
    ListAttachedPolicies {
        target: String,
        recursive: bool,
        page: Page,
    },
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
    /// CreatePolicy.
    CreatePolicy { name: String, document: String },
    /// GetPolicy.
    GetPolicy { name: String },
    /// ListPolicies.
    ListPolicies { page: Page },
    /// CreateThing.
    CreateThing {
        name: String,
        thing_type: Option<String>,
        attributes: BTreeMap<String, String>,
    },
    /// DescribeThing.
    DescribeThing { name: String },
    /// ListThings.
    ListThings { filter: ThingFilter, page: Page },
    /// ListThingPrincipals.
    ListThingPrincipals { name: String, page: Page },
    /// CreateThingType.
    CreateThingType {
        name: String,
        description: Option<String>,
        searchable_attributes: Vec<String>,
    },
    /// DescribeThingType.
    DescribeThingType { name: String },
    /// CreateThingGroup.
    CreateThingGroup {
        name: String,
        parent: Option<String>,
        description: Option<String>,
        attributes: BTreeMap<String, String>,
    },
    /// DescribeThingGroup.
    DescribeThingGroup { name: String },
    /// AddThingToThingGroup (names resolved from names or ARNs).
    AddThingToThingGroup { group: String, thing: String },
    /// ListThingGroupsForThing.
    ListThingGroupsForThing { name: String, page: Page },
    /// ListThingsInThingGroup.
    ListThingsInThingGroup {
        name: String,
        recursive: bool,
        page: Page,
    },
    /// ListCertificatesByCA.
    ListCertificatesByCa { ca_id: String, page: Page },
    /// DescribeEndpoint.
    DescribeEndpoint { endpoint_type: Option<String> },
    /// RegisterCertificateWithoutCA.
    RegisterWithoutCa { pem: String, status: String },
}

/// The filters of ListThings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThingFilter {
    /// `thingTypeName`.
    pub thing_type: Option<String>,
    /// `attributeName`.
    pub attribute_name: Option<String>,
    /// `attributeValue`.
    pub attribute_value: Option<String>,
    /// `usePrefixAttributeValue`.
    pub prefix: bool,
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
            Call::CreatePolicy { name, .. } | Call::GetPolicy { name } => {
                policy_arn(&caller.region, &caller.account, name)
            }
            Call::CreateThing { name, .. }
            | Call::DescribeThing { name }
            | Call::ListThingPrincipals { name, .. }
            | Call::ListThingGroupsForThing { name, .. } => {
                thing_arn(&caller.region, &caller.account, name)
            }
            Call::CreateThingType { name, .. } | Call::DescribeThingType { name } => {
                crate::registry::thing_type_arn(&caller.region, &caller.account, name)
            }
            Call::CreateThingGroup { name, .. }
            | Call::DescribeThingGroup { name }
            | Call::ListThingsInThingGroup { name, .. }
            | Call::AddThingToThingGroup { group: name, .. } => {
                crate::registry::group_arn(&caller.region, &caller.account, name)
            }
            Call::ListCertificatesByCa { ca_id, .. } => {
                crate::registry::ca_arn(&caller.region, &caller.account, ca_id)
            }
            Call::ListCertificates { .. }
            | Call::ListOutgoing { .. }
            | Call::ListPolicies { .. }
            | Call::ListThings { .. }
            | Call::DescribeEndpoint { .. }
            | Call::RegisterWithoutCa { .. } => "*".to_string(),
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

/// One certificate as stored in its owner's account.
#[derive(Clone, Debug)]
pub(crate) struct Cert {
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
    pub(crate) ca_certificate_id: Option<String>,
    pub(crate) mode: String,
    pub(crate) pem: String,
    /// Detached policies that still count as attached until the instant.
    lingering_policies: BTreeMap<String, Instant>,
    /// Detached things that still count as attached until the instant.
    lingering_things: BTreeMap<String, Instant>,
}

/// `names` plus the lingering ones whose window has not passed.
fn effective(
    names: &BTreeSet<String>,
    lingering: &BTreeMap<String, Instant>,
    now: Instant,
) -> BTreeSet<String> {
    let mut all = names.clone();
    all.extend(
        lingering
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(n, _)| n.clone()),
    );
    all
}

impl Cert {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Attached policies, detached ones still propagating included.
    pub(crate) fn effective_policies(&self, now: Instant) -> BTreeSet<String> {
        effective(&self.policies, &self.lingering_policies, now)
    }

    /// Attached things, detached ones still propagating included.
    pub(crate) fn effective_things(&self, now: Instant) -> BTreeSet<String> {
        effective(&self.things, &self.lingering_things, now)
    }

    pub(crate) fn has_thing(&self, thing: &str) -> bool {
        self.things.contains(thing)
    }

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
        if let Some(ca) = &self.ca_certificate_id {
            d.insert("caCertificateId".into(), json!(ca));
        }
        d.insert("certificatePem".into(), json!(self.pem));
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
        d.insert("certificateMode".into(), json!(self.mode));
        json!({ "certificateDescription": Value::Object(d) })
    }

    fn summary(&self) -> Value {
        json!({
            "certificateArn": self.arn(),
            "certificateId": self.id,
            "status": self.status,
            "certificateMode": self.mode,
            "creationDate": self.creation,
        })
    }

    fn outgoing(&self, arn_account: OutgoingArnAccount) -> Value {
        let mut m = Map::new();
        let account = match (arn_account, &self.pending_target) {
            (OutgoingArnAccount::Target, Some(t)) => t.as_str(),
            _ => self.owner.as_str(),
        };
        m.insert(
            "certificateArn".into(),
            json!(cert_arn(&self.region, account, &self.id)),
        );
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
            ca_certificate_id: self.ca_certificate_id.clone(),
            certificate_mode: self.mode.clone(),
            creation_date: self.creation,
        }
    }
}

#[derive(Default, Debug, Clone)]
pub(crate) struct AccountData {
    /// Owned certificates by id.
    pub(crate) certs: BTreeMap<String, Cert>,
    /// Incoming pending transfers: certificate id -> source account.
    incoming: BTreeMap<String, String>,
    /// Certificates this account transferred away and that were accepted:
    /// id -> (account that accepted, when).
    tombstones: HashMap<String, (String, Instant)>,
    /// The registry.
    pub(crate) policies: BTreeMap<String, Policy>,
    pub(crate) things: BTreeMap<String, Thing>,
    pub(crate) thing_types: BTreeMap<String, ThingType>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) ca_certs: BTreeMap<String, CaCert>,
}

/// All simulated data. Keys are (region, account).
#[derive(Default, Debug, Clone)]
pub struct World {
    accounts: BTreeMap<(String, String), AccountData>,
    pub(crate) next_seq: u64,
}

/// `arn:aws:iot:REGION:ACCOUNT:cert/ID`.
pub fn cert_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:cert/{id}")
}

/// `arn:aws:iot:REGION:ACCOUNT:thing/NAME`.
pub fn thing_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:thing/{name}")
}

/// `arn:aws:iot:REGION:ACCOUNT:policy/NAME`.
pub fn policy_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:policy/{name}")
}

/// Current time as epoch seconds with millisecond precision.
pub fn now_epoch() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

pub(crate) fn hex_key(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Sorts `items` by key (descending unless `ascending`), starts at `marker`
/// (the key of the first item of the page, inclusive), and returns the page and
/// the marker of the next page.
pub(crate) fn paginate<T>(
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

pub(crate) fn with_marker(mut body: Value, field: &str, next: Option<String>) -> Value {
    if let (Some(n), Some(obj)) = (next, body.as_object_mut()) {
        obj.insert(field.to_string(), json!(n));
    }
    body
}

pub(crate) fn random_uuid() -> String {
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

    pub(crate) fn data(&self, region: &str, account: &str) -> Option<&AccountData> {
        self.accounts.get(&Self::key(region, account))
    }

    pub(crate) fn data_mut(&mut self, region: &str, account: &str) -> Option<&mut AccountData> {
        self.accounts.get_mut(&Self::key(region, account))
    }

    pub(crate) fn data_entry(&mut self, region: &str, account: &str) -> &mut AccountData {
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
    pub fn execute(&mut self, caller: &Caller, call: Call, rules: &Behaviour) -> Outcome {
        let now = now_epoch();
        let instant = Instant::now();
        let mut transferred = None;
        let reply = match call {
            Call::Describe { id } => self.describe(caller, &id, rules, instant),
            Call::Update { id, new_status } => self.update(caller, &id, &new_status, now),
            Call::ListCertificates { page } => self.list_certificates(caller, &page),
            Call::ListOutgoing { page } => self.list_outgoing(caller, &page, rules),
            Call::ListAttachedPolicies {
                target,
                recursive,
                page,
            } => self.list_policies(caller, &target, recursive, &page, instant),
            Call::ListPrincipalPolicies { principal, page } => {
                self.list_policies(caller, &principal, false, &page, instant)
            }
            Call::AttachPolicy { policy, target } => self.attach_policy(caller, &policy, &target),
            Call::DetachPolicy { policy, target } => {
                self.detach_policy(caller, &policy, &target, rules, instant)
            }
            Call::ListPrincipalThings { principal, page } => {
                self.list_things(caller, &principal, &page, instant)
            }
            Call::AttachThing { thing, principal } => self.attach_thing(caller, &thing, &principal),
            Call::DetachThing { thing, principal } => {
                self.detach_thing(caller, &thing, &principal, rules, instant)
            }
            Call::Transfer {
                id,
                target,
                message,
            } => {
                let r = self.transfer(caller, &id, &target, message, rules, now, instant);
                if r.is_ok() {
                    transferred = Some(id);
                }
                r
            }
            Call::Accept { id, set_as_active } => {
                self.accept(caller, &id, set_as_active, rules, now, instant)
            }
            Call::Reject { id, reason } => self.reject(caller, &id, reason, rules, now),
            Call::Cancel { id } => self.cancel(caller, &id, now),
            other => self.registry_call(caller, other, now),
        };
        Outcome { reply, transferred }
    }

    fn describe(
        &self,
        caller: &Caller,
        id: &str,
        rules: &Behaviour,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let data = self.data(&caller.region, &caller.account);
        if let Some(cert) = data.and_then(|d| d.certs.get(id)) {
            return Ok(Reply::Json(cert.description()));
        }
        if let Some(cert) = self.incoming_cert(caller, id) {
            return Ok(Reply::Json(cert.description()));
        }
        let not_found = || ApiError::not_found(format!("The certificate {id} does not exist"));
        // the source after the target accepted: UNCONFIRMED, a switch
        let Some((target, accepted)) = data.and_then(|d| d.tombstones.get(id)) else {
            return Err(not_found());
        };
        match rules.source_after_accept {
            SourceAfterAccept::NotFound => Err(not_found()),
            SourceAfterAccept::AccessDenied => Err(ApiError::access_denied(
                &caller.account,
                "DescribeCertificate",
                &cert_arn(&caller.region, &caller.account, id),
            )),
            SourceAfterAccept::Unauthorized => Err(ApiError::unauthorized(format!(
                "The certificate {id} is owned by another account"
            ))),
            SourceAfterAccept::Visible => {
                let within = rules
                    .source_visible_for
                    .is_none_or(|d| instant.duration_since(*accepted) < d);
                match self
                    .data(&caller.region, target)
                    .and_then(|d| d.certs.get(id))
                {
                    Some(cert) if within => Ok(Reply::Json(cert.description())),
                    _ => Err(not_found()),
                }
            }
        }
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

    pub(crate) fn list_certificates(
        &self,
        caller: &Caller,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        self.list_certificates_where(caller, page, |_| true)
    }

    /// ListCertificates / ListCertificatesByCA: owned and incoming certificates.
    pub(crate) fn list_certificates_where(
        &self,
        caller: &Caller,
        page: &Page,
        keep: impl Fn(&Cert) -> bool,
    ) -> Result<Reply, ApiError> {
        let mut items: Vec<(String, Value)> = Vec::new();
        if let Some(d) = self.data(&caller.region, &caller.account) {
            for cert in d.certs.values().filter(|c| keep(c)) {
                items.push((cert.list_key(), cert.summary()));
            }
            for id in d.incoming.keys() {
                if let Some(cert) = self.incoming_cert(caller, id) {
                    if !d.certs.contains_key(id) && keep(cert) {
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

    fn list_outgoing(
        &self,
        caller: &Caller,
        page: &Page,
        rules: &Behaviour,
    ) -> Result<Reply, ApiError> {
        let items: Vec<(String, Value)> = self
            .data(&caller.region, &caller.account)
            .map(|d| {
                d.certs
                    .values()
                    .filter(|c| c.pending_target.is_some())
                    .map(|c| (c.list_key(), c.outgoing(rules.outgoing_arn_account)))
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

    /// A policy target: the caller's certificate or thing group.
    fn target(&self, caller: &Caller, target: &str) -> Result<Target, ApiError> {
        if let Some((region, account, name)) = validate::parse_group_arn(target) {
            if region != caller.region
                || account != caller.account
                || !self
                    .data(&caller.region, &caller.account)
                    .is_some_and(|d| d.groups.contains_key(&name))
            {
                return Err(ApiError::not_found(format!(
                    "The thing group given as target does not exist: {target}"
                )));
            }
            return Ok(Target::Group(name));
        }
        let (region, account, id) = validate::parse_cert_arn(target).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "Invalid target {target:?}: expected a certificate or thing group ARN"
            ))
        })?;
        if region != caller.region
            || account != caller.account
            || !self
                .data(&caller.region, &caller.account)
                .is_some_and(|d| d.certs.contains_key(&id))
        {
            return Err(ApiError::not_found(format!(
                "The certificate given in the principal does not exist: {target}"
            )));
        }
        Ok(Target::Cert(id))
    }

    fn list_policies(
        &mut self,
        caller: &Caller,
        target: &str,
        recursive: bool,
        page: &Page,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let names: BTreeSet<String> = match self.target(caller, target)? {
            Target::Cert(_) => self.principal(caller, target)?.effective_policies(instant),
            Target::Group(name) => {
                let d = self
                    .data(&caller.region, &caller.account)
                    .expect("the group exists");
                let mut names = BTreeSet::new();
                // `recursive`: the policies inherited from the parents too
                for g in crate::registry::ancestry(d, &name, recursive) {
                    names.extend(d.groups[&g].policies.iter().cloned());
                }
                names
            }
        };
        let items: Vec<(String, Value)> = names
            .iter()
            .map(|p| {
                (
                    hex_key(p),
                    json!({ "policyName": p, "policyArn": policy_arn(&caller.region, &caller.account, p) }),
                )
            })
            .collect();
        let (policies, next) = paginate(items, true, page.marker.as_deref(), page.size);
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
        let target = self.target(caller, target)?;
        let d = self
            .data_mut(&caller.region, &caller.account)
            .expect("the target exists");
        if !d.policies.contains_key(policy) {
            return Err(ApiError::not_found(format!(
                "The policy {policy} does not exist"
            )));
        }
        let set = match &target {
            Target::Cert(id) => {
                let cert = d.certs.get_mut(id).expect("the target exists");
                cert.lingering_policies.remove(policy);
                &mut cert.policies
            }
            Target::Group(name) => &mut d.groups.get_mut(name).expect("exists").policies,
        };
        if !set.contains(policy) {
            if set.len() >= MAX_POLICIES_PER_TARGET {
                return Err(ApiError::limit_exceeded(format!(
                    "A limit has been exceeded: at most {MAX_POLICIES_PER_TARGET} policies can be attached to a target"
                )));
            }
            set.insert(policy.to_string());
        }
        Ok(Reply::Empty)
    }

    fn detach_policy(
        &mut self,
        caller: &Caller,
        policy: &str,
        target: &str,
        rules: &Behaviour,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let target = self.target(caller, target)?;
        let d = self
            .data_mut(&caller.region, &caller.account)
            .expect("the target exists");
        if !d.policies.contains_key(policy) {
            return Err(ApiError::not_found(format!(
                "The policy {policy} does not exist"
            )));
        }
        match target {
            Target::Cert(id) => {
                let cert = d.certs.get_mut(&id).expect("the target exists");
                if cert.policies.remove(policy) && !rules.propagation_delay.is_zero() {
                    cert.lingering_policies
                        .insert(policy.to_string(), instant + rules.propagation_delay);
                }
            }
            Target::Group(name) => {
                d.groups
                    .get_mut(&name)
                    .expect("exists")
                    .policies
                    .remove(policy);
            }
        }
        Ok(Reply::Empty)
    }

    fn list_things(
        &mut self,
        caller: &Caller,
        principal: &str,
        page: &Page,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let cert = self.principal(caller, principal)?;
        let items: Vec<(String, Value)> = cert
            .effective_things(instant)
            .iter()
            .map(|t| (hex_key(t), json!(t)))
            .collect();
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
        let known = self
            .data(&caller.region, &caller.account)
            .is_some_and(|d| d.things.contains_key(thing));
        let cert = self.principal_mut(caller, principal)?;
        if !known {
            return Err(ApiError::not_found(format!(
                "The thing {thing} does not exist"
            )));
        }
        cert.lingering_things.remove(thing);
        cert.things.insert(thing.to_string());
        Ok(Reply::Json(json!({})))
    }

    fn detach_thing(
        &mut self,
        caller: &Caller,
        thing: &str,
        principal: &str,
        rules: &Behaviour,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let known = self
            .data(&caller.region, &caller.account)
            .is_some_and(|d| d.things.contains_key(thing));
        let cert = self.principal_mut(caller, principal)?;
        if !known {
            return Err(ApiError::not_found(format!(
                "The thing {thing} does not exist"
            )));
        }
        if cert.things.remove(thing) && !rules.propagation_delay.is_zero() {
            cert.lingering_things
                .insert(thing.to_string(), instant + rules.propagation_delay);
        }
        Ok(Reply::Json(json!({})))
    }

    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        caller: &Caller,
        id: &str,
        target: &str,
        message: Option<String>,
        rules: &Behaviour,
        now: f64,
        instant: Instant,
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
            "PENDING_TRANSFER" => return Err(rules.pending_transfer_answer.error()),
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
        if !cert.effective_policies(instant).is_empty() {
            return Err(ApiError::transfer_conflict(
                "The certificate cannot be transferred: authorization policies are still attached",
            ));
        }
        if rules.things_block_transfer && !cert.effective_things(instant).is_empty() {
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
    fn pending_for_target(
        &self,
        caller: &Caller,
        id: &str,
        rules: &Behaviour,
    ) -> Result<String, ApiError> {
        if let Some(cert) = self.incoming_cert(caller, id) {
            return Ok(cert.owner.clone());
        }
        if let Some(cert) = self
            .data(&caller.region, &caller.account)
            .and_then(|d| d.certs.get(id))
        {
            if cert.accepted_here() {
                return Err(rules.completed_transfer_answer.error());
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
        rules: &Behaviour,
        now: f64,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let source = self.pending_for_target(caller, id, rules)?;
        let src = self
            .data_mut(&caller.region, &source)
            .expect("source account exists");
        let mut cert = src.certs.remove(id).expect("pending certificate exists");
        src.tombstones
            .insert(id.to_string(), (caller.account.clone(), instant));
        cert.owner = caller.account.clone();
        cert.previous_owner = Some(source);
        cert.pending_target = None;
        cert.status = if set_as_active { "ACTIVE" } else { "INACTIVE" }.to_string();
        cert.accept_date = Some(now);
        cert.policies.clear();
        cert.things.clear();
        cert.lingering_policies.clear();
        cert.lingering_things.clear();
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
        rules: &Behaviour,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let source = self.pending_for_target(caller, id, rules)?;
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

    /// RegisterCertificateWithoutCA: the id is the SHA-256 of the DER bytes;
    /// the same certificate may live in several accounts at once.
    pub(crate) fn register_without_ca(
        &mut self,
        caller: &Caller,
        pem: &str,
        status: &str,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let id = crate::pem::certificate_id_of(pem).map_err(ApiError::certificate_validation)?;
        let (region, account) = (caller.region.clone(), caller.account.clone());
        let arn = cert_arn(&region, &account, &id);
        if self
            .data(&region, &account)
            .is_some_and(|d| d.certs.contains_key(&id))
            || self.incoming_cert(caller, &id).is_some()
        {
            return Err(ApiError::already_exists(format!(
                "The certificate is already provisioned or registered: {arn}"
            )));
        }
        self.next_seq += 1;
        let cert = Cert {
            id: id.clone(),
            owner: account.clone(),
            region: region.clone(),
            status: status.to_string(),
            seq: self.next_seq,
            creation: now,
            last_modified: now,
            customer_version: 1,
            generation_id: random_uuid(),
            previous_owner: None,
            pending_target: None,
            transfer_message: None,
            transfer_date: None,
            accept_date: None,
            reject_date: None,
            reject_reason: None,
            policies: BTreeSet::new(),
            things: BTreeSet::new(),
            ca_certificate_id: None,
            mode: "SNI_ONLY".to_string(),
            pem: pem.to_string(),
            lingering_policies: BTreeMap::new(),
            lingering_things: BTreeMap::new(),
        };
        let d = self.data_entry(&region, &account);
        d.tombstones.remove(&id);
        d.certs.insert(id.clone(), cert);
        Ok(Reply::Json(
            json!({ "certificateArn": arn, "certificateId": id }),
        ))
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

    /// Loads seed data; the whole seed is checked before anything changes
    /// (it is applied to a copy that replaces the world only if all went well).
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
        let mut next = self.clone();
        next.apply_seed(seed)?;
        *self = next;
        Ok(())
    }

    fn apply_seed(&mut self, seed: &Seed) -> Result<(), String> {
        let now = now_epoch();
        let region = &seed.region;
        for (account, data) in &seed.accounts {
            self.seed_registry(region, account, data, now)?;
            for c in &data.certificates {
                self.forget(region, account, &c.id);
                if let Some(target) = &c.pending_target {
                    if self
                        .data(region, target)
                        .is_some_and(|d| d.certs.contains_key(&c.id))
                    {
                        return Err(format!(
                            "certificate {} is seeded as pending transfer to {target}, which already owns it",
                            c.id
                        ));
                    }
                }
                self.next_seq += 1;
                let creation = c.creation_date.unwrap_or(now);
                let cert = Cert {
                    id: c.id.clone(),
                    owner: account.clone(),
                    region: region.clone(),
                    status: c.status.clone(),
                    seq: self.next_seq,
                    creation,
                    last_modified: creation.max(now),
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
                    ca_certificate_id: c.ca_certificate_id.clone(),
                    mode: c
                        .certificate_mode
                        .clone()
                        .unwrap_or_else(|| "DEFAULT".to_string()),
                    pem: c
                        .pem
                        .clone()
                        .unwrap_or_else(|| crate::pem::generated_pem(&c.id)),
                    lingering_policies: BTreeMap::new(),
                    lingering_things: BTreeMap::new(),
                };
                // policies and things a certificate names exist from now on
                for p in &c.policies {
                    self.ensure_policy(region, account, p, None, now);
                }
                for t in &c.things {
                    self.ensure_thing(region, account, t);
                }
                if let Some(ca) = &c.ca_certificate_id {
                    if !validate::is_certificate_id(ca) {
                        return Err(format!("invalid ca_certificate_id {ca:?} of {}", c.id));
                    }
                }
                if let Some(pem) = &c.pem {
                    crate::pem::der_of(pem).map_err(|e| format!("pem of {}: {e}", c.id))?;
                }
                if !matches!(cert.mode.as_str(), "DEFAULT" | "SNI_ONLY") {
                    return Err(format!(
                        "invalid certificate_mode {:?} of {}",
                        cert.mode, c.id
                    ));
                }
                let d = self.data_entry(region, account);
                d.certs.insert(c.id.clone(), cert);
                if let Some(target) = &c.pending_target {
                    self.data_entry(region, target)
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
                .map(|((region, account), d)| {
                    let mut a = crate::registry::dump_registry(region, account, d);
                    a.certificates = d.certs.values().map(Cert::dump).collect();
                    a
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
                ..Default::default()
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
        w.execute(&caller(who), call, &Behaviour::default()).reply
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
