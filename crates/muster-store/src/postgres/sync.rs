//! The sync engine's tables on PostgreSQL: targets, what each target holds
//! of each resource, dead letters.

use super::PostgresStore;
use crate::sync::{DeadLetter, DeliveredObject, NewDeadLetter, ResourceChange, TargetRecord};
use crate::{Actor, ResourceId, StoreError, TenantId};

/// [`crate::sync::SyncStore::change_head`].
pub(super) async fn change_head(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<u64, StoreError> {
    let _ = (store, tenant);
    todo!()
}

/// [`crate::sync::SyncStore::resource_history`].
pub(super) async fn resource_history(
    store: &PostgresStore,
    tenant: &TenantId,
    resource_type: &str,
    id: &ResourceId,
    limit: u64,
) -> Result<Vec<ResourceChange>, StoreError> {
    let _ = (store, tenant, resource_type, id, limit);
    todo!()
}

/// [`crate::sync::SyncStore::put_target`].
pub(super) async fn put_target(
    store: &PostgresStore,
    tenant: &TenantId,
    actor: &Actor,
    name: &str,
    document: &str,
) -> Result<TargetRecord, StoreError> {
    let _ = (store, tenant, actor, name, document);
    todo!()
}

/// [`crate::sync::SyncStore::target`].
pub(super) async fn target(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<TargetRecord>, StoreError> {
    let _ = (store, tenant, name);
    todo!()
}

/// [`crate::sync::SyncStore::targets`].
pub(super) async fn targets(
    store: &PostgresStore,
    tenant: &TenantId,
) -> Result<Vec<TargetRecord>, StoreError> {
    let _ = (store, tenant);
    todo!()
}

/// [`crate::sync::SyncStore::all_targets`].
pub(super) async fn all_targets(
    store: &PostgresStore,
) -> Result<Vec<(TenantId, TargetRecord)>, StoreError> {
    let _ = store;
    todo!()
}

/// [`crate::sync::SyncStore::remove_target`].
pub(super) async fn remove_target(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StoreError> {
    let _ = (store, tenant, name);
    todo!()
}

/// [`crate::sync::SyncStore::set_target_paused`].
pub(super) async fn set_target_paused(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let _ = (store, tenant, name, reason);
    todo!()
}

/// [`crate::sync::SyncStore::set_target_state`].
pub(super) async fn set_target_state(
    store: &PostgresStore,
    tenant: &TenantId,
    name: &str,
    state: &str,
) -> Result<(), StoreError> {
    let _ = (store, tenant, name, state);
    todo!()
}

/// [`crate::sync::SyncStore::delivered`].
pub(super) async fn delivered(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    resource_type: &str,
    id: &ResourceId,
) -> Result<Option<DeliveredObject>, StoreError> {
    let _ = (store, tenant, target, resource_type, id);
    todo!()
}

/// [`crate::sync::SyncStore::delivered_all`].
pub(super) async fn delivered_all(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    resource_type: &str,
) -> Result<Vec<DeliveredObject>, StoreError> {
    let _ = (store, tenant, target, resource_type);
    todo!()
}

/// [`crate::sync::SyncStore::record_delivery`].
pub(super) async fn record_delivery(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    object: DeliveredObject,
) -> Result<(), StoreError> {
    let _ = (store, tenant, target, object);
    todo!()
}

/// [`crate::sync::SyncStore::forget_delivery`].
pub(super) async fn forget_delivery(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    resource_type: &str,
    id: &ResourceId,
) -> Result<(), StoreError> {
    let _ = (store, tenant, target, resource_type, id);
    todo!()
}

/// [`crate::sync::SyncStore::add_dead_letter`].
pub(super) async fn add_dead_letter(
    store: &PostgresStore,
    tenant: &TenantId,
    target: &str,
    letter: NewDeadLetter,
) -> Result<u64, StoreError> {
    let _ = (store, tenant, target, letter);
    todo!()
}

/// [`crate::sync::SyncStore::dead_letters`].
pub(super) async fn dead_letters(
    store: &PostgresStore,
    tenant: &TenantId,
    target: Option<&str>,
) -> Result<Vec<DeadLetter>, StoreError> {
    let _ = (store, tenant, target);
    todo!()
}

/// [`crate::sync::SyncStore::take_dead_letter`].
pub(super) async fn take_dead_letter(
    store: &PostgresStore,
    tenant: &TenantId,
    id: u64,
) -> Result<Option<DeadLetter>, StoreError> {
    let _ = (store, tenant, id);
    todo!()
}
