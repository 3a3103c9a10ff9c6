//! The verdict engine: the one pass of the read-only commands over a manifest (`plan`, `plan
//! --mode register`, `plan --carry`, `verify`). A [`Verdict`] is a closed set of categories
//! and one classify function; a [`Sweep`] owns everything around it: the rows in manifest
//! order, `--concurrency` of them at a time (every call paced by the clients the verdict
//! holds), Ctrl-C and SIGTERM, the progress display, the counts per category, the capped
//! listing and the CSV.
//!
//! A first signal stops rows from starting; rows in flight get [`GRACE`] to finish; the
//! result then says how far the pass got ([`Stopped`]): the first certificates of the
//! manifest, in order, and the CSV covers exactly those. A second signal exits at once.

mod csv_file;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

pub use csv_file::VerdictCsv;

use crate::closed_set::ClosedSet;
use crate::error::Error;
use crate::manifest::{ManifestError, ManifestRow};
use crate::progress::{Progress, ProgressSettings};
use crate::stop::Stop;

/// How long rows in flight may finish after a stop request before the pass gives up on them
/// (the default `--grace` of the runs that change things).
pub const GRACE: Duration = Duration::from_secs(10);

/// One read-only verdict: its categories (a `closed_set!` enum) and its one classify
/// function. A new category is a variant and a branch of `classify`.
pub trait Verdict {
    /// The categories.
    type Category: ClosedSet;
    /// What `classify` finds about one row: its category (or categories), a detail, and
    /// the columns the verdict reports.
    type Finding: Clone;
    /// What the verdict adds up besides the counts, in manifest order (`()`: nothing).
    type Totals: Default;
    /// The work, for the progress display (`planning`).
    const VERB: &'static str;
    /// Findings kept per listed category for the output (the CSV has them all).
    const LISTED: usize;
    /// The CSV's header (none: the verdict writes no CSV).
    const CSV_HEADER: &'static [&'static str] = &[];

    /// Classifies one row with read-only calls. AWS's refusal is a category, not an error.
    fn classify(&self, row: &ManifestRow) -> impl Future<Output = Self::Finding>;

    /// The categories of a finding: one, or (the plan) several that combine.
    fn categories(finding: &Self::Finding) -> &[Self::Category];

    /// Whether the findings of `category` are listed in the output.
    fn listed(_category: Self::Category) -> bool {
        true
    }

    /// The CSV row of a finding, raw (the CSV neutralises formulas); `None`: not written.
    fn csv_row(_finding: &Self::Finding) -> Option<Vec<String>> {
        None
    }

    /// Adds a finding to the totals.
    fn add_up(_totals: &mut Self::Totals, _finding: &Self::Finding) {}
}

/// The findings of one category: how many, and the first [`Verdict::LISTED`].
#[derive(Debug, Clone, Serialize)]
pub struct Listing<F> {
    /// Certificates in the category.
    pub count: u64,
    /// The first ones, in manifest order (see `truncated`).
    pub certificates: Vec<F>,
    /// Whether some were left out.
    pub truncated: bool,
    /// Position of each listed one in the pass.
    #[serde(skip)]
    positions: Vec<u64>,
}

impl<F> Default for Listing<F> {
    fn default() -> Self {
        Listing {
            count: 0,
            certificates: Vec::new(),
            truncated: false,
            positions: Vec::new(),
        }
    }
}

/// How far a pass got when a stop request ended it early.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    /// Why (`stopped by signal`).
    pub reason: &'static str,
    /// Certificates judged: the first ones of the pass, in manifest order.
    pub after: u64,
    /// Certificates the pass had to judge.
    pub of: u64,
}

impl Stopped {
    /// The line the text outputs show.
    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} after {} of {}: what follows covers those only (exit 4; run again for all)",
            self.reason,
            self.after,
            crate::output::count(self.of, "certificate")
        )
    }
}

/// What a pass found.
pub struct Judged<V: Verdict> {
    /// Certificates judged.
    pub judged: u64,
    /// Certificates per category, every category present.
    pub counts: BTreeMap<V::Category, u64>,
    /// The listed categories' findings, every listed category present.
    pub listings: BTreeMap<V::Category, Listing<V::Finding>>,
    /// Certificates in at least one listed category.
    pub listed: u64,
    /// The verdict's own totals.
    pub totals: V::Totals,
    /// The CSV written, if any.
    pub csv: Option<PathBuf>,
    /// Set when a stop request ended the pass early.
    pub stopped: Option<Stopped>,
}

impl<V: Verdict> Judged<V> {
    fn new() -> Self {
        let all = <V::Category as ClosedSet>::ALL;
        Judged {
            judged: 0,
            counts: all.iter().map(|c| (*c, 0)).collect(),
            listings: all
                .iter()
                .filter(|c| V::listed(**c))
                .map(|c| (*c, Listing::default()))
                .collect(),
            listed: 0,
            totals: V::Totals::default(),
            csv: None,
            stopped: None,
        }
    }

    fn add(&mut self, finding: V::Finding) {
        let position = self.judged;
        self.judged += 1;
        V::add_up(&mut self.totals, &finding);
        let mut listed = false;
        for c in V::categories(&finding) {
            *self.counts.entry(*c).or_default() += 1;
            let Some(l) = self.listings.get_mut(c) else {
                continue;
            };
            listed = true;
            l.count += 1;
            if l.certificates.len() < V::LISTED {
                l.certificates.push(finding.clone());
                l.positions.push(position);
            } else {
                l.truncated = true;
            }
        }
        self.listed += u64::from(listed);
    }

    /// Certificates in `category`.
    pub fn count(&self, category: V::Category) -> u64 {
        self.counts[&category]
    }

    /// The counts by category name.
    pub fn counts_by_name(&self) -> BTreeMap<&'static str, u64> {
        self.counts.iter().map(|(c, n)| (c.as_str(), *n)).collect()
    }

    /// The first `cap` listed findings of every category together, in manifest order, and
    /// whether some were left out.
    pub fn first_listed(&self, cap: usize) -> (Vec<V::Finding>, bool) {
        let (first, _) = self.first_in(|_| true, cap);
        (first, self.listed > cap as u64)
    }

    /// The first `cap` listed findings of the categories `wanted` picks, in manifest order,
    /// and whether some of those categories' findings were left out.
    pub fn first_in(
        &self,
        wanted: impl Fn(V::Category) -> bool,
        cap: usize,
    ) -> (Vec<V::Finding>, bool) {
        let wanted = &wanted;
        let picked = || self.listings.iter().filter(move |(c, _)| wanted(**c));
        let mut all: Vec<(u64, &V::Finding)> = picked()
            .flat_map(|(_, l)| l.positions.iter().copied().zip(&l.certificates))
            .collect();
        all.sort_by_key(|(position, _)| *position);
        all.dedup_by_key(|(position, _)| *position);
        let truncated = all.len() > cap || picked().any(|(_, l)| l.truncated);
        let first = all.into_iter().take(cap).map(|(_, f)| f.clone()).collect();
        (first, truncated)
    }
}

/// The passes of one command: `concurrency` rows at a time, progress as `progress` says,
/// SIGINT and SIGTERM watched from [`Sweep::start`] until the sweep is dropped.
pub struct Sweep {
    concurrency: usize,
    progress: ProgressSettings,
    stop: Stop,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Sweep {
    fn drop(&mut self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

impl Sweep {
    /// Starts watching for signals: from here on, a first one stops the passes cleanly.
    pub fn start(concurrency: usize, progress: ProgressSettings, stop: Stop) -> Sweep {
        let watcher = stop.watch(None);
        Sweep {
            concurrency: concurrency.max(1),
            progress,
            stop,
            watcher: Some(watcher),
        }
    }

    /// Whether a stop was requested: the command starts no further pass.
    pub fn stopping(&self) -> bool {
        !self.stop.is_open()
    }

    /// Classifies every row of `rows` (`total` of them) with `verdict`, writing `csv` in
    /// manifest order and putting it in place at the end (also when stopped: it then holds
    /// the certificates judged). A manifest error ends the pass; the old CSV stays.
    pub async fn judge<V: Verdict>(
        &self,
        verdict: &V,
        rows: impl IntoIterator<Item = Result<ManifestRow, ManifestError>>,
        total: u64,
        mut csv: Option<VerdictCsv>,
    ) -> Result<Judged<V>, Error> {
        let progress = Progress::start(&self.progress, total, V::VERB);
        let judged = self
            .pass(verdict, rows, total, csv.as_mut(), &progress)
            .await;
        progress.finish();
        let mut judged = judged?;
        if let Some(csv) = csv {
            judged.csv = Some(csv.path().to_path_buf());
            csv.finish()?;
        }
        Ok(judged)
    }

    async fn pass<V: Verdict>(
        &self,
        verdict: &V,
        rows: impl IntoIterator<Item = Result<ManifestRow, ManifestError>>,
        total: u64,
        mut csv: Option<&mut VerdictCsv>,
        progress: &Progress,
    ) -> Result<Judged<V>, Error> {
        if let Some(w) = csv.as_deref_mut() {
            w.write(V::CSV_HEADER)?;
        }
        let tally = progress.tally();
        let mut judged = Judged::<V>::new();
        let refused = Cell::new(false);
        // `buffered` yields in manifest order while `concurrency` rows are classified at once.
        let findings = futures::stream::iter(rows)
            .take_while(|_| {
                let go = self.stop.admit();
                refused.set(!go);
                std::future::ready(go)
            })
            .map(|row| async move {
                let row = row?;
                Ok::<_, Error>(verdict.classify(&row).await)
            })
            .buffered(self.concurrency);
        let mut findings = std::pin::pin!(findings);
        let mut abandoned = false;
        loop {
            let next = tokio::select! {
                next = findings.next() => next,
                _ = self.stop.abandon.cancelled() => {
                    abandoned = true;
                    None
                }
            };
            let Some(finding) = next else { break };
            let finding = finding?;
            if let Some(w) = csv.as_deref_mut() {
                if let Some(cells) = V::csv_row(&finding) {
                    w.write(cells)?;
                }
            }
            judged.add(finding);
            tally.done.fetch_add(1, Ordering::Relaxed);
        }
        if refused.get() || abandoned {
            judged.stopped = self.stop.reason().map(|r| Stopped {
                reason: r.describe(),
                after: judged.judged,
                of: total,
            });
        }
        Ok(judged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    closed_set! {
        enum Parity {
            Even = "even",
            Odd = "odd",
            Unknown = "unknown",
        }
    }

    /// Sorts rows by their line: even, odd, or (line 7) unknown; even ones are not listed.
    /// With `stop_at`, classifying that line requests a stop.
    #[derive(Default)]
    struct ByLine {
        stop_at: Option<(u64, Stop)>,
    }

    impl Verdict for ByLine {
        type Category = Parity;
        type Finding = (u64, Parity);
        type Totals = u64;
        const VERB: &'static str = "testing";
        const LISTED: usize = 2;
        const CSV_HEADER: &'static [&'static str] = &["line", "parity"];

        async fn classify(&self, row: &ManifestRow) -> (u64, Parity) {
            if let Some((line, stop)) = &self.stop_at {
                if *line == row.line {
                    stop.request(crate::stop::StopReason::Signal);
                }
            }
            // Later rows answer sooner: the engine must still keep manifest order.
            tokio::time::sleep(Duration::from_millis(20 - row.line)).await;
            let p = match row.line {
                7 => Parity::Unknown,
                n if n % 2 == 0 => Parity::Even,
                _ => Parity::Odd,
            };
            (row.line, p)
        }

        fn categories(finding: &(u64, Parity)) -> &[Parity] {
            std::slice::from_ref(&finding.1)
        }

        fn listed(c: Parity) -> bool {
            c != Parity::Even
        }

        fn csv_row(f: &(u64, Parity)) -> Option<Vec<String>> {
            Some(vec![f.0.to_string(), f.1.to_string()])
        }

        fn add_up(lines: &mut u64, f: &(u64, Parity)) {
            *lines += f.0;
        }
    }

    fn rows(n: u64) -> Vec<Result<ManifestRow, ManifestError>> {
        (1..=n)
            .map(|line| {
                Ok(ManifestRow {
                    line,
                    ..Default::default()
                })
            })
            .collect()
    }

    /// Four rows at a time, no display, no signal handlers (the test process keeps its own).
    fn sweep() -> Sweep {
        Sweep {
            concurrency: 4,
            progress: ProgressSettings {
                mode: Default::default(),
                interval: Duration::from_secs(60),
                interval_given: false,
                quiet: true,
            },
            stop: Stop::new(None, GRACE),
            watcher: None,
        }
    }

    #[tokio::test]
    async fn counts_lists_and_writes_every_row_in_manifest_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let csv = VerdictCsv::create(&path, "test CSV").unwrap();
        let judged = sweep()
            .judge(&ByLine::default(), rows(10), 10, Some(csv))
            .await
            .unwrap();
        assert_eq!(judged.judged, 10);
        assert!(judged.stopped.is_none());
        assert_eq!(judged.totals, 55);
        assert_eq!(judged.count(Parity::Even), 5);
        assert_eq!(judged.count(Parity::Odd), 4);
        assert_eq!(judged.count(Parity::Unknown), 1);
        assert!(!judged.listings.contains_key(&Parity::Even));
        let odd = &judged.listings[&Parity::Odd];
        assert_eq!((odd.count, odd.truncated), (4, true));
        assert_eq!(odd.certificates, vec![(1, Parity::Odd), (3, Parity::Odd)]);
        // Across categories, in manifest order: the 7 is not among the first three.
        let (first, truncated) = judged.first_listed(3);
        assert_eq!(first.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 3, 7]);
        assert!(truncated, "5 listed rows, 3 shown");
        // One category alone: the unknown row, nothing left out.
        let (unknown, truncated) = judged.first_in(|c| c == Parity::Unknown, 3);
        assert_eq!(unknown.iter().map(|f| f.0).collect::<Vec<_>>(), [7]);
        assert!(!truncated);
        // The odd rows: two kept of four (LISTED), so some were left out.
        let (odd, truncated) = judged.first_in(|c| c == Parity::Odd, 10);
        assert_eq!(odd.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 3]);
        assert!(truncated);
        let lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines[0], "line,parity");
        let order: Vec<&str> = lines[1..]
            .iter()
            .map(|l| &l[..l.find(',').unwrap()])
            .collect();
        assert_eq!(order, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    }

    #[tokio::test]
    async fn after_a_stop_request_rows_in_flight_finish_no_other_starts_and_the_csv_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old\n").unwrap();
        let sweep = sweep();
        // Rows 1-4 start together; row 3 asks to stop before any of them is done.
        let verdict = ByLine {
            stop_at: Some((3, sweep.stop.clone())),
        };
        let csv = VerdictCsv::create(&path, "test CSV").unwrap();
        let judged = sweep
            .judge(&verdict, rows(10), 10, Some(csv))
            .await
            .unwrap();
        assert_eq!(judged.judged, 4);
        let stopped = judged.stopped.expect("stopped");
        assert_eq!(
            (stopped.reason, stopped.after, stopped.of),
            ("stopped by signal", 4, 10)
        );
        assert!(sweep.stopping());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "line,parity\n1,odd\n2,even\n3,odd\n4,even\n"
        );
    }

    #[tokio::test]
    async fn a_stop_requested_once_every_row_had_started_leaves_the_pass_complete() {
        let sweep = sweep();
        let verdict = ByLine {
            stop_at: Some((3, sweep.stop.clone())),
        };
        let judged = sweep.judge(&verdict, rows(3), 3, None).await.unwrap();
        assert!(sweep.stopping());
        assert_eq!(judged.judged, 3);
        assert!(
            judged.stopped.is_none(),
            "every row was judged: exit as usual"
        );
    }
}
