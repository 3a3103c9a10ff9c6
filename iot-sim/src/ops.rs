//! The operations the simulator answers, their names, documented quotas and
//! whether they mutate state.

/// An operation of the simulated API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `GET /certificates/{certificateId}`
    DescribeCertificate,
    /// `PUT /certificates/{certificateId}?newStatus=`
    UpdateCertificate,
    /// `GET /certificates`
    ListCertificates,
    /// `GET /certificates-out-going`
    ListOutgoingCertificates,
    /// `POST /attached-policies/{target}`
    ListAttachedPolicies,
    /// `PUT /target-policies/{policyName}`
    AttachPolicy,
    /// `POST /target-policies/{policyName}`
    DetachPolicy,
    /// `GET /principal-policies` (header `x-amzn-iot-principal`)
    ListPrincipalPolicies,
    /// `DELETE /principal-policies/{policyName}` (header `x-amzn-iot-principal`)
    DetachPrincipalPolicy,
    /// `GET /principals/things` (header `x-amzn-principal`)
    ListPrincipalThings,
    /// `PUT /things/{thingName}/principals` (header `x-amzn-principal`)
    AttachThingPrincipal,
    /// `DELETE /things/{thingName}/principals` (header `x-amzn-principal`)
    DetachThingPrincipal,
    /// `PATCH /transfer-certificate/{certificateId}?targetAwsAccount=`
    TransferCertificate,
    /// `PATCH /accept-certificate-transfer/{certificateId}`
    AcceptCertificateTransfer,
    /// `PATCH /reject-certificate-transfer/{certificateId}`
    RejectCertificateTransfer,
    /// `PATCH /cancel-certificate-transfer/{certificateId}`
    CancelCertificateTransfer,
    /// STS (awsQuery) `POST /` with `Action=GetCallerIdentity`.
    GetCallerIdentity,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 17] = [
        Operation::DescribeCertificate,
        Operation::UpdateCertificate,
        Operation::ListCertificates,
        Operation::ListOutgoingCertificates,
        Operation::ListAttachedPolicies,
        Operation::AttachPolicy,
        Operation::DetachPolicy,
        Operation::ListPrincipalPolicies,
        Operation::DetachPrincipalPolicy,
        Operation::ListPrincipalThings,
        Operation::AttachThingPrincipal,
        Operation::DetachThingPrincipal,
        Operation::TransferCertificate,
        Operation::AcceptCertificateTransfer,
        Operation::RejectCertificateTransfer,
        Operation::CancelCertificateTransfer,
        Operation::GetCallerIdentity,
    ];

    /// The operation's name as in the API model.
    pub fn name(self) -> &'static str {
        match self {
            Operation::DescribeCertificate => "DescribeCertificate",
            Operation::UpdateCertificate => "UpdateCertificate",
            Operation::ListCertificates => "ListCertificates",
            Operation::ListOutgoingCertificates => "ListOutgoingCertificates",
            Operation::ListAttachedPolicies => "ListAttachedPolicies",
            Operation::AttachPolicy => "AttachPolicy",
            Operation::DetachPolicy => "DetachPolicy",
            Operation::ListPrincipalPolicies => "ListPrincipalPolicies",
            Operation::DetachPrincipalPolicy => "DetachPrincipalPolicy",
            Operation::ListPrincipalThings => "ListPrincipalThings",
            Operation::AttachThingPrincipal => "AttachThingPrincipal",
            Operation::DetachThingPrincipal => "DetachThingPrincipal",
            Operation::TransferCertificate => "TransferCertificate",
            Operation::AcceptCertificateTransfer => "AcceptCertificateTransfer",
            Operation::RejectCertificateTransfer => "RejectCertificateTransfer",
            Operation::CancelCertificateTransfer => "CancelCertificateTransfer",
            Operation::GetCallerIdentity => "GetCallerIdentity",
        }
    }

    /// Looks an operation up by its API name.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The documented TPS quota per account and region (`None` = unlimited).
    pub fn documented_tps(self) -> Option<f64> {
        match self {
            Operation::TransferCertificate
            | Operation::AcceptCertificateTransfer
            | Operation::RejectCertificateTransfer
            | Operation::CancelCertificateTransfer
            | Operation::UpdateCertificate
            | Operation::DescribeCertificate
            | Operation::ListCertificates
            | Operation::ListOutgoingCertificates
            | Operation::ListPrincipalThings => Some(10.0),
            Operation::ListAttachedPolicies
            | Operation::ListPrincipalPolicies
            | Operation::AttachPolicy
            | Operation::DetachPolicy
            | Operation::DetachPrincipalPolicy
            | Operation::AttachThingPrincipal
            | Operation::DetachThingPrincipal => Some(15.0),
            Operation::GetCallerIdentity => None,
        }
    }

    /// Whether the operation changes state (the `lost-reply` fault applies only to these):
    /// UpdateCertificate, AttachPolicy, DetachPolicy, DetachPrincipalPolicy,
    /// AttachThingPrincipal, DetachThingPrincipal, TransferCertificate,
    /// AcceptCertificateTransfer, RejectCertificateTransfer, CancelCertificateTransfer.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Operation::UpdateCertificate
                | Operation::AttachPolicy
                | Operation::DetachPolicy
                | Operation::DetachPrincipalPolicy
                | Operation::AttachThingPrincipal
                | Operation::DetachThingPrincipal
                | Operation::TransferCertificate
                | Operation::AcceptCertificateTransfer
                | Operation::RejectCertificateTransfer
                | Operation::CancelCertificateTransfer
        )
    }

    /// Whether injected faults and quotas apply (everything except STS GetCallerIdentity).
    pub fn is_iot(self) -> bool {
        self != Operation::GetCallerIdentity
    }

    /// Dense index, for per-operation tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (i, op) in Operation::ALL.into_iter().enumerate() {
            assert_eq!(Operation::from_name(op.name()), Some(op));
            assert_eq!(op.index(), i);
        }
    }
}
