//! What one certificate carries, as read from the source account before its first
//! destructive step: the payload of the `snapshot` ledger event.

use std::collections::BTreeMap;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedThingType {
    /// Thing type name.
    pub name: String,
    /// Its description, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its searchable attributes (sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searchable_attributes: Vec<String>,
}

/// A thing attached to the certificate, as carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedThing {
    /// Thing name.
    pub name: String,
    /// Thing type name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_type: Option<String>,
    /// Attributes (sorted, so equal things serialise equally).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Names of the static groups the thing is a direct member of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
            }],
            thing_types: vec![CarriedThingType {
                name: "sensor".into(),
                description: None,
                searchable_attributes: vec!["floor".into()],
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
