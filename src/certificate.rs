//! A certificate as AWS IoT names it: its status (a closed set) and its ARN.

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

/// `arn:aws:iot:REGION:ACCOUNT:cert/ID`: the certificate's ARN in one account.
pub fn cert_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:cert/{id}")
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
}
