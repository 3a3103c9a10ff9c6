//! The IAM permissions the tool needs, derived from the operations it paces: one table gives
//! each [`Operation`] its IAM action and the resource types IAM authorizes it on (AWS's
//! Service Authorization Reference for `iot`), and [`needs`] lists the operations each
//! command calls, with each flag that adds calls, on each side. `iam-policy` prints the
//! least-privilege policy from the two; a new operation cannot be paced without an entry
//! here (the match is exhaustive).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::certificate::partition;
use crate::pacer::Operation;

closed_set! {
    /// A resource type of the `iot` service, as IAM names it in ARNs.
    pub enum ResourceType {
        /// `cert/ID`.
        Cert = "cert",
        /// `thing/NAME`.
        Thing = "thing",
        /// `thinggroup/NAME`.
        ThingGroup = "thinggroup",
        /// `thingtype/NAME`.
        ThingType = "thingtype",
        /// `policy/NAME`.
        Policy = "policy",
        /// `cacert/ID`.
        CaCert = "cacert",
        /// `index/NAME` (the fleet index, `AWS_Things`).
        Index = "index",
        /// `job/ID`.
        Job = "job",
    }
}

/// What IAM authorizes a call on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resources {
    /// No resource type: only `"Resource": "*"` allows the action.
    Star,
    /// Every one of these (each required).
    AllOf(&'static [ResourceType]),
    /// One of these, whichever the call names (AttachPolicy: a certificate or a thing group).
    OneOf(&'static [ResourceType]),
    /// No permission at all (STS GetCallerIdentity).
    NoPermission,
}

/// The IAM action of `op` and the resources IAM authorizes it on, from the Service
/// Authorization Reference (`list_awsiot`).
pub fn authorization(op: Operation) -> (&'static str, Resources) {
    use Operation as O;
    use ResourceType as R;
    const CERT: Resources = Resources::AllOf(&[R::Cert]);
    const THING: Resources = Resources::AllOf(&[R::Thing]);
    const GROUP: Resources = Resources::AllOf(&[R::ThingGroup]);
    const TYPE: Resources = Resources::AllOf(&[R::ThingType]);
    const POLICY: Resources = Resources::AllOf(&[R::Policy]);
    let resources = match op {
        O::DescribeCertificate
        | O::UpdateCertificate
        | O::TransferCertificate
        | O::AcceptCertificateTransfer
        | O::RejectCertificateTransfer
        | O::CancelCertificateTransfer
        | O::DetachPrincipalPolicy
        // the certificate (the thing only through the condition key iot:thingArn)
        | O::AttachThingPrincipal
        | O::DetachThingPrincipal
        | O::ListPrincipalThings
        | O::ListPrincipalThingsV2 => CERT,
        O::AttachPolicy | O::DetachPolicy => Resources::OneOf(&[R::Cert, R::ThingGroup]),
        O::GetPolicy | O::CreatePolicy => POLICY,
        O::CreateThing
        | O::DescribeThing
        | O::ListThingPrincipals
        | O::ListThingGroupsForThing
        | O::GetThingConnectivityData
        | O::ListJobExecutionsForThing => THING,
        // the job, and the thing group it targets
        O::CreateJob => Resources::AllOf(&[R::Job, R::ThingGroup]),
        O::DescribeJob | O::ListJobExecutionsForJob | O::CancelJob | O::DeleteJob => {
            Resources::AllOf(&[R::Job])
        }
        O::CreateThingType | O::DescribeThingType => TYPE,
        O::CreateThingGroup
        | O::DescribeThingGroup
        | O::ListThingsInThingGroup
        | O::DeleteThingGroup => GROUP,
        O::AddThingToThingGroup => Resources::AllOf(&[R::Thing, R::ThingGroup]),
        O::DescribeCACertificate => Resources::AllOf(&[R::CaCert]),
        O::SearchIndex => Resources::AllOf(&[R::Index]),
        O::ListCertificates
        | O::ListOutgoingCertificates
        | O::ListAttachedPolicies
        | O::ListPolicies
        | O::ListPrincipalPolicies
        | O::ListThings
        | O::ListCertificatesByCA
        | O::RegisterCertificate
        | O::RegisterCertificateWithoutCA
        | O::DescribeEndpoint
        | O::GetIndexingConfiguration
        | O::ListRoleAliases => Resources::Star,
        O::GetCallerIdentity => Resources::NoPermission,
    };
    (op.name(), resources)
}

closed_set! {
    /// A command that calls AWS.
    pub enum AwsCommand {
        /// `select`.
        Select = "select",
        /// `plan` (and `transfer --dry-run`).
        Plan = "plan",
        /// `transfer`.
        Transfer = "transfer",
        /// `cancel`.
        Cancel = "cancel",
        /// `accept`.
        Accept = "accept",
        /// `reject`.
        Reject = "reject",
        /// `register`.
        Register = "register",
        /// `retire`.
        Retire = "retire",
        /// `verify`.
        Verify = "verify",
        /// `status` (calls AWS with --reconcile or --devices only).
        Status = "status",
        /// `report` (calls AWS with --devices only).
        Report = "report",
        /// `handoff`.
        Handoff = "handoff",
    }
}

closed_set! {
    /// A flag that makes a command call more (or fewer) operations, spelled as the command
    /// spells it.
    pub enum Flag {
        /// transfer, retire: `--deactivate`.
        Deactivate = "deactivate",
        /// transfer, retire: `--detach-policies`.
        DetachPolicies = "detach-policies",
        /// transfer, retire: `--detach-things`.
        DetachThings = "detach-things",
        /// transfer: `--no-rollback` (fewer calls).
        NoRollback = "no-rollback",
        /// transfer, plan, accept, register: `--carry`.
        Carry = "carry",
        /// transfer: `--accept-profile` or `--accept-profile-template`.
        AcceptProfile = "accept-profile",
        /// plan: `--target-profile` or `--target-profile-template` (with --carry).
        TargetProfile = "target-profile",
        /// plan: `--mode register`.
        ModeRegister = "mode-register",
        /// cancel: `--restore`.
        Restore = "restore",
        /// accept: `--attach-policy`.
        AttachPolicy = "attach-policy",
        /// retire: `--undo`.
        Undo = "undo",
        /// select: `--thing-group`.
        ThingGroup = "thing-group",
        /// select: `--thing-type`.
        ThingType = "thing-type",
        /// select: `--attribute`.
        Attribute = "attribute",
        /// select: `--ca-certificate-id`.
        CaCertificateId = "ca-certificate-id",
        /// select: `--query` (or `--connected`, `--disconnected`).
        Query = "query",
        /// status: `--reconcile`.
        Reconcile = "reconcile",
        /// handoff: `--cleanup` (a run of its own).
        Cleanup = "cleanup",
        /// retire, verify: `--require-connected`.
        RequireConnected = "require-connected",
        /// transfer: `--require-handoff`.
        RequireHandoff = "require-handoff",
        /// status, report: `--devices`.
        Devices = "devices",
    }
}

impl AwsCommand {
    /// The flags of this command that change what it calls.
    pub fn flags(self) -> &'static [Flag] {
        use Flag as F;
        match self {
            AwsCommand::Select => &[
                F::ThingGroup,
                F::ThingType,
                F::Attribute,
                F::CaCertificateId,
                F::Query,
            ],
            AwsCommand::Plan => &[F::Carry, F::TargetProfile, F::ModeRegister],
            AwsCommand::Transfer => &[
                F::Deactivate,
                F::DetachPolicies,
                F::DetachThings,
                F::NoRollback,
                F::Carry,
                F::AcceptProfile,
                F::RequireHandoff,
            ],
            AwsCommand::Cancel => &[F::Restore],
            AwsCommand::Accept => &[F::AttachPolicy, F::Carry],
            AwsCommand::Reject => &[],
            AwsCommand::Verify => &[F::RequireConnected],
            AwsCommand::Register => &[F::Carry],
            AwsCommand::Retire => &[
                F::Deactivate,
                F::DetachPolicies,
                F::DetachThings,
                F::Undo,
                F::RequireConnected,
            ],
            AwsCommand::Status => &[F::Reconcile, F::Devices],
            AwsCommand::Report => &[F::Devices],
            AwsCommand::Handoff => &[F::Cleanup],
        }
    }
}

/// Which account a call is made in: the account the certificates leave (`--profile`), or
/// the accounts they go to (`--target-profile(-template)`, `--accept-profile(-template)`, or
/// `--profile` for `accept` and `reject`).
pub use crate::lifecycle::check::Side;

/// One call a command makes: the operation, and for an operation IAM authorizes on one of
/// several resource types, the one it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    /// The operation.
    pub op: Operation,
    /// The resource type, for [`Resources::OneOf`] operations.
    pub on: Option<ResourceType>,
}

fn uses(ops: &[Operation]) -> impl Iterator<Item = Use> + '_ {
    ops.iter().map(|&op| Use { op, on: None })
}

fn on(op: Operation, r: ResourceType) -> Use {
    Use { op, on: Some(r) }
}

/// The calls of each side, for the commands and flags asked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    /// By side.
    pub sides: BTreeMap<Side, BTreeSet<Use>>,
}

impl Needs {
    fn add(&mut self, side: Side, calls: impl IntoIterator<Item = Use>) {
        self.sides.entry(side).or_default().extend(calls);
    }
}

use Operation as O;

/// What observing a certificate reads (every workflow's first look, and plan's).
const OBSERVE: &[Operation] = &[
    O::DescribeCertificate,
    O::ListAttachedPolicies,
    O::ListPrincipalThings,
];

/// What settling an open intent, or checking an unknown outcome, reads in the source.
const SOURCE_CHECK: &[Operation] = &[
    O::DescribeCertificate,
    O::ListAttachedPolicies,
    O::ListPrincipalThings,
    O::ListOutgoingCertificates,
];

/// What seeing a device in the target reads: whether connectivity is indexed there, then
/// each thing's connectivity.
const CONNECTIVITY: &[Operation] = &[O::GetIndexingConfiguration, O::GetThingConnectivityData];

/// `status --devices`, `report --devices`: each certificate's things (its snapshot, else
/// attached to it in the target when the target holds it, else in the source), each
/// thing's execution of the handoff job in the source, its device's connectivity in the
/// target.
fn devices(n: &mut Needs) {
    n.add(
        Side::Source,
        uses(&[O::ListPrincipalThings, O::ListJobExecutionsForThing]),
    );
    n.add(
        Side::Target,
        uses(&[O::DescribeCertificate, O::ListPrincipalThings]),
    );
    n.add(Side::Target, uses(CONNECTIVITY));
}

/// What the same reads in the target.
const TARGET_CHECK: &[Operation] = &[
    O::DescribeCertificate,
    O::ListAttachedPolicies,
    O::ListPrincipalThings,
];

/// What taking a snapshot of what a certificate carries reads (transfer --carry, register
/// --carry, plan --carry).
const SNAPSHOT: &[Operation] = &[
    O::ListPrincipalThingsV2,
    O::DescribeThing,
    O::ListThingGroupsForThing,
    O::DescribeThingGroup,
    O::ListAttachedPolicies,
    O::GetPolicy,
    O::DescribeThingType,
];

/// What rebuilding it in the target reads (and what checking one of its steps reads).
const REBUILD_READS: &[Operation] = &[
    O::DescribeThingType,
    O::DescribeThingGroup,
    O::GetPolicy,
    O::ListAttachedPolicies,
    O::DescribeThing,
    O::ListPrincipalThings,
    O::ListThingGroupsForThing,
    // the device endpoint in the summary
    O::DescribeEndpoint,
];

/// Putting back what prepare or retire changed: re-attach (a refused re-attach is told
/// apart from a vanished policy or thing with GetPolicy / DescribeThing), re-activate.
fn restore(needs: &mut Needs, policies: bool, things: bool, status: bool) {
    if policies {
        needs.add(
            Side::Source,
            [
                on(O::AttachPolicy, ResourceType::Cert),
                Use {
                    op: O::GetPolicy,
                    on: None,
                },
            ],
        );
    }
    if things {
        needs.add(
            Side::Source,
            uses(&[O::AttachThingPrincipal, O::DescribeThing]),
        );
    }
    if status {
        needs.add(Side::Source, uses(&[O::UpdateCertificate]));
    }
}

/// The target side of `accept --carry` and `register --carry`.
fn rebuild(needs: &mut Needs) {
    needs.add(Side::Target, uses(REBUILD_READS));
    needs.add(
        Side::Target,
        uses(&[
            O::CreateThingType,
            O::CreateThingGroup,
            O::CreatePolicy,
            O::CreateThing,
            O::AttachThingPrincipal,
            O::AddThingToThingGroup,
        ]),
    );
    needs.add(
        Side::Target,
        [
            on(O::AttachPolicy, ResourceType::Cert),
            on(O::AttachPolicy, ResourceType::ThingGroup),
        ],
    );
}

/// Every call `command` makes with `flags` (those it does not take are ignored), on each
/// side. STS GetCallerIdentity, which every command makes, needs no permission.
pub fn needs(command: AwsCommand, flags: &BTreeSet<Flag>) -> Needs {
    let has = |f: Flag| flags.contains(&f) && command.flags().contains(&f);
    let mut n = Needs::default();
    match command {
        AwsCommand::Select => {
            let listing = if has(Flag::CaCertificateId) {
                O::ListCertificatesByCA
            } else {
                O::ListCertificates
            };
            n.add(Side::Source, uses(&[listing]));
            if has(Flag::ThingGroup) {
                n.add(Side::Source, uses(&[O::ListThingsInThingGroup]));
            }
            if has(Flag::ThingType) || has(Flag::Attribute) {
                n.add(Side::Source, uses(&[O::ListThings]));
            }
            if has(Flag::ThingType) {
                // the type exists, and whether AWS's attribute filter can see the attribute
                // on its things
                n.add(Side::Source, uses(&[O::DescribeThingType]));
            }
            if has(Flag::Query) {
                // the index must be on before any query; then every page of the search
                n.add(
                    Side::Source,
                    uses(&[O::GetIndexingConfiguration, O::SearchIndex]),
                );
            }
            if has(Flag::ThingGroup)
                || has(Flag::ThingType)
                || has(Flag::Attribute)
                || has(Flag::Query)
            {
                n.add(
                    Side::Source,
                    uses(&[O::ListThingPrincipals, O::ListPrincipalThings]),
                );
            }
        }
        AwsCommand::Plan => {
            if has(Flag::ModeRegister) {
                n.add(
                    Side::Source,
                    uses(&[
                        O::DescribeCertificate,
                        O::DescribeCACertificate,
                        O::ListRoleAliases,
                    ]),
                );
                n.add(Side::Target, uses(&[O::DescribeCertificate]));
            } else {
                n.add(Side::Source, uses(OBSERVE));
                n.add(Side::Source, uses(&[O::ListOutgoingCertificates]));
            }
            if has(Flag::Carry) {
                n.add(Side::Source, uses(OBSERVE));
                n.add(Side::Source, uses(SNAPSHOT));
                if has(Flag::TargetProfile) {
                    n.add(
                        Side::Target,
                        uses(&[
                            O::DescribeThingType,
                            O::DescribeThingGroup,
                            O::GetPolicy,
                            O::DescribeThing,
                        ]),
                    );
                }
            }
        }
        AwsCommand::Transfer => {
            n.add(Side::Source, uses(OBSERVE));
            n.add(Side::Source, uses(SOURCE_CHECK));
            n.add(Side::Source, uses(&[O::TransferCertificate]));
            let (deactivate, policies, things) = (
                has(Flag::Deactivate),
                has(Flag::DetachPolicies),
                has(Flag::DetachThings),
            );
            if deactivate {
                n.add(Side::Source, uses(&[O::UpdateCertificate]));
            }
            if policies {
                n.add(Side::Source, [on(O::DetachPolicy, ResourceType::Cert)]);
            }
            if things {
                n.add(Side::Source, uses(&[O::DetachThingPrincipal]));
            }
            if !has(Flag::NoRollback) {
                restore(&mut n, policies, things, deactivate);
            }
            if has(Flag::Carry) {
                n.add(Side::Source, uses(SNAPSHOT));
            }
            if has(Flag::RequireHandoff) {
                // the thing's executions of this manifest's handoff jobs
                n.add(Side::Source, uses(&[O::ListJobExecutionsForThing]));
            }
            if has(Flag::AcceptProfile) {
                n.add(Side::Target, uses(TARGET_CHECK));
                n.add(Side::Target, uses(&[O::AcceptCertificateTransfer]));
                if has(Flag::Carry) {
                    rebuild(&mut n);
                }
            }
        }
        AwsCommand::Cancel => {
            n.add(Side::Source, uses(SOURCE_CHECK));
            n.add(Side::Source, uses(&[O::CancelCertificateTransfer]));
            if has(Flag::Restore) {
                restore(&mut n, true, true, true);
            }
        }
        AwsCommand::Accept => {
            n.add(Side::Target, uses(TARGET_CHECK));
            n.add(Side::Target, uses(&[O::AcceptCertificateTransfer]));
            if has(Flag::AttachPolicy) {
                // GetPolicy first: a missing policy fails before anything is accepted
                n.add(
                    Side::Target,
                    [
                        on(O::AttachPolicy, ResourceType::Cert),
                        Use {
                            op: O::GetPolicy,
                            on: None,
                        },
                    ],
                );
            }
            if has(Flag::Carry) {
                rebuild(&mut n);
            }
        }
        AwsCommand::Reject => {
            n.add(Side::Target, uses(TARGET_CHECK));
            n.add(Side::Target, uses(&[O::RejectCertificateTransfer]));
        }
        AwsCommand::Register => {
            n.add(Side::Source, uses(&[O::DescribeCertificate]));
            n.add(
                Side::Target,
                uses(&[O::DescribeCertificate, O::RegisterCertificateWithoutCA]),
            );
            if has(Flag::Carry) {
                n.add(Side::Source, uses(OBSERVE));
                n.add(Side::Source, uses(SNAPSHOT));
                n.add(Side::Target, uses(TARGET_CHECK));
                rebuild(&mut n);
            }
        }
        AwsCommand::Retire => {
            // `--undo` is a run of its own; a policy may serve both runs.
            if has(Flag::Undo) {
                n.add(Side::Source, uses(SOURCE_CHECK));
                restore(&mut n, true, true, true);
            }
            let steps = [Flag::Deactivate, Flag::DetachPolicies, Flag::DetachThings];
            if !has(Flag::Undo) || steps.iter().any(|f| has(*f)) {
                n.add(Side::Target, uses(&[O::DescribeCertificate]));
                n.add(Side::Source, uses(OBSERVE));
                n.add(Side::Source, uses(SOURCE_CHECK));
                if has(Flag::Deactivate) {
                    n.add(Side::Source, uses(&[O::UpdateCertificate]));
                }
                if has(Flag::DetachPolicies) {
                    n.add(Side::Source, [on(O::DetachPolicy, ResourceType::Cert)]);
                }
                if has(Flag::DetachThings) {
                    n.add(Side::Source, uses(&[O::DetachThingPrincipal]));
                }
                if has(Flag::RequireConnected) {
                    n.add(Side::Target, uses(CONNECTIVITY));
                }
            }
        }
        AwsCommand::Verify => {
            n.add(
                Side::Source,
                uses(&[O::DescribeCertificate, O::ListOutgoingCertificates]),
            );
            n.add(Side::Target, uses(TARGET_CHECK));
            n.add(
                Side::Target,
                uses(&[
                    O::DescribeThing,
                    O::DescribeThingGroup,
                    O::ListThingGroupsForThing,
                    O::ListPrincipalThingsV2,
                ]),
            );
            // A handed-off manifest (its handoff ledger exists): each thing's execution of
            // the handoff job, the things from the source when nothing else names them.
            n.add(
                Side::Source,
                uses(&[O::ListPrincipalThings, O::ListJobExecutionsForThing]),
            );
            if has(Flag::RequireConnected) {
                n.add(Side::Target, uses(CONNECTIVITY));
            }
        }
        AwsCommand::Handoff if has(Flag::Cleanup) => {
            n.add(
                Side::Source,
                uses(&[
                    O::DescribeJob,
                    O::ListJobExecutionsForJob,
                    O::CancelJob,
                    O::DeleteJob,
                    O::DeleteThingGroup,
                ]),
            );
        }
        AwsCommand::Handoff => {
            n.add(
                Side::Source,
                uses(&[
                    O::ListPrincipalThings,
                    O::CreateThingGroup,
                    O::DescribeThingGroup,
                    O::CreateJob,
                    O::DescribeJob,
                    O::AddThingToThingGroup,
                    O::ListThingGroupsForThing,
                ]),
            );
            // the document names each target's device endpoint
            n.add(Side::Target, uses(&[O::DescribeEndpoint]));
        }
        AwsCommand::Status => {
            if has(Flag::Reconcile) {
                n.add(Side::Source, uses(SOURCE_CHECK));
                n.add(Side::Target, uses(TARGET_CHECK));
                n.add(Side::Target, uses(REBUILD_READS));
            }
            if has(Flag::Devices) {
                devices(&mut n);
            }
        }
        AwsCommand::Report => {
            if has(Flag::Devices) {
                devices(&mut n);
            }
        }
    }
    n
}

/// Where a policy applies: the partition and region its ARNs name (`*`: any region), and
/// each side's account (`*`: the account the credentials belong to, which is the only one
/// an identity policy can grant in: AWS IoT has no resource policies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyScope {
    /// The region, or `*`.
    pub region: String,
    /// The source account, or `*`.
    pub source_account: String,
    /// The target account, or `*`.
    pub target_account: String,
}

impl Default for PolicyScope {
    fn default() -> Self {
        PolicyScope {
            region: "*".into(),
            source_account: "*".into(),
            target_account: "*".into(),
        }
    }
}

/// An IAM identity policy, its keys in the order IAM's documents show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    /// `2012-10-17`.
    #[serde(rename = "Version")]
    pub version: &'static str,
    /// The statements.
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// `Allow`.
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    /// `iot:ACTION`, sorted.
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    /// The resources: one ARN pattern, several, or `*`.
    #[serde(rename = "Resource")]
    pub resource: OneOrMany,
}

/// A `Resource` value: one string, or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One ARN pattern (or `*`).
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl PolicyDocument {
    /// The statement that allows `action` (`iot:...`), if any.
    pub fn statement_of(&self, action: &str) -> Option<&Statement> {
        self.statements
            .iter()
            .find(|s| s.actions.iter().any(|a| a == action))
    }

    /// The document as IAM reads it, indented.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a policy serializes")
    }
}

/// The least-privilege identity policy for `calls`, in `account` and `region`: statements
/// grouped by the resources they name, in a stable order (actions without a resource type,
/// on `*`, last).
pub fn policy(calls: &BTreeSet<Use>, account: &str, region: &str) -> PolicyDocument {
    let arn = |r: ResourceType| {
        format!(
            "arn:{}:iot:{region}:{account}:{}/*",
            partition(region),
            r.as_str()
        )
    };
    // resources (in ResourceType order; "*" last) -> actions
    let mut statements: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut star: BTreeSet<String> = BTreeSet::new();
    for u in calls {
        let (action, resources) = authorization(u.op);
        let action = format!("iot:{action}");
        let types: Vec<ResourceType> = match resources {
            Resources::NoPermission => continue,
            Resources::Star => {
                star.insert(action);
                continue;
            }
            Resources::AllOf(types) => types.to_vec(),
            Resources::OneOf(types) => match u.on {
                Some(t) if types.contains(&t) => vec![t],
                _ => types.to_vec(),
            },
        };
        let mut types = types;
        types.sort();
        statements
            .entry(types.into_iter().map(arn).collect())
            .or_default()
            .insert(action);
    }
    // An action allowed on one resource type in one statement and on another in a second
    // (AttachPolicy on certificates and thing groups) is merged into one statement.
    let mut by_action: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (resources, actions) in &statements {
        for a in actions {
            by_action
                .entry(a.clone())
                .or_default()
                .extend(resources.iter().cloned());
        }
    }
    let mut grouped: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (action, resources) in by_action {
        grouped
            .entry(resources.into_iter().collect())
            .or_default()
            .push(action);
    }
    let mut statements: Vec<Statement> = grouped
        .into_iter()
        .map(|(mut resources, actions)| Statement {
            effect: "Allow",
            actions,
            resource: match resources.len() {
                1 => OneOrMany::One(resources.remove(0)),
                _ => OneOrMany::Many(resources),
            },
        })
        .collect();
    if !star.is_empty() {
        statements.push(Statement {
            effect: "Allow",
            actions: star.into_iter().collect(),
            resource: OneOrMany::One("*".into()),
        });
    }
    PolicyDocument {
        version: "2012-10-17",
        statements,
    }
}

/// The policies of each side for `commands` with `flags`: `(side, account, policy)`, the
/// sides no command calls left out.
pub fn policies(
    commands: &[AwsCommand],
    flags: &BTreeSet<Flag>,
    scope: &PolicyScope,
) -> Vec<(Side, String, PolicyDocument)> {
    let mut all = Needs::default();
    for c in commands {
        for (side, calls) in needs(*c, flags).sides {
            all.add(side, calls);
        }
    }
    all.sides
        .into_iter()
        .filter(|(_, calls)| {
            calls
                .iter()
                .any(|u| authorization(u.op).1 != Resources::NoPermission)
        })
        .map(|(side, calls)| {
            let account = match side {
                Side::Source => &scope.source_account,
                Side::Target => &scope.target_account,
            };
            (
                side,
                account.clone(),
                policy(&calls, account, &scope.region),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: &[Flag]) -> BTreeSet<Flag> {
        f.iter().copied().collect()
    }

    fn statement_of(policy: &PolicyDocument, action: &str) -> serde_json::Value {
        let s = policy
            .statement_of(action)
            .unwrap_or_else(|| panic!("no statement allows {action}: {}", policy.to_json()));
        serde_json::to_value(s).unwrap()
    }

    use serde_json::json;

    #[test]
    fn an_action_without_a_resource_type_is_allowed_on_star_only() {
        let p = &policies(
            &[AwsCommand::Transfer],
            &flags(&[]),
            &PolicyScope::default(),
        )[0]
        .2;
        assert_eq!(statement_of(p, "iot:ListAttachedPolicies")["Resource"], "*");
        assert_eq!(
            statement_of(p, "iot:ListOutgoingCertificates")["Resource"],
            "*"
        );
        assert_eq!(
            statement_of(p, "iot:TransferCertificate")["Resource"],
            "arn:aws:iot:*:*:cert/*"
        );
    }

    #[test]
    fn attach_and_detach_authorize_on_the_certificate_or_group_never_the_policy() {
        let scope = PolicyScope::default();
        let p = &policies(
            &[AwsCommand::Transfer],
            &flags(&[Flag::DetachPolicies, Flag::DetachThings]),
            &scope,
        )[0]
        .2;
        for action in [
            "iot:DetachPolicy",
            "iot:AttachPolicy",
            "iot:DetachThingPrincipal",
            "iot:AttachThingPrincipal",
        ] {
            assert_eq!(
                statement_of(p, action)["Resource"],
                "arn:aws:iot:*:*:cert/*",
                "{action}"
            );
        }
        let target = policies(&[AwsCommand::Accept], &flags(&[Flag::Carry]), &scope);
        let t = &target[0].2;
        assert_eq!(target[0].0, Side::Target);
        assert_eq!(
            statement_of(t, "iot:AttachPolicy")["Resource"],
            json!(["arn:aws:iot:*:*:cert/*", "arn:aws:iot:*:*:thinggroup/*"])
        );
        assert_eq!(
            statement_of(t, "iot:AddThingToThingGroup")["Resource"],
            json!(["arn:aws:iot:*:*:thing/*", "arn:aws:iot:*:*:thinggroup/*"])
        );
    }

    #[test]
    fn the_default_rollback_needs_the_undo_calls_and_no_rollback_does_not() {
        let scope = PolicyScope::default();
        let all = [Flag::Deactivate, Flag::DetachPolicies, Flag::DetachThings];
        let with = &policies(&[AwsCommand::Transfer], &flags(&all), &scope)[0].2;
        statement_of(with, "iot:AttachPolicy");
        statement_of(with, "iot:AttachThingPrincipal");
        let mut without = flags(&all);
        without.insert(Flag::NoRollback);
        let p = &policies(&[AwsCommand::Transfer], &without, &scope)[0].2;
        assert!(
            p.statement_of("iot:AttachPolicy").is_none(),
            "{}",
            p.to_json()
        );
    }

    #[test]
    fn the_partition_follows_the_region() {
        let scope = PolicyScope {
            region: "cn-north-1".into(),
            source_account: "111111111111".into(),
            target_account: "*".into(),
        };
        let p = &policies(&[AwsCommand::Transfer], &flags(&[]), &scope)[0].2;
        assert_eq!(
            statement_of(p, "iot:DescribeCertificate")["Resource"],
            "arn:aws-cn:iot:cn-north-1:111111111111:cert/*"
        );
    }

    #[test]
    fn every_command_makes_calls_that_need_permission() {
        for c in AwsCommand::ALL {
            let all: BTreeSet<Flag> = c.flags().iter().copied().collect();
            let p = policies(&[*c], &all, &PolicyScope::default());
            assert!(!p.is_empty(), "{c}");
        }
        // status without --reconcile or --devices calls nothing, nor report without --devices
        assert!(policies(&[AwsCommand::Status], &flags(&[]), &PolicyScope::default()).is_empty());
        assert!(policies(&[AwsCommand::Report], &flags(&[]), &PolicyScope::default()).is_empty());
    }
}
