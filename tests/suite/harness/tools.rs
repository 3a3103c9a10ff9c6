//! Outside tools some tests use (bash, man, Python, Chromium), found or skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// In CI a missing tool or artefact fails the test; elsewhere the test says it skipped.
pub fn skip_or_fail(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} (CI=true: not skipping)");
    }
    skipped(what);
}

/// Says on the process's stderr that a test skipped and why. Not `eprintln!`: the test
/// harness captures that, and never shows a passing test's captured output.
pub fn skipped(what: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {what}");
}

/// `PATH`'s copy of `tool`, if any.
pub fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

/// A Python that can import `module`: `IOT_CERT_MIGRATE_PYTHON`, the CI virtualenv that
/// `.ci/run` makes in `target/ci-venv`, or `python3` on `PATH`.
pub fn python_with(module: &str) -> Result<PathBuf, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = std::env::var_os("IOT_CERT_MIGRATE_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([repo.join("target/ci-venv/bin/python")])
        .chain(on_path("python3"));
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python);
        }
    }
    Err(format!(
        "no Python with {module} (.ci/run installs it in target/ci-venv; or set IOT_CERT_MIGRATE_PYTHON)"
    ))
}
