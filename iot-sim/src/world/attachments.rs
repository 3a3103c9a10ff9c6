//! What is attached to a certificate or thing group: policies (AttachPolicy,
//! DetachPolicy / DetachPrincipalPolicy, ListAttachedPolicies,
//! ListPrincipalPolicies) and things (AttachThingPrincipal,
//! DetachThingPrincipal, ListPrincipalThings).
//!
//! Principals and targets are ARNs of the caller's own certificates (or
//! thing groups, as policy targets). A detach within the propagation delay
//! leaves the item lingering: it still counts as attached until then.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::Serialize;

use super::certificates::Cert;
use super::groups::ancestry;
use super::paging::{hex_key, Page};
use super::things::principal_type;
use super::{policy_arn, Caller, Reply, World};
use crate::behaviour::Behaviour;
use crate::errors::ApiError;
use crate::validate;

/// Most policies AWS IoT lets one certificate have attached (and, unless the
/// `policies_per_group` switch says 2, one thing group).
pub const MAX_POLICIES_PER_TARGET: usize = 10;

/// A resolved policy target of the caller's account.
enum Target {
    Cert(String),
    Group(String),
}

/// The API's `Policy` shape: a policy's name and ARN, as the policy
/// listings list it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyNameAndArn<'a> {
    pub(crate) policy_name: &'a str,
    pub(crate) policy_arn: String,
}

/// ListAttachedPoliciesResponse (ListPrincipalPoliciesResponse and
/// ListPoliciesResponse have the same members).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListAttachedPoliciesResponse<'a> {
    pub(crate) policies: Vec<PolicyNameAndArn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_marker: Option<String>,
}

/// ListPrincipalThingsResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListPrincipalThingsResponse<'a> {
    things: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// PrincipalThingObject.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PrincipalThingObject<'a> {
    thing_name: &'a str,
    thing_principal_type: &'static str,
}

/// ListPrincipalThingsV2Response.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListPrincipalThingsV2Response<'a> {
    principal_thing_objects: Vec<PrincipalThingObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// AttachThingPrincipalResponse: an empty object.
#[derive(Serialize)]
struct AttachThingPrincipalResponse {}

/// DetachThingPrincipalResponse: an empty object.
#[derive(Serialize)]
struct DetachThingPrincipalResponse {}

impl World {
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

    /// ListAttachedPolicies / ListPrincipalPolicies.
    pub(super) fn list_attached_policies(
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
                for g in ancestry(d, &name, recursive) {
                    names.extend(d.groups[&g].policies.iter().cloned());
                }
                names
            }
        };
        let items: Vec<(String, PolicyNameAndArn<'_>)> = names
            .iter()
            .map(|p| {
                let policy = PolicyNameAndArn {
                    policy_name: p,
                    policy_arn: policy_arn(&caller.region, &caller.account, p),
                };
                (hex_key(p), policy)
            })
            .collect();
        let (policies, next_marker) = page.ascending_of(items);
        Ok(Reply::of(&ListAttachedPoliciesResponse {
            policies,
            next_marker,
        }))
    }

    /// AttachPolicy: a no-op if attached already; at most 10 policies on a certificate, and
    /// on a thing group `rules.policies_per_group`.
    pub(super) fn attach_policy(
        &mut self,
        caller: &Caller,
        policy: &str,
        target: &str,
        rules: &Behaviour,
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
        let (set, limit, kind) = match &target {
            Target::Cert(id) => {
                let cert = d.certs.get_mut(id).expect("the target exists");
                cert.lingering_policies.remove(policy);
                (&mut cert.policies, MAX_POLICIES_PER_TARGET, "certificate")
            }
            Target::Group(name) => (
                &mut d.groups.get_mut(name).expect("exists").policies,
                rules.policies_per_group,
                "thing group",
            ),
        };
        if !set.contains(policy) {
            if set.len() >= limit {
                return Err(ApiError::limit_exceeded(format!(
                    "A limit has been exceeded: at most {limit} policies can be attached to a {kind}"
                )));
            }
            set.insert(policy.to_string());
        }
        Ok(Reply::Empty)
    }

    /// DetachPolicy / DetachPrincipalPolicy: succeeds if not attached.
    pub(super) fn detach_policy(
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

    /// ListPrincipalThings.
    pub(super) fn list_principal_things(
        &mut self,
        caller: &Caller,
        principal: &str,
        page: &Page,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let names = self.principal(caller, principal)?.effective_things(instant);
        let items: Vec<(String, &str)> = names.iter().map(|t| (hex_key(t), t.as_str())).collect();
        let (things, next_token) = page.ascending_of(items);
        Ok(Reply::of(&ListPrincipalThingsResponse {
            things,
            next_token,
        }))
    }

    /// ListPrincipalThingsV2: each thing with its `thingPrincipalType`, optionally only
    /// those of one type.
    pub(super) fn list_principal_things_v2(
        &mut self,
        caller: &Caller,
        principal: &str,
        only: Option<bool>,
        page: &Page,
        instant: Instant,
    ) -> Result<Reply, ApiError> {
        let cert = self.principal(caller, principal)?;
        let exclusive = cert.exclusive_thing().map(str::to_string);
        let names = cert.effective_things(instant);
        let items: Vec<(String, PrincipalThingObject<'_>)> = names
            .iter()
            .map(|t| (t, exclusive.as_deref() == Some(t.as_str())))
            .filter(|(_, e)| only.is_none_or(|o| o == *e))
            .map(|(t, e)| {
                let object = PrincipalThingObject {
                    thing_name: t,
                    thing_principal_type: principal_type(e),
                };
                (hex_key(t), object)
            })
            .collect();
        let (principal_thing_objects, next_token) = page.ascending_of(items);
        Ok(Reply::of(&ListPrincipalThingsV2Response {
            principal_thing_objects,
            next_token,
        }))
    }

    /// AttachThingPrincipal. An exclusive attachment makes the thing the certificate's only
    /// one: refused while another is attached, and it refuses any other afterwards.
    pub(super) fn attach_thing(
        &mut self,
        caller: &Caller,
        thing: &str,
        principal: &str,
        exclusive: bool,
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
        if let Some(only) = cert.exclusive.as_deref().filter(|t| *t != thing) {
            return Err(ApiError::invalid_request(format!(
                "The principal is attached exclusively to thing {only}: no other thing can be \
                 attached to it"
            )));
        }
        if exclusive {
            if let Some(other) = cert.things.iter().find(|t| *t != thing) {
                return Err(ApiError::invalid_request(format!(
                    "The principal is attached to thing {other}: it cannot be attached \
                     exclusively to {thing}"
                )));
            }
        }
        cert.lingering_things.remove(thing);
        cert.things.insert(thing.to_string());
        cert.exclusive = exclusive.then(|| thing.to_string());
        Ok(Reply::of(&AttachThingPrincipalResponse {}))
    }

    /// DetachThingPrincipal: succeeds if not attached.
    pub(super) fn detach_thing(
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
        if cert.exclusive.as_deref() == Some(thing) {
            cert.exclusive = None;
        }
        if cert.things.remove(thing) && !rules.propagation_delay.is_zero() {
            cert.lingering_things
                .insert(thing.to_string(), instant + rules.propagation_delay);
        }
        Ok(Reply::of(&DetachThingPrincipalResponse {}))
    }
}
