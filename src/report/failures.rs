//! The failure report: one CSV row per certificate that is failed, or waits for an option,
//! now, written durably ([`crate::durable`]) so that a reader never sees half of it.

use std::path::Path;

use crate::error::Error;
use crate::ledger::{CertId, ItemRecord, ItemState, LedgerState};
use crate::manifest::Manifest;

/// Header of the failure report.
pub const FAILURE_REPORT_HEADER: [&str; 9] = [
    "certificate_id",
    "target_account",
    "stage",
    "error_code",
    "http_status",
    "message",
    "attempts",
    "rolled_back",
    "waiting_for",
];

/// Writes the failure report of every failed or waiting manifest certificate (sorted by id)
/// over `path` ([`crate::durable::replace`]); a waiting one's `waiting_for` says what it
/// waits for. Returns the number of rows.
pub fn write_failure_report(
    path: &Path,
    manifest: &Manifest,
    state: &LedgerState,
) -> Result<usize, Error> {
    // Only certificates with details can have failed: no need to walk every record.
    let mut rows: Vec<(CertId, ItemRecord)> = state
        .with_details()
        .filter(|(id, rec)| {
            matches!(rec.state, ItemState::Failed | ItemState::Waiting)
                && rec.open_intent.is_none()
                && manifest.contains(id)
        })
        .collect();
    rows.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    crate::durable::replace(path, |w| {
        let mut w = csv::Writer::from_writer(w);
        w.write_record(FAILURE_REPORT_HEADER)?;
        for (id, rec) in &rows {
            let f = rec.failure;
            let stage = f.map(|f| f.stage.as_str()).unwrap_or("");
            let status = f
                .and_then(|f| f.http_status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            // A refusal before any change made no attempt.
            let attempts = f
                .filter(|f| f.waiting.is_none())
                .map(|f| f.attempts.to_string())
                .unwrap_or_default();
            // yes: prepare's changes were undone; no: they are left; empty: there were none.
            let rolled_back = match f.and_then(|f| f.rolled_back) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            };
            w.write_record([
                neutralise(id).as_ref(),
                neutralise(rec.target.unwrap_or("")).as_ref(),
                stage,
                neutralise(f.map(|f| f.error_code.as_str()).unwrap_or("")).as_ref(),
                status.as_str(),
                neutralise(f.map(|f| f.message.as_str()).unwrap_or("")).as_ref(),
                attempts.as_str(),
                rolled_back,
                f.and_then(|f| f.waiting).map_or("", |w| w.as_str()),
            ])?;
        }
        w.flush()
    })
    .map_err(|e| Error::io(path, e))?;
    Ok(rows.len())
}

/// Makes a cell safe to open in a spreadsheet: a leading `=`, `+`, `-`, `@`, tab or CR would
/// be run as a formula, so such cells get a leading apostrophe.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("+1"), "'+1");
        assert_eq!(neutralise("-2"), "'-2");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("plain text"), "plain text");
        assert_eq!(neutralise(""), "");
    }
}
