//! Scenario 6: the scale of the largest fleets (issue 15). A resume from a ledger as a real
//! migration of a million (or, with `--ten-million`, ten million) certificates leaves it,
//! `status` on that ledger, and `validate` of a ten-million-row manifest.

use std::io;
use std::path::Path;
use std::time::Duration;

use iot_sim::{SimConfig, Simulator};
use serde_json::Value;

use super::data::{self, cert_id, REGION};
use super::support::{self, Exit};
use super::{big_manifest, contention, load_note, mib, opt, read_output, run_dir, tail, tool};
use super::{verdict, Ctx, Verdict};

/// Certificates each measured resume transfers (`--max-items`): the work of a nightly slice
/// near the end of a migration.
const PER_RUN: usize = 1000;
/// Measured resumes (the median is reported), after one resume that starts without a
/// checkpoint.
const MEASURED_RUNS: usize = 3;

/// One resume of the realistic ledger.
struct Resume {
    exit: Exit,
    first_transfer: Option<Duration>,
    appended: u64,
    transferred: u64,
    others: Option<(f64, f64)>,
    checkpoint_note: bool,
}

pub(super) fn scenario(ctx: &mut Ctx, certs: usize, id: &str) -> io::Result<()> {
    println!(
        "## {id}. `transfer` resume from a realistic ledger of {certs} fully prepared certificates (8 events each)"
    );
    println!();
    let dir = run_dir(ctx, &format!("6-realistic-{certs}"))?;
    let extra: Vec<String> = (0..(PER_RUN * (1 + MEASURED_RUNS)) as u64)
        .map(|n| cert_id(u64::MAX - n))
        .collect();
    let manifest = big_manifest(&dir, certs, &extra)?;
    let t = std::time::Instant::now();
    let sha = data::sha256_hex(&manifest)?;
    let ledger = dir.join("big.ledger.jsonl");
    let n = data::write_realistic_ledger(
        &ledger,
        Path::new("big.csv"),
        &sha,
        (0..certs as u64).map(cert_id),
    )?;
    let ledger_len = std::fs::metadata(&ledger)?.len();
    let per_cert_written = ledger_len as f64 / n as f64;
    eprintln!(
        "bench: wrote {} ({n} certificates, {:.1} MiB, {per_cert_written:.0} bytes per certificate) in {:.1} s",
        ledger.display(),
        mib(ledger_len),
        t.elapsed().as_secs_f64()
    );
    let sim = Simulator::spawn(SimConfig::unlimited())?;
    data::seed_active(&sim, REGION, &extra);

    let mut runs = Vec::new();
    for i in 0..=MEASURED_RUNS {
        let r = resume(ctx, &dir, &sim, &ledger)?;
        let label = if i == 0 {
            "resume 0 (no checkpoint yet: the first run after upgrading)".to_string()
        } else {
            format!("resume {i}")
        };
        println!(
            "- {label}: first TransferCertificate {}; exit after {:.2} s (code {:?}); peak RSS {}; CPU {}; {} transferred; started from a checkpoint: {}; {}",
            secs(r.first_transfer),
            r.exit.wall.as_secs_f64(),
            r.exit.code,
            opt(r.exit.max_rss.map(mib), 1, " MiB"),
            opt(r.exit.cpu_s, 2, " s"),
            r.transferred,
            if r.checkpoint_note { "yes" } else { "no" },
            contention(r.others)
        );
        runs.push(r);
    }
    let mut measured: Vec<&Resume> = runs[1..].iter().collect();
    measured.sort_by_key(|r| r.first_transfer.unwrap_or(Duration::MAX));
    let median = measured[measured.len() / 2];
    let rss = measured.iter().filter_map(|r| r.exit.max_rss).max();
    let appended: u64 = runs.iter().map(|r| r.appended).sum();
    let transferred: u64 = runs.iter().map(|r| r.transferred).sum();
    let per_cert_tool = appended as f64 / transferred.max(1) as f64;
    println!(
        "- ledger {:.1} MiB as generated ({per_cert_written:.0} bytes per fully prepared certificate); the tool's own runs appended {per_cert_tool:.0} bytes per certificate they transferred (run lines included)",
        mib(ledger_len)
    );
    let checkpoint = ledger.with_extension("jsonl.checkpoint");
    if let Ok(m) = std::fs::metadata(&checkpoint) {
        println!(
            "- checkpoint {:.1} MiB ({:.0} bytes per certificate)",
            mib(m.len()),
            m.len() as f64 / (certs + extra.len()) as f64
        );
    }
    println!();
    let (time_goal, rss_goal, rss_text) = if certs >= 10_000_000 {
        (10.0, 1u64 << 30, "1 GiB")
    } else {
        (1.0, 100u64 << 20, "100 MiB")
    };
    let started = median.first_transfer.map(|d| d.as_secs_f64());
    let ok = started.is_some_and(|t| t <= time_goal) && rss.is_some_and(|r| r <= rss_goal);
    ctx.table.push(Verdict {
        id: id.into(),
        scenario: format!(
            "`transfer` resume, realistic ledger of {certs} certificates ({:.2} GB), {PER_RUN} to do (median of {MEASURED_RUNS})",
            ledger_len as f64 / 1e9
        ),
        target: format!("first TransferCertificate <= {time_goal} s, peak RSS <= {rss_text}"),
        result: format!(
            "first TransferCertificate {}, exit {:.2} s, peak RSS {} (without a checkpoint: first TransferCertificate {}, peak RSS {})",
            secs(median.first_transfer),
            median.exit.wall.as_secs_f64(),
            opt(rss.map(mib), 0, " MiB"),
            secs(runs[0].first_transfer),
            opt(runs[0].exit.max_rss.map(mib), 0, " MiB"),
        ) + &load_note(median.others),
        verdict: verdict(ok),
    });
    ctx.table.push(Verdict {
        id: format!("{id}-bytes"),
        scenario: "ledger bytes per fully prepared certificate".into(),
        target: "reported".into(),
        result: format!(
            "{per_cert_tool:.0} bytes written by the tool ({per_cert_written:.0} in the generated ledger)"
        ),
        verdict: "reported",
    });

    status(ctx, &dir, certs, id)?;
    Ok(())
}

/// One `transfer` resume of at most [`PER_RUN`] certificates, timed from spawn to the first
/// TransferCertificate the simulator sees.
fn resume(ctx: &Ctx, dir: &Path, sim: &iot_sim::SimHandle, ledger: &Path) -> io::Result<Resume> {
    let args: Vec<String> = [
        "transfer",
        "big.csv",
        "--deactivate",
        "--detach-policies",
        "--detach-things",
        "--output",
        "json",
        "--max-items",
        &PER_RUN.to_string(),
        // The simulator has no quotas; at the default ones the 1,000 would take 100 s.
        // The first calls of a run are not paced at all, so the start is the same.
        "--rate-scale",
        "100",
    ]
    .map(String::from)
    .to_vec();
    let before_len = std::fs::metadata(ledger)?.len();
    let before_calls = sim.stats().calls_of("TransferCertificate");
    let mut cmd = tool(ctx, dir, Some(sim), &args)?;
    // The default level, plus the run's one debug line: the note that says whether the
    // state came from the checkpoint.
    cmd.env(
        "IOT_CERT_MIGRATE_LOG",
        "off,iot_cert_migrate=info,iot_cert_migrate::run=debug",
    );
    let mut first_transfer = None;
    let watch = support::Contention::start();
    let exit = support::run_child(cmd, Duration::from_millis(1), |elapsed| {
        if first_transfer.is_none() && sim.stats().calls_of("TransferCertificate") > before_calls {
            first_transfer = Some(elapsed);
        }
    })?;
    let others = watch.others(exit.cpu_s, exit.wall);
    let (stdout, stderr) = read_output(dir);
    let summary: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        io::Error::other(format!(
            "no JSON summary ({e}); exit {:?}\n{stdout}\n{}",
            exit.code,
            tail(&stderr, 20)
        ))
    })?;
    let transferred = sim.stats().calls_of("TransferCertificate") - before_calls;
    if exit.code != Some(4) && exit.code != Some(0) {
        return Err(io::Error::other(format!(
            "resume exited {:?}\n{}",
            exit.code,
            tail(&stderr, 20)
        )));
    }
    let _ = summary;
    Ok(Resume {
        exit,
        first_transfer,
        appended: std::fs::metadata(ledger)?.len() - before_len,
        transferred,
        others,
        checkpoint_note: stderr.contains("from its checkpoint"),
    })
}

/// `status` on the manifest and its ledger: median of three.
fn status(ctx: &mut Ctx, dir: &Path, certs: usize, id: &str) -> io::Result<()> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let cmd = tool(
            ctx,
            dir,
            None,
            &[
                "--output".into(),
                "json".into(),
                "status".into(),
                "big.csv".into(),
            ],
        )?;
        let watch = support::Contention::start();
        let exit = support::run_child(cmd, Duration::from_millis(5), |_| {})?;
        let others = watch.others(exit.cpu_s, exit.wall);
        let (stdout, stderr) = read_output(dir);
        if exit.code != Some(0) {
            return Err(io::Error::other(format!(
                "status failed ({:?}):\n{stdout}\n{}",
                exit.code,
                tail(&stderr, 20)
            )));
        }
        let v: Value = serde_json::from_str(stdout.trim()).map_err(io::Error::other)?;
        println!(
            "- status: {:.2} s, peak RSS {}; counts {}",
            exit.wall.as_secs_f64(),
            opt(exit.max_rss.map(mib), 1, " MiB"),
            v["counts"]
        );
        runs.push((exit, others));
    }
    println!();
    runs.sort_by_key(|r| r.0.wall);
    let (median, others) = &runs[1];
    let wall = median.wall.as_secs_f64();
    ctx.table.push(Verdict {
        id: format!("{id}-status"),
        scenario: format!("`status` on the realistic {certs}-certificate ledger (median of 3)"),
        target: if certs >= 10_000_000 {
            "reported".into()
        } else {
            "<= 1 s".into()
        },
        result: format!(
            "{wall:.2} s, peak RSS {}",
            opt(median.max_rss.map(mib), 0, " MiB")
        ) + &load_note(*others),
        verdict: if certs >= 10_000_000 {
            "reported"
        } else {
            verdict(wall <= 1.0)
        },
    });
    Ok(())
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} s", d.as_secs_f64()))
        .unwrap_or_else(|| "never".into())
}
