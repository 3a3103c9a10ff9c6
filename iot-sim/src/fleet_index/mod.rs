//! Fleet indexing: the indexing configuration of each (account, region), the connectivity
//! record of each device, and the operations on them: SearchIndex over the registry's
//! things (the query subset of [`query`]), GetIndexingConfiguration and
//! UpdateIndexingConfiguration.
//!
//! As on AWS, indexing is off until UpdateIndexingConfiguration (or a seed's `indexing`)
//! turns it on: SearchIndex then answers 404 ResourceNotFoundException. The index is the
//! registry itself, always current (AWS's lags behind by seconds to minutes). Connectivity
//! is indexed only with `thingConnectivityIndexingMode` STATUS; a thing whose device never
//! connected then reads `connected: false` with nothing else, as the API reference says.
//! Connectivity records are kept per client id (a thing's name) whether indexed or not, so
//! that turning connectivity indexing on shows what the devices did before: they are set
//! by a seed or `POST /_sim/connectivity` ([`ConnectivityChange`]).

pub mod query;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::validate;
use crate::world::{hex_key, Call, Caller, Page, Reply, World};
use query::Doc;

/// The only thing index.
pub const THINGS_INDEX: &str = "AWS_Things";

/// The thing group index (not searchable here).
pub const GROUPS_INDEX: &str = "AWS_ThingGroups";

/// Default `maxResults` of SearchIndex (AWS's default is not documented).
pub const DEFAULT_SEARCH_RESULTS: usize = 25;

/// Largest `maxResults` of SearchIndex ("This maximum number cannot exceed 100").
pub const MAX_SEARCH_RESULTS: usize = 100;

/// `DisconnectReason` values of the API model.
pub const DISCONNECT_REASONS: [&str; 15] = [
    "AUTH_ERROR",
    "CLIENT_INITIATED_DISCONNECT",
    "CLIENT_ERROR",
    "CONNECTION_LOST",
    "DUPLICATE_CLIENTID",
    "FORBIDDEN_ACCESS",
    "MQTT_KEEP_ALIVE_TIMEOUT",
    "SERVER_ERROR",
    "SERVER_INITIATED_DISCONNECT",
    "API_INITIATED_DISCONNECT",
    "THROTTLED",
    "WEBSOCKET_TTL_EXPIRATION",
    "CUSTOMAUTH_TTL_EXPIRATION",
    "UNKNOWN",
    "NONE",
];

/// `thingIndexingMode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThingIndexingMode {
    /// No thing index.
    #[default]
    Off,
    /// Registry data.
    Registry,
    /// Registry and classic shadow data (no shadow is simulated).
    RegistryAndShadow,
}

impl ThingIndexingMode {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ThingIndexingMode::Off => "OFF",
            ThingIndexingMode::Registry => "REGISTRY",
            ThingIndexingMode::RegistryAndShadow => "REGISTRY_AND_SHADOW",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Off, Self::Registry, Self::RegistryAndShadow]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// One thing index configuration (`ThingIndexingConfiguration`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThingIndexing {
    /// `thingIndexingMode`.
    pub mode: ThingIndexingMode,
    /// `thingConnectivityIndexingMode` STATUS.
    pub connectivity: bool,
    /// `deviceDefenderIndexingMode` as given (OFF or VIOLATIONS; nothing is indexed).
    pub device_defender: Option<String>,
    /// `namedShadowIndexingMode` as given (OFF or ON; nothing is indexed).
    pub named_shadow: Option<String>,
    /// `customFields`: (name, type), as given.
    pub custom_fields: Vec<(String, String)>,
    /// `filter`, as given.
    pub filter: Option<Value>,
}

/// The fleet index of one (account, region).
#[derive(Clone, Debug, Default)]
pub(crate) struct AccountIndex {
    pub(crate) things: ThingIndexing,
    groups: bool,
    /// The thing index is being built: SearchIndex answers IndexNotReadyException.
    pub(crate) building: bool,
    /// By client id (a thing's name).
    pub(crate) connectivity: BTreeMap<String, Connectivity>,
}

/// What the broker knows of one device's session.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Connectivity {
    /// Connected now.
    pub connected: bool,
    /// Last connect or disconnect, milliseconds since the epoch (absent: the record has
    /// none, as for a device disconnected for about an hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Why it disconnected (a `DisconnectReason` value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<String>,
}

/// The `indexing` of a seeded account: modes given replace the account's; connectivity
/// records are added (replacing those of the same client id).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeedIndexing {
    /// `thingIndexingMode`: `OFF`, `REGISTRY` or `REGISTRY_AND_SHADOW`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_indexing_mode: Option<String>,
    /// `thingConnectivityIndexingMode`: `OFF` or `STATUS` (needs thing indexing on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_connectivity_indexing_mode: Option<String>,
    /// `thingGroupIndexingMode`: `OFF` or `ON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_group_indexing_mode: Option<String>,
    /// `ACTIVE` or `BUILDING` (SearchIndex answers IndexNotReadyException until an
    /// UpdateIndexingConfiguration or a seed says `ACTIVE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_status: Option<String>,
    /// Connectivity by client id (a thing's name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connectivity: BTreeMap<String, Connectivity>,
}

fn default_region() -> String {
    crate::config::DEFAULT_REGION.to_string()
}

/// A device connects or disconnects (`POST /_sim/connectivity`,
/// [`crate::SimHandle::set_connectivity`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectivityChange {
    /// The account.
    pub account: String,
    /// The region (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The client id: the thing's name.
    pub thing: String,
    /// Connected after the change.
    pub connected: bool,
    /// When, in milliseconds since the epoch (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Why it disconnected (a `DisconnectReason` value; default `CLIENT_INITIATED_DISCONNECT`
    /// for a disconnect, none for a connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<String>,
}

/// What UpdateIndexingConfiguration asks, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexingUpdate {
    /// The new thing indexing configuration, if given (it replaces the old one whole).
    pub things: Option<ThingIndexing>,
    /// The new `thingGroupIndexingMode` (ON: true), if given.
    pub groups: Option<bool>,
}

impl Connectivity {
    fn check(&self, client: &str) -> Result<(), String> {
        if let Some(r) = &self.disconnect_reason {
            if !DISCONNECT_REASONS.contains(&r.as_str()) {
                return Err(format!(
                    "connectivity of {client}: disconnect_reason {r:?} is not one of {}",
                    DISCONNECT_REASONS.join(", ")
                ));
            }
        }
        if self.timestamp.is_some_and(|t| t < 0) {
            return Err(format!("connectivity of {client}: negative timestamp"));
        }
        Ok(())
    }
}

fn bad_member(member: &str, value: &Value, allowed: &[&str]) -> ApiError {
    ApiError::invalid_request(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        value.as_str().unwrap_or(&value.to_string()),
        allowed.join(", ")
    ))
}

/// A string member that must be one of `allowed`.
fn enum_member(
    obj: &Map<String, Value>,
    member: &str,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match obj.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(v) => Err(bad_member(member, v, allowed)),
    }
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::invalid_request(
            "Request body is not a JSON object",
        )),
    }
}

fn thing_indexing(obj: &Map<String, Value>) -> Result<ThingIndexing, ApiError> {
    let mode = enum_member(obj, "thingIndexingMode", &["OFF", "REGISTRY", "REGISTRY_AND_SHADOW"])?
        .ok_or_else(|| {
            ApiError::invalid_request(
                "1 validation error detected: Value null at 'thingIndexingConfiguration.thingIndexingMode' failed to satisfy constraint: Member must not be null",
            )
        })?;
    let mode = ThingIndexingMode::parse(&mode).expect("checked");
    let connectivity = enum_member(obj, "thingConnectivityIndexingMode", &["OFF", "STATUS"])?
        .as_deref()
        == Some("STATUS");
    if connectivity && mode == ThingIndexingMode::Off {
        return Err(ApiError::invalid_request(
            "thingConnectivityIndexingMode STATUS needs thingIndexingMode REGISTRY or REGISTRY_AND_SHADOW",
        ));
    }
    let mut custom_fields = Vec::new();
    match obj.get("customFields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(fields)) => {
            for f in fields {
                let name = f.get("name").and_then(Value::as_str);
                let ty = f.get("type").and_then(Value::as_str);
                match (name, ty) {
                    (Some(n), Some(t)) if ["Number", "String", "Boolean"].contains(&t) => {
                        custom_fields.push((n.to_string(), t.to_string()))
                    }
                    _ => {
                        return Err(ApiError::invalid_request(format!(
                            "Invalid custom field {f}: expected a name and a type Number, String or Boolean"
                        )))
                    }
                }
            }
        }
        Some(_) => return Err(ApiError::invalid_request("customFields must be a list")),
    }
    Ok(ThingIndexing {
        mode,
        connectivity,
        device_defender: enum_member(obj, "deviceDefenderIndexingMode", &["OFF", "VIOLATIONS"])?,
        named_shadow: enum_member(obj, "namedShadowIndexingMode", &["OFF", "ON"])?,
        custom_fields,
        filter: obj.get("filter").filter(|v| !v.is_null()).cloned(),
    })
}

/// Validates the input of a fleet indexing operation (its JSON body) and turns it into a
/// [`Call`].
pub fn parse_call(op: crate::ops::Operation, body: &[u8]) -> Result<Call, ApiError> {
    use crate::ops::Operation;
    let obj = body_object(body)?;
    let string = |member: &str| -> Result<Option<String>, ApiError> {
        match obj.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Member '{member}' must be a string"
            ))),
        }
    };
    match op {
        Operation::SearchIndex => {
            let index = string("indexName")?.unwrap_or_else(|| THINGS_INDEX.to_string());
            if !validate::is_thing_name(&index) {
                return Err(ApiError::invalid_request(format!(
                    "1 validation error detected: Value '{index}' at 'indexName' failed to satisfy constraint: Member must match pattern [a-zA-Z0-9:_-]+ with length 1..128"
                )));
            }
            let query = match string("queryString")? {
                Some(q) if !q.is_empty() => q,
                _ => {
                    return Err(ApiError::invalid_request(
                        "1 validation error detected: Value at 'queryString' failed to satisfy constraint: Member must have length greater than or equal to 1",
                    ))
                }
            };
            let size = match obj.get("maxResults") {
                None | Some(Value::Null) => DEFAULT_SEARCH_RESULTS,
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_SEARCH_RESULTS as u64).contains(&n) => n as usize,
                    _ => {
                        return Err(ApiError::invalid_request(format!(
                            "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_SEARCH_RESULTS}"
                        )))
                    }
                },
            };
            // The tokens this simulator hands out are hex keys.
            let marker = string("nextToken")?.filter(|t| !t.is_empty());
            if let Some(t) = &marker {
                if !t.bytes().all(|b| b.is_ascii_hexdigit()) || t.len() % 2 == 1 {
                    return Err(ApiError::invalid_request(format!(
                        "Invalid nextToken {t:?}"
                    )));
                }
            }
            string("queryVersion")?;
            Ok(Call::SearchIndex {
                index,
                query,
                page: Page {
                    size,
                    marker,
                    ascending: true,
                },
            })
        }
        Operation::GetIndexingConfiguration => Ok(Call::GetIndexingConfiguration),
        Operation::UpdateIndexingConfiguration => {
            let things = match obj.get("thingIndexingConfiguration") {
                None | Some(Value::Null) => None,
                Some(Value::Object(o)) => Some(thing_indexing(o)?),
                Some(_) => {
                    return Err(ApiError::invalid_request(
                        "thingIndexingConfiguration must be an object",
                    ))
                }
            };
            let groups = match obj.get("thingGroupIndexingConfiguration") {
                None | Some(Value::Null) => None,
                Some(Value::Object(o)) => {
                    let mode = enum_member(o, "thingGroupIndexingMode", &["OFF", "ON"])?
                        .ok_or_else(|| {
                            ApiError::invalid_request(
                                "1 validation error detected: Value null at 'thingGroupIndexingConfiguration.thingGroupIndexingMode' failed to satisfy constraint: Member must not be null",
                            )
                        })?;
                    Some(mode == "ON")
                }
                Some(_) => {
                    return Err(ApiError::invalid_request(
                        "thingGroupIndexingConfiguration must be an object",
                    ))
                }
            };
            Ok(Call::UpdateIndexingConfiguration {
                update: IndexingUpdate { things, groups },
            })
        }
        other => Err(ApiError::invalid_request(format!(
            "not a fleet indexing operation: {}",
            other.name()
        ))),
    }
}

/// `arn:aws:iot:REGION:ACCOUNT:index/NAME`: what an IAM policy names for SearchIndex.
pub fn index_arn(region: &str, account: &str, index: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:index/{index}")
}

/// Field (`managedFields`, `customFields`).
#[derive(Serialize)]
struct FieldOut<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
}

/// ThingIndexingConfiguration.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingIndexingOut<'a> {
    thing_indexing_mode: &'a str,
    thing_connectivity_indexing_mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_defender_indexing_mode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    named_shadow_indexing_mode: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    managed_fields: Vec<FieldOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    custom_fields: Vec<FieldOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a Value>,
}

/// ThingGroupIndexingConfiguration.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupIndexingOut {
    thing_group_indexing_mode: &'static str,
}

/// GetIndexingConfigurationResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetIndexingConfigurationResponse<'a> {
    thing_indexing_configuration: ThingIndexingOut<'a>,
    thing_group_indexing_configuration: GroupIndexingOut,
}

/// ThingConnectivity.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectivityOut<'a> {
    connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason: Option<&'a str>,
}

/// ThingDocument.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingDocument<'a> {
    thing_name: &'a str,
    thing_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_type_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    thing_group_names: Vec<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connectivity: Option<ConnectivityOut<'a>>,
}

/// GetThingConnectivityDataResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectivityDataResponse<'a> {
    thing_name: &'a str,
    connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason: Option<&'a str>,
}

/// SearchIndexResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchIndexResponse<'a> {
    things: Vec<ThingDocument<'a>>,
    thing_groups: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// The managed fields of a thing indexing configuration (as AWS lists them).
fn managed_fields(t: &ThingIndexing) -> Vec<FieldOut<'static>> {
    let field = |name, ty| FieldOut { name, ty };
    let mut out = Vec::new();
    if t.mode == ThingIndexingMode::Off {
        return out;
    }
    out.extend([
        field("thingName", "String"),
        field("thingId", "String"),
        field("registry.version", "Number"),
        field("registry.thingTypeName", "String"),
        field("registry.thingGroupNames", "String"),
    ]);
    if t.mode == ThingIndexingMode::RegistryAndShadow {
        out.extend([
            field("shadow.version", "Number"),
            field("shadow.hasDelta", "Boolean"),
        ]);
    }
    if t.connectivity {
        out.extend([
            field("connectivity.connected", "Boolean"),
            field("connectivity.timestamp", "Number"),
            field("connectivity.version", "Number"),
            field("connectivity.disconnectReason", "String"),
        ]);
    }
    out
}

fn now_millis() -> i64 {
    (crate::world::now_epoch() * 1000.0) as i64
}

impl World {
    /// Runs SearchIndex, GetIndexingConfiguration or UpdateIndexingConfiguration.
    pub(crate) fn fleet_index_call(
        &mut self,
        caller: &Caller,
        call: Call,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        match call {
            Call::GetIndexingConfiguration => {
                let index = self.data(r, a).map(|d| &d.index);
                let default = AccountIndex::default();
                let index = index.unwrap_or(&default);
                let t = &index.things;
                Ok(Reply::of(&GetIndexingConfigurationResponse {
                    thing_indexing_configuration: ThingIndexingOut {
                        thing_indexing_mode: t.mode.as_str(),
                        thing_connectivity_indexing_mode: if t.connectivity {
                            "STATUS"
                        } else {
                            "OFF"
                        },
                        device_defender_indexing_mode: t.device_defender.as_deref(),
                        named_shadow_indexing_mode: t.named_shadow.as_deref(),
                        managed_fields: managed_fields(t),
                        custom_fields: t
                            .custom_fields
                            .iter()
                            .map(|(name, ty)| FieldOut { name, ty })
                            .collect(),
                        filter: t.filter.as_ref(),
                    },
                    thing_group_indexing_configuration: GroupIndexingOut {
                        thing_group_indexing_mode: if index.groups { "ON" } else { "OFF" },
                    },
                }))
            }
            Call::UpdateIndexingConfiguration { update } => {
                let index = &mut self.data_entry(r, a).index;
                if let Some(t) = update.things {
                    index.things = t;
                    // The simulator builds an index at once.
                    index.building = false;
                }
                if let Some(g) = update.groups {
                    index.groups = g;
                }
                Ok(Reply::Empty)
            }
            Call::SearchIndex { index, query, page } => self.search(r, a, &index, &query, &page),
            Call::GetThingConnectivityData { name } => self.connectivity_data(r, a, &name),
            other => Err(ApiError::invalid_request(format!(
                "not a fleet indexing call: {other:?}"
            ))),
        }
    }

    /// GetThingConnectivityData: what connectivity indexing knows of the device whose
    /// client id is `name`. UNCONFIRMED: what AWS answers while connectivity indexing is
    /// off (here InvalidRequestException, naming the setting).
    fn connectivity_data(&self, r: &str, a: &str, name: &str) -> Result<Reply, ApiError> {
        let data = self.data(r, a);
        if !data.is_some_and(|d| d.things.contains_key(name)) {
            return Err(ApiError::not_found(format!("Thing {name} does not exist")));
        }
        let index = &data.expect("the thing exists").index;
        if index.things.mode == ThingIndexingMode::Off || !index.things.connectivity {
            return Err(ApiError::invalid_request(
                "Thing connectivity data is available only with fleet indexing's thingConnectivityIndexingMode STATUS (UpdateIndexingConfiguration)",
            ));
        }
        if index.building {
            return Err(ApiError::index_not_ready(
                "Index AWS_Things is being built; connectivity data is not available yet",
            ));
        }
        let c = index.connectivity.get(name);
        Ok(Reply::of(&ConnectivityDataResponse {
            thing_name: name,
            connected: c.is_some_and(|c| c.connected),
            timestamp: c.and_then(|c| c.timestamp).map(|ms| ms as f64 / 1000.0),
            disconnect_reason: c.and_then(|c| c.disconnect_reason.as_deref()),
        }))
    }

    fn search(
        &self,
        r: &str,
        a: &str,
        index_name: &str,
        text: &str,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let data = self.data(r, a);
        let default = AccountIndex::default();
        let index = data.map(|d| &d.index).unwrap_or(&default);
        let missing = || {
            ApiError::not_found(format!(
                "Index {index_name} does not exist. Please enable index by calling UpdateIndexingConfiguration"
            ))
        };
        match index_name {
            THINGS_INDEX if index.things.mode != ThingIndexingMode::Off => {}
            GROUPS_INDEX if index.groups => {
                return Err(ApiError::invalid_request(format!(
                    "iot-sim does not simulate searching {GROUPS_INDEX}"
                )))
            }
            _ => return Err(missing()),
        }
        if index.building {
            return Err(ApiError::index_not_ready(format!(
                "Index {index_name} is being built; it cannot be searched yet"
            )));
        }
        let query = query::parse(text).map_err(ApiError::invalid_query)?;
        let Some(d) = data else {
            return Ok(Reply::of(&SearchIndexResponse {
                things: Vec::new(),
                thing_groups: Vec::new(),
                next_token: None,
            }));
        };
        let connectivity = |name: &str| -> Option<(bool, Option<&Connectivity>)> {
            index.things.connectivity.then(|| {
                let c = index.connectivity.get(name);
                (c.is_some_and(|c| c.connected), c)
            })
        };
        let items: Vec<(String, ThingDocument<'_>)> = d
            .things
            .iter()
            .filter_map(|(name, t)| {
                let conn = connectivity(name);
                let doc = Doc {
                    name,
                    thing_type: t.thing_type.as_deref(),
                    groups: t.groups.iter().map(String::as_str).collect(),
                    attributes: &t.attributes,
                    connected: conn.map(|(c, _)| c),
                };
                if !query.matches(&doc) {
                    return None;
                }
                let document = ThingDocument {
                    thing_name: name,
                    thing_id: &t.id,
                    thing_type_name: doc.thing_type,
                    thing_group_names: doc.groups,
                    attributes: &t.attributes,
                    // A device that never connected reads `connected: false`, nothing else.
                    connectivity: conn.map(|(connected, c)| ConnectivityOut {
                        connected,
                        timestamp: c.and_then(|c| c.timestamp),
                        disconnect_reason: c.and_then(|c| c.disconnect_reason.as_deref()),
                    }),
                };
                Some((hex_key(name), document))
            })
            .collect();
        let (things, next_token) = page.ascending_of(items);
        Ok(Reply::of(&SearchIndexResponse {
            things,
            thing_groups: Vec::new(),
            next_token,
        }))
    }

    /// Loads the `indexing` of one account's seed.
    pub(crate) fn seed_fleet_index(
        &mut self,
        region: &str,
        account: &str,
        seed: Option<&SeedIndexing>,
    ) -> Result<(), String> {
        let Some(s) = seed else { return Ok(()) };
        let bad = |what: &str, v: &str, allowed: &str| {
            format!("indexing of {account} in {region}: {what} {v:?} is not one of {allowed}")
        };
        let index = &mut self.data_entry(region, account).index;
        if let Some(m) = &s.thing_indexing_mode {
            index.things.mode = ThingIndexingMode::parse(m).ok_or_else(|| {
                bad(
                    "thing_indexing_mode",
                    m,
                    "OFF, REGISTRY, REGISTRY_AND_SHADOW",
                )
            })?;
        }
        if let Some(m) = &s.thing_connectivity_indexing_mode {
            index.things.connectivity = match m.as_str() {
                "STATUS" => true,
                "OFF" => false,
                _ => return Err(bad("thing_connectivity_indexing_mode", m, "OFF, STATUS")),
            };
        }
        if index.things.connectivity && index.things.mode == ThingIndexingMode::Off {
            return Err(format!(
                "indexing of {account} in {region}: thing_connectivity_indexing_mode STATUS needs thing_indexing_mode REGISTRY or REGISTRY_AND_SHADOW"
            ));
        }
        if let Some(m) = &s.thing_group_indexing_mode {
            index.groups = match m.as_str() {
                "ON" => true,
                "OFF" => false,
                _ => return Err(bad("thing_group_indexing_mode", m, "OFF, ON")),
            };
        }
        if let Some(st) = &s.index_status {
            index.building = match st.as_str() {
                "BUILDING" => true,
                "ACTIVE" => false,
                _ => return Err(bad("index_status", st, "ACTIVE, BUILDING")),
            };
        }
        for (client, c) in &s.connectivity {
            c.check(client)?;
            index.connectivity.insert(client.clone(), c.clone());
        }
        Ok(())
    }

    /// Records that a device connected or disconnected.
    pub fn set_connectivity(&mut self, change: &ConnectivityChange) -> Result<(), String> {
        if !validate::is_account_id(&change.account) {
            return Err(format!(
                "invalid account id {:?}: expected 12 digits",
                change.account
            ));
        }
        validate::check_region(&change.region)?;
        let record = Connectivity {
            connected: change.connected,
            timestamp: Some(change.timestamp.unwrap_or_else(now_millis)),
            disconnect_reason: match (&change.disconnect_reason, change.connected) {
                (Some(r), _) => Some(r.clone()),
                (None, false) => Some("CLIENT_INITIATED_DISCONNECT".to_string()),
                (None, true) => None,
            },
        };
        record.check(&change.thing)?;
        self.data_entry(&change.region, &change.account)
            .index
            .connectivity
            .insert(change.thing.clone(), record);
        Ok(())
    }
}
