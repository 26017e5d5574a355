//! `muster user deleted|restore|purge`: soft-deleted users on the database
//! directly (no server needed), through the procedures of the admin API
//! (`GET /admin/v1/users/deleted`, `POST /admin/v1/users/{id}/restore`,
//! `POST /admin/v1/users/{id}/purge`; [`muster_core::lifecycle`]), and the
//! retention sweep `muster serve` runs at start and every hour.

use std::sync::Arc;

use anyhow::{bail, Result};
use clap::Subcommand;
use muster_core::lifecycle::{deleted_users, purge_expired, purge_user, sweep, SWEEP_INTERVAL};
use muster_core::{Limits, Service};
use muster_store::Store;
use serde_json::json;

use crate::{cli_actor, open_existing_store, print_table, refused, say, DataDir};

/// The most tombstones `muster user deleted` lists.
const MAX_LISTED: u64 = 10_000;

/// `muster user ...`.
#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// List soft-deleted users and when each stops being restorable.
    ///
    /// Id, userName (unless purged), when and by whom deleted, when the
    /// retention ends.
    #[command(after_help = "Example:\n  muster user deleted")]
    Deleted {
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Restore a soft-deleted user (by id or userName) within the retention.
    ///
    /// The same id comes back, in the groups that still exist.
    #[command(after_help = "Example:\n  muster user restore agent.one@contoso.com")]
    Restore {
        #[command(flatten)]
        data: DataDir,
        /// The deleted user's id or userName.
        user: String,
        /// Print the restored user as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Erase deleted users' personal data now, keeping a skeleton.
    ///
    /// One user (`ID`), or every one whose retention ended (`--expired`).
    #[command(after_help = "Examples:\n  \
        muster user purge 2819c223-7f76-453a-919d-413861904646\n  \
        muster user purge --expired")]
    Purge {
        #[command(flatten)]
        data: DataDir,
        /// The deleted user's id.
        #[arg(required_unless_present = "expired", conflicts_with = "expired")]
        id: Option<String>,
        /// Purge every deleted user whose retention ended.
        #[arg(long)]
        expired: bool,
        /// Print JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

impl UserCommand {
    /// Whether the command only prints what it reads.
    pub(crate) fn only_lists(&self) -> bool {
        matches!(self, UserCommand::Deleted { .. })
    }
}

/// Runs `muster user ...`.
pub(crate) async fn user(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Deleted { data, json } => {
            let tenant = data.tenant()?;
            let store = open_existing_store(&data).await?;
            let rows = deleted_users(&*store, &tenant, MAX_LISTED)
                .await
                .map_err(refused)?;
            if json {
                return say(json!(rows));
            }
            let table: Vec<Vec<String>> = rows
                .into_iter()
                .map(|row| {
                    vec![
                        row.id,
                        row.user_name.unwrap_or_else(|| "(purged)".to_owned()),
                        row.deleted_at,
                        row.deleted_by,
                        row.purged_at
                            .map_or(row.expires_at, |purged| format!("purged {purged}")),
                    ]
                })
                .collect();
            print_table(&["ID", "USERNAME", "DELETED", "BY", "EXPIRES"], &table)
        }
        UserCommand::Restore { data, user, json } => {
            let tenant = data.tenant()?;
            let store = open_existing_store(&data).await?;
            let service = Service::new(store, Limits::default());
            let session = service
                .session(tenant, cli_actor(), String::new())
                .await
                .map_err(refused)?;
            let restored = session.restore_user(&user).await.map_err(refused)?;
            if json {
                return say(restored.body.unwrap_or_default());
            }
            say(format!(
                "restored {user} as {} (version {})",
                restored.id, restored.version
            ))
        }
        UserCommand::Purge {
            data,
            id,
            expired,
            json,
        } => {
            let tenant = data.tenant()?;
            let store = open_existing_store(&data).await?;
            if expired {
                let purged = purge_expired(&*store, &tenant, &cli_actor())
                    .await
                    .map_err(refused)?;
                if json {
                    return say(json!({ "purged": purged }));
                }
                return say(format!(
                    "purged {} deleted user(s) whose retention ended",
                    purged.len()
                ));
            }
            let Some(id) = id else {
                bail!("name the deleted user's id, or --expired");
            };
            let purged = purge_user(&*store, &tenant, &cli_actor(), &id)
                .await
                .map_err(refused)?;
            if json {
                return say(json!(purged));
            }
            say(format!(
                "purged {}: its personal data is erased; the skeleton stays",
                purged.id
            ))
        }
    }
}

/// The retention sweep of `muster serve`: purges expired tombstones of
/// every tenant now and then every [`SWEEP_INTERVAL`], until the task is
/// aborted. A failed pass is logged and the next one runs as planned.
/// How often `serve` chains the audit entries committed meanwhile (on
/// PostgreSQL, which chains after commit).
const SEAL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts chaining new audit entries every [`SEAL_INTERVAL`], so none stays
/// unchained (open to an undetected edit) for longer than about that.
pub(crate) fn spawn_audit_sealer(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SEAL_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = store.seal_audit().await {
                tracing::warn!(%error, "sealing the audit trail failed; will retry");
            }
        }
    })
}

pub(crate) fn spawn_sweep(store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = sweep(&*store).await {
                tracing::warn!(detail = %error.into_scim().detail, "retention sweep failed");
            }
        }
    })
}
