//! Rewriting a policy document for the target account: the source account id in ARNs
//! becomes the target's, and nothing else changes.

/// Returns `document` with every ARN whose account field is `source` rewritten to `target`.
///
/// An ARN is `arn:PARTITION:SERVICE:REGION:ACCOUNT:...`; only the account field is compared
/// and replaced, so the same digits elsewhere (a topic name, a condition value) stay as they are.
pub fn rewrite_account(document: &str, source: &str, target: &str) -> String {
    let mut out = String::with_capacity(document.len());
    let mut rest = document;
    while let Some(at) = rest.find("arn:") {
        out.push_str(&rest[..at]);
        let arn = &rest[at..];
        match account_field(arn) {
            Some((start, end)) if &arn[start..end] == source => {
                out.push_str(&arn[..start]);
                out.push_str(target);
                rest = &arn[end..];
            }
            _ => {
                out.push_str("arn:");
                rest = &arn["arn:".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Byte range of the account field of the ARN at the start of `arn`, if it is one.
fn account_field(arn: &str) -> Option<(usize, usize)> {
    let ends_field = |c: char| c == ':' || c == '"' || c.is_whitespace();
    let mut start = 0;
    // Skip "arn", partition, service and region: four fields, each ended by ':'.
    for _ in 0..4 {
        let len = arn[start..].find(ends_field)?;
        if !arn[start + len..].starts_with(':') {
            return None;
        }
        start += len + 1;
    }
    let len = arn[start..].find(ends_field)?;
    if !arn[start + len..].starts_with(':') {
        return None;
    }
    Some((start, start + len))
}

#[cfg(test)]
mod tests {
    use super::rewrite_account;

    #[test]
    fn rewrites_the_account_field_of_every_arn() {
        let doc = r#"{"Resource":["arn:aws:iot:eu-west-1:111122223333:client/${iot:Connection.Thing.ThingName}","arn:aws:iot:*:111122223333:topic/t"]}"#;
        let got = rewrite_account(doc, "111122223333", "444455556666");
        assert_eq!(
            got,
            r#"{"Resource":["arn:aws:iot:eu-west-1:444455556666:client/${iot:Connection.Thing.ThingName}","arn:aws:iot:*:444455556666:topic/t"]}"#
        );
    }

    #[test]
    fn leaves_other_accounts_and_bare_digits_alone() {
        let doc = r#"{"Resource":"arn:aws:iot:eu-west-1:999999999999:topic/111122223333","Value":"111122223333"}"#;
        assert_eq!(rewrite_account(doc, "111122223333", "444455556666"), doc);
    }

    #[test]
    fn rewrites_arns_without_a_region() {
        let doc = r#""arn:aws:iam::111122223333:role/r""#;
        assert_eq!(
            rewrite_account(doc, "111122223333", "444455556666"),
            r#""arn:aws:iam::444455556666:role/r""#
        );
    }
}
