//! Did a mutating call take effect? Read-only questions to AWS, asked after an unknown
//! outcome and for every intent an earlier run left open, with the credentials of the side
//! the worker acts for.

use tokio::time::Instant;

use crate::certificate::CertStatus;
use crate::iot::{AwsCode, CallFailure, CertificateInfo, Iot};
use crate::ledger::Action;

/// Which account's credentials a worker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// The account the certificate moves out of.
    Source,
    /// The account it moves to.
    Target,
}

/// What AWS says about whether a mutating call took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// `Some(true)`: it did; `Some(false)`: it did not; `None`: AWS cannot tell yet.
    pub took_effect: Option<bool>,
    /// What AWS showed, for people (`PENDING_TRANSFER to 222222222222`).
    pub seen: String,
}

impl Effect {
    fn new(took_effect: Option<bool>, seen: impl Into<String>) -> Self {
        Effect {
            took_effect,
            seen: seen.into(),
        }
    }
}

/// Whether `action` on certificate `id` took effect, asked with `side`'s credentials through
/// `iot`. `target` is the row's target account; `subject` the policy, thing or thing type it
/// named, `group` the thing group.
pub async fn took_effect(
    side: Side,
    iot: &Iot,
    id: &str,
    target: &str,
    action: Action,
    subject: Option<&str>,
    group: Option<&str>,
) -> Result<Effect, CallFailure> {
    // Registry and job calls are asked of the registry, whichever side made them.
    if let Some(finding) = carry_check(iot, action, subject, group).await? {
        return Ok(finding);
    }
    match side {
        Side::Source => source_check(iot, id, target, action, subject).await,
        Side::Target => target_check(iot, id, action, subject).await,
    }
}

/// Whether a carry change to the registry took effect (`None`: not one of those). Each
/// asks whether the object exists, or is attached or a member, now.
async fn carry_check(
    iot: &Iot,
    action: Action,
    subject: Option<&str>,
    group: Option<&str>,
) -> Result<Option<Effect>, CallFailure> {
    let name = subject.unwrap_or_default();
    let group = group.unwrap_or_default();
    let exists = |kind: &str, found: bool| {
        let seen = if found {
            format!("{kind} `{name}` exists")
        } else {
            format!("no {kind} `{name}`")
        };
        Some(Effect::new(Some(found), seen))
    };
    Ok(match action {
        Action::CreateThingType => exists("thing type", iot.thing_type(name).await?.is_some()),
        Action::CreatePolicy => exists("policy", iot.policy_document(name).await?.is_some()),
        Action::CreateThing => exists("thing", iot.thing(name).await?.is_some()),
        Action::CreateThingGroup => {
            let found = iot.thing_group(group).await?.is_some();
            let seen = if found {
                format!("thing group `{group}` exists")
            } else {
                format!("no thing group `{group}`")
            };
            Some(Effect::new(Some(found), seen))
        }
        Action::AttachGroupPolicy => {
            let names = iot.attached_policies(&iot.group_arn(group)).await?;
            let seen = format!("thing group `{group}` has policies: {}", names.join(", "));
            Some(Effect::new(Some(names.iter().any(|n| n == name)), seen))
        }
        Action::AddThingToGroup => {
            let groups = iot.groups_of_thing(name).await?;
            let seen = format!("thing `{name}` is in groups: {}", groups.join(", "));
            Some(Effect::new(Some(groups.iter().any(|g| g == group)), seen))
        }
        // A job of that id exists: it is this one only if it targets the wave's group (a
        // 409 for someone else's job of the same id is a real refusal).
        // (An open intent names the group only: a wave's job is named as its group.)
        Action::CreateJob => match iot
            .describe_job(if name.is_empty() { group } else { name })
            .await?
        {
            Some(job) => {
                let ours = job.targets.contains(&iot.group_arn(group));
                let seen = format!(
                    "job `{name}` exists ({}), targets: {}",
                    job.status,
                    job.targets.join(", ")
                );
                Some(Effect::new(Some(ours), seen))
            }
            None => Some(Effect::new(Some(false), format!("no job `{name}`"))),
        },
        _ => None,
    })
}

/// The source account's view (DescribeCertificate, and ListAttachedPolicies,
/// ListPrincipalThings or ListOutgoingCertificates as the action needs).
async fn source_check(
    iot: &Iot,
    id: &str,
    target: &str,
    action: Action,
    subject: Option<&str>,
) -> Result<Effect, CallFailure> {
    let info = match source_view(iot, id).await? {
        SourceView::Owned(info) => info,
        // Gone from the source account: only an accept takes a certificate away.
        SourceView::Gone(gone) => {
            return Ok(Effect::new(
                Some(matches!(action, Action::Transfer | Action::Accept)),
                gone,
            ))
        }
    };
    // The answer shows the certificate as it is now. An outgoing listing compared with it must
    // be at least as recent: one started while a transfer was still on its way would not show
    // it, and "pending but not listed" would leave the item in doubt for nothing.
    let described_at = Instant::now();
    let status = info.status.clone();
    let listed = |what: &str, names: &[String]| {
        if names.is_empty() {
            format!("{status}, no {what} attached")
        } else {
            format!("{status}, {what} attached: {}", names.join(", "))
        }
    };
    let has = |names: &[String]| names.iter().any(|n| Some(n.as_str()) == subject);
    let pending = status == CertStatus::PendingTransfer;
    Ok(match action {
        Action::Deactivate => Effect::new(Some(status != CertStatus::Active), status.as_str()),
        Action::Reactivate => Effect::new(Some(status == CertStatus::Active), status.as_str()),
        Action::DetachPolicy | Action::ReattachPolicy => {
            let names = iot.attached_policies(&info.arn).await?;
            Effect::new(
                Some(has(&names) == (action == Action::ReattachPolicy)),
                listed("policies", &names),
            )
        }
        Action::DetachThing | Action::ReattachThing => {
            let names = iot.principal_things(&info.arn).await?;
            Effect::new(
                Some(has(&names) == (action == Action::ReattachThing)),
                listed("things", &names),
            )
        }
        // Only a listing says where a pending transfer goes (see `Iot::pending_target`).
        Action::Transfer if pending => match iot.pending_target(id, described_at).await? {
            Some(to) => Effect::new(Some(to == target), format!("PENDING_TRANSFER to {to}")),
            // Listed shortly after the call, a new transfer may not show yet.
            None => Effect::new(
                None,
                "PENDING_TRANSFER, not listed by ListOutgoingCertificates yet",
            ),
        },
        // Still pending: a cancel or an accept did not happen, wherever the transfer goes
        // (no listing needed to say so).
        Action::Cancel | Action::Accept if pending => Effect::new(Some(false), status.as_str()),
        // Not pending: a transfer did not happen, a cancel did (or the target rejected).
        Action::Transfer | Action::Accept => Effect::new(Some(false), status.as_str()),
        Action::Cancel => Effect::new(Some(true), status.as_str()),
        Action::Reject
        | Action::AttachPolicy
        | Action::Register
        | Action::CreateThingType
        | Action::CreateThingGroup
        | Action::CreatePolicy
        | Action::AttachGroupPolicy
        | Action::CreateThing
        | Action::AttachThing
        | Action::AddThingToGroup
        | Action::CreateJob => Effect::new(
            None,
            format!("{status} (a target-side call: ask with the target's credentials)"),
        ),
    })
}

/// What the source account sees of a certificate it may have given away.
#[derive(Debug)]
pub enum SourceView {
    /// It is still the source's (possibly pending transfer out of it).
    Owned(CertificateInfo),
    /// The target accepted it; how the source can tell, for people.
    Gone(String),
}

/// DescribeCertificate as the source, read so that every answer AWS may give once the target
/// accepted means the same (what AWS answers is not documented): 404; 403 AccessDenied or 401
/// Unauthorized, when ListOutgoingCertificates confirms that no transfer of it is pending
/// (else the refusal is a real one and is returned); or the certificate still shown, owned
/// by another account.
pub async fn source_view(iot: &Iot, id: &str) -> Result<SourceView, CallFailure> {
    let me = &iot.scope().account;
    let refusal = match iot.describe(id).await {
        Ok(Some(info)) => match info.owner.as_deref() {
            Some(owner) if owner != me => {
                let gone = format!("owned by account {owner} now (the target accepted it)");
                return Ok(SourceView::Gone(gone));
            }
            _ => return Ok(SourceView::Owned(info)),
        },
        Ok(None) => {
            let gone = format!("not in account {me} any more (the target accepted it)");
            return Ok(SourceView::Gone(gone));
        }
        Err(f) if AFTER_ACCEPT_REFUSALS.iter().any(|c| f.is(*c)) => f,
        Err(f) => return Err(f),
    };
    match iot.pending_target(id, Instant::now()).await {
        Ok(None) => Ok(SourceView::Gone(format!(
            "no longer readable by account {me} ({}) and not among its outgoing transfers \
             (the target accepted it)",
            refusal.code().unwrap_or_default()
        ))),
        Ok(Some(_)) | Err(_) => Err(refusal),
    }
}

/// What the source's DescribeCertificate may answer, besides 404, once the target accepted.
const AFTER_ACCEPT_REFUSALS: [AwsCode; 2] = [AwsCode::AccessDenied, AwsCode::Unauthorized];

/// The target account's view (DescribeCertificate, and ListAttachedPolicies for a policy
/// attachment).
async fn target_check(
    iot: &Iot,
    id: &str,
    action: Action,
    subject: Option<&str>,
) -> Result<Effect, CallFailure> {
    let me = iot.scope().account.clone();
    let Some(info) = iot.describe(id).await? else {
        // Neither owned by nor pending to this account: rejected (or cancelled by the source).
        let seen = format!("not in account {me} and not pending to it");
        return Ok(Effect::new(Some(action == Action::Reject), seen));
    };
    let owned =
        info.owner.as_deref() == Some(me.as_str()) && info.status != CertStatus::PendingTransfer;
    if !owned {
        let seen = format!(
            "{} (owned by {})",
            info.status,
            info.owner.as_deref().unwrap_or("?")
        );
        return Ok(Effect::new(Some(false), seen));
    }
    let seen = format!("{}, owned by {me}", info.status);
    Ok(match action {
        Action::Accept | Action::Register => Effect::new(Some(true), seen),
        Action::AttachPolicy => {
            let names = iot.attached_policies(&info.arn).await?;
            let attached = names.iter().any(|n| Some(n.as_str()) == subject);
            Effect::new(
                Some(attached),
                format!("{seen}, policies attached: {}", names.join(", ")),
            )
        }
        Action::AttachThing => {
            let names = iot.principal_things(&info.arn).await?;
            let attached = names.iter().any(|n| Some(n.as_str()) == subject);
            Effect::new(
                Some(attached),
                format!("{seen}, things attached: {}", names.join(", ")),
            )
        }
        // Owned by the target: a reject did not happen.
        _ => Effect::new(Some(false), seen),
    })
}

/// What the next run will write for an open intent, given what AWS said.
pub fn next_run(action: Action, took_effect: Option<bool>) -> String {
    match took_effect {
        Some(true) => match action {
            Action::Transfer => "the next run will record it as transferred".into(),
            Action::Cancel => "the next run will record it as cancelled".into(),
            Action::Accept => "the next run will record it as accepted".into(),
            Action::Reject => "the next run will record it as rejected".into(),
            other => format!("the next run will record the {other} as done and go on"),
        },
        Some(false) => {
            format!("the {action} did not take effect; the next run will record that and go on")
        }
        None => "AWS cannot tell yet; the next run will ask again".into(),
    }
}
