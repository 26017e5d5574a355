//! The change feed's consumers and pruning on PostgreSQL:
//! `change_consumers` rows (one cursor per reader of a tenant's feed) and
//! the pruning of records every consumer has passed.
//!
//! A cursor is a feed position (`feed.rs`), clamped to the head: the
//! highest position handed out, read after positioning every settled
//! record. A record positioned later gets a higher position, so a cursor at
//! the head never passes a record it has not read. A registration first
//! settles the tenant's records committed before it (`feed::settle`), so
//! a consumer registered at the head after a write starts after it.

use tokio_postgres::Client;

use super::schemas::RFC3339;
use super::{feed, PostgresStore};
use crate::{ConsumerRecord, Retention, StoreError, TenantId};

/// SQL giving the timestamptz `expression` as `meta` writes instants
/// ([`RFC3339`]).
pub(super) fn instant_text(expression: &str) -> String {
    format!("to_char({expression} AT TIME ZONE 'UTC', '{RFC3339}')")
}

/// A stored count or number (never negative) as the API's `u64`.
pub(super) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// An API number as a `bigint` parameter (saturating).
pub(super) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `sequence` clamped to the head.
async fn clamped(client: &Client, sequence: u64) -> Result<i64, StoreError> {
    Ok(signed(sequence).min(feed::head(client).await?))
}

/// A consumer's cursor, `None` when it is not registered.
async fn read_cursor(
    client: &Client,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(client
        .query_opt(
            "SELECT cursor FROM change_consumers WHERE tenant_id = $1 AND consumer = $2",
            &[&tenant.0, &name],
        )
        .await?
        .map(|row| unsigned(row.get(0))))
}

/// [`crate::Store::register_consumer`]: registers a consumer at `start_at`
/// (clamped to the head) unless it is registered already; its cursor.
pub(super) async fn register(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    start_at: u64,
) -> Result<u64, StoreError> {
    let mut client = store.client().await?;
    if let Some(cursor) = read_cursor(&client, tenant, name).await? {
        return Ok(cursor);
    }
    feed::settle(&mut client, tenant).await?;
    let start = clamped(&client, start_at).await?;
    // Registered meanwhile by another writer: its cursor stays.
    let row = client
        .query_one(
            "INSERT INTO change_consumers (tenant_id, consumer, cursor, registered, updated)
             VALUES ($1, $2, $3, now(), now())
             ON CONFLICT (tenant_id, consumer) DO UPDATE SET cursor = change_consumers.cursor
             RETURNING cursor",
            &[&tenant.0, &name, &start],
        )
        .await?;
    Ok(unsigned(row.get(0)))
}

/// [`crate::Store::advance_consumer`]: moves a consumer's cursor forward
/// to `sequence` (clamped to the head); its cursor after.
pub(super) async fn advance(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    sequence: u64,
) -> Result<u64, StoreError> {
    let mut client = store.client().await?;
    feed::assign_positions(&mut client).await?;
    let to = clamped(&client, sequence).await?;
    let row = client
        .query_opt(
            "UPDATE change_consumers
             SET updated = CASE WHEN $3 > cursor THEN now() ELSE updated END,
                 cursor = greatest(cursor, $3)
             WHERE tenant_id = $1 AND consumer = $2
             RETURNING cursor",
            &[&tenant.0, &name, &to],
        )
        .await?;
    match row {
        Some(row) => Ok(unsigned(row.get(0))),
        None => Err(StoreError::NotFound(format!(
            "no change feed consumer '{name}'"
        ))),
    }
}

/// [`crate::Store::consumer_cursor`].
pub(super) async fn cursor(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    let client = store.client().await?;
    read_cursor(&client, tenant, name).await
}

/// [`crate::Store::remove_consumer`]: whether it was registered.
pub(super) async fn remove(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let removed = client
        .execute(
            "DELETE FROM change_consumers WHERE tenant_id = $1 AND consumer = $2",
            &[&tenant.0, &name],
        )
        .await?;
    Ok(removed > 0)
}

/// [`crate::Store::list_consumers`]: by name (in byte order, as on
/// SQLite).
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<ConsumerRecord>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT consumer, cursor, {}, {} FROM change_consumers
                 WHERE tenant_id = $1 ORDER BY consumer COLLATE \"C\"",
                instant_text("registered"),
                instant_text("updated"),
            ),
            &[&tenant.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ConsumerRecord {
            name: row.get(0),
            cursor: unsigned(row.get(1)),
            registered: row.get(2),
            updated: row.get(3),
        })
        .collect())
}

/// [`crate::Store::prune_changes`]: deletes the tenant's positioned
/// records older than `older_than` and at or below every consumer's
/// cursor; how many.
pub(super) async fn prune(
    store: &PostgresStore,
    tenant: &TenantId,
    older_than: &Retention,
) -> Result<u64, StoreError> {
    let cutoff = older_than.cutoff()?.text;
    let mut client = store.client().await?;
    feed::assign_positions(&mut client).await?;
    // A cursor only moves forward, so the lowest one read here stays a
    // safe bound while the delete runs.
    let removed = client
        .execute(
            "DELETE FROM changes
             WHERE tenant_id = $1
               AND position <= (SELECT coalesce(min(cursor), $2) FROM change_consumers
                                WHERE tenant_id = $1)
               AND at < $3::text::timestamptz",
            &[&tenant.0, &i64::MAX, &cutoff],
        )
        .await?;
    Ok(removed)
}
