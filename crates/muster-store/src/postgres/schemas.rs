//! Custom schemas on PostgreSQL (`custom_schemas`), the rewrite pass a
//! schema change may carry, and the tenant's schema generation. The
//! semantics are SQLite's (`sqlite/schemas.rs` documents them): documents
//! kept verbatim, a replaced schema keeping its place, a deleted one kept
//! as a tombstone (`document` NULL) that a re-declaration continues, URNs
//! one identity whatever their ASCII case, `expected_generation` refusing
//! a change computed from other schemas.
//!
//! With several processes on one database, a schema change starts by
//! locking its tenant's row `FOR UPDATE` ([`lock_tenant`]): it waits for the
//! tenant's resource writes in progress (which hold the row `FOR SHARE`, see
//! `rules.rs`) and for any other schema or setting change, and makes new
//! ones wait until it commits. Everything it does — the record, the
//! rewrite of every resource of the type, the rederivation, the index
//! flags — is one transaction, so a failure anywhere leaves nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::{json, Value};
use tokio_postgres::{GenericClient, Transaction};

use super::consumers::instant_text;
use super::feed::{record_change, NewChange};
use super::write::{current_of, write_state, Scope};
use super::{begin, begin_snapshot, derive, rules, PostgresStore, MAX_ATTEMPTS};
use crate::sqlite::read::{to_version, USER};
use crate::sqlite::rules::searchable_names;
use crate::sqlite::write::{content_of, Current, MemberDelta, StateChange, Written};
use crate::{
    Actor, ChangeKind, Derivation, ResourceId, RewriteFn, SchemaChangeOutcome, SchemaRecord,
    ScimError, SharedDerivation, StoreError, StoredResource, TenantId,
};

/// Resources a rewrite reads (and locks) at a time: bounds its memory,
/// whatever the number of resources of the type.
const REWRITE_BATCH: i64 = 256;

/// How `to_char` renders an instant as RFC 3339 in UTC with milliseconds,
/// as `sqlite::values::now_text` writes it (apply to `<column> AT TIME
/// ZONE 'UTC'`).
pub(super) const RFC3339: &str = "YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"";

/// Locks the tenant's row `FOR UPDATE` until the transaction ends: the
/// first statement of a schema, setting or rule-set change, which
/// serialises them per tenant across processes and waits for (then holds
/// off) the tenant's resource writes. Whether the tenant exists.
pub(super) async fn lock_tenant(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
) -> Result<bool, StoreError> {
    let row = transaction
        .query_opt(
            "SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE",
            &[&tenant.0],
        )
        .await?;
    Ok(row.is_some())
}

/// The error of a change to a tenant that does not exist (SQLite's text).
pub(super) fn no_tenant(tenant: &TenantId) -> StoreError {
    StoreError::NotFound(format!("tenant '{}' does not exist", tenant.0))
}

/// Starts a schema or rule-set change by `actor`: locks the tenant
/// ([`lock_tenant`]), refuses the change when `expected` is not its
/// generation (checked first, as on SQLite), and returns the write scope
/// its resource writes go through (`None` when the tenant does not exist).
pub(super) async fn begin_change<'a>(
    transaction: &Transaction<'_>,
    tenant: &'a TenantId,
    actor: &'a Actor,
    expected: Option<u64>,
) -> Result<Option<Scope<'a>>, StoreError> {
    let exists = lock_tenant(transaction, tenant).await?;
    let scope = Scope::begin(transaction, tenant, actor, expected).await?;
    Ok(exists.then_some(scope))
}

/// The tenant's live schemas, in the order first put.
async fn list_in(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
) -> Result<Vec<SchemaRecord>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT urn, resource_type, required, document, {}, client, searchable
                 FROM custom_schemas
                 WHERE tenant_id = $1 AND document IS NOT NULL ORDER BY position",
                instant_text("updated")
            ),
            &[&tenant.0],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let document: Value = row.try_get(3)?;
            if !document.is_object() {
                return Err(StoreError::Database(
                    "a stored schema document is not a JSON object".to_owned(),
                ));
            }
            Ok(SchemaRecord {
                urn: row.try_get(0)?,
                resource_type: row.try_get(1)?,
                required: row.try_get(2)?,
                document,
                updated: row.try_get(4)?,
                client: row.try_get(5)?,
                searchable: searchable_names(row.try_get(6)?)?,
            })
        })
        .collect()
}

/// [`crate::Store::list_schemas`]: the tenant's live schemas, in the order
/// first put.
pub(super) async fn list(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<SchemaRecord>, StoreError> {
    let client = store.client().await?;
    list_in(&**client, tenant).await
}

/// [`crate::Store::schema_generation`].
pub(super) async fn generation(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<u64, StoreError> {
    let client = store.client().await?;
    Ok(rules::to_public(
        rules::generation(&**client, tenant).await?,
    ))
}

/// [`crate::Store::tenant_schemas`]: the generation and the live schemas,
/// from one snapshot.
pub(super) async fn list_at_generation(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<(u64, Vec<SchemaRecord>), StoreError> {
    let mut client = store.client().await?;
    let transaction = begin_snapshot(&mut client).await?;
    let generation = rules::to_public(rules::generation(&*transaction, tenant).await?);
    let records = list_in(&*transaction, tenant).await?;
    transaction.commit().await?;
    Ok((generation, records))
}

/// The `resource_type` of a schema's change records.
const SCHEMA: &str = "Schema";

/// Who changes which tenant's schemas, and what comes with the change.
#[derive(Clone, Copy)]
struct Change<'a> {
    /// The store.
    store: &'a PostgresStore,
    /// The tenant whose schemas change.
    tenant: &'a TenantId,
    /// Who changes them.
    actor: &'a Actor,
    /// The tenant's derivation under the schemas after the change.
    rederive: Option<&'a dyn Derivation>,
    /// The generation the change was computed at; `None` checks nothing.
    expected_generation: Option<u64>,
}

/// A change's rewrite closure, and whether it has run: a transaction that
/// ran it cannot be run again (its calls may have effects), so contention
/// after that reaches the caller as [`StoreError::Contention`].
struct Rewrite {
    /// The closure; `None` rewrites nothing.
    closure: Option<RewriteFn>,
    /// Whether it was called in an attempt.
    ran: bool,
}

impl Rewrite {
    /// Whether an attempt that failed with `outcome` may be run again.
    fn may_retry<T>(&self, outcome: &Result<T, StoreError>, attempt: usize) -> bool {
        matches!(outcome, Err(StoreError::Contention(_))) && !self.ran && attempt < MAX_ATTEMPTS
    }
}

/// A schema's stored row, whatever the case of its URN: its live row if it
/// has one, else its latest deleted row.
struct Existing {
    /// The URN as stored.
    urn: String,
    /// Its place in the list.
    position: i32,
    /// The highest version of the URN's rows (in any case).
    version: u64,
    /// The resource type it extends (or extended).
    resource_type: String,
    /// Whether it is live (has a document).
    live: bool,
    /// The URN of every row of it, in whatever case each was stored (one,
    /// unless an older build stored several).
    rows: Vec<String>,
}

/// The row of `urn` in any ASCII case, `None` when the tenant never
/// declared it: the tenant's rows (few) matched here, since SQL's `lower`
/// is not ASCII-only. Ranked as SQLite ranks them: live first, then the
/// exact spelling, then the highest version, then the first place.
async fn existing(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    urn: &str,
) -> Result<Option<Existing>, StoreError> {
    let rows = transaction
        .query(
            "SELECT urn, position, version, resource_type, document IS NOT NULL
             FROM custom_schemas WHERE tenant_id = $1",
            &[&tenant.0],
        )
        .await?;
    let mut matching: Vec<Existing> = Vec::new();
    for row in &rows {
        let stored: String = row.try_get(0)?;
        if stored.eq_ignore_ascii_case(urn) {
            matching.push(Existing {
                urn: stored,
                position: row.try_get(1)?,
                version: to_version(row.try_get(2)?),
                resource_type: row.try_get(3)?,
                live: row.try_get(4)?,
                rows: Vec::new(),
            });
        }
    }
    matching.sort_by_key(|row| {
        (
            !row.live,
            row.urn != urn,
            std::cmp::Reverse(row.version),
            row.position,
        )
    });
    let version = matching.iter().map(|row| row.version).max().unwrap_or(0);
    let all: Vec<String> = matching.iter().map(|row| row.urn.clone()).collect();
    Ok(matching.into_iter().next().map(|first| Existing {
        version,
        rows: all,
        ..first
    }))
}

/// Refuses a record the store cannot keep (SQLite's checks and texts).
fn validate(record: &SchemaRecord) -> Result<(), StoreError> {
    let SchemaRecord {
        urn,
        resource_type,
        document,
        searchable,
        ..
    } = record;
    if urn.is_empty() || resource_type.is_empty() {
        return Err(
            ScimError::invalid_value("a schema needs a URN and a resource type to extend").into(),
        );
    }
    if let Some(name) = searchable
        .iter()
        .find(|name| name.is_empty() || name.contains([':', '.']))
    {
        return Err(ScimError::invalid_value(format!(
            "searchable names '{name}', which is no top-level attribute name of schema '{urn}'"
        ))
        .into());
    }
    if !document.is_object() {
        return Err(ScimError::invalid_syntax(format!(
            "the document of schema '{urn}' must be a JSON object"
        ))
        .into());
    }
    Ok(())
}

/// [`crate::Store::put_schema`]: stores a schema (keeping its place when
/// it is live, its URN in the case given), records the change, then runs
/// `rewrite` over the resources of its type and `rederive` over every
/// User, and makes its index rules effective, in one transaction. Refused
/// when `expected_generation` is not the tenant's. Retried on contention
/// until the rewrite has run.
pub(super) async fn put(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    record: SchemaRecord,
    rewrite: Option<RewriteFn>,
    rederive: Option<SharedDerivation>,
    expected_generation: Option<u64>,
) -> Result<SchemaChangeOutcome, StoreError> {
    validate(&record)?;
    let change = Change {
        store,
        tenant,
        actor,
        rederive: rederive.as_deref(),
        expected_generation,
    };
    let mut rewrite = Rewrite {
        closure: rewrite,
        ran: false,
    };
    let mut attempt = 1;
    loop {
        let outcome = put_once(change, &record, &mut rewrite).await;
        if !rewrite.may_retry(&outcome, attempt) {
            return outcome;
        }
        attempt += 1;
    }
}

/// One attempt of [`put`], in one transaction.
async fn put_once(
    change: Change<'_>,
    record: &SchemaRecord,
    rewrite: &mut Rewrite,
) -> Result<SchemaChangeOutcome, StoreError> {
    let SchemaRecord {
        urn,
        resource_type,
        required,
        document,
        searchable,
        ..
    } = record;
    let tenant = change.tenant;
    let mut client = change.store.client().await?;
    let transaction = begin(&mut client).await?;
    let mut scope = begin_change(
        &transaction,
        tenant,
        change.actor,
        change.expected_generation,
    )
    .await?
    .ok_or_else(|| no_tenant(tenant))?;
    let previous = existing(&transaction, tenant, urn).await?;
    let version = previous.as_ref().map_or(1, |row| row.version + 1);
    let position: i32 = match &previous {
        Some(row) if row.live => row.position,
        _ => transaction
            .query_one(
                "SELECT coalesce(max(position), 0) + 1 FROM custom_schemas WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?
            .try_get(0)?,
    };
    if let Some(previous) = &previous {
        // The URN's rows in every case give way to the one row written
        // below, in the case given now.
        transaction
            .execute(
                "DELETE FROM custom_schemas WHERE tenant_id = $1 AND urn = ANY($2)",
                &[&tenant.0, &previous.rows],
            )
            .await?;
    }
    transaction
        .execute(
            "INSERT INTO custom_schemas (tenant_id, urn, position, resource_type, required,
                 document, version, updated, client, searchable)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9)",
            &[
                &tenant.0,
                urn,
                &position,
                resource_type,
                required,
                document,
                &i64::try_from(version).unwrap_or(i64::MAX),
                &change.actor.client,
                &Value::from(searchable.clone()),
            ],
        )
        .await?;
    let payload = json!({
        "schema": document,
        "resourceType": resource_type,
        "required": required,
    });
    record_change(
        &transaction,
        NewChange {
            tenant,
            kind: ChangeKind::Schema,
            resource_type: SCHEMA,
            resource_id: &ResourceId(urn.clone()),
            version,
            actor: change.actor,
            payload: &payload,
        },
    )
    .await?;
    let outcome = follow(
        &transaction,
        &mut scope,
        change,
        resource_type,
        urn,
        rewrite,
    )
    .await?;
    scope.commit(transaction).await?.record(&mut client).await;
    Ok(outcome)
}

/// [`crate::Store::delete_schema`]: deletes a live schema, found by its URN
/// in any case (keeping its row as a tombstone), records the change under
/// the URN as stored, then runs `rewrite` over the resources of the type
/// it extended and `rederive` over every User, and makes the index rules
/// effective, in one transaction. Refused when `expected_generation` is
/// not the tenant's. Retried on contention until the rewrite has run.
pub(super) async fn delete(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    urn: &str,
    rewrite: Option<RewriteFn>,
    rederive: Option<SharedDerivation>,
    expected_generation: Option<u64>,
) -> Result<SchemaChangeOutcome, StoreError> {
    let change = Change {
        store,
        tenant,
        actor,
        rederive: rederive.as_deref(),
        expected_generation,
    };
    let mut rewrite = Rewrite {
        closure: rewrite,
        ran: false,
    };
    let mut attempt = 1;
    loop {
        let outcome = delete_once(change, urn, &mut rewrite).await;
        if !rewrite.may_retry(&outcome, attempt) {
            return outcome;
        }
        attempt += 1;
    }
}

/// One attempt of [`delete`], in one transaction.
async fn delete_once(
    change: Change<'_>,
    urn: &str,
    rewrite: &mut Rewrite,
) -> Result<SchemaChangeOutcome, StoreError> {
    let tenant = change.tenant;
    let not_found = || StoreError::NotFound(format!("schema '{urn}' not found"));
    let mut client = change.store.client().await?;
    let transaction = begin(&mut client).await?;
    // A tenant that does not exist has no schema to delete.
    let mut scope = begin_change(
        &transaction,
        tenant,
        change.actor,
        change.expected_generation,
    )
    .await?
    .ok_or_else(not_found)?;
    let row = existing(&transaction, tenant, urn)
        .await?
        .filter(|row| row.live)
        .ok_or_else(not_found)?;
    let urn = row.urn.as_str();
    let version = row.version + 1;
    // Every live row of the URN, in any case.
    transaction
        .execute(
            "UPDATE custom_schemas SET document = NULL, version = $3, updated = now(), client = $4
             WHERE tenant_id = $1 AND urn = ANY($2) AND document IS NOT NULL",
            &[
                &tenant.0,
                &row.rows,
                &i64::try_from(version).unwrap_or(i64::MAX),
                &change.actor.client,
            ],
        )
        .await?;
    record_change(
        &transaction,
        NewChange {
            tenant,
            kind: ChangeKind::Schema,
            resource_type: SCHEMA,
            resource_id: &ResourceId(urn.to_owned()),
            version,
            actor: change.actor,
            payload: &json!({ "deleted": urn }),
        },
    )
    .await?;
    let outcome = follow(
        &transaction,
        &mut scope,
        change,
        &row.resource_type,
        urn,
        rewrite,
    )
    .await?;
    scope.commit(transaction).await?.record(&mut client).await;
    Ok(outcome)
}

/// What follows a schema's record in its transaction: the rewrite of the
/// resources of `resource_type`, the rederivation of every User, then the
/// index rules of `urn` made effective (after the rewrite, so a value it
/// removes is never put into the lookup index first; whichever rules the
/// rewrite's rows were written under, every row under the URN is
/// classified again): the generation bumped and the `indexed` flag of the
/// rows under the URN that the new rules classify differently flipped.
async fn follow(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    change: Change<'_>,
    resource_type: &str,
    urn: &str,
    rewrite: &mut Rewrite,
) -> Result<SchemaChangeOutcome, StoreError> {
    let rewritten = match rewrite.closure.as_mut() {
        Some(closure) => {
            let pass = RewritePass {
                resource_type,
                rederive: change.rederive,
            };
            rewrite_all(transaction, scope, pass, closure, &mut rewrite.ran).await?
        }
        None => 0,
    };
    let rederived = match change.rederive {
        Some(derivation) => derive::rederive_all_for_schema(transaction, scope, derivation).await?,
        None => 0,
    };
    rules::bump(transaction, change.tenant).await?;
    let rules = rules::load(transaction, change.tenant).await?;
    rules::reindex(transaction, change.tenant, urn, &rules).await?;
    Ok(SchemaChangeOutcome {
        rewritten,
        rederived,
    })
}

/// What a rewrite pass goes over.
#[derive(Clone, Copy)]
struct RewritePass<'a> {
    /// The type of the resources rewritten.
    resource_type: &'a str,
    /// The derivation a rewritten User's value is recomputed with.
    rederive: Option<&'a dyn Derivation>,
}

/// Runs `rewrite` over every resource of a type, in creation order, a batch
/// at a time (each batch locked `FOR UPDATE` before the closure sees it),
/// writing each resource it changes as an update would (new version,
/// changed index rows, uniqueness, usage, change record with `removed`), a
/// User with its derived value recomputed. `ran` is set before the first
/// call. The first error stops the pass; the caller's transaction then
/// rolls everything back. Returns how many resources changed.
async fn rewrite_all(
    transaction: &Transaction<'_>,
    scope: &mut Scope<'_>,
    pass: RewritePass<'_>,
    rewrite: &mut RewriteFn,
    ran: &mut bool,
) -> Result<u64, StoreError> {
    let RewritePass {
        resource_type,
        rederive,
    } = pass;
    let mut after_seq: i64 = 0;
    let mut rewritten = 0;
    loop {
        let rows = transaction
            .query(
                "SELECT seq, id, json::text, version, unmapped FROM resources
                 WHERE tenant_id = $1 AND resource_type = $2 AND seq > $3
                 ORDER BY seq LIMIT $4
                 FOR UPDATE",
                &[&scope.tenant.0, &resource_type, &after_seq, &REWRITE_BATCH],
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(rewritten);
        };
        after_seq = last.try_get(0)?;
        for row in &rows {
            let id = ResourceId(row.try_get(1)?);
            let current = current_of(
                row.try_get(0)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            )?;
            // The closure sees the resource without copying it; it is
            // moved back into `current` only when it is to be written.
            let before = StoredResource {
                id,
                resource_type: resource_type.to_owned(),
                resource: Value::Object(current.object),
                version: current.version,
                unmapped: current.unmapped,
            };
            *ran = true;
            let outcome = match catch_unwind(AssertUnwindSafe(|| rewrite(&before))) {
                Ok(outcome) => outcome?,
                Err(_) => {
                    return Err(StoreError::Database(
                        "a write panicked; it was rolled back".to_owned(),
                    ))
                }
            };
            let Some(outcome) = outcome else {
                continue;
            };
            let StoredResource {
                id,
                resource,
                unmapped,
                ..
            } = before;
            let Value::Object(object) = resource else {
                return Err(StoreError::Database(
                    "a stored resource is not a JSON object".to_owned(),
                ));
            };
            let current = Current {
                object,
                unmapped,
                ..current
            };
            let never_returned = outcome.never_returned;
            let mut content = content_of(outcome.resource, resource_type)?;
            if let (Some(derivation), USER) = (rederive, resource_type) {
                // The User's derived value follows its rewritten attributes
                // in the same version (the pass over every User after the
                // rewrite then finds it up to date).
                derive::derive_into(
                    transaction,
                    scope.tenant,
                    derivation,
                    &id,
                    &mut content,
                    current.object.get("meta"),
                    false,
                )
                .await?;
            }
            let state = StateChange {
                content,
                unmapped: outcome.unmapped,
                delta: MemberDelta::default(),
                removed: outcome.removed,
                // A schema change checks uniqueness across all resources
                // before it rewrites them (the server's `RewriteFn`).
                unique: Vec::new(),
            };
            match write_state(
                transaction,
                scope,
                resource_type,
                &id,
                current,
                state,
                &never_returned,
            )
            .await?
            {
                Written::Changed(_) => rewritten += 1,
                Written::Unchanged(_) => {}
            }
        }
    }
}
