//! `report`: the migration report from the ledgers, as text, as JSON and as one
//! self-contained HTML page, whose numbers are `status`'s.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

/// What `tests/suite/report.rs`'s HTML reader found in a page.
#[derive(Debug, serde::Deserialize)]
struct Page {
    /// Tags closed out of order, left open, or stray.
    errors: Vec<String>,
    /// Anything that would load a file, a script or a font from elsewhere.
    external: Vec<String>,
    /// Every tag name seen.
    tags: Vec<String>,
    /// `data-state` cells: (data-ledger, data-state, the row's data-target, number).
    cells: Vec<(String, String, Option<String>, u64)>,
    /// `data-error-code` cells: code -> number.
    codes: BTreeMap<String, u64>,
    /// `data-series` groups of the chart.
    series: Vec<String>,
    /// The page's text.
    text: String,
}

/// Reads a page with Python's own HTML parser (an independent reader), checking on the way
/// that every element is closed in order and that nothing is loaded from elsewhere.
fn read_page(python: &Path, page: &Path) -> Page {
    let script = r##"
import json, sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}
LOADS = {"src", "href", "xlink:href", "action", "poster", "srcset", "data"}

class Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.external, self.tags = [], [], [], set()
        self.cells, self.codes, self.series, self.text = [], {}, [], []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def attrs(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for k, v in a.items():
            if k in LOADS and not (v or "").startswith("#"):
                self.external.append(f"<{tag} {k}={v}>")
            if k == "style" and ("url(" in v or "@import" in v):
                self.external.append(f"<{tag} style={v}>")
        if tag in ("script", "link", "iframe", "object", "embed", "img", "image", "use"):
            self.external.append(f"<{tag}>")
        return a

    def handle_starttag(self, tag, attrs):
        a = self.attrs(tag, attrs)
        if "data-series" in a:
            self.series.append(a["data-series"])
        if tag not in VOID:
            self.stack.append((tag, a, []))

    def handle_startendtag(self, tag, attrs):
        self.attrs(tag, attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            open_ = self.stack[-1][0] if self.stack else None
            self.errors.append(f"</{tag}> closes <{open_}> at {self.getpos()}")
            return
        _, a, text = self.stack.pop()
        value = "".join(text).strip()
        if "data-state" in a:
            target = next((b["data-target"] for (_, b, _) in self.stack if "data-target" in b), None)
            self.cells.append([a["data-ledger"], a["data-state"], target, int(value)])
        if "data-error-code" in a:
            self.codes[a["data-error-code"]] = int(value)

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "style" and ("url(" in data or "@import" in data):
            self.external.append("a style that loads a file")
        if self.stack and self.stack[-1][0] not in ("style", "title"):
            self.text.append(data)
        for (_, _, text) in self.stack:
            text.append(data)

r = Reader()
r.feed(open(sys.argv[1], encoding="utf-8").read())
r.close()
if not r.doctype:
    r.errors.append("no <!DOCTYPE html>")
r.errors += [f"<{t}> never closed" for (t, _, _) in r.stack]
print(json.dumps({"errors": r.errors, "external": r.external, "tags": sorted(r.tags),
                  "cells": r.cells, "codes": r.codes, "series": r.series,
                  "text": " ".join("".join(r.text).split())}))
"##;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(page)
        .output()
        .expect("python runs");
    let run = Run::from(out);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).expect("the reader's output")
}

/// The states of a `counts` object, keyed by name.
fn counts_of(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .expect("counts object")
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

/// The page's cells of one column (`all`, `transfer`, `accept`) or of one target row.
fn column(page: &Page, ledger: &str, target: Option<&str>) -> BTreeMap<String, u64> {
    page.cells
        .iter()
        .filter(|(l, _, t, _)| l == ledger && t.as_deref() == target)
        .map(|(_, s, _, n)| (s.clone(), *n))
        .collect()
}

/// The non-zero entries.
fn nonzero(m: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    m.iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// A migration with something in every section: 8 certificates to TARGET (accepted there),
/// 4 to TARGET2 in a named region (transferred, not yet accepted), 3 that do not exist
/// (failed); the transfer in two runs (the first stopped by --max-items), then an accept.
fn migration(env: &Env) -> Vec<String> {
    let ids: Vec<String> = (0..12).map(cert_id).collect();
    env.seed(
        SOURCE,
        REGION,
        ids.iter()
            .map(|id| cert(id, "ACTIVE", &["p"], &["t"]))
            .collect(),
    );
    let missing: Vec<String> = (50..53).map(cert_id).collect();
    let mut csv = String::from("certificate_id,target_account,region\n");
    for id in &ids[..8] {
        csv.push_str(&format!("{id},{TARGET},\n"));
    }
    for id in &ids[8..] {
        csv.push_str(&format!("{id},{TARGET2},{REGION}\n"));
    }
    for id in &missing {
        csv.push_str(&format!("{id},{TARGET},\n"));
    }
    env.write("m.csv", &csv);
    let transfer = [&["transfer", "m.csv"][..], &PREPARE].concat();
    env.run(&[&transfer[..], &["--max-items", "5"]].concat())
        .expect_code(4);
    env.run(&transfer).expect_code(3);
    env.run_as(TARGET, &["accept", "m.csv"]);
    missing
}

#[test]
fn the_page_parses_as_html_loads_nothing_and_its_numbers_are_statuss() {
    let python = match python_with("html.parser") {
        Ok(p) => p,
        Err(why) => return skip_or_fail(&why),
    };
    let env = Env::unlimited();
    let missing = migration(&env);

    let run = env.run(&["report", "m.csv", "--html", "out/report.html"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("out/report.html"),
        "names the unwritable path before reading anything: {}",
        run.stderr
    );
    let run = env.run(&["report", "m.csv", "--html", "report.html"]);
    run.expect_code(0);
    let page = read_page(&python, &env.path("report.html"));
    assert_eq!(page.errors, Vec::<String>::new(), "well-formed");
    assert_eq!(page.external, Vec::<String>::new(), "self-contained");
    for tag in ["html", "head", "title", "style", "body", "table", "svg"] {
        assert!(
            page.tags.iter().any(|t| t == tag),
            "no <{tag}>: {:?}",
            page.tags
        );
    }

    // Each ledger's column is what `status` says of it.
    let status = env.run(&[
        "--output",
        "json",
        "status",
        "m.csv",
        "--ledger",
        "m.ledger.jsonl",
    ]);
    status.expect_code(0);
    let status = status.json();
    assert_eq!(
        column(&page, "transfer", None),
        counts_of(&status["counts"])
    );
    let accepted = env.run(&[
        "--output",
        "json",
        "status",
        "m.csv",
        "--ledger",
        "m.accept-ledger.jsonl",
    ]);
    accepted.expect_code(0);
    assert_eq!(
        column(&page, "accept", None),
        counts_of(&accepted.json()["counts"])
    );
    // And all together, each certificate once in its furthest state: what `status` of the
    // manifest says too. The missing ones wait for the source account's credentials.
    let all = column(&page, "all", None);
    assert_eq!(
        nonzero(&all),
        expect(&[("accepted", 8), ("transferred", 4), ("waiting", 3)])
    );
    assert_eq!(all.values().sum::<u64>(), 15);
    let combined = env.run(&["--output", "json", "status", "m.csv"]);
    combined.expect_code(0);
    assert_eq!(all, counts_of(&combined.json()["counts"]));

    // Per target account and region.
    let to = |key: &str| nonzero(&column(&page, "target", Some(key)));
    assert_eq!(
        to(&format!("{TARGET}/")),
        expect(&[("accepted", 8), ("waiting", 3)])
    );
    assert_eq!(
        to(&format!("{TARGET2}/{REGION}")),
        expect(&[("transferred", 4)])
    );

    // Failures by code, with the rows to act on: the same codes and ids as `status`.
    let failed = status["waiting"].as_array().unwrap();
    assert_eq!(failed.len(), 3);
    let code = failed[0]["error_code"].as_str().unwrap();
    assert!(failed.iter().all(|f| f["error_code"] == code));
    assert_eq!(page.codes, expect(&[(code, 3)]));
    for id in &missing {
        assert!(page.text.contains(id.as_str()), "failed {id} listed");
    }

    // The chart: one line per run and outcome, the same as the JSON report's timeline.
    let json = env.run(&["--output", "json", "report", "m.csv"]);
    json.expect_code(0);
    let json = json.json();
    let series = json["timeline"]["series"].as_array().unwrap();
    let labels: Vec<String> = series
        .iter()
        .map(|s| {
            format!(
                "{} run {}: {}",
                s["ledger"].as_str().unwrap(),
                s["run"],
                s["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            "transfer run 1: transferred",
            "transfer run 2: transferred",
            "accept run 1: accepted"
        ]
    );
    assert_eq!(page.series, labels);
    let totals: Vec<u64> = series
        .iter()
        .map(|s| s["total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, [5, 7, 8]);
    for s in series {
        let in_buckets: u64 = s["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[1].as_u64().unwrap())
            .sum();
        assert_eq!(in_buckets, s["total"].as_u64().unwrap());
    }
    assert_eq!(counts_of(&json["counts"]), all);
}

#[test]
fn the_text_report_says_how_far_what_failed_and_how_fast() {
    let env = Env::unlimited();
    let missing = migration(&env);
    let run = env.run(&["report", "m.csv"]);
    run.expect_code(0);
    let text = &run.stdout;
    assert!(
        text.starts_with("migration report of m.csv (15 certificates)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  accepted 8  transferred 4  waiting 3\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "    {TARGET} (default region): accepted 8  waiting 3\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("    {TARGET2} {REGION}: transferred 4\n")),
        "{text}"
    );
    for id in &missing {
        assert!(
            text.contains(&format!("      {id} -> {TARGET}: ")),
            "{text}"
        );
    }
    assert!(
        text.contains("    transfer run 2: transferred: 7 certificates from "),
        "{text}"
    );
    assert_eq!(run.stderr, "");
    // Read only: the ledgers are as they were, and no lock is left to trip a run.
    let before = std::fs::read(env.path("m.ledger.jsonl")).unwrap();
    env.run(&["report", "m.csv"]).expect_code(0);
    assert_eq!(std::fs::read(env.path("m.ledger.jsonl")).unwrap(), before);
}

#[test]
fn report_without_a_ledger_says_which_it_looked_for_and_exits_2() {
    let env = Env::unlimited();
    env.fleet("m.csv", 0..2, "INACTIVE", &[], &[]);
    let run = env.run(&["report", "m.csv", "--html", "r.html"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("m.ledger.jsonl") && run.stderr.contains("m.accept-ledger.jsonl"),
        "{}",
        run.stderr
    );
    assert!(!env.path("r.html").exists(), "no page of nothing");
    // A ledger named on the command line must exist.
    let run = env.run(&["report", "m.csv", "--ledger", "nope.jsonl"]);
    run.expect_code(1);
    assert!(run.stderr.contains("nope.jsonl"), "{}", run.stderr);
}

/// Chromium, when installed: `IOT_CERT_MIGRATE_CHROMIUM`, or chromium on `PATH`.
fn chromium() -> Option<std::path::PathBuf> {
    std::env::var_os("IOT_CERT_MIGRATE_CHROMIUM")
        .map(Into::into)
        .or_else(|| on_path("chromium"))
        .or_else(|| on_path("chromium-browser"))
}

#[test]
fn the_page_renders_in_headless_chromium() {
    // Chromium is big; CI does not install it, so this skips there too (saying so).
    let Some(chromium) = chromium() else {
        skipped("no chromium on PATH (apt-get install chromium, or set IOT_CERT_MIGRATE_CHROMIUM)");
        return;
    };
    let env = Env::unlimited();
    migration(&env);
    env.run(&["report", "m.csv", "--html", "report.html"])
        .expect_code(0);
    let shot = env.path("shot.png");
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,1600",
        ])
        .arg(format!(
            "--user-data-dir={}",
            env.path("chromium").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", env.path("report.html").display()))
        .output()
        .expect("chromium runs");
    let run = Run::from(out);
    run.expect_code(0);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // 1100 x 1600, and not one blank colour (a page that did not render compresses to
    // almost nothing).
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1100);
    assert!(png.len() > 20_000, "{} bytes: a blank page?", png.len());
}
