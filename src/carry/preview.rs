//! `plan --carry`: what carry would create in each target account, read-only on both sides.
//! The snapshot is read in the source as `transfer --carry` would read it; given the
//! targets' credentials, each object is looked up there too: absent (to create), the same
//! (reused) or different (a conflict, with the difference).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;

use serde::Serialize;

use super::once::Once;
use super::read::SnapshotReader;
use super::snapshot::Snapshot;
use super::{compare, rewrite};
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure, Iot};
use crate::manifest::{Manifest, ManifestRow};
use crate::output::{count, Render};
use crate::pacer::Scope;
use crate::verdict::{Stopped, Sweep, Verdict};

closed_set! {
    /// Whether what a certificate carries could be read in the source.
    pub enum SnapshotRead {
        /// Read: each object is previewed in the certificate's target.
        Read = "read",
        /// Not in the source account: nothing to carry.
        NotInSource = "not_in_source",
        /// AWS could not be asked (it refused or failed a read).
        Unknown = "unknown",
    }
}

closed_set! {
    /// What carry would do with one object in one target.
    pub enum Fate {
        /// Absent in the target: carry creates it.
        Create = "create",
        /// There with the same definition: reused as it is.
        Reuse = "reuse",
        /// There with another definition: the certificate would fail (or `--on-conflict reuse`).
        Conflict = "conflict",
        /// The target was not read: no target credentials were given.
        NotChecked = "not_checked",
        /// AWS could not be asked about it in the target (it refused or failed the read).
        Unknown = "unknown",
    }
}

/// One object of one kind in one target.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectPreview {
    /// `policy`, `thing type`, `thing group` or `thing`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What carry would do.
    pub fate: Fate,
    /// The difference, for a conflict; AWS's answer, for an unknown.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub difference: String,
}

/// What carry would do in one target account.
#[derive(Debug, Default, Serialize)]
pub struct TargetPreview {
    /// Objects per kind and fate.
    pub counts: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// The conflicts (all of them).
    pub conflicts: Vec<ObjectPreview>,
    /// Shared objects (policies, thing types, groups) by name, with their fate.
    pub shared: Vec<ObjectPreview>,
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
    /// Set when a signal stopped the preview before every certificate was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// A plan (`plan`, `plan --mode register`) with what carry would create: the plan's own
/// fields, and `carry`; the text appends the carry section to the plan's.
#[derive(Debug, Serialize)]
pub struct WithCarry<P> {
    /// The plan.
    #[serde(flatten)]
    pub plan: P,
    /// What carry would create in each target.
    pub carry: CarryPreview,
}

impl<P: Render> Render for WithCarry<P> {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.plan.write_text(out)?;
        self.carry.write_text(out)
    }
}

/// What carry would do for one certificate: its snapshot read in the source, each object
/// looked up in its target.
#[derive(Debug, Clone)]
pub struct CertificatePreview {
    target_account: String,
    read: SnapshotRead,
    /// AWS's answer, when the snapshot could not be read.
    detail: String,
    objects: Vec<ObjectPreview>,
    attachments: u64,
    only_through_groups: bool,
}

/// The preview's verdict: the source's and targets' clients, the snapshot reader, and the
/// fate of each shared object, looked up once per target.
struct Previewing<'a> {
    source: &'a AccountClients,
    targets: HashMap<String, AccountClients>,
    reader: SnapshotReader,
    shared: Once<(Scope, &'static str, String), (Fate, String)>,
}

/// The preview being added up in manifest order: a shared object is reported by the first
/// certificate that carries it to its target.
#[derive(Default)]
struct Adding {
    preview: CarryPreview,
    reported: HashSet<(String, &'static str, String)>,
    unreadable_example: Option<String>,
}

impl Verdict for Previewing<'_> {
    type Category = SnapshotRead;
    type Finding = CertificatePreview;
    type Totals = Adding;
    const VERB: &'static str = "previewing carry";
    const LISTED: usize = 0;

    async fn classify(&self, row: &ManifestRow) -> CertificatePreview {
        let mut p = CertificatePreview {
            target_account: row.target_account.clone(),
            read: SnapshotRead::Unknown,
            detail: String::new(),
            objects: Vec::new(),
            attachments: 0,
            only_through_groups: false,
        };
        let iot = self.source.for_row(row);
        let s = match read_snapshot(&self.reader, iot, &row.certificate_id).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                p.read = SnapshotRead::NotInSource;
                return p;
            }
            Err(f) => {
                p.detail = f.to_string();
                return p;
            }
        };
        p.read = SnapshotRead::Read;
        p.only_through_groups =
            s.attached_policies.is_empty() && s.groups.iter().any(|g| !g.policies.is_empty());
        p.attachments = (s.attached_policies.len()
            + s.things.len()
            + s.things.iter().map(|x| x.groups.len()).sum::<usize>()
            + s.groups.iter().map(|g| g.policies.len()).sum::<usize>())
            as u64;
        let s = for_target(s, &row.target_account);
        let there = self
            .targets
            .get(&row.target_account)
            .map(|c| c.for_row(row));
        p.objects = self.objects(there, &s).await;
        p
    }

    fn categories(p: &CertificatePreview) -> &[SnapshotRead] {
        std::slice::from_ref(&p.read)
    }

    fn listed(_: SnapshotRead) -> bool {
        false
    }

    fn add_up(a: &mut Adding, p: &CertificatePreview) {
        match p.read {
            SnapshotRead::Read => {}
            SnapshotRead::NotInSource => return,
            SnapshotRead::Unknown => {
                a.preview.unreadable += 1;
                a.unreadable_example.get_or_insert_with(|| p.detail.clone());
                return;
            }
        }
        a.preview.only_through_groups += u64::from(p.only_through_groups);
        let t = a
            .preview
            .targets
            .entry(p.target_account.clone())
            .or_default();
        t.attachments += p.attachments;
        for o in &p.objects {
            let shared = o.kind != "thing";
            if shared
                && !a
                    .reported
                    .insert((p.target_account.clone(), o.kind, o.name.clone()))
            {
                continue;
            }
            let counts = t.counts.entry(o.kind.to_string()).or_default();
            *counts.entry(o.fate.as_str()).or_default() += 1;
            if o.fate == Fate::Conflict {
                t.conflicts.push(o.clone());
            }
            if shared {
                t.shared.push(o.clone());
            }
        }
    }
}

/// Reads what every certificate carries in the source and, with `targets`, what each
/// target holds already.
pub async fn preview(
    manifest: &Manifest,
    source: &AccountClients,
    targets: &[AccountClients],
    sweep: &Sweep,
) -> Result<CarryPreview, Error> {
    let verdict = Previewing {
        source,
        targets: AccountClients::by_account(targets.to_vec()),
        reader: SnapshotReader::new(),
        shared: Once::default(),
    };
    let judged = sweep
        .judge(&verdict, manifest.rows()?, manifest.len() as u64, None)
        .await?;
    let Adding {
        mut preview,
        unreadable_example,
        ..
    } = judged.totals;
    if preview.only_through_groups > 0 {
        preview.warnings.push(format!(
            "{} {} no policy of their own: their devices get permissions only \
             through thing-group policies, which AWS IoT applies only to a device that connects \
             with its thing's name as client id and while its thing is attached and in the group. \
             Check that the devices connect that way before moving them",
            count(preview.only_through_groups, "certificate"),
            if preview.only_through_groups == 1 {
                "has"
            } else {
                "have"
            }
        ));
    }
    if let Some(e) = unreadable_example {
        preview.warnings.push(format!(
            "{}: what they carry could not be read ({e})",
            count(preview.unreadable, "certificate")
        ));
    }
    preview.stopped = judged.stopped;
    Ok(preview)
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
    reader
        .snapshot(iot, &info.arn, &policies, &things)
        .await
        .map(Some)
}

fn for_target(mut s: Snapshot, target: &str) -> Snapshot {
    for p in &mut s.policies {
        p.document = rewrite::rewrite_account(&p.document, &s.source_account, target);
    }
    s
}

/// What a lookup in the target says about a carried object: absent, the same, or different
/// (`differs` tells how).
fn fate_of<T>(
    found: Result<Option<T>, CallFailure>,
    differs: impl FnOnce(&T) -> Option<String>,
) -> (Fate, String) {
    match found {
        Ok(None) => (Fate::Create, String::new()),
        Ok(Some(found)) => match differs(&found) {
            None => (Fate::Reuse, String::new()),
            Some(d) => (Fate::Conflict, d),
        },
        Err(e) => (Fate::Unknown, e.to_string()),
    }
}

impl Previewing<'_> {
    /// Each object of the snapshot with its fate in the target (`None`: not read).
    async fn objects(&self, there: Option<&Iot>, s: &Snapshot) -> Vec<ObjectPreview> {
        let mut objects = Vec::new();
        let mut add = |kind: &'static str, name: &str, (fate, difference): (Fate, String)| {
            objects.push(ObjectPreview {
                kind,
                name: name.to_string(),
                fate,
                difference,
            });
        };
        for t in &s.thing_types {
            let fate = self.shared(there, "thing type", &t.name, |iot| async move {
                fate_of(iot.thing_type(&t.name).await, |f| compare::thing_type(t, f))
            });
            add("thing type", &t.name, fate.await);
        }
        for g in &s.groups {
            let fate = self.shared(there, "thing group", &g.name, |iot| async move {
                fate_of(iot.thing_group(&g.name).await, |f| match f {
                    Some(found) => compare::group(g, found),
                    None => Some("a dynamic group of that name exists".into()),
                })
            });
            add("thing group", &g.name, fate.await);
        }
        for p in &s.policies {
            let fate = self.shared(there, "policy", &p.name, |iot| async move {
                fate_of(iot.policy_document(&p.name).await, |f| {
                    compare::policy(&p.document, f)
                })
            });
            add("policy", &p.name, fate.await);
        }
        for t in &s.things {
            let fate = match there {
                None => (Fate::NotChecked, String::new()),
                Some(iot) => fate_of(iot.thing(&t.name).await, |f| compare::thing(t, f)),
            };
            add("thing", &t.name, fate);
        }
        objects
    }

    /// The fate of a shared object in the target `there`, looked up once per target
    /// (account and region) by whichever certificate asks first.
    async fn shared<'a, F, Fut>(
        &self,
        there: Option<&'a Iot>,
        kind: &'static str,
        name: &str,
        look_up: F,
    ) -> (Fate, String)
    where
        F: FnOnce(&'a Iot) -> Fut,
        Fut: Future<Output = (Fate, String)>,
    {
        let Some(iot) = there else {
            return (Fate::NotChecked, String::new());
        };
        let key = (iot.scope().clone(), kind, name.to_string());
        let found = self
            .shared
            .get(&key, || async { Ok::<_, Infallible>(look_up(iot).await) })
            .await;
        match found {
            Ok(fate) => fate,
            Err(never) => match never {},
        }
    }
}

impl CarryPreview {
    /// The text form, appended to the plan's.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "\ncarry (what `--carry` would create in each target):")?;
        if let Some(s) = &self.stopped {
            write!(out, "  ")?;
            s.write_text(out)?;
        }
        for (account, t) in &self.targets {
            writeln!(
                out,
                "  target {account}: {}",
                count(t.attachments, "attachment")
            )?;
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
