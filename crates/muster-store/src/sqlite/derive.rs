//! Derived values of Users ([`crate::Derivation`]): computed by the caller's
//! derivation inside the write transaction and stored in the User's JSON,
//! its attribute index rows and its change records, like any attribute.
//!
//! Three kinds of write recompute them:
//!
//! - a User's own create or update (`write.rs`): the value is derived from
//!   the new attributes and the User's groups before the write decides
//!   whether anything changed, so it is indexed and shown in the change
//!   record with the rest;
//! - a write that changes the computed `groups` of Users (members added or
//!   removed, also through nested groups; a group renamed or deleted):
//!   [`rederive_users_under`] rewrites each User under the changed members,
//!   which gets a new version for its groups anyway; its JSON, the index
//!   rows under the derivation's URN, and its change record carry the new
//!   value (the record only that value, under the URN: the rest of the
//!   User did not change);
//! - a rule set put with `rederive` ([`rederive_all`]), or a custom schema
//!   put or delete with one ([`rederive_all_for_schema`], after the
//!   schema's rewrite): every User of the tenant, a batch at a time; only
//!   those whose value changes are written.
//!
//! The derivation sees the User without the value under its URN (so a
//! result never depends on the previous one) and with its computed
//! `groups`, as a read returns them (`read::load_groups`).

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{params, Connection};
use serde_json::{Map, Value};

use super::read::{direct_groups, load_groups, parse_object, reference, to_version, USER};
use super::usage::Stamp;
use super::values::{now_text, NeverReturned};
use super::write::{
    assemble, outside_content, record_change, same_content, store_state, to_text, write_index,
    IndexedColumns, Payload, StateRow, WriteScope,
};
use crate::{ChangeKind, Derivation, ResourceId, StoreError, TenantId};

/// Users a rule-set pass reads at a time: bounds its memory, whatever the
/// number of Users.
const REDERIVE_BATCH: i64 = 256;

/// Whether a derived value means absent.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        _ => false,
    }
}

/// Puts `derived` under `urn` in a User's attributes, replacing whatever a
/// key of that URN in any case held, and lists the URN in `schemas` (last)
/// when there is a value, unlists it when there is none.
pub(crate) fn set_derived(content: &mut Map<String, Value>, urn: &str, derived: Option<Value>) {
    content.retain(|key, _| !key.eq_ignore_ascii_case(urn));
    if let Some(Value::Array(schemas)) = content.get_mut("schemas") {
        schemas.retain(|item| !item.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)));
        if derived.is_some() {
            schemas.push(Value::String(urn.to_owned()));
        }
    }
    if let Some(derived) = derived {
        content.insert(urn.to_owned(), derived);
    }
}

/// Derives a User's value from its new attributes (`content`) and stores
/// it there: for a create or an update of the User itself. `meta` is the
/// User's `meta` before the write (for a new User, the one it is created
/// with).
pub(crate) fn derive_into(
    connection: &Connection,
    tenant: &TenantId,
    derivation: &dyn Derivation,
    id: &ResourceId,
    content: &mut Map<String, Value>,
    meta: Option<&Value>,
    known_new: bool,
) -> Result<(), StoreError> {
    // Nothing can hold a User that did not exist: no groups to read.
    let groups = if known_new {
        Vec::new()
    } else {
        load_groups(connection, tenant, &id.0)?
    };
    set_derived(content, derivation.urn(), None);
    let derived = derive_stored(derivation, content, id, groups, meta);
    set_derived(content, derivation.urn(), derived);
    Ok(())
}

/// The groups above each group (through nesting), read once per rewrite
/// pass: the users a pass rewrites share few groups, so each user's
/// computed `groups` costs one query (its direct groups) instead of one a
/// level. Valid while memberships do not change: within one pass, after
/// the write's own membership changes.
#[derive(Default)]
struct Ancestry {
    /// Group id to the groups above it: id and `displayName`.
    above: HashMap<String, Vec<(String, Option<String>)>>,
}

impl Ancestry {
    /// A member's computed `groups`, exactly as [`load_groups`] reads them.
    fn groups_of(
        &mut self,
        connection: &Connection,
        tenant: &TenantId,
        member_id: &str,
    ) -> Result<Vec<Value>, StoreError> {
        let mut direct = direct_groups(connection, tenant, member_id)?;
        if direct.is_empty() {
            return Ok(Vec::new());
        }
        direct.sort();
        let seen: HashSet<&str> = direct.iter().map(|(id, _)| id.as_str()).collect();
        let mut indirect: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (group_id, _) in &direct {
            for (above, display) in self.above(connection, tenant, group_id)? {
                if !seen.contains(above.as_str()) {
                    indirect.insert(above.clone(), display.clone());
                }
            }
        }
        Ok(direct
            .iter()
            .map(|(id, display)| reference(id.clone(), display.clone(), "direct".to_owned()))
            .chain(
                indirect
                    .into_iter()
                    .map(|(id, display)| reference(id, display, "indirect".to_owned())),
            )
            .collect())
    }

    /// The groups above `group_id`, read on first use. Finite for cyclic
    /// nesting (`UNION` drops repeats).
    fn above(
        &mut self,
        connection: &Connection,
        tenant: &TenantId,
        group_id: &str,
    ) -> Result<&Vec<(String, Option<String>)>, StoreError> {
        if !self.above.contains_key(group_id) {
            let mut statement = connection.prepare_cached(
                "WITH RECURSIVE up(id) AS (
                     SELECT group_id FROM group_members WHERE tenant_id = ?1 AND member_id = ?2
                     UNION
                     SELECT m.group_id FROM up
                     CROSS JOIN group_members m ON m.tenant_id = ?1 AND m.member_id = up.id
                 )
                 SELECT g.id, g.display_name FROM up
                 CROSS JOIN resources g ON g.tenant_id = ?1 AND g.id = up.id",
            )?;
            let rows = statement.query_map(params![tenant.0, group_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            let found = rows.collect::<Result<_, _>>()?;
            self.above.insert(group_id.to_owned(), found);
        }
        self.above.get(group_id).ok_or_else(|| {
            StoreError::Database(format!("the groups above {group_id} were not read"))
        })
    }
}

/// A stored User as a rewrite reads it.
struct StoredUser {
    seq: i64,
    id: ResourceId,
    object: Map<String, Value>,
    version: u64,
    created: String,
    /// The `unmapped` column, kept as it is.
    unmapped: Option<String>,
}

impl StoredUser {
    fn from_row(row: &rusqlite::Row<'_>) -> Result<StoredUser, StoreError> {
        let json: String = row.get(2)?;
        Ok(StoredUser {
            seq: row.get(0)?,
            id: ResourceId(row.get(1)?),
            object: parse_object(&json)?,
            version: to_version(row.get(3)?),
            created: row.get(4)?,
            unmapped: row.get(5)?,
        })
    }
}

/// Why a stored User is rewritten.
#[derive(Clone, Copy)]
pub(crate) enum Cause {
    /// Its computed `groups` changed: it gets a new version whatever its
    /// derived value does.
    Regrouped,
    /// A rule set was put (its version): it is written only when its
    /// derived value changes.
    RuleSet(u64),
    /// A custom schema was put or deleted (an attribute the rules read may
    /// have been converted or removed): it is written only when its
    /// derived value changes.
    Schema,
}

/// The derived value of the User whose attributes `content` holds (without
/// `id`, `meta` and `groups`, and without the value under the derivation's
/// URN): `id`, its computed `groups` and `meta` are appended for the call
/// and taken off again, so the attributes are not copied. An empty value
/// (null, `{}`, `[]`, `""`) is `None`: the extension is then absent.
pub(crate) fn derive_stored(
    derivation: &dyn Derivation,
    content: &mut Map<String, Value>,
    id: &ResourceId,
    groups: Vec<Value>,
    meta: Option<&Value>,
) -> Option<Value> {
    let mut added = vec!["id"];
    content.insert("id".to_owned(), Value::String(id.0.clone()));
    if !groups.is_empty() {
        content.insert("groups".to_owned(), Value::Array(groups));
        added.push("groups");
    }
    if let Some(meta) = meta {
        content.insert("meta".to_owned(), meta.clone());
        added.push("meta");
    }
    let user = Value::Object(std::mem::take(content));
    let derived = derivation.derive(&user).filter(|value| !is_empty(value));
    if let Value::Object(object) = user {
        *content = object;
    }
    for key in added.iter().rev() {
        // The last keys: taken off without moving the others.
        content.shift_remove(*key);
    }
    derived
}

/// The value under `urn` (in any case) in a User's JSON, with its key.
fn find_urn<'a>(object: &'a Map<String, Value>, urn: &str) -> Option<(&'a String, &'a Value)> {
    object.iter().find(|(key, _)| key.eq_ignore_ascii_case(urn))
}

/// The attributes of a derived value: `nothing` when it is absent, `None`
/// when it is no object.
fn attributes_of<'a>(
    found: Option<(&'a String, &'a Value)>,
    nothing: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match found {
        None => Some(nothing),
        Some((_, Value::Object(attributes))) => Some(attributes),
        Some(_) => None,
    }
}

/// The part of a derived value whose index rows can differ between `old`
/// and `new` (the User's JSON before and after), as one-key objects `{urn:
/// {attribute: value}}` holding the attributes under `urn` whose values
/// differ: an attribute with the same value has the same rows. Only those
/// values are copied.
pub(crate) fn changed_part(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    urn: &str,
) -> (Map<String, Value>, Map<String, Value>) {
    let empty = Map::new();
    let nothing = &empty;
    let (before, after) = (find_urn(old, urn), find_urn(new, urn));
    let (Some(old_attributes), Some(new_attributes)) = (
        attributes_of(before, nothing),
        attributes_of(after, nothing),
    ) else {
        // Not an object on one side: the whole values.
        let whole = |found: Option<(&String, &Value)>| -> Map<String, Value> {
            found
                .map(|(key, value)| (key.clone(), value.clone()))
                .into_iter()
                .collect()
        };
        return (whole(before), whole(after));
    };
    let differing = |from: &Map<String, Value>, other: &Map<String, Value>| -> Map<String, Value> {
        from.iter()
            .filter(|(key, value)| other.get(*key) != Some(*value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    };
    let wrap = |found: Option<(&String, &Value)>, attributes: Map<String, Value>| {
        let key = found.map_or_else(|| urn.to_owned(), |(key, _)| key.clone());
        let mut object = Map::new();
        object.insert(key, Value::Object(attributes));
        object
    };
    (
        wrap(before, differing(old_attributes, new_attributes)),
        wrap(after, differing(new_attributes, old_attributes)),
    )
}

/// Recomputes a stored User's derived value and writes the User when its
/// groups changed or its value did: a new version and `lastModified`, its
/// JSON, the index rows under the derivation's URN (only those that
/// changed), and a change record (when the value changed, with the
/// resource, or for regrouped Users with the derived value alone). Whether
/// the value changed.
fn rewrite_user(
    connection: &Connection,
    scope: &WriteScope,
    derivation: &dyn Derivation,
    ancestry: &mut Ancestry,
    user: StoredUser,
    cause: Cause,
) -> Result<bool, StoreError> {
    let StoredUser {
        seq,
        id,
        object: old,
        version: old_version,
        created,
        unmapped,
    } = user;
    let urn = derivation.urn();
    let groups = ancestry.groups_of(connection, &scope.tenant, &id.0)?;
    let mut content: Map<String, Value> = old
        .iter()
        .filter(|(key, _)| !outside_content(key, USER))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    set_derived(&mut content, urn, None);
    let derived = derive_stored(derivation, &mut content, &id, groups, old.get("meta"));
    set_derived(&mut content, urn, derived);
    let changed = !same_content(&content, &old, USER);
    if !changed && matches!(cause, Cause::RuleSet(_) | Cause::Schema) {
        return Ok(false);
    }
    let columns = IndexedColumns::of(&content, USER);
    let version = old_version + 1;
    let now = now_text();
    let object = assemble(content, &id, USER, &created, &now, version);
    let text = to_text(&object)?;
    let stamp = Stamp {
        tenant: &scope.tenant,
        resource_type: USER,
        client: &scope.actor.client,
        at: &now,
    };
    let row = StateRow {
        seq,
        object: &object,
        text: &text,
        version,
        now: &now,
        columns: &columns,
        unmapped: unmapped.as_deref(),
    };
    // Only the derived value changed: its rows are the only ones to bring
    // up to date.
    store_state(connection, &stamp, &row, None)?;
    let never = NeverReturned::new(&object, derivation.never_returned());
    if changed {
        let (before, after) = changed_part(&old, &object, urn);
        write_index(connection, &stamp, seq, &after, Some(&before), &never)?;
    }
    let regrouped = matches!(cause, Cause::Regrouped);
    // A regrouped user's record carries only its new derived value: the
    // rest of the User did not change.
    let shown = match changed && !regrouped {
        true => Some(never.payload_text(&object, &text)?),
        false => None,
    };
    let derived_text = match changed && regrouped {
        true => Some(derived_payload(&object, urn, &never)?),
        false => None,
    };
    let payload = Payload {
        resource: shown.as_deref(),
        derived: derived_text.as_deref().map(|text| (urn, text)),
        regrouped,
        rule_set: match cause {
            Cause::RuleSet(version) => Some(version),
            Cause::Regrouped | Cause::Schema => None,
        },
        ..Payload::default()
    };
    record_change(
        connection,
        scope,
        ChangeKind::Update,
        USER,
        &id,
        version,
        &now,
        &payload.to_text(),
    )?;
    Ok(changed)
}

/// The JSON text of the derived value under `urn` in a User's JSON, without
/// its never-returned values; `null` when it is absent.
pub(crate) fn derived_payload(
    object: &Map<String, Value>,
    urn: &str,
    never: &NeverReturned,
) -> Result<String, StoreError> {
    let mut part: Map<String, Value> = find_urn(object, urn)
        .map(|(key, value)| (key.clone(), value.clone()))
        .into_iter()
        .collect();
    never.strip_resource(&mut part);
    let value = part.values().next().unwrap_or(&Value::Null);
    serde_json::to_string(value)
        .map_err(|error| StoreError::Database(format!("cannot serialise a payload: {error}")))
}

/// Reads one User by its row.
fn load_user(connection: &Connection, seq: i64) -> Result<StoredUser, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, id, json, version, created, unmapped FROM resources WHERE seq = ?1",
    )?;
    let mut rows = statement.query(params![seq])?;
    match rows.next()? {
        Some(row) => StoredUser::from_row(row),
        None => Err(StoreError::Database(format!(
            "resource row {seq} vanished during a write"
        ))),
    }
}

/// Gives every User under `roots` (ids of users and groups: the roots that
/// are users and every user reached through nested memberships from the
/// roots that are groups) a new version, `lastModified` and change record,
/// with its derived value recomputed (see [`rewrite_user`]). The Users are
/// listed first, then rewritten one at a time, in `seq` order. Finite for
/// cyclic nesting (`UNION` drops repeats).
pub(crate) fn rederive_users_under(
    connection: &Connection,
    scope: &WriteScope,
    roots: &[String],
    derivation: &dyn Derivation,
) -> Result<(), StoreError> {
    let users: Vec<i64> = {
        let mut statement = connection.prepare_cached(
            "WITH RECURSIVE under(id) AS (
                 SELECT value FROM json_each(?2)
                 UNION
                 SELECT m.member_id FROM under
                 CROSS JOIN group_members m ON m.tenant_id = ?1 AND m.group_id = under.id
             )
             SELECT r.seq FROM under
             CROSS JOIN resources r ON r.tenant_id = ?1 AND r.id = under.id
             WHERE r.resource_type = 'User'
             ORDER BY r.seq",
        )?;
        let roots = Value::from(roots.to_vec()).to_string();
        let rows = statement.query_map(params![scope.tenant.0, roots], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut ancestry = Ancestry::default();
    for seq in users {
        let user = load_user(connection, seq)?;
        rewrite_user(
            connection,
            scope,
            derivation,
            &mut ancestry,
            user,
            Cause::Regrouped,
        )?;
    }
    Ok(())
}

/// Recomputes the derived value of every User of the tenant, in creation
/// order, a batch at a time (each batch read completely before any of it
/// is written), writing those whose value changes; for rule set `version`.
/// How many were written.
pub(crate) fn rederive_all(
    connection: &Connection,
    scope: &WriteScope,
    derivation: &dyn Derivation,
    version: u64,
) -> Result<u64, StoreError> {
    rederive_every_user(connection, scope, derivation, Cause::RuleSet(version))
}

/// Recomputes the derived value of every User of the tenant after a
/// custom schema change (its rewrite done), as [`rederive_all`] does for a
/// rule set: only those whose value changes are written, each with a
/// change record `{"resource": ..}`. How many were written.
pub(crate) fn rederive_all_for_schema(
    connection: &Connection,
    scope: &WriteScope,
    derivation: &dyn Derivation,
) -> Result<u64, StoreError> {
    rederive_every_user(connection, scope, derivation, Cause::Schema)
}

/// Every User of the tenant, a batch at a time, rewritten by
/// [`rewrite_user`] for `cause`. How many changed.
fn rederive_every_user(
    connection: &Connection,
    scope: &WriteScope,
    derivation: &dyn Derivation,
    cause: Cause,
) -> Result<u64, StoreError> {
    let mut after_seq = 0;
    let mut rewritten = 0;
    let mut ancestry = Ancestry::default();
    loop {
        let batch: Vec<StoredUser> = {
            let mut statement = connection.prepare_cached(
                "SELECT seq, id, json, version, created, unmapped FROM resources
                 WHERE tenant_id = ?1 AND resource_type = 'User' AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )?;
            let mut rows = statement.query(params![scope.tenant.0, after_seq, REDERIVE_BATCH])?;
            let mut batch = Vec::new();
            while let Some(row) = rows.next()? {
                batch.push(StoredUser::from_row(row)?);
            }
            batch
        };
        let Some(last) = batch.last() else {
            return Ok(rewritten);
        };
        after_seq = last.seq;
        for user in batch {
            if rewrite_user(connection, scope, derivation, &mut ancestry, user, cause)? {
                rewritten += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqliteStore, DATABASE_FILE};
    use crate::{Actor, Member, MemberChange, NewResource, Precondition, Store, Update};
    use serde_json::json;

    fn actor() -> Actor {
        Actor {
            client: "test".to_owned(),
            request_id: String::new(),
        }
    }

    async fn create(
        store: &SqliteStore,
        kind: &str,
        name: &str,
        members: &[&ResourceId],
    ) -> ResourceId {
        let (key, schema) = match kind {
            "User" => ("userName", "urn:ietf:params:scim:schemas:core:2.0:User"),
            _ => ("displayName", "urn:ietf:params:scim:schemas:core:2.0:Group"),
        };
        let new = NewResource {
            resource: json!({"schemas": [schema], key: name}),
            members: members
                .iter()
                .map(|id| Member {
                    value: (*id).clone(),
                    kind: None,
                })
                .collect(),
            ..NewResource::default()
        };
        store
            .create(&TenantId::default_tenant(), &actor(), kind, new)
            .await
            .unwrap()
            .id
    }

    /// Only the attributes whose values differ are compared for index rows;
    /// a value that is no object is taken whole.
    #[test]
    fn changed_part_keeps_the_differing_attributes() {
        let urn = "urn:x:User";
        let object = |value: Value| match json!({ urn: value }) {
            Value::Object(object) => object,
            _ => Map::new(),
        };
        let old = object(json!({"a": 1, "b": [1, 2], "c": "same"}));
        let new = object(json!({"b": [2], "c": "same", "d": true}));
        let (before, after) = changed_part(&old, &new, urn);
        assert_eq!(Value::Object(before), json!({ urn: {"a": 1, "b": [1, 2]} }));
        assert_eq!(Value::Object(after), json!({ urn: {"b": [2], "d": true} }));
        let (before, after) = changed_part(&old, &Map::new(), urn);
        assert_eq!(Value::Object(before), Value::Object(old.clone()));
        assert_eq!(Value::Object(after), json!({ urn: {} }));
        let odd = object(json!("text"));
        let (before, after) = changed_part(&old, &odd, urn);
        assert_eq!((before, after), (old, odd));
    }

    /// The cached ancestry gives every user the groups a read gives it,
    /// through nesting and a cycle.
    #[tokio::test]
    async fn ancestry_reads_the_groups_a_read_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut users = Vec::new();
        for name in ["u1", "u2", "u3", "u4"] {
            users.push(create(&store, "User", name, &[]).await);
        }
        let a = create(&store, "Group", "A", &[&users[0]]).await;
        let b = create(&store, "Group", "B", &[&a, &users[1]]).await;
        let c = create(&store, "Group", "C", &[&b]).await;
        let d = create(&store, "Group", "D", &[&c, &users[2]]).await;
        create(&store, "Group", "E", &[&users[0], &users[2]]).await;
        // A cycle: D holds C holds B holds A holds D.
        store
            .update(
                &TenantId::default_tenant(),
                &actor(),
                "Group",
                &a,
                Precondition::None,
                false,
                Box::new(move |current| {
                    Ok(Some(Update {
                        resource: current.resource.clone(),
                        member_changes: vec![MemberChange::Add(vec![Member {
                            value: d,
                            kind: None,
                        }])],
                        ..Update::default()
                    }))
                }),
            )
            .await
            .unwrap();
        drop(store);
        let connection = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        let tenant = TenantId::default_tenant();
        let mut ancestry = Ancestry::default();
        let mut members: Vec<String> = users.iter().map(|id| id.0.clone()).collect();
        members.extend([a.0.clone(), b.0.clone(), c.0.clone()]);
        for member in &members {
            let read = load_groups(&connection, &tenant, member).unwrap();
            let cached = ancestry.groups_of(&connection, &tenant, member).unwrap();
            assert_eq!(cached, read, "{member}");
        }
        let u1 = ancestry
            .groups_of(&connection, &tenant, &users[0].0)
            .unwrap();
        assert_eq!(u1.len(), 5, "A and E direct, B, C, D indirect: {u1:?}");
    }
}
