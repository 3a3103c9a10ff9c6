//! Every operation and every error, through the real `aws-sdk-iot` client.

mod common;

use std::collections::HashSet;

use aws_sdk_iot::types::CertificateStatus;
use common::*;
use iot_sim::{SimConfig, SimHandle, Simulator};

fn sim_with(certs_a: Vec<iot_sim::SeedCertificate>) -> SimHandle {
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed_of(vec![(A, certs_a)]));
    Simulator::spawn(config).expect("simulator starts")
}

fn sim_with_registry(
    certs_a: Vec<iot_sim::SeedCertificate>,
    policies: &[&str],
    things: &[&str],
) -> SimHandle {
    let mut config = SimConfig::unlimited();
    config.seeds.push(with_registry(
        seed_of(vec![(A, certs_a)]),
        A,
        policies,
        things,
    ));
    Simulator::spawn(config).expect("simulator starts")
}

fn status_of(sim: &SimHandle, id: &str) -> String {
    sim.state()
        .find(id)
        .expect("certificate exists")
        .1
        .status
        .clone()
}

#[tokio::test]
async fn describe_certificate_fields_and_errors() {
    let mut c = cert(1, "ACTIVE");
    c.policies = vec!["p1".into()];
    let sim = sim_with(vec![c]);
    let iot = iot(&sim.url(), A);
    let id = cert_id(1);

    let out = iot
        .describe_certificate()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
    let d = out.certificate_description().expect("description");
    assert_eq!(d.certificate_arn(), Some(arn(A, &id).as_str()));
    assert_eq!(d.certificate_id(), Some(id.as_str()));
    assert_eq!(d.status(), Some(&CertificateStatus::Active));
    assert_eq!(d.owned_by(), Some(A));
    assert_eq!(d.previous_owned_by(), None);
    assert!(d
        .certificate_pem()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(d.creation_date().unwrap().secs() > 1_600_000_000);
    assert!(d.last_modified_date().is_some());
    assert_eq!(d.customer_version(), Some(1));
    assert!(d.generation_id().is_some());
    let v = d.validity().unwrap();
    assert!(v.not_before().unwrap().secs() < v.not_after().unwrap().secs());
    assert_eq!(d.certificate_mode().map(|m| m.as_str()), Some("DEFAULT"));
    assert!(d.transfer_data().is_some());

    assert_err!(
        iot.describe_certificate()
            .certificate_id(cert_id(99))
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.describe_certificate()
            .certificate_id("abc")
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        iot.describe_certificate()
            .certificate_id("z".repeat(64))
            .send()
            .await,
        "InvalidRequestException",
        400
    );
}

#[tokio::test]
async fn update_certificate_rules() {
    let mut pending = cert(3, "PENDING_TRANSFER");
    pending.pending_target = Some(B.into());
    let sim = sim_with(vec![cert(1, "ACTIVE"), cert(2, "REVOKED"), pending]);
    let iot = iot(&sim.url(), A);

    iot.update_certificate()
        .certificate_id(cert_id(1))
        .new_status(CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(&sim, &cert_id(1)), "INACTIVE");
    let d = iot
        .describe_certificate()
        .certificate_id(cert_id(1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.certificate_description().unwrap().customer_version(),
        Some(2)
    );

    for bad in [
        CertificateStatus::PendingTransfer,
        CertificateStatus::PendingActivation,
    ] {
        assert_err!(
            iot.update_certificate()
                .certificate_id(cert_id(1))
                .new_status(bad)
                .send()
                .await,
            "InvalidRequestException",
            400
        );
    }
    assert_err!(
        iot.update_certificate()
            .certificate_id(cert_id(1))
            .new_status(CertificateStatus::from("BOGUS"))
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    // any change of a PENDING_TRANSFER certificate, by the source or the target
    assert_err!(
        iot.update_certificate()
            .certificate_id(cert_id(3))
            .new_status(CertificateStatus::Active)
            .send()
            .await,
        "CertificateStateException",
        406
    );
    assert_err!(
        common::iot(&sim.url(), B)
            .update_certificate()
            .certificate_id(cert_id(3))
            .new_status(CertificateStatus::Inactive)
            .send()
            .await,
        "CertificateStateException",
        406
    );
    assert_err!(
        iot.update_certificate()
            .certificate_id(cert_id(2))
            .new_status(CertificateStatus::Active)
            .send()
            .await,
        "CertificateStateException",
        406
    );
    assert_err!(
        iot.update_certificate()
            .certificate_id(cert_id(42))
            .new_status(CertificateStatus::Active)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.update_certificate()
            .certificate_id("nothex")
            .new_status(CertificateStatus::Active)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_eq!(status_of(&sim, &cert_id(3)), "PENDING_TRANSFER");
}

#[tokio::test]
async fn list_certificates_paginates() {
    let sim = sim_with((0..60).map(|n| cert(n, "INACTIVE")).collect());
    let iot = iot(&sim.url(), A);

    // default page: 25
    let first = iot.list_certificates().send().await.unwrap();
    assert_eq!(first.certificates().len(), 25);
    assert!(first.next_marker().is_some());

    // manual paging with a small page size
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = iot
            .list_certificates()
            .page_size(7)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(out.certificates().len() <= 7);
        for c in out.certificates() {
            assert_eq!(c.status(), Some(&CertificateStatus::Inactive));
            assert_eq!(
                c.certificate_arn(),
                Some(arn(A, c.certificate_id().unwrap()).as_str())
            );
            assert!(c.creation_date().is_some());
            seen.push(c.certificate_id().unwrap().to_string());
        }
        match out.next_marker() {
            Some(m) => marker = Some(m.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 9);
    assert_eq!(seen.len(), 60);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 60);
    // default order is descending by creation (seed order)
    assert_eq!(seen[0], cert_id(59));

    // ascending order
    let asc = iot
        .list_certificates()
        .ascending_order(true)
        .page_size(3)
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = asc
        .certificates()
        .iter()
        .map(|c| c.certificate_id().unwrap())
        .collect();
    assert_eq!(ids, vec![cert_id(0), cert_id(1), cert_id(2)]);

    // the SDK paginator
    let all: Vec<_> = iot
        .list_certificates()
        .page_size(250)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 60);

    // page size limits and marker format
    for bad in [0, 251, -1] {
        assert_err!(
            iot.list_certificates().page_size(bad).send().await,
            "InvalidRequestException",
            400
        );
    }
    assert_err!(
        iot.list_certificates().marker("not-a-marker!").send().await,
        "InvalidRequestException",
        400
    );
}

#[tokio::test]
async fn outgoing_certificates() {
    let sim = sim_with((0..5).map(|n| cert(n, "INACTIVE")).collect());
    let iot = iot(&sim.url(), A);
    for n in 0..3 {
        iot.transfer_certificate()
            .certificate_id(cert_id(n))
            .target_aws_account(B)
            .transfer_message(format!("msg {n}"))
            .send()
            .await
            .unwrap();
    }
    let out = iot.list_outgoing_certificates().send().await.unwrap();
    assert_eq!(out.outgoing_certificates().len(), 3);
    assert!(out.next_marker().is_none());
    let first = &out.outgoing_certificates()[0];
    assert_eq!(first.certificate_id(), Some(cert_id(2).as_str()));
    // by default the ARN carries the target account (the switch offers the source's)
    assert_eq!(first.certificate_arn(), Some(arn(B, &cert_id(2)).as_str()));
    assert_eq!(first.transferred_to(), Some(B));
    assert_eq!(first.transfer_message(), Some("msg 2"));
    assert!(first.transfer_date().is_some());
    assert!(first.creation_date().is_some());

    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = iot
            .list_outgoing_certificates()
            .page_size(1)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        assert_eq!(page.outgoing_certificates().len(), 1);
        seen.push(
            page.outgoing_certificates()[0]
                .certificate_id()
                .unwrap()
                .to_string(),
        );
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(seen, vec![cert_id(2), cert_id(1), cert_id(0)]);
    assert_err!(
        iot.list_outgoing_certificates().page_size(300).send().await,
        "InvalidRequestException",
        400
    );
    // B has nothing outgoing
    let b = common::iot(&sim.url(), B)
        .list_outgoing_certificates()
        .send()
        .await
        .unwrap();
    assert!(b.outgoing_certificates().is_empty());
}

#[tokio::test]
#[allow(deprecated)]
async fn policies_attach_list_detach() {
    let extra: Vec<String> = (0..9).map(|n| format!("extra-{n}")).collect();
    let mut names = vec!["p-a", "p-b", "p-c", "one-too-many"];
    names.extend(extra.iter().map(String::as_str));
    let sim = sim_with_registry(vec![cert(1, "INACTIVE")], &names, &[]);
    let iot = iot(&sim.url(), A);
    let target = arn(A, &cert_id(1));

    for p in ["p-b", "p-a", "p-c"] {
        iot.attach_policy()
            .policy_name(p)
            .target(&target)
            .send()
            .await
            .unwrap();
    }
    // attaching again is a no-op
    iot.attach_policy()
        .policy_name("p-a")
        .target(&target)
        .send()
        .await
        .unwrap();

    let out = iot
        .list_attached_policies()
        .target(&target)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = out
        .policies()
        .iter()
        .map(|p| p.policy_name().unwrap())
        .collect();
    assert_eq!(names, vec!["p-a", "p-b", "p-c"]);
    assert_eq!(
        out.policies()[0].policy_arn(),
        Some("arn:aws:iot:us-east-1:111111111111:policy/p-a")
    );

    // pagination through the SDK paginator with page size 1
    let paged: Vec<_> = iot
        .list_attached_policies()
        .target(&target)
        .page_size(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(paged.len(), 3);

    let pp = iot
        .list_principal_policies()
        .principal(&target)
        .page_size(2)
        .send()
        .await
        .unwrap();
    assert_eq!(pp.policies().len(), 2);
    let pp2 = iot
        .list_principal_policies()
        .principal(&target)
        .page_size(2)
        .marker(pp.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pp2.policies().len(), 1);
    assert!(pp2.next_marker().is_none());

    iot.detach_policy()
        .policy_name("p-a")
        .target(&target)
        .send()
        .await
        .unwrap();
    iot.detach_principal_policy()
        .policy_name("p-b")
        .principal(&target)
        .send()
        .await
        .unwrap();
    // detaching a known policy that is no longer attached succeeds (idempotent)
    iot.detach_policy()
        .policy_name("p-a")
        .target(&target)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sim.state().find(&cert_id(1)).unwrap().1.policies,
        vec!["p-c"]
    );

    // errors
    let missing = arn(A, &cert_id(77));
    assert_err!(
        iot.attach_policy()
            .policy_name("p")
            .target(&missing)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.list_attached_policies().target(&missing).send().await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.list_principal_policies()
            .principal(&missing)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.detach_policy()
            .policy_name("p-c")
            .target(&missing)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.detach_principal_policy()
            .policy_name("p-c")
            .principal(&missing)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.detach_policy()
            .policy_name("never-seen")
            .target(&target)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    // nothing is created implicitly: attaching a policy that does not exist is 404
    assert_err!(
        iot.attach_policy()
            .policy_name("never-seen")
            .target(&target)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.attach_policy()
            .policy_name("bad name")
            .target(&target)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        iot.attach_policy()
            .policy_name("p")
            .target("not-an-arn")
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        iot.list_attached_policies()
            .target(&target)
            .page_size(0)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    // another account's certificate is not visible
    assert_err!(
        common::iot(&sim.url(), B)
            .list_attached_policies()
            .target(&target)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    // at most 10 policies per certificate
    for n in 0..9 {
        iot.attach_policy()
            .policy_name(format!("extra-{n}"))
            .target(&target)
            .send()
            .await
            .unwrap();
    }
    assert_err!(
        iot.attach_policy()
            .policy_name("one-too-many")
            .target(&target)
            .send()
            .await,
        "LimitExceededException",
        410
    );
}

#[tokio::test]
async fn things_attach_list_detach() {
    let sim = sim_with_registry(
        vec![cert(1, "INACTIVE")],
        &[],
        &["thing-1", "thing-2", "thing-3"],
    );
    let iot = iot(&sim.url(), A);
    let principal = arn(A, &cert_id(1));

    for t in ["thing-3", "thing-1", "thing-2"] {
        iot.attach_thing_principal()
            .thing_name(t)
            .principal(&principal)
            .send()
            .await
            .unwrap();
    }
    let all = iot
        .list_principal_things()
        .principal(&principal)
        .send()
        .await
        .unwrap();
    assert_eq!(all.things(), ["thing-1", "thing-2", "thing-3"]);
    assert!(all.next_token().is_none());

    let p1 = iot
        .list_principal_things()
        .principal(&principal)
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(p1.things(), ["thing-1", "thing-2"]);
    let p2 = iot
        .list_principal_things()
        .principal(&principal)
        .max_results(2)
        .next_token(p1.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(p2.things(), ["thing-3"]);
    assert!(p2.next_token().is_none());

    iot.detach_thing_principal()
        .thing_name("thing-2")
        .principal(&principal)
        .send()
        .await
        .unwrap();
    // again: the thing exists but is no longer attached -> fine
    iot.detach_thing_principal()
        .thing_name("thing-2")
        .principal(&principal)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sim.state().find(&cert_id(1)).unwrap().1.things,
        vec!["thing-1", "thing-3"]
    );

    let missing = arn(A, &cert_id(5));
    assert_err!(
        iot.list_principal_things().principal(&missing).send().await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.attach_thing_principal()
            .thing_name("t")
            .principal(&missing)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.detach_thing_principal()
            .thing_name("no-such-thing")
            .principal(&principal)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    // nothing is created implicitly: attaching a thing that does not exist is 404
    assert_err!(
        iot.attach_thing_principal()
            .thing_name("no-such-thing")
            .principal(&principal)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        iot.attach_thing_principal()
            .thing_name("bad/name")
            .principal(&principal)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        iot.list_principal_things()
            .principal(&principal)
            .max_results(251)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        iot.list_principal_things()
            .principal("garbage")
            .send()
            .await,
        "InvalidRequestException",
        400
    );
}

#[tokio::test]
async fn transfer_accept_between_accounts() {
    let sim = sim_with(vec![cert(1, "INACTIVE")]);
    let a = iot(&sim.url(), A);
    let b = iot(&sim.url(), B);
    let c = iot(&sim.url(), C);
    let id = cert_id(1);

    // before: B sees nothing
    assert!(b
        .list_certificates()
        .send()
        .await
        .unwrap()
        .certificates()
        .is_empty());
    assert_err!(
        b.describe_certificate().certificate_id(&id).send().await,
        "ResourceNotFoundException",
        404
    );

    let out = a
        .transfer_certificate()
        .certificate_id(&id)
        .target_aws_account(B)
        .transfer_message("here you go")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.transferred_certificate_arn(),
        Some(arn(B, &id).as_str())
    );

    // source view
    let d = a
        .describe_certificate()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
    let d = d.certificate_description().unwrap();
    assert_eq!(d.status(), Some(&CertificateStatus::PendingTransfer));
    let td = d.transfer_data().unwrap();
    assert_eq!(td.transfer_message(), Some("here you go"));
    assert!(td.transfer_date().is_some());
    assert!(td.accept_date().is_none());

    // target view: listed as PENDING_TRANSFER, describable
    let listed = b.list_certificates().send().await.unwrap();
    assert_eq!(listed.certificates().len(), 1);
    assert_eq!(listed.certificates()[0].certificate_id(), Some(id.as_str()));
    assert_eq!(
        listed.certificates()[0].status(),
        Some(&CertificateStatus::PendingTransfer)
    );
    let bd = b
        .describe_certificate()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(bd.certificate_description().unwrap().owned_by(), Some(A));
    // a third account sees nothing
    assert_err!(
        c.describe_certificate().certificate_id(&id).send().await,
        "ResourceNotFoundException",
        404
    );

    // accept by anyone but the target: 404
    for wrong in [&a, &c] {
        assert_err!(
            wrong
                .accept_certificate_transfer()
                .certificate_id(&id)
                .send()
                .await,
            "ResourceNotFoundException",
            404
        );
        assert_err!(
            wrong
                .reject_certificate_transfer()
                .certificate_id(&id)
                .send()
                .await,
            "ResourceNotFoundException",
            404
        );
    }
    assert_err!(
        b.accept_certificate_transfer()
            .certificate_id("xyz")
            .send()
            .await,
        "InvalidRequestException",
        400
    );

    b.accept_certificate_transfer()
        .certificate_id(&id)
        .set_as_active(true)
        .send()
        .await
        .unwrap();

    let bd = b
        .describe_certificate()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
    let bd = bd.certificate_description().unwrap();
    assert_eq!(bd.certificate_arn(), Some(arn(B, &id).as_str()));
    assert_eq!(bd.status(), Some(&CertificateStatus::Active));
    assert_eq!(bd.owned_by(), Some(B));
    assert_eq!(bd.previous_owned_by(), Some(A));
    assert!(bd.transfer_data().unwrap().accept_date().is_some());
    assert_eq!(
        bd.transfer_data().unwrap().transfer_message(),
        Some("here you go")
    );

    // the source lost it
    assert_err!(
        a.describe_certificate().certificate_id(&id).send().await,
        "ResourceNotFoundException",
        404
    );
    assert!(a
        .list_certificates()
        .send()
        .await
        .unwrap()
        .certificates()
        .is_empty());
    assert!(a
        .list_outgoing_certificates()
        .send()
        .await
        .unwrap()
        .outgoing_certificates()
        .is_empty());
    assert_err!(
        a.cancel_certificate_transfer()
            .certificate_id(&id)
            .send()
            .await,
        "TransferAlreadyCompletedException",
        410
    );
    assert_err!(
        a.transfer_certificate()
            .certificate_id(&id)
            .target_aws_account(C)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    // second accept / late reject by the target: 410
    assert_err!(
        b.accept_certificate_transfer()
            .certificate_id(&id)
            .send()
            .await,
        "TransferAlreadyCompletedException",
        410
    );
    assert_err!(
        b.reject_certificate_transfer()
            .certificate_id(&id)
            .send()
            .await,
        "TransferAlreadyCompletedException",
        410
    );

    let state = sim.state();
    let (acct, cs) = state.find(&id).unwrap();
    assert_eq!(acct.account, B);
    assert_eq!(cs.owner, B);
    assert_eq!(cs.previous_owner.as_deref(), Some(A));
    assert_eq!(cs.status, "ACTIVE");
    assert_eq!(cs.arn, arn(B, &id));
    assert_eq!(sim.stats().max_transfers_per_certificate, 1);
    assert_eq!(sim.stats().transfers_effective, 1);

    // accept without setAsActive gives INACTIVE; the certificate can travel back
    b.update_certificate()
        .certificate_id(&id)
        .new_status(CertificateStatus::Inactive)
        .send()
        .await
        .unwrap();
    b.transfer_certificate()
        .certificate_id(&id)
        .target_aws_account(A)
        .send()
        .await
        .unwrap();
    a.accept_certificate_transfer()
        .certificate_id(&id)
        .send()
        .await
        .unwrap();
    let (acct, cs) = sim
        .state()
        .find(&id)
        .map(|(a, c)| (a.clone(), c.clone()))
        .unwrap();
    assert_eq!(acct.account, A);
    assert_eq!(cs.status, "INACTIVE");
    assert_eq!(cs.previous_owner.as_deref(), Some(B));
    assert_eq!(sim.stats().max_transfers_per_certificate, 2);
}

#[tokio::test]
async fn reject_and_cancel() {
    let sim = sim_with(vec![cert(1, "INACTIVE"), cert(2, "INACTIVE")]);
    let a = iot(&sim.url(), A);
    let b = iot(&sim.url(), B);
    let (id1, id2) = (cert_id(1), cert_id(2));

    a.transfer_certificate()
        .certificate_id(&id1)
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
    assert_err!(
        b.reject_certificate_transfer()
            .certificate_id(&id1)
            .reject_reason("r".repeat(129))
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    b.reject_certificate_transfer()
        .certificate_id(&id1)
        .reject_reason("not mine")
        .send()
        .await
        .unwrap();
    let d = a
        .describe_certificate()
        .certificate_id(&id1)
        .send()
        .await
        .unwrap();
    let d = d.certificate_description().unwrap();
    assert_eq!(d.status(), Some(&CertificateStatus::Inactive));
    assert_eq!(d.owned_by(), Some(A));
    let td = d.transfer_data().unwrap();
    assert_eq!(td.reject_reason(), Some("not mine"));
    assert!(td.reject_date().is_some());
    let (_, cs) = sim
        .state()
        .find(&id1)
        .map(|(a, c)| (a.clone(), c.clone()))
        .unwrap();
    assert_eq!(cs.reject_reason.as_deref(), Some("not mine"));
    assert_eq!(cs.pending_target, None);
    // after reject: B can neither accept nor see it; cancel is refused (not pending)
    assert_err!(
        b.accept_certificate_transfer()
            .certificate_id(&id1)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert!(b
        .list_certificates()
        .send()
        .await
        .unwrap()
        .certificates()
        .is_empty());
    assert_err!(
        a.cancel_certificate_transfer()
            .certificate_id(&id1)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        a.cancel_certificate_transfer()
            .certificate_id(&id2)
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        a.cancel_certificate_transfer()
            .certificate_id(cert_id(9))
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        a.cancel_certificate_transfer()
            .certificate_id("0x12")
            .send()
            .await,
        "InvalidRequestException",
        400
    );

    // transfer again then cancel
    a.transfer_certificate()
        .certificate_id(&id1)
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
    // the target cannot cancel
    assert_err!(
        b.cancel_certificate_transfer()
            .certificate_id(&id1)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    a.cancel_certificate_transfer()
        .certificate_id(&id1)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(&sim, &id1), "INACTIVE");
    assert!(b
        .list_certificates()
        .send()
        .await
        .unwrap()
        .certificates()
        .is_empty());
    assert_err!(
        b.accept_certificate_transfer()
            .certificate_id(&id1)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    let stats = sim.stats();
    assert_eq!(stats.max_transfers_per_certificate, 2);
    assert_eq!(stats.transfers_effective, 2);
}

#[tokio::test]
async fn transfer_refusals() {
    let mut with_policy = cert(3, "INACTIVE");
    with_policy.policies = vec!["p".into()];
    let mut with_thing = cert(4, "INACTIVE");
    with_thing.things = vec!["t".into()];
    let sim = sim_with(vec![
        cert(1, "ACTIVE"),
        cert(2, "REVOKED"),
        with_policy,
        with_thing.clone(),
        cert(5, "INACTIVE"),
    ]);
    let a = iot(&sim.url(), A);
    let transfer = |id: String, target: &str| {
        a.transfer_certificate()
            .certificate_id(id)
            .target_aws_account(target)
    };

    assert_err!(
        transfer("12".into(), B).send().await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        transfer("g".repeat(64), B).send().await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        transfer(cert_id(5), "12345").send().await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        transfer(cert_id(5), "12345678901x").send().await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        transfer(cert_id(5), B)
            .transfer_message("m".repeat(129))
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        transfer(cert_id(5), A).send().await,
        "InvalidRequestException",
        400
    );
    assert_err!(
        transfer(cert_id(99), B).send().await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        transfer(cert_id(1), B).send().await,
        "CertificateStateException",
        406
    );
    assert_err!(
        transfer(cert_id(2), B).send().await,
        "CertificateStateException",
        406
    );
    assert_err!(
        transfer(cert_id(3), B).send().await,
        "TransferConflictException",
        409
    );
    assert_err!(
        transfer(cert_id(4), B).send().await,
        "TransferConflictException",
        409
    );
    // a 128-character message is fine
    transfer(cert_id(5), B)
        .transfer_message("m".repeat(128))
        .send()
        .await
        .unwrap();
    assert_err!(
        transfer(cert_id(5), B).send().await,
        "TransferConflictException",
        409
    );
    assert_err!(
        transfer(cert_id(5), C).send().await,
        "TransferConflictException",
        409
    );
    // nothing but the one transfer took effect
    let stats = sim.stats();
    assert_eq!(stats.transfers_effective, 1);
    assert_eq!(stats.calls_of("TransferCertificate"), 14);
    for n in [1, 2, 3, 4] {
        assert_ne!(status_of(&sim, &cert_id(n)), "PENDING_TRANSFER");
    }

    // with things_block_transfer = false, attached things do not block
    let mut config = SimConfig::unlimited();
    config.things_block_transfer = false;
    config.seeds.push(seed_of(vec![(A, vec![with_thing])]));
    let relaxed = Simulator::spawn(config).unwrap();
    iot(&relaxed.url(), A)
        .transfer_certificate()
        .certificate_id(cert_id(4))
        .target_aws_account(B)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(&relaxed, &cert_id(4)), "PENDING_TRANSFER");
}

#[tokio::test]
async fn accounts_and_regions_are_separate() {
    let mut config = SimConfig::unlimited();
    config.default_account = "999999999999".into();
    config.seeds.push(seed_of(vec![
        (A, vec![cert(1, "ACTIVE"), cert(2, "ACTIVE")]),
        (B, vec![cert(3, "ACTIVE")]),
        ("999999999999", vec![cert(4, "ACTIVE")]),
    ]));
    let mut eu = seed_of(vec![(A, vec![cert(5, "ACTIVE")])]);
    eu.region = "eu-west-1".into();
    config.seeds.push(eu);
    let sim = Simulator::spawn(config).unwrap();

    let ids = |out: aws_sdk_iot::operation::list_certificates::ListCertificatesOutput| {
        let mut v: Vec<String> = out
            .certificates()
            .iter()
            .map(|c| c.certificate_id().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let a = ids(iot(&sim.url(), A).list_certificates().send().await.unwrap());
    assert_eq!(a, vec![cert_id(1), cert_id(2)]);
    let b = ids(iot(&sim.url(), B).list_certificates().send().await.unwrap());
    assert_eq!(b, vec![cert_id(3)]);
    // a key that is not 12 digits is the default account
    let d = ids(iot(&sim.url(), "AKIAIOSFODNN7EXAMPLE")
        .list_certificates()
        .send()
        .await
        .unwrap());
    assert_eq!(d, vec![cert_id(4)]);
    // the region comes from the credential scope
    let e = ids(iot_in(&sim.url(), A, "eu-west-1")
        .list_certificates()
        .send()
        .await
        .unwrap());
    assert_eq!(e, vec![cert_id(5)]);
    let d = iot_in(&sim.url(), A, "eu-west-1")
        .describe_certificate()
        .certificate_id(cert_id(5))
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.certificate_description().unwrap().certificate_arn(),
        Some(format!("arn:aws:iot:eu-west-1:{A}:cert/{}", cert_id(5)).as_str())
    );
    assert_err!(
        iot(&sim.url(), B)
            .describe_certificate()
            .certificate_id(cert_id(1))
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );

    let state = sim.state();
    let order: Vec<_> = state
        .accounts
        .iter()
        .map(|a| (a.region.as_str(), a.account.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("eu-west-1", A),
            ("us-east-1", A),
            ("us-east-1", B),
            ("us-east-1", "999999999999")
        ]
    );
}

#[tokio::test]
async fn seeding_pending_and_replacing() {
    let mut pending = cert(1, "PENDING_TRANSFER");
    pending.pending_target = Some(B.into());
    pending.transfer_message = Some("seeded".into());
    let sim = sim_with(vec![pending, cert(2, "ACTIVE")]);
    let b = iot(&sim.url(), B);
    let listed = b.list_certificates().send().await.unwrap();
    assert_eq!(listed.certificates().len(), 1);
    assert_eq!(
        listed.certificates()[0].status(),
        Some(&CertificateStatus::PendingTransfer)
    );
    let out = iot(&sim.url(), A)
        .list_outgoing_certificates()
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.outgoing_certificates()[0].transfer_message(),
        Some("seeded")
    );
    b.accept_certificate_transfer()
        .certificate_id(cert_id(1))
        .send()
        .await
        .unwrap();

    // seeding an existing certificate replaces it
    let mut replaced = cert(2, "INACTIVE");
    replaced.policies = vec!["new-policy".into()];
    sim.seed(seed_of(vec![(A, vec![replaced])])).unwrap();
    let (_, cs) = sim
        .state()
        .find(&cert_id(2))
        .map(|(a, c)| (a.clone(), c.clone()))
        .unwrap();
    assert_eq!(cs.status, "INACTIVE");
    assert_eq!(cs.policies, vec!["new-policy"]);

    // invalid seeds are refused as a whole
    let bad = seed_of(vec![(A, vec![cert(7, "ACTIVE"), cert(8, "WEIRD")])]);
    assert!(sim.seed(bad).is_err());
    assert!(sim.state().find(&cert_id(7)).is_none());
    let mut no_target = cert(9, "PENDING_TRANSFER");
    no_target.pending_target = None;
    assert!(sim.seed(seed_of(vec![(A, vec![no_target])])).is_err());
    let mut bad_id = cert(9, "ACTIVE");
    bad_id.id = "short".into();
    assert!(sim.seed(seed_of(vec![(A, vec![bad_id])])).is_err());
    assert!(sim
        .seed(seed_of(vec![("12", vec![cert(9, "ACTIVE")])]))
        .is_err());
}
