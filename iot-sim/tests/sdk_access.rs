//! Credentials that expire or are revoked at run time, deny rules and the
//! outage switch, through the real `aws-sdk-iot` / `aws-sdk-sts` clients.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_iot::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iot::types::CertificateStatus;
use common::*;
use iot_sim::{CredentialState, DenyRule, OutageMode, Refusal, SimConfig, SimHandle, Simulator};

fn sim(config: SimConfig) -> SimHandle {
    let mut config = config;
    config.seeds.push(seed_of(vec![
        (A, (0..5).map(|n| cert(n, "INACTIVE")).collect()),
        (B, vec![cert(50, "ACTIVE")]),
    ]));
    Simulator::spawn(config).unwrap()
}

fn sts(url: &str, access_key: &str) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            access_key, "secret", None, None, "test",
        ))
        .endpoint_url(url)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

async fn describe(
    c: &aws_sdk_iot::Client,
    n: u32,
) -> Result<(), SdkError<aws_sdk_iot::operation::describe_certificate::DescribeCertificateError>> {
    c.describe_certificate()
        .certificate_id(cert_id(n))
        .send()
        .await
        .map(|_| ())
}

#[tokio::test]
async fn credentials_expire_after_n_requests_and_come_back() {
    let sim = sim(SimConfig::unlimited());
    let a = iot(&sim.url(), A);
    sim.set_credentials(A, CredentialState::Expired, Some(2));
    describe(&a, 1).await.unwrap();
    describe(&a, 1).await.unwrap();
    let e = describe(&a, 1).await.unwrap_err();
    assert_eq!(err_info(&e), ("ExpiredTokenException".into(), 403));
    assert_eq!(
        e.message(),
        Some("The security token included in the request is expired")
    );
    // a mutating call is refused without effect
    assert_err!(
        a.update_certificate()
            .certificate_id(cert_id(1))
            .new_status(CertificateStatus::Active)
            .send()
            .await,
        "ExpiredTokenException",
        403
    );
    // STS says it in its own words
    let e = sts(&sim.url(), A)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ExpiredToken"));
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 403);
    // other keys are not affected
    describe(&iot(&sim.url(), B), 50).await.unwrap();
    let stats = sim.stats();
    assert_eq!(stats.refused_of(Refusal::Expired), 3);
    assert_eq!(stats.calls_of("DescribeCertificate"), 4);

    // the rerun with fresh credentials: the same key works again
    sim.set_credentials(A, CredentialState::Valid, None);
    describe(&a, 1).await.unwrap();
    assert_eq!(sim.state().find(&cert_id(1)).unwrap().1.status, "INACTIVE");
}

#[tokio::test]
async fn revoked_credentials_over_http() {
    let sim = sim(SimConfig::unlimited());
    let a = iot(&sim.url(), A);
    let (status, _, body) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/credentials",
        &[],
        &format!("{{\"access_key_id\": \"{A}\", \"state\": \"revoked\"}}"),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let e = describe(&a, 1).await.unwrap_err();
    assert_eq!(err_info(&e), ("UnrecognizedClientException".into(), 403));
    assert_eq!(
        e.message(),
        Some("The security token included in the request is invalid.")
    );
    let e = sts(&sim.url(), A)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidClientTokenId"));
    let (_, _, listed) = raw_http(sim.addr(), "GET", "/_sim/credentials", &[], "").unwrap();
    assert!(listed.contains("\"revoked\""), "{listed}");
    let (status, _, _) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/credentials",
        &[],
        "{\"access_key_id\": \"x\", \"state\": \"stale\"}",
    )
    .unwrap();
    assert_eq!(status, 400);
    raw_http(
        sim.addr(),
        "POST",
        "/_sim/credentials",
        &[],
        &format!("{{\"access_key_id\": \"{A}\", \"state\": \"valid\"}}"),
    )
    .unwrap();
    describe(&a, 1).await.unwrap();
    assert_eq!(sim.stats().refused_of(Refusal::Revoked), 2);
}

#[tokio::test]
async fn deny_rules_refuse_with_the_resource_arn() {
    let target = arn(A, &cert_id(1));
    let mut config = SimConfig::unlimited();
    config.deny.push(DenyRule {
        account: A.into(),
        operation: "TransferCertificate".into(),
        resource: Some(target.clone()),
    });
    let sim = sim(config);
    let a = iot(&sim.url(), A);
    let e = a
        .transfer_certificate()
        .certificate_id(cert_id(1))
        .target_aws_account(B)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_info(&e), ("AccessDeniedException".into(), 403));
    assert_eq!(
        e.message().unwrap(),
        format!(
            "User: arn:aws:iam::{A}:user/iot-sim is not authorized to perform: iot:TransferCertificate on resource: {target}"
        )
    );
    assert_eq!(sim.state().find(&cert_id(1)).unwrap().1.status, "INACTIVE");
    // another certificate is not covered by the pattern
    a.transfer_certificate()
        .certificate_id(cert_id(2))
        .target_aws_account(B)
        .send()
        .await
        .unwrap();

    // a thing operation names the thing; rules are added over HTTP
    let (status, _, body) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/deny",
        &[],
        &format!(
            "{{\"add\": [{{\"account\": \"{A}\", \"operation\": \"AttachThingPrincipal\"}}]}}"
        ),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let e = a
        .attach_thing_principal()
        .thing_name("t-1")
        .principal(arn(A, &cert_id(3)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    assert!(
        e.message()
            .unwrap()
            .ends_with(&format!("on resource: arn:aws:iot:{REGION}:{A}:thing/t-1")),
        "{e:?}"
    );
    // the other account may
    iot(&sim.url(), B)
        .describe_certificate()
        .certificate_id(cert_id(50))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.deny_rules().len(), 2);
    assert_eq!(sim.stats().refused_of(Refusal::Denied), 2);

    // removing the rule allows the call
    assert!(sim.remove_deny(&DenyRule {
        account: A.into(),
        operation: "TransferCertificate".into(),
        resource: Some(target),
    }));
    a.transfer_certificate()
        .certificate_id(cert_id(1))
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
    let (status, _, _) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/deny",
        &[],
        "{\"add\": [{\"account\": \"1\", \"operation\": \"TransferCertificate\"}]}",
    )
    .unwrap();
    assert_eq!(status, 400);
    let (_, _, body) =
        raw_http(sim.addr(), "POST", "/_sim/deny", &[], "{\"clear\": true}").unwrap();
    assert_eq!(body, "[]");
    assert!(sim.deny_rules().is_empty());
}

#[tokio::test]
async fn outage_reset_then_blackhole_then_off() {
    let mut config = SimConfig::unlimited();
    config.timeout_hold = Duration::from_millis(300);
    let sim = sim(config);
    let a = iot(&sim.url(), A);

    sim.set_outage(OutageMode::Reset);
    let e = describe(&a, 1).await.unwrap_err();
    assert!(
        matches!(e, SdkError::DispatchFailure(_) | SdkError::ResponseError(_)),
        "{e:?}"
    );
    assert!(sts(&sim.url(), A)
        .get_caller_identity()
        .send()
        .await
        .is_err());
    // the control endpoints keep working
    let (status, _, _) = raw_http(sim.addr(), "GET", "/_sim/stats", &[], "").unwrap();
    assert_eq!(status, 200);

    let (status, _, _) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/outage",
        &[],
        "{\"mode\": \"blackhole\"}",
    )
    .unwrap();
    assert_eq!(status, 200);
    let t = Instant::now();
    let e = a
        .update_certificate()
        .certificate_id(cert_id(1))
        .new_status(CertificateStatus::Active)
        .send()
        .await
        .unwrap_err();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(err_info(&e).1, 0, "{e:?}");
    assert_eq!(sim.state().find(&cert_id(1)).unwrap().1.status, "INACTIVE");

    let (status, _, _) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/outage",
        &[],
        "{\"mode\": \"off\"}",
    )
    .unwrap();
    assert_eq!(status, 200);
    describe(&a, 1).await.unwrap();
    assert_eq!(sim.stats().refused_of(Refusal::Outage), 3);
    let (status, _, _) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/outage",
        &[],
        "{\"mode\": \"sideways\"}",
    )
    .unwrap();
    assert_eq!(status, 400);
}

/// `down` is the endpoint killed: a request in flight loses its connection, connecting is
/// refused while it lasts, and afterwards the same port answers with the state kept.
#[tokio::test]
async fn outage_down_refuses_connections_and_the_same_port_comes_back() {
    let mut config = SimConfig::unlimited();
    config.timeout_hold = Duration::from_secs(30);
    let sim = sim(config);
    let a = iot(&sim.url(), A);
    describe(&a, 1).await.unwrap();

    // A request held by a timeout fault when the endpoint dies gets no answer at once.
    sim.set_faults(vec![(iot_sim::FaultKind::Timeout, 1.0)]);
    let held = tokio::spawn({
        let a = a.clone();
        async move {
            let t = Instant::now();
            (describe(&a, 2).await, t.elapsed())
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().calls_of("DescribeCertificate") < 2 {
        assert!(Instant::now() < deadline, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.set_outage(OutageMode::Down);
    let (res, took) = held.await.unwrap();
    let e = res.unwrap_err();
    assert!(matches!(e, SdkError::DispatchFailure(_)), "{e:?}");
    assert!(took < Duration::from_secs(10), "held {took:?}");
    sim.set_faults(vec![]);

    // Nothing listens: connecting is refused (the control endpoints too).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect(sim.addr()) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            other => {
                assert!(Instant::now() < deadline, "still listening: {other:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let e = describe(&a, 1).await.unwrap_err();
    assert!(matches!(e, SdkError::DispatchFailure(_)), "{e:?}");

    sim.set_outage(OutageMode::Off);
    let deadline = Instant::now() + Duration::from_secs(10);
    while describe(&a, 1).await.is_err() {
        assert!(Instant::now() < deadline, "the port never listened again");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sim.state().find(&cert_id(1)).unwrap().1.status, "INACTIVE");
}
