//! Progress on stderr: an indicatif bar on a terminal, otherwise one summary line every
//! `--progress-interval` seconds (no escape codes: fit for cron and log files).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters of the current run, shared by the workers and the display.
#[derive(Debug, Default)]
pub struct Tally {
    /// Items finished successfully this run.
    pub done: AtomicU64,
    /// Items that failed this run.
    pub failed: AtomicU64,
    /// Items left in doubt this run.
    pub in_doubt: AtomicU64,
    /// Items whose open intent was settled, with nothing more to do this run.
    pub settled: AtomicU64,
}

impl Tally {
    /// Items this run took to an end so far: done, failed, in doubt or only settled.
    pub fn finished(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.in_doubt.load(Ordering::Relaxed)
            + self.settled.load(Ordering::Relaxed)
    }
}

/// When to show a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, else a summary line every --progress-interval.
    #[default]
    Auto,
    /// Always a bar.
    Always,
    /// No bar; summary lines every --progress-interval.
    Never,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy)]
pub struct ProgressSettings {
    /// Bar, lines or auto.
    pub mode: ProgressMode,
    /// Between summary lines when no bar is shown.
    pub interval: Duration,
    /// `-q`: nothing.
    pub quiet: bool,
}

/// The progress display of one run.
pub struct Progress {
    tally: Arc<Tally>,
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress of `total` items; `verb` names the work.
    pub fn start(settings: &ProgressSettings, total: u64, verb: &'static str) -> Self {
        let ProgressSettings {
            mode,
            interval,
            quiet,
        } = *settings;
        let tally = Arc::new(Tally::default());
        let use_bar = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        if quiet || total == 0 {
            return Progress {
                tally,
                bar: None,
                ticker: None,
            };
        }
        if use_bar {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} {rate} ETA {eta} (elapsed {elapsed})",
            )
            .expect("progress template")
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", s.per_sec());
                },
            )
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(verb);
            bar.enable_steady_tick(Duration::from_millis(200));
            let t = tally.clone();
            let b = bar.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    b.set_position(t.finished());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            return Progress {
                tally,
                bar: Some(bar),
                ticker: Some(ticker),
            };
        }
        let t = tally.clone();
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let n = t.finished();
                let secs = started.elapsed().as_secs_f64();
                let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
                let eta = if rate > 0.0 {
                    format!("{}s", ((total.saturating_sub(n)) as f64 / rate).round())
                } else {
                    "unknown".into()
                };
                tracing::info!(
                    "progress: {verb} {n}/{total} (done {}, failed {}, in doubt {}), {rate:.1}/s, ETA {eta}",
                    t.done.load(Ordering::Relaxed),
                    t.failed.load(Ordering::Relaxed),
                    t.in_doubt.load(Ordering::Relaxed),
                );
            }
        });
        Progress {
            tally,
            bar: None,
            ticker: Some(ticker),
        }
    }

    /// The counters the workers update.
    pub fn tally(&self) -> Arc<Tally> {
        self.tally.clone()
    }

    /// Prints a line without tearing the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Stops the display.
    pub fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        if let Some(b) = self.bar {
            b.set_position(self.tally.finished());
            b.finish_and_clear();
        }
    }
}
