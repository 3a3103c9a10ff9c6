//! Input format rules from the API model.

/// Longest `transferMessage` / `rejectReason` (characters).
pub const MAX_MESSAGE_LEN: usize = 128;

/// Certificate statuses of the API model.
pub const STATUSES: [&str; 6] = [
    "ACTIVE",
    "INACTIVE",
    "REVOKED",
    "PENDING_TRANSFER",
    "REGISTER_INACTIVE",
    "PENDING_ACTIVATION",
];

/// `CertificateId`: exactly 64 characters, `(0x)?[a-fA-F0-9]+`.
pub fn is_certificate_id(s: &str) -> bool {
    if s.len() != 64 {
        return false;
    }
    let hex = s.strip_prefix("0x").unwrap_or(s);
    !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `AwsAccountId`: exactly 12 digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `CertificateStatus` enum member.
pub fn is_status(s: &str) -> bool {
    STATUSES.contains(&s)
}

/// `PolicyName`: 1..=128 of `[\w+=,.@-]`.
pub fn is_policy_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// `ThingName`: 1..=128 of `[a-zA-Z0-9:_-]`.
pub fn is_thing_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b))
}

/// `Marker`: up to 1024 of `[A-Za-z0-9+/]+={0,2}`.
pub fn is_marker(s: &str) -> bool {
    if s.is_empty() || s.len() > 1024 {
        return false;
    }
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A region name such as `us-east-1`: non-empty, lowercase letters, digits and `-`.
pub fn check_region(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err(format!("invalid region {s:?}"))
    }
}

/// Splits `arn:PARTITION:iot:REGION:ACCOUNT:cert/ID` (the partition of the region) into
/// (region, account, id).
pub fn parse_cert_arn(arn: &str) -> Option<(String, String, String)> {
    crate::arn::parse(arn, "cert").filter(|(_, _, id)| is_certificate_id(id))
}

/// Splits `arn:PARTITION:iot:REGION:ACCOUNT:thinggroup/NAME` into (region, account, name).
pub fn parse_group_arn(arn: &str) -> Option<(String, String, String)> {
    crate::arn::parse(arn, "thinggroup").filter(|(_, _, name)| is_thing_name(name))
}

/// `AttributeName`: 1..=128 of `[a-zA-Z0-9_.,@/:#-]`.
pub fn is_attribute_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#-".contains(&b))
}

/// `AttributeValue`: up to 800 of `[a-zA-Z0-9_.,@/:#=\[\]-]`.
pub fn is_attribute_value(s: &str) -> bool {
    s.len() <= 800
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#=[]-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let id = "a".repeat(64);
        assert!(is_certificate_id(&id));
        assert!(is_certificate_id(&format!("0x{}", "F".repeat(62))));
        assert!(!is_certificate_id(&"a".repeat(63)));
        assert!(!is_certificate_id(&"g".repeat(64)));
        assert!(is_account_id("123456789012"));
        assert!(!is_account_id("12345678901a"));
        assert!(!is_account_id("1234"));
    }

    #[test]
    fn names_and_markers() {
        assert!(is_policy_name("p1@x.y=z"));
        assert!(!is_policy_name("bad name"));
        assert!(is_thing_name("thing:1_a-b"));
        assert!(!is_thing_name("thing/1"));
        assert!(is_marker("abc+/=="));
        assert!(!is_marker("abc==="));
        assert!(!is_marker("a-b"));
    }

    #[test]
    fn arns() {
        let id = "b".repeat(64);
        let arn = format!("arn:aws:iot:us-east-1:123456789012:cert/{id}");
        assert_eq!(
            parse_cert_arn(&arn),
            Some(("us-east-1".into(), "123456789012".into(), id.clone()))
        );
        assert_eq!(
            parse_cert_arn(&format!("arn:aws:iot:us-east-1:123456789012:policy/{id}")),
            None
        );
        assert_eq!(parse_cert_arn("nonsense"), None);
        assert_eq!(
            parse_group_arn("arn:aws:iot:us-east-1:123456789012:thinggroup/g-1"),
            Some(("us-east-1".into(), "123456789012".into(), "g-1".into()))
        );
        assert_eq!(parse_group_arn(&arn), None);
    }
}
