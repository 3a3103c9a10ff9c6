//! The public snapshot of the simulated world (`GET /_sim/state`).

use serde::{Deserialize, Serialize};

/// Every (account, region) the simulator knows, sorted by region, then account.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StateDump {
    /// One entry per (account, region), sorted by region, then account.
    pub accounts: Vec<AccountState>,
}

/// The certificates owned by one account in one region.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AccountState {
    /// 12-digit account id.
    pub account: String,
    /// Region name.
    pub region: String,
    /// Owned certificates sorted by id; a certificate pending transfer is
    /// listed under its source account with `pending_target` set.
    pub certificates: Vec<CertState>,
    /// Policies sorted by name.
    #[serde(default)]
    pub policies: Vec<PolicyState>,
    /// Thing types sorted by name.
    #[serde(default)]
    pub thing_types: Vec<ThingTypeState>,
    /// Static thing groups sorted by name.
    #[serde(default)]
    pub thing_groups: Vec<ThingGroupState>,
    /// Things sorted by name.
    #[serde(default)]
    pub things: Vec<ThingState>,
    /// CA certificates sorted by id.
    #[serde(default)]
    pub ca_certificates: Vec<CaCertState>,
    /// Jobs sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<crate::jobs::JobState>,
    /// Role aliases sorted by name.
    #[serde(default)]
    pub role_aliases: Vec<String>,
}

/// One policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PolicyState {
    /// Policy name.
    pub name: String,
    /// The default version's document.
    pub document: String,
    /// `defaultVersionId`.
    pub default_version_id: String,
}

/// One thing type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ThingTypeState {
    /// Thing type name.
    pub name: String,
    /// `thingTypeDescription`.
    pub description: Option<String>,
    /// `searchableAttributes`.
    pub searchable_attributes: Vec<String>,
    /// `mqtt5Configuration.propagatingAttributes`.
    #[serde(default)]
    pub mqtt5_propagating_attributes: Vec<crate::config::PropagatingAttribute>,
    /// Deprecated.
    #[serde(default)]
    pub deprecated: bool,
}

/// One thing group (static, or dynamic with its `query`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ThingGroupState {
    /// Group name.
    pub name: String,
    /// Parent group.
    pub parent: Option<String>,
    /// `thingGroupDescription`.
    pub description: Option<String>,
    /// Group attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Policies attached to the group, sorted.
    pub policies: Vec<String>,
    /// A dynamic group's query.
    #[serde(default)]
    pub query: Option<String>,
}

/// One thing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ThingState {
    /// Thing name.
    pub name: String,
    /// Thing type.
    pub thing_type: Option<String>,
    /// Attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// The groups it is a direct member of (static and dynamic), sorted.
    pub groups: Vec<String>,
    /// Attached principals (certificate ARNs), sorted.
    pub principals: Vec<String>,
}

/// One CA certificate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CaCertState {
    /// 64-hex id.
    pub id: String,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// `DEFAULT` or `SNI_ONLY`.
    pub certificate_mode: String,
}

/// One certificate as stored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CertState {
    /// 64-hex certificate id.
    pub id: String,
    /// `arn:PARTITION:iot:REGION:OWNER:cert/ID`.
    pub arn: String,
    /// Certificate status, e.g. `INACTIVE`.
    pub status: String,
    /// Owning account.
    pub owner: String,
    /// Account that owned it before the last accepted transfer.
    pub previous_owner: Option<String>,
    /// Target account of a pending transfer.
    pub pending_target: Option<String>,
    /// Message of the last transfer.
    pub transfer_message: Option<String>,
    /// Reason given by the last rejection.
    pub reject_reason: Option<String>,
    /// Attached policy names, sorted.
    pub policies: Vec<String>,
    /// Attached thing names, sorted.
    pub things: Vec<String>,
    /// The thing attached exclusively (`EXCLUSIVE_THING`), if any.
    #[serde(default)]
    pub exclusive_thing: Option<String>,
    /// `caCertificateId`.
    #[serde(default)]
    pub ca_certificate_id: Option<String>,
    /// `certificateMode`: `DEFAULT` or `SNI_ONLY`.
    #[serde(default)]
    pub certificate_mode: String,
    /// `creationDate`, epoch seconds.
    #[serde(default)]
    pub creation_date: f64,
}

impl StateDump {
    /// The first certificate with this id and the account it is listed under.
    pub fn find(&self, id: &str) -> Option<(&AccountState, &CertState)> {
        self.accounts
            .iter()
            .find_map(|a| a.certificates.iter().find(|c| c.id == id).map(|c| (a, c)))
    }

    /// The certificate with this id owned by (or pending from) `account` in `region`.
    pub fn find_in(&self, account: &str, region: &str, id: &str) -> Option<&CertState> {
        self.account(account, region)?
            .certificates
            .iter()
            .find(|c| c.id == id)
    }

    /// Every copy of a certificate id (one per account that has it: a
    /// certificate registered in several accounts appears several times).
    pub fn find_all(&self, id: &str) -> Vec<(&AccountState, &CertState)> {
        self.accounts
            .iter()
            .filter_map(|a| a.certificates.iter().find(|c| c.id == id).map(|c| (a, c)))
            .collect()
    }

    /// The entry of one (account, region), if any.
    pub fn account(&self, account: &str, region: &str) -> Option<&AccountState> {
        self.accounts
            .iter()
            .find(|a| a.account == account && a.region == region)
    }
}
