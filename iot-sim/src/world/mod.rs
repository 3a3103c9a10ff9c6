//! The simulated IoT data of every (account, region) and the semantics of
//! each operation on it: [`World::execute`] runs one validated [`Call`].
//!
//! Input formats are checked by [`crate::routes`] before a [`Call`] reaches the
//! world; the world checks everything that depends on state. Answers are
//! serde structs named after the API's output shapes. One file per concept:
//! `call` (the requests), `certificates`, `transfers`, `attachments`
//! (policies and things on a certificate), `paging` (markers shared by every
//! listing), `seed` (seeding and the state dump), and the fleet registry by
//! resource: `policies`, `things`, `thing_types`, `groups`, `ca_certificates`,
//! `endpoints` (device endpoints and role aliases).

mod attachments;
mod ca_certificates;
mod call;
mod certificates;
mod clock;
mod endpoints;
mod groups;
mod paging;
mod policies;
mod seed;
mod thing_types;
mod things;
mod transfers;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::behaviour::Behaviour;
use crate::errors::ApiError;
use ca_certificates::CaCert;
use groups::Group;
use policies::Policy;
use thing_types::ThingType;
use things::Thing;

pub use crate::arn::{cert_arn, policy_arn, thing_arn};
pub use attachments::MAX_POLICIES_PER_TARGET;
pub use call::{Call, Caller};
pub(crate) use certificates::Cert;
pub(crate) use clock::{now_millis, Timer, Timers};
pub use endpoints::data_endpoint;
pub(crate) use groups::{ancestry, descendants};
pub use groups::{GroupDefinition, MAX_GROUPS_PER_THING, MAX_GROUP_DEPTH};
pub(crate) use paging::hex_key;
pub use paging::Page;
pub use thing_types::{ThingTypeDefinition, MAX_SEARCHABLE_ATTRIBUTES};
pub use things::{ThingFilter, MAX_ATTRIBUTES_TYPED, MAX_ATTRIBUTES_UNTYPED};

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
    /// Jobs by id.
    pub(crate) jobs: BTreeMap<String, crate::jobs::Job>,
    /// Role aliases by name.
    pub(crate) role_aliases: BTreeSet<String>,
}

/// All simulated data. Keys are (region, account).
#[derive(Default, Debug, Clone)]
pub struct World {
    accounts: BTreeMap<(String, String), AccountData>,
    pub(crate) next_seq: u64,
    /// What happens later by itself (rollouts, devices, timeouts).
    pub(crate) timers: Timers,
    /// The simulated devices.
    pub(crate) devices: crate::devices::Devices,
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

    /// The accounts the world knows in `region`.
    pub(crate) fn accounts_of(&self, region: &str) -> Vec<String> {
        self.accounts
            .keys()
            .filter(|(r, _)| r == region)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Every account of `region`, with its data.
    pub(crate) fn accounts_in<'a>(
        &'a self,
        region: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a AccountData)> + 'a {
        self.accounts
            .iter()
            .filter(move |((r, _), _)| r == region)
            .map(|((_, a), d)| (a.as_str(), d))
    }

    /// Runs one validated call for `caller`.
    pub fn execute(&mut self, caller: &Caller, call: Call, rules: &Behaviour) -> Outcome {
        let now_ms = now_millis();
        // What was due happens first, at its own time.
        self.advance(now_ms);
        let now = now_ms as f64 / 1000.0;
        let instant = Instant::now();
        let touch = self.touches(caller, &call);
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
            Call::AttachPolicy { policy, target } => {
                self.attach_policy(caller, &policy, &target, rules)
            }
            Call::DetachPolicy { policy, target } => {
                self.detach_policy(caller, &policy, &target, rules, instant)
            }
            Call::ListPrincipalThings { principal, page } => {
                self.list_principal_things(caller, &principal, &page, instant)
            }
            Call::ListPrincipalThingsV2 {
                principal,
                only,
                page,
            } => self.list_principal_things_v2(caller, &principal, only, &page, instant),
            Call::AttachThing {
                thing,
                principal,
                exclusive,
            } => self.attach_thing(caller, &thing, &principal, exclusive),
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
            | Call::UpdateIndexingConfiguration { .. }
            | Call::GetThingConnectivityData { .. }) => self.fleet_index_call(caller, call),
            call @ (Call::CreateJob(_)
            | Call::DescribeJob { .. }
            | Call::GetJobDocument { .. }
            | Call::ListJobExecutionsForJob { .. }
            | Call::ListJobExecutionsForThing { .. }
            | Call::DescribeJobExecution { .. }
            | Call::CancelJob { .. }
            | Call::DeleteJob { .. }) => self.job_call(caller, call, now_ms),
            Call::RegisterWithoutCa { pem, status } => {
                self.register_without_ca(caller, &pem, &status, rules, now)
            }
            Call::ListCertificatesByCa { ca_id, page } => {
                self.list_certificates_where(caller, &page, |c| {
                    c.ca_certificate_id.as_deref() == Some(ca_id.as_str())
                })
            }
            Call::DescribeCaCertificate { id } => self.describe_ca_certificate(caller, &id),
            Call::CreatePolicy { name, document } => {
                self.create_policy(caller, &name, &document, now)
            }
            Call::GetPolicy { name } => self.get_policy(caller, &name),
            Call::ListPolicies { page } => self.list_policies(caller, &page),
            Call::CreateThing {
                name,
                thing_type,
                attributes,
            } => self.create_thing(caller, &name, thing_type, attributes),
            Call::DescribeThing { name } => self.describe_thing(caller, &name),
            Call::ListThings { filter, page } => self.list_things(caller, &filter, &page),
            Call::ListThingPrincipals { name, page } => {
                self.list_thing_principals(caller, &name, &page)
            }
            Call::ListThingPrincipalsV2 { name, only, page } => {
                self.list_thing_principals_v2(caller, &name, only, &page)
            }
            Call::CreateThingType { name, definition } => {
                self.create_thing_type(caller, &name, definition, now)
            }
            Call::DescribeThingType { name } => self.describe_thing_type(caller, &name),
            Call::DeprecateThingType { name, undo } => {
                self.deprecate_thing_type(caller, &name, undo, now)
            }
            Call::CreateThingGroup { name, definition } => {
                self.create_thing_group(caller, &name, definition, now)
            }
            Call::DescribeThingGroup { name } => self.describe_thing_group(caller, &name),
            Call::AddThingToThingGroup {
                group,
                thing,
                override_dynamic,
            } => self.add_thing_to_group(caller, &group, &thing, override_dynamic, now_ms),
            Call::RemoveThingFromThingGroup { group, thing } => {
                self.remove_thing_from_group(caller, &group, &thing, now_ms)
            }
            Call::DeleteThingGroup { name } => self.delete_thing_group(caller, &name, now_ms),
            Call::ListThingGroupsForThing { name, page } => {
                self.list_groups_for_thing(caller, &name, &page)
            }
            Call::ListThingsInThingGroup {
                name,
                recursive,
                page,
            } => self.list_things_in_group(caller, &name, recursive, &page),
            Call::DescribeEndpoint { endpoint_type } => {
                self.describe_endpoint(caller, endpoint_type.as_deref())
            }
            Call::ListRoleAliases { page } => self.list_role_aliases(caller, &page),
        };
        if let Ok(r) = &reply {
            self.devices_after(caller, touch, r, now_ms);
        }
        Outcome { reply, transferred }
    }
}
