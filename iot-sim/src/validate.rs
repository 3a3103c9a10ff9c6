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

/// Splits `arn:aws:iot:REGION:ACCOUNT:cert/ID` into (region, account, id).
pub fn parse_cert_arn(arn: &str) -> Option<(String, String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if scheme != "arn" || !partition.starts_with("aws") || service != "iot" {
        return None;
    }
    let id = resource.strip_prefix("cert/")?;
    if !is_certificate_id(id) || !is_account_id(account) || region.is_empty() {
        return None;
    }
    Some((region.to_string(), account.to_string(), id.to_string()))
}

/// Splits `arn:aws:iot:REGION:ACCOUNT:thinggroup/NAME` into (region, account, name).
pub fn parse_group_arn(arn: &str) -> Option<(String, String, String)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if !partition.starts_with("aws") || service != "iot" || region.is_empty() {
        return None;
    }
    let name = resource.strip_prefix("thinggroup/")?;
    if !is_thing_name(name) || !is_account_id(account) {
        return None;
    }
    Some((region.to_string(), account.to_string(), name.to_string()))
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
