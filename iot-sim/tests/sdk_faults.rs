//! Fault injection, through the real `aws-sdk-iot` client.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_iot::error::SdkError;
use aws_sdk_iot::types::CertificateStatus;
use common::*;
use iot_sim::{FaultKind, SimConfig, Simulator};

fn config(faults: Vec<(FaultKind, f64)>) -> SimConfig {
    let mut config = SimConfig::unlimited();
    config.faults = faults;
    config.seeds.push(seed_of(vec![(
        A,
        (0..30).map(|n| cert(n, "ACTIVE")).collect(),
    )]));
    config
}

async fn deactivate(
    client: &aws_sdk_iot::Client,
    n: u32,
) -> Result<(), SdkError<aws_sdk_iot::operation::update_certificate::UpdateCertificateError>> {
    client
        .update_certificate()
        .certificate_id(cert_id(n))
        .new_status(CertificateStatus::Inactive)
        .send()
        .await
        .map(|_| ())
}

fn status(sim: &iot_sim::SimHandle, n: u32) -> String {
    sim.state().find(&cert_id(n)).unwrap().1.status.clone()
}

#[tokio::test]
async fn http_500_and_503_have_no_effect() {
    for (kind, code, http) in [
        (FaultKind::Http500, "InternalFailureException", 500),
        (FaultKind::Http503, "ServiceUnavailableException", 503),
    ] {
        let sim = Simulator::spawn(config(vec![(kind, 1.0)])).unwrap();
        let a = iot(&sim.url(), A);
        assert_err!(deactivate(&a, 1).await, code, http);
        assert_err!(
            a.describe_certificate()
                .certificate_id(cert_id(1))
                .send()
                .await,
            code,
            http
        );
        assert_eq!(status(&sim, 1), "ACTIVE");
        let stats = sim.stats();
        assert_eq!(stats.faults[kind.as_str()], 2);
        assert_eq!(stats.calls_of("UpdateCertificate"), 1);
        // switch the fault off at run time
        sim.set_faults(vec![]);
        deactivate(&a, 1).await.unwrap();
        assert_eq!(status(&sim, 1), "INACTIVE");
    }
}

#[tokio::test]
async fn reset_closes_the_connection_without_effect() {
    let sim = Simulator::spawn(config(vec![(FaultKind::Reset, 1.0)])).unwrap();
    let a = iot(&sim.url(), A);
    for _ in 0..3 {
        let e = deactivate(&a, 1).await.unwrap_err();
        assert!(
            matches!(e, SdkError::DispatchFailure(_) | SdkError::ResponseError(_)),
            "{e:?}"
        );
        assert_eq!(err_info(&e), ("<no code>".to_string(), 0));
    }
    assert_eq!(status(&sim, 1), "ACTIVE");
    assert_eq!(sim.stats().faults["reset"], 3);

    // raw socket: no response bytes at all
    let res = raw_http(sim.addr(), "GET", "/certificates", &[], "");
    assert!(res.is_err(), "{res:?}");
}

#[tokio::test]
async fn timeout_holds_then_closes_without_effect() {
    let mut cfg = config(vec![(FaultKind::Timeout, 1.0)]);
    cfg.timeout_hold = Duration::from_millis(400);
    let sim = Simulator::spawn(cfg).unwrap();
    let a = iot(&sim.url(), A);
    let t = Instant::now();
    let e = deactivate(&a, 1).await.unwrap_err();
    let held = t.elapsed();
    assert!(held >= Duration::from_millis(400), "{held:?}");
    assert!(held < Duration::from_secs(5), "{held:?}");
    assert_eq!(err_info(&e).1, 0, "{e:?}");
    assert_eq!(status(&sim, 1), "ACTIVE");
    assert_eq!(sim.stats().faults["timeout"], 1);
}

#[tokio::test]
async fn held_requests_end_at_shutdown() {
    // default hold (60 s); the client gives up after 1 s
    let sim = Simulator::spawn(config(vec![(FaultKind::Timeout, 1.0)])).unwrap();
    let url = sim.url();
    let addr = sim.addr();
    let conf = aws_sdk_iot::Config::builder()
        .behavior_version(aws_sdk_iot::config::BehaviorVersion::latest())
        .region(aws_sdk_iot::config::Region::new(REGION))
        .credentials_provider(aws_sdk_iot::config::Credentials::new(
            A, "secret", None, None, "test",
        ))
        .endpoint_url(&url)
        .retry_config(aws_sdk_iot::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_iot::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(1))
                .build(),
        )
        .build();
    let a = aws_sdk_iot::Client::from_conf(conf);
    let e = deactivate(&a, 1).await.unwrap_err();
    assert!(matches!(e, SdkError::TimeoutError(_)), "{e:?}");

    // a raw client holds a request open; shutdown must end it promptly
    let held = std::thread::spawn(move || {
        let t = Instant::now();
        let r = raw_http(addr, "GET", "/certificates", &[], "");
        (r.is_err(), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    sim.shutdown();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let (failed, waited) = held.join().unwrap();
    assert!(failed);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // nothing listens any more
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[tokio::test]
async fn lost_reply_takes_effect_but_the_client_fails() {
    let sim = Simulator::spawn(config(vec![(FaultKind::LostReply, 1.0)])).unwrap();
    let a = iot(&sim.url(), A);
    let mut got_500 = 0;
    let mut got_reset = 0;
    for n in 0..24 {
        let e = deactivate(&a, n).await.unwrap_err();
        match err_info(&e) {
            (code, 500) if code == "InternalFailureException" => got_500 += 1,
            (_, 0) => got_reset += 1,
            other => panic!("unexpected {other:?}"),
        }
        // the effect is visible although the client got an error
        assert_eq!(status(&sim, n), "INACTIVE");
    }
    assert!(got_500 > 0 && got_reset > 0, "{got_500} / {got_reset}");

    // a lost TransferCertificate reply: the retry meets a pending transfer
    let e = a
        .transfer_certificate()
        .certificate_id(cert_id(0))
        .target_aws_account(B)
        .send()
        .await
        .unwrap_err();
    assert_ne!(err_info(&e).1, 200);
    assert_eq!(status(&sim, 0), "PENDING_TRANSFER");
    sim.set_faults(vec![]);
    assert_err!(
        a.transfer_certificate()
            .certificate_id(cert_id(0))
            .target_aws_account(B)
            .send()
            .await,
        "TransferConflictException",
        409
    );
    sim.set_faults(vec![(FaultKind::LostReply, 1.0)]);

    // a failing mutating call still loses its reply, with no effect
    let e = a
        .transfer_certificate()
        .certificate_id(cert_id(29))
        .target_aws_account(B)
        .send()
        .await
        .unwrap_err();
    assert_ne!(err_info(&e).0, "CertificateStateException");
    assert_eq!(status(&sim, 29), "ACTIVE");

    // reads are not affected
    a.describe_certificate()
        .certificate_id(cert_id(1))
        .send()
        .await
        .unwrap();
    a.list_certificates().send().await.unwrap();
    let stats = sim.stats();
    assert_eq!(stats.faults["lost-reply"], 26);
    assert_eq!(stats.transfers_effective, 1);
    assert_eq!(stats.max_transfers_per_certificate, 1);
}

#[tokio::test]
async fn faults_follow_their_probability_and_spare_sim_endpoints() {
    let sim = Simulator::spawn(config(vec![(FaultKind::Http500, 0.3)])).unwrap();
    let a = iot(&sim.url(), A);
    let mut failed = 0;
    for _ in 0..300 {
        if a.describe_certificate()
            .certificate_id(cert_id(1))
            .send()
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    assert!((50..=130).contains(&failed), "{failed} of 300");
    assert_eq!(sim.stats().faults["500"], failed);

    sim.set_faults(vec![
        (FaultKind::Reset, 1.0),
        (FaultKind::Http500, 1.0),
        (FaultKind::Timeout, 1.0),
    ]);
    let (status, headers, body) = raw_http(sim.addr(), "GET", "/_sim/stats", &[], "").unwrap();
    assert_eq!(status, 200);
    assert!(header(&headers, "x-amzn-RequestId").is_some());
    let stats: iot_sim::Stats = serde_json::from_str(&body).unwrap();
    assert_eq!(stats.calls_of("DescribeCertificate"), 300);
    let (status, _, _) = raw_http(sim.addr(), "GET", "/_sim/state", &[], "").unwrap();
    assert_eq!(status, 200);
    // faults can be changed over HTTP too
    let (status, _, _) = raw_http(sim.addr(), "POST", "/_sim/faults", &[], "[]").unwrap();
    assert_eq!(status, 200);
    a.describe_certificate()
        .certificate_id(cert_id(1))
        .send()
        .await
        .unwrap();
    let (status, _, _) =
        raw_http(sim.addr(), "POST", "/_sim/faults", &[], "[\"bogus=1\"]").unwrap();
    assert_eq!(status, 400);
}

/// What the SDK made of a garbled reply: "ok", or the `SdkError` variant.
fn variant<E, R>(r: &Result<R, SdkError<E>>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(SdkError::ConstructionFailure(_)) => "ConstructionFailure",
        Err(SdkError::TimeoutError(_)) => "TimeoutError",
        Err(SdkError::DispatchFailure(_)) => "DispatchFailure",
        Err(SdkError::ResponseError(_)) => "ResponseError",
        Err(SdkError::ServiceError(_)) => "ServiceError",
        Err(_) => "other",
    }
}

#[tokio::test]
async fn truncated_and_empty_2xx_replies() {
    // (kind, TransferCertificate, DescribeCertificate, UpdateCertificate) as the SDK sees them
    for (kind, transfer_seen, describe_seen, update_seen) in [
        (FaultKind::Truncated, "ServiceError", "ServiceError", "ok"),
        (FaultKind::Empty, "ok", "ok", "ok"),
    ] {
        let mut cfg = config(vec![(kind, 1.0)]);
        cfg.seeds
            .push(seed_of(vec![(A, vec![cert(40, "INACTIVE")])]));
        let sim = Simulator::spawn(cfg).unwrap();
        let a = iot(&sim.url(), A);

        let r = a
            .transfer_certificate()
            .certificate_id(cert_id(40))
            .target_aws_account(B)
            .send()
            .await;
        assert_eq!(variant(&r), transfer_seen, "{kind} transfer: {r:?}");
        match &r {
            // an empty body parses as an output with every field absent
            Ok(out) => assert_eq!(out.transferred_certificate_arn(), None),
            // a cut body: an unhandled "service error" without a code, on a 200
            Err(e) => {
                assert_eq!(err_info(e), ("<no code>".to_string(), 200), "{e:?}");
                let service = e.as_service_error().expect("a service error");
                assert!(service.meta().code().is_none());
            }
        }
        // the effect was applied before the reply was garbled
        assert_eq!(status(&sim, 40), "PENDING_TRANSFER", "{kind}");

        let r = a
            .describe_certificate()
            .certificate_id(cert_id(1))
            .send()
            .await;
        assert_eq!(variant(&r), describe_seen, "{kind} describe: {r:?}");
        if let Ok(out) = &r {
            assert!(out.certificate_description().is_none());
        }

        let r = deactivate(&a, 2).await;
        assert_eq!(variant(&r), update_seen, "{kind} update: {r:?}");
        assert_eq!(status(&sim, 2), "INACTIVE", "{kind}");

        // an error answer is not garbled
        assert_err!(
            a.describe_certificate()
                .certificate_id(cert_id(99))
                .send()
                .await,
            "ResourceNotFoundException",
            404
        );
        assert_eq!(sim.stats().faults[kind.as_str()], 4, "{kind}");
        assert_eq!(sim.stats().transfers_effective, 1);
    }
}

#[tokio::test]
async fn duplicate_delivery_answers_as_the_second_delivery() {
    let mut cfg = config(vec![(FaultKind::Duplicate, 1.0)]);
    cfg.seeds
        .push(seed_of(vec![(A, vec![cert(40, "INACTIVE")])]));
    let sim = Simulator::spawn(cfg).unwrap();
    let a = iot(&sim.url(), A);
    // TransferCertificate is not idempotent: the second delivery meets a pending transfer
    assert_err!(
        a.transfer_certificate()
            .certificate_id(cert_id(40))
            .target_aws_account(B)
            .send()
            .await,
        "TransferConflictException",
        409
    );
    assert_eq!(status(&sim, 40), "PENDING_TRANSFER");
    let stats = sim.stats();
    assert_eq!(stats.transfers_effective, 1);
    assert_eq!(stats.max_transfers_per_certificate, 1);
    // idempotent calls: the same success
    deactivate(&a, 3).await.unwrap();
    assert_eq!(status(&sim, 3), "INACTIVE");
    // reads are not duplicated
    a.list_certificates().send().await.unwrap();
    assert_eq!(sim.stats().faults["duplicate"], 2);
}
