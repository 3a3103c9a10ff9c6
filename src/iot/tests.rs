//! The outgoing-transfer listing as a shared resource: one listing serves every certificate
//! waiting for it, a failed one answers all of them, and a listing older than what a
//! certificate must be seen from is not trusted to say "not pending".

use tokio::time::Instant;

use super::fake::{Answer, Cert, FakeIot};
use crate::pacer::Operation;

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";

fn id(n: u32) -> String {
    format!("{n:064x}")
}

#[tokio::test]
async fn one_listing_serves_every_certificate_waiting_for_it() {
    let fake = FakeIot::new();
    for n in 0..200 {
        fake.put(&id(n), Cert::new(SOURCE, "INACTIVE").pending_to(TARGET));
    }
    let iot = fake.iot(SOURCE);
    let asked = Instant::now();
    let answers = futures::future::join_all((0..200).map(|n| {
        let iot = iot.clone();
        async move { iot.pending_target(&id(n), asked).await }
    }))
    .await;
    for a in answers {
        assert_eq!(a.unwrap().as_deref(), Some(TARGET));
    }
    assert_eq!(iot.listings_taken(), 1);
    assert_eq!(fake.sent(Operation::ListOutgoingCertificates), 1);
}

#[tokio::test]
async fn a_certificate_missing_from_an_older_listing_waits_for_a_newer_one() {
    let fake = FakeIot::new();
    fake.put(&id(1), Cert::new(SOURCE, "INACTIVE").pending_to(TARGET));
    fake.put(&id(2), Cert::new(SOURCE, "INACTIVE"));
    let iot = fake.iot(SOURCE);
    // Not pending when the listing is taken: not listed.
    assert_eq!(
        iot.pending_target(&id(2), Instant::now()).await.unwrap(),
        None
    );
    assert_eq!(iot.listings_taken(), 1);
    // Listed already: answered from that listing, without another.
    assert_eq!(
        iot.pending_target(&id(1), Instant::now())
            .await
            .unwrap()
            .as_deref(),
        Some(TARGET)
    );
    assert_eq!(iot.listings_taken(), 1);
    // Transferred since, and seen pending after that listing: only a newer one can say.
    fake.put(&id(2), Cert::new(SOURCE, "INACTIVE").pending_to(TARGET));
    assert_eq!(
        iot.pending_target(&id(2), Instant::now())
            .await
            .unwrap()
            .as_deref(),
        Some(TARGET)
    );
    assert_eq!(iot.listings_taken(), 2);
}

#[tokio::test]
async fn a_listing_that_fails_answers_its_error_to_everyone_waiting_for_it() {
    let fake = FakeIot::new();
    for n in 0..50 {
        fake.put(&id(n), Cert::new(SOURCE, "INACTIVE").pending_to(TARGET));
    }
    fake.always(
        Operation::ListOutgoingCertificates,
        Answer::Refuse(503, "ServiceUnavailableException"),
    );
    let iot = fake.iot(SOURCE);
    let asked = Instant::now();
    let answers = futures::future::join_all((0..50).map(|n| {
        let iot = iot.clone();
        async move { iot.pending_target(&id(n), asked).await }
    }))
    .await;
    for a in answers {
        let e = a.expect_err("the listing failed");
        assert_eq!(e.code(), Some("ServiceUnavailableException"));
    }
    // One listing (its call tried as often as the retry policy allows), not one each.
    assert_eq!(iot.listings_taken(), 1);
    assert_eq!(fake.sent(Operation::ListOutgoingCertificates), 3);
}
