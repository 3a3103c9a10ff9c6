//! `plan`: read-only categorisation of every certificate of the manifest.

use crate::cli::{GlobalArgs, PlanArgs};
use crate::error::{Error, ExitCode};

/// Runs `plan`.
pub async fn run(_global: &GlobalArgs, _args: PlanArgs) -> Result<ExitCode, Error> {
    Err(Error::Usage("plan is not implemented yet".into()))
}
