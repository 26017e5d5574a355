//! Console sessions on PostgreSQL (see [`crate::console`]), as on SQLite:
//! `last_seen` is written at most once a
//! [`TOUCH_INTERVAL_MILLIS`](crate::console::TOUCH_INTERVAL_MILLIS).

use async_trait::async_trait;

use super::PostgresStore;
use crate::console::{ConsoleSession, ConsoleSessionStore, SessionLifetime, TOUCH_INTERVAL_MILLIS};
use crate::{StoreError, TenantId};

/// The migration step of this module (see `schema.rs`), version 5: the
/// `console_sessions` table (as SQLite's version 12).
pub(crate) const MIGRATION: &str = "
CREATE TABLE console_sessions (
    id_hash text PRIMARY KEY,
    tenant_id text NOT NULL,
    actor text NOT NULL,
    csrf text NOT NULL,
    created bigint NOT NULL,
    last_seen bigint NOT NULL
);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen);
";

#[async_trait]
impl ConsoleSessionStore for PostgresStore {
    async fn create_console_session(
        &self,
        session: ConsoleSession,
        lifetime: SessionLifetime,
    ) -> Result<(), StoreError> {
        let connection = self.client().await?;
        connection
            .execute(
                "DELETE FROM console_sessions WHERE last_seen < $1 OR created < $2",
                &[
                    &session.created.saturating_sub(lifetime.idle_millis),
                    &session.created.saturating_sub(lifetime.absolute_millis),
                ],
            )
            .await?;
        connection
            .execute(
                "INSERT INTO console_sessions (id_hash, tenant_id, actor, csrf, created, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &session.id_hash,
                    &session.tenant.0,
                    &session.actor,
                    &session.csrf,
                    &session.created,
                    &session.last_seen,
                ],
            )
            .await?;
        Ok(())
    }

    async fn touch_console_session(
        &self,
        id_hash: &str,
        now: i64,
        lifetime: SessionLifetime,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let connection = self.client().await?;
        let row = connection
            .query_opt(
                "SELECT id_hash, tenant_id, actor, csrf, created, last_seen
                 FROM console_sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut session = ConsoleSession {
            id_hash: row.get(0),
            tenant: TenantId(row.get(1)),
            actor: row.get(2),
            csrf: row.get(3),
            created: row.get(4),
            last_seen: row.get(5),
        };
        if !lifetime.alive(&session, now) {
            connection
                .execute(
                    "DELETE FROM console_sessions WHERE id_hash = $1",
                    &[&id_hash],
                )
                .await?;
            return Ok(None);
        }
        if now.saturating_sub(session.last_seen) >= TOUCH_INTERVAL_MILLIS {
            connection
                .execute(
                    "UPDATE console_sessions SET last_seen = greatest(last_seen, $2)
                     WHERE id_hash = $1",
                    &[&id_hash, &now],
                )
                .await?;
            session.last_seen = now;
        }
        Ok(Some(session))
    }

    async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM console_sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await?;
        Ok(())
    }

    async fn delete_console_sessions_of(
        &self,
        tenant: &TenantId,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM console_sessions WHERE tenant_id = $1 AND actor = $2",
                &[&tenant.0, &actor],
            )
            .await?;
        Ok(())
    }
}
