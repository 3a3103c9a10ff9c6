//! The outputs a run writes, checked before the first AWS call: an output that cannot be
//! written is known before the work, not after it (when every call has been made and the
//! report of them is lost).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use crate::error::Error;

/// How the tool writes an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    /// A temporary file in the same directory, renamed over the path (the failure report):
    /// the directory must take a new file, and the path must not be a directory or a device.
    Replace,
    /// Written in place, from the start (a verdict CSV given as a device or a pipe, such as
    /// `/dev/stdout`): a device or a pipe is fine.
    InPlace,
}

/// Checks that `path` can be written as `how` says, without changing it: `what` names the
/// output in the message (`failure report`).
pub fn check_writable(path: &Path, what: &'static str, how: Writing) -> Result<(), Error> {
    let fail = |source: io::Error| Error::Unwritable {
        what,
        path: path.to_path_buf(),
        source,
    };
    // stat, not open: it never blocks, whatever the path is.
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(fail(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )))
        }
        Ok(m) if !m.is_file() && how == Writing::Replace => {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is not a regular file (it would be replaced)",
            )))
        }
        Ok(m) if !m.is_file() => return Ok(()),
        Ok(_) if how == Writing::InPlace => {
            // Opening for writing without truncating checks the permission and changes nothing.
            return OpenOptions::new()
                .write(true)
                .open(path)
                .map(drop)
                .map_err(fail);
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let probe = crate::durable::beside(path, "check");
    File::options()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_missing_parents_and_devices_are_refused_before_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("f.csv");
        check_writable(&ok, "failure report", Writing::Replace).unwrap();
        assert!(!ok.exists(), "the check leaves nothing behind");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let e = check_writable(dir.path(), "failure report", Writing::Replace).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("is a directory") && m.contains("failure report"),
            "{m}"
        );

        let missing = dir.path().join("no/such/dir/f.csv");
        let m = check_writable(&missing, "plan CSV", Writing::InPlace)
            .unwrap_err()
            .to_string();
        assert!(m.contains("No such file or directory"), "{m}");
        assert!(m.contains("no/such/dir/f.csv"), "{m}");

        let dev = Path::new("/dev/null");
        assert!(check_writable(dev, "plan CSV", Writing::InPlace).is_ok());
        assert!(check_writable(dev, "failure report", Writing::Replace).is_err());
    }
}
