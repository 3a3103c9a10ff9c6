//! Reading a manifest: chunks hashed as they are read, CSV records with exact line numbers.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{hex, ManifestError, CHUNK_BYTES, CSV_BUFFER_BYTES, MAX_ROW_BYTES};

/// Reads the file a chunk at a time, hashing each chunk and the whole file
/// as it goes, so pass 1 reads the file only once. Pass 1 records the chunk
/// digests; pass 2 checks each chunk against them before handing any of its
/// bytes to the parser, and fails with [`FileChanged`] on a mismatch.
///
/// It also remembers whether the end of the file was reached and the last
/// two bytes handed out, which tell whether the final record had a line end
/// (see [`Scanner::next_record`]).
pub(super) struct ChunkReader {
    pub(super) file: File,
    pub(super) buffer: Box<[u8]>,
    /// The unread part of `buffer`.
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) file_hasher: Sha256,
    /// Pass 1: the digests of the chunks read so far.
    pub(super) digests: Vec<[u8; 32]>,
    /// Pass 2: the digests pass 1 recorded.
    pub(super) expected: Option<Arc<[[u8; 32]]>>,
    pub(super) chunks_read: usize,
    /// Bytes handed out so far.
    pub(super) bytes: u64,
    /// The last two bytes handed out (zeros before that).
    pub(super) tail: [u8; 2],
    /// Whether a read found the end of the file.
    pub(super) eof: bool,
    /// Where the record being read starts (set by [`Scanner`]): a record longer than
    /// [`MAX_ROW_BYTES`] is refused before the parser holds it all.
    pub(super) record_start: u64,
}

/// The error [`ChunkReader`] wraps in an `io::Error` when a record grows past
/// [`MAX_ROW_BYTES`]: a 200 MB file without a line end is not a manifest row, and reading it
/// as one would hold all of it (several times over) in memory.
#[derive(Debug)]
pub(super) struct RowTooLong {
    /// The line the record starts on.
    pub(super) line: u64,
}

impl fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row longer than {} bytes", MAX_ROW_BYTES)
    }
}

impl std::error::Error for RowTooLong {}

impl RowTooLong {
    /// The `RowTooLong` an I/O error carries, if it carries one.
    pub(super) fn of(error: &io::Error) -> Option<&RowTooLong> {
        error.get_ref().and_then(|e| e.downcast_ref::<RowTooLong>())
    }
}

/// The error [`ChunkReader`] wraps in an `io::Error` when a chunk differs
/// from the one validated.
#[derive(Debug)]
pub(super) struct FileChanged;

impl fmt::Display for FileChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the manifest changed since it was validated")
    }
}

impl std::error::Error for FileChanged {}

impl ChunkReader {
    pub(super) fn new(file: File, expected: Option<Arc<[[u8; 32]]>>) -> ChunkReader {
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
            record_start: 0,
        }
    }

    /// Reads the next chunk (whole unless it is the last) into `buffer`.
    pub(super) fn fill(&mut self) -> io::Result<()> {
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
        // The parser reads ahead by its buffer: past that, the record itself is too long.
        if self.bytes - self.record_start > (MAX_ROW_BYTES + CSV_BUFFER_BYTES) as u64 {
            return Err(io::Error::other(RowTooLong { line: 0 }));
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
pub(super) struct RecordSpan {
    /// Physical line where the record starts.
    pub(super) line: u64,
    /// Physical line where it ends (later when a quoted field holds a line
    /// break).
    pub(super) end_line: u64,
    /// An indented comment that ran on past its line because of a quote.
    pub(super) broken_comment: bool,
}

/// The CSV reader of both passes: skips blank and comment lines and computes
/// exact line numbers.
pub(super) struct Scanner {
    pub(super) reader: csv::Reader<ChunkReader>,
    /// The current record; reused so reading allocates nothing per row.
    pub(super) record: csv::ByteRecord,
    pub(super) file_len: u64,
}

impl Scanner {
    /// Opens the file; `expected` holds the chunk digests to check (pass 2).
    pub(super) fn open(
        path: &Path,
        expected: Option<Arc<[[u8; 32]]>>,
    ) -> Result<Scanner, ManifestError> {
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
        // Pass 2 re-reads the file, which a pipe or a device cannot do. Checked with stat
        // before `open`, which blocks on a FIFO without a writer; and again on what was
        // opened, in case the path changed in between.
        let not_regular = |metadata: &std::fs::Metadata| ManifestError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(
                if metadata.is_dir() {
                    io::ErrorKind::IsADirectory
                } else {
                    io::ErrorKind::InvalidInput
                },
                format!(
                    "{}, not a regular file (a manifest is read twice)",
                    file_kind(metadata)
                ),
            ),
        };
        let metadata = std::fs::metadata(path).map_err(open_error)?;
        if !metadata.is_file() {
            return Err(not_regular(&metadata));
        }
        let file = File::open(path).map_err(open_error)?;
        let metadata = file.metadata().map_err(open_error)?;
        if !metadata.is_file() {
            return Err(not_regular(&metadata));
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
    pub(super) fn next_record(&mut self) -> io::Result<Option<RecordSpan>> {
        loop {
            let line_before = self.reader.position().line();
            let start = self.reader.position().byte();
            self.reader.get_mut().record_start = start;
            let too_long = || {
                io::Error::other(RowTooLong {
                    line: line_before.max(1),
                })
            };
            let read = self.reader.read_byte_record(&mut self.record);
            match read {
                Ok(false) => return Ok(None),
                Ok(true) if self.reader.position().byte() - start > MAX_ROW_BYTES as u64 => {
                    return Err(too_long())
                }
                Ok(true) => {}
                Err(e) => {
                    let e = csv_to_io(e);
                    return Err(if RowTooLong::of(&e).is_some() {
                        too_long()
                    } else {
                        e
                    });
                }
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
    pub(super) fn finish(&mut self) -> io::Result<(String, Vec<[u8; 32]>)> {
        let inner = self.reader.get_mut();
        io::copy(inner, &mut io::sink())?;
        let sha256 = hex(&inner.file_hasher.finalize_reset());
        Ok((sha256, std::mem::take(&mut inner.digests)))
    }
}

/// What a file that is not a regular file is, for messages.
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = metadata.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if metadata.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Field `index` of `record`, without the CR of a CRLF line end (which the
/// LF-only terminator leaves at the end of the last field).
pub(super) fn cell(record: &csv::ByteRecord, index: usize) -> &[u8] {
    let field = record.get(index).unwrap_or_default();
    if index + 1 == record.len() {
        field.strip_suffix(b"\r").unwrap_or(field)
    } else {
        field
    }
}

pub(super) fn csv_to_io(error: csv::Error) -> io::Error {
    if error.is_io_error() {
        if let csv::ErrorKind::Io(error) = error.into_kind() {
            return error;
        }
        unreachable!("is_io_error() implies ErrorKind::Io");
    }
    io::Error::other(error)
}
