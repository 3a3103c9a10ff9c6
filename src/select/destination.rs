//! Where `select` writes its manifest: a file, replaced durably ([`crate::durable`]), or
//! stdout. The destination is checked before the first AWS call, so that an unwritable path
//! costs nothing.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::files::{check_writable, Writing};
use crate::manifest::{ManifestRow, ManifestWriter};

/// The manifest's destination, checked.
#[derive(Debug)]
pub enum Destination {
    /// A file, replaced once the manifest is whole (a run that stops early leaves it as it
    /// was).
    File(PathBuf),
    /// Standard output (`--out -`).
    Stdout,
}

impl Destination {
    /// Checks that the manifest can be written to `path` (`-` is stdout): an existing file
    /// is replaced only with `force`, and the directory must take a new file.
    pub fn open(path: &Path, force: bool) -> Result<Destination, Error> {
        if path.as_os_str() == "-" {
            return Ok(Destination::Stdout);
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(Error::Usage(format!(
                    "--out {}: is a directory; name the manifest file to write",
                    path.display()
                )))
            }
            Ok(_) if !force => {
                return Err(Error::Usage(format!(
                    "--out {}: the file exists; pass --force to replace it",
                    path.display()
                )))
            }
            _ => {}
        }
        check_writable(path, "manifest", Writing::Replace)?;
        Ok(Destination::File(path.to_path_buf()))
    }

    /// Whether the manifest goes to stdout.
    pub fn is_stdout(&self) -> bool {
        matches!(self, Destination::Stdout)
    }

    /// The path for messages (`-` for stdout).
    pub fn display(&self) -> String {
        match self {
            Destination::File(path) => path.display().to_string(),
            Destination::Stdout => "-".into(),
        }
    }

    /// Writes the manifest: with the region column when `with_region`.
    pub fn write(self, rows: &[ManifestRow], with_region: bool) -> Result<(), Error> {
        match self {
            Destination::File(path) => {
                crate::durable::replace(&path, |w| write_rows(w, rows, with_region))
                    .map_err(|e| Error::io(&path, e))
            }
            Destination::Stdout => {
                let out = BufWriter::new(io::stdout().lock());
                match write_rows(out, rows, with_region) {
                    // A closed stdout (`| head`) is the reader's choice, not an error.
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                        Err(Error::io(Path::new("-"), e))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

fn write_rows(out: impl Write, rows: &[ManifestRow], with_region: bool) -> io::Result<()> {
    let mut writer = ManifestWriter::new(out, with_region)?;
    for row in rows {
        writer.write_row(row)?;
    }
    writer.finish()
}
