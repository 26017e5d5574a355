//! `muster-store`: where Muster's resources, group memberships, tokens and
//! change records live.
//!
//! [`Store`] is the interface the server talks to; [`sqlite::SqliteStore`] is
//! the embedded backend (a PostgreSQL backend will implement the same trait).
//! Every row belongs to a tenant. Every write commits together with the
//! [`ChangeRecord`] describing it, in one transaction, so the audit trail and
//! the downstream sync read exactly what was acknowledged.
//!
//! This crate knows SCIM semantics only through `muster-scim` (filters,
//! canonical resources); it never sees HTTP types or status codes beyond the
//! `ScimError` an update closure returns.

use async_trait::async_trait;
use muster_scim::{AttrPath, Filter, SchemaRegistry, ScimError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod sqlite;

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
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The new canonical resource, without `members` (membership is in
    /// `member_changes`) and without computed `groups`.
    pub resource: Value,
    /// Membership changes, applied in order.
    pub member_changes: Vec<MemberChange>,
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
}

/// A change committed together with the write it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Position in the tenant's change log (strictly increasing).
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
    /// What changed: `{"resource": <the resource after the change>}` when its
    /// attributes changed (and on create), `{"members": {"added": [ids],
    /// "removed": [ids]}}` when its membership changed (both keys when both
    /// did); `null` for a delete.
    pub payload: Value,
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
}

/// The storage interface shared by the SQLite and PostgreSQL backends.
///
/// Every write is durable when the call returns `Ok`, and commits together
/// with its [`ChangeRecord`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a resource. `resource` is canonical, without `id`, `meta`,
    /// `members` or `groups`; `members` is the initial membership of a group.
    async fn create(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        resource: Value,
        members: Vec<Member>,
    ) -> Result<StoredResource, StoreError>;

    /// Reads one resource.
    async fn get(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError>;

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

    /// Deletes one resource and its memberships.
    async fn delete(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
    ) -> Result<(), StoreError>;

    /// Lists resources matching a query, filtering and sorting in the database.
    async fn list(
        &self,
        tenant: &TenantId,
        registry: &SchemaRegistry,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError>;

    /// Change records after `after_sequence`, oldest first, at most `limit`.
    async fn changes(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u64,
    ) -> Result<Vec<ChangeRecord>, StoreError>;

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
}
