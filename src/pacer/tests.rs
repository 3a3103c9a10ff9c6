//! Unit tests of the pacer, and paced-time simulations against a remote token bucket.

use super::*;
use std::sync::atomic::{AtomicU64, Ordering};

fn scope(account: &str) -> Scope {
    Scope::new(account, "eu-west-1")
}

fn pacer_with(op: Operation, tps: f64) -> Pacer {
    let mut settings = RateSettings::default();
    settings.overrides.insert(op, tps);
    Pacer::new(settings)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn operations_have_names_quotas_and_parse_back() {
    let mut seen = std::collections::BTreeSet::new();
    for op in Operation::ALL {
        assert!(seen.insert(op), "{op} twice in ALL");
        assert_eq!(op.to_string(), op.name());
        assert_eq!(op.name().parse::<Operation>(), Ok(op));
        assert_eq!(op.name().to_lowercase().parse::<Operation>(), Ok(op));
        assert_eq!(op.quota_name(), format!("{} API TPS", op.name()));
        assert!([10.0, 15.0, 100.0].contains(&op.default_tps()), "{op}");
    }
    assert_eq!(
        "transfer-certificate".parse::<Operation>(),
        Ok(Operation::TransferCertificate)
    );
    assert!(matches!(
        "Frobnicate".parse::<Operation>(),
        Err(PacerError::UnknownOperation(_))
    ));
    assert_eq!(Operation::TransferCertificate.default_tps(), 10.0);
    assert_eq!(Operation::DetachPolicy.default_tps(), 15.0);
    // Service Quotas defaults (service `iotcore`), February 2024.
    assert_eq!(Operation::AttachThingPrincipal.default_tps(), 100.0);
    assert_eq!(Operation::DetachThingPrincipal.default_tps(), 100.0);
    assert_eq!(Operation::CreateThing.default_tps(), 100.0);
    assert_eq!(Operation::AttachPolicy.default_tps(), 15.0);
    assert_eq!(Operation::ListPrincipalPolicies.default_tps(), 15.0);
    assert_eq!(Operation::GetPolicy.default_tps(), 10.0);
    assert_eq!(Operation::CreatePolicy.default_tps(), 10.0);
    assert_eq!(Operation::RegisterCertificateWithoutCA.default_tps(), 10.0);
    assert_eq!(Operation::DescribeThing.default_tps(), 10.0);
    assert!(Operation::CreatePolicy.is_mutating());
    assert!(Operation::AddThingToThingGroup.is_mutating());
    assert!(!Operation::GetPolicy.is_mutating());
    assert_eq!(Operation::ListPrincipalThings.default_tps(), 10.0);
    assert!(Operation::TransferCertificate.is_mutating());
    assert!(Operation::DetachThingPrincipal.is_mutating());
    assert!(!Operation::DescribeCertificate.is_mutating());
    assert!(!Operation::ListAttachedPolicies.is_mutating());
    assert!(!Operation::GetCallerIdentity.is_mutating());
}

#[test]
fn settings_scale_defaults_and_overrides_are_absolute() {
    let mut s = RateSettings::default();
    assert_eq!(s.ceiling(Operation::TransferCertificate), 10.0);
    s.scale = 0.5;
    assert_eq!(s.ceiling(Operation::TransferCertificate), 5.0);
    assert_eq!(s.ceiling(Operation::DetachPolicy), 7.5);
    let (op, tps) = RateSettings::parse_override("TransferCertificate=20").unwrap();
    s.overrides.insert(op, tps);
    assert_eq!(s.ceiling(Operation::TransferCertificate), 20.0);
    assert!(s.validate().is_ok());

    assert_eq!(
        RateSettings::parse_override(" describecertificate = 2.5 "),
        Ok((Operation::DescribeCertificate, 2.5))
    );
    for bad in [
        "TransferCertificate",
        "TransferCertificate=",
        "TransferCertificate=abc",
        "TransferCertificate=0",
        "TransferCertificate=-3",
        "TransferCertificate=inf",
        "TransferCertificate=NaN",
        "Nope=3",
    ] {
        assert!(RateSettings::parse_override(bad).is_err(), "{bad}");
    }
    assert_eq!(RateSettings::parse_scale("0.8"), Ok(0.8));
    assert!(RateSettings::parse_scale("0").is_err());
    assert!(RateSettings::parse_scale("-1").is_err());
    s.scale = 0.0;
    assert!(s.validate().is_err());
}

#[test]
fn pacer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Pacer>();
    check::<Arc<Pacer>>();
}

#[tokio::test(start_paused = true)]
async fn smooth_start_no_burst() {
    let pacer = Pacer::new(RateSettings::default());
    let s = scope("111111111111");
    let start = Instant::now();
    let mut times = Vec::new();
    for _ in 0..10 {
        pacer.acquire(&s, Operation::TransferCertificate).await;
        times.push(Instant::now() - start);
    }
    assert_eq!(times[0], Duration::ZERO);
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(99) && gap <= Duration::from_millis(102),
            "{gap:?}"
        );
    }
    let total = times[9];
    assert!(
        total >= Duration::from_millis(895) && total <= Duration::from_millis(910),
        "{total:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_waiters_are_paced_and_served_fifo() {
    let pacer = Arc::new(pacer_with(Operation::DescribeCertificate, 20.0));
    let s = scope("a");
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..10).map(|_| AtomicU64::new(0)).collect());
    let start = Instant::now();
    let end = start + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (pacer, s, counts) = (pacer.clone(), s.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                pacer.acquire(&s, Operation::DescribeCertificate).await;
                if Instant::now() >= end {
                    break;
                }
                counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let per_task: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let total: u64 = per_task.iter().sum();
    // 20 TPS for 10 s, the first slot at t = 0.
    assert!((199..=201).contains(&total), "{total}");
    // FIFO: every task gets its turn in rotation.
    for c in &per_task {
        assert!((19..=21).contains(c), "{per_task:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn operations_and_scopes_are_independent() {
    let pacer = Arc::new(Pacer::new(RateSettings::default()));
    let start = Instant::now();
    let end = start + Duration::from_secs(5);
    let keys = [
        (scope("a"), Operation::TransferCertificate),
        (scope("a"), Operation::DetachPolicy),
        (scope("b"), Operation::TransferCertificate),
        (Scope::new("a", "us-east-1"), Operation::TransferCertificate),
    ];
    let mut tasks = Vec::new();
    for (s, op) in keys.clone() {
        let pacer = pacer.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u32;
            loop {
                pacer.acquire(&s, op).await;
                if Instant::now() >= end {
                    return n;
                }
                n += 1;
            }
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    // Each limiter delivers its own full rate concurrently: 5 s × 10 or 15 TPS.
    assert_eq!(counts, vec![50, 75, 50, 50]);

    // A throttle of one (scope, op) leaves the others alone.
    pacer.on_throttle(&scope("a"), Operation::TransferCertificate);
    assert!(close(
        pacer.current_rate(&scope("a"), Operation::TransferCertificate),
        8.0,
        1e-9
    ));
    assert_eq!(
        pacer.current_rate(&scope("a"), Operation::DetachPolicy),
        15.0
    );
    assert_eq!(
        pacer.current_rate(&scope("b"), Operation::TransferCertificate),
        10.0
    );
    assert_eq!(
        pacer.current_rate(
            &Scope::new("a", "us-east-1"),
            Operation::TransferCertificate
        ),
        10.0
    );
    let snap = pacer.snapshot();
    assert_eq!(snap.len(), 4);
    let t = snap
        .iter()
        .find(|l| l.scope == scope("a") && l.op == Operation::TransferCertificate)
        .unwrap();
    assert_eq!((t.throttles, t.decreases, t.granted), (1, 1, 51));
    assert_eq!(t.ceiling, 10.0);
}

#[tokio::test(start_paused = true)]
async fn decrease_applies_once_per_window() {
    let op = Operation::DescribeCertificate;
    let pacer = pacer_with(op, 100.0);
    let s = scope("a");
    // 50 concurrent throttles from one overshoot: one decrease.
    for _ in 0..50 {
        pacer.on_throttle(&s, op);
    }
    assert!(close(pacer.current_rate(&s, op), 80.0, 1e-9));
    // Still inside the 1 s window: ignored, and the rate is held.
    tokio::time::advance(Duration::from_millis(900)).await;
    pacer.on_throttle(&s, op);
    assert!(close(pacer.current_rate(&s, op), 80.0, 1e-9));
    // Right after the window: the first decrease was not enough, so this one
    // is stronger (0.64), from the barely recovered rate.
    tokio::time::advance(Duration::from_millis(101)).await;
    let before = pacer.current_rate(&s, op);
    assert!((80.0..81.0).contains(&before), "{before}");
    pacer.on_throttle(&s, op);
    assert!(close(pacer.current_rate(&s, op), before * 0.64, 1e-9));
    // Long after that window: the ordinary decrease again.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(pacer.current_rate(&s, op), 100.0);
    pacer.on_throttle(&s, op);
    assert!(close(pacer.current_rate(&s, op), 80.0, 1e-9));
    let snap = &pacer.snapshot()[0];
    assert_eq!((snap.throttles, snap.decreases), (53, 3));
}

#[tokio::test(start_paused = true)]
async fn window_spans_several_intervals_at_low_rates() {
    let op = Operation::TransferCertificate;
    let pacer = pacer_with(op, 1.0);
    let s = scope("a");
    pacer.on_throttle(&s, op);
    // 0.8 TPS: 4 intervals = 5 s.
    tokio::time::advance(Duration::from_millis(4900)).await;
    pacer.on_throttle(&s, op);
    assert!(close(pacer.current_rate(&s, op), 0.8, 1e-9));
    tokio::time::advance(Duration::from_millis(200)).await;
    pacer.on_throttle(&s, op);
    assert!(pacer.current_rate(&s, op) < 0.65);
}

#[tokio::test(start_paused = true)]
async fn rate_never_falls_below_the_floor() {
    let op = Operation::TransferCertificate;
    let pacer = pacer_with(op, 100.0);
    let s = scope("a");
    for _ in 0..200 {
        pacer.on_throttle(&s, op);
        tokio::time::advance(Duration::from_secs(50)).await;
        pacer.on_throttle(&s, op);
    }
    // Floor: 1% of 100 TPS.
    assert!(pacer.current_rate(&s, op) >= 1.0);
    let slow = pacer_with(op, 5.0);
    for _ in 0..100 {
        slow.on_throttle(&s, op);
        tokio::time::advance(Duration::from_secs(100)).await;
        slow.on_throttle(&s, op);
    }
    // Floor: 0.1 TPS (1% of 5 would be 0.05).
    assert!(slow.current_rate(&s, op) >= 0.1 - 1e-12);
}

#[tokio::test(start_paused = true)]
async fn recovery_returns_to_the_ceiling() {
    let op = Operation::TransferCertificate;
    let pacer = pacer_with(op, 100.0);
    let s = scope("a");
    pacer.on_throttle(&s, op);
    // Held at 80 for the 1 s window, then CUBIC: 95.1 TPS 1.5 s later.
    tokio::time::advance(Duration::from_millis(2500)).await;
    let w_max = pacer.current_rate(&s, op);
    assert!(close(w_max, 95.12, 0.001), "{w_max}");
    pacer.on_throttle(&s, op);
    let low = pacer.current_rate(&s, op);
    assert!(close(low, 0.8 * w_max, 1e-9), "{low}");
    // Monotone recovery: back at w_max after the window plus K = 4 s, at the
    // ceiling about 2.5 s later.
    let mut prev = low;
    for i in 1..=150 {
        tokio::time::advance(Duration::from_millis(100)).await;
        let r = pacer.current_rate(&s, op);
        assert!(r >= prev, "{r} < {prev}");
        if i == 50 {
            assert!(close(r, w_max, 1e-6), "{r}");
        }
        if i == 70 {
            assert!(r < 100.0, "{r}");
        }
        prev = r;
    }
    assert_eq!(pacer.current_rate(&s, op), 100.0);
    // And the pacing follows: 100 TPS again.
    let start = Instant::now();
    for _ in 0..101 {
        pacer.acquire(&s, op).await;
    }
    let took = Instant::now() - start;
    assert!(took <= Duration::from_millis(1010), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn throttle_slows_a_waiting_queue_at_once() {
    let op = Operation::TransferCertificate;
    let pacer = Arc::new(pacer_with(op, 10.0));
    let s = scope("a");
    pacer.acquire(&s, op).await;
    let waiter = {
        let (pacer, s) = (pacer.clone(), s.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            pacer.acquire(&s, op).await;
            Instant::now() - t
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    pacer.on_throttle(&s, op);
    let waited = waiter.await.unwrap();
    // 1/8 s instead of 1/10 s after the previous slot.
    assert!(
        waited >= Duration::from_millis(124) && waited <= Duration::from_millis(127),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_period_does_not_bank_a_burst() {
    let op = Operation::TransferCertificate;
    let pacer = pacer_with(op, 10.0);
    let s = scope("a");
    pacer.acquire(&s, op).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start = Instant::now();
    pacer.acquire(&s, op).await;
    pacer.acquire(&s, op).await;
    assert!(Instant::now() - start >= Duration::from_millis(99));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clock_paces_too() {
    // Not paused: the pacer must work on the real clock and across threads.
    let op = Operation::DescribeCertificate;
    let pacer = Arc::new(pacer_with(op, 50.0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pacer = pacer.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                pacer.acquire(&scope("a"), op).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = Instant::now() - start;
    // 40 slots at 50 TPS: 0.78 s; generous upper bound for a busy machine.
    assert!(took >= Duration::from_millis(780), "{took:?}");
    assert!(took <= Duration::from_millis(2500), "{took:?}");
}

/// The remote side: a token bucket of `rate` tokens per second holding at most
/// `burst`, full at the start, as AWS's quota is usually modelled.
struct RemoteBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RemoteBucket {
    fn try_take(&mut self, now: Instant) -> bool {
        let dt = (now - self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One simulated run: `workers` tasks loop acquire → remote bucket → (after
/// `latency`, the response time) report a throttle, for `duration` of paused
/// tokio time.
#[derive(Debug, Clone, Copy)]
struct Sim {
    /// The pacer's configured ceiling, TPS.
    ceiling: f64,
    /// The remote bucket's refill rate R, TPS.
    remote_rate: f64,
    /// The remote bucket's depth, in seconds of R (1.0 = burst R).
    burst_secs: f64,
    workers: usize,
    duration: Duration,
    /// Accepted calls before this are left out of `steady_rate`.
    warmup: Duration,
    latency: Duration,
}

impl Sim {
    /// The benchmark's setting: 64 workers, 30 s, burst R, 40 ms responses.
    fn bench(ceiling: f64, remote_rate: f64) -> Sim {
        Sim {
            ceiling,
            remote_rate,
            burst_secs: 1.0,
            workers: 64,
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(5),
            latency: Duration::from_millis(40),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct SimReport {
    /// Accepted calls per second over the whole run.
    accepted_rate: f64,
    /// Accepted calls per second after the warm-up (the long-run figure; the
    /// whole-run one includes the bucket's initial burst).
    steady_rate: f64,
    /// Rejected calls / all calls.
    throttle_fraction: f64,
    throttles: u64,
    calls: u64,
}

async fn simulate(sim: Sim) -> SimReport {
    let op = Operation::TransferCertificate;
    let pacer = Arc::new(pacer_with(op, sim.ceiling));
    let burst = (sim.remote_rate * sim.burst_secs).max(1.0);
    let bucket = Arc::new(Mutex::new(RemoteBucket {
        rate: sim.remote_rate,
        burst,
        tokens: burst,
        last: Instant::now(),
    }));
    let s = scope("123456789012");
    let start = Instant::now();
    let end = start + sim.duration;
    let steady_from = start + sim.warmup;
    let accepted = Arc::new(AtomicU64::new(0));
    let steady = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..sim.workers {
        let (pacer, bucket, s) = (pacer.clone(), bucket.clone(), s.clone());
        let (accepted, steady, rejected) = (accepted.clone(), steady.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                pacer.acquire(&s, op).await;
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let ok = bucket.lock().unwrap().try_take(now);
                tokio::time::sleep(sim.latency).await;
                if ok {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    if now >= steady_from {
                        steady.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    rejected.fetch_add(1, Ordering::Relaxed);
                    pacer.on_throttle(&s, op);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accepted = accepted.load(Ordering::Relaxed);
    let throttles = rejected.load(Ordering::Relaxed);
    let calls = accepted + throttles;
    SimReport {
        accepted_rate: accepted as f64 / sim.duration.as_secs_f64(),
        steady_rate: steady.load(Ordering::Relaxed) as f64
            / (sim.duration - sim.warmup).as_secs_f64(),
        throttle_fraction: throttles as f64 / calls.max(1) as f64,
        throttles,
        calls,
    }
}

#[tokio::test(start_paused = true)]
async fn simulation_ceiling_equal_to_remote_quota() {
    for r in [10.0, 100.0] {
        let rep = simulate(Sim::bench(r, r)).await;
        println!("R = {r}, ceiling = R: {rep:?}");
        assert!(rep.accepted_rate >= 0.97 * r, "{rep:?}");
        assert!(rep.throttle_fraction <= 0.01, "{rep:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn simulation_ceiling_twice_the_remote_quota() {
    for r in [10.0, 100.0] {
        let rep = simulate(Sim::bench(2.0 * r, r)).await;
        println!("R = {r}, ceiling = 2R: {rep:?}");
        assert!(rep.accepted_rate >= 0.8 * r, "{rep:?}");
        assert!(rep.steady_rate >= 0.9 * r, "{rep:?}");
        assert!(rep.throttle_fraction <= 0.08, "{rep:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn simulation_shallow_remote_bucket() {
    // A remote bucket only 0.1 s deep leaves no bank to absorb the dips.
    for r in [10.0, 100.0] {
        let rep = simulate(Sim {
            burst_secs: 0.1,
            ..Sim::bench(2.0 * r, r)
        })
        .await;
        println!("R = {r}, ceiling = 2R, burst 0.1 R: {rep:?}");
        assert!(rep.accepted_rate >= 0.8 * r, "{rep:?}");
        assert!(rep.throttle_fraction <= 0.10, "{rep:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn simulation_ceiling_below_remote_quota() {
    let rep = simulate(Sim::bench(50.0, 100.0)).await;
    assert!(close(rep.accepted_rate, 50.0, 0.01), "{rep:?}");
    assert_eq!(rep.throttles, 0);
}

/// Prints accepted rate and throttle fraction over a grid of quotas,
/// overestimates and bucket depths (120 s runs):
/// `cargo test simulation_table -- --ignored --nocapture`.
#[tokio::test(start_paused = true)]
#[ignore]
async fn simulation_table() {
    println!("R\tceiling/R\tburst/R\taccepted/R\tsteady/R\tthrottled\tcalls");
    for remote in [2.0, 10.0, 15.0, 100.0] {
        for over in [1.0, 1.25, 2.0, 5.0] {
            for burst_secs in [1.0, 0.1] {
                let r = simulate(Sim {
                    burst_secs,
                    duration: Duration::from_secs(120),
                    warmup: Duration::from_secs(20),
                    ..Sim::bench(remote * over, remote)
                })
                .await;
                println!(
                    "{remote}\t{over}\t{burst_secs}\t{:.3}\t{:.3}\t{:.4}\t{}",
                    r.accepted_rate / remote,
                    r.steady_rate / remote,
                    r.throttle_fraction,
                    r.calls
                );
            }
        }
    }
}
