//! The audit trail on SQLite (see [`crate::audit`]): `audit_log`, one row
//! per entry, chained as it is written, and `audit_heads`, each tenant's
//! last position and chain hash. `audit_log` is a rowid table (entries
//! are large, and appended at the end of its B-tree), with the tenant's
//! position unique beside it.
//!
//! The single writer (and SQLite's write lock, for other processes on the
//! file) gives the order: an entry is chained in the transaction of its
//! change, after the tenant's head, which moves on with it. Triggers keep
//! the rows append-only for anyone using SQL without dropping them first:
//! a row cannot be deleted, and an update may only erase its detail and
//! indexed `userName` (the purge's redaction). They are a guard against
//! mistakes, not against an attacker holding the file, which is what the
//! chain is for (`muster audit verify`).

use async_trait::async_trait;
use muster_audit::Link;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::read::to_version;
use super::values::now_text;
use super::write::WriteScope;
use super::SqliteStore;
use crate::audit::{self, AuditEntry, AuditEvent, AuditQuery, AuditStore, Detail, Head};
use crate::{Actor, ResourceId, StoreError, TenantId};

/// Version 11: the audit trail.
pub(crate) const MIGRATION: &str = "
CREATE TABLE audit_log (
    entry INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    at TEXT NOT NULL,
    client TEXT NOT NULL,
    operation TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    user_name TEXT,
    skeleton TEXT NOT NULL,
    detail TEXT,
    detail_hash TEXT NOT NULL,
    chain_hash TEXT NOT NULL,
    UNIQUE (tenant_id, position)
);
CREATE INDEX audit_log_resource ON audit_log (tenant_id, resource_id);
CREATE INDEX audit_log_user_name ON audit_log (tenant_id, user_name) WHERE user_name IS NOT NULL;
CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    chain_hash TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_log_redact_only BEFORE UPDATE ON audit_log
WHEN NEW.entry IS NOT OLD.entry OR NEW.tenant_id IS NOT OLD.tenant_id
    OR NEW.position IS NOT OLD.position
    OR NEW.skeleton IS NOT OLD.skeleton OR NEW.detail_hash IS NOT OLD.detail_hash
    OR NEW.chain_hash IS NOT OLD.chain_hash OR NEW.at IS NOT OLD.at
    OR NEW.client IS NOT OLD.client OR NEW.operation IS NOT OLD.operation
    OR NEW.resource_type IS NOT OLD.resource_type OR NEW.resource_id IS NOT OLD.resource_id
    OR (NEW.detail IS NOT NULL AND NEW.detail IS NOT OLD.detail)
    OR (NEW.user_name IS NOT NULL AND NEW.user_name IS NOT OLD.user_name)
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: only a redaction may change an entry');
END;
";

/// Appends the entry of a change (or event) in the caller's transaction.
pub(crate) fn append(
    connection: &Connection,
    scope: &WriteScope,
    head: (&str, &str, &str, u64, &str),
    detail: &Detail<'_>,
    origin: Option<&str>,
) -> Result<(), StoreError> {
    let (operation, resource_type, resource_id, version, at) = head;
    let tenant = &scope.tenant;
    let origin_path = super::settings::get(connection, tenant, audit::ORIGIN_ATTRIBUTE_SETTING)?;
    let prepared = audit::prepare(
        &Head {
            tenant,
            actor: &scope.actor,
            at,
            operation,
            resource_type,
            resource_id,
            version,
        },
        detail,
        origin_path.as_deref(),
        origin,
    );
    let previous: Option<(i64, String)> = connection
        .prepare_cached("SELECT position, chain_hash FROM audit_heads WHERE tenant_id = ?1")?
        .query_row(params![tenant.0], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (last, previous_hash) = previous.unwrap_or((0, muster_audit::GENESIS.to_owned()));
    let position = to_version(last) + 1;
    let chain_hash = muster_audit::link_hash(
        &previous_hash,
        position,
        &muster_audit::digest(&prepared.skeleton),
        &prepared.detail_hash,
    );
    let position = i64::try_from(position).unwrap_or(i64::MAX);
    connection
        .prepare_cached(
            "INSERT INTO audit_log (tenant_id, position, at, client, operation, resource_type,
                 resource_id, user_name, skeleton, detail, detail_hash, chain_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            tenant.0,
            position,
            at,
            scope.actor.client,
            prepared.operation,
            resource_type,
            resource_id,
            prepared.user_name,
            prepared.skeleton,
            prepared.detail,
            prepared.detail_hash,
            chain_hash,
        ])?;
    connection
        .prepare_cached(
            "INSERT INTO audit_heads (tenant_id, position, chain_hash) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant_id) DO UPDATE SET position = excluded.position,
                 chain_hash = excluded.chain_hash",
        )?
        .execute(params![tenant.0, position, chain_hash])?;
    Ok(())
}

/// The entries matching a query.
fn entries(
    connection: &Connection,
    tenant: &TenantId,
    query: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = String::from(
        "SELECT position, skeleton, detail FROM audit_log WHERE tenant_id = ?1 AND position > ?2",
    );
    let mut values: Vec<rusqlite::types::Value> = vec![
        tenant.0.clone().into(),
        i64::try_from(query.after).unwrap_or(i64::MAX).into(),
    ];
    let mut add = |clause: &str, value: String| {
        values.push(value.into());
        sql.push_str(&format!(" AND {clause} ?{}", values.len()));
    };
    if let Some(id) = &query.resource_id {
        add("resource_id =", id.0.clone());
    }
    if let Some(name) = &query.user_name {
        add("user_name =", name.to_lowercase());
    }
    if let Some(client) = &query.client {
        add("client =", client.clone());
    }
    if let Some(since) = &query.since {
        add("at >=", since.clone());
    }
    if let Some(until) = &query.until {
        add("at <", until.clone());
    }
    values.push(i64::try_from(query.limit).unwrap_or(i64::MAX).into());
    sql.push_str(&format!(" ORDER BY position LIMIT ?{}", values.len()));
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (position, skeleton, detail) = row?;
        Ok(audit::entry(
            to_version(position),
            &skeleton,
            detail.as_deref(),
        ))
    })
    .collect()
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit_entries(
        &self,
        tenant: &TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.readers
            .read(move |connection| entries(connection, &tenant, &query))
            .await
    }

    async fn audit_links(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: u64,
    ) -> Result<Vec<Link>, StoreError> {
        let tenant = tenant.clone();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT position, skeleton, detail, detail_hash, chain_hash FROM audit_log
                     WHERE tenant_id = ?1 AND position > ?2 ORDER BY position LIMIT ?3",
                )?;
                let rows = statement.query_map(params![tenant.0, after, limit], |row| {
                    Ok(Link {
                        position: to_version(row.get(0)?),
                        skeleton: row.get(1)?,
                        detail: row.get(2)?,
                        detail_hash: row.get(3)?,
                        chain_hash: row.get(4)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn audit_head(&self, tenant: &TenantId) -> Result<Option<(u64, String)>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| {
                let head: Option<(i64, String)> = connection
                    .prepare_cached(
                        "SELECT position, chain_hash FROM audit_heads WHERE tenant_id = ?1",
                    )?
                    .query_row(params![tenant.0], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                Ok(head.map(|(position, hash)| (to_version(position), hash)))
            })
            .await
    }

    async fn redact_audit_subject(
        &self,
        tenant: &TenantId,
        resource_id: &ResourceId,
    ) -> Result<u64, StoreError> {
        let (tenant, resource_id) = (tenant.clone(), resource_id.clone());
        self.writer
            .submit(move |connection| redact(connection, &tenant, &resource_id))
            .await
    }

    async fn record_audit(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        let scope = WriteScope {
            tenant: tenant.clone(),
            actor: actor.clone(),
        };
        self.writer
            .submit(move |connection| record_event(connection, &scope, &event))
            .await
    }
}

/// Redacts the entries about a resource (see
/// [`AuditStore::redact_audit_subject`]); callable inside another write's
/// transaction (a purge's).
pub(crate) fn redact(
    connection: &Connection,
    tenant: &TenantId,
    resource_id: &ResourceId,
) -> Result<u64, StoreError> {
    let changed = connection
        .prepare_cached(
            "UPDATE audit_log SET detail = NULL, user_name = NULL
             WHERE tenant_id = ?1 AND resource_id = ?2
               AND (detail IS NOT NULL OR user_name IS NOT NULL)",
        )?
        .execute(params![tenant.0, resource_id.0])?;
    Ok(u64::try_from(changed).unwrap_or_default())
}

/// Appends an event's entry.
pub(crate) fn record_event(
    connection: &Connection,
    scope: &WriteScope,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    let id = event
        .resource_id
        .as_ref()
        .map(|id| id.0.as_str())
        .unwrap_or_default();
    append(
        connection,
        scope,
        (&event.operation, &event.resource_type, id, 0, &now_text()),
        &Detail::Event(&event.detail),
        event.origin.as_deref(),
    )
}

/// The entry of a change written with the change record's payload text
/// (see `write::record_change`).
pub(crate) fn append_payload(
    connection: &Connection,
    scope: &WriteScope,
    head: (&str, &str, &str, u64, &str),
    payload: &str,
) -> Result<(), StoreError> {
    let payload: Value = serde_json::from_str(payload).unwrap_or(Value::String(payload.to_owned()));
    append(connection, scope, head, &Detail::Payload(&payload), None)
}
