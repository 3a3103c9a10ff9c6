//! Load generator: many keep-alive HTTP/1.1 connections sending
//! DescribeCertificate / ListCertificates / UpdateCertificate requests as fast
//! as the simulator answers them.
//!
//! ```text
//! cargo run -p iot-sim --release --example throughput                 # in-process simulator
//! cargo run -p iot-sim --release --example throughput -- --url http://127.0.0.1:5599 \
//!     --connections 64 --seconds 10                                     # a running binary
//! ```
//! An external simulator must have quotas off (`--quota-scale 0`) and know the
//! certificates: seed it with `--seed` from the file this example prints with
//! `--print-seed`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iot_sim::{Seed, SeedAccount, SeedCertificate, SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ACCOUNT: &str = "111111111111";
const CERTS: u32 = 200;

fn cert_id(n: u32) -> String {
    format!("{:064x}", 0xbeef_0000u64 + n as u64)
}

fn seed() -> Seed {
    let certificates = (0..CERTS)
        .map(|n| SeedCertificate {
            id: cert_id(n),
            status: "ACTIVE".into(),
            policies: vec!["p".into()],
            ..Default::default()
        })
        .collect();
    let mut accounts = std::collections::BTreeMap::new();
    accounts.insert(
        ACCOUNT.to_string(),
        SeedAccount {
            certificates,
            ..Default::default()
        },
    );
    Seed {
        region: "us-east-1".into(),
        accounts,
    }
}

struct Opts {
    url: Option<String>,
    connections: usize,
    seconds: u64,
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        url: None,
        connections: 64,
        seconds: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => opts.url = args.next(),
            "--connections" => opts.connections = args.next().unwrap().parse().unwrap(),
            "--seconds" => opts.seconds = args.next().unwrap().parse().unwrap(),
            "--print-seed" => {
                println!("{}", serde_json::to_string_pretty(&seed()).unwrap());
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    opts
}

/// Reads one response; returns its status code.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let len: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn request(i: u64, addr: SocketAddr) -> String {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={ACCOUNT}/20240101/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=0"
    );
    let id = cert_id((i % CERTS as u64) as u32);
    let (method, path) = match i % 10 {
        0 => ("GET", "/certificates?pageSize=25".to_string()),
        1 => (
            "PUT",
            format!(
                "/certificates/{id}?newStatus={}",
                if i % 20 == 1 { "INACTIVE" } else { "ACTIVE" }
            ),
        ),
        _ => ("GET", format!("/certificates/{id}")),
    };
    format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n")
}

async fn run(addr: SocketAddr, opts: &Opts) {
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..opts.connections {
        let (ok, bad, stop) = (ok.clone(), bad.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut i = c as u64 * 7919;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                stream
                    .write_all(request(i, addr).as_bytes())
                    .await
                    .expect("write");
                match read_response(&mut stream, &mut buf).await {
                    Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => bad.fetch_add(1, Ordering::Relaxed),
                    Err(e) => panic!("connection failed: {e}"),
                };
            }
        }));
    }
    // warm-up second, then measure
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ok0, t0) = (ok.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(opts.seconds)).await;
    let (ok1, elapsed) = (ok.load(Ordering::Relaxed), t0.elapsed());
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let rate = (ok1 - ok0) as f64 / elapsed.as_secs_f64();
    println!(
        "{} connections, {:.1} s: {} ok responses, {:.0} req/s ({} non-200 in total)",
        opts.connections,
        elapsed.as_secs_f64(),
        ok1 - ok0,
        rate,
        bad.load(Ordering::Relaxed)
    );
}

fn main() {
    let opts = parse_args();
    let (sim, addr) = match &opts.url {
        Some(url) => (
            None,
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .parse()
                .expect("url like http://127.0.0.1:PORT"),
        ),
        None => {
            let mut config = SimConfig::unlimited();
            config.seeds.push(seed());
            let sim = Simulator::spawn(config).expect("simulator starts");
            let addr = sim.addr();
            (Some(sim), addr)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(addr, &opts));
    if let Some(sim) = sim {
        let stats = sim.stats();
        println!(
            "simulator: {} calls, peak in flight {}",
            stats.total_calls(),
            stats.peak_in_flight
        );
    }
}
