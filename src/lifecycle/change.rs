//! The changes the tool makes to a certificate: each knows its ledger action and details, its
//! stage, and the IoT call that makes it.

use crate::carry::snapshot::{CarriedGroup, CarriedThing, CarriedThingType};
use crate::certificate::CertStatus;
use crate::iot::{CallFailure, Iot};
use crate::ledger::{Action, Details, OpenIntent, Stage, Undo};
use crate::manifest::ManifestRow;
use crate::pacer::Operation;

/// The destructive steps the operator allowed on a source certificate: prepare's before a
/// transfer, retire's after a registration (`--deactivate`, `--detach-policies`,
/// `--detach-things`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrepareSteps {
    /// Deactivate ACTIVE certificates.
    pub deactivate: bool,
    /// Detach attached policies.
    pub detach_policies: bool,
    /// Detach attached things.
    pub detach_things: bool,
}

/// A handoff wave's job: its deterministic id, the group it targets, the document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WaveJob {
    /// The job id (deterministic: a resend is refused 409, and checked).
    pub id: String,
    /// The wave's static thing group in the source.
    pub group: String,
    /// The job document, placeholders filled in for the wave's target.
    pub document: String,
    /// Rollout, abort and timeout.
    pub settings: crate::iot::JobSettings,
}

/// One mutating call on one certificate, with its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// UpdateCertificate INACTIVE of an ACTIVE certificate (prepare).
    Deactivate,
    /// DetachPolicy (prepare).
    DetachPolicy(String),
    /// DetachThingPrincipal (prepare).
    DetachThing(String),
    /// TransferCertificate to the row's target account.
    Transfer,
    /// CancelCertificateTransfer.
    Cancel,
    /// AttachPolicy of a policy that prepare detached (restore).
    ReattachPolicy(String),
    /// AttachThingPrincipal of a thing that prepare detached (restore).
    ReattachThing(String),
    /// UpdateCertificate ACTIVE of a certificate that prepare deactivated (restore).
    Reactivate,
    /// AcceptCertificateTransfer (target side).
    Accept {
        /// Activate on accept.
        set_as_active: bool,
    },
    /// RejectCertificateTransfer (target side).
    Reject {
        /// Why; the source account sees it.
        reason: String,
    },
    /// AttachPolicy after accept (target side).
    AttachPolicy(String),
    /// CreateThingType of a carried type (carry).
    CreateThingType(CarriedThingType),
    /// CreateThingGroup of a carried static group, its parent created first (carry).
    CreateThingGroup(CarriedGroup),
    /// CreatePolicy of a carried policy, its document rewritten for the target (carry).
    CreatePolicy {
        /// Policy name.
        name: String,
        /// The document, ARNs naming the target account.
        document: String,
    },
    /// AttachPolicy of a carried policy to a thing group (carry).
    AttachGroupPolicy {
        /// Policy name.
        policy: String,
        /// Thing group name.
        group: String,
    },
    /// CreateThing of a carried thing (carry).
    CreateThing(CarriedThing),
    /// AttachThingPrincipal of a carried thing to the certificate (carry).
    AttachThing(String),
    /// AttachThingPrincipal of a carried thing the source had attached exclusively
    /// (`thingPrincipalType` EXCLUSIVE_THING) (carry).
    AttachThingExclusively(String),
    /// AddThingToThingGroup of a carried thing (carry).
    AddThingToGroup {
        /// Thing name.
        thing: String,
        /// Thing group name.
        group: String,
    },
    /// CreateJob of a handoff wave, aimed at the wave's thing group (handoff).
    CreateJob(WaveJob),
    /// RegisterCertificateWithoutCA of the source's certificate in the target (register).
    Register {
        /// The certificate, PEM.
        pem: String,
        /// Its status in the target.
        status: CertStatus,
    },
}

impl Change {
    /// The change an open intent names (enough to check whether it took effect).
    pub fn of_intent(open: &OpenIntent) -> Change {
        let subject = || open.subject.clone().unwrap_or_default();
        let group = || open.group.clone().unwrap_or_default();
        match open.action {
            Action::Deactivate => Change::Deactivate,
            Action::DetachPolicy => Change::DetachPolicy(subject()),
            Action::DetachThing => Change::DetachThing(subject()),
            Action::Transfer => Change::Transfer,
            Action::Cancel => Change::Cancel,
            Action::ReattachPolicy => Change::ReattachPolicy(subject()),
            Action::ReattachThing => Change::ReattachThing(subject()),
            Action::Reactivate => Change::Reactivate,
            Action::Accept => Change::Accept {
                set_as_active: false,
            },
            Action::Reject => Change::Reject {
                reason: String::new(),
            },
            Action::AttachPolicy => Change::AttachPolicy(subject()),
            // Enough to ask whether it took effect: the definitions are the snapshot's.
            Action::CreateThingType => Change::CreateThingType(CarriedThingType {
                name: subject(),
                ..Default::default()
            }),
            Action::CreateThingGroup => Change::CreateThingGroup(CarriedGroup {
                name: group(),
                ..Default::default()
            }),
            Action::CreatePolicy => Change::CreatePolicy {
                name: subject(),
                document: String::new(),
            },
            Action::AttachGroupPolicy => Change::AttachGroupPolicy {
                policy: subject(),
                group: group(),
            },
            Action::CreateThing => Change::CreateThing(CarriedThing {
                name: subject(),
                ..Default::default()
            }),
            Action::AttachThing => Change::AttachThing(subject()),
            Action::Register => Change::Register {
                pem: String::new(),
                status: open.previous_status.clone().unwrap_or(CertStatus::Active),
            },
            Action::AddThingToGroup => Change::AddThingToGroup {
                thing: subject(),
                group: group(),
            },
            // The ledger keeps the job id as the message, which an intent does not carry; a
            // wave's job is named as its group.
            Action::CreateJob => Change::CreateJob(WaveJob {
                id: open.subject.clone().unwrap_or_else(group),
                group: group(),
                ..Default::default()
            }),
        }
    }

    /// The ledger's name for the call.
    pub fn action(&self) -> Action {
        match self {
            Change::Deactivate => Action::Deactivate,
            Change::DetachPolicy(_) => Action::DetachPolicy,
            Change::DetachThing(_) => Action::DetachThing,
            Change::Transfer => Action::Transfer,
            Change::Cancel => Action::Cancel,
            Change::ReattachPolicy(_) => Action::ReattachPolicy,
            Change::ReattachThing(_) => Action::ReattachThing,
            Change::Reactivate => Action::Reactivate,
            Change::Accept { .. } => Action::Accept,
            Change::Reject { .. } => Action::Reject,
            Change::AttachPolicy(_) => Action::AttachPolicy,
            Change::CreateThingType(_) => Action::CreateThingType,
            Change::CreateThingGroup(_) => Action::CreateThingGroup,
            Change::CreatePolicy { .. } => Action::CreatePolicy,
            Change::AttachGroupPolicy { .. } => Action::AttachGroupPolicy,
            Change::CreateThing(_) => Action::CreateThing,
            Change::AttachThing(_) | Change::AttachThingExclusively(_) => Action::AttachThing,
            Change::AddThingToGroup { .. } => Action::AddThingToGroup,
            Change::Register { .. } => Action::Register,
            Change::CreateJob(_) => Action::CreateJob,
        }
    }

    /// The policy, thing or thing type the change concerns.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Change::DetachPolicy(s)
            | Change::DetachThing(s)
            | Change::ReattachPolicy(s)
            | Change::ReattachThing(s)
            | Change::AttachPolicy(s)
            | Change::AttachThing(s)
            | Change::AttachThingExclusively(s) => Some(s),
            Change::CreateThingType(t) => Some(&t.name),
            Change::CreatePolicy { name, .. } => Some(name),
            Change::AttachGroupPolicy { policy, .. } => Some(policy),
            Change::CreateThing(t) => Some(&t.name),
            Change::AddThingToGroup { thing, .. } => Some(thing),
            Change::CreateJob(j) => Some(&j.id),
            _ => None,
        }
    }

    /// The thing group the change concerns (carry).
    pub fn group(&self) -> Option<&str> {
        match self {
            Change::CreateThingGroup(g) => Some(&g.name),
            Change::CreateJob(j) => Some(&j.group),
            Change::AttachGroupPolicy { group, .. } | Change::AddThingToGroup { group, .. } => {
                Some(group)
            }
            _ => None,
        }
    }

    /// The lifecycle stage the change belongs to.
    pub fn stage(&self) -> Stage {
        match self {
            Change::Deactivate | Change::DetachPolicy(_) | Change::DetachThing(_) => Stage::Prepare,
            Change::Transfer => Stage::Transfer,
            Change::Cancel => Stage::Cancel,
            Change::ReattachPolicy(_) | Change::ReattachThing(_) | Change::Reactivate => {
                Stage::Restore
            }
            Change::Accept { .. } | Change::AttachPolicy(_) => Stage::Accept,
            Change::Reject { .. } => Stage::Reject,
            Change::CreateThingType(_)
            | Change::CreateThingGroup(_)
            | Change::CreatePolicy { .. }
            | Change::AttachGroupPolicy { .. }
            | Change::CreateThing(_)
            | Change::AttachThing(_)
            | Change::AttachThingExclusively(_)
            | Change::AddThingToGroup { .. } => Stage::Carry,
            Change::Register { .. } => Stage::Register,
            Change::CreateJob(_) => Stage::Handoff,
        }
    }

    /// The details its intent (and its outcome) carry: what `cancel --restore` needs to
    /// know to undo it.
    pub fn details(&self) -> Details {
        let mut d = Details {
            action: Some(self.action()),
            ..Default::default()
        };
        match self {
            Change::Deactivate => d.previous_status = Some(CertStatus::Active),
            Change::Reactivate => d.previous_status = Some(CertStatus::Inactive),
            Change::DetachPolicy(p) | Change::ReattachPolicy(p) | Change::AttachPolicy(p) => {
                d.policy = Some(p.clone())
            }
            Change::DetachThing(t)
            | Change::ReattachThing(t)
            | Change::AttachThing(t)
            | Change::AttachThingExclusively(t) => d.thing = Some(t.clone()),
            Change::Reject { reason } => d.message = Some(reason.clone()),
            Change::Transfer | Change::Cancel | Change::Accept { .. } | Change::Register { .. } => {
            }
            Change::CreateThingType(t) => d.thing_type = Some(t.name.clone()),
            Change::CreateThingGroup(g) => d.group = Some(g.name.clone()),
            Change::CreatePolicy { name, .. } => d.policy = Some(name.clone()),
            Change::AttachGroupPolicy { policy, group } => {
                d.policy = Some(policy.clone());
                d.group = Some(group.clone());
            }
            Change::CreateThing(t) => d.thing = Some(t.name.clone()),
            Change::AddThingToGroup { thing, group } => {
                d.thing = Some(thing.clone());
                d.group = Some(group.clone());
            }
            Change::CreateJob(j) => {
                d.message = Some(j.id.clone());
                d.group = Some(j.group.clone());
            }
        }
        d
    }

    /// The AWS operation that makes the change (whose pacer slot it waits for).
    pub fn operation(&self) -> Operation {
        match self {
            Change::Deactivate | Change::Reactivate => Operation::UpdateCertificate,
            Change::DetachPolicy(_) => Operation::DetachPolicy,
            Change::DetachThing(_) => Operation::DetachThingPrincipal,
            Change::ReattachPolicy(_) | Change::AttachPolicy(_) => Operation::AttachPolicy,
            Change::AttachGroupPolicy { .. } => Operation::AttachPolicy,
            Change::ReattachThing(_)
            | Change::AttachThing(_)
            | Change::AttachThingExclusively(_) => Operation::AttachThingPrincipal,
            Change::CreateThingType(_) => Operation::CreateThingType,
            Change::CreateThingGroup(_) => Operation::CreateThingGroup,
            Change::CreatePolicy { .. } => Operation::CreatePolicy,
            Change::CreateThing(_) => Operation::CreateThing,
            Change::AddThingToGroup { .. } => Operation::AddThingToThingGroup,
            Change::Register { .. } => Operation::RegisterCertificateWithoutCA,
            Change::CreateJob(_) => Operation::CreateJob,
            Change::Cancel => Operation::CancelCertificateTransfer,
            Change::Accept { .. } => Operation::AcceptCertificateTransfer,
            Change::Reject { .. } => Operation::RejectCertificateTransfer,
            Change::Transfer => Operation::TransferCertificate,
        }
    }

    /// Sends the call for `row`'s certificate, whose ARN in `iot`'s account is `arn`.
    /// TransferCertificate returns the ARN the certificate will have in the target.
    pub async fn send(
        &self,
        iot: &Iot,
        row: &ManifestRow,
        arn: &str,
    ) -> Result<Option<String>, CallFailure> {
        let id = row.certificate_id.as_str();
        match self {
            Change::Deactivate => iot.update_status(id, &CertStatus::Inactive).await,
            Change::Reactivate => iot.update_status(id, &CertStatus::Active).await,
            Change::DetachPolicy(p) => iot.detach_policy(p, arn).await,
            Change::DetachThing(t) => iot.detach_thing(t, arn).await,
            Change::ReattachPolicy(p) | Change::AttachPolicy(p) => iot.attach_policy(p, arn).await,
            Change::ReattachThing(t) | Change::AttachThing(t) => iot.attach_thing(t, arn).await,
            Change::AttachThingExclusively(t) => iot.attach_thing_as(t, arn, true).await,
            Change::CreateThingType(t) => iot.create_thing_type(t).await,
            Change::CreateThingGroup(g) => iot.create_thing_group(g).await,
            Change::CreatePolicy { name, document } => iot.create_policy(name, document).await,
            Change::AttachGroupPolicy { policy, group } => {
                iot.attach_policy(policy, &iot.group_arn(group)).await
            }
            Change::CreateThing(t) => iot.create_thing(t).await,
            Change::AddThingToGroup { thing, group } => iot.add_thing_to_group(thing, group).await,
            Change::CreateJob(j) => {
                iot.create_job(&j.id, &iot.group_arn(&j.group), &j.document, &j.settings)
                    .await
            }
            Change::Register { pem, status } => {
                return iot.register_without_ca(pem, status).await.map(Some)
            }
            Change::Cancel => iot.cancel(id).await,
            Change::Accept { set_as_active } => iot.accept(id, *set_as_active).await,
            Change::Reject { reason } => iot.reject(id, Some(reason)).await,
            Change::Transfer => {
                return iot
                    .transfer(id, &row.target_account, row.transfer_message.as_deref())
                    .await
                    .map(Some)
            }
        }
        .map(|()| None)
    }
}

/// What prepare changes on a certificate, in order: deactivate, then detach every policy and
/// every thing.
pub fn prepare_changes(active: bool, policies: &[String], things: &[String]) -> Vec<Change> {
    let deactivate = active.then_some(Change::Deactivate);
    deactivate
        .into_iter()
        .chain(policies.iter().cloned().map(Change::DetachPolicy))
        .chain(things.iter().cloned().map(Change::DetachThing))
        .collect()
}

/// What undoes what prepare changed, in order: re-attach the policies and things, then
/// re-activate (last, so that devices reconnect to a certificate that has everything back).
pub fn restore_changes(undo: &Undo) -> Vec<Change> {
    let reactivate =
        (undo.previous_status == Some(CertStatus::Active)).then_some(Change::Reactivate);
    undo.policies
        .iter()
        .cloned()
        .map(Change::ReattachPolicy)
        .chain(undo.things.iter().cloned().map(Change::ReattachThing))
        .chain(reactivate)
        .collect()
}
