//! Tenant settings on PostgreSQL: plain keys and values, such as the
//! server's undeclared-attribute policy. The store gives them no meaning,
//! but since some decide how writes are validated, a change of any of them
//! moves the tenant's schema generation on, as on SQLite.
//!
//! A change locks the tenant's row first (`schemas::lock_tenant`), so
//! setting changes and schema changes of a tenant are serialised across
//! processes and a setting's version count never forks.

use serde_json::json;

use super::feed::{record_change, NewChange};
use super::{begin, rules, schemas, PostgresStore, MAX_ATTEMPTS};
use crate::sqlite::read::to_version;
use crate::{Actor, ChangeKind, ResourceId, StoreError, TenantId};

/// The `resource_type` of a setting's change records.
const SETTING: &str = "Setting";

/// [`crate::Store::get_setting`]: a setting's value, `None` when never set.
pub(super) async fn get(
    store: &PostgresStore,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_opt(
            "SELECT value FROM settings WHERE tenant_id = $1 AND key = $2",
            &[&tenant.0, &key],
        )
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// [`crate::Store::set_setting`]: sets a setting, records the change and
/// bumps the tenant's schema generation; setting the value it already has
/// changes nothing, records nothing and bumps nothing. Retried on
/// contention.
pub(super) async fn set(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        match set_once(store, tenant, actor, key, value).await {
            Err(StoreError::Contention(_)) if attempt < MAX_ATTEMPTS => attempt += 1,
            outcome => return outcome,
        }
    }
}

/// One attempt of [`set`], in one transaction.
async fn set_once(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    let mut client = store.client().await?;
    let transaction = begin(&mut client).await?;
    if !schemas::lock_tenant(&transaction, tenant).await? {
        return Err(schemas::no_tenant(tenant));
    }
    let previous = transaction
        .query_opt(
            "SELECT value, version FROM settings WHERE tenant_id = $1 AND key = $2",
            &[&tenant.0, &key],
        )
        .await?;
    let previous: Option<(String, i64)> = match previous {
        Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
        None => None,
    };
    if previous.as_ref().is_some_and(|(old, _)| old == value) {
        return Ok(());
    }
    let version = previous.map_or(1, |(_, version)| to_version(version) + 1);
    transaction
        .execute(
            "INSERT INTO settings (tenant_id, key, value, version, updated, client)
             VALUES ($1, $2, $3, $4, now(), $5)
             ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value,
                 version = excluded.version, updated = excluded.updated,
                 client = excluded.client",
            &[
                &tenant.0,
                &key,
                &value,
                &i64::try_from(version).unwrap_or(i64::MAX),
                &actor.client,
            ],
        )
        .await?;
    record_change(
        &transaction,
        NewChange {
            tenant,
            kind: ChangeKind::Setting,
            resource_type: SETTING,
            resource_id: &ResourceId(key.to_owned()),
            version,
            actor,
            payload: &json!({ "key": key, "value": value }),
        },
    )
    .await?;
    rules::bump(&transaction, tenant).await?;
    transaction.commit().await?;
    Ok(())
}
