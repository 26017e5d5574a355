//! The database schema as versioned migration steps, and the settings every
//! connection gets.
//!
//! `schema_migrations` records each applied step; a step runs in its own
//! transaction together with its record, so a crash mid-migration leaves the
//! previous version intact. A database whose recorded version is newer than
//! this build refuses to open rather than being misread.

use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use super::values::sortable_instant;
use crate::{Migration, StoreError};

/// The migration steps, in order; a step's version is its position from 1.
///
/// Never edit a released step: append a new one.
const MIGRATIONS: &[(&str, &str)] = &[
    ("initial schema", INITIAL_SCHEMA),
    (
        "custom schemas, unmapped values, settings, attribute usage",
        CUSTOM_ATTRIBUTES,
    ),
    (
        "searchable custom attributes: partial lookup index",
        SEARCHABLE,
    ),
    (
        "secrets: no password in the attribute index or change payloads",
        SECRETS,
    ),
    (
        "entitlement rule sets, one row per applied version",
        RULE_SETS,
    ),
    ("change feed consumers and their cursors", CONSUMERS),
    (
        "sync targets, delivery state, dead letters",
        super::sync::SYNC_TABLES,
    ),
    ("target leases for several processes", TARGET_LEASES),
    ("oauth clients and access tokens", super::clients::MIGRATION),
    (
        "soft delete: deleted users kept for restore and purge",
        super::lifecycle::MIGRATION,
    ),
    ("audit trail and change origins", super::audit::MIGRATION),
    ("admin console sessions", super::console::MIGRATION),
    (
        "resource counts per tenant and type, kept by triggers",
        super::list::MIGRATION,
    ),
];

/// Version 8: who delivers a target (`lease_holder`, a sync engine of one
/// process) and until when (`lease_until`, a sortable instant), so the
/// engines of several processes sharing the file deliver each target once.
const TARGET_LEASES: &str = "
ALTER TABLE sync_targets ADD COLUMN lease_holder TEXT;
ALTER TABLE sync_targets ADD COLUMN lease_until TEXT;
";

/// Version 1.
///
/// - `resources.seq` orders resources stably (creation order) and keys the
///   attribute index; `AUTOINCREMENT` so a sequence number is never reused.
/// - `user_name_lower` is set for Users only and `display_name_lower` for
///   Groups only (NULLs never clash), so the unique indexes on them are the
///   last line of defence behind the writer's own checks, which word the
///   conflict. No index is partial: a partial index makes SQLite re-plan a
///   statement whenever a parameter that might match its condition is bound.
/// - `id` and `meta` are columns (`*_instant`: `values::sortable_instant`,
///   for filtering and sorting as instants); every other attribute is in
///   `resource_values`, the attribute index (see `values.rs`), clustered by
///   resource so a resource's rows are rewritten and read together.
/// - `attribute_paths` numbers the index paths once (a path such as
///   `urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department`
///   is long; its number keeps index rows and entries small). It holds no
///   tenant data: paths are names from schemas.
/// - `group_members` holds one row per membership, so a change to a large
///   group touches only the rows it changes.
const INITIAL_SCHEMA: &str = "
CREATE TABLE tenants (
    tenant_id TEXT PRIMARY KEY,
    created TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO tenants (tenant_id, created)
    VALUES ('default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    json TEXT NOT NULL,
    version INTEGER NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    created_instant TEXT NOT NULL,
    last_modified_instant TEXT NOT NULL,
    user_name_lower TEXT,
    display_name TEXT,
    display_name_lower TEXT,
    external_id TEXT
);
CREATE UNIQUE INDEX resources_by_id ON resources (tenant_id, id);
CREATE INDEX resources_by_type ON resources (tenant_id, resource_type, seq);
CREATE UNIQUE INDEX resources_unique_user_name
    ON resources (tenant_id, resource_type, user_name_lower);
CREATE UNIQUE INDEX resources_unique_group_display_name
    ON resources (tenant_id, resource_type, display_name_lower);

CREATE TABLE attribute_paths (
    path_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);

CREATE TABLE resource_values (
    resource_seq INTEGER NOT NULL,
    path_id INTEGER NOT NULL,
    element INTEGER NOT NULL,
    item INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    present INTEGER NOT NULL,
    value_lower TEXT,
    value_exact TEXT,
    value_time TEXT,
    value_num,
    value_bool INTEGER,
    PRIMARY KEY (resource_seq, path_id, element, item)
) WITHOUT ROWID;
CREATE INDEX resource_values_lookup ON resource_values (tenant_id, path_id, value_lower);

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_member ON group_members (tenant_id, member_id);

CREATE TABLE changes (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    client TEXT NOT NULL,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX changes_by_tenant ON changes (tenant_id, sequence);

CREATE TABLE tokens (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
";

/// Version 2: custom attributes declared at run time.
///
/// - `resources.unmapped`: the JSON object of captured undeclared values,
///   NULL when there are none (the common case costs nothing).
/// - `custom_schemas`: one row per schema URN a tenant ever declared.
///   `position` orders the list by first declaration; `version` counts the
///   URN's changes (the version of its change records). A deleted schema
///   keeps its row with `document` NULL, so a later re-declaration continues
///   the version count.
/// - `settings`: per-tenant key and value, with a per-key `version`.
/// - `attribute_usage`: the last client and time a write set a value at a
///   path (`declared` 1: an attribute index path; 0: a key of `unmapped`).
///   One row per (tenant, resource type, path), upserted by the writes that
///   change that path; holder counts are not kept here but counted on read.
const CUSTOM_ATTRIBUTES: &str = "
ALTER TABLE resources ADD COLUMN unmapped TEXT;

CREATE TABLE custom_schemas (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    urn TEXT NOT NULL,
    position INTEGER NOT NULL,
    resource_type TEXT NOT NULL,
    required INTEGER NOT NULL,
    document TEXT,
    version INTEGER NOT NULL,
    updated TEXT NOT NULL,
    client TEXT NOT NULL,
    PRIMARY KEY (tenant_id, urn)
) WITHOUT ROWID;

CREATE TABLE settings (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated TEXT NOT NULL,
    client TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;

CREATE TABLE attribute_usage (
    tenant_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    declared INTEGER NOT NULL,
    path TEXT NOT NULL,
    client TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, declared, path)
) WITHOUT ROWID;
";

/// Version 3: searchable custom attributes.
///
/// - `resource_values.indexed`: whether the row is in the lookup index
///   (`rules.rs` decides); `resource_values_lookup` becomes partial, so a
///   row of a custom attribute that is not searchable costs a write no index
///   entry. Its condition is a literal (queries write `indexed = 1`, never a
///   bound parameter), so plans do not depend on bound values.
/// - `custom_schemas.searchable`: the JSON array of the schema's searchable
///   top-level attribute names.
/// - `tenants.index_generation`: counts changes of the tenant's index rules.
///
/// Schemas declared before this version keep every declared attribute
/// searchable (their rows were all in the index), then the last statement
/// flips any row the rules say is not indexed, so the rows of a (tenant,
/// path) agree with the rules from the start.
const SEARCHABLE: &str = "
ALTER TABLE resource_values ADD COLUMN indexed INTEGER NOT NULL DEFAULT 1;
DROP INDEX resource_values_lookup;
CREATE INDEX resource_values_lookup ON resource_values (tenant_id, path_id, value_lower)
    WHERE indexed = 1;

ALTER TABLE custom_schemas ADD COLUMN searchable TEXT NOT NULL DEFAULT '[]';
UPDATE custom_schemas SET searchable = (
    SELECT json_group_array(json_extract(a.value, '$.name'))
    FROM json_each(custom_schemas.document, '$.attributes') AS a
    WHERE json_type(a.value, '$.name') = 'text'
) WHERE document IS NOT NULL AND json_valid(document);

ALTER TABLE tenants ADD COLUMN index_generation INTEGER NOT NULL DEFAULT 0;

UPDATE resource_values SET indexed = 0
WHERE (tenant_id, path_id) IN (
    SELECT s.tenant_id, p.path_id
    FROM custom_schemas s
    CROSS JOIN attribute_paths p
        ON substr(p.path, 1, length(s.urn) + 1) = lower(s.urn) || ':'
    WHERE s.document IS NOT NULL
      AND lower(s.urn) NOT IN (
          'urn:ietf:params:scim:schemas:core:2.0:user',
          'urn:ietf:params:scim:schemas:core:2.0:group',
          'urn:ietf:params:scim:schemas:extension:enterprise:2.0:user',
          'http://schemas.microsoft.com/2006/11/resourcemanagement/adscim/2.0/group')
      AND instr(substr(p.path, length(s.urn) + 2), ':') = 0
      AND NOT EXISTS (
          SELECT 1 FROM json_each(s.searchable) AS n
          WHERE lower(n.value) = CASE
              WHEN instr(substr(p.path, length(s.urn) + 2), '.') > 0
              THEN substr(p.path, length(s.urn) + 2,
                          instr(substr(p.path, length(s.urn) + 2), '.') - 1)
              ELSE substr(p.path, length(s.urn) + 2)
          END
      )
);
";

/// Version 4: secrets out of the attribute index and the change log.
///
/// - Every `resource_values` row of the core `password` (paths are stored
///   in ASCII lower case; `LIKE` also matches any other case, and
///   `password.*` a complex value's members) is deleted: such rows made
///   `filter=password sw "$argon2id$..."` a prefix oracle on the hash (or
///   held the password in clear, lower-cased too). Writes no longer give
///   them rows (`values::NeverReturned`).
/// - Every change payload whose `resource` holds a top-level `password`
///   key (in any case) is rewritten without it. The `LIKE` is a cheap
///   pre-filter (payloads are written by `serde_json`, which escapes no
///   letter), the `json_each` test the exact one. The resource row itself
///   keeps its hash.
/// - `secure_delete` is on while this runs, so the bytes of the deleted
///   rows and old payloads are overwritten in the pages rewritten, rather
///   than left in free space; it is the connection's default (off) again
///   afterwards.
const SECRETS: &str = "
PRAGMA secure_delete = ON;

DELETE FROM resource_values
WHERE path_id IN (
    SELECT path_id FROM attribute_paths
    WHERE path LIKE 'password' OR path LIKE 'password.%'
);

UPDATE changes SET payload = json_set(payload, '$.resource', (
    SELECT json_group_object(e.key, e.value)
    FROM json_each(changes.payload, '$.resource') AS e
    WHERE lower(e.key) <> 'password'
))
WHERE payload LIKE '%\"password\"%'
  AND json_valid(payload)
  AND json_type(payload, '$.resource') = 'object'
  AND EXISTS (
      SELECT 1 FROM json_each(changes.payload, '$.resource') AS e
      WHERE lower(e.key) = 'password'
  );

PRAGMA secure_delete = OFF;
";

/// Version 5.
///
/// - `rule_sets`: every entitlement rule set a tenant applied, numbered from
///   1; the highest version is the one in force. A rollback applies an old
///   document again as a new version, so the history only grows.
const RULE_SETS: &str = "
CREATE TABLE rule_sets (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    format TEXT NOT NULL,
    note TEXT NOT NULL,
    applied TEXT NOT NULL,
    client TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version)
) WITHOUT ROWID;
";

/// Version 6.
///
/// - `change_consumers`: one row per reader of a tenant's change feed,
///   `cursor` the last `changes.sequence` it has passed; pruning keeps
///   every record above the lowest cursor (`feed.rs`).
/// - `changes_by_tenant` serves pruning too (by sequence within a tenant;
///   the age is checked on the rows in range).
const CONSUMERS: &str = "
CREATE TABLE change_consumers (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    consumer TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    registered TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (tenant_id, consumer)
) WITHOUT ROWID;
";

/// Page cache of the writer, in KiB (SQLite's negative `cache_size`).
const WRITER_CACHE_KIB: i64 = 16 * 1024;
/// Page cache per reader connection, in KiB.
const READER_CACHE_KIB: i64 = 4 * 1024;
/// Page cache of the checkpointer, in KiB.
const CHECKPOINTER_CACHE_KIB: i64 = 512;
/// WAL size (pages) past which the writer checkpoints itself: a backstop
/// should the checkpointer thread fall behind.
const WRITER_AUTOCHECKPOINT_PAGES: i64 = 16_384;
/// Bytes the WAL file is truncated to after a checkpoint resets it.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// SQLite's process-wide soft heap limit, in bytes: beyond it, SQLite
/// releases cache pages rather than grow.
const SOFT_HEAP_LIMIT: i64 = 96 * 1024 * 1024;

/// Opens the writer connection: creates the file, sets WAL mode and runs the
/// migrations.
pub(crate) fn open_writer(path: &Path, durable: bool) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    configure(&connection, WRITER_CACHE_KIB)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "could not switch {} to WAL mode (got '{mode}')",
            path.display()
        )));
    }
    let synchronous = if durable { "FULL" } else { "OFF" };
    // The writer's savepoint journals stay in memory.
    connection.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous};
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};
         PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};
         PRAGMA soft_heap_limit = {SOFT_HEAP_LIMIT};"
    ))?;
    migrate(&connection)?;
    // Deleted and overwritten row content is zeroed in the pages the writer
    // rewrites (at no extra I/O); a purge turns it fully on for its job.
    connection.execute_batch("PRAGMA secure_delete = FAST;")?;
    Ok(connection)
}

/// Opens a read-only connection for the reader pool.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags)?;
    configure(&connection, READER_CACHE_KIB)?;
    Ok(connection)
}

/// Opens the connection the checkpointer thread uses.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    configure(&connection, CHECKPOINTER_CACHE_KIB)?;
    Ok(connection)
}

/// Settings and SQL functions every connection needs.
fn configure(connection: &Connection, cache_kib: i64) -> Result<(), StoreError> {
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.execute_batch(&format!(
        "PRAGMA cache_size = -{cache_kib}; PRAGMA foreign_keys = ON;"
    ))?;
    connection.set_prepared_statement_cache_capacity(64);
    // Plans must not depend on bound values: otherwise SQLite may re-prepare
    // a cached statement on every new binding.
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // Unicode lower case, as the filter evaluator compares (SQLite's own
    // lower() only folds ASCII). Used for computed attributes (members,
    // groups); stored attributes carry their lower-cased text.
    connection.create_scalar_function("muster_lower", 1, flags, |context| {
        Ok(context
            .get::<Option<String>>(0)?
            .map(|text| text.to_lowercase()))
    })?;
    // The sortable instant of an RFC 3339 text, as `resource_values.value_time`.
    connection.create_scalar_function("muster_instant", 1, flags, |context| {
        Ok(context
            .get::<Option<String>>(0)?
            .and_then(|text| sortable_instant(&text)))
    })?;
    Ok(())
}

/// The steps the database at `path` has not applied (all of them when
/// there is no database), read without changing anything.
pub fn pending_migrations(path: &Path) -> Result<Vec<Migration>, StoreError> {
    let applied = if path.is_file() {
        let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let recorded: bool = connection.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'schema_migrations'",
            [],
            |row| row.get(0),
        )?;
        if recorded {
            connection.query_row(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                [],
                |row| row.get::<_, i64>(0),
            )?
        } else {
            0
        }
    } else {
        0
    };
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "the database schema is at version {applied}, newer than this build knows ({}); \
             use a newer Muster",
            MIGRATIONS.len()
        )));
    }
    Ok(Migration::after(MIGRATIONS, applied))
}

/// Applies the migration steps not yet recorded.
fn migrate(connection: &Connection) -> Result<(), StoreError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied TEXT NOT NULL
        )",
    )?;
    let applied: i64 = connection.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if applied > known {
        return Err(StoreError::Database(format!(
            "the database schema is at version {applied}, newer than this build knows ({known}); \
             use a newer Muster"
        )));
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if version <= applied {
            continue;
        }
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let step = connection.execute_batch(sql).and_then(|()| {
            connection.execute(
                "INSERT INTO schema_migrations (version, name, applied)
                 VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                rusqlite::params![version, name],
            )
        });
        match step {
            Ok(_) => connection.execute_batch("COMMIT")?,
            Err(error) => {
                // Best effort: the step failed, the rollback reports nothing new.
                let _ = connection.execute_batch("ROLLBACK");
                return Err(StoreError::Database(format!(
                    "migration {version} ({name}) failed: {error}"
                )));
            }
        }
    }
    Ok(())
}
