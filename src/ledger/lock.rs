//! One run per ledger: an exclusive lock on `LEDGER.lock`, which holds the owner's pid.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::LedgerError;

/// The exclusive lock of one ledger: `LEDGER.lock`, holding the owner's pid.
pub(super) struct LedgerLock {
    _file: File,
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
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| LedgerError::io(&lock_path, e))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
                    .and_then(|_| file.flush())
                    .map_err(|e| LedgerError::io(&lock_path, e))?;
                Ok(LedgerLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                let pid = s.trim();
                Err(LedgerError::Locked {
                    path: ledger.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(LedgerError::io(&lock_path, e)),
        }
    }
}
