//! Building AWS SDK configuration from the global options and the default provider chain,
//! and from a role assumed with it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iot::config::SharedCredentialsProvider;

use crate::error::{one_line, Error};
use crate::role::RoleOptions;

/// The AWS options a run was given (all optional: aws-config's default chain fills the rest,
/// including `AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_IOT`).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Named profile (`--profile`).
    pub profile: Option<String>,
    /// Default region (`--region`).
    pub region: Option<String>,
    /// Endpoint for every service the tool calls (`--endpoint-url`).
    pub endpoint_url: Option<String>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Socket read timeout.
    pub read_timeout: Duration,
    /// The role the command acts as in its own account (`--source-role`), assumed with the
    /// base credentials.
    pub source_role: Option<String>,
    /// How roles are assumed (`--role-session-name`, `--external-id`, `--role-duration`).
    pub role: RoleOptions,
}

/// A named profile and where its name came from (`--profile`, `AWS_PROFILE`, ...), for
/// messages.
#[derive(Debug, Clone, Copy)]
pub struct NamedProfile<'a> {
    /// The profile's name.
    pub name: &'a str,
    /// The flag or variable that named it.
    pub from: &'a str,
}

/// Loads the SDK configuration for one set of credentials (a profile, or the default chain).
///
/// The SDK's own retries are turned off: the tool's retry loop (see [`crate::retry`]) is the
/// only one, so the two never fight and the shared pacer sees every throttle.
pub async fn load(opts: &AwsOptions, named: Option<NamedProfile<'_>>) -> Result<SdkConfig, Error> {
    // A profile that is not there would otherwise be taken for one without a region or
    // credentials, and the chains would go on to instance metadata.
    let from_flag = opts.profile.as_deref().map(|name| NamedProfile {
        name,
        from: "--profile",
    });
    let env_profile = std::env::var("AWS_PROFILE").ok();
    let from_env = env_profile
        .as_deref()
        .filter(|p| !p.is_empty() && *p != "default")
        .map(|name| NamedProfile {
            name,
            from: "AWS_PROFILE",
        });
    if let Some(named) = named.or(from_flag).or(from_env) {
        check_profile(named)?;
    }
    let profile = named.map(|n| n.name);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .region(region(opts, profile).await?);
    if let Some(p) = profile.or(opts.profile.as_deref()) {
        loader = loader.profile_name(p);
    }
    if let Some(e) = &opts.endpoint_url {
        loader = loader.endpoint_url(e.clone());
    }
    let mut conf = loader.load().await;
    if let Some(p) = profile.or(opts.profile.as_deref()) {
        // As in the AWS CLI, a named profile wins over AWS_ACCESS_KEY_ID & co in the
        // environment: aws-config's default chain would ask the environment first, and the
        // source account's keys could silently stand in for a target's. The profile
        // provider alone handles static keys, assume-role, SSO and credential_process.
        let provider = ProfileFileCredentialsProvider::builder()
            .configure(&ProviderConfig::default().with_region(conf.region().cloned()))
            .profile_name(p)
            .build();
        conf = conf
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    if conf.credentials_provider().is_none() {
        return Err(Error::Config(
            "no AWS credentials provider could be configured".into(),
        ));
    }
    Ok(conf)
}

/// The default region: `--region`, else aws-config's region chain (`AWS_REGION`,
/// `AWS_DEFAULT_REGION`, the profile, instance metadata), asked once.
///
/// Left to itself, the loader asks the chain three times (for the configuration, the
/// credentials chain and the SSO token chain), and away from EC2 every instance-metadata
/// lookup fails, each after a connect timeout, with a warning. Asked once here, a missing
/// region is one error line and the loader asks nothing more.
async fn region(opts: &AwsOptions, profile: Option<&str>) -> Result<Region, Error> {
    if let Some(r) = &opts.region {
        return Ok(Region::new(r.clone()));
    }
    let mut chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(p) = profile.or(opts.profile.as_deref()) {
        chain = chain.profile_name(p);
    }
    chain.build().region().await.ok_or_else(|| {
        Error::Config(
            "no AWS region: pass --region, set AWS_REGION, or set region in the profile".into(),
        )
    })
}

/// Why the credentials cannot be loaded, in one line (`None` when they can): those of
/// `profile`, or of the default chain. Asked only once a call has failed, with a provider of
/// its own: the configuration's provider has spent its error on that call (a profile
/// provider reports its setup error once), and loading credentials may run a
/// `credential_process` or an assume-role, not worth doing twice when all is well.
pub async fn credentials_problem(profile: Option<&str>, region: Option<Region>) -> Option<String> {
    use aws_config::default_provider::credentials::DefaultCredentialsChain;
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_iot::config::ProvideCredentials;
    let result = match profile {
        Some(p) => {
            ProfileFileCredentialsProvider::builder()
                .configure(&ProviderConfig::default().with_region(region))
                .profile_name(p)
                .build()
                .provide_credentials()
                .await
        }
        None => {
            let mut chain = DefaultCredentialsChain::builder();
            chain.set_region(region);
            chain.build().await.provide_credentials().await
        }
    };
    let e = result.err()?;
    // The top of a credentials error is generic ("an error occurred while loading
    // credentials"); its sources say what happened.
    let why = std::error::Error::source(&e).map(one_line);
    let because = |why: Option<String>| why.map(|w| format!(": {w}")).unwrap_or_default();
    Some(match (&e, profile) {
        (CredentialsError::CredentialsNotLoaded(_), None) => {
            "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), the profile \
             files, or the container or instance metadata; pass --profile or set AWS_PROFILE \
             (after `aws sso login` for an SSO profile)"
                .into()
        }
        (CredentialsError::CredentialsNotLoaded(_), Some(p)) => {
            format!("profile {p} holds no AWS credentials{}", because(why))
        }
        (_, Some(p)) => {
            let why = why.unwrap_or_else(|| e.to_string());
            // An SSO profile's usual trouble: no login yet, or it expired.
            let hint = if why.contains("SSO") || why.contains("access token") {
                format!(" (log in with `aws sso login --profile {p}`)")
            } else {
                String::new()
            };
            format!("cannot load the AWS credentials of profile {p}: {why}{hint}")
        }
        (_, None) => format!(
            "cannot load the AWS credentials: {}",
            why.unwrap_or_else(|| e.to_string())
        ),
    })
}

/// The region of a loaded configuration.
pub fn region_of(conf: &SdkConfig) -> String {
    conf.region().map(|r| r.to_string()).unwrap_or_default()
}

/// An IoT client for `region` (the configuration's own region when `None`).
pub fn iot_client(conf: &SdkConfig, region: Option<&str>) -> aws_sdk_iot::Client {
    let mut b = aws_sdk_iot::config::Builder::from(conf);
    if let Some(r) = region {
        b = b.region(Region::new(r.to_string()));
    }
    aws_sdk_iot::Client::from_conf(b.build())
}

/// An STS client (used to learn which account the credentials belong to).
pub fn sts_client(conf: &SdkConfig) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(conf)
}

/// The AWS CLI's two profile files: `AWS_CONFIG_FILE` (default `~/.aws/config`) and
/// `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).
pub fn profile_files() -> [PathBuf; 2] {
    let home = || {
        std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".aws")
    };
    let file = |var: &str, name: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(name))
    };
    [
        file("AWS_CONFIG_FILE", "config"),
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    ]
}

/// The profiles the files define: `[profile NAME]` and `[default]` in the config file,
/// `[NAME]` in the credentials file. A file that cannot be read defines none.
pub fn profile_names(config: &str, credentials: &str) -> BTreeSet<String> {
    let sections = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| {
                let l = l.trim();
                let inner = l.strip_prefix('[')?.split(']').next()?;
                Some(inner.trim().to_string())
            })
            .collect()
    };
    let mut names = BTreeSet::new();
    for s in sections(config) {
        if s == "default" {
            names.insert(s);
        } else if let Some(name) = s.strip_prefix("profile ").or(s.strip_prefix("profile\t")) {
            names.insert(name.trim().to_string());
        }
    }
    names.extend(sections(credentials));
    names
}

/// Refuses a profile the files do not define: one line naming it, where its name came
/// from, the files looked in and the profiles they have.
fn check_profile(named: NamedProfile<'_>) -> Result<(), Error> {
    let files = profile_files();
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let names = profile_names(&read(&files[0]), &read(&files[1]));
    if names.contains(named.name) {
        return Ok(());
    }
    let there = if names.is_empty() {
        "no profile is defined there".to_string()
    } else {
        let list: Vec<&str> = names.iter().map(String::as_str).collect();
        format!("profiles there: {}", list.join(", "))
    };
    let near = names
        .iter()
        .filter(|n| edit_distance(n, named.name) <= 2)
        .min_by_key(|n| edit_distance(n, named.name))
        .map(|n| format!(" (did you mean {n}?)"))
        .unwrap_or_default();
    Err(Error::Config(format!(
        "profile {} ({}) is not defined in {} or {}; {there}{near}",
        named.name,
        named.from,
        files[0].display(),
        files[1].display()
    )))
}

/// Levenshtein distance, for a "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Attempts of one AssumeRole call (a renewal in the middle of a long run must survive a
/// throttle or a 5xx; the tool's own retry loop does not see these calls).
const ASSUME_ROLE_ATTEMPTS: u32 = 4;

/// The provider of `arn`'s sessions, assumed with `base`'s credentials (its endpoint,
/// region and timeouts too).
async fn role_provider(base: &SdkConfig, arn: &str, role: &RoleOptions) -> AssumeRoleProvider {
    let sts_conf = base
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(ASSUME_ROLE_ATTEMPTS))
        .build();
    let mut builder = AssumeRoleProvider::builder(arn)
        .session_name(role.session_name.clone())
        .session_length(role.duration)
        .configure(&sts_conf);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id.clone());
    }
    builder.build().await
}

/// The configuration of a role's sessions, assumed with `base`'s credentials. Nothing is
/// sent yet. Sessions are cached and renewed before they expire (aws-config's lazy
/// identity cache: from 5 to 10 s before the end), so a run may outlast any number of them.
pub async fn assume_role(base: &SdkConfig, arn: &str, role: &RoleOptions) -> SdkConfig {
    let provider = role_provider(base, arn, role).await;
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        // A cache of its own: each role's sessions are renewed on their own schedule.
        .identity_cache(IdentityCache::lazy().build())
        .build()
}

/// Why `arn` cannot be assumed with `base`'s credentials, in one line (`None` when it
/// can): STS's answer (code and message), or why the request could not be made.
pub async fn role_problem(base: &SdkConfig, arn: &str, role: &RoleOptions) -> Option<String> {
    use aws_sdk_iot::config::ProvideCredentials;
    use aws_sdk_iot::error::ProvideErrorMetadata;
    use aws_sdk_sts::error::SdkError;
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    let e = role_provider(base, arn, role)
        .await
        .provide_credentials()
        .await
        .err()?;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(SdkError::ServiceError(service)) = s.downcast_ref::<SdkError<AssumeRoleError>>()
        {
            let err = service.err();
            return Some(format!(
                "{}: {}",
                err.code().unwrap_or("refused"),
                err.message().unwrap_or("no message")
            ));
        }
        source = s.source();
    }
    Some(
        std::error::Error::source(&e)
            .map(one_line)
            .unwrap_or_else(|| e.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_read_as_the_aws_cli_reads_them() {
        let config = "[default]\nregion = eu-west-1\n\n[profile source]\nregion = x\n\
                      [ profile  spaced ]\n[sso-session corp]\n[services local]\n[stray]\n";
        let credentials = "# keys\n[target-a]\naws_access_key_id = A\n[default]\n";
        let names: Vec<String> = profile_names(config, credentials).into_iter().collect();
        assert_eq!(names, ["default", "source", "spaced", "target-a"]);
    }

    #[test]
    fn a_near_name_is_suggested() {
        assert_eq!(edit_distance("sourec", "source"), 2);
        assert_eq!(edit_distance("source", "source"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("target-a", "target-b"), 1);
    }
}
