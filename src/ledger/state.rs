//! The state a ledger's events fold into: one compact record per certificate.
//!
//! A resumed migration of ten million certificates has to fit a small cron machine, so a
//! certificate costs its id (32 bytes, decoded from its 64 hex digits) and 8 bytes: its state,
//! whether it has details, and its destination (an index into a table of the distinct
//! target/region pairs, of which a fleet has few). The details (an intent left open, a
//! failure, what prepare changed) are kept in a side table, only for the certificates that
//! have them: after a migration that is almost none.
//!
//! The records sit in one array sorted by id, found through a directory of the ids' leading
//! bits and a parallel array of each id's first 8 bytes (a bucket's prefixes share a cache
//! line, so a lookup reads three lines: directory, prefixes, record); certificates new since
//! the array was last sorted wait in a small hash map, merged into the array when it grows
//! past a fraction of it (and before a checkpoint is written, which stores the array as it
//! is). A resume looks up every manifest row once, in an order unrelated to the array's:
//! [`LedgerState::get_many`] starts the reads of a batch of rows before it needs any of them,
//! so their cache misses overlap instead of queueing one after another.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::{Action, Details, Event, Identity, Outcome, Stage, Wait};
use crate::certificate::{self, CertStatus, HexCase};

/// Whether a ledger's state keeps what prepare changed. Only undo (`cancel --restore`, and the
/// rollback of a failed transfer) needs it; without it a large ledger's state stays small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UndoHistory {
    /// Keep it (`cancel --restore`).
    Keep,
    /// Keep it until the certificate is transferred (`transfer`, which undoes prepare only
    /// for certificates that failed): a finished certificate costs nothing more.
    UntilTransferred,
    /// Leave it out.
    #[default]
    Drop,
}

impl UndoHistory {
    /// Whether a state kept this way holds everything a state kept as `wanted` needs.
    pub fn covers(self, wanted: UndoHistory) -> bool {
        match self {
            UndoHistory::Keep => true,
            UndoHistory::UntilTransferred => wanted != UndoHistory::Keep,
            UndoHistory::Drop => wanted == UndoHistory::Drop,
        }
    }
}

/// The state of one certificate as the ledger tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum ItemState {
    /// Events exist but nothing terminal yet (e.g. prepare done, transfer not sent).
    #[default]
    Started = 0,
    /// Pending transfer to its target.
    Transferred = 1,
    /// Failed; see the failure.
    Failed = 2,
    /// Transfer cancelled.
    Cancelled = 3,
    /// Transfer cancelled and prepare undone.
    Restored = 4,
    /// The target accepted (seen by cancel, or done by accept).
    Accepted = 5,
    /// The target rejected.
    Rejected = 6,
    /// The target accepted, and what the certificate carried was rebuilt there
    /// (`accept --carry`).
    Carried = 7,
    /// Registered in the target (`register`): the source keeps its copy.
    Registered = 8,
    /// The source's copy retired after `register`.
    Retired = 9,
    /// Refused before any change, waiting for an option (see the failure for which): the
    /// same command with it takes the certificate.
    Waiting = 10,
    /// Its devices were handed their target's endpoint (handoff).
    HandedOff = 11,
}

impl ItemState {
    /// Accepted by the target, carried or not.
    pub fn is_accepted(self) -> bool {
        matches!(self, ItemState::Accepted | ItemState::Carried)
    }
}

impl ItemState {
    /// The state stored as `code` (see the `repr`), if it is one.
    pub(super) fn from_code(code: u8) -> Option<ItemState> {
        Some(match code {
            0 => ItemState::Started,
            1 => ItemState::Transferred,
            2 => ItemState::Failed,
            3 => ItemState::Cancelled,
            4 => ItemState::Restored,
            5 => ItemState::Accepted,
            6 => ItemState::Rejected,
            7 => ItemState::Carried,
            8 => ItemState::Registered,
            9 => ItemState::Retired,
            10 => ItemState::Waiting,
            11 => ItemState::HandedOff,
            _ => return None,
        })
    }
}

/// Why an item failed (or waits), as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stage that failed.
    pub stage: Stage,
    /// AWS error code, or the tool's own reason code.
    pub error_code: String,
    /// HTTP status, if AWS answered.
    pub http_status: Option<u16>,
    /// Message for a person.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// The cause may go away by itself: a plain rerun tries the item again.
    pub retryable: bool,
    /// What prepare changed was undone (`Some(true)`) or is left (`Some(false)`); `None`:
    /// nothing had been changed.
    pub rolled_back: Option<bool>,
    /// Set when the item is not failed but waiting: what for.
    pub waiting: Option<Wait>,
}

/// What prepare changed, so that `cancel --restore` can undo it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undo {
    /// Status before deactivation (`ACTIVE`), if prepare deactivated.
    pub previous_status: Option<CertStatus>,
    /// Policies prepare detached and restore has not re-attached yet.
    pub policies: Vec<String>,
    /// Things prepare detached and restore has not re-attached yet.
    pub things: Vec<String>,
}

impl Undo {
    /// True when nothing is left to undo.
    pub fn is_empty(&self) -> bool {
        self.previous_status.is_none() && self.policies.is_empty() && self.things.is_empty()
    }
}

/// An intent recorded without an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIntent {
    /// Stage of the intent.
    pub stage: Stage,
    /// The call.
    pub action: Action,
    /// Policy, thing or thing type named by the intent.
    pub subject: Option<String>,
    /// Thing group named by the intent (carry).
    pub group: Option<String>,
    /// Status before the call (deactivate / reactivate).
    pub previous_status: Option<CertStatus>,
}

/// Everything the ledger knows about one certificate: a view into the state, valid while
/// the state is borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRecord<'a> {
    /// Latest state.
    pub state: ItemState,
    /// Target account of the latest event that named one.
    pub target: Option<&'a str>,
    /// Region of the latest event that named one.
    pub region: Option<&'a str>,
    /// An intent without an outcome: the item is in doubt until reconciled.
    pub open_intent: Option<&'a OpenIntent>,
    /// Set while state is `Failed`.
    pub failure: Option<&'a Failure>,
    /// What prepare changed (kept as the state's [`UndoHistory`] says).
    pub undo: Option<&'a Undo>,
}

/// A certificate id as the state keys it: the 32 bytes of 64 lowercase hex digits (every id
/// the tool writes), or the text itself for anything else a ledger may hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum CertKey {
    Hex([u8; 32]),
    Text(Box<str>),
}

impl CertKey {
    pub(super) fn parse(id: &str) -> CertKey {
        match decode_hex_id(id) {
            Some(bytes) => CertKey::Hex(bytes),
            None => CertKey::Text(id.into()),
        }
    }

    fn borrowed(&self) -> KeyRef<'_> {
        match self {
            CertKey::Hex(bytes) => KeyRef::Hex(bytes),
            CertKey::Text(text) => KeyRef::Text(text),
        }
    }
}

/// A borrowed [`CertKey`], for lookups that should not allocate.
#[derive(Clone, Copy)]
enum KeyRef<'a> {
    Hex(&'a [u8; 32]),
    Text(&'a str),
}

/// The 32 bytes of a 64-digit lowercase hex id; `None` for anything else (uppercase too, so
/// that the text of every id round-trips).
pub(super) fn decode_hex_id(id: &str) -> Option<[u8; 32]> {
    certificate::decode_hex_id(id.as_bytes(), HexCase::Lower)
}

/// A certificate id as text, made on the fly from the stored bytes (no allocation).
#[derive(Clone, Copy)]
pub struct CertId<'a>(IdText<'a>);

#[derive(Clone, Copy)]
enum IdText<'a> {
    Hex([u8; 64]),
    Text(&'a str),
}

impl<'a> CertId<'a> {
    fn of(key: KeyRef<'a>) -> CertId<'a> {
        match key {
            KeyRef::Hex(bytes) => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut text = [0u8; 64];
                for (i, byte) in bytes.iter().enumerate() {
                    text[2 * i] = DIGITS[usize::from(byte >> 4)];
                    text[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
                }
                CertId(IdText::Hex(text))
            }
            KeyRef::Text(text) => CertId(IdText::Text(text)),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            IdText::Hex(text) => std::str::from_utf8(text).expect("hex digits are ASCII"),
            IdText::Text(text) => text,
        }
    }
}

impl std::ops::Deref for CertId<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for CertId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CertId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The 8 bytes every certificate costs besides its id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Compact {
    pub(super) state: ItemState,
    /// The certificate has an entry in [`LedgerState::details`].
    pub(super) has_details: bool,
    /// Index into [`LedgerState::destinations`]; 0 is "none named".
    pub(super) destination: u32,
}

/// One record of the sorted array.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) key: [u8; 32],
    pub(super) rec: Compact,
}

/// What only some certificates have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ItemDetails {
    pub(super) open_intent: Option<OpenIntent>,
    pub(super) failure: Option<Failure>,
    pub(super) undo: Option<Undo>,
}

impl ItemDetails {
    fn is_empty(&self) -> bool {
        self.open_intent.is_none() && self.failure.is_none() && self.undo.is_none()
    }
}

/// A target account and a region, as events name them.
pub(super) type Destination = (Option<Box<str>>, Option<Box<str>>);

/// New certificates wait in the hash map until it holds this many, or a fraction of the
/// sorted array ([`MERGE_FRACTION`]), whichever is more.
const MERGE_MIN: usize = 1 << 16;
const MERGE_FRACTION: usize = 8;
/// The directory has one entry per this many records, about.
const RECORDS_PER_BUCKET: usize = 8;

/// The first 8 bytes of a key as an integer that orders like the key.
fn prefix_of(key: &[u8; 32]) -> u64 {
    let mut lead = [0u8; 8];
    lead.copy_from_slice(&key[..8]);
    u64::from_be_bytes(lead)
}

/// The replayed content of a ledger: one record per certificate id.
#[derive(Debug)]
pub struct LedgerState {
    /// Sorted by key.
    pub(super) sorted: Vec<Slot>,
    /// `directory[b]..directory[b + 1]` is the range of `sorted` whose keys start with the
    /// `bits` bits `b`.
    directory: Vec<u32>,
    bits: u32,
    /// `prefixes[i]` is the first 8 bytes of `sorted[i].key`, big-endian: compared as
    /// integers they order like the keys.
    prefixes: Vec<u64>,
    /// Hex ids not in `sorted` yet.
    recent: HashMap<[u8; 32], Compact>,
    /// Ids that are not 64 lowercase hex digits (never written by the tool itself).
    pub(super) other: HashMap<Box<str>, Compact>,
    pub(super) details: HashMap<CertKey, ItemDetails>,
    /// Index 0 is (None, None).
    pub(super) destinations: Vec<Destination>,
    destination_ids: HashMap<Destination, u32>,
    pub(super) undo: UndoHistory,
    /// Number of runs recorded (RunStart lines).
    pub runs: u32,
    /// The account and region the ledger belongs to: those of the latest run that recorded
    /// something of its certificates (`None`: no such run named them; a run that found none
    /// of them in its account claims nothing).
    pub identity: Option<Identity>,
    /// The account and region the latest run line names: the run whose events come now.
    pub run_identity: Option<Identity>,
}

impl LedgerState {
    /// An empty state, keeping what prepare changed or not.
    pub fn new(undo: UndoHistory) -> Self {
        let mut state = LedgerState {
            sorted: Vec::new(),
            directory: Vec::new(),
            bits: 0,
            prefixes: Vec::new(),
            recent: HashMap::new(),
            other: HashMap::new(),
            details: HashMap::new(),
            destinations: Vec::new(),
            destination_ids: HashMap::new(),
            undo,
            runs: 0,
            identity: None,
            run_identity: None,
        };
        state.intern_destination((None, None));
        state.build_directory();
        state
    }

    /// Which undo history the state keeps.
    pub fn undo_history(&self) -> UndoHistory {
        self.undo
    }

    /// The record of a certificate, if the ledger mentions it.
    pub fn get(&self, id: &str) -> Option<ItemRecord<'_>> {
        match decode_hex_id(id) {
            Some(bytes) => {
                let rec = *self.find(&bytes)?;
                Some(self.view(KeyRef::Hex(&bytes), rec))
            }
            None => {
                let rec = *self.other.get(id)?;
                Some(self.view(KeyRef::Text(id), rec))
            }
        }
    }

    /// Every record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (CertId<'_>, ItemRecord<'_>)> {
        let sorted = self.sorted.iter().map(|s| (KeyRef::Hex(&s.key), s.rec));
        let recent = self.recent.iter().map(|(k, r)| (KeyRef::Hex(k), *r));
        let other = self.other.iter().map(|(k, r)| (KeyRef::Text(k), *r));
        sorted
            .chain(recent)
            .chain(other)
            .map(|(key, rec)| (CertId::of(key), self.view(key, rec)))
    }

    /// The records that have details (an open intent, a failure, an undo history): few,
    /// so listing failures or items in doubt does not walk every certificate.
    pub fn with_details(&self) -> impl Iterator<Item = (CertId<'_>, ItemRecord<'_>)> {
        self.details.keys().filter_map(|key| {
            let key = key.borrowed();
            let rec = match key {
                KeyRef::Hex(bytes) => *self.find(bytes)?,
                KeyRef::Text(text) => *self.other.get(text)?,
            };
            Some((CertId::of(key), self.view(key, rec)))
        })
    }

    /// Number of certificates the ledger mentions.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len() + self.other.len()
    }

    /// True when the ledger mentions no certificate.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn view<'s>(&'s self, key: KeyRef<'_>, rec: Compact) -> ItemRecord<'s> {
        let details = if rec.has_details {
            let found = match key {
                KeyRef::Hex(bytes) => self.details.get(&CertKey::Hex(*bytes)),
                KeyRef::Text(text) => self.details.get(&CertKey::Text(text.into())),
            };
            found
        } else {
            None
        };
        let (target, region) = &self.destinations[rec.destination as usize];
        ItemRecord {
            state: rec.state,
            target: target.as_deref(),
            region: region.as_deref(),
            open_intent: details.and_then(|d| d.open_intent.as_ref()),
            failure: details.and_then(|d| d.failure.as_ref()),
            undo: details.and_then(|d| d.undo.as_ref()),
        }
    }

    fn bucket(&self, key: &[u8; 32]) -> std::ops::Range<usize> {
        if self.bits == 0 {
            return 0..self.sorted.len();
        }
        let lead = u32::from_be_bytes([key[0], key[1], key[2], key[3]]) >> (32 - self.bits);
        self.directory[lead as usize] as usize..self.directory[lead as usize + 1] as usize
    }

    /// Where `key` is (or would be) in `sorted`.
    fn position(&self, key: &[u8; 32]) -> Result<usize, usize> {
        self.position_in(key, self.bucket(key))
    }

    /// Where `key` is (or would be) in `sorted`, searching the bucket `range` only.
    fn position_in(&self, key: &[u8; 32], range: std::ops::Range<usize>) -> Result<usize, usize> {
        let prefix = prefix_of(key);
        let prefixes = &self.prefixes[range.clone()];
        // Random ids share no prefix, so the full keys are compared for one record at most.
        let lo = range.start + prefixes.partition_point(|&p| p < prefix);
        let hi = range.start + prefixes.partition_point(|&p| p <= prefix);
        match self.sorted[lo..hi].binary_search_by(|s| s.key.cmp(key)) {
            Ok(i) => Ok(lo + i),
            Err(i) => Err(lo + i),
        }
    }

    fn find(&self, key: &[u8; 32]) -> Option<&Compact> {
        match self.position(key) {
            Ok(i) => Some(&self.sorted[i].rec),
            Err(_) => self.recent.get(key),
        }
    }

    /// The records of many certificates: for each id what [`LedgerState::get`] gives.
    ///
    /// Each lookup is a chain of three dependent reads (directory, prefixes, record), and at
    /// millions of certificates each read is a cache miss. Done in stages over the whole
    /// batch, every stage's reads are independent of each other and overlap.
    pub fn get_many<'s>(&'s self, ids: &[&str]) -> Vec<Option<ItemRecord<'s>>> {
        let keys: Vec<Option<[u8; 32]>> = ids.iter().map(|id| decode_hex_id(id)).collect();
        let ranges: Vec<std::ops::Range<usize>> = keys
            .iter()
            .map(|key| match key {
                Some(key) => self.bucket(key),
                None => 0..0,
            })
            .collect();
        // Touch each bucket's prefixes (its first and last, which may lie on two lines)
        // before searching any of them.
        let mut touched = 0u64;
        for range in &ranges {
            if !range.is_empty() {
                touched ^= self.prefixes[range.start] ^ self.prefixes[range.end - 1];
            }
        }
        let found: Vec<Result<usize, usize>> = keys
            .iter()
            .zip(&ranges)
            .map(|(key, range)| match key {
                Some(key) => self.position_in(key, range.clone()),
                None => Err(0),
            })
            .collect();
        // The same for the records the prefixes pointed at.
        for at in &found {
            let (Ok(i) | Err(i)) = *at;
            if let Some(slot) = self.sorted.get(i) {
                touched ^= u64::from(slot.key[31]);
            }
        }
        std::hint::black_box(touched);
        ids.iter()
            .zip(keys)
            .zip(found)
            .map(|((id, key), at)| match (key, at) {
                (Some(bytes), Ok(i)) => Some(self.view(KeyRef::Hex(&bytes), self.sorted[i].rec)),
                (Some(bytes), Err(_)) => {
                    let rec = *self.recent.get(&bytes)?;
                    Some(self.view(KeyRef::Hex(&bytes), rec))
                }
                (None, _) => {
                    let rec = *self.other.get(*id)?;
                    Some(self.view(KeyRef::Text(id), rec))
                }
            })
            .collect()
    }

    /// The record of `key`, made (in state `Started`) if it is new.
    fn entry(&mut self, key: &CertKey) -> &mut Compact {
        match key {
            CertKey::Hex(bytes) => {
                if let Ok(i) = self.position(bytes) {
                    return &mut self.sorted[i].rec;
                }
                if !self.recent.contains_key(bytes)
                    && self.recent.len() >= MERGE_MIN.max(self.sorted.len() / MERGE_FRACTION)
                {
                    self.merge_recent();
                    return self.entry(key);
                }
                self.recent.entry(*bytes).or_default()
            }
            CertKey::Text(text) => self.other.entry(text.clone()).or_default(),
        }
    }

    /// Moves the recent records into the sorted array (in place: the array grows at its end
    /// and the two sorted runs are merged from the back).
    pub(super) fn merge_recent(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let mut recent: Vec<Slot> = self
            .recent
            .drain()
            .map(|(key, rec)| Slot { key, rec })
            .collect();
        self.recent.shrink_to_fit();
        recent.sort_unstable_by_key(|s| s.key);
        let old = self.sorted.len();
        self.sorted.reserve_exact(recent.len());
        self.sorted.extend_from_slice(&recent);
        // Merge from the back: sorted[..old] and recent into sorted[..old + recent.len()].
        let (mut i, mut j, mut out) = (old, recent.len(), self.sorted.len());
        while j > 0 {
            out -= 1;
            if i > 0 && self.sorted[i - 1].key > recent[j - 1].key {
                self.sorted[out] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[out] = recent[j - 1];
                j -= 1;
            }
        }
        self.build_directory();
    }

    /// Makes the array the only home of hex records and rebuilds its directory (after a
    /// merge, or after a checkpoint filled the array).
    pub(super) fn build_directory(&mut self) {
        let wanted = (self.sorted.len() / RECORDS_PER_BUCKET).max(1);
        self.bits = (usize::BITS - 1 - wanted.leading_zeros()).min(24);
        let buckets = 1usize << self.bits;
        self.directory.clear();
        self.directory.reserve_exact(buckets + 1);
        let mut at = 0usize;
        for b in 0..buckets {
            while at < self.sorted.len() && self.lead(&self.sorted[at].key) < b {
                at += 1;
            }
            self.directory.push(at as u32);
        }
        self.directory.push(self.sorted.len() as u32);
        self.prefixes = self
            .sorted
            .iter()
            .map(|slot| prefix_of(&slot.key))
            .collect();
    }

    fn lead(&self, key: &[u8; 32]) -> usize {
        if self.bits == 0 {
            0
        } else {
            (u32::from_be_bytes([key[0], key[1], key[2], key[3]]) >> (32 - self.bits)) as usize
        }
    }

    /// The index of a destination, added if new.
    pub(super) fn intern_destination(&mut self, destination: Destination) -> u32 {
        if let Some(&id) = self.destination_ids.get(&destination) {
            return id;
        }
        let id = self.destinations.len() as u32;
        self.destinations.push(destination.clone());
        self.destination_ids.insert(destination, id);
        id
    }

    /// Fills an empty state from a checkpoint's parts.
    pub(super) fn restore(
        &mut self,
        sorted: Vec<Slot>,
        other: HashMap<Box<str>, Compact>,
        details: HashMap<CertKey, ItemDetails>,
        destinations: Vec<Destination>,
        runs: u32,
        identities: [Option<Identity>; 2],
    ) {
        self.sorted = sorted;
        self.other = other;
        self.details = details;
        self.destination_ids = destinations
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, d)| (d, i as u32))
            .collect();
        self.destinations = destinations;
        self.runs = runs;
        [self.identity, self.run_identity] = identities;
        self.recent.clear();
        self.build_directory();
    }

    /// A run line naming (or not) the account and region of its run.
    pub fn start_run(&mut self, run: u32, identity: Option<Identity>) {
        self.runs = self.runs.max(run);
        self.run_identity = identity;
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, ev: &Event) {
        // The run's account owns the ledger once it recorded something of a certificate; a
        // certificate not found in its account (the wrong credentials) claims nothing.
        let claims = !(ev.outcome == Outcome::Waiting
            && ev.details.waiting_for == Some(Wait::SourceAccount));
        if claims && self.identity != self.run_identity && self.run_identity.is_some() {
            self.identity = self.run_identity.clone();
        }
        let key = CertKey::parse(&ev.id);
        let rec = *self.entry(&key);
        let mut next = rec;
        let (target, region) = &self.destinations[rec.destination as usize];
        let new_target = ev
            .target
            .as_deref()
            .filter(|t| target.as_deref() != Some(*t));
        let new_region = ev
            .region
            .as_deref()
            .filter(|r| region.as_deref() != Some(*r));
        if new_target.is_some() || new_region.is_some() {
            let destination = (
                new_target.map(Box::from).or_else(|| target.clone()),
                new_region.map(Box::from).or_else(|| region.clone()),
            );
            next.destination = self.intern_destination(destination);
        }
        let keep_undo = self.undo != UndoHistory::Drop;
        let d = &ev.details;
        let mut details = if rec.has_details {
            self.details.remove(&key).unwrap_or_default()
        } else {
            ItemDetails::default()
        };
        match ev.outcome {
            Outcome::Intent => {
                details.open_intent = d.action.map(|action| OpenIntent {
                    stage: ev.stage,
                    action,
                    subject: d
                        .policy
                        .clone()
                        .or_else(|| d.thing.clone())
                        .or_else(|| d.thing_type.clone()),
                    group: d.group.clone(),
                    previous_status: d.previous_status.clone(),
                });
            }
            Outcome::Unknown => {
                // The intent stays open: only reconciliation closes it.
            }
            Outcome::Done => {
                details.open_intent = None;
                if keep_undo {
                    record_undo(&mut details.undo, d);
                }
            }
            Outcome::NotDone => details.open_intent = None,
            Outcome::Transferred => {
                details.open_intent = None;
                details.failure = None;
                if self.undo == UndoHistory::UntilTransferred {
                    details.undo = None;
                }
                next.state = ItemState::Transferred;
            }
            Outcome::Failed | Outcome::Waiting => {
                // Neither closes an open intent: its outcome may still be unknown.
                let waiting = ev.outcome == Outcome::Waiting;
                next.state = if waiting {
                    ItemState::Waiting
                } else {
                    ItemState::Failed
                };
                details.failure = Some(Failure {
                    stage: d.failed_stage.unwrap_or(ev.stage),
                    error_code: d.error_code.clone().unwrap_or_default(),
                    http_status: d.http_status,
                    message: d.message.clone().unwrap_or_default(),
                    attempts: d.attempts.unwrap_or(0),
                    retryable: d.retryable.unwrap_or(false),
                    rolled_back: d.rolled_back,
                    waiting: waiting.then(|| d.waiting_for.unwrap_or(Wait::Flags)),
                });
            }
            Outcome::Cancelled => terminal(&mut next, &mut details, ItemState::Cancelled),
            Outcome::Restored => terminal(&mut next, &mut details, ItemState::Restored),
            Outcome::Accepted if d.carried == Some(true) => {
                terminal(&mut next, &mut details, ItemState::Carried)
            }
            Outcome::AlreadyAccepted | Outcome::Accepted => {
                terminal(&mut next, &mut details, ItemState::Accepted)
            }
            Outcome::Rejected => terminal(&mut next, &mut details, ItemState::Rejected),
            Outcome::Registered => terminal(&mut next, &mut details, ItemState::Registered),
            Outcome::Retired => terminal(&mut next, &mut details, ItemState::Retired),
            Outcome::HandedOff => terminal(&mut next, &mut details, ItemState::HandedOff),
            // A record of what the certificate carries: it changes nothing.
            Outcome::Snapshot => {}
        }
        next.has_details = !details.is_empty();
        if next.has_details {
            self.details.insert(key.clone(), details);
        }
        *self.entry(&key) = next;
    }
}

fn terminal(rec: &mut Compact, details: &mut ItemDetails, state: ItemState) {
    details.open_intent = None;
    details.failure = None;
    rec.state = state;
}

/// Keeps track of what prepare changed and restore undid; an empty history is dropped.
fn record_undo(undo: &mut Option<Undo>, d: &Details) {
    let Some(action) = d.action else { return };
    let history = undo.get_or_insert_with(Default::default);
    match action {
        Action::Deactivate => history.previous_status = d.previous_status.clone(),
        Action::DetachPolicy => push_unique(&mut history.policies, d.policy.as_deref()),
        Action::DetachThing => push_unique(&mut history.things, d.thing.as_deref()),
        Action::Reactivate => history.previous_status = None,
        Action::ReattachPolicy => history
            .policies
            .retain(|p| Some(p.as_str()) != d.policy.as_deref()),
        Action::ReattachThing => history
            .things
            .retain(|t| Some(t.as_str()) != d.thing.as_deref()),
        _ => {}
    }
    if history.is_empty() {
        *undo = None;
    }
}

fn push_unique(list: &mut Vec<String>, name: Option<&str>) {
    if let Some(name) = name {
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
    }
}
