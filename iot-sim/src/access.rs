//! Who may call at all: credentials that expire or are revoked at run time,
//! IAM-like deny rules, and the outage switch. These refusals come before
//! quotas and faults, as AWS authenticates and authorizes before it throttles.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::ops::Operation;

/// The state of one access key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    /// Requests are served.
    #[default]
    Valid,
    /// 403 `ExpiredTokenException` (STS: `ExpiredToken`).
    Expired,
    /// 403 `UnrecognizedClientException` (STS: `InvalidClientTokenId`).
    Revoked,
}

impl CredentialState {
    /// `valid`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Valid => "valid",
            CredentialState::Expired => "expired",
            CredentialState::Revoked => "revoked",
        }
    }

    /// The refusal of an IoT request made with a key in this state.
    pub fn iot_error(self) -> Option<ApiError> {
        match self {
            CredentialState::Valid => None,
            CredentialState::Expired => Some(ApiError::expired_token()),
            CredentialState::Revoked => Some(ApiError::unrecognized_client()),
        }
    }

    /// The refusal of an STS request: (awsQuery code, message).
    pub fn sts_error(self) -> Option<(&'static str, &'static str)> {
        match self {
            CredentialState::Valid => None,
            CredentialState::Expired => Some(("ExpiredToken", crate::errors::EXPIRED_MESSAGE)),
            CredentialState::Revoked => {
                Some(("InvalidClientTokenId", crate::errors::INVALID_TOKEN_MESSAGE))
            }
        }
    }
}

impl FromStr for CredentialState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "valid" => Ok(CredentialState::Valid),
            "expired" => Ok(CredentialState::Expired),
            "revoked" => Ok(CredentialState::Revoked),
            other => Err(format!(
                "unknown credential state {other:?} (expected valid, expired or revoked)"
            )),
        }
    }
}

/// A change of one access key's state, as `POST /_sim/credentials` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialChange {
    /// The access key id (a 12-digit one is also the account).
    pub access_key_id: String,
    /// The new state.
    pub state: CredentialState,
    /// The change takes effect after this many more API requests with the key
    /// (absent or 0: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_requests: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct KeyEntry {
    state: CredentialState,
    /// (requests still served in the old state, state after them).
    pending: Option<(u64, CredentialState)>,
}

/// The state of every access key that was ever changed (all others are valid).
#[derive(Debug, Default)]
pub struct Credentials {
    keys: BTreeMap<String, KeyEntry>,
}

impl Credentials {
    /// Applies a change (a later change replaces a pending one).
    pub fn change(&mut self, c: &CredentialChange) {
        let e = self.keys.entry(c.access_key_id.clone()).or_default();
        match c.after_requests {
            Some(n) if n > 0 => e.pending = Some((n, c.state)),
            _ => {
                e.state = c.state;
                e.pending = None;
            }
        }
    }

    /// The state that applies to one API request made with `key` (and counts
    /// the request towards a pending change).
    pub fn admit(&mut self, key: &str) -> CredentialState {
        let Some(e) = self.keys.get_mut(key) else {
            return CredentialState::Valid;
        };
        if let Some((left, next)) = e.pending {
            if left == 0 {
                e.state = next;
                e.pending = None;
            } else {
                e.pending = Some((left - 1, next));
            }
        }
        e.state
    }

    /// Every changed key: its current state and its pending change.
    pub fn list(&self) -> Vec<CredentialChange> {
        let mut out = Vec::new();
        for (key, e) in &self.keys {
            out.push(CredentialChange {
                access_key_id: key.clone(),
                state: e.state,
                after_requests: None,
            });
            if let Some((left, next)) = e.pending {
                out.push(CredentialChange {
                    access_key_id: key.clone(),
                    state: next,
                    after_requests: Some(left),
                });
            }
        }
        out
    }
}

/// An IAM-like explicit deny: `account` may not call `operation` (on
/// resources matching `resource`, a pattern where `*` matches any text).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DenyRule {
    /// 12-digit account id.
    pub account: String,
    /// Operation name as in the API, e.g. `TransferCertificate`.
    pub operation: String,
    /// Resource ARN pattern; absent = every resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl DenyRule {
    /// Whether the rule refuses this call.
    pub fn matches(&self, account: &str, op: Operation, resource: &str) -> bool {
        self.account == account
            && self.operation == op.name()
            && self
                .resource
                .as_deref()
                .is_none_or(|pattern| glob_match(pattern, resource))
    }

    /// Checks the account id and operation name.
    pub fn check(&self) -> Result<(), String> {
        if !crate::validate::is_account_id(&self.account) {
            return Err(format!(
                "deny rule account {:?} is not 12 digits",
                self.account
            ));
        }
        if Operation::from_name(&self.operation).is_none() {
            return Err(format!("deny rule: unknown operation {:?}", self.operation));
        }
        Ok(())
    }
}

/// Parses `ACCOUNT:OPERATION[:RESOURCE_PATTERN]` as used by `--deny`.
pub fn parse_deny_spec(s: &str) -> Result<DenyRule, String> {
    let mut parts = s.splitn(3, ':');
    let (Some(account), Some(operation)) = (parts.next(), parts.next()) else {
        return Err(format!("expected ACCOUNT:OPERATION[:RESOURCE], got {s:?}"));
    };
    let rule = DenyRule {
        account: account.trim().to_string(),
        operation: operation.trim().to_string(),
        resource: parts.next().map(str::to_string),
    };
    rule.check()?;
    Ok(rule)
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The outage switch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageMode {
    /// Requests are served.
    #[default]
    Off,
    /// Every API request has its connection reset, with no reply.
    Reset,
    /// Every API request is held unanswered for `timeout_hold`, then its
    /// connection is closed (like the `timeout` fault).
    Blackhole,
    /// The endpoint is down, as when its process is killed: every open
    /// connection is reset and nothing listens on the port (connecting is
    /// refused) until the outage ends; then the same port listens again.
    Down,
}

impl OutageMode {
    /// `off`, `reset`, `blackhole` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutageMode::Off => "off",
            OutageMode::Reset => "reset",
            OutageMode::Blackhole => "blackhole",
            OutageMode::Down => "down",
        }
    }
}

impl FromStr for OutageMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(OutageMode::Off),
            "reset" => Ok(OutageMode::Reset),
            "blackhole" => Ok(OutageMode::Blackhole),
            "down" => Ok(OutageMode::Down),
            other => Err(format!(
                "unknown outage mode {other:?} (expected reset, blackhole, down or off)"
            )),
        }
    }
}

impl fmt::Display for OutageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match(
            "arn:aws:iot:*:cert/*",
            "arn:aws:iot:us-east-1:1:cert/ab"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxc"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn credentials_change_after_n_requests() {
        let mut c = Credentials::default();
        assert_eq!(c.admit("k"), CredentialState::Valid);
        c.change(&CredentialChange {
            access_key_id: "k".into(),
            state: CredentialState::Expired,
            after_requests: Some(2),
        });
        assert_eq!(c.admit("k"), CredentialState::Valid);
        assert_eq!(c.admit("other"), CredentialState::Valid);
        assert_eq!(c.admit("k"), CredentialState::Valid);
        assert_eq!(c.admit("k"), CredentialState::Expired);
        assert_eq!(c.admit("k"), CredentialState::Expired);
        c.change(&CredentialChange {
            access_key_id: "k".into(),
            state: CredentialState::Valid,
            after_requests: None,
        });
        assert_eq!(c.admit("k"), CredentialState::Valid);
    }

    #[test]
    fn outage_modes_round_trip() {
        for m in [
            OutageMode::Off,
            OutageMode::Reset,
            OutageMode::Blackhole,
            OutageMode::Down,
        ] {
            assert_eq!(m.as_str().parse::<OutageMode>(), Ok(m));
        }
        assert!("sideways".parse::<OutageMode>().is_err());
    }

    #[test]
    fn deny_specs() {
        let r = parse_deny_spec("111111111111:TransferCertificate:arn:aws:iot:*:cert/ab*").unwrap();
        assert_eq!(r.resource.as_deref(), Some("arn:aws:iot:*:cert/ab*"));
        assert!(r.matches(
            "111111111111",
            Operation::TransferCertificate,
            "arn:aws:iot:us-east-1:111111111111:cert/abcd"
        ));
        assert!(!r.matches(
            "111111111111",
            Operation::TransferCertificate,
            "arn:aws:iot:us-east-1:111111111111:cert/cd"
        ));
        assert!(parse_deny_spec("111111111111:Nope").is_err());
        assert!(parse_deny_spec("1:TransferCertificate").is_err());
        assert!(parse_deny_spec("111111111111").is_err());
    }
}
