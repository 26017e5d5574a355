//! `muster audit` (query the audit trail by user, client and time range,
//! as a table or JSON Lines) and `muster audit verify` (check the hash
//! chain; non-zero naming the first bad entry), on the database directly,
//! through the procedures of `GET /admin/v1/audit`
//! ([`muster_core::audit`]).

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use muster_core::audit::{export, verify, AuditFilter};
use serde_json::Value;

use crate::{open_existing_store, print_table, refused, say, DataDir};

/// `muster audit ...`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    data: DataDir,
    /// Only entries about this user (its id or userName).
    #[arg(long)]
    user: Option<String>,
    /// Only entries of this client (token or OAuth client name).
    #[arg(long)]
    client: Option<String>,
    /// Only entries at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only entries before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Print one JSON object per line (an export) instead of a table.
    #[arg(long)]
    jsonl: bool,
}

/// `muster audit verify`.
#[derive(Subcommand)]
enum AuditCommand {
    /// Check that no audit entry was edited, deleted or reordered.
    ///
    /// Checks the tenant's hash chain: exits 0 when intact (printing the
    /// number of entries and the head hash, worth keeping elsewhere),
    /// non-zero naming the first edited, deleted or reordered entry.
    #[command(after_help = "Example:\n  muster audit verify --tenant default")]
    Verify {
        #[command(flatten)]
        data: DataDir,
    },
}

/// Runs `muster audit`.
pub(crate) async fn audit(args: AuditArgs) -> Result<()> {
    if let Some(AuditCommand::Verify { data }) = args.command {
        let tenant = data.tenant()?;
        let store = open_existing_store(&data).await?;
        return match verify(&*store, &tenant).await.map_err(refused)? {
            Ok((entries, head)) => say(format_args!(
                "audit trail of tenant '{}' intact: {entries} entries, head {head}",
                tenant.0
            )),
            Err(broken) => bail!("audit trail of tenant '{}' broken: {broken}", tenant.0),
        };
    }
    let tenant = args.data.tenant()?;
    let store = open_existing_store(&args.data).await?;
    let filter = AuditFilter {
        user: args.user,
        client: args.client,
        since: args.since,
        until: args.until,
        cursor: None,
        count: 0,
    };
    let mut rows = Vec::new();
    let jsonl = args.jsonl;
    let mut failure = None;
    export(&*store, &tenant, &filter, |entry| {
        if jsonl {
            if let Err(error) = say(entry) {
                failure = Some(error);
                return Err(muster_core::Error::Scim(muster_scim::ScimError::status(
                    500,
                    "standard output closed",
                )));
            }
        } else {
            rows.push(row(&entry));
        }
        Ok(())
    })
    .await
    .map_err(|error| match failure.take() {
        Some(failure) => failure,
        None => refused(error),
    })?;
    if !jsonl {
        print_table(
            &[
                "POSITION",
                "AT",
                "CLIENT",
                "OPERATION",
                "TYPE",
                "ID",
                "USERNAME",
                "CHANGED",
            ],
            &rows,
        )?;
    }
    std::io::stdout()
        .flush()
        .context("writing to standard output")?;
    Ok(())
}

/// A table row of an entry.
fn row(entry: &Value) -> Vec<String> {
    let text = |key: &str| match entry.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let changed = match entry.get("changes").and_then(Value::as_array) {
        Some(changes) => changes
            .iter()
            .filter_map(|change| change.get("path").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(","),
        None if entry.get("redacted").is_some() => "(redacted)".to_owned(),
        None => String::new(),
    };
    vec![
        text("position"),
        text("at"),
        text("client"),
        text("operation"),
        text("resourceType"),
        text("resourceId"),
        text("userName"),
        changed,
    ]
}
