//! What every command that calls AWS starts from: its checked options, the SDK configuration
//! of its credentials, and the one call context (pacer, retry policy, counters) that every
//! client of the run shares, whichever account or region it acts in.
//!
//! Credentials come from the base chain (`--profile`, or the environment and the default
//! chain), or from a role assumed with it (`--source-role`); a target account's from a
//! profile of its own or from a role assumed in it ([`TargetCredentials`]). Every command
//! that acts on target accounts gets them from [`Session::target_clients`], checked before
//! any certificate is touched.

use std::sync::Arc;

use aws_config::SdkConfig;
use futures::StreamExt;

use crate::aws::{self, AwsOptions, NamedProfile};
use crate::breaker::{Breaker, BreakerSettings};
use crate::error::Error;
use crate::iot::{self, AccountClients, CallContext};
use crate::manifest::Manifest;
use crate::pacer::{Pacer, RateSettings};
use crate::retry::RetryPolicy;
use crate::role;

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

/// Where a session's credentials come from, for messages and for saying what is wrong
/// with them.
#[derive(Debug, Clone)]
enum Source {
    /// The default chain (the environment, `AWS_PROFILE`, SSO, container or instance role).
    Chain,
    /// A named profile.
    Profile(String),
    /// A role assumed with the base credentials.
    Role {
        /// The role.
        arn: String,
        /// Where the base credentials come from.
        base: Box<Source>,
    },
}

/// One set of credentials, ready to call AWS.
pub struct Session {
    /// The options it was made from.
    pub settings: Settings,
    /// The SDK configuration of its credentials.
    pub conf: SdkConfig,
    /// Pacer, retry policy and counters, shared with every session derived from this one.
    pub ctx: Arc<CallContext>,
    /// The base credentials' configuration (`conf` itself unless a role is assumed): roles
    /// are assumed with these.
    base: SdkConfig,
    source: Source,
}

impl Session {
    /// Loads the SDK configuration of the run's credentials (`--profile` or the default
    /// chain, and `--source-role` assumed with them). Nothing is sent to AWS yet.
    pub async fn connect(settings: Settings) -> Result<Session, Error> {
        let base = aws::load(&settings.aws, None).await?;
        let ctx = CallContext::new(
            Arc::new(Pacer::new(settings.rates.clone())),
            settings.retry.clone(),
            Arc::new(Breaker::new(settings.breaker)),
        );
        let base_source = match &settings.aws.profile {
            Some(p) => Source::Profile(p.clone()),
            None => Source::Chain,
        };
        let (conf, source) = match &settings.aws.source_role {
            Some(arn) => (
                aws::assume_role(&base, arn, &settings.aws.role).await,
                Source::Role {
                    arn: arn.clone(),
                    base: Box::new(base_source),
                },
            ),
            None => (base.clone(), base_source),
        };
        Ok(Session {
            settings,
            conf,
            ctx,
            base,
            source,
        })
    }

    /// A session of another profile (a target account's, say) that shares this one's pacer
    /// and counters, so that every call of the run is paced and counted in one place.
    /// `from` names the flag that named the profile.
    pub async fn with_profile(&self, profile: &str, from: &str) -> Result<Session, Error> {
        let named = NamedProfile {
            name: profile,
            from,
        };
        let conf = aws::load(&self.settings.aws, Some(named)).await?;
        Ok(Session {
            settings: self.settings.clone(),
            base: conf.clone(),
            conf,
            ctx: self.ctx.clone(),
            source: Source::Profile(profile.to_string()),
        })
    }

    /// A session of `arn`, assumed with this session's base credentials (not with a source
    /// role: no role chaining, whose sessions AWS limits to an hour), sharing its pacer and
    /// counters. Nothing is sent yet.
    pub async fn with_role(&self, arn: &str) -> Session {
        Session {
            settings: self.settings.clone(),
            conf: aws::assume_role(&self.base, arn, &self.settings.aws.role).await,
            base: self.base.clone(),
            ctx: self.ctx.clone(),
            source: Source::Role {
                arn: arn.to_string(),
                base: Box::new(self.base_source().clone()),
            },
        }
    }

    /// Where the base credentials come from.
    fn base_source(&self) -> &Source {
        match &self.source {
            Source::Role { base, .. } => base,
            other => other,
        }
    }

    /// The default region of the credentials.
    pub fn region(&self) -> String {
        aws::region_of(&self.conf)
    }

    /// The account the credentials belong to (STS GetCallerIdentity). A failure is fatal
    /// (exit 1) and happens before any certificate is touched.
    pub async fn caller_account(&self) -> Result<String, Error> {
        // A role that cannot be assumed says so itself, before GetCallerIdentity makes a
        // refusal of the credentials of it (which would stop the whole run's calls).
        if let Source::Role { arn, .. } = &self.source {
            if let Some(problem) = self.role_problem(arn).await {
                return Err(Error::Config(problem));
            }
        }
        let sts = aws::sts_client(&self.conf);
        let failure = match iot::caller_account(&sts, &self.region(), &self.ctx).await {
            Ok(account) => return Ok(account),
            Err(f) => f,
        };
        // Missing or broken credentials surface as a failed request: say so plainly.
        if let Some(problem) = self.base_problem().await {
            return Err(Error::Config(problem));
        }
        Err(Error::Aws(format!(
            "cannot identify the AWS account of {} (STS GetCallerIdentity): {failure}",
            self.whose()
        )))
    }

    /// Why the base credentials cannot be loaded, if they cannot.
    async fn base_problem(&self) -> Option<String> {
        let profile = match self.base_source() {
            Source::Profile(p) => Some(p.as_str()),
            _ => None,
        };
        aws::credentials_problem(profile, self.base.region().cloned()).await
    }

    /// Why `arn` cannot be assumed, in one line naming it and the base credentials.
    async fn role_problem(&self, arn: &str) -> Option<String> {
        if let Some(problem) = self.base_problem().await {
            return Some(format!("cannot assume role {arn}: {problem}"));
        }
        let why = aws::role_problem(&self.base, arn, &self.settings.aws.role).await?;
        // AWS does not say which condition failed: name the usual ones.
        let hint = if why.starts_with("AccessDenied") {
            match &self.settings.aws.role.external_id {
                None => "; the role's trust policy must allow these credentials (and, if it asks for an external id, pass --external-id)",
                Some(_) => "; the role's trust policy must allow these credentials, with this --external-id",
            }
        } else {
            ""
        };
        Some(format!(
            "cannot assume role {arn} with the credentials of {}: {why}{hint}",
            describe(self.base_source())
        ))
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
        describe(&self.source)
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

/// Whose credentials `source` gives, for people.
fn describe(source: &Source) -> String {
    match source {
        Source::Profile(p) => format!("profile {p}"),
        Source::Role { arn, base } => format!("role {arn} (assumed with {})", describe(base)),
        // The default chain asks the environment's keys first, then AWS_PROFILE.
        Source::Chain => {
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
                "the environment (AWS_ACCESS_KEY_ID)".into()
            } else if let Ok(p) = std::env::var("AWS_PROFILE") {
                format!("profile {p} (AWS_PROFILE)")
            } else {
                "the default credential chain (default profile, SSO, container or instance role)"
                    .into()
            }
        }
    }
}

/// Credentials for the target accounts: one profile (for the one target account it belongs
/// to), a profile per target account named by a template, or a role per target account
/// assumed with the run's base credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetCredentials {
    /// One profile.
    Profile(String),
    /// `{account}` is replaced by each target account id, e.g. `migrate-{account}`.
    ProfileTemplate(String),
    /// `{account}` is replaced by each target account id, e.g.
    /// `arn:aws:iam::{account}:role/OrganizationAccountAccessRole`.
    RoleTemplate(String),
}

impl TargetCredentials {
    /// From three mutually exclusive flags (clap enforces the exclusion).
    pub fn from_flags(
        profile: Option<&str>,
        profile_template: Option<&str>,
        role_template: Option<&str>,
    ) -> Option<TargetCredentials> {
        match (profile, profile_template, role_template) {
            (Some(p), _, _) => Some(TargetCredentials::Profile(p.to_string())),
            (None, Some(t), _) => Some(TargetCredentials::ProfileTemplate(t.to_string())),
            (None, None, Some(t)) => Some(TargetCredentials::RoleTemplate(t.to_string())),
            (None, None, None) => None,
        }
    }
}

/// How many target accounts are checked at once (each check is an AssumeRole or a profile's
/// credentials, and a GetCallerIdentity).
const TARGET_CHECKS_AT_ONCE: usize = 8;

impl Session {
    /// The clients of the target accounts of `manifest` that `targets` holds credentials
    /// of, each checked with STS GetCallerIdentity before any certificate is touched.
    /// Certificates move within a region: rows without a region use this session's (the
    /// source's) region in the target too. `flag` names the option in messages.
    pub async fn target_clients(
        &self,
        manifest: &Manifest,
        targets: &TargetCredentials,
        flag: &str,
    ) -> Result<Vec<AccountClients>, Error> {
        let accounts = manifest.target_accounts();
        let region = &self.region();
        let p = match targets {
            TargetCredentials::Profile(p) => p,
            TargetCredentials::ProfileTemplate(t) => {
                let checks = accounts.iter().map(|account| async move {
                    let p = t.replace("{account}", account);
                    let session = self.with_profile(&p, &format!("{flag}-template")).await?;
                    let found = session.caller_account().await?;
                    if &found != account {
                        return Err(Error::Config(format!(
                            "profile {p} is meant for target account {account} but its credentials belong to {found}"
                        )));
                    }
                    Ok(session.clients(account, manifest.regions(), region))
                });
                return first_error(checks).await;
            }
            TargetCredentials::RoleTemplate(t) => {
                let checks = accounts.iter().map(|account| async move {
                    let arn = role::arn_for(t, account);
                    let session = self.with_role(&arn).await;
                    let found = session.caller_account().await.map_err(|e| {
                        Error::Config(format!("target account {account}: {e}"))
                    })?;
                    if &found != account {
                        return Err(Error::Config(format!(
                            "role {arn} is meant for target account {account} but its sessions act as account {found}"
                        )));
                    }
                    Ok(session.clients(account, manifest.regions(), region))
                });
                return first_error(checks).await;
            }
        };
        let session = self.with_profile(p, flag).await?;
        let account = session.caller_account().await?;
        if !accounts.contains(&account) {
            return Err(Error::Config(format!(
                "{flag} {p} belongs to account {account}, and no manifest row is addressed to it (targets: {})",
                accounts.join(", ")
            )));
        }
        if accounts.len() > 1 {
            tracing::warn!("{flag} {p} holds credentials of account {account} only; the other target accounts' certificates are left out");
        }
        Ok(vec![session.clients(&account, manifest.regions(), region)])
    }
}

/// Runs the checks of every target account (a few at once), and returns their clients
/// in order, or the first refusal, saying how many other accounts were refused too.
async fn first_error<F>(checks: impl Iterator<Item = F>) -> Result<Vec<AccountClients>, Error>
where
    F: std::future::Future<Output = Result<AccountClients, Error>>,
{
    let results: Vec<Result<AccountClients, Error>> = futures::stream::iter(checks)
        .buffered(TARGET_CHECKS_AT_ONCE)
        .collect()
        .await;
    let mut clients = Vec::new();
    let mut refused = Vec::new();
    for r in results {
        match r {
            Ok(c) => clients.push(c),
            Err(e) => refused.push(e),
        }
    }
    let mut refused = refused.into_iter();
    match refused.next() {
        None => Ok(clients),
        Some(first) => {
            let more = refused.len();
            if more == 0 {
                return Err(first);
            }
            let also = format!(
                "{first} (and {more} more target account{} refused the same way or otherwise; fix this one first)",
                if more == 1 { "" } else { "s" }
            );
            Err(match first {
                Error::Aws(_) => Error::Aws(also),
                _ => Error::Config(also),
            })
        }
    }
}
