//! Custom schema records (`custom_schemas`) and the rewrite pass a schema
//! change may carry.
//!
//! The store keeps each schema document verbatim and never interprets it;
//! what a change means for stored resources is decided by the server's
//! [`RewriteFn`], which the store runs over every resource of the type in
//! the same transaction as the schema write. Schema changes are submitted
//! with `Writer::submit_alone`, so that transaction holds nothing else and
//! needs no savepoint, whatever the number of resources rewritten.
//!
//! Each schema names its searchable attributes; a put or delete bumps the
//! tenant's index rule generation and flips the `indexed` flag of the rows
//! it reclassifies, in its own transaction (`rules.rs`).
//!
//! A deleted schema keeps its row with `document` NULL: a later
//! re-declaration continues its version count (the version of its change
//! records) and takes a new place at the end of the list.
//!
//! A URN is one identity whatever its ASCII case: a put finds the tenant's
//! row (live or deleted) in any case and replaces it, the stored URN taking
//! the case of the latest put (as the server's registry does); a delete
//! finds it in any case. Rows of one URN in several cases, which builds
//! before this rule could leave, are merged into one by the next put.
//!
//! A change may carry the tenant's derivation built against the schemas
//! after it (`rederive`): once the rewrite is done, every User's derived
//! value is recomputed in the same transaction (`derive.rs`), so a value
//! derived from an attribute the change converts or removes is never read
//! stale.
//!
//! Schema changes carry the schema generation they were computed at
//! (`expected_generation`): a change computed from schemas that are no
//! longer the stored ones is refused (`rules::check_generation`).

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use super::derive::{derive_into, rederive_all_for_schema};
use super::read::USER;
use super::read::{parse_object, to_version};
use super::rules;
use super::values::now_text;
use super::write::{
    content_of, insert_error, load_batch, record_change, write_state, Current, MemberDelta,
    StateChange, WriteScope, Written,
};
use crate::{
    ChangeKind, Derivation, ResourceId, RewriteFn, SchemaChangeOutcome, SchemaRecord, ScimError,
    StoreError, StoredResource, TenantId,
};

/// The `resource_type` of a schema's change records.
const SCHEMA: &str = "Schema";

/// Resources a rewrite reads at a time: bounds its memory, whatever the
/// number of resources of the type.
const REWRITE_BATCH: i64 = 256;

/// The tenant's live schemas, in the order first put.
pub(crate) fn list(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<SchemaRecord>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT urn, resource_type, required, document, updated, client, searchable
         FROM custom_schemas
         WHERE tenant_id = ?1 AND document IS NOT NULL ORDER BY position",
    )?;
    let mut rows = statement.query(params![tenant.0])?;
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        let document: String = row.get(3)?;
        records.push(SchemaRecord {
            urn: row.get(0)?,
            resource_type: row.get(1)?,
            required: row.get(2)?,
            document: Value::Object(parse_object(&document)?),
            updated: row.get(4)?,
            client: row.get(5)?,
            searchable: rules::parse_searchable(&row.get::<_, String>(6)?)?,
        });
    }
    Ok(records)
}

/// The tenant's schema generation and live schemas, from one read
/// transaction.
pub(crate) fn list_at_generation(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<(u64, Vec<SchemaRecord>), StoreError> {
    connection.prepare_cached("BEGIN")?.execute([])?;
    let generation = rules::schema_generation(connection, tenant)?;
    let records = list(connection, tenant)?;
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok((generation, records))
}

/// A schema's stored row, whatever the case of its URN: its live row if it
/// has one, else its latest deleted row.
struct Existing {
    /// The URN as stored.
    urn: String,
    position: i64,
    /// The highest version of the URN's rows (in any case).
    version: u64,
    resource_type: String,
    live: bool,
}

/// The row of `urn` in any ASCII case, `None` when the tenant never
/// declared it. Scans only the tenant's schema rows (few).
fn existing(
    connection: &Connection,
    tenant: &TenantId,
    urn: &str,
) -> Result<Option<Existing>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT urn, position, version, resource_type, document IS NOT NULL
         FROM custom_schemas WHERE tenant_id = ?1 AND lower(urn) = lower(?2)
         ORDER BY document IS NOT NULL DESC, urn = ?2 DESC, version DESC, position",
    )?;
    let mut rows = statement.query(params![tenant.0, urn])?;
    let mut found: Option<Existing> = None;
    while let Some(row) = rows.next()? {
        let version = to_version(row.get(2)?);
        match &mut found {
            // The first row is the one that stands for the URN; the others
            // only add to its version count.
            Some(first) => first.version = first.version.max(version),
            None => {
                found = Some(Existing {
                    urn: row.get(0)?,
                    position: row.get(1)?,
                    version,
                    resource_type: row.get(3)?,
                    live: row.get(4)?,
                });
            }
        }
    }
    Ok(found)
}

/// Stores a schema (keeping its place when it is live, its URN in the case
/// given), records the change, then runs `rewrite` over the resources of
/// its type and `rederive` over every User. Refused when
/// `expected_generation` is not the tenant's.
pub(crate) fn put(
    connection: &Connection,
    scope: &WriteScope,
    record: SchemaRecord,
    rewrite: Option<RewriteFn>,
    rederive: Option<&dyn Derivation>,
    expected_generation: Option<u64>,
) -> Result<SchemaChangeOutcome, StoreError> {
    let SchemaRecord {
        urn,
        resource_type,
        required,
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
    let searchable_text = Value::from(searchable).to_string();
    if !document.is_object() {
        return Err(ScimError::invalid_syntax(format!(
            "the document of schema '{urn}' must be a JSON object"
        ))
        .into());
    }
    let tenant = &scope.tenant;
    rules::check_generation(connection, tenant, expected_generation)?;
    let previous = existing(connection, tenant, &urn)?;
    let version = previous.as_ref().map_or(1, |row| row.version + 1);
    let position = match &previous {
        Some(row) if row.live => row.position,
        _ => connection
            .prepare_cached(
                "SELECT coalesce(max(position), 0) + 1 FROM custom_schemas WHERE tenant_id = ?1",
            )?
            .query_row(params![tenant.0], |row| row.get(0))?,
    };
    let now = now_text();
    let document_text = document.to_string();
    if previous.is_some() {
        // The URN's rows in every case give way to the one row written
        // below, in the case given now.
        connection
            .prepare_cached(
                "DELETE FROM custom_schemas WHERE tenant_id = ?1 AND lower(urn) = lower(?2)",
            )?
            .execute(params![tenant.0, urn])?;
    }
    let written = connection
        .prepare_cached(
            "INSERT INTO custom_schemas (tenant_id, urn, position, resource_type, required,
                 document, version, updated, client, searchable)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            tenant.0,
            urn,
            position,
            resource_type,
            required,
            document_text,
            i64::try_from(version).unwrap_or(i64::MAX),
            now,
            scope.actor.client,
            searchable_text,
        ]);
    if let Err(error) = written {
        return Err(insert_error(error, tenant));
    }
    let payload = json!({
        "schema": document,
        "resourceType": resource_type,
        "required": required,
    });
    record_change(
        connection,
        scope,
        ChangeKind::Schema,
        SCHEMA,
        &ResourceId(urn.clone()),
        version,
        &now,
        &payload.to_string(),
    )?;
    let rewritten = match rewrite {
        Some(rewrite) => rewrite_all(connection, scope, &resource_type, rewrite, rederive)?,
        None => 0,
    };
    let rederived = match rederive {
        Some(derivation) => rederive_all_for_schema(connection, scope, derivation)?,
        None => 0,
    };
    apply_index_rules(connection, tenant, &urn)?;
    Ok(SchemaChangeOutcome {
        rewritten,
        rederived,
    })
}

/// Makes a schema change's index rules effective, in its transaction: bumps
/// the tenant's rule generation and flips the `indexed` flag of the rows
/// under the schema's URN that the new rules classify differently. Runs
/// after the rewrite (so a value it removes is never put into the lookup
/// index first); whichever rules the rewrite's rows were written under,
/// every row under the URN is classified again here.
fn apply_index_rules(
    connection: &Connection,
    tenant: &TenantId,
    urn: &str,
) -> Result<(), StoreError> {
    rules::bump(connection, tenant)?;
    let rules = rules::for_writer(connection, tenant)?;
    rules::reindex(connection, tenant, urn, &rules)?;
    Ok(())
}

/// Deletes a live schema, found by its URN in any case (keeping its row as
/// a tombstone), records the change under the URN as stored, then runs
/// `rewrite` over the resources of the type it extended and `rederive`
/// over every User. Refused when
/// `expected_generation` is not the tenant's.
pub(crate) fn delete(
    connection: &Connection,
    scope: &WriteScope,
    urn: &str,
    rewrite: Option<RewriteFn>,
    rederive: Option<&dyn Derivation>,
    expected_generation: Option<u64>,
) -> Result<SchemaChangeOutcome, StoreError> {
    let tenant = &scope.tenant;
    rules::check_generation(connection, tenant, expected_generation)?;
    let Some(row) = existing(connection, tenant, urn)?.filter(|row| row.live) else {
        return Err(StoreError::NotFound(format!("schema '{urn}' not found")));
    };
    let urn = row.urn.as_str();
    let version = row.version + 1;
    let now = now_text();
    // Every live row of the URN, in any case (one, unless an older build
    // stored several).
    connection
        .prepare_cached(
            "UPDATE custom_schemas SET document = NULL, version = ?3, updated = ?4, client = ?5
             WHERE tenant_id = ?1 AND lower(urn) = lower(?2) AND document IS NOT NULL",
        )?
        .execute(params![
            tenant.0,
            urn,
            i64::try_from(version).unwrap_or(i64::MAX),
            now,
            scope.actor.client,
        ])?;
    record_change(
        connection,
        scope,
        ChangeKind::Schema,
        SCHEMA,
        &ResourceId(urn.to_owned()),
        version,
        &now,
        &json!({ "deleted": urn }).to_string(),
    )?;
    let rewritten = match rewrite {
        Some(rewrite) => rewrite_all(connection, scope, &row.resource_type, rewrite, rederive)?,
        None => 0,
    };
    let rederived = match rederive {
        Some(derivation) => rederive_all_for_schema(connection, scope, derivation)?,
        None => 0,
    };
    apply_index_rules(connection, tenant, urn)?;
    Ok(SchemaChangeOutcome {
        rewritten,
        rederived,
    })
}

/// Runs `rewrite` over every resource of a type, in creation order, a batch
/// at a time, writing each resource it changes as an update would (new
/// version, changed index rows, uniqueness, usage, change record with
/// `removed`), a User with its derived value recomputed by `rederive`.
/// The first error stops the pass; the caller's transaction
/// then rolls everything back. Returns how many resources changed.
fn rewrite_all(
    connection: &Connection,
    scope: &WriteScope,
    resource_type: &str,
    mut rewrite: RewriteFn,
    rederive: Option<&dyn Derivation>,
) -> Result<u64, StoreError> {
    let mut after_seq = 0;
    let mut rewritten = 0;
    loop {
        let batch = load_batch(
            connection,
            &scope.tenant,
            resource_type,
            after_seq,
            REWRITE_BATCH,
        )?;
        let Some((_, last)) = batch.last() else {
            return Ok(rewritten);
        };
        after_seq = last.seq;
        for (id, current) in batch {
            // The closure sees the resource without copying it; it is moved
            // back into `current` only when it is to be written.
            let before = StoredResource {
                id,
                resource_type: resource_type.to_owned(),
                resource: Value::Object(current.object),
                version: current.version,
                unmapped: current.unmapped,
            };
            let Some(outcome) = rewrite(&before)? else {
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
                derive_into(
                    connection,
                    &scope.tenant,
                    derivation,
                    &id,
                    &mut content,
                    current.object.get("meta"),
                    false,
                )?;
            }
            let change = StateChange {
                content,
                unmapped: outcome.unmapped,
                delta: MemberDelta::default(),
                removed: outcome.removed,
                // A schema change checks uniqueness across all resources
                // before it rewrites them (the server's `RewriteFn`).
                unique: Vec::new(),
            };
            match write_state(
                connection,
                scope,
                resource_type,
                &id,
                current,
                change,
                &never_returned,
            )? {
                Written::Changed(_) => rewritten += 1,
                Written::Unchanged(_) => {}
            }
        }
    }
}
