//! `plan --mode register`: read-only on both sides, whether each certificate can be registered
//! in its target account (the zero-downtime move), in one category per certificate. The
//! certificates AWS may refuse (by the 2021 developer guide's rules, not confirmed for
//! today's AWS) have categories of their own, and role aliases in the source are warned of.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::carry::once::Once;
use crate::certificate::CertStatus;
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure};
use crate::manifest::{Manifest, ManifestRow};
use crate::output::Render;
use crate::pacer::Scope;
use crate::verdict::{Stopped, Sweep, Verdict, VerdictCsv};

closed_set! {
    /// Whether a certificate can be registered in its target.
    pub enum Registrability {
        /// ACTIVE or INACTIVE in the source, not in the target yet: `register` will copy it
        /// (with the source's status, unless `--status` says otherwise).
        Registrable = "registrable",
        /// The target holds a copy already: `register` records it and registers nothing.
        AlreadyRegistered = "already_registered",
        /// Signed by a CA the source registered in DEFAULT mode: AWS may refuse it in another
        /// account (UNCONFIRMED; the 2021 developer guide says so).
        CaInDefaultMode = "ca_in_default_mode",
        /// Issued by AWS IoT itself (no CA, DEFAULT mode): AWS may refuse it in another
        /// account (UNCONFIRMED; the 2021 guide counts the Amazon root CA as registered).
        IssuedByAwsIot = "issued_by_aws_iot",
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
    /// Certificates `register` will try (registrable, or AWS may refuse them) that are
    /// INACTIVE in the source: `register` keeps them INACTIVE (unless `--status ACTIVE`).
    inactive_in_source: u64,
    /// The source account's role aliases (ListRoleAliases), per region that has some.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    role_aliases: BTreeMap<String, Vec<String>>,
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

/// The register-mode verdict: the source's clients and each target's, and the mode of each
/// CA the source registered (read once per run).
struct Registering<'a> {
    source: &'a AccountClients,
    targets: HashMap<String, AccountClients>,
    ca_modes: Once<(Scope, String), Option<String>>,
}

impl Verdict for Registering<'_> {
    type Category = Registrability;
    type Finding = Registration;
    /// Certificates `register` will try that are INACTIVE in the source.
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
    /// there already?); DescribeCACertificate of its CA in the source (once per CA).
    async fn classify(&self, row: &ManifestRow) -> Registration {
        let src = self.source.for_row(row);
        let mut r = Registration {
            certificate_id: row.certificate_id.clone(),
            target_account: row.target_account.clone(),
            region: src.scope().region.clone(),
            category: Registrability::Unknown,
            source_status: None,
            detail: String::new(),
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
                return r;
            }
            Ok(_) => {}
            Err(f) => {
                refused(&mut r, "target", f);
                return r;
            }
        }
        let mode = info.mode.as_deref().unwrap_or("DEFAULT");
        match (&info.ca_certificate_id, mode) {
            (Some(ca), _) => {
                let key = (src.scope().clone(), ca.clone());
                let ca_mode = self
                    .ca_modes
                    .get(&key, || src.ca_certificate_mode(ca))
                    .await;
                match ca_mode {
                    Ok(Some(m)) if m == "DEFAULT" => {
                        r.category = Registrability::CaInDefaultMode;
                        r.detail = format!(
                            "signed by CA certificate {ca}, registered in DEFAULT mode in the \
                             source account: AWS may refuse to register it in another account \
                             (the 2021 developer guide; not confirmed for today's AWS)"
                        );
                    }
                    Ok(_) => registrable(&mut r, &info.status),
                    Err(f) => refused(&mut r, "source (DescribeCACertificate)", f),
                }
            }
            (None, "DEFAULT") => {
                r.category = Registrability::IssuedByAwsIot;
                r.detail = "issued by AWS IoT itself (CreateKeysAndCertificate: no CA, DEFAULT \
                    mode): AWS may refuse to register it in another account (the 2021 \
                    developer guide counts the Amazon root CA as registered; not confirmed \
                    for today's AWS)"
                    .into();
            }
            (None, _) => registrable(&mut r, &info.status),
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

    fn add_up(inactive: &mut u64, r: &Registration) {
        // Every certificate `register` will try, whether AWS may refuse it or not.
        let tried = matches!(
            r.category,
            Registrability::Registrable
                | Registrability::CaInDefaultMode
                | Registrability::IssuedByAwsIot
        );
        if tried && r.source_status.as_deref() == Some("INACTIVE") {
            *inactive += 1;
        }
    }
}

fn registrable(r: &mut Registration, status: &CertStatus) {
    r.category = Registrability::Registrable;
    r.detail = format!("{status} in the source, not in the target yet");
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
        ca_modes: Once::default(),
    };
    let mut warnings = Vec::new();
    let mut role_aliases = BTreeMap::new();
    for iot in source.all() {
        let region = &iot.scope().region;
        match iot.role_aliases().await {
            Ok(names) if names.is_empty() => {}
            Ok(names) => {
                role_aliases.insert(region.clone(), names);
            }
            Err(f) => warnings.push(format!(
                "could not list the source's role aliases in {region} ({f}): devices that get \
                 AWS credentials from the credentials provider may lose them after the move, \
                 see below"
            )),
        }
    }
    if !role_aliases.is_empty() {
        let named: Vec<String> = role_aliases
            .iter()
            .map(|(region, names)| format!("{region}: {}", names.join(", ")))
            .collect();
        warnings.push(format!(
            "the source account has role aliases ({}): devices that get temporary AWS \
             credentials from the credentials provider (iot:CredentialProvider) with these \
             certificates may lose them after a register move: the 2021 developer guide says \
             certificates registered in several accounts cannot be used there (not confirmed \
             for today's AWS). Check those devices, or use transfer for them",
            named.join("; ")
        ));
    }
    let total = manifest.len() as u64;
    let judged = sweep
        .judge(&verdict, manifest.rows()?, total, plan_out)
        .await?;
    let (not_registrable, _) = judged.first_listed(LISTED);
    let inactive = judged.totals;
    let counts = judged.counts_by_name();
    let may_refuse = counts[Registrability::CaInDefaultMode.as_str()]
        + counts[Registrability::IssuedByAwsIot.as_str()];
    if may_refuse > 0 {
        warnings.push(format!(
            "{} may be refused by the target (ca_in_default_mode, issued_by_aws_iot; rules \
             of the 2021 developer guide, not confirmed for today's AWS): `register` tries \
             them and its failure report shows AWS's answer. Try one with `register \
             --max-items 1` first.",
            crate::output::count(may_refuse, "certificate")
        ));
    }
    Ok(RegistrationPlan {
        command: "plan",
        mode: "register",
        manifest: manifest_path.to_path_buf(),
        source_account: source.account().to_string(),
        certificates: judged.judged,
        counts,
        not_registrable,
        inactive_in_source: inactive,
        role_aliases,
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
        if self.inactive_in_source > 0 {
            writeln!(
                out,
                "  of those register will try, {} INACTIVE in the source: `register` keeps them INACTIVE in the target (--status ACTIVE activates them)",
                self.inactive_in_source
            )?;
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
