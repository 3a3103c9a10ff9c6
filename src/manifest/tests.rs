use sha2::{Digest, Sha256};

use super::*;
use std::fs;
use std::time::Instant;

const A: &str = "222222222222";
const B: &str = "333333333333";

/// A random-looking, reproducible 64-hex certificate id.
fn id(n: u64) -> String {
    hex(&Sha256::digest(n.to_le_bytes()))
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture(content: impl AsRef<[u8]>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.csv");
    fs::write(&path, content).unwrap();
    Fixture { _dir: dir, path }
}

fn load(content: impl AsRef<[u8]>) -> (Fixture, Manifest) {
    let file = fixture(content);
    let manifest = Manifest::load(&file.path).unwrap_or_else(|e| panic!("{e}"));
    (file, manifest)
}

fn invalid(content: impl AsRef<[u8]>) -> (Vec<Problem>, usize) {
    let file = fixture(content);
    match Manifest::load(&file.path) {
        Err(ManifestError::Invalid {
            problems, total, ..
        }) => (problems, total),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// The one problem of an invalid manifest.
fn only_problem(content: impl AsRef<[u8]>) -> Problem {
    let (problems, total) = invalid(content);
    assert_eq!(total, 1, "{problems:#?}");
    problems.into_iter().next().unwrap()
}

fn rows(manifest: &Manifest) -> Vec<ManifestRow> {
    manifest.rows().unwrap().collect::<Result<_, _>>().unwrap()
}

fn at(problem: &Problem) -> (u64, Option<usize>, Option<&str>) {
    (problem.line, problem.column, problem.column_name.as_deref())
}

#[test]
fn valid_with_bom_crlf_quotes_blank_and_comment_lines() {
    let content = format!(
        "\u{feff}# exported from the fleet inventory\r\n\
         certificate_id,target_account,transfer_message\r\n\
         \r\n\
         {},{A},\"Hello, \"\"fleet\"\"\"\r\n\
         \x20  # indented comment, with a comma\r\n\
         {}, {B} ,\"two\r\nlines\"\r\n\
         ,,\r\n\
         \x20  \r\n\
         \x20{}  ,{A},",
        id(1),
        id(2),
        id(3).to_uppercase()
    );
    let (_file, manifest) = load(content);
    assert_eq!(manifest.len(), 3);
    assert!(!manifest.is_empty());
    assert_eq!(manifest.warning_count(), 0, "{:?}", manifest.warnings());
    assert_eq!(
        rows(&manifest),
        vec![
            ManifestRow {
                line: 4,
                certificate_id: id(1),
                target_account: A.into(),
                transfer_message: Some("Hello, \"fleet\"".into()),
                region: None,
            },
            ManifestRow {
                line: 6,
                certificate_id: id(2),
                target_account: B.into(),
                transfer_message: Some("two\r\nlines".into()),
                region: None,
            },
            ManifestRow {
                line: 10,
                certificate_id: id(3),
                target_account: A.into(),
                transfer_message: None,
                region: None,
            },
        ]
    );
    assert_eq!(manifest.regions(), vec![None]);
    assert_eq!(manifest.target_accounts(), vec![A.to_owned(), B.to_owned()]);
}

#[test]
fn api_header_names_are_accepted() {
    let content = format!(
        " certificateId , targetAwsAccount,transferMessage,region\n{},{A},hi,eu-central-1\n",
        id(1)
    );
    let (_file, manifest) = load(content);
    let rows = rows(&manifest);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].transfer_message.as_deref(), Some("hi"));
    assert_eq!(rows[0].region.as_deref(), Some("eu-central-1"));
}

#[test]
fn columns_may_come_in_any_order() {
    let content = format!(
        "region,transfer_message,target_account,certificate_id\n\
         us-gov-west-1,first,{A},{}\n,,{B},{}\n",
        id(1),
        id(2)
    );
    let (_file, manifest) = load(content);
    let rows = rows(&manifest);
    assert_eq!(
        rows[0],
        ManifestRow {
            line: 2,
            certificate_id: id(1),
            target_account: A.into(),
            transfer_message: Some("first".into()),
            region: Some("us-gov-west-1".into()),
        }
    );
    assert_eq!(
        (rows[1].region.clone(), rows[1].transfer_message.clone()),
        (None, None)
    );
    assert_eq!(
        manifest.regions(),
        vec![Some("us-gov-west-1".to_owned()), None]
    );
}

#[test]
fn certificate_id_of_wrong_length_is_reported_at_its_cell() {
    let short = &id(1)[..63];
    let problem = only_problem(format!(
        "# comment\ntarget_account,certificate_id\n{A},{}\n{A},{short}\n",
        id(2)
    ));
    assert_eq!(at(&problem), (4, Some(2), Some("certificate_id")));
    assert_eq!(
        problem.message,
        format!("certificate_id \"{short}\" must be 64 characters long (found 63)")
    );
    let problem = only_problem(format!("certificate_id,target_account\n  ,{A}\n"));
    assert_eq!(at(&problem), (2, Some(1), Some("certificate_id")));
    assert_eq!(problem.message, "certificate_id is empty");
    let arn = format!("arn:aws:iot:us-east-1:111111111111:cert/{}", id(1));
    let problem = only_problem(format!("certificate_id,target_account\n{arn},{A}\n"));
    assert!(problem.message.contains("certificate ARN"), "{problem}");
}

#[test]
fn non_hex_certificate_id_names_the_character() {
    let mut bad = id(1);
    bad.replace_range(9..10, "g");
    let problem = only_problem(format!("certificate_id,target_account\n{bad},{A}\n"));
    assert_eq!(at(&problem), (2, Some(1), Some("certificate_id")));
    assert!(
        problem
            .message
            .ends_with("has a non-hexadecimal character 'g' at position 10"),
        "{problem}"
    );
    // Multibyte characters: 64 characters but not hex.
    let accented = format!("é{}", &id(1)[1..]);
    let problem = only_problem(format!("certificate_id,target_account\n{accented},{A}\n"));
    assert!(problem.message.contains("'é' at position 1"), "{problem}");
}

#[test]
fn certificate_id_with_0x_prefix_is_accepted_and_distinct() {
    let prefixed = format!("0x{}", &id(1)[2..]);
    let zeros = format!("00{}", &id(1)[2..]);
    let (_file, manifest) = load(format!(
        "certificate_id,target_account\n{prefixed},{A}\n{zeros},{B}\n"
    ));
    assert_eq!(manifest.len(), 2);
    assert!(manifest.contains(&prefixed));
    assert!(manifest.contains(&zeros.to_uppercase()));
    assert_eq!(rows(&manifest)[0].certificate_id, prefixed);
    let problem = only_problem(format!(
        "certificate_id,target_account\n0X{},{A}\n",
        &id(1)[2..]
    ));
    assert!(problem.message.contains("'X' at position 2"), "{problem}");
}

#[test]
fn target_account_must_be_12_digits() {
    let problem = only_problem(format!(
        "certificate_id,target_account\n{},{A}\n{},12345\n",
        id(1),
        id(2)
    ));
    assert_eq!(at(&problem), (3, Some(2), Some("target_account")));
    assert_eq!(
        problem.message,
        "target_account \"12345\" must be exactly 12 digits"
    );
    for bad in [
        "2222222222222",
        "22222222222a",
        "",
        "2.22222E+11",
        "２22222222222",
    ] {
        let problem = only_problem(format!(
            "certificate_id,targetAwsAccount\n{},{bad}\n",
            id(1)
        ));
        assert_eq!(
            at(&problem),
            (2, Some(2), Some("targetAwsAccount")),
            "{bad}"
        );
    }
    let problem = only_problem(format!(
        "certificate_id,target_account\n{},2.22222E+11\n",
        id(1)
    ));
    assert!(
        problem.message.contains("format the column as text"),
        "{problem}"
    );
    // Leading zeros are kept.
    let (_file, manifest) = load(format!(
        "certificate_id,target_account\n{}, 012345678901\n",
        id(1)
    ));
    assert_eq!(rows(&manifest)[0].target_account, "012345678901");
}

#[test]
fn transfer_message_limit_counts_characters_not_bytes() {
    let ok_ascii = "m".repeat(128);
    let ok_multibyte = "é".repeat(128); // 256 bytes
    let too_long = "m".repeat(129);
    let (_file, manifest) = load(format!(
        "certificate_id,target_account,transfer_message\n{},{A},{ok_ascii}\n{},{A},{ok_multibyte}\n",
        id(1),
        id(2)
    ));
    assert_eq!(
        rows(&manifest)[1].transfer_message.as_deref(),
        Some(ok_multibyte.as_str())
    );
    let problem = only_problem(format!(
        "certificate_id,target_account,transfer_message\n{},{A},{ok_ascii}\n{},{A},{too_long}\n",
        id(1),
        id(2)
    ));
    assert_eq!(at(&problem), (3, Some(3), Some("transfer_message")));
    assert_eq!(
        problem.message,
        "transfer_message is 129 characters long; AWS allows at most 128"
    );
    let problem = only_problem(format!(
        "certificate_id,target_account,transfer_message\n{},{A},\"{}\n\"\n",
        id(1),
        "é".repeat(128)
    ));
    assert!(problem.message.contains("129 characters"), "{problem}");
    assert!(problem.message.contains("runs on to line 3"), "{problem}");
}

#[test]
fn region_must_look_like_an_aws_region() {
    for good in [
        "us-east-1",
        "eu-central-1",
        "us-gov-west-1",
        "ap-southeast-4",
        "cn-north-1",
    ] {
        assert!(is_region(good), "{good}");
    }
    for bad in [
        "US-EAST-1",
        "us-east",
        "useast-1",
        "u-east-1",
        "us--1",
        "us-east-",
        "us-east-1a",
        "us-1",
        "",
        "us-east-1 x",
    ] {
        assert!(!is_region(bad), "{bad}");
    }
    let problem = only_problem(format!(
        "certificate_id,target_account,region\n{},{A}, us-east-1 \n{},{A},US-East-1\n",
        id(1),
        id(2)
    ));
    assert_eq!(at(&problem), (3, Some(3), Some("region")));
    assert_eq!(
        problem.message,
        "region \"US-East-1\" is not an AWS region code like us-east-1"
    );
}

#[test]
fn wrong_number_of_fields_is_reported_for_the_row() {
    let (problems, total) = invalid(format!(
        "certificate_id,target_account,transfer_message\n{},{A},a,b\n{},{A}\n{},{A}, \"x, y\"\n",
        id(1),
        id(2),
        id(3)
    ));
    assert_eq!(total, 3);
    assert_eq!(at(&problems[0]), (2, None, None));
    assert_eq!(
        problems[0].message,
        "the row has 4 fields but the header has 3"
    );
    assert_eq!(at(&problems[1]), (3, None, None));
    assert!(
        problems[2].message.contains("without spaces"),
        "{}",
        problems[2]
    );
}

#[test]
fn a_misspelt_column_is_an_error_with_a_suggestion() {
    let (problems, total) = invalid(format!(
        "certificate_id,target_acount,Region,notes\n{},{A},,\n",
        id(1)
    ));
    assert_eq!(total, 3, "{problems:#?}");
    assert_eq!(at(&problems[0]), (1, None, None));
    assert!(problems[0]
        .message
        .starts_with("missing required column target_account"));
    assert_eq!(at(&problems[1]), (1, Some(2), Some("target_acount")));
    assert_eq!(
        problems[1].message,
        "unknown column \"target_acount\" (did you mean \"target_account\"?)"
    );
    assert_eq!(at(&problems[2]), (1, Some(3), Some("Region")));
    assert_eq!(
        problems[2].message,
        "unknown column \"Region\" (names are case-sensitive: did you mean \"region\"?)"
    );
}

#[test]
fn other_unknown_columns_are_one_warning_then_ignored() {
    let (_f, manifest) = load(format!(
        "notes,certificate_id,owner,target_account\nhall 3,{},ops,{A}\n",
        id(1)
    ));
    assert_eq!(manifest.warning_count(), 1, "{:?}", manifest.warnings());
    let warning = &manifest.warnings()[0];
    assert_eq!(at(warning), (1, None, None));
    assert!(
        warning.message.starts_with(
            "ignoring columns \"notes\", \"owner\" (the tool reads only certificate_id,"
        ),
        "{}",
        warning.message
    );
    let rows = rows(&manifest);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].certificate_id, id(1));
    assert_eq!(rows[0].target_account, A);
    // The other checks still hold on such a manifest: a short row is an error.
    let (problems, _) = invalid(format!(
        "certificate_id,target_account,notes\n{},{A}\n",
        id(1)
    ));
    assert!(
        problems[0]
            .message
            .starts_with("the row has 2 fields but the header has 3"),
        "{problems:?}"
    );
}

#[test]
fn missing_and_repeated_columns_are_reported() {
    let problem = only_problem(format!("certificate_id\n{}\n", id(1)));
    assert_eq!(at(&problem), (1, None, None));
    assert!(problem
        .message
        .starts_with("missing required column target_account (or targetAwsAccount)"));
    let problem = only_problem(format!("# c\ntarget_account\n{A}\n"));
    assert_eq!(at(&problem), (2, None, None));
    assert!(problem
        .message
        .starts_with("missing required column certificate_id"));
    let problem = only_problem(format!(
        "certificate_id,target_account,certificateId\n{},{A},{}\n",
        id(1),
        id(1)
    ));
    assert_eq!(at(&problem), (1, Some(3), Some("certificateId")));
    assert_eq!(
        problem.message,
        "column \"certificateId\" repeats column 1 (\"certificate_id\")"
    );
    let problem = only_problem(format!("certificate_id,target_account,\n{},{A},\n", id(1)));
    assert_eq!(at(&problem), (1, Some(3), Some("")));
    assert_eq!(problem.message, "column 3 of the header has no name");
}

#[test]
fn invalid_utf8_is_reported_at_its_cell() {
    let mut content = format!(
        "certificate_id,target_account,transfer_message\n{},{A},ok\n",
        id(1)
    )
    .into_bytes();
    content.extend_from_slice(format!("{},{A},Caf", id(2)).as_bytes());
    content.extend_from_slice(b"\xe9\n");
    let problem = only_problem(&content);
    assert_eq!(at(&problem), (3, Some(3), Some("transfer_message")));
    assert_eq!(
        problem.message,
        "transfer_message is not valid UTF-8 (byte 4 of the cell is 0xE9); save the manifest as UTF-8"
    );
    let (problems, _) = invalid(b"certificate_id,target\xff\n");
    assert!(problems
        .iter()
        .any(|p| p.message.contains("not valid UTF-8")));
}

#[test]
fn conflicting_duplicates_name_both_lines() {
    let (problems, total) = invalid(format!(
        "certificate_id,target_account,region\n{0},{A},\n{1},{A},us-east-1\n{2},{A},\n{0},{B},\n{3},{A},\n{1},{A},eu-west-1\n",
        id(1).to_uppercase(),
        id(2),
        id(3),
        id(4)
    ));
    assert_eq!(total, 2, "{problems:#?}");
    assert_eq!(at(&problems[0]), (5, Some(2), Some("target_account")));
    assert_eq!(
        problems[0].message,
        format!(
            "certificate_id {} is listed at line 2 for target_account {A}, here for {B}: a certificate can go to one account only",
            id(1)
        )
    );
    assert_eq!(at(&problems[1]), (7, Some(3), Some("region")));
    assert!(problems[1]
        .message
        .contains("listed at line 3 with region us-east-1, here with region eu-west-1"));
}

#[test]
fn same_target_duplicate_is_counted_once_with_a_warning() {
    let (_file, manifest) = load(format!(
        "certificate_id,target_account\n{0},{A}\n{1},{A}\n{2},{A}\n{3},{A}\n",
        id(1),
        id(2),
        id(1).to_uppercase(),
        id(1)
    ));
    assert_eq!(manifest.len(), 2);
    assert_eq!(manifest.warning_count(), 2);
    let warning = &manifest.warnings()[0];
    assert_eq!(at(warning), (4, Some(1), Some("certificate_id")));
    assert_eq!(
        warning.message,
        format!(
            "certificate_id {} repeats line 2 with the same target: counted once",
            id(1)
        )
    );
    assert_eq!(manifest.warnings()[1].line, 5);
    let lines: Vec<u64> = rows(&manifest).iter().map(|row| row.line).collect();
    assert_eq!(lines, vec![2, 3]);
    assert_eq!(manifest.targets()[0].certificates, 2);
}

#[test]
fn problems_are_capped_at_100_with_the_total() {
    // Lines 2..=51: valid; 52..=101: conflicting duplicates (found after
    // the sort); 102..=301: bad accounts. The kept ones are the first by
    // line, whatever order they were found in.
    let mut content = String::from("certificate_id,target_account\n");
    for n in 0..50 {
        content += &format!("{},{A}\n", id(n));
    }
    for n in 0..50 {
        content += &format!("{},{B}\n", id(n));
    }
    for n in 100..300 {
        content += &format!("{},12345\n", id(n));
    }
    let file = fixture(&content);
    let error = Manifest::load(&file.path).unwrap_err();
    let ManifestError::Invalid {
        problems, total, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!((problems.len(), *total), (100, 250));
    let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, (52..152).collect::<Vec<u64>>());
    let text = error.to_string();
    assert!(text.starts_with(&format!(
        "invalid manifest {}: 250 problems\n",
        file.path.display()
    )));
    assert!(text.ends_with("\n... and 150 more problems"), "{text}");
    assert_eq!(text.lines().count(), 102);
    assert!(error.is_bad_input());
}

#[test]
fn error_display_is_path_line_column_message() {
    let mut content = String::from("certificate_id,target_account\n");
    for n in 0..10 {
        content += &format!("{},{A}\n", id(n));
    }
    content += &format!("{},12345\n", id(99));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.csv");
    fs::write(&path, content).unwrap();
    // A relative path is shown as given.
    let relative = Path::new("manifest.csv");
    let error = match Manifest::load(&path) {
        Err(ManifestError::Invalid {
            problems, total, ..
        }) => ManifestError::Invalid {
            path: relative.to_path_buf(),
            problems,
            total,
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(
        error.to_string(),
        "invalid manifest manifest.csv: 1 problem\n\
         manifest.csv:12:2: target_account \"12345\" must be exactly 12 digits"
    );
    let problem = Problem {
        line: 7,
        column: None,
        column_name: None,
        message: "m".into(),
    };
    assert_eq!(problem.to_string(), "7: m");
}

#[test]
fn line_numbers_are_physical_lines_of_the_record_start() {
    // csv's own positions would point at the blank lines before a record
    // and lag behind on CRLF files.
    let content = format!(
        "certificate_id,target_account,transfer_message\r\n\
         \r\n\r\n\
         {},1,\r\n\
         # note\r\n\
         {},{A},\"multi\r\nline\r\nmessage\"\r\n\
         {},2,\r\n\
         \r\n\
         {},3,",
        id(1),
        id(2),
        id(3),
        id(4)
    );
    let (problems, total) = invalid(content);
    assert_eq!(total, 3);
    let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![4, 9, 11]);
    // The same without CRs and with a trailing line end.
    let content = format!(
        "certificate_id,target_account\n\n{},1\n\"{}\",{A}\n\n\n{},2\n",
        id(1),
        id(2),
        id(3)
    );
    let (problems, _) = invalid(content);
    let lines: Vec<u64> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 7]);
}

#[test]
fn line_numbers_at_the_end_of_the_file() {
    let header = "certificate_id,target_account,transfer_message\n";
    // An unclosed quote runs to the end of the file, line break included.
    for tail in ["\"unclosed\nmore\n", "\"unclosed\nmore"] {
        let content = format!("{header}{},{A},ok\n{},1,{tail}", id(1), id(2));
        let (problems, _) = invalid(content);
        assert_eq!(problems[0].line, 3, "{tail:?}: {problems:#?}");
    }
    // A closed message ending with a line break, then the file's last
    // line end.
    let content = format!("{header}{},{A},ok\n{},1,\"closed\n\"\n", id(1), id(2));
    let (problems, _) = invalid(content);
    assert_eq!(problems[0].line, 3);
    let content = format!("{header}\n{},{A},\"closed\n\"\n", id(1));
    let (_file, manifest) = load(content);
    let rows = rows(&manifest);
    assert_eq!(rows[0].line, 3);
    assert_eq!(rows[0].transfer_message.as_deref(), Some("closed\n"));
}

#[test]
fn indented_comment_with_a_quote_is_an_error_not_a_silent_skip() {
    let problem = only_problem(format!(
        "certificate_id,target_account\n  # old,\"gateway\n{},{A}\n",
        id(1)
    ));
    assert_eq!(at(&problem), (2, None, None));
    assert!(problem.message.contains("runs on to line 3"), "{problem}");
    // A quote after a space is plain text, as in any field.
    let (_file, manifest) = load(format!(
        "certificate_id,target_account\n  # old, \"gateway\n{},{A}\n",
        id(1)
    ));
    assert_eq!(manifest.len(), 1);
    // A quote in a comment starting in the first column is harmless.
    let (_file, manifest) = load(format!(
        "certificate_id,target_account\n# old, \"gateway\n{},{A}\n",
        id(1)
    ));
    assert_eq!(manifest.len(), 1);
}

#[test]
fn rows_come_in_file_order_without_duplicates() {
    let order = [5u64, 3, 9, 3, 1, 5, 7];
    let mut content = String::from("certificate_id,target_account,transfer_message\n");
    for n in order {
        content += &format!("{},{A},row {n}\n", id(n));
    }
    let (_file, manifest) = load(content);
    assert_eq!(manifest.len(), 5);
    assert_eq!(manifest.warning_count(), 2);
    // Send + 'static: consumable on another thread.
    let iter = manifest.rows().unwrap();
    let rows = std::thread::spawn(move || iter.collect::<Result<Vec<_>, _>>())
        .join()
        .unwrap()
        .unwrap();
    let got: Vec<(u64, String)> = rows
        .iter()
        .map(|row| (row.line, row.certificate_id.clone()))
        .collect();
    let want: Vec<(u64, String)> = [(2, 5), (3, 3), (4, 9), (6, 1), (8, 7)]
        .into_iter()
        .map(|(line, n)| (line, id(n)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(rows[0].transfer_message.as_deref(), Some("row 5"));
}

#[test]
fn sha256_is_that_of_the_file_and_changes_with_it() {
    let content = format!("certificate_id,target_account\n{},{A}\n", id(1));
    let (file, manifest) = load(&content);
    assert_eq!(manifest.sha256(), hex(&Sha256::digest(content.as_bytes())));
    fs::write(&file.path, format!("{content}# reviewed\n")).unwrap();
    let reloaded = Manifest::load(&file.path).unwrap();
    assert_ne!(reloaded.sha256(), manifest.sha256());
    assert_eq!(reloaded.len(), manifest.len());
}

#[test]
fn rows_detect_a_manifest_changed_after_load() {
    let content = format!(
        "certificate_id,target_account\n{},{A}\n{},{A}\n",
        id(1),
        id(2)
    );
    let (file, manifest) = load(&content);
    // Same size, other target: caught before the first row.
    fs::write(&file.path, content.replacen(A, B, 1)).unwrap();
    let results: Vec<_> = manifest.rows().unwrap().collect();
    assert_eq!(results.len(), 1);
    assert!(matches!(results[0], Err(ManifestError::Changed { .. })));
    // Another size: caught up front.
    fs::write(&file.path, format!("{content}\n")).unwrap();
    assert!(matches!(
        manifest.rows(),
        Err(ManifestError::Changed { .. })
    ));
    // Back as it was: fine again.
    fs::write(&file.path, &content).unwrap();
    assert_eq!(rows(&manifest).len(), 2);

    // A change in a later chunk: the rows before it come, then the error.
    let mut content = String::from("certificate_id,target_account,transfer_message\n");
    for n in 0..20_000 {
        content += &format!("{},{A},\n", id(n));
    }
    assert!(content.len() > CHUNK_BYTES);
    let (file, manifest) = load(&content);
    let last = id(19_999);
    fs::write(&file.path, content.replacen(&last, &last.to_uppercase(), 1)).unwrap();
    let results: Vec<_> = manifest.rows().unwrap().collect();
    let good = results.iter().take_while(|result| result.is_ok()).count();
    assert!(good > 10_000 && good < 20_000, "{good}");
    assert_eq!(results.len(), good + 1);
    assert!(matches!(results[good], Err(ManifestError::Changed { .. })));
}

#[test]
fn missing_file_and_unreadable_file_are_distinct_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let error = Manifest::load(&missing).unwrap_err();
    assert!(matches!(error, ManifestError::NotFound { .. }), "{error:?}");
    assert!(error.is_bad_input());
    assert_eq!(error.path(), missing);
    let error = Manifest::load(dir.path()).unwrap_err();
    assert!(matches!(error, ManifestError::Io { .. }), "{error:?}");
    assert!(!error.is_bad_input());
    assert!(
        error.to_string().starts_with("cannot read manifest ")
            && error.to_string().contains("not a regular file"),
        "{error}"
    );
}

#[test]
fn header_only_is_valid_with_a_warning_but_no_header_is_invalid() {
    let (_file, manifest) = load("# nothing yet\ncertificate_id,target_account\n\n");
    assert!(manifest.is_empty());
    assert_eq!(manifest.len(), 0);
    assert_eq!(manifest.warnings().len(), 1);
    assert_eq!(at(&manifest.warnings()[0]), (2, None, None));
    assert!(rows(&manifest).is_empty());
    assert!(manifest.regions().is_empty());
    for content in ["", "\u{feff}", "# only a comment\n\n"] {
        let problem = only_problem(content);
        assert_eq!(at(&problem), (1, None, None));
        assert!(problem
            .message
            .starts_with("the manifest has no header row"));
    }
}

#[test]
fn contains_is_case_insensitive() {
    let (_file, manifest) = load(format!(
        "certificate_id,target_account\n{},{A}\n",
        id(1).to_uppercase()
    ));
    assert!(manifest.contains(&id(1)));
    assert!(manifest.contains(&format!(" {} ", id(1).to_uppercase())));
    assert!(!manifest.contains(&id(2)));
    assert!(!manifest.contains("not an id"));
}

#[test]
fn contains_finds_every_id_of_a_large_manifest_and_no_other() {
    // Enough rows for a directory of thousands of buckets over the sorted digests.
    let mut text = String::from("certificate_id,target_account\n");
    for n in 0..20_000 {
        text.push_str(&format!("{},{A}\n", id(n)));
    }
    let (_file, manifest) = load(text);
    assert_eq!(manifest.len(), 20_000);
    for n in 0..20_000 {
        assert!(manifest.contains(&id(n)), "row {n}");
    }
    for n in 20_000..40_000 {
        assert!(!manifest.contains(&id(n)), "id {n} is not listed");
    }
}

#[test]
fn regions_and_targets_in_order_of_appearance() {
    let (_file, manifest) = load(format!(
        "certificate_id,target_account,region\n{},{B},eu-west-1\n{},{A},\n{},{B},eu-west-1\n{},{B},\n",
        id(1),
        id(2),
        id(3),
        id(4)
    ));
    assert_eq!(manifest.regions(), vec![Some("eu-west-1".to_owned()), None]);
    assert_eq!(manifest.target_accounts(), vec![B.to_owned(), A.to_owned()]);
    let targets = manifest.targets();
    assert_eq!(targets.len(), 3);
    assert_eq!(
        targets[0],
        Target {
            account: B.into(),
            region: Some("eu-west-1".into()),
            certificates: 2
        }
    );
    assert_eq!(
        (targets[2].account.as_str(), targets[2].certificates),
        (B, 1)
    );
}

#[test]
fn write_manifest_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let row = |n: u64, message: Option<&str>, region: Option<&str>| ManifestRow {
        line: 0,
        certificate_id: id(n),
        target_account: A.into(),
        transfer_message: message.map(str::to_owned),
        region: region.map(str::to_owned),
    };
    let written = vec![
        row(1, Some("plain"), None),
        row(2, Some("comma, \"quotes\"\nand a line break"), None),
        row(3, Some("  spaces kept  "), None),
        row(4, None, None),
    ];
    write_manifest(&path, &written).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("certificate_id,target_account,transfer_message\n"));
    let read = rows(&Manifest::load(&path).unwrap());
    let strip = |rows: &[ManifestRow]| -> Vec<ManifestRow> {
        rows.iter()
            .map(|r| ManifestRow {
                line: 0,
                ..r.clone()
            })
            .collect()
    };
    assert_eq!(strip(&read), written);
    assert_eq!(
        read.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 3, 5, 6]
    );

    let written = vec![row(1, None, Some("us-east-1")), row(2, Some("x"), None)];
    write_manifest(&path, &written).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("certificate_id,target_account,transfer_message,region\n"));
    assert_eq!(strip(&rows(&Manifest::load(&path).unwrap())), written);

    let mut writer = ManifestWriter::create(&path, false).unwrap();
    assert!(writer.write_row(&row(1, None, Some("us-east-1"))).is_err());
}

#[test]
fn helpers() {
    assert_eq!(std::mem::size_of::<Entry>(), 20);
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(4211), "4,211");
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(edit_distance("targetacount", "targetaccount"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    let long = "x".repeat(100);
    assert_eq!(shown(&long).chars().count(), MAX_SHOWN_CHARS);
    assert_eq!(parse_id(&id(7)).unwrap().to_hex(), id(7));
    assert_eq!(parse_account("000000000042"), Some(42));
}

#[test]
fn sample_manifests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-manifests");
    let small = Manifest::load(&dir.join("small.csv")).unwrap();
    assert_eq!((small.len(), small.warning_count()), (5, 0));
    assert_eq!(small.target_accounts(), vec![A.to_owned()]);

    let multi = Manifest::load(&dir.join("multi-target.csv")).unwrap();
    assert_eq!((multi.len(), multi.warning_count()), (8, 0));
    assert_eq!(multi.target_accounts(), vec![A.to_owned(), B.to_owned()]);
    assert!(rows(&multi).iter().any(|row| row
        .transfer_message
        .as_deref()
        .is_some_and(|m| m.contains(','))));

    let Err(ManifestError::Invalid {
        problems, total, ..
    }) = Manifest::load(&dir.join("invalid.csv"))
    else {
        panic!("invalid.csv should be invalid");
    };
    let found: Vec<(u64, Option<usize>)> = problems.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(
        found,
        vec![
            (15, Some(5)),
            (16, Some(1)),
            (17, Some(1)),
            (18, Some(2)),
            (19, Some(3)),
            (20, Some(4)),
            (21, None),
            (22, Some(3)),
            (24, Some(2)),
            (26, Some(4)),
        ],
        "{problems:#?}"
    );
    assert_eq!(total, 10);

    let Err(ManifestError::Invalid { problems, .. }) =
        Manifest::load(&dir.join("invalid-header.csv"))
    else {
        panic!("invalid-header.csv should be invalid");
    };
    let found: Vec<(u64, Option<usize>)> = problems.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(
        found,
        vec![(4, None), (4, Some(2)), (4, Some(4))],
        "{problems:#?}"
    );
}

/// Peak resident memory of this process, from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes `rows` rows (a few duplicates, two targets, some messages)
/// without holding them in memory.
fn generate(path: &Path, rows: u64) {
    let mut writer = ManifestWriter::create(path, false).unwrap();
    let mut row = ManifestRow {
        line: 0,
        certificate_id: String::new(),
        target_account: String::new(),
        transfer_message: None,
        region: None,
    };
    for n in 0..rows {
        // Every 1000th row repeats the previous id (same target).
        let key = if n % 1000 == 999 { n - 1 } else { n };
        row.certificate_id = id(key);
        row.target_account = if key % 2 == 0 { A } else { B }.to_owned();
        row.transfer_message = (n % 10 == 0).then(|| format!("batch {}, gateway", n / 10));
        writer.write_row(&row).unwrap();
    }
    writer.finish().unwrap();
}

/// `cargo test --release -- --ignored --nocapture million`: the numbers
/// only mean something in release mode and alone in their process.
#[test]
#[ignore = "benchmark: run in release mode, alone"]
fn million_rows_validate_fast_in_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("million.csv");
    generate(&path, 1_000_000);
    let bytes = fs::metadata(&path).unwrap().len();

    let start = Instant::now();
    let manifest = Manifest::load(&path).unwrap();
    let load_time = start.elapsed();
    assert_eq!(manifest.len(), 999_000);
    assert_eq!(manifest.warning_count(), 1_000);

    let start = Instant::now();
    let mut count = 0;
    for row in manifest.rows().unwrap() {
        row.unwrap();
        count += 1;
    }
    let rows_time = start.elapsed();
    assert_eq!(count, 999_000);
    let peak = peak_rss_kib().unwrap_or(0);
    eprintln!(
        "1,000,000 rows ({} MB): load {load_time:.2?}, rows {rows_time:.2?}, peak RSS {:.1} MB",
        bytes / 1_000_000,
        peak as f64 / 1024.0
    );
    if !cfg!(debug_assertions) {
        assert!(load_time.as_secs_f64() < 3.0);
        assert!(peak < 64 * 1024);
    }
}

/// The index keeps digests, not ids: rows that share a digest are duplicates only when the
/// ids read again from the file are equal (a collision of two distinct ids keeps both).
#[test]
fn rows_sharing_a_digest_are_duplicates_only_if_their_ids_are_equal() {
    let (a, b) = (parse_id(&id(1)).unwrap(), parse_id(&id(2)).unwrap());
    let same = [7, 7, 7];
    let mut interner = Interner::default();
    let region = interner.region(None);
    let target = interner.target(42, region).unwrap();
    let entries = vec![
        Entry::new(same, target, 2),
        Entry::new(same, target, 3),
        Entry::new(same, target, 4),
        Entry::new([1, 2, 3], target, 5),
    ];
    let mut index = Index::build(entries, interner, Digester::new());
    assert_eq!(index.candidate_lines(), vec![2, 3, 4]);
    let keys: CandidateKeys = [(2, a), (3, b), (4, a)].into_iter().collect();
    let columns = Columns {
        names: vec!["certificate_id".into(), "target_account".into()],
        id: Some(0),
        account: Some(1),
        message: None,
        region: None,
        ignored: Vec::new(),
    };
    let (mut problems, mut warnings) = (Collector::default(), Collector::default());
    index.find_duplicates(&columns, &keys, &mut problems, &mut warnings);
    assert_eq!(problems.total, 0);
    assert_eq!(
        warnings.total, 1,
        "line 4 repeats line 2; line 3 is another id"
    );
    assert_eq!(index.dedup(&keys), vec![4]);
    let mut lines: Vec<u32> = index.entries.iter().map(|e| e.line).collect();
    lines.sort_unstable();
    assert_eq!(lines, vec![2, 3, 5]);
}

#[test]
fn rows_read_into_one_reused_row_are_the_rows_the_iterator_gives() {
    // Optional cells present, absent, then present again: a reused row must not keep a
    // value from the row before.
    let content = format!(
        "certificate_id,target_account,transfer_message,region\n\
         {},{A},first,eu-west-1\n{},{B},,\n{},{A},third,us-east-1\n",
        id(1).to_ascii_uppercase(),
        id(2),
        id(3)
    );
    let (_file, manifest) = load(content);
    let want = rows(&manifest);
    let mut reader = manifest.rows().unwrap();
    let mut row = ManifestRow::default();
    let mut got = Vec::new();
    while reader.read_into(&mut row).unwrap() {
        got.push(row.clone());
    }
    assert_eq!(got, want);
    assert_eq!(got[0].certificate_id, id(1));
    assert_eq!(got[1].transfer_message, None);
    assert_eq!(got[1].region, None);
    assert_eq!(got[2].region.as_deref(), Some("us-east-1"));
    assert!(!reader.read_into(&mut row).unwrap(), "stays at its end");
}
