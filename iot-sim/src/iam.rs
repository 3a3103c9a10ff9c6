//! The allow-list mode: an account given an IAM policy may make only the calls it allows,
//! as IAM decides (every other call is refused with 403 `AccessDeniedException`). A call is
//! allowed when, for each resource IAM authorizes it on ([`crate::world::Call::authorized_resources`]),
//! an `Allow` statement matches its action and the resource and no `Deny` statement does.
//!
//! Supported: `Effect`, `Action` and `Resource` (a string or a list), `Sid`; `*` in actions
//! (case-insensitive, e.g. `iot:List*`) and resources. `NotAction`, `NotResource` and
//! `Condition` are refused when the policy is set, rather than half understood.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::glob_match;

/// One statement.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// An identity policy, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct IamPolicy {
    document: Value,
    #[serde(skip)]
    statements: Vec<Statement>,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what}: every entry must be a string"))
            })
            .collect(),
        _ => Err(format!("{what} must be a string or a list of strings")),
    }
}

impl TryFrom<Value> for IamPolicy {
    type Error = String;

    fn try_from(document: Value) -> Result<Self, String> {
        let raw = match document.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err("an IAM policy needs a Statement (an object or a list)".into()),
        };
        let mut statements = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let Value::Object(m) = s else {
                return Err(format!("Statement[{i}] is not an object"));
            };
            if let Some(k) = m
                .keys()
                .find(|k| !matches!(k.as_str(), "Sid" | "Effect" | "Action" | "Resource"))
            {
                return Err(format!(
                    "Statement[{i}]: {k} is not supported by the simulator (Effect, Action, Resource, Sid)"
                ));
            }
            let allow = match m.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err(format!("Statement[{i}]: Effect must be Allow or Deny")),
            };
            let actions = strings(
                m.get("Action").unwrap_or(&Value::Null),
                &format!("Statement[{i}].Action"),
            )?;
            let resources = strings(
                m.get("Resource").unwrap_or(&Value::Null),
                &format!("Statement[{i}].Resource"),
            )?;
            statements.push(Statement {
                allow,
                actions: actions.iter().map(|a| a.to_ascii_lowercase()).collect(),
                resources,
            });
        }
        Ok(IamPolicy {
            document,
            statements,
        })
    }
}

impl From<IamPolicy> for Value {
    fn from(p: IamPolicy) -> Value {
        p.document
    }
}

impl Statement {
    fn matches(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|a| glob_match(a, action))
            && self.resources.iter().any(|r| glob_match(r, resource))
    }
}

impl IamPolicy {
    /// Parses a policy document (JSON text).
    pub fn parse(text: &str) -> Result<IamPolicy, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        IamPolicy::try_from(v)
    }

    /// The resource of `resources` the policy does not allow `action` (e.g.
    /// `iot:DescribeCertificate`) on, if any.
    pub fn refused<'a>(&self, action: &str, resources: &'a [String]) -> Option<&'a str> {
        let action = action.to_ascii_lowercase();
        resources
            .iter()
            .find(|r| {
                let denied = self
                    .statements
                    .iter()
                    .any(|s| !s.allow && s.matches(&action, r));
                let allowed = self
                    .statements
                    .iter()
                    .any(|s| s.allow && s.matches(&action, r));
                denied || !allowed
            })
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> IamPolicy {
        IamPolicy::parse(text).unwrap()
    }

    #[test]
    fn an_action_is_allowed_on_the_resources_a_statement_names() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["iot:DescribeCertificate"],"Resource":"arn:aws:iot:*:111111111111:cert/*"},
                {"Effect":"Allow","Action":"iot:List*","Resource":"*"}]}"#,
        );
        let cert = vec!["arn:aws:iot:us-east-1:111111111111:cert/ab".to_string()];
        assert_eq!(p.refused("iot:DescribeCertificate", &cert), None);
        assert_eq!(p.refused("iot:describecertificate", &cert), None);
        assert!(p.refused("iot:UpdateCertificate", &cert).is_some());
        let other = vec!["arn:aws:iot:us-east-1:222222222222:cert/ab".to_string()];
        assert!(p.refused("iot:DescribeCertificate", &other).is_some());
        let star = vec!["*".to_string()];
        assert_eq!(p.refused("iot:ListCertificates", &star), None);
    }

    #[test]
    fn an_action_without_a_resource_type_needs_a_star_statement() {
        let p = policy(
            r#"{"Statement":{"Effect":"Allow","Action":"iot:ListAttachedPolicies","Resource":"arn:aws:iot:*:*:cert/*"}}"#,
        );
        assert!(p
            .refused("iot:ListAttachedPolicies", &["*".to_string()])
            .is_some());
    }

    #[test]
    fn every_required_resource_must_be_allowed_and_a_deny_wins() {
        let p = policy(
            r#"{"Statement":[
                {"Effect":"Allow","Action":"iot:AddThingToThingGroup","Resource":["arn:aws:iot:*:*:thing/*","arn:aws:iot:*:*:thinggroup/*"]},
                {"Effect":"Deny","Action":"iot:*","Resource":"arn:aws:iot:*:*:thinggroup/secret"}]}"#,
        );
        let both = |g: &str| {
            vec![
                "arn:aws:iot:r:1:thing/t".to_string(),
                format!("arn:aws:iot:r:1:thinggroup/{g}"),
            ]
        };
        assert_eq!(p.refused("iot:AddThingToThingGroup", &both("g")), None);
        assert_eq!(
            p.refused("iot:AddThingToThingGroup", &both("secret")),
            Some("arn:aws:iot:r:1:thinggroup/secret")
        );
        let only_thing = policy(
            r#"{"Statement":{"Effect":"Allow","Action":"iot:AddThingToThingGroup","Resource":"arn:aws:iot:*:*:thing/*"}}"#,
        );
        assert!(only_thing
            .refused("iot:AddThingToThingGroup", &both("g"))
            .is_some());
    }

    #[test]
    fn what_it_cannot_read_is_refused_up_front() {
        for bad in [
            r#"{}"#,
            r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","NotAction":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":3,"Resource":"*"}]}"#,
        ] {
            assert!(IamPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
