//! Reading a ledger file back: every line folded into the state, a torn last line told apart
//! from damage elsewhere.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::checkpoint::Covered;
use super::event::{Event, Header, Identity, RunStart};
use super::state::LedgerState;
use super::{LedgerError, FORMAT_VERSION};

/// Any line of a ledger file, parsed leniently so the three shapes share one pass.
#[derive(Deserialize)]
struct AnyLine {
    #[serde(default)]
    format: Option<u32>,
    #[serde(default)]
    run: Option<u32>,
}

/// What a replay found besides the events.
pub(super) struct Replayed {
    /// `None` only when the file holds nothing but a torn first line.
    pub(super) header: Option<Header>,
    /// Length of the well-formed prefix; anything after it is a torn last line.
    pub(super) good_len: u64,
    /// The last line is valid but lacks its newline.
    pub(super) missing_newline: bool,
    /// Lines in the well-formed prefix.
    pub(super) lines: u64,
    /// Lines read and folded into the state by this replay (those after the checkpoint).
    pub(super) replayed: u64,
}

/// Reads the header, then every line after `from` (a checkpoint already folded into
/// `state`), or after the header when there is none, into `state`.
pub(super) fn replay(
    file: &mut File,
    path: &Path,
    state: &mut LedgerState,
    warnings: &mut Vec<String>,
    from: Option<Covered>,
) -> Result<Replayed, LedgerError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| LedgerError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, &mut *file);
    let mut line = Vec::with_capacity(512);
    let mut header: Option<Header> = None;
    let mut good_len = 0u64;
    let mut lineno = 0u64;
    let mut missing_newline = false;
    let mut replayed = 0u64;
    let mut good_lines = 0u64;
    let mut skip = from;
    loop {
        if header.is_some() {
            if let Some(to) = skip.take() {
                // The checkpoint holds everything up to here: go on after it.
                reader
                    .seek(SeekFrom::Start(to.len))
                    .map_err(|e| LedgerError::io(path, e))?;
                good_len = to.len;
                lineno = to.lines;
                good_lines = to.lines;
            }
        }
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| LedgerError::io(path, e))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let complete = line.last() == Some(&b'\n');
        if lineno == 1 {
            // Checked before anything else: a newer tool's ledger, with or without its
            // newline, is neither torn nor damaged, and must not be touched.
            if let Ok(AnyLine {
                format: Some(format),
                ..
            }) = serde_json::from_slice::<AnyLine>(&line)
            {
                if format > FORMAT_VERSION {
                    return Err(LedgerError::NewerFormat {
                        path: path.to_path_buf(),
                        format,
                    });
                }
            }
        }
        let parsed = parse_line(&line, lineno, header.is_none(), state);
        match parsed {
            Ok(Some(h)) => header = Some(h),
            Ok(None) => {}
            Err(reason) => {
                // Only a last line that lacks its newline can be a torn write (the header
                // too, when the run that created the ledger died writing it).
                let at_end = reader.fill_buf().map(|b| b.is_empty()).unwrap_or(false);
                // A torn write is cut inside its JSON object: a whole object is not torn.
                let whole = serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_ok();
                if !complete && at_end && !whole && (header.is_some() || lineno == 1) {
                    warnings.push(format!(
                        "ledger {}:{}: ignoring an incomplete last line (a write was interrupted); it is kept in {}",
                        path.display(),
                        lineno,
                        torn_path(path).display()
                    ));
                    break;
                }
                return Err(LedgerError::Damaged {
                    path: path.to_path_buf(),
                    line: lineno,
                    reason,
                });
            }
        }
        good_len += n as u64;
        missing_newline = !complete;
        replayed += 1;
        good_lines = lineno;
    }
    // The header line is read in any case; count what came after it.
    let replayed = replayed - u64::from(header.is_some());
    Ok(Replayed {
        header,
        good_len,
        missing_newline,
        lines: good_lines,
        replayed,
    })
}

fn parse_line(
    line: &[u8],
    lineno: u64,
    want_header: bool,
    state: &mut LedgerState,
) -> Result<Option<Header>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let text = text.trim_end_matches(['\n', '\r']);
    if want_header {
        if lineno != 1 {
            return Err("header must be the first line".into());
        }
        let h: Header =
            serde_json::from_str(text).map_err(|e| format!("not a ledger header: {e}"))?;
        if h.format > FORMAT_VERSION {
            return Err(format!(
                "ledger format {} is newer than this tool understands ({FORMAT_VERSION}); upgrade iot-cert-migrate",
                h.format
            ));
        }
        return Ok(Some(h));
    }
    if text.is_empty() {
        return Ok(None);
    }
    // Events are by far the most common line: try them first.
    match serde_json::from_str::<Event>(text) {
        Ok(ev) => {
            state.apply(&ev);
            Ok(None)
        }
        Err(e) => {
            let any: AnyLine = serde_json::from_str(text).map_err(|_| e.to_string())?;
            if any.run.is_some() {
                let r: RunStart = serde_json::from_str(text).map_err(|e| e.to_string())?;
                let identity = match (r.account, r.region) {
                    (Some(account), Some(region)) => Some(Identity { account, region }),
                    _ => None,
                };
                state.start_run(r.run, identity);
                Ok(None)
            } else if any.format.is_some() {
                Err("a second header line".into())
            } else {
                Err(e.to_string())
            }
        }
    }
}

pub(super) fn torn_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".torn");
    PathBuf::from(p)
}

/// Moves the bytes after the last good line into `PATH.torn`, then truncates.
pub(super) fn set_aside_torn_tail(
    file: &mut File,
    path: &Path,
    good_len: u64,
) -> Result<(), LedgerError> {
    let io = |e| LedgerError::io(path, e);
    file.seek(SeekFrom::Start(good_len)).map_err(io)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io)?;
    let torn = torn_path(path);
    let mut side = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&torn)
        .map_err(|e| LedgerError::io(&torn, e))?;
    tail.push(b'\n');
    side.write_all(&tail)
        .and_then(|_| side.sync_all())
        .map_err(|e| LedgerError::io(&torn, e))?;
    file.set_len(good_len).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}
