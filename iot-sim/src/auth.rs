//! Who is calling: the account and region from the SigV4 `Authorization` header.
//!
//! Signatures are not verified. The access key id decides the account: a key
//! of exactly 12 digits *is* the account, a role session's key (`ASIA…`, issued by
//! STS AssumeRole, with its `X-Amz-Security-Token`) is the role's account, any other
//! key maps to the default account. The region is the credential scope's region.

use hyper::header::HeaderMap;

use crate::access::CredentialState;
use crate::config::DEFAULT_REGION;
use crate::sts::{Principal, Sts};
use crate::validate::is_account_id;
use crate::world::Caller;

/// The parts of `Credential=AKID/DATE/REGION/SERVICE/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialScope {
    /// Access key id.
    pub access_key: String,
    /// Region of the scope.
    pub region: String,
    /// Signing service name (`iot`, `sts`, ...).
    pub service: String,
}

/// Parses an `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` header.
pub fn parse_authorization(header: &str) -> Option<CredentialScope> {
    let rest = header.trim().strip_prefix("AWS4-HMAC-SHA256")?;
    let start = rest.find("Credential=")? + "Credential=".len();
    let cred = rest[start..]
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()?;
    let parts: Vec<&str> = cred.split('/').collect();
    if parts.len() != 5 || parts[0].is_empty() || parts[2].is_empty() {
        return None;
    }
    Some(CredentialScope {
        access_key: parts[0].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
    })
}

/// The caller for a request with this `Authorization` header (if any).
pub fn caller_from(
    header: Option<&str>,
    default_account: &str,
) -> (Caller, Option<CredentialScope>) {
    match header.and_then(parse_authorization) {
        Some(scope) => {
            let account = if is_account_id(&scope.access_key) {
                scope.access_key.clone()
            } else {
                default_account.to_string()
            };
            (
                Caller {
                    account,
                    region: scope.region.clone(),
                },
                Some(scope),
            )
        }
        None => (
            Caller {
                account: default_account.to_string(),
                region: DEFAULT_REGION.to_string(),
            },
            None,
        ),
    }
}

/// Who signed with `scope`'s key: a role session (whose account becomes `caller`'s), or
/// the user of a long-term key; or why a session key is refused (expired, unknown, or
/// without its session token).
pub fn identify(
    sts: &Sts,
    caller: &mut Caller,
    scope: &CredentialScope,
    headers: &HeaderMap,
) -> Result<Principal, CredentialState> {
    let token = headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok());
    match sts.identify(&scope.access_key, token, std::time::SystemTime::now())? {
        Some(session) => {
            caller.account = session.account.clone();
            Ok(session)
        }
        None => Ok(Principal::user(caller, &scope.access_key)),
    }
}

/// The principal of an unsigned request (the default account's user).
pub fn anonymous(caller: &Caller) -> Principal {
    Principal::user(caller, "anonymous")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sigv4() {
        let h = "AWS4-HMAC-SHA256 Credential=222222222222/20240101/eu-west-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        let (c, scope) = caller_from(Some(h), "111111111111");
        assert_eq!(c.account, "222222222222");
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(scope.unwrap().service, "iot");
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-west-2/sts/aws4_request,SignedHeaders=host,Signature=abc";
        let (c, _) = caller_from(Some(h), "111111111111");
        assert_eq!(c.account, "111111111111");
        assert_eq!(c.region, "us-west-2");
        let (c, scope) = caller_from(None, "333333333333");
        assert_eq!(c.account, "333333333333");
        assert_eq!(c.region, "us-east-1");
        assert!(scope.is_none());
        assert!(parse_authorization("Basic xyz").is_none());
    }
}
