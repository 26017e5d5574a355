//! The embedded SQLite backend: one file, `muster.db`, in the data directory.
//!
//! # Design
//!
//! **One writer, group commit.** A single thread owns the only write
//! connection (`writer.rs`). Every write is a job sent to it over a channel;
//! the thread takes all jobs waiting, runs each inside its own `SAVEPOINT` of
//! one transaction, commits once (`synchronous = FULL`, WAL), and only then
//! answers each caller. A failing job rolls back to its savepoint alone. So
//! concurrent writes share an fsync, a `2xx` is never sent for a write that
//! is not on disk, and a crash never leaves half a write: the resource row,
//! its index rows, its membership rows and its change record commit together.
//! With a single writer, checks inside a job (versions, uniqueness, member
//! existence) cannot race.
//!
//! **Readers.** Reads run on a few reader threads, each owning a read-only
//! connection (`pool.rs`); WAL lets them read while the writer writes,
//! each seeing the last committed state. Statements are prepared once per
//! connection (`prepare_cached`). A checkpointer thread (`checkpoint.rs`)
//! copies the WAL back into the database so the writer does not have to.
//!
//! **Attribute index.** Each write brings the resource's own rows of
//! `resource_values` (`values.rs`) up to date, touching only the rows whose
//! value changed: one row per value, keyed by lower-cased canonical path
//! (numbered once in `attribute_paths`, `paths.rs`) and element, with typed
//! value columns. Filters become SQL
//! over these rows (`filter.rs`), sorting a correlated lookup (`sort.rs`),
//! so lists never load every resource; any attribute of any schema,
//! including extensions registered at run time, is filterable as soon as it
//! is stored.
//!
//! **Searchable attributes.** A row is in the lookup index only when its
//! `indexed` flag is set (a partial index): always for core, common and
//! built-in extension paths, and for a custom extension's attributes only
//! those the admin marked searchable (`rules.rs`). The rules live in the
//! tables, with a per-tenant generation bumped by every schema change, so
//! the writer (checking once per transaction) and the readers (checking in
//! each query's transaction) of every process sharing the file agree.
//!
//! **Membership as rows.** `group_members` has one row per (group, member):
//! adding one member to a 50,000-member group writes one row. A User's
//! `groups` is computed on read from these rows (direct, then level by level
//! through nested groups, indirect: `read::load_groups`); filters on it use
//! the same closure as a recursive query. Groups read without members never
//! touch this table.
//!
//! **Derived values.** A write may carry a `Derivation` (a User's
//! contact-center entitlements, from the tenant's rules): the store
//! recomputes the derived value of each User the write affects (the User
//! written, the Users whose computed `groups` it changes, every User on a
//! rule set put) in the write's transaction, and stores it in the User's
//! JSON, index rows and change record (`derive.rs`).
//!
//! **Custom schemas and rewrites.** Schema documents declared at run time
//! are stored verbatim per tenant (`schemas.rs`). A schema change may carry
//! a rewrite closure, run over every resource of the type in the schema
//! write's own transaction (the writer runs it alone, without a savepoint):
//! all resources change with the schema, or nothing does.
//!
//! **Captured values, settings, usage.** Undeclared values the server
//! captured live in `resources.unmapped`, beside (never inside) the
//! resource JSON and outside the attribute index. Tenant settings are plain
//! keys and values (`settings.rs`). Each write records the paths it set in
//! `attribute_usage`; holder counts are computed on read (`usage.rs`).
//!
//! **Schema generation.** The rule generation doubles as the tenant's
//! schema generation: schema changes and setting changes bump it. A write
//! that carries the generation its validation view was read at is refused
//! (`StoreError::StaleSchema`) once it moved on, checked with the rules once
//! per transaction; so no write is decided by a stale cached schema.
//!
//! **Change feed.** Each write appends its change records (`changes`,
//! payloads as `crate::ChangePayload` stores them) in its own transaction;
//! `sequence` is `AUTOINCREMENT`, taken under the database's write lock, so
//! sequences are in commit order and never reused. Consumers' cursors and
//! pruning are in `feed.rs`.
//!
//! **Back-pressure.** The writer's and the readers' queues are bounded
//! (`SqliteOptions::writer_queue`, `reader_queue`); a call that finds its
//! queue full is refused at once with `StoreError::Busy`.
//!
//! Architecture Invariant: the store never interprets SCIM beyond what the
//! registry passed to `list` says; writes are schema-agnostic.

mod audit;
pub mod backup;
mod checkpoint;
mod clients;
mod console;
pub(crate) mod derive;
mod feed;
pub(crate) mod lifecycle;
mod list;
mod paths;
mod pool;
pub(crate) mod read;
mod rule_sets;
pub(crate) mod rules;
mod schema;
mod schemas;
mod settings;
mod sync;
mod tenants;
mod usage;
pub(crate) mod values;
pub(crate) mod write;
mod writer;

pub use schema::pending_migrations;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use muster_scim::SchemaRegistry;

use self::checkpoint::Checkpointer;
use self::list::Listed;
use self::pool::ReaderPool;
use self::rules::IndexRules;
use self::write::{UpdateRequest, WriteScope};
use self::writer::Writer;
use crate::{
    Actor, AttributeUsage, ChangeRecord, ConsumerRecord, ListPage, ListQuery, NewResource,
    Precondition, Removal, ResourceId, Retention, RewriteFn, RuleSetApplied, RuleSetRecord,
    SchemaChangeOutcome, SchemaRecord, SharedDerivation, Store, StoreError, StoredResource,
    TenantId, TokenRecord, UpdateFn, VisitFn,
};

/// How many times a list is planned again when the tenant's index rules
/// change between planning and running; each change is a schema put or
/// delete, so more than one in a row is rare.
const MAX_PLANS: usize = 8;

/// The database file name inside the data directory.
pub const DATABASE_FILE: &str = "muster.db";

/// The default [`SqliteOptions::writer_queue`]: writes waiting for the
/// writer thread (eight of its largest batches).
pub const DEFAULT_WRITER_QUEUE: usize = 4096;

/// The default [`SqliteOptions::reader_queue`]: reads waiting for a reader
/// thread.
pub const DEFAULT_READER_QUEUE: usize = 4096;

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Whether each commit is fsynced (`synchronous = FULL`). Only tests
    /// that do not test durability should turn this off.
    pub durable: bool,
    /// The number of reader threads (each with its own connection).
    pub max_readers: usize,
    /// How many writes may wait for the writer thread; once that many wait,
    /// a write is refused with [`StoreError::Busy`] (at least 1 is used).
    pub writer_queue: usize,
    /// How many reads may wait for a reader thread; once that many wait, a
    /// read is refused with [`StoreError::Busy`] (at least 1 is used).
    pub reader_queue: usize,
}

impl SqliteOptions {
    /// The default number of reader threads: one per CPU, at least two.
    /// Reads of a warm database are CPU-bound, so more threads than CPUs
    /// only add context switches and contention (measured in
    /// BENCHMARKS.md: on 2 CPUs, 4 readers served filters 13 to 25 % slower).
    pub fn default_readers() -> usize {
        std::thread::available_parallelism().map_or(2, |cpus| cpus.get().max(2))
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durable: true,
            max_readers: Self::default_readers(),
            writer_queue: DEFAULT_WRITER_QUEUE,
            reader_queue: DEFAULT_READER_QUEUE,
        }
    }
}

/// The embedded SQLite store. See the module documentation for its design.
pub struct SqliteStore {
    path: PathBuf,
    // Field order is drop order: the writer drains its queue first.
    writer: Writer,
    readers: ReaderPool,
    checkpointer: Checkpointer,
    /// Each tenant's index rules as last read by a list, to plan the next
    /// one; the list's read transaction checks them (`list::run`).
    list_rules: Mutex<HashMap<TenantId, Arc<IndexRules>>>,
    /// Where deep pages of unfiltered lists start (see `list.rs`).
    landmarks: Arc<list::LandmarkCache>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`: creates the
    /// directory and `muster.db`, applies migrations, starts the writer.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, &SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with explicit options.
    pub fn open_with(data_dir: &Path, options: &SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StoreError::Database(format!(
                "cannot create the data directory {}: {error}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let connection = schema::open_writer(&path, options.durable)?;
        let writer = Writer::start(connection, options.writer_queue)?;
        let readers = ReaderPool::start(&path, options.max_readers, options.reader_queue)?;
        let checkpointer = Checkpointer::start(&path)?;
        Ok(SqliteStore {
            path,
            writer,
            readers,
            checkpointer,
            list_rules: Mutex::new(HashMap::new()),
            landmarks: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tenant's index rules a list is planned with: cached, else read.
    async fn rules_for_list(&self, tenant: &TenantId) -> Result<Arc<IndexRules>, StoreError> {
        let cached = self
            .list_rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            .cloned();
        if let Some(rules) = cached {
            return Ok(rules);
        }
        let reading = tenant.clone();
        let rules = self
            .readers
            .read(move |connection| list::read_rules(connection, &reading))
            .await?;
        Ok(self.remember_rules(tenant, rules))
    }

    /// Caches rules a read found, for the next list of the tenant.
    fn remember_rules(&self, tenant: &TenantId, rules: IndexRules) -> Arc<IndexRules> {
        let rules = Arc::new(rules);
        self.list_rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.clone(), Arc::clone(&rules));
        rules
    }

    /// Adds a tenant (idempotent). The default tenant always exists.
    pub async fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.writer
            .submit(move |connection| write::ensure_tenant(connection, &tenant))
            .await
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        new: NewResource,
    ) -> Result<StoredResource, StoreError> {
        let scope = scope(tenant, actor);
        let resource_type = resource_type.to_owned();
        self.writer
            .submit_replayable(move |connection| {
                write::create(connection, &scope, &resource_type, new.clone())
            })
            .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError> {
        // A user (its computed groups are as many as its memberships) or a
        // group without its members is a point read: read on this thread.
        // A group's members can be many: a reader thread, within budget.
        if resource_type == read::USER || !include_members {
            return self
                .readers
                .read_here(|connection| {
                    read::get(connection, tenant, resource_type, id, include_members)
                })?
                .parse();
        }
        let tenant = tenant.clone();
        let resource_type = resource_type.to_owned();
        let id = id.clone();
        self.readers
            .read(move |connection| {
                read::get(connection, &tenant, &resource_type, &id, include_members)
            })
            .await?
            .parse()
    }

    async fn version(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<Option<u64>, StoreError> {
        self.readers
            .read_here(|connection| read::version(connection, tenant, resource_type, id))
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
        let scope = WriteScope {
            tenant: tenant.clone(),
            actor: actor.clone(),
        };
        let request = UpdateRequest {
            resource_type: resource_type.to_owned(),
            id: id.clone(),
            precondition,
            include_members,
        };
        let mut update = write::KeptUpdate::new(update);
        self.writer
            .submit_replayable(move |connection| {
                write::update(connection, &scope, &request, |current| {
                    update.answer(current)
                })
            })
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
        let scope = WriteScope {
            tenant: tenant.clone(),
            actor: actor.clone(),
        };
        let resource_type = resource_type.to_owned();
        let id = id.clone();
        self.writer
            .submit_replayable(move |connection| {
                write::delete(
                    connection,
                    &scope,
                    &resource_type,
                    &id,
                    precondition,
                    &removal,
                )
            })
            .await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        registry: &SchemaRegistry,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        // Planned with the rules last seen; when they changed meanwhile, the
        // read transaction says so and hands the new ones for another plan.
        let mut rules = self.rules_for_list(tenant).await?;
        for _ in 0..MAX_PLANS {
            let plan = list::plan(tenant, registry, query, &rules)?;
            let landmarks = Arc::clone(&self.landmarks);
            match self
                .readers
                .read(move |connection| list::run(connection, plan, &landmarks))
                .await?
            {
                Listed::Page(page) => return page.parse(),
                Listed::Stale(fresh) => rules = self.remember_rules(tenant, fresh),
            }
        }
        Err(StoreError::Database(format!(
            "the index rules of tenant '{}' kept changing during {MAX_PLANS} plans of a query",
            tenant.0
        )))
    }

    async fn changes(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u64,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| read::changes(connection, &tenant, after_sequence, limit))
            .await
    }

    async fn register_consumer(
        &self,
        tenant: &TenantId,
        name: &str,
        start_at: u64,
    ) -> Result<u64, StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.writer
            .submit(move |connection| feed::register(connection, &tenant, &name, start_at))
            .await
    }

    async fn advance_consumer(
        &self,
        tenant: &TenantId,
        name: &str,
        sequence: u64,
    ) -> Result<u64, StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.writer
            .submit(move |connection| feed::advance(connection, &tenant, &name, sequence))
            .await
    }

    async fn consumer_cursor(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<u64>, StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.readers
            .read(move |connection| feed::cursor(connection, &tenant, &name))
            .await
    }

    async fn remove_consumer(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.writer
            .submit(move |connection| feed::remove(connection, &tenant, &name))
            .await
    }

    async fn list_consumers(&self, tenant: &TenantId) -> Result<Vec<ConsumerRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| feed::list(connection, &tenant))
            .await
    }

    async fn prune_changes(
        &self,
        tenant: &TenantId,
        older_than: Retention,
    ) -> Result<u64, StoreError> {
        let tenant = tenant.clone();
        // Possibly many rows: in a transaction of its own, like a schema
        // change.
        self.writer
            .submit_alone(move |connection| feed::prune(connection, &tenant, &older_than))
            .await
    }

    async fn create_token(&self, tenant: &TenantId, token: TokenRecord) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.writer
            .submit(move |connection| write::create_token(connection, &tenant, token))
            .await
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| read::list_tokens(connection, &tenant))
            .await
    }

    async fn revoke_token(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let name = name.to_owned();
        self.writer
            .submit(move |connection| write::revoke_token(connection, &tenant, &name))
            .await
    }

    async fn find_token(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(TenantId, TokenRecord)>, StoreError> {
        let secret_hash = secret_hash.to_owned();
        self.readers
            .read(move |connection| read::find_token(connection, &secret_hash))
            .await
    }

    async fn list_schemas(&self, tenant: &TenantId) -> Result<Vec<SchemaRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| schemas::list(connection, &tenant))
            .await
    }

    async fn schema_generation(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| rules::schema_generation(connection, &tenant))
            .await
    }

    async fn tenant_schemas(
        &self,
        tenant: &TenantId,
    ) -> Result<(u64, Vec<SchemaRecord>), StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| schemas::list_at_generation(connection, &tenant))
            .await
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
        let scope = scope(tenant, actor);
        self.writer
            .submit_alone(move |connection| {
                schemas::put(
                    connection,
                    &scope,
                    record,
                    rewrite,
                    rederive.as_deref(),
                    expected_generation,
                )
            })
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
        let scope = scope(tenant, actor);
        let urn = urn.to_owned();
        self.writer
            .submit_alone(move |connection| {
                schemas::delete(
                    connection,
                    &scope,
                    &urn,
                    rewrite,
                    rederive.as_deref(),
                    expected_generation,
                )
            })
            .await
    }

    async fn scan(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        visit: VisitFn,
    ) -> Result<u64, StoreError> {
        let tenant = tenant.clone();
        let resource_type = resource_type.to_owned();
        self.readers
            .read_all(move |connection| read::scan(connection, &tenant, &resource_type, visit))
            .await
    }

    async fn get_setting(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let tenant = tenant.clone();
        let key = key.to_owned();
        self.readers
            .read(move |connection| settings::get(connection, &tenant, &key))
            .await
    }

    async fn set_setting(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let scope = scope(tenant, actor);
        let key = key.to_owned();
        let value = value.to_owned();
        self.writer
            .submit(move |connection| settings::set(connection, &scope, &key, &value))
            .await
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
        let scope = scope(tenant, actor);
        let rederive_alone = rederive.is_some();
        let new = rule_sets::NewRuleSet {
            document: document.to_owned(),
            format: format.to_owned(),
            note: note.to_owned(),
        };
        let work = move |connection: &rusqlite::Connection| {
            rule_sets::put(
                connection,
                &scope,
                &new,
                rederive.as_deref(),
                expected_generation,
            )
        };
        // Rewriting every User is a large job: alone, like a schema change.
        if rederive_alone {
            self.writer.submit_alone(work).await
        } else {
            self.writer.submit(work).await
        }
    }

    async fn rule_set(
        &self,
        tenant: &TenantId,
        version: Option<u64>,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| rule_sets::get(connection, &tenant, version))
            .await
    }

    async fn rule_set_history(&self, tenant: &TenantId) -> Result<Vec<RuleSetRecord>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| rule_sets::history(connection, &tenant))
            .await
    }

    async fn attribute_usage(&self, tenant: &TenantId) -> Result<Vec<AttributeUsage>, StoreError> {
        let tenant = tenant.clone();
        self.readers
            .read(move |connection| usage::report(connection, &tenant))
            .await
    }
}

/// The scope of a write.
fn scope(tenant: &TenantId, actor: &Actor) -> WriteScope {
    WriteScope {
        tenant: tenant.clone(),
        actor: actor.clone(),
    }
}
