//! Conventions (issue 24): what the tool writes, and where. On a terminal: short log lines,
//! their details from `-v`, and not one escape sequence under `NO_COLOR`; without a
//! terminal, a clean run says nothing on stderr. Existence checks that AWS answers with 404
//! are calls, not errors. `plan` names each certificate once, with what it needs, and the
//! flags of the whole manifest. No lock file outlives a run. A spreadsheet's extra column is
//! a warning, not a reason to refuse the manifest. Counts are spelt in the right number.

use crate::harness::*;

#[test]
fn an_extra_manifest_column_is_one_warning_then_ignored() {
    let env = Env::unlimited();
    let ids = env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    let mut text = String::from("certificate_id,notes,target_account,owner\n");
    for id in &ids {
        text.push_str(&format!("{id},\"hall 3, rack 2\",{TARGET},ops\n"));
    }
    env.write("m.csv", &text);
    let validate = env.run(&["validate", "m.csv"]);
    validate.expect_code(0);
    assert_eq!(
        validate.stdout.trim(),
        "m.csv: valid, 2 certificates, 1 warning",
        "{}",
        validate.stdout
    );
    assert_eq!(validate.stderr.lines().count(), 1, "{}", validate.stderr);
    assert!(
        validate
            .stderr
            .contains("m.csv:1: ignoring columns \"notes\", \"owner\""),
        "{}",
        validate.stderr
    );
    let transfer = env.run(&["--output", "json", "transfer", "m.csv"]);
    transfer.expect_code(0);
    assert_eq!(transfer.count("transferred"), 2);

    // A misspelt column is still refused: it is most likely a mistake.
    env.write(
        "typo.csv",
        &format!(
            "certificate_id,target_account,regoin\n{},{TARGET},eu-west-1\n",
            ids[0]
        ),
    );
    let typo = env.run(&["validate", "typo.csv"]);
    typo.expect_code(2);
    assert!(
        typo.stderr
            .contains("unknown column \"regoin\" (did you mean \"region\"?)"),
        "{}",
        typo.stderr
    );
}
