//! Derived values of Users on PostgreSQL ([`crate::Derivation`]), with the
//! semantics of `sqlite/derive.rs` (whose module documentation lists the
//! writes that recompute them) and its pure helpers.
//!
//! A pass over many Users locks them (`FOR UPDATE`, in `seq` order) and
//! reads their computed `groups` in one batch (`read::groups_of`), after
//! the write's own membership changes.

use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use super::read::groups_of;
use super::write::{change, current_of, lock_users_under, store_state, write_index, Scope};
use crate::sqlite::derive::{changed_part, derive_stored, derived_payload, set_derived, Cause};
use crate::sqlite::read::USER;
use crate::sqlite::values::{now_text, NeverReturned};
use crate::sqlite::write::{
    assemble, outside_content, same_content, to_text, Current, IndexedColumns, Payload, StateRow,
};
use crate::{ChangeKind, Derivation, ResourceId, StoreError, TenantId};

/// Users a rule-set or schema pass reads (and locks) at a time.
const REDERIVE_BATCH: i64 = 256;

/// Derives a User's value from its new attributes (`content`) and stores
/// it there: for a create or an update of the User itself. `meta` is the
/// User's `meta` before the write (for a new User, the one it is created
/// with).
pub(super) async fn derive_into(
    transaction: &Transaction<'_>,
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
        groups_of(transaction, tenant, std::slice::from_ref(&id.0))
            .await?
            .remove(&id.0)
            .unwrap_or_default()
    };
    set_derived(content, derivation.urn(), None);
    let derived = derive_stored(derivation, content, id, groups, meta);
    set_derived(content, derivation.urn(), derived);
    Ok(())
}

/// Recomputes a locked User's derived value and writes the User when its
/// groups changed (`cause` Regrouped) or its value did, as
/// `sqlite::derive::rewrite_user` does. Whether the value changed.
async fn rewrite_user(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    derivation: &dyn Derivation,
    id: &ResourceId,
    user: Current,
    groups: Vec<Value>,
    cause: Cause,
) -> Result<bool, StoreError> {
    let Current {
        seq,
        object: old,
        version: old_version,
        created,
        unmapped,
    } = user;
    let urn = derivation.urn();
    let mut content: Map<String, Value> = old
        .iter()
        .filter(|(key, _)| !outside_content(key, USER))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    set_derived(&mut content, urn, None);
    let derived = derive_stored(derivation, &mut content, id, groups, old.get("meta"));
    set_derived(&mut content, urn, derived);
    let changed = !same_content(&content, &old, USER);
    if !changed && matches!(cause, Cause::RuleSet(_) | Cause::Schema) {
        return Ok(false);
    }
    let columns = IndexedColumns::of(&content, USER);
    let version = old_version + 1;
    let now = now_text();
    let object = assemble(content, id, USER, &created, &now, version);
    let text = to_text(&object)?;
    let unmapped_json = crate::sqlite::read::unmapped_text(&unmapped)?;
    let row = StateRow {
        seq,
        object: &object,
        text: &text,
        version,
        now: &now,
        columns: &columns,
        unmapped: unmapped_json.as_deref(),
    };
    // Only the derived value changed: its rows are the only ones to bring
    // up to date.
    store_state(transaction, scope, USER, &row, None).await?;
    let never = NeverReturned::new(&object, derivation.never_returned());
    if changed {
        let (before, after) = changed_part(&old, &object, urn);
        write_index(
            transaction,
            scope,
            USER,
            seq,
            &after,
            Some(&before),
            &never,
            &now,
        )
        .await?;
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
    change(
        transaction,
        scope,
        ChangeKind::Update,
        USER,
        id,
        version,
        &payload,
    )
    .await?;
    Ok(changed)
}

/// Locked Users as rows: id and current state.
type Users = Vec<(ResourceId, Current)>;

/// Rewrites `users` for `cause`, their computed `groups` read in one
/// batch; how many changed value.
async fn rewrite_users(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    derivation: &dyn Derivation,
    users: Users,
    cause: Cause,
) -> Result<u64, StoreError> {
    let ids: Vec<String> = users.iter().map(|(id, _)| id.0.clone()).collect();
    let mut groups = groups_of(transaction, scope.tenant, &ids).await?;
    let mut rewritten = 0;
    for (id, user) in users {
        let groups = groups.remove(&id.0).unwrap_or_default();
        if rewrite_user(transaction, scope, derivation, &id, user, groups, cause).await? {
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// Gives every User under `roots` (Users, and Users reached through nested
/// memberships from the roots that are groups) a new version,
/// `lastModified` and change record, with its derived value recomputed.
pub(super) async fn rederive_users_under(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    roots: &[String],
    derivation: &dyn Derivation,
) -> Result<(), StoreError> {
    let users = lock_users_under(transaction, scope.tenant, roots)
        .await?
        .into_iter()
        .map(|(seq, id, json, version, unmapped)| {
            Ok((id, current_of(seq, &json, version, unmapped)?))
        })
        .collect::<Result<Users, StoreError>>()?;
    rewrite_users(transaction, scope, derivation, users, Cause::Regrouped).await?;
    Ok(())
}

/// Recomputes the derived value of every User of the tenant, in creation
/// order, a batch at a time, writing those whose value changes; for rule
/// set `version`. How many were written.
pub(super) async fn rederive_all(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    derivation: &dyn Derivation,
    version: u64,
) -> Result<u64, StoreError> {
    rederive_every_user(transaction, scope, derivation, Cause::RuleSet(version)).await
}

/// Recomputes the derived value of every User of the tenant after a custom
/// schema change (its rewrite done), as [`rederive_all`] does for a rule
/// set. How many were written.
pub(super) async fn rederive_all_for_schema(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    derivation: &dyn Derivation,
) -> Result<u64, StoreError> {
    rederive_every_user(transaction, scope, derivation, Cause::Schema).await
}

/// Every User of the tenant, a batch at a time (locked, read, then
/// rewritten), for `cause`. How many changed.
async fn rederive_every_user(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    derivation: &dyn Derivation,
    cause: Cause,
) -> Result<u64, StoreError> {
    let mut after_seq: i64 = 0;
    let mut rewritten = 0;
    loop {
        let rows = transaction
            .query_typed(
                "SELECT seq, id, json::text, version, unmapped FROM resources
                 WHERE tenant_id = $1 AND resource_type = 'User' AND seq > $2
                 ORDER BY seq LIMIT $3
                 FOR UPDATE",
                &[
                    (&scope.tenant.0, Type::TEXT),
                    (&after_seq, Type::INT8),
                    (&REDERIVE_BATCH, Type::INT8),
                ],
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(rewritten);
        };
        after_seq = last.try_get(0)?;
        let users = rows
            .iter()
            .map(|row| {
                Ok((
                    ResourceId(row.try_get(1)?),
                    current_of(
                        row.try_get(0)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                        row.try_get(4)?,
                    )?,
                ))
            })
            .collect::<Result<Users, StoreError>>()?;
        rewritten += rewrite_users(transaction, scope, derivation, users, cause).await?;
    }
}
