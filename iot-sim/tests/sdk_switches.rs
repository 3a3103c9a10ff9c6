//! The propagation delay and the switches for UNCONFIRMED AWS answers,
//! through the real `aws-sdk-iot` client.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_iot::error::ProvideErrorMetadata;
use common::*;
use iot_sim::{
    CompletedTransferAnswer, OutgoingArnAccount, PendingTransferAnswer, SimConfig, SimHandle,
    Simulator, SourceAfterAccept,
};

fn spawn(mut config: SimConfig) -> SimHandle {
    let mut c = cert(1, "INACTIVE");
    c.policies = vec!["p".into()];
    c.things = vec!["t".into()];
    config
        .seeds
        .push(seed_of(vec![(A, vec![c, cert(2, "INACTIVE")])]));
    Simulator::spawn(config).unwrap()
}

/// Transfers cert 2 from A to B and accepts it there.
async fn move_two(sim: &SimHandle) {
    iot(&sim.url(), A)
        .transfer_certificate()
        .certificate_id(cert_id(2))
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
    iot(&sim.url(), B)
        .accept_certificate_transfer()
        .certificate_id(cert_id(2))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn detached_items_still_count_for_the_whole_propagation_window() {
    let delay = Duration::from_millis(1200);
    let sim = spawn(SimConfig {
        propagation_delay: delay,
        ..SimConfig::unlimited()
    });
    let a = iot(&sim.url(), A);
    let target = arn(A, &cert_id(1));
    let detach_start = Instant::now();
    a.detach_policy()
        .policy_name("p")
        .target(&target)
        .send()
        .await
        .unwrap();
    a.detach_thing_principal()
        .thing_name("t")
        .principal(&target)
        .send()
        .await
        .unwrap();
    let detach_end = Instant::now();
    // the state already says detached; the answers do not yet
    let (_, c) = sim
        .state()
        .find(&cert_id(1))
        .map(|(a, c)| (a.clone(), c.clone()))
        .unwrap();
    assert!(c.policies.is_empty() && c.things.is_empty());

    let mut refused = 0;
    let deadline = detach_start + delay + Duration::from_secs(10);
    loop {
        let start = Instant::now();
        let listed_p = a
            .list_attached_policies()
            .target(&target)
            .send()
            .await
            .unwrap()
            .policies()
            .len();
        let listed_t = a
            .list_principal_things()
            .principal(&target)
            .send()
            .await
            .unwrap()
            .things()
            .len();
        let r = a
            .transfer_certificate()
            .certificate_id(cert_id(1))
            .target_aws_account(B)
            .send()
            .await;
        let end = Instant::now();
        match r {
            Err(e) => {
                assert_eq!(e.code(), Some("TransferConflictException"), "{e:?}");
                // refused only while the window can still be open
                assert!(start - detach_end < delay, "refused after the window");
                if end - detach_start < delay {
                    // well inside the window: both lists still show the items
                    assert_eq!((listed_p, listed_t), (1, 1));
                }
                refused += 1;
            }
            Ok(_) => {
                assert!(end - detach_start >= delay, "accepted inside the window");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "still refused long after the window"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused > 0);
}

#[tokio::test]
async fn without_a_delay_detach_is_seen_at_once() {
    let sim = spawn(SimConfig::unlimited());
    let a = iot(&sim.url(), A);
    let target = arn(A, &cert_id(1));
    a.detach_policy()
        .policy_name("p")
        .target(&target)
        .send()
        .await
        .unwrap();
    a.detach_thing_principal()
        .thing_name("t")
        .principal(&target)
        .send()
        .await
        .unwrap();
    a.transfer_certificate()
        .certificate_id(cert_id(1))
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn source_describe_after_accept_variants() {
    let cases = [
        (
            SourceAfterAccept::NotFound,
            Some(("ResourceNotFoundException", 404)),
        ),
        (
            SourceAfterAccept::AccessDenied,
            Some(("AccessDeniedException", 403)),
        ),
        (
            SourceAfterAccept::Unauthorized,
            Some(("UnauthorizedException", 401)),
        ),
        (SourceAfterAccept::Visible, None),
    ];
    for (answer, expected) in cases {
        let sim = spawn(SimConfig {
            source_after_accept: answer,
            ..SimConfig::unlimited()
        });
        move_two(&sim).await;
        let r = iot(&sim.url(), A)
            .describe_certificate()
            .certificate_id(cert_id(2))
            .send()
            .await;
        match expected {
            Some((code, status)) => assert_err!(r, code, status),
            None => {
                let out = r.unwrap();
                let d = out.certificate_description().unwrap();
                assert_eq!(d.owned_by(), Some(B), "{answer:?}");
                assert_eq!(d.certificate_arn(), Some(arn(B, &cert_id(2)).as_str()));
            }
        }
    }
    // visible for a while only
    let sim = spawn(SimConfig {
        source_after_accept: SourceAfterAccept::Visible,
        source_visible_for: Some(Duration::from_millis(300)),
        ..SimConfig::unlimited()
    });
    move_two(&sim).await;
    let accepted = Instant::now();
    let a = iot(&sim.url(), A);
    let deadline = accepted + Duration::from_secs(10);
    let mut seen = 0;
    loop {
        let start = Instant::now();
        match a
            .describe_certificate()
            .certificate_id(cert_id(2))
            .send()
            .await
        {
            Ok(_) => {
                assert!(start - accepted < Duration::from_millis(300));
                seen += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), Some("ResourceNotFoundException"));
                break;
            }
        }
        assert!(Instant::now() < deadline, "still visible");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen > 0, "never visible");
}

#[tokio::test]
async fn completed_and_pending_transfer_answers() {
    for (answer, code, status) in [
        (
            CompletedTransferAnswer::TransferAlreadyCompleted,
            "TransferAlreadyCompletedException",
            410,
        ),
        (
            CompletedTransferAnswer::TransferConflict,
            "TransferConflictException",
            409,
        ),
        (
            CompletedTransferAnswer::InvalidRequest,
            "InvalidRequestException",
            400,
        ),
        (
            CompletedTransferAnswer::NotFound,
            "ResourceNotFoundException",
            404,
        ),
    ] {
        let sim = spawn(SimConfig {
            completed_transfer_answer: answer,
            ..SimConfig::unlimited()
        });
        move_two(&sim).await;
        let b = iot(&sim.url(), B);
        assert_err!(
            b.accept_certificate_transfer()
                .certificate_id(cert_id(2))
                .send()
                .await,
            code,
            status
        );
        assert_err!(
            b.reject_certificate_transfer()
                .certificate_id(cert_id(2))
                .send()
                .await,
            code,
            status
        );
    }
    let sim = spawn(SimConfig {
        pending_transfer_answer: PendingTransferAnswer::CertificateState,
        ..SimConfig::unlimited()
    });
    let a = iot(&sim.url(), A);
    let transfer = || {
        a.transfer_certificate()
            .certificate_id(cert_id(2))
            .target_aws_account(B)
    };
    transfer().send().await.unwrap();
    assert_err!(transfer().send().await, "CertificateStateException", 406);
}

#[tokio::test]
async fn error_type_suffix_and_outgoing_arn_account() {
    let sim = spawn(SimConfig {
        error_type_suffix: true,
        outgoing_arn_account: OutgoingArnAccount::Source,
        quota_scale: 0.0,
        ..SimConfig::default()
    });
    let auth = auth_header(A, "iot");
    let (status, headers, _) = raw_http(
        sim.addr(),
        "GET",
        &format!("/certificates/{}", "9".repeat(64)),
        &[("Authorization", &auth)],
        "",
    )
    .unwrap();
    assert_eq!(status, 404);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.iot/")
    );
    // the SDK strips the suffix
    assert_err!(
        iot(&sim.url(), A)
            .describe_certificate()
            .certificate_id("9".repeat(64))
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    let a = iot(&sim.url(), A);
    a.transfer_certificate()
        .certificate_id(cert_id(2))
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
    let out = a.list_outgoing_certificates().send().await.unwrap();
    assert_eq!(
        out.outgoing_certificates()[0].certificate_arn(),
        Some(arn(A, &cert_id(2)).as_str())
    );

    // throttling carries the availability namespace
    let sim = spawn(SimConfig {
        error_type_suffix: true,
        quotas: [("DescribeCertificate".to_string(), 0.01)].into(),
        quota_scale: 0.0,
        ..SimConfig::default()
    });
    let path = format!("/certificates/{}", cert_id(1));
    raw_http(sim.addr(), "GET", &path, &[("Authorization", &auth)], "").unwrap();
    let (status, headers, _) =
        raw_http(sim.addr(), "GET", &path, &[("Authorization", &auth)], "").unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/")
    );
    let e = iot(&sim.url(), A)
        .describe_certificate()
        .certificate_id(cert_id(1))
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_throttling_exception());
}
