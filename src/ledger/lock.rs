//! One run per ledger: an exclusive lock on `LEDGER.lock`, which holds the owner's pid and
//! is removed when the run ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::LedgerError;

/// The exclusive lock of one ledger: `LEDGER.lock`, holding the owner's pid, removed when
/// the run ends (a run that was killed leaves it, unlocked: the next run takes it over).
pub(super) struct LedgerLock {
    file: File,
    path: PathBuf,
}

impl LedgerLock {
    pub(super) fn acquire(ledger: &Path) -> Result<LedgerLock, LedgerError> {
        // Before the lock file is made: a ledger path that can never be a ledger leaves
        // nothing behind (and a FIFO is never opened, which could block).
        if let Ok(meta) = std::fs::metadata(ledger) {
            if !meta.is_file() {
                let (kind, what) = if meta.is_dir() {
                    (io::ErrorKind::IsADirectory, "is a directory")
                } else {
                    (io::ErrorKind::InvalidInput, "is not a regular file")
                };
                let why = format!("{what}: --ledger takes the path of a ledger file");
                return Err(LedgerError::io(ledger, io::Error::new(kind, why)));
            }
        }
        let mut p = ledger.as_os_str().to_owned();
        p.push(".lock");
        let lock_path = PathBuf::from(p);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock_path)
                .map_err(|e| LedgerError::io(&lock_path, e))?;
            match file.try_lock() {
                Ok(()) => {
                    // The run that held it may have removed the file between our open and
                    // our lock: then we hold a file no one else can see, and must lock the
                    // one at the path instead.
                    if !still_at(&file, &lock_path) {
                        continue;
                    }
                    file.set_len(0)
                        .and_then(|_| {
                            file.write_all(format!("{}\n", std::process::id()).as_bytes())
                        })
                        .and_then(|_| file.flush())
                        .map_err(|e| LedgerError::io(&lock_path, e))?;
                    return Ok(LedgerLock {
                        file,
                        path: lock_path,
                    });
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut s = String::new();
                    let _ = file.read_to_string(&mut s);
                    let pid = s.trim();
                    return Err(LedgerError::Locked {
                        path: ledger.to_path_buf(),
                        pid: if pid.is_empty() {
                            "unknown".into()
                        } else {
                            pid.to_string()
                        },
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(LedgerError::io(&lock_path, e)),
            }
        }
    }
}

/// Whether the locked `file` is the one at `path` now.
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(there)) => held.dev() == there.dev() && held.ino() == there.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at(_file: &File, _path: &Path) -> bool {
    true
}

impl Drop for LedgerLock {
    /// Removes the lock file while still holding the lock: a run waiting to take it
    /// over then finds it gone ([`still_at`]) and makes a new one. (Elsewhere than on
    /// Unix the file stays, unlocked, which is as safe.)
    fn drop(&mut self) {
        if cfg!(unix) && still_at(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_goes_with_the_lock_and_a_stale_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("m.ledger.jsonl");
        let lock_file = dir.path().join("m.ledger.jsonl.lock");
        let held = LedgerLock::acquire(&ledger).unwrap();
        assert_eq!(
            std::fs::read_to_string(&lock_file).unwrap().trim(),
            std::process::id().to_string()
        );
        // A second run is refused, naming the holder.
        match LedgerLock::acquire(&ledger) {
            Err(LedgerError::Locked { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("not refused: {:?}", other.err()),
        }
        drop(held);
        assert!(!lock_file.exists(), "the lock file outlived the lock");

        // A crashed run's file (unlocked, another pid) is taken over as before.
        std::fs::write(&lock_file, "999999\n").unwrap();
        let held = LedgerLock::acquire(&ledger).unwrap();
        assert_eq!(
            std::fs::read_to_string(&lock_file).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(held);
        assert!(!lock_file.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_taken_on_a_removed_file_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let file = File::create(&path).unwrap();
        assert!(still_at(&file, &path));
        std::fs::remove_file(&path).unwrap();
        assert!(!still_at(&file, &path), "removed");
        let _other = File::create(&path).unwrap();
        assert!(!still_at(&file, &path), "replaced by another file");
    }
}
