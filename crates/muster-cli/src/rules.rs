//! `muster rules ...` and `muster explain user`: the entitlement rules of
//! a tenant, through the same procedures as `/admin/v1/rules`
//! ([`muster_core::rules`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use muster_core::rules::{
    apply_rules, check_rules, explain_user, roll_back, rule_set_record, rules_stats, ApplyRules,
    ProgressFn, RulesDocument, RulesProgress, RulesReport,
};

use crate::{cli_actor, open_existing_store, open_store, print_table, refused, say, DataDir};

#[derive(Subcommand)]
pub(crate) enum RulesCommand {
    /// Check a rule file and apply it as the next version.
    ///
    /// With --dry-run, only show what it would change for every user. With
    /// --version N, apply an earlier version again (a rollback).
    #[command(after_help = "Examples:\n  \
        muster rules apply --dry-run --user agent.one@contoso.com rules.toml\n  \
        muster rules apply rules.toml\n  \
        muster rules apply --version 3")]
    Apply {
        #[command(flatten)]
        data: DataDir,
        /// The rule file (TOML or JSON); CSV files its tables name are read
        /// relative to it. Leave out with --version.
        file: Option<PathBuf>,
        /// Apply an earlier version again (a rollback), as a new version.
        #[arg(long, conflicts_with = "file")]
        version: Option<u64>,
        /// Only report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also show this user's entitlements before and after (userName or id).
        #[arg(long)]
        user: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a rule file against the tenant's schemas and groups; change nothing.
    #[command(after_help = "Example:\n  muster rules check rules.toml")]
    Check {
        #[command(flatten)]
        data: DataDir,
        /// The rule file.
        file: PathBuf,
    },
    /// Print the rule set in force (or --version N) as it was applied.
    #[command(after_help = "Examples:\n  \
        muster rules show\n  \
        muster rules show --version 2")]
    Show {
        #[command(flatten)]
        data: DataDir,
        /// A version other than the one in force.
        #[arg(long)]
        version: Option<u64>,
    },
    /// List every version applied: when, by whom, why.
    #[command(after_help = "Example:\n  muster rules history")]
    History {
        #[command(flatten)]
        data: DataDir,
    },
    /// Per rule, how many users it matches; the users with problems.
    #[command(after_help = "Example:\n  muster rules stats --json")]
    Stats {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ExplainCommand {
    /// Why a user holds each entitlement, and why the other rules did not
    /// match.
    #[command(after_help = "Example:\n  muster explain user agent.one@contoso.com")]
    User {
        #[command(flatten)]
        data: DataDir,
        /// The user's userName (or id).
        user: String,
    },
}

/// Reads a rule file and a reader for the CSV files it names.
fn read_document(file: &Path) -> Result<(String, PathBuf)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let directory = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((text, directory))
}

fn csv_reader(directory: &Path) -> impl Fn(&str) -> Result<String, String> + Sync + '_ {
    move |name: &str| {
        let path = directory.join(name);
        std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))
    }
}

impl RulesCommand {
    /// Where the command works.
    fn data(&self) -> &DataDir {
        match self {
            RulesCommand::Apply { data, .. }
            | RulesCommand::Check { data, .. }
            | RulesCommand::Show { data, .. }
            | RulesCommand::History { data }
            | RulesCommand::Stats { data, .. } => data,
        }
    }
}

pub(crate) async fn rules(command: RulesCommand) -> Result<()> {
    let tenant = command.data().tenant()?;
    match command {
        RulesCommand::Apply {
            data,
            file,
            version,
            dry_run,
            user,
            json,
        } => {
            let bar = progress_bar();
            let options = ApplyRules {
                dry_run,
                user,
                progress: Some(progress_reporter(&bar)),
                ..ApplyRules::default()
            };
            let report = match (file, version) {
                (_, Some(version)) => {
                    let store = open_existing_store(&data).await?;
                    roll_back(&*store, &tenant, &cli_actor(), version, &options)
                        .await
                        .map_err(refused)?
                }
                (Some(file), None) => {
                    let (text, directory) = read_document(&file)?;
                    let read = csv_reader(&directory);
                    let document = RulesDocument {
                        text: &text,
                        files: Some(&read),
                    };
                    let store = open_store(&data).await?;
                    apply_rules(&*store, &tenant, &cli_actor(), &document, &options)
                        .await
                        .map_err(|error| anyhow!("{}: {}", file.display(), refused(error)))?
                }
                (None, None) => {
                    return Err(anyhow!("give a rule file, or --version N to roll back"))
                }
            };
            bar.finish_and_clear();
            if json {
                say(serde_json::to_string_pretty(&report)?)?;
            } else {
                say(describe(&report))?;
            }
        }
        RulesCommand::Check { data, file } => {
            let (text, directory) = read_document(&file)?;
            let read = csv_reader(&directory);
            let document = RulesDocument {
                text: &text,
                files: Some(&read),
            };
            let store = open_existing_store(&data).await?;
            let rule_set = check_rules(&*store, &tenant, &document)
                .await
                .map_err(|error| anyhow!("{}: {}", file.display(), refused(error)))?;
            say(format_args!(
                "{}: valid ({} rules and tables)",
                file.display(),
                rule_set.rule_ids().len()
            ))?;
        }
        RulesCommand::Show { data, version } => {
            let store = open_existing_store(&data).await?;
            let record = rule_set_record(&*store, &tenant, version)
                .await
                .map_err(refused)?;
            say(record.document.trim_end())?;
        }
        RulesCommand::History { data } => {
            let store = open_existing_store(&data).await?;
            let history = store.rule_set_history(&tenant).await?;
            let rows: Vec<Vec<String>> = history
                .iter()
                .map(|record| {
                    vec![
                        record.version.to_string(),
                        record.applied.clone(),
                        record.client.clone(),
                        record.format.clone(),
                        record.note.clone(),
                    ]
                })
                .collect();
            print_table(&["VERSION", "APPLIED", "BY", "FORMAT", "NOTE"], &rows)?;
        }
        RulesCommand::Stats { data, json } => {
            let store = open_existing_store(&data).await?;
            let stats = rules_stats(&*store, &tenant).await.map_err(refused)?;
            if json {
                say(serde_json::to_string_pretty(&stats)?)?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = stats["rules"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|row| {
                    vec![
                        row["rule"].as_str().unwrap_or_default().to_owned(),
                        row["users"].to_string(),
                    ]
                })
                .collect();
            print_table(&["RULE", "USERS"], &rows)?;
            say(format_args!(
                "{} users, {} with problems",
                stats["users"], stats["usersWithProblems"]
            ))?;
            for user in stats["problems"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let codes: Vec<&str> = user["problems"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|problem| problem["detail"].as_str())
                    .collect();
                say(format_args!(
                    "  {}: {}",
                    user["userName"].as_str().unwrap_or_default(),
                    codes.join("; ")
                ))?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn explain(command: ExplainCommand) -> Result<()> {
    match command {
        ExplainCommand::User { data, user } => {
            let tenant = data.tenant()?;
            let store = open_existing_store(&data).await?;
            let (_, explanation) = explain_user(&*store, &tenant, &user)
                .await
                .map_err(refused)?;
            say(serde_json::to_string_pretty(&explanation)?)?;
        }
    }
    Ok(())
}

/// A progress bar on standard error (drawn only on a terminal).
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} users ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("comparing");
    bar
}

/// Moves `bar` as the apply reports its progress.
fn progress_reporter(bar: &ProgressBar) -> ProgressFn {
    let bar = bar.clone();
    ProgressFn(Arc::new(move |progress| match progress {
        RulesProgress::Compared { users, total } => {
            bar.set_length(total);
            bar.set_position(users);
        }
        RulesProgress::Writing => {
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(
                "storing the version and rewriting the users whose entitlements change",
            );
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    }))
}

/// A report in words: what was (or would be) applied and what changes.
fn describe(report: &RulesReport) -> String {
    let mut lines = Vec::new();
    match report.version {
        Some(version) => lines.push(format!("applied rule set version {version}")),
        None => lines.push("dry run: nothing was changed".to_owned()),
    }
    let summary = serde_json::to_value(&report.summary).unwrap_or_default();
    lines.push(format!(
        "{} users, {} would change",
        summary["users"], summary["usersChanged"]
    ));
    for change in summary["changes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let users: Vec<&str> = change["users"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        lines.push(format!(
            "  {} {}: {} users (e.g. {})",
            change["kind"].as_str().unwrap_or_default(),
            change["change"].as_str().unwrap_or_default(),
            change["count"],
            users.join(", ")
        ));
    }
    if let Some(user) = &report.user {
        let value = serde_json::to_value(user).unwrap_or_default();
        lines.push(format!(
            "user {}:\n{}",
            user.user_name,
            serde_json::to_string_pretty(&value["changes"]).unwrap_or_default()
        ));
    }
    lines.join("\n")
}
