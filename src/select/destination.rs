//! Where `select` writes its manifest: a file, replaced atomically (a temporary file beside
//! it, synced, renamed over it), or stdout. The destination is opened before the first AWS
//! call, so that an unwritable path costs nothing.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::{ManifestRow, ManifestWriter};

/// The manifest's destination, checked and holding its temporary file.
#[derive(Debug)]
pub struct Destination {
    /// The final path; `None` for stdout.
    path: Option<PathBuf>,
    /// The temporary file the rows are written to first (removed if never used).
    tmp: PathBuf,
}

impl Destination {
    /// Checks that the manifest can be written to `path` (`-` is stdout): an existing file
    /// is replaced only with `force`; the temporary file is created now.
    pub fn open(path: &Path, force: bool) -> Result<Destination, Error> {
        let io = |p: &Path, source: io::Error| Error::Io {
            path: p.to_path_buf(),
            source,
        };
        if path.as_os_str() == "-" {
            let tmp = std::env::temp_dir().join(format!(
                "iot-cert-migrate-select.{}.csv",
                std::process::id()
            ));
            File::create(&tmp).map_err(|e| io(&tmp, e))?;
            return Ok(Destination { path: None, tmp });
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
        let tmp = crate::durable::beside(path, "tmp");
        File::create(&tmp).map_err(|e| io(path, e))?;
        Ok(Destination {
            path: Some(path.to_path_buf()),
            tmp,
        })
    }

    /// Whether the manifest goes to stdout.
    pub fn is_stdout(&self) -> bool {
        self.path.is_none()
    }

    /// The path for messages (`-` for stdout).
    pub fn display(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "-".into(),
        }
    }

    /// Writes the manifest: with the region column when `with_region`.
    pub fn write(self, rows: &[ManifestRow], with_region: bool) -> Result<(), Error> {
        let shown = self.path.clone().unwrap_or_else(|| PathBuf::from("-"));
        let io = |source: io::Error| Error::Io {
            path: shown.clone(),
            source,
        };
        let mut writer = ManifestWriter::create(&self.tmp, with_region).map_err(io)?;
        for row in rows {
            writer.write_row(row).map_err(io)?;
        }
        writer.finish().map_err(io)?;
        match &self.path {
            Some(path) => {
                File::open(&self.tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
                std::fs::rename(&self.tmp, path).map_err(io)?;
                // The rename itself is durable once the directory is synced.
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                } else {
                    let _ = File::open(".").and_then(|d| d.sync_all());
                }
            }
            None => {
                let mut text = File::open(&self.tmp).map_err(io)?;
                let mut out = io::stdout().lock();
                // A closed stdout (`| head`) is the reader's choice, not an error.
                match io::copy(&mut text, &mut out).and_then(|_| out.flush()) {
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(io(e)),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        // After a rename there is nothing left to remove; otherwise (stdout, or a run that
        // stopped early) the temporary file goes.
        let _ = std::fs::remove_file(&self.tmp);
    }
}
