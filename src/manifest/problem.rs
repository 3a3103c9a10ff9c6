//! What is wrong with a manifest: problems with their line and column, the error that
//! lists them, and the collectors the parser reports to.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::{thousands, MAX_KEPT_PROBLEMS};

/// A problem (or warning) found in a manifest.
///
/// Displays as `line:column: message`, or `line: message` when it concerns a
/// whole row or the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Physical line (1-based) where the offending row starts.
    pub line: u64,
    /// 1-based field index of the offending cell, if it concerns one cell.
    pub column: Option<usize>,
    /// Name of that column as written in the header.
    pub column_name: Option<String>,
    /// What is wrong, naming the column and quoting the value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "{}:{}: {}", self.line, column, self.message),
            None => write!(f, "{}: {}", self.line, self.message),
        }
    }
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file does not exist: bad input rather than a system
    /// failure, hence its own variant so the caller can choose the exit code.
    #[error("manifest {} does not exist", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but could not be read (permissions, a directory, an
    /// I/O failure).
    #[error("cannot read manifest {}: {source}", path.display())]
    Io {
        /// The manifest path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The content is invalid. Displays a summary line, then each kept
    /// problem as `path:line:column: message`, then `... and N more problems`
    /// when some were not kept.
    #[error("{}", InvalidReport { path, problems, total: *total })]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// The first [`MAX_KEPT_PROBLEMS`] problems, by line.
        problems: Vec<Problem>,
        /// How many problems there are in all.
        total: usize,
    },
    /// The file changed after [`Manifest::load`] validated it (found while
    /// streaming its rows); load it again.
    #[error(
        "manifest {} changed since it was validated: load it again",
        path.display()
    )]
    Changed {
        /// The manifest path.
        path: PathBuf,
    },
}

impl ManifestError {
    /// The manifest path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::NotFound { path }
            | ManifestError::Io { path, .. }
            | ManifestError::Invalid { path, .. }
            | ManifestError::Changed { path } => path,
        }
    }

    /// Whether the error is the user's input (a missing or invalid manifest)
    /// rather than a failure of the system.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ManifestError::NotFound { .. } | ManifestError::Invalid { .. }
        )
    }
}

/// Display helper of [`ManifestError::Invalid`].
pub(super) struct InvalidReport<'a> {
    pub(super) path: &'a Path,
    pub(super) problems: &'a [Problem],
    pub(super) total: usize,
}

impl fmt::Display for InvalidReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let plural = if self.total == 1 { "" } else { "s" };
        write!(
            f,
            "invalid manifest {path}: {} problem{plural}",
            thousands(self.total)
        )?;
        for problem in self.problems {
            write!(f, "\n{path}:{problem}")?;
        }
        let more = self.total.saturating_sub(self.problems.len());
        if more > 0 {
            let plural = if more == 1 { "" } else { "s" };
            write!(f, "\n... and {} more problem{plural}", thousands(more))?;
        }
        Ok(())
    }
}

/// Receives the problems found while parsing.
pub(super) trait Report {
    /// `column` is the 0-based field index and the column's name; `message`
    /// is only called when the problem is kept.
    fn report(
        &mut self,
        line: u64,
        column: Option<(usize, &str)>,
        message: impl FnOnce() -> String,
    );
}

/// Keeps the [`MAX_KEPT_PROBLEMS`] first problems by (line, column) and
/// counts all of them. Problems mostly arrive in line order, but duplicates
/// are found after sorting, hence a bounded max-heap rather than a prefix.
#[derive(Default)]
pub(super) struct Collector {
    pub(super) kept: BinaryHeap<Ranked>,
    pub(super) total: usize,
    pub(super) seq: u64,
}

pub(super) struct Ranked {
    pub(super) key: (u64, usize, u64),
    pub(super) problem: Problem,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl Report for Collector {
    fn report(
        &mut self,
        line: u64,
        column: Option<(usize, &str)>,
        message: impl FnOnce() -> String,
    ) {
        self.total += 1;
        self.seq += 1;
        let key = (line, column.map_or(0, |(index, _)| index + 1), self.seq);
        if self.kept.len() >= MAX_KEPT_PROBLEMS
            && self.kept.peek().is_some_and(|last| key >= last.key)
        {
            return; // Would not be kept: do not even format it.
        }
        self.kept.push(Ranked {
            key,
            problem: Problem {
                line,
                column: column.map(|(index, _)| index + 1),
                column_name: column.map(|(_, name)| name.to_owned()),
                message: message(),
            },
        });
        if self.kept.len() > MAX_KEPT_PROBLEMS {
            self.kept.pop();
        }
    }
}

impl Collector {
    pub(super) fn into_sorted(self) -> (Vec<Problem>, usize) {
        let kept = self.kept.into_sorted_vec();
        (
            kept.into_iter().map(|ranked| ranked.problem).collect(),
            self.total,
        )
    }

    pub(super) fn into_invalid(self, path: &Path) -> ManifestError {
        let (problems, total) = self.into_sorted();
        ManifestError::Invalid {
            path: path.to_path_buf(),
            problems,
            total,
        }
    }
}

/// Notes only whether there was any problem (pass 2).
#[derive(Default)]
pub(super) struct Flag(pub(super) bool);

impl Report for Flag {
    fn report(&mut self, _: u64, _: Option<(usize, &str)>, _: impl FnOnce() -> String) {
        self.0 = true;
    }
}
