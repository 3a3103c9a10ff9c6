//! Log lines on stderr, as the global options ask: text or one JSON object per line.
//!
//! Quiet by default: the tool's own lines only. The AWS SDK and aws-config log through
//! `tracing` too, and even their warnings are noise for an operator (a missing profile
//! file, the instance-metadata region lookup failing on a laptop): the tool turns what
//! matters into one clear line of its own. So other crates speak only from `-v` on:
//!
//! | flags | the tool | others (SDK, aws-config, hyper) |
//! |---|---|---|
//! | `-qq` / `-q` | errors / warnings | nothing |
//! | (none) | info | nothing |
//! | `-v` | debug | warnings |
//! | `-vv` | debug | warnings, and one line per SDK request (operation, attempt, request id) |
//! | `-vvv` | trace | everything, wire level (signing, headers, bodies) |
//!
//! Progress lines (target `iot_cert_migrate::progress`) show only where the progress display
//! is a bar or lines: without a terminal, a clean run writes nothing on stderr unless lines
//! are asked for. `IOT_CERT_MIGRATE_LOG` replaces all of this with a tracing filter of its own.

use std::time::SystemTime;

use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::fmt::time::FormatTime;

use crate::terminal;

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What the command line asks of the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSettings {
    /// `-v` counted.
    pub verbose: u8,
    /// `-q` counted.
    pub quiet: u8,
    /// Text or JSON lines.
    pub format: LogFormat,
    /// Whether progress lines (target [`crate::progress::TARGET`]) are shown: where the
    /// progress display is a bar or lines, not in a pipe unless asked for.
    pub progress_lines: bool,
}

/// The environment variable that replaces the filter of `-v`/`-q`.
pub const LOG_ENV: &str = "IOT_CERT_MIGRATE_LOG";

/// The tracing filter that `-v` (counted `verbose` times) and `-q` (`quiet` times) ask for;
/// progress lines only with `progress_lines`.
pub fn directives(verbose: u8, quiet: u8, progress_lines: bool) -> String {
    let levels: &str = match i32::from(verbose) - i32::from(quiet) {
        i32::MIN..=-2 => "off,iot_cert_migrate=error",
        -1 => "off,iot_cert_migrate=warn",
        0 => "off,iot_cert_migrate=info",
        1 => "warn,iot_cert_migrate=debug",
        // The operation crates log one DEBUG line per request (its span names the operation
        // and the attempt, the line the request id); aws-config tells where credentials and
        // region came from. The runtime's DEBUG and TRACE lines are wire level: about 30
        // lines of 500 bytes per request, 8 MB for 28 certificates.
        2 => "warn,iot_cert_migrate=debug,aws_sdk_iot=debug,aws_sdk_sts=debug,aws_config=debug",
        _ => "trace",
    };
    if progress_lines {
        levels.to_string()
    } else {
        format!("{levels},{}=off", crate::progress::TARGET)
    }
}

/// Log times on a terminal: UTC to the second (`2026-11-22T01:14:17Z`); a person reads
/// them, and the ledger has the milliseconds.
struct Seconds;

impl FormatTime for Seconds {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(
            w,
            "{}",
            humantime::format_rfc3339_seconds(SystemTime::now())
        )
    }
}

/// Stderr, with the progress bar taken off the screen while a line is written.
struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::progress::around_bar(|| std::io::stderr().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        // One event is one write_all: the bar is redrawn once, after the whole line.
        crate::progress::around_bar(|| std::io::stderr().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Sets up logging on stderr as `settings` ask. On a terminal, lines are short: time to
/// the second, the message, and the key=value details (certificate ids, ...) only from
/// `-v`; colour unless `NO_COLOR`. Elsewhere (files, cron) every line is whole, in
/// microseconds, without colour.
pub fn init(settings: LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(directives(
            settings.verbose,
            settings.quiet,
            settings.progress_lines,
        ))
    });
    let on_terminal = terminal::stderr_is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_ansi(on_terminal && !terminal::no_color() && settings.format == LogFormat::Text);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text if !on_terminal => builder.with_target(false).try_init(),
        LogFormat::Text => {
            let short = builder.with_target(false).with_timer(Seconds);
            if settings.verbose > 0 {
                short.try_init()
            } else {
                short
                    .fmt_fields(debug_fn(|w, field, value| {
                        if field.name() == "message" {
                            write!(w, "{value:?}")
                        } else {
                            Ok(())
                        }
                    }))
                    .try_init()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn other_crates_are_silent_without_verbose() {
        for (v, q) in [(0, 0), (0, 1), (0, 2), (0, 5), (1, 2)] {
            assert!(directives(v, q, true).starts_with("off,"), "-v{v} -q{q}");
        }
        assert!(directives(1, 0, true).starts_with("warn,"));
        assert!(directives(2, 0, true).contains("aws_sdk_iot=debug"));
        assert!(!directives(2, 0, true).contains("aws_smithy"));
        assert_eq!(directives(3, 0, true), "trace");
        assert_eq!(directives(9, 0, true), "trace");
    }

    #[test]
    fn every_level_is_a_valid_filter() {
        for v in 0..4 {
            for q in 0..3 {
                let d = directives(v, q, q == 1);
                tracing_subscriber::EnvFilter::try_new(&d).unwrap_or_else(|e| panic!("{d}: {e}"));
            }
        }
    }

    #[test]
    fn progress_lines_are_off_unless_shown() {
        let off = directives(0, 0, false);
        assert!(off.ends_with(",iot_cert_migrate::progress=off"), "{off}");
        assert!(!directives(0, 0, true).contains("progress"));
    }
}
