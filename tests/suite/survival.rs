//! Survival tests (issue 5): whatever happens to a run — SIGKILL at any moment, injected
//! faults, SIGTERM, a double Ctrl-C, a time box, an item limit, a torn or damaged ledger, a
//! second run on the same ledger — rerunning the same command finishes the job, no
//! certificate is transferred twice, and no outcome is lost from the ledger.
//!
//! Every test drives the real binary against the in-process simulator and checks three
//! things against each other: the exit code, the ledger, and the simulator's state.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;
use iot_sim::{FaultKind, SimConfig};
use rand::Rng;
use serde_json::Value;

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// SIGKILL at random moments, rerun each time: the job still ends with every certificate
/// transferred exactly once and every change recorded exactly once.
#[test]
fn sigkill_at_random_moments_then_rerun_finishes_with_every_certificate_transferred_once() {
    use std::os::unix::process::ExitStatusExt;
    /// Kills that must land while the run was recording events.
    const MID_RUN_KILLS: usize = 10;
    let fleet = ActiveFleet::new(
        SimConfig {
            latency: Duration::from_millis(2),
            latency_jitter: Duration::from_millis(3),
            ..SimConfig::unlimited()
        },
        500,
    );
    let mut rng = rng("sigkill");
    let (mut kills, mut mid_run, mut runs, mut in_doubt_seen) = (0, 0, 0, 0);
    while mid_run < MID_RUN_KILLS {
        runs += 1;
        assert!(
            runs <= 4 * MID_RUN_KILLS,
            "{mid_run} mid-run kills in {runs} runs"
        );
        let before = fleet.ledger_lines();
        let mut run = fleet.spawn(&format!("run-{runs}"), &[]);
        if rng.random_bool(0.2) {
            // Any moment of the first fraction of a second: starting up, opening, locking,
            // replaying or appending to the ledger, asking STS, the first calls.
            let delay = Duration::from_millis(rng.random_range(0..=250));
            let deadline = Instant::now() + delay;
            wait_until("the random moment", RUN_LIMIT, || {
                Instant::now() >= deadline || run.exited()
            });
        } else {
            // Once the ledger grew by a random number of lines: between an intent and its
            // call, a call and its outcome, during reconciliation, ...
            let grow = rng.random_range(1..=300);
            wait_until("the ledger to grow", RUN_LIMIT, || {
                fleet.ledger_lines() >= before + 1 + grow || run.exited()
            });
        }
        let _ = run.child.kill();
        let status = run.wait(RUN_LIMIT);
        assert_eq!(
            status.signal(),
            Some(9),
            "run {runs} ended by itself ({status}) before it was killed: the fleet is too small or too fast\n{}",
            run.stderr()
        );
        kills += 1;
        // The run line and at least one event: the kill interrupted real work.
        if fleet.ledger_lines() >= before + 2 {
            mid_run += 1;
        }
        if run.stderr().contains("in doubt from an earlier run") {
            in_doubt_seen += 1;
        }
    }
    let last = fleet.spawn("final", &[]).finish(RUN_LIMIT);
    last.expect_code(0);
    if last.stderr.contains("in doubt from an earlier run") {
        in_doubt_seen += 1;
    }
    assert_eq!(last.count("transferred"), fleet.ids.len() as u64);
    // The kills must have hit the window the ledger exists for: intents without outcome.
    assert!(
        in_doubt_seen > 0,
        "no run started with items in doubt: no kill fell between an intent and its outcome"
    );
    let reconciled = ledger_events(&fleet.ledger)
        .iter()
        .filter(|e| e["details"]["via"] == "reconciled")
        .count();
    assert!(
        reconciled > 0,
        "no outcome was established by reconciliation"
    );
    eprintln!(
        "sigkill: {kills} kills ({mid_run} mid-run) in {runs} runs; {in_doubt_seen} runs started with items in doubt; {reconciled} outcomes reconciled"
    );
    fleet.assert_all_transferred_once();
}

/// Every transport fault kind (5xx, resets, timeouts, lost replies), at rates far above
/// AWS's: every certificate still ends transferred exactly once, none failed, in one run.
#[test]
fn injected_faults_of_every_kind_lose_nothing_and_transfer_nothing_twice() {
    let fleet = ActiveFleet::new(
        SimConfig {
            faults: vec![
                (FaultKind::Http500, 0.05),
                (FaultKind::Http503, 0.05),
                (FaultKind::Reset, 0.02),
                (FaultKind::Timeout, 0.01),
                (FaultKind::LostReply, 0.02),
                (FaultKind::Truncated, 0.02),
                (FaultKind::Empty, 0.02),
                (FaultKind::Duplicate, 0.02),
            ],
            timeout_hold: Duration::from_secs(3),
            ..SimConfig::unlimited()
        },
        200,
    );
    // About one read in six fails here, a hundred times AWS's rate. With the default 5
    // attempts, 0.17^5 per call over ~1,300 reads would leave an item pending for the next
    // run in about one run in six (a transient error that outlasts --max-attempts is not
    // the certificate's failure: the run exits 4); 10 attempts make that 3e-5 without
    // changing what is tested: every unknown outcome (a lost, garbled or duplicated reply)
    // is reconciled and nothing is sent twice.
    let run = fleet.run(&["--read-timeout", "1", "--max-attempts", "10"]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 200);
    let stats = fleet.env.sim.stats();
    // Each kind injected above happened at least once.
    for kind in [
        FaultKind::Http500,
        FaultKind::Http503,
        FaultKind::Reset,
        FaultKind::Timeout,
        FaultKind::LostReply,
    ] {
        assert!(
            stats.faults_of(kind) > 0,
            "no {kind} fault was injected: {stats:?}"
        );
    }
    let events = ledger_events(&fleet.ledger);
    let unknown = events.iter().filter(|e| e["outcome"] == "unknown").count();
    assert!(
        unknown > 0,
        "no mutating call ended with an unknown outcome"
    );
    fleet.assert_all_transferred_once();
}

/// Every mutating call takes effect but its answer is lost (a 500 or a reset): every outcome
/// must be established by asking AWS, in the same run, with nothing sent twice. Concurrent
/// reconciliations share one ListOutgoingCertificates listing; a listing started while a
/// transfer was on its way must not count as proof that the transfer did not happen.
#[test]
fn every_reply_lost_every_outcome_reconciled_in_the_same_run() {
    let fleet = ActiveFleet::new(
        SimConfig {
            latency: Duration::from_millis(2),
            latency_jitter: Duration::from_millis(30),
            faults: vec![(FaultKind::LostReply, 1.0)],
            ..SimConfig::unlimited()
        },
        100,
    );
    let run = fleet.run(&[]);
    run.expect_code(0);
    assert_eq!(run.count("transferred"), 100);
    let events = ledger_events(&fleet.ledger);
    let via = |outcome: &str, via: &str| {
        events
            .iter()
            .filter(|e| e["outcome"] == outcome && e["details"]["via"] == via)
            .count()
    };
    assert_eq!(
        via("transferred", "reconciled"),
        100,
        "every transfer answer was lost"
    );
    assert_eq!(
        via("done", "reconciled"),
        300,
        "every prepare answer was lost"
    );
    fleet.assert_all_transferred_once();
}

/// SIGTERM: no new item starts, in-flight items finish, the summary says why, exit 4; the
/// ledger and the simulator agree; the rerun finishes.
#[test]
fn sigterm_finishes_in_flight_items_exits_4_and_the_rerun_finishes() {
    let fleet = ActiveFleet::new(
        SimConfig {
            latency: Duration::from_millis(3),
            ..SimConfig::unlimited()
        },
        300,
    );
    let mut run = fleet.spawn("term", &[]);
    wait_until("the run to be well under way", RUN_LIMIT, || {
        fleet.ledger_lines() >= 300 || run.exited()
    });
    assert!(
        !run.exited(),
        "the run ended before the signal: {}",
        run.stderr()
    );
    run.signal("TERM");
    let run = run.finish(RUN_LIMIT);
    run.expect_code(4);
    let summary = run.json();
    assert_eq!(summary["stopped"], "stopped by signal", "{summary}");
    assert_eq!(summary["exit_code"], 4);
    // In-flight items had --grace (10 s) to finish, and did: nothing is in doubt.
    assert_eq!(summary["counts"]["in_doubt"], 0, "{summary}");
    assert_eq!(
        summary["counts"],
        fleet.status_counts(),
        "summary and ledger disagree"
    );
    // The failure report was written on the way out (empty: nothing failed).
    assert!(read_csv(&fleet.env.path("m.failures.csv")).is_empty());
    let transferred = fleet.assert_ledger_matches_sim();
    assert!(
        transferred > 0 && transferred < 300,
        "{transferred} transferred: the signal did not land mid-run"
    );

    let rerun = fleet.run(&[]);
    rerun.expect_code(0);
    fleet.assert_all_transferred_once();
}

/// Stop means stop (issue 24): Ctrl-C while a 200-certificate fleet is being deactivated at
/// the documented quotas. No certificate gets its first change after the signal: every
/// certificate's first ledger intent is older than it, and AWS saw no more deactivations
/// than the ledger has intents. The items that had changed something finish; the others
/// (reading, or queued for a deactivation slot) are dropped untouched, and the summary says
/// so and what is left; exit 4. A rerun finishes the fleet, every change made exactly once.
#[test]
fn ctrl_c_gives_no_certificate_its_first_change_after_the_signal() {
    let mut fleet = ActiveFleet::new(SimConfig::unlimited(), 200);
    fleet.rate_scale = "1";
    // Deactivations slower than the reads before them (as when AWS throttles them): items
    // queue for their first change's pacer slot, the ones a stop must not let through.
    let slow = ["--rate", "UpdateCertificate=4"];
    let deactivated = |fleet: &ActiveFleet| {
        let text = std::fs::read_to_string(&fleet.ledger).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("\"outcome\":\"done\"") && l.contains("\"deactivate\""))
            .count()
    };
    let mut run = fleet.spawn("ctrl-c", &slow);
    wait_until("10 certificates deactivated", RUN_LIMIT, || {
        deactivated(&fleet) >= 10 || run.exited()
    });
    assert!(
        !run.exited(),
        "the run ended before the signal: {}",
        run.stderr()
    );
    let signalled = run.signal_at(libc::SIGINT);
    let run = run.finish(RUN_LIMIT);
    run.expect_code(4);

    let events = ledger_events(&fleet.ledger);
    let mut first_intent: BTreeMap<&str, &str> = BTreeMap::new();
    for e in &events {
        if e["outcome"] == "intent" {
            let id = e["id"].as_str().unwrap();
            first_intent.entry(id).or_insert(e["ts"].as_str().unwrap());
        }
    }
    let late: Vec<(&&str, &&str)> = first_intent
        .iter()
        .filter(|(_, ts)| humantime::parse_rfc3339(ts).unwrap() > signalled)
        .collect();
    assert!(
        late.is_empty(),
        "{} certificates got their first change after the signal ({}), e.g. {:?}",
        late.len(),
        humantime::format_rfc3339_millis(signalled),
        late.first()
    );
    let touched = first_intent.len() as u64;
    assert!(touched < 200, "every certificate was started");
    // AWS agrees: a deactivation per certificate the ledger started, no more.
    let stats = fleet.env.sim.stats();
    assert_eq!(stats.calls_of("UpdateCertificate"), touched);

    let summary = run.json();
    assert_eq!(summary["stopped"], "stopped by signal", "{summary}");
    let after = &summary["after_stop"];
    assert!(
        after["untouched"].as_u64().unwrap() > 0,
        "items waiting for a slot were dropped untouched: {summary}"
    );
    assert_eq!(after["abandoned"], 0, "{summary}");
    assert_eq!(summary["counts"]["in_doubt"], 0, "{summary}");
    let transferred = fleet.assert_ledger_matches_sim();
    assert_eq!(transferred, touched, "every started certificate finished");
    assert_eq!(summary["left"], 200 - transferred, "{summary}");
    assert_eq!(summary["counts"], fleet.status_counts());

    fleet.rate_scale = "100";
    let rerun = fleet.run(&[]);
    rerun.expect_code(0);
    fleet.assert_all_transferred_once();
    let stats = fleet.env.sim.stats();
    for op in [
        "UpdateCertificate",
        "DetachPolicy",
        "DetachThingPrincipal",
        "TransferCertificate",
    ] {
        assert_eq!(stats.calls_of(op), 200, "{op}");
    }
}

/// A second SIGINT exits at once (exit 4), without waiting for the in-flight items; the
/// ledger stays readable, and the rerun reconciles what was cut off and finishes.
#[test]
fn second_sigint_exits_at_once_and_the_rerun_reconciles_and_finishes() {
    let fleet = ActiveFleet::new(
        SimConfig {
            // Every call takes a second: after the first signal, the in-flight items still
            // have several calls (seconds) to go.
            latency: Duration::from_secs(1),
            ..SimConfig::unlimited()
        },
        40,
    );
    let mut run = fleet.spawn("int", &["--grace", "60s", "--log-format", "json"]);
    wait_until("the first intent", RUN_LIMIT, || {
        fleet.ledger_lines() >= 3 || run.exited()
    });
    run.signal("INT");
    wait_until("the stop request to be logged", RUN_LIMIT, || {
        run.stderr().contains("stopped by signal") || run.exited()
    });
    assert!(
        !run.exited(),
        "the first SIGINT must let in-flight items finish: {}",
        run.stderr()
    );
    let second = Instant::now();
    run.signal("INT");
    let run = run.finish(RUN_LIMIT);
    run.expect_code(4);
    assert!(
        second.elapsed() < Duration::from_secs(30),
        "waited {:?} after the second SIGINT",
        second.elapsed()
    );
    assert!(run.stderr.contains("second interrupt"), "{}", run.stderr);
    for line in run.stderr.lines() {
        let v: Result<Value, _> = serde_json::from_str(line);
        assert!(
            v.is_ok_and(|v| v.is_object()),
            "not a JSON log line: {line}"
        );
    }
    assert!(
        run.stdout.trim().is_empty(),
        "an immediate exit prints no summary: {}",
        run.stdout
    );
    // Calls were cut off mid-flight: their intents are open, and `status` reads the ledger.
    let counts = fleet.status_counts();
    assert!(counts["in_doubt"].as_u64().unwrap() > 0, "{counts}");

    let rerun = fleet.run(&[]);
    rerun.expect_code(0);
    assert!(
        rerun.stderr.contains("in doubt from an earlier run"),
        "{}",
        rerun.stderr
    );
    fleet.assert_all_transferred_once();
}

/// When the grace period ends, calls still in flight are abandoned: the items stay in doubt
/// (exit 4), and the rerun asks AWS what became of them before going on.
#[test]
fn calls_still_hanging_after_the_grace_period_are_left_in_doubt_and_reconciled_next_run() {
    let fleet = ActiveFleet::new(
        SimConfig {
            // Each call takes 100 ms: an item that just announced its deactivation still
            // has three mutating calls (300 ms and more) ahead of it.
            latency: Duration::from_millis(100),
            timeout_hold: Duration::from_secs(60),
            ..SimConfig::unlimited()
        },
        100,
    );
    let mut run = fleet.spawn("hang", &["--grace", "1s"]);
    wait_until(
        "an item in the middle of its prepare calls",
        RUN_LIMIT,
        || open_intents(&fleet.ledger).contains(&"deactivate".to_string()) || run.exited(),
    );
    // From now on the simulator holds every request without answering: that item's next
    // mutating call at the latest hangs, after its intent is on disk.
    fleet.env.sim.set_faults(vec![(FaultKind::Timeout, 1.0)]);
    wait_until("a call to hang", RUN_LIMIT, || {
        fleet.env.sim.stats().faults_of(FaultKind::Timeout) > 0 || run.exited()
    });
    assert!(
        !run.exited(),
        "the run ended before the signal: {}",
        run.stderr()
    );
    run.signal("TERM");
    let run = run.finish(RUN_LIMIT);
    run.expect_code(4);
    let summary = run.json();
    assert_eq!(summary["stopped"], "stopped by signal", "{summary}");
    let in_doubt = summary["counts"]["in_doubt"].as_u64().unwrap();
    assert!(in_doubt > 0, "{summary}");
    assert_eq!(summary["counts"], fleet.status_counts());

    fleet.env.sim.set_faults(vec![]);
    let rerun = fleet.run(&[]);
    rerun.expect_code(0);
    assert!(
        rerun.stderr.contains(&format!(
            "{in_doubt} certificate{} in doubt from an earlier run",
            if in_doubt == 1 { "" } else { "s" }
        )),
        "{}",
        rerun.stderr
    );
    fleet.assert_all_transferred_once();
}

/// `--max-duration`: no new item after the limit, the started ones finish, exit 4; the rerun
/// finishes.
#[test]
fn max_duration_stops_starting_items_finishes_cleanly_and_exits_4() {
    let mut fleet = ActiveFleet::new(SimConfig::unlimited(), 100);
    // 2x the documented quotas: about 20 certificates a second, so 1 s cannot be enough.
    fleet.rate_scale = "2";
    let run = fleet.run(&["--max-duration", "1s"]);
    run.expect_code(4);
    let summary = run.json();
    assert_eq!(summary["stopped"], "stopped at --max-duration", "{summary}");
    let elapsed = summary["elapsed_s"].as_f64().unwrap();
    assert!(
        elapsed >= 1.0,
        "stopped after {elapsed} s, before the limit"
    );
    assert_eq!(summary["counts"]["in_doubt"], 0, "{summary}");
    assert_eq!(summary["counts"], fleet.status_counts());
    let transferred = fleet.assert_ledger_matches_sim();
    assert!(
        transferred > 0 && transferred < 100,
        "{transferred} transferred"
    );
    assert_eq!(fleet.env.sim.stats().transfers_effective, transferred);

    fleet.rate_scale = "100";
    fleet.run(&[]).expect_code(0);
    fleet.assert_all_transferred_once();
}

/// `--max-items N`: exactly N certificates are touched, exit 4; the next run does the next
/// N; a run whose remaining work is under the limit finishes with exit 0.
#[test]
fn max_items_touches_exactly_n_certificates_per_run() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 50);
    let touched = || {
        ledger_events(&fleet.ledger)
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    for (n, expected) in [(1, 20), (2, 40)] {
        let run = fleet.run(&["--max-items", "20"]);
        run.expect_code(4);
        let summary = run.json();
        assert_eq!(
            summary["stopped"], "stopped at --max-items",
            "run {n}: {summary}"
        );
        assert_eq!(summary["processed_this_run"], 20, "run {n}");
        assert_eq!(summary["counts"]["transferred"], expected, "run {n}");
        assert_eq!(summary["counts"]["pending"], 50 - expected, "run {n}");
        assert_eq!(
            touched(),
            expected as usize,
            "run {n}: certificates in the ledger"
        );
        assert_eq!(fleet.assert_ledger_matches_sim(), expected, "run {n}");
        assert_eq!(
            fleet.env.sim.stats().calls_of("TransferCertificate"),
            expected,
            "run {n}"
        );
    }
    let last = fleet.run(&["--max-items", "20"]);
    last.expect_code(0);
    assert_eq!(last.json()["processed_this_run"], 10);
    fleet.assert_all_transferred_once();
}

/// One run per ledger: a second run exits 5 at once, naming the ledger and the holder's
/// pid, and changes nothing; the first run goes on undisturbed.
#[test]
fn a_second_run_on_a_locked_ledger_exits_5_naming_ledger_and_pid() {
    let fleet = ActiveFleet::new(
        SimConfig {
            latency: Duration::from_millis(800),
            ..SimConfig::unlimited()
        },
        20,
    );
    let mut first = fleet.spawn("first", &[]);
    wait_until("the first run to hold the ledger", RUN_LIMIT, || {
        fleet.ledger_lines() >= 2 || first.exited()
    });
    let started = Instant::now();
    let second = fleet.run(&[]);
    second.expect_code(5);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second run took {:?}",
        started.elapsed()
    );
    assert!(!first.exited(), "the runs did not overlap");
    assert!(
        second.stderr.contains("m.ledger.jsonl"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.pid())),
        "{}",
        second.stderr
    );
    assert!(second.stdout.trim().is_empty(), "{}", second.stdout);
    first.finish(RUN_LIMIT).expect_code(0);
    // The second run wrote nothing and asked AWS nothing (every run asks STS once).
    let runs = read_jsonl(&fleet.ledger)
        .iter()
        .filter(|l| l.get("run").is_some())
        .count();
    assert_eq!(runs, 1, "run lines in the ledger");
    assert_eq!(fleet.env.sim.stats().calls_of("GetCallerIdentity"), 1);
    fleet.assert_all_transferred_once();
}

/// A torn last line (the crash hit mid-write) is set aside with a warning naming the line
/// and `LEDGER.torn`; the intent before it is reconciled, not re-sent.
#[test]
fn torn_last_line_is_set_aside_and_the_intent_before_it_reconciled() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 30);
    fleet.run(&["--max-items", "10"]).expect_code(4);
    let in_ledger: std::collections::BTreeSet<String> = ledger_events(&fleet.ledger)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let victim = fleet
        .ids
        .iter()
        .find(|id| !in_ledger.contains(*id))
        .unwrap()
        .clone();
    let i = fleet.ids.iter().position(|id| *id == victim).unwrap();
    // The crash: the deactivation was recorded as intended and took effect at AWS; its
    // `done` line was being written when the power went.
    let intent = format!(
        "{{\"ts\":\"2026-11-22T00:00:00.000Z\",\"id\":\"{victim}\",\"target\":\"{TARGET}\",\"stage\":\"prepare\",\"outcome\":\"intent\",\"details\":{{\"action\":\"deactivate\",\"previous_status\":\"ACTIVE\"}}}}\n"
    );
    let torn = format!("{{\"ts\":\"2026-11-22T00:00:00.001Z\",\"id\":\"{victim}\",\"tar");
    append(&fleet.ledger, &format!("{intent}{torn}"));
    let torn_line = count_lines(&fleet.ledger) + 1;
    fleet.env.seed(
        SOURCE,
        REGION,
        vec![cert(
            &victim,
            "INACTIVE",
            &[POLICY],
            &[&format!("thing-{i}")],
        )],
    );

    let run = fleet.run(&[]);
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!(
            "m.ledger.jsonl:{torn_line}: ignoring an incomplete last line"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("m.ledger.jsonl.torn"), "{}", run.stderr);
    let set_aside = std::fs::read_to_string(fleet.env.path("m.ledger.jsonl.torn")).unwrap();
    assert_eq!(set_aside.trim_end(), torn);
    let reconciled = ledger_events(&fleet.ledger).into_iter().find(|e| {
        e["id"] == victim.as_str()
            && e["outcome"] == "done"
            && e["details"]["action"] == "deactivate"
    });
    assert_eq!(
        reconciled.expect("deactivate recorded")["details"]["via"],
        "reconciled"
    );
    fleet.assert_all_transferred_once();
}

/// A run killed while it created the ledger leaves a torn header and nothing else: the next
/// run sets it aside and starts the ledger afresh instead of refusing it as damaged.
#[test]
fn torn_header_of_a_new_ledger_is_set_aside_and_the_ledger_started_afresh() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 5);
    let torn = "{\"format\":1,\"kind\":\"transfer\",\"tool\":\"iot-cert-";
    std::fs::write(&fleet.ledger, torn).unwrap();
    let run = fleet.run(&[]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("m.ledger.jsonl:1: ignoring an incomplete"),
        "{}",
        run.stderr
    );
    let set_aside = std::fs::read_to_string(fleet.env.path("m.ledger.jsonl.torn")).unwrap();
    assert_eq!(set_aside.trim_end(), torn);
    let lines = read_jsonl(&fleet.ledger);
    assert_eq!(lines[0]["kind"], "transfer", "a fresh header: {}", lines[0]);
    fleet.assert_all_transferred_once();
}

/// A damaged line in the middle: exit 2 naming file and line, nothing rewritten, nothing
/// asked of AWS; once the line is restored, the rerun finishes.
#[test]
fn damaged_middle_line_exits_2_naming_file_and_line_and_changes_nothing() {
    let fleet = ActiveFleet::new(SimConfig::unlimited(), 10);
    fleet.run(&["--max-items", "5"]).expect_code(4);
    let original = std::fs::read_to_string(&fleet.ledger).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() > 8);
    let good = lines[4];
    lines[4] = "{\"ts\":\"2026-11-22T00:00:00.000Z\",\"id\":";
    let damaged = lines.join("\n") + "\n";
    std::fs::write(&fleet.ledger, &damaged).unwrap();
    let calls_before = fleet.env.sim.stats().total_calls();

    for (what, args) in [
        ("transfer", fleet.args(&[])),
        ("status", vec!["status", "m.csv"]),
    ] {
        let run = fleet.env.run(&args);
        run.expect_code(2);
        assert!(
            run.stderr.contains("m.ledger.jsonl:5: damaged line"),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read_to_string(&fleet.ledger).unwrap(),
            damaged,
            "{what} rewrote the ledger"
        );
    }
    assert!(!fleet.env.path("m.ledger.jsonl.torn").exists());
    assert_eq!(
        fleet.env.sim.stats().total_calls(),
        calls_before,
        "AWS was called"
    );

    lines[4] = good;
    std::fs::write(&fleet.ledger, lines.join("\n") + "\n").unwrap();
    fleet.run(&[]).expect_code(0);
    fleet.assert_all_transferred_once();
}

/// The actions of the intents that have no outcome yet, one per certificate in doubt.
fn open_intents(ledger: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(ledger).unwrap_or_default();
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    // A line being written may be incomplete: only whole lines count.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(id) = e["id"].as_str() else { continue };
        match e["outcome"].as_str() {
            Some("intent") => {
                let action = e["details"]["action"].as_str().unwrap_or_default();
                open.insert(id.to_string(), action.to_string());
            }
            // Neither closes an intent: its outcome is still unknown.
            Some("unknown") | Some("failed") | None => {}
            Some(_) => {
                open.remove(id);
            }
        }
    }
    open.into_values().collect()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Cron-ready: without a terminal there is no progress bar, only a one-line summary every
/// `--progress-interval`; with `--log-format json` every stderr line is one JSON object;
/// `--output json` prints one summary object on stdout.
#[test]
fn without_a_terminal_logs_are_json_lines_with_periodic_summaries_and_no_escape_codes() {
    let mut fleet = ActiveFleet::new(SimConfig::unlimited(), 60);
    // About 20 certificates a second: a few seconds, several summary lines.
    fleet.rate_scale = "2";
    let run = fleet
        .spawn(
            "cron",
            &[
                "--log-format",
                "json",
                "--progress",
                "auto",
                "--progress-interval",
                "0.3",
            ],
        )
        .finish(RUN_LIMIT);
    run.expect_code(0);
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'),
        "terminal control characters on stderr: {:?}",
        run.stderr
    );
    let lines: Vec<Value> = run
        .stderr
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}"))
        })
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l.is_object() && l["level"].is_string()),
        "{lines:?}"
    );
    let progress: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .filter(|m| m.starts_with("progress: "))
        .collect();
    assert!(progress.len() >= 2, "periodic summaries: {progress:?}");
    assert!(progress.iter().all(|m| m.contains("/60")), "{progress:?}");
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert_eq!(run.json()["exit_code"], 0);
    assert_eq!(run.json()["counts"]["transferred"], 60);
}
