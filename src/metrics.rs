//! The metrics file for cron and monitoring (`--metrics-file PATH`): the state of a run in
//! the Prometheus text exposition format, for node_exporter's textfile collector or any
//! scraper of files. It is replaced durably ([`crate::durable`]) when the run has its ledger,
//! at every `--progress-interval`, and at the end, fatal errors included.
//!
//! Every series carries the labels `command` and `manifest`, so that the files of several
//! jobs can sit side by side in one collector directory. Counters count this run; the
//! `last_exit_code` and `run_end_timestamp_seconds` of a run still going on are those of
//! the last finished run, carried over from the file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ExitCode};
use crate::iot::OpCounts;
use crate::pacer::{Operation, Scope};
use crate::report::Counts;

/// The prefix of every metric name.
pub const PREFIX: &str = "iot_cert_migrate_";

/// The scope of STS calls, which are not counted against an account's quota.
const STS_ACCOUNT: &str = "sts";

/// What a run looks like at one moment.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Certificates of the manifest per state, as `status` counts them.
    pub counts: Counts,
    /// Requests, throttles and errors per operation, account and region, this run.
    pub calls: BTreeMap<Operation, BTreeMap<Scope, OpCounts>>,
    /// Items this run took to an end (done, failed or in doubt).
    pub processed: u64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
}

/// The metrics file of one run.
#[derive(Debug)]
pub struct MetricsFile {
    path: PathBuf,
    command: &'static str,
    manifest: String,
    started: SystemTime,
    earlier: Earlier,
}

/// What the file said before this run: the last finished run's end and exit code, and the
/// last known counts (kept when a run fails before it can count).
#[derive(Debug, Default)]
struct Earlier {
    end: Option<f64>,
    exit_code: Option<i32>,
    items: Vec<(String, f64)>,
}

impl MetricsFile {
    /// The metrics file of a run of `command` on `manifest` that started at `started`.
    pub fn new(path: &Path, command: &'static str, manifest: &Path, started: SystemTime) -> Self {
        MetricsFile {
            path: path.to_path_buf(),
            command,
            manifest: manifest.display().to_string(),
            started,
            earlier: std::fs::read_to_string(path)
                .map(|t| Earlier::parse(&t))
                .unwrap_or_default(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the state of a run that is going on.
    pub fn write_running(&self, reading: &Reading) -> Result<(), Error> {
        self.write(&self.render(Some(reading), None))
    }

    /// Writes the state of a run that ended with `exit`.
    pub fn write_finished(&self, reading: &Reading, exit: ExitCode) -> Result<(), Error> {
        let end = (SystemTime::now(), exit.code());
        self.write(&self.render(Some(reading), Some(end)))
    }

    /// Writes the end of a run that stopped on a fatal error before it could count: the
    /// exit code, and the counts the file held before.
    pub fn write_failed(&self, exit: ExitCode) -> Result<(), Error> {
        self.write(&self.render(None, Some((SystemTime::now(), exit.code()))))
    }

    /// Like [`MetricsFile::write_running`], but a failure is a warning: a migration does not
    /// stop because its metrics cannot be written.
    pub fn refresh(&self, reading: &Reading) {
        if let Err(e) = self.write_running(reading) {
            tracing::warn!("metrics file not updated: {e}");
        }
    }

    /// Runs `work` to its end, refreshing the file with `reading` every `every` meanwhile
    /// (the first time after `every`: the run wrote the file when it started).
    pub async fn refresh_during<F: Future>(
        &self,
        work: F,
        every: Duration,
        reading: impl Fn() -> Reading,
    ) -> F::Output {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = ticks.tick() => self.refresh(&reading()),
            }
        }
    }

    /// The file's text.
    fn render(&self, now: Option<&Reading>, end: Option<(SystemTime, i32)>) -> String {
        let mut out = Exposition::new(format!(
            "command=\"{}\",manifest=\"{}\"",
            escape_label(self.command),
            escape_label(&self.manifest)
        ));
        out.family(
            "running",
            "gauge",
            "1 while a run is going on, 0 once it has ended.",
        );
        out.sample("running", "", if end.is_some() { 0.0 } else { 1.0 });

        out.family(
            "items",
            "gauge",
            "Certificates of the manifest per state, as `status` counts them.",
        );
        match now {
            Some(s) => {
                for (state, n) in count_fields(&s.counts) {
                    out.sample("items", &format!("state=\"{state}\""), n as f64);
                }
            }
            None => {
                for (state, n) in &self.earlier.items {
                    out.sample("items", &format!("state=\"{}\"", escape_label(state)), *n);
                }
            }
        }

        let s = now.cloned().unwrap_or_default();
        out.family(
            "items_processed_total",
            "counter",
            "Certificates this run took to an end: done, failed or in doubt.",
        );
        out.sample("items_processed_total", "", s.processed as f64);
        out.family(
            "items_per_second",
            "gauge",
            "Certificates processed per second this run.",
        );
        let rate = if s.elapsed_s > 0.0 {
            s.processed as f64 / s.elapsed_s
        } else {
            0.0
        };
        out.sample("items_per_second", "", round3(rate));

        type Counter = (&'static str, &'static str, fn(&OpCounts) -> u64);
        let counters: [Counter; 3] = [
            ("calls_total", "AWS requests sent this run.", |c| c.calls),
            (
                "throttled_total",
                "AWS requests answered with throttling this run.",
                |c| c.throttled,
            ),
            (
                "errors_total",
                "AWS requests that failed otherwise this run.",
                |c| c.errors,
            ),
        ];
        for (name, help, value) in counters {
            out.family(name, "counter", help);
            for (op, by_scope) in &s.calls {
                for (scope, c) in by_scope {
                    // STS has no account of its own: the label stays empty.
                    let account = if scope.account == STS_ACCOUNT {
                        ""
                    } else {
                        scope.account.as_str()
                    };
                    let labels = format!(
                        "operation=\"{}\",account=\"{}\",region=\"{}\"",
                        op.name(),
                        escape_label(account),
                        escape_label(&scope.region)
                    );
                    out.sample(name, &labels, value(c) as f64);
                }
            }
        }

        out.family(
            "run_start_timestamp_seconds",
            "gauge",
            "When this run started, in seconds since the Unix epoch.",
        );
        out.sample("run_start_timestamp_seconds", "", epoch(self.started));
        let (end_at, exit_code) = match end {
            Some((at, code)) => (Some(epoch(at)), Some(code)),
            None => (self.earlier.end, self.earlier.exit_code),
        };
        if let Some(at) = end_at {
            out.family(
                "run_end_timestamp_seconds",
                "gauge",
                "When the last finished run ended, in seconds since the Unix epoch.",
            );
            out.sample("run_end_timestamp_seconds", "", at);
        }
        if let Some(code) = exit_code {
            out.family(
                "last_exit_code",
                "gauge",
                "Exit code of the last finished run: 0 done, 1 fatal, 2 invalid input, 3 some items failed, 4 stopped (runs again), 5 ledger locked.",
            );
            out.sample("last_exit_code", "", f64::from(code));
        }
        out.text
    }

    /// Replaces the file ([`crate::durable::replace`]): a reader (the collector) sees the old
    /// or the new file, never half of one.
    fn write(&self, text: &str) -> Result<(), Error> {
        crate::durable::replace(&self.path, |w| w.write_all(text.as_bytes()))
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// The metrics file a command line asks for (`--metrics-file` of a command that runs items).
#[derive(Debug, Clone)]
pub struct Request {
    path: PathBuf,
    command: &'static str,
    manifest: PathBuf,
}

impl Request {
    /// The metrics file at `path` of a run of `command` on `manifest`.
    pub fn new(path: PathBuf, command: &'static str, manifest: PathBuf) -> Request {
        Request {
            path,
            command,
            manifest,
        }
    }

    /// Records that the run that started at `started` ended on `error`. Not when another run
    /// holds the ledger: the file is that run's.
    pub fn record_failure(&self, started: SystemTime, error: &Error) {
        let exit = error.exit_code();
        let about_this_file = matches!(error, Error::Io { path, .. } if *path == self.path);
        if exit == ExitCode::Locked || about_this_file {
            return;
        }
        let file = MetricsFile::new(&self.path, self.command, &self.manifest, started);
        if let Err(e) = file.write_failed(exit) {
            tracing::warn!("metrics file not written: {e}");
        }
    }
}

impl Earlier {
    /// Reads back what an earlier run of this tool wrote (lines of other shapes are ignored).
    fn parse(text: &str) -> Earlier {
        let mut earlier = Earlier::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            match name.strip_prefix(PREFIX) {
                Some("run_end_timestamp_seconds") => earlier.end = Some(value),
                Some("last_exit_code") => earlier.exit_code = Some(value as i32),
                Some("items") => {
                    if let Some(state) = label(labels, "state") {
                        earlier.items.push((state.to_string(), value));
                    }
                }
                _ => {}
            }
        }
        earlier
    }
}

/// The value of label `name` in `a="x",b="y"}` (values of this tool never hold quotes).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

/// A text exposition being written: each family's HELP and TYPE, then its samples.
struct Exposition {
    common: String,
    text: String,
}

impl Exposition {
    fn new(common: String) -> Self {
        Exposition {
            common,
            text: String::new(),
        }
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(self.text, "# TYPE {PREFIX}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        let sep = if labels.is_empty() { "" } else { "," };
        let _ = writeln!(
            self.text,
            "{PREFIX}{name}{{{}{sep}{labels}}} {value}",
            self.common
        );
    }
}

/// The states of [`Counts`] by name, as the JSON summary names them.
fn count_fields(counts: &Counts) -> Vec<(String, u64)> {
    match serde_json::to_value(counts) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_u64()?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn epoch(t: SystemTime) -> f64 {
    round3(
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    )
}

/// Milliseconds are precise enough, and shorter to read.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path) -> MetricsFile {
        MetricsFile::new(
            &dir.join("m.prom"),
            "transfer",
            Path::new("dir/we\"ird.csv"),
            UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        )
    }

    fn reading() -> Reading {
        let mut calls = BTreeMap::new();
        calls.insert(
            Operation::TransferCertificate,
            BTreeMap::from([(
                Scope::new("111111111111", "us-east-1"),
                OpCounts {
                    calls: 12,
                    throttled: 3,
                    errors: 1,
                },
            )]),
        );
        Reading {
            counts: Counts {
                transferred: 12,
                pending: 4,
                ..Counts::default()
            },
            calls,
            processed: 12,
            elapsed_s: 4.0,
        }
    }

    #[test]
    fn a_running_snapshot_renders_every_family_with_common_labels() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path());
        f.write_running(&reading()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("m.prom")).unwrap();
        let common = r#"command="transfer",manifest="dir/we\"ird.csv""#;
        for line in [
            format!("iot_cert_migrate_running{{{common}}} 1"),
            format!("iot_cert_migrate_items{{{common},state=\"transferred\"}} 12"),
            format!("iot_cert_migrate_items{{{common},state=\"pending\"}} 4"),
            format!("iot_cert_migrate_items{{{common},state=\"in_doubt\"}} 0"),
            format!("iot_cert_migrate_calls_total{{{common},operation=\"TransferCertificate\",account=\"111111111111\",region=\"us-east-1\"}} 12"),
            format!("iot_cert_migrate_throttled_total{{{common},operation=\"TransferCertificate\",account=\"111111111111\",region=\"us-east-1\"}} 3"),
            format!("iot_cert_migrate_items_per_second{{{common}}} 3"),
            format!("iot_cert_migrate_run_start_timestamp_seconds{{{common}}} 1700000000.123"),
            "# TYPE iot_cert_migrate_calls_total counter".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        // Nothing has ended yet, and no earlier run did.
        assert!(!text.contains("last_exit_code"), "{text}");
        assert!(!text.contains("run_end_timestamp"), "{text}");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_last_finished_run_is_carried_over_while_the_next_runs() {
        let dir = tempfile::tempdir().unwrap();
        file(dir.path())
            .write_finished(&reading(), ExitCode::ItemsFailed)
            .unwrap();
        let next = file(dir.path());
        assert_eq!(next.earlier.exit_code, Some(3));
        let end = next.earlier.end.expect("end carried");
        next.write_running(&Reading::default()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("m.prom")).unwrap();
        assert!(
            text.contains("} 3\n") && text.contains("last_exit_code{"),
            "{text}"
        );
        assert!(text.contains(&format!("run_end_timestamp_seconds{{command=\"transfer\",manifest=\"dir/we\\\"ird.csv\"}} {end}")), "{text}");
        assert!(
            text.contains(
                "iot_cert_migrate_running{command=\"transfer\",manifest=\"dir/we\\\"ird.csv\"} 1"
            ),
            "{text}"
        );

        // A fatal error before counting keeps the last known counts.
        file(dir.path()).write_failed(ExitCode::Fatal).unwrap();
        let text = std::fs::read_to_string(dir.path().join("m.prom")).unwrap();
        assert!(text.contains("state=\"transferred\"} 0"), "{text}");
        assert!(
            text.contains("last_exit_code{command=\"transfer\",manifest=\"dir/we\\\"ird.csv\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("running{command=\"transfer\",manifest=\"dir/we\\\"ird.csv\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = MetricsFile::new(
            &dir.path().join("no/such/dir/m.prom"),
            "transfer",
            Path::new("m.csv"),
            SystemTime::now(),
        );
        let e = f.write_running(&Reading::default()).unwrap_err();
        assert!(e.to_string().contains("no/such/dir/m.prom"), "{e}");
    }
}
