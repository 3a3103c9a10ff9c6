//! IAM roles the tool assumes (STS AssumeRole) instead of using the base credentials
//! directly: `--source-role ARN` for the account the command runs as, and
//! `--target-role-template 'arn:aws:iam::{account}:role/NAME'` for each target account,
//! with the session's name, external id and duration (`--role-session-name`,
//! `--external-id`, `--role-duration`).
//!
//! What is checked here is what AWS would refuse without looking at the role: the shape
//! of the ARN and of the session parameters. Whether the caller may assume the role is
//! AWS's answer (see `session`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The shortest session AWS grants (15 minutes).
pub const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
/// The longest session a role can allow (12 hours; the role's `MaxSessionDuration`
/// decides, 1 hour by default).
pub const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);
/// The session AWS grants when none is asked for (1 hour).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);

/// How every role of a run is assumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleOptions {
    /// The session's name, in the role's CloudTrail records and its assumed-role ARN.
    pub session_name: String,
    /// The external id the roles' trust policies ask for, if any.
    pub external_id: Option<String>,
    /// How long each session lasts; the credentials are renewed before it ends.
    pub duration: Duration,
}

impl RoleOptions {
    /// The options of the flags: the session name defaults to `iot-cert-migrate-` and the
    /// current Unix time (one name per run, as the AWS CLI does).
    pub fn new(
        session_name: Option<String>,
        external_id: Option<String>,
        duration: Duration,
    ) -> RoleOptions {
        let session_name = session_name.unwrap_or_else(|| {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("iot-cert-migrate-{secs}")
        });
        RoleOptions {
            session_name,
            external_id,
            duration,
        }
    }
}

impl Default for RoleOptions {
    fn default() -> Self {
        RoleOptions::new(None, None, DEFAULT_DURATION)
    }
}

/// Why `arn` is not a role ARN (`arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`), if it is not.
pub fn check_arn(arn: &str) -> Result<(), String> {
    let shape = "a role ARN is arn:aws:iam::ACCOUNT:role/NAME";
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(shape.into());
    };
    if !partition.starts_with("aws") {
        return Err(format!("{shape} (partition {partition:?})"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{shape}: the account is 12 digits, not {account:?}"
        ));
    }
    let Some(path) = resource.strip_prefix("role/") else {
        return Err(format!("{shape}: {resource:?} is not role/NAME"));
    };
    let name = path.rsplit('/').next().unwrap_or("");
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !name_ok {
        return Err(format!(
            "{shape}: the role name is 1 to 64 letters, digits or +=,.@_-, not {name:?}"
        ));
    }
    Ok(())
}

/// The account of a role ARN (checked by [`check_arn`]).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

/// What `{account}` stands for in a template while it is checked.
const PLACEHOLDER_ACCOUNT: &str = "123456789012";

/// Why `template` cannot name each target account's role, if it cannot: it must contain
/// `{account}` in the ARN's account field, and be a role ARN once that is replaced.
pub fn check_template(template: &str) -> Result<(), String> {
    if !template.contains("{account}") {
        return Err(
            "must contain {account}, e.g. 'arn:aws:iam::{account}:role/MigrationRole'".into(),
        );
    }
    let arn = template.replace("{account}", PLACEHOLDER_ACCOUNT);
    check_arn(&arn)?;
    if account_of(&arn) != Some(PLACEHOLDER_ACCOUNT) {
        return Err(
            "{account} must be the ARN's account field: arn:aws:iam::{account}:role/NAME".into(),
        );
    }
    Ok(())
}

/// The role of `account` a template names.
pub fn arn_for(template: &str, account: &str) -> String {
    template.replace("{account}", account)
}

/// Why `name` cannot name a role session (2 to 64 of `[A-Za-z0-9_+=,.@-]`), if it cannot.
pub fn check_session_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("2 to 64 letters, digits or _+=,.@-".into())
    }
}

/// Why `id` cannot be an external id (2 to 1224 of `[A-Za-z0-9_+=,.@:/-]`), if it cannot.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err("2 to 1224 letters, digits or _+=,.@:/-".into())
    }
}

/// Why `d` cannot be a session's duration (15 minutes to 12 hours), if it cannot.
pub fn check_duration(d: Duration) -> Result<(), String> {
    if (MIN_DURATION..=MAX_DURATION).contains(&d) {
        Ok(())
    } else {
        Err("AWS grants sessions of 15m to 12h (up to the role's maximum, 1h by default)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_and_templates_have_the_shape_aws_accepts() {
        assert!(check_arn("arn:aws:iam::222222222222:role/migrate").is_ok());
        assert!(check_arn("arn:aws:iam::222222222222:role/ops/team/migrate").is_ok());
        assert!(check_arn("arn:aws-cn:iam::222222222222:role/migrate").is_ok());
        for bad in [
            "migrate",
            "arn:aws:iam::2222:role/migrate",
            "arn:aws:iam::222222222222:user/migrate",
            "arn:aws:sts::222222222222:role/migrate",
            "arn:aws:iam::222222222222:role/",
            "arn:aws:iam::222222222222:role/a b",
        ] {
            assert!(check_arn(bad).is_err(), "{bad}");
        }
        assert_eq!(
            account_of("arn:aws:iam::222222222222:role/migrate"),
            Some("222222222222")
        );
        let t = "arn:aws:iam::{account}:role/OrganizationAccountAccessRole";
        assert!(check_template(t).is_ok());
        assert_eq!(
            arn_for(t, "333333333333"),
            "arn:aws:iam::333333333333:role/OrganizationAccountAccessRole"
        );
        assert!(check_template("arn:aws:iam::222222222222:role/migrate").is_err());
        assert!(check_template("arn:aws:iam::222222222222:role/{account}").is_err());
        assert!(check_template("{account}").is_err());
    }

    #[test]
    fn session_parameters_are_checked_as_sts_does() {
        assert!(check_session_name("iot-cert-migrate-1700000000").is_ok());
        assert!(check_session_name("a").is_err());
        assert!(check_session_name("has space").is_err());
        assert!(check_session_name(&"x".repeat(65)).is_err());
        assert!(check_external_id("Unique-ID:42/a").is_ok());
        assert!(check_external_id("x").is_err());
        assert!(check_duration(Duration::from_secs(900)).is_ok());
        assert!(check_duration(Duration::from_secs(899)).is_err());
        assert!(check_duration(Duration::from_secs(43_201)).is_err());
        let name = RoleOptions::default().session_name;
        assert!(check_session_name(&name).is_ok(), "{name}");
    }
}
