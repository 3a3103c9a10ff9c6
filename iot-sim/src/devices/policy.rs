//! Whether AWS IoT policies let a device connect: the `iot:Connect` action on the resource
//! `arn:aws:iot:REGION:ACCOUNT:client/CLIENT_ID`, with `*` and `?` wildcards, the policy
//! variables `${iot:ClientId}` and `${iot:Connection.Thing.ThingName}`, and an explicit
//! Deny winning over any Allow. Statements with a `Condition`, `NotAction` or
//! `NotResource` are not evaluated: they neither allow nor deny here.

use serde_json::Value;

/// Whether `documents` together allow `client_id` (attached to thing `thing`, if any) to
/// connect to account `account` in `region`.
pub(crate) fn connect_allowed(
    documents: &[&str],
    region: &str,
    account: &str,
    client_id: &str,
    thing: Option<&str>,
) -> bool {
    let resource = format!("arn:aws:iot:{region}:{account}:client/{client_id}");
    let mut allowed = false;
    for doc in documents {
        let Ok(v) = serde_json::from_str::<Value>(doc) else {
            continue;
        };
        for st in statements(&v) {
            if st.get("Condition").is_some()
                || st.get("NotAction").is_some()
                || st.get("NotResource").is_some()
            {
                continue;
            }
            let action = strings(st.get("Action"))
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), "iot:connect"));
            let on = strings(st.get("Resource"))
                .iter()
                .any(|r| glob(&substitute(r, client_id, thing), &resource));
            if !(action && on) {
                continue;
            }
            match st.get("Effect").and_then(Value::as_str) {
                Some("Deny") => return false,
                Some("Allow") => allowed = true,
                _ => {}
            }
        }
    }
    allowed
}

fn statements(v: &Value) -> Vec<&Value> {
    match v.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn substitute(pattern: &str, client_id: &str, thing: Option<&str>) -> String {
    let mut out = pattern.replace("${iot:ClientId}", client_id);
    if let Some(t) = thing {
        out = out.replace("${iot:Connection.Thing.ThingName}", t);
    }
    out
}

/// `*` matches any text, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "us-east-1";
    const A: &str = "111111111111";

    fn doc(effect: &str, action: &str, resource: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}]}}"#
        )
    }

    #[test]
    fn an_allow_on_the_client_arn_or_a_wildcard_lets_it_connect() {
        for resource in [
            "*",
            "arn:aws:iot:us-east-1:111111111111:client/*",
            "arn:aws:iot:us-east-1:111111111111:client/gw-?",
            "arn:aws:iot:us-east-1:111111111111:client/${iot:ClientId}",
            "arn:aws:iot:us-east-1:111111111111:client/${iot:Connection.Thing.ThingName}",
        ] {
            let d = doc("Allow", "iot:Connect", resource);
            assert!(
                connect_allowed(&[&d], R, A, "gw-1", Some("gw-1")),
                "{resource}"
            );
        }
        let any = doc("Allow", "iot:*", "*");
        assert!(connect_allowed(&[&any], R, A, "gw-1", None));
    }

    #[test]
    fn another_account_region_client_or_action_does_not() {
        for (action, resource) in [
            ("iot:Connect", "arn:aws:iot:us-east-1:222222222222:client/*"),
            ("iot:Connect", "arn:aws:iot:eu-west-1:111111111111:client/*"),
            (
                "iot:Connect",
                "arn:aws:iot:us-east-1:111111111111:client/other",
            ),
            ("iot:Publish", "*"),
            (
                "iot:Connect",
                "arn:aws:iot:us-east-1:111111111111:client/${iot:Connection.Thing.ThingName}",
            ),
        ] {
            let d = doc("Allow", action, resource);
            assert!(
                !connect_allowed(&[&d], R, A, "gw-1", None),
                "{action} {resource}"
            );
        }
        assert!(!connect_allowed(&[], R, A, "gw-1", None));
    }

    #[test]
    fn a_deny_wins_over_any_allow() {
        let allow = doc("Allow", "iot:Connect", "*");
        let deny = doc(
            "Deny",
            "iot:*",
            "arn:aws:iot:us-east-1:111111111111:client/gw-*",
        );
        assert!(!connect_allowed(&[&allow, &deny], R, A, "gw-1", None));
        assert!(connect_allowed(&[&allow, &deny], R, A, "meter-1", None));
    }
}
