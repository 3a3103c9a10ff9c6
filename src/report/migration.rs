//! The migration report (`report`): how far the migration is, what failed, how fast, read
//! from the ledgers alone (transfer and accept, register and retire); with `--devices`, also
//! whether each certificate's devices arrived (AWS, read-only). Its text form goes to
//! stdout; [`super::html`] draws the same report as a page.
//!
//! Each certificate of the manifest counts once, in the state its furthest ledger gives it
//! (see [`furthest`]). Each ledger's own counts are shown too, the same as `status` of that
//! ledger.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::devices::DevicesReport;
use crate::error::Error;
use crate::ledger::{ItemRecord, ItemState, LedgerKind, Outcome, Wait};
use crate::manifest::Manifest;
use crate::output::Render;

use super::ledgers::{furthest, ReadLedger};
use super::Counts;

/// Failed certificates kept per error code (the failure report has them all).
pub const ROWS_PER_FAILURE: usize = 100;

/// Failed certificates listed per error code in the text form.
const TEXT_ROWS_PER_FAILURE: usize = 5;

/// Where `region` is `None`: the run's default region.
pub const DEFAULT_REGION: &str = "(default region)";

/// The whole report.
#[derive(Debug, Serialize)]
pub struct MigrationReport {
    /// The manifest.
    pub manifest: PathBuf,
    /// Certificates in the manifest.
    pub certificates: u64,
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// Every certificate in its furthest state.
    pub counts: Counts,
    /// Each ledger read, with its own counts (as `status` shows them).
    pub ledgers: Vec<LedgerCounts>,
    /// Certificates per target account and region, in their furthest state.
    pub targets: Vec<TargetCounts>,
    /// Failed certificates grouped by stage and error code, the largest group first.
    pub failures: Vec<FailureGroup>,
    /// Certificates done per run and outcome, over time.
    pub timeline: Timeline,
    /// With `--devices`: whether each certificate's devices arrived (AWS, read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<DevicesReport>,
    /// The HTML page, when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<PathBuf>,
}

/// The counts of one ledger.
#[derive(Debug, Serialize)]
pub struct LedgerCounts {
    /// `transfer` or `accept`.
    pub kind: LedgerKind,
    /// Its path.
    pub path: PathBuf,
    /// Runs it records.
    pub runs: u32,
    /// Manifest certificates per state, as `status` counts them.
    pub counts: Counts,
}

/// The certificates bound to one target account and region.
#[derive(Debug, Serialize)]
pub struct TargetCounts {
    /// The 12-digit account.
    pub account: String,
    /// The region (`None`: the run's default region).
    pub region: Option<String>,
    /// Certificates per state.
    pub counts: Counts,
}

/// The failed (or waiting) certificates that share a stage and an error code.
#[derive(Debug, Serialize)]
pub struct FailureGroup {
    /// Where they failed.
    pub stage: String,
    /// AWS's error code, or the tool's.
    pub error_code: String,
    /// Set when they are not failed but wait for an option: which kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<Wait>,
    /// How many.
    pub count: u64,
    /// The first of them (at most [`ROWS_PER_FAILURE`]), by manifest order.
    pub rows: Vec<FailureRow>,
}

/// One failed certificate.
#[derive(Debug, Serialize)]
pub struct FailureRow {
    /// The certificate.
    pub certificate_id: String,
    /// Its target account.
    pub target_account: String,
    /// Its region, when the manifest names one.
    pub region: Option<String>,
    /// Why.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// Whether a plain rerun tries it again.
    pub retryable: bool,
}

/// Certificates done per minute over the migration's life.
#[derive(Debug, Default, Serialize)]
pub struct Timeline {
    /// Width of a bucket in seconds.
    pub bucket_s: u64,
    /// One series per run and outcome.
    pub series: Vec<Series>,
}

/// The certificates one run took to one outcome, per bucket.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Which ledger.
    pub ledger: LedgerKind,
    /// The run's number in that ledger.
    pub run: u32,
    /// The outcome counted (`transferred`, `accepted`, ...).
    pub outcome: Outcome,
    /// When the run started (Unix seconds).
    pub start: f64,
    /// Its last event (Unix seconds).
    pub end: f64,
    /// Certificates in all.
    pub total: u64,
    /// (bucket start in Unix seconds, certificates) for each bucket with any.
    pub buckets: Vec<(f64, u64)>,
}

impl Series {
    /// e.g. `transfer run 2: transferred`.
    pub fn label(&self) -> String {
        format!("{} run {}: {}", self.ledger, self.run, self.outcome)
    }

    /// The busiest bucket, in certificates per minute.
    pub fn peak_per_minute(&self, bucket_s: u64) -> f64 {
        let peak = self.buckets.iter().map(|(_, n)| *n).max().unwrap_or(0);
        peak as f64 * 60.0 / bucket_s.max(1) as f64
    }
}

impl MigrationReport {
    /// Builds the report of `manifest` from its ledgers (any of them may be missing).
    pub fn build(manifest: &Manifest, read: &[ReadLedger]) -> Result<MigrationReport, Error> {
        let mut ledgers = Vec::new();
        let mut timelines = Vec::new();
        for input in read {
            ledgers.push(LedgerCounts {
                kind: input.kind,
                path: input.path.clone(),
                runs: input.state.runs,
                counts: Counts::from_ledger(manifest, &input.state),
            });
            timelines.push(read_timeline(&input.path, input.kind)?);
        }
        let mut counts = Counts::default();
        let mut targets: BTreeMap<(String, Option<String>), Counts> = BTreeMap::new();
        let mut failures: BTreeMap<(String, String, Option<Wait>), FailureGroup> = BTreeMap::new();
        for row in manifest.rows()? {
            let row = row?;
            let id = row.certificate_id.as_str();
            let records: Vec<(LedgerKind, Option<ItemRecord>)> =
                read.iter().map(|l| (l.kind, l.state.get(id))).collect();
            let rec = furthest(&records).map(|(_, r)| r);
            counts.add_record(rec.as_ref());
            targets
                .entry((row.target_account.clone(), row.region.clone()))
                .or_default()
                .add_record(rec.as_ref());
            let Some(rec) = rec.filter(|r| {
                matches!(r.state, ItemState::Failed | ItemState::Waiting) && r.open_intent.is_none()
            }) else {
                continue;
            };
            let f = rec.failure;
            let stage = f.map(|f| f.stage.to_string()).unwrap_or_default();
            let code = f.map(|f| f.error_code.clone()).unwrap_or_default();
            let waiting_for = f.and_then(|f| f.waiting);
            let group = failures
                .entry((stage.clone(), code.clone(), waiting_for))
                .or_insert_with(|| FailureGroup {
                    stage,
                    error_code: code,
                    waiting_for,
                    count: 0,
                    rows: Vec::new(),
                });
            group.count += 1;
            if group.rows.len() < ROWS_PER_FAILURE {
                group.rows.push(FailureRow {
                    certificate_id: row.certificate_id.clone(),
                    target_account: row.target_account.clone(),
                    region: row.region.clone(),
                    message: f.map(|f| f.message.clone()).unwrap_or_default(),
                    attempts: f.map_or(0, |f| f.attempts),
                    retryable: f.is_some_and(|f| f.retryable),
                });
            }
        }
        let mut failures: Vec<FailureGroup> = failures.into_values().collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then(a.error_code.cmp(&b.error_code)));
        Ok(MigrationReport {
            manifest: manifest.path().to_path_buf(),
            certificates: manifest.len() as u64,
            generated_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            counts,
            ledgers,
            targets: targets
                .into_iter()
                .map(|((account, region), counts)| TargetCounts {
                    account,
                    region,
                    counts,
                })
                .collect(),
            failures,
            timeline: Timeline::from_runs(timelines.into_iter().flatten().collect()),
            devices: None,
            html: None,
        })
    }
}

/// The states of [`Counts`] in the order people read them, with their names in the JSON
/// summary.
pub fn states(c: &Counts) -> [(&'static str, u64); 12] {
    [
        ("accepted", c.accepted),
        ("retired", c.retired),
        ("handed_off", c.handed_off),
        ("registered", c.registered),
        ("transferred", c.transferred),
        ("pending", c.pending),
        ("in_doubt", c.in_doubt),
        ("waiting", c.waiting),
        ("failed", c.failed),
        ("rejected", c.rejected),
        ("cancelled", c.cancelled),
        ("restored", c.restored),
    ]
}

/// One run's terminal events of one outcome, with their times (Unix seconds).
struct RunEvents {
    ledger: LedgerKind,
    run: u32,
    start: f64,
    end: f64,
    outcome: Outcome,
    times: Vec<f64>,
}

/// Reads when each run started and when each certificate reached a terminal outcome
/// (failures aside). The ledger was already read whole by [`crate::ledger::Ledger`], which
/// judged its lines; this pass only takes times, and skips what it cannot read.
fn read_timeline(path: &Path, kind: LedgerKind) -> Result<Vec<RunEvents>, Error> {
    #[derive(Deserialize)]
    struct Line<'a> {
        #[serde(borrow, default)]
        ts: Option<&'a str>,
        #[serde(default)]
        run: Option<u32>,
        #[serde(default)]
        outcome: Option<Outcome>,
    }
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    /// A run's number, start, last event, and the times of each terminal outcome.
    type RunTimes = (u32, f64, f64, BTreeMap<Outcome, Vec<f64>>);
    let mut runs: Vec<RunTimes> = Vec::new();
    let mut line = Vec::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(l) = serde_json::from_slice::<Line>(&line) else {
            continue;
        };
        let Some(t) = l.ts.and_then(parse_ts) else {
            continue;
        };
        if let Some(n) = l.run {
            runs.push((n, t, t, BTreeMap::new()));
            continue;
        }
        let Some((_, _, end, by_outcome)) = runs.last_mut() else {
            continue;
        };
        *end = end.max(t);
        if let Some(
            o @ (Outcome::Transferred
            | Outcome::Accepted
            | Outcome::AlreadyAccepted
            | Outcome::Rejected
            | Outcome::Cancelled
            | Outcome::Restored
            | Outcome::Registered
            | Outcome::Retired),
        ) = l.outcome
        {
            by_outcome.entry(o).or_default().push(t);
        }
    }
    Ok(runs
        .into_iter()
        .flat_map(|(run, start, end, by_outcome)| {
            by_outcome
                .into_iter()
                .map(move |(outcome, times)| RunEvents {
                    ledger: kind,
                    run,
                    start,
                    end,
                    outcome,
                    times,
                })
        })
        .collect())
}

fn parse_ts(ts: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339(ts).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

impl Timeline {
    /// Buckets each run's events, wide enough for at most about 120 buckets over the time
    /// the runs were busy (idle days between runs do not count).
    fn from_runs(mut runs: Vec<RunEvents>) -> Timeline {
        runs.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.run.cmp(&b.run)));
        let busy: f64 = busy_spans(runs.iter().map(|r| (r.start, r.end)))
            .iter()
            .map(|(a, b)| b - a)
            .sum();
        const WIDTHS: [u64; 14] = [
            1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
        ];
        let bucket_s = WIDTHS
            .into_iter()
            .find(|w| busy / *w as f64 <= 120.0)
            .unwrap_or(86400);
        let series = runs
            .into_iter()
            .map(|r| {
                let mut buckets: BTreeMap<i64, u64> = BTreeMap::new();
                for t in &r.times {
                    *buckets
                        .entry((t / bucket_s as f64).floor() as i64)
                        .or_default() += 1;
                }
                Series {
                    ledger: r.ledger,
                    run: r.run,
                    outcome: r.outcome,
                    start: r.start,
                    end: r.end,
                    total: r.times.len() as u64,
                    buckets: buckets
                        .into_iter()
                        .map(|(b, n)| ((b * bucket_s as i64) as f64, n))
                        .collect(),
                }
            })
            .collect();
        Timeline { bucket_s, series }
    }
}

/// The union of `(start, end)` intervals, in time order.
pub fn busy_spans(intervals: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = intervals.into_iter().collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// e.g. `2026-11-22 01:14 UTC`.
pub fn format_time(unix: f64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs_f64(unix.max(0.0));
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// e.g. `3.2 s`, `12 min`, `5.5 h`.
pub fn format_duration(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.1} s")
    } else if secs < 90.0 * 60.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

impl Render for MigrationReport {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "migration report of {} ({})",
            self.manifest.display(),
            crate::output::count(self.certificates, "certificate")
        )?;
        writeln!(out, "  {}", line_of(&self.counts))?;
        for l in &self.ledgers {
            writeln!(
                out,
                "  {} ledger {} ({}): {}",
                l.kind,
                l.path.display(),
                runs(l.runs),
                line_of(&l.counts)
            )?;
        }
        if !self.targets.is_empty() {
            writeln!(out, "  by target account and region:")?;
            for t in &self.targets {
                writeln!(
                    out,
                    "    {} {}: {}",
                    t.account,
                    t.region.as_deref().unwrap_or(DEFAULT_REGION),
                    line_of(&t.counts)
                )?;
            }
        }
        if !self.failures.is_empty() {
            writeln!(out, "  failures by error code:")?;
            for g in &self.failures {
                let waiting = g
                    .waiting_for
                    .map(|w| format!(", waiting for {w}: the same command with it takes them"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "    {} ({}{waiting}): {}",
                    g.error_code, g.stage, g.count
                )?;
                for r in g.rows.iter().take(TEXT_ROWS_PER_FAILURE) {
                    writeln!(
                        out,
                        "      {} -> {}: {}",
                        r.certificate_id, r.target_account, r.message
                    )?;
                }
                if g.count as usize > TEXT_ROWS_PER_FAILURE {
                    writeln!(
                        out,
                        "      ... and {} more (see the failure report)",
                        g.count as usize - TEXT_ROWS_PER_FAILURE
                    )?;
                }
            }
        }
        if !self.timeline.series.is_empty() {
            writeln!(out, "  runs:")?;
            for s in &self.timeline.series {
                writeln!(
                    out,
                    "    {}: {} from {} in {} (peak {:.0}/min)",
                    s.label(),
                    crate::output::count(s.total, "certificate"),
                    format_time(s.start),
                    format_duration(s.end - s.start),
                    s.peak_per_minute(self.timeline.bucket_s)
                )?;
            }
        }
        if let Some(d) = &self.devices {
            d.write_text(out)?;
        }
        if let Some(p) = &self.html {
            writeln!(out, "  html: {}", p.display())?;
        }
        Ok(())
    }
}

/// `1 run`, `2 runs`.
pub fn runs(n: u32) -> String {
    crate::output::count(n, "run")
}

/// `accepted 3  transferred 2 ...`: the states with any certificate (all zero: pending 0).
fn line_of(c: &Counts) -> String {
    let parts: Vec<String> = states(c)
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{} {n}", s.replace('_', " ")))
        .collect();
    if parts.is_empty() {
        "pending 0".into()
    } else {
        parts.join("  ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_spans_merge_overlaps_and_keep_gaps() {
        let spans = busy_spans([(10.0, 20.0), (0.0, 5.0), (15.0, 30.0), (40.0, 41.0)]);
        assert_eq!(spans, vec![(0.0, 5.0), (10.0, 30.0), (40.0, 41.0)]);
    }

    #[test]
    fn buckets_widen_with_the_busy_time_not_the_idle_time() {
        let run = |start: f64, secs: f64, n: usize| RunEvents {
            ledger: LedgerKind::Transfer,
            run: 1,
            start,
            end: start + secs,
            outcome: Outcome::Transferred,
            times: (0..n).map(|i| start + secs * i as f64 / n as f64).collect(),
        };
        // Two 45-minute runs a day apart: minutes, not hours.
        let t = Timeline::from_runs(vec![run(0.0, 2700.0, 100), run(86400.0, 2700.0, 100)]);
        assert_eq!(t.bucket_s, 60);
        assert_eq!(t.series[1].total, 100);
        assert_eq!(t.series[1].buckets.iter().map(|b| b.1).sum::<u64>(), 100);
        // A 3-second run: one-second buckets.
        assert_eq!(Timeline::from_runs(vec![run(0.0, 3.0, 28)]).bucket_s, 1);
    }

    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(format_time(1_796_283_527.5), "2026-12-03 07:38 UTC");
        assert_eq!(format_duration(3.21), "3.2 s");
        assert_eq!(format_duration(2700.0), "45 min");
        assert_eq!(format_duration(5.5 * 3600.0), "5.5 h");
    }
}
