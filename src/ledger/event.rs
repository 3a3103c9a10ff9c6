//! The lines of a ledger: its header, the run lines, and the events with their closed sets
//! (stage, action, outcome, how an outcome was established).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::carry::snapshot::Snapshot;
use crate::certificate::CertStatus;

closed_set! {
    /// Which command a ledger belongs to.
    pub enum LedgerKind {
        /// `transfer` and `cancel` (source account side).
        Transfer = "transfer",
        /// `accept` and `reject` (target account side).
        Accept = "accept",
        /// `register` (the target side of a zero-downtime move).
        Register = "register",
        /// `retire` (the source side, after the devices moved to the registered copy).
        Retire = "retire",
        /// `handoff` (the source side: a job tells each device its new endpoint).
        Handoff = "handoff",
    }
}

/// First line of every ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// [`super::FORMAT_VERSION`].
    pub format: u32,
    /// Which command writes this ledger.
    pub kind: LedgerKind,
    /// Always `iot-cert-migrate`.
    pub tool: String,
    /// Version of the tool that created the ledger.
    pub tool_version: String,
    /// Path of the manifest as given when the ledger was created.
    pub manifest: String,
    /// SHA-256 of the manifest's bytes when the ledger was created.
    pub manifest_sha256: String,
    /// RFC 3339 time of creation.
    pub started_at: String,
}

/// A line written at the start of every run (the first run too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStart {
    /// Run number, 1 for the run that created the ledger.
    pub run: u32,
    /// RFC 3339 time.
    pub ts: String,
    /// Process id of the run.
    pub pid: u32,
    /// Tool version of this run.
    pub tool_version: String,
    /// SHA-256 of the manifest this run read.
    pub manifest_sha256: String,
    /// The account of the run's credentials (absent in ledgers of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The run's default region: that of the manifest rows without one (absent in ledgers
    /// of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The account and default region a ledger's runs act in, as its latest run line that names
/// them says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The account of the credentials.
    pub account: String,
    /// The default region (rows without a region column).
    pub region: String,
}

closed_set! {
    /// The stage of the lifecycle an event belongs to.
    pub enum Stage {
        /// Deactivate and detach before the transfer.
        Prepare = "prepare",
        /// TransferCertificate.
        Transfer = "transfer",
        /// CancelCertificateTransfer.
        Cancel = "cancel",
        /// Undo of prepare after a cancel.
        Restore = "restore",
        /// AcceptCertificateTransfer (and target-side policy attachment).
        Accept = "accept",
        /// RejectCertificateTransfer.
        Reject = "reject",
        /// Rebuilding in the target what the certificate carried (after accept).
        Carry = "carry",
        /// RegisterCertificateWithoutCA in the target.
        Register = "register",
        /// Retiring the source's copy after `register`.
        Retire = "retire",
        /// Handing the devices their new endpoint (handoff).
        Handoff = "handoff",
    }
}

closed_set! {
    /// A mutating AWS call; intents and their outcomes name one.
    pub enum Action {
        /// UpdateCertificate INACTIVE.
        Deactivate = "deactivate",
        /// DetachPolicy.
        DetachPolicy = "detach_policy",
        /// DetachThingPrincipal.
        DetachThing = "detach_thing",
        /// TransferCertificate.
        Transfer = "transfer",
        /// CancelCertificateTransfer.
        Cancel = "cancel",
        /// AttachPolicy of a policy that prepare detached.
        ReattachPolicy = "reattach_policy",
        /// AttachThingPrincipal of a thing that prepare detached.
        ReattachThing = "reattach_thing",
        /// UpdateCertificate ACTIVE of a certificate that prepare deactivated.
        Reactivate = "reactivate",
        /// AcceptCertificateTransfer.
        Accept = "accept",
        /// RejectCertificateTransfer.
        Reject = "reject",
        /// AttachPolicy on the target side after accept.
        AttachPolicy = "attach_policy",
        /// CreateThingType (carry).
        CreateThingType = "create_thing_type",
        /// CreateThingGroup (carry).
        CreateThingGroup = "create_thing_group",
        /// CreatePolicy (carry).
        CreatePolicy = "create_policy",
        /// AttachPolicy to a thing group (carry).
        AttachGroupPolicy = "attach_group_policy",
        /// CreateThing (carry).
        CreateThing = "create_thing",
        /// AttachThingPrincipal on the target side (carry).
        AttachThing = "attach_thing",
        /// AddThingToThingGroup (carry).
        AddThingToGroup = "add_thing_to_group",
        /// RegisterCertificateWithoutCA in the target (register).
        Register = "register",
        /// CreateJob of a handoff wave (subject: the job id; group: the wave's group).
        CreateJob = "create_job",
    }
}

closed_set! {
    /// What an event says happened.
    pub enum Outcome {
        /// A mutating call is about to be sent.
        Intent = "intent",
        /// The call took effect (answered, or found so by reconciliation).
        Done = "done",
        /// The call did not take effect (refused, or found so by reconciliation).
        NotDone = "not_done",
        /// The call's outcome is unknown (timeout, reset, 5xx); reconciliation follows.
        Unknown = "unknown",
        /// Terminal: the certificate is pending transfer to its target.
        Transferred = "transferred",
        /// Terminal: the item failed; details say where and why.
        Failed = "failed",
        /// Terminal (cancel): the transfer was cancelled; the certificate is back, INACTIVE.
        Cancelled = "cancelled",
        /// Terminal (cancel --restore): prepare was undone.
        Restored = "restored",
        /// Terminal (cancel): the target had already accepted; nothing to cancel.
        AlreadyAccepted = "already_accepted",
        /// Terminal (accept): the target owns the certificate.
        Accepted = "accepted",
        /// Terminal (reject): the certificate went back to the source.
        Rejected = "rejected",
        /// Terminal (register): the target holds its own copy of the certificate.
        Registered = "registered",
        /// Terminal (retire): the source's copy is retired as the flags asked.
        Retired = "retired",
        /// Not a change: what the certificate carries, read before prepare changed anything
        /// (`transfer --carry`); `details.snapshot` holds it.
        Snapshot = "snapshot",
        /// The certificate's things are in their wave's group, whose job tells them their
        /// target's endpoint (handoff).
        HandedOff = "handed_off",
        /// The tool refused the certificate before changing anything in AWS, for a reason the
        /// operator fixes with an option (a flag, a policy in the target, the right account):
        /// `details.waiting_for` and `details.needs` say which. The same command with it
        /// takes the certificate; no `--retry-failed` needed.
        Waiting = "waiting",
    }
}

closed_set! {
    /// What a certificate the tool refused without changing anything waits for.
    pub enum Wait {
        /// A flag the change it needs requires (`--deactivate`, `--detach-policies`,
        /// `--detach-things`).
        Flags = "flags",
        /// A policy to attach in the target (`accept --attach-policy`) that does not exist
        /// there.
        TargetPolicy = "target_policy",
        /// The source account's credentials (or its region): the certificate is not in the
        /// caller's account in this region.
        SourceAccount = "source_account",
        /// Its registration in the target (`retire` before `register`).
        Registration = "registration",
        /// A snapshot of what it carries (`accept --carry` of a certificate `transfer
        /// --carry` did not record).
        Snapshot = "snapshot",
    }
}

impl Wait {
    /// What to do, for people, given what the certificates waiting for this need (`needs`:
    /// the flags, the policies, the accounts, merged).
    pub fn fix(self, needs: &[String]) -> String {
        let list = needs.join(", ");
        match self {
            Wait::Flags => format!(
                "run the same command with {} (deactivating disconnects the devices using a certificate)",
                needs.join(" ")
            ),
            Wait::TargetPolicy => format!(
                "create {list}, or leave it out of --attach-policy, then run the same command"
            ),
            Wait::SourceAccount => format!(
                "they are not in {list}: use the source account's credentials (--profile) and the certificates' region (--region, or the manifest's region column)"
            ),
            Wait::Registration => {
                "register them in their target first (`register`), then run the same command".into()
            }
            Wait::Snapshot => format!(
                "nothing recorded what they carry ({list}): name the ledger of `transfer --carry` with --from-ledger, or accept them without --carry"
            ),
        }
    }
}

closed_set! {
    /// How an outcome was established.
    pub enum Via {
        /// The call answered.
        Call = "call",
        /// Prepare found the certificate already pending to its target: no call was sent.
        AlreadyPending = "already_pending",
        /// An unknown outcome, or an intent an earlier run left open, was checked against AWS.
        Reconciled = "reconciled",
        /// The target had accepted already (AWS said so, or the certificate was gone).
        AlreadyAccepted = "already_accepted",
        /// Cancel found the transfer no longer pending (cancelled or rejected meanwhile).
        NotPending = "not_pending",
    }
}

/// Optional facts attached to an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// Intent: the action about to be taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Policy concerned (detach / attach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Thing concerned (detach / attach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing: Option<String>,
    /// Thing type concerned (carry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_type: Option<String>,
    /// Thing group concerned (carry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Status before prepare changed it (for restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<CertStatus>,
    /// ARN returned by TransferCertificate, or of the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// How an outcome was established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// AWS error code of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// HTTP status of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Attempts made for the failing call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// A failure that may go away by itself (timeouts, 5xx, throttling beyond
    /// --max-throttle-wait): the next run tries the item again without --retry-failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// The stage a failure happened in (on `failed` events of other stages' items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<Stage>,
    /// On a `failed` event: `true` when what prepare changed was undone (the devices are
    /// back), `false` when changes are left; absent when nothing had been changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<bool>,
    /// On an `accepted` event: what the certificate carried was rebuilt too (`--carry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<bool>,
    /// On a `snapshot` event: what the certificate carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Box<Snapshot>>,
    /// On a `waiting` event: what the certificate waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<Wait>,
    /// On a `waiting` event: what exactly (the flags, the policy, the account and region).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
}

impl Details {
    fn is_empty(&self) -> bool {
        *self == Details::default()
    }
}

/// One line of the ledger after the header: something that happened to one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 time, milliseconds.
    pub ts: String,
    /// Certificate id (64 hex, lowercase).
    pub id: String,
    /// Target account of the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Region, when the manifest names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Lifecycle stage.
    pub stage: Stage,
    /// What happened.
    pub outcome: Outcome,
    /// Facts that go with it.
    #[serde(default, skip_serializing_if = "Details::is_empty")]
    pub details: Details,
}

impl Event {
    /// A new event stamped with the current time.
    pub fn new(
        id: &str,
        target: Option<&str>,
        region: Option<&str>,
        stage: Stage,
        outcome: Outcome,
    ) -> Self {
        Event {
            ts: now_rfc3339(),
            id: id.to_string(),
            target: target.map(str::to_string),
            region: region.map(str::to_string),
            stage,
            outcome,
            details: Details::default(),
        }
    }

    /// The same event with these details.
    pub fn with(mut self, details: Details) -> Self {
        self.details = details;
        self
    }
}

/// Current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
