//! The per-certificate lifecycle, one layer under the run.
//!
//! - [`workflow`]: the one shape every ledger-keeping command has ([`Workflow`]): its
//!   ledger, its scope, what a rerun still wants, who settles an open intent and what that
//!   means for it, how one certificate is processed;
//! - [`observe`]: the read-only look at a certificate before anything changes;
//! - [`change`]: the changes the tool makes, each with its ledger action, details and call;
//! - [`check`]: whether a change took effect, asked with either side's credentials;
//! - [`item`]: the events of one certificate: the write-ahead step, the settling of an
//!   intent an earlier run left open, and failures;
//! - the workflows: [`migrate`] (prepare and transfer), [`cancel`] (cancel and restore),
//!   [`accept`] (accept and reject, target side), [`transfer_accept`] (the two composed),
//!   [`register`] and [`retire`] (the zero-downtime move), and [`carry`] (the rebuild of
//!   what a certificate carried, after accept or register).
//!
//! A new workflow is one file here and a thin command.

pub mod accept;
pub mod cancel;
pub mod carry;
pub mod change;
pub mod check;
pub mod handoff;
pub mod item;
pub mod migrate;
pub mod observe;
pub mod register;
pub mod retire;
#[cfg(test)]
mod tests;
pub mod transfer_accept;
pub mod workflow;

pub use accept::{AcceptOptions, Acceptor, CarryFrom, RejectOptions, Rejecter};
pub use cancel::{Canceller, Restore};
pub use carry::Carrier;
pub use change::{Change, PrepareSteps};
pub use check::{Effect, Side};
pub use handoff::{Handoff, HandoffOptions};
pub use item::{Item, Refusal, Settled, StepEnd};
pub use migrate::{MigrateOptions, Migrator, Rollback};
pub use observe::{observe, Observed};
pub use register::{RegisterOptions, Registrar};
pub use retire::{RetireOptions, Retirer, UndoRetire};
pub use transfer_accept::{TransferAccept, TransferAcceptOptions};
pub use workflow::{Acting, AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};
