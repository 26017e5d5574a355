//! Tombstones of soft-deleted resources (`deleted_resources`): kept by a
//! soft delete in its transaction (`write::delete_as`), restored through
//! the create path (`write::create_as`) with the same id, purged to a
//! skeleton. See [`crate::lifecycle`] for the contract.
//!
//! Every write runs on the writer thread, so a restore, a purge and a
//! delete of one id never interleave: a second restore finds no tombstone.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Map, Value};

use super::read::{finish, parse_object, parse_unmapped, to_version, unmapped_text, GROUP};
use super::values::{now_text, sortable_instant};
use super::write::{self, Current, FirstVersion, UpdateRequest, WriteScope};
use super::SqliteStore;
use crate::lifecycle::{LifecycleStore, Tombstone};
use crate::{
    Actor, Member, MemberChange, NewResource, Precondition, Removal, ResourceId, Retention,
    StoreError, StoredResource, TenantId, Update,
};

/// Version 10: the tombstones. `json`, `unmapped`, `user_name`,
/// `external_id` and `groups` are the personal part a purge erases;
/// `deleted_instant` is `deleted_at` in `values::sortable_instant` form.
pub(crate) const MIGRATION: &str = "
CREATE TABLE deleted_resources (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    json TEXT,
    unmapped TEXT,
    user_name TEXT,
    external_id TEXT,
    groups TEXT NOT NULL DEFAULT '[]',
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    deleted_instant TEXT NOT NULL,
    deleted_by TEXT NOT NULL,
    deleted_request TEXT NOT NULL,
    purged_at TEXT,
    purged_by TEXT,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX deleted_resources_by_external_id
    ON deleted_resources (tenant_id, resource_type, external_id);
CREATE INDEX deleted_resources_by_instant ON deleted_resources (tenant_id, deleted_instant);
";

const COLUMNS: &str = "id, resource_type, json, unmapped, user_name, external_id, groups,
    version, created, deleted_at, deleted_by, deleted_request, purged_at, purged_by";

fn tombstone_of(row: &Row<'_>) -> rusqlite::Result<(Tombstone, Option<String>, Option<String>)> {
    let groups: String = row.get(6)?;
    let groups: Vec<String> = serde_json::from_str(&groups).unwrap_or_default();
    Ok((
        Tombstone {
            id: ResourceId(row.get(0)?),
            resource_type: row.get(1)?,
            resource: None,
            unmapped: Map::new(),
            user_name: row.get(4)?,
            external_id: row.get(5)?,
            groups: groups.into_iter().map(ResourceId).collect(),
            version: to_version(row.get(7)?),
            created: row.get(8)?,
            deleted_at: row.get(9)?,
            deleted_by: row.get(10)?,
            deleted_request: row.get(11)?,
            purged_at: row.get(12)?,
            purged_by: row.get(13)?,
        },
        row.get(2)?,
        row.get(3)?,
    ))
}

/// A tombstone with its JSON parsed.
fn parsed(
    (mut tombstone, json, unmapped): (Tombstone, Option<String>, Option<String>),
) -> Result<Tombstone, StoreError> {
    tombstone.resource = json
        .as_deref()
        .map(parse_object)
        .transpose()?
        .map(Value::Object);
    tombstone.unmapped = parse_unmapped(unmapped.as_deref())?;
    Ok(tombstone)
}

fn load(
    connection: &Connection,
    tenant: &TenantId,
    id: &ResourceId,
) -> Result<Option<Tombstone>, StoreError> {
    let row = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deleted_resources WHERE tenant_id = ?1 AND id = ?2"
        ))?
        .query_row(params![tenant.0, id.0], tombstone_of)
        .optional()?;
    row.map(parsed).transpose()
}

/// Keeps the tombstone of a resource a soft delete removes: called by
/// `write::delete_as` after reading the row and the groups that hold it,
/// before anything goes. A tombstone of the same id is replaced.
pub(crate) fn keep_tombstone(
    connection: &Connection,
    scope: &WriteScope,
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
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO deleted_resources (tenant_id, id, resource_type, json,
                 unmapped, user_name, external_id, groups, version, created, deleted_at,
                 deleted_instant, deleted_by, deleted_request, purged_at, purged_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, NULL)",
        )?
        .execute(params![
            scope.tenant.0,
            id.0,
            resource_type,
            text,
            unmapped_text(&current.unmapped)?,
            user_name,
            external_id,
            json!(groups).to_string(),
            i64::try_from(current.version).unwrap_or(i64::MAX),
            current.created,
            now,
            sortable_instant(&now),
            scope.actor.client,
            scope.actor.request_id,
        ])?;
    Ok(())
}

fn restore(
    connection: &Connection,
    scope: &WriteScope,
    resource_type: &str,
    id: &ResourceId,
    mut new: NewResource,
    within: &Retention,
) -> Result<StoredResource, StoreError> {
    let cutoff = within.cutoff()?;
    let Some(tombstone) = load(connection, &scope.tenant, id)? else {
        return Err(StoreError::NotFound(format!(
            "no deleted {resource_type} '{}' to restore",
            id.0
        )));
    };
    refuse_unrestorable(&tombstone, resource_type, &cutoff.sortable)?;
    connection
        .prepare_cached("DELETE FROM deleted_resources WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![scope.tenant.0, id.0])?;
    new.id = Some(id.clone());
    let derivation = new.derivation.clone();
    let first = FirstVersion {
        version: tombstone.version + 1,
        created: tombstone.created.clone(),
    };
    let created = write::create_as(connection, scope, resource_type, new, Some(first))?;
    let mut regrouped = false;
    for group in &tombstone.groups {
        let exists: Option<i64> = connection
            .prepare_cached(
                "SELECT seq FROM resources WHERE tenant_id = ?1 AND id = ?2
                 AND resource_type = 'Group'",
            )?
            .query_row(params![scope.tenant.0, group.0], |row| row.get(0))
            .optional()?;
        if exists.is_none() {
            continue;
        }
        let request = UpdateRequest {
            resource_type: GROUP.to_owned(),
            id: group.clone(),
            precondition: Precondition::None,
            include_members: false,
        };
        write::update(
            connection,
            scope,
            &request,
            rejoin(id, resource_type, derivation.clone()),
        )?;
        regrouped = true;
    }
    if !regrouped {
        return Ok(created);
    }
    // The groups gave it a new version and computed `groups`.
    let row = connection
        .prepare_cached(
            "SELECT json, version, unmapped FROM resources
             WHERE tenant_id = ?1 AND id = ?2 AND resource_type = ?3",
        )?
        .query_row(params![scope.tenant.0, id.0, resource_type], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })?;
    let stored = StoredResource {
        id: id.clone(),
        resource_type: resource_type.to_owned(),
        resource: Value::Object(parse_object(&row.0)?),
        version: to_version(row.1),
        unmapped: parse_unmapped(row.2.as_deref())?,
    };
    finish(connection, &scope.tenant, stored, false)
}

/// The update of a group that puts a restored resource back among its
/// members, nothing else changed.
pub(crate) fn rejoin(
    id: &ResourceId,
    resource_type: &str,
    derivation: Option<crate::SharedDerivation>,
) -> crate::UpdateFn {
    let member = Member {
        value: id.clone(),
        kind: Some(resource_type.to_owned()),
    };
    Box::new(move |current: &StoredResource| {
        Ok(Some(Update {
            resource: current.resource.clone(),
            member_changes: vec![MemberChange::Add(vec![member])],
            unmapped: None,
            unique: Vec::new(),
            schema_generation: None,
            never_returned: Vec::new(),
            derivation,
        }))
    })
}

/// Refuses the restore of a purged tombstone, one of another type, or one
/// deleted before the cutoff (`sortable` form of either backend: both are
/// compared as the same kind of text).
pub(crate) fn refuse_unrestorable(
    tombstone: &Tombstone,
    resource_type: &str,
    cutoff_sortable: &str,
) -> Result<(), StoreError> {
    if tombstone.resource_type != resource_type {
        return Err(StoreError::NotFound(format!(
            "no deleted {resource_type} '{}' to restore",
            tombstone.id.0
        )));
    }
    if let Some(purged_at) = &tombstone.purged_at {
        return Err(StoreError::Refused(format!(
            "{resource_type} '{}' was purged at {purged_at}: its data is gone and it cannot be restored",
            tombstone.id.0
        )));
    }
    let deleted = sortable_instant(&tombstone.deleted_at).unwrap_or_default();
    if deleted.as_str() < cutoff_sortable {
        return Err(StoreError::Refused(format!(
            "{resource_type} '{}' was deleted at {}, before the retention period: it is no longer restorable",
            tombstone.id.0, tombstone.deleted_at
        )));
    }
    Ok(())
}

/// The skeleton payload of a purged resource's change record of `kind`.
pub(crate) fn skeleton_payload(kind: &str, id: &ResourceId, resource_type: &str) -> Value {
    if kind == "delete" {
        json!({"deleted": {"id": id.0}})
    } else {
        json!({"resource": {"id": id.0, "meta": {"resourceType": resource_type}}})
    }
}

fn purge(
    connection: &Connection,
    scope: &WriteScope,
    id: &ResourceId,
) -> Result<Tombstone, StoreError> {
    let Some(tombstone) = load(connection, &scope.tenant, id)? else {
        return Err(StoreError::NotFound(format!(
            "no deleted resource '{}' to purge",
            id.0
        )));
    };
    // The audit trail's entries about it lose their detail, keeping their
    // skeleton and hashes (so `muster audit verify` still holds); again
    // for a purged one, which changes nothing.
    super::audit::redact(connection, &scope.tenant, id)?;
    if tombstone.purged() {
        return Ok(tombstone);
    }
    let now = now_text();
    connection
        .prepare_cached(
            "UPDATE deleted_resources SET json = NULL, unmapped = NULL, user_name = NULL,
                 external_id = NULL, groups = '[]', purged_at = ?3, purged_by = ?4
             WHERE tenant_id = ?1 AND id = ?2",
        )?
        .execute(params![scope.tenant.0, id.0, now, scope.actor.client])?;
    // The change records about it keep their skeleton only.
    let kinds: Vec<(i64, String)> = {
        let mut statement = connection.prepare_cached(
            "SELECT sequence, kind FROM changes
             WHERE tenant_id = ?1 AND resource_type = ?2 AND resource_id = ?3",
        )?;
        let rows = statement.query_map(
            params![scope.tenant.0, tombstone.resource_type, id.0],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    for (sequence, kind) in kinds {
        let payload = skeleton_payload(&kind, id, &tombstone.resource_type);
        connection
            .prepare_cached("UPDATE changes SET payload = ?1 WHERE sequence = ?2")?
            .execute(params![payload.to_string(), sequence])?;
    }
    // What targets were sent about it, and dead letters, keep no values.
    connection
        .prepare_cached(
            "UPDATE sync_objects SET sent = '{}', answer = NULL
             WHERE tenant_id = ?1 AND resource_type = ?2 AND resource_id = ?3",
        )?
        .execute(params![scope.tenant.0, tombstone.resource_type, id.0])?;
    connection
        .prepare_cached(
            "UPDATE sync_dead_letters SET request = '{}', response = '{}'
             WHERE tenant_id = ?1 AND resource_type = ?2 AND resource_id = ?3",
        )?
        .execute(params![scope.tenant.0, tombstone.resource_type, id.0])?;
    load(connection, &scope.tenant, id)?
        .ok_or_else(|| StoreError::NotFound(format!("no deleted resource '{}'", id.0)))
}

fn purge_expired(
    connection: &Connection,
    scope: &WriteScope,
    older_than: &Retention,
) -> Result<Vec<ResourceId>, StoreError> {
    let cutoff = older_than.cutoff()?;
    let ids: Vec<String> = {
        let mut statement = connection.prepare_cached(
            "SELECT id FROM deleted_resources
             WHERE tenant_id = ?1 AND purged_at IS NULL AND deleted_instant < ?2
             ORDER BY deleted_instant",
        )?;
        let rows =
            statement.query_map(params![scope.tenant.0, cutoff.sortable], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut purged = Vec::with_capacity(ids.len());
    for id in ids {
        let id = ResourceId(id);
        purge(connection, scope, &id)?;
        purged.push(id);
    }
    Ok(purged)
}

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn soft_delete(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
        removal: Removal,
    ) -> Result<(), StoreError> {
        let scope = scope(tenant, actor);
        let (resource_type, id) = (resource_type.to_owned(), id.clone());
        self.writer
            .submit(move |connection| {
                write::delete_as(
                    connection,
                    &scope,
                    &resource_type,
                    &id,
                    precondition,
                    &removal,
                    true,
                )
            })
            .await
    }

    async fn tombstone(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Tombstone>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.readers
            .read(move |connection| load(connection, &tenant, &id))
            .await
    }

    async fn tombstones(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        limit: u64,
    ) -> Result<Vec<Tombstone>, StoreError> {
        let (tenant, resource_type) = (tenant.clone(), resource_type.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM deleted_resources
                     WHERE tenant_id = ?1 AND resource_type = ?2
                     ORDER BY deleted_instant DESC, id LIMIT ?3"
                ))?;
                let rows =
                    statement.query_map(params![tenant.0, resource_type, limit], tombstone_of)?;
                let rows: Vec<_> = rows.collect::<Result<_, _>>()?;
                rows.into_iter().map(parsed).collect()
            })
            .await
    }

    async fn restorable_by_external_id(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        external_id: &str,
        within: Retention,
    ) -> Result<Option<ResourceId>, StoreError> {
        let cutoff = within.cutoff()?;
        let (tenant, resource_type) = (tenant.clone(), resource_type.to_owned());
        let external_id = external_id.to_owned();
        self.readers
            .read(move |connection| {
                let id: Option<String> = connection
                    .prepare_cached(
                        "SELECT id FROM deleted_resources
                         WHERE tenant_id = ?1 AND resource_type = ?2 AND external_id = ?3
                             AND purged_at IS NULL AND deleted_instant >= ?4
                         ORDER BY deleted_instant DESC LIMIT 1",
                    )?
                    .query_row(
                        params![tenant.0, resource_type, external_id, cutoff.sortable],
                        |row| row.get(0),
                    )
                    .optional()?;
                Ok(id.map(ResourceId))
            })
            .await
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
        let scope = scope(tenant, actor);
        let (resource_type, id) = (resource_type.to_owned(), id.clone());
        self.writer
            .submit(move |connection| {
                restore(connection, &scope, &resource_type, &id, new, &within)
            })
            .await
    }

    async fn purge(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &ResourceId,
    ) -> Result<Tombstone, StoreError> {
        let scope = scope(tenant, actor);
        let id = id.clone();
        let purged = self
            .writer
            .submit(move |connection| scrubbing(connection, |c| purge(c, &scope, &id)))
            .await?;
        self.checkpointer.truncate();
        Ok(purged)
    }

    async fn purge_expired(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        older_than: Retention,
    ) -> Result<Vec<ResourceId>, StoreError> {
        let scope = scope(tenant, actor);
        let purged = self
            .writer
            .submit(move |connection| {
                scrubbing(connection, |c| purge_expired(c, &scope, &older_than))
            })
            .await?;
        if !purged.is_empty() {
            self.checkpointer.truncate();
        }
        Ok(purged)
    }

    async fn tenants_with_tombstones(&self) -> Result<Vec<TenantId>, StoreError> {
        self.readers
            .read(move |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT DISTINCT tenant_id FROM deleted_resources WHERE purged_at IS NULL
                     ORDER BY tenant_id",
                )?;
                let rows = statement.query_map([], |row| row.get(0))?;
                let tenants: Vec<String> = rows.collect::<Result<_, _>>()?;
                Ok(tenants.into_iter().map(TenantId).collect())
            })
            .await
    }
}

/// Runs a purge with `secure_delete` fully on, so that what it erases is
/// overwritten with zeros in the database pages, free pages included (the
/// writer's default, `FAST`, skips free pages); the store then asks for a
/// `TRUNCATE` checkpoint, which empties the WAL of the older page versions.
fn scrubbing<T>(
    connection: &Connection,
    purge: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    connection.execute_batch("PRAGMA secure_delete = ON;")?;
    let purged = purge(connection);
    connection.execute_batch("PRAGMA secure_delete = FAST;")?;
    purged
}

fn scope(tenant: &TenantId, actor: &Actor) -> WriteScope {
    WriteScope {
        tenant: tenant.clone(),
        actor: actor.clone(),
    }
}
