//! What `select` tells the operator: how many certificates each filter kept, what was left
//! out and why, and the warnings (certificates shared with things outside the selection,
//! things without a certificate).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::iot::OpCounts;
use crate::output::{count, noun_for, Render};

/// At most this many examples of each warning are listed (all are counted).
pub const MAX_EXAMPLES: usize = 100;

/// One step of the selection and what was left after it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FilterCount {
    /// The filter, as the flags that make it (`--thing-group site-a`), or the listing.
    pub filter: String,
    /// Things left after it (thing filters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub things: Option<usize>,
    /// Certificates left after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<usize>,
}

impl FilterCount {
    /// A step that counts things.
    pub fn things(filter: impl Into<String>, n: usize) -> FilterCount {
        FilterCount {
            filter: filter.into(),
            things: Some(n),
            certificates: None,
        }
    }

    /// A step that counts certificates.
    pub fn certificates(filter: impl Into<String>, n: usize) -> FilterCount {
        FilterCount {
            filter: filter.into(),
            things: None,
            certificates: Some(n),
        }
    }
}

/// Certificates the filters matched that are not in the manifest, by reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeftOut {
    /// Certificates that cannot be transferred, by status (`PENDING_TRANSFER`, `REVOKED`,
    /// ...).
    pub status: BTreeMap<String, usize>,
    /// Listed in an `--exclude-manifest`.
    pub excluded: usize,
    /// Beyond `--limit`.
    pub over_limit: usize,
    /// The same id in a second region (a manifest names each id once: the first region
    /// of `--region` keeps it).
    pub in_another_region: usize,
}

/// A selected certificate that is also attached to things outside the selection.
#[derive(Debug, Clone, Serialize)]
pub struct SharedCertificate {
    /// The certificate.
    pub certificate_id: String,
    /// Its region, when several were searched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The things outside the selection it is attached to.
    pub things_outside: Vec<String>,
}

/// What the operator should look at before transferring.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Warnings {
    /// Selected certificates also attached to things outside the selection: transferring
    /// them (with `--detach-things`) takes them from those things too.
    pub shared_certificates: usize,
    /// The first [`MAX_EXAMPLES`] of them.
    pub shared: Vec<SharedCertificate>,
    /// Things of the selection with no certificate attached.
    pub things_without_certificate: usize,
    /// The first [`MAX_EXAMPLES`] of them.
    pub things_without_certificate_names: Vec<String>,
    /// Regions where `--thing-group` does not exist.
    pub thing_group_missing_in: Vec<String>,
}

/// The summary of one `select`.
#[derive(Debug, Clone, Serialize)]
pub struct SelectReport {
    /// Always `select`.
    pub command: &'static str,
    /// Where the manifest went (`-` for stdout).
    pub manifest: String,
    /// The account every row is addressed to.
    pub target_account: String,
    /// The regions searched.
    pub regions: Vec<String>,
    /// Rows written.
    pub selected: usize,
    /// Each step and what it kept, in the order applied.
    pub filters: Vec<FilterCount>,
    /// What was left out, by reason.
    pub left_out: LeftOut,
    /// Warnings.
    pub warnings: Warnings,
    /// Calls per operation.
    pub calls: BTreeMap<String, OpCounts>,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
}

impl Render for SelectReport {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let into = if self.manifest == "-" {
            "stdout".to_string()
        } else {
            self.manifest.clone()
        };
        writeln!(
            out,
            "select: {} for account {} written to {into} ({}, {:.1}s)",
            count(self.selected, "certificate"),
            self.target_account,
            self.regions.join(", "),
            self.elapsed_s
        )?;
        let width = self
            .filters
            .iter()
            .map(|f| f.filter.len())
            .max()
            .unwrap_or(0);
        for f in &self.filters {
            let (n, what) = match (f.certificates, f.things) {
                (Some(n), _) => (n, "certificate"),
                (None, Some(n)) => (n, "thing"),
                (None, None) => continue,
            };
            let what = noun_for(n, what);
            writeln!(out, "  {:<width$}  {n:>8} {what}", f.filter)?;
        }
        let l = &self.left_out;
        if !l.status.is_empty() {
            let parts: Vec<String> = l.status.iter().map(|(s, n)| format!("{n} {s}")).collect();
            writeln!(
                out,
                "left out: {} (only ACTIVE and INACTIVE certificates can be transferred)",
                parts.join(", ")
            )?;
        }
        if l.in_another_region > 0 {
            writeln!(
                out,
                "left out: {} already selected in an earlier --region (a manifest names each id once)",
                count(l.in_another_region, "certificate")
            )?;
        }
        let w = &self.warnings;
        if w.shared_certificates > 0 {
            writeln!(
                out,
                "warning: {} also attached to things outside the selection \
                 (transfer --detach-things detaches them from those things too):",
                count(w.shared_certificates, "certificate")
            )?;
            for s in w.shared.iter().take(10) {
                writeln!(
                    out,
                    "  {}: {}",
                    s.certificate_id,
                    s.things_outside.join(", ")
                )?;
            }
            if w.shared_certificates > 10 {
                writeln!(out, "  ... ({} more)", w.shared_certificates - 10)?;
            }
        }
        if w.things_without_certificate > 0 {
            let names: Vec<&str> = w
                .things_without_certificate_names
                .iter()
                .take(10)
                .map(String::as_str)
                .collect();
            let more = if w.things_without_certificate > 10 {
                format!(", ... ({} more)", w.things_without_certificate - 10)
            } else {
                String::new()
            };
            writeln!(
                out,
                "warning: {} of the selection without a certificate: {}{more}",
                count(w.things_without_certificate, "thing"),
                names.join(", ")
            )?;
        }
        if !w.thing_group_missing_in.is_empty() {
            writeln!(
                out,
                "warning: the thing group does not exist in {}",
                w.thing_group_missing_in.join(", ")
            )?;
        }
        Ok(())
    }
}
