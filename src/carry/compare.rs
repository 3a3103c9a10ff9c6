//! Whether an object that already exists in the target is the one carried: the difference,
//! said for a person (`None`: the same definition, reused as it is).

use std::collections::BTreeMap;

use serde_json::Value;

use super::snapshot::{CarriedGroup, CarriedThing, CarriedThingType};

/// How a policy found in the target differs from the carried (rewritten) document. Documents
/// are compared as JSON, so whitespace and key order do not count.
pub fn policy(carried: &str, found: &str) -> Option<String> {
    match (
        serde_json::from_str::<Value>(carried),
        serde_json::from_str::<Value>(found),
    ) {
        (Ok(c), Ok(f)) => first_difference("", &c, &f),
        _ if carried == found => None,
        _ => Some("the documents differ".into()),
    }
}

/// The first place where two JSON values differ, as `at PATH: target has X, carried Y`.
fn first_difference(path: &str, carried: &Value, found: &Value) -> Option<String> {
    match (carried, found) {
        (Value::Object(c), Value::Object(f)) => {
            let keys: std::collections::BTreeSet<&String> = c.keys().chain(f.keys()).collect();
            keys.into_iter().find_map(|k| {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (c.get(k), f.get(k)) {
                    (Some(cv), Some(fv)) => first_difference(&at, cv, fv),
                    (Some(_), None) => Some(format!("at {at}: missing in the target")),
                    (None, Some(_)) => Some(format!("at {at}: only in the target")),
                    (None, None) => None,
                }
            })
        }
        (Value::Array(c), Value::Array(f)) if c.len() == f.len() => c
            .iter()
            .zip(f)
            .enumerate()
            .find_map(|(i, (cv, fv))| first_difference(&format!("{path}[{i}]"), cv, fv)),
        _ if carried == found => None,
        _ => {
            let at = if path.is_empty() {
                "the document"
            } else {
                path
            };
            Some(format!("at {at}: target has {found}, carried {carried}"))
        }
    }
}

fn attributes(
    carried: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> Option<String> {
    let show = |m: &BTreeMap<String, String>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    (carried != found).then(|| {
        format!(
            "attributes: target has {}, carried {}",
            show(found),
            show(carried)
        )
    })
}

fn field(name: &str, carried: &Option<String>, found: &Option<String>) -> Option<String> {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    (carried != found).then(|| {
        format!(
            "{name}: target has {}, carried {}",
            show(found),
            show(carried)
        )
    })
}

fn joined(parts: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// How a thing found in the target differs (type, attributes; groups are added, not compared).
pub fn thing(carried: &CarriedThing, found: &CarriedThing) -> Option<String> {
    joined([
        field("thing type", &carried.thing_type, &found.thing_type),
        attributes(&carried.attributes, &found.attributes),
    ])
}

/// How a thing type found in the target differs (a deprecated one, which takes no new
/// things, is named as such).
pub fn thing_type(carried: &CarriedThingType, found: &CarriedThingType) -> Option<String> {
    let mut c = carried.searchable_attributes.clone();
    let mut f = found.searchable_attributes.clone();
    c.sort();
    f.sort();
    let mqtt5 = |t: &CarriedThingType| {
        t.mqtt5_propagating_attributes
            .iter()
            .map(|a| {
                let from = a
                    .thing_attribute
                    .as_deref()
                    .or(a.connection_attribute.as_deref())
                    .unwrap_or("none");
                format!("{}={from}", a.user_property_key.as_deref().unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    joined([
        found.deprecated.then(|| {
            "it is deprecated in the target (DeprecateThingType): it takes no new things; \
             undo the deprecation there (aws iot deprecate-thing-type --undo-deprecate) or \
             remove the type from the carry"
                .to_string()
        }),
        field("description", &carried.description, &found.description),
        (c != f).then(|| {
            format!(
                "searchable attributes: target has [{}], carried [{}]",
                f.join(","),
                c.join(",")
            )
        }),
        (carried.mqtt5_propagating_attributes != found.mqtt5_propagating_attributes).then(|| {
            format!(
                "MQTT 5 propagating attributes: target has [{}], carried [{}]",
                mqtt5(found),
                mqtt5(carried)
            )
        }),
    ])
}

/// How a thing group found in the target differs (parent, description, attributes; its
/// policies are attached, not compared).
pub fn group(carried: &CarriedGroup, found: &CarriedGroup) -> Option<String> {
    joined([
        field("parent", &carried.parent, &found.parent),
        field("description", &carried.description, &found.description),
        attributes(&carried.attributes, &found.attributes),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_equal_as_json_are_the_same() {
        let a = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}"#;
        let b = "{ \"Statement\" : [ {\"Effect\": \"Allow\"} ], \"Version\": \"2012-10-17\" }";
        assert_eq!(policy(a, b), None);
    }

    #[test]
    fn a_policy_difference_names_where() {
        let carried = r#"{"Statement":[{"Resource":"arn:aws:iot:r:2:topic/a"}]}"#;
        let found = r#"{"Statement":[{"Resource":"arn:aws:iot:r:2:topic/b"}]}"#;
        let d = policy(carried, found).unwrap();
        assert!(d.contains("Statement[0].Resource"), "{d}");
        assert!(d.contains("topic/b") && d.contains("topic/a"), "{d}");
    }

    #[test]
    fn a_deprecated_type_in_the_target_is_a_difference_that_says_so() {
        let carried = CarriedThingType {
            name: "sensor".into(),
            ..Default::default()
        };
        let found = CarriedThingType {
            deprecated: true,
            ..carried.clone()
        };
        assert_eq!(thing_type(&carried, &carried), None);
        let d = thing_type(&carried, &found).unwrap();
        assert!(d.contains("deprecated in the target"), "{d}");
        // deprecated where it was read: the target's is what counts
        assert_eq!(thing_type(&found, &carried), None);
    }

    #[test]
    fn mqtt5_propagating_attributes_are_part_of_a_type() {
        let carried = CarriedThingType {
            name: "sensor".into(),
            mqtt5_propagating_attributes: vec![super::super::snapshot::PropagatingAttribute {
                user_property_key: Some("site".into()),
                thing_attribute: Some("site".into()),
                connection_attribute: None,
            }],
            ..Default::default()
        };
        let found = CarriedThingType {
            mqtt5_propagating_attributes: Vec::new(),
            ..carried.clone()
        };
        let d = thing_type(&carried, &found).unwrap();
        assert_eq!(
            d,
            "MQTT 5 propagating attributes: target has [], carried [site=site]"
        );
    }

    #[test]
    fn a_thing_difference_names_the_attributes() {
        let mk = |v: &str| CarriedThing {
            name: "t".into(),
            attributes: BTreeMap::from([("site".into(), v.into())]),
            ..Default::default()
        };
        assert_eq!(thing(&mk("a"), &mk("a")), None);
        let d = thing(&mk("a"), &mk("b")).unwrap();
        assert_eq!(d, "attributes: target has site=b, carried site=a");
    }
}
