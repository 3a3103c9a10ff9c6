//! The job document `handoff` sends: the operator's JSON with placeholders filled in for each
//! target. A placeholder is `{` + a lowercase name + `}` (`{endpoint}`, `{account}`,
//! `{region}`); JSON's own braces are never one (they are followed by a quote, a space or a
//! newline, never by a bare lowercase name and `}`). Everything is checked before any AWS
//! call: an unknown placeholder, or a document that is not JSON once filled in, is refused.

use std::fmt;

/// The placeholders a document may use.
pub const PLACEHOLDERS: [&str; 3] = ["endpoint", "account", "region"];

/// Largest job document AWS accepts (32 KB).
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024;

/// Why a document template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// A placeholder that is not one of [`PLACEHOLDERS`].
    #[error("unknown placeholder {{{0}}} (known: {{endpoint}}, {{account}}, {{region}})")]
    UnknownPlaceholder(String),
    /// Not JSON once filled in.
    #[error("not JSON once its placeholders are filled in: {0}")]
    NotJson(String),
    /// Larger than AWS accepts once filled in.
    #[error("{0} bytes once filled in: AWS accepts a job document of at most 32 KB")]
    TooLarge(usize),
}

/// What fills the placeholders for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill<'a> {
    /// The target's device endpoint (`iot:Data-ATS`).
    pub endpoint: &'a str,
    /// The target account.
    pub account: &'a str,
    /// The region.
    pub region: &'a str,
}

/// A document template, its placeholders known to be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentTemplate {
    text: String,
}

/// One piece of a template: text as it is, or a placeholder name.
enum Part<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// The template cut at its placeholders.
fn pieces(text: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if name_len > 0 && after[name_len..].starts_with('}') {
            out.push(Part::Text(&rest[..open]));
            out.push(Part::Placeholder(&after[..name_len]));
            rest = &after[name_len + 1..];
        } else {
            out.push(Part::Text(&rest[..=open]));
            rest = after;
        }
    }
    out.push(Part::Text(rest));
    out
}

impl DocumentTemplate {
    /// Checks `text`: every placeholder known, and JSON once filled in with `sample`
    /// (each target is checked again by [`DocumentTemplate::fill`]).
    pub fn parse(text: &str, sample: &Fill<'_>) -> Result<Self, DocumentError> {
        for p in pieces(text) {
            if let Part::Placeholder(name) = p {
                if !PLACEHOLDERS.contains(&name) {
                    return Err(DocumentError::UnknownPlaceholder(name.to_string()));
                }
            }
        }
        let t = DocumentTemplate {
            text: text.to_string(),
        };
        t.fill(sample)?;
        Ok(t)
    }

    /// The document for one target: JSON, at most 32 KB.
    pub fn fill(&self, with: &Fill<'_>) -> Result<String, DocumentError> {
        let mut out = String::with_capacity(self.text.len() + 64);
        for p in pieces(&self.text) {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Placeholder("endpoint") => out.push_str(with.endpoint),
                Part::Placeholder("account") => out.push_str(with.account),
                Part::Placeholder("region") => out.push_str(with.region),
                Part::Placeholder(other) => {
                    return Err(DocumentError::UnknownPlaceholder(other.to_string()))
                }
            }
        }
        serde_json::from_str::<serde_json::Value>(&out)
            .map_err(|e| DocumentError::NotJson(e.to_string()))?;
        if out.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::TooLarge(out.len()));
        }
        Ok(out)
    }
}

impl fmt::Display for DocumentTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILL: Fill<'static> = Fill {
        endpoint: "abc-ats.iot.eu-west-1.amazonaws.com",
        account: "222222222222",
        region: "eu-west-1",
    };

    #[test]
    fn placeholders_are_filled_and_json_braces_left_alone() {
        let t = DocumentTemplate::parse(
            r#"{"operation":"move","endpoint":"{endpoint}","to":{"account":"{account}","region":"{region}"}}"#,
            &FILL,
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&t.fill(&FILL).unwrap()).unwrap();
        assert_eq!(doc["endpoint"], FILL.endpoint);
        assert_eq!(doc["to"]["account"], FILL.account);
        assert_eq!(doc["to"]["region"], FILL.region);
    }

    #[test]
    fn an_unknown_placeholder_is_refused() {
        let e = DocumentTemplate::parse(r#"{"e":"{endpiont}"}"#, &FILL).unwrap_err();
        assert_eq!(e, DocumentError::UnknownPlaceholder("endpiont".into()));
    }

    #[test]
    fn a_document_that_is_not_json_once_filled_is_refused() {
        // the placeholder outside quotes makes it invalid JSON
        let e = DocumentTemplate::parse(r#"{"e":{endpoint}}"#, &FILL).unwrap_err();
        assert!(matches!(e, DocumentError::NotJson(_)), "{e:?}");
    }

    #[test]
    fn a_document_over_32_kb_is_refused() {
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
        let e = DocumentTemplate::parse(&big, &FILL).unwrap_err();
        assert!(matches!(e, DocumentError::TooLarge(_)), "{e:?}");
    }
}
