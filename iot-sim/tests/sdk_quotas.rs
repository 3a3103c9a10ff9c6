//! Rate quotas and latency, through the real `aws-sdk-iot` client.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_iot::error::ProvideErrorMetadata;
use common::*;
use iot_sim::{SimConfig, Simulator};
use tokio::task::JoinSet;

fn config_with_certs() -> SimConfig {
    let mut config = SimConfig::default();
    config.seeds.push(seed_of(vec![
        (A, (0..40).map(|n| cert(n, "INACTIVE")).collect()),
        (B, vec![cert(100, "INACTIVE")]),
    ]));
    config
}

/// Runs `n` DescribeCertificate calls at once; returns the number throttled.
async fn burst(client: &aws_sdk_iot::Client, id: &str, n: usize) -> usize {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let c = client.clone();
        let id = id.to_string();
        set.spawn(async move { c.describe_certificate().certificate_id(id).send().await });
    }
    let mut throttled = 0;
    while let Some(r) = set.join_next().await {
        if let Err(e) = r.unwrap() {
            let (code, status) = err_info(&e);
            assert_eq!((code.as_str(), status), ("ThrottlingException", 400));
            assert_eq!(e.message(), Some("Rate exceeded"));
            throttled += 1;
        }
    }
    throttled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_allows_a_burst_then_throttles() {
    let sim = Simulator::spawn(config_with_certs()).unwrap();
    let a = iot(&sim.url(), A);
    let id = cert_id(1);
    // the documented 10 TPS: a burst of 10 passes
    for _ in 0..10 {
        a.describe_certificate()
            .certificate_id(&id)
            .send()
            .await
            .unwrap();
    }
    let throttled = burst(&a, &id, 30).await;
    assert!(throttled >= 15, "only {throttled} of 30 throttled");
    let stats = sim.stats();
    assert_eq!(stats.calls_of("DescribeCertificate"), 40);
    assert_eq!(stats.throttled_of("DescribeCertificate"), throttled as u64);

    // buckets are per operation and per account
    a.list_certificates().send().await.unwrap();
    iot(&sim.url(), B)
        .describe_certificate()
        .certificate_id(cert_id(100))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.stats().throttled_of("ListCertificates"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_quota_nothing_is_throttled() {
    let sim = Simulator::spawn(config_with_certs()).unwrap();
    let a = iot(&sim.url(), A);
    let id = cert_id(1);
    // drain the bucket, then call at 5 calls/s, half the 10 TPS quota
    for _ in 0..10 {
        a.describe_certificate()
            .certificate_id(&id)
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    for _ in 0..10 {
        tick.tick().await;
        a.describe_certificate()
            .certificate_id(&id)
            .send()
            .await
            .expect("not throttled at half the quota");
    }
    assert_eq!(sim.stats().throttled_of("DescribeCertificate"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_calls_have_no_effect() {
    let mut config = config_with_certs();
    config.quotas.insert("TransferCertificate".into(), 2.0);
    let sim = Simulator::spawn(config).unwrap();
    let a = iot(&sim.url(), A);
    let mut ok = 0;
    let mut throttled = 0;
    for n in 0..6 {
        match a
            .transfer_certificate()
            .certificate_id(cert_id(n))
            .target_aws_account(B)
            .send()
            .await
        {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("ThrottlingException"));
                throttled += 1;
            }
        }
    }
    assert!(ok >= 2 && throttled >= 3, "ok {ok} throttled {throttled}");
    let pending = sim
        .state()
        .account(A, REGION)
        .unwrap()
        .certificates
        .iter()
        .filter(|c| c.status == "PENDING_TRANSFER")
        .count();
    assert_eq!(pending, ok);
    let stats = sim.stats();
    assert_eq!(stats.transfers_effective, ok as u64);
    assert_eq!(stats.throttled_of("TransferCertificate"), throttled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_scale_and_overrides() {
    // scale 0.5: DescribeCertificate 5 TPS, ListAttachedPolicies 7.5 TPS
    let mut config = config_with_certs();
    config.quota_scale = 0.5;
    config.quotas.insert("ListCertificates".into(), 0.0); // unlimited
    let sim = Simulator::spawn(config).unwrap();
    let a = iot(&sim.url(), A);
    let throttled = burst(&a, &cert_id(1), 20).await;
    assert!(throttled >= 12, "{throttled}");
    for _ in 0..60 {
        a.list_certificates().send().await.unwrap();
    }
    assert_eq!(sim.stats().throttled_of("ListCertificates"), 0);

    // scale 0: unlimited
    let mut config = config_with_certs();
    config.quota_scale = 0.0;
    let sim = Simulator::spawn(config).unwrap();
    let a = iot(&sim.url(), A);
    assert_eq!(burst(&a, &cert_id(1), 60).await, 0);

    // an override applies even when everything else is unlimited
    let mut config = config_with_certs();
    config.quota_scale = 0.0;
    config.quotas.insert("DescribeCertificate".into(), 3.0);
    let sim = Simulator::spawn(config).unwrap();
    let a = iot(&sim.url(), A);
    let throttled = burst(&a, &cert_id(1), 20).await;
    assert!(throttled >= 15, "{throttled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_jitter_are_added() {
    let mut config = config_with_certs();
    config.quota_scale = 0.0;
    config.latency = Duration::from_millis(100);
    config.latency_jitter = Duration::from_millis(50);
    let sim = Simulator::spawn(config).unwrap();
    let a = iot(&sim.url(), A);
    let mut durations = Vec::new();
    for _ in 0..6 {
        let t = Instant::now();
        a.describe_certificate()
            .certificate_id(cert_id(1))
            .send()
            .await
            .unwrap();
        durations.push(t.elapsed());
    }
    assert!(durations.iter().all(|d| *d >= Duration::from_millis(100)));
    assert!(
        durations.iter().all(|d| *d < Duration::from_millis(1000)),
        "{durations:?}"
    );

    // concurrent calls overlap: peak_in_flight sees them
    sim.reset_stats();
    let t = Instant::now();
    assert_eq!(burst(&a, &cert_id(1), 20).await, 0);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(sim.stats().peak_in_flight >= 5, "{:?}", sim.stats());
}
