//! `transfer --accept-profile(-template)`: the migrate workflow and the acceptor composed.
//! Each certificate is prepared and transferred with the source's credentials, then accepted
//! at once with its target's; a certificate an earlier run transferred goes straight to the
//! accept. Everything goes to the transfer ledger.

use std::sync::Arc;

use crate::carry::store::SnapshotStore;
use crate::carry::OnConflict;
use crate::error::Error;
use crate::iot::Iot;
use crate::ledger::{ItemRecord, ItemState, LedgerError, OpenIntent};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;
use crate::session::TargetCredentials;

use super::accept::{self, Acceptor};
use super::carry::Carrier;
use super::check::Side;
use super::migrate::{self, MigrateOptions, Migrator, TRANSFER_LEDGER};
use super::workflow::{AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};

/// What `transfer` with an accept profile tells the composed workflow.
#[derive(Debug, Clone)]
pub struct TransferAcceptOptions {
    /// The migrate side's.
    pub migrate: MigrateOptions,
    /// The target accounts' credentials.
    pub targets: TargetCredentials,
    /// Activate certificates on accept.
    pub set_as_active: bool,
    /// With `migrate.carry`: what to do with an object that exists in a target with another
    /// definition.
    pub on_conflict: OnConflict,
}

/// Transfers, then accepts in the target, certificate by certificate.
pub struct TransferAccept {
    migrator: Migrator,
    acceptor: Acceptor,
}

impl TransferAccept {
    /// Whether the acceptor alone has the certificate: its transfer is recorded, only the
    /// accept is left.
    fn accepts(&self, work: &Work<'_>) -> bool {
        self.acceptor.serves(work.row)
            && work.record(|r| r.map(|r| r.state)) == Some(ItemState::Transferred)
    }
}

impl Workflow for TransferAccept {
    type Options = TransferAcceptOptions;
    const COMMAND: &'static str = "transfer";

    fn ledger(_: &TransferAcceptOptions) -> LedgerSpec {
        TRANSFER_LEDGER
    }

    async fn connect(setup: &mut Setup<'_>, options: TransferAcceptOptions) -> Result<Self, Error> {
        let source = setup.own_clients().await?;
        // With carry, each snapshot goes straight to the accept of the same run; those of
        // earlier runs (transferred, not yet accepted) come from the ledger.
        let handover = match options.migrate.carry {
            true => Some(Arc::new(
                SnapshotStore::load(setup.ledger_path, |_| true).map_err(Error::Ledger)?,
            )),
            false => None,
        };
        let targets = setup
            .session
            .target_clients(setup.manifest, &options.targets, "--accept-profile")
            .await?;
        if handover.is_some() {
            for t in &targets {
                setup.add_device_endpoints(t).await;
            }
        }
        let carrier = handover
            .clone()
            .map(|store| Carrier::new(store, options.on_conflict));
        Ok(TransferAccept {
            migrator: Migrator::new(source, options.migrate, handover)
                .with_manifest_digest(setup.manifest.sha256()),
            acceptor: Acceptor::new(targets, options.set_as_active, Vec::new(), carrier),
        })
    }

    fn verb(&self) -> &'static str {
        "transferring"
    }

    fn wants(&self, rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        migrate::untransferred(rec)
            || (self.acceptor.serves(row) && rec.map(|r| r.state) == Some(ItemState::Transferred))
    }

    fn settler(&self, row: &ManifestRow, open: &OpenIntent) -> Option<(&Iot, Side)> {
        self.migrator
            .settler(row, open)
            .or_else(|| self.acceptor.settler(row, open))
    }

    fn after_settle(&self, row: &ManifestRow, open: &OpenIntent, took: bool) -> AfterSettle {
        if migrate::settles(open) {
            self.migrator.after_settle(row, open, took)
        } else {
            accept::accept_after_settle(open, took)
        }
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        if self.accepts(&work) {
            return self.acceptor.accept(&work).await;
        }
        match self.migrator.migrate(&work).await? {
            ItemEnd::Done if self.accepts(&work) => {
                self.acceptor.accept(&work.resumed(Resume::Start)).await
            }
            end => Ok(end),
        }
    }
}
