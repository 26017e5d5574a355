//! Soft delete, restore and purge: the storage side of a User's lifecycle
//! after a `DELETE` (the procedures are `muster_core::lifecycle`).
//!
//! A soft delete removes the live row exactly as a hard delete does (its
//! index rows, its memberships, the groups that held it touched, a
//! `Deleted` change record), so every query and uniqueness check of the
//! live tables stays as it is and the `userName` is free at once; in the
//! same transaction it keeps a [`Tombstone`]: the resource JSON, its
//! captured values, the groups that held it directly, who deleted it and
//! when. A restore creates the resource again through the create path with
//! the same id ([`NewResource::id`]), a version above the one it was
//! deleted at, and the memberships of the groups that still exist, and
//! drops the tombstone, in one transaction. A purge erases the tombstone's
//! personal data (resource, captured values, `userName`, `externalId`,
//! groups), the payloads of the resource's earlier change records, what
//! sync targets were sent about it (`sync_objects.sent`, dead letters) and
//! the detail of its audit entries (the audit module's redaction, so the
//! chain still verifies), keeping the skeleton: id, resource type,
//! version, deleted and purged instants, and who.
//!
//! Retention is the caller's: the store is given the instant before which
//! a tombstone is no longer restorable ([`Retention`]).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Actor, NewResource, Precondition, Removal, ResourceId, Retention, StoreError};
use crate::{StoredResource, TenantId};

/// A soft-deleted resource as kept until it is restored or purged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// The resource's id (the one a restore gives back).
    pub id: ResourceId,
    /// Its resource type (`User`).
    pub resource_type: String,
    /// The resource as stored when it was deleted (with `id` and `meta`,
    /// without computed `groups`); `None` once purged.
    pub resource: Option<Value>,
    /// Its captured undeclared values; empty once purged.
    #[serde(skip)]
    pub unmapped: Map<String, Value>,
    /// Its `userName`; `None` once purged (or for other types).
    pub user_name: Option<String>,
    /// Its `externalId`; `None` once purged or when it had none.
    pub external_id: Option<String>,
    /// The groups that held it directly when it was deleted; empty once
    /// purged.
    pub groups: Vec<ResourceId>,
    /// The version it was deleted at; a restore gives it a higher one.
    pub version: u64,
    /// Its `meta.created`, kept by a restore.
    pub created: String,
    /// When it was deleted (RFC 3339).
    pub deleted_at: String,
    /// The client that deleted it.
    pub deleted_by: String,
    /// The request that deleted it.
    pub deleted_request: String,
    /// When it was purged (RFC 3339); `None` while restorable.
    pub purged_at: Option<String>,
    /// The client (or `muster` process) that purged it.
    pub purged_by: Option<String>,
}

impl Tombstone {
    /// Whether its personal data was erased.
    pub fn purged(&self) -> bool {
        self.purged_at.is_some()
    }
}

/// Storage of soft-deleted resources; a supertrait of [`crate::Store`],
/// implemented by both backends.
#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Deletes one resource exactly as [`crate::Store::delete_with`] does
    /// (the live row, its index and membership rows, the groups that held
    /// it touched, a `Deleted` change record) and keeps its [`Tombstone`]
    /// in the same transaction. A tombstone of the same id (deleted,
    /// restored, deleted again) is replaced.
    #[allow(clippy::too_many_arguments)]
    async fn soft_delete(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        precondition: Precondition,
        removal: Removal,
    ) -> Result<(), StoreError>;

    /// The tombstone of `id`, purged or not; `None` when there is none.
    async fn tombstone(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Tombstone>, StoreError>;

    /// The tenant's tombstones of `resource_type`, newest deletion first,
    /// at most `limit`.
    async fn tombstones(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        limit: u64,
    ) -> Result<Vec<Tombstone>, StoreError>;

    /// The id of the newest unpurged tombstone of `resource_type` whose
    /// `externalId` is `external_id` (compared exactly: `externalId` is
    /// `caseExact`) and that was deleted within `within` (after its
    /// cutoff); `None` when there is none.
    async fn restorable_by_external_id(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        external_id: &str,
        within: Retention,
    ) -> Result<Option<ResourceId>, StoreError>;

    /// Restores a tombstone in one transaction: creates `new` with the
    /// tombstone's id (any `new.id` is replaced), its `meta.created`, and a
    /// version one above the one it was deleted at, through the create
    /// path (uniqueness, index rows, derivation, a `Create` change record);
    /// puts it back in the groups of [`Tombstone::groups`] that still exist
    /// (each group touched with a `Members` change record); drops the
    /// tombstone. [`StoreError::NotFound`] when there is no tombstone (or
    /// another restore took it first); [`StoreError::Conflict`] naming the
    /// attribute when its `userName` (or another unique value) was taken
    /// meanwhile; [`StoreError::Refused`] when it was purged or deleted
    /// before `within`'s cutoff.
    #[allow(clippy::too_many_arguments)]
    async fn restore(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        resource_type: &str,
        id: &ResourceId,
        new: NewResource,
        within: Retention,
    ) -> Result<StoredResource, StoreError>;

    /// Purges a tombstone: erases its personal data (see the module
    /// documentation), the payloads of the resource's change records (each
    /// becomes the identity skeleton `{"id": ..}`), what targets were sent
    /// about it and its audit entries' detail, keeping the skeleton. Purging a purged tombstone changes nothing. Returns the
    /// tombstone after the purge; [`StoreError::NotFound`] when there is
    /// none.
    async fn purge(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &ResourceId,
    ) -> Result<Tombstone, StoreError>;

    /// Purges every unpurged tombstone of the tenant deleted before
    /// `older_than`'s cutoff, as [`LifecycleStore::purge`] does. Returns
    /// their ids.
    async fn purge_expired(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        older_than: Retention,
    ) -> Result<Vec<ResourceId>, StoreError>;

    /// The tenants holding unpurged tombstones (for the periodic sweep).
    async fn tenants_with_tombstones(&self) -> Result<Vec<TenantId>, StoreError>;
}
