//! `plan --mode register`: read-only on both sides, whether each certificate can be registered
//! in its target account (the zero-downtime move), in one category per certificate.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::Serialize;

use crate::certificate::CertStatus;
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure};
use crate::manifest::{Manifest, ManifestRow};
use crate::output::Render;
use crate::report::failures::neutralise;

closed_set! {
    /// Whether a certificate can be registered in its target.
    pub enum Registrability {
        /// ACTIVE or INACTIVE in the source, not in the target yet: `register` will copy it.
        Registrable = "registrable",
        /// The target holds a copy already: `register` records it and registers nothing.
        AlreadyRegistered = "already_registered",
        /// Another status in the source (REVOKED, PENDING_TRANSFER, ...): not registered.
        NotRegistrableStatus = "not_registrable_status",
        /// Not in the source account in the row's Region (in another Region, or gone):
        /// registration works within one Region only.
        OtherRegion = "other_region",
        /// AWS refused a read (the detail says what it answered).
        Unknown = "unknown",
    }
}

/// One certificate's assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    /// The certificate.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: String,
    /// Its Region.
    pub region: String,
    /// Its category.
    pub category: Registrability,
    /// Status in the source, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_status: Option<String>,
    /// Why, for a person.
    pub detail: String,
    /// Issued by AWS IoT itself (no CA, `DEFAULT` mode): registering it in another account
    /// is not documented by AWS.
    pub issued_by_aws_iot: bool,
}

/// The plan: counts, the certificates of each category (the first ones), warnings.
#[derive(Debug, Serialize)]
pub struct RegistrationPlan {
    command: &'static str,
    mode: &'static str,
    manifest: PathBuf,
    source_account: String,
    certificates: u64,
    counts: BTreeMap<&'static str, u64>,
    not_registrable: Vec<Registration>,
    issued_by_aws_iot: u64,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_out: Option<PathBuf>,
}

/// At most this many not-registrable certificates are listed in the text and JSON output
/// (all are in `--plan-out`).
const LISTED: usize = 50;

/// Header of the `--plan-out` CSV in register mode.
const CSV_HEADER: [&str; 6] = [
    "certificate_id",
    "target_account",
    "region",
    "category",
    "source_status",
    "detail",
];

/// Assesses every row: DescribeCertificate in the source (status, CA, mode) and in its
/// target (a copy there already?), `concurrency` rows at a time; writes `plan_out` in
/// manifest order.
pub async fn plan(
    manifest_path: &Path,
    manifest: &Manifest,
    source: &AccountClients,
    targets: &[AccountClients],
    concurrency: usize,
    plan_out: Option<&Path>,
) -> Result<RegistrationPlan, Error> {
    let targets = AccountClients::by_account(targets.to_vec());
    let mut csv = match plan_out {
        Some(p) => {
            let mut w = csv::Writer::from_path(p).map_err(|e| io_error(p, e.into()))?;
            w.write_record(CSV_HEADER)
                .map_err(|e| io_error(p, e.into()))?;
            Some(w)
        }
        None => None,
    };
    let mut counts: BTreeMap<&'static str, u64> = Registrability::ALL
        .iter()
        .map(|c| (c.as_str(), 0))
        .collect();
    let mut listed = Vec::new();
    let mut aws_issued = 0u64;
    let mut certificates = 0u64;
    let targets = &targets;
    let mut stream = futures::stream::iter(manifest.rows()?)
        .map(|row| async move {
            let row = row?;
            Ok::<_, Error>(assess(source, targets, &row).await)
        })
        .buffered(concurrency.max(1));
    while let Some(r) = stream.next().await {
        let r = r?;
        certificates += 1;
        *counts.entry(r.category.as_str()).or_default() += 1;
        if r.issued_by_aws_iot && r.category == Registrability::Registrable {
            aws_issued += 1;
        }
        if let (Some(w), Some(p)) = (csv.as_mut(), plan_out) {
            let cells = [
                r.certificate_id.as_str(),
                r.target_account.as_str(),
                r.region.as_str(),
                r.category.as_str(),
                r.source_status.as_deref().unwrap_or(""),
                r.detail.as_str(),
            ];
            w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
                .map_err(|e| io_error(p, e.into()))?;
        }
        if !matches!(
            r.category,
            Registrability::Registrable | Registrability::AlreadyRegistered
        ) && listed.len() < LISTED
        {
            listed.push(r);
        }
    }
    if let (Some(mut w), Some(p)) = (csv, plan_out) {
        w.flush().map_err(|e| io_error(p, e))?;
    }
    let mut warnings = Vec::new();
    if aws_issued > 0 {
        warnings.push(format!(
            "{aws_issued} registrable certificates were issued by AWS IoT itself \
             (CreateKeysAndCertificate: no CA, DEFAULT mode). AWS does not document whether \
             another account may register those; the target may refuse them (register's \
             failure report then shows AWS's answer). Try one with `register --max-items 1` \
             first."
        ));
    }
    Ok(RegistrationPlan {
        command: "plan",
        mode: "register",
        manifest: manifest_path.to_path_buf(),
        source_account: source.account().to_string(),
        certificates,
        counts,
        not_registrable: listed,
        issued_by_aws_iot: aws_issued,
        warnings,
        plan_out: plan_out.map(Path::to_path_buf),
    })
}

async fn assess(
    source: &AccountClients,
    targets: &std::collections::HashMap<String, AccountClients>,
    row: &ManifestRow,
) -> Registration {
    let src = source.for_row(row);
    let mut r = Registration {
        certificate_id: row.certificate_id.clone(),
        target_account: row.target_account.clone(),
        region: src.scope().region.clone(),
        category: Registrability::Unknown,
        source_status: None,
        detail: String::new(),
        issued_by_aws_iot: false,
    };
    let refused = |r: &mut Registration, side: &str, f: CallFailure| {
        r.category = Registrability::Unknown;
        r.detail = format!("{side}: {f}");
    };
    let info = match src.describe(&row.certificate_id).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            r.category = Registrability::OtherRegion;
            r.detail = format!(
                "not in source account {} in {}: registration works within one Region",
                source.account(),
                r.region
            );
            return r;
        }
        Err(f) => {
            refused(&mut r, "source", f);
            return r;
        }
    };
    r.source_status = Some(info.status.to_string());
    r.issued_by_aws_iot =
        info.ca_certificate_id.is_none() && info.mode.as_deref().unwrap_or("DEFAULT") == "DEFAULT";
    if !matches!(info.status, CertStatus::Active | CertStatus::Inactive) {
        r.category = Registrability::NotRegistrableStatus;
        r.detail = format!(
            "{} in the source: only ACTIVE or INACTIVE certificates are registered",
            info.status
        );
        return r;
    }
    let Some(target) = targets.get(&row.target_account) else {
        r.detail = "no credentials for this target account".into();
        return r;
    };
    let there = target.for_row(row);
    match there.describe(&row.certificate_id).await {
        Ok(Some(copy)) if copy.owner.as_deref() == Some(target.account()) => {
            r.category = Registrability::AlreadyRegistered;
            r.detail = format!("{} in the target", copy.status);
        }
        Ok(_) => {
            r.category = Registrability::Registrable;
            r.detail = format!("{} in the source, not in the target yet", info.status);
        }
        Err(f) => refused(&mut r, "target", f),
    }
    r
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Render for RegistrationPlan {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "register plan for {}: {} certificates in source account {} (read-only on both sides; nothing was changed)",
            self.manifest.display(),
            self.certificates,
            self.source_account
        )?;
        for c in Registrability::ALL {
            writeln!(out, "  {:<24} {}", c.as_str(), self.counts[c.as_str()])?;
        }
        for r in &self.not_registrable {
            writeln!(
                out,
                "  {}  -> {}  {}  {}: {}",
                r.certificate_id, r.target_account, r.region, r.category, r.detail
            )?;
        }
        for w in &self.warnings {
            writeln!(out, "warning: {w}")?;
        }
        if let Some(p) = &self.plan_out {
            writeln!(out, "plan CSV: {}", p.display())?;
        }
        Ok(())
    }
}
