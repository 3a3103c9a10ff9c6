//! Client-side pacing of AWS IoT calls at the service's rate quotas.
//!
//! AWS IoT limits every operation separately, per account and region (Service Quotas,
//! service `iotcore`, "<Operation> API TPS"). The [`Pacer`] therefore keeps one limiter
//! per ([`Scope`], [`Operation`]), shared by every worker, so that the whole pool
//! slows down when any worker is throttled.
//!
//! # Design
//!
//! Each limiter is a *virtual schedule*: the ideal time of the previous grant is
//! remembered and the next caller is released at `max(now, previous + 1/rate)`.
//! Waiters queue on a FIFO async mutex; only the head of the queue sleeps, so a
//! rate change applies to the very next request and callers are served in arrival
//! order. Because the schedule advances from the *ideal* previous slot rather
//! than from the moment the sleeping task actually woke up, timer lateness (tokio's
//! timer has 1 ms granularity, and a loaded machine adds more) is not lost: the
//! long-run rate is exactly the configured one.
//!
//! Why not `governor` (the crate was evaluated): its GCRA with `allow_burst(1)`
//! computes `next = max(tat, now) + T`, so every late wake-up shifts the schedule
//! and is lost for good (measured with 64 tasks in real time: 97.3% of the quota at
//! 100 and 200 TPS, against 100.0% for this schedule; worse on a loaded machine);
//! its `until_ready` sleeps on `futures-timer`'s real clock, so tokio's paused test
//! time cannot drive it; waiters retrying `check()` race instead of queueing (no
//! FIFO); and its quota is fixed at construction, so the adaptive rate below would
//! need a new limiter (losing its state) at every change. The schedule here is
//! about thirty lines and has none of these problems.
//!
//! # Adaptation (AIMD with CUBIC recovery)
//!
//! * Start at the configured ceiling (documented quota × `--rate-scale`, or the
//!   `--rate OP=TPS` override), released one request at a time: no burst.
//! * On a throttle: the rate becomes `0.8 ×` the current rate, never below the floor
//!   (1% of the ceiling, at least 0.1 TPS). Then the limiter holds that rate and
//!   ignores further throttles for a *reaction window* of `max(1 s, 4 intervals at
//!   the new rate)`: the throttles of requests already in flight report the old
//!   rate, and 64 of them must not compound into a collapse to the floor. A throttle
//!   less than one window after the previous window ended means that decrease was
//!   not enough: that decrease uses `0.64` (two steps) to converge faster.
//! * After the window the rate recovers along CUBIC's curve
//!   `w_max · (1 + 0.2 · ((t − K)/K)³)`, where `w_max` is the rate just before the
//!   decrease and `K = max(4 s, 40 requests at w_max)`: quickly back near the last
//!   rate that worked, flat around it, then probing upward until it meets the ceiling
//!   again. Recovery is computed lazily from the elapsed time.
//!
//! The numbers come from a simulation against a remote token bucket (the
//! `simulation_*` tests; `simulation_table` prints a grid). TCP CUBIC and the AWS
//! SDKs' adaptive mode use 0.7 and, at 10 TPS, K ≈ 2 s; here the flat reaction
//! window already prevents compounding, and 0.8 with K = 4 s kept more of the quota
//! when the remote bucket is shallow (0.89–0.96 R instead of 0.82–0.93 R with a
//! 0.1 s burst, R = 10–100) while throttling less (2.4% instead of 3.5% of calls
//! at R = 10, ceiling 2R, 300 s). The stronger repeated decrease restores fast
//! convergence from a gross overestimate (10× → 1× in about 6 windows).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Errors of rate configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PacerError {
    /// The name is not one of [`Operation::ALL`].
    #[error("unknown operation `{0}` (expected an AWS API name such as TransferCertificate)")]
    UnknownOperation(String),
    /// A rate or scale that is not a finite number in the accepted range.
    #[error("invalid rate `{value}`: {reason}")]
    InvalidRate {
        /// The text or number given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// An override not of the form `OPERATION=TPS`.
    #[error("invalid rate override `{0}`: expected OPERATION=TPS, e.g. TransferCertificate=20")]
    BadOverride(String),
}

/// An IoT (or STS) operation the tool calls: the unit AWS rate-limits. The registry
/// operations after `GetCallerIdentity` are for workflows that copy policies and things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `DescribeCertificate` (10 TPS).
    DescribeCertificate,
    /// `UpdateCertificate` (10 TPS), mutating.
    UpdateCertificate,
    /// `ListCertificates` (10 TPS).
    ListCertificates,
    /// `ListOutgoingCertificates` (10 TPS).
    ListOutgoingCertificates,
    /// `ListAttachedPolicies` (15 TPS).
    ListAttachedPolicies,
    /// `AttachPolicy` (15 TPS), mutating.
    AttachPolicy,
    /// `DetachPolicy` (15 TPS), mutating.
    DetachPolicy,
    /// `ListPrincipalThings` (10 TPS).
    ListPrincipalThings,
    /// `AttachThingPrincipal` (100 TPS), mutating.
    AttachThingPrincipal,
    /// `DetachThingPrincipal` (100 TPS), mutating.
    DetachThingPrincipal,
    /// `TransferCertificate` (10 TPS), mutating.
    TransferCertificate,
    /// `AcceptCertificateTransfer` (10 TPS), mutating.
    AcceptCertificateTransfer,
    /// `RejectCertificateTransfer` (10 TPS), mutating.
    RejectCertificateTransfer,
    /// `CancelCertificateTransfer` (10 TPS), mutating.
    CancelCertificateTransfer,
    /// `GetCallerIdentity` (10 TPS; STS; no IoT quota, 10 assumed).
    GetCallerIdentity,
    /// `GetPolicy` (10 TPS).
    GetPolicy,
    /// `CreatePolicy` (10 TPS), mutating.
    CreatePolicy,
    /// `ListPolicies` (10 TPS; no documented quota: 10 assumed).
    ListPolicies,
    /// `ListPrincipalPolicies` (15 TPS; deprecated form of ListAttachedPolicies).
    ListPrincipalPolicies,
    /// `DetachPrincipalPolicy` (15 TPS; deprecated form of DetachPolicy), mutating.
    DetachPrincipalPolicy,
    /// `CreateThing` (100 TPS), mutating.
    CreateThing,
    /// `DescribeThing` (10 TPS; no documented quota: 10 assumed).
    DescribeThing,
    /// `ListThings` (10 TPS; no documented quota: 10 assumed).
    ListThings,
    /// `ListThingPrincipals` (10 TPS; no documented quota: 10 assumed).
    ListThingPrincipals,
    /// `CreateThingType` (10 TPS; no documented quota: 10 assumed), mutating.
    CreateThingType,
    /// `DescribeThingType` (10 TPS; no documented quota: 10 assumed).
    DescribeThingType,
    /// `CreateThingGroup` (10 TPS; no documented quota: 10 assumed), mutating.
    CreateThingGroup,
    /// `DescribeThingGroup` (10 TPS; no documented quota: 10 assumed).
    DescribeThingGroup,
    /// `AddThingToThingGroup` (10 TPS; no documented quota: 10 assumed), mutating.
    AddThingToThingGroup,
    /// `ListThingGroupsForThing` (10 TPS; no documented quota: 10 assumed).
    ListThingGroupsForThing,
    /// `ListThingsInThingGroup` (10 TPS; no documented quota: 10 assumed).
    ListThingsInThingGroup,
    /// `ListCertificatesByCA` (10 TPS).
    ListCertificatesByCA,
    /// `RegisterCertificate` (10 TPS), mutating.
    RegisterCertificate,
    /// `RegisterCertificateWithoutCA` (10 TPS), mutating.
    RegisterCertificateWithoutCA,
    /// `DescribeEndpoint` (10 TPS; no documented quota: 10 assumed).
    DescribeEndpoint,
    /// `SearchIndex` (10 TPS; fleet indexing, an AWS IoT Device Management quota whose
    /// default is not published in the sources checked: 10 assumed). Each call is billed.
    SearchIndex,
    /// `GetIndexingConfiguration` (10 TPS; no documented quota: 10 assumed).
    GetIndexingConfiguration,
    /// `ListPrincipalThingsV2` (10 TPS; no documented quota: 10 assumed).
    ListPrincipalThingsV2,
    /// `DescribeCACertificate` (10 TPS; no documented quota: 10 assumed).
    DescribeCACertificate,
    /// `ListRoleAliases` (10 TPS; no documented quota: 10 assumed).
    ListRoleAliases,
    /// `CreateJob` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed), mutating.
    CreateJob,
    /// `DescribeJob` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed).
    DescribeJob,
    /// `ListJobExecutionsForJob` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed).
    ListJobExecutionsForJob,
    /// `ListJobExecutionsForThing` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed).
    ListJobExecutionsForThing,
    /// `CancelJob` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed), mutating.
    CancelJob,
    /// `DeleteJob` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed), mutating.
    DeleteJob,
    /// `GetThingConnectivityData` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed; each call is billed as a query).
    GetThingConnectivityData,
    /// `DeleteThingGroup` (10 TPS; AWS IoT Device Management: no published default found, 10 assumed), mutating.
    DeleteThingGroup,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 48] = [
        Operation::DescribeCertificate,
        Operation::UpdateCertificate,
        Operation::ListCertificates,
        Operation::ListOutgoingCertificates,
        Operation::ListAttachedPolicies,
        Operation::AttachPolicy,
        Operation::DetachPolicy,
        Operation::ListPrincipalThings,
        Operation::AttachThingPrincipal,
        Operation::DetachThingPrincipal,
        Operation::TransferCertificate,
        Operation::AcceptCertificateTransfer,
        Operation::RejectCertificateTransfer,
        Operation::CancelCertificateTransfer,
        Operation::GetCallerIdentity,
        Operation::GetPolicy,
        Operation::CreatePolicy,
        Operation::ListPolicies,
        Operation::ListPrincipalPolicies,
        Operation::DetachPrincipalPolicy,
        Operation::CreateThing,
        Operation::DescribeThing,
        Operation::ListThings,
        Operation::ListThingPrincipals,
        Operation::CreateThingType,
        Operation::DescribeThingType,
        Operation::CreateThingGroup,
        Operation::DescribeThingGroup,
        Operation::AddThingToThingGroup,
        Operation::ListThingGroupsForThing,
        Operation::ListThingsInThingGroup,
        Operation::ListCertificatesByCA,
        Operation::RegisterCertificate,
        Operation::RegisterCertificateWithoutCA,
        Operation::DescribeEndpoint,
        Operation::SearchIndex,
        Operation::GetIndexingConfiguration,
        Operation::ListPrincipalThingsV2,
        Operation::DescribeCACertificate,
        Operation::ListRoleAliases,
        Operation::CreateJob,
        Operation::DescribeJob,
        Operation::ListJobExecutionsForJob,
        Operation::ListJobExecutionsForThing,
        Operation::CancelJob,
        Operation::DeleteJob,
        Operation::GetThingConnectivityData,
        Operation::DeleteThingGroup,
    ];

    /// The AWS API name, e.g. `"TransferCertificate"`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::DescribeCertificate => "DescribeCertificate",
            Operation::UpdateCertificate => "UpdateCertificate",
            Operation::ListCertificates => "ListCertificates",
            Operation::ListOutgoingCertificates => "ListOutgoingCertificates",
            Operation::ListAttachedPolicies => "ListAttachedPolicies",
            Operation::AttachPolicy => "AttachPolicy",
            Operation::DetachPolicy => "DetachPolicy",
            Operation::ListPrincipalThings => "ListPrincipalThings",
            Operation::AttachThingPrincipal => "AttachThingPrincipal",
            Operation::DetachThingPrincipal => "DetachThingPrincipal",
            Operation::TransferCertificate => "TransferCertificate",
            Operation::AcceptCertificateTransfer => "AcceptCertificateTransfer",
            Operation::RejectCertificateTransfer => "RejectCertificateTransfer",
            Operation::CancelCertificateTransfer => "CancelCertificateTransfer",
            Operation::GetCallerIdentity => "GetCallerIdentity",
            Operation::GetPolicy => "GetPolicy",
            Operation::CreatePolicy => "CreatePolicy",
            Operation::ListPolicies => "ListPolicies",
            Operation::ListPrincipalPolicies => "ListPrincipalPolicies",
            Operation::DetachPrincipalPolicy => "DetachPrincipalPolicy",
            Operation::CreateThing => "CreateThing",
            Operation::DescribeThing => "DescribeThing",
            Operation::ListThings => "ListThings",
            Operation::ListThingPrincipals => "ListThingPrincipals",
            Operation::CreateThingType => "CreateThingType",
            Operation::DescribeThingType => "DescribeThingType",
            Operation::CreateThingGroup => "CreateThingGroup",
            Operation::DescribeThingGroup => "DescribeThingGroup",
            Operation::AddThingToThingGroup => "AddThingToThingGroup",
            Operation::ListThingGroupsForThing => "ListThingGroupsForThing",
            Operation::ListThingsInThingGroup => "ListThingsInThingGroup",
            Operation::ListCertificatesByCA => "ListCertificatesByCA",
            Operation::RegisterCertificate => "RegisterCertificate",
            Operation::RegisterCertificateWithoutCA => "RegisterCertificateWithoutCA",
            Operation::DescribeEndpoint => "DescribeEndpoint",
            Operation::SearchIndex => "SearchIndex",
            Operation::GetIndexingConfiguration => "GetIndexingConfiguration",
            Operation::ListPrincipalThingsV2 => "ListPrincipalThingsV2",
            Operation::DescribeCACertificate => "DescribeCACertificate",
            Operation::ListRoleAliases => "ListRoleAliases",
            Operation::CreateJob => "CreateJob",
            Operation::DescribeJob => "DescribeJob",
            Operation::ListJobExecutionsForJob => "ListJobExecutionsForJob",
            Operation::ListJobExecutionsForThing => "ListJobExecutionsForThing",
            Operation::CancelJob => "CancelJob",
            Operation::DeleteJob => "DeleteJob",
            Operation::GetThingConnectivityData => "GetThingConnectivityData",
            Operation::DeleteThingGroup => "DeleteThingGroup",
        }
    }

    /// The default quota in transactions per second: the Service Quotas default of
    /// "<Operation> API TPS" (service `iotcore`, as listed in February 2024), or 10 where
    /// none is documented. Accounts may have raised values, hence [`RateSettings`].
    pub fn default_tps(self) -> f64 {
        match self {
            Operation::AttachThingPrincipal
            | Operation::DetachThingPrincipal
            | Operation::CreateThing => 100.0,
            Operation::ListAttachedPolicies
            | Operation::AttachPolicy
            | Operation::DetachPolicy
            | Operation::ListPrincipalPolicies
            | Operation::DetachPrincipalPolicy => 15.0,
            _ => 10.0,
        }
    }

    /// Whether AWS documents a default quota for it (Service Quotas, `iotcore`, February
    /// 2024); the others run at [`Operation::default_tps`] as a conservative stand-in.
    pub fn quota_documented(self) -> bool {
        matches!(
            self,
            Operation::TransferCertificate
                | Operation::AcceptCertificateTransfer
                | Operation::RejectCertificateTransfer
                | Operation::CancelCertificateTransfer
                | Operation::UpdateCertificate
                | Operation::DescribeCertificate
                | Operation::ListCertificates
                | Operation::ListCertificatesByCA
                | Operation::ListOutgoingCertificates
                | Operation::ListPrincipalThings
                | Operation::GetPolicy
                | Operation::CreatePolicy
                | Operation::RegisterCertificate
                | Operation::RegisterCertificateWithoutCA
                | Operation::ListAttachedPolicies
                | Operation::AttachPolicy
                | Operation::DetachPolicy
                | Operation::ListPrincipalPolicies
                | Operation::DetachPrincipalPolicy
                | Operation::AttachThingPrincipal
                | Operation::DetachThingPrincipal
                | Operation::CreateThing
        )
    }

    /// The quota's name in Service Quotas (service code `iotcore`), e.g.
    /// `"TransferCertificate API TPS"`. (`GetCallerIdentity` is an STS call and has
    /// no such quota; the same pattern is returned for uniformity.)
    pub fn quota_name(self) -> String {
        format!("{} API TPS", self.name())
    }

    /// Whether the call changes state in AWS (so an unknown outcome must be
    /// reconciled before retrying).
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Operation::UpdateCertificate
                | Operation::AttachPolicy
                | Operation::DetachPolicy
                | Operation::AttachThingPrincipal
                | Operation::DetachThingPrincipal
                | Operation::TransferCertificate
                | Operation::AcceptCertificateTransfer
                | Operation::RejectCertificateTransfer
                | Operation::CancelCertificateTransfer
                | Operation::CreatePolicy
                | Operation::DetachPrincipalPolicy
                | Operation::CreateThing
                | Operation::CreateThingType
                | Operation::CreateThingGroup
                | Operation::AddThingToThingGroup
                | Operation::RegisterCertificate
                | Operation::RegisterCertificateWithoutCA
                | Operation::CreateJob
                | Operation::CancelJob
                | Operation::DeleteJob
                | Operation::DeleteThingGroup
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Operation {
    type Err = PacerError;

    /// Parses an API name, case-insensitively; `-` and `_` are ignored so that
    /// `transfer-certificate` is accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect();
        Operation::ALL
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| PacerError::UnknownOperation(s.trim().to_string()))
    }
}

/// Smallest ceiling accepted, in TPS (one call every ~17 minutes).
pub const MIN_TPS: f64 = 0.001;
/// Largest ceiling accepted, in TPS.
pub const MAX_TPS: f64 = 1_000_000.0;

/// Checks that `value` is a usable TPS figure.
fn check_tps(value: f64, text: &str) -> Result<f64, PacerError> {
    if value.is_finite() && (MIN_TPS..=MAX_TPS).contains(&value) {
        Ok(value)
    } else {
        Err(PacerError::InvalidRate {
            value: text.to_string(),
            reason: format!("must be a number from {MIN_TPS} to {MAX_TPS}"),
        })
    }
}

/// Configured ceilings: documented defaults × scale, with per-op overrides
/// (`--rate OP=TPS`, `--rate-scale F`). An override is an absolute TPS: the scale
/// does not apply to it.
#[derive(Debug, Clone)]
pub struct RateSettings {
    /// Multiplier applied to every documented default.
    pub scale: f64,
    /// Absolute ceilings, in TPS, replacing `default × scale` for these operations.
    pub overrides: BTreeMap<Operation, f64>,
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            scale: 1.0,
            overrides: BTreeMap::new(),
        }
    }
}

impl RateSettings {
    /// The configured ceiling of `op`, in TPS.
    pub fn ceiling(&self, op: Operation) -> f64 {
        match self.overrides.get(&op) {
            Some(tps) => *tps,
            None => op.default_tps() * self.scale,
        }
    }

    /// Parses one `--rate` argument, `"TransferCertificate=20"` (also `OP:TPS`).
    pub fn parse_override(s: &str) -> Result<(Operation, f64), PacerError> {
        let (name, value) = s
            .split_once(['=', ':'])
            .ok_or_else(|| PacerError::BadOverride(s.to_string()))?;
        let op: Operation = name.parse()?;
        let text = value.trim();
        let tps: f64 = text.parse().map_err(|_| PacerError::InvalidRate {
            value: text.to_string(),
            reason: "not a number".to_string(),
        })?;
        Ok((op, check_tps(tps, text)?))
    }

    /// Parses a `--rate-scale` argument (a positive factor such as `0.5` or `2`).
    pub fn parse_scale(s: &str) -> Result<f64, PacerError> {
        let text = s.trim();
        let scale: f64 = text.parse().map_err(|_| PacerError::InvalidRate {
            value: text.to_string(),
            reason: "not a number".to_string(),
        })?;
        if scale.is_finite() && scale > 0.0 {
            Ok(scale)
        } else {
            Err(PacerError::InvalidRate {
                value: text.to_string(),
                reason: "the scale must be a positive number".to_string(),
            })
        }
    }

    /// Checks that every resulting ceiling lies in [`MIN_TPS`, `MAX_TPS`]. The
    /// [`Pacer`] clamps out-of-range ceilings into that range; call this first to
    /// report them to the user instead.
    pub fn validate(&self) -> Result<(), PacerError> {
        for op in Operation::ALL {
            let c = self.ceiling(op);
            check_tps(c, &format!("{op}={c}"))?;
        }
        Ok(())
    }
}

/// Where AWS counts the quota: an account (or a credentials profile standing for
/// one) in a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// The AWS account id, or a profile name standing for it.
    pub account: String,
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
}

impl Scope {
    /// Builds a scope.
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Scope {
        Scope {
            account: account.into(),
            region: region.into(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// Knobs of the adaptive behaviour; [`Tuning::default`] holds the values the
/// module documentation explains.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Multiplicative decrease applied on a throttle (0.8).
    pub decrease_factor: f64,
    /// Decrease applied instead when the throttle comes less than one window after
    /// the previous window ended: the last decrease was not enough (0.64).
    pub repeat_factor: f64,
    /// Shortest reaction window after a decrease (1 s).
    pub min_window: Duration,
    /// The window also lasts at least this many request intervals at the new rate (4).
    pub window_intervals: f64,
    /// Shortest time to climb back to the pre-decrease rate, CUBIC's K (4 s).
    pub recovery_time: Duration,
    /// K also spans at least this many requests at the pre-decrease rate (40).
    pub recovery_requests: f64,
    /// Floor as a fraction of the ceiling (0.01).
    pub floor_fraction: f64,
    /// Floor in TPS, whichever is higher (0.1); never above the ceiling.
    pub min_floor_tps: f64,
    /// Longest single sleep of a waiting caller before it re-reads the rate (250 ms),
    /// so that recovery is noticed during long intervals.
    pub max_nap: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            decrease_factor: 0.8,
            repeat_factor: 0.64,
            min_window: Duration::from_secs(1),
            window_intervals: 4.0,
            recovery_time: Duration::from_secs(4),
            recovery_requests: 40.0,
            floor_fraction: 0.01,
            min_floor_tps: 0.1,
            max_nap: Duration::from_millis(250),
        }
    }
}

/// State of one limiter, for the run summary.
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterState {
    /// Account and region.
    pub scope: Scope,
    /// The operation.
    pub op: Operation,
    /// Configured ceiling, TPS.
    pub ceiling: f64,
    /// Currently allowed rate, TPS.
    pub rate: f64,
    /// Throttles reported through [`Pacer::on_throttle`].
    pub throttles: u64,
    /// Of those, how many lowered the rate (the others fell in a reaction window).
    pub decreases: u64,
    /// Slots granted by [`Pacer::acquire`].
    pub granted: u64,
}

/// The adaptive part of a limiter, guarded by a synchronous mutex (never held
/// across an await).
#[derive(Debug)]
struct Control {
    ceiling: f64,
    floor: f64,
    /// Rate just before the last decrease; meaningful once `hold_until` is set.
    w_max: f64,
    /// End of the reaction window of the last decrease; `None` = never throttled.
    hold_until: Option<Instant>,
    /// Length of that window.
    window: Duration,
    /// The decrease factor used last (the rate is held at `w_max` times it).
    factor: f64,
    throttles: u64,
    decreases: u64,
    granted: u64,
}

impl Control {
    fn new(ceiling: f64, tuning: &Tuning) -> Control {
        let ceiling = if ceiling.is_finite() {
            ceiling.clamp(MIN_TPS, MAX_TPS)
        } else {
            MAX_TPS
        };
        let floor = (ceiling * tuning.floor_fraction)
            .max(tuning.min_floor_tps)
            .min(ceiling);
        Control {
            ceiling,
            floor,
            w_max: ceiling,
            hold_until: None,
            window: Duration::ZERO,
            factor: tuning.decrease_factor,
            throttles: 0,
            decreases: 0,
            granted: 0,
        }
    }

    /// Allowed rate at `now`: flat during the reaction window, then CUBIC growth.
    fn rate(&self, now: Instant, tuning: &Tuning) -> f64 {
        let Some(hold_until) = self.hold_until else {
            return self.ceiling;
        };
        let beta = self.factor;
        let r = if now < hold_until {
            self.w_max * beta
        } else {
            let k = recovery_secs(self.w_max, tuning);
            let x = (now - hold_until).as_secs_f64() / k - 1.0;
            // At x = -1 this is beta * w_max, at x = 0 it is w_max (plateau).
            self.w_max * (1.0 + (1.0 - beta) * x * x * x)
        };
        r.clamp(self.floor, self.ceiling)
    }
}

/// CUBIC's K: the time to climb back from `beta * w_max` to `w_max`.
fn recovery_secs(w_max: f64, tuning: &Tuning) -> f64 {
    (tuning.recovery_requests / w_max)
        .max(tuning.recovery_time.as_secs_f64())
        .max(1e-3)
}

/// One (scope, operation) limiter.
struct Limiter {
    /// Ideal time of the last grant. The async mutex is FIFO: it is the queue.
    schedule: tokio::sync::Mutex<Option<Instant>>,
    control: Mutex<Control>,
    /// Wakes the sleeping head of the queue when the rate drops.
    changed: tokio::sync::Notify,
}

impl Limiter {
    fn control(&self) -> MutexGuard<'_, Control> {
        // Nothing panics while holding it; recover the data if something did.
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Shared by every worker (`Arc<Pacer>`): one smooth limiter per (scope,
/// operation), created lazily.
pub struct Pacer {
    settings: RateSettings,
    tuning: Tuning,
    limiters: Mutex<HashMap<(Scope, Operation), Arc<Limiter>>>,
}

impl fmt::Debug for Pacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer")
            .field("settings", &self.settings)
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    /// A pacer with the default [`Tuning`].
    pub fn new(settings: RateSettings) -> Pacer {
        Pacer::with_tuning(settings, Tuning::default())
    }

    /// A pacer with explicit adaptive knobs.
    pub fn with_tuning(settings: RateSettings, tuning: Tuning) -> Pacer {
        Pacer {
            settings,
            tuning,
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// The settings this pacer was built with.
    pub fn settings(&self) -> &RateSettings {
        &self.settings
    }

    fn map(&self) -> MutexGuard<'_, HashMap<(Scope, Operation), Arc<Limiter>>> {
        self.limiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limiter(&self, scope: &Scope, op: Operation) -> Arc<Limiter> {
        let mut map = self.map();
        if let Some(l) = map.get(&(scope.clone(), op)) {
            return l.clone();
        }
        let limiter = Arc::new(Limiter {
            schedule: tokio::sync::Mutex::new(None),
            control: Mutex::new(Control::new(self.settings.ceiling(op), &self.tuning)),
            changed: tokio::sync::Notify::new(),
        });
        map.insert((scope.clone(), op), limiter.clone());
        limiter
    }

    /// Waits for this operation's next slot in this scope. Smooth: the first call
    /// returns at once, each later one at least one interval (1/rate) after the
    /// previous slot, never two at once; callers are served in arrival order.
    ///
    /// Cancel-safe: dropping the future gives up the place in the queue and
    /// consumes no slot.
    pub async fn acquire(&self, scope: &Scope, op: Operation) {
        let limiter = self.limiter(scope, op);
        let mut last = limiter.schedule.lock().await;
        loop {
            // Register for rate-change wake-ups before reading the rate, so a
            // decrease between the read and the sleep is not missed.
            let changed = limiter.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();

            let now = Instant::now();
            let rate = limiter.control().rate(now, &self.tuning);
            let interval = Duration::from_secs_f64(1.0 / rate);
            let slot = match *last {
                None => now,
                Some(prev) => prev + interval,
            };
            if slot <= now {
                // A late wake-up (less than one interval) keeps the ideal slot so
                // the lateness is made up by the next request; after an idle period
                // the schedule restarts at `now` (no catch-up burst).
                *last = Some(if now - slot < interval { slot } else { now });
                limiter.control().granted += 1;
                return;
            }
            let wake = slot.min(now + self.tuning.max_nap);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = changed => {}
            }
        }
    }

    /// A call of this op in this scope was throttled: the limiter's rate drops to
    /// 0.8 × its current value (not below the floor) for every worker, unless a
    /// decrease already happened within the current reaction window, in which case
    /// the throttle is only counted.
    pub fn on_throttle(&self, scope: &Scope, op: Operation) {
        let limiter = self.limiter(scope, op);
        let now = Instant::now();
        {
            let mut c = limiter.control();
            c.throttles += 1;
            if c.hold_until.is_some_and(|until| now < until) {
                return;
            }
            let current = c.rate(now, &self.tuning);
            let repeated = c.hold_until.is_some_and(|until| now < until + c.window);
            let factor = if repeated {
                self.tuning.repeat_factor
            } else {
                self.tuning.decrease_factor
            };
            let reduced = (current * factor).max(c.floor);
            let window = self.tuning.min_window.max(Duration::from_secs_f64(
                self.tuning.window_intervals / reduced,
            ));
            c.w_max = current;
            c.factor = factor;
            c.window = window;
            c.hold_until = Some(now + window);
            c.decreases += 1;
        }
        limiter.changed.notify_waiters();
    }

    /// Current allowed rate in TPS (after decreases and recovery); the ceiling for
    /// a limiter never used.
    pub fn current_rate(&self, scope: &Scope, op: Operation) -> f64 {
        let limiter = self.map().get(&(scope.clone(), op)).cloned();
        match limiter {
            Some(l) => l.control().rate(Instant::now(), &self.tuning),
            None => Control::new(self.settings.ceiling(op), &self.tuning).ceiling,
        }
    }

    /// Snapshot for the summary: one entry per limiter used so far, sorted by
    /// scope then operation.
    pub fn snapshot(&self) -> Vec<LimiterState> {
        let now = Instant::now();
        let mut out: Vec<LimiterState> = self
            .map()
            .iter()
            .map(|((scope, op), l)| {
                let c = l.control();
                LimiterState {
                    scope: scope.clone(),
                    op: *op,
                    ceiling: c.ceiling,
                    rate: c.rate(now, &self.tuning),
                    throttles: c.throttles,
                    decreases: c.decreases,
                    granted: c.granted,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.scope, a.op).cmp(&(&b.scope, b.op)));
        out
    }
}

#[cfg(test)]
mod tests;
