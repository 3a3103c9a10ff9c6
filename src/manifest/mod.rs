//! Certificate manifests: the CSV file that lists which certificates move to
//! which AWS account.
//!
//! # Format
//!
//! A UTF-8 CSV file (a byte-order mark is allowed) whose first row is a header:
//!
//! ```text
//! certificate_id,target_account[,transfer_message][,region]
//! ```
//!
//! * The API names `certificateId`, `targetAwsAccount` and `transferMessage`
//!   are accepted as well. Names are case-sensitive; whitespace around them is
//!   ignored. Columns may come in any order. A column the tool does not read
//!   (a spreadsheet's `notes`) is ignored with one warning naming all such
//!   columns; a name within two letters (or case, or separators) of a known one
//!   is an error (most likely a typo), and so is a missing `certificate_id` or
//!   `target_account` column.
//! * `certificate_id`: 64 characters matching `(0x)?[a-fA-F0-9]+`, as AWS
//!   requires. Ids compare case-insensitively and are handed out in lowercase.
//! * `target_account`: exactly 12 ASCII digits.
//! * `transfer_message` (optional): at most 128 characters (not bytes). It is
//!   taken verbatim (not trimmed); an empty cell means "no message".
//! * `region` (optional): an AWS region code such as `us-east-1` or
//!   `us-gov-west-1`; an empty cell means the run's default region.
//! * Whitespace around id, account and region cells is ignored.
//! * LF or CRLF line ends (not the old Mac CR alone); RFC 4180 quoting (commas, quotes doubled as `""` and
//!   line breaks inside a quoted field). A quote only opens a quoted field
//!   right after the comma: `a, "b"` is read as the text ` "b"`.
//! * Blank lines, rows whose cells are all empty (`,,,` as spreadsheets export
//!   them) and comment lines are skipped. A comment is a line whose first
//!   non-blank character is `#`. A `#` in the very first column skips the
//!   whole line whatever it holds; an indented comment is split as CSV first,
//!   so a quote at the start of one of its comma-separated parts would run on
//!   past the line end: such a comment is reported as an error rather than
//!   silently swallowing the rows after it.
//! * The same certificate listed twice for the same target account and region
//!   is counted once, with a warning naming both lines; listed for two
//!   different targets (or regions) it is an error naming both lines.
//! * It must be a regular file, not a pipe: it is read twice. A FIFO or a device is refused
//!   without being opened (opening a FIFO blocks until someone writes to it).
//! * A row (record) longer than [`MAX_ROW_BYTES`] (1 MiB) is an error at once: the file is
//!   not a manifest, and holding the row would cost memory without bound.
//!
//! Every problem carries the physical line (1-based) where its row starts and
//! the 1-based column of the offending cell, and all of them are collected in
//! one pass (the first [`MAX_KEPT_PROBLEMS`] are kept, the rest counted).
//!
//! # Memory
//!
//! A manifest may list millions of certificates, so no row is kept in memory:
//! [`Manifest::load`] streams the file once, validating each row and recording
//! a 20-byte index entry per row (a 96-bit keyed digest of the id, interned
//! target, line), then sorts the index to find duplicates; rows that share a
//! digest have their ids read again from the file and compared whole (see
//! `index.rs`). [`Manifest::rows`] streams the file a
//! second time and hands out the distinct rows in file order, checking each
//! 1 MiB chunk against the SHA-256 the first pass took of it before using it,
//! so a manifest edited in between is detected instead of being half-used.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// At most this many problems (and, separately, warnings) are kept; the rest
/// are only counted.
pub const MAX_KEPT_PROBLEMS: usize = 100;
/// Number of digits of an AWS account id.
pub const ACCOUNT_ID_DIGITS: usize = 12;
/// Longest transfer message AWS accepts, in characters.
pub const MAX_TRANSFER_MESSAGE_CHARS: usize = 128;

/// The smallest possible valid row: 64-char id, comma, 12 digits (and a line
/// end, except on the last line). Used to pre-size the index.
const MIN_ROW_BYTES: u64 = (CERTIFICATE_ID_LEN + 1 + ACCOUNT_ID_DIGITS) as u64;
/// Cap on the pre-sized index (16 Mi entries = 320 MiB of address space, of
/// which only the pages actually written become resident). Larger manifests
/// still work: the vector grows as usual past this.
const MAX_PRESIZED_ENTRIES: u64 = 1 << 24;
/// The file is read, hashed and (in pass 2) verified this many bytes at a
/// time.
const CHUNK_BYTES: usize = 1 << 20;
/// Buffer of the CSV parser, which reads from the chunk.
const CSV_BUFFER_BYTES: usize = 64 * 1024;
/// Buffer of [`ManifestWriter`].
const WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// Longest row (record) accepted: a longer one is refused at once, before it is held in
/// memory (a valid row is under 300 bytes).
pub const MAX_ROW_BYTES: usize = 1 << 20;
/// Longest cell value quoted in a problem message.
const MAX_SHOWN_CHARS: usize = 72;

const HEADER_HELP: &str = "certificate_id,target_account[,transfer_message][,region] \
     (or certificateId,targetAwsAccount[,transferMessage][,region])";

mod index;
mod parse;
mod problem;
mod scan;
#[cfg(test)]
mod tests;
mod writer;

use index::*;
use parse::*;
use problem::*;
pub use problem::{ManifestError, Problem};
use scan::*;
pub use writer::{write_manifest, ManifestWriter};

pub use crate::certificate::CERTIFICATE_ID_LEN;

/// One certificate of the manifest (first occurrence of its id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestRow {
    /// Physical line (1-based) where the row starts.
    pub line: u64,
    /// The 64-character certificate id, lowercase.
    pub certificate_id: String,
    /// The 12-digit AWS account the certificate moves to.
    pub target_account: String,
    /// Message for the transfer; `None` when the cell is empty or the column
    /// absent.
    pub transfer_message: Option<String>,
    /// Region of the certificate; `None` means the run's default region.
    pub region: Option<String>,
}

/// A distinct destination of the manifest and how many certificates go there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The 12-digit account id.
    pub account: String,
    /// The region (`None` = the run's default region).
    pub region: Option<String>,
    /// Distinct certificates bound there.
    pub certificates: usize,
}

/// A validated manifest: its path, digest, warnings and a compact index of its
/// certificate ids. The rows themselves stay in the file; see
/// [`Manifest::rows`].
pub struct Manifest {
    path: PathBuf,
    sha256: String,
    file_len: u64,
    columns: Arc<Columns>,
    index: Arc<Index>,
    /// SHA-256 of each [`CHUNK_BYTES`] chunk of the file, for pass 2.
    chunks: Arc<[[u8; 32]]>,
    /// Lines of the later occurrences of repeated ids, sorted: pass 2 skips
    /// them.
    later_duplicates: Arc<[u32]>,
    warnings: Vec<Problem>,
    warning_count: usize,
}

impl fmt::Debug for Manifest {
    // Not derived: the index may hold millions of entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("certificates", &self.len())
            .field("warnings", &self.warning_count)
            .finish_non_exhaustive()
    }
}

impl Manifest {
    /// Pass 1: reads the whole file once, validates every row, builds the
    /// index. No row is kept.
    ///
    /// Returns [`ManifestError::NotFound`] for a missing file,
    /// [`ManifestError::Io`] when it cannot be read and
    /// [`ManifestError::Invalid`] with every problem found (the first
    /// [`MAX_KEPT_PROBLEMS`] kept) when its content is invalid. A manifest
    /// with a header and no rows is valid, with a warning.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let mut scanner = Scanner::open(path, None)?;
        let file_len = scanner.file_len;
        let io_error = |source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut problems = Collector::default();
        let mut warnings = Collector::default();
        // Pre-sized from the file length so the vector never grows (a growing
        // reallocation briefly holds the old and the new buffer); capacity
        // never written is never made resident, so overestimating costs
        // address space only.
        let presize = (file_len / MIN_ROW_BYTES + 1).min(MAX_PRESIZED_ENTRIES);
        let mut entries: Vec<Entry> = Vec::with_capacity(presize as usize);
        let mut interner = Interner::default();
        let digester = Digester::new();
        let mut header: Option<(Columns, u64)> = None;

        loop {
            let record = match scanner.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => match RowTooLong::of(&e) {
                    // Nothing after it can be read as rows: report it with what came before.
                    Some(too_long) => {
                        problems.report(too_long.line, None, || {
                            format!(
                                "this row is longer than {} bytes ({} MiB): not a manifest row; is this the right file?",
                                thousands(MAX_ROW_BYTES),
                                MAX_ROW_BYTES >> 20
                            )
                        });
                        return Err(problems.into_invalid(path));
                    }
                    None => return Err(io_error(e)),
                },
            };
            let line = record.line;
            if record.broken_comment {
                problems.report(line, None, || {
                    format!(
                        "this comment runs on to line {}: a quote in it opened a quoted field; \
                         start comments in the first column, or remove the quote",
                        record.end_line
                    )
                });
                continue;
            }
            let Some((columns, _)) = &header else {
                let columns = parse_header(&scanner.record, line, &mut problems);
                if !columns.ignored.is_empty() {
                    warnings.report(line, None, || ignored_columns_message(&columns.ignored));
                }
                header = Some((columns, line));
                continue;
            };
            let Some(row) = parse_row(columns, &scanner.record, &record, &mut problems) else {
                continue;
            };
            let Ok(line32) = u32::try_from(line) else {
                problems.report(line, None, || {
                    "the manifest is too long (more than 4,294,967,295 lines): split it".into()
                });
                continue;
            };
            let region = interner.region(row.region);
            let Some(target) = interner.target(row.account, region) else {
                problems.report(line, None, || {
                    "too many distinct target accounts and regions: split the manifest".into()
                });
                continue;
            };
            entries.push(Entry::new(digester.digest(&row.key), target, line32));
        }
        let (sha256, chunks) = scanner.finish().map_err(io_error)?;
        let chunks: Arc<[[u8; 32]]> = chunks.into();

        let Some((columns, header_line)) = header else {
            problems.report(1, None, || {
                format!("the manifest has no header row; expected {HEADER_HELP}")
            });
            return Err(problems.into_invalid(path));
        };

        let mut index = Index::build(entries, interner, digester);
        let candidates = index.candidate_lines();
        // Every candidate row parsed in pass 1, so this works whatever other rows hold.
        let keys = if candidates.is_empty() {
            CandidateKeys::new()
        } else {
            candidate_keys(path, &chunks, &columns, &candidates)?
        };
        index.find_duplicates(&columns, &keys, &mut problems, &mut warnings);
        if problems.total > 0 {
            return Err(problems.into_invalid(path));
        }
        let later_duplicates = index.dedup(&keys);
        if index.entries.is_empty() {
            warnings.report(header_line, None, || {
                "the manifest lists no certificates".into()
            });
        }
        let (warnings, warning_count) = warnings.into_sorted();
        Ok(Manifest {
            path: path.to_path_buf(),
            sha256,
            file_len,
            columns: Arc::new(columns),
            index: Arc::new(index),
            chunks,
            later_duplicates: later_duplicates.into(),
            warnings,
            warning_count,
        })
    }

    /// The path the manifest was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of distinct certificates.
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    /// Whether the manifest lists no certificate.
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// SHA-256 of the file's bytes, lowercase hex: identifies the manifest a
    /// run (or a resumed run) works from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Warnings (repeated rows, an empty manifest), by line; at most
    /// [`MAX_KEPT_PROBLEMS`] of them, see [`Manifest::warning_count`].
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// Number of warnings, including those not kept.
    pub fn warning_count(&self) -> usize {
        self.warning_count
    }

    /// Distinct region values in order of first appearance (`None` = rows
    /// that use the run's default region).
    pub fn regions(&self) -> Vec<Option<String>> {
        self.index
            .regions
            .iter()
            .map(|region| region.as_deref().map(str::to_owned))
            .collect()
    }

    /// Distinct (account, region) destinations in order of first appearance,
    /// with the number of distinct certificates bound to each.
    pub fn targets(&self) -> Vec<Target> {
        let mut counts = vec![0usize; self.index.targets.len()];
        for entry in &self.index.entries {
            counts[entry.target_index()] += 1;
        }
        self.index
            .targets
            .iter()
            .zip(counts)
            .map(|(&(account, region), certificates)| Target {
                account: format_account(account),
                region: self.index.regions[region as usize]
                    .as_deref()
                    .map(str::to_owned),
                certificates,
            })
            .collect()
    }

    /// Distinct target accounts in order of first appearance.
    pub fn target_accounts(&self) -> Vec<String> {
        let mut accounts: Vec<u64> = Vec::new();
        for &(account, _) in &self.index.targets {
            if !accounts.contains(&account) {
                accounts.push(account);
            }
        }
        accounts.into_iter().map(format_account).collect()
    }

    /// Whether the manifest lists this certificate id (case-insensitive;
    /// surrounding whitespace ignored). A binary search in the index.
    pub fn contains(&self, certificate_id: &str) -> bool {
        match parse_id(certificate_id.trim()) {
            Ok(key) => self.index.find(&key).is_some(),
            Err(_) => false,
        }
    }

    /// Pass 2: streams the distinct rows in file order (skipping the later
    /// occurrences of repeated ids, found by pass 1), re-reading the file.
    ///
    /// The file is re-read a chunk at a time and each chunk is checked
    /// against the SHA-256 that pass 1 took of it before any of its rows is
    /// parsed, so every row handed out comes from the bytes that were
    /// validated. If the file changed, the iterator yields
    /// [`ManifestError::Changed`] (and then stops) before any row of the
    /// changed part (or `rows` returns it at once if the size changed).
    pub fn rows(&self) -> Result<Rows, ManifestError> {
        let scanner = Scanner::open(&self.path, Some(Arc::clone(&self.chunks)))?;
        if scanner.file_len != self.file_len {
            return Err(ManifestError::Changed {
                path: self.path.clone(),
            });
        }
        Ok(Rows {
            path: self.path.clone(),
            scanner,
            columns: Arc::clone(&self.columns),
            later_duplicates: Arc::clone(&self.later_duplicates),
            next_duplicate: 0,
            sha256: self.sha256.clone(),
            header_seen: false,
            done: false,
        })
    }
}

/// Iterator over the distinct rows of a manifest, in file order; see
/// [`Manifest::rows`]. It ends after the first error.
pub struct Rows {
    path: PathBuf,
    scanner: Scanner,
    columns: Arc<Columns>,
    later_duplicates: Arc<[u32]>,
    /// Position in `later_duplicates` of the next line to skip.
    next_duplicate: usize,
    sha256: String,
    header_seen: bool,
    done: bool,
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows")
            .field("path", &self.path)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Iterator for Rows {
    type Item = Result<ManifestRow, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut row = ManifestRow::default();
        match self.read_into(&mut row) {
            Ok(true) => Some(Ok(row)),
            Ok(false) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

impl std::iter::FusedIterator for Rows {}

impl Rows {
    /// The next row, written over `row` (reusing its strings, so a pass over millions of
    /// rows allocates nothing per row): `Ok(false)` at the end. Like the iterator, it ends
    /// after the first error.
    pub fn read_into(&mut self, row: &mut ManifestRow) -> Result<bool, ManifestError> {
        if self.done {
            return Ok(false);
        }
        let read = self.advance(row);
        if !matches!(read, Ok(true)) {
            self.done = true;
        }
        read
    }

    fn changed(&self) -> ManifestError {
        ManifestError::Changed {
            path: self.path.clone(),
        }
    }

    /// An I/O error, or [`ManifestError::Changed`] when a chunk of the file
    /// no longer matches.
    fn read_error(&self, source: io::Error) -> ManifestError {
        if source
            .get_ref()
            .is_some_and(|inner| inner.is::<FileChanged>())
        {
            self.changed()
        } else {
            ManifestError::Io {
                path: self.path.clone(),
                source,
            }
        }
    }

    fn advance(&mut self, out: &mut ManifestRow) -> Result<bool, ManifestError> {
        loop {
            let record = match self.scanner.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => {
                    let (sha256, _) = self
                        .scanner
                        .finish()
                        .map_err(|error| self.read_error(error))?;
                    return if sha256 == self.sha256 {
                        Ok(false)
                    } else {
                        Err(self.changed())
                    };
                }
                Err(error) => return Err(self.read_error(error)),
            };
            // The bytes were checked against pass 1's, so the row is valid;
            // parsing it again costs little and double-checks it.
            let mut trouble = Flag::default();
            if record.broken_comment {
                return Err(self.changed());
            }
            if !self.header_seen {
                let columns = parse_header(&self.scanner.record, record.line, &mut trouble);
                if trouble.0 || columns != *self.columns {
                    return Err(self.changed());
                }
                self.header_seen = true;
                continue;
            }
            let Some(row) = parse_row(&self.columns, &self.scanner.record, &record, &mut trouble)
            else {
                return Err(self.changed());
            };
            // Both in file order: walk the skip list along.
            while self
                .later_duplicates
                .get(self.next_duplicate)
                .is_some_and(|&skip| u64::from(skip) < record.line)
            {
                self.next_duplicate += 1;
            }
            if self
                .later_duplicates
                .get(self.next_duplicate)
                .is_some_and(|&skip| u64::from(skip) == record.line)
            {
                self.next_duplicate += 1;
                continue;
            }
            out.line = record.line;
            out.certificate_id.clear();
            out.certificate_id.push_str(row.id);
            out.certificate_id.make_ascii_lowercase();
            out.target_account.clear();
            write_account(&mut out.target_account, row.account);
            overwrite(&mut out.transfer_message, row.message);
            overwrite(&mut out.region, row.region);
            return Ok(true);
        }
    }
}

/// Sets `slot` to `value`, reusing the string it holds.
fn overwrite(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(text), Some(value)) => {
            text.clear();
            text.push_str(value);
        }
        (_, value) => *slot = value.map(str::to_owned),
    }
}

/// Reads the ids of the rows at `lines` (sorted) again, from the bytes pass 1 validated: the
/// rows whose digest another row shares, compared whole to find the real duplicates.
fn candidate_keys(
    path: &Path,
    chunks: &Arc<[[u8; 32]]>,
    columns: &Columns,
    lines: &[u32],
) -> Result<CandidateKeys, ManifestError> {
    let changed = || ManifestError::Changed {
        path: path.to_path_buf(),
    };
    let mut scanner = Scanner::open(path, Some(Arc::clone(chunks)))?;
    let mut keys = CandidateKeys::with_capacity(lines.len());
    let mut header_seen = false;
    let mut wanted = lines.iter().peekable();
    while let Some(&&next) = wanted.peek() {
        let record = match scanner.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return Err(changed()),
            Err(error) if error.get_ref().is_some_and(|e| e.is::<FileChanged>()) => {
                return Err(changed())
            }
            Err(source) => {
                return Err(ManifestError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if record.broken_comment {
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        if record.line != u64::from(next) {
            continue;
        }
        let mut trouble = Flag::default();
        let row = parse_row(columns, &scanner.record, &record, &mut trouble).ok_or_else(changed)?;
        keys.insert(next, row.key);
        wanted.next();
    }
    Ok(keys)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

/// `4211` -> `4,211`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}
