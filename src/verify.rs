//! `verify`: read-only on both sides, whether each certificate of a migration works in its
//! target account — owned there, ACTIVE, with everything it carried in place — in one
//! category per certificate, the first that applies.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use futures::StreamExt;
use serde::Serialize;

use crate::carry::snapshot::Snapshot;
use crate::certificate::CertStatus;
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure, Iot};
use crate::lifecycle::check::{source_view, SourceView};
use crate::manifest::{Manifest, ManifestRow};
use crate::output::Render;
use crate::progress::Tally;
use crate::report::neutralise;

closed_set! {
    /// Where a certificate stands, in the order the categories are tried.
    pub enum Verdict {
        /// Never transferred: still the source's, not pending, and not in the target.
        NotTransferred = "not_transferred",
        /// Transferred, not accepted yet.
        Pending = "pending",
        /// Owned by the target but not ACTIVE.
        Inactive = "inactive",
        /// A policy it carried is absent, or not attached (to it, or to its group).
        MissingPolicy = "missing_policy",
        /// A thing it carried is absent, or not attached to it.
        MissingThing = "missing_thing",
        /// A group it carried is absent, or its thing is not in it.
        MissingGroup = "missing_group",
        /// The source still holds an ACTIVE copy (register mode, before retire).
        StillInSource = "still_in_source",
        /// Owned by the target, ACTIVE, everything carried in place.
        Ok = "ok",
        /// AWS refused a read: the detail says what it answered.
        Unknown = "unknown",
    }
}

/// One certificate's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The certificate.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: String,
    /// Its verdict.
    pub category: Verdict,
    /// What is missing or wrong, for a person (empty when ok).
    pub detail: String,
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    command: &'static str,
    manifest: PathBuf,
    certificates: u64,
    /// Certificates per verdict.
    pub counts: BTreeMap<&'static str, u64>,
    /// Certificates the transfer ledger has no snapshot of: checked for ownership and
    /// status only.
    pub without_snapshot: u64,
    /// The certificates that are not ok (the first [`LISTED`]).
    not_ok: Vec<Checked>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    not_ok_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    out: Option<PathBuf>,
}

impl VerifyReport {
    /// Whether every certificate is ok.
    pub fn all_ok(&self) -> bool {
        self.counts[Verdict::Ok.as_str()] == self.certificates
    }
}

/// Not-ok certificates listed in the JSON output (the `--out` CSV has them all).
const LISTED: usize = 1000;
/// Not-ok certificates listed in the text output.
const TEXT_LISTED: usize = 20;

/// What `verify` reads with.
pub struct Sides<'a> {
    /// The source account's clients.
    pub source: &'a AccountClients,
    /// The target accounts' clients, by account.
    pub targets: HashMap<String, AccountClients>,
    /// What each certificate carried (from the transfer ledger), by id.
    pub snapshots: HashMap<String, Snapshot>,
}

/// Verifies every manifest row, `concurrency` at a time, writing the not-ok ones to `out`
/// (in manifest order).
pub async fn verify(
    manifest_path: &Path,
    manifest: &Manifest,
    sides: &Sides<'_>,
    concurrency: usize,
    out: Option<&Path>,
    tally: &Tally,
) -> Result<VerifyReport, Error> {
    let io = |p: &Path, e: std::io::Error| Error::Io {
        path: p.to_path_buf(),
        source: e,
    };
    let mut csv = match out {
        Some(p) => {
            let mut w = csv::Writer::from_path(p).map_err(|e| io(p, e.into()))?;
            w.write_record(["certificate_id", "target_account", "category", "detail"])
                .map_err(|e| io(p, e.into()))?;
            Some((w, p))
        }
        None => None,
    };
    let mut counts: BTreeMap<&'static str, u64> =
        Verdict::ALL.iter().map(|v| (v.as_str(), 0)).collect();
    let (mut certificates, mut without_snapshot) = (0u64, 0u64);
    let mut not_ok = Vec::new();
    let mut truncated = false;
    // Rows of target accounts without credentials here (one --target-profile, several
    // targets) are left to another run: neither checked nor counted.
    let mut checks = futures::stream::iter(manifest.rows()?)
        .filter(|row| {
            let keep = row
                .as_ref()
                .map_or(true, |r| sides.targets.contains_key(&r.target_account));
            std::future::ready(keep)
        })
        .map(|row| async move {
            let row = row?;
            Ok::<_, Error>(check(sides, &row).await)
        })
        .buffered(concurrency.max(1));
    while let Some(c) = checks.next().await {
        let (c, had_snapshot) = c?;
        tally.done.fetch_add(1, Ordering::Relaxed);
        certificates += 1;
        if !had_snapshot {
            without_snapshot += 1;
        }
        *counts.entry(c.category.as_str()).or_default() += 1;
        if c.category == Verdict::Ok {
            continue;
        }
        if let Some((w, p)) = csv.as_mut() {
            let cells = [
                c.certificate_id.as_str(),
                c.target_account.as_str(),
                c.category.as_str(),
                c.detail.as_str(),
            ];
            w.write_record(cells.iter().map(|s| neutralise(s).into_owned()))
                .map_err(|e| io(p, e.into()))?;
        }
        if not_ok.len() < LISTED {
            not_ok.push(c);
        } else {
            truncated = true;
        }
    }
    drop(checks);
    if let Some((mut w, p)) = csv {
        w.flush().map_err(|e| io(p, e))?;
    }
    Ok(VerifyReport {
        command: "verify",
        manifest: manifest_path.to_path_buf(),
        certificates,
        counts,
        without_snapshot,
        not_ok,
        not_ok_truncated: truncated,
        out: out.map(Path::to_path_buf),
    })
}

/// The verdict of one row, and whether it had a snapshot.
async fn check(sides: &Sides<'_>, row: &ManifestRow) -> (Checked, bool) {
    let snapshot = sides.snapshots.get(&row.certificate_id);
    let target = &sides.targets[&row.target_account];
    let source = sides.source.for_row(row);
    let (category, detail) = match verdict(source, target.for_row(row), row, snapshot).await {
        Ok(v) => v,
        Err(f) => (Verdict::Unknown, f.to_string()),
    };
    let checked = Checked {
        certificate_id: row.certificate_id.clone(),
        target_account: row.target_account.clone(),
        category,
        detail,
    };
    (checked, snapshot.is_some())
}

async fn verdict(
    source: &Iot,
    target: &Iot,
    row: &ManifestRow,
    snapshot: Option<&Snapshot>,
) -> Result<(Verdict, String), CallFailure> {
    let id = &row.certificate_id;
    let here = target.scope().account.as_str();
    let copy = target.describe(id).await?;
    let owned = copy
        .as_ref()
        .filter(|c| c.owner.as_deref() == Some(here) && c.status != CertStatus::PendingTransfer);
    let Some(info) = owned else {
        if copy.is_some_and(|c| c.status == CertStatus::PendingTransfer) {
            return Ok((Verdict::Pending, format!("pending transfer to {here}")));
        }
        return Ok(match source_view(source, id).await? {
            SourceView::Owned(s) if s.status == CertStatus::PendingTransfer => (
                Verdict::Pending,
                "pending transfer, not accepted yet".into(),
            ),
            SourceView::Owned(s) => (
                Verdict::NotTransferred,
                format!("{} in the source, not in the target", s.status),
            ),
            SourceView::Gone(seen) => (
                Verdict::NotTransferred,
                format!("not in the target account, and the source says: {seen}"),
            ),
        });
    };
    if info.status != CertStatus::Active {
        return Ok((Verdict::Inactive, format!("{} in the target", info.status)));
    }
    if let Some(s) = snapshot {
        if let Some(missing) = carried_missing(target, &info.arn, s).await? {
            return Ok(missing);
        }
    }
    if let SourceView::Owned(s) = source_view(source, id).await? {
        if s.status == CertStatus::Active && s.owner.as_deref() != Some(here) {
            return Ok((
                Verdict::StillInSource,
                "the source still holds an ACTIVE copy (retire it once the devices moved)".into(),
            ));
        }
    }
    Ok((Verdict::Ok, String::new()))
}

/// The first kind of carried object missing in the target (policies, then things, then
/// groups), with everything missing of that kind.
async fn carried_missing(
    iot: &Iot,
    arn: &str,
    s: &Snapshot,
) -> Result<Option<(Verdict, String)>, CallFailure> {
    let mut policies = Vec::new();
    let attached = iot.attached_policies(arn).await?;
    for p in &s.attached_policies {
        if !attached.contains(p) {
            policies.push(format!("policy {p} not attached"));
        }
    }
    let mut groups = Vec::new();
    for g in &s.groups {
        if iot.thing_group(&g.name).await?.is_none() {
            groups.push(format!("group {} missing", g.name));
            continue;
        }
        if g.policies.is_empty() {
            continue;
        }
        let on_group = iot.attached_policies(&iot.group_arn(&g.name)).await?;
        for p in &g.policies {
            if !on_group.contains(p) {
                policies.push(format!("policy {p} not attached to group {}", g.name));
            }
        }
    }
    if !policies.is_empty() {
        return Ok(Some((Verdict::MissingPolicy, policies.join("; "))));
    }
    let mut things = Vec::new();
    let principal_things = iot.principal_things(arn).await?;
    for t in &s.things {
        if principal_things.contains(&t.name) {
            continue;
        }
        if iot.thing(&t.name).await?.is_none() {
            things.push(format!("thing {} missing", t.name));
        } else {
            things.push(format!("thing {} not attached", t.name));
        }
    }
    if !things.is_empty() {
        return Ok(Some((Verdict::MissingThing, things.join("; "))));
    }
    for t in &s.things {
        if t.groups.is_empty() {
            continue;
        }
        let member_of = iot.groups_of_thing(&t.name).await?;
        for g in &t.groups {
            if !member_of.contains(g) {
                groups.push(format!("thing {} not in group {g}", t.name));
            }
        }
    }
    if !groups.is_empty() {
        return Ok(Some((Verdict::MissingGroup, groups.join("; "))));
    }
    Ok(None)
}

impl Render for VerifyReport {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "verify {}: {} certificates (read-only on both sides)",
            self.manifest.display(),
            self.certificates
        )?;
        for v in Verdict::ALL {
            let n = self.counts[v.as_str()];
            if n > 0 || *v == Verdict::Ok {
                writeln!(out, "  {:<16} {n}", v.as_str())?;
            }
        }
        if self.without_snapshot > 0 {
            writeln!(
                out,
                "  {} certificates have no snapshot in the transfer ledger (moved without --carry): checked for ownership and status only",
                self.without_snapshot
            )?;
        }
        for c in self.not_ok.iter().take(TEXT_LISTED) {
            writeln!(
                out,
                "  {}  -> {}  {}: {}",
                c.certificate_id, c.target_account, c.category, c.detail
            )?;
        }
        if let Some(p) = &self.out {
            writeln!(out, "  not-ok certificates: {}", p.display())?;
        }
        Ok(())
    }
}
