//! The value parsers of the command line: each turns a flag's text into the domain type the
//! library takes, or says why not. clap prints the refusal in its own style (the flag, the
//! value, the reason) and exits 2, before anything else happens.

use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::certificate::CertStatus;
use crate::manifest::{ACCOUNT_ID_DIGITS, CERTIFICATE_ID_LEN, MAX_TRANSFER_MESSAGE_CHARS};
use crate::pacer::{Operation, RateSettings};
use crate::select::{parse_time, DateBound};

/// A value of a `closed_set!` enum, by its one spelling (`fail`, `reuse`).
pub fn closed<T: crate::closed_set::ClosedSet>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::ALL.iter().map(|v| v.as_str()))
        .map(|s| T::from_name(&s).expect("one of the possible values"))
}

/// A whole number of at least 1 (a count of attempts or of certificates in flight).
pub fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    match s.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}

/// A positive number of seconds, such as `3.1`.
pub fn seconds(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err("must be a positive number of seconds".into()),
    }
}

/// One `--rate OP=TPS`.
pub fn rate(s: &str) -> Result<(Operation, f64), String> {
    RateSettings::parse_override(s).map_err(|e| e.to_string())
}

/// `--rate-scale`: a positive factor.
pub fn rate_scale(s: &str) -> Result<f64, String> {
    let scale = RateSettings::parse_scale(s).map_err(|e| e.to_string())?;
    // Every operation's documented rate times the scale must stay a usable rate.
    RateSettings {
        scale,
        ..Default::default()
    }
    .validate()
    .map_err(|e| e.to_string())?;
    Ok(scale)
}

/// An AWS account id: exactly 12 digits.
pub fn account(s: &str) -> Result<String, String> {
    let a = s.trim();
    if a.len() == ACCOUNT_ID_DIGITS && a.bytes().all(|b| b.is_ascii_digit()) {
        Ok(a.to_string())
    } else {
        Err("an AWS account id is exactly 12 digits".into())
    }
}

/// A status a certificate can move with: ACTIVE or INACTIVE (any case).
pub fn movable_status(s: &str) -> Result<CertStatus, String> {
    match CertStatus::parse(&s.trim().to_ascii_uppercase()) {
        status @ (CertStatus::Active | CertStatus::Inactive) => Ok(status),
        CertStatus::Other(_) => Err("unknown status; use ACTIVE or INACTIVE".into()),
        other => Err(format!(
            "a {other} certificate cannot be moved; use ACTIVE or INACTIVE"
        )),
    }
}

/// A CA certificate id: 64 hexadecimal characters (kept lowercase).
pub fn ca_certificate_id(s: &str) -> Result<String, String> {
    let id = s.trim();
    if id.len() == CERTIFICATE_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err("a CA certificate id is 64 hexadecimal characters".into())
    }
}

/// The name of a thing group or thing type: 1 to 128 letters, digits, `:`, `_` or `-`.
pub fn registry_name(s: &str) -> Result<String, String> {
    let v = s.trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err("a name is 1 to 128 letters, digits, ':', '_' or '-'".into())
    }
}

/// `NAME=VALUE`, both present.
pub fn attribute(s: &str) -> Result<(String, String), String> {
    let (n, v) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    let (n, v) = (n.trim(), v.trim());
    if n.is_empty() || v.is_empty() {
        return Err("expected NAME=VALUE with a name and a value".into());
    }
    Ok((n.to_string(), v.to_string()))
}

/// An RFC 3339 time, or a date for midnight UTC.
pub fn date(s: &str) -> Result<DateBound, String> {
    Ok(DateBound {
        text: s.trim().to_string(),
        at: parse_time(s)?,
    })
}

/// A transfer message: at most 128 characters, as AWS takes.
pub fn transfer_message(s: &str) -> Result<String, String> {
    let chars = s.chars().count();
    if chars > MAX_TRANSFER_MESSAGE_CHARS {
        return Err(format!(
            "{chars} characters long; AWS takes at most {MAX_TRANSFER_MESSAGE_CHARS}"
        ));
    }
    Ok(s.to_string())
}

/// Longest reject reason AWS accepts.
pub const MAX_REASON_CHARS: usize = 128;

/// A reject reason: at most 128 characters, as AWS takes.
pub fn reject_reason(s: &str) -> Result<String, String> {
    let n = s.chars().count();
    if n > MAX_REASON_CHARS {
        return Err(format!(
            "{n} characters; AWS accepts at most {MAX_REASON_CHARS}"
        ));
    }
    Ok(s.to_string())
}

/// A profile name template: `{account}` is replaced by each target account id.
pub fn profile_template(s: &str) -> Result<String, String> {
    if s.contains("{account}") {
        Ok(s.to_string())
    } else {
        Err("must contain {account}, e.g. 'migrate-{account}'".into())
    }
}

/// `--source-role`: a role ARN.
pub fn role_arn(s: &str) -> Result<String, String> {
    crate::role::check_arn(s.trim())?;
    Ok(s.trim().to_string())
}

/// `--target-role-template`: a role ARN with `{account}` as its account.
pub fn role_template(s: &str) -> Result<String, String> {
    crate::role::check_template(s.trim())?;
    Ok(s.trim().to_string())
}

/// `--role-session-name`.
pub fn role_session_name(s: &str) -> Result<String, String> {
    crate::role::check_session_name(s)?;
    Ok(s.to_string())
}

/// `--external-id`.
pub fn external_id(s: &str) -> Result<String, String> {
    crate::role::check_external_id(s)?;
    Ok(s.to_string())
}

/// `--role-duration`: 15m to 12h.
pub fn role_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    crate::role::check_duration(d)?;
    Ok(d)
}

/// `select --query`: a fleet indexing query, not blank (AWS checks the rest).
pub fn fleet_query(s: &str) -> Result<String, String> {
    let q = s.trim();
    if q.is_empty() {
        return Err("the query is empty (e.g. 'thingName:sensor-* AND attributes.fw:2.*')".into());
    }
    Ok(q.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_parser_says_why_it_refuses() {
        assert!(seconds("0").is_err() && seconds("-1").is_err() && seconds("x").is_err());
        assert_eq!(seconds("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(account(" 222222222222 ").unwrap(), "222222222222");
        assert!(account("22222222222").unwrap_err().contains("12 digits"));
        assert_eq!(movable_status("inactive").unwrap(), CertStatus::Inactive);
        assert!(movable_status("REVOKED")
            .unwrap_err()
            .contains("cannot be moved"));
        assert!(movable_status("SLEEPY")
            .unwrap_err()
            .contains("unknown status"));
        assert_eq!(
            ca_certificate_id(&"AB".repeat(32)).unwrap(),
            "ab".repeat(32)
        );
        assert!(registry_name("hall 3").is_err());
        assert_eq!(
            attribute("fw = 2.1").unwrap(),
            ("fw".to_string(), "2.1".to_string())
        );
        assert!(attribute("fw=").is_err() && attribute("fw").is_err());
        assert!(date("2024-02-30").unwrap_err().contains("not a day"));
        assert!(transfer_message(&"x".repeat(129)).is_err());
        assert!(reject_reason(&"x".repeat(128)).is_ok());
        assert!(reject_reason(&"x".repeat(129)).unwrap_err().contains("129"));
        assert!(profile_template("migrate").is_err());
        assert!(rate("TransferCertificate=0").is_err());
        assert!(rate_scale("0").is_err());
    }
}
