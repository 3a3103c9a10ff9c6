//! The validated requests the world runs: who calls ([`Caller`]) and what
//! ([`Call`], one variant per operation, fields as in the API inputs).
//!
//! [`crate::routes`] builds them from HTTP requests after checking every
//! input format; [`Call::resource_arn`] names the resource the deny rules
//! match, [`Call::authorized_resources`] the resources IAM authorizes the call
//! on (the Service Authorization Reference's resource types).

use std::collections::BTreeMap;

use super::groups::GroupDefinition;
use super::paging::Page;
use super::thing_types::ThingTypeDefinition;
use super::things::ThingFilter;
use crate::arn::{ca_arn, cert_arn, group_arn, policy_arn, thing_arn, thing_type_arn};

/// Who is calling: from the SigV4 credential scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// 12-digit account id.
    pub account: String,
    /// Region of the credential scope.
    pub region: String,
}

/// A validated request of one IoT operation (fields as in the API inputs).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// DescribeCertificate.
    Describe { id: String },
    /// UpdateCertificate.
    Update { id: String, new_status: String },
    /// ListCertificates.
    ListCertificates { page: Page },
    /// ListOutgoingCertificates.
    ListOutgoing { page: Page },
    /// ListAttachedPolicies.
    ListAttachedPolicies {
        target: String,
        recursive: bool,
        page: Page,
    },
    /// AttachPolicy.
    AttachPolicy { policy: String, target: String },
    /// DetachPolicy / DetachPrincipalPolicy.
    DetachPolicy { policy: String, target: String },
    /// ListPrincipalPolicies.
    ListPrincipalPolicies { principal: String, page: Page },
    /// ListPrincipalThings.
    ListPrincipalThings { principal: String, page: Page },
    /// ListPrincipalThingsV2 (`only`: the attachments of one `thingPrincipalType`, true =
    /// exclusive).
    ListPrincipalThingsV2 {
        principal: String,
        only: Option<bool>,
        page: Page,
    },
    /// AttachThingPrincipal (`exclusive`: `thingPrincipalType` EXCLUSIVE_THING).
    AttachThing {
        thing: String,
        principal: String,
        exclusive: bool,
    },
    /// DetachThingPrincipal.
    DetachThing { thing: String, principal: String },
    /// TransferCertificate.
    Transfer {
        id: String,
        target: String,
        message: Option<String>,
    },
    /// AcceptCertificateTransfer.
    Accept { id: String, set_as_active: bool },
    /// RejectCertificateTransfer.
    Reject { id: String, reason: Option<String> },
    /// CancelCertificateTransfer.
    Cancel { id: String },
    /// CreatePolicy.
    CreatePolicy { name: String, document: String },
    /// GetPolicy.
    GetPolicy { name: String },
    /// ListPolicies.
    ListPolicies { page: Page },
    /// CreateThing.
    CreateThing {
        name: String,
        thing_type: Option<String>,
        attributes: BTreeMap<String, String>,
    },
    /// DescribeThing.
    DescribeThing { name: String },
    /// ListThings.
    ListThings { filter: ThingFilter, page: Page },
    /// ListThingPrincipals.
    ListThingPrincipals { name: String, page: Page },
    /// ListThingPrincipalsV2 (`only` as for ListPrincipalThingsV2).
    ListThingPrincipalsV2 {
        name: String,
        only: Option<bool>,
        page: Page,
    },
    /// CreateThingType.
    CreateThingType {
        name: String,
        definition: ThingTypeDefinition,
    },
    /// DescribeThingType.
    DescribeThingType { name: String },
    /// DeprecateThingType (`undo`: `undoDeprecate`).
    DeprecateThingType { name: String, undo: bool },
    /// CreateThingGroup.
    CreateThingGroup {
        name: String,
        definition: GroupDefinition,
    },
    /// DescribeThingGroup.
    DescribeThingGroup { name: String },
    /// AddThingToThingGroup (names resolved from names or ARNs).
    AddThingToThingGroup {
        group: String,
        thing: String,
        override_dynamic: bool,
    },
    /// ListThingGroupsForThing.
    ListThingGroupsForThing { name: String, page: Page },
    /// ListThingsInThingGroup.
    ListThingsInThingGroup {
        name: String,
        recursive: bool,
        page: Page,
    },
    /// ListCertificatesByCA.
    ListCertificatesByCa { ca_id: String, page: Page },
    /// DescribeEndpoint.
    DescribeEndpoint { endpoint_type: Option<String> },
    /// RegisterCertificateWithoutCA.
    RegisterWithoutCa { pem: String, status: String },
    /// SearchIndex.
    SearchIndex {
        index: String,
        query: String,
        page: Page,
    },
    /// GetIndexingConfiguration.
    GetIndexingConfiguration,
    /// UpdateIndexingConfiguration.
    UpdateIndexingConfiguration {
        update: crate::fleet_index::IndexingUpdate,
    },
    /// DescribeCACertificate.
    DescribeCaCertificate { id: String },
    /// ListRoleAliases.
    ListRoleAliases { page: Page },
    /// GetThingConnectivityData.
    GetThingConnectivityData { name: String },
    /// DeleteThingGroup.
    DeleteThingGroup { name: String },
    /// RemoveThingFromThingGroup (names resolved from names or ARNs).
    RemoveThingFromThingGroup { group: String, thing: String },
    /// CreateJob.
    CreateJob(Box<crate::jobs::NewJob>),
    /// DescribeJob.
    DescribeJob { id: String },
    /// GetJobDocument.
    GetJobDocument { id: String },
    /// ListJobExecutionsForJob.
    ListJobExecutionsForJob {
        id: String,
        status: Option<String>,
        page: Page,
    },
    /// ListJobExecutionsForThing.
    ListJobExecutionsForThing {
        thing: String,
        status: Option<String>,
        job: Option<String>,
        page: Page,
    },
    /// DescribeJobExecution.
    DescribeJobExecution {
        id: String,
        thing: String,
        execution_number: Option<i64>,
    },
    /// CancelJob.
    CancelJob {
        id: String,
        force: bool,
        reason_code: Option<String>,
        comment: Option<String>,
    },
    /// DeleteJob.
    DeleteJob { id: String, force: bool },
}

impl Call {
    /// The resource an IAM policy would name for this call: the certificate,
    /// thing or policy target's ARN, or `*` for the list calls without one.
    pub fn resource_arn(&self, caller: &Caller) -> String {
        let (region, account) = (caller.region.as_str(), caller.account.as_str());
        match self {
            Call::Describe { id }
            | Call::Update { id, .. }
            | Call::Transfer { id, .. }
            | Call::Accept { id, .. }
            | Call::Reject { id, .. }
            | Call::Cancel { id } => cert_arn(region, account, id),
            Call::ListAttachedPolicies { target, .. }
            | Call::AttachPolicy { target, .. }
            | Call::DetachPolicy { target, .. } => target.clone(),
            Call::ListPrincipalPolicies { principal, .. }
            | Call::ListPrincipalThings { principal, .. }
            | Call::ListPrincipalThingsV2 { principal, .. } => principal.clone(),
            Call::AttachThing { thing, .. } | Call::DetachThing { thing, .. } => {
                thing_arn(region, account, thing)
            }
            Call::CreatePolicy { name, .. } | Call::GetPolicy { name } => {
                policy_arn(region, account, name)
            }
            Call::CreateThing { name, .. }
            | Call::DescribeThing { name }
            | Call::ListThingPrincipals { name, .. }
            | Call::ListThingPrincipalsV2 { name, .. }
            | Call::ListThingGroupsForThing { name, .. }
            | Call::GetThingConnectivityData { name }
            | Call::ListJobExecutionsForThing { thing: name, .. }
            | Call::DescribeJobExecution { thing: name, .. } => thing_arn(region, account, name),
            Call::CreateJob(job) => crate::jobs::job_arn(region, account, &job.id),
            Call::DescribeJob { id }
            | Call::GetJobDocument { id }
            | Call::ListJobExecutionsForJob { id, .. }
            | Call::CancelJob { id, .. }
            | Call::DeleteJob { id, .. } => crate::jobs::job_arn(region, account, id),
            Call::CreateThingType { name, .. }
            | Call::DescribeThingType { name }
            | Call::DeprecateThingType { name, .. } => thing_type_arn(region, account, name),
            Call::CreateThingGroup { name, .. }
            | Call::DescribeThingGroup { name }
            | Call::ListThingsInThingGroup { name, .. }
            | Call::AddThingToThingGroup { group: name, .. }
            | Call::DeleteThingGroup { name }
            | Call::RemoveThingFromThingGroup { group: name, .. } => {
                group_arn(region, account, name)
            }
            Call::ListCertificatesByCa { ca_id, .. } => ca_arn(region, account, ca_id),
            Call::SearchIndex { index, .. } => {
                crate::fleet_index::index_arn(region, account, index)
            }
            Call::DescribeCaCertificate { id } => ca_arn(region, account, id),
            Call::ListCertificates { .. }
            | Call::ListOutgoing { .. }
            | Call::ListPolicies { .. }
            | Call::ListThings { .. }
            | Call::DescribeEndpoint { .. }
            | Call::RegisterWithoutCa { .. }
            | Call::GetIndexingConfiguration
            | Call::UpdateIndexingConfiguration { .. }
            | Call::ListRoleAliases { .. } => "*".to_string(),
        }
    }

    /// The resources IAM authorizes this call on, each of which the caller's policy must
    /// allow: the ARNs of the Service Authorization Reference's resource types for the
    /// action (a certificate, thing, thing group, ...), or `*` for an action without one
    /// (then only a statement with `"Resource": "*"` allows it).
    pub fn authorized_resources(&self, caller: &Caller) -> Vec<String> {
        let (region, account) = (caller.region.as_str(), caller.account.as_str());
        let one = |arn: String| vec![arn];
        match self {
            Call::Describe { id }
            | Call::Update { id, .. }
            | Call::Transfer { id, .. }
            | Call::Accept { id, .. }
            | Call::Reject { id, .. }
            | Call::Cancel { id } => one(cert_arn(region, account, id)),
            // a certificate or thing-group target, as given
            Call::AttachPolicy { target, .. } | Call::DetachPolicy { target, .. } => {
                one(target.clone())
            }
            // the certificate; the thing only through the condition key iot:thingArn
            Call::ListPrincipalThings { principal, .. }
            | Call::ListPrincipalThingsV2 { principal, .. }
            | Call::AttachThing { principal, .. }
            | Call::DetachThing { principal, .. } => one(principal.clone()),
            Call::CreatePolicy { name, .. } | Call::GetPolicy { name } => {
                one(policy_arn(region, account, name))
            }
            Call::CreateThing { name, .. }
            | Call::DescribeThing { name }
            | Call::ListThingPrincipals { name, .. }
            | Call::ListThingPrincipalsV2 { name, .. }
            | Call::ListThingGroupsForThing { name, .. }
            | Call::GetThingConnectivityData { name }
            | Call::ListJobExecutionsForThing { thing: name, .. }
            | Call::DescribeJobExecution { thing: name, .. } => {
                one(thing_arn(region, account, name))
            }
            // the job, and each thing or thing group it targets
            Call::CreateJob(job) => std::iter::once(crate::jobs::job_arn(region, account, &job.id))
                .chain(job.targets.iter().cloned())
                .collect(),
            Call::DescribeJob { id }
            | Call::GetJobDocument { id }
            | Call::ListJobExecutionsForJob { id, .. }
            | Call::CancelJob { id, .. }
            | Call::DeleteJob { id, .. } => one(crate::jobs::job_arn(region, account, id)),
            Call::CreateThingType { name, .. }
            | Call::DescribeThingType { name }
            | Call::DeprecateThingType { name, .. } => one(thing_type_arn(region, account, name)),
            Call::CreateThingGroup { name, .. }
            | Call::DescribeThingGroup { name }
            | Call::ListThingsInThingGroup { name, .. }
            | Call::DeleteThingGroup { name } => one(group_arn(region, account, name)),
            // both are required
            Call::AddThingToThingGroup { group, thing, .. }
            | Call::RemoveThingFromThingGroup { group, thing } => vec![
                thing_arn(region, account, thing),
                group_arn(region, account, group),
            ],
            Call::DescribeCaCertificate { id } => one(ca_arn(region, account, id)),
            Call::SearchIndex { index, .. } => {
                one(crate::fleet_index::index_arn(region, account, index))
            }
            Call::ListCertificates { .. }
            | Call::ListOutgoing { .. }
            | Call::ListAttachedPolicies { .. }
            | Call::ListPrincipalPolicies { .. }
            | Call::ListPolicies { .. }
            | Call::ListThings { .. }
            | Call::ListCertificatesByCa { .. }
            | Call::DescribeEndpoint { .. }
            | Call::RegisterWithoutCa { .. }
            | Call::GetIndexingConfiguration
            | Call::UpdateIndexingConfiguration { .. }
            | Call::ListRoleAliases { .. } => one("*".to_string()),
        }
    }
}
