//! The simulated IoT data of every (account, region) and the semantics of
//! each operation on it: [`World::execute`] runs one validated [`Call`].
//!
//! Input formats are checked by [`crate::routes`] before a [`Call`] reaches the
//! world; the world checks everything that depends on state. Answers are
//! serde structs named after the API's output shapes. One file per concept:
//! `call` (the requests), `certificates`, `transfers`, `attachments`
//! (policies and things on a certificate), `paging` (markers shared by every
//! listing), `seed` (seeding and the state dump); the fleet registry
//! (policies, things, groups) is [`crate::registry`].

mod attachments;
mod call;
mod certificates;
mod paging;
mod seed;
mod transfers;

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::behaviour::Behaviour;
use crate::errors::ApiError;
use crate::registry::{CaCert, Group, Policy, Thing, ThingType};

pub use attachments::MAX_POLICIES_PER_TARGET;
pub(crate) use attachments::{ListAttachedPoliciesResponse, PolicyNameAndArn};
pub use call::{Call, Caller, ThingFilter};
pub(crate) use certificates::Cert;
pub(crate) use paging::hex_key;
pub use paging::Page;

/// A successful answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with an empty body.
    Empty,
}

impl Reply {
    /// 200 with `shape` (an output shape of the API) as the JSON body.
    pub(crate) fn of(shape: &impl Serialize) -> Reply {
        // string keys and plain values only: serializing cannot fail
        Reply::Json(serde_json::to_value(shape).expect("an output shape serializes"))
    }
}

/// What a call did.
#[derive(Debug)]
pub struct Outcome {
    /// The answer.
    pub reply: Result<Reply, ApiError>,
    /// Id of the certificate whose TransferCertificate took effect.
    pub transferred: Option<String>,
}

/// Everything of one (account, region).
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
    /// Fleet indexing.
    pub(crate) index: crate::fleet_index::AccountIndex,
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
            } => self.list_attached_policies(caller, &target, recursive, &page, instant),
            Call::ListPrincipalPolicies { principal, page } => {
                self.list_attached_policies(caller, &principal, false, &page, instant)
            }
            Call::AttachPolicy { policy, target } => self.attach_policy(caller, &policy, &target),
            Call::DetachPolicy { policy, target } => {
                self.detach_policy(caller, &policy, &target, rules, instant)
            }
            Call::ListPrincipalThings { principal, page } => {
                self.list_principal_things(caller, &principal, &page, instant)
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
            call @ (Call::SearchIndex { .. }
            | Call::GetIndexingConfiguration
            | Call::UpdateIndexingConfiguration { .. }) => self.fleet_index_call(caller, call),
            other => self.registry_call(caller, other, now),
        };
        Outcome { reply, transferred }
    }
}
