//! The header and the rows: one cell at a time, every problem at its line and column.

use super::problem::Report;
use super::scan::{cell, RecordSpan};
use super::{
    hex, ACCOUNT_ID_DIGITS, CERTIFICATE_ID_LEN, HEADER_HELP, MAX_SHOWN_CHARS,
    MAX_TRANSFER_MESSAGE_CHARS,
};
use crate::certificate::{decode_hex_id, HexCase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Id,
    Account,
    Message,
    Region,
}

pub(super) const KNOWN_COLUMNS: [(&str, Field); 7] = [
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
pub(super) struct Columns {
    /// Every header cell, trimmed, as written.
    pub(super) names: Vec<String>,
    pub(super) id: Option<usize>,
    pub(super) account: Option<usize>,
    pub(super) message: Option<usize>,
    pub(super) region: Option<usize>,
    /// Columns the tool does not read (a spreadsheet's `notes`): warned about once, then
    /// ignored. A name close to a known one is an error instead (most likely a typo).
    pub(super) ignored: Vec<String>,
}

impl Columns {
    pub(super) fn slot(&mut self, field: Field) -> &mut Option<usize> {
        match field {
            Field::Id => &mut self.id,
            Field::Account => &mut self.account,
            Field::Message => &mut self.message,
            Field::Region => &mut self.region,
        }
    }

    pub(super) fn column(&self, index: usize) -> (usize, &str) {
        (index, self.names[index].as_str())
    }
}

pub(super) fn parse_header<R: Report>(
    record: &csv::ByteRecord,
    line: u64,
    report: &mut R,
) -> Columns {
    let mut columns = Columns {
        names: Vec::with_capacity(record.len()),
        id: None,
        account: None,
        message: None,
        region: None,
        ignored: Vec::new(),
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
            match suggestion(name) {
                Some(known) => report.report(line, Some((index, name)), || {
                    unknown_column_message(name, known)
                }),
                None => columns.ignored.push(name.to_owned()),
            }
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

/// The known column an unknown name is most likely a misspelling of: the same but for
/// case, separators or at most two letters.
pub(super) fn suggestion(name: &str) -> Option<&'static str> {
    // Catch typos and other spellings: compare lowercase, without separators.
    let squash = |text: &str| -> String {
        text.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = squash(name);
    KNOWN_COLUMNS
        .iter()
        .map(|(known, _)| (edit_distance(&wanted, &squash(known)), *known))
        .filter(|&(distance, _)| distance <= 2)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, known)| known)
}

/// The error of a column named like `known` but not quite.
pub(super) fn unknown_column_message(name: &str, known: &str) -> String {
    if known.eq_ignore_ascii_case(name) {
        format!(
            "unknown column {:?} (names are case-sensitive: did you mean {known:?}?)",
            shown(name)
        )
    } else {
        format!("unknown column {:?} (did you mean {known:?}?)", shown(name))
    }
}

/// The warning about the columns the tool ignores.
pub(super) fn ignored_columns_message(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{:?}", shown(n))).collect();
    format!(
        "ignoring {} {} (the tool reads only certificate_id, target_account, \
         transfer_message and region)",
        crate::output::noun_for(names.len(), "column"),
        quoted.join(", ")
    )
}

/// Levenshtein distance, for the "did you mean" of unknown column names.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct IdKey {
    pub(super) bytes: [u8; 32],
    pub(super) prefixed: bool,
}

impl IdKey {
    pub(super) fn to_hex(self) -> String {
        if self.prefixed {
            format!("0x{}", hex(&self.bytes[1..]))
        } else {
            hex(&self.bytes)
        }
    }
}

/// A row that passed validation, borrowing from the record.
pub(super) struct ParsedRow<'a> {
    /// The id as written (trimmed).
    pub(super) id: &'a str,
    pub(super) key: IdKey,
    pub(super) account: u64,
    pub(super) message: Option<&'a str>,
    pub(super) region: Option<&'a str>,
}

/// Why a cell is wrong, given the column's name; built only when the problem is kept.
type Why<'a> = Box<dyn FnOnce(&str) -> String + 'a>;

/// The cells of one record, checked one column at a time: every bad cell is reported at its
/// line and column, and any of them makes the row invalid.
struct Cells<'c, 'a, R> {
    columns: &'c Columns,
    record: &'a csv::ByteRecord,
    line: u64,
    report: &'c mut R,
    valid: bool,
}

impl<'a, R: Report> Cells<'_, 'a, R> {
    /// Column `index` (absent from the header: `None`) as `check` reads it: `Ok(value)`
    /// (`None` for an empty optional cell), or `Err(why)`.
    fn get<T>(
        &mut self,
        index: Option<usize>,
        check: impl FnOnce(&'a str) -> Result<Option<T>, Why<'a>>,
    ) -> Option<T> {
        let index = index?;
        let raw = cell(self.record, index);
        let (column, name) = self.columns.column(index);
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(error) => {
                self.valid = false;
                self.report.report(self.line, Some((column, name)), || {
                    format!(
                        "{name} is not valid UTF-8 (byte {} of the cell is 0x{:02X}); save the manifest as UTF-8",
                        error.valid_up_to() + 1,
                        raw[error.valid_up_to()]
                    )
                });
                return None;
            }
        };
        match check(text) {
            Ok(value) => value,
            Err(why) => {
                self.valid = false;
                self.report
                    .report(self.line, Some((column, name)), || why(name));
                None
            }
        }
    }
}

/// `why` as a boxed message builder.
fn why<'a>(why: impl FnOnce(&str) -> String + 'a) -> Why<'a> {
    Box::new(why)
}

/// Validates one data row, reporting each problem; `None` if it had any (or
/// the header lacks a required column).
pub(super) fn parse_row<'a, R: Report>(
    columns: &Columns,
    record: &'a csv::ByteRecord,
    span: &RecordSpan,
    report: &mut R,
) -> Option<ParsedRow<'a>> {
    if record.len() != columns.names.len() {
        let quote_hint = if record.iter().any(|field| {
            field.len() > field.trim_ascii_start().len()
                && field.trim_ascii_start().starts_with(b"\"")
        }) {
            " (a quoted field must start right after the comma, without spaces)"
        } else {
            ""
        };
        report.report(span.line, None, || {
            format!(
                "the row has {} but the header has {}{quote_hint}{}",
                crate::output::count(record.len(), "field"),
                columns.names.len(),
                span_hint(span)
            )
        });
        return None;
    }
    let mut cells = Cells {
        columns,
        record,
        line: span.line,
        report,
        valid: true,
    };
    let id = cells.get(columns.id, |value| {
        let value = value.trim();
        match parse_id(value) {
            Ok(key) => Ok(Some((value, key))),
            Err(_) if value.is_empty() => Err(why(|name| format!("{name} is empty"))),
            Err(reason) => Err(why(move |name| {
                format!("{name} {:?} {reason}", shown(value))
            })),
        }
    });
    let account = cells.get(columns.account, |value| {
        let value = value.trim();
        match parse_account(value) {
            Some(number) => Ok(Some(number)),
            None if value.is_empty() => Err(why(|name| format!("{name} is empty"))),
            None => Err(why(move |name| {
                let hint = if value.contains(['E', 'e']) && value.contains('+') {
                    " (a spreadsheet turned it into a number: format the column as text)"
                } else {
                    ""
                };
                format!(
                    "{name} {:?} must be exactly {ACCOUNT_ID_DIGITS} digits{hint}",
                    shown(value)
                )
            })),
        }
    });
    let message = cells.get(columns.message, |value| {
        let chars = value.chars().count();
        if chars > MAX_TRANSFER_MESSAGE_CHARS {
            let hint = span_hint(span);
            Err(why(move |name| {
                format!(
                    "{name} is {chars} characters long; AWS allows at most {MAX_TRANSFER_MESSAGE_CHARS}{hint}"
                )
            }))
        } else {
            Ok((!value.is_empty()).then_some(value))
        }
    });
    let region = cells.get(columns.region, |value| {
        let value = value.trim();
        if value.is_empty() {
            // The run's default region.
            Ok(None)
        } else if is_region(value) {
            Ok(Some(value))
        } else {
            Err(why(move |name| {
                format!(
                    "{name} {:?} is not an AWS region code like us-east-1",
                    shown(value)
                )
            }))
        }
    });
    let valid = cells.valid;
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

/// Hint for a record spanning several lines, where an unbalanced quote is the
/// usual culprit.
pub(super) fn span_hint(span: &RecordSpan) -> String {
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
pub(super) fn parse_id(value: &str) -> Result<IdKey, String> {
    // The common case first, 64 hex digits, in one pass over the bytes (on a
    // ten-million-row manifest the general path below took half of validate's time).
    if let Some(bytes) = decode_hex_id(value.as_bytes(), HexCase::Either) {
        return Ok(IdKey {
            bytes,
            prefixed: false,
        });
    }
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

pub(super) fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => unreachable!("checked by parse_id"),
    }
}

pub(super) fn parse_account(value: &str) -> Option<u64> {
    if value.len() != ACCOUNT_ID_DIGITS || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        value
            .bytes()
            .fold(0u64, |number, digit| number * 10 + u64::from(digit - b'0')),
    )
}

pub(super) fn format_account(account: u64) -> String {
    let mut text = String::with_capacity(12);
    write_account(&mut text, account);
    text
}

/// Appends the 12 digits of an account id to `text`.
pub(super) fn write_account(text: &mut String, account: u64) {
    use std::fmt::Write;
    write!(text, "{account:012}").expect("writing to a String");
}

/// `^[a-z]{2}(-[a-z]+)+-\d+$`, e.g. `us-east-1`, `us-gov-west-1`.
pub(super) fn is_region(value: &str) -> bool {
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
pub(super) fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN_CHARS {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(MAX_SHOWN_CHARS - 1).collect();
        short.push('…');
        short
    }
}
