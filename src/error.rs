//! The library's error type and the process exit codes it maps to.

use std::path::PathBuf;

use crate::ledger::LedgerError;
use crate::manifest::ManifestError;

/// Exit codes, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every item reached the goal (transferred, or already pending to its target).
    Success = 0,
    /// Fatal error: credentials refused, a missing permission or another configuration cause
    /// (circuit breaker, canary), unreadable or unwritable files, a full disk.
    Fatal = 1,
    /// Invalid command line, manifest or ledger, credentials of the wrong account, or the
    /// first certificates all refused for one reason; nothing was done.
    Invalid = 2,
    /// Finished, but some items failed or wait for an option: see the failure report.
    ItemsFailed = 3,
    /// Stopped before finishing (signal, --max-duration, --max-items, items still in doubt,
    /// retryable failures, AWS failing or unreachable, also at the canary): run the same
    /// command again to resume.
    Stopped = 4,
    /// Another run holds this ledger.
    Locked = 5,
}

impl ExitCode {
    /// Every exit code, in order (the README's tables and `--help` list each).
    pub const ALL: [ExitCode; 6] = [
        ExitCode::Success,
        ExitCode::Fatal,
        ExitCode::Invalid,
        ExitCode::ItemsFailed,
        ExitCode::Stopped,
        ExitCode::Locked,
    ];

    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The text `--help` shows about exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  every item done (transferred, or already pending to its target)
  1  fatal: credentials refused, a missing permission or a wrong region (circuit
     breaker, canary), unreadable or unwritable files, a full disk; fix the cause,
     then run again
  2  invalid command line, manifest or ledger, credentials of the wrong account, or
     the first certificates all refused for one reason (the message names the fix);
     nothing was done
  3  finished, some items failed or wait for an option (see the failure report)
  4  stopped before finishing (signal, --max-duration, --max-items, AWS failing or
     unreachable, retryable failures, also when they stop the canary); run the same
     command again to resume
  5  another run holds this ledger";

/// Everything that can stop a command as a whole (per-item failures never do).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest is unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The ledger is locked, damaged or unwritable.
    #[error("{}{}", .0, ledger_hint(.0))]
    Ledger(#[from] LedgerError),
    /// AWS configuration or credentials are unusable.
    #[error("{0}")]
    Config(String),
    /// AWS could not be reached or refused the credentials before any item was processed.
    #[error("{0}")]
    Aws(String),
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// The run refused to start: its credentials or region do not belong with the ledger or
    /// the manifest. Nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// An output of the run cannot be written (found before any AWS call).
    #[error("cannot write the {what} {}: {source}", path.display())]
    Unwritable {
        /// Which output (`failure report`).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The run stopped early on purpose (the circuit breaker tripped): the message says why
    /// and what to do; the summary was written.
    #[error("{message}")]
    Halted {
        /// What happened, the likely cause, what to do.
        message: String,
        /// The exit code the cause calls for.
        code: ExitCode,
    },
}

/// What to do about a ledger that could not be written.
fn ledger_hint(e: &LedgerError) -> &'static str {
    use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    match e {
        LedgerError::Io { source, .. }
            if matches!(source.kind(), StorageFull | QuotaExceeded | FileTooLarge) =>
        {
            "; every event recorded before is on disk: free some space and run the same command again"
        }
        LedgerError::WriterGone => "; every event recorded before is on disk: run the same command again",
        _ => "",
    }
}

impl Error {
    /// A file could not be read or written: the one way an I/O error on a path becomes an
    /// [`Error`].
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Manifest(e) if e.is_bad_input() => ExitCode::Invalid,
            Error::Manifest(_) => ExitCode::Fatal,
            Error::Ledger(LedgerError::Locked { .. }) => ExitCode::Locked,
            Error::Ledger(
                LedgerError::Damaged { .. }
                | LedgerError::WrongKind { .. }
                | LedgerError::NewerFormat { .. },
            ) => ExitCode::Invalid,
            Error::Ledger(_) => ExitCode::Fatal,
            Error::Usage(_) | Error::Refused(_) => ExitCode::Invalid,
            Error::Config(_) | Error::Aws(_) | Error::Io { .. } | Error::Unwritable { .. } => {
                ExitCode::Fatal
            }
            Error::Halted { code, .. } => *code,
        }
    }

    /// The message for people: the error and each of its causes that it does not already
    /// say (the library's messages include their cause, so printing the whole chain would
    /// repeat it).
    pub fn report(&self) -> String {
        one_line(self)
    }
}

/// An error and its sources on one line, each message once: the SDK's own rendering
/// (`DisplayErrorContext`) appends a debug dump of the whole error, hundreds of characters
/// of headers and bodies that tell an operator nothing more.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let msg = e.to_string();
        // SDK errors often repeat their source's message in their own.
        if !msg.is_empty() && !line.contains(&msg) {
            line.push_str(": ");
            line.push_str(&msg);
        }
        source = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_exit_code_once() {
        let listed: Vec<i32> = EXIT_CODES_HELP
            .lines()
            .filter_map(|l| l.strip_prefix("  ")?.split("  ").next()?.parse().ok())
            .collect();
        let all: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(listed, all);
    }

    #[test]
    fn a_report_says_each_cause_once() {
        let e = Error::Io {
            path: PathBuf::from("/x/y.csv"),
            source: std::io::Error::from_raw_os_error(21),
        };
        let text = e.report();
        assert_eq!(text.matches("os error 21").count(), 1, "{text}");
        assert!(text.starts_with("/x/y.csv: "), "{text}");
        let e = Error::from(LedgerError::Io {
            path: PathBuf::from("/l.jsonl"),
            source: std::io::Error::from_raw_os_error(28),
        });
        let text = e.report();
        assert_eq!(text.matches("os error 28").count(), 1, "{text}");
        assert!(text.contains("/l.jsonl"), "{text}");
        assert_eq!(e.exit_code(), ExitCode::Fatal);
    }
}
