//! ARNs as AWS IoT builds them: `arn:PARTITION:iot:REGION:ACCOUNT:KIND/NAME`, the partition
//! following the region (`aws-cn` in `cn-*`, `aws-us-gov` in `us-gov-*`, `aws` elsewhere).

/// The partition of a region: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`, else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn iot_arn(region: &str, account: &str, kind: &str, name: &str) -> String {
    format!(
        "arn:{}:iot:{region}:{account}:{kind}/{name}",
        partition(region)
    )
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:cert/ID`.
pub fn cert_arn(region: &str, account: &str, id: &str) -> String {
    iot_arn(region, account, "cert", id)
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:thing/NAME`.
pub fn thing_arn(region: &str, account: &str, name: &str) -> String {
    iot_arn(region, account, "thing", name)
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:policy/NAME`.
pub fn policy_arn(region: &str, account: &str, name: &str) -> String {
    iot_arn(region, account, "policy", name)
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:thingtype/NAME`.
pub fn thing_type_arn(region: &str, account: &str, name: &str) -> String {
    iot_arn(region, account, "thingtype", name)
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:thinggroup/NAME`.
pub fn group_arn(region: &str, account: &str, name: &str) -> String {
    iot_arn(region, account, "thinggroup", name)
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:cacert/ID`.
pub fn ca_arn(region: &str, account: &str, id: &str) -> String {
    iot_arn(region, account, "cacert", id)
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:rolealias/NAME`.
pub fn role_alias_arn(region: &str, account: &str, name: &str) -> String {
    iot_arn(region, account, "rolealias", name)
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:index/NAME`.
pub fn index_arn(region: &str, account: &str, name: &str) -> String {
    iot_arn(region, account, "index", name)
}

/// The (region, account, name) of an IoT ARN of `kind` whose partition is its region's;
/// `None` for anything else.
pub fn parse(arn: &str, kind: &str) -> Option<(String, String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, part, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = resource.strip_prefix(kind)?.strip_prefix('/')?;
    let valid = scheme == "arn"
        && service == "iot"
        && !region.is_empty()
        && part == partition(region)
        && crate::validate::is_account_id(account)
        && !name.is_empty();
    valid.then(|| (region.to_string(), account.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_follows_the_region() {
        assert_eq!(
            cert_arn("cn-north-1", "111111111111", "ab"),
            "arn:aws-cn:iot:cn-north-1:111111111111:cert/ab"
        );
        assert_eq!(
            group_arn("us-gov-west-1", "111111111111", "g"),
            "arn:aws-us-gov:iot:us-gov-west-1:111111111111:thinggroup/g"
        );
        assert_eq!(
            thing_arn("eu-west-1", "111111111111", "t"),
            "arn:aws:iot:eu-west-1:111111111111:thing/t"
        );
        assert_eq!(
            parse("arn:aws-cn:iot:cn-north-1:111111111111:cert/ab", "cert"),
            Some(("cn-north-1".into(), "111111111111".into(), "ab".into()))
        );
        // the wrong partition for the region names nothing
        assert_eq!(
            parse("arn:aws:iot:cn-north-1:111111111111:cert/ab", "cert"),
            None
        );
        assert_eq!(
            parse("arn:aws:iot:us-east-1:111111111111:thing/t", "cert"),
            None
        );
    }
}
