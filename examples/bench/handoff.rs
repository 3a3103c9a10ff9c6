//! Scenario `handoff` (issue 26): `handoff` of 10,000 certificates in 10 waves of 1,000 (one
//! job and one thing group per wave), at the simulator's quotas ×10 with `--rate-scale 10`,
//! 30 ms latency. Afterwards every thing has exactly one execution, of its wave's job, and no
//! call was throttled beyond 1%.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use iot_sim::{Seed, SeedAccount, SeedCertificate, SeedPolicy, Simulator};

use super::data::{self, cert_id, REGION, SOURCE, TARGET};
use super::support::{self, Contention};
use super::{contention, load_note, mib, quota_sim, read_output, run_dir, tail, tool};
use super::{verdict, Ctx, Verdict};

/// Waves of the run.
const WAVES: usize = 10;

pub(super) fn scenario(ctx: &mut Ctx, certs: usize) -> io::Result<()> {
    let wave_size = certs.div_ceil(WAVES);
    println!(
        "## handoff. {certs} certificates in {WAVES} waves of {wave_size}, quotas 10x, 30 ms latency, --rate-scale 10"
    );
    println!();
    let dir = run_dir(ctx, "handoff")?;
    let sim = Simulator::spawn(quota_sim(10.0))?;
    let ids: Vec<String> = (0..certs as u64).map(cert_id).collect();
    let things: Vec<String> = (0..certs).map(|i| format!("device-{i}")).collect();
    let mut accounts = BTreeMap::new();
    accounts.insert(
        SOURCE.to_string(),
        SeedAccount {
            policies: vec![SeedPolicy {
                name: "fleet-policy".into(),
                document: None,
            }],
            certificates: ids
                .iter()
                .zip(&things)
                .map(|(id, thing)| SeedCertificate {
                    id: id.clone(),
                    status: "ACTIVE".into(),
                    policies: vec!["fleet-policy".into()],
                    things: vec![thing.clone()],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    );
    sim.seed(Seed {
        region: REGION.into(),
        accounts,
    })
    .map_err(io::Error::other)?;
    data::write_manifest(
        &dir.join("m.csv"),
        false,
        ids.iter().map(|id| (id.clone(), None)),
    )?;
    std::fs::write(
        dir.join("doc.json"),
        r#"{"operation":"move-endpoint","endpoint":"{endpoint}","account":"{account}","region":"{region}"}"#,
    )?;
    // The tool's AWS config file (empty for the other scenarios): the target's profile.
    std::fs::write(
        dir.join("no-aws-config"),
        format!("[profile migrate-{TARGET}]\naws_access_key_id = {TARGET}\naws_secret_access_key = x\nregion = {REGION}\n"),
    )?;
    let args: Vec<String> = [
        "--output",
        "json",
        "handoff",
        "m.csv",
        "--document",
        "doc.json",
        "--target-profile-template",
        "migrate-{account}",
        "--wave-size",
        &wave_size.to_string(),
        "--rate-scale",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cmd = tool(ctx, &dir, Some(&sim), &args)?;
    cmd.env("IOT_CERT_MIGRATE_PROGRESS", "never");
    let load = Contention::start();
    let exit = support::run_child(cmd, Duration::from_millis(200), |_| {})?;
    let others = load.others(exit.cpu_s, exit.wall);
    let (stdout, stderr) = read_output(&dir);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_default();
    let handed_off = summary["counts"]["handed_off"].as_u64().unwrap_or(0);
    let stats = sim.stats();
    let state = sim.state();
    let source = state
        .accounts
        .iter()
        .find(|a| a.account == SOURCE && a.region == REGION)
        .ok_or_else(|| io::Error::other("no source account in the simulator"))?;
    let mut per_thing: BTreeMap<&str, usize> = BTreeMap::new();
    for job in &source.jobs {
        for thing in job.executions.keys() {
            *per_thing.entry(thing.as_str()).or_default() += 1;
        }
    }
    let exactly_once =
        things.iter().all(|t| per_thing.get(t.as_str()) == Some(&1)) && per_thing.len() == certs;
    let throttled: u64 = stats.throttled.values().sum();
    let calls = stats.total_calls();
    let thr_pct = 100.0 * throttled as f64 / calls.max(1) as f64;
    let wall = exit.wall.as_secs_f64();
    let rate = handed_off as f64 / wall;
    // ListPrincipalThings and AddThingToThingGroup, once per certificate, 10 TPS x 10 each.
    let binding = 100.0;
    println!(
        "- tool exit code {:?}; {handed_off} handed off of {certs}; {} jobs; {} things with one execution each ({}); wall {wall:.1} s = {rate:.1} certs/s ({:.0}% of the binding {binding} certs/s); tool CPU {} s, peak RSS {} MiB",
        exit.code,
        source.jobs.len(),
        per_thing.len(),
        if exactly_once { "every manifest thing exactly once" } else { "NOT exactly once" },
        100.0 * rate / binding,
        exit.cpu_s.map_or("n/a".into(), |c| format!("{c:.1}")),
        exit.max_rss.map_or("n/a".into(), |r| format!("{:.0}", mib(r))),
    );
    println!("- calls at the simulator (throttled): {}", {
        let mut v: Vec<String> = stats
            .calls
            .iter()
            .map(|(op, n)| {
                format!(
                    "{op} {n} ({})",
                    stats.throttled.get(op).copied().unwrap_or(0)
                )
            })
            .collect();
        v.sort();
        v.join(", ")
    });
    println!("- {}", contention(others));
    if exit.code != Some(0) {
        println!("- stderr (tail):\n\n```\n{}\n```", tail(&stderr, 20));
    }
    println!();
    let ok = exit.code == Some(0)
        && handed_off == certs as u64
        && source.jobs.len() == WAVES
        && exactly_once
        && thr_pct <= 1.0;
    ctx.table.push(Verdict {
        id: "handoff".into(),
        scenario: format!(
            "handoff of {certs} certs in {WAVES} waves, 10x quotas, 30 ms, --rate-scale 10"
        ),
        target: format!("{WAVES} jobs, one execution per thing, ≤ 1% throttled, exit 0"),
        result: format!(
            "{wall:.1} s = {rate:.1} certs/s ({:.0}% of {binding} certs/s), {} jobs, {} executions, {thr_pct:.2}% throttled, exit {:?}",
            100.0 * rate / binding,
            source.jobs.len(),
            per_thing.values().sum::<usize>(),
            exit.code
        ) + &load_note(others),
        verdict: verdict(ok),
    });
    Ok(())
}
