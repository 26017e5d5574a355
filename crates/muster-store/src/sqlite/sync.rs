//! The sync engine's tables (`sync_targets`, `sync_objects`,
//! `sync_dead_letters`): plain rows the engine reads and writes; no change
//! records, no generation bumps.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use super::values::now_text;
use super::SqliteStore;
use crate::sync::{
    DeadLetter, DeliveredObject, NewDeadLetter, ResourceChange, SyncStore, TargetRecord,
};
use crate::{Actor, ResourceId, StoreError, TenantId};

/// The migration step creating the tables.
pub(crate) const SYNC_TABLES: &str = "
CREATE TABLE sync_targets (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    paused TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    client TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '',
    guard_confirmed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
CREATE TABLE sync_objects (
    tenant_id TEXT NOT NULL,
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    remote_id TEXT,
    sent TEXT NOT NULL,
    delivered TEXT NOT NULL,
    status INTEGER,
    answer TEXT,
    deprovisioned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, target, resource_type, resource_id)
) WITHOUT ROWID;
CREATE TABLE sync_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    target TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX changes_by_resource ON changes (tenant_id, resource_type, resource_id, sequence);
CREATE INDEX sync_dead_letters_by_target ON sync_dead_letters (tenant_id, target, id);
";

fn target_record(row: &Row<'_>) -> rusqlite::Result<TargetRecord> {
    Ok(TargetRecord {
        name: row.get(0)?,
        document: row.get(1)?,
        paused: row.get(2)?,
        created: row.get(3)?,
        updated: row.get(4)?,
        client: row.get(5)?,
        state: row.get(6)?,
        guard_confirmed: u64::try_from(row.get::<_, i64>(7)?).unwrap_or_default(),
    })
}

const TARGET_COLUMNS: &str =
    "name, document, paused, created, updated, client, state, guard_confirmed";

fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    })
}

fn delivered_object(row: &Row<'_>) -> rusqlite::Result<DeliveredObject> {
    let status: Option<i64> = row.get(5)?;
    Ok(DeliveredObject {
        resource_type: row.get(0)?,
        resource_id: ResourceId(row.get(1)?),
        remote_id: row.get(2)?,
        sent: json_column(row, 3)?,
        delivered: row.get(4)?,
        status: status.and_then(|status| u16::try_from(status).ok()),
        answer: row.get(6)?,
        deprovisioned: row.get(7)?,
    })
}

const OBJECT_COLUMNS: &str =
    "resource_type, resource_id, remote_id, sent, delivered, status, answer, deprovisioned";

fn dead_letter(row: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    let id: i64 = row.get(0)?;
    Ok(DeadLetter {
        id: u64::try_from(id).unwrap_or_default(),
        target: row.get(1)?,
        resource_type: row.get(2)?,
        resource_id: ResourceId(row.get(3)?),
        request: json_column(row, 4)?,
        response: json_column(row, 5)?,
        reason: row.get(6)?,
        at: row.get(7)?,
    })
}

const LETTER_COLUMNS: &str =
    "id, target, resource_type, resource_id, request, response, reason, at";

fn put_target(
    connection: &Connection,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
    document: &str,
) -> Result<TargetRecord, StoreError> {
    let now = now_text();
    connection
        .prepare_cached(
            "INSERT INTO sync_targets (tenant_id, name, document, paused, created, updated, client)
             VALUES (?1, ?2, ?3, NULL, ?4, ?4, ?5)
             ON CONFLICT (tenant_id, name) DO UPDATE SET document = excluded.document,
                 updated = excluded.updated, client = excluded.client",
        )?
        .execute(params![tenant.0, name, document, now, actor.client])?;
    get_target(connection, tenant, name)?
        .ok_or_else(|| StoreError::Database(format!("target {name} vanished after its put")))
}

fn get_target(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<TargetRecord>, StoreError> {
    Ok(connection
        .prepare_cached(&format!(
            "SELECT {TARGET_COLUMNS} FROM sync_targets WHERE tenant_id = ?1 AND name = ?2"
        ))?
        .query_row(params![tenant.0, name], target_record)
        .optional()?)
}

fn remove_target(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let removed = connection
        .prepare_cached("DELETE FROM sync_targets WHERE tenant_id = ?1 AND name = ?2")?
        .execute(params![tenant.0, name])?;
    connection
        .prepare_cached("DELETE FROM sync_objects WHERE tenant_id = ?1 AND target = ?2")?
        .execute(params![tenant.0, name])?;
    connection
        .prepare_cached("DELETE FROM sync_dead_letters WHERE tenant_id = ?1 AND target = ?2")?
        .execute(params![tenant.0, name])?;
    Ok(removed > 0)
}

fn record_delivery(
    connection: &Connection,
    tenant: &TenantId,
    target: &str,
    object: &DeliveredObject,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO sync_objects (tenant_id, target, resource_type, resource_id, remote_id,
                 sent, delivered, status, answer, deprovisioned)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (tenant_id, target, resource_type, resource_id) DO UPDATE SET
                 remote_id = excluded.remote_id, sent = excluded.sent,
                 delivered = excluded.delivered, status = excluded.status,
                 answer = excluded.answer, deprovisioned = excluded.deprovisioned",
        )?
        .execute(params![
            tenant.0,
            target,
            object.resource_type,
            object.resource_id.0,
            object.remote_id,
            object.sent.to_string(),
            object.delivered,
            object.status,
            object.answer,
            object.deprovisioned,
        ])?;
    Ok(())
}

fn add_dead_letter(
    connection: &Connection,
    tenant: &TenantId,
    target: &str,
    letter: &NewDeadLetter,
) -> Result<u64, StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO sync_dead_letters (tenant_id, target, resource_type, resource_id,
                 request, response, reason, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            tenant.0,
            target,
            letter.resource_type,
            letter.resource_id.0,
            letter.request.to_string(),
            letter.response.to_string(),
            letter.reason,
            now_text(),
        ])?;
    Ok(u64::try_from(connection.last_insert_rowid()).unwrap_or_default())
}

fn take_dead_letter(
    connection: &Connection,
    tenant: &TenantId,
    id: u64,
) -> Result<Option<DeadLetter>, StoreError> {
    let id = i64::try_from(id).unwrap_or(i64::MAX);
    let letter = connection
        .prepare_cached(&format!(
            "SELECT {LETTER_COLUMNS} FROM sync_dead_letters WHERE tenant_id = ?1 AND id = ?2"
        ))?
        .query_row(params![tenant.0, id], dead_letter)
        .optional()?;
    if letter.is_some() {
        connection
            .prepare_cached("DELETE FROM sync_dead_letters WHERE tenant_id = ?1 AND id = ?2")?
            .execute(params![tenant.0, id])?;
    }
    Ok(letter)
}

/// An instant as leases store it: RFC 3339 in UTC with nanoseconds, so
/// instants compare as text.
fn lease_instant(instant: time::OffsetDateTime) -> Result<String, StoreError> {
    instant
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .map_err(|error| StoreError::Database(format!("formatting a lease instant: {error}")))
}

#[async_trait]
impl SyncStore for SqliteStore {
    async fn change_head(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| {
                let head: Option<i64> = connection
                    .prepare_cached("SELECT max(sequence) FROM changes WHERE tenant_id = ?1")?
                    .query_row(params![tenant.0], |row| row.get(0))?;
                Ok(head.and_then(|head| u64::try_from(head).ok()).unwrap_or(0))
            })
            .await
    }

    async fn resource_history(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
        limit: u64,
    ) -> Result<Vec<ResourceChange>, StoreError> {
        let (tenant, resource_type, id) = (tenant.clone(), resource_type.to_owned(), id.clone());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT sequence, client, at, payload FROM changes
                     WHERE tenant_id = ?1 AND resource_type = ?2 AND resource_id = ?3
                     ORDER BY sequence DESC LIMIT ?4",
                )?;
                let rows =
                    statement.query_map(params![tenant.0, resource_type, id.0, limit], |row| {
                        let payload: String = row.get(3)?;
                        let after = serde_json::from_str::<Value>(&payload)
                            .ok()
                            .and_then(|mut payload| payload.get_mut("resource").map(Value::take));
                        Ok(ResourceChange {
                            sequence: u64::try_from(row.get::<_, i64>(0)?).unwrap_or_default(),
                            client: row.get(1)?,
                            at: row.get(2)?,
                            after,
                        })
                    })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn put_target(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        name: &str,
        document: &str,
    ) -> Result<TargetRecord, StoreError> {
        let (tenant, actor) = (tenant.clone(), actor.clone());
        let (name, document) = (name.to_owned(), document.to_owned());
        self.writer
            .submit(move |connection| put_target(connection, &tenant, &actor, &name, &document))
            .await
    }

    async fn target(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<TargetRecord>, StoreError> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.readers
            .read(move |connection| get_target(connection, &tenant, &name))
            .await
    }

    async fn targets(&self, tenant: &TenantId) -> Result<Vec<TargetRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {TARGET_COLUMNS} FROM sync_targets WHERE tenant_id = ?1 ORDER BY name"
                ))?;
                let rows = statement.query_map(params![tenant.0], target_record)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn all_targets(&self) -> Result<Vec<(TenantId, TargetRecord)>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {TARGET_COLUMNS}, tenant_id FROM sync_targets
                     ORDER BY tenant_id, name"
                ))?;
                let rows = statement
                    .query_map([], |row| Ok((TenantId(row.get(8)?), target_record(row)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn remove_target(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.writer
            .submit(move |connection| remove_target(connection, &tenant, &name))
            .await
    }

    async fn set_target_paused(
        &self,
        tenant: &TenantId,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        let reason = reason.map(str::to_owned);
        self.writer
            .submit(move |connection| {
                let changed = match &reason {
                    Some(reason) => connection
                        .prepare_cached(
                            "UPDATE sync_targets SET paused = ?3 WHERE tenant_id = ?1 AND name = ?2",
                        )?
                        .execute(params![tenant.0, name, reason])?,
                    None => connection
                        .prepare_cached(
                            "UPDATE sync_targets SET paused = NULL, guard_confirmed =
                                 (SELECT coalesce(max(sequence), 0) FROM changes
                                  WHERE tenant_id = ?1)
                             WHERE tenant_id = ?1 AND name = ?2",
                        )?
                        .execute(params![tenant.0, name])?,
                };
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("target {name}")));
                }
                Ok(())
            })
            .await
    }

    async fn set_target_state(
        &self,
        tenant: &TenantId,
        name: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        let (tenant, name, state) = (tenant.clone(), name.to_owned(), state.to_owned());
        self.writer
            .submit(move |connection| {
                connection
                    .prepare_cached(
                        "UPDATE sync_targets SET state = ?3 WHERE tenant_id = ?1 AND name = ?2",
                    )?
                    .execute(params![tenant.0, name, state])?;
                Ok(())
            })
            .await
    }

    async fn lease_target(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let (tenant, name, holder) = (tenant.clone(), name.to_owned(), holder.to_owned());
        let now = time::OffsetDateTime::now_utc();
        let until = now + ttl;
        let (now, until) = (lease_instant(now)?, lease_instant(until)?);
        self.writer
            .submit(move |connection| {
                let taken = connection
                    .prepare_cached(
                        "UPDATE sync_targets SET lease_holder = ?3, lease_until = ?4
                         WHERE tenant_id = ?1 AND name = ?2
                           AND (lease_holder IS NULL OR lease_holder = ?3 OR lease_until < ?5)",
                    )?
                    .execute(params![tenant.0, name, holder, until, now])?;
                Ok(taken == 1)
            })
            .await
    }

    async fn delivered(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<Option<DeliveredObject>, StoreError> {
        let (tenant, target) = (tenant.clone(), target.to_owned());
        let (resource_type, id) = (resource_type.to_owned(), id.clone());
        self.readers
            .read(move |connection| {
                Ok(connection
                    .prepare_cached(&format!(
                        "SELECT {OBJECT_COLUMNS} FROM sync_objects WHERE tenant_id = ?1
                         AND target = ?2 AND resource_type = ?3 AND resource_id = ?4"
                    ))?
                    .query_row(
                        params![tenant.0, target, resource_type, id.0],
                        delivered_object,
                    )
                    .optional()?)
            })
            .await
    }

    async fn delivered_all(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
    ) -> Result<Vec<DeliveredObject>, StoreError> {
        let (tenant, target) = (tenant.clone(), target.to_owned());
        let resource_type = resource_type.to_owned();
        self.readers
            .read_all(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {OBJECT_COLUMNS} FROM sync_objects WHERE tenant_id = ?1
                     AND target = ?2 AND resource_type = ?3 ORDER BY resource_id"
                ))?;
                let rows = statement
                    .query_map(params![tenant.0, target, resource_type], delivered_object)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn record_delivery(
        &self,
        tenant: &TenantId,
        target: &str,
        object: DeliveredObject,
    ) -> Result<(), StoreError> {
        let (tenant, target) = (tenant.clone(), target.to_owned());
        self.writer
            .submit(move |connection| record_delivery(connection, &tenant, &target, &object))
            .await
    }

    async fn forget_delivery(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<(), StoreError> {
        let (tenant, target) = (tenant.clone(), target.to_owned());
        let (resource_type, id) = (resource_type.to_owned(), id.clone());
        self.writer
            .submit(move |connection| {
                connection
                    .prepare_cached(
                        "DELETE FROM sync_objects WHERE tenant_id = ?1 AND target = ?2
                         AND resource_type = ?3 AND resource_id = ?4",
                    )?
                    .execute(params![tenant.0, target, resource_type, id.0])?;
                Ok(())
            })
            .await
    }

    async fn add_dead_letter(
        &self,
        tenant: &TenantId,
        target: &str,
        letter: NewDeadLetter,
    ) -> Result<u64, StoreError> {
        let (tenant, target) = (tenant.clone(), target.to_owned());
        self.writer
            .submit(move |connection| add_dead_letter(connection, &tenant, &target, &letter))
            .await
    }

    async fn dead_letters(
        &self,
        tenant: &TenantId,
        target: Option<&str>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let tenant = tenant.clone();
        let target = target.map(str::to_owned);
        self.readers
            .read_all(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {LETTER_COLUMNS} FROM sync_dead_letters WHERE tenant_id = ?1
                     AND (?2 IS NULL OR target = ?2) ORDER BY id"
                ))?;
                let rows = statement.query_map(params![tenant.0, target], dead_letter)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn take_dead_letter(
        &self,
        tenant: &TenantId,
        id: u64,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let tenant = tenant.clone();
        self.writer
            .submit(move |connection| take_dead_letter(connection, &tenant, id))
            .await
    }
}
