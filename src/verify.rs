//! `verify`: read-only on both sides, whether each certificate of a migration works in its
//! target account — owned there, ACTIVE, with everything it carried in place — in one
//! category per certificate, the first that applies.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::carry::snapshot::{CarriedGroup, Snapshot};
use crate::certificate::CertStatus;
use crate::devices::{device_columns, held_by, waiting, Device, Lookup, NO_THING};
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure, Iot};
use crate::lifecycle::check::{source_view, SourceView};
use crate::manifest::{Manifest, ManifestRow};
use crate::output::Render;
use crate::verdict::{Stopped, Sweep, Verdict, VerdictCsv};

closed_set! {
    /// Where a certificate stands, in the order the categories are tried.
    pub enum Standing {
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
        /// `--require-connected`: the device of one of its things is not connected in the
        /// target (or it has no thing, so none can be seen).
        NotConnected = "not_connected",
        /// The source still holds an ACTIVE copy (register mode, before retire).
        StillInSource = "still_in_source",
        /// Owned by the target, ACTIVE, everything carried in place.
        Ok = "ok",
        /// AWS could not be asked (it refused or failed a read): the detail says what it
        /// answered.
        Unknown = "unknown",
    }
}

/// One certificate's standing.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The certificate.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: String,
    /// Its standing.
    pub category: Standing,
    /// What is missing or wrong, for a person (empty when ok).
    pub detail: String,
    /// Whether the ledger had a snapshot of what it carried.
    #[serde(skip)]
    pub had_snapshot: bool,
    /// Its things' devices, when they were looked at (`--require-connected`, or a handoff
    /// ledger beside the manifest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
}

/// What `verify` found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    command: &'static str,
    manifest: PathBuf,
    certificates: u64,
    /// Certificates per standing.
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
    /// Set when a signal stopped the run before every certificate was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

impl VerifyReport {
    /// Whether every certificate is ok.
    pub fn all_ok(&self) -> bool {
        self.counts[Standing::Ok.as_str()] == self.certificates
    }
}

/// Not-ok certificates listed in the JSON output (the `--out` CSV has them all).
const LISTED: usize = 1000;
/// Not-ok certificates listed in the text output.
const TEXT_LISTED: usize = 20;

/// What `verify` reads with; the verdict itself.
pub struct Sides<'a> {
    /// The source account's clients.
    pub source: &'a AccountClients,
    /// The target accounts' clients, by account.
    pub targets: HashMap<String, AccountClients>,
    /// What each certificate carried (from the transfer ledger), by id.
    pub snapshots: HashMap<String, Snapshot>,
    /// What is asked of each thing's device: its handoff execution when the manifest was
    /// handed off; with `--require-connected` its connectivity in the target, a certificate
    /// whose device is not connected then counting as `not_connected`.
    pub lookup: Lookup,
}

impl Verdict for Sides<'_> {
    type Category = Standing;
    type Finding = Checked;
    /// Certificates without a snapshot.
    type Totals = u64;
    const VERB: &'static str = "verifying";
    const LISTED: usize = LISTED;
    const CSV_HEADER: &'static [&'static str] = &[
        "certificate_id",
        "target_account",
        "category",
        "detail",
        "things",
        "handoff_execution",
        "connected",
        "connected_since",
    ];

    async fn classify(&self, row: &ManifestRow) -> Checked {
        let snapshot = self.snapshots.get(&row.certificate_id);
        let target = self.targets[&row.target_account].for_row(row);
        let source = self.source.for_row(row);
        let mut devices = Vec::new();
        let (category, detail) = match standing(source, target, row, snapshot).await {
            Ok((category, detail)) if self.lookup.asks() => {
                // Only a certificate the target owns can have a device connected with it.
                let owned = !matches!(category, Standing::NotTransferred | Standing::Pending);
                let lookup = &self.lookup;
                match lookup
                    .things(source, target, row, snapshot, Some(owned))
                    .await
                {
                    Ok(things) => match lookup.devices(source, target, things).await {
                        Ok(found) => {
                            devices = found;
                            // Decided before still_in_source: the device's own evidence.
                            match category {
                                Standing::StillInSource | Standing::Ok if lookup.connectivity => {
                                    not_connected(&devices).unwrap_or((category, detail))
                                }
                                _ => (category, detail),
                            }
                        }
                        Err(f) => (Standing::Unknown, f.to_string()),
                    },
                    Err(f) => (Standing::Unknown, f.to_string()),
                }
            }
            Ok(v) => v,
            Err(f) => (Standing::Unknown, f.to_string()),
        };
        Checked {
            certificate_id: row.certificate_id.clone(),
            target_account: row.target_account.clone(),
            category,
            detail,
            had_snapshot: snapshot.is_some(),
            devices,
        }
    }

    fn categories(c: &Checked) -> &[Standing] {
        std::slice::from_ref(&c.category)
    }

    fn listed(category: Standing) -> bool {
        category != Standing::Ok
    }

    fn csv_row(c: &Checked) -> Option<Vec<String>> {
        (c.category != Standing::Ok).then(|| {
            let mut row = vec![
                c.certificate_id.clone(),
                c.target_account.clone(),
                c.category.to_string(),
                c.detail.clone(),
            ];
            row.extend(device_columns(&c.devices));
            row
        })
    }

    fn add_up(without_snapshot: &mut u64, c: &Checked) {
        *without_snapshot += u64::from(!c.had_snapshot);
    }
}

/// Verifies every manifest row whose target `sides` has credentials for, writing the not-ok
/// ones to `out` (in manifest order).
pub async fn verify(
    manifest_path: &Path,
    manifest: &Manifest,
    sides: &Sides<'_>,
    sweep: &Sweep,
    out: Option<VerdictCsv>,
) -> Result<VerifyReport, Error> {
    // Rows of target accounts without credentials here (one --target-profile, several
    // targets) are left to another run: neither checked nor counted.
    let ours = |account: &str| sides.targets.contains_key(account);
    let total = manifest
        .targets()
        .iter()
        .filter(|t| ours(&t.account))
        .map(|t| t.certificates as u64)
        .sum();
    let rows = manifest
        .rows()?
        .filter(|row| row.as_ref().map_or(true, |r| ours(&r.target_account)));
    let judged = sweep.judge(sides, rows, total, out).await?;
    let (not_ok, not_ok_truncated) = judged.first_listed(LISTED);
    Ok(VerifyReport {
        command: "verify",
        manifest: manifest_path.to_path_buf(),
        certificates: judged.judged,
        counts: judged.counts_by_name(),
        without_snapshot: judged.totals,
        not_ok,
        not_ok_truncated,
        out: judged.csv,
        stopped: judged.stopped,
    })
}

/// `not_connected` when a device is not connected in the target, or there is none.
fn not_connected(devices: &[Device]) -> Option<(Standing, String)> {
    if devices.is_empty() {
        return Some((Standing::NotConnected, NO_THING.into()));
    }
    waiting(devices).map(|w| (Standing::NotConnected, w))
}

async fn standing(
    source: &Iot,
    target: &Iot,
    row: &ManifestRow,
    snapshot: Option<&Snapshot>,
) -> Result<(Standing, String), CallFailure> {
    let id = &row.certificate_id;
    let here = target.scope().account.as_str();
    let copy = target.describe(id).await?;
    let owned = copy.as_ref().filter(|c| held_by(c, here));
    let Some(info) = owned else {
        if copy.is_some_and(|c| c.status == CertStatus::PendingTransfer) {
            return Ok((Standing::Pending, format!("pending transfer to {here}")));
        }
        return Ok(match source_view(source, id).await? {
            SourceView::Owned(s) if s.status == CertStatus::PendingTransfer => (
                Standing::Pending,
                "pending transfer, not accepted yet".into(),
            ),
            SourceView::Owned(s) => (
                Standing::NotTransferred,
                format!("{} in the source, not in the target", s.status),
            ),
            SourceView::Gone(seen) => (
                Standing::NotTransferred,
                format!("not in the target account, and the source says: {seen}"),
            ),
        });
    };
    if info.status != CertStatus::Active {
        return Ok((Standing::Inactive, format!("{} in the target", info.status)));
    }
    if let Some(s) = snapshot {
        if let Some(missing) = carried_missing(target, &info.arn, s).await? {
            return Ok(missing);
        }
    }
    if let SourceView::Owned(s) = source_view(source, id).await? {
        if s.status == CertStatus::Active && s.owner.as_deref() != Some(here) {
            return Ok((
                Standing::StillInSource,
                "the source still holds an ACTIVE copy (retire it once the devices moved)".into(),
            ));
        }
    }
    Ok((Standing::Ok, String::new()))
}

/// The first kind of carried object missing in the target (policies, then things, then
/// groups), with everything missing of that kind. Group memberships compare as direct
/// memberships on both sides: the deepest group of each hierarchy the thing is listed in.
async fn carried_missing(
    iot: &Iot,
    arn: &str,
    s: &Snapshot,
) -> Result<Option<(Standing, String)>, CallFailure> {
    let mut policies = Vec::new();
    let attached = iot.attached_policies(arn).await?;
    for p in &s.attached_policies {
        if !attached.contains(p) {
            policies.push(format!("policy {p} not attached"));
        }
    }
    let mut groups = Vec::new();
    // What the target says of each group it was asked about: `None` for a dynamic group.
    let mut described: HashMap<String, Option<CarriedGroup>> = HashMap::new();
    for g in &s.groups {
        let Some(found) = iot.thing_group(&g.name).await? else {
            groups.push(format!("group {} missing", g.name));
            continue;
        };
        described.insert(g.name.clone(), found);
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
        return Ok(Some((Standing::MissingPolicy, policies.join("; "))));
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
    if s.things.iter().any(|t| t.exclusive) {
        let attached = iot.principal_things_v2(arn).await?;
        for t in s.things.iter().filter(|t| t.exclusive) {
            if attached.iter().any(|(name, e)| *name == t.name && !e) {
                things.push(format!(
                    "thing {} attached, but not exclusively (it was in the source)",
                    t.name
                ));
            }
        }
    }
    if !things.is_empty() {
        return Ok(Some((Standing::MissingThing, things.join("; "))));
    }
    for t in &s.things {
        let carried = s.direct_groups(t);
        if carried.is_empty() {
            continue;
        }
        let listed = iot.groups_of_thing(&t.name).await?;
        let mut statics = Vec::new();
        for g in &listed {
            if !described.contains_key(g) {
                let found = iot.thing_group(g).await?.flatten();
                described.insert(g.clone(), found);
            }
            if matches!(described.get(g), Some(Some(_))) {
                statics.push(g.clone());
            }
        }
        let in_target = Snapshot {
            groups: described.values().flatten().cloned().collect(),
            ..Default::default()
        };
        let direct = in_target.deepest(&statics);
        for g in carried {
            if direct.contains(&g) {
                continue;
            }
            if statics.iter().any(|l| l == g) {
                groups.push(format!(
                    "thing {} is in a group below {g}, not directly in {g}",
                    t.name
                ));
            } else {
                groups.push(format!("thing {} not in group {g}", t.name));
            }
        }
    }
    if !groups.is_empty() {
        return Ok(Some((Standing::MissingGroup, groups.join("; "))));
    }
    Ok(None)
}

impl Render for VerifyReport {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "verify {}: {} (read-only on both sides)",
            self.manifest.display(),
            crate::output::count(self.certificates, "certificate")
        )?;
        if let Some(s) = &self.stopped {
            s.write_text(out)?;
        }
        for v in Standing::ALL {
            let n = self.counts[v.as_str()];
            if n > 0 || *v == Standing::Ok {
                writeln!(out, "  {:<16} {n}", v.as_str())?;
            }
        }
        if self.without_snapshot > 0 {
            writeln!(
                out,
                "  {} no snapshot in the transfer ledger (moved without --carry): checked for ownership and status only",
                match self.without_snapshot {
                    1 => "1 certificate has".to_string(),
                    n => format!("{n} certificates have"),
                }
            )?;
        }
        for c in self.not_ok.iter().take(TEXT_LISTED) {
            writeln!(
                out,
                "  {}  -> {}  {}: {}",
                c.certificate_id, c.target_account, c.category, c.detail
            )?;
            for d in &c.devices {
                writeln!(out, "      device {}: {}", d.thing, d.seen())?;
            }
        }
        if let Some(p) = &self.out {
            writeln!(out, "  not-ok certificates: {}", p.display())?;
        }
        Ok(())
    }
}
