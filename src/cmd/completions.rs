//! `completions SHELL`: the completion script of the one clap definition, on stdout.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, ExitCode};

/// Runs `completions`.
pub fn run(args: CompletionsArgs) -> Result<ExitCode, Error> {
    let script = script(args.shell);
    // A closed stdout (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(script.as_bytes());
    Ok(ExitCode::Success)
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, &name, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    match shell {
        Shell::Bash => fix_bash_states(&script, &name),
        _ => script,
    }
}

/// clap_complete (4.6.12) spells the bash script's state names two ways when the binary
/// name has a hyphen: the loop over the words arrives at `iot__cert__migrate__subcmd__transfer`,
/// the case arms wait for `iot__subcmd__cert__subcmd__migrate__subcmd__transfer`, so no
/// option of a command ever completes (clap-rs/clap#6421). Spell the arms as the loop does;
/// once clap_complete agrees with itself this replaces nothing.
fn fix_bash_states(script: &str, name: &str) -> String {
    let loop_spelling = name.replace('-', "__");
    let arm_spelling = name.replace('-', "__subcmd__");
    script.replace(
        &format!("{arm_spelling}__subcmd__"),
        &format!("{loop_spelling}__subcmd__"),
    )
}
