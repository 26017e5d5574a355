//! Reads of one resource on PostgreSQL, with a Group's members and a
//! User's computed groups; and the loaders of those computed attributes,
//! in batch forms for pages of many resources.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Row};

use super::{begin_snapshot, PostgresStore};
use crate::sqlite::read::{
    insert_before_meta, not_found, parse_object, reference, to_version, GROUP, USER,
};
use crate::{ResourceId, StoreError, StoredResource, TenantId};

/// The select list of a resource row for a query on `resources r`, as
/// [`stored_from_row`] reads it (columns 0 to 4).
pub(super) const COLUMNS: &str = "r.id, r.resource_type, r.json::text, r.version, r.unmapped";

/// A resource as stored (without computed attributes) from a row selected
/// with [`COLUMNS`] first.
pub(super) fn stored_from_row(row: &Row) -> Result<StoredResource, StoreError> {
    Ok(StoredResource {
        id: ResourceId(row.try_get(0)?),
        resource_type: row.try_get(1)?,
        resource: Value::Object(parse_object(row.try_get(2)?)?),
        version: to_version(row.try_get(3)?),
        unmapped: unmapped_of(row.try_get(4)?)?,
    })
}

/// A stored `unmapped` column: NULL is no captured value.
pub(super) fn unmapped_of(value: Option<Value>) -> Result<Map<String, Value>, StoreError> {
    match value {
        None => Ok(Map::new()),
        Some(Value::Object(object)) => Ok(object),
        Some(_) => Err(StoreError::Database(
            "stored unmapped values are not a JSON object".to_owned(),
        )),
    }
}

/// [`crate::Store::get`]: one statement (its own snapshot), so a read is one
/// round trip. A User's computed groups come with its row, through a
/// recursive walk up the nesting (`UNION` ends cycles); a Group's members,
/// when asked for, in a second query of the same snapshot.
pub(super) async fn get(
    store: &PostgresStore,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    include_members: bool,
) -> Result<StoredResource, StoreError> {
    // No stored id holds a NUL character (the database cannot store one):
    // such an id names nothing, as on SQLite.
    if super::limits::holds_nul(&id.0) {
        return Err(not_found(resource_type, id));
    }
    let mut client = store.client().await?;
    if resource_type == GROUP && include_members {
        let transaction = begin_snapshot(&mut client).await?;
        let row = transaction
            .query_typed_opt(&ONE_ROW, &params(tenant, id, &resource_type))
            .await?
            .ok_or_else(|| not_found(resource_type, id))?;
        let stored = finish(&*transaction, tenant, stored_from_row(&row)?, true).await?;
        transaction.commit().await?;
        return Ok(stored);
    }
    let row = client
        .query_typed_opt(&USER_WITH_GROUPS, &params(tenant, id, &resource_type))
        .await?
        .ok_or_else(|| not_found(resource_type, id))?;
    let mut stored = stored_from_row(&row)?;
    let groups: Option<String> = row.try_get(5)?;
    if let (Some(groups), Value::Object(object)) = (groups, &mut stored.resource) {
        let list = computed_groups(&groups)?;
        if !list.is_empty() {
            insert_before_meta(object, "groups", Value::Array(list));
        }
    }
    Ok(stored)
}

/// The current version of one resource, if there is one.
pub(super) async fn version(
    store: &PostgresStore,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
) -> Result<Option<u64>, StoreError> {
    if super::limits::holds_nul(&id.0) {
        return Ok(None);
    }
    let client = store.client().await?;
    let row = client
        .query_typed_opt(
            &format!("SELECT r.version {ONE}"),
            &params(tenant, id, &resource_type),
        )
        .await?;
    row.map(|row| Ok(to_version(row.try_get(0)?))).transpose()
}

/// The parameters of [`ONE_ROW`] and [`USER_WITH_GROUPS`]: tenant, id,
/// resource type.
fn params<'a>(
    tenant: &'a TenantId,
    id: &'a ResourceId,
    resource_type: &'a &str,
) -> [(&'a (dyn tokio_postgres::types::ToSql + Sync), Type); 3] {
    [
        (&tenant.0, Type::TEXT),
        (&id.0, Type::TEXT),
        (resource_type, Type::TEXT),
    ]
}

/// Where one resource's row is, by tenant, id and type.
const ONE: &str = "FROM resources r WHERE r.tenant_id = $1 AND r.id = $2 AND r.resource_type = $3";

/// One resource's row ([`COLUMNS`]).
static ONE_ROW: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} {ONE}"));

/// One resource's row and, for a User, its groups as JSON text: an array of
/// `[id, displayName, direct]` (NULL when it is in none, or not a User).
static USER_WITH_GROUPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH RECURSIVE up (group_id) AS (
             SELECT m.group_id FROM group_members m
             WHERE m.tenant_id = $1 AND m.member_id = $2 AND $3 = '{USER}'
             UNION
             SELECT m.group_id FROM group_members m JOIN up ON m.member_id = up.group_id
             WHERE m.tenant_id = $1
         )
         SELECT {COLUMNS},
             (SELECT json_agg(json_build_array(g.id, g.display_name, EXISTS (
                  SELECT 1 FROM group_members d
                  WHERE d.tenant_id = $1 AND d.member_id = $2 AND d.group_id = g.id)))::text
              FROM up JOIN resources g ON g.tenant_id = $1 AND g.id = up.group_id)
         {ONE}"
    )
});

/// A User's computed `groups` from [`USER_WITH_GROUPS`]' JSON: direct ones
/// first, then indirect ones, each part ordered by id (byte order), as
/// [`groups_of`] gives them.
fn computed_groups(json: &str) -> Result<Vec<Value>, StoreError> {
    let rows: Vec<(String, Option<String>, bool)> = serde_json::from_str(json)
        .map_err(|error| StoreError::Database(format!("computed groups: {error}")))?;
    let (mut direct, mut indirect): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|(_, _, is_direct)| *is_direct);
    direct.sort();
    indirect.sort();
    Ok(direct
        .into_iter()
        .map(|(id, display, _)| reference(id, display, "direct".to_owned()))
        .chain(
            indirect
                .into_iter()
                .map(|(id, display, _)| reference(id, display, "indirect".to_owned())),
        )
        .collect())
}

/// Completes a resource read from its row: adds `groups` to a User and,
/// when asked for, `members` to a Group.
pub(super) async fn finish(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
    stored: StoredResource,
    include_members: bool,
) -> Result<StoredResource, StoreError> {
    let mut finished = finish_many(client, tenant, vec![stored], include_members).await?;
    finished
        .pop()
        .ok_or_else(|| StoreError::Database("a finished resource went missing".to_owned()))
}

/// [`finish`] for many resources at once: one query per kind of computed
/// attribute (and per level of group nesting), whatever their number.
pub(super) async fn finish_many(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
    resources: Vec<StoredResource>,
    include_members: bool,
) -> Result<Vec<StoredResource>, StoreError> {
    let ids_of = |wanted: &str| -> Vec<String> {
        resources
            .iter()
            .filter(|stored| stored.resource_type == wanted)
            .map(|stored| stored.id.0.clone())
            .collect()
    };
    let users = ids_of(USER);
    let mut groups = groups_of(client, tenant, &users).await?;
    let mut members = if include_members {
        members_of(client, tenant, &ids_of(GROUP)).await?
    } else {
        HashMap::new()
    };
    Ok(resources
        .into_iter()
        .map(|mut stored| {
            let computed = if stored.resource_type == USER {
                groups.remove(&stored.id.0).map(|list| ("groups", list))
            } else if stored.resource_type == GROUP {
                members.remove(&stored.id.0).map(|list| ("members", list))
            } else {
                None
            };
            if let (Some((name, list)), Value::Object(object)) = (computed, &mut stored.resource) {
                if !list.is_empty() {
                    insert_before_meta(object, name, Value::Array(list));
                }
            }
            stored
        })
        .collect())
}

/// The members of each of `group_ids` that has any, `{value, display,
/// type}`, ordered by id (byte order, as on SQLite).
pub(super) async fn members_of(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
    group_ids: &[String],
) -> Result<HashMap<String, Vec<Value>>, StoreError> {
    let mut members: HashMap<String, Vec<Value>> = HashMap::new();
    if group_ids.is_empty() {
        return Ok(members);
    }
    let rows = client
        .query_typed(
            "SELECT m.group_id, m.member_id, m.member_type, r.display_name
             FROM group_members m
             LEFT JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id
             WHERE m.tenant_id = $1 AND m.group_id = ANY($2)
             ORDER BY m.group_id, m.member_id COLLATE \"C\"",
            &[(&tenant.0, Type::TEXT), (&group_ids, Type::TEXT_ARRAY)],
        )
        .await?;
    for row in &rows {
        members.entry(row.try_get(0)?).or_default().push(reference(
            row.try_get(1)?,
            row.try_get(3)?,
            row.try_get(2)?,
        ));
    }
    Ok(members)
}

/// A group that holds another: its id and `displayName`.
type Holder = (String, Option<String>);

/// The groups that hold each of `member_ids` directly: member id to
/// holders, unordered.
async fn holders_of(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
    member_ids: &[String],
) -> Result<HashMap<String, Vec<Holder>>, StoreError> {
    let mut holders: HashMap<String, Vec<Holder>> = HashMap::new();
    if member_ids.is_empty() {
        return Ok(holders);
    }
    let rows = client
        .query_typed(
            "SELECT m.member_id, m.group_id, g.display_name FROM group_members m
             JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
             WHERE m.tenant_id = $1 AND m.member_id = ANY($2)",
            &[(&tenant.0, Type::TEXT), (&member_ids, Type::TEXT_ARRAY)],
        )
        .await?;
    for row in &rows {
        holders
            .entry(row.try_get(0)?)
            .or_default()
            .push((row.try_get(1)?, row.try_get(2)?));
    }
    Ok(holders)
}

/// The computed `groups` of each of `member_ids` that is in any group:
/// `{value, display, type}` with type `direct` or `indirect` (reached
/// through nested groups), direct ones first, each part ordered by id, as
/// `sqlite::read::load_groups` reads them.
///
/// One query for the direct groups of all of them, then one per level of
/// nesting for the groups above those; a group seen once is not read
/// again, so cycles end.
pub(super) async fn groups_of(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
    member_ids: &[String],
) -> Result<HashMap<String, Vec<Value>>, StoreError> {
    let direct = holders_of(client, tenant, member_ids).await?;
    // The groups above each group reached, read level by level.
    let mut above: HashMap<String, Vec<Holder>> = HashMap::new();
    let mut read: HashSet<String> = HashSet::new();
    let mut frontier: Vec<String> = direct
        .values()
        .flatten()
        .map(|(id, _)| id.clone())
        .filter(|id| read.insert(id.clone()))
        .collect();
    while !frontier.is_empty() {
        let level = holders_of(client, tenant, &frontier).await?;
        frontier = level
            .values()
            .flatten()
            .map(|(id, _)| id.clone())
            .filter(|id| read.insert(id.clone()))
            .collect();
        above.extend(level);
    }
    let mut groups = HashMap::with_capacity(direct.len());
    for (member_id, mut holders) in direct {
        holders.sort();
        let mut seen: HashSet<&str> = holders.iter().map(|(id, _)| id.as_str()).collect();
        let mut indirect: Vec<&Holder> = Vec::new();
        let mut next: Vec<&str> = holders.iter().map(|(id, _)| id.as_str()).collect();
        while let Some(group_id) = next.pop() {
            for holder in above.get(group_id).into_iter().flatten() {
                if seen.insert(holder.0.as_str()) {
                    next.push(holder.0.as_str());
                    indirect.push(holder);
                }
            }
        }
        indirect.sort();
        let list: Vec<Value> =
            holders
                .iter()
                .map(|(id, display)| reference(id.clone(), display.clone(), "direct".to_owned()))
                .chain(indirect.into_iter().map(|(id, display)| {
                    reference(id.clone(), display.clone(), "indirect".to_owned())
                }))
                .collect();
        groups.insert(member_id, list);
    }
    Ok(groups)
}
