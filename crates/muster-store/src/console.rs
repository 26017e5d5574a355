//! Sessions of the admin console (`muster-console`): one row per signed-in
//! browser.
//!
//! The store keeps the SHA-256 hash of the session's cookie value, never the
//! value itself, so a copy of the database signs nobody in. A session ends
//! when it is idle too long, when it is too old, or when it is signed out;
//! the expiry is decided by the caller's clock and limits, passed to
//! [`ConsoleSessionStore::touch_console_session`].

use async_trait::async_trait;

use crate::{StoreError, TenantId};

/// A signed-in console session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the cookie value.
    pub id_hash: String,
    /// The tenant it administers.
    pub tenant: TenantId,
    /// The credential (token or OAuth client) name it signed in with: the
    /// client of the changes it makes.
    pub actor: String,
    /// The token every form of the session must carry.
    pub csrf: String,
    /// When it was created, Unix milliseconds.
    pub created: i64,
    /// When it was last used, Unix milliseconds.
    pub last_seen: i64,
}

/// How long a session lives, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetime {
    /// Unused longer than this, it ends.
    pub idle_millis: i64,
    /// Older than this, it ends however busy.
    pub absolute_millis: i64,
}

/// Storage of console sessions.
#[async_trait]
pub trait ConsoleSessionStore: Send + Sync {
    /// Stores a new session, and deletes the sessions (of every tenant)
    /// that have expired by `session.created` under `lifetime`.
    async fn create_console_session(
        &self,
        session: ConsoleSession,
        lifetime: SessionLifetime,
    ) -> Result<(), StoreError>;

    /// The session whose cookie hashes to `id_hash`, if it is alive at `now`
    /// (Unix milliseconds) under `lifetime`; its `last_seen` becomes `now`.
    /// An expired session is deleted and answered `None`.
    async fn touch_console_session(
        &self,
        id_hash: &str,
        now: i64,
        lifetime: SessionLifetime,
    ) -> Result<Option<ConsoleSession>, StoreError>;

    /// Deletes a session (signing out); no error when there is none.
    async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// Deletes every session of `tenant` signed in with the credential
    /// named `actor` (revoked or rotated: a session lives no longer than
    /// the credential it signed in with, even when a new credential takes
    /// the name).
    async fn delete_console_sessions_of(
        &self,
        tenant: &TenantId,
        actor: &str,
    ) -> Result<(), StoreError>;
}

/// A session's `last_seen` is rewritten only when it is at least this old
/// (milliseconds): idle expiry is that much coarse, and browsing pages
/// costs no write.
pub const TOUCH_INTERVAL_MILLIS: i64 = 60_000;

impl SessionLifetime {
    /// Whether `session` is still alive at `now` (Unix milliseconds).
    pub fn alive(&self, session: &ConsoleSession, now: i64) -> bool {
        now.saturating_sub(session.last_seen) <= self.idle_millis
            && now.saturating_sub(session.created) <= self.absolute_millis
    }
}
