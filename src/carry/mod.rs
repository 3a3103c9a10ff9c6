//! Carrying a certificate's registry objects (policies, things, thing types, static thing
//! groups) from the source account to the target account: [`read`] takes the snapshot in the
//! source before prepare changes anything, [`snapshot`] is its shape (a ledger event),
//! [`store`] holds the snapshots a run rebuilds from, [`rewrite`] makes policy documents name
//! the target account, [`compare`] tells an existing object from the carried one, [`preview`]
//! is `plan --carry`.

pub mod compare;
pub mod once;
pub mod preview;
pub mod read;
pub mod rewrite;
pub mod snapshot;
pub mod store;

closed_set! {
    /// What accept does with an object that exists in the target with another definition.
    pub enum OnConflict {
        /// The certificate fails, with a report row naming the object and the difference.
        Fail = "fail",
        /// Attach the existing object as it is, and say so.
        Reuse = "reuse",
    }
}
