//! The change feed's consumers and retention: `change_consumers` rows (one
//! cursor per reader of a tenant's feed) and the pruning of records every
//! consumer has passed.
//!
//! A cursor is clamped to the feed's head, the last sequence handed out
//! (`sqlite_sequence` of `changes`, across tenants, so it never moves back
//! even when every record is pruned): a cursor above it would skip the
//! records committed later. Run on the writer, so a cursor and the head it
//! is compared with are read in the same transaction.

use rusqlite::{params, Connection, OptionalExtension};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::read::to_version;
use super::values::{now_text, sortable_instant};
use crate::{ConsumerRecord, Retention, ScimError, StoreError, TenantId};

/// The last sequence handed out in `changes` (0 when none ever was).
fn head(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")?
        .query_row([], |row| row.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0))
}

/// `sequence` clamped to the head.
fn clamped(connection: &Connection, sequence: u64) -> Result<i64, StoreError> {
    let wanted = i64::try_from(sequence).unwrap_or(i64::MAX);
    Ok(wanted.min(head(connection)?))
}

/// Registers a consumer at `start_at` (clamped to the head) unless it is
/// registered already; its cursor.
pub(crate) fn register(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
    start_at: u64,
) -> Result<u64, StoreError> {
    if let Some(cursor) = cursor(connection, tenant, name)? {
        return Ok(cursor);
    }
    let start = clamped(connection, start_at)?;
    let now = now_text();
    connection
        .prepare_cached(
            "INSERT INTO change_consumers (tenant_id, consumer, cursor, registered, updated)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![tenant.0, name, start, now])?;
    Ok(to_version(start))
}

/// Moves a consumer's cursor forward to `sequence` (clamped to the head);
/// its cursor after.
pub(crate) fn advance(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
    sequence: u64,
) -> Result<u64, StoreError> {
    let to = clamped(connection, sequence)?;
    let cursor: Option<i64> = connection
        .prepare_cached(
            "UPDATE change_consumers
             SET updated = CASE WHEN ?3 > cursor THEN ?4 ELSE updated END,
                 cursor = max(cursor, ?3)
             WHERE tenant_id = ?1 AND consumer = ?2
             RETURNING cursor",
        )?
        .query_row(params![tenant.0, name, to, now_text()], |row| row.get(0))
        .optional()?;
    match cursor {
        Some(cursor) => Ok(to_version(cursor)),
        None => Err(StoreError::NotFound(format!(
            "no change feed consumer '{name}'"
        ))),
    }
}

/// A consumer's cursor, `None` when it is not registered.
pub(crate) fn cursor(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT cursor FROM change_consumers WHERE tenant_id = ?1 AND consumer = ?2",
        )?
        .query_row(params![tenant.0, name], |row| row.get::<_, i64>(0))
        .optional()?
        .map(to_version))
}

/// Forgets a consumer; whether it was registered.
pub(crate) fn remove(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let removed = connection
        .prepare_cached("DELETE FROM change_consumers WHERE tenant_id = ?1 AND consumer = ?2")?
        .execute(params![tenant.0, name])?;
    Ok(removed > 0)
}

/// The tenant's consumers, by name.
pub(crate) fn list(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<ConsumerRecord>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT consumer, cursor, registered, updated FROM change_consumers
         WHERE tenant_id = ?1 ORDER BY consumer",
    )?;
    let rows = statement.query_map(params![tenant.0], |row| {
        Ok(ConsumerRecord {
            name: row.get(0)?,
            cursor: to_version(row.get(1)?),
            registered: row.get(2)?,
            updated: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When change records are old enough to be pruned.
pub(crate) struct Cutoff {
    /// The instant, RFC 3339.
    pub(crate) text: String,
    /// The same instant in `values::sortable_instant` form.
    pub(crate) sortable: String,
}

impl Retention {
    /// The instant before which records are old enough to go; an
    /// unreadable RFC 3339 text is a [`StoreError::Scim`] invalid value.
    pub(crate) fn cutoff(&self) -> Result<Cutoff, StoreError> {
        let text = match self {
            Retention::Before(text) => text.clone(),
            Retention::OlderThan(age) => {
                let age = time::Duration::try_from(*age).unwrap_or(time::Duration::MAX);
                let instant = OffsetDateTime::now_utc()
                    .checked_sub(age)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                instant.format(&Rfc3339).map_err(|error| {
                    StoreError::Database(format!("cannot format the retention cutoff: {error}"))
                })?
            }
        };
        match sortable_instant(&text) {
            Some(sortable) => Ok(Cutoff { text, sortable }),
            None => Err(StoreError::Scim(ScimError::invalid_value(format!(
                "'{text}' is not an RFC 3339 date-time"
            )))),
        }
    }
}

/// Deletes the tenant's records older than `older_than` and at or below
/// every consumer's cursor; how many.
pub(crate) fn prune(
    connection: &Connection,
    tenant: &TenantId,
    older_than: &Retention,
) -> Result<u64, StoreError> {
    let cutoff = older_than.cutoff()?.sortable;
    let lowest: Option<i64> = connection
        .prepare_cached("SELECT min(cursor) FROM change_consumers WHERE tenant_id = ?1")?
        .query_row(params![tenant.0], |row| row.get(0))?;
    let below = lowest.unwrap_or(i64::MAX);
    let removed = connection
        .prepare_cached(
            "DELETE FROM changes
             WHERE tenant_id = ?1 AND sequence <= ?2 AND muster_instant(at) < ?3",
        )?
        .execute(params![tenant.0, below, cutoff])?;
    Ok(u64::try_from(removed).unwrap_or(u64::MAX))
}
