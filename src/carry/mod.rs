//! Carrying a certificate's registry objects (policies, things, groups) from the source
//! account to the target account. Only the policy-document rewrite exists so far.

pub mod rewrite;
