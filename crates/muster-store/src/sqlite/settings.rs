//! Tenant settings (`settings`): plain keys and values, such as the
//! server's undeclared-attribute policy. The store gives them no meaning,
//! but since some decide how writes are validated, a change of any of them
//! moves the tenant's schema generation on (`rules.rs`).

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use super::read::to_version;
use super::rules;
use super::values::now_text;
use super::write::{insert_error, record_change, WriteScope};
use crate::{ChangeKind, ResourceId, StoreError, TenantId};

/// The `resource_type` of a setting's change records.
const SETTING: &str = "Setting";

/// A setting's value, `None` when never set.
pub(crate) fn get(
    connection: &Connection,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT value FROM settings WHERE tenant_id = ?1 AND key = ?2")?
        .query_row(params![tenant.0, key], |row| row.get(0))
        .optional()?)
}

/// Sets a setting, records the change and bumps the tenant's schema
/// generation; setting the value it already has changes nothing, records
/// nothing and bumps nothing.
pub(crate) fn set(
    connection: &Connection,
    scope: &WriteScope,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    let tenant = &scope.tenant;
    let previous: Option<(String, i64)> = connection
        .prepare_cached("SELECT value, version FROM settings WHERE tenant_id = ?1 AND key = ?2")?
        .query_row(params![tenant.0, key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if previous.as_ref().is_some_and(|(old, _)| old == value) {
        return Ok(());
    }
    let version = previous.map_or(1, |(_, version)| to_version(version) + 1);
    let now = now_text();
    let written = connection
        .prepare_cached(
            "INSERT INTO settings (tenant_id, key, value, version, updated, client)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value,
                 version = excluded.version, updated = excluded.updated,
                 client = excluded.client",
        )?
        .execute(params![
            tenant.0,
            key,
            value,
            i64::try_from(version).unwrap_or(i64::MAX),
            now,
            scope.actor.client,
        ]);
    if let Err(error) = written {
        return Err(insert_error(error, tenant));
    }
    record_change(
        connection,
        scope,
        ChangeKind::Setting,
        SETTING,
        &ResourceId(key.to_owned()),
        version,
        &now,
        &json!({ "key": key, "value": value }).to_string(),
    )?;
    rules::bump(connection, tenant)
}
