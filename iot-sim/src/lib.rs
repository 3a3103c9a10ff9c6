//! `iot-sim`: a local AWS IoT control-plane simulator for the certificate
//! transfer operations (restJson1, as the real `aws-sdk-iot` client speaks
//! it) plus STS `GetCallerIdentity` and `AssumeRole`, with per-operation rate quotas,
//! latency and fault injection.
//!
//! ```no_run
//! use iot_sim::{SimConfig, Simulator};
//! let sim = Simulator::spawn(SimConfig::default()).unwrap();
//! println!("endpoint: {}", sim.url());
//! let stats = sim.stats();
//! assert_eq!(stats.calls_of("TransferCertificate"), 0);
//! sim.shutdown();
//! ```
//!
//! See the crate's README.md for the account rule, seed format, endpoints
//! and fault semantics.

#![warn(missing_docs)]

pub mod access;
pub mod arn;
pub mod auth;
pub mod behaviour;
pub mod config;
pub mod devices;
pub mod errors;
pub mod faults;
pub mod fleet_index;
pub mod iam;
pub mod jobs;
pub mod ops;
pub mod pem;
pub mod quota;
pub mod routes;
pub mod server;
pub mod state;
pub mod stats;
pub mod sts;
pub mod validate;
pub mod world;

pub use access::{parse_deny_spec, CredentialChange, CredentialState, DenyRule, OutageMode};
pub use behaviour::{
    Behaviour, CompletedTransferAnswer, OutgoingArnAccount, PendingTransferAnswer,
    SourceAfterAccept,
};
pub use config::{
    parse_fault_spec, parse_quota_spec, FaultKind, PropagatingAttribute, Seed, SeedAccount,
    SeedCaCertificate, SeedCertificate, SeedPolicy, SeedThing, SeedThingGroup, SeedThingType,
    SimConfig, DEFAULT_ACCOUNT, DEFAULT_POLICY_DOCUMENT, DEFAULT_REGION, DEFAULT_TIMEOUT_HOLD,
};
pub use devices::{
    Behaviour as DeviceBehaviour, DeviceControl, DeviceSetting, DeviceState, SeedDevices,
};
pub use errors::ApiError;
pub use fleet_index::{Connectivity, ConnectivityChange, SeedIndexing};
pub use iam::IamPolicy;
pub use jobs::{ExecutionState, JobState};
pub use ops::Operation;
pub use pem::fake_certificate;
pub use server::{SimHandle, Simulator};
pub use state::{
    AccountState, CaCertState, CertState, PolicyState, StateDump, ThingGroupState, ThingState,
    ThingTypeState,
};
pub use stats::{Refusal, Stats};
pub use sts::{parse_role_spec, SeedRole};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<crate::SimHandle>();
        assert_send_sync::<crate::SimConfig>();
        assert_send_sync::<crate::Stats>();
        assert_send_sync::<crate::StateDump>();
        assert_send_sync::<crate::Seed>();
    }
}
