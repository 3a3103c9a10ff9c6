//! STS GetCallerIdentity, wire details (headers, error shape), the `/_sim/*`
//! endpoints and the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_iot::error::ProvideErrorMetadata;
use common::*;
use iot_sim::{FaultKind, SimConfig, Simulator, StateDump, Stats};

fn sts(url: &str, access_key: &str) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            access_key, "secret", None, None, "test",
        ))
        .endpoint_url(url)
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

#[tokio::test]
async fn get_caller_identity_with_aws_sdk_sts() {
    // faults apply to IoT operations only, never to STS
    let config = SimConfig {
        faults: vec![(FaultKind::Http500, 1.0)],
        ..SimConfig::default()
    };
    let sim = Simulator::spawn(config).unwrap();
    let out = sts(&sim.url(), "123456789012")
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(out.account(), Some("123456789012"));
    assert_eq!(out.arn(), Some("arn:aws:iam::123456789012:user/iot-sim"));
    assert_eq!(out.user_id(), Some("123456789012"));
    let out = sts(&sim.url(), "AKIAEXAMPLE")
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(out.account(), Some(A));
    assert_eq!(out.user_id(), Some("AKIAEXAMPLE"));
    assert_eq!(sim.stats().calls_of("GetCallerIdentity"), 2);
}

#[test]
fn get_caller_identity_raw() {
    let sim = Simulator::spawn(SimConfig::default()).unwrap();
    let auth = auth_header("222222222222", "sts");
    let (status, headers, body) = raw_http(
        sim.addr(),
        "POST",
        "/",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/xml"));
    assert!(header(&headers, "x-amzn-RequestId").is_some());
    assert!(body.starts_with(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::222222222222:user/iot-sim</Arn><UserId>222222222222</UserId><Account>222222222222</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>"
    ), "{body}");
    let (status, _, body) = raw_http(
        sim.addr(),
        "POST",
        "/",
        &[],
        "Action=GetFederationToken&Version=2011-06-15",
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    // AssumeRole is answered (here: its role is missing).
    let (status, _, body) = raw_http(
        sim.addr(),
        "POST",
        "/",
        &[],
        "Action=AssumeRole&Version=2011-06-15",
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("<Code>ValidationError</Code>"), "{body}");
}

#[test]
fn wire_format_of_answers_and_errors() {
    let mut config = SimConfig::unlimited();
    config
        .seeds
        .push(seed_of(vec![(A, vec![cert(1, "ACTIVE")])]));
    let sim = Simulator::spawn(config).unwrap();
    let auth = auth_header(A, "iot");
    let (status, headers, body) = raw_http(
        sim.addr(),
        "GET",
        &format!("/certificates/{}", cert_id(1)),
        &[("Authorization", &auth)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(header(&headers, "x-amzn-RequestId").is_some());
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["certificateDescription"]["creationDate"].is_number());

    let (status, headers, body) = raw_http(
        sim.addr(),
        "PATCH",
        &format!("/transfer-certificate/{}?targetAwsAccount={B}", cert_id(1)),
        &[("Authorization", &auth)],
        "{}",
    )
    .unwrap();
    assert_eq!(status, 406);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("CertificateStateException")
    );
    assert!(header(&headers, "x-amzn-RequestId").is_some());
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].is_string());

    // a missing required query parameter
    let (status, headers, _) = raw_http(
        sim.addr(),
        "PATCH",
        &format!("/transfer-certificate/{}", cert_id(1)),
        &[("Authorization", &auth)],
        "",
    )
    .unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("InvalidRequestException")
    );
    // a body that is not JSON
    let (status, _, _) = raw_http(
        sim.addr(),
        "PUT",
        "/target-policies/p1",
        &[("Authorization", &auth)],
        "nope",
    )
    .unwrap();
    assert_eq!(status, 400);
    // a missing principal header
    let (status, headers, _) = raw_http(sim.addr(), "GET", "/principals/things", &[], "").unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("InvalidRequestException")
    );
    // without an Authorization header: the default account, us-east-1
    let (status, _, body) = raw_http(sim.addr(), "GET", "/certificates", &[], "").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains(&cert_id(1)));
    // unknown paths
    let (status, _, _) = raw_http(sim.addr(), "GET", "/nothing-here", &[], "").unwrap();
    assert_eq!(status, 404);
    // calls are counted, unknown paths are not
    assert_eq!(sim.stats().total_calls(), 6);
}

#[test]
fn sim_endpoints() {
    let sim = Simulator::spawn(SimConfig::unlimited()).unwrap();
    let seed = serde_json::to_string(&seed_of(vec![(A, vec![cert(1, "INACTIVE")])])).unwrap();
    let (status, _, _) = raw_http(sim.addr(), "POST", "/_sim/seed", &[], &seed).unwrap();
    assert_eq!(status, 200);
    let (status, _, body) = raw_http(
        sim.addr(),
        "POST",
        "/_sim/seed",
        &[],
        "{\"region\":\"us-east-1\",\"accounts\":{\"1\":{\"certificates\":[]}}}",
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = raw_http(sim.addr(), "POST", "/_sim/seed", &[], "{").unwrap();
    assert_eq!(status, 400);

    // the exact JSON shape of /_sim/state
    let (_, _, body) = raw_http(sim.addr(), "GET", "/_sim/state", &[], "").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let c = &v["accounts"][0]["certificates"][0];
    assert_eq!(v["accounts"][0]["account"], A);
    assert_eq!(v["accounts"][0]["region"], REGION);
    for field in [
        "id",
        "arn",
        "status",
        "owner",
        "previous_owner",
        "pending_target",
        "transfer_message",
        "reject_reason",
        "policies",
        "things",
    ] {
        assert!(c.get(field).is_some(), "missing {field} in {c}");
    }
    let dump: StateDump = serde_json::from_str(&body).unwrap();
    assert_eq!(dump, sim.state());

    let auth = auth_header(A, "iot");
    raw_http(
        sim.addr(),
        "PATCH",
        &format!("/transfer-certificate/{}?targetAwsAccount={B}", cert_id(1)),
        &[("Authorization", &auth)],
        "{}",
    )
    .unwrap();
    let (_, _, body) = raw_http(sim.addr(), "GET", "/_sim/stats", &[], "").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["calls"]["TransferCertificate"], 1);
    assert_eq!(v["transfers_effective"], 1);
    assert_eq!(v["max_transfers_per_certificate"], 1);
    for kind in ["500", "503", "reset", "timeout", "lost-reply"] {
        assert_eq!(v["faults"][kind], 0);
    }
    assert!(v["throttled"].is_object());
    assert!(v["peak_in_flight"].as_u64().unwrap() >= 1);
    let stats: Stats = serde_json::from_str(&body).unwrap();
    assert_eq!(stats, sim.stats());

    let (status, _, _) = raw_http(sim.addr(), "POST", "/_sim/reset-stats", &[], "").unwrap();
    assert_eq!(status, 200);
    let stats = sim.stats();
    assert_eq!(stats.total_calls(), 0);
    assert_eq!(stats.max_transfers_per_certificate, 0);
    // the state is untouched by a stats reset
    let (_, c) = sim
        .state()
        .find(&cert_id(1))
        .map(|(a, c)| (a.clone(), c.clone()))
        .unwrap();
    assert_eq!(c.pending_target.as_deref(), Some(B));
    assert_eq!(c.status, "PENDING_TRANSFER");
}

#[tokio::test]
async fn start_serves_on_the_callers_runtime() {
    let mut config = SimConfig::unlimited();
    config
        .seeds
        .push(seed_of(vec![(A, vec![cert(1, "ACTIVE")])]));
    let sim = Simulator::start(config).await.unwrap();
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    let out = iot(&sim.url(), A).list_certificates().send().await.unwrap();
    assert_eq!(out.certificates().len(), 1);
    let addr = sim.addr();
    sim.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = iot(&format!("http://{addr}"), A)
        .list_certificates()
        .send()
        .await
        .unwrap_err();
    assert!(e.code().is_none());
}

#[test]
fn bad_config_is_refused() {
    let mut config = SimConfig::default();
    config.seeds.push(seed_of(vec![(A, vec![cert(1, "NOPE")])]));
    assert!(Simulator::spawn(config).is_err());
    let config = SimConfig {
        faults: vec![(FaultKind::Reset, 1.5)],
        ..SimConfig::default()
    };
    assert!(Simulator::spawn(config).is_err());
    let config = SimConfig {
        default_account: "default".into(),
        ..SimConfig::default()
    };
    assert!(Simulator::spawn(config).is_err());
    let mut config = SimConfig::default();
    config.quotas.insert("NoSuchOperation".into(), 1.0);
    assert!(Simulator::spawn(config).is_err());
}

#[test]
fn binary_prints_its_address_and_stops_on_sigterm() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/example.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iot-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed",
            seed,
            "--quota-scale",
            "2",
            "--quota",
            "TransferCertificate=1",
            "--latency",
            "1ms",
            "--latency-jitter",
            "1ms",
            "--fault",
            "503=0",
            "--timeout-hold",
            "2s",
            "--things-block-transfer=false",
            "--default-account",
            "444444444444",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let (status, _, body) = raw_http(addr, "GET", "/_sim/state", &[], "").unwrap();
    assert_eq!(status, 200);
    let dump: StateDump = serde_json::from_str(&body).unwrap();
    assert_eq!(
        dump.account(A, REGION).unwrap().certificates.len(),
        5,
        "{body}"
    );

    let t = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }

    // bad flags are refused
    let out = Command::new(env!("CARGO_BIN_EXE_iot-sim"))
        .args(["--fault", "boom=1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
