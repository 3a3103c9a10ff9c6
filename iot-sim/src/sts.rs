//! STS (awsQuery protocol: form body in, XML out): `GetCallerIdentity`, and `AssumeRole`
//! into the roles the simulator knows, whose session credentials act as the role's account
//! until they expire.
//!
//! A role is declared with its trust ([`SeedRole`]): the accounts whose principals may
//! assume it, and the external id it asks for. As in AWS, an unknown role, an untrusted
//! caller and a missing or wrong external id all get the same `AccessDenied`. A session's
//! keys start with `ASIA`; a request signed with one must carry its session token, and is
//! refused once the session has expired (`ExpiredToken`, IoT's `ExpiredTokenException`).
//! Sessions last what the caller asked for (900 s to the role's maximum, 1 hour when a
//! session assumes a role: role chaining), or, with [`crate::SimConfig::session_lifetime`],
//! less than AWS allows, so that tests see credentials expire in seconds.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::access::CredentialState;
use crate::routes::parse_query;
use crate::validate::is_account_id;
use crate::world::Caller;

/// XML namespace of STS responses.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Escapes text for XML content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The `Action` of an awsQuery request: from the form body, else the query string.
pub fn action(body: &[u8], query: Option<&str>) -> Option<String> {
    let form = String::from_utf8_lossy(body).replace('+', " ");
    parse_query(Some(&form))
        .remove("Action")
        .or_else(|| parse_query(query).remove("Action"))
}

/// The parameters of an awsQuery request: the form body's, then the query string's.
pub fn params(body: &[u8], query: Option<&str>) -> HashMap<String, String> {
    let form = String::from_utf8_lossy(body).replace('+', " ");
    let mut out = parse_query(Some(&form));
    for (k, v) in parse_query(query) {
        out.entry(k).or_insert(v);
    }
    out
}

/// The GetCallerIdentity response document of `who`.
pub fn caller_identity_xml(who: &Principal, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{STS_NS}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        xml_escape(&who.arn),
        xml_escape(&who.user_id),
        who.account,
    )
}

/// The longest session AWS grants by default, and the longest of a chained role session.
pub const DEFAULT_MAX_SESSION: Duration = Duration::from_secs(3600);
/// The shortest session AWS grants.
pub const MIN_SESSION: Duration = Duration::from_secs(900);
/// The longest `MaxSessionDuration` a role can have.
pub const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

/// A role callers may assume: IAM's trust policy, reduced to what AssumeRole checks.
///
/// JSON: `{"arn": "arn:aws:iam::222222222222:role/migrate", "trusted_accounts":
/// ["111111111111"], "external_id": "x"}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SeedRole {
    /// `arn:aws:iam::ACCOUNT:role/[PATH/]NAME`.
    pub arn: String,
    /// Accounts whose principals (users and role sessions) may assume it.
    pub trusted_accounts: Vec<String>,
    /// The external id the trust policy requires (`sts:ExternalId`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The role's `MaxSessionDuration` (default 1 hour, at most 12).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde_opt"
    )]
    pub max_session_duration: Option<Duration>,
}

/// `Option<Duration>` as a humantime string (`"2h"`).
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl SeedRole {
    /// A role in `account` named `name` that `trusted` accounts may assume.
    pub fn new(account: &str, name: &str, trusted: &[&str]) -> SeedRole {
        SeedRole {
            arn: format!("arn:aws:iam::{account}:role/{name}"),
            trusted_accounts: trusted.iter().map(|a| a.to_string()).collect(),
            external_id: None,
            max_session_duration: None,
        }
    }

    /// The same, asking for `external_id`.
    pub fn with_external_id(mut self, external_id: &str) -> SeedRole {
        self.external_id = Some(external_id.to_string());
        self
    }

    /// Why the declaration is not one AWS could hold, if it is not.
    pub fn check(&self) -> Result<(), String> {
        if role_arn_parts(&self.arn).is_none() {
            return Err(format!(
                "role {:?} is not arn:aws:iam::ACCOUNT:role/NAME",
                self.arn
            ));
        }
        if let Some(a) = self.trusted_accounts.iter().find(|a| !is_account_id(a)) {
            return Err(format!(
                "role {}: trusted account {a:?} is not 12 digits",
                self.arn
            ));
        }
        if let Some(d) = self.max_session_duration {
            if d < DEFAULT_MAX_SESSION || d > MAX_SESSION {
                return Err(format!(
                    "role {}: max_session_duration must be 1 to 12 hours",
                    self.arn
                ));
            }
        }
        Ok(())
    }
}

/// Parses `--role ARN[,trust=ACCOUNT]...[,external-id=ID][,max-session=DUR]`.
pub fn parse_role_spec(s: &str) -> Result<SeedRole, String> {
    let mut parts = s.split(',');
    let arn = parts.next().unwrap_or("").trim().to_string();
    let mut role = SeedRole {
        arn,
        trusted_accounts: Vec::new(),
        external_id: None,
        max_session_duration: None,
    };
    for part in parts {
        match part.split_once('=') {
            Some(("trust", a)) => role.trusted_accounts.push(a.to_string()),
            Some(("external-id", id)) => role.external_id = Some(id.to_string()),
            Some(("max-session", d)) => {
                role.max_session_duration =
                    Some(humantime::parse_duration(d).map_err(|e| format!("{d:?}: {e}"))?)
            }
            _ => {
                return Err(format!(
                    "expected ARN,trust=ACCOUNT[,external-id=ID][,max-session=DUR], got {s:?}"
                ))
            }
        }
    }
    role.check()?;
    Ok(role)
}

/// `(account, role name)` of `arn:aws:iam::ACCOUNT:role/[PATH/]NAME`.
pub fn role_arn_parts(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    (is_account_id(account) && name_ok).then_some((account, name))
}

/// Who signed a request, as STS would describe them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Their account.
    pub account: String,
    /// `arn:aws:iam::ACCOUNT:user/iot-sim`, or `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
    pub arn: String,
    /// The access key (a user), or `AROA…:SESSION` (a role session).
    pub user_id: String,
    /// Whether these are a role session's credentials (AssumeRole from one is chaining).
    pub session: bool,
}

impl Principal {
    /// The long-term key's principal (a user of `caller`'s account).
    pub fn user(caller: &Caller, access_key: &str) -> Principal {
        Principal {
            account: caller.account.clone(),
            arn: format!("arn:aws:iam::{}:user/iot-sim", caller.account),
            user_id: access_key.to_string(),
            session: false,
        }
    }
}

/// One role session.
#[derive(Clone, Debug)]
struct Session {
    token: String,
    secret: String,
    principal: Principal,
    expires: SystemTime,
}

/// An AssumeRole refusal: HTTP status, awsQuery code, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StsError {
    /// HTTP status.
    pub status: u16,
    /// `AccessDenied`, `ValidationError`, ...
    pub code: &'static str,
    /// AWS's message.
    pub message: String,
}

impl StsError {
    /// AWS's refusal of `caller` assuming `role`, whatever the reason: an unknown role, a
    /// trust policy or an external id that does not fit, or the caller's own IAM policy.
    pub fn not_authorized(caller: &Principal, role: &str) -> StsError {
        StsError {
            status: 403,
            code: "AccessDenied",
            message: format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role}",
                caller.arn
            ),
        }
    }

    fn validation(message: impl Into<String>) -> StsError {
        StsError {
            status: 400,
            code: "ValidationError",
            message: message.into(),
        }
    }
}

/// The roles and the sessions STS granted.
#[derive(Debug, Default)]
pub struct Sts {
    roles: BTreeMap<String, SeedRole>,
    sessions: HashMap<String, Session>,
    lifetime: Option<Duration>,
}

impl Sts {
    /// STS with `roles`; sessions last `lifetime` when set, whatever the caller asks.
    pub fn new(roles: &[SeedRole], lifetime: Option<Duration>) -> Result<Sts, String> {
        let mut sts = Sts {
            lifetime,
            ..Sts::default()
        };
        for r in roles {
            r.check()?;
            sts.roles.insert(r.arn.clone(), r.clone());
        }
        Ok(sts)
    }

    /// Who signed with `access_key` (and `token`): a role session's principal (its
    /// account replaces `caller`'s), `None` for a long-term key; or the refusal of a
    /// session key that expired, is unknown, or came without its token.
    pub fn identify(
        &self,
        access_key: &str,
        token: Option<&str>,
        now: SystemTime,
    ) -> Result<Option<Principal>, CredentialState> {
        if !access_key.starts_with("ASIA") {
            return Ok(None);
        }
        let Some(s) = self.sessions.get(access_key) else {
            return Err(CredentialState::Revoked);
        };
        if token != Some(s.token.as_str()) {
            return Err(CredentialState::Revoked);
        }
        if now >= s.expires {
            return Err(CredentialState::Expired);
        }
        Ok(Some(s.principal.clone()))
    }

    /// AssumeRole by `caller` with the request's `params`: the response document, or
    /// AWS's refusal.
    pub fn assume_role(
        &mut self,
        caller: &Principal,
        params: &HashMap<String, String>,
        now: SystemTime,
        request_id: &str,
    ) -> Result<String, StsError> {
        let arn = params
            .get("RoleArn")
            .ok_or_else(|| null_member("roleArn"))?;
        let session_name = params
            .get("RoleSessionName")
            .ok_or_else(|| null_member("roleSessionName"))?;
        if arn.len() < 20 || arn.len() > 2048 {
            return Err(StsError::validation(format!(
                "1 validation error detected: Value '{arn}' at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048"
            )));
        }
        let name_ok = (2..=64).contains(&session_name.len())
            && session_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !name_ok {
            return Err(StsError::validation(format!(
                "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
            )));
        }
        let asked = match params.get("DurationSeconds") {
            None => DEFAULT_MAX_SESSION,
            Some(d) => {
                let secs: u64 = d.parse().map_err(|_| {
                    StsError::validation(format!("Value '{d}' for DurationSeconds is not a number"))
                })?;
                if secs < MIN_SESSION.as_secs() || secs > MAX_SESSION.as_secs() {
                    return Err(StsError::validation(format!(
                        "1 validation error detected: Value '{secs}' at 'durationSeconds' failed to satisfy constraint: Member must have value {} {}",
                        if secs < MIN_SESSION.as_secs() { "greater than or equal to" } else { "less than or equal to" },
                        if secs < MIN_SESSION.as_secs() { MIN_SESSION.as_secs() } else { MAX_SESSION.as_secs() },
                    )));
                }
                Duration::from_secs(secs)
            }
        };
        if let Some(id) = params.get("ExternalId") {
            let ok = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
            if !ok {
                return Err(StsError::validation(format!(
                    "1 validation error detected: Value '{id}' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]* and have length between 2 and 1224"
                )));
            }
        }
        // Unknown, untrusted, or without the external id it asks for: AWS tells none apart.
        let denied = || StsError::not_authorized(caller, arn);
        let role = self.roles.get(arn.as_str()).ok_or_else(denied)?;
        if !role.trusted_accounts.contains(&caller.account) {
            return Err(denied());
        }
        if role.external_id.is_some() && role.external_id.as_ref() != params.get("ExternalId") {
            return Err(denied());
        }
        let max = if caller.session {
            DEFAULT_MAX_SESSION
        } else {
            role.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION)
        };
        if asked > max {
            return Err(StsError::validation(if caller.session {
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
            } else {
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            }));
        }
        let (account, name) = role_arn_parts(arn).expect("checked at declaration");
        let lasts = self.lifetime.unwrap_or(asked);
        let expires = now + lasts;
        let role_id = format!(
            "AROA{}",
            &crate::pem::sha256_hex(arn.as_bytes())[..17].to_uppercase()
        );
        let principal = Principal {
            account: account.to_string(),
            arn: format!("arn:aws:sts::{account}:assumed-role/{name}/{session_name}"),
            user_id: format!("{role_id}:{session_name}"),
            session: true,
        };
        let key = format!(
            "ASIA{}",
            random_text(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        );
        let session = Session {
            token: format!(
                "IQoJb3JpZ2luX2VjEsim{}",
                random_text(
                    120,
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                )
            ),
            secret: random_text(
                40,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            ),
            principal,
            expires,
        };
        // Expired sessions are of no more use: forget them (a long run makes many).
        self.sessions.retain(|_, s| s.expires > now);
        let xml = assume_role_xml(&key, &session, request_id);
        self.sessions.insert(key, session);
        Ok(xml)
    }
}

fn null_member(member: &str) -> StsError {
    StsError::validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// The AssumeRole response document. The expiration is rounded down to the second: a
/// client refreshes early rather than late.
fn assume_role_xml(key: &str, s: &Session, request_id: &str) -> String {
    let expiration = humantime::format_rfc3339_seconds(s.expires);
    format!(
        "<AssumeRoleResponse xmlns=\"{STS_NS}\"><AssumeRoleResult><AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{expiration}</Expiration></Credentials><PackedPolicySize>0</PackedPolicySize></AssumeRoleResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></AssumeRoleResponse>",
        xml_escape(&s.principal.arn),
        xml_escape(&s.principal.user_id),
        xml_escape(&s.secret),
        xml_escape(&s.token),
    )
}

/// An awsQuery error document.
pub fn error_xml(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{STS_NS}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        xml_escape(code),
        xml_escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_action() {
        assert_eq!(
            action(b"Action=GetCallerIdentity&Version=2011-06-15", None).as_deref(),
            Some("GetCallerIdentity")
        );
        assert_eq!(
            action(b"", Some("Action=GetCallerIdentity")).as_deref(),
            Some("GetCallerIdentity")
        );
        assert_eq!(action(b"Version=1", None), None);
        let who = Principal {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/iot-sim".into(),
            user_id: "a<b".into(),
            session: false,
        };
        assert!(caller_identity_xml(&who, "r").contains("<UserId>a&lt;b</UserId>"));
    }

    const TRUSTED: &str = "111111111111";
    const ROLE: &str = "arn:aws:iam::222222222222:role/migrate";

    fn user(account: &str) -> Principal {
        Principal::user(
            &Caller {
                account: account.into(),
                region: "us-east-1".into(),
            },
            account,
        )
    }

    fn ask(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The access key and session token of a granted session.
    fn keys_of(xml: &str) -> (String, String) {
        let field = |tag: &str| {
            let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
            let end = xml.find(&format!("</{tag}>")).unwrap();
            xml[start..end].to_string()
        };
        (field("AccessKeyId"), field("SessionToken"))
    }

    #[test]
    fn a_trusted_caller_gets_a_session_that_acts_as_the_role_until_it_expires() {
        let role = SeedRole::new("222222222222", "migrate", &[TRUSTED]);
        let mut sts = Sts::new(&[role], Some(Duration::from_secs(2))).unwrap();
        let now = SystemTime::now();
        let xml = sts
            .assume_role(
                &user(TRUSTED),
                &ask(&[("RoleArn", ROLE), ("RoleSessionName", "run-1")]),
                now,
                "r",
            )
            .expect("granted");
        assert!(xml.contains("<Arn>arn:aws:sts::222222222222:assumed-role/migrate/run-1</Arn>"));
        let (key, token) = keys_of(&xml);
        assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
        let who = sts.identify(&key, Some(&token), now).unwrap().unwrap();
        assert_eq!(who.account, "222222222222");
        assert!(who.session);
        // Without its token, or with another, the key is not recognised.
        assert_eq!(sts.identify(&key, None, now), Err(CredentialState::Revoked));
        assert_eq!(
            sts.identify(&key, Some("other"), now),
            Err(CredentialState::Revoked)
        );
        // The simulator's session lifetime, not the hour asked for.
        let later = now + Duration::from_secs(2);
        assert_eq!(
            sts.identify(&key, Some(&token), later),
            Err(CredentialState::Expired)
        );
        // A key STS never issued; a long-term key is not STS's to judge.
        assert_eq!(
            sts.identify("ASIAAAAAAAAAAAAAAAAA", Some(&token), now),
            Err(CredentialState::Revoked)
        );
        assert_eq!(sts.identify("111111111111", None, now), Ok(None));
    }

    #[test]
    fn an_unknown_role_an_untrusted_caller_and_a_wrong_external_id_are_all_access_denied() {
        let role = SeedRole::new("222222222222", "migrate", &[TRUSTED]).with_external_id("x-42");
        let mut sts = Sts::new(&[role], None).unwrap();
        let now = SystemTime::now();
        let denied = |sts: &mut Sts, who: &Principal, pairs: &[(&str, &str)]| {
            let e = sts.assume_role(who, &ask(pairs), now, "r").unwrap_err();
            assert_eq!((e.status, e.code), (403, "AccessDenied"), "{e:?}");
            e.message
        };
        let m = denied(
            &mut sts,
            &user(TRUSTED),
            &[("RoleArn", ROLE), ("RoleSessionName", "s1")],
        );
        assert_eq!(m, format!("User: arn:aws:iam::{TRUSTED}:user/iot-sim is not authorized to perform: sts:AssumeRole on resource: {ROLE}"));
        denied(
            &mut sts,
            &user(TRUSTED),
            &[
                ("RoleArn", ROLE),
                ("RoleSessionName", "s1"),
                ("ExternalId", "x-43"),
            ],
        );
        denied(
            &mut sts,
            &user("333333333333"),
            &[
                ("RoleArn", ROLE),
                ("RoleSessionName", "s1"),
                ("ExternalId", "x-42"),
            ],
        );
        denied(
            &mut sts,
            &user(TRUSTED),
            &[
                ("RoleArn", "arn:aws:iam::222222222222:role/other"),
                ("RoleSessionName", "s1"),
                ("ExternalId", "x-42"),
            ],
        );
        sts.assume_role(
            &user(TRUSTED),
            &ask(&[
                ("RoleArn", ROLE),
                ("RoleSessionName", "s1"),
                ("ExternalId", "x-42"),
            ]),
            now,
            "r",
        )
        .expect("the right external id");
    }

    #[test]
    fn durations_outside_what_aws_grants_are_validation_errors() {
        let role = SeedRole::new("222222222222", "migrate", &[TRUSTED, "222222222222"]);
        let mut sts = Sts::new(&[role], None).unwrap();
        let now = SystemTime::now();
        let asking = |secs: &str| {
            ask(&[
                ("RoleArn", ROLE),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", secs),
            ])
        };
        for secs in ["899", "43201", "7200"] {
            let e = sts
                .assume_role(&user(TRUSTED), &asking(secs), now, "r")
                .unwrap_err();
            assert_eq!(e.code, "ValidationError", "{secs}: {e:?}");
        }
        let xml = sts
            .assume_role(&user(TRUSTED), &asking("900"), now, "r")
            .unwrap();
        assert!(xml.contains(&format!(
            "<Expiration>{}</Expiration>",
            humantime::format_rfc3339_seconds(now + Duration::from_secs(900))
        )));
        // Role chaining: a session assuming a role gets at most an hour.
        let (key, token) = keys_of(&xml);
        let session = sts.identify(&key, Some(&token), now).unwrap().unwrap();
        sts.assume_role(&session, &asking("3600"), now, "r")
            .expect("an hour");
        let e = sts
            .assume_role(&session, &asking("3601"), now, "r")
            .unwrap_err();
        assert!(e.message.contains("role chaining"), "{e:?}");
        // No session name, a bad one.
        let e = sts
            .assume_role(&user(TRUSTED), &ask(&[("RoleArn", ROLE)]), now, "r")
            .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        let e = sts
            .assume_role(
                &user(TRUSTED),
                &ask(&[("RoleArn", ROLE), ("RoleSessionName", "a b")]),
                now,
                "r",
            )
            .unwrap_err();
        assert_eq!(e.code, "ValidationError");
    }

    #[test]
    fn role_specs_parse_and_bad_ones_are_refused() {
        let r = parse_role_spec(&format!(
            "{ROLE},trust=111111111111,trust=333333333333,external-id=x-1,max-session=2h"
        ))
        .unwrap();
        assert_eq!(r.trusted_accounts, ["111111111111", "333333333333"]);
        assert_eq!(r.external_id.as_deref(), Some("x-1"));
        assert_eq!(r.max_session_duration, Some(Duration::from_secs(7200)));
        assert!(parse_role_spec("arn:aws:iam::2222:role/x,trust=111111111111").is_err());
        assert!(parse_role_spec(&format!("{ROLE},trust=1")).is_err());
        assert!(parse_role_spec(&format!("{ROLE},color=red")).is_err());
        assert_eq!(
            role_arn_parts("arn:aws:iam::222222222222:role/ops/migrate"),
            Some(("222222222222", "migrate"))
        );
    }
}
