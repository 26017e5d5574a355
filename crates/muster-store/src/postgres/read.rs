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

/// [`crate::Store::get`].
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
    let transaction = begin_snapshot(&mut client).await?;
    let row = transaction
        .query_typed_opt(
            &format!(
                "SELECT {COLUMNS} FROM resources r
                 WHERE r.tenant_id = $1 AND r.id = $2 AND r.resource_type = $3"
            ),
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
    let stored = finish(
        &*transaction,
        tenant,
        stored_from_row(&row)?,
        include_members,
    )
    .await?;
    transaction.commit().await?;
    Ok(stored)
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
