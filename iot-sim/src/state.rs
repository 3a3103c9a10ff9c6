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
}

/// One certificate as stored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CertState {
    /// 64-hex certificate id.
    pub id: String,
    /// `arn:aws:iot:REGION:OWNER:cert/ID`.
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
}

impl StateDump {
    /// The first certificate with this id and the account it is listed under.
    pub fn find(&self, id: &str) -> Option<(&AccountState, &CertState)> {
        self.accounts
            .iter()
            .find_map(|a| a.certificates.iter().find(|c| c.id == id).map(|c| (a, c)))
    }

    /// The entry of one (account, region), if any.
    pub fn account(&self, account: &str, region: &str) -> Option<&AccountState> {
        self.accounts
            .iter()
            .find(|a| a.account == account && a.region == region)
    }
}
