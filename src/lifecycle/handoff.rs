//! `handoff`: tells each certificate's devices their target's endpoint through an AWS IoT Job
//! sent from the source account, before anything is retired or transferred.
//!
//! The certificates of each target account and region are cut into waves of `--wave-size`
//! (manifest order). Each wave has a static thing group in the source and one CONTINUOUS
//! job aimed at it, both named from the manifest's digest, the target and the wave number:
//! a rerun, a lost reply or a kill -9 finds the same names, so it never sends a second job
//! (a CreateJob answered 409 is checked with DescribeJob: the job of that id must target the
//! wave's group). The group and the job are made by the first certificate of the wave this
//! run reaches, write-ahead in its ledger; then each certificate's things join the group,
//! and the job reaches each as it joins. A thing that cannot join (it is in 10 groups
//! already, say) fails its certificate with AWS's reason: never skipped silently.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use super::change::{Change, WaveJob};
use super::check::Side;
use super::item::{Item, StepEnd};
use super::workflow::{accounts_of, AfterSettle, LedgerSpec, Resume, Setup, Work, Workflow};
use crate::carry::snapshot::CarriedGroup;
use crate::certificate::cert_arn;
use crate::error::Error;
use crate::iot::{AccountClients, Iot, JobSettings};
use crate::job_document::{DocumentTemplate, Fill};
use crate::ledger::{
    ItemRecord, ItemState, LedgerError, LedgerKind, OpenIntent, Outcome, Stage, UndoHistory, Via,
};
use crate::manifest::ManifestRow;
use crate::pipeline::ItemEnd;
use crate::session::TargetCredentials;

/// The ledger `handoff` writes (its changes are not undone by the tool: `--cleanup` ends
/// them).
pub const HANDOFF_LEDGER: LedgerSpec = LedgerSpec {
    kind: LedgerKind::Handoff,
    undo: UndoHistory::Drop,
};

/// The error code of a certificate without a thing: no device a job could reach.
pub const NO_THING: &str = "NoThing";

/// What every job and group of a manifest's handoff is named from: `icm-` and the first 8
/// hex digits of the manifest's SHA-256 (the same manifest, the same names).
pub fn handoff_prefix(manifest_sha256: &str) -> String {
    format!("icm-{}", &manifest_sha256[..8.min(manifest_sha256.len())])
}

/// The job id, and the name of the group it targets, of one wave (64 characters at most:
/// 4 + 8 + 1 + 12 + 1 + region + 2 + wave).
pub fn wave_name(prefix: &str, account: &str, region: &str, wave: usize) -> String {
    format!("{prefix}-{account}-{region}-w{wave}")
}

/// What `handoff` tells the workflow.
#[derive(Debug, Clone)]
pub struct HandoffOptions {
    /// The target accounts' credentials (DescribeEndpoint only).
    pub targets: TargetCredentials,
    /// The job document, checked.
    pub document: DocumentTemplate,
    /// Certificates per wave (per target account and region).
    pub wave_size: usize,
    /// Rollout, abort and timeout of each job.
    pub settings: JobSettings,
}

/// One wave: its job (whose id is also its group's name).
struct Wave {
    job: WaveJob,
    made: OnceCell<()>,
}

/// Why a wave could not be made ready.
enum NotReady {
    Ledger(LedgerError),
    Step(StepEnd),
}

/// Sends the handoff jobs and puts each certificate's things in its wave's group.
pub struct Handoff {
    source: AccountClients,
    accounts: std::collections::HashSet<String>,
    /// Certificate id -> its wave.
    waves: HashMap<String, Arc<Wave>>,
}

impl Handoff {
    async fn hand_off(&self, work: &Work<'_>) -> Result<ItemEnd, LedgerError> {
        let row = work.row;
        let Some(wave) = self.waves.get(&row.certificate_id) else {
            return Ok(ItemEnd::Done);
        };
        let iot = self.source.for_row(row);
        let item = work.item(Side::Source);
        let scope = iot.scope();
        let arn = cert_arn(&scope.region, &scope.account, &row.certificate_id);
        let things = match iot.principal_things(&arn).await {
            Ok(t) => t,
            Err(f) => return item.fail_call(Stage::Handoff, &f).await,
        };
        if things.is_empty() {
            let message = "the certificate has no thing: a job reaches things, so no device \
                           of it can be told its new endpoint; left to the operator"
                .to_string();
            return item.fail(Stage::Handoff, NO_THING, message).await;
        }
        match self.ready(&item, iot, wave, &arn).await {
            Ok(()) => {}
            Err(NotReady::Ledger(e)) => return Err(e),
            Err(NotReady::Step(StepEnd::Refused(f))) => {
                return item.fail_call(Stage::Handoff, &f).await
            }
            Err(NotReady::Step(_)) => return Ok(ItemEnd::InDoubt),
        }
        for thing in things {
            let join = Change::AddThingToGroup {
                thing,
                group: wave.job.group.clone(),
            };
            match item.step(iot, &join, &arn).await? {
                StepEnd::Done => {}
                StepEnd::Refused(f) => return item.fail_call(Stage::Handoff, &f).await,
                StepEnd::InDoubt => return Ok(ItemEnd::InDoubt),
            }
        }
        item.terminal(Stage::Handoff, Outcome::HandedOff, Via::Call, None)
            .await?;
        Ok(ItemEnd::Done)
    }

    /// The wave's group and job exist (made once per run, by whichever of its certificates
    /// comes first; a failure leaves it to the next one).
    async fn ready(
        &self,
        item: &Item<'_>,
        iot: &Iot,
        wave: &Wave,
        arn: &str,
    ) -> Result<(), NotReady> {
        wave.made
            .get_or_try_init(|| async {
                let group = Change::CreateThingGroup(CarriedGroup {
                    name: wave.job.group.clone(),
                    description: Some(format!(
                        "iot-cert-migrate handoff wave (job {})",
                        wave.job.id
                    )),
                    ..Default::default()
                });
                for change in [group, Change::CreateJob(wave.job.clone())] {
                    match item.step(iot, &change, arn).await {
                        Ok(StepEnd::Done) => {}
                        Ok(other) => return Err(NotReady::Step(other)),
                        Err(e) => return Err(NotReady::Ledger(e)),
                    }
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }
}

impl Workflow for Handoff {
    type Options = HandoffOptions;
    const COMMAND: &'static str = "handoff";

    fn ledger(_: &HandoffOptions) -> LedgerSpec {
        HANDOFF_LEDGER
    }

    async fn connect(setup: &mut Setup<'_>, options: HandoffOptions) -> Result<Self, Error> {
        let source = setup.own_clients().await?;
        let targets = setup
            .session
            .target_clients(setup.manifest, &options.targets, "--target-profile")
            .await?;
        let default_region = setup.session.region();
        // Each target's document, with its own endpoint, before any change.
        let mut documents: HashMap<(String, Option<String>), String> = HashMap::new();
        for t in &targets {
            for region in setup.manifest.regions() {
                let iot = t.for_region(region.as_deref());
                let endpoint = iot.device_endpoint().await.map_err(|f| {
                    Error::Aws(format!(
                        "cannot read the device endpoint of {} ({}): {f}",
                        t.account(),
                        iot.scope().region
                    ))
                })?;
                setup.device_endpoints.insert(
                    format!("{} ({})", t.account(), iot.scope().region),
                    endpoint.clone(),
                );
                let fill = Fill {
                    endpoint: &endpoint,
                    account: t.account(),
                    region: &iot.scope().region,
                };
                let doc = options
                    .document
                    .fill(&fill)
                    .map_err(|e| Error::Usage(format!("--document: {e}")))?;
                documents.insert((t.account().to_string(), region), doc);
            }
        }
        let accounts = accounts_of(&targets);
        let prefix = handoff_prefix(setup.manifest.sha256());
        let mut waves = HashMap::new();
        let mut made: HashMap<String, Arc<Wave>> = HashMap::new();
        let mut position: HashMap<(String, Option<String>), usize> = HashMap::new();
        for row in setup.manifest.rows()? {
            let row = row?;
            if !accounts.contains(&row.target_account) {
                continue;
            }
            let key = (row.target_account.clone(), row.region.clone());
            let n = position.entry(key.clone()).or_default();
            let wave = *n / options.wave_size.max(1) + 1;
            *n += 1;
            let region = row.region.clone().unwrap_or_else(|| default_region.clone());
            let name = wave_name(&prefix, &row.target_account, &region, wave);
            let w = made.entry(name.clone()).or_insert_with(|| {
                Arc::new(Wave {
                    job: WaveJob {
                        id: name.clone(),
                        group: name.clone(),
                        document: documents.get(&key).cloned().unwrap_or_default(),
                        settings: options.settings.clone(),
                    },
                    made: OnceCell::new(),
                })
            });
            waves.insert(row.certificate_id.clone(), Arc::clone(w));
        }
        Ok(Handoff {
            source,
            accounts,
            waves,
        })
    }

    fn verb(&self) -> &'static str {
        "handing off"
    }

    /// Rows of target accounts without credentials here are left to another run.
    fn in_scope(&self, _rec: Option<&ItemRecord>, row: &ManifestRow) -> bool {
        self.accounts.contains(&row.target_account)
    }

    fn wants(&self, rec: Option<&ItemRecord>, _row: &ManifestRow) -> bool {
        rec.map(|r| r.state) != Some(ItemState::HandedOff)
    }

    fn settler(&self, row: &ManifestRow, _open: &OpenIntent) -> Option<(&Iot, Side)> {
        Some((self.source.for_row(row), Side::Source))
    }

    /// Every step is idempotent by name: the certificate starts again from its things.
    fn after_settle(&self, _row: &ManifestRow, _open: &OpenIntent, _took: bool) -> AfterSettle {
        AfterSettle::Continue(Resume::Start)
    }

    async fn process(&self, work: Work<'_>) -> Result<ItemEnd, LedgerError> {
        self.hand_off(&work).await
    }
}

/// What `--cleanup` found of one wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cleaned {
    /// Its job (if any) and group are gone.
    Removed,
    /// Executions are still pending (or the job is being cancelled): kept.
    Kept,
}

/// `handoff --cleanup`: for every wave the manifest makes with `wave_size`, deletes the job
/// once none of its executions is QUEUED or IN_PROGRESS (cancelling it first: a CONTINUOUS
/// job never completes by itself), then the wave's group. A wave with pending executions is
/// kept (its devices have not answered yet) and the run exits 4. Every call is idempotent:
/// a job or group already gone is fine.
pub async fn cleanup(
    session: &crate::session::Session,
    manifest: &crate::manifest::Manifest,
    wave_size: usize,
) -> Result<crate::error::ExitCode, Error> {
    use crate::error::ExitCode;
    let clients = session.own_clients(manifest.regions()).await?;
    let default_region = session.region();
    let prefix = handoff_prefix(manifest.sha256());
    let mut waves: std::collections::BTreeMap<String, Option<String>> = Default::default();
    let mut position: HashMap<(String, Option<String>), usize> = HashMap::new();
    for row in manifest.rows()? {
        let row = row?;
        let n = position
            .entry((row.target_account.clone(), row.region.clone()))
            .or_default();
        let wave = *n / wave_size.max(1) + 1;
        *n += 1;
        let region = row.region.clone().unwrap_or_else(|| default_region.clone());
        waves.insert(
            wave_name(&prefix, &row.target_account, &region, wave),
            row.region.clone(),
        );
    }
    let mut kept = 0usize;
    for (name, region) in &waves {
        let iot = clients.for_region(region.as_deref());
        let end = clean_wave(iot, name)
            .await
            .map_err(|f| Error::Aws(format!("handoff --cleanup: wave {name}: {f}")))?;
        match end {
            Cleaned::Removed => println!("{name}: removed (job and thing group)"),
            Cleaned::Kept => {
                kept += 1;
                println!("{name}: kept: executions still pending (or the job is being cancelled); run --cleanup again later");
            }
        }
    }
    Ok(if kept > 0 {
        ExitCode::Stopped
    } else {
        ExitCode::Success
    })
}

async fn clean_wave(iot: &Iot, name: &str) -> Result<Cleaned, crate::iot::CallFailure> {
    if let Some(job) = iot.describe_job(name).await? {
        if job.status == "DELETION_IN_PROGRESS" {
            return Ok(Cleaned::Kept);
        }
        if iot.pending_executions(name).await? > 0 {
            return Ok(Cleaned::Kept);
        }
        if job.status == "IN_PROGRESS" {
            iot.cancel_job(name).await?;
        }
        match iot.delete_job(name).await {
            Ok(()) => {}
            // still cancelling: not deletable without force yet
            Err(f) if f.error.http_status == Some(409) => return Ok(Cleaned::Kept),
            Err(f) => return Err(f),
        }
    }
    iot.delete_thing_group(name).await?;
    Ok(Cleaned::Removed)
}
