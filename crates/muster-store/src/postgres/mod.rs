//! The PostgreSQL backend, under construction (issue 13): its schema
//! (`schema.rs`) and the migrations that apply it, so a database server can
//! be prepared (`muster migrate --database postgres://...`) and the schema
//! reviewed by its DBAs, and the change feed in commit order ([`feed`]). The [`crate::Store`] implementation over it is not
//! here yet; `muster serve` runs on SQLite.
//!
//! Migrations run one step per transaction together with its record in
//! `schema_migrations`, under an advisory lock, so several Muster processes
//! started at once against one database apply each step exactly once.

pub mod feed;
mod schema;

use tokio_postgres::{Client, NoTls};

use crate::{Migration, StoreError};

/// The advisory lock key migrations hold (any constant of Muster's own).
const MIGRATION_LOCK: i64 = 0x6d75_7374_6572; // "muster"

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        // "error connecting to server" alone says nothing: add the cause
        // (which names no credential).
        let text = match (error.as_db_error(), std::error::Error::source(&error)) {
            (Some(db), _) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            (None, Some(cause)) => format!("{error}: {cause}"),
            (None, None) => error.to_string(),
        };
        StoreError::Database(text)
    }
}

/// Connects to `url` (`postgres://user@host:port/database`; the connection
/// task runs on the current runtime).
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection ended");
        }
    });
    // Notices such as "relation already exists, skipping" are not news.
    client
        .batch_execute("SET client_min_messages = warning")
        .await?;
    Ok(client)
}

/// The version `client`'s database is at (0: never migrated).
async fn applied_version(client: &Client) -> Result<usize, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let version = usize::try_from(version).unwrap_or(0);
    if version > schema::MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "the database schema is at version {version}, newer than this build knows ({}); \
             use a newer Muster",
            schema::MIGRATIONS.len()
        )));
    }
    Ok(version)
}

fn steps_after(applied: usize) -> Vec<Migration> {
    Migration::after(schema::MIGRATIONS, applied)
}

/// The steps the database at `url` has not applied, read without
/// changing anything.
pub async fn pending_migrations(url: &str) -> Result<Vec<Migration>, StoreError> {
    let client = connect(url).await?;
    Ok(steps_after(applied_version(&client).await?))
}

/// Applies the steps the database at `url` has not applied; returns them.
pub async fn migrate(url: &str) -> Result<Vec<Migration>, StoreError> {
    let mut client = connect(url).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply(&mut client).await;
    // The lock ends with the session anyway; unlocking is a courtesy.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn apply(client: &mut Client) -> Result<Vec<Migration>, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                applied timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let pending = steps_after(applied_version(client).await?);
    for step in &pending {
        let transaction = client.transaction().await?;
        transaction.batch_execute(step.sql).await.map_err(|error| {
            StoreError::Database(format!(
                "migration {} ({}) failed: {error}",
                step.version, step.name
            ))
        })?;
        let version = i64::try_from(step.version).unwrap_or(i64::MAX);
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &step.name],
            )
            .await?;
        transaction.commit().await?;
    }
    Ok(pending)
}
