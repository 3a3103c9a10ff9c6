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
    /// `POST /policies/{policyName}`
    CreatePolicy,
    /// `GET /policies/{policyName}`
    GetPolicy,
    /// `GET /policies`
    ListPolicies,
    /// `POST /things/{thingName}`
    CreateThing,
    /// `GET /things/{thingName}`
    DescribeThing,
    /// `GET /things`
    ListThings,
    /// `GET /things/{thingName}/principals`
    ListThingPrincipals,
    /// `POST /thing-types/{thingTypeName}`
    CreateThingType,
    /// `GET /thing-types/{thingTypeName}`
    DescribeThingType,
    /// `POST /thing-groups/{thingGroupName}`
    CreateThingGroup,
    /// `GET /thing-groups/{thingGroupName}`
    DescribeThingGroup,
    /// `PUT /thing-groups/addThingToThingGroup`
    AddThingToThingGroup,
    /// `GET /things/{thingName}/thing-groups`
    ListThingGroupsForThing,
    /// `GET /thing-groups/{thingGroupName}/things`
    ListThingsInThingGroup,
    /// `GET /certificates-by-ca/{caCertificateId}`
    ListCertificatesByCA,
    /// `GET /endpoint`
    DescribeEndpoint,
    /// `POST /certificate/register-no-ca`
    RegisterCertificateWithoutCA,
    /// STS (awsQuery) `POST /` with `Action=GetCallerIdentity`.
    GetCallerIdentity,
    /// STS (awsQuery) `POST /` with `Action=AssumeRole`.
    AssumeRole,
    /// `POST /indices/search`
    SearchIndex,
    /// `GET /indexing/config`
    GetIndexingConfiguration,
    /// `POST /indexing/config`
    UpdateIndexingConfiguration,
    /// `POST /thing-types/{thingTypeName}/deprecate`
    DeprecateThingType,
    /// `GET /principals/things-v2` (header `x-amzn-principal`)
    ListPrincipalThingsV2,
    /// `GET /things/{thingName}/principals-v2`
    ListThingPrincipalsV2,
    /// `GET /cacertificate/{caCertificateId}`
    DescribeCACertificate,
    /// `GET /role-aliases`
    ListRoleAliases,
    /// `POST /things/{thingName}/connectivity-data`
    GetThingConnectivityData,
    /// `DELETE /thing-groups/{thingGroupName}`
    DeleteThingGroup,
    /// `PUT /thing-groups/removeThingFromThingGroup`
    RemoveThingFromThingGroup,
    /// `PUT /jobs/{jobId}`
    CreateJob,
    /// `GET /jobs/{jobId}`
    DescribeJob,
    /// `GET /jobs/{jobId}/job-document`
    GetJobDocument,
    /// `GET /jobs/{jobId}/things`
    ListJobExecutionsForJob,
    /// `GET /things/{thingName}/jobs`
    ListJobExecutionsForThing,
    /// `GET /things/{thingName}/jobs/{jobId}`
    DescribeJobExecution,
    /// `PUT /jobs/{jobId}/cancel`
    CancelJob,
    /// `DELETE /jobs/{jobId}`
    DeleteJob,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 54] = [
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
        Operation::CreatePolicy,
        Operation::GetPolicy,
        Operation::ListPolicies,
        Operation::CreateThing,
        Operation::DescribeThing,
        Operation::ListThings,
        Operation::ListThingPrincipals,
        Operation::CreateThingType,
        Operation::DescribeThingType,
        Operation::CreateThingGroup,
        Operation::DescribeThingGroup,
        Operation::AddThingToThingGroup,
        Operation::ListThingGroupsForThing,
        Operation::ListThingsInThingGroup,
        Operation::ListCertificatesByCA,
        Operation::DescribeEndpoint,
        Operation::RegisterCertificateWithoutCA,
        Operation::GetCallerIdentity,
        Operation::AssumeRole,
        Operation::SearchIndex,
        Operation::GetIndexingConfiguration,
        Operation::UpdateIndexingConfiguration,
        Operation::DeprecateThingType,
        Operation::ListPrincipalThingsV2,
        Operation::ListThingPrincipalsV2,
        Operation::DescribeCACertificate,
        Operation::ListRoleAliases,
        Operation::GetThingConnectivityData,
        Operation::DeleteThingGroup,
        Operation::RemoveThingFromThingGroup,
        Operation::CreateJob,
        Operation::DescribeJob,
        Operation::GetJobDocument,
        Operation::ListJobExecutionsForJob,
        Operation::ListJobExecutionsForThing,
        Operation::DescribeJobExecution,
        Operation::CancelJob,
        Operation::DeleteJob,
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
            Operation::CreatePolicy => "CreatePolicy",
            Operation::GetPolicy => "GetPolicy",
            Operation::ListPolicies => "ListPolicies",
            Operation::CreateThing => "CreateThing",
            Operation::DescribeThing => "DescribeThing",
            Operation::ListThings => "ListThings",
            Operation::ListThingPrincipals => "ListThingPrincipals",
            Operation::CreateThingType => "CreateThingType",
            Operation::DescribeThingType => "DescribeThingType",
            Operation::CreateThingGroup => "CreateThingGroup",
            Operation::DescribeThingGroup => "DescribeThingGroup",
            Operation::AddThingToThingGroup => "AddThingToThingGroup",
            Operation::ListThingGroupsForThing => "ListThingGroupsForThing",
            Operation::ListThingsInThingGroup => "ListThingsInThingGroup",
            Operation::ListCertificatesByCA => "ListCertificatesByCA",
            Operation::DescribeEndpoint => "DescribeEndpoint",
            Operation::RegisterCertificateWithoutCA => "RegisterCertificateWithoutCA",
            Operation::GetCallerIdentity => "GetCallerIdentity",
            Operation::AssumeRole => "AssumeRole",
            Operation::SearchIndex => "SearchIndex",
            Operation::GetIndexingConfiguration => "GetIndexingConfiguration",
            Operation::UpdateIndexingConfiguration => "UpdateIndexingConfiguration",
            Operation::DeprecateThingType => "DeprecateThingType",
            Operation::ListPrincipalThingsV2 => "ListPrincipalThingsV2",
            Operation::ListThingPrincipalsV2 => "ListThingPrincipalsV2",
            Operation::DescribeCACertificate => "DescribeCACertificate",
            Operation::ListRoleAliases => "ListRoleAliases",
            Operation::GetThingConnectivityData => "GetThingConnectivityData",
            Operation::DeleteThingGroup => "DeleteThingGroup",
            Operation::RemoveThingFromThingGroup => "RemoveThingFromThingGroup",
            Operation::CreateJob => "CreateJob",
            Operation::DescribeJob => "DescribeJob",
            Operation::GetJobDocument => "GetJobDocument",
            Operation::ListJobExecutionsForJob => "ListJobExecutionsForJob",
            Operation::ListJobExecutionsForThing => "ListJobExecutionsForThing",
            Operation::DescribeJobExecution => "DescribeJobExecution",
            Operation::CancelJob => "CancelJob",
            Operation::DeleteJob => "DeleteJob",
        }
    }

    /// Looks an operation up by its API name.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The default TPS quota per account and region: Service Quotas, service
    /// `iotcore`, "<Operation> API TPS" (`None` = unlimited). Operations
    /// without a known published value get 10.
    pub fn documented_tps(self) -> Option<f64> {
        match self {
            Operation::AttachThingPrincipal
            | Operation::DetachThingPrincipal
            | Operation::CreateThing => Some(100.0),
            Operation::ListAttachedPolicies
            | Operation::ListPrincipalPolicies
            | Operation::AttachPolicy
            | Operation::DetachPolicy
            | Operation::DetachPrincipalPolicy => Some(15.0),
            Operation::GetCallerIdentity | Operation::AssumeRole => None,
            // TransferCertificate, Accept/Reject/CancelCertificateTransfer,
            // UpdateCertificate, DescribeCertificate, ListCertificates,
            // ListCertificatesByCA, ListOutgoingCertificates, ListPrincipalThings,
            // GetPolicy, CreatePolicy, RegisterCertificateWithoutCA: 10 as published;
            // the other registry operations: 10 for want of a published value.
            _ => Some(10.0),
        }
    }

    /// Whether Service Quotas publishes this operation's TPS (false: the 10 is a guess).
    pub fn tps_is_documented(self) -> bool {
        !matches!(
            self,
            Operation::ListPolicies
                | Operation::DescribeThing
                | Operation::ListThings
                | Operation::ListThingPrincipals
                | Operation::CreateThingType
                | Operation::DescribeThingType
                | Operation::CreateThingGroup
                | Operation::DescribeThingGroup
                | Operation::AddThingToThingGroup
                | Operation::ListThingGroupsForThing
                | Operation::ListThingsInThingGroup
                | Operation::DescribeEndpoint
                | Operation::SearchIndex
                | Operation::GetIndexingConfiguration
                | Operation::UpdateIndexingConfiguration
                | Operation::DeprecateThingType
                | Operation::ListPrincipalThingsV2
                | Operation::ListThingPrincipalsV2
                | Operation::DescribeCACertificate
                | Operation::ListRoleAliases
                // AWS IoT Device Management (jobs, thing groups, connectivity): no published
                // value was found in the sources checked.
                | Operation::GetThingConnectivityData
                | Operation::DeleteThingGroup
                | Operation::RemoveThingFromThingGroup
                | Operation::CreateJob
                | Operation::DescribeJob
                | Operation::GetJobDocument
                | Operation::ListJobExecutionsForJob
                | Operation::ListJobExecutionsForThing
                | Operation::DescribeJobExecution
                | Operation::CancelJob
                | Operation::DeleteJob
        )
    }

    /// Whether the operation changes state (the `lost-reply` fault applies only to these):
    /// UpdateCertificate, AttachPolicy, DetachPolicy, DetachPrincipalPolicy,
    /// AttachThingPrincipal, DetachThingPrincipal, TransferCertificate,
    /// AcceptCertificateTransfer, RejectCertificateTransfer, CancelCertificateTransfer,
    /// CreatePolicy, CreateThing, CreateThingType, CreateThingGroup,
    /// AddThingToThingGroup, RegisterCertificateWithoutCA, UpdateIndexingConfiguration,
    /// DeprecateThingType, DeleteThingGroup, RemoveThingFromThingGroup, CreateJob, CancelJob,
    /// DeleteJob.
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
                | Operation::CreatePolicy
                | Operation::CreateThing
                | Operation::CreateThingType
                | Operation::CreateThingGroup
                | Operation::AddThingToThingGroup
                | Operation::RegisterCertificateWithoutCA
                | Operation::UpdateIndexingConfiguration
                | Operation::DeprecateThingType
                | Operation::DeleteThingGroup
                | Operation::RemoveThingFromThingGroup
                | Operation::CreateJob
                | Operation::CancelJob
                | Operation::DeleteJob
        )
    }

    /// Whether injected faults and quotas apply (everything except STS).
    pub fn is_iot(self) -> bool {
        !matches!(self, Operation::GetCallerIdentity | Operation::AssumeRole)
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
