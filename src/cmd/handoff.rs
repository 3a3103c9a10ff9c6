//! `handoff`: one AWS IoT Job per target account, region and wave tells each certificate's
//! devices their target's endpoint; `--cleanup` removes the wave groups and the jobs whose
//! executions have all ended. The document is checked before any AWS call.

use crate::cli::{GlobalArgs, HandoffArgs};
use crate::error::{Error, ExitCode};
use crate::iot::JobSettings;
use crate::job_document::{DocumentTemplate, Fill};
use crate::lifecycle::handoff::{cleanup, Handoff, HandoffOptions};
use crate::manifest::Manifest;
use crate::run::FailedItems;
use crate::session::Session;

/// What a document is checked with before the targets' own endpoints are known.
const SAMPLE: Fill<'static> = Fill {
    endpoint: "example-ats.iot.us-east-1.amazonaws.com",
    account: "123456789012",
    region: "us-east-1",
};

/// Runs `handoff`.
pub async fn run(global: &GlobalArgs, args: HandoffArgs) -> Result<ExitCode, Error> {
    if args.cleanup {
        let manifest = Manifest::load(&args.manifest)?;
        let session = Session::connect(super::settings(global, &args.pacing)).await?;
        return cleanup(&session, &manifest, args.wave_size as usize).await;
    }
    let path = args.document.as_ref().expect("clap requires --document");
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let document = DocumentTemplate::parse(&text, &SAMPLE)
        .map_err(|e| Error::Usage(format!("--document {}: {e}", path.display())))?;
    let options = super::run_options(
        global,
        &args.manifest,
        &args.files,
        &args.pacing,
        &args.limits,
        0,
        FailedItems::retry_if(args.retry_failed),
    );
    let handoff = HandoffOptions {
        targets: super::target_credentials(&args.targets)
            .expect("Cli::parse_checked requires target credentials"),
        document,
        wave_size: args.wave_size as usize,
        settings: JobSettings {
            per_minute: args.rollout_per_minute,
            abort_failed_percent: args.abort_failed_percent,
            timeout_minutes: args.job_timeout,
        },
    };
    crate::run::run::<Handoff>(options, handoff).await
}
