//! Progress on stderr: an indicatif bar on a terminal; without one, nothing unless summary
//! lines are asked for (`--progress never` or `--progress-interval`): then one line every
//! interval (no escape codes: fit for cron and log files). A clean run without a terminal
//! thus writes nothing on stderr.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::terminal;

/// The log target of progress lines: shown only where the display is lines or a bar
/// ([`ProgressSettings::shows_lines`]; the log filter turns it off elsewhere).
pub const TARGET: &str = "iot_cert_migrate::progress";

/// The bar on screen, if one is drawn: log lines are written around it.
static ON_SCREEN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `write` with the bar (if one is drawn) taken off the screen, and draws it again
/// after: a log line never lands on the bar's line.
pub fn around_bar<R>(write: impl FnOnce() -> R) -> R {
    let bar = ON_SCREEN.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(b) => b.suspend(write),
        None => write(),
    }
}

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
    /// A bar when stderr is a terminal; otherwise nothing, or a summary line every
    /// --progress-interval when that is given.
    #[default]
    Auto,
    /// Always a bar.
    Always,
    /// No bar: a summary line every --progress-interval (default 30 s).
    Never,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy)]
pub struct ProgressSettings {
    /// Bar, lines or auto.
    pub mode: ProgressMode,
    /// Between summary lines when no bar is shown.
    pub interval: Duration,
    /// `--progress-interval` was given: summary lines are asked for where no bar is drawn.
    pub interval_given: bool,
    /// `-q`: nothing.
    pub quiet: bool,
}

/// What the display of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A bar; `plain` draws it without escape sequences (`NO_COLOR`).
    Bar {
        /// Without escape sequences.
        plain: bool,
    },
    /// A summary line on stderr every interval.
    Lines,
    /// Nothing.
    Nothing,
}

impl ProgressSettings {
    /// What these settings show, with or without a terminal on stderr.
    pub fn display(&self) -> Display {
        self.display_on(terminal::stderr_is_terminal(), terminal::no_color())
    }

    fn display_on(&self, terminal: bool, no_color: bool) -> Display {
        if self.quiet {
            return Display::Nothing;
        }
        match self.mode {
            ProgressMode::Always => Display::Bar { plain: no_color },
            ProgressMode::Never => Display::Lines,
            ProgressMode::Auto if terminal => Display::Bar { plain: no_color },
            ProgressMode::Auto if self.interval_given => Display::Lines,
            ProgressMode::Auto => Display::Nothing,
        }
    }

    /// Whether a command without a bar (`select`) writes its progress lines: wherever a
    /// bar or lines would show.
    pub fn shows_lines(&self) -> bool {
        self.display() != Display::Nothing
    }
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
        let tally = Arc::new(Tally::default());
        let display = if total == 0 {
            Display::Nothing
        } else {
            settings.display()
        };
        match display {
            Display::Nothing => Progress {
                tally,
                bar: None,
                ticker: None,
            },
            Display::Bar { plain } => Self::bar(tally, total, verb, plain),
            Display::Lines => Self::lines(tally, total, verb, settings.interval),
        }
    }

    fn bar(tally: Arc<Tally>, total: u64, verb: &'static str, plain: bool) -> Self {
        let (target, template) = if plain {
            // One line that fits the terminal: without escapes it can only be redrawn
            // after a carriage return.
            (
                ProgressDrawTarget::term_like(Box::new(terminal::PlainTerm)),
                "{msg} [{wide_bar}] {pos}/{len} {rate} ETA {eta}",
            )
        } else {
            (
                ProgressDrawTarget::stderr(),
                "{spinner} {msg} [{bar:30}] {pos}/{len} {rate} ETA {eta} (elapsed {elapsed})",
            )
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template(template)
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
        if let Ok(mut on_screen) = ON_SCREEN.lock() {
            *on_screen = Some(bar.clone());
        }
        let t = tally.clone();
        let b = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                b.set_position(t.finished());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress {
            tally,
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    fn lines(tally: Arc<Tally>, total: u64, verb: &'static str, interval: Duration) -> Self {
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
                    target: TARGET,
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
            if let Ok(mut on_screen) = ON_SCREEN.lock() {
                *on_screen = None;
            }
            b.set_position(self.tally.finished());
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: ProgressMode, interval_given: bool) -> ProgressSettings {
        ProgressSettings {
            mode,
            interval: Duration::from_secs(30),
            interval_given,
            quiet: false,
        }
    }

    #[test]
    fn without_a_terminal_auto_is_silent_unless_lines_are_asked_for() {
        let auto = settings(ProgressMode::Auto, false);
        assert_eq!(auto.display_on(false, false), Display::Nothing);
        let interval = settings(ProgressMode::Auto, true);
        assert_eq!(interval.display_on(false, false), Display::Lines);
        let never = settings(ProgressMode::Never, false);
        assert_eq!(never.display_on(false, false), Display::Lines);
        assert_eq!(never.display_on(true, false), Display::Lines);
    }

    #[test]
    fn on_a_terminal_auto_draws_a_bar_without_escapes_under_no_color() {
        let auto = settings(ProgressMode::Auto, true);
        assert_eq!(auto.display_on(true, false), Display::Bar { plain: false });
        assert_eq!(auto.display_on(true, true), Display::Bar { plain: true });
        let always = settings(ProgressMode::Always, false);
        assert_eq!(always.display_on(false, true), Display::Bar { plain: true });
    }

    #[test]
    fn quiet_shows_nothing() {
        for mode in [
            ProgressMode::Auto,
            ProgressMode::Always,
            ProgressMode::Never,
        ] {
            let mut s = settings(mode, true);
            s.quiet = true;
            assert_eq!(s.display_on(true, false), Display::Nothing, "{mode:?}");
        }
    }
}
