//! Reading resources back: the stored JSON plus what is computed on read
//! (a Group's `members` from its rows, a User's `groups` through nested
//! groups), change records and tokens; and scans over every resource of a
//! type.
//!
//! These functions take a plain connection so the writer can use them too,
//! to answer a write with the state it just produced.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::{
    Actor, ChangeKind, ChangePayload, ChangeRecord, ResourceId, StoreError, StoredResource,
    TenantId, TokenRecord, VisitFn,
};

/// The resource type whose `groups` are computed.
pub(crate) const USER: &str = "User";
/// The resource type that has membership rows.
pub(crate) const GROUP: &str = "Group";

/// A stored version as the API counts it.
pub(crate) fn to_version(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

/// Parses stored JSON, which is always an object.
pub(crate) fn parse_object(json: &str) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str(json) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(StoreError::Database(
            "a stored resource is not a JSON object".to_owned(),
        )),
        Err(error) => Err(StoreError::Database(format!(
            "a stored resource is not valid JSON: {error}"
        ))),
    }
}

/// Parses a stored `unmapped` column: NULL is no captured value.
pub(crate) fn parse_unmapped(json: Option<&str>) -> Result<Map<String, Value>, StoreError> {
    match json {
        None => Ok(Map::new()),
        Some(json) => parse_object(json),
    }
}

/// The `unmapped` column of captured values: NULL when there are none.
pub(crate) fn unmapped_text(unmapped: &Map<String, Value>) -> Result<Option<String>, StoreError> {
    if unmapped.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(unmapped)
        .map(Some)
        .map_err(|error| StoreError::Database(format!("cannot serialise unmapped values: {error}")))
}

/// The "not found" error for a resource.
pub(crate) fn not_found(resource_type: &str, id: &ResourceId) -> StoreError {
    StoreError::NotFound(format!("{resource_type} '{}' not found", id.0))
}

/// A resource as its row was read, with its computed attributes, not yet
/// parsed.
///
/// Readers hand these over and the caller parses the stored JSON
/// ([`ReadResource::parse`]) on its own thread, where the resource is then
/// rendered and freed: parsed on the reader thread, the JSON then crossed
/// to another thread to be used and freed, with cold caches and
/// cross-thread frees (about 10 % more server CPU per filtered read, see
/// BENCHMARKS.md). The computed `groups` or `members` are still built as
/// JSON values by the reader, from rows it reads in the same transaction.
pub(crate) struct ReadResource {
    row: ResourceRow,
    computed: Computed,
}

/// A computed attribute read with a resource: its name and values.
type Computed = Option<(&'static str, Vec<Value>)>;

impl ReadResource {
    /// Reads the computed attributes of the resource whose row is given.
    pub(crate) fn read(
        connection: &Connection,
        tenant: &TenantId,
        row: ResourceRow,
        include_members: bool,
    ) -> Result<ReadResource, StoreError> {
        let computed = computed(
            connection,
            tenant,
            &row.resource_type,
            &row.id,
            include_members,
        )?;
        Ok(ReadResource { row, computed })
    }

    /// Parses the stored JSON and adds the computed attribute.
    pub(crate) fn parse(self) -> Result<StoredResource, StoreError> {
        let ResourceRow {
            id,
            resource_type,
            json,
            version,
            unmapped,
        } = self.row;
        let stored = StoredResource {
            id,
            resource_type,
            resource: Value::Object(parse_object(&json)?),
            version: to_version(version),
            unmapped: parse_unmapped(unmapped.as_deref())?,
        };
        Ok(with_computed(stored, self.computed))
    }
}

/// The columns of a resource row that a read hands over.
pub(crate) struct ResourceRow {
    /// The resource id.
    pub id: ResourceId,
    /// Its type.
    pub resource_type: String,
    /// The stored JSON.
    pub json: String,
    /// The stored version.
    pub version: i64,
    /// The `unmapped` column.
    pub unmapped: Option<String>,
}

/// Reads one resource with its computed attributes, in one read
/// transaction (one snapshot, and one round of WAL read locks).
pub(crate) fn get(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    include_members: bool,
) -> Result<ReadResource, StoreError> {
    connection.prepare_cached("BEGIN")?.execute([])?;
    let read = get_in_transaction(connection, tenant, resource_type, id, include_members)?;
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok(read)
}

/// The current version of one resource, if there is one.
pub(crate) fn version(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
) -> Result<Option<u64>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT version FROM resources
             WHERE tenant_id = ?1 AND id = ?2 AND resource_type = ?3",
        )?
        .query_row(params![tenant.0, id.0, resource_type], |row| {
            row.get::<_, i64>(0)
        })
        .optional()?
        .map(to_version))
}

fn get_in_transaction(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    include_members: bool,
) -> Result<ReadResource, StoreError> {
    let row = connection
        .prepare_cached(
            "SELECT json, version, unmapped FROM resources
             WHERE tenant_id = ?1 AND id = ?2 AND resource_type = ?3",
        )?
        .query_row(params![tenant.0, id.0, resource_type], |row| {
            Ok(ResourceRow {
                id: id.clone(),
                resource_type: resource_type.to_owned(),
                json: row.get(0)?,
                version: row.get(1)?,
                unmapped: row.get(2)?,
            })
        })
        .optional()?;
    let Some(row) = row else {
        return Err(not_found(resource_type, id));
    };
    ReadResource::read(connection, tenant, row, include_members)
}

/// Completes a [`StoredResource`] read from its row: adds `groups` to a User
/// and, when asked for, `members` to a Group.
pub(crate) fn finish(
    connection: &Connection,
    tenant: &TenantId,
    stored: StoredResource,
    include_members: bool,
) -> Result<StoredResource, StoreError> {
    let computed = computed(
        connection,
        tenant,
        &stored.resource_type,
        &stored.id,
        include_members,
    )?;
    Ok(with_computed(stored, computed))
}

/// A User's `groups`, or (when asked for) a Group's `members`.
fn computed(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    include_members: bool,
) -> Result<Computed, StoreError> {
    Ok(if resource_type == USER {
        Some(("groups", load_groups(connection, tenant, &id.0)?))
    } else if resource_type == GROUP && include_members {
        Some(("members", load_members(connection, tenant, &id.0)?))
    } else {
        None
    })
}

/// Adds a computed attribute (when it has values) before `meta`.
fn with_computed(mut stored: StoredResource, computed: Computed) -> StoredResource {
    if let (Some((name, list)), Value::Object(object)) = (computed, &mut stored.resource) {
        if !list.is_empty() {
            insert_before_meta(object, name, Value::Array(list));
        }
    }
    stored
}

/// Reads every resource of a type, as stored (without computed attributes),
/// in creation order, in one read transaction; calls `visit` on each as it
/// is read, so memory stays that of one resource whatever the count.
pub(crate) fn scan(
    connection: &Connection,
    tenant: &TenantId,
    resource_type: &str,
    mut visit: VisitFn,
) -> Result<u64, StoreError> {
    connection.prepare_cached("BEGIN")?.execute([])?;
    let mut visited = 0;
    {
        let mut statement = connection.prepare_cached(
            "SELECT id, json, version, unmapped FROM resources
             WHERE tenant_id = ?1 AND resource_type = ?2 ORDER BY seq",
        )?;
        let mut rows = statement.query(params![tenant.0, resource_type])?;
        while let Some(row) = rows.next()? {
            let json: String = row.get(1)?;
            let unmapped: Option<String> = row.get(3)?;
            let stored = StoredResource {
                id: ResourceId(row.get(0)?),
                resource_type: resource_type.to_owned(),
                resource: Value::Object(parse_object(&json)?),
                version: to_version(row.get(2)?),
                unmapped: parse_unmapped(unmapped.as_deref())?,
            };
            visit(&stored);
            visited += 1;
        }
    }
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok(visited)
}

/// Inserts `key` just before `meta`, which stays last.
pub(crate) fn insert_before_meta(object: &mut Map<String, Value>, key: &str, value: Value) {
    let meta = object.shift_remove("meta");
    object.insert(key.to_owned(), value);
    if let Some(meta) = meta {
        object.insert("meta".to_owned(), meta);
    }
}

/// A Group's members, `{value, display, type}`, ordered by id.
pub(crate) fn load_members(
    connection: &Connection,
    tenant: &TenantId,
    group_id: &str,
) -> Result<Vec<Value>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT m.member_id, m.member_type, r.display_name
         FROM group_members m
         LEFT JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id
         WHERE m.tenant_id = ?1 AND m.group_id = ?2
         ORDER BY m.member_id",
    )?;
    let rows = statement.query_map(params![tenant.0, group_id], |row| {
        Ok(reference(
            row.get(0)?,
            row.get(2)?,
            row.get::<_, String>(1)?,
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A member's computed `groups`: `{value, display, type}` with type `direct`
/// or `indirect` (reached through nested groups), direct ones first, each
/// part ordered by id.
///
/// Walked level by level: one indexed lookup for the direct groups (the only
/// query for a user in no group), then one per level of nesting. A group
/// seen once is not walked again, so cycles end.
pub(crate) fn load_groups(
    connection: &Connection,
    tenant: &TenantId,
    member_id: &str,
) -> Result<Vec<Value>, StoreError> {
    let mut direct = direct_groups(connection, tenant, member_id)?;
    if direct.is_empty() {
        return Ok(Vec::new());
    }
    direct.sort();
    let mut seen: HashSet<String> = direct.iter().map(|(id, _)| id.clone()).collect();
    let mut indirect: Vec<(String, Option<String>)> = Vec::new();
    let mut frontier: Vec<String> = direct.iter().map(|(id, _)| id.clone()).collect();
    let mut statement = connection.prepare_cached(
        "SELECT m.group_id, g.display_name FROM group_members m
         CROSS JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
         WHERE m.tenant_id = ?1 AND m.member_id IN (SELECT value FROM json_each(?2))",
    )?;
    while !frontier.is_empty() {
        let list = Value::from(std::mem::take(&mut frontier)).to_string();
        let mut rows = statement.query(params![tenant.0, list])?;
        while let Some(row) = rows.next()? {
            let group_id: String = row.get(0)?;
            if seen.insert(group_id.clone()) {
                frontier.push(group_id.clone());
                indirect.push((group_id, row.get(1)?));
            }
        }
    }
    indirect.sort();
    Ok(direct
        .into_iter()
        .map(|(id, display)| reference(id, display, "direct".to_owned()))
        .chain(
            indirect
                .into_iter()
                .map(|(id, display)| reference(id, display, "indirect".to_owned())),
        )
        .collect())
}

/// The groups that hold a member directly: id and `displayName`, unordered.
pub(crate) fn direct_groups(
    connection: &Connection,
    tenant: &TenantId,
    member_id: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT m.group_id, g.display_name FROM group_members m
         CROSS JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
         WHERE m.tenant_id = ?1 AND m.member_id = ?2",
    )?;
    let rows = statement.query_map(params![tenant.0, member_id], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `{value, display, type}`, without `display` when there is none.
pub(crate) fn reference(value: String, display: Option<String>, kind: String) -> Value {
    let mut object = Map::new();
    object.insert("value".to_owned(), Value::String(value));
    if let Some(display) = display {
        object.insert("display".to_owned(), Value::String(display));
    }
    object.insert("type".to_owned(), Value::String(kind));
    Value::Object(object)
}

/// Change records after `after_sequence`, oldest first.
pub(crate) fn changes(
    connection: &Connection,
    tenant: &TenantId,
    after_sequence: u64,
    limit: u64,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let after = i64::try_from(after_sequence).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = connection.prepare_cached(
        "SELECT sequence, kind, resource_type, resource_id, version, client, request_id, at,
                payload
         FROM changes WHERE tenant_id = ?1 AND sequence > ?2
         ORDER BY sequence LIMIT ?3",
    )?;
    let mut rows = statement.query(params![tenant.0, after, limit])?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        let kind = ChangeKind::from_stored_name(&row.get::<_, String>(1)?)?;
        let payload: String = row.get(8)?;
        let resource_id = ResourceId(row.get(3)?);
        records.push(ChangeRecord {
            sequence: to_version(row.get(0)?),
            tenant: tenant.clone(),
            kind,
            resource_type: row.get(2)?,
            version: to_version(row.get(4)?),
            actor: Actor {
                client: row.get(5)?,
                request_id: row.get(6)?,
            },
            at: row.get(7)?,
            payload: ChangePayload::from_stored(
                kind,
                &resource_id,
                serde_json::from_str(&payload).map_err(|error| {
                    StoreError::Database(format!("a change payload is not valid JSON: {error}"))
                })?,
            ),
            resource_id,
        });
    }
    Ok(records)
}

fn token_from_row(row: &rusqlite::Row<'_>) -> Result<TokenRecord, StoreError> {
    let scopes: String = row.get(2)?;
    Ok(TokenRecord {
        name: row.get(0)?,
        secret_hash: row.get(1)?,
        scopes: serde_json::from_str(&scopes).map_err(|error| {
            StoreError::Database(format!("stored token scopes are not valid JSON: {error}"))
        })?,
        created: row.get(3)?,
    })
}

/// Every token of a tenant, by name.
pub(crate) fn list_tokens(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<TokenRecord>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT name, secret_hash, scopes, created FROM tokens
         WHERE tenant_id = ?1 ORDER BY name",
    )?;
    let mut rows = statement.query(params![tenant.0])?;
    let mut tokens = Vec::new();
    while let Some(row) = rows.next()? {
        tokens.push(token_from_row(row)?);
    }
    Ok(tokens)
}

/// The token with this secret hash, in any tenant.
pub(crate) fn find_token(
    connection: &Connection,
    secret_hash: &str,
) -> Result<Option<(TenantId, TokenRecord)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT name, secret_hash, scopes, created, tenant_id FROM tokens
         WHERE secret_hash = ?1",
    )?;
    let mut rows = statement.query(params![secret_hash])?;
    match rows.next()? {
        Some(row) => {
            let tenant = TenantId(row.get(4)?);
            Ok(Some((tenant, token_from_row(row)?)))
        }
        None => Ok(None),
    }
}
