//! A workflow: what one ledger-keeping command does to each certificate, in the one shape the
//! run drives (`crate::run`).
//!
//! A workflow says which ledger it writes ([`Workflow::ledger`]), how it gets its clients
//! ([`Workflow::connect`]), which rows concern it ([`Workflow::in_scope`]), what a rerun
//! still has to do ([`Workflow::wants`]), who settles an intent an earlier run left open and
//! what that means for it ([`Workflow::settler`], [`Workflow::after_settle`]), and how one
//! certificate is processed ([`Workflow::process`]). The run does the rest, once for every
//! workflow: it settles open intents before a certificate reaches the workflow, skips
//! failures a person must fix (unless told to retry them), hands out the work in lanes,
//! and owns the one ledger writer, which it closes itself.
//!
//! A new workflow is one file under `lifecycle/` and a thin command.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;

use crate::error::Error;
use crate::iot::{AccountClients, Iot};
use crate::ledger::{
    Identity, ItemRecord, LedgerError, LedgerKind, LedgerState, LedgerWriter, OpenIntent, Outcome,
    Stage, UndoHistory,
};
use crate::manifest::{Manifest, ManifestRow};
use crate::pipeline::ItemEnd;
use crate::session::{Session, TargetCredentials};
use crate::stop::Gate;

use super::check::Side;
use super::item::Item;

/// Which ledger a workflow writes, and what its state keeps of each certificate's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSpec {
    /// The ledger.
    pub kind: LedgerKind,
    /// What the state keeps of what the workflow changed (for undo).
    pub undo: UndoHistory,
}

/// Where a certificate's work starts this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// At the beginning: nothing was left open, or what was left open did not take effect
    /// (or is looked at afresh anyway).
    Start,
    /// The workflow's own main call (the accept, the registration) took effect in an
    /// earlier run: go on after it.
    AfterMainCall,
}

/// What a workflow makes of an intent an earlier run left open, once the run has asked AWS
/// whether it took effect (and recorded the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSettle {
    /// Go on from there.
    Continue(Resume),
    /// The certificate's story ends here: record this outcome (established by reconciling).
    Ends {
        /// The stage of the outcome.
        stage: Stage,
        /// The outcome.
        outcome: Outcome,
    },
}

/// One certificate as the run hands it to a workflow, with the means to record its events.
pub struct Work<'a> {
    /// The manifest row.
    pub row: &'a ManifestRow,
    /// Where to start.
    pub resume: Resume,
    ledger: &'a LedgerWriter,
    state: &'a Mutex<LedgerState>,
    max_attempts: u32,
    gate: Gate,
}

impl<'a> Work<'a> {
    /// The certificate of `row`, recorded through `ledger`, whose `state` the writer keeps
    /// current; a call with an unknown outcome is sent at most `max_attempts` times; its
    /// first change passes `gate`.
    pub fn new(
        row: &'a ManifestRow,
        resume: Resume,
        ledger: &'a LedgerWriter,
        state: &'a Mutex<LedgerState>,
        max_attempts: u32,
        gate: Gate,
    ) -> Self {
        Work {
            row,
            resume,
            ledger,
            state,
            max_attempts,
            gate,
        }
    }

    /// The same certificate, to start at `resume` (the next workflow of a composition).
    pub fn resumed(self, resume: Resume) -> Self {
        Work { resume, ..self }
    }

    /// The certificate's events, written by a worker holding `side`'s credentials.
    pub fn item(&self, side: Side) -> Item<'a> {
        Item::gated(
            self.ledger,
            self.row,
            side,
            self.max_attempts,
            self.gate.clone(),
        )
    }

    /// What `f` makes of the ledger's record of the certificate as it stands now.
    pub fn record<T>(&self, f: impl FnOnce(Option<&ItemRecord>) -> T) -> T {
        let state = self.state.lock().expect("ledger state");
        f(state.get(&self.row.certificate_id).as_ref())
    }
}

/// Whose credentials a run acts with, as its workflow found its clients: the run records it
/// in the ledger's run line and, for the source side, checks it against the ledger and the
/// manifest before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acting {
    /// The source account (transfer, cancel, register, retire): one account per ledger.
    Source(Identity),
    /// One of the target accounts (accept, reject): they share the manifest's accept ledger.
    Target(Identity),
}

/// What a workflow is given to find its clients, once the ledger is open and locked.
pub struct Setup<'a> {
    /// The run's credentials and call context.
    pub session: &'a Session,
    /// The validated manifest.
    pub manifest: &'a Manifest,
    /// The run's ledger.
    pub ledger_path: &'a Path,
    /// `account (region)` -> the address its devices connect to, for the summary.
    pub device_endpoints: &'a mut BTreeMap<String, String>,
    /// Whose credentials the run acts with, once the workflow asked for its own clients.
    pub acting: &'a mut Option<Acting>,
}

impl Setup<'_> {
    /// The account and default region of the run's credentials (STS GetCallerIdentity).
    async fn identity(&self) -> Result<Identity, Error> {
        Ok(Identity {
            account: self.session.caller_account().await?,
            region: self.session.region(),
        })
    }

    /// The caller's own clients, one per region of the manifest (STS first): the run acts
    /// as the source account.
    pub async fn own_clients(&mut self) -> Result<AccountClients, Error> {
        let me = self.identity().await?;
        let clients = self
            .session
            .clients(&me.account, self.manifest.regions(), &me.region);
        *self.acting = Some(Acting::Source(me));
        Ok(clients)
    }

    /// The run acts for the target account of its credentials: its clients, once it is
    /// clear that some manifest row is addressed to that account (the others belong to other
    /// target accounts).
    pub async fn as_target(&mut self) -> Result<AccountClients, Error> {
        let me = self.identity().await?;
        let account = me.account.clone();
        *self.acting = Some(Acting::Target(me));
        let addressed = self
            .manifest
            .targets()
            .iter()
            .filter(|t| t.account == account)
            .map(|t| t.certificates)
            .sum::<usize>();
        if addressed == 0 {
            return Err(Error::Config(format!(
                "the credentials belong to account {account}, and no manifest row is addressed to it \
                 (targets: {}); check --profile (AWS_ACCESS_KEY_ID in the environment takes precedence over a profile)",
                self.manifest.target_accounts().join(", ")
            )));
        }
        let elsewhere = self.manifest.len() - addressed;
        if elsewhere > 0 {
            // Expected when several accounts share a manifest: detail (-v), not news.
            tracing::debug!(
                "{elsewhere} manifest rows are addressed to other accounts than {account}: left to them"
            );
        }
        Ok(self
            .session
            .clients(&account, self.manifest.regions(), &self.session.region()))
    }

    /// The target side's clients: with `targets`, those of every target account of the
    /// manifest (checked first, see [`Session::target_clients`]); without, the caller's own
    /// account's ([`Setup::as_target`]). Several target accounts share the accept ledger, so
    /// only the caller's own account is recorded as acting.
    pub async fn targets(
        &mut self,
        targets: Option<&TargetCredentials>,
    ) -> Result<Vec<AccountClients>, Error> {
        match targets {
            Some(t) => {
                self.session
                    .target_clients(self.manifest, t, "--target-profile")
                    .await
            }
            None => Ok(vec![self.as_target().await?]),
        }
    }

    /// Asks each region of `clients`' account for its device endpoint (DescribeEndpoint
    /// `iot:Data-ATS`), for the summary: devices must be reconfigured to it. A refusal is a
    /// warning, not a failure of the run.
    pub async fn add_device_endpoints(&mut self, clients: &AccountClients) {
        for region in self.manifest.regions() {
            let iot = clients.for_region(region.as_deref());
            let key = format!("{} ({})", clients.account(), iot.scope().region);
            if self.device_endpoints.contains_key(&key) {
                continue;
            }
            match iot.device_endpoint().await {
                Ok(address) => {
                    self.device_endpoints.insert(key, address);
                }
                Err(f) => tracing::warn!("cannot read the device endpoint of {key}: {f}"),
            }
        }
    }
}

/// The accounts a list of clients acts in: what a workflow acting on some target accounts
/// keeps in scope.
pub fn accounts_of(clients: &[AccountClients]) -> HashSet<String> {
    clients.iter().map(|c| c.account().to_string()).collect()
}

/// What one ledger-keeping command does to each certificate (see the module doc).
pub trait Workflow: Sized {
    /// What the command tells the workflow.
    type Options;

    /// The command's name, in the summary and the metrics.
    const COMMAND: &'static str;

    /// The ledger the workflow writes with these options.
    fn ledger(options: &Self::Options) -> LedgerSpec;

    /// Finds the clients the workflow acts with (STS checks first: a wrong profile stops the
    /// run before any certificate is touched).
    fn connect(
        setup: &mut Setup<'_>,
        options: Self::Options,
    ) -> impl Future<Output = Result<Self, Error>>;

    /// What the progress display calls the work (`transferring`).
    fn verb(&self) -> &'static str;

    /// Whether a row concerns this run at all: rows out of scope are neither processed nor
    /// counted (accept leaves rows addressed to other accounts to them).
    fn in_scope(&self, _rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        true
    }

    /// Whether the certificate still needs this workflow, given what the ledger says of it
    /// (finished ones don't: a rerun does nothing twice).
    fn wants(&self, rec: Option<&ItemRecord>, row: &ManifestRow) -> bool;

    /// The client that settles an intent an earlier run left open on this row, and whose
    /// credentials it holds; `None`: the intent is another command's to settle (the
    /// certificate stays in doubt until that command runs).
    fn settler(&self, row: &ManifestRow, open: &OpenIntent) -> Option<(&Iot, Side)>;

    /// Where the work goes on once the run has settled `open` (`took_effect`: whether it
    /// did). Called only when the certificate, as the ledger now stands, still needs work.
    fn after_settle(&self, row: &ManifestRow, open: &OpenIntent, took_effect: bool) -> AfterSettle;

    /// Processes one certificate.
    fn process(&self, work: Work<'_>) -> impl Future<Output = Result<ItemEnd, LedgerError>>;
}
