//! Index rules on PostgreSQL: which attribute index rows of a tenant are in
//! the lookup index (`resource_values.indexed`), and the tenant's
//! generation that counts their changes. The rules themselves are
//! [`IndexRules`], shared with SQLite (`sqlite/rules.rs` documents them).
//!
//! With many writers, a resource write and a rule change must not
//! interleave: a write locks its tenant's row `FOR SHARE` while it reads the
//! generation and the rules ([`for_write`]) and keeps that lock until it
//! commits; a rule change updates the row ([`bump`]), which waits for the
//! writes in progress and makes new ones wait for it. So every index row is
//! written with the rules in force when it commits, and [`reindex`] sees
//! every row written before the change.

use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Transaction};

use muster_scim::ScimError;

use super::limits::{grouped, MAX_INDEXED_BYTES};
use crate::sqlite::rules::{searchable_names, IndexRules};
use crate::{StoreError, TenantId};

/// The tenant's rule (schema) generation (0 for a tenant without a row).
pub(super) async fn generation(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
) -> Result<i64, StoreError> {
    let row = client
        .query_typed_opt(
            "SELECT index_generation FROM tenants WHERE tenant_id = $1",
            &[(&tenant.0, Type::TEXT)],
        )
        .await?;
    Ok(row.map_or(0, |row| row.get(0)))
}

/// A stored generation as the public API counts it (it starts at 0 and
/// only grows).
pub(super) fn to_public(generation: i64) -> u64 {
    u64::try_from(generation).unwrap_or(0)
}

/// Refuses, with [`StoreError::StaleSchema`], a write whose caller
/// validated it at another schema generation than `current`; `None`
/// checks nothing.
pub(super) fn check_generation(current: i64, expected: Option<u64>) -> Result<(), StoreError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let current = to_public(current);
    if current == expected {
        Ok(())
    } else {
        Err(StoreError::StaleSchema { expected, current })
    }
}

/// Reads the tenant's rules at `generation` (read the generation in the
/// same snapshot, or under [`for_write`]'s lock).
async fn rules_at(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
    generation: i64,
) -> Result<IndexRules, StoreError> {
    let rows = client
        .query_typed(
            "SELECT urn, searchable FROM custom_schemas
             WHERE tenant_id = $1 AND document IS NOT NULL",
            &[(&tenant.0, Type::TEXT)],
        )
        .await?;
    let custom = rows
        .iter()
        .map(|row| Ok((row.get::<_, String>(0), searchable_names(row.get(1))?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(IndexRules::new(
        generation,
        custom
            .iter()
            .map(|(urn, searchable)| (urn.as_str(), searchable.clone())),
    ))
}

/// Reads the tenant's rules; call inside a snapshot transaction (or a
/// write holding [`for_write`]'s lock) so the generation and the schemas
/// agree.
pub(super) async fn load(
    client: &(impl GenericClient + Sync),
    tenant: &TenantId,
) -> Result<IndexRules, StoreError> {
    let generation = generation(client, tenant).await?;
    rules_at(client, tenant, generation).await
}

/// The rules a resource write applies: locks the tenant's row `FOR SHARE`
/// until the transaction ends (a rule change waits for the write, and the
/// write for a rule change in progress), refuses a stale `expected`
/// generation, and reads the rules.
pub(super) async fn for_write(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    expected: Option<u64>,
) -> Result<IndexRules, StoreError> {
    let generation = transaction
        .query_typed_opt(
            "SELECT index_generation FROM tenants WHERE tenant_id = $1 FOR SHARE",
            &[(&tenant.0, Type::TEXT)],
        )
        .await?
        .map_or(0, |row| row.get(0));
    check_generation(generation, expected)?;
    rules_at(transaction, tenant, generation).await
}

/// Bumps the tenant's rule (schema) generation, in a schema change's or a
/// setting change's transaction; waits for the tenant's writes in progress
/// and holds new ones until the transaction ends.
pub(super) async fn bump(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
) -> Result<(), StoreError> {
    transaction
        .execute_typed(
            "UPDATE tenants SET index_generation = index_generation + 1 WHERE tenant_id = $1",
            &[(&tenant.0, Type::TEXT)],
        )
        .await?;
    Ok(())
}

/// Sets `indexed` to `$3` on the rows of tenant `$1` at the paths `$2`,
/// through the primary key of the tenant's resources.
const FLIP: &str = "UPDATE resource_values SET indexed = $3
    WHERE resource_seq IN (SELECT seq FROM resources WHERE tenant_id = $1)
      AND path_id = ANY($2)
      AND indexed <> $3";

/// Brings the `indexed` flag of the tenant's rows under extension `urn` in
/// line with `rules` (call after [`bump`] in the same transaction): one
/// set-based UPDATE per direction. Returns how many rows changed.
pub(super) async fn reindex(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    urn: &str,
    rules: &IndexRules,
) -> Result<u64, StoreError> {
    let prefix = format!("{}:", urn.to_ascii_lowercase());
    let rows = transaction
        .query_typed(
            "SELECT path_id, path FROM attribute_paths WHERE starts_with(path, $1)",
            &[(&prefix, Type::TEXT)],
        )
        .await?;
    let mut on: Vec<i32> = Vec::new();
    let mut off: Vec<i32> = Vec::new();
    for row in &rows {
        let path: &str = row.get(1);
        if rules.indexes(path) {
            on.push(row.get(0));
        } else {
            off.push(row.get(0));
        }
    }
    refuse_long_values(transaction, tenant, &on).await?;
    let mut changed = 0;
    for (path_ids, indexed) in [(on, true), (off, false)] {
        if path_ids.is_empty() {
            continue;
        }
        changed += transaction
            .execute_typed(
                FLIP,
                &[
                    (&tenant.0, Type::TEXT),
                    (&path_ids, Type::INT4_ARRAY),
                    (&indexed, Type::BOOL),
                ],
            )
            .await?;
    }
    Ok(changed)
}

/// Refuses, before any row is flipped, to put in the lookup index a stored
/// value longer than [`MAX_INDEXED_BYTES`] at one of `path_ids` (the
/// paths becoming searchable): PostgreSQL could not index it. The refusal
/// (`409`, nothing changed) names the attribute and one resource holding
/// such a value.
async fn refuse_long_values(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    path_ids: &[i32],
) -> Result<(), StoreError> {
    if path_ids.is_empty() {
        return Ok(());
    }
    let limit = i32::try_from(MAX_INDEXED_BYTES).unwrap_or(i32::MAX);
    let found = transaction
        .query_typed_opt(
            "SELECT r.resource_type, r.id, p.path, octet_length(v.value_lower)
             FROM resources r
             JOIN resource_values v ON v.resource_seq = r.seq
             JOIN attribute_paths p ON p.path_id = v.path_id
             WHERE r.tenant_id = $1 AND v.path_id = ANY($2) AND NOT v.indexed
               AND octet_length(v.value_lower) > $3
             LIMIT 1",
            &[
                (&tenant.0, Type::TEXT),
                (&path_ids, Type::INT4_ARRAY),
                (&limit, Type::INT4),
            ],
        )
        .await?;
    let Some(row) = found else {
        return Ok(());
    };
    let resource_type: String = row.try_get(0)?;
    let id: String = row.try_get(1)?;
    let path: String = row.try_get(2)?;
    let bytes: i32 = row.try_get(3)?;
    Err(StoreError::Scim(ScimError::status(
        409,
        format!(
            "{path} cannot be made searchable: {resource_type} {id} holds a value of {} bytes, \
             longer than the {} bytes Muster indexes on PostgreSQL; shorten or remove such \
             values first; nothing was changed",
            grouped(usize::try_from(bytes).unwrap_or_default()),
            grouped(MAX_INDEXED_BYTES)
        ),
    )))
}
