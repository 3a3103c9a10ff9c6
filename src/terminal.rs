//! What the tool may write on stderr: whether it is a terminal, whether colour is wanted
//! there, and a drawing surface for the progress bar that needs no escape sequence.
//!
//! `NO_COLOR` (<https://no-color.org>): set and not empty means no colour. The tool's only
//! other escapes are the progress bar's cursor moves and line clears, so with `NO_COLOR` the
//! bar is redrawn with a carriage return and spaces instead: nothing the tool writes then
//! holds an escape sequence.

use std::io::{self, IsTerminal, Write};

/// The environment variable of <https://no-color.org>.
pub const NO_COLOR: &str = "NO_COLOR";

/// Whether stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// Whether `NO_COLOR` asks for no colour: set, and not empty.
pub fn no_color() -> bool {
    no_color_in(std::env::var_os(NO_COLOR).as_deref())
}

fn no_color_in(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Whether escape sequences (colour, cursor moves) may be written on stderr: a terminal,
/// and `NO_COLOR` not set.
pub fn escapes_on_stderr() -> bool {
    stderr_is_terminal() && !no_color()
}

/// Draws the progress bar on stderr without escape sequences: one line, rewritten after a
/// carriage return. Lines wider than the terminal cannot be moved over without escapes,
/// so the bar's template must fit (a `wide_bar` does).
#[derive(Debug)]
pub struct PlainTerm;

impl PlainTerm {
    fn columns() -> u16 {
        // The kernel's idea of the window (an ioctl, no escape); a pipe has none.
        console::Term::stderr()
            .size_checked()
            .map_or(80, |(_, columns)| columns)
            .max(20)
    }
}

impl indicatif::TermLike for PlainTerm {
    fn width(&self) -> u16 {
        // One column short of the edge: a line that fills the last column would leave the
        // cursor waiting to wrap on some terminals.
        Self::columns() - 1
    }

    fn move_cursor_up(&self, _n: usize) -> io::Result<()> {
        // A one-line bar never needs it; without escapes it cannot be done.
        Ok(())
    }

    fn move_cursor_down(&self, _n: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _n: usize) -> io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _n: usize) -> io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr().lock(), "{s}")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        io::stderr().lock().write_all(s.as_bytes())
    }

    fn clear_line(&self) -> io::Result<()> {
        let blank = " ".repeat(usize::from(self.width()));
        write!(io::stderr().lock(), "\r{blank}\r")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_means_set_and_not_empty() {
        assert!(!no_color_in(None));
        assert!(!no_color_in(Some(OsStr::new(""))));
        assert!(no_color_in(Some(OsStr::new("1"))));
        assert!(
            no_color_in(Some(OsStr::new("0"))),
            "any value counts, even 0"
        );
    }
}
