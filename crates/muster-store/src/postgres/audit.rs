//! The audit trail on PostgreSQL (see [`crate::audit`]).
//!
//! Writers never wait on each other for the chain: an entry is inserted
//! in the transaction of its change without a position or chain hash,
//! with the transaction's id (`txid`). After commit, one sealer at a time
//! (a transaction-scoped advisory lock) takes the settled entries (their
//! transaction and every older one ended: `txid` below the snapshot's
//! `xmin`) in (transaction id, insert order), gives each the next position
//! of its tenant and chains it after the tenant's head (`audit_heads`),
//! exactly as the change feed positions its records (`feed.rs`). Reads
//! seal first ([`settle`]), so an entry committed before a read is
//! chained by then unless an older transaction stays open.
//!
//! A trigger keeps the rows append-only for SQL that does not drop it
//! first: no delete, and an update may only seal an entry once or erase
//! its detail and indexed `userName` (the purge's redaction).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use muster_audit::Link;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use super::PostgresStore;
use crate::audit::{self, AuditEntry, AuditEvent, AuditQuery, AuditStore, Detail, Head};
use crate::sqlite::values::now_text;
use crate::{Actor, ResourceId, StoreError, TenantId};

/// Version 4: the audit trail.
pub(crate) const MIGRATION: &str = "
CREATE TABLE audit_log (
    seq bigserial PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id text NOT NULL,
    position bigint,
    at timestamptz NOT NULL,
    client text NOT NULL,
    operation text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    user_name text,
    skeleton text NOT NULL,
    detail text,
    detail_hash text NOT NULL,
    chain_hash text
);
CREATE UNIQUE INDEX audit_log_position ON audit_log (tenant_id, position);
CREATE INDEX audit_log_unsealed ON audit_log (txid, seq) WHERE position IS NULL;
CREATE INDEX audit_log_resource ON audit_log (tenant_id, resource_id);
CREATE INDEX audit_log_user_name ON audit_log (tenant_id, user_name)
    WHERE user_name IS NOT NULL;
CREATE TABLE audit_heads (
    tenant_id text PRIMARY KEY,
    position bigint NOT NULL,
    chain_hash text NOT NULL
);
CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit trail is append-only';
    END IF;
    IF NEW.seq IS DISTINCT FROM OLD.seq OR NEW.txid IS DISTINCT FROM OLD.txid
        OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.at IS DISTINCT FROM OLD.at
        OR NEW.client IS DISTINCT FROM OLD.client
        OR NEW.operation IS DISTINCT FROM OLD.operation
        OR NEW.resource_type IS DISTINCT FROM OLD.resource_type
        OR NEW.resource_id IS DISTINCT FROM OLD.resource_id
        OR NEW.skeleton IS DISTINCT FROM OLD.skeleton
        OR NEW.detail_hash IS DISTINCT FROM OLD.detail_hash
        OR (OLD.position IS NOT NULL AND (NEW.position IS DISTINCT FROM OLD.position
            OR NEW.chain_hash IS DISTINCT FROM OLD.chain_hash))
        OR (NEW.detail IS NOT NULL AND NEW.detail IS DISTINCT FROM OLD.detail)
        OR (NEW.user_name IS NOT NULL AND NEW.user_name IS DISTINCT FROM OLD.user_name)
    THEN
        RAISE EXCEPTION 'the audit trail is append-only: only sealing or a redaction may change an entry';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
";

/// The advisory lock key of the sealer.
const SEALER_LOCK: i64 = 0x006d_7573_7465_7202;

/// Most entries sealed by one call.
const SEAL_BATCH: i64 = 10_000;

/// How long a read waits for the entries committed before it to settle.
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// The pause between two checks while waiting.
const SETTLE_POLL: Duration = Duration::from_millis(2);

/// Appends an entry, unchained, in the caller's transaction.
pub(crate) async fn append(
    transaction: &Transaction<'_>,
    tenant: &TenantId,
    actor: &Actor,
    head: (&str, &str, &str, u64),
    detail: &Detail<'_>,
    origin: Option<&str>,
) -> Result<(), StoreError> {
    let (operation, resource_type, resource_id, version) = head;
    let origin_path: Option<String> = transaction
        .query_opt(
            "SELECT value FROM settings WHERE tenant_id = $1 AND key = $2",
            &[&tenant.0, &audit::ORIGIN_ATTRIBUTE_SETTING],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let at = now_text();
    let prepared = audit::prepare(
        &Head {
            tenant,
            actor,
            at: &at,
            operation,
            resource_type,
            resource_id,
            version,
        },
        detail,
        origin_path.as_deref(),
        origin,
    );
    transaction
        .execute_typed(
            "INSERT INTO audit_log (tenant_id, at, client, operation, resource_type, resource_id,
                 user_name, skeleton, detail, detail_hash)
             VALUES ($1, $2::text::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                (&tenant.0, Type::TEXT),
                (&at, Type::TEXT),
                (&actor.client, Type::TEXT),
                (&prepared.operation, Type::TEXT),
                (&resource_type, Type::TEXT),
                (&resource_id, Type::TEXT),
                (&prepared.user_name, Type::TEXT),
                (&prepared.skeleton, Type::TEXT),
                (&prepared.detail, Type::TEXT),
                (&prepared.detail_hash, Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

/// Chains the settled entries that have no position yet; how many.
pub(crate) async fn seal(client: &mut Client) -> Result<u64, StoreError> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SEALER_LOCK])
        .await?;
    let rows = transaction
        .query(
            "SELECT seq, tenant_id, skeleton, detail_hash FROM audit_log
             WHERE position IS NULL AND txid < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY txid, seq LIMIT $1",
            &[&SEAL_BATCH],
        )
        .await?;
    if rows.is_empty() {
        transaction.commit().await?;
        return Ok(0);
    }
    let mut tenants: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<_, String>(1))
        .collect::<Result<_, _>>()?;
    tenants.sort();
    tenants.dedup();
    let mut heads: std::collections::HashMap<String, (i64, String)> = transaction
        .query(
            "SELECT tenant_id, position, chain_hash FROM audit_heads WHERE tenant_id = ANY($1)",
            &[&tenants],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?))))
        .collect::<Result<_, StoreError>>()?;
    let (mut seqs, mut positions, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for row in &rows {
        let seq: i64 = row.try_get(0)?;
        let tenant: String = row.try_get(1)?;
        let skeleton: String = row.try_get(2)?;
        let detail_hash: String = row.try_get(3)?;
        let head = heads
            .entry(tenant)
            .or_insert_with(|| (0, muster_audit::GENESIS.to_owned()));
        let position = head.0 + 1;
        let chain = muster_audit::link_hash(
            &head.1,
            u64::try_from(position).unwrap_or_default(),
            &muster_audit::digest(&skeleton),
            &detail_hash,
        );
        *head = (position, chain.clone());
        seqs.push(seq);
        positions.push(position);
        hashes.push(chain);
    }
    transaction
        .execute(
            "UPDATE audit_log SET position = u.position, chain_hash = u.chain_hash
             FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u (seq, position, chain_hash)
             WHERE audit_log.seq = u.seq",
            &[&seqs, &positions, &hashes],
        )
        .await?;
    let (mut head_tenants, mut head_positions, mut head_hashes) =
        (Vec::new(), Vec::new(), Vec::new());
    for (tenant, (position, hash)) in heads {
        head_tenants.push(tenant);
        head_positions.push(position);
        head_hashes.push(hash);
    }
    transaction
        .execute(
            "INSERT INTO audit_heads (tenant_id, position, chain_hash)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
             ON CONFLICT (tenant_id) DO UPDATE SET position = excluded.position,
                 chain_hash = excluded.chain_hash",
            &[&head_tenants, &head_positions, &head_hashes],
        )
        .await?;
    transaction.commit().await?;
    Ok(u64::try_from(rows.len()).unwrap_or_default())
}

/// Seals until the tenant's entries committed before the call are
/// chained (waiting at most [`SETTLE_WAIT`] for older transactions).
pub(crate) async fn settle(client: &mut Client, tenant: &TenantId) -> Result<(), StoreError> {
    let deadline = Instant::now() + SETTLE_WAIT;
    let horizon: String = client
        .query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[])
        .await?
        .try_get(0)?;
    loop {
        while seal(client).await? >= u64::try_from(SEAL_BATCH).unwrap_or(u64::MAX) {}
        let waiting: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM audit_log
                     WHERE position IS NULL AND txid < $2::text::xid8 AND tenant_id = $1)",
                &[&tenant.0, &horizon],
            )
            .await?
            .try_get(0)?;
        if !waiting || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn seal_audit(&self) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let mut sealed = 0;
        loop {
            let batch = seal(&mut client).await?;
            sealed += batch;
            if batch < u64::try_from(SEAL_BATCH).unwrap_or(u64::MAX) {
                return Ok(sealed);
            }
        }
    }

    async fn audit_entries(
        &self,
        tenant: &TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut client = self.client().await?;
        settle(&mut client, tenant).await?;
        let after = i64::try_from(query.after).unwrap_or(i64::MAX);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let resource_id = query.resource_id.as_ref().map(|id| id.0.clone());
        let user_name = query.user_name.as_ref().map(|name| name.to_lowercase());
        let rows = client
            .query_typed(
                "SELECT position, skeleton, detail FROM audit_log
                 WHERE tenant_id = $1 AND position > $2
                   AND ($3::text IS NULL OR resource_id = $3)
                   AND ($4::text IS NULL OR user_name = $4)
                   AND ($5::text IS NULL OR client = $5)
                   AND ($6::text IS NULL OR at >= $6::text::timestamptz)
                   AND ($7::text IS NULL OR at < $7::text::timestamptz)
                 ORDER BY position LIMIT $8",
                &[
                    (&tenant.0, Type::TEXT),
                    (&after, Type::INT8),
                    (&resource_id, Type::TEXT),
                    (&user_name, Type::TEXT),
                    (&query.client, Type::TEXT),
                    (&query.since, Type::TEXT),
                    (&query.until, Type::TEXT),
                    (&limit, Type::INT8),
                ],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let position: i64 = row.try_get(0)?;
                let skeleton: String = row.try_get(1)?;
                let detail: Option<String> = row.try_get(2)?;
                Ok(audit::entry(
                    u64::try_from(position).unwrap_or_default(),
                    &skeleton,
                    detail.as_deref(),
                ))
            })
            .collect()
    }

    async fn audit_links(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: u64,
    ) -> Result<Vec<Link>, StoreError> {
        let mut client = self.client().await?;
        settle(&mut client, tenant).await?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT position, skeleton, detail, detail_hash, chain_hash FROM audit_log
                 WHERE tenant_id = $1 AND position > $2 ORDER BY position LIMIT $3",
                &[&tenant.0, &after, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Link {
                    position: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or_default(),
                    skeleton: row.try_get(1)?,
                    detail: row.try_get(2)?,
                    detail_hash: row.try_get(3)?,
                    chain_hash: row.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn audit_head(&self, tenant: &TenantId) -> Result<Option<(u64, String)>, StoreError> {
        let mut client = self.client().await?;
        settle(&mut client, tenant).await?;
        let row = client
            .query_opt(
                "SELECT position, chain_hash FROM audit_heads WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?;
        row.map(|row| {
            Ok((
                u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or_default(),
                row.try_get(1)?,
            ))
        })
        .transpose()
    }

    async fn redact_audit_subject(
        &self,
        tenant: &TenantId,
        resource_id: &ResourceId,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE audit_log SET detail = NULL, user_name = NULL
                 WHERE tenant_id = $1 AND resource_id = $2
                   AND (detail IS NOT NULL OR user_name IS NOT NULL)",
                &[&tenant.0, &resource_id.0],
            )
            .await?;
        Ok(changed)
    }

    async fn record_audit(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let id = event
            .resource_id
            .as_ref()
            .map(|id| id.0.as_str())
            .unwrap_or_default();
        append(
            &transaction,
            tenant,
            actor,
            (&event.operation, &event.resource_type, id, 0),
            &Detail::Event(&event.detail),
            event.origin.as_deref(),
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}
