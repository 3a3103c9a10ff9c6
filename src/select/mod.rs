//! `select`: which certificates of the source account to migrate, from the filters an
//! operator thinks in (thing group, thing type, attributes, issuing CA, status, age),
//! written as a manifest that `validate`, `plan` and `transfer` take unchanged.
//!
//! Read-only. Per region: the things of the thing filters (ListThingsInThingGroup,
//! ListThings, filtered here on the attributes it returns: AWS's own attribute filter
//! sees searchable attributes only), their certificates (ListThingPrincipals), the certificate listing
//! (ListCertificates, or ListCertificatesByCA) for status and creation date; then, across
//! regions, earlier waves are excluded, rows sorted by id and cut at `--limit`, and each
//! selected certificate of a thing-based selection is checked for things outside the
//! selection (ListPrincipalThings). Every call is paced and retried by the run's call
//! context; every listing is followed to its last page.
//!
//! - [`filters`]: the flags, checked before any AWS call;
//! - [`query`]: `--query` and the connectivity shortcuts (fleet indexing, SearchIndex);
//! - [`destination`]: the manifest file (atomic) or stdout;
//! - [`summary`]: counts per filter and warnings.

pub mod destination;
pub mod filters;
pub mod query;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

pub use destination::Destination;
pub use filters::{parse_time, DateBound, Exclusions, Filters, GroupFilter};
pub use query::FleetQuery;
pub use summary::{FilterCount, SelectReport};

use crate::certificate::{certificate_id_of_arn, CertStatus};
use crate::error::Error;
use crate::iot::{CallContext, CallFailure, Iot, ListedCertificate};
use crate::manifest::ManifestRow;
use crate::pacer::Operation;
use crate::retry::ErrorClass;
use summary::{LeftOut, SharedCertificate, Warnings, MAX_EXAMPLES};

/// One region to select in: its name and the client of the source account there.
pub struct Region<'a> {
    /// The region.
    pub name: String,
    /// The source account's client in it.
    pub iot: &'a Iot,
}

/// Logs every `interval` how many calls the selection has made so far, until dropped: a
/// selection of a large fleet takes minutes (0.1 s per thing at the default rates).
pub struct CallTicker(tokio::task::JoinHandle<()>);

impl CallTicker {
    /// Starts logging the calls of `ctx`.
    pub fn start(ctx: Arc<CallContext>, interval: Duration) -> CallTicker {
        let started = Instant::now();
        CallTicker(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let counts = ctx.counts();
                let total: u64 = counts.values().map(|c| c.calls).sum();
                let each: Vec<String> = counts
                    .iter()
                    .map(|(op, c)| format!("{op} {}", c.calls))
                    .collect();
                tracing::info!(
                    target: crate::progress::TARGET,
                    "select: {} so far ({}), {:.0}s",
                    crate::output::count(total, "call"),
                    each.join(", "),
                    started.elapsed().as_secs_f64()
                );
            }
        }))
    }
}

impl Drop for CallTicker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What `select` found: the manifest's rows (sorted by id) and the summary's counts.
pub struct Found {
    /// One row per certificate, sorted by id.
    pub rows: Vec<ManifestRow>,
    /// Whether the rows carry a region (several regions were searched).
    pub with_region: bool,
    /// Counts per filter, left-out reasons and warnings (calls, manifest and time are
    /// filled in by the caller).
    pub filters: Vec<FilterCount>,
    /// What was left out.
    pub left_out: LeftOut,
    /// What to look at.
    pub warnings: Warnings,
}

/// What one region contributed.
struct RegionPick {
    funnel: Vec<FilterCount>,
    kept: Vec<ListedCertificate>,
    by_status: BTreeMap<String, usize>,
    /// The selected things (thing-based selections only).
    things: Option<HashSet<String>>,
    things_without_certificate: Vec<String>,
    group_missing: bool,
    /// `--thing-type` names no thing type in this region.
    type_missing: bool,
}

/// Runs the selection in every region (the first region keeps an id found in several).
/// `profile` names the credentials in messages; `concurrency` bounds the calls in flight
/// (the pacer sets their rate).
pub async fn select(
    regions: &[Region<'_>],
    filters: &Filters,
    exclusions: &Exclusions,
    concurrency: usize,
    profile: Option<&str>,
) -> Result<Found, Error> {
    // The fleet index first: indexing that is off or a refused query costs no listing.
    let queried = match &filters.query {
        Some(q) => Some(query::search(regions, q, profile).await?),
        None => None,
    };
    let picks = futures::future::try_join_all(regions.iter().enumerate().map(|(i, r)| {
        let queried = queried.as_ref().map(|q| &q[i]);
        pick_in_region(r, filters, queried, concurrency, profile)
    }))
    .await?;
    let mut warnings = Warnings::default();
    if let Some(g) = &filters.thing_group {
        if picks.iter().all(|p| p.group_missing) {
            let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "--thing-group {}: no such static thing group in {}",
                g.name,
                names.join(", ")
            )));
        }
        warnings.thing_group_missing_in = regions
            .iter()
            .zip(&picks)
            .filter(|(_, p)| p.group_missing)
            .map(|(r, _)| r.name.clone())
            .collect();
    }

    if let Some(t) = &filters.thing_type {
        if picks.iter().all(|p| p.type_missing) {
            let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "--thing-type {t}: no such thing type in {}",
                names.join(", ")
            )));
        }
    }

    // Counts per step, summed over regions (every region takes the same steps).
    let mut funnel = picks[0].funnel.clone();
    for p in &picks[1..] {
        for (total, step) in funnel.iter_mut().zip(&p.funnel) {
            total.things = total.things.map(|n| n + step.things.unwrap_or(0));
            total.certificates = total
                .certificates
                .map(|n| n + step.certificates.unwrap_or(0));
        }
    }
    let mut left_out = LeftOut::default();
    let mut without = Vec::new();
    for p in &picks {
        for (status, n) in &p.by_status {
            *left_out.status.entry(status.clone()).or_default() += n;
        }
        without.extend(p.things_without_certificate.iter().cloned());
    }
    warnings.things_without_certificate = without.len();
    without.sort();
    without.truncate(MAX_EXAMPLES);
    warnings.things_without_certificate_names = without;

    // One row per id, sorted by id; the first region of --region keeps a repeated id.
    let mut chosen: BTreeMap<String, (usize, ListedCertificate)> = BTreeMap::new();
    for (i, p) in picks.iter().enumerate() {
        for c in &p.kept {
            if chosen.contains_key(&c.id) {
                left_out.in_another_region += 1;
            } else {
                chosen.insert(c.id.clone(), (i, c.clone()));
            }
        }
    }
    if !exclusions.is_empty() {
        let before = chosen.len();
        chosen.retain(|id, _| !exclusions.contains(id));
        left_out.excluded = before - chosen.len();
        let paths: Vec<String> = exclusions
            .paths()
            .map(|p| p.display().to_string())
            .collect();
        funnel.push(FilterCount::certificates(
            format!("--exclude-manifest {}", paths.join(", ")),
            chosen.len(),
        ));
    }
    let mut chosen: Vec<(usize, ListedCertificate)> = chosen.into_values().collect();
    if let Some(limit) = filters.limit {
        left_out.over_limit = chosen.len().saturating_sub(limit);
        chosen.truncate(limit);
        funnel.push(FilterCount::certificates(
            format!("--limit {limit}"),
            chosen.len(),
        ));
    }

    if filters.by_things() {
        let shared = shared_certificates(regions, &picks, &chosen, concurrency, profile).await?;
        warnings.shared_certificates = shared.len();
        warnings.shared = shared.into_iter().take(MAX_EXAMPLES).collect();
    }

    let with_region = regions.len() > 1;
    let rows = chosen
        .into_iter()
        .map(|(i, c)| ManifestRow {
            line: 0,
            certificate_id: c.id,
            target_account: filters.target_account.clone(),
            transfer_message: filters.transfer_message.clone(),
            region: with_region.then(|| regions[i].name.clone()),
        })
        .collect();
    Ok(Found {
        rows,
        with_region,
        filters: funnel,
        left_out,
        warnings,
    })
}

/// The thing filters, the certificate listing, status and dates, in one region; `queried`:
/// the things the fleet index query matched there.
async fn pick_in_region(
    region: &Region<'_>,
    f: &Filters,
    queried: Option<&BTreeSet<String>>,
    concurrency: usize,
    profile: Option<&str>,
) -> Result<RegionPick, Error> {
    let iot = region.iot;
    let fail = |op: Operation| move |e: CallFailure| call_failed(op, &region.name, profile, e);
    let mut thing_steps = Vec::new();
    let mut things: Option<BTreeSet<String>> = None;
    let mut group_missing = false;
    let mut type_missing = false;
    if let Some(g) = &f.thing_group {
        let members = iot
            .things_in_group(&g.name, g.recursive)
            .await
            .map_err(fail(Operation::ListThingsInThingGroup))?;
        group_missing = members.is_none();
        let members: BTreeSet<String> = members.unwrap_or_default().into_iter().collect();
        let flag = if g.recursive {
            format!("--thing-group {}", g.name)
        } else {
            format!("--thing-group {} --no-recursive", g.name)
        };
        thing_steps.push(FilterCount::things(flag, members.len()));
        things = Some(members);
    }
    if f.thing_type.is_some() || !f.attributes.is_empty() {
        // ListThings' attribute filter sees searchable attributes only (every attribute of
        // an untyped thing, only its type's searchableAttributes of a typed one): AWS is
        // asked to filter only when it cannot miss a thing, a --thing-type whose searchable
        // attributes name the attribute. Every attribute is checked here, on the attributes
        // ListThings returns.
        let first = f.attributes.first().map(|(n, v)| (n.as_str(), v.as_str()));
        // DescribeThingType: a mistyped type is said, not taken for an empty selection.
        let thing_type = match &f.thing_type {
            Some(ty) => {
                let found = iot
                    .thing_type(ty)
                    .await
                    .map_err(fail(Operation::DescribeThingType))?;
                type_missing = found.is_none();
                found
            }
            None => None,
        };
        let searchable = match (&thing_type, first) {
            (Some(t), Some((name, _))) => t.searchable_attributes.iter().any(|a| a == name),
            _ => false,
        };
        let listed = iot
            .list_things(f.thing_type.as_deref(), first.filter(|_| searchable))
            .await
            .map_err(fail(Operation::ListThings))?;
        let matching = listed
            .into_iter()
            .filter(|t| {
                f.attributes
                    .iter()
                    .all(|(n, v)| t.attributes.get(n) == Some(v))
            })
            .map(|t| t.name);
        let matching: BTreeSet<String> = match &things {
            None => matching.collect(),
            Some(members) => matching.filter(|t| members.contains(t)).collect(),
        };
        let mut flag = Vec::new();
        if let Some(t) = &f.thing_type {
            flag.push(format!("--thing-type {t}"));
        }
        for (n, v) in &f.attributes {
            flag.push(format!("--attribute {n}={v}"));
        }
        thing_steps.push(FilterCount::things(flag.join(" "), matching.len()));
        things = Some(matching);
    }

    if let (Some(q), Some(matched)) = (&f.query, queried) {
        let kept = query::narrow(things, matched);
        thing_steps.push(FilterCount::things(q.flags(), kept.len()));
        things = Some(kept);
    }

    // The certificates of the selected things.
    let mut of_things: Option<HashSet<String>> = None;
    let mut things_without_certificate = Vec::new();
    if let Some(things) = &things {
        let rate = iot.current_rate(Operation::ListThingPrincipals);
        tracing::info!(
            target: crate::progress::TARGET,
            "{}: reading the certificates of {} (about {:.0}s at {rate:.0} ListThingPrincipals per second)",
            region.name,
            crate::output::count(things.len(), "thing"),
            things.len() as f64 / rate.max(0.001)
        );
        let principals: Vec<(String, Vec<String>)> = futures::stream::iter(things.iter())
            .map(|t| async move {
                iot.thing_principals(t)
                    .await
                    .map(|p| (t.clone(), p))
                    .map_err(fail(Operation::ListThingPrincipals))
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        let mut ids = HashSet::new();
        for (thing, principals) in principals {
            let mut any = false;
            for id in principals.iter().filter_map(|p| certificate_id_of_arn(p)) {
                any = true;
                ids.insert(id);
            }
            if !any {
                things_without_certificate.push(thing);
            }
        }
        of_things = Some(ids);
    }

    let listing_op = if f.ca_certificate_id.is_some() {
        Operation::ListCertificatesByCA
    } else {
        Operation::ListCertificates
    };
    let listed = iot
        .list_certificates(f.ca_certificate_id.as_deref())
        .await
        .map_err(fail(listing_op))?;
    let mut funnel = vec![FilterCount::certificates(
        match &f.ca_certificate_id {
            Some(ca) => format!("--ca-certificate-id {ca}"),
            None => "listed (ListCertificates)".to_string(),
        },
        listed.len(),
    )];
    funnel.extend(thing_steps);
    let mut kept = listed;
    if let Some(ids) = &of_things {
        kept.retain(|c| ids.contains(&c.id));
        funnel.push(FilterCount::certificates(
            "certificates of these things",
            kept.len(),
        ));
    }
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    kept.retain(|c| {
        if f.statuses.contains(&c.status) {
            return true;
        }
        if !c.status.is_transferable() {
            *by_status.entry(c.status.as_str().to_string()).or_default() += 1;
        }
        false
    });
    let statuses: Vec<&str> = f.statuses.iter().map(CertStatus::as_str).collect();
    funnel.push(FilterCount::certificates(
        format!(
            "--status {}{}",
            statuses.join(","),
            if f.default_statuses { " (default)" } else { "" }
        ),
        kept.len(),
    ));
    if let Some(a) = &f.created_after {
        kept.retain(|c| c.created.is_some_and(|t| t >= a.at));
        funnel.push(FilterCount::certificates(
            format!("--created-after {}", a.text),
            kept.len(),
        ));
    }
    if let Some(b) = &f.created_before {
        kept.retain(|c| c.created.is_some_and(|t| t < b.at));
        funnel.push(FilterCount::certificates(
            format!("--created-before {}", b.text),
            kept.len(),
        ));
    }
    Ok(RegionPick {
        funnel,
        kept,
        by_status,
        things: things.map(|t| t.into_iter().collect()),
        things_without_certificate,
        group_missing,
        type_missing,
    })
}

/// The selected certificates that are also attached to things outside the selection
/// (ListPrincipalThings of each), sorted by id.
async fn shared_certificates(
    regions: &[Region<'_>],
    picks: &[RegionPick],
    chosen: &[(usize, ListedCertificate)],
    concurrency: usize,
    profile: Option<&str>,
) -> Result<Vec<SharedCertificate>, Error> {
    let several = regions.len() > 1;
    let mut shared: Vec<SharedCertificate> = futures::stream::iter(chosen.iter())
        .map(|(i, c)| async move {
            let region = &regions[*i];
            let attached = region.iot.principal_things(&c.arn).await.map_err(|e| {
                call_failed(Operation::ListPrincipalThings, &region.name, profile, e)
            })?;
            let inside = picks[*i].things.as_ref();
            let mut outside: Vec<String> = attached
                .into_iter()
                .filter(|t| !inside.is_some_and(|s| s.contains(t)))
                .collect();
            outside.sort();
            Ok::<_, Error>((!outside.is_empty()).then(|| SharedCertificate {
                certificate_id: c.id.clone(),
                region: several.then(|| region.name.clone()),
                things_outside: outside,
            }))
        })
        .buffer_unordered(concurrency)
        .try_filter_map(|s| async move { Ok(s) })
        .try_collect()
        .await?;
    shared.sort_by(|a, b| a.certificate_id.cmp(&b.certificate_id));
    Ok(shared)
}

/// The one message a failed read ends `select` with: what failed, why, and what to do.
fn call_failed(op: Operation, region: &str, profile: Option<&str>, f: CallFailure) -> Error {
    let whose = match profile {
        Some(p) => format!("of profile {p}"),
        None => "in use".to_string(),
    };
    let what = format!("{op} in {region}: {f}");
    // The codes of refused credentials are the retry policy's (one list).
    let hint = if f.error.class() == ErrorClass::Credentials {
        format!(
            "the credentials {whose} are not valid (expired or revoked): refresh the credentials and run the same command again"
        )
    } else if f.error.is_permission_refusal() || f.error.http_status == Some(403) {
        format!(
            "the IAM policy of the credentials {whose} probably lacks iot:{op} (see the README's IAM permissions for select)"
        )
    } else {
        match f.error.class() {
            ErrorClass::Throttle => format!(
                "still throttled after {}: lower --rate {op}=TPS or run again later",
                crate::output::count(f.attempts, "attempt")
            ),
            ErrorClass::Transient => format!(
                "no good answer after {}: check the endpoint and the network, then run the same command again",
                crate::output::count(f.attempts, "attempt")
            ),
            ErrorClass::Permanent | ErrorClass::Credentials => "AWS refused the call".to_string(),
        }
    };
    Error::Aws(format!("{what}; {hint}; nothing was written"))
}
