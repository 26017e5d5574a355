//! Tombstones of soft-deleted resources on PostgreSQL, with the semantics
//! of `sqlite/lifecycle.rs` (see [`crate::lifecycle`]).
//!
//! Concurrency: a restore and a purge lock the tombstone row
//! (`FOR UPDATE`) before deciding on it, so of two concurrent restores of
//! one id the second finds no tombstone once the first commits; a soft
//! delete writes the tombstone in the delete's transaction, after locking
//! the tenant row and the resource (`write::delete_as`).

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Row, Transaction};

use super::read::finish;
use super::write::{self, create_in, load_current, update_in};
use super::{begin, PostgresStore, MAX_ATTEMPTS};
use crate::audit::AuditStore;
use crate::lifecycle::{LifecycleStore, Tombstone};
use crate::sqlite::lifecycle::{refuse_unrestorable, skeleton_payload};
use crate::sqlite::read::{parse_object, to_version, unmapped_text, GROUP};
use crate::sqlite::values::now_text;
use crate::sqlite::write::{Current, FirstVersion};
use crate::{
    Actor, Member, MemberChange, NewResource, Precondition, Removal, ResourceId, Retention,
    StoreError, StoredResource, TenantId, Update,
};

/// Version 3: the tombstones, as SQLite's version 10 (`deleted_at` as the
/// RFC 3339 text clients see, `deleted_instant` for comparisons).
pub(crate) const MIGRATION: &str = "
CREATE TABLE deleted_resources (
    tenant_id text NOT NULL,
    id text NOT NULL,
    resource_type text NOT NULL,
    json text,
    unmapped text,
    user_name text,
    external_id text,
    groups text NOT NULL DEFAULT '[]',
    version bigint NOT NULL,
    created text NOT NULL,
    deleted_at text NOT NULL,
    deleted_instant timestamptz NOT NULL,
    deleted_by text NOT NULL,
    deleted_request text NOT NULL,
    purged_at text,
    purged_by text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX deleted_resources_by_external_id
    ON deleted_resources (tenant_id, resource_type, external_id);
CREATE INDEX deleted_resources_by_instant ON deleted_resources (tenant_id, deleted_instant);
";

const COLUMNS: &str = "id, resource_type, json, unmapped, user_name, external_id, groups,
    version, created, deleted_at, deleted_by, deleted_request, purged_at, purged_by";

fn tombstone_of(row: &Row) -> Result<Tombstone, StoreError> {
    let groups: String = row.try_get(6)?;
    let groups: Vec<String> = serde_json::from_str(&groups).unwrap_or_default();
    let json: Option<String> = row.try_get(2)?;
    let unmapped: Option<String> = row.try_get(3)?;
    Ok(Tombstone {
        id: ResourceId(row.try_get(0)?),
        resource_type: row.try_get(1)?,
        resource: json
            .as_deref()
            .map(parse_object)
            .transpose()?
            .map(Value::Object),
        unmapped: match unmapped.as_deref() {
            Some(text) => parse_object(text)?,
            None => Map::new(),
        },
        user_name: row.try_get(4)?,
        external_id: row.try_get(5)?,
        groups: groups.into_iter().map(ResourceId).collect(),
        version: to_version(row.try_get(7)?),
        created: row.try_get(8)?,
        deleted_at: row.try_get(9)?,
        deleted_by: row.try_get(10)?,
        deleted_request: row.try_get(11)?,
        purged_at: row.try_get(12)?,
        purged_by: row.try_get(13)?,
    })
}

/// Reads (and with `lock`, locks) a tombstone in `transaction`.
async fn load(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    id: &ResourceId,
    lock: bool,
) -> Result<Option<Tombstone>, StoreError> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    let row = transaction
        .query_typed_opt(
            &format!(
                "SELECT {COLUMNS} FROM deleted_resources WHERE tenant_id = $1 AND id = $2 {lock}"
            ),
            &[(&tenant.0, Type::TEXT), (&id.0, Type::TEXT)],
        )
        .await?;
    row.as_ref().map(tombstone_of).transpose()
}

/// Keeps the tombstone of a resource a soft delete removes (called by
/// `write::delete_as` with the resource locked, before anything goes).
pub(super) async fn keep_tombstone(
    transaction: &Transaction<'_>,
    (tenant, actor): (&TenantId, &Actor),
    resource_type: &str,
    id: &ResourceId,
    current: &Current,
    groups: &[String],
) -> Result<(), StoreError> {
    let now = now_text();
    let text = serde_json::to_string(&current.object)
        .map_err(|error| StoreError::Database(format!("cannot serialise a tombstone: {error}")))?;
    let user_name = current.object.get("userName").and_then(Value::as_str);
    let external_id = current.object.get("externalId").and_then(Value::as_str);
    let unmapped = unmapped_text(&current.unmapped)?;
    let groups = json!(groups).to_string();
    let version = i64::try_from(current.version).unwrap_or(i64::MAX);
    transaction
        .execute_typed(
            "INSERT INTO deleted_resources (tenant_id, id, resource_type, json, unmapped,
                 user_name, external_id, groups, version, created, deleted_at, deleted_instant,
                 deleted_by, deleted_request, purged_at, purged_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11::text::timestamptz,
                 $12, $13, NULL, NULL)
             ON CONFLICT (tenant_id, id) DO UPDATE SET resource_type = excluded.resource_type,
                 json = excluded.json, unmapped = excluded.unmapped,
                 user_name = excluded.user_name, external_id = excluded.external_id,
                 groups = excluded.groups, version = excluded.version,
                 created = excluded.created, deleted_at = excluded.deleted_at,
                 deleted_instant = excluded.deleted_instant, deleted_by = excluded.deleted_by,
                 deleted_request = excluded.deleted_request, purged_at = NULL,
                 purged_by = NULL",
            &[
                (&tenant.0, Type::TEXT),
                (&id.0, Type::TEXT),
                (&resource_type, Type::TEXT),
                (&text, Type::TEXT),
                (&unmapped, Type::TEXT),
                (&user_name, Type::TEXT),
                (&external_id, Type::TEXT),
                (&groups, Type::TEXT),
                (&version, Type::INT8),
                (&current.created, Type::TEXT),
                (&now, Type::TEXT),
                (&actor.client, Type::TEXT),
                (&actor.request_id, Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

async fn restore(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    resource_type: &str,
    id: &ResourceId,
    mut new: NewResource,
    within: &Retention,
) -> Result<StoredResource, StoreError> {
    let cutoff = within.cutoff()?;
    new.id = Some(id.clone());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = store.client().await?;
        let transaction = begin(&mut client).await?;
        let result = async {
            let Some(tombstone) = load(&transaction, tenant, id, true).await? else {
                return Err(StoreError::NotFound(format!(
                    "no deleted {resource_type} '{}' to restore",
                    id.0
                )));
            };
            refuse_unrestorable(&tombstone, resource_type, &cutoff.sortable)?;
            transaction
                .execute_typed(
                    "DELETE FROM deleted_resources WHERE tenant_id = $1 AND id = $2",
                    &[(&tenant.0, Type::TEXT), (&id.0, Type::TEXT)],
                )
                .await?;
            let first = FirstVersion {
                version: tombstone.version + 1,
                created: tombstone.created.clone(),
            };
            let (mut scope, created) = create_in(
                &transaction,
                tenant,
                actor,
                resource_type,
                id,
                &new,
                Some(&first),
            )
            .await?;
            let mut regrouped = false;
            for group in &tombstone.groups {
                let current = match load_current(&transaction, tenant, GROUP, group).await {
                    Ok(current) => current,
                    Err(StoreError::NotFound(_)) => continue,
                    Err(error) => return Err(error),
                };
                let update = Update {
                    resource: Value::Object(current.object.clone()),
                    member_changes: vec![MemberChange::Add(vec![Member {
                        value: id.clone(),
                        kind: Some(resource_type.to_owned()),
                    }])],
                    unmapped: None,
                    unique: Vec::new(),
                    schema_generation: None,
                    never_returned: Vec::new(),
                    derivation: new.derivation.clone(),
                };
                update_in(&transaction, &mut scope, GROUP, group, current, update).await?;
                regrouped = true;
            }
            let stored = if regrouped {
                // The groups gave it a new version and computed `groups`.
                let current = load_current(&transaction, tenant, resource_type, id).await?;
                StoredResource {
                    id: id.clone(),
                    resource_type: resource_type.to_owned(),
                    resource: Value::Object(current.object),
                    version: current.version,
                    unmapped: current.unmapped,
                }
            } else {
                created
            };
            let stored = finish(&*transaction, tenant, stored, false).await?;
            Ok((scope, stored))
        }
        .await;
        let result = match result {
            Ok((scope, stored)) => match scope.commit(transaction).await {
                Ok(usage) => {
                    usage.record(&mut client).await;
                    Ok(stored)
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        match result {
            Err(StoreError::Contention(_)) if attempt < MAX_ATTEMPTS => {}
            result => return result,
        }
    }
}

/// A purge in `transaction`; the caller commits.
async fn purge_in(
    transaction: &Transaction<'_>,
    (tenant, actor): (&TenantId, &Actor),
    id: &ResourceId,
) -> Result<Tombstone, StoreError> {
    let Some(tombstone) = load(transaction, tenant, id, true).await? else {
        return Err(StoreError::NotFound(format!(
            "no deleted resource '{}' to purge",
            id.0
        )));
    };
    if tombstone.purged() {
        return Ok(tombstone);
    }
    let now = now_text();
    transaction
        .execute_typed(
            "UPDATE deleted_resources SET json = NULL, unmapped = NULL, user_name = NULL,
                 external_id = NULL, groups = '[]', purged_at = $3, purged_by = $4
             WHERE tenant_id = $1 AND id = $2",
            &[
                (&tenant.0, Type::TEXT),
                (&id.0, Type::TEXT),
                (&now, Type::TEXT),
                (&actor.client, Type::TEXT),
            ],
        )
        .await?;
    // The change records about it keep their skeleton only.
    let deleted = skeleton_payload("delete", id, &tombstone.resource_type).to_string();
    let other = skeleton_payload("update", id, &tombstone.resource_type).to_string();
    transaction
        .execute_typed(
            "UPDATE changes SET payload = CASE WHEN kind = 'delete' THEN $4::text::jsonb
                 ELSE $5::text::jsonb END
             WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3",
            &[
                (&tenant.0, Type::TEXT),
                (&tombstone.resource_type, Type::TEXT),
                (&id.0, Type::TEXT),
                (&deleted, Type::TEXT),
                (&other, Type::TEXT),
            ],
        )
        .await?;
    // What targets were sent about it, and dead letters, keep no values.
    for sql in [
        "UPDATE sync_objects SET sent = '{}'::jsonb, answer = NULL
         WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3",
        "UPDATE sync_dead_letters SET request = '{}'::jsonb, response = '{}'::jsonb
         WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3",
    ] {
        transaction
            .execute_typed(
                sql,
                &[
                    (&tenant.0, Type::TEXT),
                    (&tombstone.resource_type, Type::TEXT),
                    (&id.0, Type::TEXT),
                ],
            )
            .await?;
    }
    load(transaction, tenant, id, false)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no deleted resource '{}'", id.0)))
}

async fn purge(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    id: &ResourceId,
) -> Result<Tombstone, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = store.client().await?;
        let transaction = begin(&mut client).await?;
        let result = match purge_in(&transaction, (tenant, actor), id).await {
            Ok(tombstone) => transaction
                .commit()
                .await
                .map(|()| tombstone)
                .map_err(StoreError::from),
            Err(error) => Err(error),
        };
        match result {
            Err(StoreError::Contention(_)) if attempt < MAX_ATTEMPTS => {}
            Ok(tombstone) => {
                // The audit trail's entries about it lose their detail,
                // keeping their skeleton and hashes; idempotent, so a
                // purge run again finishes one cut short here.
                store.redact_audit_subject(tenant, id).await?;
                return Ok(tombstone);
            }
            result => return result,
        }
    }
}

#[async_trait]
impl LifecycleStore for PostgresStore {
    async fn soft_delete(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
        removal: Removal,
    ) -> Result<(), StoreError> {
        write::delete_as(
            self,
            (tenant, actor),
            resource_type,
            id,
            precondition,
            removal,
            true,
        )
        .await
    }

    async fn tombstone(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Tombstone>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM deleted_resources WHERE tenant_id = $1 AND id = $2"
                ),
                &[&tenant.0, &id.0],
            )
            .await?;
        row.as_ref().map(tombstone_of).transpose()
    }

    async fn tombstones(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        limit: u64,
    ) -> Result<Vec<Tombstone>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM deleted_resources
                     WHERE tenant_id = $1 AND resource_type = $2
                     ORDER BY deleted_instant DESC, id LIMIT $3"
                ),
                &[&tenant.0, &resource_type, &limit],
            )
            .await?;
        rows.iter().map(tombstone_of).collect()
    }

    async fn restorable_by_external_id(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        external_id: &str,
        within: Retention,
    ) -> Result<Option<ResourceId>, StoreError> {
        let cutoff = within.cutoff()?;
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id FROM deleted_resources
                 WHERE tenant_id = $1 AND resource_type = $2 AND external_id = $3
                     AND purged_at IS NULL AND deleted_instant >= $4::text::timestamptz
                 ORDER BY deleted_instant DESC LIMIT 1",
                &[&tenant.0, &resource_type, &external_id, &cutoff.text],
            )
            .await?;
        Ok(row.map(|row| ResourceId(row.get(0))))
    }

    async fn restore(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        new: NewResource,
        within: Retention,
    ) -> Result<StoredResource, StoreError> {
        restore(self, tenant, actor, resource_type, id, new, &within).await
    }

    async fn purge(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &ResourceId,
    ) -> Result<Tombstone, StoreError> {
        purge(self, tenant, actor, id).await
    }

    async fn purge_expired(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        older_than: Retention,
    ) -> Result<Vec<ResourceId>, StoreError> {
        let cutoff = older_than.cutoff()?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM deleted_resources
                 WHERE tenant_id = $1 AND purged_at IS NULL
                     AND deleted_instant < $2::text::timestamptz
                 ORDER BY deleted_instant",
                &[&tenant.0, &cutoff.text],
            )
            .await?;
        drop(client);
        let mut purged = Vec::with_capacity(rows.len());
        for row in rows {
            let id = ResourceId(row.try_get(0)?);
            purge(self, tenant, actor, &id).await?;
            purged.push(id);
        }
        Ok(purged)
    }

    async fn tenants_with_tombstones(&self) -> Result<Vec<TenantId>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT tenant_id FROM deleted_resources WHERE purged_at IS NULL
                 ORDER BY tenant_id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| Ok(TenantId(row.try_get(0)?)))
            .collect()
    }
}
