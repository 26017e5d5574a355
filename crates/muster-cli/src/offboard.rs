//! `muster offboard USERNAME` and `muster unlock USERNAME`: emergency
//! offboarding on the database directly (no server needed), through the
//! same procedure as `POST /admin/v1/users/{id}/offboard`
//! ([`muster_core::Session::offboard`]).
//!
//! The CLI writes the deactivation and the lock in one transaction; the
//! serving process's sync workers then deliver the change: an idle worker
//! reads the feed every 25 ms, a busy one looks ahead for offboarded users
//! every second, and offboarding changes go first within a batch. (The
//! admin endpoint delivers to every target before it answers.)

use anyhow::Result;
use clap::Args;
use muster_core::{Limits, Service};

use crate::{cli_actor, open_existing_store, refused, say, DataDir};

/// Arguments of `muster offboard`.
#[derive(Args)]
pub(crate) struct OffboardArgs {
    #[command(flatten)]
    data: DataDir,
    /// The user's userName (case-insensitive) or id.
    user: String,
    /// Why (kept with the lock and in the change record).
    #[arg(long, default_value = "")]
    reason: String,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// Arguments of `muster unlock`.
#[derive(Args)]
pub(crate) struct UnlockArgs {
    #[command(flatten)]
    data: DataDir,
    /// The user's userName (case-insensitive) or id.
    user: String,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// `muster offboard USERNAME`: deactivates and locks the user now.
pub(crate) async fn offboard(args: OffboardArgs) -> Result<()> {
    let tenant = args.data.tenant()?;
    let store = open_existing_store(&args.data).await?;
    let service = Service::new(store, Limits::default());
    let session = service
        .session(tenant, cli_actor(), String::new())
        .await
        .map_err(refused)?;
    let id = session.find_user(&args.user).await.map_err(refused)?;
    let offboarded = session
        .offboard(&id.0, &args.reason)
        .await
        .map_err(refused)?;
    if args.json {
        return say(offboarded.to_json());
    }
    say(format!(
        "offboarded {} ({}): inactive and locked; entitlements revoked; the sync workers of \
         the running server deliver it to every target next (`muster unlock {}` lets the \
         identity provider reactivate it)",
        offboarded.user_name, offboarded.id, offboarded.user_name
    ))
}

/// `muster unlock USERNAME`: removes the lock (the user stays inactive
/// until the identity provider or an admin sets `active` again).
pub(crate) async fn unlock(args: UnlockArgs) -> Result<()> {
    let tenant = args.data.tenant()?;
    let store = open_existing_store(&args.data).await?;
    let service = Service::new(store, Limits::default());
    let session = service
        .session(tenant, cli_actor(), String::new())
        .await
        .map_err(refused)?;
    let id = session.find_user(&args.user).await.map_err(refused)?;
    let unlocked = session.unlock(&id.0).await.map_err(refused)?;
    if args.json {
        return say(unlocked.to_json());
    }
    if unlocked.changed {
        say(format!(
            "unlocked {} ({}): still inactive until the identity provider or an admin sets active",
            unlocked.user_name, unlocked.id
        ))
    } else {
        say(format!(
            "{} ({}) was not locked; nothing changed",
            unlocked.user_name, unlocked.id
        ))
    }
}
