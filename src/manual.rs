//! The man pages, generated from the one clap definition ([`crate::cli`]): a page for the
//! tool and one per command, each with the option sections of `--help`, the examples of
//! `--help` (kept as lines, not refilled) and the exit codes.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

use crate::cli::Cli;
use crate::error::{Error, EXIT_CODES_HELP};

/// One man page: its file name (`iot-cert-migrate-transfer.1`) and its roff source.
pub struct Page {
    /// File name, section included.
    pub file_name: String,
    /// The page in roff.
    pub roff: String,
}

/// The page of the tool itself (`iot-cert-migrate.1`).
pub fn main_page() -> String {
    pages().swap_remove(0).roff
}

/// Every page: the tool's first, then one per command.
pub fn pages() -> Vec<Page> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let tool = cli.get_name().to_string();
    let commands: Vec<String> = cli
        .get_subcommands()
        .map(|c| format!("{tool}-{}", c.get_name()))
        .collect();
    let mut pages = vec![page(&cli, &commands)];
    for sub in cli.get_subcommands() {
        pages.push(page(sub, std::slice::from_ref(&tool)));
    }
    pages
}

/// Writes every page into `dir` (created if need be) and returns their paths.
pub fn write_pages(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for p in pages() {
        let path = dir.join(&p.file_name);
        std::fs::write(&path, p.roff).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// One page: clap_mangen's sections, then EXAMPLES, EXIT STATUS and SEE ALSO.
fn page(cmd: &clap::Command, see_also: &[String]) -> Page {
    let source = format!("iot-cert-migrate {}", env!("CARGO_PKG_VERSION"));
    let man = Man::new(cmd.clone()).manual("User Commands").source(source);
    let file_name = man.get_filename();
    let mut out = Vec::new();
    let has_args = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_subcommands = cmd.get_subcommands().next().is_some();
    // Writing to a Vec cannot fail.
    let _ = (|| -> std::io::Result<()> {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        if has_args {
            man.render_options_section(&mut out)?;
        }
        if has_subcommands {
            man.render_subcommands_section(&mut out)?;
        }
        let mut roff = Roff::new();
        if let Some(examples) = examples(cmd) {
            literal_section(&mut roff, "EXAMPLES", &examples);
        }
        let exit_codes: Vec<&str> = EXIT_CODES_HELP.lines().skip(1).collect();
        literal_section(&mut roff, "EXIT STATUS", &dedent(&exit_codes));
        roff.control("SH", ["SEE ALSO"]);
        // A list of page names: neither hyphenated nor justified.
        roff.control("nh", []);
        roff.control("ad", ["l"]);
        let refs: Vec<String> = see_also.iter().map(|n| format!("{n}(1)")).collect();
        roff.text([roman(refs.join(", "))]);
        roff.to_writer(&mut out)?;
        if cmd.get_version().is_some() {
            man.render_version_section(&mut out)?;
        }
        Ok(())
    })();
    Page {
        file_name,
        roff: String::from_utf8_lossy(&out).into_owned(),
    }
}

/// The examples of `--help` (its `after_long_help` without the heading and exit codes).
fn examples(cmd: &clap::Command) -> Option<String> {
    let text = cmd.get_after_long_help()?.to_string();
    let text = text.split(EXIT_CODES_HELP).next().unwrap_or("");
    let text = text.trim_start().strip_prefix("Examples:").unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let body = dedent(&lines);
    (!body.trim().is_empty()).then_some(body)
}

/// Lines with their common indentation removed.
fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let body: Vec<&str> = lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect();
    body.join("\n").trim_matches('\n').to_string()
}

/// A section whose lines are shown as they are (no filling, no hyphenation).
fn literal_section(roff: &mut Roff, title: &str, text: &str) {
    roff.control("SH", [title]);
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_command_with_examples_and_exit_status() {
        let pages = pages();
        let names: Vec<&str> = pages.iter().map(|p| p.file_name.as_str()).collect();
        assert_eq!(names[0], "iot-cert-migrate.1");
        for c in ["transfer", "accept", "status", "man", "completions"] {
            assert!(
                names.contains(&format!("iot-cert-migrate-{c}.1").as_str()),
                "{names:?}"
            );
        }
        let transfer = pages
            .iter()
            .find(|p| p.file_name == "iot-cert-migrate-transfer.1")
            .unwrap();
        for section in [".SH EXAMPLES", ".SH \"EXIT STATUS\"", ".SH PACING", ".nf"] {
            assert!(transfer.roff.contains(section), "{section}");
        }
        // Backslashes of shell line continuations are escaped for roff.
        assert!(!transfer.roff.contains("certs.csv \\\n"));
    }
}
