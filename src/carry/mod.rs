//! Carrying a certificate's registry objects (policies, things, groups) from the source
//! account to the target account. Only the policy-document rewrite and the snapshot shape exist so far.

pub mod rewrite;
pub mod snapshot;
