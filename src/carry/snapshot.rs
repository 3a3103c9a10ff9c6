//! What one certificate carries, as read from the source account before its first
//! destructive step: the payload of the `snapshot` ledger event.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// A policy as carried: its name and the document of its default version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedPolicy {
    /// Policy name (unique per account).
    pub name: String,
    /// Default-version document, as the source returned it (not yet rewritten).
    pub document: String,
}

/// A static thing group as carried, with the policies attached to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedGroup {
    /// Group name.
    pub name: String,
    /// Parent group name, if the group is nested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Names of the policies attached to this group (documents in [`Snapshot::policies`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The group's description, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The group's attributes (sorted).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// A thing type as carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedThingType {
    /// Thing type name.
    pub name: String,
    /// Its description, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its searchable attributes (sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searchable_attributes: Vec<String>,
    /// Its MQTT 5 propagating attributes (`mqtt5Configuration`), in AWS's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mqtt5_propagating_attributes: Vec<PropagatingAttribute>,
    /// Deprecated where it was read (DeprecateThingType): it takes no new things there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
}

/// One MQTT 5 propagating attribute of a thing type: the user property key and the thing
/// or connection attribute whose value it carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropagatingAttribute {
    /// `userPropertyKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_property_key: Option<String>,
    /// `thingAttribute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_attribute: Option<String>,
    /// `connectionAttribute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_attribute: Option<String>,
}

/// A thing attached to the certificate, as carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedThing {
    /// Thing name.
    pub name: String,
    /// Thing type name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_type: Option<String>,
    /// Attributes (sorted, so equal things serialise equally).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Names of the static groups the thing is a direct member of: the deepest group of
    /// each hierarchy (AWS lists the parents too, and a thing is in one group per hierarchy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Attached to the certificate exclusively (`thingPrincipalType` EXCLUSIVE_THING): the
    /// certificate's only thing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclusive: bool,
}

/// Everything one certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Source account id (what policy documents' ARNs are rewritten from).
    pub source_account: String,
    /// Names of the policies attached to the certificate directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached_policies: Vec<String>,
    /// Every policy the snapshot names (attached directly or through a group), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<CarriedPolicy>,
    /// Things attached to the certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub things: Vec<CarriedThing>,
    /// The things' types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thing_types: Vec<CarriedThingType>,
    /// The things' groups and all their ancestors, parents before children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<CarriedGroup>,
}

impl Snapshot {
    /// The parent of each carried group.
    fn parents(&self) -> HashMap<&str, &str> {
        self.groups
            .iter()
            .filter_map(|g| Some((g.name.as_str(), g.parent.as_deref()?)))
            .collect()
    }

    /// Of `groups`, the deepest of each hierarchy: those no other of them lies below, as the
    /// carried groups' parents say. A thing is a direct member of exactly these when AWS
    /// lists `groups` for it (parents included); a snapshot that recorded a parent next to
    /// its child (read before the tool knew AWS lists parents) names the child alone.
    pub fn deepest<'a>(&self, groups: &'a [String]) -> Vec<&'a str> {
        let parents = self.parents();
        let below = |low: &str, high: &str| {
            let mut at = parents.get(low).copied();
            // a hierarchy is at most 7 deep: a loop in the data cannot hold us
            for _ in 0..8 {
                match at {
                    Some(p) if p == high => return true,
                    Some(p) => at = parents.get(p).copied(),
                    None => return false,
                }
            }
            false
        };
        groups
            .iter()
            .filter(|g| !groups.iter().any(|other| below(other, g)))
            .map(String::as_str)
            .collect()
    }

    /// The groups `thing` is a direct member of, as carried.
    pub fn direct_groups<'a>(&self, thing: &'a CarriedThing) -> Vec<&'a str> {
        self.deepest(&thing.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thing_is_a_direct_member_of_the_deepest_group_of_each_hierarchy() {
        let group = |name: &str, parent: Option<&str>| CarriedGroup {
            name: name.into(),
            parent: parent.map(str::to_string),
            ..Default::default()
        };
        let snapshot = Snapshot {
            groups: vec![
                group("site", None),
                group("floor", Some("site")),
                group("room", Some("floor")),
                group("other", None),
            ],
            ..Default::default()
        };
        let listed: Vec<String> = ["floor", "other", "room", "site"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(snapshot.deepest(&listed), ["other", "room"]);
        let thing = CarriedThing {
            name: "t".into(),
            groups: vec!["site".into(), "floor".into()],
            ..Default::default()
        };
        assert_eq!(snapshot.direct_groups(&thing), ["floor"]);
        assert!(snapshot.deepest(&[]).is_empty());
    }

    #[test]
    fn a_snapshot_survives_a_json_round_trip() {
        let snapshot = Snapshot {
            source_account: "111122223333".into(),
            attached_policies: vec!["p1".into()],
            policies: vec![CarriedPolicy {
                name: "p1".into(),
                document: r#"{"Version":"2012-10-17"}"#.into(),
            }],
            things: vec![CarriedThing {
                name: "t1".into(),
                thing_type: Some("sensor".into()),
                attributes: BTreeMap::from([("floor".into(), "3".into())]),
                groups: vec!["child".into()],
                exclusive: true,
            }],
            thing_types: vec![CarriedThingType {
                name: "sensor".into(),
                description: None,
                searchable_attributes: vec!["floor".into()],
                mqtt5_propagating_attributes: vec![PropagatingAttribute {
                    user_property_key: Some("floor".into()),
                    thing_attribute: Some("floor".into()),
                    connection_attribute: None,
                }],
                deprecated: false,
            }],
            groups: vec![
                CarriedGroup {
                    name: "root".into(),
                    parent: None,
                    policies: vec!["p1".into()],
                    description: Some("site".into()),
                    attributes: BTreeMap::from([("k".into(), "v".into())]),
                },
                CarriedGroup {
                    name: "child".into(),
                    parent: Some("root".into()),
                    policies: vec![],
                    description: None,
                    attributes: BTreeMap::new(),
                },
            ],
        };
        let line = serde_json::to_string(&snapshot).unwrap();
        assert!(
            !line.contains("\"policies\":[]"),
            "empty lists are omitted: {line}"
        );
        let back: Snapshot = serde_json::from_str(&line).unwrap();
        assert_eq!(back, snapshot);
    }
}
