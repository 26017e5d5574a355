//! The PostgreSQL backend (issue 13): the same [`crate::Store`] on a
//! database server, for many writers and several Muster replicas on one
//! database.
//!
//! # Design
//!
//! **The database decides.** Uniqueness (userName, a Group's displayName,
//! ids, unique custom values) is the database's constraints (`schema.rs`),
//! never a check before the write. A write locks the rows it decides on
//! (`SELECT ... FOR UPDATE` on the resource it changes, `FOR KEY SHARE` on
//! the members it links), so concurrent writers through any replica never
//! lose an update. A serialization failure or deadlock (SQLSTATE 40001,
//! 40P01) rolls the transaction back and is retried with a fresh one
//! ([`MAX_ATTEMPTS`]); once an update closure has run it cannot be run
//! again, and the caller gets [`StoreError::Contention`].
//!
//! **No process-local truth.** Every cache is checked against the
//! tenant's generation in the transaction that relies on it, as on SQLite,
//! so several processes share one database.
//!
//! **Change feed in commit order** (`feed.rs`): a record gets the position
//! consumers read by only once no transaction that began before it can
//! still commit.
//!
//! Migrations run one step per transaction together with its record in
//! `schema_migrations`, under an advisory lock, so several Muster processes
//! started at once against one database apply each step exactly once.

mod audit;
mod clients;
mod console;
mod consumers;
mod derive;
pub mod feed;
mod lifecycle;
mod limits;
mod list;
mod paths;
mod read;
mod rule_sets;
mod rules;
mod schema;
mod schemas;
mod settings;
mod sync;
mod tenants;
mod tls;
mod tokens;
mod usage;
mod write;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use muster_scim::SchemaRegistry;
use tokio_postgres::{Client, IsolationLevel, NoTls};

use crate::sync::{
    DeadLetter, DeliveredObject, NewDeadLetter, ResourceChange, SyncStore, TargetRecord,
};
pub use limits::MAX_INDEXED_BYTES;
pub use tls::CA_VARIABLE;

use crate::{
    Actor, AttributeUsage, ChangeRecord, ConsumerRecord, ListPage, ListQuery, Migration,
    NewResource, Precondition, Removal, ResourceId, Retention, RewriteFn, RuleSetApplied,
    RuleSetRecord, SchemaChangeOutcome, SchemaRecord, SharedDerivation, Store, StoreError,
    StoredResource, TenantId, TokenRecord, UpdateFn, VisitFn,
};

/// How many times a transaction that failed on a serialization failure or
/// a deadlock is run again before [`StoreError::Contention`] is returned.
pub const MAX_ATTEMPTS: usize = 8;

/// The advisory lock key migrations hold (any constant of Muster's own).
const MIGRATION_LOCK: i64 = 0x6d75_7374_6572; // "muster"

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        // What the database cannot hold is the client's error, not ours.
        if let Some(refusal) = error.as_db_error().and_then(limits::classify) {
            return refusal;
        }
        // "error connecting to server" alone says nothing: add the cause
        // (which names no credential).
        let text = match (error.as_db_error(), std::error::Error::source(&error)) {
            (Some(db), _) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            (None, Some(cause)) => format!("{error}: {cause}"),
            (None, None) => error.to_string(),
        };
        if is_contention(&error) {
            StoreError::Contention(text)
        } else {
            StoreError::Database(text)
        }
    }
}

/// Whether `error` is a serialization failure or a deadlock: the
/// transaction was rolled back and running it again may succeed.
pub(crate) fn is_contention(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error.code().is_some_and(|code| {
        *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// Whether `error` is a unique constraint's refusal, and which constraint.
pub(crate) fn unique_violation(error: &tokio_postgres::Error) -> Option<&str> {
    let db = error.as_db_error()?;
    (*db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        .then(|| db.constraint().unwrap_or_default())
}

/// Connects to `url` (`postgres://user@host:port/database`; the connection
/// task runs on the current runtime).
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let config = parse_url(url)?;
    let client = match tls::connector(&config)? {
        Some(tls) => {
            let (client, connection) = config.connect(tls).await?;
            spawn_connection(connection);
            client
        }
        None => {
            let (client, connection) = config.connect(NoTls).await?;
            spawn_connection(connection);
            client
        }
    };
    // Notices such as "relation already exists, skipping" are not news.
    client
        .batch_execute("SET client_min_messages = warning")
        .await?;
    Ok(client)
}

/// Runs a connection's I/O on the current runtime until it ends.
fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection ended");
        }
    });
}

/// Reads a PostgreSQL URL (its text is never repeated: it may hold a
/// password).
fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse().map_err(|error| {
        StoreError::Database(format!("the PostgreSQL URL cannot be read: {error}"))
    })
}

/// The version `client`'s database is at (0: never migrated).
async fn applied_version(client: &Client) -> Result<usize, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let version = usize::try_from(version).unwrap_or(0);
    if version > schema::MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "the database schema is at version {version}, newer than this build knows ({}); \
             use a newer Muster",
            schema::MIGRATIONS.len()
        )));
    }
    Ok(version)
}

fn steps_after(applied: usize) -> Vec<Migration> {
    Migration::after(schema::MIGRATIONS, applied)
}

/// The steps the database at `url` has not applied, read without
/// changing anything.
pub async fn pending_migrations(url: &str) -> Result<Vec<Migration>, StoreError> {
    let client = connect(url).await?;
    Ok(steps_after(applied_version(&client).await?))
}

/// Applies the steps the database at `url` has not applied; returns them.
pub async fn migrate(url: &str) -> Result<Vec<Migration>, StoreError> {
    let mut client = connect(url).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply(&mut client).await;
    // The lock ends with the session anyway; unlocking is a courtesy.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn apply(client: &mut Client) -> Result<Vec<Migration>, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                applied timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let pending = steps_after(applied_version(client).await?);
    for step in &pending {
        let transaction = client.transaction().await?;
        transaction.batch_execute(step.sql).await.map_err(|error| {
            StoreError::Database(format!(
                "migration {} ({}) failed: {error}",
                step.version, step.name
            ))
        })?;
        let version = i64::try_from(step.version).unwrap_or(i64::MAX);
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&version, &step.name],
            )
            .await?;
        transaction.commit().await?;
    }
    Ok(pending)
}

/// How to connect a [`PostgresStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The most connections this process holds (each replica has its own
    /// pool; the server's `max_connections` must cover every replica's).
    pub max_connections: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
        }
    }
}

/// The PostgreSQL store. See the module documentation for its design.
pub struct PostgresStore {
    pool: Pool,
    list_rules: list::RulesCache,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url`, applies the migrations it has not
    /// applied, and keeps a pool of connections.
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        migrate(url).await?;
        let config = parse_url(url)?;
        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls::connector(&config)? {
            Some(tls) => Manager::from_config(config, tls, recycling),
            None => Manager::from_config(config, NoTls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .build()
            .map_err(|error| StoreError::Database(format!("connection pool: {error}")))?;
        Ok(PostgresStore {
            pool,
            list_rules: list::RulesCache::default(),
        })
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|error| match error {
            deadpool_postgres::PoolError::Backend(error) => StoreError::from(error),
            other => StoreError::Database(format!("no PostgreSQL connection: {other}")),
        })
    }

    /// Adds a tenant (idempotent). The default tenant always exists.
    pub async fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&tenant.0],
            )
            .await?;
        Ok(())
    }
}

/// Begins a read-write transaction (read committed: each statement sees
/// what committed before it; the rows a write decides on are locked).
pub(crate) async fn begin(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await?)
}

/// Begins a read-only transaction that sees one snapshot throughout (a
/// list's count and page, a scan).
pub(crate) async fn begin_snapshot(client: &mut Object) -> Result<Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        new: NewResource,
    ) -> Result<StoredResource, StoreError> {
        write::create(self, tenant, actor, resource_type, new).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError> {
        read::get(self, tenant, resource_type, id, include_members).await
    }

    async fn version(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<Option<u64>, StoreError> {
        read::version(self, tenant, resource_type, id).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
        include_members: bool,
        update: UpdateFn,
    ) -> Result<(StoredResource, bool), StoreError> {
        write::update(
            self,
            tenant,
            actor,
            resource_type,
            id,
            precondition,
            include_members,
            update,
        )
        .await
    }

    async fn delete_with(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
        removal: Removal,
    ) -> Result<(), StoreError> {
        write::delete(
            self,
            tenant,
            actor,
            resource_type,
            id,
            precondition,
            removal,
        )
        .await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        registry: &SchemaRegistry,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        list::list(self, tenant, registry, query).await
    }

    async fn changes(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u64,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut client = self.client().await?;
        feed::changes_after(&mut client, tenant, after_sequence, limit).await
    }

    async fn register_consumer(
        &self,
        tenant: &TenantId,
        name: &str,
        start_at: u64,
    ) -> Result<u64, StoreError> {
        consumers::register(self, tenant, name, start_at).await
    }

    async fn advance_consumer(
        &self,
        tenant: &TenantId,
        name: &str,
        sequence: u64,
    ) -> Result<u64, StoreError> {
        consumers::advance(self, tenant, name, sequence).await
    }

    async fn consumer_cursor(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<u64>, StoreError> {
        consumers::cursor(self, tenant, name).await
    }

    async fn remove_consumer(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        consumers::remove(self, tenant, name).await
    }

    async fn list_consumers(&self, tenant: &TenantId) -> Result<Vec<ConsumerRecord>, StoreError> {
        consumers::list(self, tenant).await
    }

    async fn prune_changes(
        &self,
        tenant: &TenantId,
        older_than: Retention,
    ) -> Result<u64, StoreError> {
        consumers::prune(self, tenant, &older_than).await
    }

    async fn create_token(&self, tenant: &TenantId, token: TokenRecord) -> Result<(), StoreError> {
        tokens::create(self, tenant, token).await
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError> {
        tokens::list(self, tenant).await
    }

    async fn revoke_token(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
        tokens::revoke(self, tenant, name).await
    }

    async fn find_token(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(TenantId, TokenRecord)>, StoreError> {
        tokens::find(self, secret_hash).await
    }

    async fn list_schemas(&self, tenant: &TenantId) -> Result<Vec<SchemaRecord>, StoreError> {
        schemas::list(self, tenant).await
    }

    async fn schema_generation(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        schemas::generation(self, tenant).await
    }

    async fn tenant_schemas(
        &self,
        tenant: &TenantId,
    ) -> Result<(u64, Vec<SchemaRecord>), StoreError> {
        schemas::list_at_generation(self, tenant).await
    }

    async fn put_schema(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        record: SchemaRecord,
        rewrite: Option<RewriteFn>,
        rederive: Option<SharedDerivation>,
        expected_generation: Option<u64>,
    ) -> Result<SchemaChangeOutcome, StoreError> {
        schemas::put(
            self,
            tenant,
            actor,
            record,
            rewrite,
            rederive,
            expected_generation,
        )
        .await
    }

    async fn delete_schema(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        urn: &str,
        rewrite: Option<RewriteFn>,
        rederive: Option<SharedDerivation>,
        expected_generation: Option<u64>,
    ) -> Result<SchemaChangeOutcome, StoreError> {
        schemas::delete(
            self,
            tenant,
            actor,
            urn,
            rewrite,
            rederive,
            expected_generation,
        )
        .await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        visit: VisitFn,
    ) -> Result<u64, StoreError> {
        list::scan(self, tenant, resource_type, visit).await
    }

    async fn get_setting(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        settings::get(self, tenant, key).await
    }

    async fn set_setting(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        settings::set(self, tenant, actor, key, value).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_rule_set(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        document: &str,
        format: &str,
        note: &str,
        rederive: Option<SharedDerivation>,
        expected_generation: Option<u64>,
    ) -> Result<RuleSetApplied, StoreError> {
        let new = rule_sets::NewRuleSet {
            document,
            format,
            note,
        };
        rule_sets::put(self, tenant, actor, new, rederive, expected_generation).await
    }

    async fn rule_set(
        &self,
        tenant: &TenantId,
        version: Option<u64>,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        rule_sets::get(self, tenant, version).await
    }

    async fn rule_set_history(&self, tenant: &TenantId) -> Result<Vec<RuleSetRecord>, StoreError> {
        rule_sets::history(self, tenant).await
    }

    async fn attribute_usage(&self, tenant: &TenantId) -> Result<Vec<AttributeUsage>, StoreError> {
        usage::report(self, tenant).await
    }
}

#[async_trait]
impl SyncStore for PostgresStore {
    async fn change_head(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        sync::change_head(self, tenant).await
    }

    async fn resource_history(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
        limit: u64,
    ) -> Result<Vec<ResourceChange>, StoreError> {
        sync::resource_history(self, tenant, resource_type, id, limit).await
    }

    async fn put_target(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        name: &str,
        document: &str,
    ) -> Result<TargetRecord, StoreError> {
        sync::put_target(self, tenant, actor, name, document).await
    }

    async fn target(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<TargetRecord>, StoreError> {
        sync::target(self, tenant, name).await
    }

    async fn targets(&self, tenant: &TenantId) -> Result<Vec<TargetRecord>, StoreError> {
        sync::targets(self, tenant).await
    }

    async fn all_targets(&self) -> Result<Vec<(TenantId, TargetRecord)>, StoreError> {
        sync::all_targets(self).await
    }

    async fn remove_target(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        sync::remove_target(self, tenant, name).await
    }

    async fn set_target_paused(
        &self,
        tenant: &TenantId,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        sync::set_target_paused(self, tenant, name, reason).await
    }

    async fn set_target_state(
        &self,
        tenant: &TenantId,
        name: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        sync::set_target_state(self, tenant, name, state).await
    }

    async fn lease_target(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        sync::lease_target(self, tenant, name, holder, ttl).await
    }

    async fn delivered(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<Option<DeliveredObject>, StoreError> {
        sync::delivered(self, tenant, target, resource_type, id).await
    }

    async fn delivered_all(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
    ) -> Result<Vec<DeliveredObject>, StoreError> {
        sync::delivered_all(self, tenant, target, resource_type).await
    }

    async fn record_delivery(
        &self,
        tenant: &TenantId,
        target: &str,
        object: DeliveredObject,
    ) -> Result<(), StoreError> {
        sync::record_delivery(self, tenant, target, object).await
    }

    async fn forget_delivery(
        &self,
        tenant: &TenantId,
        target: &str,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<(), StoreError> {
        sync::forget_delivery(self, tenant, target, resource_type, id).await
    }

    async fn add_dead_letter(
        &self,
        tenant: &TenantId,
        target: &str,
        letter: NewDeadLetter,
    ) -> Result<u64, StoreError> {
        sync::add_dead_letter(self, tenant, target, letter).await
    }

    async fn dead_letters(
        &self,
        tenant: &TenantId,
        target: Option<&str>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        sync::dead_letters(self, tenant, target).await
    }

    async fn take_dead_letter(
        &self,
        tenant: &TenantId,
        id: u64,
    ) -> Result<Option<DeadLetter>, StoreError> {
        sync::take_dead_letter(self, tenant, id).await
    }
}
