//! The IoT clients of one account: one per region the manifest names, each paced in its own
//! (account, region) scope.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;

use super::{CallContext, Iot};
use crate::aws;
use crate::manifest::ManifestRow;
use crate::pacer::Scope;

/// One account's IoT clients, one per region. Rows without a region (and regions nobody
/// asked for) use the default region's client.
#[derive(Clone)]
pub struct AccountClients {
    account: String,
    default: Iot,
    by_region: HashMap<String, Iot>,
}

impl AccountClients {
    /// Clients in `account` for each of `regions` (`None` stands for the default region) and
    /// for `default_region`, all sharing `ctx`'s pacer and counters.
    pub fn new(
        conf: &SdkConfig,
        account: &str,
        regions: impl IntoIterator<Item = Option<String>>,
        default_region: &str,
        ctx: &Arc<CallContext>,
    ) -> AccountClients {
        let client = |region: &str| {
            Iot::new(
                aws::iot_client(conf, Some(region)),
                Scope::new(account, region),
                ctx.clone(),
            )
        };
        let default = client(default_region);
        let by_region = regions
            .into_iter()
            .flatten()
            .filter(|r| r != default_region)
            .map(|r| {
                let iot = client(&r);
                (r, iot)
            })
            .collect();
        AccountClients {
            account: account.to_string(),
            default,
            by_region,
        }
    }

    /// Clients by their account.
    pub fn by_account(clients: Vec<AccountClients>) -> HashMap<String, AccountClients> {
        clients
            .into_iter()
            .map(|c| (c.account.clone(), c))
            .collect()
    }

    /// The account these clients act in.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The client of `region` (`None` = the default region).
    pub fn for_region(&self, region: Option<&str>) -> &Iot {
        region
            .and_then(|r| self.by_region.get(r))
            .unwrap_or(&self.default)
    }

    /// Every client: the default region's, then one per other region.
    pub fn all(&self) -> impl Iterator<Item = &Iot> {
        std::iter::once(&self.default).chain(self.by_region.values())
    }

    /// The client of a manifest row's region.
    pub fn for_row(&self, row: &ManifestRow) -> &Iot {
        self.for_region(row.region.as_deref())
    }
}
