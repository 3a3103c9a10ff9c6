//! The CSV a verdict writes (`--plan-out`, `verify --out`): one row per certificate, in
//! manifest order, opened before the first AWS call. A regular file is replaced durably
//! ([`Replacement`]): a run killed at any moment leaves the old file or the new one, whole. A
//! device or a pipe (`/dev/stdout`) is written in place.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::durable::Replacement;
use crate::error::Error;
use crate::files::{check_writable, Writing};
use crate::report::neutralise;

/// A verdict's CSV being written; in place once [`VerdictCsv::finish`]ed.
pub struct VerdictCsv {
    path: PathBuf,
    writer: csv::Writer<Sink>,
}

/// Where the rows go.
enum Sink {
    /// A temporary file beside the path, renamed over it at the end.
    Replacing(Replacement),
    /// A device or a pipe: nothing to rename.
    InPlace(File),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Replacing(r) => r.write(buf),
            Sink::InPlace(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Replacing(r) => r.flush(),
            Sink::InPlace(f) => f.flush(),
        }
    }
}

impl VerdictCsv {
    /// Opens the CSV at `path` (`what` names it in errors: `plan CSV`). Call it before the
    /// work: an unwritable path is known before the first AWS call, and the old file stays
    /// as it is until the new one is complete.
    pub fn create(path: &Path, what: &'static str) -> Result<VerdictCsv, Error> {
        // stat, not open: a FIFO is only opened once it is known to be one.
        let device = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        let sink = if device {
            check_writable(path, what, Writing::InPlace)?;
            let file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            Sink::InPlace(file)
        } else {
            check_writable(path, what, Writing::Replace)?;
            Sink::Replacing(Replacement::create(path).map_err(|e| Error::io(path, e))?)
        };
        Ok(VerdictCsv {
            path: path.to_path_buf(),
            writer: csv::Writer::from_writer(sink),
        })
    }

    /// The path given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one row. Names and AWS messages come from outside: the cells are neutralised
    /// so that a spreadsheet does not run them as formulas.
    pub fn write<S: AsRef<str>>(
        &mut self,
        cells: impl IntoIterator<Item = S>,
    ) -> Result<(), Error> {
        self.writer
            .write_record(
                cells
                    .into_iter()
                    .map(|c| neutralise(c.as_ref()).into_owned()),
            )
            .map_err(|e| Error::io(&self.path, e.into()))
    }

    /// Puts the CSV in place: a regular file is synced and renamed over the path.
    pub fn finish(self) -> Result<(), Error> {
        let path = self.path;
        let sink = self
            .writer
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        match sink {
            Sink::Replacing(r) => r.commit(),
            Sink::InPlace(mut f) => f.flush(),
        }
        .map_err(|e| Error::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_csv_leaves_the_old_file_and_a_finished_one_replaces_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.csv");
        std::fs::write(&path, "old\n").unwrap();
        let mut csv = VerdictCsv::create(&path, "plan CSV").unwrap();
        csv.write(["certificate_id", "detail"]).unwrap();
        csv.write(["abc", "=1+1"]).unwrap();
        drop(csv);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut csv = VerdictCsv::create(&path, "plan CSV").unwrap();
        csv.write(["certificate_id", "detail"]).unwrap();
        csv.write(["abc", "=1+1"]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        csv.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "certificate_id,detail\nabc,'=1+1\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_device_is_written_in_place_and_a_directory_is_refused_before_the_work() {
        let mut csv = VerdictCsv::create(Path::new("/dev/null"), "verify CSV").unwrap();
        csv.write(["a", "b"]).unwrap();
        csv.finish().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let m = VerdictCsv::create(dir.path(), "verify CSV")
            .err()
            .expect("a directory is refused")
            .to_string();
        assert!(
            m.contains("verify CSV") && m.contains("is a directory"),
            "{m}"
        );
    }
}
