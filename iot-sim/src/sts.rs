//! STS `GetCallerIdentity` (awsQuery protocol: form body in, XML out).

use crate::routes::parse_query;

/// XML namespace of STS responses.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Escapes text for XML content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The `Action` of an awsQuery request: from the form body, else the query string.
pub fn action(body: &[u8], query: Option<&str>) -> Option<String> {
    let form = String::from_utf8_lossy(body).replace('+', " ");
    parse_query(Some(&form))
        .remove("Action")
        .or_else(|| parse_query(query).remove("Action"))
}

/// The GetCallerIdentity response document.
pub fn caller_identity_xml(account: &str, user_id: &str, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{STS_NS}\"><GetCallerIdentityResult><Arn>arn:aws:iam::{account}:user/iot-sim</Arn><UserId>{}</UserId><Account>{account}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        xml_escape(user_id)
    )
}

/// An awsQuery error document.
pub fn error_xml(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{STS_NS}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        xml_escape(code),
        xml_escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_action() {
        assert_eq!(
            action(b"Action=GetCallerIdentity&Version=2011-06-15", None).as_deref(),
            Some("GetCallerIdentity")
        );
        assert_eq!(
            action(b"", Some("Action=GetCallerIdentity")).as_deref(),
            Some("GetCallerIdentity")
        );
        assert_eq!(action(b"Version=1", None), None);
        assert!(caller_identity_xml("123456789012", "a<b", "r").contains("<UserId>a&lt;b</UserId>"));
    }
}
