//! Reading the `snapshot` events of a transfer ledger back: what each certificate carries,
//! for `accept --carry` (which may run elsewhere, from a copy of the ledger) and `verify`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::event::{Event, Header, LedgerKind, Outcome};
use super::LedgerError;
use crate::carry::snapshot::Snapshot;

/// The bytes every snapshot event holds (events are written with their fields in order):
/// the other lines are skipped without being parsed.
const MARK: &[u8] = br#""outcome":"snapshot""#;

/// The latest snapshot of every certificate `wanted` accepts, from the transfer ledger at
/// `path`. A torn last line is ignored (the run that wrote it was interrupted); a damaged
/// line elsewhere, or a ledger of another kind, is an error.
pub fn read_snapshots(
    path: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<HashMap<String, Snapshot>, LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(512);
    let mut found = HashMap::new();
    let mut lineno = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            break;
        }
        lineno += 1;
        let complete = line.last() == Some(&b'\n');
        let damaged = |reason: String| LedgerError::Damaged {
            path: path.to_path_buf(),
            line: lineno,
            reason,
        };
        if lineno == 1 {
            let header: Header = serde_json::from_slice(&line)
                .map_err(|e| damaged(format!("not a ledger header: {e}")))?;
            // Both write snapshots: `transfer --carry` and `register --carry`.
            if !matches!(header.kind, LedgerKind::Transfer | LedgerKind::Register) {
                return Err(LedgerError::WrongKind {
                    path: path.to_path_buf(),
                    found: header.kind.to_string(),
                    expected: LedgerKind::Transfer.to_string(),
                });
            }
            continue;
        }
        if !contains(&line, MARK) {
            continue;
        }
        let ev: Event = match serde_json::from_slice(&line) {
            Ok(ev) => ev,
            Err(_) if !complete => break,
            Err(e) => return Err(damaged(e.to_string())),
        };
        if ev.outcome != Outcome::Snapshot || !wanted(&ev.id) {
            continue;
        }
        if let Some(s) = ev.details.snapshot {
            found.insert(ev.id, *s);
        }
    }
    Ok(found)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
