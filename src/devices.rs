//! Seeing the devices arrive (issue 26), read-only: for each certificate of a manifest, its
//! things, each thing's execution of the manifest's handoff job in the source account
//! (ListJobExecutionsForThing) and whether its device is connected in the target account
//! (GetThingConnectivityData, with since when).
//!
//! One lookup ([`Lookup`]) serves `verify` (inside its verdict) and `status --devices` and
//! `report --devices` (the [`Arrival`] verdict over the same [`Sweep`] engine, through
//! [`look`]): all three show the same things with the same answers.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::carry::snapshot::Snapshot;
use crate::certificate::{cert_arn, CertStatus};
use crate::error::Error;
use crate::iot::{AccountClients, CallFailure, CertificateInfo, Iot};
use crate::ledger::{read_snapshots, LedgerKind};
use crate::lifecycle::handoff::handoff_prefix;
use crate::lifecycle::retire::{require_connectivity_indexing, rfc3339_ms};
use crate::manifest::{Manifest, ManifestRow};
use crate::progress::ProgressSettings;
use crate::run::default_ledger;
use crate::session::{Session, Settings, TargetCredentials};
use crate::stop::Stop;
use crate::verdict::{self, Stopped, Sweep, Verdict, VerdictCsv};

/// What AWS says of one thing's device: its handoff execution in the source, its connection
/// in the target.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// The thing (its device's client id).
    pub thing: String,
    /// The status of its execution of this manifest's handoff job in the source (`QUEUED`,
    /// `IN_PROGRESS`, `SUCCEEDED`, ..., `none`), if it was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff_execution: Option<String>,
    /// Whether it is connected in the target, if it was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// Since when it is connected (or disconnected), RFC 3339, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<String>,
}

impl Device {
    /// What was seen of it, for a person: `handoff execution SUCCEEDED in the source,
    /// connected in the target since 2026-12-06T17:00:00Z`.
    pub fn seen(&self) -> String {
        let mut seen = Vec::new();
        if let Some(e) = &self.handoff_execution {
            seen.push(format!("handoff execution {e} in the source"));
        }
        match (self.connected, &self.connected_since) {
            (Some(true), Some(t)) => seen.push(format!("connected in the target since {t}")),
            (Some(true), None) => seen.push("connected in the target".into()),
            (Some(false), Some(t)) => seen.push(format!("not connected in the target (since {t})")),
            (Some(false), None) => seen.push("never connected in the target".into()),
            (None, _) => {}
        }
        seen.join(", ")
    }
}

/// The devices of `devices` not connected in the target, for a person (`None`: every one
/// is): `device not connected in the target: dev-1 (never connected)`.
pub fn waiting(devices: &[Device]) -> Option<String> {
    let waiting: Vec<String> = devices
        .iter()
        .filter(|d| d.connected != Some(true))
        .map(|d| match &d.connected_since {
            Some(since) => format!("{} (disconnected since {since})", d.thing),
            None => format!("{} (never connected)", d.thing),
        })
        .collect();
    (!waiting.is_empty())
        .then(|| format!("device not connected in the target: {}", waiting.join(", ")))
}

/// The columns a CSV gives a certificate's devices (`things`, `handoff_execution`,
/// `connected`, `connected_since`), `;`-separated per thing.
pub fn device_columns(devices: &[Device]) -> [String; 4] {
    let column =
        |f: &dyn Fn(&Device) -> String| devices.iter().map(f).collect::<Vec<_>>().join(";");
    [
        column(&|d| d.thing.clone()),
        column(&|d| d.handoff_execution.clone().unwrap_or_default()),
        column(&|d| d.connected.map(|b| b.to_string()).unwrap_or_default()),
        column(&|d| d.connected_since.clone().unwrap_or_default()),
    ]
}

/// Said of a certificate without a thing: no device of it can be seen.
pub const NO_THING: &str =
    "the certificate has no thing, so no device of it can be seen connected; left to the operator";

/// Whether `account` holds the certificate `info` describes as its own (owned there, not
/// pending a transfer): only then can a device connect with it there.
pub fn held_by(info: &CertificateInfo, account: &str) -> bool {
    info.owner.as_deref() == Some(account) && info.status != CertStatus::PendingTransfer
}

/// What to ask of each thing's device.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The prefix of this manifest's handoff jobs, when it was handed off: each thing's
    /// execution status is asked of the source.
    pub handoff: Option<String>,
    /// Ask each device's connectivity in the target.
    pub connectivity: bool,
}

impl Lookup {
    /// Whether anything is asked of the devices at all.
    pub fn asks(&self) -> bool {
        self.connectivity || self.handoff.is_some()
    }

    /// The things of a certificate: what it carried (its snapshot), else what the target
    /// attaches to it when the target holds it, else what the source does. `owned` says
    /// whether the target holds it, when the caller knows (`None`: asked of the target).
    pub async fn things(
        &self,
        source: &Iot,
        target: &Iot,
        row: &ManifestRow,
        snapshot: Option<&Snapshot>,
        owned: Option<bool>,
    ) -> Result<Vec<String>, CallFailure> {
        if let Some(s) = snapshot {
            return Ok(s.things.iter().map(|t| t.name.clone()).collect());
        }
        let owned = match owned {
            Some(o) => o,
            None => target
                .describe(&row.certificate_id)
                .await?
                .is_some_and(|info| held_by(&info, &target.scope().account)),
        };
        let iot = if owned { target } else { source };
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        iot.principal_things(&arn).await
    }

    /// Each thing's handoff execution (source) and connection (target), as asked for.
    pub async fn devices(
        &self,
        source: &Iot,
        target: &Iot,
        things: Vec<String>,
    ) -> Result<Vec<Device>, CallFailure> {
        let mut devices = Vec::with_capacity(things.len());
        for thing in things {
            let handoff_execution = match &self.handoff {
                Some(prefix) => Some(
                    source
                        .executions_of_thing(&thing, prefix)
                        .await?
                        .into_iter()
                        .next()
                        .map_or_else(|| "none".to_string(), |(_, status)| status),
                ),
                None => None,
            };
            let (connected, connected_since) = if self.connectivity {
                match target.connectivity(&thing).await? {
                    Some(c) => (Some(c.connected), c.since_ms.map(rfc3339_ms)),
                    None => (Some(false), None),
                }
            } else {
                (None, None)
            };
            devices.push(Device {
                thing,
                handoff_execution,
                connected,
                connected_since,
            });
        }
        Ok(devices)
    }
}

/// The ledger whose snapshots say what each certificate carried (its things among them):
/// `given`, else the transfer ledger beside the manifest, else register's when only it
/// exists.
pub fn snapshot_ledger(manifest_path: &Path, given: Option<&Path>) -> PathBuf {
    given.map(Path::to_path_buf).unwrap_or_else(|| {
        let transfer = default_ledger(manifest_path, LedgerKind::Transfer);
        let register = default_ledger(manifest_path, LedgerKind::Register);
        if !transfer.exists() && register.exists() {
            register
        } else {
            transfer
        }
    })
}

/// What each manifest certificate carried, from [`snapshot_ledger`]; `None` when there is
/// no such ledger and none was named.
pub fn snapshots(
    manifest_path: &Path,
    manifest: &Manifest,
    given: Option<&Path>,
) -> Result<Option<HashMap<String, Snapshot>>, Error> {
    let ledger = snapshot_ledger(manifest_path, given);
    if ledger.exists() || given.is_some() {
        Ok(Some(read_snapshots(&ledger, |id| manifest.contains(id))?))
    } else {
        Ok(None)
    }
}

/// The handoff ledger of a manifest, when `handoff` ran with it.
pub fn handoff_ledger(manifest_path: &Path) -> Option<PathBuf> {
    Some(default_ledger(manifest_path, LedgerKind::Handoff)).filter(|p| p.exists())
}

/// The prefix of a manifest's handoff jobs, when it was handed off (its handoff ledger
/// exists beside it).
pub fn handoff_of(manifest_path: &Path, manifest: &Manifest) -> Option<String> {
    handoff_ledger(manifest_path).map(|_| handoff_prefix(manifest.sha256()))
}

closed_set! {
    /// Whether a certificate's devices arrived in its target.
    pub enum Arrival {
        /// Every device of its things is connected in the target.
        Connected = "connected",
        /// The device of one of its things is not connected in the target.
        NotConnected = "not_connected",
        /// It has no thing: no device of it can be seen.
        NoThing = "no_thing",
        /// AWS could not be asked (it refused or failed a read): the detail says what it
        /// answered.
        Unknown = "unknown",
    }
}

/// One certificate's devices.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    /// The certificate.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: String,
    /// Whether its devices arrived.
    pub category: Arrival,
    /// Why not, for a person (empty when connected).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Its things' devices.
    pub devices: Vec<Device>,
}

/// The arrival verdict: what `status --devices` and `report --devices` judge with.
pub struct Arrivals<'a> {
    /// The source account's clients.
    pub source: &'a AccountClients,
    /// The target accounts' clients, by account.
    pub targets: HashMap<String, AccountClients>,
    /// What each certificate carried, by id.
    pub snapshots: HashMap<String, Snapshot>,
    /// What is asked of each device (connectivity always).
    pub lookup: Lookup,
}

/// Things per status of their handoff execution.
pub type Executions = BTreeMap<String, u64>;

impl Verdict for Arrivals<'_> {
    type Category = Arrival;
    type Finding = Seen;
    type Totals = Executions;
    const VERB: &'static str = "looking at devices";
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

    async fn classify(&self, row: &ManifestRow) -> Seen {
        let source = self.source.for_row(row);
        let target = self.targets[&row.target_account].for_row(row);
        let snapshot = self.snapshots.get(&row.certificate_id);
        let found = match self
            .lookup
            .things(source, target, row, snapshot, None)
            .await
        {
            Ok(things) => self.lookup.devices(source, target, things).await,
            Err(f) => Err(f),
        };
        let (category, detail, devices) = match found {
            Ok(d) if d.is_empty() => (Arrival::NoThing, NO_THING.to_string(), d),
            Ok(d) => match waiting(&d) {
                Some(w) => (Arrival::NotConnected, w, d),
                None => (Arrival::Connected, String::new(), d),
            },
            Err(f) => (Arrival::Unknown, f.to_string(), Vec::new()),
        };
        Seen {
            certificate_id: row.certificate_id.clone(),
            target_account: row.target_account.clone(),
            category,
            detail,
            devices,
        }
    }

    fn categories(s: &Seen) -> &[Arrival] {
        std::slice::from_ref(&s.category)
    }

    fn csv_row(s: &Seen) -> Option<Vec<String>> {
        let mut row = vec![
            s.certificate_id.clone(),
            s.target_account.clone(),
            s.category.to_string(),
            s.detail.clone(),
        ];
        row.extend(device_columns(&s.devices));
        Some(row)
    }

    fn add_up(executions: &mut Executions, s: &Seen) {
        for d in &s.devices {
            if let Some(e) = &d.handoff_execution {
                *executions.entry(e.clone()).or_default() += 1;
            }
        }
    }
}

/// Certificates listed in the JSON output (and the page's source).
const LISTED: usize = 1000;
/// Certificates not arrived listed in the text output.
const TEXT_LISTED: usize = 20;

/// Whether the devices of certificates in `category` have not arrived (they are listed).
fn not_arrived_yet(category: Arrival) -> bool {
    category != Arrival::Connected
}

/// The handoff as the devices report shows it.
#[derive(Debug, Serialize)]
pub struct HandoffSeen {
    /// Its ledger beside the manifest.
    pub ledger: PathBuf,
    /// Things per status of their execution of the handoff job (`none`: no execution).
    pub executions: Executions,
}

/// What `status --devices` and `report --devices` found.
#[derive(Debug, Serialize)]
pub struct DevicesReport {
    /// Certificates looked at.
    pub certificates: u64,
    /// Certificates per [`Arrival`].
    pub counts: BTreeMap<&'static str, u64>,
    /// The handoff's executions; `None` (null) when the manifest was not handed off.
    pub handoff: Option<HandoffSeen>,
    /// Every certificate looked at, in manifest order (the first [`LISTED`]).
    pub records: Vec<Seen>,
    /// Whether some were left out of `records`.
    pub records_truncated: bool,
    /// The certificates whose devices have not arrived (the first [`LISTED`]).
    #[serde(skip)]
    pub not_arrived: Vec<Seen>,
    /// Certificates whose devices have not arrived.
    #[serde(skip)]
    pub not_arrived_count: u64,
    /// The CSV of every certificate looked at (`--devices-out`), if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<PathBuf>,
    /// Set when a signal stopped the look before every certificate was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// How to look at the devices.
pub struct LookOptions {
    /// The source account's connection (the run's credentials), pacing and retries.
    pub settings: Settings,
    /// The target accounts' credentials.
    pub targets: TargetCredentials,
    /// The progress display.
    pub progress: ProgressSettings,
    /// Certificates looked at at once.
    pub concurrency: usize,
    /// Write every certificate looked at here, as CSV (`--devices-out`).
    pub out: Option<PathBuf>,
}

/// Looks at every manifest certificate's devices whose target the credentials reach:
/// connects to the source and every target first, refuses (exit 2, one line, before any
/// certificate is read) when a target does not index connectivity, then judges each
/// certificate with [`Arrivals`].
pub async fn look(
    manifest_path: &Path,
    manifest: &Manifest,
    options: LookOptions,
) -> Result<DevicesReport, Error> {
    // Offline first: an unwritable CSV is known before any AWS call.
    let out = match &options.out {
        Some(p) => Some(VerdictCsv::create(p, "devices CSV")?),
        None => None,
    };
    // Without a ledger with snapshots, each certificate's things are asked of AWS.
    let snapshots = snapshots(manifest_path, manifest, None)?.unwrap_or_default();
    let handoff = handoff_ledger(manifest_path);
    let session = Session::connect(options.settings).await?;
    let source = session.own_clients(manifest.regions()).await?;
    let targets = session
        .target_clients(manifest, &options.targets, "--target-profile")
        .await?;
    require_connectivity_indexing(&targets, "--devices").await?;
    let arrivals = Arrivals {
        source: &source,
        targets: AccountClients::by_account(targets),
        snapshots,
        lookup: Lookup {
            handoff: handoff.as_ref().map(|_| handoff_prefix(manifest.sha256())),
            connectivity: true,
        },
    };
    let sweep = Sweep::start(
        options.concurrency,
        options.progress,
        Stop::new(None, verdict::GRACE),
    );
    // Rows of target accounts without credentials here (one --target-profile, several
    // targets) are left out, as verify leaves them.
    let ours = |account: &str| arrivals.targets.contains_key(account);
    let total = manifest
        .targets()
        .iter()
        .filter(|t| ours(&t.account))
        .map(|t| t.certificates as u64)
        .sum();
    let rows = manifest
        .rows()?
        .filter(|row| row.as_ref().map_or(true, |r| ours(&r.target_account)));
    let judged = sweep.judge(&arrivals, rows, total, out).await?;
    let (records, records_truncated) = judged.first_listed(LISTED);
    let (not_arrived, _) = judged.first_in(not_arrived_yet, LISTED);
    let not_arrived_count = Arrival::ALL
        .iter()
        .filter(|c| not_arrived_yet(**c))
        .map(|c| judged.count(*c))
        .sum();
    Ok(DevicesReport {
        certificates: judged.judged,
        counts: judged.counts_by_name(),
        handoff: handoff.map(|ledger| HandoffSeen {
            ledger,
            executions: judged.totals,
        }),
        records,
        records_truncated,
        not_arrived,
        not_arrived_count,
        out: judged.csv,
        stopped: judged.stopped,
    })
}

impl DevicesReport {
    /// The devices section of a text output (`status`, `report`), indented under it.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "  devices ({}; handoff executions in the source, connectivity in the targets):",
            crate::output::count(self.certificates, "certificate")
        )?;
        if let Some(s) = &self.stopped {
            write!(out, "    ")?;
            s.write_text(out)?;
        }
        let counts: Vec<String> = Arrival::ALL
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c.as_str().replace('_', " "),
                    self.counts[c.as_str()]
                )
            })
            .collect();
        writeln!(out, "    {}", counts.join("  "))?;
        match &self.handoff {
            Some(h) => {
                let mut by_status: Vec<(&String, &u64)> = h.executions.iter().collect();
                by_status.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let line: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
                writeln!(
                    out,
                    "    handoff executions (per thing): {}",
                    if line.is_empty() {
                        "no thing".to_string()
                    } else {
                        line.join("  ")
                    }
                )?;
            }
            None => writeln!(
                out,
                "    handoff: not run (no handoff ledger beside the manifest): executions not asked"
            )?,
        }
        if self.not_arrived_count > 0 {
            writeln!(out, "    not arrived:")?;
            for s in self.not_arrived.iter().take(TEXT_LISTED) {
                writeln!(
                    out,
                    "      {}  -> {}  {}: {}",
                    s.certificate_id, s.target_account, s.category, s.detail
                )?;
                for d in &s.devices {
                    writeln!(out, "          device {}: {}", d.thing, d.seen())?;
                }
            }
            let shown = self.not_arrived.len().min(TEXT_LISTED) as u64;
            if self.not_arrived_count > shown {
                writeln!(
                    out,
                    "      ... and {} more (--output json lists up to {LISTED} certificates)",
                    self.not_arrived_count - shown
                )?;
            }
        }
        if let Some(p) = &self.out {
            writeln!(out, "    every certificate's devices: {}", p.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(thing: &str, execution: Option<&str>, connected: Option<bool>) -> Device {
        Device {
            thing: thing.into(),
            handoff_execution: execution.map(str::to_string),
            connected,
            connected_since: connected.map(|_| "2026-12-06T17:00:00Z".to_string()),
        }
    }

    #[test]
    fn a_device_is_said_with_what_was_asked_of_it() {
        assert_eq!(
            device("a", Some("SUCCEEDED"), Some(true)).seen(),
            "handoff execution SUCCEEDED in the source, connected in the target since 2026-12-06T17:00:00Z"
        );
        assert_eq!(
            device("a", None, Some(false)).seen(),
            "not connected in the target (since 2026-12-06T17:00:00Z)"
        );
        let never = Device {
            connected_since: None,
            ..device("a", Some("none"), Some(false))
        };
        assert_eq!(
            never.seen(),
            "handoff execution none in the source, never connected in the target"
        );
        assert_eq!(
            device("a", Some("QUEUED"), None).seen(),
            "handoff execution QUEUED in the source"
        );
    }

    #[test]
    fn only_devices_not_connected_are_waited_for() {
        let both = [
            device("in", Some("SUCCEEDED"), Some(true)),
            device("out", Some("QUEUED"), Some(false)),
        ];
        assert_eq!(
            waiting(&both).as_deref(),
            Some(
                "device not connected in the target: out (disconnected since 2026-12-06T17:00:00Z)"
            )
        );
        assert_eq!(waiting(&both[..1]), None);
    }

    #[test]
    fn csv_columns_hold_one_value_per_thing() {
        let two = [
            device("a", Some("SUCCEEDED"), Some(true)),
            device("b", None, Some(false)),
        ];
        assert_eq!(
            device_columns(&two),
            [
                "a;b".to_string(),
                "SUCCEEDED;".to_string(),
                "true;false".to_string(),
                "2026-12-06T17:00:00Z;2026-12-06T17:00:00Z".to_string()
            ]
        );
        assert_eq!(
            device_columns(&[]),
            [String::new(), String::new(), String::new(), String::new()]
        );
    }

    #[test]
    fn only_the_connected_have_arrived() {
        for c in Arrival::ALL {
            assert_eq!(not_arrived_yet(*c), *c != Arrival::Connected, "{c}");
        }
    }
}
