//! Multi-account registration: RegisterCertificateWithoutCA, the same
//! certificate in several accounts, and the fake-certificate helper, through
//! the real `aws-sdk-iot` client.

mod common;

use aws_sdk_iot::types::{CertificateMode, CertificateStatus};
use common::*;
use iot_sim::{fake_certificate, SimConfig, Simulator};

#[tokio::test]
async fn one_certificate_registered_in_two_accounts() {
    let sim = Simulator::spawn(SimConfig::unlimited()).unwrap();
    let (a, b) = (iot(&sim.url(), A), iot(&sim.url(), B));
    let (id, pem) = fake_certificate(1);
    assert_eq!(iot_sim::pem::certificate_id_of(&pem).unwrap(), id);

    let ra = a
        .register_certificate_without_ca()
        .certificate_pem(&pem)
        .send()
        .await
        .unwrap();
    assert_eq!(ra.certificate_id(), Some(id.as_str()));
    assert_eq!(ra.certificate_arn(), Some(arn(A, &id).as_str()));
    let rb = b
        .register_certificate_without_ca()
        .certificate_pem(&pem)
        .status(CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(rb.certificate_id(), Some(id.as_str()));
    assert_eq!(rb.certificate_arn(), Some(arn(B, &id).as_str()));

    for (client, account, status) in [
        (&a, A, CertificateStatus::Active),
        (&b, B, CertificateStatus::Inactive),
    ] {
        let d = client
            .describe_certificate()
            .certificate_id(&id)
            .send()
            .await
            .unwrap();
        let d = d.certificate_description().unwrap();
        assert_eq!(d.owned_by(), Some(account));
        assert_eq!(d.status(), Some(&status));
        assert_eq!(d.certificate_mode(), Some(&CertificateMode::SniOnly));
        // the PEM round-trips
        assert_eq!(d.certificate_pem(), Some(pem.as_str()));
        assert!(d.ca_certificate_id().is_none());
        let listed = client.list_certificates().send().await.unwrap();
        assert_eq!(listed.certificates().len(), 1);
        assert_eq!(
            listed.certificates()[0].certificate_mode(),
            Some(&CertificateMode::SniOnly)
        );
    }

    // each account's copy is its own: A deactivates, B's stays as it was
    a.update_certificate()
        .certificate_id(&id)
        .new_status(CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    b.update_certificate()
        .certificate_id(&id)
        .new_status(CertificateStatus::Active)
        .send()
        .await
        .unwrap();
    let state = sim.state();
    let in_a = state.find_in(A, REGION, &id).unwrap();
    let in_b = state.find_in(B, REGION, &id).unwrap();
    assert_eq!(
        (in_a.status.as_str(), in_b.status.as_str()),
        ("INACTIVE", "ACTIVE")
    );
    assert_eq!(state.find_all(&id).len(), 2);

    // a transfer to an account that already has it is refused
    assert_err!(
        a.transfer_certificate()
            .certificate_id(&id)
            .target_aws_account(B)
            .send()
            .await,
        "TransferConflictException",
        409
    );
    // registering it again in the same account is refused
    assert_err!(
        a.register_certificate_without_ca()
            .certificate_pem(&pem)
            .send()
            .await,
        "ResourceAlreadyExistsException",
        409
    );
    // but a third account may, and a transfer to it then conflicts too
    iot(&sim.url(), C)
        .register_certificate_without_ca()
        .certificate_pem(&pem)
        .send()
        .await
        .unwrap();
    assert_eq!(sim.state().find_all(&id).len(), 3);
    assert_eq!(sim.stats().transfers_effective, 0);
}

#[tokio::test]
async fn registration_refusals() {
    let sim = Simulator::spawn(SimConfig::unlimited()).unwrap();
    let a = iot(&sim.url(), A);
    for bad in [
        "not a certificate".to_string(),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_string(),
        // base64 of bytes that are not a DER structure
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n".to_string(),
        // a real fake certificate cut short
        fake_certificate(2)
            .1
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n-----END CERTIFICATE-----\n",
    ] {
        assert_err!(
            a.register_certificate_without_ca()
                .certificate_pem(&bad)
                .send()
                .await,
            "CertificateValidationException",
            400
        );
    }
    assert_err!(
        a.register_certificate_without_ca()
            .certificate_pem(fake_certificate(3).1)
            .status(CertificateStatus::PendingTransfer)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert!(sim
        .state()
        .accounts
        .iter()
        .all(|acct| acct.certificates.is_empty()));
}

#[tokio::test]
async fn registration_after_a_transfer_away_and_seeded_pems() {
    // A seeds the certificate with its real PEM, transfers it to B; then A
    // registers it again (the zero-downtime way back)
    let (id, pem) = fake_certificate(4);
    let mut c = cert(0, "INACTIVE");
    c.id = id.clone();
    c.pem = Some(pem.clone());
    let mut plain = cert(1, "ACTIVE");
    plain.pem = None;
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed_of(vec![(A, vec![c, plain])]));
    let sim = Simulator::spawn(config).unwrap();
    let (a, b) = (iot(&sim.url(), A), iot(&sim.url(), B));
    let d = a
        .describe_certificate()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.certificate_description().unwrap().certificate_pem(),
        Some(pem.as_str())
    );
    // a certificate seeded without a PEM gets one whose hash is not its id
    let d = a
        .describe_certificate()
        .certificate_id(cert_id(1))
        .send()
        .await
        .unwrap();
    let generated = d
        .certificate_description()
        .unwrap()
        .certificate_pem()
        .unwrap();
    assert_ne!(
        iot_sim::pem::certificate_id_of(generated).unwrap(),
        cert_id(1)
    );

    a.transfer_certificate()
        .certificate_id(&id)
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
    // while pending, the target sees it: registering it there conflicts
    assert_err!(
        b.register_certificate_without_ca()
            .certificate_pem(&pem)
            .send()
            .await,
        "ResourceAlreadyExistsException",
        409
    );
    b.accept_certificate_transfer()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
    let again = a
        .register_certificate_without_ca()
        .certificate_pem(&pem)
        .send()
        .await
        .unwrap();
    assert_eq!(again.certificate_id(), Some(id.as_str()));
    let state = sim.state();
    assert_eq!(
        state.find_in(A, REGION, &id).unwrap().certificate_mode,
        "SNI_ONLY"
    );
    assert_eq!(
        state
            .find_in(B, REGION, &id)
            .unwrap()
            .previous_owner
            .as_deref(),
        Some(A)
    );
    // the source's tombstone is gone with the new registration
    a.describe_certificate()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
}
