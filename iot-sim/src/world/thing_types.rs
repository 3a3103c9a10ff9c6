//! Thing types (CreateThingType, DescribeThingType, DeprecateThingType): a description, at
//! most 3 searchable attributes (the only ones ListThings' attribute filter sees on things
//! of the type), the MQTT 5 propagating attributes, and whether the type is deprecated (a
//! deprecated type takes no new things).

use serde::Serialize;

use super::{random_uuid, Caller, Reply, World};
use crate::arn::thing_type_arn;
use crate::config::{PropagatingAttribute, SeedThingType};
use crate::errors::ApiError;
use crate::state::ThingTypeState;
use crate::validate;

/// Most searchable attributes of one thing type.
pub const MAX_SEARCHABLE_ATTRIBUTES: usize = 3;

/// A thing type.
#[derive(Clone, Debug)]
pub(crate) struct ThingType {
    id: String,
    description: Option<String>,
    pub(crate) searchable_attributes: Vec<String>,
    mqtt5: Vec<PropagatingAttribute>,
    pub(crate) deprecated: Option<f64>,
    creation: f64,
}

/// What CreateThingType defines; the same definition again is idempotent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThingTypeDefinition {
    /// `thingTypeDescription`.
    pub description: Option<String>,
    /// `searchableAttributes`.
    pub searchable_attributes: Vec<String>,
    /// `mqtt5Configuration.propagatingAttributes`.
    pub mqtt5: Vec<PropagatingAttribute>,
}

impl ThingType {
    fn new(def: ThingTypeDefinition, now: f64) -> Self {
        ThingType {
            id: random_uuid(),
            description: def.description,
            searchable_attributes: def.searchable_attributes,
            mqtt5: def.mqtt5,
            deprecated: None,
            creation: now,
        }
    }

    fn definition(&self) -> ThingTypeDefinition {
        ThingTypeDefinition {
            description: self.description.clone(),
            searchable_attributes: self.searchable_attributes.clone(),
            mqtt5: self.mqtt5.clone(),
        }
    }

    pub(super) fn dump(&self, name: &str) -> ThingTypeState {
        ThingTypeState {
            name: name.to_string(),
            description: self.description.clone(),
            searchable_attributes: self.searchable_attributes.clone(),
            mqtt5_propagating_attributes: self.mqtt5.clone(),
            deprecated: self.deprecated.is_some(),
        }
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    mqtt5_configuration: Option<Mqtt5Configuration<'a>>,
}

/// Mqtt5Configuration.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Mqtt5Configuration<'a> {
    propagating_attributes: Vec<PropagatingAttributeShape<'a>>,
}

/// PropagatingAttribute, as the API spells it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PropagatingAttributeShape<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_property_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_attribute: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_attribute: Option<&'a str>,
}

/// ThingTypeMetadata.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThingTypeMetadata {
    deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    deprecation_date: Option<f64>,
    creation_date: f64,
}

/// DeprecateThingTypeResponse: an empty object.
#[derive(Serialize)]
struct DeprecateThingTypeResponse {}

impl World {
    /// Seeds thing types: a seeded type replaces one of the same name.
    pub(super) fn seed_thing_types(
        &mut self,
        region: &str,
        account: &str,
        types: &[SeedThingType],
        now: f64,
    ) -> Result<(), String> {
        for t in types {
            if !validate::is_thing_name(&t.name) {
                return Err(format!("invalid thing type name {:?}", t.name));
            }
            if t.searchable_attributes.len() > MAX_SEARCHABLE_ATTRIBUTES {
                return Err(format!(
                    "thing type {}: more than {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes",
                    t.name
                ));
            }
            let mut ty = ThingType::new(
                ThingTypeDefinition {
                    description: t.description.clone(),
                    searchable_attributes: t.searchable_attributes.clone(),
                    mqtt5: t.mqtt5_propagating_attributes.clone(),
                },
                now,
            );
            ty.deprecated = t.deprecated.then_some(now);
            self.data_entry(region, account)
                .thing_types
                .insert(t.name.clone(), ty);
        }
        Ok(())
    }

    /// CreateThingType: the same definition again succeeds (the same type), another is 409.
    pub(super) fn create_thing_type(
        &mut self,
        caller: &Caller,
        name: &str,
        def: ThingTypeDefinition,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let d = self.data_entry(r, a);
        let t = match d.thing_types.get(name) {
            Some(t) if t.definition() == def => t,
            Some(_) => {
                return Err(ApiError::already_exists(format!(
                    "Thing type {name} already exists with a different configuration"
                )))
            }
            None => d
                .thing_types
                .entry(name.to_string())
                .or_insert(ThingType::new(def, now)),
        };
        Ok(Reply::of(&CreateThingTypeResponse {
            thing_type_name: name,
            thing_type_arn: thing_type_arn(r, a, name),
            thing_type_id: &t.id,
        }))
    }

    fn thing_type(&self, caller: &Caller, name: &str) -> Result<&ThingType, ApiError> {
        self.data(&caller.region, &caller.account)
            .and_then(|d| d.thing_types.get(name))
            .ok_or_else(|| ApiError::not_found(format!("Thing type {name} does not exist")))
    }

    /// DescribeThingType.
    pub(super) fn describe_thing_type(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Reply, ApiError> {
        let t = self.thing_type(caller, name)?;
        let mqtt5 = (!t.mqtt5.is_empty()).then(|| Mqtt5Configuration {
            propagating_attributes: t
                .mqtt5
                .iter()
                .map(|p| PropagatingAttributeShape {
                    user_property_key: p.user_property_key.as_deref(),
                    thing_attribute: p.thing_attribute.as_deref(),
                    connection_attribute: p.connection_attribute.as_deref(),
                })
                .collect(),
        });
        Ok(Reply::of(&DescribeThingTypeResponse {
            thing_type_name: name,
            thing_type_id: &t.id,
            thing_type_arn: thing_type_arn(&caller.region, &caller.account, name),
            thing_type_properties: ThingTypeProperties {
                thing_type_description: t.description.as_deref(),
                searchable_attributes: &t.searchable_attributes,
                mqtt5_configuration: mqtt5,
            },
            thing_type_metadata: ThingTypeMetadata {
                deprecated: t.deprecated.is_some(),
                deprecation_date: t.deprecated,
                creation_date: t.creation,
            },
        }))
    }

    /// DeprecateThingType (or, with `undo`, its undoing).
    pub(super) fn deprecate_thing_type(
        &mut self,
        caller: &Caller,
        name: &str,
        undo: bool,
        now: f64,
    ) -> Result<Reply, ApiError> {
        self.thing_type(caller, name)?;
        let t = self
            .data_mut(&caller.region, &caller.account)
            .and_then(|d| d.thing_types.get_mut(name))
            .expect("the type exists");
        t.deprecated = if undo {
            None
        } else {
            t.deprecated.or(Some(now))
        };
        Ok(Reply::of(&DeprecateThingTypeResponse {}))
    }
}
