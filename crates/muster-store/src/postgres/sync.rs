//! The sync engine's tables on PostgreSQL: targets, what each target holds
//! of each resource, dead letters. Plain rows the engine reads and writes;
//! no change records, no generation bumps.
//!
//! A "sequence" here is a feed position (`feed.rs`), as in
//! [`crate::Store::changes`].

use tokio_postgres::Row;

use super::consumers::{instant_text, signed, unsigned};
use super::{begin, feed, PostgresStore, MAX_ATTEMPTS};
use crate::sync::{DeadLetter, DeliveredObject, NewDeadLetter, ResourceChange, TargetRecord};
use crate::{Actor, ResourceId, StoreError, TenantId};

/// The columns [`target_record`] reads.
fn target_columns() -> String {
    format!(
        "name, document, paused, {}, {}, client, state, guard_confirmed",
        instant_text("created"),
        instant_text("updated")
    )
}

/// A target from the columns of [`target_columns`].
fn target_record(row: &Row) -> TargetRecord {
    TargetRecord {
        name: row.get(0),
        document: row.get(1),
        paused: row.get(2),
        created: row.get(3),
        updated: row.get(4),
        client: row.get(5),
        state: row.get(6),
        guard_confirmed: unsigned(row.get(7)),
    }
}

/// The columns [`delivered_object`] reads.
const OBJECT_COLUMNS: &str =
    "resource_type, resource_id, remote_id, sent, delivered, status, answer, deprovisioned";

/// A delivery record from the columns of [`OBJECT_COLUMNS`].
fn delivered_object(row: &Row) -> DeliveredObject {
    let status: Option<i32> = row.get(5);
    DeliveredObject {
        resource_type: row.get(0),
        resource_id: ResourceId(row.get(1)),
        remote_id: row.get(2),
        sent: row.get(3),
        delivered: row.get(4),
        status: status.and_then(|status| u16::try_from(status).ok()),
        answer: row.get(6),
        deprovisioned: row.get(7),
    }
}

/// The columns [`dead_letter`] reads.
fn letter_columns() -> String {
    format!(
        "id, target, resource_type, resource_id, request, response, reason, {}",
        instant_text("at")
    )
}

/// A dead letter from the columns of [`letter_columns`].
fn dead_letter(row: &Row) -> DeadLetter {
    DeadLetter {
        id: unsigned(row.get(0)),
        target: row.get(1),
        resource_type: row.get(2),
        resource_id: ResourceId(row.get(3)),
        request: row.get(4),
        response: row.get(5),
        reason: row.get(6),
        at: row.get(7),
    }
}

/// [`crate::sync::SyncStore::change_head`]: the tenant's highest position,
/// after settling what committed before the call (`feed::settle`).
pub(super) async fn change_head(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<u64, StoreError> {
    let mut client = store.client().await?;
    feed::settle(&mut client, tenant).await?;
    let row = client
        .query_one(
            "SELECT coalesce(max(position), 0)::bigint FROM changes WHERE tenant_id = $1",
            &[&tenant.0],
        )
        .await?;
    Ok(unsigned(row.get(0)))
}

/// [`crate::sync::SyncStore::resource_history`]: positioned records only
/// (what committed before the call is settled first), newest first.
pub(super) async fn resource_history(
    store: &PostgresStore,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    limit: u64,
) -> Result<Vec<ResourceChange>, StoreError> {
    let mut client = store.client().await?;
    feed::settle(&mut client, tenant).await?;
    let rows = client
        .query(
            &format!(
                "SELECT position, client, {}, payload -> 'resource' FROM changes
                 WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3
                   AND position IS NOT NULL
                 ORDER BY position DESC LIMIT $4",
                instant_text("at")
            ),
            &[&tenant.0, &resource_type, &id.0, &signed(limit)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ResourceChange {
            sequence: unsigned(row.get(0)),
            client: row.get(1),
            at: row.get(2),
            after: row.get(3),
        })
        .collect())
}

/// [`crate::sync::SyncStore::put_target`]: a put of an existing name keeps
/// its creation time, pause and delivery state.
pub(super) async fn put_target(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
    document: &str,
) -> Result<TargetRecord, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO sync_targets (tenant_id, name, document, paused, created, updated,
                     client)
                 VALUES ($1, $2, $3, NULL, now(), now(), $4)
                 ON CONFLICT (tenant_id, name) DO UPDATE SET document = excluded.document,
                     updated = excluded.updated, client = excluded.client
                 RETURNING {}",
                target_columns()
            ),
            &[&tenant.0, &name, &document, &actor.client],
        )
        .await?;
    Ok(target_record(&row))
}

/// [`crate::sync::SyncStore::target`].
pub(super) async fn target(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<TargetRecord>, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {} FROM sync_targets WHERE tenant_id = $1 AND name = $2",
                target_columns()
            ),
            &[&tenant.0, &name],
        )
        .await?;
    Ok(row.as_ref().map(target_record))
}

/// [`crate::sync::SyncStore::targets`]: by name (in byte order, as on
/// SQLite).
pub(super) async fn targets(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<TargetRecord>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM sync_targets WHERE tenant_id = $1 ORDER BY name COLLATE \"C\"",
                target_columns()
            ),
            &[&tenant.0],
        )
        .await?;
    Ok(rows.iter().map(target_record).collect())
}

/// [`crate::sync::SyncStore::all_targets`]: by tenant, then name.
pub(super) async fn all_targets(
    store: &PostgresStore,
) -> Result<Vec<(TenantId, TargetRecord)>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {}, tenant_id FROM sync_targets
                 ORDER BY tenant_id COLLATE \"C\", name COLLATE \"C\"",
                target_columns()
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (TenantId(row.get(8)), target_record(row)))
        .collect())
}

/// Removes a target with its delivery state and dead letters in one
/// transaction; whether there was one.
async fn try_remove_target(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let mut client = store.client().await?;
    let transaction = begin(&mut client).await?;
    let removed = transaction
        .execute(
            "DELETE FROM sync_targets WHERE tenant_id = $1 AND name = $2",
            &[&tenant.0, &name],
        )
        .await?;
    for table in ["sync_objects", "sync_dead_letters"] {
        transaction
            .execute(
                &format!("DELETE FROM {table} WHERE tenant_id = $1 AND target = $2"),
                &[&tenant.0, &name],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(removed > 0)
}

/// [`crate::sync::SyncStore::remove_target`] (run again on a deadlock).
pub(super) async fn remove_target(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let mut attempt = 1;
    loop {
        match try_remove_target(store, tenant, name).await {
            Err(StoreError::Contention(_)) if attempt < MAX_ATTEMPTS => attempt += 1,
            outcome => return outcome,
        }
    }
}

/// [`crate::sync::SyncStore::set_target_paused`]: a resume confirms the
/// removals of every change positioned so far (what committed before the
/// call is settled first).
pub(super) async fn set_target_paused(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let mut client = store.client().await?;
    let changed = match reason {
        Some(reason) => {
            client
                .execute(
                    "UPDATE sync_targets SET paused = $3 WHERE tenant_id = $1 AND name = $2",
                    &[&tenant.0, &name, &reason],
                )
                .await?
        }
        None => {
            feed::settle(&mut client, tenant).await?;
            client
                .execute(
                    "UPDATE sync_targets SET paused = NULL, guard_confirmed =
                         (SELECT coalesce(max(position), 0) FROM changes WHERE tenant_id = $1)
                     WHERE tenant_id = $1 AND name = $2",
                    &[&tenant.0, &name],
                )
                .await?
        }
    };
    if changed == 0 {
        return Err(StoreError::NotFound(format!("target {name}")));
    }
    Ok(())
}

/// [`crate::sync::SyncStore::set_target_state`].
pub(super) async fn set_target_state(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    state: &str,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    client
        .execute(
            "UPDATE sync_targets SET state = $3 WHERE tenant_id = $1 AND name = $2",
            &[&tenant.0, &name, &state],
        )
        .await?;
    Ok(())
}

/// [`crate::sync::SyncStore::lease_target`]: the database's clock decides,
/// so replicas whose clocks differ agree on when a lease expired.
pub(super) async fn lease_target(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    holder: &str,
    ttl: std::time::Duration,
) -> Result<bool, StoreError> {
    let client = store.client().await?;
    let seconds = ttl.as_secs_f64();
    let taken = client
        .execute(
            "UPDATE sync_targets
             SET lease_holder = $3, lease_until = now() + make_interval(secs => $4)
             WHERE tenant_id = $1 AND name = $2
               AND (lease_holder IS NULL OR lease_holder = $3 OR lease_until < now())",
            &[&tenant.0, &name, &holder, &seconds],
        )
        .await?;
    Ok(taken == 1)
}

/// [`crate::sync::SyncStore::delivered`].
pub(super) async fn delivered(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    resource_type: &str,
    id: &ResourceId,
) -> Result<Option<DeliveredObject>, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM sync_objects WHERE tenant_id = $1
                 AND target = $2 AND resource_type = $3 AND resource_id = $4"
            ),
            &[&tenant.0, &target, &resource_type, &id.0],
        )
        .await?;
    Ok(row.as_ref().map(delivered_object))
}

/// [`crate::sync::SyncStore::delivered_all`]: by resource id (in byte
/// order, as on SQLite).
pub(super) async fn delivered_all(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    resource_type: &str,
) -> Result<Vec<DeliveredObject>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM sync_objects WHERE tenant_id = $1
                 AND target = $2 AND resource_type = $3 ORDER BY resource_id COLLATE \"C\""
            ),
            &[&tenant.0, &target, &resource_type],
        )
        .await?;
    Ok(rows.iter().map(delivered_object).collect())
}

/// [`crate::sync::SyncStore::record_delivery`]: replaces the resource's
/// previous record.
pub(super) async fn record_delivery(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    object: DeliveredObject,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    let status = object.status.map(i32::from);
    client
        .execute(
            "INSERT INTO sync_objects (tenant_id, target, resource_type, resource_id, remote_id,
                 sent, delivered, status, answer, deprovisioned)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (tenant_id, target, resource_type, resource_id) DO UPDATE SET
                 remote_id = excluded.remote_id, sent = excluded.sent,
                 delivered = excluded.delivered, status = excluded.status,
                 answer = excluded.answer, deprovisioned = excluded.deprovisioned",
            &[
                &tenant.0,
                &target,
                &object.resource_type,
                &object.resource_id.0,
                &object.remote_id,
                &object.sent,
                &object.delivered,
                &status,
                &object.answer,
                &object.deprovisioned,
            ],
        )
        .await?;
    Ok(())
}

/// [`crate::sync::SyncStore::forget_delivery`].
pub(super) async fn forget_delivery(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    resource_type: &str,
    id: &ResourceId,
) -> Result<(), StoreError> {
    let client = store.client().await?;
    client
        .execute(
            "DELETE FROM sync_objects WHERE tenant_id = $1 AND target = $2
             AND resource_type = $3 AND resource_id = $4",
            &[&tenant.0, &target, &resource_type, &id.0],
        )
        .await?;
    Ok(())
}

/// [`crate::sync::SyncStore::add_dead_letter`]: its number.
pub(super) async fn add_dead_letter(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    letter: NewDeadLetter,
) -> Result<u64, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_one(
            "INSERT INTO sync_dead_letters (tenant_id, target, resource_type, resource_id,
                 request, response, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             RETURNING id",
            &[
                &tenant.0,
                &target,
                &letter.resource_type,
                &letter.resource_id.0,
                &letter.request,
                &letter.response,
                &letter.reason,
            ],
        )
        .await?;
    Ok(unsigned(row.get(0)))
}

/// [`crate::sync::SyncStore::dead_letters`]: oldest first, of one target or
/// all.
pub(super) async fn dead_letters(
    store: &PostgresStore,
    tenant: &TenantId,
    target: Option<&str>,
) -> Result<Vec<DeadLetter>, StoreError> {
    let client = store.client().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM sync_dead_letters WHERE tenant_id = $1
                 AND ($2::text IS NULL OR target = $2) ORDER BY id",
                letter_columns()
            ),
            &[&tenant.0, &target],
        )
        .await?;
    Ok(rows.iter().map(dead_letter).collect())
}

/// [`crate::sync::SyncStore::take_dead_letter`]: removes and returns it in
/// one statement, so only one of several takers gets it.
pub(super) async fn take_dead_letter(
    store: &PostgresStore,
    tenant: &TenantId,
    id: u64,
) -> Result<Option<DeadLetter>, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_opt(
            &format!(
                "DELETE FROM sync_dead_letters WHERE tenant_id = $1 AND id = $2
                 RETURNING {}",
                letter_columns()
            ),
            &[&tenant.0, &signed(id)],
        )
        .await?;
    Ok(row.as_ref().map(dead_letter))
}
