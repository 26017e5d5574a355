//! The change feed on PostgreSQL, in commit order.
//!
//! A `changes.sequence` is taken at insert, so with many writers a record
//! can commit after one with a higher sequence; a reader polling
//! `sequence > n` would skip it. Here a record gets its `position`, the
//! number consumers read by, only once it is settled: its transaction ended
//! and so did every transaction that started writing before it
//! (`txid < pg_snapshot_xmin(pg_current_snapshot())`). Positions are
//! handed out in (transaction id, sequence) order by one assigner at a
//! time (a transaction-scoped advisory lock), so every record that gets a
//! position later gets a higher one than every record positioned now: a
//! consumer's cursor never passes a record it has not read.
//!
//! The price: transaction ids are the cluster's, so any transaction left
//! open on the server (in any database) holds back the records written
//! after it began until it ends. Records are delayed, never lost; a
//! monitoring query on `pg_stat_activity` for old `xact_start` finds the
//! cause.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_postgres::Client;

use crate::{Actor, ChangeKind, ChangePayload, ChangeRecord, ResourceId, StoreError, TenantId};

/// The advisory lock key of the position assigner.
const ASSIGNER_LOCK: i64 = 0x006d_7573_7465_7201;

/// Most records positioned by one call.
const ASSIGN_BATCH: i64 = 10_000;

/// How long a read of the feed waits for the records committed before it
/// began to settle (the transactions older than them to end).
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// The pause between two checks while waiting.
const SETTLE_POLL: Duration = Duration::from_millis(2);

/// A change record to write.
#[derive(Debug, Clone, Copy)]
pub struct NewChange<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// What happened.
    pub kind: ChangeKind,
    /// The resource type.
    pub resource_type: &'a str,
    /// The resource changed.
    pub resource_id: &'a ResourceId,
    /// The version after the change.
    pub version: u64,
    /// Who made it.
    pub actor: &'a Actor,
    /// The stored payload (see [`ChangePayload::from_stored`]).
    pub payload: &'a Value,
}

/// Writes a change record in the caller's transaction (its position comes
/// later, from [`assign_positions`]), and its audit entry, built from the
/// payload.
pub async fn record_change(
    transaction: &tokio_postgres::Transaction<'_>,
    change: NewChange<'_>,
) -> Result<(), StoreError> {
    let payload = crate::audit::Detail::Payload(change.payload);
    record_audited_change(transaction, change, &payload).await
}

/// Writes a change record and the audit entry `detail` describes, in the
/// caller's transaction.
pub(crate) async fn record_audited_change(
    transaction: &tokio_postgres::Transaction<'_>,
    change: NewChange<'_>,
    detail: &crate::audit::Detail<'_>,
) -> Result<(), StoreError> {
    let version = i64::try_from(change.version).unwrap_or(i64::MAX);
    transaction
        .execute(
            "INSERT INTO changes (tenant_id, kind, resource_type, resource_id, version, client,
                 request_id, at, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8)",
            &[
                &change.tenant.0,
                &change.kind.stored_name(),
                &change.resource_type,
                &change.resource_id.0,
                &version,
                &change.actor.client,
                &change.actor.request_id,
                change.payload,
            ],
        )
        .await?;
    // The audit entry, in the same transaction (`audit.rs`).
    super::audit::append(
        transaction,
        change.tenant,
        change.actor,
        (
            change.kind.stored_name(),
            change.resource_type,
            &change.resource_id.0,
            change.version,
        ),
        detail,
        None,
    )
    .await
}

/// The highest position handed out so far (0 before the first), from
/// the `change_positions` sequence: pruning never lowers it, so a position
/// is never handed out twice.
const LAST_POSITION: &str =
    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS position FROM change_positions";

/// Gives positions to the settled records that have none, in (transaction
/// id, sequence) order; returns how many it positioned.
pub async fn assign_positions(client: &mut Client) -> Result<u64, StoreError> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&ASSIGNER_LOCK])
        .await?;
    // MATERIALIZED: a sequence's row cannot be read where rows are locked
    // for the UPDATE.
    let assigned = transaction
        .query_one(
            &format!(
                "WITH settled AS (
                     SELECT sequence, row_number() OVER (ORDER BY txid, sequence) AS n
                     FROM (
                         SELECT sequence, txid FROM changes
                         WHERE position IS NULL
                           AND txid < pg_snapshot_xmin(pg_current_snapshot())
                         ORDER BY txid, sequence
                         LIMIT $1
                     ) AS oldest
                 ), top AS MATERIALIZED ({LAST_POSITION}), positioned AS (
                     UPDATE changes SET position = top.position + settled.n
                     FROM settled, top
                     WHERE changes.sequence = settled.sequence
                     RETURNING changes.position
                 )
                 SELECT count(*)::bigint, max(position) FROM positioned"
            ),
            &[&ASSIGN_BATCH],
        )
        .await?;
    let (count, last): (i64, Option<i64>) = (assigned.get(0), assigned.get(1));
    if let Some(last) = last {
        transaction
            .execute("SELECT setval('change_positions', $1)", &[&last])
            .await?;
    }
    transaction.commit().await?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// The highest position handed out so far (0 before the first record):
/// the feed's head.
pub async fn head(client: &Client) -> Result<i64, StoreError> {
    Ok(client.query_one(LAST_POSITION, &[]).await?.get(0))
}

/// Positions the settled records, first waiting (at most [`SETTLE_WAIT`])
/// until the tenant's records committed before the call can be
/// positioned: a writer that reads the feed after its write finds it there
/// unless a transaction older than the write stays open longer.
pub async fn settle(client: &mut Client, tenant: &TenantId) -> Result<(), StoreError> {
    let deadline = Instant::now() + SETTLE_WAIT;
    // Every transaction that committed before now has a lower id.
    let horizon: String = client
        .query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[])
        .await?
        .get(0);
    loop {
        assign_positions(client).await?;
        let waiting: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM changes
                     WHERE position IS NULL AND txid < $2::text::xid8 AND tenant_id = $1)",
                &[&tenant.0, &horizon],
            )
            .await?
            .get(0);
        if !waiting || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// A tenant's records after position `after`, at most `limit`, in
/// position order (settling what committed before the call first, see
/// [`settle`]). A record's [`ChangeRecord::sequence`] is its position.
pub async fn changes_after(
    client: &mut Client,
    tenant: &TenantId,
    after: u64,
    limit: u64,
) -> Result<Vec<ChangeRecord>, StoreError> {
    settle(client, tenant).await?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT position, kind, resource_type, resource_id, version, client, request_id,
                    to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), payload
             FROM changes WHERE tenant_id = $1 AND position > $2
             ORDER BY position LIMIT $3",
            &[&tenant.0, &after, &limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let kind = ChangeKind::from_stored_name(row.get(1))?;
            let resource_id = ResourceId(row.get(3));
            Ok(ChangeRecord {
                sequence: u64::try_from(row.get::<_, i64>(0)).unwrap_or_default(),
                tenant: tenant.clone(),
                kind,
                resource_type: row.get(2),
                version: u64::try_from(row.get::<_, i64>(4)).unwrap_or_default(),
                actor: Actor {
                    client: row.get(5),
                    request_id: row.get(6),
                },
                at: row.get(7),
                payload: ChangePayload::from_stored(kind, &resource_id, row.get(8)),
                resource_id,
            })
        })
        .collect()
}
