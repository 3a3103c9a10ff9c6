//! What a command prints on stdout, in the format chosen once for the run: text for people,
//! or one JSON object for machines.

use std::io::Write;

use serde::Serialize;

/// What a command prints on stdout, chosen once for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object, for monitoring.
    Json,
}

/// A command's result that can be shown both ways.
pub trait Render: Serialize {
    /// Writes the text form.
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// Prints `value` on stdout in `format`. A closed stdout (`| head`) is not an error.
pub fn emit<T: Render>(format: OutputFormat, value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = match format {
        OutputFormat::Json => serde_json::to_writer(&mut out, value)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out)),
        OutputFormat::Text => value.write_text(&mut out),
    };
}

/// `1 certificate`, `2 certificates`, `0 policies`: a count and its noun, in the right
/// number. Every text output spells its counts with it.
pub fn count<N>(n: N, noun: &str) -> String
where
    N: Copy + std::fmt::Display + TryInto<u64>,
{
    format!("{n} {}", noun_for(n, noun))
}

/// The noun alone, in the number `n` asks for (`of 3 certificates` is written
/// `of {n} {noun_for(n, "certificate")}`).
pub fn noun_for<N>(n: N, noun: &str) -> std::borrow::Cow<'_, str>
where
    N: Copy + TryInto<u64>,
{
    if n.try_into().is_ok_and(|n| n == 1) {
        return noun.into();
    }
    // English plurals of the nouns the tool counts: policy -> policies, ...
    let consonant_y = noun.ends_with('y')
        && !noun.ends_with("ay")
        && !noun.ends_with("ey")
        && !noun.ends_with("oy");
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1]).into()
    } else if ["s", "x", "ch", "sh"].iter().any(|e| noun.ends_with(e)) {
        format!("{noun}es").into()
    } else {
        format!("{noun}s").into()
    }
}

#[cfg(test)]
mod tests {
    use super::{count, noun_for};

    #[test]
    fn one_is_singular_every_other_count_plural() {
        assert_eq!(count(1u64, "certificate"), "1 certificate");
        assert_eq!(count(0usize, "certificate"), "0 certificates");
        assert_eq!(count(2u32, "certificate"), "2 certificates");
        assert_eq!(count(1usize, "policy"), "1 policy");
        assert_eq!(count(3usize, "policy"), "3 policies");
        assert_eq!(count(2u64, "day"), "2 days");
        assert_eq!(count(2u64, "process"), "2 processes");
        assert_eq!(count(2u64, "thing group"), "2 thing groups");
        assert_eq!(noun_for(1u64, "run"), "run");
        assert_eq!(noun_for(21u64, "run"), "runs");
    }
}
