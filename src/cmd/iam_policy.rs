//! `iam-policy COMMAND... [flags]`: the least-privilege IAM policy of each side for these
//! commands with these flags, from the table of the calls the tool makes (`iam`). Calls
//! nothing; the global `--region` picks the region and partition of the ARNs.

use std::io::Write;

use serde::Serialize;

use crate::cli::{GlobalArgs, IamPolicyArgs, IamSide};
use crate::error::{Error, ExitCode};
use crate::iam::{self, PolicyDocument, Side};
use crate::output::{self, Render};

/// What `iam-policy` prints.
#[derive(Debug, Serialize)]
struct Policies {
    command: &'static str,
    commands: Vec<iam::AwsCommand>,
    flags: Vec<iam::Flag>,
    region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<PolicyDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<PolicyDocument>,
}

impl Render for Policies {
    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let flags: Vec<String> = self.flags.iter().map(|f| format!("--{f}")).collect();
        let what = format!(
            "{}{}{}",
            self.commands
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            if flags.is_empty() { "" } else { " " },
            flags.join(" ")
        );
        for (side, policy) in [
            ("source account", &self.source),
            ("target accounts", &self.target),
        ] {
            if let Some(p) = policy {
                writeln!(out, "# {side}: {what}")?;
                writeln!(out, "{}", p.to_json())?;
            }
        }
        if self.source.is_none() && self.target.is_none() {
            writeln!(
                out,
                "# {what}: no call that needs a permission (status calls AWS only with \
                 --reconcile or --devices, report only with --devices)"
            )?;
        }
        writeln!(
            out,
            "# STS GetCallerIdentity (every command) needs no permission.\n\
             # With --target-role-template or --source-role: each role needs its side's policy \
             above, and the credentials that assume the roles need sts:AssumeRole on them."
        )
    }
}

/// Runs `iam-policy`.
pub fn run(global: &GlobalArgs, args: IamPolicyArgs) -> Result<ExitCode, Error> {
    let flags = args.flags();
    let region = global.region.first().cloned().unwrap_or_else(|| "*".into());
    let scope = iam::PolicyScope {
        region: region.clone(),
        source_account: args.source_account.clone().unwrap_or_else(|| "*".into()),
        target_account: args.target_account.clone().unwrap_or_else(|| "*".into()),
    };
    let mut result = Policies {
        command: "iam-policy",
        commands: args.commands.clone(),
        flags: flags.iter().copied().collect(),
        region,
        source: None,
        target: None,
    };
    for (side, _, policy) in iam::policies(&args.commands, &flags, &scope) {
        match side {
            Side::Source => result.source = Some(policy),
            Side::Target => result.target = Some(policy),
        }
    }
    let Some(side) = args.side else {
        output::emit(global.output, &result);
        return Ok(ExitCode::Success);
    };
    let (policy, name) = match side {
        IamSide::Source => (&result.source, "the source account"),
        IamSide::Target => (&result.target, "the target accounts"),
    };
    let Some(policy) = policy else {
        return Err(Error::Usage(format!(
            "these commands call nothing in {name} with these flags: no policy to print"
        )));
    };
    // A closed stdout (`| head`) is not an error.
    let _ = writeln!(std::io::stdout().lock(), "{}", policy.to_json());
    Ok(ExitCode::Success)
}
