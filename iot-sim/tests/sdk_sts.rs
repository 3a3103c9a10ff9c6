//! STS AssumeRole through the real `aws-sdk-sts` client and aws-config's
//! `AssumeRoleProvider`: a role in another account gives credentials that act as that
//! account, until the session expires; refusals are AWS's.

mod common;

use std::time::{Duration, Instant};

use aws_config::sts::AssumeRoleProvider;
use aws_sdk_iot::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_iot::error::ProvideErrorMetadata;
use common::*;
use iot_sim::{Refusal, SeedRole, SimConfig, SimHandle, Simulator};

const ROLE_B: &str = "arn:aws:iam::222222222222:role/migrate";

fn sim(lifetime: Option<Duration>) -> SimHandle {
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed_of(vec![
        (A, vec![cert(1, "ACTIVE")]),
        (B, vec![cert(2, "ACTIVE")]),
    ]));
    config.roles = vec![
        SeedRole::new(B, "migrate", &[A]),
        SeedRole::new(C, "guarded", &[A]).with_external_id("ext-77"),
    ];
    config.session_lifetime = lifetime;
    Simulator::spawn(config).unwrap()
}

/// A configuration with these credentials, its time source and sleep as the loader sets them.
async fn sdk_config(url: &str, credentials: Credentials) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(credentials)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

async fn sts(url: &str, credentials: Credentials) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&sdk_config(url, credentials).await)
}

fn key(account: &str) -> Credentials {
    Credentials::new(account, "secret", None, None, "test")
}

/// The credentials of a session `who` gets for `role`.
async fn assume(url: &str, who: &str, role: &str) -> Credentials {
    let out = sts(url, key(who))
        .await
        .assume_role()
        .role_arn(role)
        .role_session_name("test-session")
        .send()
        .await
        .expect("role assumed");
    let c = out.credentials.expect("credentials");
    Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "assumed",
    )
}

async fn describe(c: &aws_sdk_iot::Client, n: u32) -> Result<(), (String, u16)> {
    c.describe_certificate()
        .certificate_id(cert_id(n))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| err_info(&e))
}

async fn iot_with(url: &str, credentials: Credentials) -> aws_sdk_iot::Client {
    aws_sdk_iot::Client::new(&sdk_config(url, credentials).await)
}

#[tokio::test]
async fn a_role_session_acts_as_the_roles_account_and_says_so() {
    let sim = sim(None);
    let url = sim.url();
    let creds = assume(&url, A, ROLE_B).await;
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert!(creds.expiry().is_none(), "set by hand above");
    let id = sts(&url, creds.clone())
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(id.account(), Some(B));
    assert_eq!(
        id.arn(),
        Some("arn:aws:sts::222222222222:assumed-role/migrate/test-session")
    );
    assert!(id.user_id().unwrap().ends_with(":test-session"));
    // B's certificate is visible, A's is not: the session is B.
    let iot = iot_with(&url, creds.clone()).await;
    describe(&iot, 2).await.expect("B's own certificate");
    assert_eq!(
        describe(&iot, 1).await.unwrap_err(),
        ("ResourceNotFoundException".into(), 404)
    );
    // Without its session token the key is not recognised.
    let tokenless = Credentials::new(
        creds.access_key_id(),
        creds.secret_access_key(),
        None,
        None,
        "t",
    );
    assert_eq!(
        describe(&iot_with(&url, tokenless).await, 2)
            .await
            .unwrap_err(),
        ("UnrecognizedClientException".into(), 403)
    );
    assert_eq!(sim.stats().calls_of("AssumeRole"), 1);
}

#[tokio::test]
async fn roles_the_caller_may_not_assume_are_access_denied() {
    let sim = sim(None);
    let url = sim.url();
    let refused = |e: aws_sdk_sts::error::SdkError<_>| {
        let e: aws_sdk_sts::operation::assume_role::AssumeRoleError = e.into_service_error();
        (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        )
    };
    // C is not trusted by B's role.
    let e = sts(&url, key(C))
        .await
        .assume_role()
        .role_arn(ROLE_B)
        .role_session_name("s1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused(e),
        (
            "AccessDenied".into(),
            format!("User: arn:aws:iam::{C}:user/iot-sim is not authorized to perform: sts:AssumeRole on resource: {ROLE_B}")
        )
    );
    // The guarded role asks for an external id: without it, or with another, denied.
    let guarded = "arn:aws:iam::333333333333:role/guarded";
    for external_id in [None, Some("ext-78")] {
        let e = sts(&url, key(A))
            .await
            .assume_role()
            .role_arn(guarded)
            .role_session_name("s1")
            .set_external_id(external_id.map(str::to_string))
            .send()
            .await
            .unwrap_err();
        assert_eq!(refused(e).0, "AccessDenied", "{external_id:?}");
    }
    sts(&url, key(A))
        .await
        .assume_role()
        .role_arn(guarded)
        .role_session_name("s1")
        .external_id("ext-77")
        .send()
        .await
        .expect("with the external id");
    // A role nobody declared.
    let e = sts(&url, key(A))
        .await
        .assume_role()
        .role_arn("arn:aws:iam::222222222222:role/nope")
        .role_session_name("s1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused(e).0, "AccessDenied");
}

#[tokio::test]
async fn a_session_expires_and_aws_configs_provider_refreshes_before_it_does() {
    let lifetime = Duration::from_secs(2);
    let sim = sim(Some(lifetime));
    let url = sim.url();
    // Credentials taken once, by hand, stop working when the session ends.
    let fixed = iot_with(&url, assume(&url, A, ROLE_B).await).await;
    describe(&fixed, 2).await.expect("fresh");
    let started = Instant::now();
    let refused = loop {
        match describe(&fixed, 2).await {
            Ok(()) => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the session never expired"
                );
                // Not to spin: the session ends in its own time.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(refused, ("ExpiredTokenException".into(), 403));
    assert_eq!(sim.stats().refused_of(Refusal::Expired), 1);

    // aws-config's provider behind the SDK's identity cache renews the session: calls
    // through three lifetimes never meet an expired one.
    let provider = AssumeRoleProvider::builder(ROLE_B)
        .session_name("refreshing")
        .configure(&sdk_config(&url, key(A)).await)
        .build()
        .await;
    let iot = aws_sdk_iot::Client::new(
        &sdk_config(&url, key(A))
            .await
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .identity_cache(aws_config::identity::IdentityCache::lazy().build())
            .build(),
    );
    let assumed_before = sim.stats().calls_of("AssumeRole");
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < 3 * lifetime {
        describe(&iot, 2).await.expect("never expired");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sim.stats();
    assert_eq!(stats.refused_of(Refusal::Expired), 1, "only the fixed one");
    let sessions = stats.calls_of("AssumeRole") - assumed_before;
    assert!(sessions >= 3, "{sessions} sessions for {calls} calls");
}

#[tokio::test]
async fn under_the_allow_list_the_callers_own_policy_must_allow_assume_role() {
    let mut config = SimConfig::unlimited();
    config
        .seeds
        .push(seed_of(vec![(B, vec![cert(2, "ACTIVE")])]));
    config.roles = vec![
        SeedRole::new(B, "migrate", &[A]),
        SeedRole::new(C, "migrate", &[A]),
    ];
    // A may assume B's role only; C's role trusts A all the same.
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "{ROLE_B}"}}]}}"#
    );
    config
        .iam_policies
        .insert(A.to_string(), iot_sim::IamPolicy::parse(&policy).unwrap());
    let sim = Simulator::spawn(config).unwrap();
    let url = sim.url();
    let client = sts(&url, key(A)).await;
    let session = assume(&url, A, ROLE_B).await;
    describe(&iot_with(&url, session).await, 2)
        .await
        .expect("B's certificate with the session");
    let role_c = "arn:aws:iam::333333333333:role/migrate";
    let e = client
        .assume_role()
        .role_arn(role_c)
        .role_session_name("test-session")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("AccessDenied"));
    assert_eq!(
        e.message(),
        Some(format!("User: arn:aws:iam::{A}:user/iot-sim is not authorized to perform: sts:AssumeRole on resource: {role_c}").as_str())
    );
    // GetCallerIdentity needs no permission.
    client.get_caller_identity().send().await.unwrap();
}
