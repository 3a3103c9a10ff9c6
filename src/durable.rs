//! The one way the tool puts an output file in place: written to a temporary file in the same
//! directory, synced, renamed over the path, and the directory synced. After a crash at any
//! moment (kill -9, power loss) the path holds the old file or the new one, whole; a reader
//! never sees half of either.
//!
//! Every output that replaces a file goes through [`Replacement`]: the failure report, the
//! HTML report, the metrics file, `select`'s manifest, the ledger's checkpoint, the plan and
//! verify CSVs. It knows only `std`, so every layer (the ledger too) can use it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written, renamed into place by [`Replacement::commit`]. Dropped without a
/// commit, it removes its temporary file and leaves the path as it was.
pub struct Replacement {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Replacement {
    /// Starts replacing `path`: creates the temporary file beside it.
    pub fn create(path: &Path) -> io::Result<Replacement> {
        let tmp = beside(path, "tmp");
        let file = File::create(&tmp)?;
        Ok(Replacement {
            path: path.to_path_buf(),
            tmp,
            file: Some(BufWriter::new(file)),
        })
    }

    /// The path this replaces.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the new content durable and puts it in place: flush, fsync the file, rename it
    /// over the path, fsync the directory (so that the rename itself survives a crash).
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("committed once");
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path)?;
        sync_dir_of(&self.path)
    }
}

impl Write for Replacement {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open until commit").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open until commit").flush()
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Not committed: the path keeps its old content; the half-written file goes.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Replaces `path` with what `fill` writes, durably (see [`Replacement`]).
pub fn replace(
    path: &Path,
    fill: impl FnOnce(&mut Replacement) -> io::Result<()>,
) -> io::Result<()> {
    let mut r = Replacement::create(path)?;
    fill(&mut r)?;
    r.commit()
}

/// Makes the directory entries of `path`'s directory durable (a new or renamed file in it).
pub fn sync_dir_of(path: &Path) -> io::Result<()> {
    let dir = parent_dir(path);
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Some file systems refuse to sync a directory; the rename itself has happened.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A hidden file beside `path`, named for it, this process and `tag` (`dir/.NAME.PID.TAG`):
/// where a file is written before it is renamed into place, or a probe of the directory.
pub fn beside(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{}.{tag}", std::process::id()))
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_replacement_is_in_place_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        replace(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        let e = replace(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        let p = beside(Path::new("report.html"), "tmp");
        assert_eq!(p.parent(), Some(Path::new(".")));
        assert!(p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".report.html."));
    }
}
