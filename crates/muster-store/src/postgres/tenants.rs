//! The tenant registry on PostgreSQL ([`crate::tenants::TenantStore`]),
//! with SQLite's semantics (`sqlite/tenants.rs`).
//!
//! The initial schema's `tenants` table is the registry, so this module
//! needs no migration. A removal first locks the tenant's row `FOR UPDATE`
//! (as a schema change does, see `schemas.rs`): it waits for the tenant's
//! writes in progress, which hold the row `FOR SHARE` or `FOR KEY SHARE`,
//! and a write that comes after it finds no tenant and is refused
//! (`tenant 'x' does not exist`). The tables to clear are read from the
//! catalogue (every table of the schema with a `tenant_id` column) and
//! cleared referencing tables first, all in that one transaction.

use async_trait::async_trait;
use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

use super::consumers::{instant_text, unsigned};
use super::schemas::lock_tenant;
use super::{begin, PostgresStore};
use crate::tenants::{
    default_refused, deletion_order, parse_tenant_name, quoted, still_holds, unknown_tenant,
    TenantHoldings, TenantStore, TenantSummary,
};
use crate::{StoreError, TenantId};

/// Every table of the current schema but `tenants` with a `tenant_id`
/// column, in deletion order.
async fn tenant_tables(transaction: &Transaction<'_>) -> Result<Vec<String>, StoreError> {
    let tables: Vec<String> = transaction
        .query(
            "SELECT c.table_name::text FROM information_schema.columns c
             JOIN information_schema.tables t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id'
               AND t.table_type = 'BASE TABLE' AND c.table_name <> 'tenants'
             ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let references: Vec<(String, String)> = transaction
        .query(
            "SELECT referencing.relname::text, referenced.relname::text
             FROM pg_constraint k
             JOIN pg_class referencing ON referencing.oid = k.conrelid
             JOIN pg_class referenced ON referenced.oid = k.confrelid
             WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    Ok(deletion_order(&tables, &references))
}

async fn remove(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    force: bool,
) -> Result<TenantHoldings, StoreError> {
    if !lock_tenant(transaction, tenant).await? {
        return Err(unknown_tenant(tenant));
    }
    let tables = tenant_tables(transaction).await?;
    let mut held = Vec::new();
    for table in &tables {
        let count: i64 = transaction
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE tenant_id = $1",
                    quoted(table)
                ),
                &[&tenant.0],
            )
            .await?
            .get(0);
        if count > 0 {
            held.push((table.clone(), unsigned(count)));
        }
    }
    held.sort();
    if !held.is_empty() && !force {
        return Err(still_holds(tenant, &held));
    }
    // The audit trail stays (its chain verifies), but the personal data of
    // its entries goes with the tenant: the redaction a purge makes.
    transaction
        .execute(
            "UPDATE audit_log SET detail = NULL, user_name = NULL
             WHERE tenant_id = $1 AND (detail IS NOT NULL OR user_name IS NOT NULL)",
            &[&tenant.0],
        )
        .await?;
    for table in &tables {
        transaction
            .execute(
                &format!("DELETE FROM {} WHERE tenant_id = $1", quoted(table)),
                &[&tenant.0],
            )
            .await?;
    }
    transaction
        .execute("DELETE FROM tenants WHERE tenant_id = $1", &[&tenant.0])
        .await?;
    Ok(held)
}

#[async_trait]
impl TenantStore for PostgresStore {
    async fn create_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let tenant = parse_tenant_name(&tenant.0)
            .map_err(|detail| StoreError::Scim(muster_scim::ScimError::invalid_value(detail)))?;
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&tenant.0],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "tenant '{}' already exists",
                tenant.0
            )));
        }
        Ok(())
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT 1 FROM tenants WHERE tenant_id = $1", &[&tenant.0])
            .await?
            .is_some())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantSummary>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT t.tenant_id, {},
                        (SELECT count(*) FROM resources r
                         WHERE r.tenant_id = t.tenant_id AND r.resource_type = 'User'),
                        (SELECT count(*) FROM resources r
                         WHERE r.tenant_id = t.tenant_id AND r.resource_type = 'Group'),
                        (SELECT count(*) FROM tokens k WHERE k.tenant_id = t.tenant_id)
                     FROM tenants t ORDER BY t.tenant_id COLLATE \"C\"",
                    instant_text("t.created")
                ),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| TenantSummary {
                tenant: TenantId(row.get(0)),
                created: row.get(1),
                users: unsigned(row.get(2)),
                groups: unsigned(row.get(3)),
                tokens: unsigned(row.get(4)),
            })
            .collect())
    }

    async fn remove_tenant(
        &self,
        tenant: &TenantId,
        force: bool,
    ) -> Result<TenantHoldings, StoreError> {
        if *tenant == TenantId::default_tenant() {
            return Err(default_refused());
        }
        let mut client = self.client().await?;
        let transaction = begin(&mut client).await?;
        // On an error, dropping the transaction rolls it back.
        let held = remove(&transaction, tenant, force).await?;
        transaction.commit().await.map_err(|error| {
            if error.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) {
                StoreError::Contention(error.to_string())
            } else {
                StoreError::from(error)
            }
        })?;
        Ok(held)
    }
}
