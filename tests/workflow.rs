//! The shape proven by a workflow the tool does not have: [`Inspect`] reads each certificate
//! (DescribeCertificate) and records it inspected, and nothing else. Driven by the real run
//! against the simulator, it gets everything the commands get without a line of its own:
//! the manifest and ledger checks, pacing, lanes, an open intent settled before it sees the
//! certificate, a rerun that does nothing twice, the summary and the exit code.
//!
//! A test binary of its own: it sets the process's AWS environment (the run's credentials
//! come from it), which no other test may be reading at the time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iot_cert_migrate::aws::AwsOptions;
use iot_cert_migrate::certificate::CertStatus;
use iot_cert_migrate::error::{Error, ExitCode};
use iot_cert_migrate::iot::{AccountClients, Iot};
use iot_cert_migrate::ledger::{
    Action, Details, Event, ItemRecord, ItemState, Ledger, LedgerError, LedgerKind, OpenIntent,
    OpenOptionsLedger, Outcome, Stage, UndoHistory, Via,
};
use iot_cert_migrate::lifecycle::{AfterSettle, LedgerSpec, Resume, Setup, Side, Work, Workflow};
use iot_cert_migrate::manifest::{Manifest, ManifestRow};
use iot_cert_migrate::output::OutputFormat;
use iot_cert_migrate::pipeline::ItemEnd;
use iot_cert_migrate::progress::{ProgressMode, ProgressSettings};
use iot_cert_migrate::run::{self, FailedItems, RunFiles, RunOptions};
use iot_cert_migrate::session::Settings;
use iot_cert_migrate::stop::RunLimits;
use iot_sim::{Seed, SeedAccount, SeedCertificate, SimConfig, Simulator};

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const REGION: &str = "us-east-1";
const CERTIFICATES: u64 = 40;

/// What the test sees of the workflow: each certificate it was handed, and where it started.
type Log = Arc<Mutex<Vec<(String, Resume)>>>;

// --- the workflow: everything it takes to add one ---------------------------------------

/// Reads each certificate and records it inspected (a retire ledger's terminal outcome).
struct Inspect {
    clients: AccountClients,
    log: Log,
}

impl Workflow for Inspect {
    type Options = Log;
    const COMMAND: &'static str = "inspect";

    fn ledger(_: &Log) -> LedgerSpec {
        LedgerSpec {
            kind: LedgerKind::Retire,
            undo: UndoHistory::Drop,
        }
    }

    async fn connect(setup: &mut Setup<'_>, log: Log) -> Result<Self, Error> {
        Ok(Inspect {
            clients: setup.own_clients().await?,
            log,
        })
    }

    fn verb(&self) -> &'static str {
        "inspecting"
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        rec.is_none_or(|r| r.state != ItemState::Retired)
    }

    fn settler(&self, row: &ManifestRow, _open: &OpenIntent) -> Option<(&Iot, Side)> {
        Some((self.clients.for_row(row), Side::Source))
    }

    fn after_settle(&self, _row: &ManifestRow, _open: &OpenIntent, took: bool) -> AfterSettle {
        AfterSettle::Continue(if took {
            Resume::AfterMainCall
        } else {
            Resume::Start
        })
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.log
            .lock()
            .unwrap()
            .push((work.row.certificate_id.clone(), work.resume));
        let item = work.item(Side::Source);
        match self
            .clients
            .for_row(work.row)
            .describe(&work.row.certificate_id)
            .await
        {
            Ok(Some(_)) => {
                item.terminal(Stage::Retire, Outcome::Retired, Via::Call, None)
                    .await?;
                Ok(ItemEnd::Done)
            }
            Ok(None) => {
                item.fail(Stage::Retire, "NotFound", "not in the source".into())
                    .await
            }
            Err(f) => item.fail_call(Stage::Retire, &f).await,
        }
    }
}

// --- the test ----------------------------------------------------------------------------

fn cert_id(n: u64) -> String {
    format!("{:064x}", 0xabcd_0000_0000 + n)
}

fn options(dir: &std::path::Path, url: String) -> RunOptions {
    RunOptions {
        manifest: dir.join("m.csv"),
        files: RunFiles::default(),
        settings: Settings {
            aws: AwsOptions {
                endpoint_url: Some(url),
                connect_timeout: Duration::from_secs(3),
                read_timeout: Duration::from_secs(20),
                ..AwsOptions::default()
            },
            rates: Default::default(),
            retry: Default::default(),
            breaker: Default::default(),
        },
        output: OutputFormat::Json,
        progress: ProgressSettings {
            mode: ProgressMode::Never,
            interval: Duration::from_secs(30),
            interval_given: false,
            quiet: true,
        },
        limits: RunLimits {
            max_duration: None,
            max_items: None,
            grace: Duration::from_secs(10),
        },
        concurrency: 8,
        canary: 1,
        failed: FailedItems::Skip,
    }
}

#[tokio::test]
async fn a_new_workflow_gets_resume_selection_and_the_ledger_from_the_run() {
    // Before any thread reads the environment: the run's credentials come from it.
    let dir = tempfile::tempdir().unwrap();
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", SOURCE),
        ("AWS_SECRET_ACCESS_KEY", "not-a-secret"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }
    std::env::set_var("AWS_CONFIG_FILE", dir.path().join("no-config"));
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        dir.path().join("no-credentials"),
    );

    let sim = Simulator::spawn(SimConfig::unlimited()).unwrap();
    let ids: Vec<String> = (0..CERTIFICATES).map(cert_id).collect();
    let certificates = ids
        .iter()
        .map(|id| SeedCertificate {
            id: id.clone(),
            status: "INACTIVE".into(),
            ..Default::default()
        })
        .collect();
    let account = SeedAccount {
        certificates,
        ..Default::default()
    };
    sim.seed(Seed {
        region: REGION.into(),
        accounts: [(SOURCE.into(), account)].into(),
    })
    .unwrap();
    let mut manifest = String::from("certificate_id,target_account\n");
    for id in &ids {
        manifest.push_str(&format!("{id},{TARGET}\n"));
    }
    std::fs::write(dir.path().join("m.csv"), manifest).unwrap();

    // An earlier run left a deactivation of the first certificate open; it took effect (the
    // certificate is INACTIVE).
    let ledger_path = dir.path().join("m.retire-ledger.jsonl");
    let sha = Manifest::load(&dir.path().join("m.csv"))
        .unwrap()
        .sha256()
        .to_string();
    let ledger = Ledger::open(
        &ledger_path,
        OpenOptionsLedger {
            kind: LedgerKind::Retire,
            manifest_path: &dir.path().join("m.csv"),
            manifest_sha256: &sha,
            undo: UndoHistory::Drop,
        },
    )
    .unwrap();
    let mut ledger = ledger;
    ledger.start_run(None).unwrap();
    let (writer, task) = ledger.into_writer();
    let details = Details {
        action: Some(Action::Deactivate),
        previous_status: Some(CertStatus::Active),
        ..Default::default()
    };
    let intent = Event::new(&ids[0], Some(TARGET), None, Stage::Retire, Outcome::Intent);
    writer.record(intent.with(details)).await.unwrap();
    drop(writer);
    task.await.unwrap().unwrap();

    let log = Log::default();
    let code = run::run::<Inspect>(options(dir.path(), sim.url()), log.clone())
        .await
        .unwrap();
    assert_eq!(code, ExitCode::Success);
    let seen = std::mem::take(&mut *log.lock().unwrap());
    let mut handed: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    handed.sort_unstable();
    assert_eq!(
        handed,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "each once"
    );
    // The open intent was settled by the run, first, and the workflow told it took effect.
    assert_eq!(seen[0], (ids[0].clone(), Resume::AfterMainCall));
    assert!(
        seen[1..].iter().all(|(_, r)| *r == Resume::Start),
        "{seen:?}"
    );
    let text = std::fs::read_to_string(&ledger_path).unwrap();
    let settled = text
        .lines()
        .find(|l| l.contains(&ids[0]) && l.contains("\"outcome\":\"done\""))
        .unwrap_or_else(|| panic!("no settled intent in\n{text}"));
    assert!(settled.contains("\"via\":\"reconciled\""), "{settled}");
    // One read to settle the intent, one per certificate to inspect it.
    let describes = sim.stats().calls_of("DescribeCertificate");
    assert_eq!(describes, CERTIFICATES + 1);

    // A rerun finds nothing left to do and asks AWS nothing.
    let code = run::run::<Inspect>(options(dir.path(), sim.url()), log.clone())
        .await
        .unwrap();
    assert_eq!(code, ExitCode::Success);
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(sim.stats().calls_of("DescribeCertificate"), describes);
}
