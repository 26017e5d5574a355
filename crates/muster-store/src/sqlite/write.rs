//! The writes, as run by the writer thread inside a job's savepoint.
//!
//! Each write changes the resource row, rewrites that resource's attribute
//! index rows, applies membership rows one by one, and appends its change
//! record: all or nothing, since the job's savepoint is rolled back on any
//! error. Each also records, in `attribute_usage`, the paths it set
//! (`usage.rs`).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use serde_json::{json, Map, Value};

use super::derive::{derive_into, rederive_users_under};
use super::paths::{known_path_id, path_id};
use super::read::{
    finish, not_found, parse_object, parse_unmapped, to_version, unmapped_text, GROUP, USER,
};
use super::rules;
use super::usage::{self, Stamp};
use super::values::{
    check_password, index_rows, now_text, sortable_instant, NeverReturned, Scalar, ValueRow,
};
use crate::{
    Actor, ChangeKind, ChangePayload, DeletedIdentity, Derivation, Member, MemberChange,
    NewResource, Precondition, Removal, ResourceId, StoreError, StoredResource, TenantId,
    TokenRecord, UniqueAttribute, Update, UpdateFn,
};

/// Who and where: the arguments every write shares.
pub(crate) struct WriteScope {
    /// The tenant written to.
    pub tenant: TenantId,
    /// Who writes.
    pub actor: Actor,
}

impl WriteScope {
    /// The usage stamp of a write of this scope.
    fn stamp<'a>(&'a self, resource_type: &'a str, at: &'a str) -> Stamp<'a> {
        Stamp {
            tenant: &self.tenant,
            resource_type,
            client: &self.actor.client,
            at,
        }
    }
}

/// Creates a resource.
pub(crate) fn create(
    connection: &Connection,
    scope: &WriteScope,
    resource_type: &str,
    new: NewResource,
) -> Result<StoredResource, StoreError> {
    create_as(connection, scope, resource_type, new, None)
}

/// The first version and `meta.created` of a resource created again by a
/// restore (`lifecycle.rs`), instead of 1 and now: a restored resource
/// never shows an ETag it had before its deletion.
pub(crate) struct FirstVersion {
    /// Its version.
    pub version: u64,
    /// Its `meta.created`.
    pub created: String,
}

/// Creates a resource, as the version and creation instant `first` says
/// (else version 1, created now).
pub(crate) fn create_as(
    connection: &Connection,
    scope: &WriteScope,
    resource_type: &str,
    new: NewResource,
    first: Option<FirstVersion>,
) -> Result<StoredResource, StoreError> {
    let NewResource {
        id,
        resource,
        members,
        unmapped,
        unique,
        schema_generation,
        never_returned,
        derivation,
    } = new;
    // Validated against stale schemas or settings: refused, nothing written.
    rules::check_generation(connection, &scope.tenant, schema_generation)?;
    let mut content = content_of(resource, resource_type)?;
    check_password(resource_type, &content, &format!("a new {resource_type}"))?;
    let never = NeverReturned::new(&content, &never_returned);
    if !members.is_empty() && resource_type != GROUP {
        return Err(no_members(resource_type));
    }
    let id = id.unwrap_or_else(|| ResourceId(uuid::Uuid::now_v7().to_string()));
    let now = now_text();
    let (version, created) = first.map_or((1, now.clone()), |first| (first.version, first.created));
    if let (Some(derivation), USER) = (&derivation, resource_type) {
        let meta = new_meta(resource_type, &now);
        derive_into(
            connection,
            &scope.tenant,
            &**derivation,
            &id,
            &mut content,
            Some(&meta),
            true,
        )?;
    }
    let columns = IndexedColumns::of(&content, resource_type);
    check_unique(connection, &scope.tenant, resource_type, &id, &columns)?;
    let object = assemble(content, &id, resource_type, &created, &now, version);
    let text = to_text(&object)?;
    let unmapped_json = unmapped_text(&unmapped)?;
    let inserted = connection
        .prepare_cached(
            "INSERT INTO resources (tenant_id, id, resource_type, json, version, created,
                 last_modified, created_instant, last_modified_instant, user_name_lower,
                 display_name, display_name_lower, external_id, unmapped)
             VALUES (?1, ?2, ?3, ?4, ?12, ?13, ?5, ?14, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            scope.tenant.0,
            id.0,
            resource_type,
            text,
            now,
            sortable_instant(&now),
            columns.user_name_lower,
            columns.display_name,
            columns.display_name_lower,
            columns.external_id,
            unmapped_json,
            i64::try_from(version).unwrap_or(i64::MAX),
            created,
            sortable_instant(&created),
        ]);
    if let Err(error) = inserted {
        return Err(insert_error(error, &scope.tenant));
    }
    let seq = connection.last_insert_rowid();
    let stamp = scope.stamp(resource_type, &now);
    write_index(connection, &stamp, seq, &object, None, &never)?;
    check_unique_values(
        connection,
        &scope.tenant,
        resource_type,
        seq,
        &object,
        &unique,
        &never,
    )?;
    usage::record_unmapped(&stamp, &Map::new(), &unmapped);
    let mut delta = MemberDelta::default();
    if !members.is_empty() {
        let members = resolve_members(connection, &scope.tenant, &id, &members)?;
        for (member_id, member_type) in members {
            if add_member(connection, &scope.tenant, &id, &member_id, &member_type)? {
                delta.added(member_id);
            }
        }
    }
    let shown = never.payload_text(&object, &text)?;
    let members = delta.to_json();
    let payload = Payload {
        resource: Some(&shown),
        members: members.clone(),
        removed: None,
        ..Payload::default()
    };
    record_audited_change(
        connection,
        scope,
        ChangeKind::Create,
        resource_type,
        &id,
        version,
        &now,
        &payload.to_text(),
        &crate::audit::Detail::Diff {
            before: None,
            after: &object,
            never_returned: &never_returned,
            members: members.as_ref(),
        },
    )?;
    touch_users_under(connection, scope, &delta.ids(), derivation.as_deref())?;
    let stored = StoredResource {
        id,
        resource_type: resource_type.to_owned(),
        resource: Value::Object(object),
        version,
        unmapped,
    };
    if resource_type == GROUP && !delta.is_empty() {
        return finish(connection, &scope.tenant, stored, true);
    }
    // Nothing can hold a resource that did not exist: no computed groups.
    Ok(stored)
}

/// The `meta` a new resource is created with.
pub(crate) fn new_meta(resource_type: &str, now: &str) -> Value {
    json!({
        "resourceType": resource_type,
        "created": now,
        "lastModified": now,
        "version": "W/\"1\"",
    })
}

/// What a change record's payload says about a resource write. Built as
/// text, so the resource's JSON is not parsed again: the stored form of a
/// [`crate::ChangePayload`] `Resource`, `Members`, `GroupsChanged` or
/// `MemberDisplayChanged` (which `ChangePayload::from_stored` reads back).
#[derive(Default)]
pub(crate) struct Payload<'a> {
    /// The resource's JSON text, when its attributes (or captured values)
    /// changed.
    pub resource: Option<&'a str>,
    /// The membership delta, when membership changed.
    pub members: Option<Value>,
    /// Values a schema change's rewrite removed.
    pub removed: Option<&'a Value>,
    /// Whether the change is to a user's computed `groups` (a group it is
    /// under gained or lost members, was renamed or deleted).
    pub regrouped: bool,
    /// Whether the change is to a group's computed `members` display (a
    /// member was renamed).
    pub renamed_member: bool,
    /// The rule set whose put changed a user's derived value.
    pub rule_set: Option<u64>,
    /// A regrouped user's new derived value, when it changed: the
    /// derivation's URN and the value's JSON text (`null` when the value
    /// is now absent).
    pub derived: Option<(&'a str, &'a str)>,
}

impl Payload<'_> {
    /// The payload of a user whose computed `groups` changed.
    pub(crate) fn regrouped() -> Self {
        Payload {
            regrouped: true,
            ..Payload::default()
        }
    }

    /// The payload of a group one of whose members was renamed.
    pub(crate) fn renamed_member() -> Self {
        Payload {
            renamed_member: true,
            ..Payload::default()
        }
    }

    /// The payload's JSON text.
    pub(crate) fn to_text(&self) -> String {
        let mut fields: Vec<String> = Vec::with_capacity(5);
        if let Some(resource) = self.resource {
            fields.push(format!("\"resource\":{resource}"));
        }
        if let Some(members) = &self.members {
            fields.push(format!("\"members\":{members}"));
        }
        if let Some(removed) = self.removed {
            fields.push(format!("\"removed\":{removed}"));
        }
        if self.regrouped {
            fields.push("\"groups\":\"changed\"".to_owned());
        }
        if let Some((urn, value)) = self.derived {
            fields.push(format!("{}:{value}", Value::from(urn)));
        }
        if self.renamed_member {
            fields.push("\"memberDisplay\":\"changed\"".to_owned());
        }
        if let Some(version) = self.rule_set {
            fields.push(format!("\"ruleSet\":{version}"));
        }
        format!("{{{}}}", fields.join(","))
    }
}

/// The current row of a resource being changed.
pub(crate) struct Current {
    /// The row's `seq`.
    pub seq: i64,
    /// The stored JSON.
    pub object: Map<String, Value>,
    /// The stored version.
    pub version: u64,
    /// `meta.created`.
    pub created: String,
    /// The captured undeclared values.
    pub unmapped: Map<String, Value>,
}

impl Current {
    /// The resource as an update closure sees it (without computed
    /// attributes).
    fn to_stored(&self, id: &ResourceId, resource_type: &str) -> StoredResource {
        StoredResource {
            id: id.clone(),
            resource_type: resource_type.to_owned(),
            resource: Value::Object(self.object.clone()),
            version: self.version,
            unmapped: self.unmapped.clone(),
        }
    }
}

fn load_current(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
) -> Result<Current, StoreError> {
    let row = connection
        .prepare_cached(
            "SELECT seq, json, version, created, unmapped FROM resources
             WHERE tenant_id = ?1 AND id = ?2 AND resource_type = ?3",
        )?
        .query_row(params![tenant.0, id.0, resource_type], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((seq, json, version, created, unmapped)) = row else {
        return Err(not_found(resource_type, id));
    };
    Ok(Current {
        seq,
        object: parse_object(&json)?,
        version: to_version(version),
        created,
        unmapped: parse_unmapped(unmapped.as_deref())?,
    })
}

/// Up to `limit` resources of a type after `after_seq`, in `seq` order, with
/// their ids: a rewrite's batch. Read completely before any is written, so
/// the writes never disturb an open cursor.
pub(crate) fn load_batch(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(ResourceId, Current)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, id, json, version, created, unmapped FROM resources
         WHERE tenant_id = ?1 AND resource_type = ?2 AND seq > ?3
         ORDER BY seq LIMIT ?4",
    )?;
    let mut rows = statement.query(params![tenant.0, resource_type, after_seq, limit])?;
    let mut batch = Vec::new();
    while let Some(row) = rows.next()? {
        let json: String = row.get(2)?;
        let unmapped: Option<String> = row.get(5)?;
        batch.push((
            ResourceId(row.get(1)?),
            Current {
                seq: row.get(0)?,
                object: parse_object(&json)?,
                version: to_version(row.get(3)?),
                created: row.get(4)?,
                unmapped: parse_unmapped(unmapped.as_deref())?,
            },
        ));
    }
    Ok(batch)
}

/// Refuses a write whose `If-Match` names another version than `current`.
pub(crate) fn check_precondition(
    precondition: Precondition,
    current: u64,
) -> Result<(), StoreError> {
    match precondition {
        Precondition::None => Ok(()),
        Precondition::Version(expected) if expected == current => Ok(()),
        Precondition::Version(_) => Err(StoreError::PreconditionFailed { current }),
    }
}

/// The arguments of an update besides the scope.
pub(crate) struct UpdateRequest {
    /// The resource type.
    pub resource_type: String,
    /// The resource.
    pub id: ResourceId,
    /// The `If-Match` precondition.
    pub precondition: Precondition,
    /// Whether to return a Group's members.
    pub include_members: bool,
}

/// An update closure whose answer is kept, for a job the writer may run
/// again after a rollback (`writer.rs`): the closure runs once, and a
/// replay gets the same answer, computed on the same state (replaying the
/// jobs before it reproduces the state the first run saw).
pub(crate) struct KeptUpdate {
    /// The closure, until its first run.
    pending: Option<UpdateFn>,
    /// Its answer, after.
    answer: Option<Result<Option<Update>, crate::ScimError>>,
}

impl KeptUpdate {
    /// Keeps `update` for its first run.
    pub(crate) fn new(update: UpdateFn) -> KeptUpdate {
        KeptUpdate {
            pending: Some(update),
            answer: None,
        }
    }

    /// The closure's answer for `current`: computed the first time, the
    /// same answer afterwards.
    pub(crate) fn answer(
        &mut self,
        current: &StoredResource,
    ) -> Result<Option<Update>, crate::ScimError> {
        if let Some(update) = self.pending.take() {
            let answer = update(current);
            self.answer = Some(answer.clone());
            return answer;
        }
        self.answer.clone().unwrap_or_else(|| {
            Err(crate::ScimError::status(
                500,
                "an update closure was lost before its answer was kept",
            ))
        })
    }
}

/// Updates a resource through `update`, which sees the current state
/// (without `members` and `groups`).
pub(crate) fn update(
    connection: &Connection,
    scope: &WriteScope,
    request: &UpdateRequest,
    update: impl FnOnce(&StoredResource) -> Result<Option<Update>, crate::ScimError>,
) -> Result<(StoredResource, bool), StoreError> {
    let UpdateRequest {
        resource_type,
        id,
        precondition,
        include_members,
    } = request;
    let current = load_current(connection, &scope.tenant, resource_type, id)?;
    check_precondition(*precondition, current.version)?;
    let before = current.to_stored(id, resource_type);
    let unchanged = |current: Current| {
        let stored = StoredResource {
            id: id.clone(),
            resource_type: resource_type.clone(),
            resource: Value::Object(current.object),
            version: current.version,
            unmapped: current.unmapped,
        };
        finish(connection, &scope.tenant, stored, *include_members).map(|stored| (stored, false))
    };
    let Some(Update {
        resource,
        member_changes,
        unmapped,
        unique,
        schema_generation,
        never_returned,
        derivation,
    }) = update(&before)?
    else {
        return unchanged(current);
    };
    drop(before);
    // Computed against stale schemas or settings: refused, nothing written.
    rules::check_generation(connection, &scope.tenant, schema_generation)?;
    if !member_changes.is_empty() && resource_type != GROUP {
        return Err(no_members(resource_type));
    }
    let mut content = content_of(resource, resource_type)?;
    // The store owns the derived value: recomputed from the new attributes,
    // whatever the update left under its URN.
    if let (Some(derivation), USER) = (&derivation, resource_type.as_str()) {
        derive_into(
            connection,
            &scope.tenant,
            &**derivation,
            id,
            &mut content,
            current.object.get("meta"),
            false,
        )?;
    }
    let mut delta = MemberDelta::default();
    for change in member_changes {
        apply_member_change(connection, &scope.tenant, id, change, &mut delta)?;
    }
    // Users whose computed `groups` this write changes: those under each
    // member added or removed, and under the group when it is renamed. A
    // renamed user or group also changes the computed `members` display of
    // the groups that contain it directly.
    let renamed = content.get("displayName") != current.object.get("displayName");
    let mut regrouped = delta.ids();
    if resource_type == GROUP && renamed {
        regrouped.push(id.0.clone());
    }
    let change = StateChange {
        content,
        unmapped,
        delta,
        removed: Value::Null,
        unique,
    };
    match write_state(
        connection,
        scope,
        resource_type,
        id,
        current,
        change,
        &never_returned,
    )? {
        Written::Unchanged(current) => unchanged(current),
        Written::Changed(stored) => {
            touch_users_under(connection, scope, &regrouped, derivation.as_deref())?;
            if renamed {
                for group_id in containing_groups(connection, &scope.tenant, id)? {
                    touch_group(
                        connection,
                        scope,
                        &ResourceId(group_id),
                        &Payload::renamed_member(),
                    )?;
                }
            }
            finish(connection, &scope.tenant, stored, *include_members).map(|stored| (stored, true))
        }
    }
}

/// A resource's new state, as an update or a schema rewrite computed it.
pub(crate) struct StateChange {
    /// The new attributes (see [`content_of`]).
    pub content: Map<String, Value>,
    /// The new captured values; `None` keeps them.
    pub unmapped: Option<Map<String, Value>>,
    /// The membership changes already applied.
    pub delta: MemberDelta,
    /// Values a rewrite removed, for the change record; `Null` if none.
    pub removed: Value,
    /// Attributes whose values must stay unique (checked when the
    /// attributes change).
    pub unique: Vec<UniqueAttribute>,
}

/// What [`write_state`] did.
pub(crate) enum Written {
    /// Nothing changed: no new version, no change record.
    Unchanged(Current),
    /// The resource as written (without computed attributes).
    Changed(StoredResource),
}

/// Writes a resource's new state over `current` when it changes anything:
/// a new version, the row, the index rows that changed (with uniqueness
/// checks), usage, and an `Update` change record. Values at the core
/// `password` and at `never_returned` (canonical paths, see
/// [`crate::NewResource::never_returned`]) enter neither the attribute
/// index nor the change record. A User whose `password` is not an argon2
/// hash is refused before anything is written.
pub(crate) fn write_state(
    connection: &Connection,
    scope: &WriteScope,
    resource_type: &str,
    id: &ResourceId,
    current: Current,
    change: StateChange,
    never_returned: &[String],
) -> Result<Written, StoreError> {
    let StateChange {
        content,
        unmapped,
        delta,
        removed,
        unique,
    } = change;
    let content_changed = !same_content(&content, &current.object, resource_type);
    let new_unmapped = unmapped.filter(|unmapped| *unmapped != current.unmapped);
    if !content_changed && new_unmapped.is_none() && delta.is_empty() {
        return Ok(Written::Unchanged(current));
    }
    check_password(
        resource_type,
        &content,
        &format!("{resource_type} {}", id.0),
    )?;
    let never = NeverReturned::new(&content, never_returned);
    let Current {
        seq,
        object: old_object,
        version: old_version,
        created,
        unmapped: old_unmapped,
    } = current;
    let columns = IndexedColumns::of(&content, resource_type);
    if content_changed {
        check_unique(connection, &scope.tenant, resource_type, id, &columns)?;
    }
    let version = old_version + 1;
    let now = now_text();
    let object = assemble(content, id, resource_type, &created, &now, version);
    let text = to_text(&object)?;
    let unmapped_changed = new_unmapped.is_some();
    let unmapped = new_unmapped.unwrap_or_else(|| old_unmapped.clone());
    let unmapped_json = unmapped_text(&unmapped)?;
    let stamp = scope.stamp(resource_type, &now);
    let row = StateRow {
        seq,
        object: &object,
        text: &text,
        version,
        now: &now,
        columns: &columns,
        unmapped: unmapped_json.as_deref(),
    };
    store_state(
        connection,
        &stamp,
        &row,
        content_changed.then_some((&old_object, &never)),
    )?;
    if content_changed {
        check_unique_values(
            connection,
            &scope.tenant,
            resource_type,
            seq,
            &object,
            &unique,
            &never,
        )?;
    }
    if unmapped_changed {
        usage::record_unmapped(&stamp, &old_unmapped, &unmapped);
    }
    // Captured values are kept with the resource, never published: a
    // change to them alone shows the resource as it is.
    let rewritten = content_changed || unmapped_changed;
    // Never-returned values stay out of the change record: out of the
    // resource shown, and out of what a rewrite removed.
    let shown = match rewritten {
        true => Some(never.payload_text(&object, &text)?),
        false => None,
    };
    let mut removed = removed;
    if never.strip_removed(&mut removed) && is_empty_container(&removed) {
        removed = Value::Null;
    }
    let members = delta.to_json();
    let payload = Payload {
        resource: shown.as_deref(),
        members: members.clone(),
        removed: Some(&removed).filter(|removed| rewritten && !removed.is_null()),
        ..Payload::default()
    };
    record_audited_change(
        connection,
        scope,
        ChangeKind::Update,
        resource_type,
        id,
        version,
        &now,
        &payload.to_text(),
        &crate::audit::Detail::Diff {
            before: Some(&old_object),
            after: &object,
            never_returned,
            members: members.as_ref(),
        },
    )?;
    Ok(Written::Changed(StoredResource {
        id: id.clone(),
        resource_type: resource_type.to_owned(),
        resource: Value::Object(object),
        version,
        unmapped,
    }))
}

/// Whether a value is an empty array or object.
pub(crate) fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        _ => false,
    }
}

/// Deletes a resource, its index rows and its membership rows. Groups that
/// had it as a member get a new version and a change record each.
pub(crate) fn delete(
    connection: &Connection,
    scope: &WriteScope,
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    removal: &Removal,
) -> Result<(), StoreError> {
    delete_as(
        connection,
        scope,
        resource_type,
        id,
        precondition,
        removal,
        false,
    )
}

/// [`delete`], keeping the resource's tombstone (`lifecycle.rs`) in the
/// same transaction when `keep`: a soft delete.
pub(crate) fn delete_as(
    connection: &Connection,
    scope: &WriteScope,
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    removal: &Removal,
    keep: bool,
) -> Result<(), StoreError> {
    // A derivation of stale rules or schemas: refused, nothing deleted.
    rules::check_generation(connection, &scope.tenant, removal.schema_generation)?;
    let current = load_current(connection, &scope.tenant, resource_type, id)?;
    check_precondition(precondition, current.version)?;
    // Who it was, for the change record: read before the row goes.
    let identity = ChangePayload::Deleted(DeletedIdentity::of(id, &current.object)).to_json();
    // A deleted group leaves the `groups` of every user under its members;
    // they are read before its membership rows go.
    let regrouped: Vec<String> = {
        let mut statement = connection.prepare_cached(
            "SELECT member_id FROM group_members WHERE tenant_id = ?1 AND group_id = ?2",
        )?;
        let rows = statement.query_map(params![scope.tenant.0, id.0], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let containing = containing_groups(connection, &scope.tenant, id)?;
    if keep {
        super::lifecycle::keep_tombstone(
            connection,
            scope,
            resource_type,
            id,
            &current,
            &containing,
        )?;
    }
    connection
        .prepare_cached("DELETE FROM group_members WHERE tenant_id = ?1 AND member_id = ?2")?
        .execute(params![scope.tenant.0, id.0])?;
    for group_id in containing {
        let mut delta = MemberDelta::default();
        delta.removed(id.0.clone());
        let payload = Payload {
            members: delta.to_json(),
            ..Payload::default()
        };
        touch_group(connection, scope, &ResourceId(group_id), &payload)?;
    }
    connection
        .prepare_cached("DELETE FROM group_members WHERE tenant_id = ?1 AND group_id = ?2")?
        .execute(params![scope.tenant.0, id.0])?;
    connection
        .prepare_cached("DELETE FROM resource_values WHERE resource_seq = ?1")?
        .execute(params![current.seq])?;
    connection
        .prepare_cached("DELETE FROM resources WHERE seq = ?1")?
        .execute(params![current.seq])?;
    touch_users_under(connection, scope, &regrouped, removal.derivation.as_deref())?;
    record_change(
        connection,
        scope,
        ChangeKind::Delete,
        resource_type,
        id,
        current.version,
        &now_text(),
        &identity.to_string(),
    )
}

/// The groups that contain a resource directly.
fn containing_groups(
    connection: &Connection,
    tenant: &TenantId,
    id: &ResourceId,
) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT group_id FROM group_members WHERE tenant_id = ?1 AND member_id = ?2",
    )?;
    let rows = statement.query_map(params![tenant.0, id.0], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Gives a group whose computed `members` changed outside an update of the
/// group itself (a member deleted or renamed) a new version, and records
/// the change with `payload`.
fn touch_group(
    connection: &Connection,
    scope: &WriteScope,
    group_id: &ResourceId,
    payload: &Payload<'_>,
) -> Result<(), StoreError> {
    let current = load_current(connection, &scope.tenant, GROUP, group_id)?;
    let content = content_of(Value::Object(current.object), GROUP)?;
    let columns = IndexedColumns::of(&content, GROUP);
    let version = current.version + 1;
    let now = now_text();
    let object = assemble(content, group_id, GROUP, &current.created, &now, version);
    let unmapped_json = unmapped_text(&current.unmapped)?;
    // Only `meta` changed: the attribute index stays as it is.
    let row = StateRow {
        seq: current.seq,
        object: &object,
        text: &to_text(&object)?,
        version,
        now: &now,
        columns: &columns,
        unmapped: unmapped_json.as_deref(),
    };
    store_state(connection, &scope.stamp(GROUP, &now), &row, None)?;
    record_change(
        connection,
        scope,
        ChangeKind::Update,
        GROUP,
        group_id,
        version,
        &now,
        &payload.to_text(),
    )
}

/// Gives every user under `roots` (ids of users and groups: the roots that
/// are users and every user reached through nested memberships from the
/// roots that are groups) a new version, `lastModified` and change record:
/// their computed `groups` changed, and so must their ETag.
///
/// With a `derivation`, each user's derived value is recomputed too
/// (`derive.rs`). Without one, one statement rewrites only `meta` in each
/// user's JSON (`json_set`), so a change to a large group costs one row
/// update per user, not a parse and a serialisation. Finite for cyclic
/// nesting (`UNION` drops repeats).
fn touch_users_under(
    connection: &Connection,
    scope: &WriteScope,
    roots: &[String],
    derivation: Option<&dyn Derivation>,
) -> Result<(), StoreError> {
    if roots.is_empty() {
        return Ok(());
    }
    if let Some(derivation) = derivation {
        return rederive_users_under(connection, scope, roots, derivation);
    }
    let now = now_text();
    let touched: Vec<(String, i64)> = {
        let mut statement = connection.prepare_cached(
            "WITH RECURSIVE under(id) AS (
                 SELECT value FROM json_each(?2)
                 UNION
                 SELECT m.member_id FROM under
                 CROSS JOIN group_members m ON m.tenant_id = ?1 AND m.group_id = under.id
             )
             UPDATE resources SET version = version + 1, last_modified = ?3,
                 last_modified_instant = ?4,
                 json = json_set(json, '$.meta.lastModified', ?3,
                     '$.meta.version', 'W/\"' || (version + 1) || '\"')
             WHERE seq IN (
                 SELECT r.seq FROM under
                 CROSS JOIN resources r ON r.tenant_id = ?1 AND r.id = under.id
                 WHERE r.resource_type = 'User'
             )
             RETURNING id, version",
        )?;
        let roots = Value::from(roots.to_vec()).to_string();
        let rows = statement.query_map(
            params![scope.tenant.0, roots, now, sortable_instant(&now)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let payload = Payload::regrouped().to_text();
    for (id, version) in touched {
        record_change(
            connection,
            scope,
            ChangeKind::Update,
            USER,
            &ResourceId(id),
            to_version(version),
            &now,
            &payload,
        )?;
    }
    Ok(())
}

/// A resource row's new state.
pub(crate) struct StateRow<'a> {
    /// The row.
    pub seq: i64,
    /// The new JSON.
    pub object: &'a Map<String, Value>,
    /// Its text.
    pub text: &'a str,
    /// The new version.
    pub version: u64,
    /// `meta.lastModified`.
    pub now: &'a str,
    /// The columns of the new JSON.
    pub columns: &'a IndexedColumns,
    /// The `unmapped` column (NULL when no captured value).
    pub unmapped: Option<&'a str>,
}

/// Writes a resource's new JSON, version and columns and, when its
/// attributes changed (`previous` is the object before, with the values
/// that stay out of the index), brings its index rows up to date.
pub(crate) fn store_state(
    connection: &Connection,
    stamp: &Stamp<'_>,
    row: &StateRow<'_>,
    previous: Option<(&Map<String, Value>, &NeverReturned)>,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE resources SET json = ?2, version = ?3, last_modified = ?4,
                 last_modified_instant = ?5, user_name_lower = ?6, display_name = ?7,
                 display_name_lower = ?8, external_id = ?9, unmapped = ?10
             WHERE seq = ?1",
        )?
        .execute(params![
            row.seq,
            row.text,
            i64::try_from(row.version).unwrap_or(i64::MAX),
            row.now,
            sortable_instant(row.now),
            row.columns.user_name_lower,
            row.columns.display_name,
            row.columns.display_name_lower,
            row.columns.external_id,
            row.unmapped,
        ])?;
    match previous {
        Some((previous, never)) => write_index(
            connection,
            stamp,
            row.seq,
            row.object,
            Some(previous),
            never,
        ),
        None => Ok(()),
    }
}

/// The key of an index row within its resource.
pub(crate) type RowKey = (String, i64, i64);

/// Index rows by key, in key order, without those `never` covers; the
/// first of rows sharing a key wins (keys differing only in case), as
/// `INSERT OR IGNORE` would keep it.
pub(crate) fn rows_by_key(
    object: &Map<String, Value>,
    never: &NeverReturned,
) -> BTreeMap<RowKey, ValueRow> {
    let mut rows = BTreeMap::new();
    for row in index_rows(object, never) {
        rows.entry((row.path.clone(), row.element, row.item))
            .or_insert(row);
    }
    rows
}

/// Writes a resource's attribute index rows, each `indexed` as the tenant's
/// index rules say (`rules.rs`). With `previous`, only the rows
/// that differ from those of the previous state are deleted or written, so
/// an update costs what it changed. Each distinct path of the rows written
/// is noted as set by this write (see `usage.rs`).
///
/// The paths `never` covers get no row (never-returned values). The
/// previous state's rows are taken whole, whatever was covered when they
/// were written, so a row a path now covered still has is deleted.
pub(crate) fn write_index(
    connection: &Connection,
    stamp: &Stamp<'_>,
    seq: i64,
    object: &Map<String, Value>,
    previous: Option<&Map<String, Value>>,
    never: &NeverReturned,
) -> Result<(), StoreError> {
    let mut stale: BTreeMap<RowKey, ValueRow> = match previous {
        Some(previous) => rows_by_key(previous, &NeverReturned::NOTHING),
        None => BTreeMap::new(),
    };
    let mut insert = connection.prepare_cached(
        "INSERT OR REPLACE INTO resource_values (resource_seq, path_id, element, item, tenant_id,
             present, value_lower, value_exact, value_time, value_num, value_bool, indexed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let tenant = stamp.tenant;
    // Unchanged rows keep their flag: every row of a path already agrees
    // with the rules (a rule change flips them all, `rules::reindex`).
    let rules = rules::for_writer(connection, tenant)?;
    let mut set_paths: BTreeSet<String> = BTreeSet::new();
    for (key, row) in rows_by_key(object, never) {
        if stale.remove(&key).is_some_and(|old| old == row) {
            continue;
        }
        if !set_paths.contains(&row.path) {
            set_paths.insert(row.path.clone());
        }
        let (lower, exact, time, number, flag) = match row.value {
            Scalar::None => (None, None, None, SqlValue::Null, None),
            Scalar::Bool(flag) => (None, None, None, SqlValue::Null, Some(flag)),
            Scalar::Integer(number) => (None, None, None, SqlValue::Integer(number), None),
            Scalar::Real(number) => (None, None, None, SqlValue::Real(number), None),
            Scalar::Text { lower, exact, time } => (Some(lower), exact, time, SqlValue::Null, None),
        };
        insert.execute(params![
            seq,
            path_id(connection, &row.path)?,
            row.element,
            row.item,
            tenant.0,
            row.present,
            lower,
            exact,
            time,
            number,
            flag,
            rules.indexes(&row.path),
        ])?;
    }
    if !stale.is_empty() {
        let mut delete = connection.prepare_cached(
            "DELETE FROM resource_values
             WHERE resource_seq = ?1 AND path_id = ?2 AND element = ?3 AND item = ?4",
        )?;
        for (path, element, item) in stale.into_keys() {
            // A path without a number has no row (a covered path may never
            // have had one).
            if let Some(path_id) = known_path_id(connection, &path)? {
                delete.execute(params![seq, path_id, element, item])?;
            }
        }
    }
    for path in &set_paths {
        usage::record(stamp, true, path);
    }
    Ok(())
}

/// Appends a change record and its audit entry (built from the payload).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_change(
    connection: &Connection,
    scope: &WriteScope,
    kind: ChangeKind,
    resource_type: &str,
    id: &ResourceId,
    version: u64,
    at: &str,
    payload: &str,
) -> Result<(), StoreError> {
    insert_change(
        connection,
        scope,
        kind,
        resource_type,
        id,
        version,
        at,
        payload,
    )?;
    super::audit::append_payload(
        connection,
        scope,
        (kind.stored_name(), resource_type, &id.0, version, at),
        payload,
    )
}

/// Appends a change record and the audit entry `detail` describes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_audited_change(
    connection: &Connection,
    scope: &WriteScope,
    kind: ChangeKind,
    resource_type: &str,
    id: &ResourceId,
    version: u64,
    at: &str,
    payload: &str,
    detail: &crate::audit::Detail<'_>,
) -> Result<(), StoreError> {
    insert_change(
        connection,
        scope,
        kind,
        resource_type,
        id,
        version,
        at,
        payload,
    )?;
    super::audit::append(
        connection,
        scope,
        (kind.stored_name(), resource_type, &id.0, version, at),
        detail,
        None,
    )
}

/// Appends a change record alone.
#[allow(clippy::too_many_arguments)]
fn insert_change(
    connection: &Connection,
    scope: &WriteScope,
    kind: ChangeKind,
    resource_type: &str,
    id: &ResourceId,
    version: u64,
    at: &str,
    payload: &str,
) -> Result<(), StoreError> {
    let kind = kind.stored_name();
    connection
        .prepare_cached(
            "INSERT INTO changes (tenant_id, kind, resource_type, resource_id, version, client,
                 request_id, at, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            scope.tenant.0,
            kind,
            resource_type,
            id.0,
            i64::try_from(version).unwrap_or(i64::MAX),
            scope.actor.client,
            scope.actor.request_id,
            at,
            payload,
        ])?;
    Ok(())
}

/// A resource's JSON text.
pub(crate) fn to_text(object: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(object)
        .map_err(|error| StoreError::Database(format!("cannot serialise a resource: {error}")))
}

/// Whether a key of a resource is no attribute of its content (see
/// [`content_of`]).
pub(crate) fn outside_content(key: &str, resource_type: &str) -> bool {
    key.eq_ignore_ascii_case("id")
        || key.eq_ignore_ascii_case("meta")
        || key.eq_ignore_ascii_case("members")
        || (resource_type == USER && key.eq_ignore_ascii_case("groups"))
}

/// Whether `content` holds the same attributes as the stored `object`,
/// without copying the object.
pub(crate) fn same_content(
    content: &Map<String, Value>,
    object: &Map<String, Value>,
    resource_type: &str,
) -> bool {
    let mut attributes = 0;
    for (key, value) in object {
        if outside_content(key, resource_type) {
            continue;
        }
        if content.get(key) != Some(value) {
            return false;
        }
        attributes += 1;
    }
    attributes == content.len()
}

/// The attributes of a resource as stored: without the server-set `id` and
/// `meta` and without `members` and a User's computed `groups`.
pub(crate) fn content_of(
    resource: Value,
    resource_type: &str,
) -> Result<Map<String, Value>, StoreError> {
    let Value::Object(mut object) = resource else {
        return Err(crate::ScimError::invalid_syntax(format!(
            "a {resource_type} must be a JSON object"
        ))
        .into());
    };
    object.retain(|key, _| !outside_content(key, resource_type));
    Ok(object)
}

/// The stored JSON: `schemas`, `id`, the attributes, then `meta`.
pub(crate) fn assemble(
    content: Map<String, Value>,
    id: &ResourceId,
    resource_type: &str,
    created: &str,
    last_modified: &str,
    version: u64,
) -> Map<String, Value> {
    let mut object = Map::with_capacity(content.len() + 2);
    let mut content = content;
    if let Some(schemas) = content.shift_remove("schemas") {
        object.insert("schemas".to_owned(), schemas);
    }
    object.insert("id".to_owned(), Value::String(id.0.clone()));
    object.extend(content);
    object.insert(
        "meta".to_owned(),
        json!({
            "resourceType": resource_type,
            "created": created,
            "lastModified": last_modified,
            "version": format!("W/\"{version}\""),
        }),
    );
    object
}

/// The resource columns that back uniqueness checks and member display.
pub(crate) struct IndexedColumns {
    /// A User's `userName`.
    pub user_name: Option<String>,
    /// Its lower case (unique per tenant).
    pub user_name_lower: Option<String>,
    /// The `displayName`.
    pub display_name: Option<String>,
    /// A Group's lower-cased `displayName` (unique per tenant).
    pub display_name_lower: Option<String>,
    /// The `externalId`.
    pub external_id: Option<String>,
}

impl IndexedColumns {
    /// The columns of a resource's attributes.
    pub(crate) fn of(content: &Map<String, Value>, resource_type: &str) -> Self {
        let text = |name: &str| {
            content
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, value)| value.as_str())
                .map(str::to_owned)
        };
        let user_name = if resource_type == USER {
            text("userName")
        } else {
            None
        };
        let display_name = text("displayName");
        IndexedColumns {
            user_name_lower: user_name.as_deref().map(str::to_lowercase),
            user_name,
            // Unique for Groups only.
            display_name_lower: display_name
                .as_deref()
                .filter(|_| resource_type == GROUP)
                .map(str::to_lowercase),
            display_name,
            external_id: text("externalId"),
        }
    }
}

/// Refuses a `userName` (Users) or `displayName` (Groups) another resource of
/// the tenant already has, case-insensitively, naming that resource.
fn check_unique(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    columns: &IndexedColumns,
) -> Result<(), StoreError> {
    let (attribute, value, lower, sql) = if resource_type == USER {
        (
            "userName",
            &columns.user_name,
            &columns.user_name_lower,
            "SELECT id FROM resources WHERE tenant_id = ?1 AND resource_type = 'User'
                 AND user_name_lower = ?2 AND id <> ?3",
        )
    } else if resource_type == GROUP {
        (
            "displayName",
            &columns.display_name,
            &columns.display_name_lower,
            "SELECT id FROM resources WHERE tenant_id = ?1 AND resource_type = 'Group'
                 AND display_name_lower = ?2 AND id <> ?3",
        )
    } else {
        return Ok(());
    };
    let (Some(value), Some(lower)) = (value, lower) else {
        return Ok(());
    };
    let holder: Option<String> = connection
        .prepare_cached(sql)?
        .query_row(params![tenant.0, lower, id.0], |row| row.get(0))
        .optional()?;
    match holder {
        Some(holder) => Err(StoreError::Conflict(format!(
            "{attribute} '{value}' is already taken by {resource_type} {holder}"
        ))),
        None => Ok(()),
    }
}

/// Refuses a value of a `unique` attribute that another resource of the
/// same type already holds, naming that resource; correct whether or not
/// the attribute is searchable (in the lookup index). Runs once the resource's
/// index rows are written (`seq` is its row), inside the write's savepoint,
/// so that concurrent writers (serialised by the single writer) cannot both
/// take a value.
fn check_unique_values(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    seq: i64,
    object: &Map<String, Value>,
    unique: &[UniqueAttribute],
    never: &NeverReturned,
) -> Result<(), StoreError> {
    if unique.is_empty() {
        return Ok(());
    }
    let rules = rules::for_writer(connection, tenant)?;
    let wanted: Vec<(String, &UniqueAttribute)> = unique
        .iter()
        .map(|attribute| (attribute.path.to_ascii_lowercase(), attribute))
        .collect();
    for row in index_rows(object, never)
        .into_iter()
        .filter(|row| row.present)
    {
        let Some((_, attribute)) = wanted.iter().find(|(path, _)| *path == row.path) else {
            continue;
        };
        // The value's condition and its parameters, after the four shared.
        let (condition, values, shown) = match row.value {
            Scalar::None => continue,
            Scalar::Text { lower, exact, .. } => {
                let exact = exact.unwrap_or_else(|| lower.clone());
                if attribute.case_exact {
                    (
                        "v.value_lower = ?5 AND coalesce(v.value_exact, v.value_lower) = ?6",
                        vec![SqlValue::Text(lower), SqlValue::Text(exact.clone())],
                        exact,
                    )
                } else {
                    ("v.value_lower = ?5", vec![SqlValue::Text(lower)], exact)
                }
            }
            Scalar::Integer(number) => (
                "v.value_num = ?5",
                vec![SqlValue::Integer(number)],
                number.to_string(),
            ),
            Scalar::Real(number) => (
                "v.value_num = ?5",
                vec![SqlValue::Real(number)],
                number.to_string(),
            ),
            Scalar::Bool(flag) => (
                "v.value_bool = ?5",
                vec![SqlValue::Integer(i64::from(flag))],
                flag.to_string(),
            ),
        };
        // An indexed path is looked up in the partial lookup index; one that
        // is not is checked resource by resource (its rows are not there).
        let sql = if rules.indexes(&row.path) {
            format!(
                "SELECT r.id FROM resource_values v JOIN resources r ON r.seq = v.resource_seq
                 WHERE v.tenant_id = ?1 AND v.path_id = ?2 AND v.indexed = 1
                     AND v.resource_seq <> ?3 AND r.resource_type = ?4 AND {condition}
                 LIMIT 1"
            )
        } else {
            format!(
                "SELECT r.id FROM resources r
                 CROSS JOIN resource_values v ON v.resource_seq = r.seq AND v.path_id = ?2
                 WHERE r.tenant_id = ?1 AND r.resource_type = ?4 AND r.seq <> ?3
                     AND {condition}
                 LIMIT 1"
            )
        };
        let mut parameters = vec![
            SqlValue::Text(tenant.0.clone()),
            SqlValue::Integer(path_id(connection, &row.path)?),
            SqlValue::Integer(seq),
            SqlValue::Text(resource_type.to_owned()),
        ];
        parameters.extend(values);
        let holder: Option<String> = connection
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(parameters), |found| found.get(0))
            .optional()?;
        if let Some(holder) = holder {
            return Err(StoreError::Conflict(format!(
                "{} '{shown}' is already taken by {resource_type} {holder} (the attribute's uniqueness is server)",
                attribute.path
            )));
        }
    }
    Ok(())
}

/// The error for members given to a type other than Group.
pub(crate) fn no_members(resource_type: &str) -> StoreError {
    crate::ScimError::invalid_value(format!(
        "resource type {resource_type} has no members; only Groups do"
    ))
    .into()
}

/// The attribute a unique index of `resources` names in SQLite's message,
/// so that a clash is worded for clients without the schema's names.
fn clashing_attribute(message: &str) -> &'static str {
    if message.contains("resources.user_name_lower") {
        "userName"
    } else if message.contains("resources.display_name_lower") {
        "displayName"
    } else if message.contains("resources.id") {
        "id"
    } else {
        "a unique attribute"
    }
}

/// Maps a failed resource insert: an unknown tenant, or (should the checks
/// above have missed it) a uniqueness clash.
pub(crate) fn insert_error(error: rusqlite::Error, tenant: &TenantId) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, _) = &error {
        if failure.code == ErrorCode::ConstraintViolation {
            return match failure.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    StoreError::NotFound(format!("tenant '{}' does not exist", tenant.0))
                }
                _ => StoreError::Conflict(format!(
                    "uniqueness constraint violated: {} is already taken",
                    clashing_attribute(&error.to_string())
                )),
            };
        }
    }
    error.into()
}

/// Net membership changes of one write, for the change record.
#[derive(Default)]
pub(crate) struct MemberDelta {
    /// `true`: added; `false`: removed.
    net: BTreeMap<String, bool>,
}

impl MemberDelta {
    /// Notes `id` added (cancelling a removal).
    pub(crate) fn added(&mut self, id: String) {
        if self.net.get(&id) == Some(&false) {
            self.net.remove(&id);
        } else {
            self.net.insert(id, true);
        }
    }

    /// Notes `id` removed (cancelling an addition).
    pub(crate) fn removed(&mut self, id: String) {
        if self.net.get(&id) == Some(&true) {
            self.net.remove(&id);
        } else {
            self.net.insert(id, false);
        }
    }

    /// Whether membership changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.net.is_empty()
    }

    /// Every member added or removed.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.net.keys().cloned().collect()
    }

    /// The change record's `members`: `{added, removed}`, `None` when empty.
    pub(crate) fn to_json(&self) -> Option<Value> {
        if self.net.is_empty() {
            return None;
        }
        let pick = |wanted: bool| -> Vec<Value> {
            self.net
                .iter()
                .filter(|(_, added)| **added == wanted)
                .map(|(id, _)| Value::String(id.clone()))
                .collect()
        };
        Some(json!({ "added": pick(true), "removed": pick(false) }))
    }
}

/// Checks that each member exists in the tenant and reads its type;
/// duplicates collapse, order is kept.
fn resolve_members(
    connection: &Connection,
    tenant: &TenantId,
    group_id: &ResourceId,
    members: &[Member],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT resource_type FROM resources WHERE tenant_id = ?1 AND id = ?2")?;
    let mut seen = BTreeSet::new();
    let mut resolved = Vec::with_capacity(members.len());
    for member in members {
        let member_id = &member.value.0;
        if !seen.insert(member_id.as_str()) {
            continue;
        }
        if *member_id == group_id.0 {
            return Err(crate::ScimError::invalid_value(format!(
                "group {member_id} cannot be a member of itself"
            ))
            .into());
        }
        let member_type: Option<String> = statement
            .query_row(params![tenant.0, member_id], |row| row.get(0))
            .optional()?;
        let Some(member_type) = member_type else {
            return Err(crate::ScimError::invalid_value(format!(
                "member '{member_id}' does not exist: no User or Group has that id"
            ))
            .into());
        };
        resolved.push((member_id.clone(), member_type));
    }
    Ok(resolved)
}

/// Inserts one membership row; whether it was new.
fn add_member(
    connection: &Connection,
    tenant: &TenantId,
    group_id: &ResourceId,
    member_id: &str,
    member_type: &str,
) -> Result<bool, StoreError> {
    let inserted = connection
        .prepare_cached(
            "INSERT OR IGNORE INTO group_members (tenant_id, group_id, member_id, member_type)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![tenant.0, group_id.0, member_id, member_type])?;
    Ok(inserted == 1)
}

/// Deletes one membership row; whether it existed.
fn remove_member(
    connection: &Connection,
    tenant: &TenantId,
    group_id: &ResourceId,
    member_id: &str,
) -> Result<bool, StoreError> {
    let deleted = connection
        .prepare_cached(
            "DELETE FROM group_members WHERE tenant_id = ?1 AND group_id = ?2 AND member_id = ?3",
        )?
        .execute(params![tenant.0, group_id.0, member_id])?;
    Ok(deleted == 1)
}

fn apply_member_change(
    connection: &Connection,
    tenant: &TenantId,
    group_id: &ResourceId,
    change: MemberChange,
    delta: &mut MemberDelta,
) -> Result<(), StoreError> {
    match change {
        MemberChange::Add(members) => {
            for (member_id, member_type) in resolve_members(connection, tenant, group_id, &members)?
            {
                if add_member(connection, tenant, group_id, &member_id, &member_type)? {
                    delta.added(member_id);
                }
            }
        }
        MemberChange::Remove(ids) => {
            for id in ids {
                if remove_member(connection, tenant, group_id, &id.0)? {
                    delta.removed(id.0);
                }
            }
        }
        MemberChange::ReplaceAll(members) => {
            let wanted = resolve_members(connection, tenant, group_id, &members)?;
            let existing: BTreeSet<String> = {
                let mut statement = connection.prepare_cached(
                    "SELECT member_id FROM group_members WHERE tenant_id = ?1 AND group_id = ?2",
                )?;
                let rows = statement.query_map(params![tenant.0, group_id.0], |row| row.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let keep: BTreeSet<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
            for member_id in existing.iter().filter(|id| !keep.contains(id.as_str())) {
                if remove_member(connection, tenant, group_id, member_id)? {
                    delta.removed(member_id.clone());
                }
            }
            for (member_id, member_type) in wanted {
                if !existing.contains(&member_id)
                    && add_member(connection, tenant, group_id, &member_id, &member_type)?
                {
                    delta.added(member_id);
                }
            }
        }
    }
    Ok(())
}

/// Stores a token; a name or secret already in use is a conflict.
pub(crate) fn create_token(
    connection: &Connection,
    tenant: &TenantId,
    token: TokenRecord,
) -> Result<(), StoreError> {
    let taken: Option<String> = connection
        .prepare_cached("SELECT name FROM tokens WHERE tenant_id = ?1 AND name = ?2")?
        .query_row(params![tenant.0, token.name], |row| row.get(0))
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "a token named '{}' already exists",
            token.name
        )));
    }
    let scopes = serde_json::to_string(&token.scopes)
        .map_err(|error| StoreError::Database(format!("cannot serialise scopes: {error}")))?;
    let created = if token.created.is_empty() {
        now_text()
    } else {
        token.created
    };
    let inserted = connection
        .prepare_cached(
            "INSERT INTO tokens (tenant_id, name, secret_hash, scopes, created)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            tenant.0,
            token.name,
            token.secret_hash,
            scopes,
            created
        ]);
    match inserted {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(StoreError::Conflict(
                "another token already has this secret".to_owned(),
            ))
        }
        Err(error) => Err(insert_error(error, tenant)),
    }
}

/// Deletes a token by name.
pub(crate) fn revoke_token(
    connection: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<(), StoreError> {
    let deleted = connection
        .prepare_cached("DELETE FROM tokens WHERE tenant_id = ?1 AND name = ?2")?
        .execute(params![tenant.0, name])?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("no token named '{name}'")));
    }
    Ok(())
}

/// Adds a tenant if it does not exist yet.
pub(crate) fn ensure_tenant(connection: &Connection, tenant: &TenantId) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT OR IGNORE INTO tenants (tenant_id, created) VALUES (?1, ?2)")?
        .execute(params![tenant.0, now_text()])?;
    Ok(())
}
