//! `plan --carry`: what carry would create in each target account, read-only on both sides.
//! The snapshot is read in the source as `transfer --carry` would read it; given the
//! targets' credentials, each object is looked up there too: absent (to create), the same
//! (reused) or different (a conflict, with the difference).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use futures::StreamExt;
use serde::Serialize;

use super::read::SnapshotReader;
use super::snapshot::Snapshot;
use super::{compare, rewrite};
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure, Iot};
use crate::manifest::Manifest;

closed_set! {
    /// What carry would do with one object in one target.
    pub enum Fate {
        /// Absent in the target: carry creates it.
        Create = "create",
        /// There with the same definition: reused as it is.
        Reuse = "reuse",
        /// There with another definition: the certificate would fail (or `--on-conflict reuse`).
        Conflict = "conflict",
        /// The target was not read (no target credentials given).
        NotChecked = "not_checked",
    }
}

/// One object of one kind in one target.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// `policy`, `thing type`, `thing group` or `thing`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What carry would do.
    pub fate: Fate,
    /// The difference, for a conflict.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub difference: String,
}

/// What carry would do in one target account.
#[derive(Debug, Default, Serialize)]
pub struct TargetPreview {
    /// Objects per kind and fate.
    pub counts: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// The conflicts (all of them).
    pub conflicts: Vec<Planned>,
    /// Shared objects (policies, thing types, groups) by name, with their fate.
    pub shared: Vec<Planned>,
    /// Attachments carry would make: policies and things to certificates, things to
    /// groups, policies to groups.
    pub attachments: u64,
}

/// The carry part of a plan.
#[derive(Debug, Default, Serialize)]
pub struct CarryPreview {
    /// By target account.
    pub targets: BTreeMap<String, TargetPreview>,
    /// Certificates whose devices get permissions only through thing-group policies.
    pub only_through_groups: u64,
    /// Certificates whose snapshot could not be read (the source refused a read).
    pub unreadable: u64,
    /// What the operator should know.
    pub warnings: Vec<String>,
}

/// Reads what every certificate carries in the source and, with `targets`, what each
/// target holds already.
pub async fn preview(
    manifest: &Manifest,
    source: &AccountClients,
    targets: &[AccountClients],
    concurrency: usize,
) -> Result<CarryPreview, Error> {
    let reader = SnapshotReader::new();
    let targets = AccountClients::by_account(targets.to_vec());
    let reader = &reader;
    let mut snapshots = futures::stream::iter(manifest.rows()?)
        .map(|row| async move {
            let row = row?;
            let iot = source.for_row(&row);
            let snapshot = read_snapshot(reader, iot, &row.certificate_id).await;
            Ok::<_, Error>((row, snapshot))
        })
        .buffered(concurrency.max(1));
    let mut out = CarryPreview::default();
    // (target, kind, name) -> fate, looked up once.
    let mut seen: HashMap<(String, &'static str, String), Fate> = HashMap::new();
    let mut unreadable_example = None;
    while let Some(next) = snapshots.next().await {
        let (row, snapshot) = next?;
        let s = match snapshot {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(f) => {
                out.unreadable += 1;
                unreadable_example.get_or_insert_with(|| f.to_string());
                continue;
            }
        };
        if s.attached_policies.is_empty() && s.groups.iter().any(|g| !g.policies.is_empty()) {
            out.only_through_groups += 1;
        }
        let account = row.target_account.clone();
        let there = targets.get(&account).map(|c| c.for_row(&row));
        let t = out.targets.entry(account.clone()).or_default();
        t.attachments += (s.attached_policies.len()
            + s.things.len()
            + s.things.iter().map(|x| x.groups.len()).sum::<usize>()
            + s.groups.iter().map(|g| g.policies.len()).sum::<usize>())
            as u64;
        let s = for_target(s, &account);
        for p in plan_objects(there, &s, &mut seen, &account).await {
            let counts = t.counts.entry(p.kind.to_string()).or_default();
            *counts.entry(p.fate.as_str()).or_default() += 1;
            if p.fate == Fate::Conflict {
                t.conflicts.push(p.clone());
            }
            if p.kind != "thing" {
                t.shared.push(p);
            }
        }
    }
    if out.only_through_groups > 0 {
        out.warnings.push(format!(
            "{} certificates have no policy of their own: their devices get permissions only \
             through thing-group policies, which AWS IoT applies only to a device that connects \
             with its thing's name as client id and while its thing is attached and in the group. \
             Check that the devices connect that way before moving them",
            out.only_through_groups
        ));
    }
    if let Some(e) = unreadable_example {
        out.warnings.push(format!(
            "{} certificates: what they carry could not be read ({e})",
            out.unreadable
        ));
    }
    Ok(out)
}

/// The snapshot `transfer --carry` would take now (`None`: not in the source).
async fn read_snapshot(
    reader: &SnapshotReader,
    iot: &Iot,
    id: &str,
) -> Result<Option<Snapshot>, CallFailure> {
    let Some(info) = iot.describe(id).await? else {
        return Ok(None);
    };
    let policies = iot.attached_policies(&info.arn).await?;
    let things = iot.principal_things(&info.arn).await?;
    reader.snapshot(iot, &policies, &things).await.map(Some)
}

fn for_target(mut s: Snapshot, target: &str) -> Snapshot {
    for p in &mut s.policies {
        p.document = rewrite::rewrite_account(&p.document, &s.source_account, target);
    }
    s
}

/// Each object of the snapshot with its fate in the target; shared objects already seen
/// for this target are not repeated.
async fn plan_objects(
    there: Option<&Iot>,
    s: &Snapshot,
    seen: &mut HashMap<(String, &'static str, String), Fate>,
    account: &str,
) -> Vec<Planned> {
    let mut planned = Vec::new();
    let mut add = |kind: &'static str, name: &str, found: Fate, difference: String| {
        planned.push(Planned {
            kind,
            name: name.to_string(),
            fate: found,
            difference,
        });
    };
    let fate = |d: Option<Option<String>>| match d {
        None => (Fate::NotChecked, String::new()),
        Some(None) => (Fate::Reuse, String::new()),
        Some(Some(d)) => (Fate::Conflict, d),
    };
    for t in &s.thing_types {
        if seen.contains_key(&(account.into(), "thing type", t.name.clone())) {
            continue;
        }
        let (f, d) = match there {
            None => fate(None),
            Some(iot) => match iot.thing_type(&t.name).await {
                Ok(Some(found)) => fate(Some(compare::thing_type(t, &found))),
                Ok(None) => (Fate::Create, String::new()),
                Err(e) => (Fate::NotChecked, e.to_string()),
            },
        };
        seen.insert((account.into(), "thing type", t.name.clone()), f);
        add("thing type", &t.name, f, d);
    }
    for g in &s.groups {
        if seen.contains_key(&(account.into(), "thing group", g.name.clone())) {
            continue;
        }
        let (f, d) = match there {
            None => fate(None),
            Some(iot) => match iot.thing_group(&g.name).await {
                Ok(Some(Some(found))) => fate(Some(compare::group(g, &found))),
                Ok(Some(None)) => (Fate::Conflict, "a dynamic group of that name exists".into()),
                Ok(None) => (Fate::Create, String::new()),
                Err(e) => (Fate::NotChecked, e.to_string()),
            },
        };
        seen.insert((account.into(), "thing group", g.name.clone()), f);
        add("thing group", &g.name, f, d);
    }
    for p in &s.policies {
        if seen.contains_key(&(account.into(), "policy", p.name.clone())) {
            continue;
        }
        let (f, d) = match there {
            None => fate(None),
            Some(iot) => match iot.policy_document(&p.name).await {
                Ok(Some(found)) => fate(Some(compare::policy(&p.document, &found))),
                Ok(None) => (Fate::Create, String::new()),
                Err(e) => (Fate::NotChecked, e.to_string()),
            },
        };
        seen.insert((account.into(), "policy", p.name.clone()), f);
        add("policy", &p.name, f, d);
    }
    for t in &s.things {
        let (f, d) = match there {
            None => fate(None),
            Some(iot) => match iot.thing(&t.name).await {
                Ok(Some(found)) => fate(Some(compare::thing(t, &found))),
                Ok(None) => (Fate::Create, String::new()),
                Err(e) => (Fate::NotChecked, e.to_string()),
            },
        };
        add("thing", &t.name, f, d);
    }
    planned
}

impl CarryPreview {
    /// The text form, appended to the plan's.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "\ncarry (what `--carry` would create in each target):")?;
        for (account, t) in &self.targets {
            writeln!(out, "  target {account}: {} attachments", t.attachments)?;
            for (kind, fates) in &t.counts {
                let parts: Vec<String> = fates.iter().map(|(f, n)| format!("{f} {n}")).collect();
                writeln!(out, "    {kind:<12} {}", parts.join(", "))?;
            }
            for c in t.conflicts.iter().take(20) {
                writeln!(
                    out,
                    "    conflict: {} `{}`: {}",
                    c.kind, c.name, c.difference
                )?;
            }
        }
        for w in &self.warnings {
            writeln!(out, "  warning: {w}")?;
        }
        Ok(())
    }
}
