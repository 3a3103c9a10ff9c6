//! The one way the tool puts an output file in place: written to a temporary file in the same
//! directory, synced, renamed over the path, and the directory synced. After a crash at any
//! moment (kill -9, power loss) the path holds the old file or the new one, whole; a reader
//! never sees half of either.
//!
//! Every output that replaces a file goes through [`Replacement`]: the failure report, the
//! HTML report, the metrics file, `select`'s manifest, the ledger's checkpoint, the plan and
//! verify CSVs. It knows only `std`, so every layer (the ledger too) can use it.
//!
//! A process killed between the temporary file's creation and the rename leaves that file
//! behind (`.NAME.PID.tmp`, a dot file: collectors that read `*.prom` or `*.csv` skip it).
//! The next write of the same path removes those whose process is no longer running
//! ([`left_behind`]).

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Buffer between the writer and the temporary file.
const BUFFER_BYTES: usize = 64 * 1024;

/// The tag of the temporary file beside the path ([`beside`]).
const TEMPORARY: &str = "tmp";

/// A file being written, renamed into place by [`Replacement::commit`]. Dropped without a
/// commit, it removes its temporary file and leaves the path as it was.
pub struct Replacement {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Replacement {
    /// Starts replacing `path`: removes what earlier writes that were killed left beside it
    /// ([`left_behind`]), then creates the temporary file.
    pub fn create(path: &Path) -> io::Result<Replacement> {
        for stale in left_behind(path) {
            // Best effort: one that cannot be removed only takes some space.
            let _ = std::fs::remove_file(stale);
        }
        let tmp = beside(path, TEMPORARY);
        let file = File::create(&tmp)?;
        Ok(Replacement {
            path: path.to_path_buf(),
            tmp,
            file: Some(BufWriter::with_capacity(BUFFER_BYTES, file)),
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

impl fmt::Debug for Replacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replacement")
            .field("path", &self.path)
            .field("tmp", &self.tmp)
            .finish_non_exhaustive()
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

/// The temporary files beside `path` that writes of it by processes no longer running left
/// behind (`.NAME.PID.tmp`): a write killed before its rename. Those of a running process
/// (another run writing the same path right now) are not listed. Only where the running
/// processes can be told (Linux's `/proc`); elsewhere none are.
pub fn left_behind(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else {
        return Vec::new();
    };
    let prefix = format!(".{name}.");
    let suffix = format!(".{TEMPORARY}");
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let file_name = entry.file_name();
            let pid: u32 = file_name
                .to_str()?
                .strip_prefix(&prefix)?
                .strip_suffix(&suffix)?
                .parse()
                .ok()?;
            (process_ended(pid) == Some(true)).then(|| entry.path())
        })
        .collect()
}

/// Whether process `pid` has ended; `None` when this system cannot tell.
fn process_ended(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !cfg!(target_os = "linux") || !proc.join("self").exists() {
        return None;
    }
    Some(!proc.join(pid.to_string()).exists())
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

    /// The pid of a process that has ended.
    fn ended_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    }

    #[test]
    fn a_write_removes_what_killed_writes_of_the_same_path_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let dead = ended_pid();
        let stale = dir.path().join(format!(".out.csv.{dead}.tmp"));
        // Another path's, a running process's (this one's parent), and files of other shapes.
        let keep = [
            format!(".other.csv.{dead}.tmp"),
            format!(".out.csv.{}.tmp", std::os::unix::process::parent_id()),
            format!(".out.csv.{dead}.check"),
            format!(".out.csv.x{dead}.tmp"),
            format!("out.csv.{dead}.tmp"),
        ];
        for name in keep.iter().chain([&format!(".out.csv.{dead}.tmp")]) {
            std::fs::write(dir.path().join(name), "half").unwrap();
        }
        if process_ended(dead).is_none() {
            return; // this system cannot tell which processes run: nothing is removed
        }
        assert_eq!(left_behind(&path), vec![stale.clone()]);
        replace(&path, |w| w.write_all(b"new")).unwrap();
        assert!(!stale.exists());
        for name in &keep {
            assert!(dir.path().join(name).exists(), "{name} was removed");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
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
