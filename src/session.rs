//! What every command that calls AWS starts from: its checked options, the SDK configuration
//! of its credentials, and the one call context (pacer, retry policy, counters) that every
//! client of the run shares, whichever account or region it acts in.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::aws::{self, AwsOptions};
use crate::breaker::{Breaker, BreakerSettings};
use crate::error::Error;
use crate::iot::{self, AccountClients, CallContext};
use crate::manifest::Manifest;
use crate::pacer::{Pacer, RateSettings};
use crate::retry::RetryPolicy;

/// The AWS and pacing options of a command line, checked (a bad value is exit 2 before
/// anything else happens).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connection options.
    pub aws: AwsOptions,
    /// Rates per operation.
    pub rates: RateSettings,
    /// Retry budget of one call.
    pub retry: RetryPolicy,
    /// When the run stops on systemic failures.
    pub breaker: BreakerSettings,
}

/// One set of credentials, ready to call AWS.
pub struct Session {
    /// The options it was made from.
    pub settings: Settings,
    /// The SDK configuration of its credentials.
    pub conf: SdkConfig,
    /// Pacer, retry policy and counters, shared with every session derived from this one.
    pub ctx: Arc<CallContext>,
    /// The named profile, when one was given (for messages).
    profile: Option<String>,
}

impl Session {
    /// Loads the SDK configuration of the run's credentials (`--profile` or the default
    /// chain). Nothing is sent to AWS yet.
    pub async fn connect(settings: Settings) -> Result<Session, Error> {
        let conf = aws::load(&settings.aws, None).await?;
        let ctx = CallContext::new(
            Arc::new(Pacer::new(settings.rates.clone())),
            settings.retry.clone(),
            Arc::new(Breaker::new(settings.breaker)),
        );
        Ok(Session {
            profile: settings.aws.profile.clone(),
            settings,
            conf,
            ctx,
        })
    }

    /// A session of another profile (a target account's, say) that shares this one's pacer
    /// and counters, so that every call of the run is paced and counted in one place.
    pub async fn with_profile(&self, profile: &str) -> Result<Session, Error> {
        Ok(Session {
            settings: self.settings.clone(),
            conf: aws::load(&self.settings.aws, Some(profile)).await?,
            ctx: self.ctx.clone(),
            profile: Some(profile.to_string()),
        })
    }

    /// The default region of the credentials.
    pub fn region(&self) -> String {
        aws::region_of(&self.conf)
    }

    /// The account the credentials belong to (STS GetCallerIdentity). A failure is fatal
    /// (exit 1) and happens before any certificate is touched.
    pub async fn caller_account(&self) -> Result<String, Error> {
        let sts = aws::sts_client(&self.conf);
        let failure = match iot::caller_account(&sts, &self.region(), &self.ctx).await {
            Ok(account) => return Ok(account),
            Err(f) => f,
        };
        let whose = match &self.profile {
            Some(p) => format!("of profile {p}"),
            None => "of the credentials".to_string(),
        };
        // Missing or broken credentials surface as a failed request: say so plainly.
        let region = self.conf.region().cloned();
        if let Some(problem) = aws::credentials_problem(self.profile.as_deref(), region).await {
            return Err(Error::Config(problem));
        }
        Err(Error::Aws(format!(
            "cannot identify the AWS account {whose} (STS GetCallerIdentity): {failure}"
        )))
    }

    /// Clients in `account` for each of `regions` (`None` = `default_region`).
    pub fn clients(
        &self,
        account: &str,
        regions: impl IntoIterator<Item = Option<String>>,
        default_region: &str,
    ) -> AccountClients {
        // So that a refusal of these credentials names them.
        self.ctx.breaker().name_credentials(account, &self.whose());
        AccountClients::new(&self.conf, account, regions, default_region, &self.ctx)
    }

    /// Whose credentials these are, for messages (never the credentials themselves).
    pub fn whose(&self) -> String {
        if let Some(p) = &self.profile {
            return format!("profile {p}");
        }
        // The default chain asks the environment's keys first, then AWS_PROFILE.
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            "the environment (AWS_ACCESS_KEY_ID)".into()
        } else if let Ok(p) = std::env::var("AWS_PROFILE") {
            format!("profile {p} (AWS_PROFILE)")
        } else {
            "the default credential chain (default profile, SSO, container or instance role)".into()
        }
    }

    /// Clients in the caller's own account, one per region of `regions`, with this session's
    /// default region (STS first: see [`Session::caller_account`]).
    pub async fn own_clients(
        &self,
        regions: impl IntoIterator<Item = Option<String>>,
    ) -> Result<AccountClients, Error> {
        let account = self.caller_account().await?;
        Ok(self.clients(&account, regions, &self.region()))
    }
}

/// Credentials for the target accounts: one profile (for the one target account it belongs
/// to), or a profile per target account named by a template with `{account}` in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetProfiles {
    /// One profile.
    One(String),
    /// `{account}` is replaced by each target account id, e.g. `migrate-{account}`.
    Template(String),
}

impl TargetProfiles {
    /// From a pair of mutually exclusive flags (clap enforces the exclusion).
    pub fn from_flags(profile: Option<&str>, template: Option<&str>) -> Option<TargetProfiles> {
        match (profile, template) {
            (Some(p), _) => Some(TargetProfiles::One(p.to_string())),
            (None, Some(t)) => Some(TargetProfiles::Template(t.to_string())),
            (None, None) => None,
        }
    }
}

impl Session {
    /// The clients of the target accounts of `manifest` that `profiles` holds credentials
    /// of, each profile checked with STS GetCallerIdentity before any certificate is
    /// touched. Certificates move within a region: rows without a region use this
    /// session's (the source's) region in the target too. `flag` names the option in
    /// messages.
    pub async fn target_clients(
        &self,
        manifest: &Manifest,
        profiles: &TargetProfiles,
        flag: &str,
    ) -> Result<Vec<AccountClients>, Error> {
        let targets = manifest.target_accounts();
        let region = self.region();
        let mut clients = Vec::new();
        match profiles {
            TargetProfiles::One(p) => {
                let session = self.with_profile(p).await?;
                let account = session.caller_account().await?;
                if !targets.contains(&account) {
                    return Err(Error::Config(format!(
                        "{flag} {p} belongs to account {account}, and no manifest row is addressed to it (targets: {})",
                        targets.join(", ")
                    )));
                }
                if targets.len() > 1 {
                    tracing::warn!("{flag} {p} holds credentials of account {account} only; the other target accounts' certificates are left out");
                }
                clients.push(session.clients(&account, manifest.regions(), &region));
            }
            TargetProfiles::Template(t) => {
                for account in targets {
                    let p = t.replace("{account}", &account);
                    let session = self.with_profile(&p).await?;
                    let found = session.caller_account().await?;
                    if found != account {
                        return Err(Error::Config(format!(
                            "profile {p} is meant for target account {account} but its credentials belong to {found}"
                        )));
                    }
                    clients.push(session.clients(&account, manifest.regions(), &region));
                }
            }
        }
        Ok(clients)
    }
}
