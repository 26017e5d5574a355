//! Resource writes on PostgreSQL: create, update, delete, with their index
//! rows, memberships, derived values and change records.

use super::PostgresStore;
use crate::{
    Actor, NewResource, Precondition, Removal, ResourceId, StoreError, StoredResource, TenantId,
    UpdateFn,
};

/// [`crate::Store::create`].
pub(super) async fn create(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    resource_type: &str,
    new: NewResource,
) -> Result<StoredResource, StoreError> {
    let _ = (store, tenant, actor, resource_type, new);
    todo!("create on PostgreSQL")
}

/// [`crate::Store::update`].
#[allow(clippy::too_many_arguments)]
pub(super) async fn update(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    include_members: bool,
    update: UpdateFn,
) -> Result<(StoredResource, bool), StoreError> {
    let _ = (
        store,
        tenant,
        actor,
        resource_type,
        id,
        precondition,
        include_members,
        update,
    );
    todo!("update on PostgreSQL")
}

/// [`crate::Store::delete_with`].
pub(super) async fn delete(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    resource_type: &str,
    id: &ResourceId,
    precondition: Precondition,
    removal: Removal,
) -> Result<(), StoreError> {
    let _ = (
        store,
        tenant,
        actor,
        resource_type,
        id,
        precondition,
        removal,
    );
    todo!("delete on PostgreSQL")
}
