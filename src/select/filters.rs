//! The filters of `select`, checked before anything is sent to AWS: a bad value is exit 2,
//! naming its flag.

use std::path::{Path, PathBuf};

use crate::certificate::CertStatus;
use crate::error::Error;
use crate::manifest::Manifest;

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC), as the listings give
/// creation dates.
pub type Timestamp = (i64, u32);

/// `--thing-group` and `--no-recursive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFilter {
    /// The static thing group.
    pub name: String,
    /// Whether the things of its child groups (at any depth) count too.
    pub recursive: bool,
}

/// A creation-date bound as given (for the summary) and as a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateBound {
    /// The text of the flag.
    pub text: String,
    /// The time it stands for.
    pub at: Timestamp,
}

/// Every filter of one `select`, checked. Filters combine with AND.
#[derive(Debug, Clone)]
pub struct Filters {
    /// The account every row is addressed to.
    pub target_account: String,
    /// The statuses kept (ACTIVE and INACTIVE unless `--status` says otherwise).
    pub statuses: Vec<CertStatus>,
    /// Whether `statuses` is the default.
    pub default_statuses: bool,
    /// Only certificates of this CA (lowercase id).
    pub ca_certificate_id: Option<String>,
    /// Only certificates of the things of this group.
    pub thing_group: Option<GroupFilter>,
    /// Only certificates of things of this type.
    pub thing_type: Option<String>,
    /// Only certificates of things with all these attribute values (sorted by name).
    pub attributes: Vec<(String, String)>,
    /// Only certificates of things the fleet index query matches.
    pub query: Option<super::FleetQuery>,
    /// Created at or after.
    pub created_after: Option<DateBound>,
    /// Created before.
    pub created_before: Option<DateBound>,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// The message of every row.
    pub transfer_message: Option<String>,
}

impl Filters {
    /// The statuses to keep: those asked for, once each, or ACTIVE and INACTIVE (`true`: the
    /// default).
    pub fn statuses(asked: &[CertStatus]) -> (Vec<CertStatus>, bool) {
        let mut statuses: Vec<CertStatus> = Vec::new();
        for s in asked {
            if !statuses.contains(s) {
                statuses.push(s.clone());
            }
        }
        if statuses.is_empty() {
            return (vec![CertStatus::Active, CertStatus::Inactive], true);
        }
        (statuses, false)
    }

    /// Whether any filter works through things (ListThingPrincipals).
    pub fn by_things(&self) -> bool {
        self.thing_group.is_some()
            || self.thing_type.is_some()
            || !self.attributes.is_empty()
            || self.query.is_some()
    }

    /// Whether a certificate created at `created` passes the date filters (a certificate
    /// without a creation date passes only when there are none).
    pub fn created_in_range(&self, created: Option<Timestamp>) -> bool {
        if self.created_after.is_none() && self.created_before.is_none() {
            return true;
        }
        let Some(at) = created else { return false };
        self.created_after.as_ref().is_none_or(|a| at >= a.at)
            && self.created_before.as_ref().is_none_or(|b| at < b.at)
    }
}

/// The certificates of earlier waves: every manifest of `--exclude-manifest`, validated.
pub struct Exclusions {
    manifests: Vec<(PathBuf, Manifest)>,
}

impl Exclusions {
    /// Loads (and validates) each manifest; an unreadable or invalid one stops the command
    /// before any AWS call.
    pub fn load(paths: &[PathBuf]) -> Result<Exclusions, Error> {
        let mut manifests = Vec::new();
        for p in paths {
            let m = Manifest::load(p)?;
            manifests.push((p.clone(), m));
        }
        Ok(Exclusions { manifests })
    }

    /// No manifest to exclude.
    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty()
    }

    /// Whether an earlier wave lists certificate `id` (lowercase).
    pub fn contains(&self, id: &str) -> bool {
        self.manifests.iter().any(|(_, m)| m.contains(id))
    }

    /// The manifests' paths.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.manifests.iter().map(|(p, _)| p.as_path())
    }
}

const DATE_HELP: &str = "expected an RFC 3339 time (2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00) or a date (2024-05-01, midnight UTC)";

/// Parses RFC 3339 (`2024-05-01T12:00:00Z`, fractions and `±HH:MM` offsets allowed, `T`,
/// `t` or a space between date and time) or a bare date `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let s = text.trim();
    let bad = || DATE_HELP.to_string();
    let num = |part: &str, digits: usize| -> Result<i64, String> {
        if part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()) {
            Ok(part.parse().expect("digits"))
        } else {
            Err(bad())
        }
    };
    if s.len() < 10 || !s.is_char_boundary(10) {
        return Err(bad());
    }
    let (date, rest) = s.split_at(10);
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad());
    }
    let (year, month, day) = (num(d[0], 4)?, num(d[1], 2)?, num(d[2], 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(format!("{date} is not a day of the calendar"));
    }
    let days = days_from_civil(year, month, day);
    if rest.is_empty() {
        return Ok((days * 86_400, 0));
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    if rest.len() < 8 || !rest.is_char_boundary(8) {
        return Err(bad());
    }
    let (time, mut rest) = rest.split_at(8);
    let t: Vec<&str> = time.split(':').collect();
    if t.len() != 3 {
        return Err(bad());
    }
    let (hour, minute, second) = (num(t[0], 2)?, num(t[1], 2)?, num(t[2], 2)?);
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("{time} is not a time of day"));
    }
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u32>().expect("digits") * 10u32.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => {
                    return Err(format!(
                        "{DATE_HELP}; a time needs its offset from UTC (Z or ±HH:MM)"
                    ))
                }
            };
            let o: Vec<&str> = rest[1..].split(':').collect();
            if o.len() != 2 {
                return Err(bad());
            }
            let (oh, om) = (num(o[0], 2)?, num(o[1], 2)?);
            if oh > 23 || om > 59 {
                return Err(format!("{rest} is not an offset from UTC"));
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    // A leap second (:60) counts as the second after :59.
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Ok((secs, nanos))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_rfc3339_times_parse_to_epoch_seconds() {
        assert_eq!(parse_time("1970-01-01"), Ok((0, 0)));
        assert_eq!(parse_time("2024-05-01"), Ok((1_714_521_600, 0)));
        assert_eq!(parse_time("2024-05-01T00:00:00Z"), Ok((1_714_521_600, 0)));
        assert_eq!(
            parse_time("2024-05-01t02:00:00+02:00"),
            Ok((1_714_521_600, 0))
        );
        assert_eq!(
            parse_time("2024-04-30 19:00:00-05:00"),
            Ok((1_714_521_600, 0))
        );
        assert_eq!(
            parse_time("2024-05-01T00:00:01.25Z"),
            Ok((1_714_521_601, 250_000_000))
        );
        assert_eq!(parse_time("2000-02-29"), Ok((951_782_400, 0)));
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), Ok((-1, 0)));
    }

    #[test]
    fn malformed_dates_say_what_is_expected() {
        for bad in [
            "",
            "2024-5-1",
            "2024/05/01",
            "yesterday",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01X",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_time("2023-02-29").unwrap_err().contains("calendar"));
        assert!(parse_time("2024-13-01").unwrap_err().contains("calendar"));
        assert!(parse_time("2024-05-01T24:00:00Z")
            .unwrap_err()
            .contains("time of day"));
        assert!(parse_time("2024-05-01T12:00:00")
            .unwrap_err()
            .contains("offset"));
    }
}
