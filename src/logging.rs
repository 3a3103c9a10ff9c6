//! Log lines on stderr, as the global options ask: the tool's own at the chosen level, the
//! SDK's only from `-vv` on; text or one JSON object per line.

use std::io::IsTerminal;

use crate::cli::{GlobalArgs, LogFormat};

/// Sets up logging on stderr as the global options ask.
pub fn init(global: &GlobalArgs) {
    let level = match (global.verbose as i32) - (global.quiet as i32) {
        i32::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // Our crate at the chosen level; the SDK's own chatter only from -vv on.
    let filter = tracing_subscriber::EnvFilter::try_from_env("IOT_CERT_MIGRATE_LOG")
        .unwrap_or_else(|_| {
            let sdk = if global.verbose >= 2 { level } else { "warn" };
            tracing_subscriber::EnvFilter::new(format!("warn,iot_cert_migrate={level},aws={sdk}"))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}
