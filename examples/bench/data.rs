//! Data of the benchmark: certificate ids, simulator seeds, manifests, a ledger of finished
//! items written in the tool's own format, and the analysis of a ledger after a run.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::SystemTime;

use iot_cert_migrate::certificate::CertStatus;
use iot_cert_migrate::ledger::{
    Action, Details, Event, Header, LedgerKind, Outcome, RunStart, Stage, Via, FORMAT_VERSION,
};
use iot_cert_migrate::manifest::{ManifestRow, ManifestWriter};
use iot_sim::{Seed, SeedAccount, SeedCertificate, SimHandle};
use sha2::{Digest, Sha256};

/// The source account (the simulator's default account).
pub const SOURCE: &str = "111111111111";
/// The target account of every row.
pub const TARGET: &str = "222222222222";
/// The tool's default region.
pub const REGION: &str = "us-east-1";

/// A deterministic certificate id (64 lowercase hex) for number `n`, spread so that ids do
/// not sort in `n` order.
pub fn cert_id(n: u64) -> String {
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{a:016x}{n:016x}{:016x}{:016x}", a.rotate_left(17), !n)
}

/// Seeds `ids` in `region` as ACTIVE certificates of [`SOURCE`], each with one policy
/// (shared, as fleets usually share policies) and one thing of its own: seven calls each.
pub fn seed_active(sim: &SimHandle, region: &str, ids: &[String]) {
    seed_active_with(sim, region, ids, true);
}

/// Seeds `ids` in `region` as ACTIVE certificates of [`SOURCE`]: with `attachments`, as
/// [`seed_active`] does; without, bare (five calls each: read, list policies, list things,
/// deactivate, transfer).
pub fn seed_active_with(sim: &SimHandle, region: &str, ids: &[String], attachments: bool) {
    let certificates = ids
        .iter()
        .enumerate()
        .map(|(i, id)| SeedCertificate {
            id: id.clone(),
            status: "ACTIVE".into(),
            policies: if attachments {
                vec!["fleet-policy".into()]
            } else {
                Vec::new()
            },
            things: if attachments {
                vec![format!("device-{region}-{i}")]
            } else {
                Vec::new()
            },
            ..Default::default()
        })
        .collect();
    let mut accounts = BTreeMap::new();
    accounts.insert(
        SOURCE.to_string(),
        SeedAccount {
            certificates,
            ..Default::default()
        },
    );
    sim.seed(Seed {
        region: region.to_string(),
        accounts,
    })
    .expect("the simulator accepts the seed");
}

/// Writes a manifest of `(id, region)` rows, all to [`TARGET`]; with a region column only
/// if some row names a region.
pub fn write_manifest<'a>(
    path: &Path,
    with_region: bool,
    rows: impl Iterator<Item = (String, Option<&'a str>)>,
) -> io::Result<()> {
    let mut w = ManifestWriter::create(path, with_region)?;
    for (id, region) in rows {
        w.write_row(&ManifestRow {
            line: 0,
            certificate_id: id,
            target_account: TARGET.into(),
            transfer_message: None,
            region: region.map(str::to_string),
        })?;
    }
    w.finish()
}

/// SHA-256 of a file, lowercase hex (what the ledger header records of the manifest).
pub fn sha256_hex(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a transfer ledger in which every id of `ids` is finished: the header, one run
/// line, then per certificate a transfer intent and a `transferred` event, as the tool
/// writes them (the tool's own types are serialised).
pub fn write_finished_ledger(
    path: &Path,
    manifest: &Path,
    manifest_sha256: &str,
    ids: impl Iterator<Item = String>,
) -> io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let ts = iot_cert_migrate::ledger::now_rfc3339();
    let header = Header {
        format: FORMAT_VERSION,
        kind: LedgerKind::Transfer,
        tool: "iot-cert-migrate".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        manifest: manifest.display().to_string(),
        manifest_sha256: manifest_sha256.to_string(),
        started_at: ts.clone(),
    };
    let run = RunStart {
        run: 1,
        ts: ts.clone(),
        pid: std::process::id(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        manifest_sha256: manifest_sha256.to_string(),
        account: None,
        region: None,
    };
    json_line(&mut w, &header)?;
    json_line(&mut w, &run)?;
    let mut n = 0u64;
    for id in ids {
        let event = |outcome, details| Event {
            ts: ts.clone(),
            id: id.clone(),
            target: Some(TARGET.into()),
            region: None,
            stage: Stage::Transfer,
            outcome,
            details,
        };
        let intent = event(
            Outcome::Intent,
            Details {
                action: Some(Action::Transfer),
                ..Default::default()
            },
        );
        let done = event(
            Outcome::Transferred,
            Details {
                arn: Some(format!("arn:aws:iot:{REGION}:{SOURCE}:cert/{id}")),
                via: Some(Via::Call),
                ..Default::default()
            },
        );
        json_line(&mut w, &intent)?;
        json_line(&mut w, &done)?;
        n += 1;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(n)
}

/// Certificates whose events a realistic ledger interleaves, as a run with this many in
/// flight writes them.
const IN_FLIGHT: usize = 64;

/// Writes a transfer ledger as a real migration leaves it: every id of `ids` fully prepared
/// (deactivated, one policy and one thing detached) and transferred, 8 events each, the
/// events of [`IN_FLIGHT`] certificates at a time interleaved, times advancing. Returns the
/// number of certificates.
pub fn write_realistic_ledger(
    path: &Path,
    manifest: &Path,
    manifest_sha256: &str,
    ids: impl Iterator<Item = String>,
) -> io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let start = SystemTime::now();
    let ts = |ms: u64| {
        humantime::format_rfc3339_millis(start + std::time::Duration::from_millis(ms)).to_string()
    };
    let header = Header {
        format: FORMAT_VERSION,
        kind: LedgerKind::Transfer,
        tool: "iot-cert-migrate".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        manifest: manifest.display().to_string(),
        manifest_sha256: manifest_sha256.to_string(),
        started_at: ts(0),
    };
    let run = RunStart {
        run: 1,
        ts: ts(0),
        pid: std::process::id(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        manifest_sha256: manifest_sha256.to_string(),
        account: None,
        region: None,
    };
    json_line(&mut w, &header)?;
    json_line(&mut w, &run)?;
    let mut n = 0u64;
    let mut window: Vec<(u64, String)> = Vec::with_capacity(IN_FLIGHT);
    let mut ids = ids.peekable();
    while ids.peek().is_some() {
        window.clear();
        window.extend(ids.by_ref().take(IN_FLIGHT).map(|id| {
            n += 1;
            (n, id)
        }));
        for step in 0..8 {
            for (i, id) in &window {
                let event = realistic_event(id, *i, step, ts(i * 100 + step as u64 * 12));
                json_line(&mut w, &event)?;
            }
        }
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(n)
}

/// Event `step` (0-7) of certificate number `i` of a realistic ledger.
fn realistic_event(id: &str, i: u64, step: usize, ts: String) -> Event {
    let (stage, action) = match step {
        0 | 1 => (Stage::Prepare, Action::Deactivate),
        2 | 3 => (Stage::Prepare, Action::DetachPolicy),
        4 | 5 => (Stage::Prepare, Action::DetachThing),
        _ => (Stage::Transfer, Action::Transfer),
    };
    let outcome = match step {
        7 => Outcome::Transferred,
        s if s % 2 == 0 => Outcome::Intent,
        _ => Outcome::Done,
    };
    let details = match (action, outcome) {
        (_, Outcome::Transferred) => Details {
            arn: Some(format!("arn:aws:iot:{REGION}:{SOURCE}:cert/{id}")),
            via: Some(Via::Call),
            ..Default::default()
        },
        (Action::Deactivate, _) => Details {
            action: Some(action),
            previous_status: Some(CertStatus::Active),
            ..Default::default()
        },
        (Action::DetachPolicy, _) => Details {
            action: Some(action),
            policy: Some("fleet-policy".into()),
            ..Default::default()
        },
        (Action::DetachThing, _) => Details {
            action: Some(action),
            thing: Some(format!("device-{REGION}-{i}")),
            ..Default::default()
        },
        _ => Details {
            action: Some(action),
            ..Default::default()
        },
    };
    Event {
        ts,
        id: id.to_string(),
        target: Some(TARGET.into()),
        region: None,
        stage,
        outcome,
        details,
    }
}

fn json_line<T: serde::Serialize>(w: &mut impl Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// What a ledger tells about a run, per certificate.
#[derive(Debug, Default)]
pub struct LedgerTimes {
    /// Per certificate that reached a terminal event: seconds from its first event to it.
    pub latencies: Vec<f64>,
    /// Terminal event times, seconds since the UNIX epoch, sorted.
    pub ends: Vec<f64>,
    /// Certificates whose terminal event is `failed`.
    pub failed: u64,
}

impl LedgerTimes {
    /// Reads a ledger written by the tool.
    pub fn read(path: &Path) -> io::Result<LedgerTimes> {
        let reader = BufReader::new(File::open(path)?);
        let mut first: HashMap<String, f64> = HashMap::new();
        let mut end: HashMap<String, (f64, bool)> = HashMap::new();
        for line in reader.lines() {
            let line = line?;
            let Ok(ev) = serde_json::from_str::<Event>(&line) else {
                continue; // header and run lines
            };
            let t = epoch_s(&ev.ts)?;
            first.entry(ev.id.clone()).or_insert(t);
            match ev.outcome {
                Outcome::Transferred => {
                    end.insert(ev.id, (t, false));
                }
                Outcome::Failed => {
                    end.insert(ev.id, (t, true));
                }
                _ => {}
            }
        }
        let mut out = LedgerTimes::default();
        for (id, (t, failed)) in end {
            out.ends.push(t);
            out.latencies.push(t - first[&id]);
            out.failed += u64::from(failed);
        }
        out.ends.sort_by(f64::total_cmp);
        out.latencies.sort_by(f64::total_cmp);
        Ok(out)
    }

    /// Completions per second between the 10th and the 90th percentile of completion
    /// times: the rate once the pipeline is full, without ramp-up and drain.
    pub fn steady_rate(&self) -> Option<f64> {
        let n = self.ends.len();
        if n < 20 {
            return None;
        }
        let (a, b) = (n / 10, n * 9 / 10);
        let dt = self.ends[b] - self.ends[a];
        (dt > 0.0).then(|| (b - a) as f64 / dt)
    }

    /// The `p`-quantile (0..=1) of per-certificate latency, seconds.
    pub fn latency(&self, p: f64) -> Option<f64> {
        quantile(&self.latencies, p)
    }
}

/// The `p`-quantile of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn epoch_s(ts: &str) -> io::Result<f64> {
    let t = humantime::parse_rfc3339(ts)
        .map_err(|e| io::Error::other(format!("ledger ts {ts:?}: {e}")))?;
    Ok(t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0))
}
