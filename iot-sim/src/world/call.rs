//! The validated requests the world runs: who calls ([`Caller`]) and what
//! ([`Call`], one variant per operation, fields as in the API inputs).
//!
//! [`crate::routes`] builds them from HTTP requests after checking every
//! input format; [`Call::resource_arn`] names what an IAM policy would name
//! for the call, for the deny rules.

use std::collections::BTreeMap;

use super::paging::Page;
use super::{cert_arn, policy_arn, thing_arn};
use crate::registry::{ca_arn, group_arn, thing_type_arn};

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
    /// AttachThingPrincipal.
    AttachThing { thing: String, principal: String },
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
    /// CreateThingType.
    CreateThingType {
        name: String,
        description: Option<String>,
        searchable_attributes: Vec<String>,
    },
    /// DescribeThingType.
    DescribeThingType { name: String },
    /// CreateThingGroup.
    CreateThingGroup {
        name: String,
        parent: Option<String>,
        description: Option<String>,
        attributes: BTreeMap<String, String>,
    },
    /// DescribeThingGroup.
    DescribeThingGroup { name: String },
    /// AddThingToThingGroup (names resolved from names or ARNs).
    AddThingToThingGroup { group: String, thing: String },
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
}

/// The filters of ListThings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThingFilter {
    /// `thingTypeName`.
    pub thing_type: Option<String>,
    /// `attributeName`.
    pub attribute_name: Option<String>,
    /// `attributeValue`.
    pub attribute_value: Option<String>,
    /// `usePrefixAttributeValue`.
    pub prefix: bool,
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
            | Call::ListPrincipalThings { principal, .. } => principal.clone(),
            Call::AttachThing { thing, .. } | Call::DetachThing { thing, .. } => {
                thing_arn(region, account, thing)
            }
            Call::CreatePolicy { name, .. } | Call::GetPolicy { name } => {
                policy_arn(region, account, name)
            }
            Call::CreateThing { name, .. }
            | Call::DescribeThing { name }
            | Call::ListThingPrincipals { name, .. }
            | Call::ListThingGroupsForThing { name, .. } => thing_arn(region, account, name),
            Call::CreateThingType { name, .. } | Call::DescribeThingType { name } => {
                thing_type_arn(region, account, name)
            }
            Call::CreateThingGroup { name, .. }
            | Call::DescribeThingGroup { name }
            | Call::ListThingsInThingGroup { name, .. }
            | Call::AddThingToThingGroup { group: name, .. } => group_arn(region, account, name),
            Call::ListCertificatesByCa { ca_id, .. } => ca_arn(region, account, ca_id),
            Call::SearchIndex { index, .. } => {
                crate::fleet_index::index_arn(region, account, index)
            }
            Call::ListCertificates { .. }
            | Call::ListOutgoing { .. }
            | Call::ListPolicies { .. }
            | Call::ListThings { .. }
            | Call::DescribeEndpoint { .. }
            | Call::RegisterWithoutCa { .. }
            | Call::GetIndexingConfiguration
            | Call::UpdateIndexingConfiguration { .. } => "*".to_string(),
        }
    }
}
