//! The plan: a read-only category for every certificate of a manifest (what `transfer` would
//! do with it, from the same [`observe`] that `transfer` acts on), and an estimate of how long
//! the transfer will take at the configured rates.
//!
//! Only read-only calls are made (DescribeCertificate, ListAttachedPolicies,
//! ListPrincipalThings, ListOutgoingCertificates), paced like every other run. No ledger is
//! opened or locked: a plan can run beside a transfer.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::time::Instant;

use crate::certificate::CertStatus;
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure, Iot, OpCounts};
use crate::lifecycle::{observe, Observed};
use crate::manifest::{Manifest, ManifestRow};
use crate::output::{count, Render};
use crate::pacer::{Operation, RateSettings, Scope};
use crate::report::Summary;
use crate::session::Session;
use crate::verdict::{Listing, Stopped, Sweep, Verdict, VerdictCsv};

/// Certificates listed in the text output, each once (the CSV has them all).
const TEXT_LIST_LIMIT: usize = 50;
/// Certificates listed per category in the JSON output (the CSV has them all).
const JSON_LIST_LIMIT: usize = 1000;

closed_set! {
    /// What a certificate needs before (or instead of) its transfer. A certificate is in one
    /// category, except that needs-deactivation, has-policies and has-things combine.
    pub enum Need {
        /// INACTIVE, nothing attached: transfers as it is.
        Ready = "ready",
        /// ACTIVE: needs `--deactivate` (its devices disconnect).
        NeedsDeactivation = "needs_deactivation",
        /// Policies attached: needs `--detach-policies`.
        HasPolicies = "has_policies",
        /// Things attached: needs `--detach-things`.
        HasThings = "has_things",
        /// Already pending transfer to its target: will be recorded as transferred.
        AlreadyPending = "already_pending",
        /// Pending transfer to another account: that transfer must be cancelled first.
        PendingToOther = "pending_to_other",
        /// REVOKED or another status that cannot be transferred.
        NotTransferable = "not_transferable",
        /// Not found in the source account (in that region).
        NotFound = "not_found",
        /// Already owned by its target account.
        SameAccount = "same_account",
        /// AWS could not be asked (it refused or failed a read): the detail says what it
        /// answered.
        Unknown = "unknown",
    }
}

impl Need {
    /// The `transfer` flag this need asks for, if a flag meets it.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Need::NeedsDeactivation => Some("--deactivate"),
            Need::HasPolicies => Some("--detach-policies"),
            Need::HasThings => Some("--detach-things"),
            _ => None,
        }
    }

    /// Whether `transfer` moves a certificate of this category (given the flags).
    fn transferable(self) -> bool {
        matches!(
            self,
            Need::Ready
                | Need::NeedsDeactivation
                | Need::HasPolicies
                | Need::HasThings
                | Need::AlreadyPending
        )
    }

    fn title(self) -> &'static str {
        match self {
            Need::Ready => "ready to transfer",
            Need::NeedsDeactivation => "ACTIVE: needs --deactivate (devices using them disconnect)",
            Need::HasPolicies => "policies attached: needs --detach-policies",
            Need::HasThings => "things attached: needs --detach-things",
            Need::AlreadyPending => {
                "already pending to their target (recorded as transferred, no call)"
            }
            Need::PendingToOther => "pending to another account: cancel that transfer first",
            Need::NotTransferable => "status cannot be transferred",
            Need::NotFound => "not found in the source account",
            Need::SameAccount => "already owned by their target account",
            Need::Unknown => "AWS could not be asked (the detail says what it answered)",
        }
    }
}

/// What the plan found about one certificate.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// Certificate id.
    pub certificate_id: String,
    /// Target account of the row.
    pub target_account: String,
    /// Region the certificate is looked for in.
    pub region: String,
    /// Categories (several only for the needs-deactivation / has-policies / has-things mix).
    pub categories: Vec<Need>,
    /// Status as AWS reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Attached policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Attached things.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub things: Vec<String>,
    /// Account a pending transfer goes to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_to: Option<String>,
    /// Calls `transfer` will make for this certificate (with the flags it needs).
    pub calls_needed: u64,
    /// Error or remark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip)]
    calls: BTreeMap<Operation, u64>,
    #[serde(skip)]
    scope: Scope,
}

impl Assessment {
    fn new(row: &ManifestRow, scope: &Scope) -> Self {
        Assessment {
            certificate_id: row.certificate_id.clone(),
            target_account: row.target_account.clone(),
            region: scope.region.clone(),
            categories: Vec::new(),
            status: None,
            policies: Vec::new(),
            things: Vec::new(),
            pending_to: None,
            calls_needed: 0,
            detail: None,
            calls: BTreeMap::from([(Operation::DescribeCertificate, 1)]),
            scope: scope.clone(),
        }
    }

    fn unknown(mut self, f: &CallFailure) -> Self {
        self.categories = vec![Need::Unknown];
        self.detail = Some(f.to_string());
        self
    }

    fn category_names(&self) -> String {
        self.categories
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(";")
    }

    /// What the certificate needs, in one phrase: the flags with what each is for, or why
    /// it will not move.
    fn needs(&self) -> String {
        let mut flags = Vec::new();
        for &c in &self.categories {
            let why = match c {
                Need::Ready => return "ready".into(),
                Need::NeedsDeactivation => self.status.clone().unwrap_or_default(),
                Need::HasPolicies => self.policies.join(", "),
                Need::HasThings => self.things.join(", "),
                Need::AlreadyPending => {
                    return format!(
                        "already pending to {}: recorded as transferred, no call",
                        self.pending_to()
                    )
                }
                Need::PendingToOther => {
                    return format!(
                        "pending to {}: cancel that transfer first",
                        self.pending_to()
                    )
                }
                Need::NotTransferable => {
                    return format!(
                        "{}: cannot be transferred",
                        self.status.as_deref().unwrap_or("its status")
                    )
                }
                Need::NotFound => return "not found in the source account".into(),
                Need::SameAccount => return "already owned by its target account".into(),
                Need::Unknown => {
                    return format!(
                        "unknown: AWS could not be asked ({})",
                        self.detail.as_deref().unwrap_or("no answer")
                    )
                }
            };
            if let Some(flag) = c.flag() {
                flags.push(format!("{flag} ({why})"));
            }
        }
        format!("needs {}", flags.join(" "))
    }

    fn pending_to(&self) -> &str {
        self.pending_to
            .as_deref()
            .unwrap_or("an account ListOutgoingCertificates does not show")
    }
}

/// Looks at one certificate with read-only calls: the plan's classify function.
async fn assess(iot: &Iot, row: &ManifestRow, started: Instant) -> Assessment {
    let mut a = Assessment::new(row, iot.scope());
    let observed = match observe(iot, row).await {
        Ok(o) => o,
        Err(f) => return a.unknown(&f),
    };
    a.calls_needed = 1;
    let info = match observed {
        Observed::NotFound => {
            a.categories = vec![Need::NotFound];
            return a;
        }
        Observed::SameAccount(info) => {
            a.status = Some(info.status.to_string());
            a.categories = vec![Need::SameAccount];
            return a;
        }
        Observed::Pending(info) => {
            a.status = Some(info.status.to_string());
            match iot.pending_target(&row.certificate_id, started).await {
                Ok(to) => {
                    let ours = to.as_deref() == Some(row.target_account.as_str());
                    a.categories = vec![if ours {
                        Need::AlreadyPending
                    } else {
                        Need::PendingToOther
                    }];
                    a.pending_to = to;
                }
                Err(f) => return a.unknown(&f),
            }
            return a;
        }
        Observed::NotTransferable(info) => {
            a.status = Some(info.status.to_string());
            a.categories = vec![Need::NotTransferable];
            return a;
        }
        Observed::Transferable {
            info,
            policies,
            things,
        } => {
            a.status = Some(info.status.to_string());
            a.policies = policies;
            a.things = things;
            info
        }
    };
    let active = info.status == CertStatus::Active;
    if active {
        a.categories.push(Need::NeedsDeactivation);
    }
    if !a.policies.is_empty() {
        a.categories.push(Need::HasPolicies);
    }
    if !a.things.is_empty() {
        a.categories.push(Need::HasThings);
    }
    if a.categories.is_empty() {
        a.categories.push(Need::Ready);
    }
    // What transfer will send: observe, prepare, transfer.
    let mut add = |op, n: u64| {
        if n > 0 {
            *a.calls.entry(op).or_default() += n;
        }
    };
    add(Operation::ListAttachedPolicies, 1);
    add(Operation::ListPrincipalThings, 1);
    add(Operation::UpdateCertificate, active as u64);
    add(Operation::DetachPolicy, a.policies.len() as u64);
    add(Operation::DetachThingPrincipal, a.things.len() as u64);
    add(Operation::TransferCertificate, 1);
    a.calls_needed = a.calls.values().sum();
    a
}

/// The duration estimate of one (account, region).
#[derive(Debug, Clone, Serialize)]
pub struct ScopeEstimate {
    /// Account.
    pub account: String,
    /// Region.
    pub region: String,
    /// Calls per operation.
    pub calls: BTreeMap<String, u64>,
    /// The operation whose quota sets the pace.
    pub binding_operation: Option<String>,
    /// Its configured rate.
    pub binding_rate: Option<f64>,
    /// Seconds at the configured rates: the slowest operation, since each has its own quota.
    pub seconds: f64,
}

/// The duration estimate of the whole transfer.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Calls in all.
    pub calls: u64,
    /// Seconds: the slowest (account, region), since they are paced independently.
    pub seconds: f64,
    /// Per (account, region).
    pub scopes: Vec<ScopeEstimate>,
}

/// Duration ≈ max over operations of calls / rate, per scope; scopes run side by side.
fn estimate(calls: &CallsNeeded, settings: &RateSettings) -> Estimate {
    let scopes: Vec<ScopeEstimate> = calls
        .iter()
        .map(|(scope, ops)| {
            let binding = ops
                .iter()
                .map(|(op, n)| (*op, *n as f64 / settings.ceiling(*op)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            ScopeEstimate {
                account: scope.account.clone(),
                region: scope.region.clone(),
                calls: ops
                    .iter()
                    .map(|(op, n)| (op.name().to_string(), *n))
                    .collect(),
                binding_operation: binding.map(|(op, _)| op.name().to_string()),
                binding_rate: binding.map(|(op, _)| settings.ceiling(op)),
                seconds: binding.map(|(_, s)| s).unwrap_or(0.0),
            }
        })
        .collect();
    Estimate {
        calls: calls.values().flat_map(|ops| ops.values()).sum(),
        seconds: scopes.iter().map(|s| s.seconds).fold(0.0, f64::max),
        scopes,
    }
}

/// The plan's verdict: the source account's clients, and when the plan started (for
/// ListOutgoingCertificates' cache).
struct Planning<'a> {
    clients: &'a AccountClients,
    started: Instant,
}

/// Calls `transfer` will make, per (account, region) and operation.
type CallsNeeded = BTreeMap<Scope, BTreeMap<Operation, u64>>;

impl Verdict for Planning<'_> {
    type Category = Need;
    type Finding = Assessment;
    type Totals = CallsNeeded;
    const VERB: &'static str = "planning";
    const LISTED: usize = JSON_LIST_LIMIT;
    const CSV_HEADER: &'static [&'static str] = &[
        "certificate_id",
        "target_account",
        "region",
        "category",
        "status",
        "policies",
        "things",
        "pending_to",
        "calls_needed",
        "detail",
    ];

    async fn classify(&self, row: &ManifestRow) -> Assessment {
        assess(self.clients.for_row(row), row, self.started).await
    }

    fn categories(a: &Assessment) -> &[Need] {
        &a.categories
    }

    fn csv_row(a: &Assessment) -> Option<Vec<String>> {
        Some(vec![
            a.certificate_id.clone(),
            a.target_account.clone(),
            a.region.clone(),
            a.category_names(),
            a.status.clone().unwrap_or_default(),
            a.policies.join(";"),
            a.things.join(";"),
            a.pending_to.clone().unwrap_or_default(),
            a.calls_needed.to_string(),
            a.detail.clone().unwrap_or_default(),
        ])
    }

    fn add_up(calls: &mut CallsNeeded, a: &Assessment) {
        let ops = calls.entry(a.scope.clone()).or_default();
        for (op, n) in &a.calls {
            *ops.entry(*op).or_default() += n;
        }
        if a.categories.contains(&Need::AlreadyPending) {
            // One listing per scope serves every pending certificate.
            ops.entry(Operation::ListOutgoingCertificates).or_insert(1);
        }
    }
}

/// The plan's output.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    command: &'static str,
    manifest: PathBuf,
    source_account: String,
    certificates: u64,
    categories: BTreeMap<&'static str, Listing<Assessment>>,
    /// The flags `transfer` needs for the whole manifest (`--deactivate`,
    /// `--detach-policies`, `--detach-things`), in that order; empty: none.
    flags_needed: Vec<&'static str>,
    estimate: Estimate,
    /// The read-only calls this plan made.
    calls_made: BTreeMap<String, OpCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_out: Option<PathBuf>,
    elapsed_s: f64,
    /// Set when a signal stopped the plan before every certificate was assessed.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<Stopped>,
    /// The first certificates, each once, in manifest order (the text lists them).
    #[serde(skip)]
    first: Vec<Assessment>,
    /// Whether more certificates were assessed than `first` holds.
    #[serde(skip)]
    more: bool,
}

impl PlanReport {
    /// Whether a signal stopped the plan early.
    pub fn stopped(&self) -> bool {
        self.stopped.is_some()
    }
}

/// Assesses every certificate of `manifest` with read-only calls through `clients`,
/// writing each to `csv` (in manifest order).
pub async fn make(
    manifest_path: &Path,
    manifest: &Manifest,
    session: &Session,
    clients: &AccountClients,
    sweep: &Sweep,
    csv: Option<VerdictCsv>,
) -> Result<PlanReport, Error> {
    let started_wall = std::time::Instant::now();
    let verdict = Planning {
        clients,
        started: Instant::now(),
    };
    let judged = sweep
        .judge(&verdict, manifest.rows()?, manifest.len() as u64, csv)
        .await?;
    let (first, more) = judged.first_listed(TEXT_LIST_LIMIT);
    let flags_needed = Need::ALL
        .iter()
        .filter(|c| judged.count(**c) > 0)
        .filter_map(|c| c.flag())
        .collect();
    Ok(PlanReport {
        command: "plan",
        manifest: manifest_path.to_path_buf(),
        source_account: clients.account().to_string(),
        certificates: judged.judged,
        categories: judged
            .listings
            .into_iter()
            .map(|(c, l)| (c.as_str(), l))
            .collect(),
        flags_needed,
        estimate: estimate(&judged.totals, &session.settings.rates),
        calls_made: Summary::calls_from(session.ctx.counts()),
        plan_out: judged.csv,
        elapsed_s: started_wall.elapsed().as_secs_f64(),
        stopped: judged.stopped,
        first,
        more,
    })
}

impl Render for PlanReport {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let r = self;
        writeln!(
            out,
            "plan for {}: {} in source account {} (read-only; nothing was changed)",
            r.manifest.display(),
            count(r.certificates, "certificate"),
            r.source_account
        )?;
        if let Some(s) = &r.stopped {
            s.write_text(out)?;
        }
        // The counts per category (a certificate may need several flags), then each
        // certificate once with what it needs.
        let width = Need::ALL
            .iter()
            .map(|c| c.as_str().len())
            .max()
            .unwrap_or(0);
        for &c in Need::ALL {
            let n = r.categories[c.as_str()].count;
            if n > 0 {
                writeln!(out, "  {:<width$} {n:>7}  {}", c.as_str(), c.title())?;
            }
        }
        if !r.first.is_empty() {
            writeln!(out)?;
        }
        for a in &r.first {
            writeln!(
                out,
                "  {}  -> {}  {}  {}",
                a.certificate_id,
                a.target_account,
                a.region,
                a.needs()
            )?;
        }
        if r.more {
            let shown = r.first.len() as u64;
            writeln!(
                out,
                "  ... and {} more{}",
                count(r.certificates - shown, "certificate"),
                if r.plan_out.is_some() {
                    " (see the plan CSV)"
                } else {
                    " (--plan-out PATH lists them all)"
                }
            )?;
        }
        writeln!(out)?;
        if r.flags_needed.is_empty() {
            writeln!(out, "transfer needs no flag")?;
        } else {
            writeln!(out, "transfer needs: {}", r.flags_needed.join(" "))?;
        }
        let stuck: Vec<String> = Need::ALL
            .iter()
            .filter(|c| !c.transferable())
            .map(|c| (c, r.categories[c.as_str()].count))
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        if !stuck.is_empty() {
            let n: u64 = Need::ALL
                .iter()
                .filter(|c| !c.transferable())
                .map(|c| r.categories[c.as_str()].count)
                .sum();
            writeln!(
                out,
                "no flag moves {} ({})",
                count(n, "certificate"),
                stuck.join(", ")
            )?;
        }
        let e = &r.estimate;
        let secs = e.seconds.ceil() as u64;
        writeln!(
            out,
            "\nestimate: {}, about {} at the configured rates",
            count(e.calls, "call"),
            humantime::format_duration(std::time::Duration::from_secs(secs))
        )?;
        for s in &e.scopes {
            if let (Some(op), Some(rate)) = (&s.binding_operation, s.binding_rate) {
                writeln!(
                    out,
                    "  {}/{}: {:.0}s, paced by {op} at {rate}/s",
                    s.account,
                    s.region,
                    s.seconds.ceil()
                )?;
            }
        }
        if let Some(p) = &r.plan_out {
            writeln!(out, "plan CSV: {}", p.display())?;
        }
        Ok(())
    }
}
