//! A certificate as AWS IoT names it: its status (a closed set), its ARN (and the ARNs of the
//! other IoT resources, in the partition of their region) and its id's bytes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A certificate's status, as AWS IoT spells it (`ACTIVE`, `PENDING_TRANSFER`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertStatus {
    /// In use: devices can connect with it.
    Active,
    /// Deactivated.
    Inactive,
    /// Revoked: can never be used again.
    Revoked,
    /// Transferred, not yet accepted or rejected.
    PendingTransfer,
    /// Registered inactive (CA registration flow).
    RegisterInactive,
    /// Awaiting activation (CA registration flow).
    PendingActivation,
    /// A status this tool does not know (a newer API): kept as AWS spelled it.
    Other(String),
}

impl CertStatus {
    /// The name AWS uses.
    pub fn as_str(&self) -> &str {
        match self {
            CertStatus::Active => "ACTIVE",
            CertStatus::Inactive => "INACTIVE",
            CertStatus::Revoked => "REVOKED",
            CertStatus::PendingTransfer => "PENDING_TRANSFER",
            CertStatus::RegisterInactive => "REGISTER_INACTIVE",
            CertStatus::PendingActivation => "PENDING_ACTIVATION",
            CertStatus::Other(s) => s,
        }
    }

    /// The status AWS spells `s`.
    pub fn parse(s: &str) -> CertStatus {
        match s {
            "ACTIVE" => CertStatus::Active,
            "INACTIVE" => CertStatus::Inactive,
            "REVOKED" => CertStatus::Revoked,
            "PENDING_TRANSFER" => CertStatus::PendingTransfer,
            "REGISTER_INACTIVE" => CertStatus::RegisterInactive,
            "PENDING_ACTIVATION" => CertStatus::PendingActivation,
            other => CertStatus::Other(other.to_string()),
        }
    }

    /// ACTIVE or INACTIVE: the statuses a certificate can be transferred from.
    pub fn is_transferable(&self) -> bool {
        matches!(self, CertStatus::Active | CertStatus::Inactive)
    }

    /// The SDK's value, for UpdateCertificate.
    pub fn to_sdk(&self) -> aws_sdk_iot::types::CertificateStatus {
        aws_sdk_iot::types::CertificateStatus::from(self.as_str())
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CertStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CertStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(CertStatus::parse(&s))
    }
}

/// The AWS partition of a region, the second field of every ARN: `aws-cn` in the China
/// regions (`cn-*`), `aws-us-gov` in GovCloud (`us-gov-*`), `aws` elsewhere.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:RESOURCE` (e.g. `thinggroup/NAME`), the partition
/// following the region.
pub fn iot_arn(region: &str, account: &str, resource: &str) -> String {
    format!(
        "arn:{}:iot:{region}:{account}:{resource}",
        partition(region)
    )
}

/// `arn:PARTITION:iot:REGION:ACCOUNT:cert/ID`: the certificate's ARN in one account.
pub fn cert_arn(region: &str, account: &str, id: &str) -> String {
    iot_arn(region, account, &format!("cert/{id}"))
}

/// The account and certificate id of a certificate ARN (`arn:PARTITION:iot:REGION:ACCOUNT:cert/ID`);
/// `None` for anything else.
pub fn arn_account_and_id(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service, _region) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let (account, resource) = (parts.next()?, parts.next()?);
    let id = resource.strip_prefix("cert/")?;
    (arn_ == "arn" && service == "iot" && !account.is_empty() && !id.is_empty())
        .then_some((account, id))
}

/// The certificate id of a certificate ARN, lowercase; `None` for other principals (Cognito
/// identities, IAM users and roles).
pub fn certificate_id_of_arn(arn: &str) -> Option<String> {
    arn_account_and_id(arn).map(|(_, id)| id.to_ascii_lowercase())
}

/// Length of a certificate id, in characters (hex digits).
pub const CERTIFICATE_ID_LEN: usize = 64;

/// Which letter case the hex digits of a certificate id may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexCase {
    /// `a`-`f` only: for ids whose text must round-trip from the bytes.
    Lower,
    /// `a`-`f` and `A`-`F`.
    Either,
}

/// The 32 bytes of a certificate id of exactly [`CERTIFICATE_ID_LEN`] hex digits in `case`;
/// `None` for anything else.
#[inline]
pub fn decode_hex_id(digits: &[u8], case: HexCase) -> Option<[u8; 32]> {
    const LOWER: [u8; 256] = hex_values(false);
    const EITHER: [u8; 256] = hex_values(true);
    let values = match case {
        HexCase::Lower => &LOWER,
        HexCase::Either => &EITHER,
    };
    if digits.len() != CERTIFICATE_ID_LEN {
        return None;
    }
    // A table and one check at the end: random hex digits make a per-digit branch on
    // digit-or-letter mispredict about a third of the time, and every manifest row and
    // every ledger lookup decodes an id.
    let mut bytes = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (values[usize::from(pair[0])], values[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    (invalid & 0xf0 == 0).then_some(bytes)
}

/// The value of each hex digit (uppercase too if `upper`); 0xff for every other byte.
const fn hex_values(upper: bool) -> [u8; 256] {
    let mut table = [0xffu8; 256];
    let mut d = 0;
    while d < 10 {
        table[b'0' as usize + d] = d as u8;
        d += 1;
    }
    let mut l = 0;
    while l < 6 {
        table[b'a' as usize + l] = 10 + l as u8;
        if upper {
            table[b'A' as usize + l] = 10 + l as u8;
        }
        l += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_ids_come_from_certificate_arns_only() {
        assert_eq!(
            certificate_id_of_arn("arn:aws:iot:us-east-1:111111111111:cert/ABCdef").as_deref(),
            Some("abcdef")
        );
        assert_eq!(
            certificate_id_of_arn("arn:aws:iam::111111111111:role/device"),
            None
        );
        assert_eq!(
            certificate_id_of_arn("us-east-1:7a2d1c3e-cognito-identity"),
            None
        );
        assert_eq!(
            certificate_id_of_arn("arn:aws:iot:us-east-1:111111111111:cert/"),
            None
        );
    }

    #[test]
    fn certificate_arns_give_their_account_and_id() {
        let arn = cert_arn("eu-west-1", "222222222222", "ab12");
        assert_eq!(arn_account_and_id(&arn), Some(("222222222222", "ab12")));
        assert_eq!(
            arn_account_and_id("arn:aws-cn:iot:cn-north-1:111111111111:cert/ff"),
            Some(("111111111111", "ff"))
        );
        for bad in [
            "",
            "arn:aws:iot:us-east-1:111111111111:thing/t",
            "arn:aws:s3:us-east-1:111111111111:cert/ff",
            "arn:aws:iot:us-east-1::cert/ff",
            "arn:aws:iot:us-east-1:111111111111:cert/",
        ] {
            assert_eq!(arn_account_and_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn arns_carry_the_partition_of_their_region() {
        assert_eq!(
            cert_arn("cn-north-1", "111111111111", "ab"),
            "arn:aws-cn:iot:cn-north-1:111111111111:cert/ab"
        );
        assert_eq!(
            cert_arn("cn-northwest-1", "111111111111", "ab"),
            "arn:aws-cn:iot:cn-northwest-1:111111111111:cert/ab"
        );
        assert_eq!(
            iot_arn("us-gov-west-1", "111111111111", "thinggroup/g"),
            "arn:aws-us-gov:iot:us-gov-west-1:111111111111:thinggroup/g"
        );
        assert_eq!(
            cert_arn("eu-west-1", "111111111111", "ab"),
            "arn:aws:iot:eu-west-1:111111111111:cert/ab"
        );
        // the region `*` of an IAM policy is in the commercial partition
        assert_eq!(partition("*"), "aws");
    }

    #[test]
    fn statuses_round_trip_through_their_aws_names() {
        for s in [
            "ACTIVE",
            "INACTIVE",
            "REVOKED",
            "PENDING_TRANSFER",
            "REGISTER_INACTIVE",
            "PENDING_ACTIVATION",
            "SOMETHING_NEW",
        ] {
            assert_eq!(CertStatus::parse(s).as_str(), s);
            let json = serde_json::to_string(&CertStatus::parse(s)).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<CertStatus>(&json).unwrap().as_str(),
                s
            );
        }
        assert!(CertStatus::Active.is_transferable());
        assert!(!CertStatus::PendingTransfer.is_transferable());
    }

    #[test]
    fn hex_ids_decode_in_the_case_asked_for() {
        let lower = "0123456789abcdef".repeat(4);
        let mut expected = [0u8; 32];
        for (i, b) in expected.iter_mut().enumerate() {
            *b = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef][i % 8];
        }
        assert_eq!(
            decode_hex_id(lower.as_bytes(), HexCase::Lower),
            Some(expected)
        );
        let upper = lower.to_ascii_uppercase();
        assert_eq!(
            decode_hex_id(upper.as_bytes(), HexCase::Either),
            Some(expected)
        );
        assert_eq!(decode_hex_id(upper.as_bytes(), HexCase::Lower), None);
        for bad in [
            &lower[..62],
            &format!("{lower}0"),
            &format!("g{}", &lower[1..]),
        ] {
            for case in [HexCase::Lower, HexCase::Either] {
                assert_eq!(decode_hex_id(bad.as_bytes(), case), None, "{bad}");
            }
        }
    }
}
