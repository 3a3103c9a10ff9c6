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
//!   ignored. Columns may come in any order. An unknown name is an error (it is
//!   most likely a typo), and so is a missing `certificate_id` or
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
//! * It must be a regular file, not a pipe: it is read twice.
//!
//! Every problem carries the physical line (1-based) where its row starts and
//! the 1-based column of the offending cell, and all of them are collected in
//! one pass (the first [`MAX_KEPT_PROBLEMS`] are kept, the rest counted).
//!
//! # Memory
//!
//! A manifest may list millions of certificates, so no row is kept in memory:
//! [`Manifest::load`] streams the file once, validating each row and recording
//! a 40-byte index entry per row (decoded id, interned target, line), then
//! sorts the index to find duplicates. [`Manifest::rows`] streams the file a
//! second time and hands out the distinct rows in file order, checking each
//! 1 MiB chunk against the SHA-256 the first pass took of it before using it,
//! so a manifest edited in between is detected instead of being half-used.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// At most this many problems (and, separately, warnings) are kept; the rest
/// are only counted.
pub const MAX_KEPT_PROBLEMS: usize = 100;
/// Length of a certificate id, in characters.
pub const CERTIFICATE_ID_LEN: usize = 64;
/// Number of digits of an AWS account id.
pub const ACCOUNT_ID_DIGITS: usize = 12;
/// Longest transfer message AWS accepts, in characters.
pub const MAX_TRANSFER_MESSAGE_CHARS: usize = 128;

/// The smallest possible valid row: 64-char id, comma, 12 digits (and a line
/// end, except on the last line). Used to pre-size the index.
const MIN_ROW_BYTES: u64 = (CERTIFICATE_ID_LEN + 1 + ACCOUNT_ID_DIGITS) as u64;
/// Cap on the pre-sized index (16 Mi entries = 640 MiB of address space, of
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
/// Longest cell value quoted in a problem message.
const MAX_SHOWN_CHARS: usize = 72;

const HEADER_HELP: &str = "certificate_id,target_account[,transfer_message][,region] \
     (or certificateId,targetAwsAccount[,transferMessage][,region])";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// One certificate of the manifest (first occurrence of its id).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A problem (or warning) found in a manifest.
///
/// Displays as `line:column: message`, or `line: message` when it concerns a
/// whole row or the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Physical line (1-based) where the offending row starts.
    pub line: u64,
    /// 1-based field index of the offending cell, if it concerns one cell.
    pub column: Option<usize>,
    /// Name of that column as written in the header.
    pub column_name: Option<String>,
    /// What is wrong, naming the column and quoting the value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "{}:{}: {}", self.line, column, self.message),
            None => write!(f, "{}: {}", self.line, self.message),
        }
    }
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file does not exist: bad input rather than a system
    /// failure, hence its own variant so the caller can choose the exit code.
    #[error("manifest {} does not exist", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but could not be read (permissions, a directory, an
    /// I/O failure).
    #[error("cannot read manifest {}: {source}", path.display())]
    Io {
        /// The manifest path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The content is invalid. Displays a summary line, then each kept
    /// problem as `path:line:column: message`, then `... and N more problems`
    /// when some were not kept.
    #[error("{}", InvalidReport { path, problems, total: *total })]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// The first [`MAX_KEPT_PROBLEMS`] problems, by line.
        problems: Vec<Problem>,
        /// How many problems there are in all.
        total: usize,
    },
    /// The file changed after [`Manifest::load`] validated it (found while
    /// streaming its rows); load it again.
    #[error(
        "manifest {} changed since it was validated: load it again",
        path.display()
    )]
    Changed {
        /// The manifest path.
        path: PathBuf,
    },
}

impl ManifestError {
    /// The manifest path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::NotFound { path }
            | ManifestError::Io { path, .. }
            | ManifestError::Invalid { path, .. }
            | ManifestError::Changed { path } => path,
        }
    }

    /// Whether the error is the user's input (a missing or invalid manifest)
    /// rather than a failure of the system.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ManifestError::NotFound { .. } | ManifestError::Invalid { .. }
        )
    }
}

/// Display helper of [`ManifestError::Invalid`].
struct InvalidReport<'a> {
    path: &'a Path,
    problems: &'a [Problem],
    total: usize,
}

impl fmt::Display for InvalidReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let plural = if self.total == 1 { "" } else { "s" };
        write!(
            f,
            "invalid manifest {path}: {} problem{plural}",
            thousands(self.total)
        )?;
        for problem in self.problems {
            write!(f, "\n{path}:{problem}")?;
        }
        let more = self.total.saturating_sub(self.problems.len());
        if more > 0 {
            let plural = if more == 1 { "" } else { "s" };
            write!(f, "\n... and {} more problem{plural}", thousands(more))?;
        }
        Ok(())
    }
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
        // Pre-sized from the file length so the vector never grows (a growing
        // reallocation briefly holds the old and the new buffer); capacity
        // never written is never made resident, so overestimating costs
        // address space only.
        let presize = (file_len / MIN_ROW_BYTES + 1).min(MAX_PRESIZED_ENTRIES);
        let mut entries: Vec<Entry> = Vec::with_capacity(presize as usize);
        let mut interner = Interner::default();
        let mut header: Option<(Columns, u64)> = None;

        while let Some(record) = scanner.next_record().map_err(io_error)? {
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
                header = Some((parse_header(&scanner.record, line, &mut problems), line));
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
            entries.push(Entry::new(&row.key, target, line32));
        }
        let (sha256, chunks) = scanner.finish().map_err(io_error)?;

        let Some((columns, header_line)) = header else {
            problems.report(1, None, || {
                format!("the manifest has no header row; expected {HEADER_HELP}")
            });
            return Err(problems.into_invalid(path));
        };

        let mut index = Index::build(entries, interner);
        let mut warnings = Collector::default();
        index.find_duplicates(&columns, &mut problems, &mut warnings);
        if problems.total > 0 {
            return Err(problems.into_invalid(path));
        }
        let later_duplicates = index.dedup();
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
            chunks: chunks.into(),
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
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl std::iter::FusedIterator for Rows {}

impl Rows {
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

    fn advance(&mut self) -> Result<Option<ManifestRow>, ManifestError> {
        loop {
            let record = match self.scanner.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => {
                    let (sha256, _) = self
                        .scanner
                        .finish()
                        .map_err(|error| self.read_error(error))?;
                    return if sha256 == self.sha256 {
                        Ok(None)
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
            return Ok(Some(ManifestRow {
                line: record.line,
                certificate_id: row.id.to_ascii_lowercase(),
                target_account: format_account(row.account),
                transfer_message: row.message.map(str::to_owned),
                region: row.region.map(str::to_owned),
            }));
        }
    }
}

/// Writes a manifest CSV (header + rows): used by tests, the demo and
/// benchmarks to generate manifests. The header is
/// `certificate_id,target_account,transfer_message`, plus `region` only if
/// some row has a region. Rows are written as given, without validation.
pub fn write_manifest(path: &Path, rows: &[ManifestRow]) -> io::Result<()> {
    let with_region = rows.iter().any(|row| row.region.is_some());
    let mut writer = ManifestWriter::create(path, with_region)?;
    for row in rows {
        writer.write_row(row)?;
    }
    writer.finish()
}

/// Streaming counterpart of [`write_manifest`], to generate large manifests
/// without holding their rows in memory.
pub struct ManifestWriter {
    writer: csv::Writer<BufWriter<File>>,
    with_region: bool,
}

impl fmt::Debug for ManifestWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestWriter")
            .field("with_region", &self.with_region)
            .finish_non_exhaustive()
    }
}

impl ManifestWriter {
    /// Creates (or truncates) `path` and writes the header
    /// `certificate_id,target_account,transfer_message[,region]`.
    pub fn create(path: &Path, with_region: bool) -> io::Result<ManifestWriter> {
        let file = BufWriter::with_capacity(WRITE_BUFFER_BYTES, File::create(path)?);
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(file);
        let mut header = vec!["certificate_id", "target_account", "transfer_message"];
        if with_region {
            header.push("region");
        }
        writer.write_record(&header).map_err(csv_to_io)?;
        Ok(ManifestWriter {
            writer,
            with_region,
        })
    }

    /// Appends one row (its `line` is ignored). A row with a region is
    /// refused when the writer was created without the region column.
    pub fn write_row(&mut self, row: &ManifestRow) -> io::Result<()> {
        let message = row.transfer_message.as_deref().unwrap_or("");
        let result = if self.with_region {
            let region = row.region.as_deref().unwrap_or("");
            self.writer.write_record([
                row.certificate_id.as_str(),
                row.target_account.as_str(),
                message,
                region,
            ])
        } else if row.region.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "row has a region but the manifest was created without a region column",
            ));
        } else {
            self.writer.write_record([
                row.certificate_id.as_str(),
                row.target_account.as_str(),
                message,
            ])
        };
        result.map_err(csv_to_io)
    }

    /// Flushes everything to the file.
    pub fn finish(self) -> io::Result<()> {
        let file = self
            .writer
            .into_inner()
            .map_err(|error| io::Error::other(error.to_string()))?;
        file.into_inner()
            .map_err(|error| io::Error::other(error.to_string()))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Reading: hashing, CSV records, exact line numbers
// ---------------------------------------------------------------------------

/// Reads the file a chunk at a time, hashing each chunk and the whole file
/// as it goes, so pass 1 reads the file only once. Pass 1 records the chunk
/// digests; pass 2 checks each chunk against them before handing any of its
/// bytes to the parser, and fails with [`FileChanged`] on a mismatch.
///
/// It also remembers whether the end of the file was reached and the last
/// two bytes handed out, which tell whether the final record had a line end
/// (see [`Scanner::next_record`]).
struct ChunkReader {
    file: File,
    buffer: Box<[u8]>,
    /// The unread part of `buffer`.
    start: usize,
    end: usize,
    file_hasher: Sha256,
    /// Pass 1: the digests of the chunks read so far.
    digests: Vec<[u8; 32]>,
    /// Pass 2: the digests pass 1 recorded.
    expected: Option<Arc<[[u8; 32]]>>,
    chunks_read: usize,
    /// Bytes handed out so far.
    bytes: u64,
    /// The last two bytes handed out (zeros before that).
    tail: [u8; 2],
    /// Whether a read found the end of the file.
    eof: bool,
}

/// The error [`ChunkReader`] wraps in an `io::Error` when a chunk differs
/// from the one validated.
#[derive(Debug)]
struct FileChanged;

impl fmt::Display for FileChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the manifest changed since it was validated")
    }
}

impl std::error::Error for FileChanged {}

impl ChunkReader {
    fn new(file: File, expected: Option<Arc<[[u8; 32]]>>) -> ChunkReader {
        ChunkReader {
            file,
            buffer: vec![0; CHUNK_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            file_hasher: Sha256::new(),
            digests: Vec::new(),
            expected,
            chunks_read: 0,
            bytes: 0,
            tail: [0; 2],
            eof: false,
        }
    }

    /// Reads the next chunk (whole unless it is the last) into `buffer`.
    fn fill(&mut self) -> io::Result<()> {
        let mut len = 0;
        while len < self.buffer.len() {
            match self.file.read(&mut self.buffer[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.start = 0;
        self.end = len;
        let chunk = &self.buffer[..len];
        let digest: Option<[u8; 32]> = (len > 0).then(|| {
            self.file_hasher.update(chunk);
            Sha256::digest(chunk).into()
        });
        match &self.expected {
            None => self.digests.extend(digest),
            // At the end (no chunk) there must be no chunk left expected.
            Some(expected) if expected.get(self.chunks_read).copied() != digest => {
                return Err(io::Error::other(FileChanged));
            }
            Some(_) => {}
        }
        self.chunks_read += usize::from(digest.is_some());
        Ok(())
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.start == self.end {
            self.fill()?;
            if self.end == 0 {
                self.eof = true;
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        self.bytes += n as u64;
        self.tail = match out[..n] {
            [.., a, b] => [a, b],
            [b] => [self.tail[1], b],
            [] => self.tail,
        };
        Ok(n)
    }
}

/// Where a record lies in the file.
#[derive(Debug, Clone, Copy)]
struct RecordSpan {
    /// Physical line where the record starts.
    line: u64,
    /// Physical line where it ends (later when a quoted field holds a line
    /// break).
    end_line: u64,
    /// An indented comment that ran on past its line because of a quote.
    broken_comment: bool,
}

/// The CSV reader of both passes: skips blank and comment lines and computes
/// exact line numbers.
struct Scanner {
    reader: csv::Reader<ChunkReader>,
    /// The current record; reused so reading allocates nothing per row.
    record: csv::ByteRecord,
    file_len: u64,
}

impl Scanner {
    /// Opens the file; `expected` holds the chunk digests to check (pass 2).
    fn open(path: &Path, expected: Option<Arc<[[u8; 32]]>>) -> Result<Scanner, ManifestError> {
        let open_error = |source: io::Error| {
            if source.kind() == io::ErrorKind::NotFound {
                ManifestError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                ManifestError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        };
        let file = File::open(path).map_err(open_error)?;
        let metadata = file.metadata().map_err(open_error)?;
        if !metadata.is_file() {
            // Pass 2 re-reads the file, which a pipe or a device cannot do.
            return Err(ManifestError::Io {
                path: path.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file (a manifest is read twice)",
                ),
            });
        }
        let file_len = metadata.len();
        // csv::Reader wraps the reader in its own BufReader (of this
        // capacity); csv-core strips a UTF-8 BOM and skips lines starting
        // with `#`. The terminator is LF only, so that a record's line end is
        // always consumed with it and line numbers can be derived exactly; a
        // CR before it stays in the last field and is removed by `cell`.
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(CSV_BUFFER_BYTES)
            .from_reader(ChunkReader::new(file, expected));
        Ok(Scanner {
            reader,
            record: csv::ByteRecord::new(),
            file_len,
        })
    }

    /// Reads the next record that is neither blank nor a comment into
    /// `self.record`.
    fn next_record(&mut self) -> io::Result<Option<RecordSpan>> {
        loop {
            let line_before = self.reader.position().line();
            if !self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(csv_to_io)?
            {
                return Ok(None);
            }
            // csv's own record positions point before any skipped blank or
            // comment lines (and lag on CRLF), so count back from the end of
            // the record instead: the line breaks it holds are those inside
            // its quoted fields, plus its line end, which the LF-only
            // terminator always consumes with it, except on the last line
            // of a file that does not end with one. A file that ends inside
            // an unclosed quote ends with a line break that belongs to the
            // field: it is told apart by the closing quote that would
            // otherwise precede it (only an unclosed field whose text ends
            // with a quote and a line break is mistaken, by one line).
            let end = self.reader.position();
            let inner = self.reader.get_ref();
            let at_eof = inner.eof && end.byte() == inner.bytes;
            let ends_with_newline = !at_eof || inner.tail[1] == b'\n';
            let field_ends_with_newline = self
                .record
                .get(self.record.len().wrapping_sub(1))
                .is_some_and(|field| field.ends_with(b"\n"));
            let terminated = !at_eof
                || (ends_with_newline && (!field_ends_with_newline || inner.tail[0] == b'"'));
            let breaks = self
                .record
                .as_slice()
                .iter()
                .filter(|&&byte| byte == b'\n')
                .count() as u64;
            let line = end
                .line()
                .saturating_sub(breaks + u64::from(terminated))
                .max(line_before)
                .max(1);
            let end_line = end
                .line()
                .saturating_sub(u64::from(ends_with_newline))
                .max(line);

            let first = self.record.get(0).unwrap_or_default().trim_ascii_start();
            if first.starts_with(b"#") {
                if end_line > line {
                    return Ok(Some(RecordSpan {
                        line,
                        end_line,
                        broken_comment: true,
                    }));
                }
                continue;
            }
            if self
                .record
                .iter()
                .all(|field| field.trim_ascii().is_empty())
            {
                continue;
            }
            return Ok(Some(RecordSpan {
                line,
                end_line,
                broken_comment: false,
            }));
        }
    }

    /// Reads whatever is left (nothing, normally) and returns the SHA-256 of
    /// the whole file and those of its chunks (pass 1).
    fn finish(&mut self) -> io::Result<(String, Vec<[u8; 32]>)> {
        let inner = self.reader.get_mut();
        io::copy(inner, &mut io::sink())?;
        let sha256 = hex(&inner.file_hasher.finalize_reset());
        Ok((sha256, std::mem::take(&mut inner.digests)))
    }
}

/// Field `index` of `record`, without the CR of a CRLF line end (which the
/// LF-only terminator leaves at the end of the last field).
fn cell(record: &csv::ByteRecord, index: usize) -> &[u8] {
    let field = record.get(index).unwrap_or_default();
    if index + 1 == record.len() {
        field.strip_suffix(b"\r").unwrap_or(field)
    } else {
        field
    }
}

fn csv_to_io(error: csv::Error) -> io::Error {
    if error.is_io_error() {
        if let csv::ErrorKind::Io(error) = error.into_kind() {
            return error;
        }
        unreachable!("is_io_error() implies ErrorKind::Io");
    }
    io::Error::other(error)
}

// ---------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------

/// Receives the problems found while parsing.
trait Report {
    /// `column` is the 0-based field index and the column's name; `message`
    /// is only called when the problem is kept.
    fn report(
        &mut self,
        line: u64,
        column: Option<(usize, &str)>,
        message: impl FnOnce() -> String,
    );
}

/// Keeps the [`MAX_KEPT_PROBLEMS`] first problems by (line, column) and
/// counts all of them. Problems mostly arrive in line order, but duplicates
/// are found after sorting, hence a bounded max-heap rather than a prefix.
#[derive(Default)]
struct Collector {
    kept: BinaryHeap<Ranked>,
    total: usize,
    seq: u64,
}

struct Ranked {
    key: (u64, usize, u64),
    problem: Problem,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl Report for Collector {
    fn report(
        &mut self,
        line: u64,
        column: Option<(usize, &str)>,
        message: impl FnOnce() -> String,
    ) {
        self.total += 1;
        self.seq += 1;
        let key = (line, column.map_or(0, |(index, _)| index + 1), self.seq);
        if self.kept.len() >= MAX_KEPT_PROBLEMS
            && self.kept.peek().is_some_and(|last| key >= last.key)
        {
            return; // Would not be kept: do not even format it.
        }
        self.kept.push(Ranked {
            key,
            problem: Problem {
                line,
                column: column.map(|(index, _)| index + 1),
                column_name: column.map(|(_, name)| name.to_owned()),
                message: message(),
            },
        });
        if self.kept.len() > MAX_KEPT_PROBLEMS {
            self.kept.pop();
        }
    }
}

impl Collector {
    fn into_sorted(self) -> (Vec<Problem>, usize) {
        let kept = self.kept.into_sorted_vec();
        (
            kept.into_iter().map(|ranked| ranked.problem).collect(),
            self.total,
        )
    }

    fn into_invalid(self, path: &Path) -> ManifestError {
        let (problems, total) = self.into_sorted();
        ManifestError::Invalid {
            path: path.to_path_buf(),
            problems,
            total,
        }
    }
}

/// Notes only whether there was any problem (pass 2).
#[derive(Default)]
struct Flag(bool);

impl Report for Flag {
    fn report(&mut self, _: u64, _: Option<(usize, &str)>, _: impl FnOnce() -> String) {
        self.0 = true;
    }
}

// ---------------------------------------------------------------------------
// Header and rows
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Account,
    Message,
    Region,
}

const KNOWN_COLUMNS: [(&str, Field); 7] = [
    ("certificate_id", Field::Id),
    ("target_account", Field::Account),
    ("transfer_message", Field::Message),
    ("region", Field::Region),
    ("certificateId", Field::Id),
    ("targetAwsAccount", Field::Account),
    ("transferMessage", Field::Message),
];

/// Where each known column is, from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Columns {
    /// Every header cell, trimmed, as written.
    names: Vec<String>,
    id: Option<usize>,
    account: Option<usize>,
    message: Option<usize>,
    region: Option<usize>,
}

impl Columns {
    fn slot(&mut self, field: Field) -> &mut Option<usize> {
        match field {
            Field::Id => &mut self.id,
            Field::Account => &mut self.account,
            Field::Message => &mut self.message,
            Field::Region => &mut self.region,
        }
    }

    fn column(&self, index: usize) -> (usize, &str) {
        (index, self.names[index].as_str())
    }
}

fn parse_header<R: Report>(record: &csv::ByteRecord, line: u64, report: &mut R) -> Columns {
    let mut columns = Columns {
        names: Vec::with_capacity(record.len()),
        id: None,
        account: None,
        message: None,
        region: None,
    };
    for index in 0..record.len() {
        let raw = cell(record, index);
        let name = match std::str::from_utf8(raw) {
            Ok(text) => text.trim().to_owned(),
            Err(error) => {
                let name = String::from_utf8_lossy(raw).trim().to_owned();
                report.report(line, Some((index, &name)), || {
                    format!(
                        "column name {:?} is not valid UTF-8 (byte {} of the cell); save the manifest as UTF-8",
                        shown(&name),
                        error.valid_up_to() + 1
                    )
                });
                columns.names.push(name);
                continue;
            }
        };
        columns.names.push(name);
        let name = columns.names[index].as_str();
        if name.is_empty() {
            report.report(line, Some((index, name)), || {
                format!("column {} of the header has no name", index + 1)
            });
            continue;
        }
        let Some(&(_, field)) = KNOWN_COLUMNS.iter().find(|(known, _)| *known == name) else {
            report.report(line, Some((index, name)), || unknown_column_message(name));
            continue;
        };
        if let Some(previous) = *columns.slot(field) {
            let previous_name = columns.names[previous].clone();
            let name = columns.names[index].as_str();
            report.report(line, Some((index, name)), || {
                format!(
                    "column {name:?} repeats column {} ({previous_name:?})",
                    previous + 1
                )
            });
            continue;
        }
        *columns.slot(field) = Some(index);
    }
    if columns.id.is_none() {
        report.report(line, None, || {
            format!(
                "missing required column certificate_id (or certificateId); expected {HEADER_HELP}"
            )
        });
    }
    if columns.account.is_none() {
        report.report(line, None, || {
            format!(
                "missing required column target_account (or targetAwsAccount); expected {HEADER_HELP}"
            )
        });
    }
    columns
}

fn unknown_column_message(name: &str) -> String {
    // Catch typos and other spellings: compare lowercase, without separators.
    let squash = |text: &str| -> String {
        text.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = squash(name);
    let suggestion = KNOWN_COLUMNS
        .iter()
        .map(|(known, _)| (edit_distance(&wanted, &squash(known)), *known))
        .filter(|&(distance, _)| distance <= 2)
        .min_by_key(|&(distance, _)| distance);
    match suggestion {
        Some((_, known)) if known.eq_ignore_ascii_case(name) => format!(
            "unknown column {:?} (names are case-sensitive: did you mean {known:?}?)",
            shown(name)
        ),
        Some((_, known)) => format!("unknown column {:?} (did you mean {known:?}?)", shown(name)),
        None => format!("unknown column {:?}; expected {HEADER_HELP}", shown(name)),
    }
}

/// Levenshtein distance, for the "did you mean" of unknown column names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// A certificate id decoded for the index: 32 bytes, or 31 bytes (in
/// `bytes[1..]`) for the `0x` + 62 hex digits form, which `prefixed` tells
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct IdKey {
    bytes: [u8; 32],
    prefixed: bool,
}

impl IdKey {
    fn to_hex(self) -> String {
        if self.prefixed {
            format!("0x{}", hex(&self.bytes[1..]))
        } else {
            hex(&self.bytes)
        }
    }
}

/// A row that passed validation, borrowing from the record.
struct ParsedRow<'a> {
    /// The id as written (trimmed).
    id: &'a str,
    key: IdKey,
    account: u64,
    message: Option<&'a str>,
    region: Option<&'a str>,
}

/// Validates one data row, reporting each problem; `None` if it had any (or
/// the header lacks a required column).
fn parse_row<'a, R: Report>(
    columns: &Columns,
    record: &'a csv::ByteRecord,
    span: &RecordSpan,
    report: &mut R,
) -> Option<ParsedRow<'a>> {
    let line = span.line;
    if record.len() != columns.names.len() {
        let quote_hint = if record.iter().any(|field| {
            field.len() > field.trim_ascii_start().len()
                && field.trim_ascii_start().starts_with(b"\"")
        }) {
            " (a quoted field must start right after the comma, without spaces)"
        } else {
            ""
        };
        report.report(line, None, || {
            format!(
                "the row has {} fields but the header has {}{quote_hint}{}",
                record.len(),
                columns.names.len(),
                span_hint(span)
            )
        });
        return None;
    }
    let mut valid = true;

    let mut id = None;
    if let Some(index) = columns.id {
        if let Some(value) = text(columns, record, index, line, report, &mut valid) {
            let value = value.trim();
            match parse_id(value) {
                Ok(key) => id = Some((value, key)),
                Err(reason) => {
                    valid = false;
                    let (index, name) = columns.column(index);
                    report.report(line, Some((index, name)), || {
                        if value.is_empty() {
                            format!("{name} is empty")
                        } else {
                            format!("{name} {:?} {reason}", shown(value))
                        }
                    });
                }
            }
        }
    }

    let mut account = None;
    if let Some(index) = columns.account {
        if let Some(value) = text(columns, record, index, line, report, &mut valid) {
            let value = value.trim();
            match parse_account(value) {
                Some(number) => account = Some(number),
                None => {
                    valid = false;
                    let (index, name) = columns.column(index);
                    report.report(line, Some((index, name)), || {
                        if value.is_empty() {
                            format!("{name} is empty")
                        } else {
                            let hint = if value.contains(['E', 'e']) && value.contains('+') {
                                " (a spreadsheet turned it into a number: format the column as text)"
                            } else {
                                ""
                            };
                            format!(
                                "{name} {:?} must be exactly {ACCOUNT_ID_DIGITS} digits{hint}",
                                shown(value)
                            )
                        }
                    });
                }
            }
        }
    }

    let mut message = None;
    if let Some(index) = columns.message {
        if let Some(value) = text(columns, record, index, line, report, &mut valid) {
            let chars = value.chars().count();
            if chars > MAX_TRANSFER_MESSAGE_CHARS {
                valid = false;
                let (index, name) = columns.column(index);
                report.report(line, Some((index, name)), || {
                    format!(
                        "{name} is {chars} characters long; AWS allows at most {MAX_TRANSFER_MESSAGE_CHARS}{}",
                        span_hint(span)
                    )
                });
            } else if !value.is_empty() {
                message = Some(value);
            }
        }
    }

    let mut region = None;
    if let Some(index) = columns.region {
        if let Some(value) = text(columns, record, index, line, report, &mut valid) {
            let value = value.trim();
            if value.is_empty() {
                // The run's default region.
            } else if is_region(value) {
                region = Some(value);
            } else {
                valid = false;
                let (index, name) = columns.column(index);
                report.report(line, Some((index, name)), || {
                    format!(
                        "{name} {:?} is not an AWS region code like us-east-1",
                        shown(value)
                    )
                });
            }
        }
    }

    let ((id, key), account) = (id?, account?);
    if !valid {
        return None;
    }
    Some(ParsedRow {
        id,
        key,
        account,
        message,
        region,
    })
}

/// Cell `index` as text; if it is not UTF-8, reports it and clears `valid`.
fn text<'a, R: Report>(
    columns: &Columns,
    record: &'a csv::ByteRecord,
    index: usize,
    line: u64,
    report: &mut R,
    valid: &mut bool,
) -> Option<&'a str> {
    let raw = cell(record, index);
    match std::str::from_utf8(raw) {
        Ok(text) => Some(text),
        Err(error) => {
            *valid = false;
            let (index, name) = columns.column(index);
            report.report(line, Some((index, name)), || {
                format!(
                    "{name} is not valid UTF-8 (byte {} of the cell is 0x{:02X}); save the manifest as UTF-8",
                    error.valid_up_to() + 1,
                    raw[error.valid_up_to()]
                )
            });
            None
        }
    }
}

/// Hint for a record spanning several lines, where an unbalanced quote is the
/// usual culprit.
fn span_hint(span: &RecordSpan) -> String {
    if span.end_line > span.line {
        format!(
            " (the row runs on to line {}: is a quote unbalanced?)",
            span.end_line
        )
    } else {
        String::new()
    }
}

/// Checks a trimmed certificate id: 64 characters matching
/// `(0x)?[a-fA-F0-9]+`. The error completes `certificate_id "…" `.
fn parse_id(value: &str) -> Result<IdKey, String> {
    let chars = value.chars().count();
    if chars != CERTIFICATE_ID_LEN {
        let hint = if value.contains(":cert/") {
            " (this looks like a certificate ARN: use the id after \"cert/\")"
        } else {
            ""
        };
        return Err(format!(
            "must be {CERTIFICATE_ID_LEN} characters long (found {chars}){hint}"
        ));
    }
    let (digits, prefixed) = match value.strip_prefix("0x") {
        Some(rest) => (rest, true),
        None => (value, false),
    };
    if let Some((position, bad)) = digits
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_hexdigit())
    {
        let position = position + if prefixed { 3 } else { 1 };
        return Err(format!(
            "has a non-hexadecimal character {bad:?} at position {position}"
        ));
    }
    // All ASCII now, so 64 (or 62 after 0x) bytes.
    let mut bytes = [0u8; 32];
    let offset = usize::from(prefixed);
    for (i, pair) in digits.as_bytes().chunks_exact(2).enumerate() {
        bytes[offset + i] = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    Ok(IdKey { bytes, prefixed })
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => unreachable!("checked by parse_id"),
    }
}

fn parse_account(value: &str) -> Option<u64> {
    if value.len() != ACCOUNT_ID_DIGITS || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        value
            .bytes()
            .fold(0u64, |number, digit| number * 10 + u64::from(digit - b'0')),
    )
}

fn format_account(account: u64) -> String {
    format!("{account:012}")
}

/// `^[a-z]{2}(-[a-z]+)+-\d+$`, e.g. `us-east-1`, `us-gov-west-1`.
fn is_region(value: &str) -> bool {
    let Some((name, number)) = value.rsplit_once('-') else {
        return false;
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut parts = name.split('-');
    let country = parts.next().unwrap_or_default();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let mut middle = 0;
    for part in parts {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_lowercase()) {
            return false;
        }
        middle += 1;
    }
    middle > 0
}

/// A cell value as quoted in a message: shortened if long.
fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN_CHARS {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(MAX_SHOWN_CHARS - 1).collect();
        short.push('…');
        short
    }
}

// ---------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------

/// One row of the manifest in the index: 40 bytes, so a million rows take
/// 40 MB. The id is kept whole (not a hash or a prefix of it) so that two
/// distinct certificates can never be mistaken for one.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: [u8; 32],
    /// Physical line of the row.
    line: u32,
    /// Index into [`Index::targets`]; the top bit marks a `0x`-prefixed id.
    target: u32,
}

const PREFIXED_BIT: u32 = 1 << 31;

impl Entry {
    fn new(key: &IdKey, target: u32, line: u32) -> Entry {
        Entry {
            id: key.bytes,
            line,
            target: target | if key.prefixed { PREFIXED_BIT } else { 0 },
        }
    }

    fn key(&self) -> IdKey {
        IdKey {
            bytes: self.id,
            prefixed: self.target & PREFIXED_BIT != 0,
        }
    }

    fn target_index(&self) -> usize {
        (self.target & !PREFIXED_BIT) as usize
    }

    fn is_prefixed(&self) -> bool {
        self.target & PREFIXED_BIT != 0
    }

    /// Orders by id (the `0x` form after the plain one).
    fn cmp_id(&self, other: &Entry) -> Ordering {
        self.id
            .cmp(&other.id)
            .then(self.is_prefixed().cmp(&other.is_prefixed()))
    }

    fn cmp_key(&self, key: &IdKey) -> Ordering {
        self.id
            .cmp(&key.bytes)
            .then((self.target & PREFIXED_BIT != 0).cmp(&key.prefixed))
    }
}

/// Interns regions and (account, region) targets: a manifest has few distinct
/// ones, and an index entry then needs only a 31-bit target number.
#[derive(Default)]
struct Interner {
    regions: Vec<Option<Box<str>>>,
    region_ids: HashMap<Box<str>, u32>,
    default_region: Option<u32>,
    last_region: Option<u32>,
    targets: Vec<(u64, u32)>,
    target_ids: HashMap<(u64, u32), u32>,
    last_target: Option<u32>,
}

impl Interner {
    fn region(&mut self, region: Option<&str>) -> u32 {
        // Most rows repeat the previous row's region: check it first.
        if let Some(last) = self.last_region {
            if self.regions[last as usize].as_deref() == region {
                return last;
            }
        }
        let id = match region {
            None => *self.default_region.get_or_insert_with(|| {
                self.regions.push(None);
                (self.regions.len() - 1) as u32
            }),
            Some(name) => match self.region_ids.get(name) {
                Some(&id) => id,
                None => {
                    let id = self.regions.len() as u32;
                    self.regions.push(Some(name.into()));
                    self.region_ids.insert(name.into(), id);
                    id
                }
            },
        };
        self.last_region = Some(id);
        id
    }

    fn target(&mut self, account: u64, region: u32) -> Option<u32> {
        if let Some(last) = self.last_target {
            if self.targets[last as usize] == (account, region) {
                return Some(last);
            }
        }
        let id = match self.target_ids.get(&(account, region)) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.targets.len())
                    .ok()
                    .filter(|&id| id < PREFIXED_BIT)?;
                self.targets.push((account, region));
                self.target_ids.insert((account, region), id);
                id
            }
        };
        self.last_target = Some(id);
        Some(id)
    }
}

/// The ids of the manifest, sorted, with the tables their targets refer to.
struct Index {
    /// Sorted by (id, line); after [`Index::dedup`], one entry per id (its
    /// first line).
    entries: Vec<Entry>,
    /// (account, index into `regions`), in order of first appearance.
    targets: Vec<(u64, u32)>,
    /// Distinct regions in order of first appearance.
    regions: Vec<Option<Box<str>>>,
}

impl Index {
    fn build(mut entries: Vec<Entry>, interner: Interner) -> Index {
        // In place and without extra memory; lines are unique, so the order
        // is total and stability does not matter.
        entries.sort_unstable_by(|a, b| a.cmp_id(b).then(a.line.cmp(&b.line)));
        Index {
            entries,
            targets: interner.targets,
            regions: interner.regions,
        }
    }

    /// Reports each later occurrence of an id: a warning when it has the same
    /// target as the first, an error otherwise.
    fn find_duplicates(
        &self,
        columns: &Columns,
        problems: &mut Collector,
        warnings: &mut Collector,
    ) {
        let (Some(id_column), Some(account_column)) = (columns.id, columns.account) else {
            return;
        };
        for group in self.entries.chunk_by(|a, b| a.cmp_id(b) == Ordering::Equal) {
            let first = &group[0];
            for later in &group[1..] {
                let line = u64::from(later.line);
                let id = || first.key().to_hex();
                if later.target_index() == first.target_index() {
                    warnings.report(line, Some(columns.column(id_column)), || {
                        format!(
                            "certificate_id {} repeats line {} with the same target: counted once",
                            id(),
                            first.line
                        )
                    });
                    continue;
                }
                let (first_account, first_region) = self.targets[first.target_index()];
                let (later_account, later_region) = self.targets[later.target_index()];
                if first_account != later_account {
                    let (index, name) = columns.column(account_column);
                    problems.report(line, Some((index, name)), || {
                        format!(
                            "certificate_id {} is listed at line {} for {name} {}, here for {}: a certificate can go to one account only",
                            id(),
                            first.line,
                            format_account(first_account),
                            format_account(later_account)
                        )
                    });
                } else {
                    let region_name = |region: u32| {
                        self.regions[region as usize]
                            .as_deref()
                            .unwrap_or("(default)")
                            .to_owned()
                    };
                    let column = columns.region.map(|index| columns.column(index));
                    problems.report(line, column, || {
                        format!(
                            "certificate_id {} is listed at line {} with region {}, here with region {}: a certificate is in one region only",
                            id(),
                            first.line,
                            region_name(first_region),
                            region_name(later_region)
                        )
                    });
                }
            }
        }
    }

    /// Keeps the first occurrence of each id; returns the lines of the others,
    /// sorted.
    fn dedup(&mut self) -> Vec<u32> {
        let mut removed = Vec::new();
        self.entries.dedup_by(|later, first| {
            let same = later.cmp_id(first) == Ordering::Equal;
            if same {
                removed.push(later.line);
            }
            same
        });
        removed.sort_unstable();
        removed
    }

    fn find(&self, key: &IdKey) -> Option<&Entry> {
        self.entries
            .binary_search_by(|entry| entry.cmp_key(key))
            .ok()
            .map(|position| &self.entries[position])
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Instant;

    const A: &str = "222222222222";
    const B: &str = "333333333333";

    /// A random-looking, reproducible 64-hex certificate id.
    fn id(n: u64) -> String {
        hex(&Sha256::digest(n.to_le_bytes()))
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    fn fixture(content: impl AsRef<[u8]>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        fs::write(&path, content).unwrap();
        Fixture { _dir: dir, path }
    }

    fn load(content: impl AsRef<[u8]>) -> (Fixture, Manifest) {
        let file = fixture(content);
        let manifest = Manifest::load(&file.path).unwrap_or_else(|e| panic!("{e}"));
        (file, manifest)
    }

    fn invalid(content: impl AsRef<[u8]>) -> (Vec<Problem>, usize) {
        let file = fixture(content);
        match Manifest::load(&file.path) {
            Err(ManifestError::Invalid {
                problems, total, ..
            }) => (problems, total),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// The one problem of an invalid manifest.
    fn only_problem(content: impl AsRef<[u8]>) -> Problem {
        let (problems, total) = invalid(content);
        assert_eq!(total, 1, "{problems:#?}");
        problems.into_iter().next().unwrap()
    }

    fn rows(manifest: &Manifest) -> Vec<ManifestRow> {
        manifest.rows().unwrap().collect::<Result<_, _>>().unwrap()
    }

    fn at(problem: &Problem) -> (u64, Option<usize>, Option<&str>) {
        (problem.line, problem.column, problem.column_name.as_deref())
    }

    #[test]
    fn valid_with_bom_crlf_quotes_blank_and_comment_lines() {
        let content = format!(
            "\u{feff}# exported from the fleet inventory\r\n\
             certificate_id,target_account,transfer_message\r\n\
             \r\n\
             {},{A},\"Hello, \"\"fleet\"\"\"\r\n\
             \x20  # indented comment, with a comma\r\n\
             {}, {B} ,\"two\r\nlines\"\r\n\
             ,,\r\n\
             \x20  \r\n\
             \x20{}  ,{A},",
            id(1),
            id(2),
            id(3).to_uppercase()
        );
        let (_file, manifest) = load(content);
        assert_eq!(manifest.len(), 3);
        assert!(!manifest.is_empty());
        assert_eq!(manifest.warning_count(), 0, "{:?}", manifest.warnings());
        assert_eq!(
            rows(&manifest),
            vec![
                ManifestRow {
                    line: 4,
                    certificate_id: id(1),
                    target_account: A.into(),
                    transfer_message: Some("Hello, \"fleet\"".into()),
                    region: None,
                },
                ManifestRow {
                    line: 6,
                    certificate_id: id(2),
                    target_account: B.into(),
                    transfer_message: Some("two\r\nlines".into()),
                    region: None,
                },
                ManifestRow {
                    line: 10,
                    certificate_id: id(3),
                    target_account: A.into(),
                    transfer_message: None,
                    region: None,
                },
            ]
        );
        assert_eq!(manifest.regions(), vec![None]);
        assert_eq!(manifest.target_accounts(), vec![A.to_owned(), B.to_owned()]);
    }

    #[test]
    fn api_header_names_are_accepted() {
        let content = format!(
            " certificateId , targetAwsAccount,transferMessage,region\n{},{A},hi,eu-central-1\n",
            id(1)
        );
        let (_file, manifest) = load(content);
        let rows = rows(&manifest);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].transfer_message.as_deref(), Some("hi"));
        assert_eq!(rows[0].region.as_deref(), Some("eu-central-1"));
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let content = format!(
            "region,transfer_message,target_account,certificate_id\n\
             us-gov-west-1,first,{A},{}\n,,{B},{}\n",
            id(1),
            id(2)
        );
        let (_file, manifest) = load(content);
        let rows = rows(&manifest);
        assert_eq!(
            rows[0],
            ManifestRow {
                line: 2,
                certificate_id: id(1),
                target_account: A.into(),
                transfer_message: Some("first".into()),
                region: Some("us-gov-west-1".into()),
            }
        );
        assert_eq!(
            (rows[1].region.clone(), rows[1].transfer_message.clone()),
            (None, None)
        );
        assert_eq!(
            manifest.regions(),
            vec![Some("us-gov-west-1".to_owned()), None]
        );
    }

    #[test]
    fn certificate_id_of_wrong_length_is_reported_at_its_cell() {
        let short = &id(1)[..63];
        let problem = only_problem(format!(
            "# comment\ntarget_account,certificate_id\n{A},{}\n{A},{short}\n",
            id(2)
        ));
        assert_eq!(at(&problem), (4, Some(2), Some("certificate_id")));
        assert_eq!(
            problem.message,
            format!("certificate_id \"{short}\" must be 64 characters long (found 63)")
        );
        let problem = only_problem(format!("certificate_id,target_account\n  ,{A}\n"));
        assert_eq!(at(&problem), (2, Some(1), Some("certificate_id")));
        assert_eq!(problem.message, "certificate_id is empty");
        let arn = format!("arn:aws:iot:us-east-1:111111111111:cert/{}", id(1));
        let problem = only_problem(format!("certificate_id,target_account\n{arn},{A}\n"));
        assert!(problem.message.contains("certificate ARN"), "{problem}");
    }

    #[test]
    fn non_hex_certificate_id_names_the_character() {
        let mut bad = id(1);
        bad.replace_range(9..10, "g");
        let problem = only_problem(format!("certificate_id,target_account\n{bad},{A}\n"));
        assert_eq!(at(&problem), (2, Some(1), Some("certificate_id")));
        assert!(
            problem
                .message
                .ends_with("has a non-hexadecimal character 'g' at position 10"),
            "{problem}"
        );
        // Multibyte characters: 64 characters but not hex.
        let accented = format!("é{}", &id(1)[1..]);
        let problem = only_problem(format!("certificate_id,target_account\n{accented},{A}\n"));
        assert!(problem.message.contains("'é' at position 1"), "{problem}");
    }

    #[test]
    fn certificate_id_with_0x_prefix_is_accepted_and_distinct() {
        let prefixed = format!("0x{}", &id(1)[2..]);
        let zeros = format!("00{}", &id(1)[2..]);
        let (_file, manifest) = load(format!(
            "certificate_id,target_account\n{prefixed},{A}\n{zeros},{B}\n"
        ));
        assert_eq!(manifest.len(), 2);
        assert!(manifest.contains(&prefixed));
        assert!(manifest.contains(&zeros.to_uppercase()));
        assert_eq!(rows(&manifest)[0].certificate_id, prefixed);
        let problem = only_problem(format!(
            "certificate_id,target_account\n0X{},{A}\n",
            &id(1)[2..]
        ));
        assert!(problem.message.contains("'X' at position 2"), "{problem}");
    }

    #[test]
    fn target_account_must_be_12_digits() {
        let problem = only_problem(format!(
            "certificate_id,target_account\n{},{A}\n{},12345\n",
            id(1),
            id(2)
        ));
        assert_eq!(at(&problem), (3, Some(2), Some("target_account")));
        assert_eq!(
            problem.message,
            "target_account \"12345\" must be exactly 12 digits"
        );
        for bad in [
            "2222222222222",
            "22222222222a",
            "",
            "2.22222E+11",
            "２22222222222",
        ] {
            let problem = only_problem(format!(
                "certificate_id,targetAwsAccount\n{},{bad}\n",
                id(1)
            ));
            assert_eq!(
                at(&problem),
                (2, Some(2), Some("targetAwsAccount")),
                "{bad}"
            );
        }
        let problem = only_problem(format!(
            "certificate_id,target_account\n{},2.22222E+11\n",
            id(1)
        ));
        assert!(
            problem.message.contains("format the column as text"),
            "{problem}"
        );
        // Leading zeros are kept.
        let (_file, manifest) = load(format!(
            "certificate_id,target_account\n{}, 012345678901\n",
            id(1)
        ));
        assert_eq!(rows(&manifest)[0].target_account, "012345678901");
    }

    #[test]
    fn transfer_message_limit_counts_characters_not_bytes() {
        let ok_ascii = "m".repeat(128);
        let ok_multibyte = "é".repeat(128); // 256 bytes
        let too_long = "m".repeat(129);
        let (_file, manifest) = load(format!(
            "certificate_id,target_account,transfer_message\n{},{A},{ok_ascii}\n{},{A},{ok_multibyte}\n",
            id(1),
            id(2)
        ));
        assert_eq!(
            rows(&manifest)[1].transfer_message.as_deref(),
            Some(ok_multibyte.as_str())
        );
        let problem = only_problem(format!(
            "certificate_id,target_account,transfer_message\n{},{A},{ok_ascii}\n{},{A},{too_long}\n",
            id(1),
            id(2)
        ));
        assert_eq!(at(&problem), (3, Some(3), Some("transfer_message")));
        assert_eq!(
            problem.message,
            "transfer_message is 129 characters long; AWS allows at most 128"
        );
        let problem = only_problem(format!(
            "certificate_id,target_account,transfer_message\n{},{A},\"{}\n\"\n",
            id(1),
            "é".repeat(128)
        ));
        assert!(problem.message.contains("129 characters"), "{problem}");
        assert!(problem.message.contains("runs on to line 3"), "{problem}");
    }

    #[test]
    fn region_must_look_like_an_aws_region() {
        for good in [
            "us-east-1",
            "eu-central-1",
            "us-gov-west-1",
            "ap-southeast-4",
            "cn-north-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "US-EAST-1",
            "us-east",
            "useast-1",
            "u-east-1",
            "us--1",
            "us-east-",
            "us-east-1a",
            "us-1",
            "",
            "us-east-1 x",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        let problem = only_problem(format!(
            "certificate_id,target_account,region\n{},{A}, us-east-1 \n{},{A},US-East-1\n",
            id(1),
            id(2)
        ));
        assert_eq!(at(&problem), (3, Some(3), Some("region")));
        assert_eq!(
            problem.message,
            "region \"US-East-1\" is not an AWS region code like us-east-1"
        );
    }

    #[test]
    fn wrong_number_of_fields_is_reported_for_the_row() {
        let (problems, total) = invalid(format!(
            "certificate_id,target_account,transfer_message\n{},{A},a,b\n{},{A}\n{},{A}, \"x, y\"\n",
            id(1),
            id(2),
            id(3)
        ));
        assert_eq!(total, 3);
        assert_eq!(at(&problems[0]), (2, None, None));
        assert_eq!(
            problems[0].message,
            "the row has 4 fields but the header has 3"
        );
        assert_eq!(at(&problems[1]), (3, None, None));
        assert!(
            problems[2].message.contains("without spaces"),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn unknown_column_is_named_with_a_suggestion() {
        let (problems, total) = invalid(format!(
            "certificate_id,target_acount,Region,notes\n{},{A},,\n",
            id(1)
        ));
        assert_eq!(total, 4, "{problems:#?}");
        assert_eq!(at(&problems[0]), (1, None, None));
        assert!(problems[0]
            .message
            .starts_with("missing required column target_account"));
        assert_eq!(at(&problems[1]), (1, Some(2), Some("target_acount")));
        assert_eq!(
            problems[1].message,
            "unknown column \"target_acount\" (did you mean \"target_account\"?)"
        );
        assert_eq!(at(&problems[2]), (1, Some(3), Some("Region")));
        assert_eq!(
            problems[2].message,
            "unknown column \"Region\" (names are case-sensitive: did you mean \"region\"?)"
        );
        assert_eq!(at(&problems[3]), (1, Some(4), Some("notes")));
        assert!(problems[3]
            .message
            .contains("expected certificate_id,target_account"));
    }

    #[test]
    fn missing_and_repeated_columns_are_reported() {
        let problem = only_problem(format!("certificate_id\n{}\n", id(1)));
        assert_eq!(at(&problem), (1, None, None));
        assert!(problem
            .message
            .starts_with("missing required column target_account (or targetAwsAccount)"));
        let problem = only_problem(format!("# c\ntarget_account\n{A}\n"));
        assert_eq!(at(&problem), (2, None, None));
        assert!(problem
            .message
            .starts_with("missing required column certificate_id"));
        let problem = only_problem(format!(
            "certificate_id,target_account,certificateId\n{},{A},{}\n",
            id(1),
            id(1)
        ));
        assert_eq!(at(&problem), (1, Some(3), Some("certificateId")));
        assert_eq!(
            problem.message,
            "column \"certificateId\" repeats column 1 (\"certificate_id\")"
        );
        let problem = only_problem(format!("certificate_id,target_account,\n{},{A},\n", id(1)));
        assert_eq!(at(&problem), (1, Some(3), Some("")));
        assert_eq!(problem.message, "column 3 of the header has no name");
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_cell() {
        let mut content = format!(
            "certificate_id,target_account,transfer_message\n{},{A},ok\n",
            id(1)
        )
        .into_bytes();
        content.extend_from_slice(format!("{},{A},Caf", id(2)).as_bytes());
        content.extend_from_slice(b"\xe9\n");
        let problem = only_problem(&content);
        assert_eq!(at(&problem), (3, Some(3), Some("transfer_message")));
        assert_eq!(
            problem.message,
            "transfer_message is not valid UTF-8 (byte 4 of the cell is 0xE9); save the manifest as UTF-8"
        );
        let (problems, _) = invalid(b"certificate_id,target\xff\n");
        assert!(problems
            .iter()
            .any(|p| p.message.contains("not valid UTF-8")));
    }

    #[test]
    fn conflicting_duplicates_name_both_lines() {
        let (problems, total) = invalid(format!(
            "certificate_id,target_account,region\n{0},{A},\n{1},{A},us-east-1\n{2},{A},\n{0},{B},\n{3},{A},\n{1},{A},eu-west-1\n",
            id(1).to_uppercase(),
            id(2),
            id(3),
            id(4)
        ));
        assert_eq!(total, 2, "{problems:#?}");
        assert_eq!(at(&problems[0]), (5, Some(2), Some("target_account")));
        assert_eq!(
            problems[0].message,
            format!(
                "certificate_id {} is listed at line 2 for target_account {A}, here for {B}: a certificate can go to one account only",
                id(1)
            )
        );
        assert_eq!(at(&problems[1]), (7, Some(3), Some("region")));
        assert!(problems[1]
            .message
            .contains("listed at line 3 with region us-east-1, here with region eu-west-1"));
    }

    #[test]
    fn same_target_duplicate_is_counted_once_with_a_warning() {
        let (_file, manifest) = load(format!(
            "certificate_id,target_account\n{0},{A}\n{1},{A}\n{2},{A}\n{3},{A}\n",
            id(1),
            id(2),
            id(1).to_uppercase(),
            id(1)
        ));
        assert_eq!(manifest.len(), 2);
        assert_eq!(manifest.warning_count(), 2);
        let warning = &manifest.warnings()[0];
        assert_eq!(at(warning), (4, Some(1), Some("certificate_id")));
        assert_eq!(
            warning.message,
            format!(
                "certificate_id {} repeats line 2 with the same target: counted once",
                id(1)
            )
        );
        assert_eq!(manifest.warnings()[1].line, 5);
        let lines: Vec<u64> = rows(&manifest).iter().map(|row| row.line).collect();
        assert_eq!(lines, vec![2, 3]);
        assert_eq!(manifest.targets()[0].certificates, 2);
    }

    #[test]
    fn problems_are_capped_at_100_with_the_total() {
        // Lines 2..=51: valid; 52..=101: conflicting duplicates (found after
        // the sort); 102..=301: bad accounts. The kept ones are the first by
        // line, whatever order they were found in.
        let mut content = String::from("certificate_id,target_account\n");
        for n in 0..50 {
            content += &format!("{},{A}\n", id(n));
        }
        for n in 0..50 {
            content += &format!("{},{B}\n", id(n));
        }
        for n in 100..300 {
            content += &format!("{},12345\n", id(n));
        }
        let file = fixture(&content);
        let error = Manifest::load(&file.path).unwrap_err();
        let ManifestError::Invalid {
            problems, total, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!((problems.len(), *total), (100, 250));
        let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, (52..152).collect::<Vec<u64>>());
        let text = error.to_string();
        assert!(text.starts_with(&format!(
            "invalid manifest {}: 250 problems\n",
            file.path.display()
        )));
        assert!(text.ends_with("\n... and 150 more problems"), "{text}");
        assert_eq!(text.lines().count(), 102);
        assert!(error.is_bad_input());
    }

    #[test]
    fn error_display_is_path_line_column_message() {
        let mut content = String::from("certificate_id,target_account\n");
        for n in 0..10 {
            content += &format!("{},{A}\n", id(n));
        }
        content += &format!("{},12345\n", id(99));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        fs::write(&path, content).unwrap();
        // A relative path is shown as given.
        let relative = Path::new("manifest.csv");
        let error = match Manifest::load(&path) {
            Err(ManifestError::Invalid {
                problems, total, ..
            }) => ManifestError::Invalid {
                path: relative.to_path_buf(),
                problems,
                total,
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(
            error.to_string(),
            "invalid manifest manifest.csv: 1 problem\n\
             manifest.csv:12:2: target_account \"12345\" must be exactly 12 digits"
        );
        let problem = Problem {
            line: 7,
            column: None,
            column_name: None,
            message: "m".into(),
        };
        assert_eq!(problem.to_string(), "7: m");
    }

    #[test]
    fn line_numbers_are_physical_lines_of_the_record_start() {
        // csv's own positions would point at the blank lines before a record
        // and lag behind on CRLF files.
        let content = format!(
            "certificate_id,target_account,transfer_message\r\n\
             \r\n\r\n\
             {},1,\r\n\
             # note\r\n\
             {},{A},\"multi\r\nline\r\nmessage\"\r\n\
             {},2,\r\n\
             \r\n\
             {},3,",
            id(1),
            id(2),
            id(3),
            id(4)
        );
        let (problems, total) = invalid(content);
        assert_eq!(total, 3);
        let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![4, 9, 11]);
        // The same without CRs and with a trailing line end.
        let content = format!(
            "certificate_id,target_account\n\n{},1\n\"{}\",{A}\n\n\n{},2\n",
            id(1),
            id(2),
            id(3)
        );
        let (problems, _) = invalid(content);
        let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![3, 7]);
    }

    #[test]
    fn line_numbers_at_the_end_of_the_file() {
        let header = "certificate_id,target_account,transfer_message\n";
        // An unclosed quote runs to the end of the file, line break included.
        for tail in ["\"unclosed\nmore\n", "\"unclosed\nmore"] {
            let content = format!("{header}{},{A},ok\n{},1,{tail}", id(1), id(2));
            let (problems, _) = invalid(content);
            assert_eq!(problems[0].line, 3, "{tail:?}: {problems:#?}");
        }
        // A closed message ending with a line break, then the file's last
        // line end.
        let content = format!("{header}{},{A},ok\n{},1,\"closed\n\"\n", id(1), id(2));
        let (problems, _) = invalid(content);
        assert_eq!(problems[0].line, 3);
        let content = format!("{header}\n{},{A},\"closed\n\"\n", id(1));
        let (_file, manifest) = load(content);
        let rows = rows(&manifest);
        assert_eq!(rows[0].line, 3);
        assert_eq!(rows[0].transfer_message.as_deref(), Some("closed\n"));
    }

    #[test]
    fn indented_comment_with_a_quote_is_an_error_not_a_silent_skip() {
        let problem = only_problem(format!(
            "certificate_id,target_account\n  # old,\"gateway\n{},{A}\n",
            id(1)
        ));
        assert_eq!(at(&problem), (2, None, None));
        assert!(problem.message.contains("runs on to line 3"), "{problem}");
        // A quote after a space is plain text, as in any field.
        let (_file, manifest) = load(format!(
            "certificate_id,target_account\n  # old, \"gateway\n{},{A}\n",
            id(1)
        ));
        assert_eq!(manifest.len(), 1);
        // A quote in a comment starting in the first column is harmless.
        let (_file, manifest) = load(format!(
            "certificate_id,target_account\n# old, \"gateway\n{},{A}\n",
            id(1)
        ));
        assert_eq!(manifest.len(), 1);
    }

    #[test]
    fn rows_come_in_file_order_without_duplicates() {
        let order = [5u64, 3, 9, 3, 1, 5, 7];
        let mut content = String::from("certificate_id,target_account,transfer_message\n");
        for n in order {
            content += &format!("{},{A},row {n}\n", id(n));
        }
        let (_file, manifest) = load(content);
        assert_eq!(manifest.len(), 5);
        assert_eq!(manifest.warning_count(), 2);
        // Send + 'static: consumable on another thread.
        let iter = manifest.rows().unwrap();
        let rows = std::thread::spawn(move || iter.collect::<Result<Vec<_>, _>>())
            .join()
            .unwrap()
            .unwrap();
        let got: Vec<(u64, String)> = rows
            .iter()
            .map(|row| (row.line, row.certificate_id.clone()))
            .collect();
        let want: Vec<(u64, String)> = [(2, 5), (3, 3), (4, 9), (6, 1), (8, 7)]
            .into_iter()
            .map(|(line, n)| (line, id(n)))
            .collect();
        assert_eq!(got, want);
        assert_eq!(rows[0].transfer_message.as_deref(), Some("row 5"));
    }

    #[test]
    fn sha256_is_that_of_the_file_and_changes_with_it() {
        let content = format!("certificate_id,target_account\n{},{A}\n", id(1));
        let (file, manifest) = load(&content);
        assert_eq!(manifest.sha256(), hex(&Sha256::digest(content.as_bytes())));
        fs::write(&file.path, format!("{content}# reviewed\n")).unwrap();
        let reloaded = Manifest::load(&file.path).unwrap();
        assert_ne!(reloaded.sha256(), manifest.sha256());
        assert_eq!(reloaded.len(), manifest.len());
    }

    #[test]
    fn rows_detect_a_manifest_changed_after_load() {
        let content = format!(
            "certificate_id,target_account\n{},{A}\n{},{A}\n",
            id(1),
            id(2)
        );
        let (file, manifest) = load(&content);
        // Same size, other target: caught before the first row.
        fs::write(&file.path, content.replacen(A, B, 1)).unwrap();
        let results: Vec<_> = manifest.rows().unwrap().collect();
        assert_eq!(results.len(), 1);
        assert!(matches!(results[0], Err(ManifestError::Changed { .. })));
        // Another size: caught up front.
        fs::write(&file.path, format!("{content}\n")).unwrap();
        assert!(matches!(
            manifest.rows(),
            Err(ManifestError::Changed { .. })
        ));
        // Back as it was: fine again.
        fs::write(&file.path, &content).unwrap();
        assert_eq!(rows(&manifest).len(), 2);

        // A change in a later chunk: the rows before it come, then the error.
        let mut content = String::from("certificate_id,target_account,transfer_message\n");
        for n in 0..20_000 {
            content += &format!("{},{A},\n", id(n));
        }
        assert!(content.len() > CHUNK_BYTES);
        let (file, manifest) = load(&content);
        let last = id(19_999);
        fs::write(&file.path, content.replacen(&last, &last.to_uppercase(), 1)).unwrap();
        let results: Vec<_> = manifest.rows().unwrap().collect();
        let good = results.iter().take_while(|result| result.is_ok()).count();
        assert!(good > 10_000 && good < 20_000, "{good}");
        assert_eq!(results.len(), good + 1);
        assert!(matches!(results[good], Err(ManifestError::Changed { .. })));
    }

    #[test]
    fn missing_file_and_unreadable_file_are_distinct_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.csv");
        let error = Manifest::load(&missing).unwrap_err();
        assert!(matches!(error, ManifestError::NotFound { .. }), "{error:?}");
        assert!(error.is_bad_input());
        assert_eq!(error.path(), missing);
        let error = Manifest::load(dir.path()).unwrap_err();
        assert!(matches!(error, ManifestError::Io { .. }), "{error:?}");
        assert!(!error.is_bad_input());
        assert!(
            error.to_string().starts_with("cannot read manifest ")
                && error.to_string().contains("not a regular file"),
            "{error}"
        );
    }

    #[test]
    fn header_only_is_valid_with_a_warning_but_no_header_is_invalid() {
        let (_file, manifest) = load("# nothing yet\ncertificate_id,target_account\n\n");
        assert!(manifest.is_empty());
        assert_eq!(manifest.len(), 0);
        assert_eq!(manifest.warnings().len(), 1);
        assert_eq!(at(&manifest.warnings()[0]), (2, None, None));
        assert!(rows(&manifest).is_empty());
        assert!(manifest.regions().is_empty());
        for content in ["", "\u{feff}", "# only a comment\n\n"] {
            let problem = only_problem(content);
            assert_eq!(at(&problem), (1, None, None));
            assert!(problem
                .message
                .starts_with("the manifest has no header row"));
        }
    }

    #[test]
    fn contains_is_case_insensitive() {
        let (_file, manifest) = load(format!(
            "certificate_id,target_account\n{},{A}\n",
            id(1).to_uppercase()
        ));
        assert!(manifest.contains(&id(1)));
        assert!(manifest.contains(&format!(" {} ", id(1).to_uppercase())));
        assert!(!manifest.contains(&id(2)));
        assert!(!manifest.contains("not an id"));
    }

    #[test]
    fn regions_and_targets_in_order_of_appearance() {
        let (_file, manifest) = load(format!(
            "certificate_id,target_account,region\n{},{B},eu-west-1\n{},{A},\n{},{B},eu-west-1\n{},{B},\n",
            id(1),
            id(2),
            id(3),
            id(4)
        ));
        assert_eq!(manifest.regions(), vec![Some("eu-west-1".to_owned()), None]);
        assert_eq!(manifest.target_accounts(), vec![B.to_owned(), A.to_owned()]);
        let targets = manifest.targets();
        assert_eq!(targets.len(), 3);
        assert_eq!(
            targets[0],
            Target {
                account: B.into(),
                region: Some("eu-west-1".into()),
                certificates: 2
            }
        );
        assert_eq!(
            (targets[2].account.as_str(), targets[2].certificates),
            (B, 1)
        );
    }

    #[test]
    fn write_manifest_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let row = |n: u64, message: Option<&str>, region: Option<&str>| ManifestRow {
            line: 0,
            certificate_id: id(n),
            target_account: A.into(),
            transfer_message: message.map(str::to_owned),
            region: region.map(str::to_owned),
        };
        let written = vec![
            row(1, Some("plain"), None),
            row(2, Some("comma, \"quotes\"\nand a line break"), None),
            row(3, Some("  spaces kept  "), None),
            row(4, None, None),
        ];
        write_manifest(&path, &written).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("certificate_id,target_account,transfer_message\n"));
        let read = rows(&Manifest::load(&path).unwrap());
        let strip = |rows: &[ManifestRow]| -> Vec<ManifestRow> {
            rows.iter()
                .map(|r| ManifestRow {
                    line: 0,
                    ..r.clone()
                })
                .collect()
        };
        assert_eq!(strip(&read), written);
        assert_eq!(
            read.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 3, 5, 6]
        );

        let written = vec![row(1, None, Some("us-east-1")), row(2, Some("x"), None)];
        write_manifest(&path, &written).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("certificate_id,target_account,transfer_message,region\n"));
        assert_eq!(strip(&rows(&Manifest::load(&path).unwrap())), written);

        let mut writer = ManifestWriter::create(&path, false).unwrap();
        assert!(writer.write_row(&row(1, None, Some("us-east-1"))).is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4211), "4,211");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(edit_distance("targetacount", "targetaccount"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let long = "x".repeat(100);
        assert_eq!(shown(&long).chars().count(), MAX_SHOWN_CHARS);
        assert_eq!(parse_id(&id(7)).unwrap().to_hex(), id(7));
        assert_eq!(parse_account("000000000042"), Some(42));
    }

    #[test]
    fn sample_manifests() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-manifests");
        let small = Manifest::load(&dir.join("small.csv")).unwrap();
        assert_eq!((small.len(), small.warning_count()), (5, 0));
        assert_eq!(small.target_accounts(), vec![A.to_owned()]);

        let multi = Manifest::load(&dir.join("multi-target.csv")).unwrap();
        assert_eq!((multi.len(), multi.warning_count()), (8, 0));
        assert_eq!(multi.target_accounts(), vec![A.to_owned(), B.to_owned()]);
        assert!(rows(&multi).iter().any(|row| row
            .transfer_message
            .as_deref()
            .is_some_and(|m| m.contains(','))));

        let Err(ManifestError::Invalid {
            problems, total, ..
        }) = Manifest::load(&dir.join("invalid.csv"))
        else {
            panic!("invalid.csv should be invalid");
        };
        let found: Vec<(u64, Option<usize>)> =
            problems.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(
            found,
            vec![
                (15, Some(5)),
                (16, Some(1)),
                (17, Some(1)),
                (18, Some(2)),
                (19, Some(3)),
                (20, Some(4)),
                (21, None),
                (22, Some(3)),
                (24, Some(2)),
                (26, Some(4)),
            ],
            "{problems:#?}"
        );
        assert_eq!(total, 10);

        let Err(ManifestError::Invalid { problems, .. }) =
            Manifest::load(&dir.join("invalid-header.csv"))
        else {
            panic!("invalid-header.csv should be invalid");
        };
        let found: Vec<(u64, Option<usize>)> =
            problems.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(
            found,
            vec![(4, None), (4, Some(2)), (4, Some(4))],
            "{problems:#?}"
        );
    }

    /// Peak resident memory of this process, from /proc (Linux), in KiB.
    fn peak_rss_kib() -> Option<u64> {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Writes `rows` rows (a few duplicates, two targets, some messages)
    /// without holding them in memory.
    fn generate(path: &Path, rows: u64) {
        let mut writer = ManifestWriter::create(path, false).unwrap();
        let mut row = ManifestRow {
            line: 0,
            certificate_id: String::new(),
            target_account: String::new(),
            transfer_message: None,
            region: None,
        };
        for n in 0..rows {
            // Every 1000th row repeats the previous id (same target).
            let key = if n % 1000 == 999 { n - 1 } else { n };
            row.certificate_id = id(key);
            row.target_account = if key % 2 == 0 { A } else { B }.to_owned();
            row.transfer_message = (n % 10 == 0).then(|| format!("batch {}, gateway", n / 10));
            writer.write_row(&row).unwrap();
        }
        writer.finish().unwrap();
    }

    /// `cargo test --release -- --ignored --nocapture million`: the numbers
    /// only mean something in release mode and alone in their process.
    #[test]
    #[ignore = "benchmark: run in release mode, alone"]
    fn million_rows_validate_fast_in_little_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("million.csv");
        generate(&path, 1_000_000);
        let bytes = fs::metadata(&path).unwrap().len();

        let start = Instant::now();
        let manifest = Manifest::load(&path).unwrap();
        let load_time = start.elapsed();
        assert_eq!(manifest.len(), 999_000);
        assert_eq!(manifest.warning_count(), 1_000);

        let start = Instant::now();
        let mut count = 0;
        for row in manifest.rows().unwrap() {
            row.unwrap();
            count += 1;
        }
        let rows_time = start.elapsed();
        assert_eq!(count, 999_000);
        let peak = peak_rss_kib().unwrap_or(0);
        eprintln!(
            "1,000,000 rows ({} MB): load {load_time:.2?}, rows {rows_time:.2?}, peak RSS {:.1} MB",
            bytes / 1_000_000,
            peak as f64 / 1024.0
        );
        if !cfg!(debug_assertions) {
            assert!(load_time.as_secs_f64() < 3.0);
            assert!(peak < 64 * 1024);
        }
    }
}
