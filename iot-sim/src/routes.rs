//! HTTP routing (restJson1 paths of the API model) and input validation.

use std::collections::{BTreeMap, HashMap};

use hyper::header::HeaderMap;
use hyper::Method;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::config::PropagatingAttribute;
use crate::errors::ApiError;
use crate::ops::Operation;
use crate::validate;
use crate::world::{
    Call, GroupDefinition, Page, ThingFilter, ThingTypeDefinition, MAX_SEARCHABLE_ATTRIBUTES,
};

/// Default page size of the marker-paginated list operations.
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Default `maxResults` of ListPrincipalThings.
pub const DEFAULT_MAX_RESULTS: usize = 25;
/// Largest page size / maxResults.
pub const MAX_PAGE_SIZE: usize = 250;

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/_sim/<name>` control endpoint (method, name).
    Sim(Method, String),
    /// STS awsQuery endpoint (`POST /`).
    Sts,
    /// An IoT operation with its decoded path labels.
    Op(Operation, Vec<String>),
    /// Nothing here.
    Unknown,
}

/// Decodes a percent-encoded path segment or query component.
fn decode(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Maps method and raw (still percent-encoded) path to a route.
pub fn route(method: &Method, raw_path: &str) -> Route {
    let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if trimmed.is_empty() {
        return if method == Method::POST {
            Route::Sts
        } else {
            Route::Unknown
        };
    }
    let raw: Vec<&str> = trimmed.split('/').collect();
    if raw[0] == "_sim" && raw.len() == 2 {
        return Route::Sim(method.clone(), raw[1].to_string());
    }
    let Some(segs) = raw
        .iter()
        .map(|s| decode(s))
        .collect::<Option<Vec<String>>>()
    else {
        return Route::Unknown;
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.clone();
    let op = |op: Operation, labels: &[&str]| {
        Route::Op(op, labels.iter().map(|l| l.to_string()).collect())
    };
    match (m, s.as_slice()) {
        (Method::GET, ["certificates"]) => op(Operation::ListCertificates, &[]),
        (Method::GET, ["certificates", id]) => op(Operation::DescribeCertificate, &[id]),
        (Method::PUT, ["certificates", id]) => op(Operation::UpdateCertificate, &[id]),
        (Method::GET, ["certificates-out-going"]) => op(Operation::ListOutgoingCertificates, &[]),
        // The target ARN should be one percent-encoded label; accept an
        // unencoded `/` too.
        (Method::POST, ["attached-policies", rest @ ..]) if !rest.is_empty() => {
            op(Operation::ListAttachedPolicies, &[&rest.join("/")])
        }
        (Method::PUT, ["target-policies", name]) => op(Operation::AttachPolicy, &[name]),
        (Method::POST, ["target-policies", name]) => op(Operation::DetachPolicy, &[name]),
        (Method::GET, ["principal-policies"]) => op(Operation::ListPrincipalPolicies, &[]),
        (Method::DELETE, ["principal-policies", name]) => {
            op(Operation::DetachPrincipalPolicy, &[name])
        }
        (Method::GET, ["principals", "things"]) => op(Operation::ListPrincipalThings, &[]),
        (Method::GET, ["principals", "things-v2"]) => op(Operation::ListPrincipalThingsV2, &[]),
        (Method::GET, ["things", name, "principals-v2"]) => {
            op(Operation::ListThingPrincipalsV2, &[name])
        }
        (Method::POST, ["thing-types", name, "deprecate"]) => {
            op(Operation::DeprecateThingType, &[name])
        }
        (Method::GET, ["cacertificate", id]) => op(Operation::DescribeCACertificate, &[id]),
        (Method::GET, ["role-aliases"]) => op(Operation::ListRoleAliases, &[]),
        (Method::PUT, ["things", name, "principals"]) => {
            op(Operation::AttachThingPrincipal, &[name])
        }
        (Method::DELETE, ["things", name, "principals"]) => {
            op(Operation::DetachThingPrincipal, &[name])
        }
        (Method::PATCH, ["transfer-certificate", id]) => op(Operation::TransferCertificate, &[id]),
        (Method::PATCH, ["accept-certificate-transfer", id]) => {
            op(Operation::AcceptCertificateTransfer, &[id])
        }
        (Method::PATCH, ["reject-certificate-transfer", id]) => {
            op(Operation::RejectCertificateTransfer, &[id])
        }
        (Method::PATCH, ["cancel-certificate-transfer", id]) => {
            op(Operation::CancelCertificateTransfer, &[id])
        }
        (Method::POST, ["policies", name]) => op(Operation::CreatePolicy, &[name]),
        (Method::GET, ["policies", name]) => op(Operation::GetPolicy, &[name]),
        (Method::GET, ["policies"]) => op(Operation::ListPolicies, &[]),
        (Method::POST, ["things", name]) => op(Operation::CreateThing, &[name]),
        (Method::GET, ["things", name]) => op(Operation::DescribeThing, &[name]),
        (Method::GET, ["things"]) => op(Operation::ListThings, &[]),
        (Method::GET, ["things", name, "principals"]) => {
            op(Operation::ListThingPrincipals, &[name])
        }
        (Method::GET, ["things", name, "thing-groups"]) => {
            op(Operation::ListThingGroupsForThing, &[name])
        }
        (Method::POST, ["things", name, "connectivity-data"]) => {
            op(Operation::GetThingConnectivityData, &[name])
        }
        (Method::GET, ["things", name, "jobs"]) => {
            op(Operation::ListJobExecutionsForThing, &[name])
        }
        (Method::GET, ["things", name, "jobs", job]) => {
            op(Operation::DescribeJobExecution, &[name, job])
        }
        (Method::PUT, ["jobs", id]) => op(Operation::CreateJob, &[id]),
        (Method::GET, ["jobs", id]) => op(Operation::DescribeJob, &[id]),
        (Method::DELETE, ["jobs", id]) => op(Operation::DeleteJob, &[id]),
        (Method::GET, ["jobs", id, "job-document"]) => op(Operation::GetJobDocument, &[id]),
        (Method::GET, ["jobs", id, "things"]) => op(Operation::ListJobExecutionsForJob, &[id]),
        (Method::PUT, ["jobs", id, "cancel"]) => op(Operation::CancelJob, &[id]),
        (Method::POST, ["thing-types", name]) => op(Operation::CreateThingType, &[name]),
        (Method::GET, ["thing-types", name]) => op(Operation::DescribeThingType, &[name]),
        (Method::PUT, ["thing-groups", "addThingToThingGroup"]) => {
            op(Operation::AddThingToThingGroup, &[])
        }
        (Method::PUT, ["thing-groups", "removeThingFromThingGroup"]) => {
            op(Operation::RemoveThingFromThingGroup, &[])
        }
        (Method::DELETE, ["thing-groups", name]) => op(Operation::DeleteThingGroup, &[name]),
        (Method::POST, ["thing-groups", name]) => op(Operation::CreateThingGroup, &[name]),
        (Method::GET, ["thing-groups", name]) => op(Operation::DescribeThingGroup, &[name]),
        (Method::GET, ["thing-groups", name, "things"]) => {
            op(Operation::ListThingsInThingGroup, &[name])
        }
        (Method::GET, ["certificates-by-ca", id]) => op(Operation::ListCertificatesByCA, &[id]),
        (Method::GET, ["endpoint"]) => op(Operation::DescribeEndpoint, &[]),
        (Method::POST, ["certificate", "register-no-ca"]) => {
            op(Operation::RegisterCertificateWithoutCA, &[])
        }
        (Method::POST, ["indices", "search"]) => op(Operation::SearchIndex, &[]),
        (Method::GET, ["indexing", "config"]) => op(Operation::GetIndexingConfiguration, &[]),
        (Method::POST, ["indexing", "config"]) => op(Operation::UpdateIndexingConfiguration, &[]),
        _ => Route::Unknown,
    }
}

/// Parses a query string; the first value of each key wins. `+` is kept as is.
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(k), Some(v)) = (decode(k), decode(v)) {
            out.entry(k).or_insert(v);
        }
    }
    out
}

/// Everything of a request that an operation may read.
pub struct Input<'a> {
    /// Decoded path labels.
    pub labels: &'a [String],
    /// Decoded query parameters.
    pub query: &'a HashMap<String, String>,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Raw body.
    pub body: &'a [u8],
}

impl Input<'_> {
    fn label(&self, i: usize) -> &str {
        self.labels.get(i).map(String::as_str).unwrap_or("")
    }

    fn cert_id(&self) -> Result<String, ApiError> {
        let id = self.label(0);
        if validate::is_certificate_id(id) {
            Ok(id.to_string())
        } else {
            Err(ApiError::invalid_request(format!(
                "1 validation error detected: Value '{id}' at 'certificateId' failed to satisfy constraint: Member must have length 64 and match pattern (0x)?[a-fA-F0-9]+"
            )))
        }
    }

    fn bool_param(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.query.get(name).map(String::as_str) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ApiError::invalid_request(format!(
                "Invalid value '{other}' for {name}: expected true or false"
            ))),
        }
    }

    fn size_param(&self, name: &str, default: usize) -> Result<usize, ApiError> {
        let Some(v) = self.query.get(name) else {
            return Ok(default);
        };
        match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_request(format!(
                "1 validation error detected: Value '{v}' at '{name}' failed to satisfy constraint: Member must have value between 1 and {MAX_PAGE_SIZE}"
            ))),
        }
    }

    fn marker(&self, name: &str, pattern: bool) -> Result<Option<String>, ApiError> {
        match self.query.get(name) {
            None => Ok(None),
            Some(m) if m.is_empty() => Ok(None),
            Some(m) if !pattern || validate::is_marker(m) => Ok(Some(m.clone())),
            Some(m) => Err(ApiError::invalid_request(format!("Invalid {name} '{m}'"))),
        }
    }

    fn page(&self, ascending_default: bool) -> Result<Page, ApiError> {
        Ok(Page {
            size: self.size_param("pageSize", DEFAULT_PAGE_SIZE)?,
            marker: self.marker("marker", true)?,
            ascending: self.bool_param("isAscendingOrder", ascending_default)?,
        })
    }

    fn header(&self, name: &str, member: &str) -> Result<String, ApiError> {
        match self.headers.get(name).map(|v| v.to_str()) {
            Some(Ok(v)) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(ApiError::invalid_request(format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ))),
        }
    }

    fn json(&self) -> Result<serde_json::Map<String, Value>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Map::new());
        }
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ApiError::invalid_request(
                "Request body is not a JSON object",
            )),
        }
    }

    fn body_string(&self, member: &str) -> Result<Option<String>, ApiError> {
        match self.json()?.remove(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Member '{member}' must be a string"
            ))),
        }
    }

    fn message(&self, member: &str) -> Result<Option<String>, ApiError> {
        let m = self.body_string(member)?;
        if let Some(text) = &m {
            if text.chars().count() > validate::MAX_MESSAGE_LEN {
                return Err(ApiError::invalid_request(format!(
                    "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length less than or equal to {}",
                    validate::MAX_MESSAGE_LEN
                )));
            }
        }
        Ok(m)
    }

    fn policy_name(&self) -> Result<String, ApiError> {
        let name = self.label(0);
        if validate::is_policy_name(name) {
            Ok(name.to_string())
        } else {
            Err(ApiError::invalid_request(format!(
                "1 validation error detected: Value '{name}' at 'policyName' failed to satisfy constraint: Member must match pattern [\\w+=,.@-]+ with length 1..128"
            )))
        }
    }

    fn thing_name(&self) -> Result<String, ApiError> {
        let name = self.label(0);
        if validate::is_thing_name(name) {
            Ok(name.to_string())
        } else {
            Err(ApiError::invalid_request(format!(
                "1 validation error detected: Value '{name}' at 'thingName' failed to satisfy constraint: Member must match pattern [a-zA-Z0-9:_-]+ with length 1..128"
            )))
        }
    }

    /// A name label (things, thing types, thing groups): `[a-zA-Z0-9:_-]{1,128}`.
    fn name_label(&self, member: &str) -> Result<String, ApiError> {
        let name = self.label(0);
        check_name(name, member)?;
        Ok(name.to_string())
    }

    /// nextToken / maxResults paging of the registry lists.
    fn token_page(&self) -> Result<Page, ApiError> {
        Ok(Page {
            size: self.size_param("maxResults", DEFAULT_MAX_RESULTS)?,
            marker: self.marker("nextToken", false)?,
            ascending: true,
        })
    }

    fn body_object(
        &self,
        member: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
        match self.json()?.remove(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Member '{member}' must be an object"
            ))),
        }
    }

    fn body_name(&self, member: &str) -> Result<Option<String>, ApiError> {
        let v = self.body_string(member)?;
        if let Some(n) = &v {
            check_name(n, member)?;
        }
        Ok(v)
    }

    fn body_bool(&self, member: &str) -> Result<bool, ApiError> {
        match self.json()?.remove(member) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Member '{member}' must be a boolean"
            ))),
        }
    }

    /// `thingPrincipalType` in the query: `Some(true)` EXCLUSIVE_THING, `Some(false)`
    /// NON_EXCLUSIVE_THING.
    fn principal_type(&self) -> Result<Option<bool>, ApiError> {
        match self.query.get("thingPrincipalType").map(String::as_str) {
            None => Ok(None),
            Some("EXCLUSIVE_THING") => Ok(Some(true)),
            Some("NON_EXCLUSIVE_THING") => Ok(Some(false)),
            Some(t) => Err(ApiError::invalid_request(format!(
                "1 validation error detected: Value '{t}' at 'thingPrincipalType' failed to satisfy constraint: Member must satisfy enum value set: [EXCLUSIVE_THING, NON_EXCLUSIVE_THING]"
            ))),
        }
    }

    fn body_target(&self) -> Result<String, ApiError> {
        match self.body_string("target")? {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(ApiError::invalid_request(
                "1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null",
            )),
        }
    }
}

fn check_name(name: &str, member: &str) -> Result<(), ApiError> {
    if validate::is_thing_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_request(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must match pattern [a-zA-Z0-9:_-]+ with length 1..128"
        )))
    }
}

/// `attributes` of an `attributePayload` (or of ThingGroupProperties').
fn attributes_of(
    payload: Option<&serde_json::Map<String, Value>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(attrs) = payload.and_then(|p| p.get("attributes")) else {
        return Ok(out);
    };
    let Value::Object(attrs) = attrs else {
        return Err(ApiError::invalid_request("attributes must be an object"));
    };
    for (k, v) in attrs {
        match v {
            Value::String(v) if validate::is_attribute_name(k) && validate::is_attribute_value(v) => {
                out.insert(k.clone(), v.clone());
            }
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "Invalid attribute {k:?}: names match [a-zA-Z0-9_.,@/:#-]+ (1..128), values [a-zA-Z0-9_.,@/:#=\\[\\]-]* (..800)"
                )))
            }
        }
    }
    Ok(out)
}

/// `mqtt5Configuration.propagatingAttributes` of ThingTypeProperties.
fn propagating_attributes(config: Option<&Value>) -> Result<Vec<PropagatingAttribute>, ApiError> {
    let bad = |why: &str| ApiError::invalid_request(format!("Invalid mqtt5Configuration: {why}"));
    let list = match config {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(c)) => match c.get("propagatingAttributes") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(bad("propagatingAttributes must be a list")),
        },
        Some(_) => return Err(bad("not an object")),
    };
    let text = |v: &serde_json::Map<String, Value>, k: &str, allowed: &[u8]| match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if (1..=128).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || allowed.contains(&b)) =>
        {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(bad(&format!("{k} does not match its pattern"))),
    };
    list.iter()
        .map(|item| {
            let Value::Object(p) = item else {
                return Err(bad("each propagating attribute is an object"));
            };
            Ok(PropagatingAttribute {
                user_property_key: text(p, "userPropertyKey", b":$.")?,
                thing_attribute: text(p, "thingAttribute", b"_.,@/:#-")?,
                connection_attribute: text(p, "connectionAttribute", b":.")?,
            })
        })
        .collect()
}

/// ARN or name: `thingGroupName` / `thingGroupArn`, `thingName` / `thingArn`.
fn name_or_arn(
    input: &Input<'_>,
    name_member: &str,
    arn_member: &str,
    kind: &str,
) -> Result<String, ApiError> {
    if let Some(n) = input.body_name(name_member)? {
        return Ok(n);
    }
    let arn = input.body_string(arn_member)?.ok_or_else(|| {
        ApiError::invalid_request(format!("Either {name_member} or {arn_member} is required"))
    })?;
    arn.rsplit_once(&format!(":{kind}/"))
        .map(|(_, n)| n.to_string())
        .filter(|n| validate::is_thing_name(n))
        .ok_or_else(|| ApiError::invalid_request(format!("Invalid {arn_member} {arn:?}")))
}

/// Validates the input of an IoT operation and turns it into a [`Call`].
pub fn parse_call(op: Operation, input: &Input<'_>) -> Result<Call, ApiError> {
    Ok(match op {
        Operation::DescribeCertificate => Call::Describe {
            id: input.cert_id()?,
        },
        Operation::UpdateCertificate => {
            let id = input.cert_id()?;
            let new_status = match input.query.get("newStatus") {
                None => {
                    return Err(ApiError::invalid_request(
                        "1 validation error detected: Value null at 'newStatus' failed to satisfy constraint: Member must not be null",
                    ))
                }
                Some(s) if !validate::is_status(s) => {
                    return Err(ApiError::invalid_request(format!(
                        "1 validation error detected: Value '{s}' at 'newStatus' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        validate::STATUSES.join(", ")
                    )))
                }
                Some(s) if s == "PENDING_TRANSFER" || s == "PENDING_ACTIVATION" => {
                    return Err(ApiError::invalid_request(format!(
                        "The certificate status cannot be set to {s}"
                    )))
                }
                Some(s) => s.clone(),
            };
            Call::Update { id, new_status }
        }
        Operation::ListCertificates => Call::ListCertificates {
            page: input.page(false)?,
        },
        Operation::ListOutgoingCertificates => Call::ListOutgoing {
            page: input.page(false)?,
        },
        Operation::ListAttachedPolicies => {
            let target = input.label(0).to_string();
            if target.is_empty() {
                return Err(ApiError::invalid_request("target must not be empty"));
            }
            Call::ListAttachedPolicies {
                target,
                recursive: input.bool_param("recursive", false)?,
                page: Page {
                    size: input.size_param("pageSize", DEFAULT_PAGE_SIZE)?,
                    marker: input.marker("marker", true)?,
                    ascending: true,
                },
            }
        }
        Operation::AttachPolicy => Call::AttachPolicy {
            policy: input.policy_name()?,
            target: input.body_target()?,
        },
        Operation::DetachPolicy => Call::DetachPolicy {
            policy: input.policy_name()?,
            target: input.body_target()?,
        },
        Operation::ListPrincipalPolicies => Call::ListPrincipalPolicies {
            principal: input.header("x-amzn-iot-principal", "principal")?,
            page: input.page(true)?,
        },
        Operation::DetachPrincipalPolicy => Call::DetachPolicy {
            policy: input.policy_name()?,
            target: input.header("x-amzn-iot-principal", "principal")?,
        },
        Operation::ListPrincipalThings => Call::ListPrincipalThings {
            principal: input.header("x-amzn-principal", "principal")?,
            page: Page {
                size: input.size_param("maxResults", DEFAULT_MAX_RESULTS)?,
                marker: input.marker("nextToken", false)?,
                ascending: true,
            },
        },
        Operation::AttachThingPrincipal => Call::AttachThing {
            thing: input.thing_name()?,
            principal: input.header("x-amzn-principal", "principal")?,
            exclusive: input.principal_type()? == Some(true),
        },
        Operation::ListPrincipalThingsV2 => Call::ListPrincipalThingsV2 {
            principal: input.header("x-amzn-principal", "principal")?,
            only: input.principal_type()?,
            page: input.token_page()?,
        },
        Operation::ListThingPrincipalsV2 => Call::ListThingPrincipalsV2 {
            name: input.name_label("thingName")?,
            only: input.principal_type()?,
            page: input.token_page()?,
        },
        Operation::DetachThingPrincipal => Call::DetachThing {
            thing: input.thing_name()?,
            principal: input.header("x-amzn-principal", "principal")?,
        },
        Operation::TransferCertificate => {
            let id = input.cert_id()?;
            let target = match input.query.get("targetAwsAccount") {
                Some(t) if validate::is_account_id(t) => t.clone(),
                Some(t) => {
                    return Err(ApiError::invalid_request(format!(
                        "1 validation error detected: Value '{t}' at 'targetAwsAccount' failed to satisfy constraint: Member must have length 12 and match pattern [0-9]+"
                    )))
                }
                None => {
                    return Err(ApiError::invalid_request(
                        "1 validation error detected: Value null at 'targetAwsAccount' failed to satisfy constraint: Member must not be null",
                    ))
                }
            };
            Call::Transfer {
                id,
                target,
                message: input.message("transferMessage")?,
            }
        }
        Operation::AcceptCertificateTransfer => Call::Accept {
            id: input.cert_id()?,
            set_as_active: input.bool_param("setAsActive", false)?,
        },
        Operation::RejectCertificateTransfer => Call::Reject {
            id: input.cert_id()?,
            reason: input.message("rejectReason")?,
        },
        Operation::CancelCertificateTransfer => Call::Cancel {
            id: input.cert_id()?,
        },
        Operation::CreatePolicy => {
            let name = input.policy_name()?;
            let document = input.body_string("policyDocument")?.ok_or_else(|| {
                ApiError::invalid_request(
                    "1 validation error detected: Value null at 'policyDocument' failed to satisfy constraint: Member must not be null",
                )
            })?;
            Call::CreatePolicy { name, document }
        }
        Operation::GetPolicy => Call::GetPolicy {
            name: input.policy_name()?,
        },
        Operation::ListPolicies => Call::ListPolicies {
            page: input.page(true)?,
        },
        Operation::CreateThing => {
            let name = input.name_label("thingName")?;
            let thing_type = input.body_name("thingTypeName")?;
            let payload = input.body_object("attributePayload")?;
            Call::CreateThing {
                name,
                thing_type,
                attributes: attributes_of(payload.as_ref())?,
            }
        }
        Operation::DescribeThing => Call::DescribeThing {
            name: input.name_label("thingName")?,
        },
        Operation::ListThings => {
            let q = |k: &str| input.query.get(k).cloned();
            let filter = ThingFilter {
                thing_type: q("thingTypeName"),
                attribute_name: q("attributeName"),
                attribute_value: q("attributeValue"),
                prefix: input.bool_param("usePrefixAttributeValue", false)?,
            };
            if let Some(t) = &filter.thing_type {
                check_name(t, "thingTypeName")?;
            }
            if filter
                .attribute_name
                .as_deref()
                .is_some_and(|n| !validate::is_attribute_name(n))
                || filter
                    .attribute_value
                    .as_deref()
                    .is_some_and(|v| !validate::is_attribute_value(v))
            {
                return Err(ApiError::invalid_request(
                    "Invalid attributeName or attributeValue",
                ));
            }
            Call::ListThings {
                filter,
                page: input.token_page()?,
            }
        }
        Operation::ListThingPrincipals => Call::ListThingPrincipals {
            name: input.name_label("thingName")?,
            page: input.token_page()?,
        },
        Operation::CreateThingType => {
            let name = input.name_label("thingTypeName")?;
            let props = input
                .body_object("thingTypeProperties")?
                .unwrap_or_default();
            let description = match props.get("thingTypeDescription") {
                None | Some(Value::Null) => None,
                Some(Value::String(d)) if d.chars().count() <= 2028 => Some(d.clone()),
                Some(_) => return Err(ApiError::invalid_request("Invalid thingTypeDescription")),
            };
            let searchable_attributes = match props.get("searchableAttributes") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) if a.len() <= MAX_SEARCHABLE_ATTRIBUTES => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ApiError::invalid_request("Invalid searchableAttributes"))?,
                Some(_) => return Err(ApiError::invalid_request("Invalid searchableAttributes")),
            };
            Call::CreateThingType {
                name,
                definition: ThingTypeDefinition {
                    description,
                    searchable_attributes,
                    mqtt5: propagating_attributes(props.get("mqtt5Configuration"))?,
                },
            }
        }
        Operation::DeprecateThingType => Call::DeprecateThingType {
            name: input.name_label("thingTypeName")?,
            undo: input.body_bool("undoDeprecate")?,
        },
        Operation::DescribeThingType => Call::DescribeThingType {
            name: input.name_label("thingTypeName")?,
        },
        Operation::CreateThingGroup => {
            let name = input.name_label("thingGroupName")?;
            let parent = input.body_name("parentGroupName")?;
            let props = input
                .body_object("thingGroupProperties")?
                .unwrap_or_default();
            let description = props
                .get("thingGroupDescription")
                .and_then(Value::as_str)
                .map(str::to_string);
            let payload = match props.get("attributePayload") {
                Some(Value::Object(p)) => Some(p.clone()),
                _ => None,
            };
            Call::CreateThingGroup {
                name,
                definition: GroupDefinition {
                    parent,
                    description,
                    attributes: attributes_of(payload.as_ref())?,
                },
            }
        }
        Operation::DescribeThingGroup => Call::DescribeThingGroup {
            name: input.name_label("thingGroupName")?,
        },
        Operation::AddThingToThingGroup => Call::AddThingToThingGroup {
            group: name_or_arn(input, "thingGroupName", "thingGroupArn", "thinggroup")?,
            thing: name_or_arn(input, "thingName", "thingArn", "thing")?,
            override_dynamic: input.body_bool("overrideDynamicGroups")?,
        },
        Operation::RemoveThingFromThingGroup => Call::RemoveThingFromThingGroup {
            group: name_or_arn(input, "thingGroupName", "thingGroupArn", "thinggroup")?,
            thing: name_or_arn(input, "thingName", "thingArn", "thing")?,
        },
        Operation::DeleteThingGroup => {
            if let Some(v) = input.query.get("expectedVersion") {
                if v.parse::<i64>().is_err() {
                    return Err(ApiError::invalid_request(format!(
                        "Invalid expectedVersion '{v}'"
                    )));
                }
            }
            Call::DeleteThingGroup {
                name: input.name_label("thingGroupName")?,
            }
        }
        Operation::GetThingConnectivityData => {
            // The body (includeSocketInformation) is optional; it must be JSON if present.
            input.json()?;
            Call::GetThingConnectivityData {
                name: input.name_label("thingName")?,
            }
        }
        Operation::CreateJob
        | Operation::DescribeJob
        | Operation::GetJobDocument
        | Operation::ListJobExecutionsForJob
        | Operation::ListJobExecutionsForThing
        | Operation::DescribeJobExecution
        | Operation::CancelJob
        | Operation::DeleteJob => {
            return crate::jobs::parse::parse_call(op, input.labels, input.query, input.body)
        }
        Operation::ListThingGroupsForThing => Call::ListThingGroupsForThing {
            name: input.name_label("thingName")?,
            page: input.token_page()?,
        },
        Operation::ListThingsInThingGroup => Call::ListThingsInThingGroup {
            name: input.name_label("thingGroupName")?,
            recursive: input.bool_param("recursive", false)?,
            page: input.token_page()?,
        },
        Operation::ListCertificatesByCA => Call::ListCertificatesByCa {
            ca_id: input.cert_id()?,
            page: input.page(false)?,
        },
        Operation::DescribeEndpoint => Call::DescribeEndpoint {
            endpoint_type: input.query.get("endpointType").cloned(),
        },
        Operation::RegisterCertificateWithoutCA => {
            let pem = match input.body_string("certificatePem")? {
                Some(p) if !p.is_empty() && p.len() <= 65536 => p,
                _ => {
                    return Err(ApiError::invalid_request(
                        "1 validation error detected: Value at 'certificatePem' failed to satisfy constraint: Member must have length between 1 and 65536",
                    ))
                }
            };
            let status = match input.body_string("status")? {
                None => "ACTIVE".to_string(),
                Some(s) if s == "PENDING_TRANSFER" || s == "PENDING_ACTIVATION" => {
                    return Err(ApiError::invalid_request(format!(
                        "A certificate cannot be registered with status {s}"
                    )))
                }
                Some(s) if validate::is_status(&s) => s,
                Some(s) => {
                    return Err(ApiError::invalid_request(format!(
                        "1 validation error detected: Value '{s}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        validate::STATUSES.join(", ")
                    )))
                }
            };
            Call::RegisterWithoutCa { pem, status }
        }
        Operation::DescribeCACertificate => Call::DescribeCaCertificate {
            id: input.cert_id()?,
        },
        Operation::ListRoleAliases => Call::ListRoleAliases {
            page: input.page(true)?,
        },
        Operation::GetCallerIdentity | Operation::AssumeRole => {
            return Err(ApiError::invalid_request("not an IoT operation"));
        }
        Operation::SearchIndex
        | Operation::GetIndexingConfiguration
        | Operation::UpdateIndexingConfiguration => {
            return crate::fleet_index::parse_call(op, input.body)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op_of(m: Method, p: &str) -> Option<Operation> {
        match route(&m, p) {
            Route::Op(op, _) => Some(op),
            _ => None,
        }
    }

    #[test]
    fn routes() {
        let id = "a".repeat(64);
        assert_eq!(
            op_of(Method::GET, &format!("/certificates/{id}")),
            Some(Operation::DescribeCertificate)
        );
        assert_eq!(
            op_of(Method::GET, "/certificates"),
            Some(Operation::ListCertificates)
        );
        assert_eq!(
            op_of(Method::DELETE, "/things/t1/principals"),
            Some(Operation::DetachThingPrincipal)
        );
        assert_eq!(op_of(Method::DELETE, "/certificates"), None);
        assert_eq!(route(&Method::POST, "/"), Route::Sts);
        assert_eq!(
            route(&Method::GET, "/_sim/stats"),
            Route::Sim(Method::GET, "stats".into())
        );
        let arn = format!("arn:aws:iot:us-east-1:111111111111:cert/{id}");
        let enc = arn.replace(':', "%3A").replace('/', "%2F");
        assert_eq!(
            route(&Method::POST, &format!("/attached-policies/{enc}")),
            Route::Op(Operation::ListAttachedPolicies, vec![arn.clone()])
        );
        assert_eq!(
            route(&Method::POST, &format!("/attached-policies/{arn}")),
            Route::Op(Operation::ListAttachedPolicies, vec![arn])
        );
    }

    #[test]
    fn query() {
        let q = parse_query(Some("a=1&b=x%2By&a=2&c"));
        assert_eq!(q["a"], "1");
        assert_eq!(q["b"], "x+y");
        assert_eq!(q["c"], "");
    }
}
