//! What a command prints on stdout, in the format chosen once for the run: text for people,
//! or one JSON object for machines.

use std::io::Write;

use serde::Serialize;

/// What a command prints on stdout, chosen once for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object, for monitoring.
    Json,
}

/// A command's result that can be shown both ways.
pub trait Render: Serialize {
    /// Writes the text form.
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// Prints `value` on stdout in `format`. A closed stdout (`| head`) is not an error.
pub fn emit<T: Render>(format: OutputFormat, value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = match format {
        OutputFormat::Json => serde_json::to_writer(&mut out, value)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out)),
        OutputFormat::Text => value.write_text(&mut out),
    };
}
