//! `muster-store`: where Muster's resources, group memberships, tokens and
//! change records live.
//!
//! [`Store`] is the interface the server talks to; [`sqlite::SqliteStore`] is
//! the embedded backend (a PostgreSQL backend will implement the same trait).
//! Every row belongs to a tenant. Every write commits together with the
//! [`ChangeRecord`] describing it, in one transaction, so the audit trail and
//! the downstream sync read exactly what was acknowledged. The records form
//! a feed: typed ([`ChangePayload`]), in commit order from a cursor
//! ([`Store::changes`]), read by registered consumers
//! ([`Store::register_consumer`]) and pruned once they all passed them
//! ([`Store::prune_changes`]).
//!
//! This crate knows SCIM semantics only through `muster-scim` (filters,
//! canonical resources); it never sees HTTP types or status codes beyond the
//! `ScimError` an update closure returns.
//!
//! Custom schemas declared at run time are stored here as opaque documents
//! ([`SchemaRecord`]); the store does not interpret them. When a schema
//! change needs resources rewritten (an attribute removed, a type changed),
//! the server passes a [`RewriteFn`] that the store runs over every resource
//! of the type inside the schema write's transaction. Values the server
//! captured rather than refused (undeclared attributes under the tenant's
//! `capture` policy) are kept apart from the resource, in
//! [`StoredResource::unmapped`].
//!
//! Values the server derives from a User (its contact-center entitlements,
//! computed from its attributes and groups by the tenant's rules) are
//! stored with it, so they are filterable and versioned: a write carries a
//! [`Derivation`] ([`NewResource::derivation`], [`Update::derivation`],
//! [`Removal::derivation`], and `rederive` of [`Store::put_rule_set`],
//! [`Store::put_schema`] and [`Store::delete_schema`]) and
//! the store recomputes the derived value of every User the write affects,
//! in the write's transaction.

use std::sync::Arc;

use async_trait::async_trait;
use muster_scim::{AttrPath, Filter, SchemaRegistry, ScimError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod change;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use change::{
    ChangePayload, ConsumerRecord, DeletedIdentity, DerivedValue, MembershipDelta, Retention,
    FEED_HEAD,
};
pub mod audit;
pub mod clients;
pub mod console;
pub mod lifecycle;
pub mod sync;
pub mod tenants;

/// A tenant. Every row of every table belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TenantId(pub String);

impl TenantId {
    /// The tenant used until multi-tenancy arrives.
    pub fn default_tenant() -> Self {
        TenantId("default".to_owned())
    }
}

/// A resource's server-assigned `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceId(pub String);

/// Who made a change: the authenticated client and the request it came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The client (token) name.
    pub client: String,
    /// The request id echoed in the response header.
    pub request_id: String,
}

/// A group member as stored: one row per member.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The member resource's id.
    pub value: ResourceId,
    /// `User` or `Group`; filled in by the store from the member resource.
    pub kind: Option<String>,
}

/// A resource as stored and read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// The resource's id.
    pub id: ResourceId,
    /// The resource type id (`User`, `Group`).
    pub resource_type: String,
    /// Canonical JSON including `id` and `meta` (`resourceType`, `created`,
    /// `lastModified`, `version`; not `location`, which the server adds).
    /// Groups carry `members` when they were asked for; users carry their
    /// computed `groups`.
    pub resource: Value,
    /// Monotonic version, the basis of the weak ETag `W/"<version>"`.
    pub version: u64,
    /// Values of undeclared attributes captured under the tenant's `capture`
    /// policy, as the server recorded them (by convention keyed by the path
    /// the client sent). Never part of `resource`; empty when none.
    pub unmapped: Map<String, Value>,
}

/// Computes a value the store keeps in each User under one extension URN,
/// derived from the User's attributes and its computed `groups` (a User's
/// contact-center entitlements, from the tenant's rules).
///
/// The store calls it inside the write transaction for every User the
/// write affects: the User written (create, update), every User whose
/// computed `groups` the write changes (members added or removed, also
/// through nested groups; a group renamed or deleted), and every User of
/// the tenant on [`Store::put_rule_set`], [`Store::put_schema`] and
/// [`Store::delete_schema`] with `rederive`. The result is
/// stored in the User's JSON under [`Derivation::urn`] (and the URN listed
/// in its `schemas`), written to the attribute index (so filters find it)
/// and shown in the change record; a User whose derived value changes
/// gets a new version and a change record, like any other change.
pub trait Derivation: Send + Sync {
    /// The extension URN the derived value is stored under. The store owns
    /// it: whatever a write's resource holds there is replaced.
    fn urn(&self) -> &str;

    /// The derived value of `user`: the canonical User JSON as the store
    /// holds it at that point of the write (`schemas`, `id`, attributes and
    /// `meta`; for a new user the `meta` it is created with, otherwise the
    /// one before the write), with its computed `groups` as a read returns
    /// them (direct, then indirect through nested groups) and without the
    /// value under [`Derivation::urn`]. `None` (or an empty object) leaves
    /// the extension absent.
    fn derive(&self, user: &Value) -> Option<Value>;

    /// The User attributes whose values are never returned, as
    /// [`NewResource::never_returned`] names them for a User write: kept
    /// out of the change records of the Users the store rewrites on its
    /// own (regrouped by a group write, or by `rederive`). The core
    /// `password` always is. Empty by default.
    fn never_returned(&self) -> &[String] {
        &[]
    }
}

/// A shared [`Derivation`], as writes carry it. Equal when it is the same
/// derivation (the same allocation); shown by its URN.
#[derive(Clone)]
pub struct SharedDerivation(pub Arc<dyn Derivation>);

impl SharedDerivation {
    /// Shares `derivation`.
    pub fn new(derivation: impl Derivation + 'static) -> Self {
        SharedDerivation(Arc::new(derivation))
    }
}

impl std::ops::Deref for SharedDerivation {
    type Target = dyn Derivation;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for SharedDerivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedDerivation")
            .field(&self.0.urn())
            .finish()
    }
}

impl PartialEq for SharedDerivation {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

/// What [`Store::create`] stores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewResource {
    /// The id to keep (an import from another Muster keeps its ids, so
    /// members and delivered records still match); `None`: a new UUIDv7.
    /// An id the tenant already holds is a [`StoreError::Conflict`].
    pub id: Option<ResourceId>,
    /// The canonical resource, without `id`, `meta`, `members` or `groups`.
    pub resource: Value,
    /// The initial membership of a group (empty for other types).
    pub members: Vec<Member>,
    /// Captured values of undeclared attributes (see
    /// [`StoredResource::unmapped`]); empty when none.
    pub unmapped: Map<String, Value>,
    /// Attributes whose values no other resource of the type may hold,
    /// checked inside the write's transaction (see [`UniqueAttribute`]).
    pub unique: Vec<UniqueAttribute>,
    /// The tenant's schema generation the resource was validated at (see
    /// [`Store::schema_generation`]): when the stored generation differs,
    /// the store refuses the write with [`StoreError::StaleSchema`] and
    /// writes nothing. `None` does not check.
    pub schema_generation: Option<u64>,
    /// The attributes whose values are never returned (`returned: never`)
    /// besides the core `password`, which always is: canonical paths as
    /// the registry writes them (`urn:...:Ext:attr`,
    /// `urn:...:Ext:attr.sub`; a core attribute bare or after its schema
    /// URN), compared case-insensitively; a path covers its
    /// sub-attributes. Their values stay in the resource but never enter
    /// the attribute index (no filter or sort can probe them) nor a change
    /// record's payload. Empty when none.
    pub never_returned: Vec<String>,
    /// The tenant's derivation (see [`Derivation`]), at the same schema
    /// generation as `schema_generation`: a new User gets its derived
    /// value, and a new Group's members get theirs recomputed. `None`
    /// derives nothing (what the resource holds is stored as given).
    pub derivation: Option<SharedDerivation>,
}

/// An attribute declared with `uniqueness` `server` (or `global`) that the
/// store checks on a write: no other resource of the same type and tenant
/// may hold any of the values the written resource holds there.
///
/// The store does not read schemas, so the server names these on each
/// write. `userName` (Users) and `displayName` (Groups) are always checked
/// and need not be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueAttribute {
    /// The canonical attribute path: `urn:...:User:employeeCode`, or
    /// `urn:...:User:customFields.BPO_Vendor_ID` for a sub-attribute.
    pub path: String,
    /// Whether values compare case-sensitively (`caseExact`).
    pub case_exact: bool,
}

/// A change to a group's membership rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add members, ignoring ones already present.
    Add(Vec<Member>),
    /// Remove members by id, ignoring ones absent.
    Remove(Vec<ResourceId>),
    /// Replace the whole member list.
    ReplaceAll(Vec<Member>),
}

/// The new state an update closure computes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// The new canonical resource, without `members` (membership is in
    /// `member_changes`) and without computed `groups`.
    pub resource: Value,
    /// Membership changes, applied in order.
    pub member_changes: Vec<MemberChange>,
    /// The new captured values of undeclared attributes (replacing the old
    /// ones; an empty map clears them); `None` keeps them as they are.
    pub unmapped: Option<Map<String, Value>>,
    /// Attributes whose values must stay unique (see [`UniqueAttribute`]).
    pub unique: Vec<UniqueAttribute>,
    /// The tenant's schema generation the update was computed and
    /// validated at, as [`NewResource::schema_generation`]; checked after
    /// the update closure returns, inside the write transaction. `None`
    /// does not check.
    pub schema_generation: Option<u64>,
    /// The attributes whose values are never returned, as
    /// [`NewResource::never_returned`].
    pub never_returned: Vec<String>,
    /// The tenant's derivation, as [`NewResource::derivation`]: an updated
    /// User's derived value is recomputed (a value the closure left under
    /// its URN is replaced), and so is that of every User whose computed
    /// `groups` a Group update changes. `None` derives nothing: those
    /// Users only get a new version.
    pub derivation: Option<SharedDerivation>,
}

/// What a delete carries besides the resource it names (see
/// [`Store::delete_with`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Removal {
    /// The tenant's derivation: the Users under a deleted Group get their
    /// derived value recomputed. `None` derives nothing.
    pub derivation: Option<SharedDerivation>,
    /// The tenant's schema generation the derivation was built at, as
    /// [`NewResource::schema_generation`]. `None` does not check.
    pub schema_generation: Option<u64>,
}

/// Computes an update from the current resource inside the write
/// transaction; `Ok(None)` means nothing changes (no new version).
pub type UpdateFn = Box<dyn FnOnce(&StoredResource) -> Result<Option<Update>, ScimError> + Send>;

/// An `If-Match` precondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No precondition.
    None,
    /// The stored version must equal this one.
    Version(u64),
}

/// Which page of a list to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// RFC 7644 index paging: 1-based `start_index`, at most `count` items.
    Index {
        /// 1-based index of the first result.
        start_index: u64,
        /// Maximum number of resources; 0 returns only the total.
        count: u64,
    },
    /// RFC 9865 cursor paging.
    Cursor {
        /// The opaque cursor from a previous page; `None` for the first page.
        cursor: Option<String>,
        /// Maximum number of resources.
        count: u64,
    },
}

/// A list or search request, already parsed and checked by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// The resource type to list.
    pub resource_type: String,
    /// Only resources matching this filter (paths already checked to exist).
    pub filter: Option<Filter>,
    /// Sort by this path (already checked to exist), else by creation order.
    pub sort_by: Option<AttrPath>,
    /// Sort descending.
    pub descending: bool,
    /// The page wanted.
    pub page: Page,
    /// Whether to load group members (false for `excludedAttributes=members`).
    pub include_members: bool,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    /// How many resources match the filter in all.
    pub total_results: u64,
    /// The resources of this page, in a stable order.
    pub resources: Vec<StoredResource>,
    /// The cursor for the next page, when cursor paging and more remain.
    pub next_cursor: Option<String>,
}

/// The kind of change a [`ChangeRecord`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A resource was created.
    Create,
    /// A resource was changed (PUT or PATCH).
    Update,
    /// A resource was deleted.
    Delete,
    /// A custom schema was put or deleted (`resource_type` "Schema",
    /// `resource_id` the schema URN).
    Schema,
    /// A tenant setting was set (`resource_type` "Setting", `resource_id`
    /// the key).
    Setting,
    /// An entitlement rule set was applied (`resource_type` "RuleSet",
    /// `resource_id` and `version` its version number).
    RuleSet,
}

impl ChangeKind {
    /// The name the `changes` table stores.
    pub fn stored_name(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Schema => "schema",
            ChangeKind::Setting => "setting",
            ChangeKind::RuleSet => "rule_set",
        }
    }

    /// The kind of a stored name.
    pub fn from_stored_name(name: &str) -> Result<ChangeKind, StoreError> {
        [
            ChangeKind::Create,
            ChangeKind::Update,
            ChangeKind::Delete,
            ChangeKind::Schema,
            ChangeKind::Setting,
            ChangeKind::RuleSet,
        ]
        .into_iter()
        .find(|kind| kind.stored_name() == name)
        .ok_or_else(|| StoreError::Database(format!("unknown change kind '{name}'")))
    }
}

/// One applied version of a tenant's entitlement rule set, kept as the
/// admin wrote it (the store gives it no meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetRecord {
    /// Numbered from 1 per tenant; the highest is in force.
    pub version: u64,
    /// The document as applied.
    pub document: String,
    /// Its format: `toml` or `json`.
    pub format: String,
    /// Why it was applied (for example `rollback to version 3`); empty
    /// when none was given.
    pub note: String,
    /// When, RFC 3339.
    pub applied: String,
    /// The client that applied it.
    pub client: String,
}

/// What [`Store::put_rule_set`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetApplied {
    /// The version stored.
    pub record: RuleSetRecord,
    /// How many Users the `rederive` pass changed (each got a new version
    /// and an `Update` change record); 0 without one.
    pub rewritten: u64,
}

/// A change committed together with the write it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Position in the change log: strictly increasing in commit order
    /// (see [`Store::changes`]), never reused, also after a prune. Numbered
    /// across tenants, so a tenant's sequences may skip numbers.
    pub sequence: u64,
    /// The tenant.
    pub tenant: TenantId,
    /// What happened.
    pub kind: ChangeKind,
    /// The resource type.
    pub resource_type: String,
    /// The resource changed.
    pub resource_id: ResourceId,
    /// The version after the change (for deletes, the last version).
    pub version: u64,
    /// Who made it.
    pub actor: Actor,
    /// When, RFC 3339.
    pub at: String,
    /// What changed, typed; see each [`ChangePayload`] variant for its
    /// contract and stored shape. Never-returned values (a User's
    /// `password`, the paths of [`NewResource::never_returned`]) and
    /// captured undeclared values ([`StoredResource::unmapped`]) are never
    /// in it.
    pub payload: ChangePayload,
}

/// An API token as stored: the secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The unique token name (the client name in logs and change records).
    pub name: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// Granted scopes (`scim.read`, `scim.write`, `admin`).
    pub scopes: Vec<String>,
    /// When it was created, RFC 3339.
    pub created: String,
}

/// A custom schema declared at run time, as stored per tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRecord {
    /// The schema URN (its `id`); unique within the tenant, compared ASCII
    /// case-insensitively: a put of the same URN in another case updates
    /// the same schema, and the stored URN takes the case last put.
    pub urn: String,
    /// The resource type the schema extends (`User`, `Group`).
    pub resource_type: String,
    /// Whether the extension is required on that resource type.
    pub required: bool,
    /// The RFC 7643 section 7 schema JSON, as the server serializes it; the
    /// store keeps it verbatim.
    pub document: Value,
    /// When it was last put, RFC 3339; filled by the store (ignored on input).
    pub updated: String,
    /// The client that last put it; filled by the store from the [`Actor`]
    /// (ignored on input).
    pub client: String,
    /// The top-level attribute names of this extension (compared
    /// case-insensitively) whose values are indexed for filtering; a
    /// complex attribute's sub-attributes follow their parent. The values
    /// of the other attributes are stored and filterable but not in the
    /// lookup index, so writing them is cheaper and a filter on them checks
    /// the tenant's resources one by one. Uniqueness checks work either way.
    /// Names hold neither `:` nor `.`; stored as given.
    pub searchable: Vec<String>,
}

/// What a [`RewriteFn`] decides for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteOutcome {
    /// The new canonical resource, with the same contract as
    /// [`Update::resource`].
    pub resource: Value,
    /// The values removed, for the audit trail (the change record's
    /// `"removed"`); `Value::Null` when none.
    pub removed: Value,
    /// New captured undeclared values, as [`Update::unmapped`] (for example
    /// when a newly declared attribute adopts values captured under its
    /// name); `None` keeps them.
    pub unmapped: Option<Map<String, Value>>,
    /// Paths whose values are never returned under the schemas after the
    /// change, as [`Update::never_returned`]: kept out of the index and of
    /// the change record.
    pub never_returned: Vec<String>,
}

/// Rewrites one resource during a schema change, inside the schema write's
/// transaction. Sees the resource as an update closure does (without
/// members or computed groups). `Ok(None)` leaves it as it is; an `Err`
/// aborts the whole schema change.
pub type RewriteFn =
    Box<dyn FnMut(&StoredResource) -> Result<Option<RewriteOutcome>, ScimError> + Send>;

/// Visits each resource of a [`Store::scan`].
pub type VisitFn = Box<dyn FnMut(&StoredResource) + Send>;

/// The result of a schema put or delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaChangeOutcome {
    /// How many resources the rewrite changed (each got a new version and
    /// an `Update` change record).
    pub rewritten: u64,
    /// How many Users the `rederive` pass changed (each got a new version
    /// and an `Update` change record); 0 without one.
    pub rederived: u64,
}

/// How one attribute path is used in a tenant, for the explain table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeUsage {
    /// The resource type holding the values.
    pub resource_type: String,
    /// For declared attributes (`declared`), the attribute index path: the
    /// canonical path in ASCII lower case, a sub-attribute after a dot;
    /// extension attributes as `<extension urn>:<attribute>`, also lower
    /// case. For example `username`, `emails.value`, `name.givenname`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department`,
    /// `urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:user:customfields.bpo_vendor_id`.
    /// A complex attribute has a row of its own (`emails`) besides its
    /// sub-attributes (`emails.value`). Resolve it case-insensitively
    /// through the registry to get the canonical spelling.
    ///
    /// For undeclared values (`!declared`), a top-level key of
    /// [`StoredResource::unmapped`], verbatim.
    pub path: String,
    /// Whether `path` is an attribute index path (`true`) or a key of the
    /// captured undeclared values (`false`).
    pub declared: bool,
    /// How many resources of the type hold a present value (not null,
    /// `""`, `[]` or `{}`) at the path now.
    pub holders: u64,
    /// The client whose write last set a value at the path, if any write
    /// recorded one.
    pub last_client: Option<String>,
    /// When, RFC 3339.
    pub last_set: Option<String>,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such resource (or token).
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness constraint would be violated; the text names the clash.
    #[error("{0}")]
    Conflict(String),
    /// The `If-Match` version did not match; carries the current version.
    #[error("version mismatch: the current version is {current}")]
    PreconditionFailed {
        /// The stored version.
        current: u64,
    },
    /// The update closure or the input was refused by SCIM rules.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The write was validated against (or a schema change computed from)
    /// a view of the tenant's schemas and settings older than the stored
    /// one: nothing was written. Reload the view and retry.
    #[error(
        "the tenant's schemas or settings changed (generation {current}; the write was \
         validated at generation {expected}); reload them and retry"
    )]
    StaleSchema {
        /// The generation the caller validated at.
        expected: u64,
        /// The tenant's stored generation.
        current: u64,
    },
    /// A queue of the store is full: the call was refused without being
    /// queued (nothing was written). Retry later; the text names the queue.
    #[error("the store is busy: {0}")]
    Busy(String),
    /// The write collided with a concurrent one (PostgreSQL: a
    /// serialization failure or a deadlock) and was rolled back: nothing
    /// was written. The store retries what it can run again; this reaches
    /// the caller only when the retries ran out, or when the write's
    /// update closure had already run. Retry the whole request.
    #[error("the write collided with a concurrent one and was rolled back: {0}")]
    Contention(String),
    /// The store refused a write that would break one of its own rules,
    /// whoever the client: a User `password` that is not an argon2 hash
    /// (the server hashes passwords; the store never keeps one in clear).
    /// A fault of the caller, not of its client, so a 500-class error
    /// whose text is for the log. Nothing was written; the text names the
    /// resource and never holds the refused value.
    #[error("refused by the store: {0}")]
    Refused(String),
}

/// Visits every resource of a type in creation order, `page_size` at a
/// time (with group members when `include_members`): for exports, full
/// pushes and rule-set dry runs. Each cursor page after the first counts
/// every match, so a large page keeps a million-resource walk linear.
pub async fn each_page<E: From<StoreError>>(
    store: &dyn Store,
    tenant: &TenantId,
    registry: &SchemaRegistry,
    resource_type: &str,
    (page_size, include_members): (u64, bool),
    mut visit: impl FnMut(Vec<StoredResource>) -> Result<(), E>,
) -> Result<(), E> {
    let mut cursor = None;
    loop {
        let query = ListQuery {
            resource_type: resource_type.to_owned(),
            filter: None,
            sort_by: None,
            descending: false,
            page: Page::Cursor {
                cursor: cursor.take(),
                count: page_size,
            },
            include_members,
        };
        let page = store.list(tenant, registry, &query).await?;
        let empty = page.resources.is_empty();
        visit(page.resources)?;
        match page.next_cursor {
            Some(next) if !empty => cursor = Some(next),
            _ => return Ok(()),
        }
    }
}

impl Migration {
    /// The steps of `steps` after version `applied`.
    pub(crate) fn after(steps: &[(&'static str, &'static str)], applied: usize) -> Vec<Migration> {
        steps
            .iter()
            .enumerate()
            .skip(applied)
            .map(|(index, (name, sql))| Migration {
                version: index + 1,
                name,
                sql,
            })
            .collect()
    }
}

/// One step of a backend's schema migrations (`muster migrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its version (its position from 1).
    pub version: usize,
    /// What it does.
    pub name: &'static str,
    /// Its SQL.
    pub sql: &'static str,
}

/// The storage interface shared by the SQLite and PostgreSQL backends.
///
/// Every write is durable when the call returns `Ok`, and commits together
/// with its [`ChangeRecord`].
#[async_trait]
pub trait Store:
    sync::SyncStore
    + clients::ClientStore
    + console::ConsoleSessionStore
    + tenants::TenantStore
    + lifecycle::LifecycleStore
    + audit::AuditStore
    + Send
    + Sync
    + 'static
{
    /// Creates a resource (see [`NewResource`]).
    async fn create(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        new: NewResource,
    ) -> Result<StoredResource, StoreError>;

    /// Reads one resource.
    async fn get(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError>;

    /// The current version of one resource (`None`: no such resource): what
    /// a cached rendering of it is checked against. Every change to what
    /// [`Store::get`] returns, computed `groups` and `members` included,
    /// gives the resource a new version.
    async fn version(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
    ) -> Result<Option<u64>, StoreError>;

    /// Updates one resource atomically: `update` runs inside the write
    /// transaction on the current state (without members, and without a
    /// User's computed groups), so concurrent
    /// writers never lose an update. Returns the resource after the update
    /// (with members when `include_members`) and whether anything changed.
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
    ) -> Result<(StoredResource, bool), StoreError>;

    /// Deletes one resource and its memberships: [`Store::delete_with`]
    /// without a derivation or a generation check.
    async fn delete(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
    ) -> Result<(), StoreError> {
        self.delete_with(
            tenant,
            actor,
            resource_type,
            id,
            precondition,
            Removal::default(),
        )
        .await
    }

    /// Deletes one resource and its memberships. The groups that held it
    /// get a new version; so does every User under a deleted Group (its
    /// computed `groups` changed), with its derived value recomputed when
    /// `removal` carries a derivation. Refused with
    /// [`StoreError::StaleSchema`] (nothing deleted) when
    /// `removal.schema_generation` is not the tenant's.
    async fn delete_with(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
        removal: Removal,
    ) -> Result<(), StoreError>;

    /// Lists resources matching a query, filtering and sorting in the database.
    async fn list(
        &self,
        tenant: &TenantId,
        registry: &SchemaRegistry,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError>;

    /// Change records after `after_sequence`, oldest first, at most `limit`.
    ///
    /// **Invariant: sequences are assigned in commit order.** A record
    /// with a higher sequence never commits before one with a lower
    /// sequence, so once a reader has seen sequence `n`, no record at or
    /// below `n` can appear later: reading on from the last sequence seen
    /// never skips a record, whatever commits meanwhile. (SQLite: every
    /// write transaction, of this process's single writer or of another
    /// process sharing the file, holds the database's write lock from its
    /// `BEGIN IMMEDIATE` to its commit, and takes its sequences from the
    /// table's `AUTOINCREMENT` counter under that lock; a read sees a
    /// snapshot of whole commits. Sequences of a rolled-back job are
    /// never visible.) Sequences may skip numbers (other tenants, pruned
    /// records), so a gap is not a missing record.
    async fn changes(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u64,
    ) -> Result<Vec<ChangeRecord>, StoreError>;

    /// Registers a reader of the tenant's change feed under `name`, its
    /// cursor at `start_at` (it reads the records after it), clamped to
    /// the feed's current head: [`FEED_HEAD`] starts at the head, 0 at the
    /// beginning. Idempotent: a consumer already registered keeps its
    /// cursor. Returns the consumer's cursor.
    async fn register_consumer(
        &self,
        tenant: &TenantId,
        name: &str,
        start_at: u64,
    ) -> Result<u64, StoreError>;

    /// Moves a consumer's cursor on to `sequence` (clamped to the feed's
    /// head); never backwards: a lower `sequence` leaves it as it is.
    /// Returns the cursor after the call; [`StoreError::NotFound`] when no
    /// such consumer is registered.
    async fn advance_consumer(
        &self,
        tenant: &TenantId,
        name: &str,
        sequence: u64,
    ) -> Result<u64, StoreError>;

    /// A consumer's cursor, `None` when it is not registered.
    async fn consumer_cursor(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<u64>, StoreError>;

    /// Forgets a consumer (its cursor no longer holds records back from
    /// [`Store::prune_changes`]). Returns whether it was registered.
    async fn remove_consumer(&self, tenant: &TenantId, name: &str) -> Result<bool, StoreError>;

    /// The tenant's registered consumers, by name.
    async fn list_consumers(&self, tenant: &TenantId) -> Result<Vec<ConsumerRecord>, StoreError>;

    /// Deletes the tenant's change records that are older than
    /// `older_than` and at or below the cursor of every registered
    /// consumer (with no consumer registered, by age alone). Returns how
    /// many were deleted. Sequences are never reused afterwards. An
    /// unreadable RFC 3339 instant is a [`StoreError::Scim`] invalid value.
    async fn prune_changes(
        &self,
        tenant: &TenantId,
        older_than: Retention,
    ) -> Result<u64, StoreError>;

    /// Stores a new token; a name already in use is a conflict.
    async fn create_token(&self, tenant: &TenantId, token: TokenRecord) -> Result<(), StoreError>;

    /// Every token of the tenant (hashes only).
    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes (deletes) a token by name.
    async fn revoke_token(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError>;

    /// Finds the token whose secret hashes to `secret_hash`, in any tenant.
    async fn find_token(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(TenantId, TokenRecord)>, StoreError>;

    /// The tenant's custom schemas, in the order they were first put.
    async fn list_schemas(&self, tenant: &TenantId) -> Result<Vec<SchemaRecord>, StoreError>;

    /// The tenant's schema generation: it changes with every committed
    /// schema put or delete and every setting change of the tenant (0 for
    /// a tenant that never had one). A write carrying the generation its
    /// view was read at ([`NewResource::schema_generation`],
    /// [`Update::schema_generation`]) is refused with
    /// [`StoreError::StaleSchema`] once the generation moved on.
    async fn schema_generation(&self, tenant: &TenantId) -> Result<u64, StoreError>;

    /// The tenant's schema generation and its custom schemas (as
    /// [`Store::list_schemas`]), read in one transaction: the schemas are
    /// the ones of that generation. Settings read after this call are at
    /// least as new, so a view built from both, tagged with this
    /// generation, is refused by the store as soon as any of it is stale.
    async fn tenant_schemas(
        &self,
        tenant: &TenantId,
    ) -> Result<(u64, Vec<SchemaRecord>), StoreError>;

    /// Stores a custom schema (replacing one with the same URN, which keeps
    /// its place in the list) and, with `rewrite`, rewrites every resource
    /// of `record.resource_type` in the same transaction: all or nothing.
    /// Records a [`ChangeKind::Schema`] change, then an `Update` change per
    /// rewritten resource. A change of [`SchemaRecord::searchable`] takes
    /// effect for the stored values in the same transaction, without a
    /// rewrite, and for every process sharing the store at its next write
    /// or query.
    ///
    /// The URN is matched ASCII case-insensitively (see
    /// [`SchemaRecord::urn`]). With `expected_generation`, the put is
    /// refused with [`StoreError::StaleSchema`] (nothing written) when the
    /// tenant's schema generation differs: the change and its rewrite were
    /// computed from schemas that are no longer the stored ones.
    ///
    /// With `rederive` (the tenant's [`Derivation`] built against the
    /// schemas after the change), every User of the tenant gets its derived
    /// value recomputed in the same transaction, after the rewrite, as
    /// [`Store::put_rule_set`] does: each User whose value changes gets a
    /// new version, its index rows and an `Update` change record with
    /// `{"resource": ..}`; the others are left as they are. They are
    /// counted in [`SchemaChangeOutcome::rederived`].
    async fn put_schema(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        record: SchemaRecord,
        rewrite: Option<RewriteFn>,
        rederive: Option<SharedDerivation>,
        expected_generation: Option<u64>,
    ) -> Result<SchemaChangeOutcome, StoreError>;

    /// Deletes a custom schema (`NotFound` when absent) and, with `rewrite`,
    /// rewrites every resource of the type it was bound to, as
    /// [`Store::put_schema`] does. Values left under its URN are indexed
    /// again, as any path outside a custom extension is. The URN is matched
    /// ASCII case-insensitively; `expected_generation` and `rederive` are
    /// handled as by [`Store::put_schema`].
    async fn delete_schema(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        urn: &str,
        rewrite: Option<RewriteFn>,
        rederive: Option<SharedDerivation>,
        expected_generation: Option<u64>,
    ) -> Result<SchemaChangeOutcome, StoreError>;

    /// Visits every resource of a type (without members or computed groups)
    /// from one consistent snapshot, in creation order, streaming: used for
    /// the dry run of a schema change. Returns how many were visited.
    async fn scan(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        visit: VisitFn,
    ) -> Result<u64, StoreError>;

    /// A tenant setting, `None` when never set.
    async fn get_setting(&self, tenant: &TenantId, key: &str)
        -> Result<Option<String>, StoreError>;

    /// Sets a tenant setting, with a [`ChangeKind::Setting`] change record;
    /// a change of value moves the tenant's schema generation on (see
    /// [`Store::schema_generation`]), since settings such as the
    /// undeclared-attribute policy decide writes too.
    async fn set_setting(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError>;

    /// Stores an entitlement rule set as the tenant's next version (the one
    /// in force from now on), with a [`ChangeKind::RuleSet`] change record;
    /// moves the tenant's schema generation on, since its view holds the
    /// rule set.
    ///
    /// With `rederive` (the derivation of the new rule set), every User of
    /// the tenant gets its derived value recomputed in the same
    /// transaction: all or nothing. Each User whose value changes gets a
    /// new version, its index rows and an `Update` change record; the
    /// others are left as they are. With `expected_generation`, the put is
    /// refused with [`StoreError::StaleSchema`] (nothing written) when the
    /// tenant's schema generation differs: the rule set was checked, and
    /// its derivation built, against schemas that are no longer the stored
    /// ones.
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
    ) -> Result<RuleSetApplied, StoreError>;

    /// The rule set at `version`, or the one in force when `None`; `None`
    /// when there is none.
    async fn rule_set(
        &self,
        tenant: &TenantId,
        version: Option<u64>,
    ) -> Result<Option<RuleSetRecord>, StoreError>;

    /// Every rule set version the tenant applied, oldest first.
    async fn rule_set_history(&self, tenant: &TenantId) -> Result<Vec<RuleSetRecord>, StoreError>;

    /// Every attribute path that holds values, or ever had a value set, in
    /// the tenant: declared paths from the attribute index and keys of the
    /// captured undeclared values, ordered by resource type, then declared
    /// before undeclared, then path.
    async fn attribute_usage(&self, tenant: &TenantId) -> Result<Vec<AttributeUsage>, StoreError>;
}
