//! The registry calls that carry makes: reading a certificate's policies, things, thing types
//! and static thing groups (with their definitions) in the source, creating them in the
//! target, and the account's device endpoint. Every read answers `None` for an object AWS
//! does not know (404); a reply without the fields every real answer has is unreadable and
//! asked for again.

use std::collections::BTreeMap;

use aws_sdk_iot::types::{
    AttributePayload, Mqtt5Configuration, ThingGroupProperties, ThingTypeProperties,
};

use super::{all_pages, CallFailure, Iot};
use crate::carry::snapshot::{CarriedGroup, CarriedThing, CarriedThingType, PropagatingAttribute};
use crate::pacer::Operation;

fn sorted(map: Option<std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

impl Iot {
    /// GetPolicy: the document of the policy's default version.
    pub async fn policy_document(&self, name: &str) -> Result<Option<String>, CallFailure> {
        self.ctx
            .look_up(
                &self.scope,
                Operation::GetPolicy,
                || self.client.get_policy().policy_name(name).send(),
                |out| out.policy_document,
            )
            .await
    }

    /// DescribeThing: the thing's type and attributes (`groups` left empty).
    pub async fn thing(&self, name: &str) -> Result<Option<CarriedThing>, CallFailure> {
        self.ctx
            .look_up(
                &self.scope,
                Operation::DescribeThing,
                || self.client.describe_thing().thing_name(name).send(),
                |out| {
                    out.thing_name.as_ref()?;
                    Some(CarriedThing {
                        name: name.to_string(),
                        thing_type: out.thing_type_name,
                        attributes: sorted(out.attributes),
                        ..Default::default()
                    })
                },
            )
            .await
    }

    /// DescribeThingType: the type's description, searchable attributes, MQTT 5 propagating
    /// attributes, and whether it is deprecated.
    pub async fn thing_type(&self, name: &str) -> Result<Option<CarriedThingType>, CallFailure> {
        self.ctx
            .look_up(
                &self.scope,
                Operation::DescribeThingType,
                || {
                    self.client
                        .describe_thing_type()
                        .thing_type_name(name)
                        .send()
                },
                |out| {
                    out.thing_type_name.as_ref()?;
                    let props = out.thing_type_properties;
                    let mut searchable = props
                        .as_ref()
                        .map(|p| p.searchable_attributes().to_vec())
                        .unwrap_or_default();
                    searchable.sort();
                    let mqtt5 = props
                        .as_ref()
                        .and_then(|p| p.mqtt5_configuration.as_ref())
                        .map(|m| {
                            m.propagating_attributes()
                                .iter()
                                .map(|a| PropagatingAttribute {
                                    user_property_key: a.user_property_key.clone(),
                                    thing_attribute: a.thing_attribute.clone(),
                                    connection_attribute: a.connection_attribute.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Some(CarriedThingType {
                        name: name.to_string(),
                        description: props.and_then(|p| p.thing_type_description),
                        searchable_attributes: searchable,
                        mqtt5_propagating_attributes: mqtt5,
                        deprecated: out.thing_type_metadata.is_some_and(|m| m.deprecated()),
                    })
                },
            )
            .await
    }

    /// DescribeThingGroup: the group's parent, description and attributes (`policies` left
    /// empty). A dynamic group (one with a query) answers `Ok(Some(None))`: it is not carried.
    pub async fn thing_group(
        &self,
        name: &str,
    ) -> Result<Option<Option<CarriedGroup>>, CallFailure> {
        self.ctx
            .look_up(
                &self.scope,
                Operation::DescribeThingGroup,
                || {
                    self.client
                        .describe_thing_group()
                        .thing_group_name(name)
                        .send()
                },
                |out| {
                    out.thing_group_name.as_ref()?;
                    if out.query_string.is_some() {
                        return Some(None);
                    }
                    let props = out.thing_group_properties;
                    Some(Some(CarriedGroup {
                        name: name.to_string(),
                        parent: out.thing_group_metadata.and_then(|m| m.parent_group_name),
                        policies: Vec::new(),
                        description: props
                            .as_ref()
                            .and_then(|p| p.thing_group_description.clone()),
                        attributes: sorted(
                            props
                                .and_then(|p| p.attribute_payload)
                                .and_then(|a| a.attributes),
                        ),
                    }))
                },
            )
            .await
    }

    /// ListThingGroupsForThing: the groups the thing is in, *with their parents* (AWS lists
    /// both; [`crate::carry::snapshot::Snapshot::deepest`] tells the direct memberships),
    /// all pages.
    pub async fn groups_of_thing(&self, thing: &str) -> Result<Vec<String>, CallFailure> {
        all_pages(|token| async move {
            let (groups, next) = self
                .ctx
                .call_and_read(
                    &self.scope,
                    Operation::ListThingGroupsForThing,
                    || {
                        self.client
                            .list_thing_groups_for_thing()
                            .thing_name(thing)
                            .max_results(250)
                            .set_next_token(token.clone())
                            .send()
                    },
                    |out| Some((out.thing_groups?, out.next_token)),
                )
                .await?;
            Ok((
                groups.into_iter().filter_map(|g| g.group_name).collect(),
                next,
            ))
        })
        .await
    }

    /// The ARN of a thing group of this account and region (what AttachPolicy and
    /// ListAttachedPolicies take for a group), in the region's partition.
    pub fn group_arn(&self, group: &str) -> String {
        crate::certificate::iot_arn(
            &self.scope.region,
            &self.scope.account,
            &format!("thinggroup/{group}"),
        )
    }

    /// CreatePolicy.
    pub async fn create_policy(&self, name: &str, document: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::CreatePolicy, || {
                self.client
                    .create_policy()
                    .policy_name(name)
                    .policy_document(document)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// CreateThingType, with its MQTT 5 propagating attributes.
    pub async fn create_thing_type(&self, t: &CarriedThingType) -> Result<(), CallFailure> {
        let mqtt5 = (!t.mqtt5_propagating_attributes.is_empty()).then(|| {
            let attributes = t
                .mqtt5_propagating_attributes
                .iter()
                .map(|a| {
                    aws_sdk_iot::types::PropagatingAttribute::builder()
                        .set_user_property_key(a.user_property_key.clone())
                        .set_thing_attribute(a.thing_attribute.clone())
                        .set_connection_attribute(a.connection_attribute.clone())
                        .build()
                })
                .collect();
            Mqtt5Configuration::builder()
                .set_propagating_attributes(Some(attributes))
                .build()
        });
        let props = ThingTypeProperties::builder()
            .set_thing_type_description(t.description.clone())
            .set_searchable_attributes(
                (!t.searchable_attributes.is_empty()).then(|| t.searchable_attributes.clone()),
            )
            .set_mqtt5_configuration(mqtt5)
            .build();
        self.ctx
            .call(&self.scope, Operation::CreateThingType, || {
                self.client
                    .create_thing_type()
                    .thing_type_name(&t.name)
                    .thing_type_properties(props.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// CreateThingGroup (static), under its parent.
    pub async fn create_thing_group(&self, g: &CarriedGroup) -> Result<(), CallFailure> {
        let mut props =
            ThingGroupProperties::builder().set_thing_group_description(g.description.clone());
        if !g.attributes.is_empty() {
            let attrs = g.attributes.clone().into_iter().collect();
            props = props.attribute_payload(
                AttributePayload::builder()
                    .set_attributes(Some(attrs))
                    .build(),
            );
        }
        let props = props.build();
        self.ctx
            .call(&self.scope, Operation::CreateThingGroup, || {
                self.client
                    .create_thing_group()
                    .thing_group_name(&g.name)
                    .set_parent_group_name(g.parent.clone())
                    .thing_group_properties(props.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// CreateThing with its type and attributes.
    pub async fn create_thing(&self, t: &CarriedThing) -> Result<(), CallFailure> {
        let attrs = (!t.attributes.is_empty()).then(|| {
            AttributePayload::builder()
                .set_attributes(Some(t.attributes.clone().into_iter().collect()))
                .build()
        });
        self.ctx
            .call(&self.scope, Operation::CreateThing, || {
                self.client
                    .create_thing()
                    .thing_name(&t.name)
                    .set_thing_type_name(t.thing_type.clone())
                    .set_attribute_payload(attrs.clone())
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// AddThingToThingGroup.
    pub async fn add_thing_to_group(&self, thing: &str, group: &str) -> Result<(), CallFailure> {
        self.ctx
            .call(&self.scope, Operation::AddThingToThingGroup, || {
                self.client
                    .add_thing_to_thing_group()
                    .thing_name(thing)
                    .thing_group_name(group)
                    .send()
            })
            .await
            .map(|_| ())
    }

    /// DescribeEndpoint `iot:Data-ATS`: the address devices of this account connect to.
    pub async fn device_endpoint(&self) -> Result<String, CallFailure> {
        self.ctx
            .call_and_read(
                &self.scope,
                Operation::DescribeEndpoint,
                || {
                    self.client
                        .describe_endpoint()
                        .endpoint_type("iot:Data-ATS")
                        .send()
                },
                |out| out.endpoint_address.filter(|a| !a.is_empty()),
            )
            .await
    }
}
