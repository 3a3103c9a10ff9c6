//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aws_sdk_iot::config::http::HttpResponse;
use aws_sdk_iot::config::retry::RetryConfig;
use aws_sdk_iot::config::timeout::TimeoutConfig;
use aws_sdk_iot::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_iot::error::ProvideErrorMetadata;
use iot_sim::{Seed, SeedAccount, SeedCertificate};

pub const A: &str = "111111111111";
pub const B: &str = "222222222222";
pub const C: &str = "333333333333";
pub const REGION: &str = "us-east-1";

/// A deterministic 64-hex certificate id.
pub fn cert_id(n: u32) -> String {
    format!("{:064x}", 0x00c0_ffee_0000_0000_u64 + n as u64)
}

pub fn arn(account: &str, id: &str) -> String {
    format!("arn:aws:iot:{REGION}:{account}:cert/{id}")
}

/// An IoT client for `account` (the access key id is the account), retries off.
pub fn iot(url: &str, access_key: &str) -> aws_sdk_iot::Client {
    iot_in(url, access_key, REGION)
}

pub fn iot_in(url: &str, access_key: &str, region: &str) -> aws_sdk_iot::Client {
    let conf = aws_sdk_iot::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(access_key, "secret", None, None, "test"))
        .endpoint_url(url)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    aws_sdk_iot::Client::from_conf(conf)
}

pub fn cert(n: u32, status: &str) -> SeedCertificate {
    SeedCertificate {
        id: cert_id(n),
        status: status.to_string(),
        ..Default::default()
    }
}

pub fn seed_of(accounts: Vec<(&str, Vec<SeedCertificate>)>) -> Seed {
    let mut map = BTreeMap::new();
    for (account, certificates) in accounts {
        map.insert(
            account.to_string(),
            SeedAccount {
                certificates,
                ..Default::default()
            },
        );
    }
    Seed {
        region: REGION.to_string(),
        accounts: map,
    }
}

/// `seed` with these policies (default document) and plain things declared in `account`.
pub fn with_registry(mut seed: Seed, account: &str, policies: &[&str], things: &[&str]) -> Seed {
    let a = seed.accounts.entry(account.to_string()).or_default();
    a.policies
        .extend(policies.iter().map(|p| iot_sim::SeedPolicy {
            name: p.to_string(),
            document: None,
        }));
    a.things.extend(things.iter().map(|t| iot_sim::SeedThing {
        name: t.to_string(),
        ..Default::default()
    }));
    seed
}

/// (code, status) of an SDK error; transport errors give ("<no code>", 0).
pub fn err_info<E>(e: &aws_sdk_iot::error::SdkError<E, HttpResponse>) -> (String, u16)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().unwrap_or("<no code>").to_string();
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (code, status)
}

/// Asserts a call failed with this code and HTTP status.
#[macro_export]
macro_rules! assert_err {
    ($res:expr, $code:expr, $status:expr) => {{
        match $res {
            Ok(v) => panic!("expected {} but the call succeeded: {:?}", $code, v),
            Err(e) => {
                let (code, status) = $crate::common::err_info(&e);
                assert_eq!(
                    (code.as_str(), status),
                    ($code, $status),
                    "unexpected error {e:?}"
                );
            }
        }
    }};
}

/// (status, lower-cased headers, body).
pub type RawResponse = (u16, Vec<(String, String)>, String);

/// A minimal HTTP/1.1 exchange (Connection: close). Returns (status, headers, body).
pub fn raw_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<RawResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response head in {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == &name.to_ascii_lowercase())
        .map(|(_, v)| v.as_str())
}

/// SigV4-looking Authorization header for `access_key` (not signed).
pub fn auth_header(access_key: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20240101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=00"
    )
}
