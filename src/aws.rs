//! Building AWS SDK configuration from the global options and the default provider chain.

use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iot::config::SharedCredentialsProvider;

use crate::error::{one_line, Error};

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
}

/// Loads the SDK configuration for one set of credentials (a profile, or the default chain).
///
/// The SDK's own retries are turned off: the tool's retry loop (see [`crate::retry`]) is the
/// only one, so the two never fight and the shared pacer sees every throttle.
pub async fn load(opts: &AwsOptions, profile: Option<&str>) -> Result<SdkConfig, Error> {
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
        (_, Some(p)) => format!(
            "cannot load the AWS credentials of profile {p}: {}",
            why.unwrap_or_else(|| e.to_string())
        ),
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
