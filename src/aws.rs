//! Building AWS SDK configuration from the global options and the default provider chain.

use std::time::Duration;

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iot::config::SharedCredentialsProvider;

use crate::error::Error;

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
        .timeout_config(timeouts);
    if let Some(p) = profile.or(opts.profile.as_deref()) {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
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
    if conf.region().is_none() {
        return Err(Error::Config(
            "no AWS region: pass --region, set AWS_REGION, or set region in the profile".into(),
        ));
    }
    if conf.credentials_provider().is_none() {
        return Err(Error::Config(
            "no AWS credentials provider could be configured".into(),
        ));
    }
    Ok(conf)
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
