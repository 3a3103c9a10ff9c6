//! `accept` and `reject` (target side), and the [`Acceptor`] that `transfer
//! --accept-profile(-template)` uses to accept each certificate right after its transfer.
//!
//! Only the manifest rows addressed to the caller's account are in scope; the others belong
//! to other target accounts and are neither processed nor counted. Both commands keep their
//! own ledger (`MANIFEST.accept-ledger.jsonl`); every call is write-ahead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;

use crate::aws;
use crate::cli::{AcceptArgs, GlobalArgs, RejectArgs};
use crate::cmd::reconcile::{self, Item, StepEnd, ALREADY_COMPLETED};
use crate::cmd::{self, clients_for, Pick, Run, Work};
use crate::error::{Error, ExitCode};
use crate::iot::{self, CallContext, Iot};
use crate::ledger::{
    Action, Details, ItemRecord, ItemState, LedgerError, LedgerKind, LedgerState, LedgerWriter,
    OpenIntent, Outcome, Stage,
};
use crate::manifest::{Manifest, ManifestRow};
use crate::pacer::Scope;
use crate::pipeline::ItemEnd;

/// Longest reject reason AWS accepts.
pub const MAX_REASON_CHARS: usize = 128;

/// Runs `accept`.
pub async fn run(global: &GlobalArgs, args: AcceptArgs) -> Result<ExitCode, Error> {
    let mut run = Run::open(
        global,
        &args.manifest,
        &args.files,
        LedgerKind::Accept,
        false,
        &args.pacing,
    )
    .await?;
    let (account, clients) = target_side(&mut run).await?;
    let acceptor = Arc::new(Acceptor {
        ledger: run.writer.clone(),
        state: run.state.clone(),
        targets: HashMap::from([(account, clients)]),
        set_as_active: args.set_as_active,
        attach_policies: args.attach_policies,
        max_attempts: args.pacing.max_attempts.max(1),
    });
    run.execute(
        args.pacing.concurrency,
        &args.limits,
        "accepting",
        false,
        |rec, _row| unfinished(rec),
        move |work| {
            let a = acceptor.clone();
            async move {
                a.accept(&work.row, work.open.as_ref(), work.may_proceed)
                    .await
            }
        },
    )
    .await
}

/// Runs `reject`.
pub async fn run_reject(global: &GlobalArgs, args: RejectArgs) -> Result<ExitCode, Error> {
    // Checked before anything else: AWS would refuse every call.
    let n = args.reason.chars().count();
    if n > MAX_REASON_CHARS {
        return Err(Error::Usage(format!(
            "--reason has {n} characters; AWS accepts at most {MAX_REASON_CHARS}"
        )));
    }
    let mut run = Run::open(
        global,
        &args.manifest,
        &args.files,
        LedgerKind::Accept,
        false,
        &args.pacing,
    )
    .await?;
    run.command = "reject";
    let (_, clients) = target_side(&mut run).await?;
    let rejecter = Arc::new(Rejecter {
        ledger: run.writer.clone(),
        clients,
        reason: args.reason,
        max_attempts: args.pacing.max_attempts.max(1),
    });
    run.execute(
        args.pacing.concurrency,
        &args.limits,
        "rejecting",
        false,
        |rec, _row| unfinished(rec),
        move |work| {
            let r = rejecter.clone();
            async move { r.reject(work).await }
        },
    )
    .await
}

/// The caller's account and its clients; restricts the run to the rows addressed to it.
async fn target_side(run: &mut Run) -> Result<(String, HashMap<Option<String>, Iot>), Error> {
    let account = run.caller_account().await?;
    let in_scope = run
        .manifest
        .targets()
        .iter()
        .filter(|t| t.account == account)
        .map(|t| t.certificates)
        .sum::<usize>();
    if in_scope == 0 {
        return Err(Error::Config(format!(
            "the credentials belong to account {account}, and no manifest row is addressed to it \
             (targets: {}); check --profile (AWS_ACCESS_KEY_ID in the environment takes precedence over a profile)",
            run.manifest.target_accounts().join(", ")
        )));
    }
    let out_of_scope = run.manifest.len() - in_scope;
    if out_of_scope > 0 {
        tracing::info!("{out_of_scope} manifest rows are addressed to other accounts than {account}: left to them");
    }
    let clients = clients_for(&run.conf, &run.manifest, &account, &run.ctx);
    let me = account.clone();
    run.restrict_to(Box::new(move |_rec, row| row.target_account == me));
    Ok((account, clients))
}

/// Accepted and rejected certificates are finished; everything else is (still) to do.
fn unfinished(rec: Option<&ItemRecord>) -> Pick {
    match rec.map(|r| r.state) {
        Some(ItemState::Accepted | ItemState::Rejected) => Pick::Skip,
        _ => Pick::Process,
    }
}

/// Accepts pending transfers with target-account credentials, write-ahead.
pub struct Acceptor {
    ledger: LedgerWriter,
    state: Arc<Mutex<LedgerState>>,
    /// Target account -> manifest region (`None` = the default region) -> client.
    targets: HashMap<String, HashMap<Option<String>, Iot>>,
    set_as_active: bool,
    attach_policies: Vec<String>,
    max_attempts: u32,
}

impl Acceptor {
    /// The acceptor of `transfer --accept-profile P` (the targets P's account receives) or
    /// `--accept-profile-template T` (every target account, with the profile named by T with
    /// `{account}` replaced). Each profile is checked with STS GetCallerIdentity before any
    /// certificate is touched; each target account is paced in its own (account, region) scopes.
    pub async fn for_transfer(
        run: &Run,
        profile: Option<&str>,
        template: Option<&str>,
        set_as_active: bool,
        max_attempts: u32,
    ) -> Result<Acceptor, Error> {
        let targets_named = run.manifest.target_accounts();
        // Certificates move within a region: accept where the source transferred them.
        let source_region = aws::region_of(&run.conf);
        let mut targets = HashMap::new();
        match (profile, template) {
            (Some(p), _) => {
                let conf = aws::load(&run.aws, Some(p)).await?;
                let account = profile_account(&conf, p, &run.ctx).await?;
                if !targets_named.contains(&account) {
                    return Err(Error::Config(format!(
                        "--accept-profile {p} belongs to account {account}, and no manifest row is addressed to it (targets: {})",
                        targets_named.join(", ")
                    )));
                }
                if targets_named.len() > 1 {
                    tracing::warn!("--accept-profile {p} accepts only for account {account}; the other targets' certificates are transferred, not accepted");
                }
                let clients =
                    target_clients(&conf, &run.manifest, &account, &source_region, &run.ctx);
                targets.insert(account, clients);
            }
            (None, Some(t)) => {
                if !t.contains("{account}") {
                    return Err(Error::Usage(format!(
                        "--accept-profile-template {t:?} must contain {{account}}"
                    )));
                }
                for account in targets_named {
                    let p = t.replace("{account}", &account);
                    let conf = aws::load(&run.aws, Some(&p)).await?;
                    let found = profile_account(&conf, &p, &run.ctx).await?;
                    if found != account {
                        return Err(Error::Config(format!(
                            "profile {p} is meant for target account {account} but its credentials belong to {found}"
                        )));
                    }
                    let clients =
                        target_clients(&conf, &run.manifest, &account, &source_region, &run.ctx);
                    targets.insert(account, clients);
                }
            }
            (None, None) => {
                return Err(Error::Usage(
                    "an acceptor needs --accept-profile or --accept-profile-template".into(),
                ))
            }
        }
        Ok(Acceptor {
            ledger: run.writer.clone(),
            state: run.state.clone(),
            targets,
            set_as_active,
            attach_policies: Vec::new(),
            max_attempts: max_attempts.max(1),
        })
    }

    /// The accounts this acceptor holds credentials of.
    pub fn accounts(&self) -> Vec<String> {
        self.targets.keys().cloned().collect()
    }

    /// Whether this acceptor holds credentials of `account`.
    pub fn handles(&self, account: &str) -> bool {
        self.targets.contains_key(account)
    }

    /// Whether an item of a transfer run is the acceptor's alone: its transfer is recorded
    /// (only the accept is left) or an accept intent is open.
    pub fn takes_over(&self, work: &Work) -> bool {
        if !self.handles(&work.row.target_account) {
            return false;
        }
        match &work.open {
            Some(open) => open.stage == Stage::Accept,
            None => {
                let state = self.state.lock().expect("ledger state");
                state.get(&work.row.certificate_id).map(|r| r.state) == Some(ItemState::Transferred)
            }
        }
    }

    fn iot(&self, row: &ManifestRow) -> Option<&Iot> {
        let clients = self.targets.get(&row.target_account)?;
        cmd::for_region(clients, row)
    }

    /// Accepts `row`'s pending transfer, then attaches the target-side policies. `open` is an
    /// accept intent an earlier run left open; `may_proceed` is false for failed items that
    /// are only reconciled. Rows for a target without credentials are left as they are.
    pub async fn accept(
        &self,
        row: &ManifestRow,
        open: Option<&OpenIntent>,
        may_proceed: bool,
    ) -> Result<ItemEnd, LedgerError> {
        let Some(iot) = self.iot(row) else {
            return Ok(ItemEnd::Done);
        };
        let item = Item::new(&self.ledger, row, self.max_attempts);
        let id = row.certificate_id.as_str();
        let mut accepted = false;
        if let Some(open) = open {
            match reconcile::target_check(iot, id, open.action, open.subject.as_deref()).await {
                Ok(f) => match (f.took_effect, open.action) {
                    (Some(true), Action::Reject) => {
                        let details = Details {
                            via: Some("reconciled".into()),
                            ..Default::default()
                        };
                        item.record(Stage::Reject, Outcome::Rejected, details)
                            .await?;
                        return Ok(ItemEnd::Done);
                    }
                    (Some(took), action) => {
                        item.settle(open, took).await?;
                        // A policy attachment comes after the accept: the accept is done.
                        accepted =
                            (took && action == Action::Accept) || action == Action::AttachPolicy;
                    }
                    (None, _) => return Ok(ItemEnd::InDoubt),
                },
                Err(e) => {
                    tracing::warn!(certificate = %id, "still in doubt: cannot reconcile: {e}");
                    return Ok(ItemEnd::InDoubt);
                }
            }
            // A failed item is only reconciled, unless the accept turns out to have happened.
            if !may_proceed && !accepted {
                return Ok(ItemEnd::Failed);
            }
        }

        let mut via = "call";
        if !accepted {
            let details = Details {
                action: Some(Action::Accept),
                ..Default::default()
            };
            let call = || iot.accept(id, self.set_as_active);
            let check = || reconcile::target_check(iot, id, Action::Accept, None);
            match item.step(Stage::Accept, details, call, check).await? {
                StepEnd::Done => {}
                // Accepted by an earlier run whose record was lost, or by hand.
                StepEnd::Refused(f) if f.code() == Some(ALREADY_COMPLETED) => {
                    via = "already_accepted"
                }
                StepEnd::Refused(f) => return item.fail_call(Stage::Accept, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        } else {
            via = "reconciled";
        }

        let scope = iot.scope();
        let arn = iot_cert_arn(&scope.region, &scope.account, id);
        for p in &self.attach_policies {
            let details = Details {
                action: Some(Action::AttachPolicy),
                policy: Some(p.clone()),
                ..Default::default()
            };
            let call = || iot.attach_policy(p, &arn);
            let check = || reconcile::target_check(iot, id, Action::AttachPolicy, Some(p));
            match item.step(Stage::Accept, details, call, check).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return item.fail_call(Stage::Accept, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        let details = Details {
            arn: Some(arn),
            via: Some(via.into()),
            ..Default::default()
        };
        item.record(Stage::Accept, Outcome::Accepted, details)
            .await?;
        Ok(ItemEnd::Done)
    }
}

/// Rejects pending transfers with target-account credentials, write-ahead.
struct Rejecter {
    ledger: LedgerWriter,
    clients: HashMap<Option<String>, Iot>,
    reason: String,
    max_attempts: u32,
}

impl Rejecter {
    async fn reject(&self, work: Work) -> Result<ItemEnd, LedgerError> {
        let row = &work.row;
        let iot = cmd::for_region(&self.clients, row).expect("a client for every manifest region");
        let item = Item::new(&self.ledger, row, self.max_attempts);
        let id = row.certificate_id.as_str();
        if let Some(open) = &work.open {
            let reconciled = || Details {
                via: Some("reconciled".into()),
                ..Default::default()
            };
            match reconcile::target_check(iot, id, open.action, open.subject.as_deref()).await {
                Ok(f) => match (f.took_effect, open.action) {
                    (Some(true), Action::Reject) => {
                        item.record(Stage::Reject, Outcome::Rejected, reconciled())
                            .await?;
                        return Ok(ItemEnd::Done);
                    }
                    // An interrupted accept went through: there is nothing left to reject.
                    (Some(true), Action::Accept | Action::AttachPolicy) => {
                        item.record(Stage::Accept, Outcome::Accepted, reconciled())
                            .await?;
                        return Ok(ItemEnd::Done);
                    }
                    (Some(took), _) => item.settle(open, took).await?,
                    (None, _) => return Ok(ItemEnd::InDoubt),
                },
                Err(e) => {
                    tracing::warn!(certificate = %id, "still in doubt: cannot reconcile: {e}");
                    return Ok(ItemEnd::InDoubt);
                }
            }
            if !work.may_proceed {
                return Ok(ItemEnd::Failed);
            }
        }
        let details = Details {
            action: Some(Action::Reject),
            message: Some(self.reason.clone()),
            ..Default::default()
        };
        let call = || iot.reject(id, Some(&self.reason));
        let check = || reconcile::target_check(iot, id, Action::Reject, None);
        match item.step(Stage::Reject, details, call, check).await? {
            StepEnd::Done => {
                let details = Details {
                    via: Some("call".into()),
                    ..Default::default()
                };
                item.record(Stage::Reject, Outcome::Rejected, details).await?;
                Ok(ItemEnd::Done)
            }
            StepEnd::Refused(f) if f.code() == Some(ALREADY_COMPLETED) => {
                item.fail(
                    Stage::Reject,
                    ALREADY_COMPLETED,
                    format!("this account ({}) already accepted the certificate: it can no longer be rejected", iot.scope().account),
                )
                .await
            }
            StepEnd::Refused(f) => item.fail_call(Stage::Reject, &f).await,
            StepEnd::InDoubt => Ok(ItemEnd::InDoubt),
        }
    }
}

/// `arn:aws:iot:REGION:ACCOUNT:cert/ID`.
fn iot_cert_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:cert/{id}")
}

/// The account a profile's credentials belong to; any failure (unknown profile, bad keys,
/// assume-role refused) is fatal before anything is done.
async fn profile_account(
    conf: &SdkConfig,
    profile: &str,
    ctx: &CallContext,
) -> Result<String, Error> {
    let sts = aws::sts_client(conf);
    iot::caller_account(&sts, &aws::region_of(conf), ctx)
        .await
        .map_err(|f| {
            Error::Config(format!(
                "profile {profile}: cannot identify its AWS account (STS GetCallerIdentity): {f}"
            ))
        })
}

/// Clients for every region of the manifest in `account`'s scopes; rows without a region use
/// `default_region` (the source's, where the transfer happened).
fn target_clients(
    conf: &SdkConfig,
    manifest: &Manifest,
    account: &str,
    default_region: &str,
    ctx: &Arc<CallContext>,
) -> HashMap<Option<String>, Iot> {
    manifest
        .regions()
        .into_iter()
        .chain(std::iter::once(None))
        .map(|region| {
            let r = region.clone().unwrap_or_else(|| default_region.to_string());
            let scope = Scope {
                account: account.to_string(),
                region: r.clone(),
            };
            (
                region,
                Iot::new(aws::iot_client(conf, Some(&r)), scope, ctx.clone()),
            )
        })
        .collect()
}
