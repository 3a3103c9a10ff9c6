//! `select`: read-only; writes a manifest of the source account's certificates that match
//! the filters. Every input and the output path are checked before the first AWS call.

use std::time::Instant;

use crate::cli::{GlobalArgs, OutputFormat, SelectArgs};
use crate::error::{Error, ExitCode};
use crate::output::{self, Render};
use crate::select::{
    self, CallTicker, Destination, Exclusions, Filters, FleetQuery, GroupFilter, Region,
    SelectReport,
};
use crate::session::Session;

/// The filters of the command line (clap checked each value, and that they can hold
/// together).
fn filters(args: &SelectArgs) -> Filters {
    let (statuses, default_statuses) = Filters::statuses(&args.statuses);
    let mut attributes = args.attributes.clone();
    attributes.sort();
    attributes.dedup();
    Filters {
        target_account: args.target_account.clone(),
        statuses,
        default_statuses,
        ca_certificate_id: args.ca_certificate_id.clone(),
        thing_group: args.thing_group.clone().map(|name| GroupFilter {
            name,
            recursive: !args.no_recursive,
        }),
        thing_type: args.thing_type.clone(),
        attributes,
        query: FleetQuery::new(
            args.query.clone(),
            match (args.connected, args.disconnected) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        ),
        created_after: args.created_after.clone(),
        created_before: args.created_before.clone(),
        limit: args.limit,
        transfer_message: args.transfer_message.clone().filter(|m| !m.is_empty()),
    }
}

/// Runs `select`.
pub async fn run(global: &GlobalArgs, args: SelectArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    // select works in every region --region names; the first is the default.
    let regions = global.region.clone();
    let settings = super::settings_in(global, &args.pacing, regions.first().cloned());
    let filters = filters(&args);
    let exclusions = Exclusions::load(&args.exclude_manifests)?;
    let destination = Destination::open(&args.out, args.force)?;

    let session = Session::connect(settings).await?;
    let regions = if regions.is_empty() {
        vec![session.region()]
    } else {
        regions
    };
    let account = session.caller_account().await?;
    if account == filters.target_account {
        return Err(Error::Usage(format!(
            "--target-account {account} is the account of the credentials (the source); name the account the certificates move to"
        )));
    }
    let clients = session.clients(&account, regions.iter().cloned().map(Some), &regions[0]);
    let searched: Vec<Region> = regions
        .iter()
        .map(|r| Region {
            name: r.clone(),
            iot: clients.for_region(Some(r)),
        })
        .collect();
    let progress = super::progress(global);
    // Lines where a bar would show, or where they are asked for: none in a pipe by default.
    let ticker = progress
        .shows_lines()
        .then(|| CallTicker::start(session.ctx.clone(), progress.interval));
    let selection = select::select(
        &searched,
        &filters,
        &exclusions,
        args.pacing.concurrency,
        session.settings.aws.profile.as_deref(),
    )
    .await?;
    drop(ticker);

    let manifest = destination.display();
    let to_stdout = destination.is_stdout();
    destination.write(&selection.rows, selection.with_region)?;
    let summary = SelectReport {
        command: "select",
        manifest,
        target_account: filters.target_account.clone(),
        regions,
        selected: selection.rows.len(),
        filters: selection.filters,
        left_out: selection.left_out,
        warnings: selection.warnings,
        calls: session
            .ctx
            .counts()
            .into_iter()
            .map(|(op, c)| (op.name().to_string(), c))
            .collect(),
        elapsed_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    };
    // The summary is the command's output (stdout), like every command's; only when the
    // manifest itself goes to stdout does the summary go to stderr.
    match (global.output, to_stdout) {
        (_, false) => output::emit(global.output, &summary),
        (OutputFormat::Json, true) => {
            if let Ok(line) = serde_json::to_string(&summary) {
                eprintln!("{line}");
            }
        }
        (OutputFormat::Text, true) => {
            let _ = summary.write_text(&mut std::io::stderr().lock());
        }
    }
    Ok(ExitCode::Success)
}
