//! `muster target ...`, `muster sync ...` and `muster explain user
//! --target`: downstream targets and their delivery, acting on the data
//! directory directly through the procedures the admin API shares
//! ([`muster_sync::Targets`]).

use std::collections::HashSet;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use muster_core::{Limits, Service};
use muster_store::sync::DeadLetter;
use muster_store::TenantId;
use muster_sync::secrets::SecretKey;
use muster_sync::{Explanation, Reconciled, SyncError, TargetView, Targets};
use muster_targets::{DocumentError, TargetDocument, TargetKind};
use serde_json::{json, Value};

use crate::{
    cli_actor, open_existing_store, open_store, print_table, refused, rules, say, DataDir,
};

/// Manage downstream targets (SCIM services, CSV directories).
#[derive(Subcommand)]
pub(crate) enum TargetCommand {
    /// Check a target document and store it (created or replaced).
    ///
    /// Prints the stored target, secrets redacted. A refused document
    /// prints every problem as `field: reason` on standard error and exits
    /// with status 2. Secret values (`auth.token`, `auth.clientSecret`) are
    /// sealed with the data directory's `secrets.key` before they are
    /// stored; `{"env": "VARIABLE"}` stores only the variable's name; a
    /// `{"redacted": true}` secret keeps the one stored.
    #[command(after_help = "Examples:\n  \
        muster target apply --data-dir /var/lib/muster genesys.json\n  \
        muster target apply --check five9-export.json\n  \
        cat target.json | muster target apply -")]
    Apply {
        #[command(flatten)]
        data: DataDir,
        /// The target document (JSON); `-` reads standard input.
        file: PathBuf,
        /// Only check the document against the tenant's schemas; store nothing.
        #[arg(long)]
        check: bool,
    },
    /// List the targets: kind, paused, queue depth, dead letters, last success.
    #[command(after_help = "Example:\n  muster target list --data-dir /var/lib/muster")]
    List {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON (each target as `target show` prints it) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one target's document (secrets redacted) and state as JSON.
    #[command(after_help = "Example:\n  muster target show genesys")]
    Show {
        #[command(flatten)]
        data: DataDir,
        /// The target's name.
        name: String,
    },
    /// Remove a target.
    ///
    /// Its delivery state and its place in the change feed go too. Nothing
    /// is removed at the target itself.
    #[command(after_help = "Example:\n  muster target remove genesys")]
    Remove {
        #[command(flatten)]
        data: DataDir,
        /// The target's name.
        name: String,
    },
}

/// Watch and steer delivery to targets.
#[derive(Subcommand)]
pub(crate) enum SyncCommand {
    /// Show each target's queue, errors, throttling and pause.
    ///
    /// Per target: queue depth, oldest pending change, last success,
    /// errors (and the last one), rate-limit state (throttled until),
    /// paused or not (and why), dead letters.
    #[command(after_help = "Examples:\n  \
        muster sync status\n  \
        muster sync status --target genesys --json")]
    Status {
        #[command(flatten)]
        data: DataDir,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the deliveries retrying cannot fix.
    ///
    /// Each with the request, the answer and why. Fix the cause, then
    /// `muster sync retry ID` (or `muster sync discard ID`).
    #[command(after_help = "Examples:\n  \
        muster sync dead-letters\n  \
        muster sync dead-letters --target genesys --json")]
    DeadLetters {
        #[command(flatten)]
        data: DataDir,
        /// Only this target's.
        #[arg(long)]
        target: Option<String>,
        /// Print JSON (with the requests and answers) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a dead letter's resource again, now.
    ///
    /// The resource is sent as it is now; the dead letter is removed, and a
    /// new one is made if it fails again.
    #[command(after_help = "Example:\n  muster sync retry 42")]
    Retry {
        #[command(flatten)]
        data: DataDir,
        /// The dead letter's number (from `muster sync dead-letters`).
        id: u64,
    },
    /// Drop a dead letter without delivering it again.
    #[command(after_help = "Example:\n  muster sync discard 42")]
    Discard {
        #[command(flatten)]
        data: DataDir,
        /// The dead letter's number (from `muster sync dead-letters`).
        id: u64,
    },
    /// Resume a paused target.
    ///
    /// When the deletion guard paused it, this confirms the removals that
    /// tripped it: check them first (`muster sync status`, `muster sync
    /// reconcile --dry-run`).
    #[command(after_help = "Example:\n  muster sync resume genesys")]
    Resume {
        #[command(flatten)]
        data: DataDir,
        /// The target's name.
        target: String,
    },
    /// Pause deliveries to a target.
    ///
    /// Changes wait in its queue until `muster sync resume`.
    #[command(
        after_help = "Example:\n  muster sync pause genesys --reason \"maintenance window\""
    )]
    Pause {
        #[command(flatten)]
        data: DataDir,
        /// The target's name.
        target: String,
        /// Why (shown by `muster sync status`).
        #[arg(long)]
        reason: String,
    },
    /// Compare a target with Muster and fix drift (or, with --dry-run, list it).
    ///
    /// Every user (and group) in scope is created, updated or reactivated;
    /// every one the target holds from Muster that left Muster or the scope
    /// is deactivated or deleted (as the target's `deletion` says). A
    /// progress bar shows on a terminal; a summary follows. With --dry-run
    /// nothing is written and the requests it would send are listed as
    /// JSON. On a csv target, writes a full export.
    #[command(after_help = "Examples:\n  \
        muster sync reconcile --target genesys --dry-run\n  \
        muster sync reconcile --target genesys")]
    Reconcile {
        #[command(flatten)]
        data: DataDir,
        /// The target.
        #[arg(long)]
        target: String,
        /// Only list what would be sent; send no write.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Provision one user on demand: deliver it to a target now.
    ///
    /// With --dry-run only the look-ups are sent, and the writes it would
    /// send (method, url, body) are printed as JSON.
    #[command(after_help = "Examples:\n  \
        muster sync user agent.one@contoso.com --target genesys --dry-run\n  \
        muster sync user agent.one@contoso.com --target genesys")]
    User {
        #[command(flatten)]
        data: DataDir,
        /// The user's userName (or id).
        user: String,
        /// The target.
        #[arg(long)]
        target: String,
        /// Only print the writes it would send.
        #[arg(long)]
        dry_run: bool,
        /// Print the outcome and the requests as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write a full export of a csv target now.
    ///
    /// One file in the target's directory with every user in scope (written
    /// to a temporary name, then renamed; listed in its `runs.log`); prints
    /// the file's path.
    #[command(after_help = "Example:\n  muster sync export --target five9")]
    Export {
        #[command(flatten)]
        data: DataDir,
        /// The csv target.
        #[arg(long)]
        target: String,
    },
}

/// Explain a user.
#[derive(Subcommand)]
pub(crate) enum ExplainCommand {
    /// Why a user holds each entitlement; with --target, how it is delivered.
    ///
    /// Without --target: why the user holds each entitlement, and why the
    /// other rules did not match (JSON). With --target: for each of the
    /// target's attributes, the expression, the source values (with the
    /// client that set each and when), the value now and the value sent;
    /// above them the target's id for the user, when it was delivered and
    /// what the target answered.
    #[command(after_help = "Examples:\n  \
        muster explain user agent.one@contoso.com\n  \
        muster explain user agent.one@contoso.com --target genesys")]
    User {
        #[command(flatten)]
        data: DataDir,
        /// The user's userName (or id).
        user: String,
        /// Explain the user's delivery to this target instead of its entitlements.
        #[arg(long)]
        target: Option<String>,
        /// Print JSON instead of a table (the entitlement explain is always JSON).
        #[arg(long)]
        json: bool,
    },
}

/// A target document refused: its problems, one `field: reason` per line
/// (the command exits with status 2).
#[derive(Debug)]
pub(crate) struct Refused(DocumentError);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for problem in &self.0.problems {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            if problem.field.is_empty() {
                write!(f, "document: {}", problem.reason)?;
            } else {
                write!(f, "{problem}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// A sync error as the CLI reports it: a refused document as [`Refused`].
fn failed(error: SyncError) -> anyhow::Error {
    match error {
        SyncError::Document(document) => Refused(document).into(),
        SyncError::Core(core) => refused(core),
        other => anyhow!("{other}"),
    }
}

/// The sync procedures over the database in `data_dir` (created when
/// `create`), with the key that seals target secrets.
async fn targets(data: &DataDir, create: bool) -> Result<Targets> {
    let store = if create {
        open_store(data).await?
    } else {
        open_existing_store(data).await?
    };
    let data_dir = &data.data_dir;
    let key = SecretKey::load_or_create(data_dir).map_err(failed)?;
    let service = Arc::new(Service::new(store, Limits::default()));
    let export_root = std::env::var_os("MUSTER_EXPORT_ROOT")
        .map_or_else(|| data_dir.join("exports"), std::path::PathBuf::from);
    Ok(Targets::new(service, key, export_root))
}

/// The text of a document file, `-` being standard input.
fn read_input(file: &Path) -> Result<String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

/// `muster target ...`.
impl TargetCommand {
    /// Where the command works.
    fn data(&self) -> &DataDir {
        match self {
            TargetCommand::Apply { data, .. }
            | TargetCommand::List { data, .. }
            | TargetCommand::Show { data, .. }
            | TargetCommand::Remove { data, .. } => data,
        }
    }
}

pub(crate) async fn target(command: TargetCommand) -> Result<()> {
    let tenant = command.data().tenant()?;
    match command {
        TargetCommand::Apply { data, file, check } => {
            let text = read_input(&file)?;
            let document = TargetDocument::from_json(&text).map_err(Refused)?;
            if check {
                let targets = targets(&data, false).await?;
                let name = document.name.clone();
                targets.check(&tenant, document).await.map_err(failed)?;
                say(format_args!(
                    "{}: valid (target '{name}'); nothing was stored",
                    file.display()
                ))?;
            } else {
                let targets = targets(&data, true).await?;
                let view = targets
                    .apply(&tenant, &cli_actor(), None, document)
                    .await
                    .map_err(failed)?;
                say(serde_json::to_string_pretty(&view)?)?;
            }
        }
        TargetCommand::List { data, json } => {
            let targets = targets(&data, false).await?;
            let views = targets.list(&tenant).await.map_err(failed)?;
            if json {
                say(serde_json::to_string_pretty(&views)?)?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|view| {
                    vec![
                        view.document.name.clone(),
                        kind(view.document.kind).to_owned(),
                        if view.paused.is_some() { "yes" } else { "no" }.to_owned(),
                        view.queue_depth.to_string(),
                        view.dead_letters.to_string(),
                        dash(view.state.last_success.as_deref()),
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME",
                    "KIND",
                    "PAUSED",
                    "QUEUE",
                    "DEAD LETTERS",
                    "LAST SUCCESS",
                ],
                &rows,
            )?;
        }
        TargetCommand::Show { data, name } => {
            let targets = targets(&data, false).await?;
            let view = targets.get(&tenant, &name).await.map_err(failed)?;
            say(serde_json::to_string_pretty(&view)?)?;
        }
        TargetCommand::Remove { data, name } => {
            let targets = targets(&data, false).await?;
            targets
                .remove(&tenant, &cli_actor(), &name)
                .await
                .map_err(failed)?;
            eprintln!("removed target '{name}' (nothing was changed at the target itself)");
        }
    }
    Ok(())
}

/// A kind as the documents spell it.
fn kind(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Scim => "scim",
        TargetKind::Csv => "csv",
        TargetKind::GenesysCloud => "genesys-cloud",
        TargetKind::NiceCxone => "nice-cxone",
        TargetKind::Five9 => "five9",
    }
}

/// A value, or `-` when there is none.
fn dash(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), str::to_owned)
}

/// One target's status as `sync status --json` prints it.
fn status_json(view: &TargetView) -> Value {
    json!({
        "name": view.document.name,
        "kind": kind(view.document.kind),
        "queueDepth": view.queue_depth,
        "oldestPending": view.oldest_pending,
        "lastSuccess": view.state.last_success,
        "errors": view.state.errors,
        "lastError": view.state.last_error,
        "lastErrorAt": view.state.last_error_at,
        "throttledUntil": view.state.throttled_until,
        "paused": view.paused.is_some(),
        "pausedReason": view.paused,
        "deadLetters": view.dead_letters,
    })
}

/// A dead letter as JSON.
fn letter_json(letter: &DeadLetter) -> Value {
    json!({
        "id": letter.id,
        "target": letter.target,
        "resourceType": letter.resource_type,
        "resourceId": letter.resource_id.0,
        "request": letter.request,
        "response": letter.response,
        "reason": letter.reason,
        "at": letter.at,
    })
}

/// `muster sync ...`.
impl SyncCommand {
    /// Where the command works.
    fn data(&self) -> &DataDir {
        match self {
            SyncCommand::Status { data, .. }
            | SyncCommand::DeadLetters { data, .. }
            | SyncCommand::Retry { data, .. }
            | SyncCommand::Discard { data, .. }
            | SyncCommand::Resume { data, .. }
            | SyncCommand::Pause { data, .. }
            | SyncCommand::Reconcile { data, .. }
            | SyncCommand::User { data, .. }
            | SyncCommand::Export { data, .. } => data,
        }
    }
}

pub(crate) async fn sync(command: SyncCommand) -> Result<()> {
    let tenant = command.data().tenant()?;
    match command {
        SyncCommand::Status { data, target, json } => {
            let targets = targets(&data, false).await?;
            let views = match target {
                Some(name) => vec![targets.get(&tenant, &name).await.map_err(failed)?],
                None => targets.list(&tenant).await.map_err(failed)?,
            };
            if json {
                let all: Vec<Value> = views.iter().map(status_json).collect();
                say(serde_json::to_string_pretty(&all)?)?;
                return Ok(());
            }
            print_status(&views)?;
        }
        SyncCommand::DeadLetters { data, target, json } => {
            let targets = targets(&data, false).await?;
            let letters = targets
                .dead_letters(&tenant, target.as_deref())
                .await
                .map_err(failed)?;
            if json {
                let all: Vec<Value> = letters.iter().map(letter_json).collect();
                say(serde_json::to_string_pretty(&all)?)?;
                return Ok(());
            }
            if letters.is_empty() {
                eprintln!("no dead letters");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|letter| {
                    vec![
                        letter.id.to_string(),
                        letter.target.clone(),
                        letter.resource_type.clone(),
                        letter.resource_id.0.clone(),
                        letter.at.clone(),
                        letter.reason.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "TARGET", "TYPE", "RESOURCE", "AT", "REASON"], &rows)?;
        }
        SyncCommand::Retry { data, id } => {
            let targets = targets(&data, false).await?;
            let delivered = targets.retry(&tenant, id).await.map_err(failed)?;
            say(format_args!(
                "dead letter {id} ({}): {}",
                delivered.resource_id, delivered.outcome
            ))?;
        }
        SyncCommand::Discard { data, id } => {
            let targets = targets(&data, false).await?;
            let letter = targets.discard(&tenant, id).await.map_err(failed)?;
            eprintln!(
                "discarded dead letter {id} ({} {} at target '{}')",
                letter.resource_type, letter.resource_id.0, letter.target
            );
        }
        SyncCommand::Resume { data, target } => {
            let targets = targets(&data, false).await?;
            targets
                .resume(&tenant, &cli_actor(), &target)
                .await
                .map_err(failed)?;
            eprintln!("resumed target '{target}'");
        }
        SyncCommand::Pause {
            data,
            target,
            reason,
        } => {
            let targets = targets(&data, false).await?;
            targets
                .pause(&tenant, &cli_actor(), &target, &reason)
                .await
                .map_err(failed)?;
            eprintln!("paused target '{target}': {reason}");
        }
        SyncCommand::Reconcile {
            data,
            target,
            dry_run,
            json,
        } => {
            let targets = targets(&data, false).await?;
            let view = targets.get(&tenant, &target).await.map_err(failed)?;
            if view.document.kind == TargetKind::Csv {
                let run = export(&targets, &tenant, &view).await?;
                say(describe_export(&run))?;
                return Ok(());
            }
            let bar = progress_bar("comparing");
            let report = {
                let moved = bar.clone();
                let progress = move |done: u64, total: u64| {
                    moved.set_length(total);
                    moved.set_position(done);
                };
                targets
                    .reconcile(&tenant, &target, dry_run, Some(&progress))
                    .await
            };
            bar.finish_and_clear();
            let report = report.map_err(failed)?;
            if json {
                say(serde_json::to_string_pretty(&report)?)?;
            } else {
                say(describe_reconcile(&target, dry_run, &report)?)?;
            }
        }
        SyncCommand::User {
            data,
            user,
            target,
            dry_run,
            json,
        } => {
            let targets = targets(&data, false).await?;
            let id = targets.find_user(&tenant, &user).await.map_err(failed)?;
            let delivered = targets
                .deliver_one(&tenant, &target, "User", &id, dry_run)
                .await
                .map_err(failed)?;
            if json {
                say(serde_json::to_string_pretty(&delivered)?)?;
            } else if dry_run {
                eprintln!(
                    "dry run of {user} at '{target}': {}; {} write(s) would be sent (nothing was written)",
                    delivered.outcome,
                    delivered.requests.len()
                );
                say(serde_json::to_string_pretty(&delivered.requests)?)?;
            } else {
                say(format_args!("{user} at '{target}': {}", delivered.outcome))?;
            }
        }
        SyncCommand::Export { data, target } => {
            let targets = targets(&data, false).await?;
            let view = targets.get(&tenant, &target).await.map_err(failed)?;
            if view.document.kind != TargetKind::Csv {
                return Err(anyhow!(
                    "target '{target}' is a {} target: `muster sync export` writes csv targets' \
                     files; use `muster sync reconcile --target {target}`",
                    kind(view.document.kind)
                ));
            }
            let run = export(&targets, &tenant, &view).await?;
            say(describe_export(&run))?;
        }
    }
    Ok(())
}

/// Prints the status table, then each target's last error and pause reason.
fn print_status(views: &[TargetView]) -> Result<()> {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|view| {
            vec![
                view.document.name.clone(),
                view.queue_depth.to_string(),
                dash(view.oldest_pending.as_deref()),
                dash(view.state.last_success.as_deref()),
                view.state.errors.to_string(),
                view.dead_letters.to_string(),
                dash(view.state.throttled_until.as_deref()),
                if view.paused.is_some() { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "TARGET",
            "QUEUE",
            "OLDEST PENDING",
            "LAST SUCCESS",
            "ERRORS",
            "DEAD LETTERS",
            "THROTTLED UNTIL",
            "PAUSED",
        ],
        &rows,
    )?;
    for view in views {
        let name = &view.document.name;
        if let Some(reason) = &view.paused {
            say(format_args!("{name}: paused: {reason}"))?;
        }
        if let Some(error) = &view.state.last_error {
            let at = view
                .state
                .last_error_at
                .as_deref()
                .map(|at| format!(" ({at})"))
                .unwrap_or_default();
            say(format_args!("{name}: last error{at}: {error}"))?;
        }
    }
    Ok(())
}

/// A reconcile report in words; a dry run's requests as JSON.
fn describe_reconcile(target: &str, dry_run: bool, report: &Reconciled) -> Result<String> {
    let mut lines = vec![format!(
        "{}{target}: {} created, {} updated, {} deprovisioned, {} unchanged, {} failed",
        if dry_run {
            "dry run (nothing was written) of "
        } else {
            "reconciled "
        },
        report.created.len(),
        report.updated.len(),
        report.deprovisioned.len(),
        report.unchanged,
        report.failed.len()
    )];
    for failure in &report.failed {
        lines.push(format!(
            "  failed {}: {}",
            failure["id"].as_str().unwrap_or_default(),
            failure["reason"].as_str().unwrap_or_default()
        ));
    }
    if dry_run {
        lines.push(format!(
            "{} request(s) would be sent:",
            report.requests.len()
        ));
        lines.push(serde_json::to_string_pretty(&report.requests)?);
    } else if !report.failed.is_empty() {
        lines.push("the failures are dead letters: see `muster sync dead-letters`".to_owned());
    }
    Ok(lines.join("\n"))
}

/// A progress bar on standard error, drawn only on a terminal.
fn progress_bar(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// The files one csv export wrote.
struct ExportRun {
    /// The target.
    target: String,
    /// The directory.
    directory: PathBuf,
    /// The new files, with their rows when the run log says.
    files: Vec<(PathBuf, Option<u64>)>,
}

/// Writes a full export of a csv target (`Targets::reconcile` on a csv
/// target) and finds the file it wrote.
async fn export(targets: &Targets, tenant: &TenantId, view: &TargetView) -> Result<ExportRun> {
    let name = view.document.name.clone();
    let directory = view
        .document
        .directory
        .clone()
        .ok_or_else(|| anyhow!("target '{name}' has no directory"))?;
    let before = full_exports(&directory, &name);
    let bar = progress_bar("exporting");
    let outcome = {
        let moved = bar.clone();
        let progress = move |done: u64, total: u64| {
            moved.set_length(total);
            moved.set_position(done);
        };
        targets
            .reconcile(tenant, &name, false, Some(&progress))
            .await
    };
    bar.finish_and_clear();
    outcome.map_err(failed)?;
    let mut new: Vec<PathBuf> = full_exports(&directory, &name)
        .difference(&before)
        .cloned()
        .collect();
    new.sort();
    let logged = run_log(&directory);
    let files = new
        .into_iter()
        .map(|file| {
            let rows = file
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| logged.iter().find(|(file, _)| file == name))
                .map(|(_, rows)| *rows);
            (file, rows)
        })
        .collect();
    Ok(ExportRun {
        target: name,
        directory,
        files,
    })
}

/// The full-export files of a target in its directory.
fn full_exports(directory: &Path, target: &str) -> HashSet<PathBuf> {
    let prefix = format!("{target}-full-");
    std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .filter_map(std::result::Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".csv"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The run log's entries: file name and rows.
fn run_log(directory: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(directory.join(muster_sync::csv_target::RUN_LOG))
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| {
            Some((
                entry.get("file")?.as_str()?.to_owned(),
                entry.get("rows")?.as_u64()?,
            ))
        })
        .collect()
}

/// What an export wrote, in words.
fn describe_export(run: &ExportRun) -> String {
    if run.files.is_empty() {
        return format!(
            "exported target '{}' to {} (see its {})",
            run.target,
            run.directory.display(),
            muster_sync::csv_target::RUN_LOG
        );
    }
    run.files
        .iter()
        .map(|(file, rows)| match rows {
            Some(rows) => format!("wrote {} ({rows} rows)", file.display()),
            None => format!("wrote {}", file.display()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `muster explain ...`: the entitlement explain, or with `--target` the
/// end-to-end explain of a delivery.
pub(crate) async fn explain(command: ExplainCommand) -> Result<()> {
    let ExplainCommand::User { data, .. } = &command;
    let tenant = data.tenant()?;
    match command {
        ExplainCommand::User {
            data,
            user,
            target: None,
            json: _,
        } => rules::explain(rules::ExplainCommand::User { data, user }).await,
        ExplainCommand::User {
            data,
            user,
            target: Some(target),
            json,
        } => {
            let targets = targets(&data, false).await?;
            let id = targets.find_user(&tenant, &user).await.map_err(failed)?;
            let explanation = targets
                .explain(&tenant, &target, &id)
                .await
                .map_err(failed)?;
            if json {
                say(serde_json::to_string_pretty(&explanation)?)?;
            } else {
                print_explanation(&explanation)?;
            }
            Ok(())
        }
    }
}

/// A JSON value in a table cell: text as it is, anything else compact.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The explain header, then one row per target attribute.
fn print_explanation(explanation: &Explanation) -> Result<()> {
    say(format_args!(
        "user {} (id {}) at target '{}': {}",
        cell(Some(&explanation.user_name)),
        explanation.user,
        explanation.target,
        if explanation.in_scope {
            "in scope"
        } else {
            "not in scope"
        }
    ))?;
    say(format_args!(
        "remoteId: {}  delivered: {}  status: {}  answer: {}{}",
        dash(explanation.remote_id.as_deref()),
        dash(explanation.delivered.as_deref()),
        explanation
            .status
            .map_or_else(|| "-".to_owned(), |status| status.to_string()),
        dash(explanation.answer.as_deref()),
        if explanation.deprovisioned {
            "  (deprovisioned at the target)"
        } else {
            ""
        }
    ))?;
    let rows: Vec<Vec<String>> = explanation
        .attributes
        .iter()
        .map(|row| {
            let sources: Vec<String> = row
                .sources
                .iter()
                .map(|source| {
                    let path = source["path"]
                        .as_str()
                        .or_else(|| source["attribute"].as_str())
                        .unwrap_or_default();
                    let value = source.get("value").filter(|value| !value.is_null());
                    // Who left an attribute absent says nothing useful.
                    let by = match (value, source["setBy"].as_str(), source["setAt"].as_str()) {
                        (None, _, _) | (_, None, _) => String::new(),
                        (Some(_), Some(by), Some(at)) => format!(" (set by {by} at {at})"),
                        (Some(_), Some(by), None) => format!(" (set by {by})"),
                    };
                    if path == row.target && row.sources.len() == 1 {
                        format!("{}{by}", cell(value))
                    } else {
                        format!("{path} = {}{by}", cell(value))
                    }
                })
                .collect();
            let now = match &row.error {
                Some(error) => format!("error: {error}"),
                None => cell(row.value.as_ref()),
            };
            vec![
                row.target.clone(),
                row.expression.clone(),
                if sources.is_empty() {
                    "-".to_owned()
                } else {
                    sources.join("; ")
                },
                now,
                cell(row.sent.as_ref()),
            ]
        })
        .collect();
    print_table(
        &[
            "TARGET PATH",
            "EXPRESSION",
            "SOURCES",
            "VALUE NOW",
            "VALUE SENT",
        ],
        &rows,
    )
}
