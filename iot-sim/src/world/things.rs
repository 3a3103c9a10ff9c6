//! Things (CreateThing, DescribeThing, ListThings, ListThingPrincipals and its V2): a type,
//! attributes (at most 3 without a type, 50 with one) and the groups the thing is a direct
//! member of (`groups`). ListThings' attribute filter sees only searchable attributes: all
//! of an untyped thing's, only its type's `searchableAttributes` of a typed thing's.

use std::collections::BTreeMap;

use serde::Serialize;

use super::paging::{hex_key, Page};
use super::{random_uuid, AccountData, Caller, Reply, World};
use crate::arn::{cert_arn, thing_arn};
use crate::config::SeedThing;
use crate::errors::ApiError;
use crate::validate;

/// Most attributes of a thing without a thing type.
pub const MAX_ATTRIBUTES_UNTYPED: usize = 3;

/// Most attributes of a thing with a thing type.
pub const MAX_ATTRIBUTES_TYPED: usize = 50;

/// A thing.
#[derive(Clone, Debug)]
pub(crate) struct Thing {
    pub(crate) id: String,
    pub(crate) thing_type: Option<String>,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) version: u64,
    /// The groups it is a direct member of (static and dynamic), in the order it joined them.
    pub(crate) groups: Vec<String>,
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

/// ThingPrincipalObject.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingPrincipalObject {
    principal: String,
    thing_principal_type: &'static str,
}

/// ListThingPrincipalsV2Response.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListThingPrincipalsV2Response {
    thing_principal_objects: Vec<ThingPrincipalObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// The `thingPrincipalType` of an attachment.
pub(crate) fn principal_type(exclusive: bool) -> &'static str {
    if exclusive {
        "EXCLUSIVE_THING"
    } else {
        "NON_EXCLUSIVE_THING"
    }
}

/// The attribute limit of a thing of this type (or without one).
fn check_attributes(
    thing_type: Option<&str>,
    attributes: &BTreeMap<String, String>,
) -> Result<(), String> {
    let max = match thing_type {
        Some(_) => MAX_ATTRIBUTES_TYPED,
        None => MAX_ATTRIBUTES_UNTYPED,
    };
    if attributes.len() > max {
        return Err(format!(
            "A thing {} can have at most {max} attributes ({} given)",
            if thing_type.is_some() {
                "with a thing type"
            } else {
                "without a thing type"
            },
            attributes.len()
        ));
    }
    Ok(())
}

impl Thing {
    pub(super) fn new(
        thing_type: Option<String>,
        attributes: BTreeMap<String, String>,
        groups: Vec<String>,
    ) -> Self {
        Thing {
            id: random_uuid(),
            thing_type,
            attributes,
            version: 1,
            groups,
        }
    }

    /// Whether ListThings with `f` lists it: the attribute filter sees only searchable
    /// attributes.
    fn matches(&self, d: &AccountData, f: &ThingFilter) -> bool {
        if f.thing_type.is_some() && self.thing_type != f.thing_type {
            return false;
        }
        let Some(name) = &f.attribute_name else {
            return true;
        };
        let searchable = match &self.thing_type {
            None => true,
            Some(ty) => d
                .thing_types
                .get(ty)
                .is_some_and(|t| t.searchable_attributes.contains(name)),
        };
        let Some(value) = self.attributes.get(name).filter(|_| searchable) else {
            return false;
        };
        match &f.attribute_value {
            None => true,
            Some(want) if f.prefix => value.starts_with(want.as_str()),
            Some(want) => value == want,
        }
    }
}

impl World {
    /// Creates a thing without type or attributes unless it exists.
    pub(crate) fn ensure_thing(&mut self, region: &str, account: &str, name: &str) {
        self.data_entry(region, account)
            .things
            .entry(name.to_string())
            .or_insert_with(|| Thing::new(None, BTreeMap::new(), Vec::new()));
    }

    /// Seeds things (after their types and groups): a seeded thing replaces one of the same
    /// name; its groups follow the membership rules of AddThingToThingGroup.
    pub(super) fn seed_things(
        &mut self,
        region: &str,
        account: &str,
        things: &[SeedThing],
    ) -> Result<(), String> {
        for t in things {
            if !validate::is_thing_name(&t.name) {
                return Err(format!("invalid thing name {:?}", t.name));
            }
            let d = self.data_entry(region, account);
            if let Some(ty) = &t.thing_type {
                if !d.thing_types.contains_key(ty) {
                    return Err(format!("thing {}: unknown thing type {ty}", t.name));
                }
            }
            check_attributes(t.thing_type.as_deref(), &t.attributes)
                .map_err(|e| format!("thing {}: {e}", t.name))?;
            let mut groups: Vec<String> = Vec::new();
            for g in &t.groups {
                if groups.contains(g) {
                    continue;
                }
                super::groups::check_join(d, &groups, g, super::groups::Joining::Seeded)
                    .map_err(|e| format!("thing {}: {}", t.name, e.message))?;
                groups.push(g.clone());
            }
            d.things.insert(
                t.name.clone(),
                Thing::new(t.thing_type.clone(), t.attributes.clone(), groups),
            );
        }
        Ok(())
    }

    /// CreateThing: idempotent for the same type and attributes, 409 for others; a
    /// deprecated type takes no new things.
    pub(super) fn create_thing(
        &mut self,
        caller: &Caller,
        name: &str,
        thing_type: Option<String>,
        attributes: BTreeMap<String, String>,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let d = self.data_entry(r, a);
        if let Some(ty) = &thing_type {
            match d.thing_types.get(ty) {
                None => {
                    return Err(ApiError::not_found(format!(
                        "Thing type {ty} does not exist"
                    )))
                }
                Some(t) if t.deprecated.is_some() && !d.things.contains_key(name) => {
                    return Err(ApiError::invalid_request(format!(
                        "Can not create new thing with deprecated thing type: {ty}"
                    )))
                }
                Some(_) => {}
            }
        }
        check_attributes(thing_type.as_deref(), &attributes).map_err(ApiError::invalid_request)?;
        let t = match d.things.get(name) {
            // the same configuration succeeds, a different one is refused
            Some(t) if t.thing_type == thing_type && t.attributes == attributes => t,
            Some(_) => {
                return Err(ApiError::already_exists(format!(
                    "Thing {name} already exists in account with different attributes"
                )))
            }
            None => d.things.entry(name.to_string()).or_insert(Thing::new(
                thing_type,
                attributes,
                Vec::new(),
            )),
        };
        Ok(Reply::of(&CreateThingResponse {
            thing_name: name,
            thing_arn: thing_arn(r, a, name),
            thing_id: &t.id,
        }))
    }

    pub(super) fn thing(&self, caller: &Caller, name: &str) -> Result<&Thing, ApiError> {
        self.data(&caller.region, &caller.account)
            .and_then(|d| d.things.get(name))
            .ok_or_else(|| ApiError::not_found(format!("Thing {name} does not exist")))
    }

    /// DescribeThing.
    pub(super) fn describe_thing(&self, caller: &Caller, name: &str) -> Result<Reply, ApiError> {
        let t = self.thing(caller, name)?;
        Ok(Reply::of(&DescribeThingResponse {
            default_client_id: name,
            thing_name: name,
            thing_id: &t.id,
            thing_arn: thing_arn(&caller.region, &caller.account, name),
            thing_type_name: t.thing_type.as_deref(),
            attributes: &t.attributes,
            version: t.version,
        }))
    }

    /// ListThings, by name.
    pub(super) fn list_things(
        &self,
        caller: &Caller,
        filter: &ThingFilter,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let items: Vec<(String, ThingAttribute<'_>)> = self
            .data(r, a)
            .map(|d| {
                d.things
                    .iter()
                    .filter(|(_, t)| t.matches(d, filter))
                    .map(|(n, t)| {
                        let listed = ThingAttribute {
                            thing_name: n,
                            thing_type_name: t.thing_type.as_deref(),
                            thing_arn: thing_arn(r, a, n),
                            attributes: &t.attributes,
                            version: t.version,
                        };
                        (hex_key(n), listed)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (things, next_token) = page.ascending_of(items);
        Ok(Reply::of(&ListThingsResponse { things, next_token }))
    }

    /// The certificates attached to a thing: (ARN, exclusive), by ARN.
    fn principals_of(&self, caller: &Caller, name: &str) -> Result<Vec<(String, bool)>, ApiError> {
        self.thing(caller, name)?;
        let d = self
            .data(&caller.region, &caller.account)
            .expect("the thing exists");
        Ok(d.certs
            .values()
            .filter(|c| c.has_thing(name))
            .map(|c| {
                let arn = cert_arn(&caller.region, &caller.account, c.id());
                (arn, c.exclusive_thing() == Some(name))
            })
            .collect())
    }

    /// ListThingPrincipals.
    pub(super) fn list_thing_principals(
        &self,
        caller: &Caller,
        name: &str,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let items = self
            .principals_of(caller, name)?
            .into_iter()
            .map(|(arn, _)| (hex_key(&arn), arn))
            .collect();
        let (principals, next_token) = page.ascending_of(items);
        Ok(Reply::of(&ListThingPrincipalsResponse {
            principals,
            next_token,
        }))
    }

    /// ListThingPrincipalsV2: each principal with its `thingPrincipalType`, optionally only
    /// those of one type.
    pub(super) fn list_thing_principals_v2(
        &self,
        caller: &Caller,
        name: &str,
        only: Option<bool>,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let items = self
            .principals_of(caller, name)?
            .into_iter()
            .filter(|(_, exclusive)| only.is_none_or(|e| e == *exclusive))
            .map(|(arn, exclusive)| {
                let object = ThingPrincipalObject {
                    principal: arn.clone(),
                    thing_principal_type: principal_type(exclusive),
                };
                (hex_key(&arn), object)
            })
            .collect();
        let (thing_principal_objects, next_token) = page.ascending_of(items);
        Ok(Reply::of(&ListThingPrincipalsV2Response {
            thing_principal_objects,
            next_token,
        }))
    }
}
