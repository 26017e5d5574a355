//! The tenant registry on SQLite ([`crate::tenants::TenantStore`]).
//!
//! The `tenants` table of the initial schema is the registry, so this
//! module needs no migration. Writes go through the writer thread; a
//! removal finds the tables holding tenant rows in `sqlite_master` and
//! clears them, referencing tables first, in the writer's transaction.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::values::now_text;
use super::SqliteStore;
use crate::tenants::{
    default_refused, deletion_order, parse_tenant_name, quoted, still_holds, unknown_tenant,
    TenantHoldings, TenantStore, TenantSummary,
};
use crate::{StoreError, TenantId};

fn exists(connection: &Connection, tenant: &TenantId) -> Result<bool, StoreError> {
    Ok(connection
        .prepare_cached("SELECT 1 FROM tenants WHERE tenant_id = ?1")?
        .query_row(params![tenant.0], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Every table but `tenants` with a `tenant_id` column, in deletion order.
fn tenant_tables(connection: &Connection) -> Result<Vec<String>, StoreError> {
    let tables = connection
        .prepare(
            "SELECT m.name FROM sqlite_master m
             WHERE m.type = 'table' AND m.name <> 'tenants'
               AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'tenant_id')
             ORDER BY m.name",
        )?
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let references = connection
        .prepare(
            "SELECT m.name, f.\"table\" FROM sqlite_master m
             CROSS JOIN pragma_foreign_key_list(m.name) f
             WHERE m.type = 'table'",
        )?
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(deletion_order(&tables, &references))
}

fn holdings(
    connection: &Connection,
    tenant: &TenantId,
    tables: &[String],
) -> Result<TenantHoldings, StoreError> {
    let mut held = Vec::new();
    for table in tables {
        let count: i64 = connection
            .prepare(&format!(
                "SELECT count(*) FROM {} WHERE tenant_id = ?1",
                quoted(table)
            ))?
            .query_row(params![tenant.0], |row| row.get(0))?;
        if count > 0 {
            held.push((table.clone(), u64::try_from(count).unwrap_or_default()));
        }
    }
    held.sort();
    Ok(held)
}

fn remove(
    connection: &Connection,
    tenant: &TenantId,
    force: bool,
) -> Result<TenantHoldings, StoreError> {
    if *tenant == TenantId::default_tenant() {
        return Err(default_refused());
    }
    if !exists(connection, tenant)? {
        return Err(unknown_tenant(tenant));
    }
    let tables = tenant_tables(connection)?;
    let held = holdings(connection, tenant, &tables)?;
    if !held.is_empty() && !force {
        return Err(still_holds(tenant, &held));
    }
    // The audit trail stays (its chain verifies), but the personal data of
    // its entries goes with the tenant: the redaction a purge makes.
    connection
        .prepare_cached(
            "UPDATE audit_log SET detail = NULL, user_name = NULL
             WHERE tenant_id = ?1 AND (detail IS NOT NULL OR user_name IS NOT NULL)",
        )?
        .execute(params![tenant.0])?;
    for table in &tables {
        connection
            .prepare(&format!(
                "DELETE FROM {} WHERE tenant_id = ?1",
                quoted(table)
            ))?
            .execute(params![tenant.0])?;
    }
    connection
        .prepare_cached("DELETE FROM tenants WHERE tenant_id = ?1")?
        .execute(params![tenant.0])?;
    Ok(held)
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let tenant = parse_tenant_name(&tenant.0)
            .map_err(|detail| StoreError::Scim(muster_scim::ScimError::invalid_value(detail)))?;
        self.writer
            .submit(move |connection| {
                let inserted = connection
                    .prepare_cached(
                        "INSERT OR IGNORE INTO tenants (tenant_id, created) VALUES (?1, ?2)",
                    )?
                    .execute(params![tenant.0, now_text()])?;
                if inserted == 0 {
                    return Err(StoreError::Conflict(format!(
                        "tenant '{}' already exists",
                        tenant.0
                    )));
                }
                Ok(())
            })
            .await
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| exists(connection, &tenant))
            .await
    }

    async fn list_tenants(&self) -> Result<Vec<TenantSummary>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT t.tenant_id, t.created,
                        (SELECT count(*) FROM resources r
                         WHERE r.tenant_id = t.tenant_id AND r.resource_type = 'User'),
                        (SELECT count(*) FROM resources r
                         WHERE r.tenant_id = t.tenant_id AND r.resource_type = 'Group'),
                        (SELECT count(*) FROM tokens k WHERE k.tenant_id = t.tenant_id)
                     FROM tenants t ORDER BY t.tenant_id",
                )?;
                let count = |value: i64| u64::try_from(value).unwrap_or_default();
                let rows = statement.query_map([], |row| {
                    Ok(TenantSummary {
                        tenant: TenantId(row.get(0)?),
                        created: row.get(1)?,
                        users: count(row.get(2)?),
                        groups: count(row.get(3)?),
                        tokens: count(row.get(4)?),
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn remove_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
    ) -> Result<TenantHoldings, StoreError> {
        let tenant = tenant.clone();
        // In a transaction of its own: it may erase many rows.
        self.writer
            .submit_alone(move |connection| remove(connection, &tenant, force))
            .await
    }
}
