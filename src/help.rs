//! Help text beyond the one-line docs of the options: the examples `--help` shows after the
//! options of each command (`-h` stays short).

use crate::error::EXIT_CODES_HELP;

/// `iot-cert-migrate --help`: examples, then the exit codes.
pub fn main() -> String {
    format!("{MAIN}\n{EXIT_CODES_HELP}")
}

const MAIN: &str = "\
Examples:
  # Check the manifest offline, look before you leap, then transfer:
  iot-cert-migrate validate certs.csv
  iot-cert-migrate --profile source plan certs.csv
  iot-cert-migrate --profile source transfer certs.csv \\
      --deactivate --detach-policies --detach-things

  # In each target account, accept what was sent to it:
  iot-cert-migrate --profile target-a accept certs.csv --set-as-active

  # How far are we?
  iot-cert-migrate status certs.csv
  iot-cert-migrate report certs.csv --html report.html

  # Shell completions and man pages:
  iot-cert-migrate completions bash > ~/.local/share/bash-completion/completions/iot-cert-migrate
  iot-cert-migrate man --out ~/.local/share/man/man1

Run `iot-cert-migrate <command> --help` for the options and examples of each command.
";

/// `transfer --help`.
pub const TRANSFER: &str = "\
Examples:
  # Deactivate each certificate and detach its policies and things, then transfer it:
  iot-cert-migrate --profile source transfer certs.csv \\
      --deactivate --detach-policies --detach-things

  # Interrupted? Run exactly the same command again: it resumes from the ledger.

  # Refused for want of a flag? Nothing was changed: the same command with it takes them.
  # Items that failed wait for you: fix the cause, then try them again.
  iot-cert-migrate --profile source transfer certs.csv \\
      --deactivate --detach-policies --detach-things --retry-failed

  # A nightly slice of at most 45 minutes, with metrics for node_exporter's textfile collector:
  iot-cert-migrate transfer certs.csv --deactivate --detach-policies --detach-things \\
      --max-duration 45m --metrics-file /var/lib/node_exporter/textfile/iot-cert-migrate.prom

  # Transfer and accept in one go, one profile per target account:
  iot-cert-migrate --profile source transfer certs.csv \\
      --deactivate --detach-policies --detach-things \\
      --accept-profile-template 'migrate-{account}' --set-as-active

  # An account with raised quotas (twice the documented TPS for every operation):
  iot-cert-migrate transfer certs.csv --deactivate --rate-scale 2
";

/// `iam-policy --help`.
pub const IAM_POLICY: &str = "\
Examples:
  # What the source account's credentials need for the whole transfer path:
  iot-cert-migrate iam-policy plan transfer cancel \\
      --deactivate --detach-policies --detach-things --carry --restore

  # The target accounts' policy for accept --carry, as a file for IAM:
  iot-cert-migrate iam-policy accept --carry --side target > target-policy.json
  aws iam put-role-policy --role-name migrate --policy-name iot-cert-migrate \\
      --policy-document file://target-policy.json

  # China regions: the ARNs name the aws-cn partition:
  iot-cert-migrate --region cn-north-1 iam-policy register --carry --source-account 111122223333

The policy lists every call the commands make with these flags, on the resources IAM
authorizes each on (`*` for the actions without a resource type). STS GetCallerIdentity,
which every command makes, needs no permission. With --target-role-template or
--source-role, each role needs its side's policy, and the credentials that assume the roles
need sts:AssumeRole on them.
";

/// `validate --help`.
pub const VALIDATE: &str = "\
Examples:
  iot-cert-migrate validate certs.csv
  iot-cert-migrate --output json validate certs.csv
";

/// `status --help`.
pub const STATUS: &str = "\
Examples:
  # The transfer ledger beside the manifest; the accept ledger by its path:
  iot-cert-migrate status certs.csv
  iot-cert-migrate status certs.accept-ledger.jsonl

  # The counts as one JSON object, for monitoring:
  iot-cert-migrate --output json status certs.csv

  # Ask AWS (read-only) about the items in doubt:
  iot-cert-migrate --profile source status certs.csv --reconcile

  # After handoff: each device's job execution in the source and whether it is connected
  # in its target (read-only on both sides; needs connectivity indexing in the targets):
  iot-cert-migrate --profile source status certs.csv --devices \\
      --target-profile-template 'migrate-{account}'
";

/// `plan --help`.
pub const PLAN: &str = "\
Examples:
  iot-cert-migrate --profile source plan certs.csv
  iot-cert-migrate --profile source plan certs.csv --plan-out plan.csv

Categories: ready, needs_deactivation, has_policies, has_things (these three combine),
already_pending, pending_to_other, not_transferable, not_found, same_account, and unknown
when AWS could not be asked (it refused or failed a read; the detail says what it answered).
--mode register: registrable, already_registered, not_registrable_status, other_region,
unknown. --carry, per object in each target: create, reuse, conflict, not_checked (no target
credentials given), unknown.

Ctrl-C (or SIGTERM) stops starting certificates, lets those in flight finish, prints the
plan of the certificates done so far (it says how many) and exits 4; --plan-out then holds
those. A second Ctrl-C exits at once, leaving an existing --plan-out file as it was.
";

/// `cancel --help`.
pub const CANCEL: &str = "\
Examples:
  # Cancel the transfers the target has not accepted yet:
  iot-cert-migrate --profile source cancel certs.csv

  # ... and undo prepare: re-attach policies and things, re-activate certificates:
  iot-cert-migrate --profile source cancel certs.csv --restore
";

/// `accept --help`.
pub const ACCEPT: &str = "\
Examples:
  # With the target account's credentials: accept, activate, attach a policy:
  iot-cert-migrate --profile target-a accept certs.csv \\
      --set-as-active --attach-policy fleet-policy

  # Rows addressed to other target accounts are left to them.
";

/// `reject --help`.
pub const REJECT: &str = "\
Examples:
  iot-cert-migrate --profile target-b reject certs.csv --reason \"wrong fleet\"
";

/// `verify --help`.
pub const VERIFY: &str = "\
Examples:
  # After accept --carry: source credentials in --profile, the targets' in a template.
  iot-cert-migrate --profile source verify certs.csv \\
      --target-profile-template 'migrate-{account}' --out verify.csv

Categories (the first that applies): not_transferred, pending, inactive, missing_policy,
missing_thing, missing_group, still_in_source, ok (and unknown when AWS could not be asked:
it refused or failed a read; the detail says what it answered).

Ctrl-C (or SIGTERM) stops starting certificates, lets those in flight finish, prints the
verdicts so far (it says how many) and exits 4; --out then holds those. A second Ctrl-C
exits at once, leaving an existing --out file as it was.
";

/// `register --help`.
pub const REGISTER: &str = "\
Examples:
  # With the source's credentials (--profile) and one profile per target account: the
  # certificates stay ACTIVE in the source, devices move as they reconnect to the target.
  iot-cert-migrate --profile source register certs.csv \\
      --target-profile-template 'migrate-{account}' --carry

  # Once the devices have moved: retire the source's copies.
  iot-cert-migrate --profile source retire certs.csv \\
      --target-profile-template 'migrate-{account}' --deactivate
";

/// `retire --help`.
pub const RETIRE: &str = "\
Examples:
  # Refuses every certificate the target does not hold ACTIVE; changes only what is asked.
  iot-cert-migrate --profile source retire certs.csv \\
      --target-profile-template 'migrate-{account}' --deactivate --detach-policies

  # Devices still needed the source after all: put back what that retire changed.
  iot-cert-migrate --profile source retire certs.csv --undo
";

/// `completions --help`.
pub const COMPLETIONS: &str = "\
Examples:
  # bash (bash-completion loads it on demand):
  iot-cert-migrate completions bash > ~/.local/share/bash-completion/completions/iot-cert-migrate

  # zsh: a directory of your $fpath, then restart the shell:
  iot-cert-migrate completions zsh > ~/.zfunc/_iot-cert-migrate

  # fish:
  iot-cert-migrate completions fish > ~/.config/fish/completions/iot-cert-migrate.fish

  # PowerShell (add the line to $PROFILE):
  iot-cert-migrate completions powershell | Out-String | Invoke-Expression
";

/// `man --help`.
pub const MAN: &str = "\
Examples:
  # Read the main page without installing it:
  iot-cert-migrate man > iot-cert-migrate.1 && man -l iot-cert-migrate.1

  # Install every page where man finds them:
  iot-cert-migrate man --out ~/.local/share/man/man1
  man iot-cert-migrate-transfer
";

/// `report --help`.
pub const REPORT: &str = "\
Examples:
  # The text on stdout, the page to send to whoever asks \"how far are we?\":
  iot-cert-migrate report certs.csv --html report.html

  # The same numbers as one JSON object:
  iot-cert-migrate --output json report certs.csv

  # With the devices (AWS, read-only): did each one arrive in its target?
  iot-cert-migrate --profile source report certs.csv --html report.html --devices \\
      --target-role-template 'arn:aws:iam::{account}:role/OrganizationAccountAccessRole'
";
