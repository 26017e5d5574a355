//! Console sessions on SQLite (see [`crate::console`]): writes through the
//! writer thread, lookups on the reader pool; `last_seen` is written at
//! most once a [`TOUCH_INTERVAL_MILLIS`], so reading pages costs no write.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::console::{ConsoleSession, ConsoleSessionStore, SessionLifetime, TOUCH_INTERVAL_MILLIS};
use crate::{StoreError, TenantId};

/// The migration step of this module (see `schema.rs`), version 12: the
/// `console_sessions` table. `id_hash` is the hex SHA-256 of the cookie
/// value; `created` and `last_seen` are Unix milliseconds.
pub(crate) const MIGRATION: &str = "
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen);
";

/// Deletes the sessions expired at `now`.
fn delete_expired(
    connection: &Connection,
    now: i64,
    lifetime: SessionLifetime,
) -> Result<(), StoreError> {
    connection
        .prepare_cached("DELETE FROM console_sessions WHERE last_seen < ?1 OR created < ?2")?
        .execute(params![
            now.saturating_sub(lifetime.idle_millis),
            now.saturating_sub(lifetime.absolute_millis)
        ])?;
    Ok(())
}

#[async_trait]
impl ConsoleSessionStore for SqliteStore {
    async fn create_console_session(
        &self,
        session: ConsoleSession,
        lifetime: SessionLifetime,
    ) -> Result<(), StoreError> {
        self.writer
            .submit(move |connection| {
                delete_expired(connection, session.created, lifetime)?;
                connection
                    .prepare_cached(
                        "INSERT INTO console_sessions
                             (id_hash, tenant_id, actor, csrf, created, last_seen)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        session.id_hash,
                        session.tenant.0,
                        session.actor,
                        session.csrf,
                        session.created,
                        session.last_seen,
                    ])?;
                Ok(())
            })
            .await
    }

    async fn touch_console_session(
        &self,
        id_hash: &str,
        now: i64,
        lifetime: SessionLifetime,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let hash = id_hash.to_owned();
        let found = self
            .readers
            .read(move |connection| {
                Ok(connection
                    .prepare_cached(
                        "SELECT id_hash, tenant_id, actor, csrf, created, last_seen
                         FROM console_sessions WHERE id_hash = ?1",
                    )?
                    .query_row(params![hash], |row| {
                        Ok(ConsoleSession {
                            id_hash: row.get(0)?,
                            tenant: TenantId(row.get(1)?),
                            actor: row.get(2)?,
                            csrf: row.get(3)?,
                            created: row.get(4)?,
                            last_seen: row.get(5)?,
                        })
                    })
                    .optional()?)
            })
            .await?;
        let Some(mut session) = found else {
            return Ok(None);
        };
        if !lifetime.alive(&session, now) {
            self.delete_console_session(id_hash).await?;
            return Ok(None);
        }
        if now.saturating_sub(session.last_seen) >= TOUCH_INTERVAL_MILLIS {
            let hash = id_hash.to_owned();
            self.writer
                .submit(move |connection| {
                    connection
                        .prepare_cached(
                            "UPDATE console_sessions SET last_seen = max(last_seen, ?2)
                             WHERE id_hash = ?1",
                        )?
                        .execute(params![hash, now])?;
                    Ok(())
                })
                .await?;
            session.last_seen = now;
        }
        Ok(Some(session))
    }

    async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let hash = id_hash.to_owned();
        self.writer
            .submit(move |connection| {
                connection
                    .prepare_cached("DELETE FROM console_sessions WHERE id_hash = ?1")?
                    .execute(params![hash])?;
                Ok(())
            })
            .await
    }

    async fn delete_console_sessions_of(
        &self,
        tenant: &TenantId,
        actor: &str,
    ) -> Result<(), StoreError> {
        let (tenant, actor) = (tenant.0.clone(), actor.to_owned());
        self.writer
            .submit(move |connection| {
                connection
                    .prepare_cached(
                        "DELETE FROM console_sessions WHERE tenant_id = ?1 AND actor = ?2",
                    )?
                    .execute(params![tenant, actor])?;
                Ok(())
            })
            .await
    }
}
