//! The checkpoint beside a ledger (`LEDGER.checkpoint`): the compact state of every
//! certificate as of a ledger offset, so that a resume reads the checkpoint and replays only
//! the ledger's lines after that offset instead of all of them.
//!
//! It is a cache, never the record: the ledger stays complete and is never shortened, and a
//! checkpoint that does not verify is ignored (with a warning) and the whole ledger replayed.
//! It is written durably ([`crate::durable`]: a temporary file, synced, renamed over the old
//! one, the directory synced), so a crash leaves the old checkpoint or the new one, never half
//! of one.
//!
//! # Format (binary, little-endian)
//!
//! `MAGIC`, format `u32`, undo history `u8`, SHA-256 of the ledger's first line (its header),
//! covered length `u64` and lines `u64`, the length of the seam `u32` and the SHA-256 of the
//! ledger's last `seam` bytes before the covered length, runs `u32`, the ledger's account and
//! region and its latest run's (format 4); the destinations; the
//! records sorted by id (32 bytes, state, destination); the records of other ids; the details
//! (open intents, failures, undo histories); and last the SHA-256 of everything before it.
//!
//! # What is verified before it is used
//!
//! Its own digest (a torn or damaged file), its format, the ledger's header (another ledger),
//! the ledger's length (not shorter than what it covers: truncated) and the seam: any edit
//! that changes the length of the covered part moves the seam's bytes, and an edit of the last
//! MiB is seen directly. An edit elsewhere that keeps every length is not: deleting the
//! checkpoint makes the next run replay the whole ledger (and write a new one).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::event::{Action, Identity, Stage, Wait};
use super::state::{
    CertKey, Compact, Destination, Failure, ItemDetails, ItemState, LedgerState, OpenIntent, Slot,
    Undo, UndoHistory,
};
use crate::certificate::CertStatus;

const MAGIC: &[u8; 8] = b"ICMCKPT\n";
/// Version of the checkpoint format; a checkpoint of another version is ignored.
// 2: failures record whether they were rolled back; undo kept until transferred.
// 3: open intents name a thing group (carry).
// 4: failures say what a waiting certificate waits for; the ledger's account and region.
pub(crate) const FORMAT: u32 = 4;
/// The oldest format still read (what a later one adds is absent from it).
const OLDEST_READ: u32 = 3;
/// The part of the ledger just before the covered length whose digest is kept.
const SEAM_BYTES: u64 = 1 << 20;
/// Bytes of one sorted record in the file.
const RECORD_BYTES: u64 = 32 + 1 + 4;

/// `LEDGER.checkpoint`.
pub fn checkpoint_path(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".checkpoint");
    PathBuf::from(p)
}

/// Where a checkpoint stands in its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Covered {
    /// Bytes of the ledger it covers (always whole lines).
    pub(super) len: u64,
    /// Lines of the ledger it covers.
    pub(super) lines: u64,
}

/// A checkpoint that verified against its ledger.
pub(super) struct Loaded {
    pub(super) state: LedgerState,
    pub(super) covered: Covered,
}

/// Why a checkpoint was not used.
#[derive(Debug, thiserror::Error)]
pub(super) enum Rejected {
    #[error("it cannot be read: {0}")]
    Io(#[from] io::Error),
    #[error("it is damaged ({0}); a write may have been cut short")]
    Damaged(String),
    #[error("it was written in checkpoint format {0}, which this version does not read")]
    Format(u32),
    #[error("it belongs to another ledger (the ledger's header differs)")]
    OtherLedger,
    #[error("it covers {covered} bytes but the ledger has only {len}: the ledger was truncated or replaced")]
    Truncated { covered: u64, len: u64 },
    #[error("the ledger's bytes before offset {0} are not those it covers: the ledger was edited or replaced")]
    Edited(u64),
    #[error("it leaves out what prepare changed, which `cancel --restore` (or a rollback) needs")]
    NoUndo,
}

/// Reads the checkpoint of `ledger` (of length `len`), if there is one, and checks it against
/// the ledger. `Ok(None)`: there is none.
pub(super) fn load(
    ledger_path: &Path,
    ledger: &mut File,
    len: u64,
    undo: UndoHistory,
) -> Result<Option<Loaded>, Rejected> {
    let path = checkpoint_path(ledger_path);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file_len = file.metadata()?.len();
    let mut r = Decoder {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        left: file_len,
    };
    let mut magic = [0u8; 8];
    r.bytes(&mut magic)?;
    if &magic != MAGIC {
        return Err(Rejected::Damaged("not a checkpoint".into()));
    }
    let format = r.u32()?;
    if !(OLDEST_READ..=FORMAT).contains(&format) {
        return Err(Rejected::Format(format));
    }
    let kept = match r.u8()? {
        0 => UndoHistory::Drop,
        1 => UndoHistory::Keep,
        2 => UndoHistory::UntilTransferred,
        other => return Err(Rejected::Damaged(format!("undo history {other}"))),
    };
    let header_digest: [u8; 32] = r.array()?;
    let covered = Covered {
        len: r.u64()?,
        lines: r.u64()?,
    };
    let seam = u64::from(r.u32()?);
    let seam_digest: [u8; 32] = r.array()?;
    let runs = r.u32()?;
    let mut identities = [None, None];
    if format >= 4 {
        for identity in &mut identities {
            *identity = r.option(|r| {
                Ok(Identity {
                    account: r.str()?,
                    region: r.str()?,
                })
            })?;
        }
    }

    // The ledger first: a checkpoint of another or an edited ledger is not read further.
    if header_line_digest(ledger)? != Some(header_digest) {
        return Err(Rejected::OtherLedger);
    }
    if covered.len > len {
        return Err(Rejected::Truncated {
            covered: covered.len,
            len,
        });
    }
    if seam > covered.len || range_digest(ledger, covered.len - seam, covered.len)? != seam_digest {
        return Err(Rejected::Edited(covered.len));
    }
    if !kept.covers(undo) {
        return Err(Rejected::NoUndo);
    }

    let destinations = r.count(2)?;
    let mut table: Vec<Destination> = Vec::with_capacity(destinations);
    for _ in 0..destinations {
        let target = r.opt_str()?.map(String::into_boxed_str);
        let region = r.opt_str()?.map(String::into_boxed_str);
        table.push((target, region));
    }
    if table.first() != Some(&(None, None)) {
        return Err(Rejected::Damaged("no empty destination".into()));
    }
    let compact = |r: &mut Decoder, table: &[Destination]| -> Result<Compact, Rejected> {
        let code = r.u8()?;
        let state =
            ItemState::from_code(code).ok_or_else(|| Rejected::Damaged(format!("state {code}")))?;
        let destination = r.u32()?;
        if destination as usize >= table.len() {
            return Err(Rejected::Damaged(format!("destination {destination}")));
        }
        Ok(Compact {
            state,
            has_details: false,
            destination,
        })
    };
    let records = r.count(RECORD_BYTES)?;
    let mut sorted: Vec<Slot> = Vec::with_capacity(records);
    for _ in 0..records {
        let key: [u8; 32] = r.array()?;
        let rec = compact(&mut r, &table)?;
        if sorted.last().is_some_and(|last| last.key >= key) {
            return Err(Rejected::Damaged("records out of order".into()));
        }
        sorted.push(Slot { key, rec });
    }
    let others = r.count(6)?;
    let mut other = HashMap::with_capacity(others);
    for _ in 0..others {
        let id = r.str()?.into_boxed_str();
        let rec = compact(&mut r, &table)?;
        other.insert(id, rec);
    }
    let with_details = r.count(2)?;
    let mut details = HashMap::with_capacity(with_details);
    for _ in 0..with_details {
        let key = match r.u8()? {
            0 => CertKey::Hex(r.array()?),
            1 => CertKey::Text(r.str()?.into_boxed_str()),
            other => return Err(Rejected::Damaged(format!("key kind {other}"))),
        };
        let d = ItemDetails {
            open_intent: r.option(read_intent)?,
            failure: r.option(|r| read_failure(r, format))?,
            undo: r.option(read_undo)?,
        };
        let rec = match &key {
            CertKey::Hex(bytes) => sorted
                .binary_search_by(|s| s.key.cmp(bytes))
                .ok()
                .map(|i| &mut sorted[i].rec),
            CertKey::Text(text) => other.get_mut(text),
        };
        let Some(rec) = rec else {
            return Err(Rejected::Damaged(
                "details of an unknown certificate".into(),
            ));
        };
        rec.has_details = true;
        details.insert(key, d);
    }
    let digest: [u8; 32] = r.hasher.clone().finalize().into();
    let mut trailer = [0u8; 32];
    r.inner.read_exact(&mut trailer).map_err(truncated)?;
    if trailer != digest || r.left != 32 {
        return Err(Rejected::Damaged("checksum mismatch".into()));
    }

    let mut state = LedgerState::new(undo);
    if undo != UndoHistory::Keep {
        // A checkpoint that kept more than this run wants: drop what it does not keep.
        for (key, d) in details.iter_mut() {
            let rec = match key {
                CertKey::Hex(bytes) => sorted
                    .binary_search_by(|s| s.key.cmp(bytes))
                    .ok()
                    .map(|i| &mut sorted[i].rec),
                CertKey::Text(text) => other.get_mut(text),
            };
            let Some(rec) = rec else { continue };
            if undo == UndoHistory::Drop || rec.state == ItemState::Transferred {
                d.undo = None;
            }
            if d.open_intent.is_none() && d.failure.is_none() && d.undo.is_none() {
                rec.has_details = false;
            }
        }
        details.retain(|_, d| d.open_intent.is_some() || d.failure.is_some() || d.undo.is_some());
    }
    state.restore(sorted, other, details, table, runs, identities);
    Ok(Some(Loaded { state, covered }))
}

/// Writes the checkpoint of `state`, which covers the first `covered` bytes of the ledger,
/// durably. The state's recent records are merged first (the file stores one sorted array).
pub(super) fn write(
    ledger_path: &Path,
    ledger: &mut File,
    state: &mut LedgerState,
    covered: Covered,
) -> io::Result<()> {
    state.merge_recent();
    let header = header_line_digest(ledger)?
        .ok_or_else(|| io::Error::other("the ledger has no header line"))?;
    let seam = covered.len.min(SEAM_BYTES);
    let seam_digest = range_digest(ledger, covered.len - seam, covered.len)?;
    crate::durable::replace(&checkpoint_path(ledger_path), |out| {
        encode(out, state, covered, &header, seam, &seam_digest)
    })
}

fn encode(
    out: impl Write,
    state: &LedgerState,
    covered: Covered,
    header: &[u8; 32],
    seam: u64,
    seam_digest: &[u8; 32],
) -> io::Result<()> {
    let mut w = Encoder {
        inner: out,
        hasher: Sha256::new(),
    };
    w.bytes(MAGIC)?;
    w.u32(FORMAT)?;
    w.u8(match state.undo {
        UndoHistory::Drop => 0,
        UndoHistory::Keep => 1,
        UndoHistory::UntilTransferred => 2,
    })?;
    w.bytes(header)?;
    w.u64(covered.len)?;
    w.u64(covered.lines)?;
    w.u32(seam as u32)?;
    w.bytes(seam_digest)?;
    w.u32(state.runs)?;
    for identity in [&state.identity, &state.run_identity] {
        w.option(identity.as_ref(), |w, id| {
            w.str(&id.account)?;
            w.str(&id.region)
        })?;
    }
    w.u64(state.destinations.len() as u64)?;
    for (target, region) in &state.destinations {
        w.opt_str(target.as_deref())?;
        w.opt_str(region.as_deref())?;
    }
    w.u64(state.sorted.len() as u64)?;
    for slot in &state.sorted {
        w.bytes(&slot.key)?;
        w.u8(slot.rec.state as u8)?;
        w.u32(slot.rec.destination)?;
    }
    w.u64(state.other.len() as u64)?;
    for (id, rec) in &state.other {
        w.str(id)?;
        w.u8(rec.state as u8)?;
        w.u32(rec.destination)?;
    }
    w.u64(state.details.len() as u64)?;
    for (key, d) in &state.details {
        match key {
            CertKey::Hex(bytes) => {
                w.u8(0)?;
                w.bytes(bytes)?;
            }
            CertKey::Text(text) => {
                w.u8(1)?;
                w.str(text)?;
            }
        }
        w.option(d.open_intent.as_ref(), write_intent)?;
        w.option(d.failure.as_ref(), write_failure)?;
        w.option(d.undo.as_ref(), write_undo)?;
    }
    let digest: [u8; 32] = w.hasher.clone().finalize().into();
    w.inner.write_all(&digest)
}

/// SHA-256 of the ledger's first line (newline included); `None` if it has no whole line.
fn header_line_digest(ledger: &mut File) -> io::Result<Option<[u8; 32]>> {
    ledger.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(64 * 1024, &mut *ledger);
    let mut line = Vec::new();
    io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
    Ok((line.last() == Some(&b'\n')).then(|| Sha256::digest(&line).into()))
}

/// SHA-256 of the ledger's bytes `start..end`.
fn range_digest(ledger: &mut File, start: u64, end: u64) -> io::Result<[u8; 32]> {
    ledger.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((end - start) as usize);
    (&mut *ledger).take(end - start).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != end - start {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Sha256::digest(&bytes).into())
}

fn truncated(e: io::Error) -> Rejected {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Rejected::Damaged("it ends too early".into())
    } else {
        Rejected::Io(e)
    }
}

/// Reads the checkpoint's fields, hashing every byte.
struct Decoder {
    inner: BufReader<File>,
    hasher: Sha256,
    /// Bytes of the file not read yet: a count larger than could fit is damage, not a
    /// reason to allocate.
    left: u64,
}

impl Decoder {
    fn bytes(&mut self, out: &mut [u8]) -> Result<(), Rejected> {
        self.inner.read_exact(out).map_err(truncated)?;
        self.hasher.update(&*out);
        self.left = self.left.saturating_sub(out.len() as u64);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Rejected> {
        let mut out = [0u8; N];
        self.bytes(&mut out)?;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Rejected> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Rejected> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Rejected> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Rejected> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of items of at least `min_bytes` each.
    fn count(&mut self, min_bytes: u64) -> Result<usize, Rejected> {
        let n = self.u64()?;
        if n.saturating_mul(min_bytes) > self.left {
            return Err(Rejected::Damaged(format!("a count of {n} is too large")));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<String, Rejected> {
        let len = u64::from(self.u32()?);
        if len > self.left {
            return Err(Rejected::Damaged("a text runs past the end".into()));
        }
        let mut bytes = vec![0u8; len as usize];
        self.bytes(&mut bytes)?;
        String::from_utf8(bytes).map_err(|_| Rejected::Damaged("a text is not UTF-8".into()))
    }

    fn opt_str(&mut self) -> Result<Option<String>, Rejected> {
        self.option(|r| r.str())
    }

    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Decoder) -> Result<T, Rejected>,
    ) -> Result<Option<T>, Rejected> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(read(self)?)),
            other => Err(Rejected::Damaged(format!("presence flag {other}"))),
        }
    }

    fn name<T>(&mut self, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, Rejected> {
        let text = self.str()?;
        parse(&text).ok_or_else(|| Rejected::Damaged(format!("unknown name {text:?}")))
    }
}

/// Writes the checkpoint's fields, hashing every byte.
struct Encoder<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Encoder<W> {
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)
    }

    fn u8(&mut self, v: u8) -> io::Result<()> {
        self.bytes(&[v])
    }

    fn u16(&mut self, v: u16) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    fn str(&mut self, s: &str) -> io::Result<()> {
        let len = u32::try_from(s.len()).map_err(|_| io::Error::other("text too long"))?;
        self.u32(len)?;
        self.bytes(s.as_bytes())
    }

    fn opt_str(&mut self, s: Option<&str>) -> io::Result<()> {
        self.option(s, |w, s| w.str(s))
    }

    fn option<T: ?Sized>(
        &mut self,
        value: Option<&T>,
        write: impl FnOnce(&mut Encoder<W>, &T) -> io::Result<()>,
    ) -> io::Result<()> {
        match value {
            None => self.u8(0),
            Some(v) => {
                self.u8(1)?;
                write(self, v)
            }
        }
    }
}

fn write_intent<W: Write>(w: &mut Encoder<W>, i: &OpenIntent) -> io::Result<()> {
    w.str(i.stage.as_str())?;
    w.str(i.action.as_str())?;
    w.opt_str(i.subject.as_deref())?;
    w.opt_str(i.group.as_deref())?;
    w.opt_str(i.previous_status.as_ref().map(CertStatus::as_str))
}

fn read_intent(r: &mut Decoder) -> Result<OpenIntent, Rejected> {
    Ok(OpenIntent {
        stage: r.name(Stage::from_name)?,
        action: r.name(Action::from_name)?,
        subject: r.opt_str()?,
        group: r.opt_str()?,
        previous_status: r.opt_str()?.map(|s| CertStatus::parse(&s)),
    })
}

fn write_failure<W: Write>(w: &mut Encoder<W>, f: &Failure) -> io::Result<()> {
    w.str(f.stage.as_str())?;
    w.str(&f.error_code)?;
    w.option(f.http_status.as_ref(), |w, s| w.u16(*s))?;
    w.str(&f.message)?;
    w.u32(f.attempts)?;
    w.u8(u8::from(f.retryable))?;
    w.u8(match f.rolled_back {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    })?;
    w.opt_str(f.waiting.map(Wait::as_str))
}

fn read_failure(r: &mut Decoder, format: u32) -> Result<Failure, Rejected> {
    Ok(Failure {
        stage: r.name(Stage::from_name)?,
        error_code: r.str()?,
        http_status: r.option(|r| r.u16())?,
        message: r.str()?,
        attempts: r.u32()?,
        retryable: r.u8()? != 0,
        rolled_back: match r.u8()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            other => return Err(Rejected::Damaged(format!("rolled_back {other}"))),
        },
        waiting: if format >= 4 {
            match r.opt_str()? {
                None => None,
                Some(name) => Some(
                    Wait::from_name(&name)
                        .ok_or_else(|| Rejected::Damaged(format!("waiting for {name}")))?,
                ),
            }
        } else {
            None
        },
    })
}

fn write_undo<W: Write>(w: &mut Encoder<W>, u: &Undo) -> io::Result<()> {
    w.opt_str(u.previous_status.as_ref().map(CertStatus::as_str))?;
    for list in [&u.policies, &u.things] {
        w.u64(list.len() as u64)?;
        for name in list {
            w.str(name)?;
        }
    }
    Ok(())
}

fn read_undo(r: &mut Decoder) -> Result<Undo, Rejected> {
    let previous_status = r.opt_str()?.map(|s| CertStatus::parse(&s));
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let n = r.count(4)?;
        for _ in 0..n {
            list.push(r.str()?);
        }
    }
    let [policies, things] = lists;
    Ok(Undo {
        previous_status,
        policies,
        things,
    })
}
