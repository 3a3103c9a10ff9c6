//! `plan --mode register`: read-only on both sides, whether each certificate can be registered
//! in its target account (the zero-downtime move), in one category per certificate.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::certificate::CertStatus;
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure};
use crate::manifest::{Manifest, ManifestRow};
use crate::output::Render;
use crate::verdict::{Stopped, Sweep, Verdict, VerdictCsv};

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
        /// AWS could not be asked (it refused or failed a read; the detail says what it
        /// answered), or no credentials were given for the target.
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
    /// Set when a signal stopped the plan before every certificate was assessed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// At most this many not-registrable certificates are listed in the text and JSON output
/// (all are in `--plan-out`).
const LISTED: usize = 50;

/// The register-mode verdict: the source's clients and each target's.
struct Registering<'a> {
    source: &'a AccountClients,
    targets: HashMap<String, AccountClients>,
}

impl Verdict for Registering<'_> {
    type Category = Registrability;
    type Finding = Registration;
    /// Registrable certificates issued by AWS IoT itself.
    type Totals = u64;
    const VERB: &'static str = "planning";
    const LISTED: usize = LISTED;
    const CSV_HEADER: &'static [&'static str] = &[
        "certificate_id",
        "target_account",
        "region",
        "category",
        "source_status",
        "detail",
    ];

    /// DescribeCertificate in the source (status, CA, mode) and in its target (a copy
    /// there already?).
    async fn classify(&self, row: &ManifestRow) -> Registration {
        let src = self.source.for_row(row);
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
                    self.source.account(),
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
        r.issued_by_aws_iot = info.ca_certificate_id.is_none()
            && info.mode.as_deref().unwrap_or("DEFAULT") == "DEFAULT";
        if !matches!(info.status, CertStatus::Active | CertStatus::Inactive) {
            r.category = Registrability::NotRegistrableStatus;
            r.detail = format!(
                "{} in the source: only ACTIVE or INACTIVE certificates are registered",
                info.status
            );
            return r;
        }
        let Some(target) = self.targets.get(&row.target_account) else {
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

    fn categories(r: &Registration) -> &[Registrability] {
        std::slice::from_ref(&r.category)
    }

    fn listed(category: Registrability) -> bool {
        !matches!(
            category,
            Registrability::Registrable | Registrability::AlreadyRegistered
        )
    }

    fn csv_row(r: &Registration) -> Option<Vec<String>> {
        Some(vec![
            r.certificate_id.clone(),
            r.target_account.clone(),
            r.region.clone(),
            r.category.to_string(),
            r.source_status.clone().unwrap_or_default(),
            r.detail.clone(),
        ])
    }

    fn add_up(aws_issued: &mut u64, r: &Registration) {
        if r.issued_by_aws_iot && r.category == Registrability::Registrable {
            *aws_issued += 1;
        }
    }
}

/// Assesses every row of `manifest` (source and target read, nothing changed), writing
/// `plan_out` in manifest order.
pub async fn plan(
    manifest_path: &Path,
    manifest: &Manifest,
    source: &AccountClients,
    targets: &[AccountClients],
    sweep: &Sweep,
    plan_out: Option<VerdictCsv>,
) -> Result<RegistrationPlan, Error> {
    let verdict = Registering {
        source,
        targets: AccountClients::by_account(targets.to_vec()),
    };
    let total = manifest.len() as u64;
    let judged = sweep
        .judge(&verdict, manifest.rows()?, total, plan_out)
        .await?;
    let (not_registrable, _) = judged.first_listed(LISTED);
    let aws_issued = judged.totals;
    let mut warnings = Vec::new();
    if aws_issued > 0 {
        warnings.push(format!(
            "{} issued by AWS IoT itself \
             (CreateKeysAndCertificate: no CA, DEFAULT mode). AWS does not document whether \
             another account may register those; the target may refuse them (register's \
             failure report then shows AWS's answer). Try one with `register --max-items 1` \
             first.",
            crate::output::count(aws_issued, "registrable certificate")
        ));
    }
    Ok(RegistrationPlan {
        command: "plan",
        mode: "register",
        manifest: manifest_path.to_path_buf(),
        source_account: source.account().to_string(),
        certificates: judged.judged,
        counts: judged.counts_by_name(),
        not_registrable,
        issued_by_aws_iot: aws_issued,
        warnings,
        plan_out: judged.csv,
        stopped: judged.stopped,
    })
}

impl Render for RegistrationPlan {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "register plan for {}: {} in source account {} (read-only on both sides; nothing was changed)",
            self.manifest.display(),
            crate::output::count(self.certificates, "certificate"),
            self.source_account
        )?;
        if let Some(s) = &self.stopped {
            s.write_text(out)?;
        }
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
