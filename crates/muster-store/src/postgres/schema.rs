//! The PostgreSQL schema as versioned migration steps: the same data as
//! the SQLite schema (`sqlite/schema.rs`), designed for many writers.
//!
//! - Uniqueness is the database's: `resources` has unique constraints on
//!   (tenant, id), on a User's lower-cased userName and on a Group's
//!   lower-cased displayName. A writer of a value of a unique custom
//!   attribute first claims the value's row in `unique_values` (its primary
//!   key makes the writers of one value wait for each other), then looks
//!   for another holder in the attribute index (`write.rs`). No write
//!   relies on a check made before it.
//! - The attribute index (`resource_values`) serves `eq` and `sw` from a
//!   B-tree with `text_pattern_ops` and `co` and `ew` from a trigram GIN
//!   index (`pg_trgm`), both partial on `indexed` (searchable attributes).
//! - The change feed is read in commit order: each record carries the id of
//!   the transaction that wrote it (`txid`), and a record gets its
//!   `position` (the cursor consumers read by) only once every transaction
//!   that could still commit below it has ended, so a record committed
//!   late is never behind a consumer's cursor.
//! - Instants are `timestamptz`; documents are `jsonb`, but a custom
//!   schema's `document` and a resource's `json` are `json`: the store
//!   keeps them verbatim (key order).

/// The migration steps, in order; a step's version is its position from 1.
///
/// Never edit a released step: append a new one.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("initial schema", INITIAL_SCHEMA),
    ("oauth clients and access tokens", super::clients::MIGRATION),
    (
        "soft delete: deleted users kept for restore and purge",
        super::lifecycle::MIGRATION,
    ),
    ("audit trail and change origins", super::audit::MIGRATION),
    ("admin console sessions", super::console::MIGRATION),
];

/// Version 1: every table of SQLite's schema version 7.
const INITIAL_SCHEMA: &str = "
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE tenants (
    tenant_id text PRIMARY KEY,
    created timestamptz NOT NULL DEFAULT now(),
    index_generation bigint NOT NULL DEFAULT 0
);
INSERT INTO tenants (tenant_id) VALUES ('default');

CREATE TABLE resources (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    id text NOT NULL,
    resource_type text NOT NULL,
    json json NOT NULL,
    version bigint NOT NULL,
    created timestamptz NOT NULL,
    last_modified timestamptz NOT NULL,
    user_name_lower text,
    display_name text,
    display_name_lower text,
    external_id text,
    unmapped jsonb,
    CONSTRAINT resources_unique_id UNIQUE (tenant_id, id),
    CONSTRAINT resources_unique_user_name UNIQUE (tenant_id, resource_type, user_name_lower),
    CONSTRAINT resources_unique_display_name UNIQUE (tenant_id, resource_type, display_name_lower)
);
CREATE INDEX resources_by_type ON resources (tenant_id, resource_type, seq);
CREATE INDEX resources_by_user_name ON resources (tenant_id, resource_type, user_name_lower text_pattern_ops);
CREATE INDEX resources_by_external_id ON resources (tenant_id, resource_type, external_id);

CREATE TABLE attribute_paths (
    path_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path text NOT NULL UNIQUE
);

CREATE TABLE resource_values (
    resource_seq bigint NOT NULL REFERENCES resources (seq) ON DELETE CASCADE,
    path_id integer NOT NULL REFERENCES attribute_paths (path_id),
    element integer NOT NULL,
    item integer NOT NULL,
    tenant_id text NOT NULL,
    present boolean NOT NULL,
    indexed boolean NOT NULL DEFAULT true,
    value_lower text,
    value_exact text,
    value_time timestamptz,
    value_num double precision,
    value_bool boolean,
    PRIMARY KEY (resource_seq, path_id, element, item)
);
CREATE INDEX resource_values_lookup ON resource_values
    (tenant_id, path_id, value_lower text_pattern_ops) WHERE indexed;
CREATE INDEX resource_values_trigram ON resource_values
    USING gin (value_lower gin_trgm_ops) WHERE indexed;

CREATE TABLE unique_values (
    tenant_id text NOT NULL,
    resource_type text NOT NULL,
    path_id integer NOT NULL REFERENCES attribute_paths (path_id),
    value_lower text NOT NULL,
    resource_seq bigint NOT NULL REFERENCES resources (seq) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, resource_type, path_id, value_lower)
);
CREATE INDEX unique_values_by_resource ON unique_values (resource_seq);

CREATE TABLE group_members (
    tenant_id text NOT NULL,
    group_id text NOT NULL,
    member_id text NOT NULL,
    member_type text NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id)
);
CREATE INDEX group_members_by_member ON group_members (tenant_id, member_id);

CREATE TABLE changes (
    sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    position bigint UNIQUE,
    tenant_id text NOT NULL,
    kind text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    version bigint NOT NULL,
    client text NOT NULL,
    request_id text NOT NULL,
    at timestamptz NOT NULL,
    payload jsonb NOT NULL
);
CREATE INDEX changes_by_position ON changes (tenant_id, position);
CREATE INDEX changes_unpositioned ON changes (txid, sequence) WHERE position IS NULL;
CREATE INDEX changes_by_resource ON changes (tenant_id, resource_type, resource_id, sequence);
CREATE SEQUENCE change_positions;

CREATE TABLE change_consumers (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    consumer text NOT NULL,
    cursor bigint NOT NULL,
    registered timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, consumer)
);

CREATE TABLE tokens (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    name text NOT NULL,
    secret_hash text NOT NULL UNIQUE,
    scopes text NOT NULL,
    created timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE custom_schemas (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    urn text NOT NULL,
    position integer NOT NULL,
    resource_type text NOT NULL,
    required boolean NOT NULL,
    document json,
    searchable jsonb NOT NULL DEFAULT '[]',
    version bigint NOT NULL,
    updated timestamptz NOT NULL,
    client text NOT NULL,
    PRIMARY KEY (tenant_id, urn)
);

CREATE TABLE settings (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    key text NOT NULL,
    value text NOT NULL,
    version bigint NOT NULL,
    updated timestamptz NOT NULL,
    client text NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE attribute_usage (
    tenant_id text NOT NULL,
    resource_type text NOT NULL,
    declared boolean NOT NULL,
    path text NOT NULL,
    client text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, declared, path)
);

CREATE TABLE rule_sets (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    version bigint NOT NULL,
    document text NOT NULL,
    format text NOT NULL,
    note text NOT NULL,
    applied timestamptz NOT NULL,
    client text NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE sync_targets (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    name text NOT NULL,
    document text NOT NULL, -- verbatim: the store gives it no meaning
    paused text,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    client text NOT NULL,
    state text NOT NULL DEFAULT '',
    guard_confirmed bigint NOT NULL DEFAULT 0,
    lease_holder text,
    lease_until timestamptz,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE sync_objects (
    tenant_id text NOT NULL,
    target text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    remote_id text,
    sent jsonb NOT NULL,
    delivered text NOT NULL, -- verbatim, as the sync engine stamped it
    status integer,
    answer text,
    deprovisioned boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, target, resource_type, resource_id)
);

CREATE TABLE sync_dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    target text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    request jsonb NOT NULL,
    response jsonb NOT NULL,
    reason text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX sync_dead_letters_by_target ON sync_dead_letters (tenant_id, target, id);
";
