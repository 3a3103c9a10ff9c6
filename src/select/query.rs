//! `select --query`, `--connected`, `--disconnected`: the things a fleet indexing query
//! matches (SearchIndex on `AWS_Things`), which the selection then narrows to like any
//! other thing filter.
//!
//! Before the first query, each region's indexing configuration is read
//! (GetIndexingConfiguration): with thing indexing off, or connectivity terms while
//! connectivity is not indexed, AWS would answer "no such index" or, worse, quietly match
//! nothing (or everything, under NOT), so the selection stops there, exit 2. A query AWS
//! refuses stops it the same way, with AWS's reason. Every query is billed, so the
//! configuration of every region is checked before the first query is sent anywhere.

use std::collections::BTreeSet;

use super::{call_failed, Region};
use crate::error::Error;
use crate::iot::{AwsCode, CallFailure, IndexingModes, Iot};
use crate::pacer::Operation;

/// The connectivity field of the things index.
const CONNECTIVITY_FIELD: &str = "connectivity.";

/// The fleet indexing filter: `--query` and the connectivity shortcuts, combined with AND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetQuery {
    /// `--query`, as given.
    pub text: Option<String>,
    /// `--connected` (`true`) or `--disconnected` (`false`).
    pub connected: Option<bool>,
}

impl FleetQuery {
    /// The filter of these flags; `None` when none is given.
    pub fn new(text: Option<String>, connected: Option<bool>) -> Option<FleetQuery> {
        (text.is_some() || connected.is_some()).then_some(FleetQuery { text, connected })
    }

    /// The query string SearchIndex is sent.
    pub fn query_string(&self) -> String {
        let term = self
            .connected
            .map(|c| format!("connectivity.connected:{c}"));
        match (&self.text, term) {
            (Some(q), Some(t)) => format!("({q}) AND {t}"),
            (Some(q), None) => q.clone(),
            (None, Some(t)) => t,
            // Not built by `new`.
            (None, None) => "*".to_string(),
        }
    }

    /// The flags, as the summary names the step.
    pub fn flags(&self) -> String {
        let mut flags = Vec::new();
        if let Some(q) = &self.text {
            flags.push(format!("--query '{q}'"));
        }
        match self.connected {
            Some(true) => flags.push("--connected".to_string()),
            Some(false) => flags.push("--disconnected".to_string()),
            None => {}
        }
        flags.join(" ")
    }

    /// Whether the query reads the devices' connectivity (a shortcut, or a
    /// `connectivity.*` field of `--query`), which only connectivity indexing knows.
    pub fn reads_connectivity(&self) -> bool {
        self.connected.is_some() || self.text.as_deref().is_some_and(names_connectivity)
    }

    /// The words of `--query` that read like operators in lower case (`and`, `Or`): the
    /// query language takes them as terms to find in any field, not as operators.
    pub fn lowercase_operators(&self) -> Vec<&str> {
        let mut words: Vec<&str> = self
            .text
            .as_deref()
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|w| {
                ["AND", "OR", "NOT"]
                    .iter()
                    .any(|op| w.eq_ignore_ascii_case(op) && w != op)
            })
            .collect();
        words.dedup();
        words
    }

    /// The flag that reads connectivity, for messages.
    fn connectivity_flag(&self) -> &'static str {
        match self.connected {
            Some(true) => "--connected",
            Some(false) => "--disconnected",
            None => "--query",
        }
    }
}

/// Whether `query` has a term on a `connectivity.*` field: the field name starts the
/// query or follows a blank, a parenthesis or a NOT sign (not inside a value).
fn names_connectivity(query: &str) -> bool {
    query.match_indices(CONNECTIVITY_FIELD).any(|(at, _)| {
        query[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "(-+!".contains(c))
    })
}

/// The things `q` matches in each region, in the order of `regions`. Every region's
/// indexing configuration is checked before the first (billed) query.
pub(super) async fn search(
    regions: &[Region<'_>],
    q: &FleetQuery,
    profile: Option<&str>,
) -> Result<Vec<BTreeSet<String>>, Error> {
    futures::future::try_join_all(
        regions
            .iter()
            .map(|r| check_indexing(&r.name, r.iot, q, profile)),
    )
    .await?;
    let lowercase = q.lowercase_operators();
    if !lowercase.is_empty() {
        let words: Vec<String> = lowercase.iter().map(|w| format!("{w:?}")).collect();
        tracing::warn!(
            "--query: {} is a search term, not an operator: AWS looks for the word in every field; operators are upper case (AND, OR, NOT)",
            words.join(", ")
        );
    }
    let query = q.query_string();
    futures::future::try_join_all(regions.iter().map(|r| {
        let query = query.as_str();
        async move {
            let things: BTreeSet<String> = r
                .iot
                .search_things(query)
                .await
                .map_err(|f| refused(&r.name, q, f, profile))?
                .into_iter()
                .collect();
            tracing::info!(
                "{}: the fleet index query matched {} things",
                r.name,
                things.len()
            );
            Ok::<_, Error>(things)
        }
    }))
    .await
}

/// The things of the other thing filters (all things when there are none) that the query
/// matched too.
pub(super) fn narrow(
    things: Option<BTreeSet<String>>,
    matched: &BTreeSet<String>,
) -> BTreeSet<String> {
    match things {
        None => matched.clone(),
        Some(mut t) => {
            t.retain(|name| matched.contains(name));
            t
        }
    }
}

/// Whether the things index (and connectivity, when the query reads it) is on in `region`.
async fn check_indexing(
    region: &str,
    iot: &Iot,
    q: &FleetQuery,
    profile: Option<&str>,
) -> Result<(), Error> {
    let modes = match iot.indexing_modes().await {
        Ok(m) => m,
        // Without the permission to look, SearchIndex itself says whether the index is
        // there; but whether connectivity is indexed only this call can tell.
        Err(f) if f.error.is_permission_refusal() && !q.reads_connectivity() => {
            tracing::warn!(
                "{region}: cannot read the fleet indexing configuration ({}); going on with SearchIndex",
                f.error
            );
            return Ok(());
        }
        Err(f) => {
            return Err(call_failed(
                Operation::GetIndexingConfiguration,
                region,
                profile,
                f,
            ))
        }
    };
    check_modes(region, &modes, q)
}

/// The refusal of `q` under the indexing configuration `modes` of `region`, if any.
fn check_modes(region: &str, modes: &IndexingModes, q: &FleetQuery) -> Result<(), Error> {
    if !modes.things_on() {
        return Err(Error::Usage(format!(
            "{}: fleet indexing is off in {region} (thingIndexingMode {}): turn it on with `aws iot update-indexing-configuration --thing-indexing-configuration thingIndexingMode=REGISTRY` (indexing and queries are billed), or select with the registry filters; nothing was written",
            q.flags(),
            modes.things
        )));
    }
    if q.reads_connectivity() && !modes.connectivity_on() {
        return Err(Error::Usage(format!(
            "{}: connectivity is not indexed in {region} (thingConnectivityIndexingMode {}), so AWS cannot tell connected devices from the others: add thingConnectivityIndexingMode=STATUS to the indexing configuration, or leave out the connectivity terms; nothing was written",
            q.connectivity_flag(),
            modes.connectivity
        )));
    }
    Ok(())
}

/// The one message a failed SearchIndex ends `select` with: AWS's reason for a refused
/// query or a missing index (exit 2), else what [`call_failed`] says.
fn refused(region: &str, q: &FleetQuery, f: CallFailure, profile: Option<&str>) -> Error {
    let reason = format!("{}: {}", f.error.code_name(), f.error.message);
    if f.is(AwsCode::InvalidQuery) || f.is(AwsCode::InvalidRequest) {
        Error::Usage(format!(
            "{}: AWS refused the query in {region} ({reason}); nothing was written",
            q.flags()
        ))
    } else if f.is(AwsCode::ResourceNotFound) {
        Error::Usage(format!(
            "{}: fleet indexing is off in {region} ({reason}); nothing was written",
            q.flags()
        ))
    } else if f.is(AwsCode::IndexNotReady) {
        Error::Usage(format!(
            "{}: the fleet index of {region} is still being built ({reason}): run the same command again once `aws iot describe-index --index-name AWS_Things` says ACTIVE; nothing was written",
            q.flags()
        ))
    } else {
        call_failed(Operation::SearchIndex, region, profile, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: Option<&str>, connected: Option<bool>) -> FleetQuery {
        FleetQuery::new(text.map(str::to_string), connected).expect("a filter")
    }

    #[test]
    fn the_shortcuts_combine_with_the_query_by_and() {
        assert_eq!(FleetQuery::new(None, None), None);
        let q = query(Some("thingName:a* OR thingName:b*"), Some(false));
        assert_eq!(
            q.query_string(),
            "(thingName:a* OR thingName:b*) AND connectivity.connected:false"
        );
        assert_eq!(
            q.flags(),
            "--query 'thingName:a* OR thingName:b*' --disconnected"
        );
        assert_eq!(
            query(None, Some(true)).query_string(),
            "connectivity.connected:true"
        );
        assert_eq!(
            query(Some("attributes.fw:2"), None).query_string(),
            "attributes.fw:2"
        );
    }

    #[test]
    fn a_query_reads_connectivity_when_a_term_names_the_field() {
        for yes in [
            "connectivity.connected:false",
            "thingName:a* AND NOT connectivity.connected:true",
            "(connectivity.disconnectReason:*)",
            "thingName:a -connectivity.connected:true",
        ] {
            assert!(query(Some(yes), None).reads_connectivity(), "{yes}");
        }
        for no in [
            "thingName:a*",
            "attributes.note:\"connectivity.x\"",
            "attributes.myconnectivity.x:1",
        ] {
            assert!(!query(Some(no), None).reads_connectivity(), "{no}");
        }
        assert!(query(None, Some(false)).reads_connectivity());
    }

    #[test]
    fn operators_written_in_lower_case_are_named() {
        let q = query(
            Some("thingName:a* and (attributes.x:1 Or not thingTypeName:b)"),
            None,
        );
        assert_eq!(q.lowercase_operators(), ["and", "Or", "not"]);
        let q = query(
            Some("thingName:a* AND NOT attributes.andor:x OR thingName:orange"),
            None,
        );
        assert!(q.lowercase_operators().is_empty());
    }

    #[test]
    fn indexing_off_or_connectivity_not_indexed_is_refused_naming_the_region_and_the_fix() {
        let modes = |things: &str, connectivity: &str| IndexingModes {
            things: things.into(),
            connectivity: connectivity.into(),
        };
        let plain = query(Some("thingName:a*"), None);
        let offline = query(Some("thingName:a*"), Some(false));
        let e = check_modes("eu-west-1", &modes("OFF", "OFF"), &plain).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Usage(_)));
        assert!(
            text.contains("eu-west-1") && text.contains("thingIndexingMode OFF"),
            "{text}"
        );
        assert!(text.contains("thingIndexingMode=REGISTRY"), "{text}");
        assert!(check_modes("r", &modes("REGISTRY", "OFF"), &plain).is_ok());
        let e = check_modes("r", &modes("REGISTRY", "OFF"), &offline).unwrap_err();
        assert!(e.to_string().starts_with("--disconnected:"), "{e}");
        assert!(
            e.to_string()
                .contains("thingConnectivityIndexingMode=STATUS"),
            "{e}"
        );
        assert!(check_modes("r", &modes("REGISTRY_AND_SHADOW", "STATUS"), &offline).is_ok());
    }

    #[test]
    fn narrowing_keeps_the_things_both_sides_name() {
        let matched: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
        assert_eq!(narrow(None, &matched), matched);
        let other: BTreeSet<String> = ["b", "c", "d"].map(String::from).into();
        assert_eq!(
            narrow(Some(other), &matched),
            ["b", "c"].map(String::from).into()
        );
    }
}
