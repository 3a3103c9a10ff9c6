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
//! `IOT_CERT_MIGRATE_LOG` replaces all of this with a tracing filter of its own.

use std::io::IsTerminal;

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
}

/// The environment variable that replaces the filter of `-v`/`-q`.
pub const LOG_ENV: &str = "IOT_CERT_MIGRATE_LOG";

/// The tracing filter that `-v` (counted `verbose` times) and `-q` (`quiet` times) ask for.
pub fn directives(verbose: u8, quiet: u8) -> String {
    match i32::from(verbose) - i32::from(quiet) {
        i32::MIN..=-2 => "off,iot_cert_migrate=error".into(),
        -1 => "off,iot_cert_migrate=warn".into(),
        0 => "off,iot_cert_migrate=info".into(),
        1 => "warn,iot_cert_migrate=debug".into(),
        // The operation crates log one DEBUG line per request (its span names the operation
        // and the attempt, the line the request id); aws-config tells where credentials and
        // region came from. The runtime's DEBUG and TRACE lines are wire level: about 30
        // lines of 500 bytes per request, 8 MB for 28 certificates.
        2 => "warn,iot_cert_migrate=debug,aws_sdk_iot=debug,aws_sdk_sts=debug,aws_config=debug"
            .into(),
        _ => "trace".into(),
    }
}

/// Sets up logging on stderr as `settings` ask.
pub fn init(settings: LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(directives(settings.verbose, settings.quiet))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn other_crates_are_silent_without_verbose() {
        for (v, q) in [(0, 0), (0, 1), (0, 2), (0, 5), (1, 2)] {
            assert!(directives(v, q).starts_with("off,"), "-v{v} -q{q}");
        }
        assert!(directives(1, 0).starts_with("warn,"));
        assert!(directives(2, 0).contains("aws_sdk_iot=debug"));
        assert!(!directives(2, 0).contains("aws_smithy"));
        assert_eq!(directives(3, 0), "trace");
        assert_eq!(directives(9, 0), "trace");
    }

    #[test]
    fn every_level_is_a_valid_filter() {
        for v in 0..4 {
            for q in 0..3 {
                let d = directives(v, q);
                tracing_subscriber::EnvFilter::try_new(&d).unwrap_or_else(|e| panic!("{d}: {e}"));
            }
        }
    }
}
