//! `validate`: checks a manifest offline; calls nothing.

use serde::Serialize;

use std::io::Write;

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::error::{Error, ExitCode};
use crate::manifest::Manifest;
use crate::output::{self, Render};

#[derive(Serialize)]
struct ValidateSummary<'a> {
    manifest: String,
    valid: bool,
    certificates: usize,
    warnings: usize,
    sha256: &'a str,
}

/// Runs `validate`: exit 0 when the manifest is valid, 2 (with every problem listed) when not.
pub fn run(global: &GlobalArgs, args: ValidateArgs) -> Result<ExitCode, Error> {
    let manifest = Manifest::load(&args.manifest)?;
    for w in manifest.warnings() {
        tracing::warn!("{}:{w}", args.manifest.display());
    }
    let summary = ValidateSummary {
        manifest: args.manifest.display().to_string(),
        valid: true,
        certificates: manifest.len(),
        warnings: manifest.warning_count(),
        sha256: manifest.sha256(),
    };
    output::emit(global.output, &summary);
    Ok(ExitCode::Success)
}

impl Render for ValidateSummary<'_> {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{}: valid, {}, {}",
            self.manifest,
            output::count(self.certificates, "certificate"),
            output::count(self.warnings, "warning")
        )
    }
}
