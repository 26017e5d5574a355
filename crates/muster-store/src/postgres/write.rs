//! Resource writes on PostgreSQL: create, update, delete, with their index
//! rows, memberships, derived values and change records.
//!
//! Each write is one read committed transaction that locks what it decides
//! on: the resource it changes (`FOR UPDATE`), the members it links (`FOR
//! KEY SHARE`, so they cannot be deleted before it commits), the groups and
//! Users it gives new versions, and its tenant's row `FOR SHARE` (the index
//! rules it writes by, `rules.rs`). Uniqueness is the database's: the
//! unique constraints of `resources` refuse a second holder of a userName,
//! a Group's displayName or an id; a unique custom value is claimed in
//! `unique_values` (whose row serialises the writers of one value) and
//! then looked up in the attribute index, the truth ([`write_unique`]).
//! Refusals are worded as on SQLite, naming the holder.
//!
//! The semantics are those of `sqlite/write.rs`, whose pure helpers
//! (`assemble`, `content_of`, `Payload`, `MemberDelta`, ...) are reused.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::SystemTime;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

use super::feed::{record_change, NewChange};
use super::limits::{check_columns, check_indexed, holds_nul, too_long_detail, MAX_INDEXED_BYTES};
use super::read::{finish, unmapped_of};
use super::{begin, derive, paths, rules, unique_violation, PostgresStore, MAX_ATTEMPTS};
use crate::sqlite::read::{not_found, parse_object, to_version, unmapped_text, GROUP, USER};
use crate::sqlite::rules::IndexRules;
use crate::sqlite::values::{check_password, index_rows, now_text, NeverReturned, Scalar};
use crate::sqlite::write::FirstVersion;
use crate::sqlite::write::{
    assemble, check_precondition, content_of, is_empty_container, new_meta, no_members,
    rows_by_key, same_content, to_text, Current, IndexedColumns, MemberDelta, Payload, RowKey,
    StateChange, StateRow, Written,
};
use crate::{
    Actor, ChangeKind, ChangePayload, DeletedIdentity, Derivation, Member, MemberChange,
    NewResource, Precondition, Removal, ResourceId, StoreError, StoredResource, TenantId,
    UniqueAttribute, Update, UpdateFn,
};

/// One write transaction's context: who writes where, the index rules it
/// writes by, and the paths it set (for `attribute_usage`).
pub(super) struct Scope<'a> {
    /// The tenant written to.
    pub tenant: &'a TenantId,
    /// Who writes.
    pub actor: &'a Actor,
    /// The tenant's index rules, read under the tenant's lock
    /// ([`rules::for_write`]).
    pub rules: IndexRules,
    /// The paths set so far: (resource type, declared, path) to the time.
    usage: BTreeMap<(String, bool, String), String>,
}

impl<'a> Scope<'a> {
    /// Starts a write of `actor` to `tenant`: locks the tenant's rules,
    /// refusing a stale `expected` generation.
    pub(super) async fn begin(
        transaction: &Transaction<'_>,
        tenant: &'a TenantId,
        actor: &'a Actor,
        expected: Option<u64>,
    ) -> Result<Scope<'a>, StoreError> {
        Ok(Scope {
            tenant,
            actor,
            rules: rules::for_write(transaction, tenant, expected).await?,
            usage: BTreeMap::new(),
        })
    }

    /// Notes that a write at `at` set a value at `path`.
    fn note(&mut self, resource_type: &str, declared: bool, path: &str, at: &str) {
        self.usage.insert(
            (resource_type.to_owned(), declared, path.to_owned()),
            at.to_owned(),
        );
    }

    /// Notes the keys of captured values present in `after` with a value
    /// that differs from `before`.
    fn note_unmapped(
        &mut self,
        resource_type: &str,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
        at: &str,
    ) {
        for (key, value) in after {
            if crate::sqlite::values::is_present(value) && before.get(key) != Some(value) {
                self.note(resource_type, false, key, at);
            }
        }
    }

    /// Commits the write, and hands back the attribute usage rows of the
    /// paths it set, for [`PendingUsage::record`] once the write is
    /// durable.
    pub(super) async fn commit(
        self,
        transaction: deadpool_postgres::Transaction<'_>,
    ) -> Result<PendingUsage, StoreError> {
        transaction.commit().await?;
        Ok(PendingUsage {
            tenant: self.tenant.clone(),
            client: self.actor.client.clone(),
            rows: self.usage,
        })
    }
}

/// The attribute usage rows of a committed write (who last set each path,
/// and when), written in a transaction of their own.
///
/// Every write of a tenant sets the same few paths (`userName`, `active`,
/// ...): upserted inside the write's transaction, their rows stayed locked
/// until its commit had reached the disk, and the writes of every
/// connection and replica ran one at a time behind them. Written after the
/// commit, without waiting for the disk (`synchronous_commit = off`), the
/// rows are locked for microseconds. The price: a crash can lose the last
/// moments of this report (never of the data it describes).
#[must_use]
pub(super) struct PendingUsage {
    tenant: TenantId,
    client: String,
    rows: BTreeMap<(String, bool, String), String>,
}

impl PendingUsage {
    /// Upserts the rows, in key order (two writers of the same paths wait
    /// in one order, never in a deadlock). A failure is logged, not
    /// returned: the write it describes is committed already.
    pub(super) async fn record(self, client: &mut deadpool_postgres::Object) {
        if self.rows.is_empty() {
            return;
        }
        if let Err(error) = self.upsert(client).await {
            tracing::warn!(tenant = %self.tenant.0, %error, "attribute usage not recorded");
        }
    }

    async fn upsert(&self, client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
        let mut types = Vec::with_capacity(self.rows.len());
        let mut declared = Vec::with_capacity(self.rows.len());
        let mut paths = Vec::with_capacity(self.rows.len());
        let mut times = Vec::with_capacity(self.rows.len());
        for ((resource_type, is_declared, path), at) in &self.rows {
            types.push(resource_type.as_str());
            declared.push(*is_declared);
            paths.push(path.as_str());
            times.push(at.as_str());
        }
        let transaction = client.transaction().await?;
        transaction
            .batch_execute("SET LOCAL synchronous_commit = off")
            .await?;
        transaction
            .execute_typed(
                "INSERT INTO attribute_usage (tenant_id, resource_type, declared, path, client, at)
                 SELECT $1, u.resource_type, u.declared, u.path, $2, u.at::timestamptz
                 FROM unnest($3::text[], $4::bool[], $5::text[], $6::text[])
                     AS u (resource_type, declared, path, at)
                 ON CONFLICT (tenant_id, resource_type, declared, path)
                 DO UPDATE SET client = excluded.client, at = excluded.at",
                &[
                    (&self.tenant.0, Type::TEXT),
                    (&self.client, Type::TEXT),
                    (&types, Type::TEXT_ARRAY),
                    (&declared, Type::BOOL_ARRAY),
                    (&paths, Type::TEXT_ARRAY),
                    (&times, Type::TEXT_ARRAY),
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }
}

/// Appends a change record whose payload is `payload`.
pub(super) async fn change(
    transaction: &Transaction<'_>,
    scope: &Scope<'_>,
    kind: ChangeKind,
    resource_type: &str,
    id: &ResourceId,
    version: u64,
    payload: &Payload<'_>,
) -> Result<(), StoreError> {
    let payload: Value = serde_json::from_str(&payload.to_text())
        .map_err(|error| StoreError::Database(format!("a change payload is not JSON: {error}")))?;
    record_change(
        transaction,
        NewChange {
            tenant: scope.tenant,
            kind,
            resource_type,
            resource_id: id,
            version,
            actor: scope.actor,
            payload: &payload,
        },
    )
    .await
}

/// Appends a change record whose payload is `payload`, with the audit
/// entry `detail` describes.
#[allow(clippy::too_many_arguments)]
async fn audited_change(
    transaction: &Transaction<'_>,
    scope: &Scope<'_>,
    kind: ChangeKind,
    resource_type: &str,
    id: &ResourceId,
    version: u64,
    payload: &Payload<'_>,
    detail: &crate::audit::Detail<'_>,
) -> Result<(), StoreError> {
    let payload: Value = serde_json::from_str(&payload.to_text())
        .map_err(|error| StoreError::Database(format!("a change payload is not JSON: {error}")))?;
    super::feed::record_audited_change(
        transaction,
        NewChange {
            tenant: scope.tenant,
            kind,
            resource_type,
            resource_id: id,
            version,
            actor: scope.actor,
            payload: &payload,
        },
        detail,
    )
    .await
}

/// Whether `result` failed on contention and the work may run again.
fn again<T>(result: &Result<T, StoreError>, attempt: usize) -> bool {
    matches!(result, Err(StoreError::Contention(_))) && attempt < MAX_ATTEMPTS
}

/// [`crate::Store::create`].
pub(super) async fn create(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    resource_type: &str,
    new: NewResource,
) -> Result<StoredResource, StoreError> {
    let id = new
        .id
        .clone()
        .unwrap_or_else(|| ResourceId(uuid::Uuid::now_v7().to_string()));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = store.client().await?;
        let transaction = begin(&mut client).await?;
        let result =
            match create_in(&transaction, tenant, actor, resource_type, &id, &new, None).await {
                Ok((scope, stored)) => match scope.commit(transaction).await {
                    Ok(usage) => {
                        usage.record(&mut client).await;
                        Ok(stored)
                    }
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
        if !again(&result, attempt) {
            return result;
        }
    }
}

/// Creates a resource in `transaction`, as the version and creation
/// instant `first` says (else version 1, created now: see
/// `sqlite::write::FirstVersion`, used by a restore).
pub(super) async fn create_in<'a>(
    transaction: &Transaction<'_>,
    tenant: &'a TenantId,
    actor: &'a Actor,
    resource_type: &str,
    id: &ResourceId,
    new: &NewResource,
    first: Option<&FirstVersion>,
) -> Result<(Scope<'a>, StoredResource), StoreError> {
    let mut scope = Scope::begin(transaction, tenant, actor, new.schema_generation).await?;
    let mut content = content_of(new.resource.clone(), resource_type)?;
    check_password(resource_type, &content, &format!("a new {resource_type}"))?;
    let never = NeverReturned::new(&content, &new.never_returned);
    if !new.members.is_empty() && resource_type != GROUP {
        return Err(no_members(resource_type));
    }
    let now = now_text();
    let (version, created) = first.map_or((1, now.clone()), |first| {
        (first.version, first.created.clone())
    });
    let stored_version = i64::try_from(version).unwrap_or(i64::MAX);
    if let (Some(derivation), USER) = (&new.derivation, resource_type) {
        let meta = new_meta(resource_type, &now);
        derive::derive_into(
            transaction,
            tenant,
            &**derivation,
            id,
            &mut content,
            Some(&meta),
            true,
        )
        .await?;
    }
    let columns = IndexedColumns::of(&content, resource_type);
    check_columns(&columns, resource_type)?;
    let object = assemble(content, id, resource_type, &created, &now, version);
    let text = to_text(&object)?;
    let unmapped_json = unmapped_text(&new.unmapped)?;
    let inserted = transaction
        .query_typed_opt(
            "INSERT INTO resources (tenant_id, id, resource_type, json, version, created,
                 last_modified, user_name_lower, display_name, display_name_lower, external_id,
                 unmapped)
             VALUES ($1, $2, $3, $4::text::json, $11, $12::text::timestamptz,
                 $5::text::timestamptz, $6, $7, $8, $9, $10::text::jsonb)
             ON CONFLICT DO NOTHING
             RETURNING seq",
            &[
                (&tenant.0, Type::TEXT),
                (&id.0, Type::TEXT),
                (&resource_type, Type::TEXT),
                (&text, Type::TEXT),
                (&now, Type::TEXT),
                (&columns.user_name_lower, Type::TEXT),
                (&columns.display_name, Type::TEXT),
                (&columns.display_name_lower, Type::TEXT),
                (&columns.external_id, Type::TEXT),
                (&unmapped_json, Type::TEXT),
                (&stored_version, Type::INT8),
                (&created, Type::TEXT),
            ],
        )
        .await;
    let seq: i64 = match inserted {
        Ok(Some(row)) => row.try_get(0)?,
        Ok(None) => {
            return Err(
                name_holder(transaction, tenant, resource_type, id, &columns)
                    .await?
                    .unwrap_or_else(|| {
                        StoreError::Conflict(format!(
                        "uniqueness constraint violated: {resource_type} id '{}' is already taken",
                        id.0
                    ))
                    }),
            )
        }
        Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            return Err(StoreError::NotFound(format!(
                "tenant '{}' does not exist",
                tenant.0
            )))
        }
        Err(error) => return Err(error.into()),
    };
    write_index(
        transaction,
        &mut scope,
        resource_type,
        seq,
        &object,
        None,
        &never,
        &now,
    )
    .await?;
    write_unique(
        transaction,
        &scope,
        resource_type,
        seq,
        &object,
        &new.unique,
        &never,
    )
    .await?;
    scope.note_unmapped(resource_type, &Map::new(), &new.unmapped, &now);
    let mut delta = MemberDelta::default();
    if !new.members.is_empty() {
        let members = resolve_members(transaction, tenant, id, &new.members).await?;
        add_members(transaction, tenant, id, members, &mut delta).await?;
    }
    let shown = never.payload_text(&object, &text)?;
    let members = delta.to_json();
    let payload = Payload {
        resource: Some(&shown),
        members: members.clone(),
        removed: None,
        ..Payload::default()
    };
    audited_change(
        transaction,
        &scope,
        ChangeKind::Create,
        resource_type,
        id,
        version,
        &payload,
        &crate::audit::Detail::Diff {
            before: None,
            after: &object,
            never_returned: &new.never_returned,
            members: members.as_ref(),
        },
    )
    .await?;
    touch_users_under(
        transaction,
        &mut scope,
        &delta.ids(),
        new.derivation.as_deref(),
    )
    .await?;
    let stored = StoredResource {
        id: id.clone(),
        resource_type: resource_type.to_owned(),
        resource: Value::Object(object),
        version,
        unmapped: new.unmapped.clone(),
    };
    if resource_type == GROUP && !delta.is_empty() {
        let stored = finish(transaction, tenant, stored, true).await?;
        return Ok((scope, stored));
    }
    // Nothing can hold a resource that did not exist: no computed groups.
    Ok((scope, stored))
}

/// The conflict of a resource whose `userName` (Users) or `displayName`
/// (Groups) another resource of the tenant holds, naming that resource;
/// `None` when none does.
async fn name_holder(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    columns: &IndexedColumns,
) -> Result<Option<StoreError>, StoreError> {
    let (attribute, value, lower, sql) = if resource_type == USER {
        (
            "userName",
            &columns.user_name,
            &columns.user_name_lower,
            "SELECT id FROM resources WHERE tenant_id = $1 AND resource_type = 'User'
                 AND user_name_lower = $2 AND id <> $3",
        )
    } else if resource_type == GROUP {
        (
            "displayName",
            &columns.display_name,
            &columns.display_name_lower,
            "SELECT id FROM resources WHERE tenant_id = $1 AND resource_type = 'Group'
                 AND display_name_lower = $2 AND id <> $3",
        )
    } else {
        return Ok(None);
    };
    let (Some(value), Some(lower)) = (value, lower) else {
        return Ok(None);
    };
    let holder = transaction
        .query_typed_opt(
            sql,
            &[
                (&tenant.0, Type::TEXT),
                (lower, Type::TEXT),
                (&id.0, Type::TEXT),
            ],
        )
        .await?;
    Ok(match holder {
        Some(row) => Some(StoreError::Conflict(format!(
            "{attribute} '{value}' is already taken by {resource_type} {}",
            row.try_get::<_, String>(0)?
        ))),
        None => None,
    })
}

/// The current row of a resource, locked `FOR UPDATE` until the
/// transaction ends.
pub(super) async fn load_current(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
) -> Result<Current, StoreError> {
    // No stored id holds the NUL character, which the database cannot
    // even be asked about: an unknown id.
    if holds_nul(&id.0) {
        return Err(not_found(resource_type, id));
    }
    let row = transaction
        .query_typed_opt(
            "SELECT seq, json::text, version, unmapped FROM resources
             WHERE tenant_id = $1 AND id = $2 AND resource_type = $3
             FOR UPDATE",
            &[
                (&tenant.0, Type::TEXT),
                (&id.0, Type::TEXT),
                (&resource_type, Type::TEXT),
            ],
        )
        .await?;
    let Some(row) = row else {
        return Err(not_found(resource_type, id));
    };
    current_of(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    )
}

/// A [`Current`] from its columns; `created` is the JSON's `meta.created`
/// (the text clients were given).
pub(super) fn current_of(
    seq: i64,
    json: &str,
    version: i64,
    unmapped: Option<Value>,
) -> Result<Current, StoreError> {
    let object = parse_object(json)?;
    let created = object
        .get("meta")
        .and_then(|meta| meta.get("created"))
        .and_then(Value::as_str)
        .ok_or_else(|| StoreError::Database(format!("resource row {seq} has no meta.created")))?
        .to_owned();
    Ok(Current {
        seq,
        object,
        version: to_version(version),
        created,
        unmapped: unmapped_of(unmapped)?,
    })
}

/// [`crate::Store::update`].
#[allow(clippy::too_many_arguments)]
pub(super) async fn update(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    include_members: bool,
    update: UpdateFn,
) -> Result<(StoredResource, bool), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = store.client().await?;
        let transaction = begin(&mut client).await?;
        // The tenant's rules are locked before the resource, in the order
        // every write and rule change takes them. Until the closure runs,
        // a transaction lost to contention is run again.
        let locked = lock_for_update(&transaction, tenant, actor, resource_type, id).await;
        if again(&locked, attempt) {
            continue;
        }
        let (mut scope, current) = locked?;
        check_precondition(precondition, current.version)?;
        let before = StoredResource {
            id: id.clone(),
            resource_type: resource_type.to_owned(),
            resource: Value::Object(current.object.clone()),
            version: current.version,
            unmapped: current.unmapped.clone(),
        };
        let computed = match catch_unwind(AssertUnwindSafe(|| update(&before))) {
            Ok(computed) => computed?,
            Err(_) => {
                return Err(StoreError::Database(
                    "a write panicked; it was rolled back".to_owned(),
                ))
            }
        };
        drop(before);
        let Some(computed) = computed else {
            let stored = finish(
                &*transaction,
                tenant,
                stored_of(id, resource_type, current),
                include_members,
            )
            .await?;
            transaction.commit().await?;
            return Ok((stored, false));
        };
        // Computed against stale schemas or settings: refused, nothing written.
        rules::check_generation(scope.rules.generation, computed.schema_generation)?;
        let (stored, changed) = update_in(
            &transaction,
            &mut scope,
            resource_type,
            id,
            current,
            computed,
        )
        .await?;
        let stored = finish(&*transaction, tenant, stored, include_members).await?;
        scope.commit(transaction).await?.record(&mut client).await;
        return Ok((stored, changed));
    }
}

/// Locks the tenant's rules and the resource an update changes.
async fn lock_for_update<'a>(
    transaction: &Transaction<'_>,
    tenant: &'a TenantId,
    actor: &'a Actor,
    resource_type: &str,
    id: &ResourceId,
) -> Result<(Scope<'a>, Current), StoreError> {
    let scope = Scope::begin(transaction, tenant, actor, None).await?;
    let current = load_current(transaction, tenant, resource_type, id).await?;
    Ok((scope, current))
}

/// A resource as stored, from its current row.
fn stored_of(id: &ResourceId, resource_type: &str, current: Current) -> StoredResource {
    StoredResource {
        id: id.clone(),
        resource_type: resource_type.to_owned(),
        resource: Value::Object(current.object),
        version: current.version,
        unmapped: current.unmapped,
    }
}

/// Applies an update's result to the locked `current` row; the resource
/// as written (without computed attributes) and whether anything changed.
pub(super) async fn update_in(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    resource_type: &str,
    id: &ResourceId,
    current: Current,
    computed: Update,
) -> Result<(StoredResource, bool), StoreError> {
    let Update {
        resource,
        member_changes,
        unmapped,
        unique,
        schema_generation: _,
        never_returned,
        derivation,
    } = computed;
    if !member_changes.is_empty() && resource_type != GROUP {
        return Err(no_members(resource_type));
    }
    let tenant = scope.tenant;
    let mut content = content_of(resource, resource_type)?;
    // The store owns the derived value: recomputed from the new attributes,
    // whatever the update left under its URN.
    if let (Some(derivation), USER) = (&derivation, resource_type) {
        derive::derive_into(
            transaction,
            tenant,
            &**derivation,
            id,
            &mut content,
            current.object.get("meta"),
            false,
        )
        .await?;
    }
    let mut delta = MemberDelta::default();
    for change in member_changes {
        apply_member_change(transaction, tenant, id, change, &mut delta).await?;
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
        transaction,
        scope,
        resource_type,
        id,
        current,
        change,
        &never_returned,
    )
    .await?
    {
        Written::Unchanged(current) => Ok((stored_of(id, resource_type, current), false)),
        Written::Changed(stored) => {
            touch_users_under(transaction, scope, &regrouped, derivation.as_deref()).await?;
            if renamed {
                for group_id in containing_groups(transaction, tenant, id).await? {
                    touch_group(
                        transaction,
                        scope,
                        &ResourceId(group_id),
                        &Payload::renamed_member(),
                    )
                    .await?;
                }
            }
            Ok((stored, true))
        }
    }
}

/// Writes a resource's new state over `current` (locked by the caller)
/// when it changes anything, as `sqlite::write::write_state` does: a new
/// version, the row, the index rows that changed, the unique values, usage,
/// and an `Update` change record. A schema rewrite calls it per resource.
pub(super) async fn write_state(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    resource_type: &str,
    id: &ResourceId,
    current: Current,
    state: StateChange,
    never_returned: &[String],
) -> Result<Written, StoreError> {
    let StateChange {
        content,
        unmapped,
        delta,
        removed,
        unique,
    } = state;
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
    check_columns(&columns, resource_type)?;
    let old_columns = IndexedColumns::of(&old_object, resource_type);
    let renamed = columns.user_name_lower != old_columns.user_name_lower
        || columns.display_name_lower != old_columns.display_name_lower;
    let version = old_version + 1;
    let now = now_text();
    let object = assemble(content, id, resource_type, &created, &now, version);
    let text = to_text(&object)?;
    let unmapped_changed = new_unmapped.is_some();
    let unmapped = new_unmapped.unwrap_or_else(|| old_unmapped.clone());
    let unmapped_json = unmapped_text(&unmapped)?;
    let row = StateRow {
        seq,
        object: &object,
        text: &text,
        version,
        now: &now,
        columns: &columns,
        unmapped: unmapped_json.as_deref(),
    };
    if renamed {
        // A name another resource holds is refused by the constraint; the
        // savepoint keeps the transaction usable to name the holder.
        transaction.batch_execute("SAVEPOINT muster_rename").await?;
        match store_row(transaction, &row).await {
            Err(error) if unique_violation(&error).is_some() => {
                transaction
                    .batch_execute("ROLLBACK TO SAVEPOINT muster_rename")
                    .await?;
                let holder =
                    name_holder(transaction, scope.tenant, resource_type, id, &columns).await?;
                return Err(holder.unwrap_or_else(|| {
                    StoreError::Contention(format!(
                        "the name of {resource_type} {} was taken and freed concurrently",
                        id.0
                    ))
                }));
            }
            other => other?,
        }
    } else {
        store_row(transaction, &row).await?;
    }
    if content_changed {
        write_index(
            transaction,
            scope,
            resource_type,
            seq,
            &object,
            Some(&old_object),
            &never,
            &now,
        )
        .await?;
        write_unique(
            transaction,
            scope,
            resource_type,
            seq,
            &object,
            &unique,
            &never,
        )
        .await?;
    }
    if unmapped_changed {
        scope.note_unmapped(resource_type, &old_unmapped, &unmapped, &now);
    }
    // Captured values are kept with the resource, never published: a
    // change to them alone shows the resource as it is.
    let rewritten = content_changed || unmapped_changed;
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
    audited_change(
        transaction,
        scope,
        ChangeKind::Update,
        resource_type,
        id,
        version,
        &payload,
        &crate::audit::Detail::Diff {
            before: Some(&old_object),
            after: &object,
            never_returned,
            members: members.as_ref(),
        },
    )
    .await?;
    Ok(Written::Changed(StoredResource {
        id: id.clone(),
        resource_type: resource_type.to_owned(),
        resource: Value::Object(object),
        version,
        unmapped,
    }))
}

/// Writes a resource row's new JSON, version and columns.
async fn store_row(
    transaction: &Transaction<'_>,
    row: &StateRow<'_>,
) -> Result<(), tokio_postgres::Error> {
    let version = i64::try_from(row.version).unwrap_or(i64::MAX);
    transaction
        .execute_typed(
            "UPDATE resources SET json = $2::text::json, version = $3,
                 last_modified = $4::text::timestamptz, user_name_lower = $5, display_name = $6,
                 display_name_lower = $7, external_id = $8, unmapped = $9::text::jsonb
             WHERE seq = $1",
            &[
                (&row.seq, Type::INT8),
                (&row.text, Type::TEXT),
                (&version, Type::INT8),
                (&row.now, Type::TEXT),
                (&row.columns.user_name_lower, Type::TEXT),
                (&row.columns.display_name, Type::TEXT),
                (&row.columns.display_name_lower, Type::TEXT),
                (&row.columns.external_id, Type::TEXT),
                (&row.unmapped, Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

/// Writes a resource's new row and, when its attributes changed
/// (`previous`: the object before, with the values that stay out of the
/// index), its index rows, as `sqlite::write::store_state` does.
pub(super) async fn store_state(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    resource_type: &str,
    row: &StateRow<'_>,
    previous: Option<(&Map<String, Value>, &NeverReturned)>,
) -> Result<(), StoreError> {
    store_row(transaction, row).await?;
    match previous {
        Some((previous, never)) => {
            write_index(
                transaction,
                scope,
                resource_type,
                row.seq,
                row.object,
                Some(previous),
                never,
                row.now,
            )
            .await
        }
        None => Ok(()),
    }
}

/// An RFC 3339 text as an instant (`resource_values.value_time`).
fn instant(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// A row position as the `integer` columns hold it.
fn to_i32(number: i64) -> i32 {
    i32::try_from(number).unwrap_or(i32::MAX)
}

/// Writes a resource's attribute index rows, each `indexed` as the
/// tenant's rules say, as `sqlite::write::write_index` does: with
/// `previous`, only the rows that differ are deleted or written (one
/// statement each). Each distinct path written is noted as set at `at`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_index(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    resource_type: &str,
    seq: i64,
    object: &Map<String, Value>,
    previous: Option<&Map<String, Value>>,
    never: &NeverReturned,
    at: &str,
) -> Result<(), StoreError> {
    let mut stale: BTreeMap<RowKey, _> = match previous {
        Some(previous) => rows_by_key(previous, &NeverReturned::NOTHING),
        None => BTreeMap::new(),
    };
    let mut written = Vec::new();
    for (key, row) in rows_by_key(object, never) {
        if stale.remove(&key).is_some_and(|old| old == row) {
            continue;
        }
        written.push(row);
    }
    if !written.is_empty() {
        let paths: Vec<&str> = written.iter().map(|row| row.path.as_str()).collect();
        let ids = paths::assign(transaction, &paths).await?;
        let count = written.len();
        let mut path_ids = Vec::with_capacity(count);
        let mut elements = Vec::with_capacity(count);
        let mut items = Vec::with_capacity(count);
        let mut present = Vec::with_capacity(count);
        let mut indexed = Vec::with_capacity(count);
        let mut lowers: Vec<Option<String>> = Vec::with_capacity(count);
        let mut exacts: Vec<Option<String>> = Vec::with_capacity(count);
        let mut times: Vec<Option<SystemTime>> = Vec::with_capacity(count);
        let mut numbers: Vec<Option<f64>> = Vec::with_capacity(count);
        let mut flags: Vec<Option<bool>> = Vec::with_capacity(count);
        for row in written {
            let path_id = ids.get(&row.path).copied().ok_or_else(|| {
                StoreError::Database(format!("the path '{}' has no number", row.path))
            })?;
            path_ids.push(path_id);
            elements.push(to_i32(row.element));
            items.push(to_i32(row.item));
            present.push(row.present);
            let in_lookup = scope.rules.indexes(&row.path);
            if let (true, Scalar::Text { lower, .. }) = (in_lookup, &row.value) {
                check_indexed(&row.path, lower)?;
            }
            indexed.push(in_lookup);
            scope.note(resource_type, true, &row.path, at);
            let (lower, exact, time, number, flag) = match row.value {
                Scalar::None => (None, None, None, None, None),
                Scalar::Bool(flag) => (None, None, None, None, Some(flag)),
                #[allow(clippy::cast_precision_loss)]
                Scalar::Integer(number) => (None, None, None, Some(number as f64), None),
                Scalar::Real(number) => (None, None, None, Some(number), None),
                Scalar::Text { lower, exact, time } => {
                    let time = time.and_then(|_| instant(exact.as_deref().unwrap_or(&lower)));
                    (Some(lower), exact, time, None, None)
                }
            };
            lowers.push(lower);
            exacts.push(exact);
            times.push(time);
            numbers.push(number);
            flags.push(flag);
        }
        transaction
            .execute_typed(
                "INSERT INTO resource_values (resource_seq, tenant_id, path_id, element, item,
                     present, indexed, value_lower, value_exact, value_time, value_num,
                     value_bool)
                 SELECT $1::bigint, $2::text, v.* FROM unnest($3::integer[], $4::integer[],
                     $5::integer[], $6::boolean[], $7::boolean[], $8::text[], $9::text[],
                     $10::timestamptz[], $11::float8[], $12::boolean[]) AS v
                 ON CONFLICT (resource_seq, path_id, element, item) DO UPDATE SET
                     present = excluded.present, indexed = excluded.indexed,
                     value_lower = excluded.value_lower, value_exact = excluded.value_exact,
                     value_time = excluded.value_time, value_num = excluded.value_num,
                     value_bool = excluded.value_bool",
                &[
                    (&seq, Type::INT8),
                    (&scope.tenant.0, Type::TEXT),
                    (&path_ids, Type::INT4_ARRAY),
                    (&elements, Type::INT4_ARRAY),
                    (&items, Type::INT4_ARRAY),
                    (&present, Type::BOOL_ARRAY),
                    (&indexed, Type::BOOL_ARRAY),
                    (&lowers, Type::TEXT_ARRAY),
                    (&exacts, Type::TEXT_ARRAY),
                    (&times, Type::TIMESTAMPTZ_ARRAY),
                    (&numbers, Type::FLOAT8_ARRAY),
                    (&flags, Type::BOOL_ARRAY),
                ],
            )
            .await?;
    }
    if !stale.is_empty() {
        let paths: Vec<&str> = stale.keys().map(|(path, _, _)| path.as_str()).collect();
        // A path without a number has no row.
        let ids = paths::known(transaction, &paths).await?;
        let mut path_ids = Vec::with_capacity(stale.len());
        let mut elements = Vec::with_capacity(stale.len());
        let mut items = Vec::with_capacity(stale.len());
        for (path, element, item) in stale.keys() {
            if let Some(path_id) = ids.get(path) {
                path_ids.push(*path_id);
                elements.push(to_i32(*element));
                items.push(to_i32(*item));
            }
        }
        transaction
            .execute_typed(
                "DELETE FROM resource_values
                 WHERE resource_seq = $1
                   AND (path_id, element, item) IN (
                       SELECT * FROM unnest($2::integer[], $3::integer[], $4::integer[]))",
                &[
                    (&seq, Type::INT8),
                    (&path_ids, Type::INT4_ARRAY),
                    (&elements, Type::INT4_ARRAY),
                    (&items, Type::INT4_ARRAY),
                ],
            )
            .await?;
    }
    Ok(())
}

/// A value of a unique attribute a resource holds: its claim key in
/// `unique_values` (its type and comparable form: lower case unless
/// case-exact; numbers in one form, so `1` and `1.0` clash as on SQLite),
/// the value as an error shows it, and the condition and parameter that
/// find it in the attribute index (see [`other_holder`]).
struct UniqueValue {
    /// The claim key (`s:`, `n:` or `b:` and the comparable form).
    key: String,
    /// The value as an error shows it.
    shown: String,
    /// The condition on `resource_values v` that finds it (`$5`, `$6`).
    condition: &'static str,
    /// The condition's parameters.
    parameters: Vec<Box<dyn ToSql + Sync + Send>>,
    /// Their types.
    types: Vec<Type>,
}

/// The [`UniqueValue`] of a scalar; `None` for no comparable value.
fn unique_value(value: Scalar, case_exact: bool) -> Option<UniqueValue> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let number_key = |number: f64| {
        if number.fract() == 0.0 && number.abs() < 9.0e15 {
            format!("n:{}", number as i64)
        } else {
            format!("n:{number}")
        }
    };
    Some(match value {
        Scalar::None => return None,
        Scalar::Text { lower, exact, .. } => {
            let exact = exact.unwrap_or_else(|| lower.clone());
            if case_exact {
                UniqueValue {
                    key: format!("s:{exact}"),
                    shown: exact.clone(),
                    condition: "v.value_lower = $5 AND coalesce(v.value_exact, v.value_lower) = $6",
                    parameters: vec![Box::new(lower), Box::new(exact)],
                    types: vec![Type::TEXT, Type::TEXT],
                }
            } else {
                UniqueValue {
                    key: format!("s:{lower}"),
                    shown: exact,
                    condition: "v.value_lower = $5",
                    parameters: vec![Box::new(lower)],
                    types: vec![Type::TEXT],
                }
            }
        }
        Scalar::Integer(number) => {
            #[allow(clippy::cast_precision_loss)]
            let as_float = number as f64;
            UniqueValue {
                key: format!("n:{number}"),
                shown: number.to_string(),
                condition: "v.value_num = $5",
                parameters: vec![Box::new(as_float)],
                types: vec![Type::FLOAT8],
            }
        }
        Scalar::Real(number) => UniqueValue {
            key: number_key(number),
            shown: number.to_string(),
            condition: "v.value_num = $5",
            parameters: vec![Box::new(number)],
            types: vec![Type::FLOAT8],
        },
        Scalar::Bool(flag) => UniqueValue {
            key: format!("b:{flag}"),
            shown: flag.to_string(),
            condition: "v.value_bool = $5",
            parameters: vec![Box::new(flag)],
            types: vec![Type::BOOL],
        },
    })
}

/// Another resource of the type that holds `value` at the path
/// `path_id`, by the attribute index (the truth, as on SQLite): through
/// the lookup index when the path is indexed, resource by resource when
/// it is not.
#[allow(clippy::too_many_arguments)]
async fn other_holder(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    resource_type: &str,
    seq: i64,
    path_id: i32,
    indexed: bool,
    value: &UniqueValue,
) -> Result<Option<String>, StoreError> {
    let condition = value.condition;
    let sql = if indexed {
        format!(
            "SELECT r.id FROM resource_values v JOIN resources r ON r.seq = v.resource_seq
             WHERE v.tenant_id = $1 AND v.path_id = $2 AND v.indexed
                 AND v.resource_seq <> $3 AND r.resource_type = $4 AND {condition}
             LIMIT 1"
        )
    } else {
        format!(
            "SELECT r.id FROM resources r
             JOIN resource_values v ON v.resource_seq = r.seq AND v.path_id = $2
             WHERE r.tenant_id = $1 AND r.resource_type = $4 AND r.seq <> $3
                 AND {condition}
             LIMIT 1"
        )
    };
    let mut parameters: Vec<(&(dyn ToSql + Sync), Type)> = vec![
        (&tenant.0, Type::TEXT),
        (&path_id, Type::INT4),
        (&seq, Type::INT8),
        (&resource_type, Type::TEXT),
    ];
    for (parameter, kind) in value.parameters.iter().zip(&value.types) {
        parameters.push((&**parameter as &(dyn ToSql + Sync), kind.clone()));
    }
    let holder = transaction.query_typed_opt(&sql, &parameters).await?;
    Ok(match holder {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

/// Refuses a value of a `unique` attribute that another resource of the
/// same type already holds, naming that resource, as SQLite does; runs
/// once the resource's index rows are written (`seq` is its row).
///
/// The attribute index is the truth (so values held before an attribute
/// became unique, or rewritten by a schema change, count); `unique_values`
/// serialises the writers of one value: each claims the value's row
/// (inserting it, or taking it over from an earlier claimant) before it
/// checks, so of two writers of one value the second waits for the first
/// to commit and then sees its index rows. A claim outlives the value it
/// names harmlessly: the next claimant takes it over.
pub(super) async fn write_unique(
    transaction: &Transaction<'_>,
    scope: &Scope<'_>,
    resource_type: &str,
    seq: i64,
    object: &Map<String, Value>,
    unique: &[UniqueAttribute],
    never: &NeverReturned,
) -> Result<(), StoreError> {
    if unique.is_empty() {
        return Ok(());
    }
    let wanted: Vec<(String, &UniqueAttribute)> = unique
        .iter()
        .map(|attribute| (attribute.path.to_ascii_lowercase(), attribute))
        .collect();
    let mut values: Vec<(String, UniqueValue, &UniqueAttribute)> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for row in index_rows(object, never)
        .into_iter()
        .filter(|row| row.present)
    {
        let Some((_, attribute)) = wanted.iter().find(|(path, _)| *path == row.path) else {
            continue;
        };
        let Some(value) = unique_value(row.value, attribute.case_exact) else {
            continue;
        };
        // Its claim is a key of `unique_values`, searchable or not.
        if value.key.len() > MAX_INDEXED_BYTES {
            return Err(StoreError::Scim(crate::ScimError::invalid_value(
                too_long_detail(&attribute.path, value.shown.len()),
            )));
        }
        if seen.insert((row.path.clone(), value.key.clone())) {
            values.push((row.path, value, attribute));
        }
    }
    if values.is_empty() {
        return Ok(());
    }
    let paths: Vec<&str> = values.iter().map(|(path, ..)| path.as_str()).collect();
    let ids = paths::assign(transaction, &paths).await?;
    let mut claims: Vec<(i32, &str)> = Vec::with_capacity(values.len());
    for (path, value, _) in &values {
        let path_id = ids
            .get(path)
            .copied()
            .ok_or_else(|| StoreError::Database(format!("the path '{path}' has no number")))?;
        claims.push((path_id, value.key.as_str()));
    }
    // In key order, so two writers of the same values wait in one order.
    claims.sort_unstable();
    let (claim_paths, claim_keys): (Vec<i32>, Vec<&str>) = claims.into_iter().unzip();
    transaction
        .execute_typed(
            "INSERT INTO unique_values (tenant_id, resource_type, path_id, value_lower,
                 resource_seq)
             SELECT $1, $2, v.path_id, v.value, $3
             FROM unnest($4::integer[], $5::text[]) AS v (path_id, value)
             ON CONFLICT (tenant_id, resource_type, path_id, value_lower)
             DO UPDATE SET resource_seq = excluded.resource_seq",
            &[
                (&scope.tenant.0, Type::TEXT),
                (&resource_type, Type::TEXT),
                (&seq, Type::INT8),
                (&claim_paths, Type::INT4_ARRAY),
                (&claim_keys, Type::TEXT_ARRAY),
            ],
        )
        .await?;
    for (path, value, attribute) in &values {
        let path_id = ids.get(path).copied().unwrap_or_default();
        let indexed = scope.rules.indexes(path);
        let holder = other_holder(
            transaction,
            scope.tenant,
            resource_type,
            seq,
            path_id,
            indexed,
            value,
        )
        .await?;
        if let Some(holder) = holder {
            return Err(StoreError::Conflict(format!(
                "{} '{}' is already taken by {resource_type} {holder} (the attribute's uniqueness is server)",
                attribute.path, value.shown
            )));
        }
    }
    Ok(())
}

/// [`crate::Store::delete_with`].
pub(super) async fn delete(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    removal: Removal,
) -> Result<(), StoreError> {
    delete_as(
        store,
        (tenant, actor),
        resource_type,
        id,
        precondition,
        removal,
        false,
    )
    .await
}

/// [`delete`], keeping the resource's tombstone (`lifecycle.rs`) in the
/// same transaction when `keep`: a soft delete.
pub(super) async fn delete_as(
    store: &PostgresStore,
    (tenant, actor): (&TenantId, &Actor),
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    removal: Removal,
    keep: bool,
) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = store.client().await?;
        let transaction = begin(&mut client).await?;
        let result = match delete_in(
            &transaction,
            (tenant, actor),
            resource_type,
            id,
            precondition,
            &removal,
            keep,
        )
        .await
        {
            Ok(scope) => match scope.commit(transaction).await {
                Ok(usage) => {
                    usage.record(&mut client).await;
                    Ok(())
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        if !again(&result, attempt) {
            return result;
        }
    }
}

/// Deletes a resource in `transaction`, as `sqlite::write::delete` does.
async fn delete_in<'a>(
    transaction: &Transaction<'_>,
    (tenant, actor): (&'a TenantId, &'a Actor),
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    removal: &Removal,
    keep: bool,
) -> Result<Scope<'a>, StoreError> {
    // A derivation of stale rules or schemas: refused, nothing deleted.
    let mut scope = Scope::begin(transaction, tenant, actor, removal.schema_generation).await?;
    let current = load_current(transaction, tenant, resource_type, id).await?;
    check_precondition(precondition, current.version)?;
    if keep {
        // Its groups, read before the membership rows go.
        let groups = containing_groups(transaction, tenant, id).await?;
        super::lifecycle::keep_tombstone(
            transaction,
            (tenant, actor),
            resource_type,
            id,
            &current,
            &groups,
        )
        .await?;
    }
    // Who it was, for the change record: read before the row goes.
    let identity = ChangePayload::Deleted(DeletedIdentity::of(id, &current.object)).to_json();
    // A deleted group leaves the `groups` of every user under its members.
    let regrouped: Vec<String> = transaction
        .query_typed(
            "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2
             RETURNING member_id",
            &[(&tenant.0, Type::TEXT), (&id.0, Type::TEXT)],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let containing: BTreeSet<String> = transaction
        .query_typed(
            "DELETE FROM group_members WHERE tenant_id = $1 AND member_id = $2
             RETURNING group_id",
            &[(&tenant.0, Type::TEXT), (&id.0, Type::TEXT)],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    for group_id in containing {
        let mut delta = MemberDelta::default();
        delta.removed(id.0.clone());
        let payload = Payload {
            members: delta.to_json(),
            ..Payload::default()
        };
        touch_group(transaction, &mut scope, &ResourceId(group_id), &payload).await?;
    }
    transaction
        .execute_typed(
            "DELETE FROM resources WHERE seq = $1",
            &[(&current.seq, Type::INT8)],
        )
        .await?;
    touch_users_under(
        transaction,
        &mut scope,
        &regrouped,
        removal.derivation.as_deref(),
    )
    .await?;
    record_change(
        transaction,
        NewChange {
            tenant,
            kind: ChangeKind::Delete,
            resource_type,
            resource_id: id,
            version: current.version,
            actor,
            payload: &identity,
        },
    )
    .await?;
    Ok(scope)
}

/// The groups that contain a resource directly.
async fn containing_groups(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    id: &ResourceId,
) -> Result<Vec<String>, StoreError> {
    transaction
        .query_typed(
            "SELECT group_id FROM group_members WHERE tenant_id = $1 AND member_id = $2
             ORDER BY group_id",
            &[(&tenant.0, Type::TEXT), (&id.0, Type::TEXT)],
        )
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

/// Gives a group whose computed `members` changed outside an update of the
/// group itself (a member deleted or renamed) a new version, and records
/// the change with `payload`.
async fn touch_group(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    group_id: &ResourceId,
    payload: &Payload<'_>,
) -> Result<(), StoreError> {
    let current = load_current(transaction, scope.tenant, GROUP, group_id).await?;
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
    store_row(transaction, &row).await?;
    change(
        transaction,
        scope,
        ChangeKind::Update,
        GROUP,
        group_id,
        version,
        payload,
    )
    .await
}

/// The Users under `roots` (the roots that are Users and every User
/// reached through nested memberships from the roots that are groups),
/// locked `FOR UPDATE` in `seq` order: their row number, id, JSON and
/// version. Finite for cyclic nesting (`UNION` drops repeats).
pub(super) async fn lock_users_under(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    roots: &[String],
) -> Result<Vec<(i64, ResourceId, String, i64, Option<Value>)>, StoreError> {
    let rows = transaction
        .query_typed(
            "WITH RECURSIVE under(id) AS (
                 SELECT unnest($2::text[])
                 UNION
                 SELECT m.member_id FROM under
                 JOIN group_members m ON m.tenant_id = $1 AND m.group_id = under.id
             )
             SELECT r.seq, r.id, r.json::text, r.version, r.unmapped FROM resources r
             WHERE r.tenant_id = $1 AND r.resource_type = 'User'
               AND r.id IN (SELECT id FROM under)
             ORDER BY r.seq
             FOR UPDATE OF r",
            &[(&tenant.0, Type::TEXT), (&roots, Type::TEXT_ARRAY)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                ResourceId(row.try_get(1)?),
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            ))
        })
        .collect()
}

/// Gives every User under `roots` a new version, `lastModified` and change
/// record: their computed `groups` changed, and so must their ETag. With
/// a `derivation`, each one's derived value is recomputed too
/// (`derive.rs`). Without one, only `meta` changes (in place, keeping the
/// JSON's order), all Users in one statement.
async fn touch_users_under(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    roots: &[String],
    derivation: Option<&dyn Derivation>,
) -> Result<(), StoreError> {
    if roots.is_empty() {
        return Ok(());
    }
    if let Some(derivation) = derivation {
        return derive::rederive_users_under(transaction, scope, roots, derivation).await;
    }
    let users = lock_users_under(transaction, scope.tenant, roots).await?;
    if users.is_empty() {
        return Ok(());
    }
    let now = now_text();
    let mut seqs = Vec::with_capacity(users.len());
    let mut texts = Vec::with_capacity(users.len());
    let mut versions = Vec::with_capacity(users.len());
    let mut touched = Vec::with_capacity(users.len());
    for (seq, id, json, version, _) in users {
        let mut object = parse_object(&json)?;
        let version = version + 1;
        if let Some(Value::Object(meta)) = object.get_mut("meta") {
            meta.insert("lastModified".to_owned(), Value::String(now.clone()));
            meta.insert(
                "version".to_owned(),
                Value::String(format!("W/\"{version}\"")),
            );
        }
        seqs.push(seq);
        texts.push(to_text(&object)?);
        versions.push(version);
        touched.push((id, version));
    }
    transaction
        .execute_typed(
            "UPDATE resources r SET json = u.json::json, version = u.version,
                 last_modified = $4::text::timestamptz
             FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u (seq, json, version)
             WHERE r.seq = u.seq",
            &[
                (&seqs, Type::INT8_ARRAY),
                (&texts, Type::TEXT_ARRAY),
                (&versions, Type::INT8_ARRAY),
                (&now, Type::TEXT),
            ],
        )
        .await?;
    let payload = Payload::regrouped();
    for (id, version) in touched {
        change(
            transaction,
            scope,
            ChangeKind::Update,
            USER,
            &id,
            to_version(version),
            &payload,
        )
        .await?;
    }
    Ok(())
}

/// Checks that each member exists in the tenant and reads its type,
/// locking it `FOR KEY SHARE` (it cannot be deleted before this write
/// commits); duplicates collapse, order is kept.
async fn resolve_members(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    group_id: &ResourceId,
    members: &[Member],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut seen = BTreeSet::new();
    let mut ids: Vec<&str> = Vec::with_capacity(members.len());
    for member in members {
        if seen.insert(member.value.0.as_str()) {
            ids.push(member.value.0.as_str());
        }
    }
    // An id holding the NUL character names no resource (and cannot be
    // sent): it stays unresolved, "does not exist" as any unknown id.
    let mut sorted: Vec<&str> = ids.iter().copied().filter(|id| !holds_nul(id)).collect();
    sorted.sort_unstable();
    let types: HashMap<String, String> = transaction
        .query_typed(
            "SELECT id, resource_type FROM resources
             WHERE tenant_id = $1 AND id = ANY($2)
             ORDER BY id
             FOR KEY SHARE",
            &[(&tenant.0, Type::TEXT), (&sorted, Type::TEXT_ARRAY)],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    let mut resolved = Vec::with_capacity(ids.len());
    for member_id in ids {
        if member_id == group_id.0 {
            return Err(crate::ScimError::invalid_value(format!(
                "group {member_id} cannot be a member of itself"
            ))
            .into());
        }
        let Some(member_type) = types.get(member_id) else {
            return Err(crate::ScimError::invalid_value(format!(
                "member '{member_id}' does not exist: no User or Group has that id"
            ))
            .into());
        };
        resolved.push((member_id.to_owned(), member_type.clone()));
    }
    Ok(resolved)
}

/// Inserts membership rows, noting the new ones in `delta`.
async fn add_members(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    group_id: &ResourceId,
    members: Vec<(String, String)>,
    delta: &mut MemberDelta,
) -> Result<(), StoreError> {
    if members.is_empty() {
        return Ok(());
    }
    let (ids, types): (Vec<String>, Vec<String>) = members.into_iter().unzip();
    let rows = transaction
        .query_typed(
            "INSERT INTO group_members (tenant_id, group_id, member_id, member_type)
             SELECT $1, $2, m.id, m.type FROM unnest($3::text[], $4::text[]) AS m (id, type)
             ON CONFLICT DO NOTHING
             RETURNING member_id",
            &[
                (&tenant.0, Type::TEXT),
                (&group_id.0, Type::TEXT),
                (&ids, Type::TEXT_ARRAY),
                (&types, Type::TEXT_ARRAY),
            ],
        )
        .await?;
    for row in &rows {
        delta.added(row.try_get(0)?);
    }
    Ok(())
}

/// Deletes membership rows, noting the ones that existed in `delta`.
async fn remove_members(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    group_id: &ResourceId,
    ids: &[String],
    delta: &mut MemberDelta,
) -> Result<(), StoreError> {
    // An id holding the NUL character is no member (and cannot be sent).
    let ids: Vec<&String> = ids.iter().filter(|id| !holds_nul(id)).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows = transaction
        .query_typed(
            "DELETE FROM group_members
             WHERE tenant_id = $1 AND group_id = $2 AND member_id = ANY($3)
             RETURNING member_id",
            &[
                (&tenant.0, Type::TEXT),
                (&group_id.0, Type::TEXT),
                (&ids, Type::TEXT_ARRAY),
            ],
        )
        .await?;
    for row in &rows {
        delta.removed(row.try_get(0)?);
    }
    Ok(())
}

/// Applies one membership change to a locked group.
async fn apply_member_change(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    group_id: &ResourceId,
    change: MemberChange,
    delta: &mut MemberDelta,
) -> Result<(), StoreError> {
    match change {
        MemberChange::Add(members) => {
            let members = resolve_members(transaction, tenant, group_id, &members).await?;
            add_members(transaction, tenant, group_id, members, delta).await
        }
        MemberChange::Remove(ids) => {
            let ids: Vec<String> = ids.into_iter().map(|id| id.0).collect();
            remove_members(transaction, tenant, group_id, &ids, delta).await
        }
        MemberChange::ReplaceAll(members) => {
            let wanted = resolve_members(transaction, tenant, group_id, &members).await?;
            let existing: BTreeSet<String> = transaction
                .query_typed(
                    "SELECT member_id FROM group_members WHERE tenant_id = $1 AND group_id = $2",
                    &[(&tenant.0, Type::TEXT), (&group_id.0, Type::TEXT)],
                )
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            let keep: BTreeSet<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
            let gone: Vec<String> = existing
                .iter()
                .filter(|id| !keep.contains(id.as_str()))
                .cloned()
                .collect();
            remove_members(transaction, tenant, group_id, &gone, delta).await?;
            let new: Vec<(String, String)> = wanted
                .into_iter()
                .filter(|(id, _)| !existing.contains(id))
                .collect();
            add_members(transaction, tenant, group_id, new, delta).await
        }
    }
}
