//! Configuration of a simulator instance: listen address, quotas, latency,
//! faults and the initial seed data.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::access::{CredentialChange, DenyRule, OutageMode};
use crate::behaviour::{
    Behaviour, CompletedTransferAnswer, OutgoingArnAccount, PendingTransferAnswer,
    SourceAfterAccept,
};
use crate::iam::IamPolicy;
use crate::sts::SeedRole;
use crate::world::MAX_POLICIES_PER_TARGET;

/// The account used when the caller's access key id is not exactly 12 digits.
pub const DEFAULT_ACCOUNT: &str = "111111111111";

/// The region used when a request carries no SigV4 `Authorization` header.
pub const DEFAULT_REGION: &str = "us-east-1";

/// How long a `timeout` fault holds a request by default.
pub const DEFAULT_TIMEOUT_HOLD: Duration = Duration::from_secs(60);

/// Everything a simulator instance needs to start.
///
/// `Default` gives the documented AWS quotas (`quota_scale` 1.0), no latency,
/// no faults, listening on `127.0.0.1:0` (an ephemeral port).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port (see [`crate::SimHandle::addr`]).
    pub listen: SocketAddr,
    /// Account of callers whose access key id is not exactly 12 digits.
    pub default_account: String,
    /// Multiplier applied to every documented per-operation TPS quota; 0 = unlimited.
    pub quota_scale: f64,
    /// Per-operation TPS overrides (operation name as in the API, e.g.
    /// `TransferCertificate`), absolute (not multiplied by `quota_scale`); 0 = unlimited.
    pub quotas: HashMap<String, f64>,
    /// How many seconds of calls a caller may send at once before the quota throttles it
    /// (a token bucket's size). AWS does not document its burst; 1 s is the default, and a
    /// smaller one is stricter.
    pub quota_burst: Duration,
    /// Latency added to every operation response.
    pub latency: Duration,
    /// Uniform random extra latency in `[0, latency_jitter]`.
    pub latency_jitter: Duration,
    /// Faults to inject, each with its probability per request (checked in this order).
    pub faults: Vec<(FaultKind, f64)>,
    /// How long a `timeout` fault holds the request before closing the connection.
    pub timeout_hold: Duration,
    /// When true (the default), TransferCertificate refuses a certificate with
    /// things attached (TransferConflictException 409).
    pub things_block_transfer: bool,
    /// Data loaded at start, in order.
    pub seeds: Vec<Seed>,
    /// Access keys that start expired or revoked (changeable at run time).
    pub credentials: Vec<CredentialChange>,
    /// IAM-like deny rules (changeable at run time).
    pub deny: Vec<DenyRule>,
    /// The outage switch at start (changeable at run time).
    pub outage: OutageMode,
    /// For this long after a DetachPolicy / DetachThingPrincipal the item
    /// still counts as attached (TransferCertificate 409, listed). Default 0.
    pub propagation_delay: Duration,
    /// UNCONFIRMED: the source's DescribeCertificate after the target accepted.
    pub source_after_accept: SourceAfterAccept,
    /// With `source_after_accept = Visible`: for how long (`None` = always).
    pub source_visible_for: Option<Duration>,
    /// UNCONFIRMED: Accept/Reject of an already accepted certificate.
    pub completed_transfer_answer: CompletedTransferAnswer,
    /// UNCONFIRMED: TransferCertificate of a PENDING_TRANSFER certificate.
    pub pending_transfer_answer: PendingTransferAnswer,
    /// Send `X-Amzn-ErrorType` as `Code:namespace-URL`, as some AWS front ends
    /// do (clients must strip from the `:`). Default off.
    pub error_type_suffix: bool,
    /// UNCONFIRMED: the account in ListOutgoingCertificates' `certificateArn`.
    pub outgoing_arn_account: OutgoingArnAccount,
    /// Roles STS AssumeRole grants sessions of (see [`crate::sts`]).
    pub roles: Vec<SeedRole>,
    /// Every role session lasts this long, whatever the caller asked for: shorter than
    /// AWS's 15 minutes, to see credentials expire and be refreshed (`None`: as asked).
    pub session_lifetime: Option<Duration>,
    /// UNCONFIRMED: most policies attached to one thing group (10 today's quotas page has
    /// for certificates; 2 in the 2021 developer guide). Default 10.
    pub policies_per_group: usize,
    /// UNCONFIRMED (2021 guide): RegisterCertificateWithoutCA refuses a certificate whose
    /// CA is registered in DEFAULT mode by an account of the Region. Default off.
    pub register_refuses_default_ca: bool,
    /// UNCONFIRMED (2021 guide): RegisterCertificateWithoutCA refuses a certificate that
    /// AWS IoT issued (no CA, DEFAULT mode in the account holding it). Default off.
    pub register_refuses_aws_issued: bool,
    /// The allow-list mode: an account with a policy here may make only the calls it
    /// allows (as IAM authorizes them); others are refused 403 AccessDeniedException.
    pub iam_policies: BTreeMap<String, IamPolicy>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            default_account: DEFAULT_ACCOUNT.to_string(),
            quota_scale: 1.0,
            quotas: HashMap::new(),
            quota_burst: Duration::from_secs(1),
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            faults: Vec::new(),
            timeout_hold: DEFAULT_TIMEOUT_HOLD,
            things_block_transfer: true,
            seeds: Vec::new(),
            credentials: Vec::new(),
            deny: Vec::new(),
            outage: OutageMode::Off,
            propagation_delay: Duration::ZERO,
            source_after_accept: SourceAfterAccept::default(),
            source_visible_for: None,
            completed_transfer_answer: CompletedTransferAnswer::default(),
            pending_transfer_answer: PendingTransferAnswer::default(),
            error_type_suffix: false,
            outgoing_arn_account: OutgoingArnAccount::default(),
            roles: Vec::new(),
            session_lifetime: None,
            policies_per_group: MAX_POLICIES_PER_TARGET,
            register_refuses_default_ca: false,
            register_refuses_aws_issued: false,
            iam_policies: BTreeMap::new(),
        }
    }
}

impl SimConfig {
    /// The switches the operations read.
    pub fn behaviour(&self) -> Behaviour {
        Behaviour {
            things_block_transfer: self.things_block_transfer,
            propagation_delay: self.propagation_delay,
            source_after_accept: self.source_after_accept,
            source_visible_for: self.source_visible_for,
            completed_transfer_answer: self.completed_transfer_answer,
            pending_transfer_answer: self.pending_transfer_answer,
            outgoing_arn_account: self.outgoing_arn_account,
            policies_per_group: self.policies_per_group,
            register_refuses_default_ca: self.register_refuses_default_ca,
            register_refuses_aws_issued: self.register_refuses_aws_issued,
        }
    }

    /// The default configuration without any rate quota (`quota_scale` 0).
    pub fn unlimited() -> Self {
        SimConfig {
            quota_scale: 0.0,
            ..SimConfig::default()
        }
    }
}

/// A kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// `InternalFailureException` 500, no effect.
    #[serde(rename = "500")]
    Http500,
    /// `ServiceUnavailableException` 503, no effect.
    #[serde(rename = "503")]
    Http503,
    /// The connection is reset (TCP RST) with no response, no effect.
    #[serde(rename = "reset")]
    Reset,
    /// The request is held for `timeout_hold`, then the connection is closed
    /// with no response, no effect.
    #[serde(rename = "timeout")]
    Timeout,
    /// Mutating calls only: the call takes effect, but the client gets a 500
    /// InternalFailureException or a reset (50/50).
    #[serde(rename = "lost-reply")]
    LostReply,
    /// A 2xx whose JSON body is cut short; the call takes effect first.
    #[serde(rename = "truncated")]
    Truncated,
    /// A 2xx with an empty body; the call takes effect first.
    #[serde(rename = "empty")]
    Empty,
    /// Mutating calls only: the call takes effect, and the reply is the one a
    /// second identical delivery gets.
    #[serde(rename = "duplicate")]
    Duplicate,
}

impl FaultKind {
    /// All kinds, in the order used for the stats keys.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Http500,
        FaultKind::Http503,
        FaultKind::Reset,
        FaultKind::Timeout,
        FaultKind::LostReply,
        FaultKind::Truncated,
        FaultKind::Empty,
        FaultKind::Duplicate,
    ];

    /// Whether the kind is rolled for mutating calls only.
    pub fn mutating_only(self) -> bool {
        matches!(self, FaultKind::LostReply | FaultKind::Duplicate)
    }

    /// The name used on the command line and in `/_sim/stats`
    /// (`500`, `503`, `reset`, `timeout`, `lost-reply`, `truncated`, `empty`, `duplicate`).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Http500 => "500",
            FaultKind::Http503 => "503",
            FaultKind::Reset => "reset",
            FaultKind::Timeout => "timeout",
            FaultKind::LostReply => "lost-reply",
            FaultKind::Truncated => "truncated",
            FaultKind::Empty => "empty",
            FaultKind::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "500" => Ok(FaultKind::Http500),
            "503" => Ok(FaultKind::Http503),
            "reset" => Ok(FaultKind::Reset),
            "timeout" => Ok(FaultKind::Timeout),
            "lost-reply" => Ok(FaultKind::LostReply),
            "truncated" => Ok(FaultKind::Truncated),
            "empty" => Ok(FaultKind::Empty),
            "duplicate" => Ok(FaultKind::Duplicate),
            other => Err(format!(
                "unknown fault kind {other:?} (expected 500, 503, reset, timeout, lost-reply, truncated, empty or duplicate)"
            )),
        }
    }
}

/// Parses `KIND=P` (e.g. `500=0.1`) as used by `--fault`.
pub fn parse_fault_spec(s: &str) -> Result<(FaultKind, f64), String> {
    let (kind, p) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KIND=P, got {s:?}"))?;
    let kind: FaultKind = kind.trim().parse()?;
    let p: f64 = p
        .trim()
        .parse()
        .map_err(|_| format!("bad probability in {s:?}"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("probability must be in [0, 1], got {p}"));
    }
    Ok((kind, p))
}

/// Parses `OP=TPS` (e.g. `TransferCertificate=5`) as used by `--quota`.
pub fn parse_quota_spec(s: &str) -> Result<(String, f64), String> {
    let (op, tps) = s
        .split_once('=')
        .ok_or_else(|| format!("expected OP=TPS, got {s:?}"))?;
    let op = op.trim();
    if crate::ops::Operation::from_name(op).is_none() {
        return Err(format!("unknown operation {op:?}"));
    }
    let tps: f64 = tps
        .trim()
        .parse()
        .map_err(|_| format!("bad TPS in {s:?}"))?;
    if !(tps >= 0.0 && tps.is_finite()) {
        return Err(format!("TPS must be >= 0, got {tps}"));
    }
    Ok((op.to_string(), tps))
}

/// Seed data for one region: certificates per account.
///
/// JSON: `{"region": "us-east-1", "accounts": {"111111111111": {"certificates": [...]}}}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Seed {
    /// Region the accounts below live in.
    pub region: String,
    /// Account id (12 digits) to its data.
    pub accounts: BTreeMap<String, SeedAccount>,
}

/// Seed data of one account: its certificates and its registry.
///
/// Registry items are created in this order: policies, thing types, thing
/// groups (a parent before its children), things, CA certificates, then the
/// certificates. A policy or thing named by a certificate (or a policy named
/// by a thing group) that is not declared is created with a default document
/// / without attributes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SeedAccount {
    /// Certificates owned by the account.
    #[serde(default)]
    pub certificates: Vec<SeedCertificate>,
    /// Policies with their documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<SeedPolicy>,
    /// Thing types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thing_types: Vec<SeedThingType>,
    /// Static thing groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thing_groups: Vec<SeedThingGroup>,
    /// Things.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub things: Vec<SeedThing>,
    /// CA certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificates: Vec<SeedCaCertificate>,
    /// Fleet indexing: its configuration and the devices' connectivity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexing: Option<crate::fleet_index::SeedIndexing>,
    /// Simulated devices of its things: their behaviour with jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<crate::devices::SeedDevices>,
    /// Role aliases of the credentials provider (names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_aliases: Vec<String>,
}

/// One seeded certificate. Seeding a certificate that exists replaces it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SeedCertificate {
    /// 64 hex characters (optionally `0x`-prefixed, 64 in total).
    pub id: String,
    /// `ACTIVE`, `INACTIVE`, `REVOKED`, `PENDING_TRANSFER`, `REGISTER_INACTIVE` or `PENDING_ACTIVATION`.
    pub status: String,
    /// Policy names attached to the certificate.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Thing names attached to the certificate.
    #[serde(default)]
    pub things: Vec<String>,
    /// With status `PENDING_TRANSFER`: the account the certificate is being transferred to.
    #[serde(default)]
    pub pending_target: Option<String>,
    /// Transfer message of a pending transfer.
    #[serde(default)]
    pub transfer_message: Option<String>,
    /// Creation date, epoch seconds (default: when seeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<f64>,
    /// Id of the CA certificate that signed it (a seeded CA of the account, or any 64-hex id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_id: Option<String>,
    /// The certificate's PEM (default: a generated one, whose hash is then *not* the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// `DEFAULT` (default) or `SNI_ONLY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_mode: Option<String>,
    /// Its one thing is attached exclusively (`thingPrincipalType` EXCLUSIVE_THING).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclusive: bool,
}

/// One seeded policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SeedPolicy {
    /// Policy name.
    pub name: String,
    /// The policy document (JSON text); default: [`DEFAULT_POLICY_DOCUMENT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// The document of a policy created without one.
pub const DEFAULT_POLICY_DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;

/// One seeded thing type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SeedThingType {
    /// Thing type name.
    pub name: String,
    /// `thingTypeDescription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `searchableAttributes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searchable_attributes: Vec<String>,
    /// `mqtt5Configuration.propagatingAttributes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mqtt5_propagating_attributes: Vec<PropagatingAttribute>,
    /// Deprecated (DeprecateThingType): takes no new things.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
}

/// One MQTT 5 propagating attribute of a thing type: a user property key, and the thing
/// attribute or connection attribute it carries.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PropagatingAttribute {
    /// `userPropertyKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_property_key: Option<String>,
    /// `thingAttribute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_attribute: Option<String>,
    /// `connectionAttribute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_attribute: Option<String>,
}

/// One seeded thing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SeedThing {
    /// Thing name.
    pub name: String,
    /// Its thing type (declared in the seed or existing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_type: Option<String>,
    /// Attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Static thing groups it belongs to (declared in the seed or existing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// One seeded static thing group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SeedThingGroup {
    /// Group name.
    pub name: String,
    /// Parent group (declared earlier in the seed, or existing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// `thingGroupDescription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Group attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Policies attached to the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// A dynamic group's fleet-indexing query (no parent then): things name it in their
    /// `groups` as the index would have put them there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// One seeded CA certificate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SeedCaCertificate {
    /// 64-hex id.
    pub id: String,
    /// `ACTIVE` (default) or `INACTIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `DEFAULT` (default) or `SNI_ONLY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_mode: Option<String>,
    /// PEM (default: a generated one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
}

impl Seed {
    /// Reads a seed from a JSON file.
    pub fn from_file(path: &std::path::Path) -> Result<Seed, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read seed file {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("invalid seed file {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_kind_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(k.as_str().parse::<FaultKind>().unwrap(), k);
        }
        assert!("boom".parse::<FaultKind>().is_err());
        assert_eq!(
            parse_fault_spec("lost-reply=0.5").unwrap(),
            (FaultKind::LostReply, 0.5)
        );
        assert!(parse_fault_spec("500=2").is_err());
        assert!(parse_fault_spec("500").is_err());
    }

    #[test]
    fn quota_spec() {
        assert_eq!(
            parse_quota_spec("TransferCertificate=5").unwrap(),
            ("TransferCertificate".to_string(), 5.0)
        );
        assert!(parse_quota_spec("Nope=5").is_err());
        assert!(parse_quota_spec("TransferCertificate=-1").is_err());
    }

    #[test]
    fn defaults() {
        let c = SimConfig::default();
        assert_eq!(c.quota_scale, 1.0);
        assert!(c.things_block_transfer);
        assert_eq!(c.listen.port(), 0);
        assert_eq!(SimConfig::unlimited().quota_scale, 0.0);
    }
}
