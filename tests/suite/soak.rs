//! The soak in small (issue 27): 10,000 certificates, every fault kind of the simulator at
//! once, quotas the tool overestimates twice, six `kill -9` at random moments, then plain
//! reruns until exit 0; every certificate deactivated and transferred exactly once, no
//! failure row, every ledger line parses, peak RSS bounded and not growing. The benchmark
//! runs the same soak (`examples/bench/soak.rs`) at 100,000 certificates, each with a policy
//! and a thing to detach as well, with the release binary.

#[allow(dead_code)]
#[path = "../../examples/bench/data.rs"]
mod data;
#[path = "../../examples/bench/soak.rs"]
mod driver;
#[allow(dead_code)]
#[path = "../../examples/bench/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use iot_sim::FaultKind;

#[test]
fn ten_thousand_certificates_through_every_fault_and_six_kills_end_exactly_once() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(27);
    let spec = driver::Soak {
        certs: 10_000,
        // Bare certificates (five calls each, the deactivation among them: a kill can land
        // between it and the transfer): the benchmark's, with a policy and a thing each to
        // detach, cost seven calls, and this test would take half as long again.
        attachments: false,
        // 300 certificates a second, about what the tests' build of the tool reaches on 2
        // cores; a burst of 30 ms holds 9 calls of the 10-TPS operations, so the calls that
        // 64 workers send together overrun it whatever the machine's speed, and the tool,
        // told twice the quotas, must slow down (1,365 throttled calls on a quiet machine; a
        // 0.1 s burst once saw none on a loaded one).
        quota_scale: 30.0,
        quota_burst: Duration::from_millis(30),
        overestimate: 2.0,
        fault_rate: 0.001,
        kills: 6,
        max_reruns: 10,
        concurrency: 64,
        latency: Duration::from_millis(2),
        seed,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = Path::new(env!("CARGO_BIN_EXE_iot-cert-migrate"));
    let report = driver::run(bin, dir.path(), &spec).expect("the soak runs");
    let text = driver::markdown(&spec, &report);
    eprintln!("soak (seed {seed}):\n{text}");
    assert!(report.problems.is_empty(), "seed {seed}:\n{text}");
    // It did what it says: six runs killed mid-work, every fault kind injected, throttled.
    let killed = report.runs.iter().filter(|r| r.killed).count();
    assert_eq!(killed, 6, "seed {seed}:\n{text}");
    for kind in FaultKind::ALL {
        assert!(
            report.stats.faults_of(kind) > 0,
            "no {kind} fault: seed {seed}:\n{text}"
        );
    }
    assert!(report.calls().1 > 0, "never throttled:\n{text}");
}
