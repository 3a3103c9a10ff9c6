//! A manifest's ledgers read together (`status MANIFEST`, `report MANIFEST`): the transfer
//! and accept ledgers of a move by transfer, the register and retire ledgers of the
//! zero-downtime move, and the handoff ledger of the devices' new endpoint. Each certificate
//! is counted once, in the state of the ledger that says most about it ([`furthest`]).

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ledger::{
    Header, ItemRecord, ItemState, Ledger, LedgerError, LedgerKind, LedgerState, UndoHistory,
};
use crate::manifest::Manifest;
use crate::run::default_ledger;

use super::Counts;

/// Every kind of ledger, in the order of a migration.
pub const KINDS: [LedgerKind; 5] = [
    LedgerKind::Transfer,
    LedgerKind::Accept,
    LedgerKind::Register,
    LedgerKind::Retire,
    LedgerKind::Handoff,
];

/// One ledger of a manifest, read (never locked, never written).
pub struct ReadLedger {
    /// Which command writes it.
    pub kind: LedgerKind,
    /// Where it is.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
    /// Its state.
    pub state: LedgerState,
}

/// Reads the ledgers of `manifest`: for each kind the path `given` names (which must exist
/// and be of that kind), else its default beside the manifest when it exists. Returns them
/// in [`KINDS`] order with the default paths looked for in vain; warnings are logged.
pub fn read(
    manifest: &Path,
    given: &[(LedgerKind, Option<PathBuf>)],
) -> Result<(Vec<ReadLedger>, Vec<PathBuf>), Error> {
    let mut read = Vec::new();
    let mut missing = Vec::new();
    for kind in KINDS {
        let named = given
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, p)| p.clone());
        let path = named
            .clone()
            .unwrap_or_else(|| default_ledger(manifest, kind));
        // A default ledger may not exist (that command has not run); a ledger named must.
        if named.is_none() && !path.exists() {
            missing.push(path);
            continue;
        }
        read.push(read_one(path, Some(kind))?);
    }
    Ok((read, missing))
}

/// Reads one ledger; with `kind`, refuses a ledger of another kind.
pub fn read_one(path: PathBuf, kind: Option<LedgerKind>) -> Result<ReadLedger, Error> {
    let (header, state, warnings) = Ledger::read_only(&path, UndoHistory::Drop)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if let Some(kind) = kind.filter(|k| *k != header.kind) {
        return Err(LedgerError::WrongKind {
            path,
            found: header.kind.to_string(),
            expected: kind.to_string(),
        }
        .into());
    }
    Ok(ReadLedger {
        kind: header.kind,
        path,
        header,
        state,
    })
}

/// The record that says most about a certificate, and the kind of the ledger it comes from,
/// given its record in each ledger read (`records`, in any order).
///
/// Each way of moving is a pair of ledgers, an earlier and a later one: transfer then
/// accept, register then retire. The later ledger's record wins once it decided (accepted
/// or rejected; retired), or once it is its turn (the earlier one reached its goal, or has
/// nothing) and it says something; else the earlier one's. Of the two ways, the one further
/// along wins (a certificate is normally moved one way only). The handoff ledger's record
/// counts only for a certificate neither way has moved yet: a handoff goes beside a move,
/// and its own ledger's line says how far it got.
pub fn furthest<'a>(
    records: &[(LedgerKind, Option<ItemRecord<'a>>)],
) -> Option<(LedgerKind, ItemRecord<'a>)> {
    let of = |kind: LedgerKind| {
        records
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(k, r)| r.map(|r| (*k, r)))
    };
    let by_transfer = later_or_earlier(
        of(LedgerKind::Transfer),
        of(LedgerKind::Accept),
        ItemState::Transferred,
        |s| s.is_accepted() || s == ItemState::Rejected,
    );
    let by_registration = later_or_earlier(
        of(LedgerKind::Register),
        of(LedgerKind::Retire),
        ItemState::Registered,
        |s| s == ItemState::Retired,
    );
    let moved = match (by_transfer, by_registration) {
        (Some(a), Some(b)) if progress(a.1) > progress(b.1) => Some(a),
        (a, b) => b.or(a),
    };
    moved.or(of(LedgerKind::Handoff))
}

/// One way of moving: the later ledger's record, or the earlier's (see [`furthest`]).
fn later_or_earlier<'a>(
    earlier: Option<(LedgerKind, ItemRecord<'a>)>,
    later: Option<(LedgerKind, ItemRecord<'a>)>,
    earlier_goal: ItemState,
    decided: impl Fn(ItemState) -> bool,
) -> Option<(LedgerKind, ItemRecord<'a>)> {
    let settled = |r: &ItemRecord| r.open_intent.is_none();
    let its_turn = earlier.is_none_or(|(_, r)| r.state == earlier_goal);
    let said_something = |r: &ItemRecord| r.state != ItemState::Started || r.open_intent.is_some();
    later
        .filter(|(_, r)| settled(r) && decided(r.state))
        .or(later.filter(|(_, r)| its_turn && said_something(r)))
        .or(earlier)
        .or(later)
}

/// How far along a record is, to choose between the two ways of moving.
fn progress(r: ItemRecord) -> u8 {
    if r.open_intent.is_some() {
        return 1;
    }
    match r.state {
        ItemState::Accepted | ItemState::Carried | ItemState::Retired => 4,
        ItemState::Transferred
        | ItemState::Registered
        | ItemState::Rejected
        | ItemState::HandedOff => 3,
        ItemState::Cancelled | ItemState::Restored => 2,
        ItemState::Failed | ItemState::Waiting => 1,
        ItemState::Started => 0,
    }
}

/// Every manifest certificate counted once, in its furthest state across `ledgers`.
pub fn combined_counts(manifest: &Manifest, ledgers: &[ReadLedger]) -> Result<Counts, Error> {
    let mut counts = Counts::default();
    for row in manifest.rows()? {
        let row = row?;
        let records: Vec<(LedgerKind, Option<ItemRecord>)> = ledgers
            .iter()
            .map(|l| (l.kind, l.state.get(&row.certificate_id)))
            .collect();
        counts.add_record(furthest(&records).map(|(_, r)| r).as_ref());
    }
    Ok(counts)
}
