//! What devices connect to: the account's endpoints (DescribeEndpoint) and the credentials
//! provider's role aliases (seeded; ListRoleAliases).

use serde::Serialize;

use super::paging::{hex_key, Page};
use super::{Caller, Reply, World};
use crate::errors::ApiError;

/// The device data endpoint of an account in a region: a stable prefix
/// derived from the account (14 lowercase letters and digits, like AWS's).
pub fn data_endpoint(account: &str, region: &str, endpoint_type: &str) -> Option<String> {
    let digest = crate::pem::sha256_hex(format!("iot-sim endpoint {account}").as_bytes());
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let prefix: String = digest
        .as_bytes()
        .chunks(2)
        .take(14)
        .map(|pair| {
            let v = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("00"), 16).unwrap_or(0);
            ALPHABET[usize::from(v) % ALPHABET.len()] as char
        })
        .collect();
    // China's endpoints are under amazonaws.com.cn
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(match endpoint_type {
        "iot:Data-ATS" => format!("{prefix}-ats.iot.{region}.{domain}"),
        "iot:Data" => format!("{prefix}.iot.{region}.{domain}"),
        "iot:CredentialProvider" => format!("{prefix}.credentials.iot.{region}.{domain}"),
        "iot:Jobs" => format!("{prefix}.jobs.iot.{region}.{domain}"),
        _ => return None,
    })
}

/// DescribeEndpointResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeEndpointResponse {
    endpoint_address: String,
}

/// ListRoleAliasesResponse.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListRoleAliasesResponse<'a> {
    role_aliases: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

impl World {
    /// Seeds role aliases (names).
    pub(super) fn seed_role_aliases(
        &mut self,
        region: &str,
        account: &str,
        names: &[String],
    ) -> Result<(), String> {
        for n in names {
            // RoleAlias: [\w=,@-]+, 1..128
            let valid = (1..=128).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_=,@-".contains(&b));
            if !valid {
                return Err(format!("invalid role alias name {n:?}"));
            }
            self.data_entry(region, account)
                .role_aliases
                .insert(n.clone());
        }
        Ok(())
    }

    /// DescribeEndpoint (`iot:Data` by default).
    pub(super) fn describe_endpoint(
        &self,
        caller: &Caller,
        endpoint_type: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let ty = endpoint_type.unwrap_or("iot:Data");
        match data_endpoint(&caller.account, &caller.region, ty) {
            Some(endpoint_address) => Ok(Reply::of(&DescribeEndpointResponse { endpoint_address })),
            None => Err(ApiError::invalid_request(format!(
                "Endpoint type {ty} is not valid"
            ))),
        }
    }

    /// ListRoleAliases, by name.
    pub(super) fn list_role_aliases(
        &self,
        caller: &Caller,
        page: &Page,
    ) -> Result<Reply, ApiError> {
        let items = self
            .data(&caller.region, &caller.account)
            .map(|d| {
                d.role_aliases
                    .iter()
                    .map(|n| (hex_key(n), n.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let (role_aliases, next_marker) = page.of(items);
        Ok(Reply::of(&ListRoleAliasesResponse {
            role_aliases,
            next_marker,
        }))
    }
}
