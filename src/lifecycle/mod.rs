//! The per-certificate lifecycle, one layer under the commands.
//!
//! - [`observe`]: the read-only look at a certificate before anything changes;
//! - [`change`]: the changes the tool makes, each with its ledger action, details and call;
//! - [`check`]: whether a change took effect, asked with either side's credentials;
//! - [`item`]: the events of one certificate: the write-ahead step, the settling of an
//!   intent an earlier run left open (once, for every workflow), and failures;
//! - the workers that string these together: [`migrate`] (prepare and transfer),
//!   [`cancel`] (cancel and restore), [`accept`] (accept and reject, target side), [`carry`]
//!   (the rebuild of what a certificate carried, after accept), [`register`] (register in the
//!   target and retire the source's copy: the zero-downtime move).
//!
//! A new workflow is a new worker over these parts, not a new copy of them.

pub mod accept;
pub mod cancel;
pub mod carry;
pub mod change;
pub mod check;
pub mod item;
pub mod migrate;
pub mod observe;
pub mod register;
#[cfg(test)]
mod tests;
pub mod work;

pub use accept::{AcceptOptions, Acceptor, Rejecter};
pub use cancel::{Canceller, Restore};
pub use carry::Carrier;
pub use change::Change;
pub use check::{Finding, Side};
pub use item::{Item, Settled, StepEnd};
pub use migrate::{Allowed, Migrator, Rollback};
pub use observe::{observe, Observed};
pub use work::{Mandate, Pick, Work};
