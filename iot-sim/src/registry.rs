//! The fleet registry of each (account, region): policies with documents,
//! thing types, things, static thing groups, CA certificates, the device
//! data endpoint, and certificate registration without a CA. Replies are
//! serde structs named after the API's output shapes (`DescribeThingResponse`,
//! `GroupNameAndArn`, ...).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::config::{SeedAccount, DEFAULT_POLICY_DOCUMENT};
use crate::errors::ApiError;
use crate::state::{
    AccountState, CaCertState, PolicyState, ThingGroupState, ThingState, ThingTypeState,
};
use crate::validate;
use crate::world::{
    cert_arn, hex_key, policy_arn, random_uuid, thing_arn, AccountData, Call, Caller,
    ListAttachedPoliciesResponse, PolicyNameAndArn, Reply, ThingFilter, World,
};

/// Most static thing groups one thing can be in.
pub const MAX_GROUPS_PER_THING: usize = 10;

/// Deepest static thing-group hierarchy (a root group is depth 1).
pub const MAX_GROUP_DEPTH: usize = 7;

/// A policy and its default version.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) document: String,
    pub(crate) default_version: u64,
    creation: f64,
    generation_id: String,
}

/// A thing.
#[derive(Clone, Debug)]
pub(crate) struct Thing {
    pub(crate) id: String,
    pub(crate) thing_type: Option<String>,
    pub(crate) attributes: BTreeMap<String, String>,
    version: u64,
    pub(crate) groups: BTreeSet<String>,
}

/// A thing type.
#[derive(Clone, Debug)]
pub(crate) struct ThingType {
    id: String,
    description: Option<String>,
    searchable_attributes: Vec<String>,
    creation: f64,
}

/// A static thing group.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    id: String,
    pub(crate) parent: Option<String>,
    description: Option<String>,
    attributes: BTreeMap<String, String>,
    pub(crate) policies: BTreeSet<String>,
    creation: f64,
}

/// A CA certificate.
#[derive(Clone, Debug)]
pub(crate) struct CaCert {
    status: String,
    mode: String,
}

/// `arn:aws:iot:REGION:ACCOUNT:thingtype/NAME`.
pub fn thing_type_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:thingtype/{name}")
}

/// `arn:aws:iot:REGION:ACCOUNT:thinggroup/NAME`.
pub fn group_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:thinggroup/{name}")
}

/// `arn:aws:iot:REGION:ACCOUNT:cacert/ID`.
pub fn ca_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:cacert/{id}")
}

/// The device data endpoint of an account in a region: a stable prefix
/// derived from the account (14 lowercase letters and digits, like AWS's).
pub fn data_endpoint(account: &str, region: &str, endpoint_type: &str) -> Option<String> {
    let digest = crate::pem::sha256_hex(format!("iot-sim endpoint {account}").as_bytes());
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let prefix: String = digest
        .as_bytes()
        .chunks(2)
        .take(14)
        .map(|pair| {
            let v = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("00"), 16).unwrap_or(0);
            ALPHABET[usize::from(v) % ALPHABET.len()] as char
        })
        .collect();
    Some(match endpoint_type {
        "iot:Data-ATS" => format!("{prefix}-ats.iot.{region}.amazonaws.com"),
        "iot:Data" => format!("{prefix}.iot.{region}.amazonaws.com"),
        "iot:CredentialProvider" => format!("{prefix}.credentials.iot.{region}.amazonaws.com"),
        "iot:Jobs" => format!("{prefix}.jobs.iot.{region}.amazonaws.com"),
        _ => return None,
    })
}

/// `name` and, if `recursive`, its ancestors up to the root (nearest first).
pub(crate) fn ancestry(d: &AccountData, name: &str, recursive: bool) -> Vec<String> {
    let mut out = vec![name.to_string()];
    if recursive {
        let mut at = d.groups.get(name).and_then(|g| g.parent.clone());
        while let Some(p) = at {
            at = d.groups.get(&p).and_then(|g| g.parent.clone());
            out.push(p);
        }
    }
    out
}

/// `name` and every group below it.
fn descendants(d: &AccountData, name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from([name.to_string()]);
    loop {
        let more: Vec<String> = d
            .groups
            .iter()
            .filter(|(n, g)| {
                !out.contains(*n) && g.parent.as_ref().is_some_and(|p| out.contains(p))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

/// The registry part of an account's [`AccountState`] (certificates empty).
pub(crate) fn dump_registry(region: &str, account: &str, d: &AccountData) -> AccountState {
    AccountState {
        account: account.to_string(),
        region: region.to_string(),
        certificates: Vec::new(),
        policies: d
            .policies
            .iter()
            .map(|(name, p)| PolicyState {
                name: name.clone(),
                document: p.document.clone(),
                default_version_id: p.default_version.to_string(),
            })
            .collect(),
        thing_types: d
            .thing_types
            .iter()
            .map(|(name, t)| ThingTypeState {
                name: name.clone(),
                description: t.description.clone(),
                searchable_attributes: t.searchable_attributes.clone(),
            })
            .collect(),
        thing_groups: d
            .groups
            .iter()
            .map(|(name, g)| ThingGroupState {
                name: name.clone(),
                parent: g.parent.clone(),
                description: g.description.clone(),
                attributes: g.attributes.clone(),
                policies: g.policies.iter().cloned().collect(),
            })
            .collect(),
        things: d
            .things
            .iter()
            .map(|(name, t)| ThingState {
                name: name.clone(),
                thing_type: t.thing_type.clone(),
                attributes: t.attributes.clone(),
                groups: t.groups.iter().cloned().collect(),
                principals: d
                    .certs
                    .values()
                    .filter(|c| c.has_thing(name))
                    .map(|c| cert_arn(region, account, &c_id(c)))
                    .collect(),
            })
            .collect(),
        ca_certificates: d
            .ca_certs
            .iter()
            .map(|(id, c)| CaCertState {
                id: id.clone(),
                status: c.status.clone(),
                certificate_mode: c.mode.clone(),
            })
            .collect(),
    }
}

fn c_id(c: &crate::world::Cert) -> String {
    c.id().to_string()
}

/// Checks a policy document: JSON with a `Statement`.
fn check_document(doc: &str) -> Result<(), ApiError> {
    match serde_json::from_str::<Value>(doc) {
        Ok(Value::Object(m)) if m.contains_key("Statement") => Ok(()),
        _ => Err(ApiError::malformed_policy(
            "The policy document is not valid JSON with a Statement",
        )),
    }
}

/// CreatePolicyResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatePolicyResponse<'a> {
    policy_name: &'a str,
    policy_arn: String,
    policy_document: &'a str,
    policy_version_id: &'a str,
}

/// GetPolicyResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetPolicyResponse<'a> {
    policy_name: &'a str,
    policy_arn: String,
    policy_document: &'a str,
    default_version_id: String,
    creation_date: f64,
    last_modified_date: f64,
    generation_id: &'a str,
}

/// ListPoliciesResponse: the members of ListAttachedPoliciesResponse.
type ListPoliciesResponse<'a> = ListAttachedPoliciesResponse<'a>;

/// CreateThingResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingResponse<'a> {
    thing_name: &'a str,
    thing_arn: String,
    thing_id: &'a str,
}

/// DescribeThingResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeThingResponse<'a> {
    default_client_id: &'a str,
    thing_name: &'a str,
    thing_id: &'a str,
    thing_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_type_name: Option<&'a str>,
    attributes: &'a BTreeMap<String, String>,
    version: u64,
}

/// ThingAttribute: a thing as ListThings lists it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingAttribute<'a> {
    thing_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_type_name: Option<&'a str>,
    thing_arn: String,
    attributes: &'a BTreeMap<String, String>,
    version: u64,
}

/// ListThingsResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListThingsResponse<'a> {
    things: Vec<ThingAttribute<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListThingPrincipalsResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListThingPrincipalsResponse {
    principals: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// CreateThingTypeResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingTypeResponse<'a> {
    thing_type_name: &'a str,
    thing_type_arn: String,
    thing_type_id: &'a str,
}

/// DescribeThingTypeResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeThingTypeResponse<'a> {
    thing_type_name: &'a str,
    thing_type_id: &'a str,
    thing_type_arn: String,
    thing_type_properties: ThingTypeProperties<'a>,
    thing_type_metadata: ThingTypeMetadata,
}

/// ThingTypeProperties.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingTypeProperties<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_type_description: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    searchable_attributes: &'a [String],
}

/// ThingTypeMetadata.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingTypeMetadata {
    deprecated: bool,
    creation_date: f64,
}

/// CreateThingGroupResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingGroupResponse<'a> {
    thing_group_name: &'a str,
    thing_group_arn: String,
    thing_group_id: &'a str,
}

/// DescribeThingGroupResponse (of a static group: no index or query).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeThingGroupResponse<'a> {
    thing_group_name: &'a str,
    thing_group_id: &'a str,
    thing_group_arn: String,
    version: u64,
    thing_group_properties: ThingGroupProperties<'a>,
    thing_group_metadata: ThingGroupMetadata<'a>,
}

/// ThingGroupProperties.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingGroupProperties<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_group_description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribute_payload: Option<AttributePayload<'a>>,
}

/// AttributePayload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttributePayload<'a> {
    attributes: &'a BTreeMap<String, String>,
}

/// ThingGroupMetadata: the parent and the path from the root, for a child.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingGroupMetadata<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_group_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    root_to_parent_thing_groups: Option<Vec<GroupNameAndArn<'a>>>,
    creation_date: f64,
}

/// GroupNameAndArn.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupNameAndArn<'a> {
    group_name: &'a str,
    group_arn: String,
}

/// AddThingToThingGroupResponse: an empty object.
#[derive(Serialize)]
struct AddThingToThingGroupResponse {}

/// ListThingGroupsForThingResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListThingGroupsForThingResponse<'a> {
    thing_groups: Vec<GroupNameAndArn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListThingsInThingGroupResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListThingsInThingGroupResponse<'a> {
    things: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// DescribeEndpointResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeEndpointResponse {
    endpoint_address: String,
}

impl<'a> ThingAttribute<'a> {
    fn of(region: &str, account: &str, name: &'a str, t: &'a Thing) -> Self {
        ThingAttribute {
            thing_name: name,
            thing_type_name: t.thing_type.as_deref(),
            thing_arn: thing_arn(region, account, name),
            attributes: &t.attributes,
            version: t.version,
        }
    }
}

impl<'a> GroupNameAndArn<'a> {
    fn of(region: &str, account: &str, name: &'a str) -> Self {
        GroupNameAndArn {
            group_name: name,
            group_arn: group_arn(region, account, name),
        }
    }
}

impl World {
    /// Creates a policy with `document` (default document if `None`) unless it exists.
    pub(crate) fn ensure_policy(
        &mut self,
        region: &str,
        account: &str,
        name: &str,
        document: Option<&str>,
        now: f64,
    ) {
        self.data_entry(region, account)
            .policies
            .entry(name.to_string())
            .or_insert_with(|| Policy {
                document: document.unwrap_or(DEFAULT_POLICY_DOCUMENT).to_string(),
                default_version: 1,
                creation: now,
                generation_id: random_uuid(),
            });
    }

    /// Creates a thing without type or attributes unless it exists.
    pub(crate) fn ensure_thing(&mut self, region: &str, account: &str, name: &str) {
        self.data_entry(region, account)
            .things
            .entry(name.to_string())
            .or_insert_with(|| Thing {
                id: random_uuid(),
                thing_type: None,
                attributes: BTreeMap::new(),
                version: 1,
                groups: BTreeSet::new(),
            });
    }

    /// Loads the registry part of one account's seed (before its certificates).
    pub(crate) fn seed_registry(
        &mut self,
        region: &str,
        account: &str,
        s: &SeedAccount,
        now: f64,
    ) -> Result<(), String> {
        for p in &s.policies {
            if !validate::is_policy_name(&p.name) {
                return Err(format!("invalid policy name {:?}", p.name));
            }
            if let Some(doc) = &p.document {
                check_document(doc).map_err(|e| format!("policy {}: {}", p.name, e.message))?;
            }
            let d = self.data_entry(region, account);
            d.policies.remove(&p.name);
            self.ensure_policy(region, account, &p.name, p.document.as_deref(), now);
        }
        for t in &s.thing_types {
            if !validate::is_thing_name(&t.name) {
                return Err(format!("invalid thing type name {:?}", t.name));
            }
            self.data_entry(region, account).thing_types.insert(
                t.name.clone(),
                ThingType {
                    id: random_uuid(),
                    description: t.description.clone(),
                    searchable_attributes: t.searchable_attributes.clone(),
                    creation: now,
                },
            );
        }
        for g in &s.thing_groups {
            if !validate::is_thing_name(&g.name) {
                return Err(format!("invalid thing group name {:?}", g.name));
            }
            for p in &g.policies {
                if !validate::is_policy_name(p) {
                    return Err(format!("invalid policy name {p:?}"));
                }
                self.ensure_policy(region, account, p, None, now);
            }
            let d = self.data_entry(region, account);
            if let Some(parent) = &g.parent {
                if !d.groups.contains_key(parent) {
                    return Err(format!(
                        "thing group {}: parent {parent} is not declared before it",
                        g.name
                    ));
                }
                if ancestry(d, parent, true).len() >= MAX_GROUP_DEPTH {
                    return Err(format!("thing group {}: hierarchy too deep", g.name));
                }
            }
            if g.policies.len() > crate::world::MAX_POLICIES_PER_TARGET {
                return Err(format!("thing group {}: more than 10 policies", g.name));
            }
            d.groups.insert(
                g.name.clone(),
                Group {
                    id: random_uuid(),
                    parent: g.parent.clone(),
                    description: g.description.clone(),
                    attributes: g.attributes.clone(),
                    policies: g.policies.iter().cloned().collect(),
                    creation: now,
                },
            );
        }
        for t in &s.things {
            if !validate::is_thing_name(&t.name) {
                return Err(format!("invalid thing name {:?}", t.name));
            }
            let d = self.data_entry(region, account);
            if let Some(ty) = &t.thing_type {
                if !d.thing_types.contains_key(ty) {
                    return Err(format!("thing {}: unknown thing type {ty}", t.name));
                }
            }
            if let Some(g) = t.groups.iter().find(|g| !d.groups.contains_key(*g)) {
                return Err(format!("thing {}: unknown thing group {g}", t.name));
            }
            if t.groups.len() > MAX_GROUPS_PER_THING {
                return Err(format!("thing {}: in more than 10 groups", t.name));
            }
            d.things.insert(
                t.name.clone(),
                Thing {
                    id: random_uuid(),
                    thing_type: t.thing_type.clone(),
                    attributes: t.attributes.clone(),
                    version: 1,
                    groups: t.groups.iter().cloned().collect(),
                },
            );
        }
        for c in &s.ca_certificates {
            if !validate::is_certificate_id(&c.id) {
                return Err(format!("invalid CA certificate id {:?}", c.id));
            }
            let status = c.status.clone().unwrap_or_else(|| "ACTIVE".into());
            let mode = c
                .certificate_mode
                .clone()
                .unwrap_or_else(|| "DEFAULT".into());
            if !matches!(status.as_str(), "ACTIVE" | "INACTIVE")
                || !matches!(mode.as_str(), "DEFAULT" | "SNI_ONLY")
            {
                return Err(format!("CA certificate {}: bad status or mode", c.id));
            }
            self.data_entry(region, account)
                .ca_certs
                .insert(c.id.clone(), CaCert { status, mode });
        }
        Ok(())
    }

    /// Runs a registry call.
    pub(crate) fn registry_call(
        &mut self,
        caller: &Caller,
        call: Call,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let (region, account) = (caller.region.clone(), caller.account.clone());
        let (r, a) = (region.as_str(), account.as_str());
        match call {
            Call::CreatePolicy { name, document } => {
                check_document(&document)?;
                if self
                    .data(r, a)
                    .is_some_and(|d| d.policies.contains_key(&name))
                {
                    return Err(ApiError::already_exists(format!(
                        "Policy cannot be created - name already exists (name={name})"
                    )));
                }
                self.ensure_policy(r, a, &name, Some(&document), now);
                Ok(Reply::of(&CreatePolicyResponse {
                    policy_name: &name,
                    policy_arn: policy_arn(r, a, &name),
                    policy_document: &document,
                    policy_version_id: "1",
                }))
            }
            Call::GetPolicy { name } => {
                let p = self
                    .data(r, a)
                    .and_then(|d| d.policies.get(&name))
                    .ok_or_else(|| {
                        ApiError::not_found(format!("The policy {name} does not exist"))
                    })?;
                Ok(Reply::of(&GetPolicyResponse {
                    policy_name: &name,
                    policy_arn: policy_arn(r, a, &name),
                    policy_document: &p.document,
                    default_version_id: p.default_version.to_string(),
                    creation_date: p.creation,
                    last_modified_date: p.creation,
                    generation_id: &p.generation_id,
                }))
            }
            Call::ListPolicies { page } => {
                let items: Vec<(String, PolicyNameAndArn<'_>)> = self
                    .data(r, a)
                    .map(|d| {
                        d.policies
                            .keys()
                            .map(|n| {
                                let policy = PolicyNameAndArn {
                                    policy_name: n,
                                    policy_arn: policy_arn(r, a, n),
                                };
                                (hex_key(n), policy)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let (policies, next_marker) = page.of(items);
                Ok(Reply::of(&ListPoliciesResponse {
                    policies,
                    next_marker,
                }))
            }
            Call::CreateThing {
                name,
                thing_type,
                attributes,
            } => {
                let d = self.data_entry(r, a);
                if let Some(ty) = &thing_type {
                    if !d.thing_types.contains_key(ty) {
                        return Err(ApiError::not_found(format!(
                            "Thing type {ty} does not exist"
                        )));
                    }
                }
                if let Some(t) = d.things.get(&name) {
                    // the same configuration succeeds, a different one is refused
                    if t.thing_type == thing_type && t.attributes == attributes {
                        return Ok(Reply::of(&CreateThingResponse {
                            thing_name: &name,
                            thing_arn: thing_arn(r, a, &name),
                            thing_id: &t.id,
                        }));
                    }
                    return Err(ApiError::already_exists(format!(
                        "Thing {name} already exists in account with different attributes"
                    )));
                }
                let id = random_uuid();
                d.things.insert(
                    name.clone(),
                    Thing {
                        id: id.clone(),
                        thing_type,
                        attributes,
                        version: 1,
                        groups: BTreeSet::new(),
                    },
                );
                Ok(Reply::of(&CreateThingResponse {
                    thing_name: &name,
                    thing_arn: thing_arn(r, a, &name),
                    thing_id: &id,
                }))
            }
            Call::DescribeThing { name } => {
                let t = self.thing(r, a, &name)?;
                Ok(Reply::of(&DescribeThingResponse {
                    default_client_id: &name,
                    thing_name: &name,
                    thing_id: &t.id,
                    thing_arn: thing_arn(r, a, &name),
                    thing_type_name: t.thing_type.as_deref(),
                    attributes: &t.attributes,
                    version: t.version,
                }))
            }
            Call::ListThings { filter, page } => {
                let items: Vec<(String, ThingAttribute<'_>)> = self
                    .data(r, a)
                    .map(|d| {
                        d.things
                            .iter()
                            .filter(|(_, t)| thing_matches(t, &filter))
                            .map(|(n, t)| (hex_key(n), ThingAttribute::of(r, a, n, t)))
                            .collect()
                    })
                    .unwrap_or_default();
                let (things, next_token) = page.ascending_of(items);
                Ok(Reply::of(&ListThingsResponse { things, next_token }))
            }
            Call::ListThingPrincipals { name, page } => {
                self.thing(r, a, &name)?;
                let d = self.data(r, a).expect("the thing exists");
                let items: Vec<(String, String)> = d
                    .certs
                    .values()
                    .filter(|c| c.has_thing(&name))
                    .map(|c| {
                        let arn = cert_arn(r, a, c.id());
                        (hex_key(&arn), arn)
                    })
                    .collect();
                let (principals, next_token) = page.ascending_of(items);
                Ok(Reply::of(&ListThingPrincipalsResponse {
                    principals,
                    next_token,
                }))
            }
            Call::CreateThingType {
                name,
                description,
                searchable_attributes,
            } => {
                let d = self.data_entry(r, a);
                if d.thing_types.contains_key(&name) {
                    return Err(ApiError::already_exists(format!(
                        "Thing type {name} already exists"
                    )));
                }
                let id = random_uuid();
                d.thing_types.insert(
                    name.clone(),
                    ThingType {
                        id: id.clone(),
                        description,
                        searchable_attributes,
                        creation: now,
                    },
                );
                Ok(Reply::of(&CreateThingTypeResponse {
                    thing_type_name: &name,
                    thing_type_arn: thing_type_arn(r, a, &name),
                    thing_type_id: &id,
                }))
            }
            Call::DescribeThingType { name } => {
                let t = self
                    .data(r, a)
                    .and_then(|d| d.thing_types.get(&name))
                    .ok_or_else(|| {
                        ApiError::not_found(format!("Thing type {name} does not exist"))
                    })?;
                Ok(Reply::of(&DescribeThingTypeResponse {
                    thing_type_name: &name,
                    thing_type_id: &t.id,
                    thing_type_arn: thing_type_arn(r, a, &name),
                    thing_type_properties: ThingTypeProperties {
                        thing_type_description: t.description.as_deref(),
                        searchable_attributes: &t.searchable_attributes,
                    },
                    thing_type_metadata: ThingTypeMetadata {
                        deprecated: false,
                        creation_date: t.creation,
                    },
                }))
            }
            Call::CreateThingGroup {
                name,
                parent,
                description,
                attributes,
            } => {
                let d = self.data_entry(r, a);
                if let Some(p) = &parent {
                    if !d.groups.contains_key(p) {
                        return Err(ApiError::not_found(format!(
                            "Parent thing group {p} does not exist"
                        )));
                    }
                    if ancestry(d, p, true).len() >= MAX_GROUP_DEPTH {
                        return Err(ApiError::invalid_request(format!(
                            "A thing group hierarchy can be at most {MAX_GROUP_DEPTH} deep"
                        )));
                    }
                }
                if let Some(g) = d.groups.get(&name) {
                    if g.parent == parent
                        && g.description == description
                        && g.attributes == attributes
                    {
                        return Ok(Reply::of(&CreateThingGroupResponse {
                            thing_group_name: &name,
                            thing_group_arn: group_arn(r, a, &name),
                            thing_group_id: &g.id,
                        }));
                    }
                    return Err(ApiError::already_exists(format!(
                        "Thing group {name} already exists with different properties"
                    )));
                }
                let id = random_uuid();
                d.groups.insert(
                    name.clone(),
                    Group {
                        id: id.clone(),
                        parent,
                        description,
                        attributes,
                        policies: BTreeSet::new(),
                        creation: now,
                    },
                );
                Ok(Reply::of(&CreateThingGroupResponse {
                    thing_group_name: &name,
                    thing_group_arn: group_arn(r, a, &name),
                    thing_group_id: &id,
                }))
            }
            Call::DescribeThingGroup { name } => {
                let d = self.data(r, a);
                let g = d.and_then(|d| d.groups.get(&name)).ok_or_else(|| {
                    ApiError::not_found(format!("Thing group {name} does not exist"))
                })?;
                let d = d.expect("the group exists");
                let mut roots: Vec<String> = ancestry(d, &name, true).into_iter().skip(1).collect();
                roots.reverse();
                let properties = ThingGroupProperties {
                    thing_group_description: g.description.as_deref(),
                    attribute_payload: (!g.attributes.is_empty()).then_some(AttributePayload {
                        attributes: &g.attributes,
                    }),
                };
                let metadata = ThingGroupMetadata {
                    parent_group_name: g.parent.as_deref(),
                    root_to_parent_thing_groups: g
                        .parent
                        .as_ref()
                        .map(|_| roots.iter().map(|n| GroupNameAndArn::of(r, a, n)).collect()),
                    creation_date: g.creation,
                };
                Ok(Reply::of(&DescribeThingGroupResponse {
                    thing_group_name: &name,
                    thing_group_id: &g.id,
                    thing_group_arn: group_arn(r, a, &name),
                    version: 1,
                    thing_group_properties: properties,
                    thing_group_metadata: metadata,
                }))
            }
            Call::AddThingToThingGroup { group, thing } => {
                let d = self.data_entry(r, a);
                if !d.groups.contains_key(&group) {
                    return Err(ApiError::not_found(format!(
                        "Thing group {group} does not exist"
                    )));
                }
                let t = d
                    .things
                    .get_mut(&thing)
                    .ok_or_else(|| ApiError::not_found(format!("Thing {thing} does not exist")))?;
                if !t.groups.contains(&group) {
                    if t.groups.len() >= MAX_GROUPS_PER_THING {
                        return Err(ApiError::invalid_request(format!(
                            "A thing can be in at most {MAX_GROUPS_PER_THING} thing groups"
                        )));
                    }
                    t.groups.insert(group);
                    t.version += 1;
                }
                Ok(Reply::of(&AddThingToThingGroupResponse {}))
            }
            Call::ListThingGroupsForThing { name, page } => {
                let t = self.thing(r, a, &name)?;
                let items = t
                    .groups
                    .iter()
                    .map(|g| (hex_key(g), GroupNameAndArn::of(r, a, g)))
                    .collect();
                let (thing_groups, next_token) = page.ascending_of(items);
                Ok(Reply::of(&ListThingGroupsForThingResponse {
                    thing_groups,
                    next_token,
                }))
            }
            Call::ListThingsInThingGroup {
                name,
                recursive,
                page,
            } => {
                let d = self.data(r, a);
                if !d.is_some_and(|d| d.groups.contains_key(&name)) {
                    return Err(ApiError::not_found(format!(
                        "Thing group {name} does not exist"
                    )));
                }
                let d = d.expect("the group exists");
                let groups = if recursive {
                    descendants(d, &name)
                } else {
                    BTreeSet::from([name])
                };
                let items = d
                    .things
                    .iter()
                    .filter(|(_, t)| t.groups.iter().any(|g| groups.contains(g)))
                    .map(|(n, _)| (hex_key(n), n.as_str()))
                    .collect();
                let (things, next_token) = page.ascending_of(items);
                Ok(Reply::of(&ListThingsInThingGroupResponse {
                    things,
                    next_token,
                }))
            }
            Call::ListCertificatesByCa { ca_id, page } => {
                self.list_certificates_where(caller, &page, |c| {
                    c.ca_certificate_id.as_deref() == Some(ca_id.as_str())
                })
            }
            Call::DescribeEndpoint { endpoint_type } => {
                let ty = endpoint_type.as_deref().unwrap_or("iot:Data");
                match data_endpoint(a, r, ty) {
                    Some(endpoint_address) => {
                        Ok(Reply::of(&DescribeEndpointResponse { endpoint_address }))
                    }
                    None => Err(ApiError::invalid_request(format!(
                        "Endpoint type {ty} is not valid"
                    ))),
                }
            }
            Call::RegisterWithoutCa { pem, status } => {
                self.register_without_ca(caller, &pem, &status, now)
            }
            other => Err(ApiError::invalid_request(format!(
                "not a registry call: {other:?}"
            ))),
        }
    }

    fn thing(&self, region: &str, account: &str, name: &str) -> Result<&Thing, ApiError> {
        self.data(region, account)
            .and_then(|d| d.things.get(name))
            .ok_or_else(|| ApiError::not_found(format!("Thing {name} does not exist")))
    }
}

fn thing_matches(t: &Thing, f: &ThingFilter) -> bool {
    if let Some(ty) = &f.thing_type {
        if t.thing_type.as_ref() != Some(ty) {
            return false;
        }
    }
    match (&f.attribute_name, &f.attribute_value) {
        (Some(name), Some(value)) => t.attributes.get(name).is_some_and(|v| {
            if f.prefix {
                v.starts_with(value.as_str())
            } else {
                v == value
            }
        }),
        (Some(name), None) => t.attributes.contains_key(name),
        (None, _) => true,
    }
}
