//! Thing groups (CreateThingGroup, DescribeThingGroup, AddThingToThingGroup,
//! RemoveThingFromThingGroup, DeleteThingGroup, ListThingGroupsForThing,
//! ListThingsInThingGroup): static groups in hierarchies at most 7
//! deep, and dynamic groups (seeded, with their query; their membership is seeded as the
//! fleet index would have computed it).
//!
//! As the developer guide has it: a thing is a direct member of at most one group of each
//! hierarchy, of at most 10 groups in all (dynamic ones included), and
//! ListThingGroupsForThing lists its groups *with their parents*.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::paging::{hex_key, Page};
use super::{random_uuid, AccountData, Caller, Reply, World};
use crate::arn::group_arn;
use crate::config::SeedThingGroup;
use crate::errors::ApiError;
use crate::state::ThingGroupState;
use crate::validate;

/// Most groups one thing can be in (static and dynamic).
pub const MAX_GROUPS_PER_THING: usize = 10;

/// Deepest static thing-group hierarchy (a root group is depth 1).
pub const MAX_GROUP_DEPTH: usize = 7;

/// The fleet index dynamic groups query.
const DYNAMIC_GROUP_INDEX: &str = "AWS_Things";

/// A thing group: static, or dynamic (with a query).
#[derive(Clone, Debug)]
pub(crate) struct Group {
    id: String,
    pub(crate) parent: Option<String>,
    description: Option<String>,
    attributes: BTreeMap<String, String>,
    pub(crate) policies: BTreeSet<String>,
    creation: f64,
    /// The fleet-indexing query of a dynamic group.
    pub(crate) query: Option<String>,
}

impl Group {
    pub(super) fn dump(&self, name: &str) -> ThingGroupState {
        ThingGroupState {
            name: name.to_string(),
            parent: self.parent.clone(),
            description: self.description.clone(),
            attributes: self.attributes.clone(),
            policies: self.policies.iter().cloned().collect(),
            query: self.query.clone(),
        }
    }
}

/// What CreateThingGroup defines; the same definition again is idempotent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupDefinition {
    /// `parentGroupName`.
    pub parent: Option<String>,
    /// `thingGroupProperties.thingGroupDescription`.
    pub description: Option<String>,
    /// `thingGroupProperties.attributePayload.attributes`.
    pub attributes: BTreeMap<String, String>,
}

/// CreateThingGroupResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingGroupResponse<'a> {
    thing_group_name: &'a str,
    thing_group_arn: String,
    thing_group_id: &'a str,
}

/// DescribeThingGroupResponse (`indexName`, `queryString`, `queryVersion` and `status` for
/// a dynamic group only).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeThingGroupResponse<'a> {
    thing_group_name: &'a str,
    thing_group_id: &'a str,
    thing_group_arn: String,
    version: u64,
    thing_group_properties: ThingGroupProperties<'a>,
    thing_group_metadata: ThingGroupMetadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
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

/// The root of `name`'s hierarchy.
fn root_of(d: &AccountData, name: &str) -> String {
    ancestry(d, name, true)
        .pop()
        .expect("a group is its own ancestry")
}

/// `name` and every group below it.
pub(crate) fn descendants(d: &AccountData, name: &str) -> BTreeSet<String> {
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

/// How a thing joins a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Joining {
    /// AddThingToThingGroup, with `overrideDynamicGroups` or not.
    Added { override_dynamic: bool },
    /// A seed, which also puts things in dynamic groups (as the fleet index would).
    Seeded,
}

/// Whether a thing that is a direct member of `groups` may join `group` (which exists):
/// `Ok(None)` yes, `Ok(Some(g))` yes once it leaves dynamic group `g` (`override_dynamic`
/// at the 10-group limit), else the refusal.
pub(super) fn check_join(
    d: &AccountData,
    groups: &[String],
    group: &str,
    how: Joining,
) -> Result<Option<String>, ApiError> {
    let Some(g) = d.groups.get(group) else {
        return Err(ApiError::not_found(format!(
            "Thing group {group} does not exist"
        )));
    };
    let override_dynamic = how
        == Joining::Added {
            override_dynamic: true,
        };
    if g.query.is_some() && how != Joining::Seeded {
        return Err(ApiError::invalid_request(format!(
            "Cannot add a thing to dynamic thing group {group}: its membership follows its query"
        )));
    }
    let root = root_of(d, group);
    if let Some(other) = groups.iter().find(|m| {
        g.query.is_none()
            && d.groups.get(*m).is_some_and(|g| g.query.is_none())
            && root_of(d, m) == root
    }) {
        return Err(ApiError::invalid_request(format!(
            "Cannot add thing to more than one thing group in the same hierarchy: it is in \
             {other} already, of the hierarchy of {root}"
        )));
    }
    if groups.len() < MAX_GROUPS_PER_THING {
        return Ok(None);
    }
    let last_dynamic = groups
        .iter()
        .rev()
        .find(|m| d.groups.get(*m).is_some_and(|g| g.query.is_some()));
    match last_dynamic {
        Some(dynamic) if override_dynamic => Ok(Some(dynamic.clone())),
        _ => Err(ApiError::invalid_request(format!(
            "A thing can be in at most {MAX_GROUPS_PER_THING} thing groups, dynamic groups \
             included{}",
            if last_dynamic.is_some() {
                " (overrideDynamicGroups makes room by leaving a dynamic group)"
            } else {
                ""
            }
        ))),
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
    /// Seeds thing groups, a parent before its children: a seeded group replaces one of the
    /// same name. The policies a group names exist from now on.
    pub(super) fn seed_groups(
        &mut self,
        region: &str,
        account: &str,
        groups: &[SeedThingGroup],
        max_policies: usize,
        now: f64,
    ) -> Result<(), String> {
        for g in groups {
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
                if g.query.is_some() {
                    return Err(format!(
                        "thing group {}: a dynamic group has no parent",
                        g.name
                    ));
                }
                match d.groups.get(parent) {
                    None => {
                        return Err(format!(
                            "thing group {}: parent {parent} is not declared before it",
                            g.name
                        ))
                    }
                    Some(p) if p.query.is_some() => {
                        return Err(format!(
                            "thing group {}: parent {parent} is a dynamic group",
                            g.name
                        ))
                    }
                    Some(_) => {}
                }
                if ancestry(d, parent, true).len() >= MAX_GROUP_DEPTH {
                    return Err(format!("thing group {}: hierarchy too deep", g.name));
                }
            }
            if g.policies.len() > max_policies {
                return Err(format!(
                    "thing group {}: more than {max_policies} policies",
                    g.name
                ));
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
                    query: g.query.clone(),
                },
            );
        }
        Ok(())
    }

    /// CreateThingGroup (static): the same definition again succeeds, another is 409.
    pub(super) fn create_thing_group(
        &mut self,
        caller: &Caller,
        name: &str,
        def: GroupDefinition,
        now: f64,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let d = self.data_entry(r, a);
        if let Some(p) = &def.parent {
            match d.groups.get(p) {
                None => {
                    return Err(ApiError::not_found(format!(
                        "Parent thing group {p} does not exist"
                    )))
                }
                Some(g) if g.query.is_some() => {
                    return Err(ApiError::invalid_request(format!(
                        "Parent thing group {p} is a dynamic thing group"
                    )))
                }
                Some(_) => {}
            }
            if ancestry(d, p, true).len() >= MAX_GROUP_DEPTH {
                return Err(ApiError::invalid_request(format!(
                    "A thing group hierarchy can be at most {MAX_GROUP_DEPTH} deep"
                )));
            }
        }
        let g = match d.groups.get(name) {
            Some(g)
                if g.query.is_none()
                    && g.parent == def.parent
                    && g.description == def.description
                    && g.attributes == def.attributes =>
            {
                g
            }
            Some(_) => {
                return Err(ApiError::already_exists(format!(
                    "Thing group {name} already exists with different properties"
                )))
            }
            None => d.groups.entry(name.to_string()).or_insert(Group {
                id: random_uuid(),
                parent: def.parent,
                description: def.description,
                attributes: def.attributes,
                policies: BTreeSet::new(),
                creation: now,
                query: None,
            }),
        };
        Ok(Reply::of(&CreateThingGroupResponse {
            thing_group_name: name,
            thing_group_arn: group_arn(r, a, name),
            thing_group_id: &g.id,
        }))
    }

    /// DescribeThingGroup.
    pub(super) fn describe_thing_group(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let d = self.data(r, a);
        let g = d
            .and_then(|d| d.groups.get(name))
            .ok_or_else(|| ApiError::not_found(format!("Thing group {name} does not exist")))?;
        let d = d.expect("the group exists");
        let mut roots: Vec<String> = ancestry(d, name, true).into_iter().skip(1).collect();
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
        let dynamic = g.query.is_some();
        Ok(Reply::of(&DescribeThingGroupResponse {
            thing_group_name: name,
            thing_group_id: &g.id,
            thing_group_arn: group_arn(r, a, name),
            version: 1,
            thing_group_properties: properties,
            thing_group_metadata: metadata,
            index_name: dynamic.then_some(DYNAMIC_GROUP_INDEX),
            query_string: g.query.as_deref(),
            query_version: dynamic.then_some("2017-09-30"),
            status: dynamic.then_some("ACTIVE"),
        }))
    }

    /// AddThingToThingGroup: once per hierarchy, at most 10 groups (with `override_dynamic`,
    /// the thing leaves the dynamic group it joined last to make room).
    pub(super) fn add_thing_to_group(
        &mut self,
        caller: &Caller,
        group: &str,
        thing: &str,
        override_dynamic: bool,
        now_ms: i64,
    ) -> Result<Reply, ApiError> {
        let d = self.data_entry(&caller.region, &caller.account);
        if !d.groups.contains_key(group) {
            return Err(ApiError::not_found(format!(
                "Thing group {group} does not exist"
            )));
        }
        let t = d
            .things
            .get(thing)
            .ok_or_else(|| ApiError::not_found(format!("Thing {thing} does not exist")))?;
        if t.groups.iter().any(|g| g == group) {
            return Ok(Reply::of(&AddThingToThingGroupResponse {}));
        }
        let leave = check_join(d, &t.groups, group, Joining::Added { override_dynamic })?;
        let t = d.things.get_mut(thing).expect("the thing exists");
        if let Some(dynamic) = leave {
            t.groups.retain(|g| *g != dynamic);
        }
        t.groups.push(group.to_string());
        t.version += 1;
        // A continuous job aimed at the group reaches its new member.
        self.jobs_on_join(&caller.region, &caller.account, thing, now_ms);
        Ok(Reply::of(&AddThingToThingGroupResponse {}))
    }

    /// RemoveThingFromThingGroup: a thing not in the group stays as it is.
    pub(super) fn remove_thing_from_group(
        &mut self,
        caller: &Caller,
        group: &str,
        thing: &str,
        now_ms: i64,
    ) -> Result<Reply, ApiError> {
        let d = self.data_entry(&caller.region, &caller.account);
        if !d.groups.contains_key(group) {
            return Err(ApiError::not_found(format!(
                "Thing group {group} does not exist"
            )));
        }
        let t = d
            .things
            .get_mut(thing)
            .ok_or_else(|| ApiError::not_found(format!("Thing {thing} does not exist")))?;
        let before = t.groups.len();
        t.groups.retain(|g| g != group);
        if t.groups.len() != before {
            t.version += 1;
            // Queued executions of continuous jobs aimed at the group are REMOVED.
            self.jobs_on_leave(&caller.region, &caller.account, thing, now_ms);
        }
        Ok(Reply::of(&AddThingToThingGroupResponse {}))
    }

    /// DeleteThingGroup: the API model declares no ResourceNotFoundException, so deleting a
    /// group that does not exist succeeds; a group with child groups is refused.
    pub(super) fn delete_thing_group(
        &mut self,
        caller: &Caller,
        name: &str,
        now_ms: i64,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let Some(d) = self.data_mut(r, a) else {
            return Ok(Reply::of(&AddThingToThingGroupResponse {}));
        };
        if !d.groups.contains_key(name) {
            return Ok(Reply::of(&AddThingToThingGroupResponse {}));
        }
        if d.groups.values().any(|g| g.parent.as_deref() == Some(name)) {
            return Err(ApiError::invalid_request(format!(
                "Cannot delete thing group {name}: it has child groups"
            )));
        }
        d.groups.remove(name);
        let members: Vec<String> = d
            .things
            .iter_mut()
            .filter_map(|(n, t)| {
                let before = t.groups.len();
                t.groups.retain(|g| g != name);
                (t.groups.len() != before).then(|| {
                    t.version += 1;
                    n.clone()
                })
            })
            .collect();
        for thing in members {
            self.jobs_on_leave(r, a, &thing, now_ms);
        }
        Ok(Reply::of(&AddThingToThingGroupResponse {}))
    }

    /// ListThingGroupsForThing: every group the thing is in, and their parents, by name.
    pub(super) fn list_groups_for_thing(
        &self,
        caller: &Caller,
        name: &str,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let (r, a) = (caller.region.as_str(), caller.account.as_str());
        let t = self.thing(caller, name)?;
        let d = self.data(r, a).expect("the thing exists");
        let with_parents: BTreeSet<String> =
            t.groups.iter().flat_map(|g| ancestry(d, g, true)).collect();
        let items = with_parents
            .iter()
            .map(|g| (hex_key(g), GroupNameAndArn::of(r, a, g)))
            .collect();
        let (thing_groups, next_token) = page.ascending_of(items);
        Ok(Reply::of(&ListThingGroupsForThingResponse {
            thing_groups,
            next_token,
        }))
    }

    /// ListThingsInThingGroup: the direct members, and with `recursive` those of every group
    /// below.
    pub(super) fn list_things_in_group(
        &self,
        caller: &Caller,
        name: &str,
        recursive: bool,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let d = self.data(&caller.region, &caller.account);
        let Some(d) = d.filter(|d| d.groups.contains_key(name)) else {
            return Err(ApiError::not_found(format!(
                "Thing group {name} does not exist"
            )));
        };
        let groups = if recursive {
            descendants(d, name)
        } else {
            BTreeSet::from([name.to_string()])
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
}
